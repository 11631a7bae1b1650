//! The audit webhook receiver (`gatehouse run --audit-webhook-addr`): only the API
//! server may feed usage evidence, and what it sends cannot crash the operator or
//! credit a binding the request did not go through.
//!
//! Runs the receiver in-process on 127.0.0.1 with certificates made by `openssl`
//! for the test, and talks to it with `curl` (both already needed by the control
//! plane scripts).

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::Arc,
    time::Duration,
};

use gatehouse::{
    audit::{AuditWebhook, Credentials, UsageState},
    metrics::Metrics,
    usage::{BindingRef, PairKey, Settings},
};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, a serving certificate for 127.0.0.1, a client certificate from that CA
/// (the API server's) and one from another CA (anyone else's).
fn pki() -> PathBuf {
    // One directory per receiver: the tests run in parallel.
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("gatehouse-audit-pki-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for ca in ["ca", "other-ca"] {
        openssl(
            &dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "2",
                "-subj",
                &format!("/CN={ca}"),
                "-keyout",
                &format!("{ca}.key"),
                "-out",
                &format!("{ca}.crt"),
            ],
        );
    }
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    for (name, ca, ext) in [
        ("server", "ca", "server.ext"),
        ("apiserver", "ca", "client.ext"),
        ("intruder", "other-ca", "client.ext"),
    ] {
        openssl(
            &dir,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-subj",
                &format!("/CN={name}"),
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
            ],
        );
        openssl(
            &dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                &format!("{ca}.crt"),
                "-CAkey",
                &format!("{ca}.key"),
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                ext,
                "-out",
                &format!("{name}.crt"),
            ],
        );
    }
    dir
}

const TOKEN: &str = "3f5e0c0c2b7d4e51a7a4b3c9d2e1f0a1";

struct Receiver {
    url: String,
    state: Arc<UsageState>,
    metrics: Arc<Metrics>,
    pki: PathBuf,
    _runtime: tokio::runtime::Runtime,
}

fn start() -> Receiver {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let pki = pki();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let state = Arc::new(UsageState::new(Settings::default()));
    let metrics = Arc::new(Metrics::default());
    std::fs::write(pki.join("token"), format!("{TOKEN}\n")).unwrap();
    let creds = Credentials {
        cert: pki.join("server.crt"),
        key: pki.join("server.key"),
        client_ca: Some(pki.join("ca.crt")),
        token_file: Some(pki.join("token")),
    };
    let webhook = AuditWebhook::new(&creds, state.clone(), metrics.clone()).unwrap();
    let addr = runtime
        .block_on(webhook.serve(
            "127.0.0.1:0".parse().unwrap(),
            tokio::sync::watch::channel(false).1,
        ))
        .unwrap();
    Receiver {
        url: format!("https://127.0.0.1:{}/audit", addr.port()),
        state,
        metrics,
        pki,
        _runtime: runtime,
    }
}

/// Posts `body` with curl; the HTTP status, or 0 when the TLS handshake failed.
fn post(r: &Receiver, extra: &[&str], body: &Path) -> u16 {
    let ca = r.pki.join("ca.crt");
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "20",
            "--cacert",
        ])
        .arg(&ca)
        .args(extra)
        .args(["-H", "Content-Type: application/json", "--data-binary"])
        .arg(format!("@{}", body.display()))
        .arg(&r.url)
        .current_dir(&r.pki)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0)
}

fn go_quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn event_list(reason: &str) -> String {
    serde_json::json!({
        "kind": "EventList", "apiVersion": "audit.k8s.io/v1",
        "items": [{
            "kind": "Event", "stage": "ResponseComplete", "verb": "get",
            "auditID": "a1", "requestURI": "/api/v1/namespaces/tenant/pods/x",
            "user": {"username": "mallory", "groups": ["tenants"]},
            "objectRef": {"resource": "pods", "namespace": "tenant"},
            "stageTimestamp": "2026-03-02T10:00:00.000000Z",
            "annotations": {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": reason},
        }]
    })
    .to_string()
}

fn refused(r: &Receiver, cause: &str) -> u64 {
    r.metrics
        .audit_refused
        .get_or_create(&gatehouse::metrics::CauseLabel { cause: cause.into() })
        .get()
}

#[test]
fn only_the_api_server_may_post_audit_events() {
    let r = start();
    let body = r.pki.join("events.json");
    let reason = r#"RBAC: allowed by ClusterRoleBinding "ops" of ClusterRole "edit" to User "mallory""#;
    std::fs::write(&body, event_list(reason)).unwrap();

    // Anyone on the network, without the API server's certificate or token.
    assert_eq!(post(&r, &[], &body), 401, "no credentials");
    assert_eq!(
        post(&r, &["-H", "Authorization: Bearer not-the-token"], &body),
        401,
        "wrong token"
    );
    // A client certificate from another CA does not even finish the handshake.
    assert_eq!(
        post(&r, &["--cert", "intruder.crt", "--key", "intruder.key"], &body),
        0,
        "foreign client certificate"
    );
    std::thread::sleep(Duration::from_millis(200));
    assert!(r.state.is_empty(), "refused posts must leave no usage behind");
    assert_eq!(refused(&r, "Unauthenticated"), 2);
    assert_eq!(refused(&r, "Handshake"), 1);

    // The API server: by client certificate, or by the token of its webhook kubeconfig.
    assert_eq!(
        post(&r, &["--cert", "apiserver.crt", "--key", "apiserver.key"], &body),
        200
    );
    assert_eq!(
        post(&r, &["-H", &format!("Authorization: Bearer {TOKEN}")], &body),
        200
    );
    assert_eq!(r.state.len(), 1);
}

#[test]
fn a_hostile_reason_or_an_oversized_batch_cannot_crash_or_misattribute() {
    let r = start();
    let auth = format!("Authorization: Bearer {TOKEN}");
    // A tenant's RoleBinding named to read like a cluster-admin grant to bob.
    let name = r#"x" of ClusterRole "cluster-admin" to User "bob"#;
    let reason = format!(
        "RBAC: allowed by RoleBinding {} of Role \"reader\" to User \"mallory\"",
        go_quote(&format!("{name}/tenant"))
    );
    let body = r.pki.join("hostile.json");
    std::fs::write(&body, event_list(&reason)).unwrap();
    assert_eq!(post(&r, &["-H", &auth], &body), 200);
    let book = r.state.snapshot();
    let pairs = book.pairs();
    assert_eq!(pairs.len(), 1);
    let (key, _) = pairs[0];
    assert_eq!(
        key,
        &PairKey {
            binding: BindingRef {
                kind: gatehouse::api::BindingKind::RoleBinding,
                namespace: Some("tenant".into()),
                name: name.into()
            },
            subject: gatehouse::api::Subject {
                kind: gatehouse::api::SubjectKind::User,
                name: "mallory".into(),
                namespace: None
            }
        }
    );

    // A body over the limit is refused whole; garbage is counted, never fatal.
    let big = r.pki.join("big.json");
    std::fs::write(&big, vec![b' '; 40 << 20]).unwrap();
    assert_eq!(post(&r, &["-H", &auth], &big), 413);
    let garbage = r.pki.join("garbage.json");
    std::fs::write(
        &garbage,
        b"{\"kind\":\"EventList\",\"items\":[{\"verb\":5},\"x\",{\"stage\":[]}]}\n\x00\xff not json",
    )
    .unwrap();
    assert_eq!(post(&r, &["-H", &auth], &garbage), 200);
    assert_eq!(r.state.snapshot().malformed, 4);
    assert_eq!(post(&r, &["-H", &auth], &body), 200, "still serving");
}
