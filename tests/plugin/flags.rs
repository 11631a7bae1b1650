//! kubectl's connection flags, with kubectl's meanings and precedence: which
//! kubeconfig (flag, else KUBECONFIG's files merged, else ~/.kube/config), which
//! context, cluster and user, the namespace, the overrides of server and
//! credentials, and impersonation. No API server is needed: these decide the client
//! configuration, which the tests read.

use std::{ffi::OsString, path::PathBuf};

use gatehouse::cli::{connect, Connection, KubeArgs};

use super::*;

const FIRST: &str = r#"
apiVersion: v1
kind: Config
current-context: alice
clusters:
- name: dev
  cluster: {server: "https://dev.example:6443"}
- name: prod
  cluster: {server: "https://prod.example:6443", tls-server-name: prod-api}
contexts:
- name: alice
  context: {cluster: dev, user: alice, namespace: team}
- name: bob
  context: {cluster: prod, user: bob}
users:
- name: alice
  user: {token: alice-token}
- name: bob
  user: {token: bob-token}
"#;

/// A second file: a new context, and an `alice` context that the first file's wins over.
const SECOND: &str = r#"
apiVersion: v1
kind: Config
current-context: carol
clusters:
- name: qa
  cluster: {server: "https://qa.example:6443"}
contexts:
- name: carol
  context: {cluster: qa, user: carol, namespace: qa-team}
- name: alice
  context: {cluster: qa, user: carol, namespace: elsewhere}
users:
- name: carol
  user: {token: carol-token}
"#;

/// A directory with the two kubeconfigs, removed when dropped.
pub(super) struct Files {
    pub dir: PathBuf,
}

impl Files {
    pub fn new(tag: &str) -> Files {
        let dir = std::env::temp_dir().join(format!("gatehouse-plugin-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("first"), FIRST).unwrap();
        std::fs::write(dir.join("second"), SECOND).unwrap();
        Files { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// A KUBECONFIG value listing `names` in order.
    pub fn list(&self, names: &[&str]) -> OsString {
        std::env::join_paths(names.iter().map(|n| self.path(n))).unwrap()
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn args(argv: &[&str]) -> KubeArgs {
    Cli::try_parse_from([&["kubectl-gatehouse"], argv, &["list"]].concat())
        .unwrap()
        .kube
}

async fn conn(argv: &[&str], kubeconfig_env: Option<OsString>) -> Connection {
    connect(&args(argv), kubeconfig_env, None).await.unwrap()
}

fn token(c: &Connection) -> String {
    serde_json::to_value(&c.config.auth_info).unwrap()["token"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn server(c: &Connection) -> String {
    c.config.cluster_url.to_string()
}

#[tokio::test]
async fn the_context_decides_server_user_and_namespace_and_flags_override_each() {
    let files = Files::new("context");
    let kc = Some(files.list(&["first"]));
    let c = conn(&[], kc.clone()).await;
    assert_eq!(
        (server(&c).as_str(), token(&c).as_str(), c.namespace.as_str()),
        ("https://dev.example:6443/", "alice-token", "team"),
        "the current context"
    );
    let c = conn(&["--context", "bob"], kc.clone()).await;
    assert_eq!(
        (server(&c).as_str(), token(&c).as_str(), c.namespace.as_str()),
        ("https://prod.example:6443/", "bob-token", "default"),
        "another context; no namespace in it means `default`"
    );
    let c = conn(&["--context", "bob", "-n", "ops"], kc.clone()).await;
    assert_eq!(c.namespace, "ops", "-n wins over the context");
    let c = conn(&["--cluster", "prod"], kc.clone()).await;
    assert_eq!(
        (server(&c).as_str(), token(&c).as_str(), c.namespace.as_str()),
        ("https://prod.example:6443/", "alice-token", "team"),
        "--cluster swaps only the cluster"
    );
    let c = conn(&["--user", "bob"], kc).await;
    assert_eq!(
        (server(&c).as_str(), token(&c).as_str()),
        ("https://dev.example:6443/", "bob-token"),
        "--user swaps only the credentials"
    );
}

#[tokio::test]
async fn kubeconfig_lists_files_merged_the_first_to_set_a_value_wins() {
    let files = Files::new("merge");
    // A missing file in the list is skipped, as kubectl does.
    let kc = Some(files.list(&["first", "missing", "second"]));
    let c = conn(&[], kc.clone()).await;
    assert_eq!(
        c.namespace, "team",
        "current-context and alice come from the first file"
    );
    let c = conn(&["--context", "carol"], kc.clone()).await;
    assert_eq!(
        (server(&c).as_str(), token(&c).as_str(), c.namespace.as_str()),
        ("https://qa.example:6443/", "carol-token", "qa-team"),
        "the second file adds its context"
    );
    // Reversed, the second file's current-context and alice win.
    let c = conn(&[], Some(files.list(&["second", "first"]))).await;
    assert_eq!(c.namespace, "qa-team");
    let c = conn(&["--context", "alice"], Some(files.list(&["second", "first"]))).await;
    assert_eq!(c.namespace, "elsewhere");
}

#[tokio::test]
async fn the_kubeconfig_flag_wins_over_the_environment() {
    let files = Files::new("flag");
    let flag = files.path("second");
    let c = conn(
        &["--kubeconfig", flag.to_str().unwrap()],
        Some(files.list(&["first"])),
    )
    .await;
    assert_eq!(c.namespace, "qa-team");
    // Without a flag or KUBECONFIG, ~/.kube/config.
    let home = files.dir.join("home");
    std::fs::create_dir_all(home.join(".kube")).unwrap();
    std::fs::write(home.join(".kube/config"), SECOND).unwrap();
    let c = connect(&args(&[]), None, Some(home)).await.unwrap();
    assert_eq!(c.namespace, "qa-team");
}

#[tokio::test]
async fn server_token_and_tls_flags_override_the_kubeconfig() {
    let files = Files::new("overrides");
    let kc = Some(files.list(&["first"]));
    let c = conn(
        &[
            "--context",
            "bob",
            "--server",
            "https://other.example:7443",
            "--token",
            "t0k",
        ],
        kc.clone(),
    )
    .await;
    assert_eq!(server(&c), "https://other.example:7443/");
    assert_eq!(token(&c), "t0k");
    assert_eq!(
        c.config.tls_server_name, None,
        "the kubeconfig's TLS server name belongs to its own server"
    );
    let c = conn(&["--insecure-skip-tls-verify"], kc.clone()).await;
    assert!(c.config.accept_invalid_certs);
    let ca = files.path("ca.crt");
    std::fs::write(&ca, "not checked here").unwrap();
    let c = conn(&["--certificate-authority", ca.to_str().unwrap()], kc.clone()).await;
    assert_eq!(c.config.root_cert_file.as_deref(), Some(ca.as_path()));
    assert!(!c.config.accept_invalid_certs);

    let both = args(&[
        "--certificate-authority",
        ca.to_str().unwrap(),
        "--insecure-skip-tls-verify",
    ]);
    let err = connect(&both, kc, None).await.err().unwrap();
    assert!(err.to_string().contains("do not go together"), "{err}");

    // Flags alone, with no kubeconfig at all, as kubectl allows.
    let c = connect(
        &args(&["--server", "https://bare.example:6443", "--token", "x"]),
        None,
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        (server(&c).as_str(), c.namespace.as_str()),
        ("https://bare.example:6443/", "default")
    );
}

#[tokio::test]
async fn impersonation_flags_set_user_groups_and_uid() {
    let files = Files::new("as");
    let c = conn(
        &[
            "--as",
            "alice",
            "--as-group",
            "developers",
            "--as-group",
            "oncall",
            "--as-uid",
            "u-42",
        ],
        Some(files.list(&["first"])),
    )
    .await;
    let auth = &c.config.auth_info;
    assert_eq!(auth.impersonate.as_deref(), Some("alice"));
    assert_eq!(
        auth.impersonate_groups.as_deref(),
        Some(&["developers".to_string(), "oncall".to_string()][..])
    );
    // kube sends user and groups itself; the UID goes as its own header.
    let uid: Vec<_> = c
        .config
        .headers
        .iter()
        .filter(|(n, _)| n.as_str() == "impersonate-uid")
        .map(|(_, v)| v.to_str().unwrap())
        .collect();
    assert_eq!(uid, ["u-42"]);
    assert_eq!(token(&c), "alice-token", "impersonation keeps the credentials");

    // Groups or a UID without a user to act as is refused, as by kubectl.
    for argv in [["--as-group", "x"], ["--as-uid", "u"]] {
        let err = Cli::try_parse_from([&["kubectl-gatehouse"], &argv[..], &["list"]].concat()).unwrap_err();
        assert_eq!(err.exit_code(), exit::USAGE, "{argv:?}");
    }
}

#[test]
fn request_timeout_takes_kubectl_values() {
    use std::time::Duration;
    assert_eq!(cli::request_timeout("0").unwrap(), None);
    assert_eq!(cli::request_timeout("5s").unwrap(), Some(Duration::from_secs(5)));
    assert_eq!(cli::request_timeout("7").unwrap(), Some(Duration::from_secs(7)));
    assert_eq!(
        cli::request_timeout("1m30s").unwrap(),
        Some(Duration::from_secs(90))
    );
    assert!(cli::request_timeout("soon").is_err());
}

#[test]
fn every_command_takes_the_generic_flags_before_or_after_it() {
    let generic = [
        "--kubeconfig",
        "/k",
        "--context",
        "bob",
        "--cluster",
        "prod",
        "--user",
        "bob",
        "-n",
        "team",
        "--as",
        "alice",
        "--as-group",
        "dev",
        "--as-uid",
        "7",
        "--request-timeout",
        "5s",
        "--server",
        "https://x",
        "--token",
        "t",
        "--certificate-authority",
        "/ca",
        "--insecure-skip-tls-verify",
    ];
    for command in [
        &["request", "view"][..],
        &["approve", "r"],
        &["reject", "r"],
        &["revoke", "r"],
        &["comment", "r"],
        &["cancel", "r"],
        &["pending"],
        &["list"],
        &["status", "r"],
    ] {
        for argv in [
            [&["kubectl-gatehouse"], &generic[..], command].concat(),
            [&["kubectl-gatehouse"], command, &generic[..]].concat(),
        ] {
            let cli = Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
            let k = &cli.kube;
            assert_eq!(
                (
                    k.kubeconfig.as_deref(),
                    k.context.as_deref(),
                    k.cluster.as_deref(),
                    k.user.as_deref(),
                    k.namespace.as_deref(),
                ),
                (
                    Some(std::path::Path::new("/k")),
                    Some("bob"),
                    Some("prod"),
                    Some("bob"),
                    Some("team")
                ),
                "{argv:?}"
            );
            assert_eq!(
                (k.as_user.as_deref(), &k.as_groups[..], k.as_uid.as_deref()),
                (Some("alice"), &["dev".to_string()][..], Some("7")),
                "{argv:?}"
            );
            assert_eq!(
                (
                    k.request_timeout.as_str(),
                    k.server.as_deref(),
                    k.token.as_deref(),
                    k.insecure_skip_tls_verify
                ),
                ("5s", Some("https://x"), Some("t"), true),
                "{argv:?}"
            );
        }
    }
    // `--cluster` is kubectl's (a kubeconfig cluster); a cluster-wide grant is `--cluster-wide`.
    let cli = Cli::try_parse_from(["kubectl-gatehouse", "request", "view", "--cluster-wide"]).unwrap();
    assert!(matches!(cli.command, Command::Request(ref a) if a.cluster_wide));
    assert_eq!(cli.kube.cluster, None);
}
