//! Shell completion: what the engine offers where, names from the fake cluster and
//! the kubeconfig, the `__complete` protocol kubectl speaks with
//! `kubectl_complete-gatehouse`, and the bash script completing real words.

use std::process::Command as Process;

use gatehouse::cli::{
    complete::{self, Candidate, RequestFilter, Want},
    KubeconfigNames, Shell,
};

use super::*;

fn words(line: &str) -> Vec<String> {
    // The last word is the one under the cursor: a trailing space means a new, empty one.
    let mut w: Vec<String> = line.split_whitespace().map(str::to_string).collect();
    if line.ends_with(' ') || line.is_empty() {
        w.push(String::new());
    }
    w
}

fn values(want: &Want) -> Vec<String> {
    match want {
        Want::Fixed(c) => c.iter().map(|c| c.value.clone()).collect(),
        other => panic!("not fixed: {other:?}"),
    }
}

#[test]
fn the_engine_knows_what_each_word_is() {
    let at = |line: &str| complete::position(&words(line));
    let top = values(&at("").want);
    for sub in [
        "request",
        "approve",
        "reject",
        "revoke",
        "comment",
        "cancel",
        "pending",
        "list",
        "status",
        "completion",
    ] {
        assert!(top.contains(&sub.to_string()), "{sub} in {top:?}");
    }
    assert!(!top.iter().any(|s| s.starts_with("__")), "hidden: {top:?}");

    let flags = values(&at("approve r1 --").want);
    for f in [
        "--comment",
        "--timeout",
        "--context",
        "--as",
        "--as-group",
        "--kubeconfig",
        "--namespace",
    ] {
        assert!(flags.contains(&f.to_string()), "{f} in {flags:?}");
    }
    assert_eq!(at("approve ").want, Want::Requests(RequestFilter::Pending));
    assert_eq!(at("reject ").want, Want::Requests(RequestFilter::Pending));
    assert_eq!(at("revoke da").want, Want::Requests(RequestFilter::Active));
    assert_eq!(at("cancel ").want, Want::Requests(RequestFilter::Open));
    assert_eq!(at("status ").want, Want::Requests(RequestFilter::Any));
    assert_eq!(at("-n team status ").want, Want::Requests(RequestFilter::Any));
    assert_eq!(at("request ").want, Want::Roles);
    assert_eq!(at("request view --policy ").want, Want::Policies);
    assert_eq!(values(&at("request view --kind ").want), ["ClusterRole", "Role"]);
    assert_eq!(values(&at("list -o ").want), ["table", "json", "yaml", "csv"]);
    assert_eq!(values(&at("completion ").want), ["bash", "zsh", "fish"]);
    assert_eq!(at("list --context ").want, Want::Contexts);
    assert_eq!(at("list --cluster ").want, Want::Clusters);
    assert_eq!(at("list --user ").want, Want::Users);
    assert_eq!(at("list -n ").want, Want::Namespaces);
    assert_eq!(at("list --kubeconfig ").want, Want::Files);
    assert_eq!(at("request view --reason ").want, Want::Nothing);
    assert_eq!(at("request edit --run busybox -- ").want, Want::Files);
    // An approve's name is the only positional: nothing after it.
    assert_eq!(at("approve r1 ").want, Want::Nothing);

    // `--flag=VALUE` completes the value and puts the flag back in front.
    let p = at("list --context=al");
    assert_eq!(
        (p.want, p.typed.as_str(), p.head.as_str()),
        (Want::Contexts, "al", "--context=")
    );

    // The connection flags typed so far choose the cluster the names come from.
    let p = at("--kubeconfig /k --context bob approve -n team --as=alice ");
    assert_eq!(p.want, Want::Requests(RequestFilter::Pending));
    assert_eq!(p.kube.kubeconfig.as_deref(), Some(std::path::Path::new("/k")));
    assert_eq!(p.kube.context.as_deref(), Some("bob"));
    assert_eq!(p.kube.namespace.as_deref(), Some("team"));
    assert_eq!(p.kube.as_user.as_deref(), Some("alice"));
}

async fn offer(client: &Client, line: &str) -> (Vec<Candidate>, u8) {
    let pos = complete::position(&words(line));
    complete::candidates(&pos, Some(client), "team", &KubeconfigNames::default()).await
}

fn names(c: &[Candidate]) -> Vec<&str> {
    c.iter().map(|c| c.value.as_str()).collect()
}

#[tokio::test]
async fn request_names_come_from_the_cluster_filtered_by_what_the_command_can_act_on() {
    let client = fake().await;
    seed_request(&client, "team", "dana-view", "dana", pending_for(&["sre"])).await;
    seed_request(&client, "team", "lee-view", "lee", json!({"phase": "Active"})).await;
    seed_request(&client, "team", "kim-view", "kim", json!({"phase": "Expired"})).await;
    seed_request(&client, "other", "ann-view", "ann", pending_for(&["sre"])).await;

    let (c, directive) = offer(&client, "approve ").await;
    assert_eq!(names(&c), ["dana-view"]);
    assert_eq!(c[0].help, "dana ClusterRole/view Pending");
    assert_eq!(directive, complete::directive::NO_FILE);
    assert_eq!(names(&offer(&client, "revoke ").await.0), ["lee-view"]);
    assert_eq!(
        names(&offer(&client, "cancel ").await.0),
        ["dana-view", "lee-view"]
    );
    assert_eq!(
        names(&offer(&client, "status ").await.0),
        ["dana-view", "kim-view", "lee-view"]
    );
    assert_eq!(names(&offer(&client, "status l").await.0), ["lee-view"]);
    // Roles and policies from the AccessPolicies.
    assert_eq!(names(&offer(&client, "request ").await.0), ["view"]);
    assert_eq!(
        names(&offer(&client, "request view --policy=").await.0),
        ["--policy=team-view"]
    );
    // File names are the shell's business.
    assert_eq!(
        offer(&client, "list --kubeconfig ").await,
        (vec![], complete::directive::DEFAULT)
    );
}

/// Runs a binary of this package with `args`, KUBECONFIG and HOME set: stdout.
fn binary(path: &str, args: &[&str], kubeconfig: &std::path::Path) -> String {
    let out = Process::new(path)
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env("HOME", kubeconfig.parent().unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{path} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn kubectl_and_the_helper_speak_the_plugin_completion_protocol() {
    let files = super::flags::Files::new("protocol");
    let kc = files.path("first");
    let plugin = env!("CARGO_BIN_EXE_kubectl-gatehouse");
    let out = binary(plugin, &["__complete", "appr"], &kc);
    assert_eq!(out, "approve\tApprove a request (creates an AccessReview)\n:4\n");
    // kubectl runs kubectl_complete-gatehouse with the words after `gatehouse`.
    let helper = env!("CARGO_BIN_EXE_kubectl_complete-gatehouse");
    assert_eq!(binary(helper, &["appr"], &kc), out);
    assert_eq!(
        binary(helper, &["list", "--context", ""], &kc),
        "alice\tcontext\nbob\tcontext\n:4\n"
    );
    // A name needs the cluster; none answers here, so nothing is offered, quietly.
    assert_eq!(binary(helper, &["approve", ""], &kc), ":4\n");
}

#[test]
fn the_bash_script_completes_words_kubectl_style() {
    let files = super::flags::Files::new("bash");
    let kc = files.path("first");
    let script = files.path("completion.bash");
    std::fs::write(&script, complete::script(Shell::Bash)).unwrap();
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_kubectl-gatehouse"))
        .parent()
        .unwrap()
        .to_owned();
    let complete = |line: &str| -> Vec<String> {
        let out = Process::new("bash")
            .arg("-c")
            .arg(r#"source "$1"; COMP_LINE=$2; COMP_POINT=${#COMP_LINE}; _kubectl_gatehouse; printf '%s\n' "${COMPREPLY[@]}""#)
            .arg("bash")
            .arg(&script)
            .arg(line)
            .env("PATH", format!("{}:/usr/bin:/bin", bin_dir.display()))
            .env("KUBECONFIG", &kc)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    };
    assert_eq!(complete("kubectl-gatehouse pend"), ["pending"]);
    assert_eq!(complete("kubectl-gatehouse list --cont"), ["--context"]);
    assert_eq!(complete("kubectl-gatehouse list --context "), ["alice", "bob"]);
    // bash replaces only what follows the '=': the script offers just that part.
    assert_eq!(complete("kubectl-gatehouse list --context=b"), ["bob"]);
    assert_eq!(complete("kubectl-gatehouse list -o y"), ["yaml"]);
}

#[test]
fn each_shell_gets_a_script_that_asks_the_plugin() {
    for (shell, loads) in [
        (Shell::Bash, "complete -F _kubectl_gatehouse kubectl-gatehouse"),
        (Shell::Zsh, "compdef _kubectl_gatehouse kubectl-gatehouse"),
        (Shell::Fish, "complete -c kubectl-gatehouse"),
    ] {
        let script = complete::script(shell);
        assert!(
            script.contains("__complete") && script.contains(loads),
            "{shell:?}:\n{script}"
        );
    }
    let cli = Cli::try_parse_from(["kubectl-gatehouse", "completion", "zsh"]).unwrap();
    assert_eq!(cli.command, Command::Completion { shell: Shell::Zsh });
}
