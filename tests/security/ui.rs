//! The review desk (`kubectl gatehouse ui`, issue 27): a local web server that
//! acts with the user's own credentials. Any page open in the user's browser can
//! make the browser send it requests, and a DNS-rebinding page can even make them
//! look same-origin; none of them may read the user's queue or decide for them.
//! And what the desk writes is the user's own write, judged as such.

use gatehouse::api::{AccessReview, Phase};
use kube::api::{Api, ListParams};
use serde_json::json;

use crate::support::{
    desk::{raw, Desk},
    scene::Scene,
};

/// Header lines as sent.
type Headers = Vec<(String, String)>;

#[tokio::test]
async fn the_desk_refuses_other_origins_rebound_hosts_and_calls_without_its_secret() {
    let Some(scene) = Scene::shared("ui-door").await else {
        return;
    };
    let req = scene.request("door-view", "1h").await;
    scene.phase_becomes("door-view", Phase::Pending).await;
    let bob = Desk::start(&scene.user_kubeconfig("bob", &["sre"]), &scene.ns);
    let host = ("Host".to_string(), format!("127.0.0.1:{}", bob.port));
    let secret = ("X-Gatehouse-Secret".to_string(), bob.secret.clone());
    let json_type = ("Content-Type".to_string(), "application/json".to_string());

    // The page itself, with its secret, sees the queue.
    let own = bob.get("/api/queue").await;
    assert_eq!(own.status, 200, "{own:?}");
    assert!(own.body.contains("door-view"), "{}", own.body);

    let attempts: Vec<(&str, &str, Headers)> = vec![
        ("no secret", "/api/queue", vec![host.clone()]),
        (
            "a wrong secret",
            "/api/queue",
            vec![host.clone(), ("X-Gatehouse-Secret".into(), "0".repeat(64))],
        ),
        (
            "the secret in the query instead of the header",
            &*Box::leak(format!("/api/queue?secret={}", bob.secret).into_boxed_str()),
            vec![host.clone()],
        ),
        (
            "a rebound host name",
            "/api/queue",
            vec![
                ("Host".into(), format!("evil.example:{}", bob.port)),
                secret.clone(),
            ],
        ),
        (
            "another origin",
            "/api/queue",
            vec![
                host.clone(),
                secret.clone(),
                ("Origin".into(), "http://evil.example".into()),
            ],
        ),
        (
            "a cross-site fetch",
            "/api/queue",
            vec![
                host.clone(),
                secret.clone(),
                ("Sec-Fetch-Site".into(), "cross-site".into()),
            ],
        ),
    ];
    for (what, path, headers) in &attempts {
        let a = raw(bob.port, "GET", path, headers, None).await;
        assert_eq!(a.status, 403, "{what}: {a:?}");
        assert!(!a.body.contains("door-view"), "{what} read the queue: {}", a.body);
        assert!(a.header("access-control-allow-origin").is_none(), "{what}: {a:?}");
    }
    // A rebound host is refused even for the page's static files.
    let page = raw(
        bob.port,
        "GET",
        "/",
        &[("Host".into(), format!("evil.example:{}", bob.port))],
        None,
    )
    .await;
    assert_eq!(page.status, 403, "{page:?}");

    // A preflight from another origin is never approved.
    let preflight = raw(
        bob.port,
        "OPTIONS",
        "/api/review",
        &[
            host.clone(),
            ("Origin".into(), "http://evil.example".into()),
            ("Access-Control-Request-Method".into(), "POST".into()),
            (
                "Access-Control-Request-Headers".into(),
                "x-gatehouse-secret,content-type".into(),
            ),
        ],
        None,
    )
    .await;
    assert!(
        preflight.header("access-control-allow-origin").is_none(),
        "{preflight:?}"
    );
    assert_ne!(preflight.status / 100, 2, "{preflight:?}");

    // Writes: without the secret, as a form post, or as a GET.
    let approve = json!({"namespace": scene.ns, "name": "door-view", "decision": "Approve"}).to_string();
    let writes: Vec<(&str, &str, Headers)> = vec![
        (
            "a POST without the secret",
            "POST",
            vec![host.clone(), json_type.clone()],
        ),
        (
            "a form-like POST",
            "POST",
            vec![
                host.clone(),
                secret.clone(),
                ("Content-Type".into(), "text/plain".into()),
            ],
        ),
        (
            "a GET",
            "GET",
            vec![host.clone(), secret.clone(), json_type.clone()],
        ),
        (
            "a POST from another origin",
            "POST",
            vec![
                host.clone(),
                secret.clone(),
                json_type.clone(),
                ("Origin".into(), "http://evil.example".into()),
            ],
        ),
    ];
    for (what, method, headers) in &writes {
        let a = raw(bob.port, method, "/api/review", headers, Some(&approve)).await;
        assert!(a.status == 403 || a.status == 405, "{what}: {a:?}");
    }
    let reviews = Api::<AccessReview>::namespaced(scene.admin.clone(), &scene.ns)
        .list(&ListParams::default())
        .await
        .unwrap();
    assert!(
        reviews.items.is_empty(),
        "a refused call wrote a review: {:?}",
        reviews.items
    );
    let still = scene.requests(&scene.admin).get("door-view").await.unwrap();
    assert_eq!(still.status.map(|s| s.phase), Some(Phase::Pending));
    drop(req);
    drop(bob);
    scene.finish().await;
}

#[tokio::test]
async fn the_desk_writes_as_its_user_and_shows_the_refusal_of_a_self_approval() {
    let Some(scene) = Scene::shared("ui-identity").await else {
        return;
    };
    scene.request("mine-view", "1h").await;
    scene.phase_becomes("mine-view", Phase::Pending).await;
    let alice = Desk::start(&scene.user_kubeconfig("alice", &["developers"]), &scene.ns);
    let me = alice.get("/api/me").await.json();
    assert_eq!(me["username"], "alice", "{me}");

    // Her own approval: written as alice, refused, and the page gets one line saying why.
    let said = alice
        .post(
            "/api/review",
            &json!({"namespace": scene.ns, "name": "mine-view", "decision": "Approve"}),
        )
        .await;
    assert_eq!(said.status, 200, "{said:?}");
    let said = said.json();
    let line = said["line"].as_str().unwrap();
    assert!(line.contains("Not accepted: SelfApproval"), "{said}");
    assert!(!line.contains('\n'), "{line}");
    let review = said["review"].as_str().unwrap();
    let written = Api::<AccessReview>::namespaced(scene.admin.clone(), &scene.ns)
        .get(review)
        .await
        .unwrap();
    assert_eq!(written.spec.reviewer.username, "alice");
    // Her queue never offers it.
    let queue = alice.get("/api/queue").await.json();
    assert_eq!(queue["requests"], json!([]), "{queue}");

    // bob's desk approves as bob, and the operator grants.
    let bob = Desk::start(&scene.user_kubeconfig("bob", &["sre"]), &scene.ns);
    let said = bob
        .post(
            "/api/review",
            &json!({"namespace": scene.ns, "name": "mine-view", "decision": "Approve", "comment": "ok"}),
        )
        .await
        .json();
    assert_eq!(said["verdict"]["accepted"], true, "{said}");
    let written = Api::<AccessReview>::namespaced(scene.admin.clone(), &scene.ns)
        .get(said["review"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(written.spec.reviewer.username, "bob");
    scene.phase_becomes("mine-view", Phase::Active).await;
    drop((alice, bob));
    scene.finish().await;
}
