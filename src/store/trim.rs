//! What memory keeps of each object: what the operator reads, bounded per object
//! whatever a tenant writes.
//!
//! A tenant with `*` in her namespace can make every object there as large as
//! etcd allows (1.5 MiB): a RoleBinding of 15,000 subjects, a Role of thousands of
//! rules, a ServiceAccount or a request with a megabyte of labels and annotations.
//! Held whole and typed, a hundred such bindings cost the operator ~300 MiB and
//! an OOM kill, and an operator that is not running removes no expired grant.
//! So every object is trimmed before it is stored:
//!
//! - `managedFields` and `kubectl.kubernetes.io/last-applied-configuration` go
//!   (never read; the latter doubles an applied object);
//! - annotations: only the ones the operator reads are kept (Gatehouse's own and
//!   the marks of the tools that manage bindings: Helm, Argo CD, Flux);
//! - labels: kept whole up to [`MAX_LABEL_BYTES`] (campaigns select bindings by
//!   label); past it only the marks are kept and the object says so;
//! - binding subjects: the first [`MAX_SUBJECTS`]; past it the object says how
//!   many it had ([`SUBJECTS_TRUNCATED`]) and certification reports the binding
//!   instead of reviewing part of it;
//! - role rules: the first [`MAX_RULES`], each list in them to [`MAX_RULE_ITEMS`];
//!   what is cut is replaced by the widest reading (a wildcard rule, all resource
//!   names), so a role is never judged less risky than it is;
//! - ServiceAccounts: name and Gatehouse's labels only (the core asks whether one
//!   exists, and which OneTime request made it).
//!
//! The marks this module sets ([`SUBJECTS_TRUNCATED`], [`LABELS_TRUNCATED`]) are
//! removed from what arrives first, so a tenant cannot set them herself.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::{
        core::v1::ServiceAccount,
        rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, Subject},
    },
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};

/// Subjects of a binding kept in memory.
pub const MAX_SUBJECTS: usize = crate::certify::scope::MAX_HELD_SUBJECTS;
/// Rules of a role kept in memory.
pub const MAX_RULES: usize = 256;
/// Entries of one list in a rule (verbs, resources, resource names, ...) kept.
pub const MAX_RULE_ITEMS: usize = 256;
/// Bytes of labels (keys and values) kept whole.
pub const MAX_LABEL_BYTES: usize = 16 * 1024;
/// Bytes of one annotation value kept; a longer one is not one the operator wrote.
pub const MAX_ANNOTATION_BYTES: usize = 4 * 1024;
pub use crate::labels::{
    CACHED_LABELS_TRUNCATED as LABELS_TRUNCATED, CACHED_RULES_TRUNCATED as RULES_TRUNCATED,
    CACHED_SUBJECTS_TRUNCATED as SUBJECTS_TRUNCATED,
};

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Label and annotation prefixes the operator reads.
const MARK_PREFIXES: &[&str] = &[
    "gatehouse.dev/",
    "meta.helm.sh/",
    "argocd.argoproj.io/",
    "kustomize.toolkit.fluxcd.io/",
    "helm.toolkit.fluxcd.io/",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/instance",
    "kubernetes.io/bootstrapping",
];

/// Whether the operator reads this label or annotation key.
pub fn is_mark(key: &str) -> bool {
    MARK_PREFIXES.iter().any(|p| key.starts_with(p))
}

/// Whether the key is one of the marks this module sets on the copy in memory.
pub fn is_own_mark(key: &str) -> bool {
    matches!(key, SUBJECTS_TRUNCATED | LABELS_TRUNCATED | RULES_TRUNCATED)
}

/// How much a kind's labels matter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Labels {
    /// Kept whole up to [`MAX_LABEL_BYTES`]: something selects this kind by label.
    Selectable,
    /// Only the marks: nothing selects this kind by label.
    MarksOnly,
}

/// Metadata every kind keeps: no managedFields, only the annotations read,
/// labels as `labels` says.
pub fn metadata(meta: &mut ObjectMeta, labels: Labels) {
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.retain(|k, v| {
            k != LAST_APPLIED && !is_own_mark(k) && is_mark(k) && v.len() <= MAX_ANNOTATION_BYTES
        });
    }
    if let Some(all) = meta.labels.as_mut() {
        all.retain(|k, _| !is_own_mark(k));
        let size: usize = all.iter().map(|(k, v)| k.len() + v.len()).sum();
        let keep_all = labels == Labels::Selectable && size <= MAX_LABEL_BYTES;
        if !keep_all {
            all.retain(|k, v| is_mark(k) && v.len() <= 63);
            if labels == Labels::Selectable {
                mark(meta, LABELS_TRUNCATED, size);
            }
        }
    }
}

fn mark(meta: &mut ObjectMeta, key: &str, count: usize) {
    meta.annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(key.to_string(), count.to_string());
}

fn subjects(meta: &mut ObjectMeta, subjects: &mut Option<Vec<Subject>>) {
    if let Some(list) = subjects.as_mut() {
        if list.len() > MAX_SUBJECTS {
            let had = list.len();
            list.truncate(MAX_SUBJECTS);
            list.shrink_to_fit();
            mark(meta, SUBJECTS_TRUNCATED, had);
        }
    }
}

fn cap_list(list: &mut Option<Vec<String>>, wide: Option<&str>) {
    if let Some(items) = list.as_mut() {
        if items.len() > MAX_RULE_ITEMS {
            match wide {
                Some(w) => *items = vec![w.to_string()],
                // resourceNames: no list means every name.
                None => *list = None,
            }
        }
    }
}

fn rules(meta: &mut ObjectMeta, rules: &mut Option<Vec<PolicyRule>>) {
    let Some(list) = rules.as_mut() else { return };
    for rule in list.iter_mut() {
        cap_list(&mut rule.api_groups, Some("*"));
        cap_list(&mut rule.resources, Some("*"));
        if rule.verbs.len() > MAX_RULE_ITEMS {
            rule.verbs = vec!["*".to_string()];
        }
        cap_list(&mut rule.resource_names, None);
        cap_list(&mut rule.non_resource_urls, Some("*"));
    }
    if list.len() > MAX_RULES {
        let had = list.len();
        list.truncate(MAX_RULES - 1);
        list.push(wildcard_rule());
        list.shrink_to_fit();
        mark(meta, RULES_TRUNCATED, had);
    }
}

/// Every verb on every resource: what the rules cut from a role are read as.
pub fn wildcard_rule() -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec!["*".into()]),
        resources: Some(vec!["*".into()]),
        verbs: vec!["*".into()],
        ..Default::default()
    }
}

/// A RoleBinding as memory keeps it.
pub fn role_binding(rb: &mut RoleBinding) {
    metadata(&mut rb.metadata, Labels::Selectable);
    subjects(&mut rb.metadata, &mut rb.subjects);
}

/// A ClusterRoleBinding as memory keeps it.
pub fn cluster_role_binding(crb: &mut ClusterRoleBinding) {
    metadata(&mut crb.metadata, Labels::Selectable);
    subjects(&mut crb.metadata, &mut crb.subjects);
}

/// A Role as memory keeps it (nothing selects Roles by label).
pub fn role(r: &mut Role) {
    metadata(&mut r.metadata, Labels::MarksOnly);
    rules(&mut r.metadata, &mut r.rules);
}

/// A ClusterRole as memory keeps it (aggregation selects ClusterRoles by label).
pub fn cluster_role(r: &mut ClusterRole) {
    metadata(&mut r.metadata, Labels::Selectable);
    rules(&mut r.metadata, &mut r.rules);
}

/// A ServiceAccount as memory keeps it: that it exists, and Gatehouse's labels.
pub fn service_account(sa: &mut ServiceAccount) {
    metadata(&mut sa.metadata, Labels::MarksOnly);
    sa.secrets = None;
    sa.image_pull_secrets = None;
}

/// How many subjects the binding had, when memory holds only some of them.
pub fn subjects_truncated_from(meta: &ObjectMeta) -> Option<usize> {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(SUBJECTS_TRUNCATED))
        .and_then(|v| v.parse().ok())
}

/// Whether memory holds only some of the object's labels.
pub fn labels_truncated(meta: &ObjectMeta) -> bool {
    meta.annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(LABELS_TRUNCATED))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(i: usize) -> Subject {
        Subject {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "User".into(),
            name: format!("user-{i:05}"),
            namespace: None,
        }
    }

    fn binding(subjects: usize) -> RoleBinding {
        RoleBinding {
            metadata: ObjectMeta {
                name: Some("big".into()),
                annotations: Some(BTreeMap::from([
                    (LAST_APPLIED.to_string(), "x".repeat(100_000)),
                    ("meta.helm.sh/release-name".to_string(), "web".to_string()),
                    ("tenant.example/notes".to_string(), "y".repeat(10_000)),
                    // A tenant cannot forge the operator's own marks.
                    (SUBJECTS_TRUNCATED.to_string(), "1".to_string()),
                ])),
                labels: Some(BTreeMap::from([("team".to_string(), "payments".to_string())])),
                ..Default::default()
            },
            subjects: Some((0..subjects).map(user).collect()),
            ..Default::default()
        }
    }

    #[test]
    fn a_binding_keeps_its_marks_and_labels_and_at_most_the_cap_of_subjects() {
        let mut rb = binding(15_000);
        role_binding(&mut rb);
        let subjects = rb.subjects.as_ref().unwrap();
        assert_eq!(subjects.len(), MAX_SUBJECTS);
        assert_eq!(subjects[0], user(0));
        assert_eq!(subjects_truncated_from(&rb.metadata), Some(15_000));
        let annotations = rb.metadata.annotations.as_ref().unwrap();
        assert_eq!(
            annotations.get("meta.helm.sh/release-name").map(String::as_str),
            Some("web")
        );
        assert!(!annotations.contains_key(LAST_APPLIED));
        assert!(!annotations.contains_key("tenant.example/notes"));
        assert_eq!(
            rb.metadata
                .labels
                .as_ref()
                .unwrap()
                .get("team")
                .map(String::as_str),
            Some("payments")
        );
        assert!(!labels_truncated(&rb.metadata));
    }

    #[test]
    fn a_small_binding_is_unchanged_and_a_forged_mark_is_dropped() {
        let mut rb = binding(3);
        role_binding(&mut rb);
        assert_eq!(rb.subjects.as_ref().unwrap().len(), 3);
        assert_eq!(subjects_truncated_from(&rb.metadata), None);
    }

    #[test]
    fn oversized_labels_keep_only_the_marks_and_say_so() {
        let mut rb = binding(1);
        let labels = rb.metadata.labels.as_mut().unwrap();
        for i in 0..1000 {
            labels.insert(format!("pad-{i}"), "z".repeat(60));
        }
        labels.insert("app.kubernetes.io/managed-by".into(), "Helm".into());
        role_binding(&mut rb);
        let labels = rb.metadata.labels.as_ref().unwrap();
        assert_eq!(labels.len(), 1);
        assert!(labels_truncated(&rb.metadata));
    }

    #[test]
    fn a_role_cut_short_is_read_as_widely_as_possible() {
        let rule = |i: usize| PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec![format!("r{i}")]),
            verbs: vec!["get".into()],
            resource_names: Some((0..1000).map(|n| format!("n{n}")).collect()),
            ..Default::default()
        };
        let mut r = Role {
            rules: Some((0..1000).map(rule).collect()),
            ..Default::default()
        };
        role(&mut r);
        let rules = r.rules.as_ref().unwrap();
        assert_eq!(rules.len(), MAX_RULES);
        assert_eq!(
            rules[0].resource_names, None,
            "cut resource names mean every name"
        );
        let last = rules.last().unwrap();
        assert_eq!(last.verbs, vec!["*".to_string()]);
        assert_eq!(last.resources, Some(vec!["*".to_string()]));
        let verbs = (0..1000).map(|i| format!("v{i}")).collect();
        let mut wide = Role {
            rules: Some(vec![PolicyRule {
                verbs,
                ..Default::default()
            }]),
            ..Default::default()
        };
        role(&mut wide);
        assert_eq!(wide.rules.unwrap()[0].verbs, vec!["*".to_string()]);
    }

    #[test]
    fn a_service_account_keeps_only_its_name_and_gatehouse_labels() {
        let mut sa = ServiceAccount {
            metadata: ObjectMeta {
                name: Some("builder".into()),
                labels: Some(BTreeMap::from([
                    ("gatehouse.dev/request-name".to_string(), "r1".to_string()),
                    ("pad".to_string(), "p".to_string()),
                ])),
                ..Default::default()
            },
            secrets: Some(vec![Default::default(); 100]),
            ..Default::default()
        };
        service_account(&mut sa);
        assert_eq!(sa.secrets, None);
        let labels = sa.metadata.labels.unwrap();
        assert_eq!(labels.len(), 1);
        assert!(labels.contains_key("gatehouse.dev/request-name"));
    }
}
