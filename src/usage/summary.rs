//! The persisted summary of one binding (`BindingUsage`): its object name, and
//! the conversion between its status and the book's pairs. Pure: the operator
//! reads and writes the objects (`controller::usage_flush`).

use chrono::{Datelike, NaiveDate};

use super::{
    book::{PairKey, PairUsage, Settings, Top},
    BindingRef,
};
use crate::api::{
    BindingKind, BindingUsageSpec, BindingUsageStatus, Counted, RoleRef, Subject, SubjectUsage,
};

/// The most subjects one object lists (the most recently used kept): with 90
/// days of counts, 8 actions and 4 actors each, an object stays well under the
/// API server's 1.5 MiB.
pub const MAX_SUBJECTS: usize = 100;

/// The object's name: `rb-` or `crb-` and a SHA-256 of the binding's kind,
/// namespace and name (any binding name, however long or odd, gives a valid
/// and distinct object name).
pub fn object_name(b: &BindingRef) -> String {
    let prefix = match b.kind {
        BindingKind::RoleBinding => "rb",
        BindingKind::ClusterRoleBinding => "crb",
    };
    let key = format!(
        "{:?}\0{}\0{}",
        b.kind,
        b.namespace.as_deref().unwrap_or_default(),
        b.name
    );
    let digest = crate::digest::sha256_hex(key.as_bytes());
    format!("{prefix}-{}", digest.get(..40).unwrap_or(&digest))
}

/// The spec naming the binding.
pub fn spec_of(b: &BindingRef) -> BindingUsageSpec {
    BindingUsageSpec {
        kind: b.kind,
        namespace: b.namespace.clone(),
        name: b.name.clone(),
    }
}

/// The binding a spec names.
pub fn binding_of(spec: &BindingUsageSpec) -> BindingRef {
    BindingRef {
        kind: spec.kind,
        namespace: spec.namespace.clone(),
        name: spec.name.clone(),
    }
}

fn counted(t: &Top) -> Vec<Counted> {
    t.ranked()
        .into_iter()
        .map(|(name, count)| Counted {
            name: name.to_string(),
            count,
        })
        .collect()
}

/// The status of a binding's summary: its pairs (the [`MAX_SUBJECTS`] most
/// recently used) and the start of the observation.
pub fn status_of<'a>(
    pairs: impl IntoIterator<Item = (&'a PairKey, &'a PairUsage)>,
    observed_since: Option<chrono::DateTime<chrono::Utc>>,
) -> BindingUsageStatus {
    let mut v: Vec<(&PairKey, &PairUsage)> = pairs.into_iter().collect();
    v.sort_by(|a, b| b.1.last_used.cmp(&a.1.last_used).then(a.0.cmp(b.0)));
    v.truncate(MAX_SUBJECTS);
    let subjects: Vec<SubjectUsage> = v
        .iter()
        .map(|(k, p)| SubjectUsage {
            kind: k.subject.kind,
            name: k.subject.name.clone(),
            namespace: k.subject.namespace.clone(),
            role_kind: p.role.kind,
            role_name: p.role.name.clone(),
            first_used_at: p.first_used,
            last_used_at: p.last_used,
            requests: p.requests(),
            daily: p
                .daily()
                .map(|(d, n)| (d.format("%Y-%m-%d").to_string(), n))
                .collect(),
            top_actions: counted(&p.actions),
            top_actors: counted(&p.actors),
        })
        .collect();
    BindingUsageStatus {
        observed_since,
        last_used_at: subjects.iter().map(|s| s.last_used_at).max(),
        requests: subjects.iter().fold(0u64, |a, s| a.saturating_add(s.requests)),
        subject_count: u32::try_from(subjects.len()).unwrap_or(u32::MAX),
        subjects,
        writers: Vec::new(),
    }
}

/// The pairs a stored status holds, read leniently: days that are not dates are
/// skipped, and the book's caps apply whatever the object says (anyone who may
/// write the object could have written anything).
pub fn pairs_of(
    spec: &BindingUsageSpec,
    status: &BindingUsageStatus,
    s: Settings,
) -> Vec<(PairKey, PairUsage)> {
    let binding = binding_of(spec);
    status
        .subjects
        .iter()
        .take(MAX_SUBJECTS)
        .map(|u| {
            let key = PairKey {
                binding: binding.clone(),
                subject: Subject {
                    kind: u.kind,
                    name: u.name.clone(),
                    namespace: u.namespace.clone(),
                },
            };
            let mut p = PairUsage::empty(
                RoleRef {
                    kind: u.role_kind,
                    name: u.role_name.clone(),
                },
                u.first_used_at,
                u.last_used_at,
            );
            for (d, n) in &u.daily {
                if let Ok(d) = NaiveDate::parse_from_str(d, "%Y-%m-%d") {
                    p.add_day(d.num_days_from_ce(), *n);
                }
            }
            let top =
                |c: &[Counted], cap| Top::from_counts(c.iter().map(|c| (c.name.as_str(), c.count)), cap);
            // Through merge, so the retention and the caps are applied.
            let mut kept = PairUsage::empty(p.role.clone(), p.first_used, p.last_used);
            p.actions = top(&u.top_actions, s.max_actions);
            p.actors = top(&u.top_actors, s.max_actors);
            kept.merge(&p, super::Merge::Join, s);
            (key, kept)
        })
        .collect()
}
