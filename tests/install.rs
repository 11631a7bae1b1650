//! The two ways to install Gatehouse, the Helm chart (`charts/gatehouse/`) and
//! kustomize (`config/default`): the generated files are what the binary writes,
//! the chart lints and refuses bad values, its optional objects follow their
//! values, both paths render the same objects, the chart's RBAC is what
//! `gatehouse rbac` prints, and (with `GATEHOUSE_E2E_KUBECONFIG`) a real API
//! server accepts every rendered object and the pods pass Pod Security "restricted".

mod support;

use std::collections::BTreeMap;

use gatehouse::{
    install::{generated_files, CHART_GENERATED, GENERATED_DIRS},
    rbac::{operator_rbac, GrantableRole, RbacOptions},
};
use serde_json::{json, Value};
use support::{
    cluster,
    tools::{self, chart_objects, documents, repo, run},
};

const NS: &str = "gatehouse-system";

#[test]
fn generated_files_are_what_the_binary_writes() {
    let hint = "regenerate with: cargo run -- manifests";
    let files = generated_files().unwrap();
    for file in &files {
        let on_disk = std::fs::read_to_string(repo().join(&file.path))
            .unwrap_or_else(|e| panic!("{}: {e}; {hint}", file.path));
        assert!(on_disk == file.contents, "{} is out of date; {hint}", file.path);
    }
    for dir in GENERATED_DIRS {
        for entry in std::fs::read_dir(repo().join(dir)).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                continue;
            }
            let path = format!("{dir}/{}", entry.file_name().to_string_lossy());
            assert!(
                files.iter().any(|f| f.path == path),
                "{path} is not generated: {dir}/ holds only what `gatehouse manifests` writes"
            );
        }
    }
    for path in CHART_GENERATED {
        assert!(files.iter().any(|f| f.path == path), "{path}");
    }
}

#[test]
fn the_chart_version_follows_the_crate() {
    let text = std::fs::read_to_string(repo().join("charts/gatehouse/Chart.yaml")).unwrap();
    let chart: Value = serde_saphyr::from_str(&text).unwrap();
    assert_eq!(chart["appVersion"], env!("CARGO_PKG_VERSION"));
    assert_eq!(chart["version"], env!("CARGO_PKG_VERSION"));
}

fn kind(o: &Value) -> &str {
    o["kind"].as_str().unwrap_or_default()
}

fn name(o: &Value) -> &str {
    o["metadata"]["name"].as_str().unwrap_or_default()
}

fn of_kind<'a>(objects: &'a [Value], k: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| kind(o) == k).collect()
}

fn the<'a>(objects: &'a [Value], k: &str, n: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| kind(o) == k && name(o) == n)
        .unwrap_or_else(|| panic!("no {k} {n}"))
}

#[test]
fn helm_lint_passes_with_default_and_non_default_values() {
    for args in [
        vec!["lint", "--strict", "charts/gatehouse"],
        vec![
            "lint",
            "--strict",
            "charts/gatehouse",
            "--values",
            "charts/gatehouse/ci/non-default-values.yaml",
            "--kube-version",
            "1.37.0",
        ],
    ] {
        let out = run("helm", &args, None);
        assert!(
            out.ok && out.stdout.contains("1 chart(s) linted, 0 chart(s) failed"),
            "helm {}:\n{}{}",
            args.join(" "),
            out.stdout,
            out.stderr
        );
        assert!(!out.stdout.contains("[WARNING]"), "{}", out.stdout);
    }
}

#[test]
fn wrong_values_are_refused_with_a_readable_message() {
    let dir = std::env::temp_dir().join(format!("gatehouse-values-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases = [
        ("replicas: \"two\"\n", "at '/replicas': got string, want integer"),
        ("replicas: 0\n", "at '/replicas'"),
        (
            "grantableRoles: []\n",
            "at '/grantableRoles': minItems: got 0, want 1",
        ),
        (
            "grantableRoles: ['*']\n",
            "at '/grantableRoles/0': '*' does not match pattern",
        ),
        ("grantableRoles: [Group/admins]\n", "at '/grantableRoles/0'"),
        ("replica: 3\n", "additional properties 'replica' not allowed"),
        ("logFormat: xml\n", "at '/logFormat'"),
        ("sweepInterval: soon\n", "at '/sweepInterval'"),
        (
            "crds: {install: \"yes\"}\n",
            "at '/crds/install': got string, want boolean",
        ),
        (
            "replicas: 3\nleaderElection: false\n",
            "at '/leaderElection': value must be true",
        ),
    ];
    for (i, (values, expected)) in cases.iter().enumerate() {
        let file = dir.join(format!("{i}.yaml"));
        std::fs::write(&file, values).unwrap();
        let file = file.to_string_lossy().into_owned();
        for cmd in [
            vec!["template", "gatehouse", "charts/gatehouse", "--values", &file],
            vec!["lint", "charts/gatehouse", "--values", &file],
        ] {
            let out = run("helm", &cmd, None);
            assert!(!out.ok, "helm {} accepted {values:?}", cmd[0]);
            let said = format!("{}{}", out.stdout, out.stderr);
            assert!(
                said.contains(expected),
                "helm {} on {values:?} should say {expected:?}, said:\n{said}",
                cmd[0]
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Removes what only Helm adds (its bookkeeping labels and the keep annotation),
/// so the chart's objects can be compared with kustomize's.
fn without_helm_metadata(mut o: Value) -> Value {
    let meta = &mut o["metadata"];
    if let Some(labels) = meta.get_mut("labels").and_then(Value::as_object_mut) {
        for key in [
            "helm.sh/chart",
            "app.kubernetes.io/instance",
            "app.kubernetes.io/version",
        ] {
            labels.remove(key);
        }
        if labels.get("app.kubernetes.io/managed-by") == Some(&json!("Helm")) {
            labels.remove("app.kubernetes.io/managed-by");
        }
    }
    if let Some(annotations) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
        annotations.remove("helm.sh/resource-policy");
        if annotations.is_empty() {
            meta.as_object_mut().unwrap().remove("annotations");
        }
    }
    o
}

/// `100.0` and `100` are the same JSON number, but not the same `Value`: the
/// chart copies the CRDs' text (`maximum: 100.0`), kustomize writes `100`.
fn integral_numbers(v: &mut Value) {
    match v {
        Value::Number(n) => {
            if let Some(f) = n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9e15) {
                *v = json!(f as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_numbers),
        Value::Object(map) => map.values_mut().for_each(integral_numbers),
        _ => {}
    }
}

fn by_identity(objects: Vec<Value>) -> BTreeMap<String, Value> {
    let mut map = BTreeMap::new();
    for mut o in objects {
        integral_numbers(&mut o);
        let key = format!(
            "{} {} {}/{}",
            o["apiVersion"].as_str().unwrap_or_default(),
            kind(&o),
            o["metadata"]["namespace"].as_str().unwrap_or("-"),
            name(&o)
        );
        assert!(map.insert(key.clone(), o).is_none(), "{key} twice");
    }
    map
}

#[test]
fn the_chart_and_config_default_install_the_same_objects() {
    let chart = by_identity(
        chart_objects(NS, &[])
            .into_iter()
            .map(without_helm_metadata)
            .collect(),
    );
    let out = run("kubectl", &["kustomize", "config/default"], None);
    assert!(out.ok, "kubectl kustomize config/default:\n{}", out.stderr);
    let mut kustomize = by_identity(documents(&out.stdout));
    // The one legitimate difference: kustomize creates the namespace (with Pod
    // Security "restricted" enforced), Helm gets it from `--create-namespace`.
    let namespace = kustomize
        .remove(&format!("v1 Namespace -/{NS}"))
        .expect("config/default creates its namespace");
    assert_eq!(
        namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "restricted"
    );
    let only_chart: Vec<&String> = chart.keys().filter(|k| !kustomize.contains_key(*k)).collect();
    let only_kustomize: Vec<&String> = kustomize.keys().filter(|k| !chart.contains_key(*k)).collect();
    assert!(
        only_chart.is_empty() && only_kustomize.is_empty(),
        "only in the chart: {only_chart:?}\nonly in config/default: {only_kustomize:?}"
    );
    for (key, from_chart) in &chart {
        let from_kustomize = &kustomize[key];
        assert!(
            from_chart == from_kustomize,
            "{key} differs\nchart:\n{}\nconfig/default:\n{}",
            serde_json::to_string_pretty(from_chart).unwrap(),
            serde_json::to_string_pretty(from_kustomize).unwrap()
        );
    }
    // The objects that matter are all there (so the comparison above compared them).
    for kind_name in [
        "apps/v1 Deployment gatehouse-system/gatehouse",
        "rbac.authorization.k8s.io/v1 ClusterRole -/gatehouse-operator",
        "admissionregistration.k8s.io/v1 ValidatingAdmissionPolicy -/gatehouse-requester-identity",
        "apiextensions.k8s.io/v1 CustomResourceDefinition -/approvalrequests.gatehouse.dev",
    ] {
        assert!(chart.contains_key(kind_name), "{kind_name}");
    }
}

fn rust_rbac(opts: &RbacOptions) -> Vec<Value> {
    let o = operator_rbac(opts).unwrap();
    vec![
        serde_json::to_value(&o.service_account).unwrap(),
        serde_json::to_value(&o.cluster_role).unwrap(),
        serde_json::to_value(&o.cluster_role_binding).unwrap(),
        serde_json::to_value(&o.leader_election_role).unwrap(),
        serde_json::to_value(&o.leader_election_binding).unwrap(),
        serde_json::to_value(&o.notifications_role).unwrap(),
        serde_json::to_value(&o.notifications_binding).unwrap(),
        serde_json::to_value(&o.usage_role).unwrap(),
        serde_json::to_value(&o.usage_binding).unwrap(),
    ]
}

#[test]
fn the_charts_rbac_is_what_gatehouse_rbac_generates() {
    let variants: [(&str, bool, Vec<GrantableRole>); 3] = [
        (
            r#"["view","edit"]"#,
            false,
            vec![
                GrantableRole::ClusterRole("view".into()),
                GrantableRole::ClusterRole("edit".into()),
            ],
        ),
        (
            r#"["view","ClusterRole/admin","Role/deployer","system:aggregate-to-view"]"#,
            true,
            vec![
                GrantableRole::ClusterRole("view".into()),
                GrantableRole::ClusterRole("admin".into()),
                GrantableRole::Role("deployer".into()),
                GrantableRole::ClusterRole("system:aggregate-to-view".into()),
            ],
        ),
        (
            r#"["Role/deployer","Role/deployer","view","ClusterRole/view"]"#,
            false,
            vec![
                GrantableRole::Role("deployer".into()),
                GrantableRole::ClusterRole("view".into()),
            ],
        ),
    ];
    let secret_names = [r#"[]"#, r#"["slack-sre","audit-hook"]"#, r#"["hook"]"#];
    let usage_namespaces = [None, Some("usage-evidence"), None];
    for ((((roles, cluster_scope, grantable_roles), remediation), secrets), usage_namespace) in variants
        .into_iter()
        .zip([false, true, true])
        .zip(secret_names)
        .zip(usage_namespaces)
    {
        let channel_secrets: Vec<String> = serde_json::from_str(secrets).unwrap();
        let opts = RbacOptions {
            grantable_roles,
            cluster_scope,
            namespace: "security".into(),
            service_account: "gatehouse".into(),
            certification_remediation: remediation,
            channel_secrets,
            usage_namespace: usage_namespace.map(String::from),
        };
        let set_usage = format!("usage.namespace={}", usage_namespace.unwrap_or_default());
        let set_roles = format!("grantableRoles={roles}");
        let set_scope = format!("clusterScope={cluster_scope}");
        let set_remediation = format!("certification.remediation={remediation}");
        let set_secrets = format!("notifications.secretNames={secrets}");
        let rendered: Vec<Value> = chart_objects(
            "security",
            &[
                "--show-only",
                "templates/rbac.yaml",
                "--set-json",
                &set_roles,
                "--set",
                &set_scope,
                "--set",
                &set_remediation,
                "--set-json",
                &set_secrets,
                "--set",
                &set_usage,
            ],
        )
        .into_iter()
        .map(without_helm_metadata)
        .collect();
        assert_eq!(
            by_identity(rendered),
            by_identity(rust_rbac(&opts)),
            "grantableRoles={roles} clusterScope={cluster_scope} certification.remediation={remediation} {set_secrets} {set_usage}"
        );
    }
}

#[test]
fn the_deployment_is_restricted_probed_and_elected() {
    let objects = chart_objects(NS, &[]);
    let d = the(&objects, "Deployment", "gatehouse");
    assert_eq!(d["spec"]["replicas"], 2);
    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "gatehouse");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
    let c = &pod["containers"][0];
    let args: Vec<&str> = c["args"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(args[0], "run");
    assert!(args.contains(&"--leader-election=true"), "{args:?}");
    assert!(args.contains(&"--http-addr=0.0.0.0:8080"), "{args:?}");
    assert_eq!(c["image"], format!("gatehouse:{}", env!("CARGO_PKG_VERSION")));
    let sc = &c["securityContext"];
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["livenessProbe"]["httpGet"]["port"], "http");
    assert_eq!(c["ports"][0]["containerPort"], 8080);
    for (kind, what) in [("requests", "cpu"), ("requests", "memory"), ("limits", "memory")] {
        assert!(c["resources"][kind][what].is_string(), "resources.{kind}.{what}");
    }
    let env: Vec<&str> = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert_eq!(env, ["POD_NAME", "POD_NAMESPACE"]);
    // The metrics Service points at the same port.
    let svc = the(&objects, "Service", "gatehouse-metrics");
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], "http");
    assert_eq!(svc["spec"]["selector"], d["spec"]["selector"]["matchLabels"]);
}

#[test]
fn the_audit_webhook_receiver_is_off_by_default_and_wired_when_enabled() {
    let args_of = |objects: &[Value]| -> Vec<String> {
        let d = the(objects, "Deployment", "gatehouse");
        d["spec"]["template"]["spec"]["containers"][0]["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect()
    };
    let defaults = chart_objects(NS, &[]);
    assert!(!of_kind(&defaults, "Service")
        .iter()
        .any(|s| name(s) == "gatehouse-audit"));
    assert!(!args_of(&defaults).iter().any(|a| a.starts_with("--audit")));

    let on = chart_objects(
        NS,
        &[
            "--set",
            "usage.auditWebhook.enabled=true",
            "--set",
            "usage.auditWebhook.tlsSecret=audit-tls",
            "--set",
            "usage.auditWebhook.clientCASecret=apiserver-client-ca",
            "--set",
            "usage.auditWebhook.tokenSecret=audit-token",
            "--set",
            "usage.namespace=usage-evidence",
            "--set",
            "usage.flushInterval=2m",
        ],
    );
    let service = the(&on, "Service", "gatehouse-audit");
    assert_eq!(service["spec"]["ports"][0]["port"], 443);
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "audit");
    // One API server's batches stick to one replica: a binding's counts are
    // written by one replica per flush interval, not by each.
    assert_eq!(service["spec"]["sessionAffinity"], "ClientIP");
    let pod = &the(&on, "Deployment", "gatehouse")["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert!(container["ports"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == "audit" && p["containerPort"] == 8443));
    let args = args_of(&on);
    for expected in [
        "--audit-webhook-addr=0.0.0.0:8443",
        "--audit-tls-cert=/etc/gatehouse/audit-tls/tls.crt",
        "--audit-tls-key=/etc/gatehouse/audit-tls/tls.key",
        "--audit-client-ca=/etc/gatehouse/audit-client-ca/ca.crt",
        "--audit-token-file=/etc/gatehouse/audit-token/token",
        "--usage-flush-interval=2m",
        "--usage-namespace=usage-evidence",
    ] {
        assert!(args.iter().any(|a| a == expected), "{expected} in {args:?}");
    }
    // Every file an argument names is a mounted Secret.
    let secrets: Vec<(String, String)> = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            let mount = container["volumeMounts"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["name"] == v["name"])
                .unwrap();
            (
                mount["mountPath"].as_str().unwrap().to_string(),
                v["secret"]["secretName"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for (dir, secret) in [
        ("/etc/gatehouse/audit-tls", "audit-tls"),
        ("/etc/gatehouse/audit-client-ca", "apiserver-client-ca"),
        ("/etc/gatehouse/audit-token", "audit-token"),
    ] {
        assert!(secrets.contains(&(dir.into(), secret.into())), "{secrets:?}");
    }
    // The Role for the summaries follows them to their namespace.
    let role = of_kind(&on, "Role")
        .into_iter()
        .find(|r| name(r) == "gatehouse-usage")
        .unwrap();
    assert_eq!(role["metadata"]["namespace"], "usage-evidence");

    // Refused: no serving certificate, or nothing that says who may post.
    for (values, expected) in [
        (
            vec![
                "usage.auditWebhook.enabled=true",
                "usage.auditWebhook.clientCASecret=ca",
            ],
            "needs usage.auditWebhook.tlsSecret",
        ),
        (
            vec![
                "usage.auditWebhook.enabled=true",
                "usage.auditWebhook.tlsSecret=tls",
            ],
            "anyone could post",
        ),
    ] {
        let mut cmd = vec!["template", "gatehouse", "charts/gatehouse"];
        for v in &values {
            cmd.extend(["--set", v]);
        }
        let out = run("helm", &cmd, None);
        assert!(!out.ok, "{values:?} accepted");
        assert!(out.stderr.contains(expected), "{values:?}: {}", out.stderr);
    }
}

#[test]
fn optional_objects_follow_their_values() {
    let defaults = chart_objects(NS, &[]);
    // CRDs: installed and kept on uninstall.
    let crds = of_kind(&defaults, "CustomResourceDefinition");
    assert_eq!(crds.len(), 7, "six kinds users write, and BindingUsage");
    for crd in crds {
        assert_eq!(crd["metadata"]["annotations"]["helm.sh/resource-policy"], "keep");
    }
    assert!(of_kind(
        &chart_objects(NS, &["--set", "crds.install=false"]),
        "CustomResourceDefinition"
    )
    .is_empty());

    // Validating policies on by default.
    assert_eq!(of_kind(&defaults, "ValidatingAdmissionPolicy").len(), 5);
    assert_eq!(of_kind(&defaults, "ValidatingAdmissionPolicyBinding").len(), 5);
    let off = chart_objects(NS, &["--set", "admission.validating.enabled=false"]);
    assert!(of_kind(&off, "ValidatingAdmissionPolicy").is_empty());
    // Mutating ones by default wherever the cluster serves their v1 API (1.36+);
    // `helm template` without a cluster knows no kinds, so none there.
    assert!(of_kind(&defaults, "MutatingAdmissionPolicy").is_empty());
    let serves = [
        "--api-versions",
        "admissionregistration.k8s.io/v1/MutatingAdmissionPolicy",
    ];
    let on = chart_objects(NS, &serves);
    assert_eq!(of_kind(&on, "MutatingAdmissionPolicy").len(), 2);
    assert_eq!(of_kind(&on, "MutatingAdmissionPolicyBinding").len(), 2);
    assert_eq!(of_kind(&on, "ValidatingAdmissionPolicy").len(), 5);
    let turned_off = [&serves[..], &["--set", "admission.mutating.enabled=false"]].concat();
    assert!(of_kind(&chart_objects(NS, &turned_off), "MutatingAdmissionPolicy").is_empty());
    // 1.34-1.35 serve only v1beta1 (off by default): the chart's v1 objects do not fit.
    let beta = [
        "--api-versions",
        "admissionregistration.k8s.io/v1beta1/MutatingAdmissionPolicy",
        "--kube-version",
        "1.35.2",
    ];
    assert!(of_kind(&chart_objects(NS, &beta), "MutatingAdmissionPolicy").is_empty());
    // Forced, for rendering without a cluster.
    let forced = chart_objects(NS, &["--set", "admission.mutating.force=true"]);
    assert_eq!(of_kind(&forced, "MutatingAdmissionPolicy").len(), 2);

    // PodDisruptionBudget only with more than one replica.
    let pdb = the(&defaults, "PodDisruptionBudget", "gatehouse");
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    let single = chart_objects(NS, &["--set", "replicas=1", "--set", "leaderElection=false"]);
    assert!(of_kind(&single, "PodDisruptionBudget").is_empty());
    let d = the(&single, "Deployment", "gatehouse");
    assert!(d["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .contains(&json!("--leader-election=false")));

    // ServiceMonitor: only when enabled and the cluster has the API (or forced).
    assert!(of_kind(&defaults, "ServiceMonitor").is_empty());
    let wanted = ["--set", "serviceMonitor.enabled=true"];
    assert!(of_kind(&chart_objects(NS, &wanted), "ServiceMonitor").is_empty());
    for extra in [
        ["--api-versions", "monitoring.coreos.com/v1/ServiceMonitor"],
        ["--set", "serviceMonitor.force=true"],
    ] {
        let objects = chart_objects(NS, &[&wanted[..], &extra[..]].concat());
        let sm = the(&objects, "ServiceMonitor", "gatehouse");
        assert_eq!(sm["spec"]["endpoints"][0]["port"], "metrics");
        assert_eq!(
            sm["spec"]["selector"]["matchLabels"],
            the(&objects, "Service", "gatehouse-metrics")["metadata"]["labels"]
                .as_object()
                .map(|l| {
                    let mut l = l.clone();
                    l.retain(|k, _| k == "app.kubernetes.io/name" || k == "app.kubernetes.io/component");
                    Value::Object(l)
                })
                .unwrap()
        );
    }

    // User roles can be left out.
    let mut roles: Vec<&str> = of_kind(&defaults, "ClusterRole")
        .iter()
        .map(|r| name(r))
        .collect();
    roles.sort();
    assert_eq!(
        roles,
        [
            "gatehouse-create-on-behalf",
            "gatehouse-notification-tester",
            "gatehouse-operator",
            "gatehouse-requester",
            "gatehouse-reviewer"
        ]
    );
    // Testers are bound only when named, cluster-wide.
    assert!(of_kind(&defaults, "ClusterRoleBinding")
        .iter()
        .all(|b| name(b) != "gatehouse-notification-testers"));
    let testers = chart_objects(
        NS,
        &[
            "--set-json",
            r#"notifications.testers={"groups":["sre"],"users":["alice"]}"#,
        ],
    );
    let binding = the(&testers, "ClusterRoleBinding", "gatehouse-notification-testers");
    assert_eq!(binding["roleRef"]["name"], "gatehouse-notification-tester");
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "sre"},
               {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "alice"}])
    );
    let no_users = chart_objects(NS, &["--set", "rbac.userRoles=false"]);
    let roles: Vec<&str> = of_kind(&no_users, "ClusterRole")
        .iter()
        .map(|r| name(r))
        .collect();
    assert_eq!(roles, ["gatehouse-operator"]);
}

#[test]
fn no_installed_binding_looks_like_a_grant() {
    // The operator's sweep deletes every binding labelled as one of its grants
    // once it has no valid expiry: the install's own bindings must never carry
    // that label, or the operator would delete its own permissions.
    let (label, value) = gatehouse::labels::MANAGED_BY;
    let ci = [
        "--values",
        "charts/gatehouse/ci/non-default-values.yaml",
        "--kube-version",
        "1.37.0",
    ];
    let out = run("kubectl", &["kustomize", "config/default"], None);
    assert!(out.ok, "{}", out.stderr);
    for objects in [
        chart_objects(NS, &[]),
        chart_objects(NS, &ci),
        documents(&out.stdout),
    ] {
        for o in objects {
            assert_ne!(
                o["metadata"]["labels"][label],
                json!(value),
                "{} {}",
                kind(&o),
                name(&o)
            );
        }
    }
}

#[test]
fn the_notes_show_a_first_request() {
    for args in [
        vec![],
        vec![
            "--set-json",
            r#"grantableRoles=["Role/deployer"]"#,
            "--set",
            "admission.mutating.force=true",
        ],
    ] {
        let mut cmd = vec![
            "install",
            "gatehouse",
            "charts/gatehouse",
            "--namespace",
            NS,
            "--dry-run=client",
        ];
        cmd.extend_from_slice(&args);
        let out = run("helm", &cmd, None);
        assert!(out.ok, "helm {}:\n{}", cmd.join(" "), out.stderr);
        let notes = out.stdout.split("NOTES:").nth(1).expect("NOTES are printed");
        assert!(notes.contains("kind: ApprovalRequest"), "{notes}");
        assert!(notes.contains("kind: AccessReview"), "{notes}");
        assert!(notes.contains("kubectl gatehouse approve"), "{notes}");
        if args.is_empty() {
            assert!(
                notes.contains("kubectl gatehouse request view -n team"),
                "{notes}"
            );
            assert!(notes.contains("requester must be you"), "{notes}");
            assert!(notes.contains("requester: {username: alice"), "{notes}");
            // Without a cluster helm knows no MutatingAdmissionPolicy API: the notes say so.
            assert!(
                notes.contains("does not serve admissionregistration.k8s.io/v1"),
                "{notes}"
            );
        } else {
            assert!(notes.contains("request deployer --kind Role"), "{notes}");
            assert!(notes.contains("roles: [{kind: Role, name: deployer}]"), "{notes}");
            // The mutating policies are rendered (forced here) and the notes say so.
            assert!(notes.contains("requester may be left out"), "{notes}");
            assert!(
                !notes.contains("requester: {") && !notes.contains("reviewer: {"),
                "no identity to type: {notes}"
            );
            assert!(!notes.contains("does not serve"), "{notes}");
        }
    }
}

fn kubectl(kubeconfig: &str, args: &[&str], objects: Option<&[Value]>) -> tools::Run {
    let mut all = vec!["--kubeconfig", kubeconfig];
    all.extend_from_slice(args);
    let list = objects.map(|items| json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string());
    run("kubectl", &all, list.as_deref())
}

/// Server-side dry run of an apply: the API server validates every object
/// against its OpenAPI schema (strict: unknown fields are errors), the CRDs'
/// structural rules and admission, and stores nothing.
fn dry_run_apply(kubeconfig: &str, what: &str, objects: &[Value]) {
    let out = kubectl(
        kubeconfig,
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=gatehouse-install-test",
            "--dry-run=server",
            "--validate=strict",
            "-f",
            "-",
        ],
        Some(objects),
    );
    assert!(out.ok, "{what}: the API server refused it:\n{}", out.stderr);
    let applied = out
        .stdout
        .lines()
        .filter(|l| l.contains("(server dry run)"))
        .count();
    assert_eq!(applied, objects.len(), "{what}:\n{}", out.stdout);
}

/// A pod with the Deployment's pod template, created (dry run) in a namespace
/// that enforces Pod Security "restricted".
fn pod_of(deployment: &Value, namespace: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "gatehouse-pod-security-check", "namespace": namespace},
        "spec": deployment["spec"]["template"]["spec"],
    })
}

#[test]
fn rendered_objects_are_accepted_by_a_real_api_server() {
    let Some(kubeconfig) = cluster::kubeconfig() else {
        return;
    };
    let kubeconfig = kubeconfig.to_str().unwrap();
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let ns = format!("gh-install-{millis:x}");
    // A namespace enforcing "restricted", and the ServiceAccount pods there run as.
    let setup = [
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {
            "pod-security.kubernetes.io/enforce": "restricted"}}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "gatehouse", "namespace": ns}}),
    ];
    let out = kubectl(kubeconfig, &["apply", "-f", "-"], Some(&setup));
    assert!(out.ok, "{}", out.stderr);

    let defaults = chart_objects(&ns, &[]);
    dry_run_apply(kubeconfig, "helm template (default values)", &defaults);
    // Rendered against the real cluster (as `helm install` does), the default
    // values find that it serves MutatingAdmissionPolicy v1 and include them.
    // (--take-ownership: other suites apply the same CRDs without Helm's labels,
    // which a server-side dry run would otherwise refuse to adopt.)
    let asked = chart_objects(
        &ns,
        &["--dry-run=server", "--take-ownership", "--kubeconfig", kubeconfig],
    );
    assert_eq!(
        of_kind(&asked, "MutatingAdmissionPolicy").len(),
        2,
        "the API server serves admissionregistration.k8s.io/v1 MutatingAdmissionPolicy"
    );
    dry_run_apply(kubeconfig, "helm template --dry-run=server", &asked);
    // The test control plane has no Prometheus Operator, so no ServiceMonitor
    // CRD: that one object is left out here (optional_objects_follow_their_values
    // checks its shape).
    let ci: Vec<Value> = chart_objects(
        &ns,
        &[
            "--values",
            "charts/gatehouse/ci/non-default-values.yaml",
            "--kube-version",
            "1.37.0",
        ],
    )
    .into_iter()
    .filter(|o| kind(o) != "ServiceMonitor")
    .collect();
    assert!(!of_kind(&ci, "MutatingAdmissionPolicy").is_empty());
    dry_run_apply(kubeconfig, "helm template (ci/non-default-values.yaml)", &ci);

    // kubectl apply -k config/default: its own objects go into gatehouse-system,
    // which must exist for a dry run of what lives in it.
    let out = run("kubectl", &["kustomize", "config/default"], None);
    assert!(out.ok, "{}", out.stderr);
    let kustomized = documents(&out.stdout);
    let existed = kubectl(kubeconfig, &["get", "namespace", NS], None).ok;
    if !existed {
        let namespace: Vec<Value> = of_kind(&kustomized, "Namespace").into_iter().cloned().collect();
        let out = kubectl(kubeconfig, &["apply", "-f", "-"], Some(&namespace));
        assert!(out.ok, "{}", out.stderr);
    }
    dry_run_apply(kubeconfig, "kubectl kustomize config/default", &kustomized);

    // The pods pass Pod Security "restricted"...
    for (what, objects) in [("default values", &defaults), ("ci values", &ci)] {
        let pod = pod_of(the(objects, "Deployment", "gatehouse"), &ns);
        let out = kubectl(
            kubeconfig,
            &["create", "--dry-run=server", "-f", "-"],
            Some(&[pod]),
        );
        assert!(out.ok, "{what}: the pod is refused:\n{}", out.stderr);
        assert!(!out.stderr.contains("PodSecurity"), "{what}: {}", out.stderr);
    }
    // ...which the API server does enforce there: one privilege more is refused.
    let mut pod = pod_of(the(&defaults, "Deployment", "gatehouse"), &ns);
    pod["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = json!(true);
    let out = kubectl(
        kubeconfig,
        &["create", "--dry-run=server", "-f", "-"],
        Some(&[pod]),
    );
    assert!(
        !out.ok && out.stderr.contains("violates PodSecurity \"restricted"),
        "a pod allowing privilege escalation should be refused:\n{}{}",
        out.stdout,
        out.stderr
    );

    let _ = kubectl(kubeconfig, &["delete", "namespace", &ns, "--wait=false"], None);
    if !existed {
        let _ = kubectl(kubeconfig, &["delete", "namespace", NS, "--wait=false"], None);
    }
}

#[test]
fn the_on_behalf_binding_is_cluster_wide_and_what_gatehouse_rbac_prints() {
    // Off by default: nobody acts on behalf of others.
    assert!(of_kind(&chart_objects(NS, &[]), "ClusterRoleBinding")
        .iter()
        .all(|b| name(b) != "gatehouse-create-on-behalf"));
    let subjects = r#"rbac.onBehalf=[{"kind":"ServiceAccount","name":"argocd-application-controller","namespace":"argocd"}]"#;
    let rendered = chart_objects(
        NS,
        &["--show-only", "templates/on-behalf.yaml", "--set-json", subjects],
    );
    let subject =
        gatehouse::rbac::parse_subject("ServiceAccount/argocd/argocd-application-controller").unwrap();
    let expected = gatehouse::rbac::on_behalf_binding(&[subject]).unwrap();
    assert_eq!(
        rendered
            .into_iter()
            .map(without_helm_metadata)
            .collect::<Vec<_>>(),
        [serde_json::to_value(&expected)
            .unwrap()
            .as_object()
            .cloned()
            .map(|mut o| {
                o.insert("apiVersion".into(), json!("rbac.authorization.k8s.io/v1"));
                o.insert("kind".into(), json!("ClusterRoleBinding"));
                Value::Object(o)
            })
            .unwrap()]
    );
}
