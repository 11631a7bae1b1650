//! Risk tags: which of a role's effective rules give powers an auditor asks about.
//! Each tag comes with the first rule that gives it, in words. Any tag makes the
//! recommendation `Review` (never `Accept`, which `certify approve
//! --all-recommended` approves), so a permission equivalent to exec or to a
//! credential must have one: docs/certification.md lists them with the reason.

use std::collections::BTreeMap;

use k8s_openapi::api::rbac::v1::PolicyRule;

use crate::api::RiskTag;

/// What a tag looks for: verbs on resources in API groups. `*` in a rule matches
/// anything, as RBAC does.
struct Probe {
    tag: RiskTag,
    groups: &'static [&'static str],
    resources: &'static [&'static str],
    verbs: &'static [&'static str],
}

const CORE: &[&str] = &[""];
const RBAC: &[&str] = &["rbac.authorization.k8s.io"];
const WRITE: &[&str] = &["create", "update", "patch"];

/// exec and port-forward open with GET over WebSockets, so `get` counts as `create`.
/// A resource ending in `/*` in a probe stands for every subresource.
const PROBES: &[Probe] = &[
    Probe {
        tag: RiskTag::SecretsRead,
        groups: CORE,
        resources: &["secrets"],
        verbs: &["get", "list", "watch"],
    },
    Probe {
        tag: RiskTag::PodExec,
        groups: CORE,
        resources: &["pods/exec", "pods/attach", "pods/portforward"],
        verbs: &["create", "get"],
    },
    // An ephemeral container is a container of one's choosing in a running pod:
    // exec by another name.
    Probe {
        tag: RiskTag::PodExec,
        groups: CORE,
        resources: &["pods/ephemeralcontainers"],
        verbs: &["update", "patch"],
    },
    Probe {
        tag: RiskTag::CreateWorkloads,
        groups: CORE,
        resources: &["pods", "replicationcontrollers"],
        verbs: WRITE,
    },
    Probe {
        tag: RiskTag::CreateWorkloads,
        groups: &["apps"],
        resources: &["deployments", "replicasets", "statefulsets", "daemonsets"],
        verbs: WRITE,
    },
    Probe {
        tag: RiskTag::CreateWorkloads,
        groups: &["batch"],
        resources: &["jobs", "cronjobs"],
        verbs: WRITE,
    },
    Probe {
        tag: RiskTag::Escalate,
        groups: RBAC,
        resources: &["roles", "clusterroles"],
        verbs: &["escalate"],
    },
    Probe {
        tag: RiskTag::Bind,
        groups: RBAC,
        resources: &["roles", "clusterroles"],
        verbs: &["bind"],
    },
    Probe {
        tag: RiskTag::Impersonate,
        groups: &["", "authentication.k8s.io"],
        resources: &[
            "users",
            "groups",
            "serviceaccounts",
            "uids",
            "userextras",
            "userextras/*",
        ],
        verbs: &["impersonate"],
    },
    Probe {
        tag: RiskTag::ServiceAccountTokens,
        groups: CORE,
        resources: &["serviceaccounts/token"],
        verbs: &["create"],
    },
    // A Secret of type kubernetes.io/service-account-token naming any
    // ServiceAccount of the namespace is filled with a token for it.
    Probe {
        tag: RiskTag::ServiceAccountTokens,
        groups: CORE,
        resources: &["secrets"],
        verbs: &["create"],
    },
    Probe {
        tag: RiskTag::NodesProxy,
        groups: CORE,
        resources: &["nodes/proxy"],
        verbs: &["get", "create", "update", "patch", "delete"],
    },
    // Proxy verbs are the HTTP methods of the proxied request.
    Probe {
        tag: RiskTag::Proxy,
        groups: CORE,
        resources: &["pods/proxy", "services/proxy"],
        verbs: &["get", "create", "update", "patch", "delete"],
    },
    Probe {
        tag: RiskTag::AdmissionWebhooks,
        groups: &["admissionregistration.k8s.io"],
        resources: &[
            "mutatingwebhookconfigurations",
            "validatingwebhookconfigurations",
            "validatingadmissionpolicies",
            "validatingadmissionpolicybindings",
            "mutatingadmissionpolicies",
            "mutatingadmissionpolicybindings",
        ],
        verbs: &["create", "update", "patch", "delete"],
    },
    Probe {
        tag: RiskTag::CsrApproval,
        groups: &["certificates.k8s.io"],
        resources: &["certificatesigningrequests/approval"],
        verbs: &["update", "patch"],
    },
    Probe {
        tag: RiskTag::CsrApproval,
        groups: &["certificates.k8s.io"],
        resources: &["signers"],
        verbs: &["approve", "sign"],
    },
    // The kube-controller-manager approves a node's client certificate request
    // by itself when the requester may create these: a node's identity.
    Probe {
        tag: RiskTag::CsrApproval,
        groups: &["certificates.k8s.io"],
        resources: &[
            "certificatesigningrequests/nodeclient",
            "certificatesigningrequests/selfnodeclient",
        ],
        verbs: &["create"],
    },
];

fn list(v: &Option<Vec<String>>) -> &[String] {
    v.as_deref().unwrap_or_default()
}

fn covers(granted: &[String], wanted: &str) -> bool {
    granted.iter().any(|g| {
        g == "*"
            || g == wanted
            // `pods/*` covers every subresource of pods.
            || g.strip_suffix('*').is_some_and(|prefix| prefix.ends_with('/') && wanted.starts_with(prefix))
    })
}

/// The rule as RBAC prints it: `verbs on resources (groups)`.
pub fn describe_rule(rule: &PolicyRule) -> String {
    if rule.resources.is_none() && rule.non_resource_urls.is_some() {
        return format!(
            "{} on URLs {}",
            rule.verbs.join(","),
            list(&rule.non_resource_urls).join(",")
        );
    }
    let groups: Vec<&str> = list(&rule.api_groups)
        .iter()
        .map(|g| if g.is_empty() { "core" } else { g.as_str() })
        .collect();
    let names = match list(&rule.resource_names) {
        [] => String::new(),
        n => format!(" named {}", n.join(",")),
    };
    format!(
        "{} on {}{names} ({})",
        rule.verbs.join(","),
        list(&rule.resources).join(","),
        groups.join(",")
    )
}

fn matches(probe: &Probe, rule: &PolicyRule) -> bool {
    let resources = list(&rule.resources);
    let resource = |wanted: &str| match wanted.strip_suffix('*') {
        Some(parent) if parent.ends_with('/') => {
            covers(resources, wanted) || resources.iter().any(|r| r.starts_with(parent))
        }
        _ => covers(resources, wanted),
    };
    probe.groups.iter().any(|g| covers(list(&rule.api_groups), g))
        && probe.resources.iter().any(|r| resource(r))
        && probe.verbs.iter().any(|v| covers(&rule.verbs, v))
}

fn is_everything(rule: &PolicyRule) -> bool {
    let star = |v: &[String]| v.iter().any(|x| x == "*");
    star(&rule.verbs) && star(list(&rule.resources)) && star(list(&rule.api_groups))
}

fn has_wildcard(rule: &PolicyRule) -> bool {
    let star = |v: &[String]| v.iter().any(|x| x == "*" || x.ends_with("/*"));
    star(&rule.verbs) || star(list(&rule.resources)) || star(list(&rule.api_groups))
}

fn message(tag: RiskTag, rule: &str) -> String {
    let what = match tag {
        RiskTag::ClusterAdmin => "grants every verb on every resource (cluster-admin)",
        RiskTag::Wildcard => "uses a wildcard, so it also grants whatever new resources appear",
        RiskTag::SecretsRead => "reads Secrets",
        RiskTag::PodExec => {
            "runs commands in pods (exec, attach, port-forward, or an ephemeral container)"
        }
        RiskTag::CreateWorkloads => {
            "creates workloads, which can run as any ServiceAccount of their namespace"
        }
        RiskTag::Escalate => "may escalate: grant roles with more than it holds",
        RiskTag::Bind => "may bind roles it does not hold",
        RiskTag::Impersonate => "may impersonate other users, groups or ServiceAccounts",
        RiskTag::ServiceAccountTokens => {
            "mints ServiceAccount tokens (a TokenRequest, or a Secret of type service-account-token)"
        }
        RiskTag::NodesProxy => "reaches the kubelet API through nodes/proxy",
        RiskTag::Proxy => "reaches pods' and Services' ports through the API server, past NetworkPolicies",
        RiskTag::AdmissionWebhooks => "changes admission webhooks or policies",
        RiskTag::CsrApproval => {
            "approves or signs certificate signing requests, or has node ones approved (mints client certificates)"
        }
    };
    format!("{what}: {rule}")
}

/// The risk tags of the rules, in tag order, each with its reason in words. A role
/// that grants everything is `ClusterAdmin` alone: the other tags would only repeat it.
pub fn risk_tags(rules: &[PolicyRule]) -> Vec<(RiskTag, String)> {
    if let Some(rule) = rules.iter().find(|r| is_everything(r)) {
        return vec![(
            RiskTag::ClusterAdmin,
            message(RiskTag::ClusterAdmin, &describe_rule(rule)),
        )];
    }
    let mut found: BTreeMap<RiskTag, String> = BTreeMap::new();
    for rule in rules {
        if has_wildcard(rule) {
            found
                .entry(RiskTag::Wildcard)
                .or_insert_with(|| message(RiskTag::Wildcard, &describe_rule(rule)));
        }
        for probe in PROBES.iter().filter(|p| matches(p, rule)) {
            found
                .entry(probe.tag)
                .or_insert_with(|| message(probe.tag, &describe_rule(rule)));
        }
    }
    found.into_iter().collect()
}
