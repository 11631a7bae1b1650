//! Issue 22, items 1 and 7: names, reasons and roles a tenant chooses, reaching
//! an admin's shell, a reviewer's terminal, an auditor's spreadsheet, and the
//! recommendation `certify approve --all-recommended` trusts.
//!
//! The certification scenarios run on the shared operator, which removes
//! nothing itself (`--certification-remediation` is off): every revoked item
//! carries the command an admin is told to run.

use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use gatehouse::api::{AccessCampaign, AccessCertification, AccessReview, ApprovalRequest};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::{
    api::{Api, DeleteParams, ListParams, PostParams},
    ResourceExt,
};
use serde_json::{json, Value};

use crate::support::{
    cluster::eventually,
    scene::{PluginUser, Scene},
    tools,
};

const WAIT: Duration = Duration::from_secs(60);
const LABEL: &str = "gh-security-shell";

/// A RoleBinding in the scene's namespace, labelled for its campaign.
async fn binding(scene: &Scene, name: &str, role: (&str, &str), subject: &str) -> RoleBinding {
    let rb: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {LABEL: scene.ns}},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role.0, "name": role.1},
        "subjects": [{"kind": "User", "name": subject, "apiGroup": "rbac.authorization.k8s.io"}]
    }))
    .unwrap();
    Api::<RoleBinding>::namespaced(scene.admin.clone(), &scene.ns)
        .create(&PostParams::default(), &rb)
        .await
        .unwrap()
}

/// A one-level campaign (group `security`) over the scene's labelled bindings,
/// its items in the scene's namespace; returns its name once it launched `items`.
async fn campaign(scene: &Scene, items: u32) -> String {
    let name = format!("{}-c", scene.ns);
    let c: AccessCampaign = serde_json::from_value(json!({
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "AccessCampaign",
        "metadata": {"name": name},
        "spec": {"duration": "1h", "reviewNamespace": scene.ns,
                 "scope": {"bindingSelector": {"matchLabels": {LABEL: scene.ns}}},
                 "reviewers": {"levels": [{"name": "security", "groups": ["security"]}]}}
    }))
    .unwrap();
    let api = Api::<AccessCampaign>::all(scene.admin.clone());
    api.create(&PostParams::default(), &c).await.unwrap();
    eventually(&format!("{name} to launch {items} items"), WAIT, || async {
        let run = api.get(&name).await.ok()?.status?.runs.last().cloned()?;
        run.launched_at?;
        (run.items == items).then_some(())
    })
    .await;
    name
}

/// The campaign's item for `subject`, once the operator has written its status.
async fn item(scene: &Scene, campaign: &str, subject: &str) -> AccessCertification {
    let api = Api::<AccessCertification>::namespaced(scene.admin.clone(), &scene.ns);
    let label = format!("gatehouse.dev/campaign={campaign}");
    eventually(&format!("the item of {subject}"), WAIT, || async {
        let list = api.list(&ListParams::default().labels(&label)).await.ok()?;
        list.items
            .into_iter()
            // Evaluated, not only issued: the first status write is the issued
            // digest alone, and an unevaluated status reads as the defaults.
            .find(|i| {
                i.spec.subject.name == subject && i.status.as_ref().is_some_and(|s| !s.levels.is_empty())
            })
    })
    .await
}

async fn finish(scene: Scene, campaign: &str) {
    let _ = Api::<AccessCampaign>::all(scene.admin.clone())
        .delete(campaign, &DeleteParams::default())
        .await;
    scene.finish().await;
}

/// An admin with the plugin (for `certify status` and `report`).
fn admin_plugin(scene: &Scene) -> PluginUser {
    scene.plugin_user("gh-security-admin", &["system:masters"])
}

/// What a recording `kubectl`, first on PATH, received when bash ran `line`
/// in an empty directory: its arguments, and the files the line left there
/// besides the recording.
fn run_with_recording_kubectl(line: &str) -> (Vec<String>, Vec<String>) {
    let dir = std::env::temp_dir().join(format!(
        "gh-security-shell-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    let bin = dir.join("bin");
    let work = dir.join("work");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    let stub = bin.join("kubectl");
    std::fs::write(
        &stub,
        "#!/bin/sh\nprintf '%s\\0' \"$@\" > \"$GH_RECORD\"\ncat > /dev/null\n",
    )
    .unwrap();
    std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755)).unwrap();
    let record = dir.join("argv");
    let _ = Command::new("bash")
        .args(["-c", line])
        .current_dir(&work)
        .env(
            "PATH",
            format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default()),
        )
        .env("GH_RECORD", &record)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let recorded = std::fs::read(&record).unwrap_or_default();
    let mut argv: Vec<String> = recorded
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    argv.pop();
    let left: Vec<String> = std::fs::read_dir(&work)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    (argv, left)
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

fn percent_decoded(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match (
            b[i],
            s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok()),
        ) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The command a single-subject binding's removal must be: the delete of
/// exactly that binding's path, the name intact once decoded.
fn assert_deletes_exactly(line: &str, ns: &str, name: &str) {
    let (argv, left) = run_with_recording_kubectl(line);
    assert!(
        left.is_empty(),
        "running {line:?} made {left:?}: the binding name ran as shell"
    );
    assert_eq!(argv.len(), 5, "{line:?} gave kubectl {argv:?}");
    assert_eq!(&argv[..2], ["delete", "--raw"], "{argv:?}");
    assert_eq!(&argv[3..], ["-f", "-"], "{argv:?}");
    assert_eq!(
        percent_decoded(&argv[2]),
        format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings/{name}"),
        "{argv:?}"
    );
}

#[tokio::test]
async fn a_binding_name_cannot_inject_into_the_remediation_command() {
    let Some(scene) = Scene::shared("sec-shell-inj").await else {
        return;
    };
    let name = "gh-inj;touch${IFS}gh-pwned;true";
    binding(&scene, name, ("ClusterRole", "view"), "mallory").await;
    let campaign = campaign(&scene, 1).await;
    let it = item(&scene, &campaign, "mallory").await;
    assert_eq!(it.spec.binding.name, name);

    // security revokes; the operator may not remove it itself: it says how.
    let sam = scene.cluster.as_user("sam", &["security"]);
    let review: AccessReview = serde_json::from_value(json!({
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "AccessReview",
        "metadata": {"name": "sam-revoke", "namespace": scene.ns},
        "spec": {"certification": {"name": it.name_any(), "uid": it.uid().unwrap()}, "decision": "Revoke",
                 "reviewer": {"username": "sam", "groups": ["security", "system:authenticated"]},
                 "comment": "tenant binding"}
    }))
    .unwrap();
    Api::<AccessReview>::namespaced(sam, &scene.ns)
        .create(&PostParams::default(), &review)
        .await
        .unwrap();
    let items = Api::<AccessCertification>::namespaced(scene.admin.clone(), &scene.ns);
    let command = eventually("the remediation command", WAIT, || async {
        let i = items.get(&it.name_any()).await.ok()?;
        i.status?.remediation?.command
    })
    .await;

    // As the docs say: an admin runs status.remediation.command.
    assert_deletes_exactly(&command, &scene.ns, name);

    // And what `kubectl gatehouse certify status` prints.
    let (code, out) = admin_plugin(&scene).run_args(&["certify", "status", &it.name_any(), "-n", &scene.ns]);
    assert_eq!(code, Some(0), "{out}");
    let printed = out
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("run: "))
        .unwrap_or_else(|| panic!("certify status prints the command: {out}"));
    assert_deletes_exactly(printed, &scene.ns, name);

    // The command works: with the real kubectl it removes that binding.
    let ran = Command::new("bash")
        .args(["-c", &command])
        .env("KUBECONFIG", &scene.cluster.kubeconfig)
        .env(
            "PATH",
            format!(
                "{}:{}",
                tools::bin_dir().display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .output()
        .unwrap();
    assert!(
        ran.status.success(),
        "{command}: {}",
        String::from_utf8_lossy(&ran.stderr)
    );
    assert!(
        scene.binding(name).await.is_none(),
        "{command} removed the binding"
    );
    finish(scene, &campaign).await;
}

/// Whether any byte a terminal would act on is in `out`: ESC starts escape
/// sequences (OSC 52 writes the clipboard, CSI 2J clears the screen), BEL ends
/// OSC, C1 CSI (U+009B) is an ESC [ some terminals honour.
fn terminal_controls(out: &str) -> Vec<char> {
    out.chars()
        .filter(|c| matches!(c, '\x1b' | '\x07' | '\u{9b}' | '\u{9d}' | '\r'))
        .collect()
}

#[tokio::test]
async fn a_reason_cannot_reach_the_terminal_as_escape_sequences() {
    let Some(scene) = Scene::shared("sec-shell-term").await else {
        return;
    };
    let reason = "debugging\x1b]52;c;aGk=\x07 checkout\x1b[2J\x1b[Hall fine";
    let r: ApprovalRequest = serde_json::from_value(json!({
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "ApprovalRequest",
        "metadata": {"name": "osc52", "namespace": scene.ns},
        "spec": {"requester": {"username": "alice", "groups": ["developers"]},
                 "role": {"kind": "ClusterRole", "name": "view"}, "duration": "1h", "reason": reason}
    }))
    .unwrap();
    scene
        .requests(&scene.alice)
        .create(&PostParams::default(), &r)
        .await
        .unwrap();
    let stored = scene.requests(&scene.admin).get("osc52").await.unwrap();
    assert_eq!(
        stored.spec.reason.as_deref(),
        Some(reason),
        "the API server keeps it"
    );

    let alice = scene.plugin_user("alice", &["developers"]);
    let bob = scene.plugin_user("bob", &["sre"]);
    let ns = scene.ns.clone();
    for (who, args) in [
        (&alice, vec!["status", "osc52", "-n", &ns]),
        (&alice, vec!["list", "-n", &ns]),
        (&bob, vec!["pending", "-n", &ns]),
    ] {
        let out =
            eventually("the request in the plugin's output", WAIT, || {
                let (code, out) = who.run_args(&args);
                async move {
                    (code == Some(0) && out.contains("osc52") && out.contains("52;c;aGk=")).then_some(out)
                }
            })
            .await;
        assert_eq!(
            terminal_controls(&out),
            Vec::<char>::new(),
            "kubectl gatehouse {}: {out:?}",
            args.join(" ")
        );
    }
    scene.finish().await;
}

/// A minimal RFC 4180 reader: rows of cells.
fn csv_rows(text: &str) -> Vec<Vec<String>> {
    let mut rows = vec![];
    let mut row = vec![];
    let mut cell = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cell.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut cell)),
            (false, '\r') if chars.peek() == Some(&'\n') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => cell.push(c),
        }
    }
    rows
}

#[tokio::test]
async fn a_report_cell_cannot_be_a_spreadsheet_formula() {
    let Some(scene) = Scene::shared("sec-shell-csv").await else {
        return;
    };
    let name = "=HYPERLINK(\"https:evil.example\",\"ok\")";
    binding(&scene, name, ("ClusterRole", "view"), "@SUM(1+1)*cmd").await;
    let campaign = campaign(&scene, 1).await;
    item(&scene, &campaign, "@SUM(1+1)*cmd").await;

    let kubeconfig: PathBuf = scene.user_kubeconfig("gh-security-admin", &["system:masters"]);
    let out = Command::new(env!("CARGO_BIN_EXE_kubectl-gatehouse"))
        .args(["certify", "report", &campaign, "-o", "csv"])
        .env("KUBECONFIG", Path::new(&kubeconfig))
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let rows = csv_rows(&stdout);
    let header = &rows[0];
    let col = |n: &str| header.iter().position(|h| h == n).unwrap();
    let row = rows
        .iter()
        .find(|r| r.get(col("binding")).is_some_and(|b| b.contains("HYPERLINK")))
        .unwrap_or_else(|| panic!("the binding's row: {stdout}"));
    assert_eq!(row[col("binding")], format!("'{name}"), "{stdout}");
    assert_eq!(row[col("subject")], "'@SUM(1+1)*cmd", "{stdout}");
    for r in &rows {
        for cell in r {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "a cell a spreadsheet runs: {cell:?}"
            );
        }
    }
    // The digest is of exactly what was written.
    let digest = gatehouse::cli::certify_report::sha256(&out.stdout);
    assert!(stderr.contains(&digest), "{stderr} vs {digest}");
    finish(scene, &campaign).await;
}

#[tokio::test]
async fn ephemeral_containers_are_not_recommended_for_acceptance() {
    let Some(scene) = Scene::shared("sec-shell-risk").await else {
        return;
    };
    let role: Role = serde_json::from_value(json!({
        "metadata": {"name": "debugger"},
        "rules": [{"apiGroups": [""], "resources": ["pods/ephemeralcontainers"], "verbs": ["update"]},
                  {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]
    }))
    .unwrap();
    Api::<Role>::namespaced(scene.admin.clone(), &scene.ns)
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    binding(&scene, "debuggers", ("Role", "debugger"), "dan").await;
    let campaign = campaign(&scene, 1).await;
    let it = item(&scene, &campaign, "dan").await;
    let status = it.status.unwrap();
    assert!(
        status
            .recommendation
            .is_some_and(|r| r != gatehouse::api::Recommendation::Accept),
        "update on pods/ephemeralcontainers runs any command in a pod: {:?} {:?}",
        status.recommendation,
        status.reasons
    );
    let risk: Vec<Value> = status
        .risk
        .iter()
        .map(|t| serde_json::to_value(t).unwrap())
        .collect();
    assert!(risk.contains(&json!("PodExec")), "{risk:?}");
    finish(scene, &campaign).await;
}
