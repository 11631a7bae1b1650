//! The install manifests: the kustomize bases under `config/` and the parts of the
//! Helm chart (`charts/gatehouse/`) that come straight from the code, which
//! `gatehouse manifests` writes.
//!
//! One source for both ways of installing: the CRDs come from [`crate::crdgen`],
//! the operator's RBAC from [`crate::rbac`], the admission policies from the YAML
//! files [`crate::admission`] compiles in, and the Deployment, its metrics Service
//! and PodDisruptionBudget from [`manager_objects`]. The chart's own templates
//! (Deployment, operator RBAC) take values, so they are written by hand; a test
//! renders the chart with its default values and `config/default` and checks that
//! both give the same objects.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::{
        apps::v1::{Deployment, DeploymentSpec},
        core::v1::{
            Affinity, Capabilities, Container, ContainerPort, EnvVar, EnvVarSource, HTTPGetAction, Namespace,
            ObjectFieldSelector, PodAffinityTerm, PodAntiAffinity, PodSecurityContext, PodSpec,
            PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile, SecurityContext, Service,
            ServicePort, ServiceSpec, WeightedPodAffinityTerm,
        },
        policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec},
    },
    apimachinery::pkg::{
        api::resource::Quantity,
        apis::meta::v1::{LabelSelector, ObjectMeta},
        util::intstr::IntOrString,
    },
};
use serde::Serialize;
use thiserror::Error;

use crate::{
    admission,
    crdgen::{self, CrdError},
    rbac::{self, RbacError, RbacOptions},
};

/// Namespace the kustomize overlay `config/default` installs into.
pub const NAMESPACE: &str = "gatehouse-system";
/// Name of the Deployment, the PodDisruptionBudget and the ServiceAccount.
pub const NAME: &str = "gatehouse";
/// Name of the Service in front of `/metrics`.
pub const METRICS_SERVICE: &str = "gatehouse-metrics";
/// Port of `/metrics`, `/healthz` and `/readyz` (`gatehouse run --http-addr`).
pub const HTTP_PORT: i32 = 8080;
/// Replicas by default: two, one of them on standby behind the leader-election Lease.
pub const REPLICAS: i32 = 2;
/// Image repository by default; the tag is the crate version.
pub const IMAGE_REPOSITORY: &str = "gatehouse";
/// User and group the container runs as (distroless `nonroot`).
pub const RUN_AS: i64 = 65532;
/// Annotation that makes Helm keep an object on uninstall.
pub const HELM_KEEP: (&str, &str) = ("helm.sh/resource-policy", "keep");

/// Why the install manifests could not be generated.
#[derive(Debug, Error)]
pub enum InstallError {
    /// A CRD could not be rendered.
    #[error(transparent)]
    Crd(#[from] CrdError),
    /// The RBAC could not be rendered.
    #[error(transparent)]
    Rbac(#[from] RbacError),
    /// An object could not be serialized.
    #[error("cannot serialize {what}: {source}")]
    Serialize {
        /// What was being serialized.
        what: String,
        /// Underlying error.
        source: serde_saphyr::ser::Error,
    },
    /// Text copied into a Helm template contains template delimiters, which Helm
    /// would try to execute.
    #[error("{what} contains '{{{{' or '}}}}', which Helm would read as a template action")]
    TemplateDelimiters {
        /// What was being copied.
        what: String,
    },
}

/// One generated file: where it goes, relative to the repository root, and its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GeneratedFile {
    /// Path relative to the repository root, `/`-separated.
    pub path: String,
    /// Contents.
    pub contents: String,
}

/// Directories whose every file is generated: a test fails when they hold
/// anything `gatehouse manifests` does not write.
pub const GENERATED_DIRS: [&str; 7] = [
    "crds",
    CHART_ADMISSION_DIR,
    "config/crd",
    "config/rbac",
    "config/manager",
    "config/default",
    "config/default/operator",
];

/// Files of the chart that are generated (the rest of the chart is written by hand).
pub const CHART_GENERATED: [&str; 3] = [
    "charts/gatehouse/templates/crds.yaml",
    "charts/gatehouse/templates/admission.yaml",
    "charts/gatehouse/templates/user-roles.yaml",
];

fn to_yaml<T: Serialize>(obj: &T, what: &str) -> Result<String, InstallError> {
    serde_saphyr::to_string(obj).map_err(|source| InstallError::Serialize {
        what: what.to_string(),
        source,
    })
}

fn labels(component: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), "gatehouse".to_string()),
        ("app.kubernetes.io/component".to_string(), component.to_string()),
    ])
}

fn meta(name: &str, namespace: Option<&str>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: namespace.map(str::to_string),
        labels: Some(labels("operator")),
        ..Default::default()
    }
}

fn quantities(cpu: &str, memory: &str) -> BTreeMap<String, Quantity> {
    BTreeMap::from([
        ("cpu".to_string(), Quantity(cpu.to_string())),
        ("memory".to_string(), Quantity(memory.to_string())),
    ])
}

fn env_from_field(name: &str, field: &str) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: field.to_string(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn probe(path: &str, period: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_string()),
            port: IntOrString::String("http".into()),
            ..Default::default()
        }),
        period_seconds: Some(period),
        failure_threshold: Some(3),
        ..Default::default()
    }
}

/// The operator's Deployment as `config/manager` ships it (and the chart renders
/// it with default values).
pub fn deployment(namespace: &str) -> Deployment {
    let selector = labels("operator");
    let pod = PodSpec {
        service_account_name: Some(NAME.to_string()),
        // Pod Security Standard "restricted": non-root, no privilege escalation,
        // no capabilities, the runtime's seccomp profile. The binary writes no
        // files, so the root filesystem is read-only too.
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(RUN_AS),
            run_as_group: Some(RUN_AS),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        containers: vec![Container {
            name: "gatehouse".into(),
            image: Some(format!("{IMAGE_REPOSITORY}:{}", env!("CARGO_PKG_VERSION"))),
            image_pull_policy: Some("IfNotPresent".into()),
            args: Some(
                [
                    "run",
                    "--leader-election=true",
                    &format!("--http-addr=0.0.0.0:{HTTP_PORT}"),
                    "--log-format=json",
                    "--sweep-interval=2m",
                    "--concurrency=16",
                    "--certification-remediation=false",
                    "--certification-min-review-window=1h",
                    "--notify-allow-private-destinations=false",
                ]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            ),
            // POD_NAME is the leader-election identity, POD_NAMESPACE the Lease's namespace.
            env: Some(vec![
                env_from_field("POD_NAME", "metadata.name"),
                env_from_field("POD_NAMESPACE", "metadata.namespace"),
            ]),
            ports: Some(vec![ContainerPort {
                name: Some("http".into()),
                container_port: HTTP_PORT,
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            liveness_probe: Some(probe("/healthz", 10)),
            readiness_probe: Some(probe("/readyz", 5)),
            resources: Some(ResourceRequirements {
                requests: Some(quantities("50m", "64Mi")),
                limits: Some(quantities("500m", "256Mi")),
                ..Default::default()
            }),
            security_context: Some(SecurityContext {
                allow_privilege_escalation: Some(false),
                read_only_root_filesystem: Some(true),
                run_as_non_root: Some(true),
                capabilities: Some(Capabilities {
                    drop: Some(vec!["ALL".into()]),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }],
        // Two replicas on one node would fail together.
        affinity: Some(Affinity {
            pod_anti_affinity: Some(PodAntiAffinity {
                preferred_during_scheduling_ignored_during_execution: Some(vec![WeightedPodAffinityTerm {
                    weight: 100,
                    pod_affinity_term: PodAffinityTerm {
                        topology_key: "kubernetes.io/hostname".into(),
                        label_selector: Some(LabelSelector {
                            match_labels: Some(selector.clone()),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    Deployment {
        metadata: meta(NAME, Some(namespace)),
        spec: Some(DeploymentSpec {
            replicas: Some(REPLICAS),
            selector: LabelSelector {
                match_labels: Some(selector.clone()),
                ..Default::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(selector),
                    ..Default::default()
                }),
                spec: Some(pod),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The Service in front of `/metrics` (what a ServiceMonitor or a scrape config targets).
pub fn metrics_service(namespace: &str) -> Service {
    Service {
        metadata: meta(METRICS_SERVICE, Some(namespace)),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(labels("operator")),
            ports: Some(vec![ServicePort {
                name: Some("metrics".into()),
                port: HTTP_PORT,
                target_port: Some(IntOrString::String("http".into())),
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Keeps one replica up through voluntary disruptions (node drains): a drain
/// evicts a replica only while another one is available to take the Lease over.
pub fn pod_disruption_budget(namespace: &str) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: meta(NAME, Some(namespace)),
        spec: Some(PodDisruptionBudgetSpec {
            min_available: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(labels("operator")),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The operator's namespace for kustomize, enforcing Pod Security "restricted"
/// (Helm users get theirs from `--create-namespace`).
pub fn namespace(name: &str) -> Namespace {
    let mut labels = labels("operator");
    labels.insert("pod-security.kubernetes.io/enforce".into(), "restricted".into());
    Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(labels),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// The Deployment, metrics Service and PodDisruptionBudget, as one YAML stream.
pub fn manager_objects(namespace: &str) -> Result<String, InstallError> {
    Ok([
        to_yaml(&deployment(namespace), "Deployment")?,
        to_yaml(&metrics_service(namespace), "Service")?,
        to_yaml(&pod_disruption_budget(namespace), "PodDisruptionBudget")?,
    ]
    .join("---\n"))
}

const HEADER: &str = "# Generated by `gatehouse manifests`: do not edit.\n";
const TEMPLATE_HEADER: &str = "{{- /* Generated by `gatehouse manifests` from the code: do not edit. */}}\n";

fn kustomization(comment: &str, resources: &[&str], namespace: Option<&str>) -> String {
    let mut out =
        format!("{HEADER}# {comment}\napiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n");
    if let Some(ns) = namespace {
        out.push_str(&format!("namespace: {ns}\n"));
    }
    out.push_str("resources:\n");
    for r in resources {
        out.push_str(&format!("  - {r}\n"));
    }
    out
}

/// Refuses text that Helm would execute as a template when copied into one.
fn helm_literal(what: &str, text: &str) -> Result<(), InstallError> {
    if text.contains("{{") || text.contains("}}") {
        return Err(InstallError::TemplateDelimiters {
            what: what.to_string(),
        });
    }
    Ok(())
}

/// The chart's CRD template: the CRDs as templates (so `helm upgrade` updates
/// them, which Helm's `crds/` directory never does), kept on uninstall so that
/// removing the operator does not delete every request and review with them.
pub fn chart_crds() -> Result<String, InstallError> {
    let mut docs = Vec::new();
    for mut crd in crate::api::crds() {
        let name = crd.metadata.name.clone().unwrap_or_default();
        crd.metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(HELM_KEEP.0.into(), HELM_KEEP.1.into());
        let yaml = to_yaml(&crd, &format!("CRD {name}"))?;
        helm_literal(&format!("CRD {name}"), &yaml)?;
        docs.push(yaml);
    }
    Ok(format!(
        "{TEMPLATE_HEADER}{{{{- if .Values.crds.install }}}}\n{}{{{{- end }}}}\n",
        docs.join("---\n")
    ))
}

/// Where the chart keeps its copies of the admission policies. Helm reads them
/// with `.Files.Get`, which copies text without executing it: the policies' CEL
/// has `}}` in it, which a template would take for the end of an action.
pub const CHART_ADMISSION_DIR: &str = "charts/gatehouse/files/admission";

fn chart_admission_file(file: &admission::PolicyFile) -> String {
    let name = file.path.rsplit('/').next().unwrap_or(file.path);
    format!("{CHART_ADMISSION_DIR}/{name}")
}

/// The chart's admission template: the ValidatingAdmissionPolicies of
/// `config/admission/` (value `admission.validating.enabled`), and the
/// MutatingAdmissionPolicies of `config/admission/mutating/` wherever the cluster
/// serves their v1 API (Kubernetes >= 1.36), unless `admission.mutating.enabled` is
/// false; `admission.mutating.force` renders them without asking (the test is the
/// `gatehouse.mutating` helper of `_helpers.tpl`).
pub fn chart_admission() -> String {
    let get = |file: &admission::PolicyFile| {
        let path = chart_admission_file(file);
        let in_chart = path.trim_start_matches("charts/gatehouse/");
        format!("{{{{ .Files.Get \"{in_chart}\" }}}}")
    };
    let validating: Vec<String> = admission::VALIDATING.iter().map(get).collect();
    format!(
        "{TEMPLATE_HEADER}{{{{- if .Values.admission.validating.enabled }}}}\n{}\n{{{{- end }}}}\n\
         {{{{- if include \"gatehouse.mutating\" . }}}}\n---\n{}\n{{{{- end }}}}\n",
        validating.join("\n---\n"),
        get(&admission::MUTATING)
    )
}

/// The chart's template for the ClusterRoles people are bound to (value `rbac.userRoles`).
pub fn chart_user_roles() -> Result<String, InstallError> {
    let users = rbac::render_users()?;
    helm_literal("the user ClusterRoles", &users)?;
    Ok(format!(
        "{TEMPLATE_HEADER}{{{{- if .Values.rbac.userRoles }}}}\n{users}{{{{- end }}}}\n"
    ))
}

/// Every generated file: `crds/`, `config/{crd,rbac,manager,default}` and the
/// generated chart templates.
pub fn generated_files() -> Result<Vec<GeneratedFile>, InstallError> {
    let mut files = Vec::new();
    let crds = crdgen::render_crds()?;
    for crd in &crds {
        files.push(GeneratedFile {
            path: format!("crds/{}", crd.file_name),
            contents: crd.yaml.clone(),
        });
        files.push(GeneratedFile {
            path: format!("config/crd/{}", crd.file_name),
            contents: crd.yaml.clone(),
        });
    }
    let crd_files: Vec<&str> = crds.iter().map(|c| c.file_name.as_str()).collect();
    files.push(GeneratedFile {
        path: "config/crd/Kustomization".into(),
        contents: kustomization(
            "The CRDs (the same as crds/). kubectl apply -k config/crd",
            &crd_files,
            None,
        ),
    });
    for file in rbac::render_files(&RbacOptions::default())? {
        files.push(GeneratedFile {
            path: format!("config/rbac/{}", file.file_name),
            contents: file.yaml,
        });
    }
    files.push(GeneratedFile {
        path: "config/manager/namespace.yaml".into(),
        contents: format!("{HEADER}{}", to_yaml(&namespace(NAMESPACE), "Namespace")?),
    });
    files.push(GeneratedFile {
        path: "config/manager/manager.yaml".into(),
        contents: format!("{HEADER}{}", manager_objects(NAMESPACE)?),
    });
    files.push(GeneratedFile {
        path: "config/manager/Kustomization".into(),
        contents: kustomization(
            "The operator: its namespace, Deployment, metrics Service and PodDisruptionBudget.",
            &["namespace.yaml", "manager.yaml"],
            None,
        ),
    });
    files.push(GeneratedFile {
        path: "config/default/Kustomization".into(),
        contents: kustomization(
            "Everything to run Gatehouse: kubectl apply -k config/default\n\
             # (the same objects as the Helm chart with its default values). The namespace is set in\n\
             # operator/ only: kustomize (v5.8) does not know that admission policies are\n\
             # cluster-scoped and would stamp a namespace on them too.",
            &["../crd", "../admission", "operator"],
            None,
        ),
    });
    files.push(GeneratedFile {
        path: "config/default/operator/Kustomization".into(),
        contents: kustomization(
            "The operator and its RBAC, in its namespace (change it here).",
            &["../../rbac", "../../manager"],
            Some(NAMESPACE),
        ),
    });
    files.push(GeneratedFile {
        path: CHART_GENERATED[0].into(),
        contents: chart_crds()?,
    });
    files.push(GeneratedFile {
        path: CHART_GENERATED[1].into(),
        contents: chart_admission(),
    });
    for file in admission::VALIDATING.iter().chain([&admission::MUTATING]) {
        files.push(GeneratedFile {
            path: chart_admission_file(file),
            contents: file.yaml.to_string(),
        });
    }
    files.push(GeneratedFile {
        path: CHART_GENERATED[2].into(),
        contents: chart_user_roles()?,
    });
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_delimiters_in_copied_text_are_refused() {
        assert!(helm_literal("x", "a: b").is_ok());
        let err = helm_literal("the thing", "a: {{ .Values.x }}").unwrap_err();
        assert_eq!(
            err.to_string(),
            "the thing contains '{{' or '}}', which Helm would read as a template action"
        );
    }

    #[test]
    fn every_generated_file_lives_in_a_generated_place() {
        for file in generated_files().unwrap() {
            let dir = file.path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
            assert!(
                GENERATED_DIRS.contains(&dir) || CHART_GENERATED.contains(&file.path.as_str()),
                "{}",
                file.path
            );
        }
    }
}
