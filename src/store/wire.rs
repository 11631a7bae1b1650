//! The kinds a tenant can make a megabyte each (RoleBindings, Roles,
//! ServiceAccounts), read from the API server with their lists capped *while
//! the JSON is parsed*.
//!
//! [`super::trim`] bounds what memory keeps; but an object parsed whole first
//! costs three to four times its JSON size for a moment (a 1 MB binding of
//! 15,000 subjects is ~4 MB of typed subjects), a list page of such objects a
//! hundred megabytes, and the allocator keeps what it once held. So these kinds
//! are listed and watched as the wire types here, whose lists stop collecting at
//! the cap and only count the rest (serde's `IgnoredAny` skips them without
//! allocating), whose annotations keep only the marks the operator reads, and
//! which become the ordinary Kubernetes types, marked as [`super::trim`] marks
//! them, before anything else sees them.

use std::{collections::BTreeMap, fmt, marker::PhantomData};

use k8s_openapi::{
    api::{
        core::v1::ServiceAccount,
        rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject},
    },
    apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time},
    NamespaceResourceScope,
};
use serde::{
    de::{IgnoredAny, MapAccess, SeqAccess, Visitor},
    Deserialize, Deserializer,
};

use super::trim::{
    self, LABELS_TRUNCATED, MAX_ANNOTATION_BYTES, MAX_LABEL_BYTES, MAX_RULES, MAX_RULE_ITEMS, MAX_SUBJECTS,
    RULES_TRUNCATED, SUBJECTS_TRUNCATED,
};

/// At most `MAX` elements of a JSON array, and how many it had.
#[derive(Debug, Clone)]
pub struct Capped<T, const MAX: usize> {
    /// The first `MAX` elements.
    pub kept: Vec<T>,
    /// How many the array had.
    pub total: usize,
}

impl<T, const MAX: usize> Capped<T, MAX> {
    /// Whether elements were left out.
    pub fn cut(&self) -> bool {
        self.total > self.kept.len()
    }
}

impl<'de, T: Deserialize<'de>, const MAX: usize> Deserialize<'de> for Capped<T, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Seq<T, const MAX: usize>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>, const MAX: usize> Visitor<'de> for Seq<T, MAX> {
            type Value = Capped<T, MAX>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut kept = Vec::new();
                let mut total = 0;
                loop {
                    if kept.len() < MAX {
                        match seq.next_element::<T>()? {
                            Some(v) => kept.push(v),
                            None => break,
                        }
                    } else if seq.next_element::<IgnoredAny>()?.is_none() {
                        break;
                    }
                    total += 1;
                }
                Ok(Capped { kept, total })
            }
        }
        d.deserialize_seq(Seq::<T, MAX>(PhantomData))
    }
}

/// A JSON object of strings read as labels: whole up to [`MAX_LABEL_BYTES`];
/// past it only the marks, and the size it had.
#[derive(Debug, Clone, Default)]
struct LabelMap {
    kept: BTreeMap<String, String>,
    marks: BTreeMap<String, String>,
    bytes: usize,
}

impl<'de> Deserialize<'de> for LabelMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Map;
        impl<'de> Visitor<'de> for Map {
            type Value = LabelMap;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = LabelMap::default();
                while let Some(key) = map.next_key::<String>()? {
                    let value: String = map.next_value()?;
                    out.bytes += key.len() + value.len();
                    if trim::is_mark(&key) && value.len() <= 63 {
                        out.marks.insert(key.clone(), value.clone());
                    }
                    if out.bytes <= MAX_LABEL_BYTES {
                        out.kept.insert(key, value);
                    } else {
                        out.kept.clear();
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_map(Map)
    }
}

/// A JSON object of strings read as annotations: only the marks the operator
/// reads; every other value is skipped without being kept.
#[derive(Debug, Clone, Default)]
struct MarkMap(BTreeMap<String, String>);

impl<'de> Deserialize<'de> for MarkMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Map;
        impl<'de> Visitor<'de> for Map {
            type Value = MarkMap;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = BTreeMap::new();
                while let Some(key) = map.next_key::<String>()? {
                    if trim::is_mark(&key) && !trim::is_own_mark(&key) {
                        let value: String = map.next_value()?;
                        if value.len() <= MAX_ANNOTATION_BYTES {
                            out.insert(key, value);
                        }
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(MarkMap(out))
            }
        }
        d.deserialize_map(Map)
    }
}

/// The metadata the operator reads; managedFields and every annotation it does
/// not read are skipped while parsing.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireMeta {
    name: Option<String>,
    namespace: Option<String>,
    uid: Option<String>,
    resource_version: Option<String>,
    generation: Option<i64>,
    creation_timestamp: Option<Time>,
    deletion_timestamp: Option<Time>,
    labels: Option<LabelMap>,
    annotations: Option<MarkMap>,
    owner_references: Option<Capped<OwnerReference, 16>>,
}

fn metadata<'de, D: Deserializer<'de>>(d: D) -> Result<ObjectMeta, D::Error> {
    let w = WireMeta::deserialize(d)?;
    let mut annotations = w.annotations.map(|a| a.0).unwrap_or_default();
    let labels = w.labels.map(|l| {
        if l.bytes > MAX_LABEL_BYTES {
            annotations.insert(LABELS_TRUNCATED.to_string(), l.bytes.to_string());
            l.marks
        } else {
            l.kept
        }
    });
    Ok(ObjectMeta {
        name: w.name,
        namespace: w.namespace,
        uid: w.uid,
        resource_version: w.resource_version,
        generation: w.generation,
        creation_timestamp: w.creation_timestamp,
        deletion_timestamp: w.deletion_timestamp,
        labels,
        annotations: (!annotations.is_empty()).then_some(annotations),
        owner_references: w.owner_references.map(|o| o.kept),
        ..Default::default()
    })
}

fn mark(meta: &mut ObjectMeta, key: &str, count: usize) {
    meta.annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(key.to_string(), count.to_string());
}

macro_rules! wire_resource {
    ($wire:ident, $kind:literal, $plural:literal, $group:literal, $api_version:literal) => {
        impl k8s_openapi::Resource for $wire {
            const API_VERSION: &'static str = $api_version;
            const GROUP: &'static str = $group;
            const KIND: &'static str = $kind;
            const VERSION: &'static str = "v1";
            const URL_PATH_SEGMENT: &'static str = $plural;
            type Scope = NamespaceResourceScope;
        }

        impl k8s_openapi::Metadata for $wire {
            type Ty = ObjectMeta;
            fn metadata(&self) -> &ObjectMeta {
                &self.metadata
            }
            fn metadata_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }
    };
}

/// A RoleBinding on the wire: subjects capped at [`MAX_SUBJECTS`].
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireRoleBinding {
    #[serde(deserialize_with = "metadata")]
    metadata: ObjectMeta,
    role_ref: RoleRef,
    subjects: Option<Capped<Subject, MAX_SUBJECTS>>,
}

wire_resource!(
    WireRoleBinding,
    "RoleBinding",
    "rolebindings",
    "rbac.authorization.k8s.io",
    "rbac.authorization.k8s.io/v1"
);

impl From<WireRoleBinding> for RoleBinding {
    fn from(w: WireRoleBinding) -> Self {
        let mut metadata = w.metadata;
        if let Some(s) = w.subjects.as_ref().filter(|s| s.cut()) {
            mark(&mut metadata, SUBJECTS_TRUNCATED, s.total);
        }
        RoleBinding {
            metadata,
            role_ref: w.role_ref,
            subjects: w.subjects.map(|s| s.kept),
        }
    }
}

type Items = Option<Capped<String, MAX_RULE_ITEMS>>;

/// A rule on the wire: each list capped; a cut list is read as widely as
/// possible (as [`super::trim`] does).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireRule {
    api_groups: Items,
    resources: Items,
    resource_names: Items,
    #[serde(rename = "nonResourceURLs")]
    non_resource_urls: Items,
    verbs: Capped<String, MAX_RULE_ITEMS>,
}

fn wide(items: Items) -> Option<Vec<String>> {
    items.map(|i| if i.cut() { vec!["*".to_string()] } else { i.kept })
}

impl From<WireRule> for PolicyRule {
    fn from(w: WireRule) -> Self {
        PolicyRule {
            api_groups: wide(w.api_groups),
            resources: wide(w.resources),
            // A cut list of names means every name: no list.
            resource_names: w.resource_names.and_then(|i| (!i.cut()).then_some(i.kept)),
            non_resource_urls: wide(w.non_resource_urls),
            verbs: if w.verbs.cut() {
                vec!["*".to_string()]
            } else {
                w.verbs.kept
            },
        }
    }
}

/// A Role on the wire: rules capped at [`MAX_RULES`].
#[derive(Debug, Clone, Deserialize)]
pub struct WireRole {
    #[serde(deserialize_with = "metadata")]
    metadata: ObjectMeta,
    rules: Option<Capped<WireRule, MAX_RULES>>,
}

wire_resource!(
    WireRole,
    "Role",
    "roles",
    "rbac.authorization.k8s.io",
    "rbac.authorization.k8s.io/v1"
);

impl From<WireRole> for Role {
    fn from(w: WireRole) -> Self {
        let mut metadata = w.metadata;
        let rules = w.rules.map(|r| {
            let cut = r.cut();
            let mut rules: Vec<PolicyRule> = r.kept.into_iter().map(PolicyRule::from).collect();
            if cut {
                mark(&mut metadata, RULES_TRUNCATED, r.total);
                rules.truncate(MAX_RULES - 1);
                rules.push(trim::wildcard_rule());
            }
            rules
        });
        // Nothing selects Roles by label: only the marks are kept.
        if let Some(labels) = metadata.labels.as_mut() {
            labels.retain(|k, _| trim::is_mark(k));
        }
        if let Some(a) = metadata.annotations.as_mut() {
            a.remove(LABELS_TRUNCATED);
        }
        Role { metadata, rules }
    }
}

/// A ServiceAccount on the wire: its metadata only.
#[derive(Debug, Clone, Deserialize)]
pub struct WireServiceAccount {
    #[serde(deserialize_with = "metadata")]
    metadata: ObjectMeta,
}

wire_resource!(WireServiceAccount, "ServiceAccount", "serviceaccounts", "", "v1");

impl From<WireServiceAccount> for ServiceAccount {
    fn from(w: WireServiceAccount) -> Self {
        let mut metadata = w.metadata;
        if let Some(labels) = metadata.labels.as_mut() {
            labels.retain(|k, _| trim::is_mark(k));
        }
        if let Some(a) = metadata.annotations.as_mut() {
            a.remove(LABELS_TRUNCATED);
        }
        ServiceAccount {
            metadata,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_megabyte_binding_is_read_as_its_first_subjects_and_their_count() {
        let subjects: Vec<_> = (0..15_000)
            .map(
                |i| json!({"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": format!("u{i}")}),
            )
            .collect();
        let body = json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "big", "namespace": "t", "uid": "u-1", "resourceVersion": "7",
                "labels": {"team": "a"},
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "x".repeat(500_000),
                    "meta.helm.sh/release-name": "web", SUBJECTS_TRUNCATED: "2"},
                "managedFields": [{"manager": "kubectl"}]},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": subjects,
        });
        let wire: WireRoleBinding = serde_json::from_value(body).unwrap();
        let rb = RoleBinding::from(wire);
        assert_eq!(rb.subjects.as_ref().unwrap().len(), MAX_SUBJECTS);
        assert_eq!(rb.subjects.as_ref().unwrap()[1].name, "u1");
        assert_eq!(trim::subjects_truncated_from(&rb.metadata), Some(15_000));
        assert_eq!(rb.metadata.uid.as_deref(), Some("u-1"));
        assert_eq!(
            rb.metadata.labels.unwrap().get("team").map(String::as_str),
            Some("a")
        );
        let annotations = rb.metadata.annotations.unwrap();
        assert_eq!(annotations.len(), 2, "{annotations:?}");
        assert_eq!(
            annotations.get("meta.helm.sh/release-name").map(String::as_str),
            Some("web")
        );
    }

    #[test]
    fn a_small_binding_reads_as_the_kubernetes_type_does() {
        let body = json!({
            "metadata": {"name": "devs", "namespace": "t", "labels": {"a": "b"},
                "ownerReferences": [{"apiVersion": "gatehouse.dev/v1alpha1", "kind": "ApprovalRequest", "name": "r", "uid": "q"}]},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "ServiceAccount", "name": "ci", "namespace": "t"}],
        });
        let plain: RoleBinding = serde_json::from_value(body.clone()).unwrap();
        let wire = RoleBinding::from(serde_json::from_value::<WireRoleBinding>(body).unwrap());
        assert_eq!(wire, plain);
    }

    #[test]
    fn padded_labels_keep_only_the_marks() {
        let mut labels = serde_json::Map::new();
        for i in 0..2000 {
            labels.insert(format!("pad-{i}"), json!("z".repeat(60)));
        }
        labels.insert("app.kubernetes.io/managed-by".into(), json!("Helm"));
        let body = json!({"metadata": {"name": "sa", "namespace": "t", "labels": labels}});
        let sa = ServiceAccount::from(serde_json::from_value::<WireServiceAccount>(body.clone()).unwrap());
        assert_eq!(sa.metadata.labels.unwrap().len(), 1);
        let body =
            json!({"metadata": body["metadata"], "roleRef": {"apiGroup": "", "kind": "Role", "name": "x"}});
        let rb = RoleBinding::from(serde_json::from_value::<WireRoleBinding>(body).unwrap());
        assert!(trim::labels_truncated(&rb.metadata));
        assert_eq!(rb.metadata.labels.unwrap().len(), 1);
    }

    #[test]
    fn a_role_of_thousands_of_rules_reads_as_its_first_ones_and_a_wildcard() {
        let rules: Vec<_> = (0..5000)
            .map(|i| json!({"apiGroups": [""], "resources": [format!("r{i}")], "verbs": ["get"]}))
            .collect();
        let body = json!({"metadata": {"name": "r", "namespace": "t"}, "rules": rules});
        let role = Role::from(serde_json::from_value::<WireRole>(body).unwrap());
        let rules = role.rules.unwrap();
        assert_eq!(rules.len(), MAX_RULES);
        assert_eq!(rules.last().unwrap().verbs, vec!["*".to_string()]);
        assert_eq!(
            role.metadata
                .annotations
                .unwrap()
                .get(RULES_TRUNCATED)
                .map(String::as_str),
            Some("5000")
        );
    }
}
