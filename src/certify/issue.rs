//! Which items the operator issued: the only ones whose reviews decide anything.
//!
//! An AccessCertification names the binding to review and who reviews it, and a
//! final Revoke on it makes the operator remove access. So the operator trusts
//! an item only if it wrote it, which the item proves in two ways a tenant
//! cannot forge:
//!
//! - it lives in its campaign's review namespace (a namespace admin can create
//!   objects in her own namespace, never in the review namespace), and
//! - its status carries [`spec_digest`] of its spec, written by the operator
//!   right after it created the item. Status is a subresource that only holders
//!   of the `write-status` verb at cluster scope may write (the
//!   `gatehouse-status-writer` admission policy), and the spec is immutable, so
//!   the digest ties this exact spec to the operator's own write.
//!
//! Between the create and the status write the item has no digest yet: for
//! [`ISSUE_GRACE`] after its creation it is [`Issuance::Awaiting`] (it decides
//! nothing, and is looked at again), after that it is not issued. [`issued`]
//! adds the campaign's side: it exists, it owns the item, and it records the
//! item's run (its watch may show the run a moment after the items).

use chrono::{DateTime, Duration, Utc};
use kube::Resource;

use crate::api::{AccessCampaign, AccessCertification, AccessCertificationSpec};

/// How long an item may wait for its digest (or its campaign's record of the
/// run) after its creation before it counts as not issued.
pub const ISSUE_GRACE: Duration = Duration::seconds(60);

/// The digest of an issued spec, as recorded in `status.issuedDigest`:
/// `sha256:` and the hex SHA-256 of the spec's JSON (field order fixed by the
/// type, so the same spec always gives the same digest).
pub fn spec_digest(spec: &AccessCertificationSpec) -> String {
    // Serializing a plain struct of strings, enums and timestamps cannot fail;
    // should it ever, the digest of nothing matches no issued item.
    let json = serde_json::to_vec(spec).unwrap_or_default();
    format!("sha256:{}", crate::digest::sha256_hex(&json))
}

/// Whether an item is one the operator issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Issuance {
    /// In the review namespace, with the digest of its spec.
    Issued,
    /// No digest yet, and young enough for the operator's status write to come.
    Awaiting,
    /// Not issued by the operator: it decides nothing and removes nothing.
    NotIssued(NotIssued),
}

/// Why an item is not one the operator issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotIssued {
    /// The item is not in its campaign's review namespace.
    OutsideReviewNamespace {
        /// Where the item is.
        namespace: String,
        /// Where the campaign's items live.
        review_namespace: String,
    },
    /// The status carries no digest, past the grace period.
    NoDigest,
    /// The status carries a digest of another spec.
    DigestMismatch,
    /// The campaign the item names does not exist (past the grace period).
    NoCampaign {
        /// The campaign named.
        campaign: String,
    },
    /// The campaign does not own the item: the operator did not create it.
    NotOwned {
        /// The campaign named.
        campaign: String,
        /// Its uid.
        uid: String,
    },
    /// The campaign records no such run (past the grace period).
    UnknownRun {
        /// The run named.
        run: String,
        /// The campaign named.
        campaign: String,
    },
}

impl std::fmt::Display for NotIssued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotIssued::OutsideReviewNamespace {
                namespace,
                review_namespace,
            } => write!(
                f,
                "it is in namespace {namespace}, but its campaign's items live in {review_namespace}"
            ),
            NotIssued::NoDigest => f.write_str(
                "its status does not carry the digest the operator records when it issues an item",
            ),
            NotIssued::DigestMismatch => {
                f.write_str("its status carries the digest of another spec than its own")
            }
            NotIssued::NoCampaign { campaign } => write!(f, "campaign {campaign} does not exist"),
            NotIssued::NotOwned { campaign, uid } => write!(
                f,
                "it is not owned by campaign {campaign} (uid {uid}): the operator did not create it"
            ),
            NotIssued::UnknownRun { run, campaign } => {
                write!(f, "run {run} is not a run of campaign {campaign}")
            }
        }
    }
}

/// Whether `item` is one the operator issued, for a campaign whose items live in
/// `review_namespace`, at `now`.
pub fn issuance(item: &AccessCertification, review_namespace: &str, now: DateTime<Utc>) -> Issuance {
    let namespace = item.metadata.namespace.clone().unwrap_or_default();
    if namespace != review_namespace {
        return Issuance::NotIssued(NotIssued::OutsideReviewNamespace {
            namespace,
            review_namespace: review_namespace.to_string(),
        });
    }
    let recorded = item.status.as_ref().and_then(|s| s.issued_digest.as_deref());
    match recorded {
        Some(d) if d == spec_digest(&item.spec) => Issuance::Issued,
        Some(_) => Issuance::NotIssued(NotIssued::DigestMismatch),
        None => {
            if young(item, now) {
                Issuance::Awaiting
            } else {
                Issuance::NotIssued(NotIssued::NoDigest)
            }
        }
    }
}

fn young(item: &AccessCertification, now: DateTime<Utc>) -> bool {
    item.metadata
        .creation_timestamp
        .as_ref()
        .and_then(crate::decide::to_chrono)
        .is_some_and(|t| now - t < ISSUE_GRACE)
}

/// Whether the operator issued `item` for a run of its campaign (`None`: memory
/// shows no campaign of that name): the campaign owns it, it is [`issuance`]
/// issued in the campaign's review namespace, and the campaign records its run.
/// A young item waits ([`Issuance::Awaiting`]) for what may still be on its way.
pub fn issued(item: &AccessCertification, campaign: Option<&AccessCampaign>, now: DateTime<Utc>) -> Issuance {
    let spec = &item.spec;
    let young = young(item, now);
    let Some(campaign) = campaign else {
        return match young {
            true => Issuance::Awaiting,
            false => Issuance::NotIssued(NotIssued::NoCampaign {
                campaign: spec.campaign.clone(),
            }),
        };
    };
    let uid = campaign.meta().uid.as_ref();
    let owned =
        item.metadata.owner_references.iter().flatten().any(|o| {
            o.controller == Some(true) && o.kind == AccessCampaign::kind(&()) && Some(&o.uid) == uid
        });
    if !owned {
        return Issuance::NotIssued(NotIssued::NotOwned {
            campaign: spec.campaign.clone(),
            uid: uid.cloned().unwrap_or_default(),
        });
    }
    // Only in the review namespace, and only with the digest of the spec the
    // operator issued: an item a tenant created elsewhere (or slipped past the
    // admission policies) is never trusted, whatever its owner reference says.
    let review_namespace = campaign
        .spec
        .review_namespace
        .as_deref()
        .unwrap_or(super::DEFAULT_REVIEW_NAMESPACE);
    let issuance = match issuance(item, review_namespace, now) {
        Issuance::NotIssued(why) => return Issuance::NotIssued(why),
        other => other,
    };
    let recorded = campaign
        .status
        .as_ref()
        .is_some_and(|s| s.runs.iter().any(|r| r.name == spec.run));
    match (recorded, young) {
        (true, _) if issuance == Issuance::Issued => Issuance::Issued,
        (true, _) | (false, true) => Issuance::Awaiting,
        (false, false) => Issuance::NotIssued(NotIssued::UnknownRun {
            run: spec.run.clone(),
            campaign: spec.campaign.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{AccessCertificationStatus, BindingKind, BindingSnapshot};
    use crate::certify::tests::k8s_time;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn item(ns: &str, digest: Option<String>) -> AccessCertification {
        let mut item = AccessCertification::new(
            "quarterly-20261001-0700-devs-edit-bob-0c0ffee0",
            AccessCertificationSpec {
                campaign: "quarterly".into(),
                run: "quarterly-20261001-0700".into(),
                started_at: at("2026-10-01T07:00:00Z"),
                due_at: at("2026-10-15T07:00:00Z"),
                binding: BindingSnapshot {
                    kind: BindingKind::ClusterRoleBinding,
                    name: "devs-edit".into(),
                    uid: "b-1".into(),
                    ..Default::default()
                },
                rules_digest: "sha256:roles".into(),
                ..Default::default()
            },
        );
        item.metadata.namespace = Some(ns.into());
        item.metadata.creation_timestamp = Some(k8s_time(at("2026-10-01T07:00:01Z")));
        item.status = Some(AccessCertificationStatus {
            issued_digest: digest,
            ..Default::default()
        });
        item
    }

    #[test]
    fn the_digest_is_stable_and_changes_with_any_field() {
        let a = item("gatehouse-system", None);
        assert_eq!(spec_digest(&a.spec), spec_digest(&a.clone().spec));
        assert!(spec_digest(&a.spec).starts_with("sha256:"));
        assert_eq!(spec_digest(&a.spec).len(), "sha256:".len() + 64);
        let mut b = a.clone();
        b.spec.binding.uid = "b-2".into();
        assert_ne!(spec_digest(&a.spec), spec_digest(&b.spec));
        let mut c = a.clone();
        c.spec.review.levels.push(Default::default());
        assert_ne!(spec_digest(&a.spec), spec_digest(&c.spec));
        // What the API server stores and gives back digests the same.
        let stored: AccessCertificationSpec =
            serde_json::from_value(serde_json::to_value(&a.spec).unwrap()).unwrap();
        assert_eq!(spec_digest(&stored), spec_digest(&a.spec));
    }

    #[test]
    fn an_item_with_its_digest_in_the_review_namespace_is_issued() {
        let mut i = item("gatehouse-system", None);
        i.status.as_mut().unwrap().issued_digest = Some(spec_digest(&i.spec));
        let late = at("2026-12-01T00:00:00Z");
        assert_eq!(issuance(&i, "gatehouse-system", late), Issuance::Issued);
    }

    #[test]
    fn an_item_outside_the_review_namespace_is_never_issued() {
        // A tenant's copy in her own namespace, even with the right digest.
        let mut i = item("team-a", None);
        i.status.as_mut().unwrap().issued_digest = Some(spec_digest(&i.spec));
        let soon = at("2026-10-01T07:00:02Z");
        assert_eq!(
            issuance(&i, "gatehouse-system", soon),
            Issuance::NotIssued(NotIssued::OutsideReviewNamespace {
                namespace: "team-a".into(),
                review_namespace: "gatehouse-system".into()
            })
        );
    }

    #[test]
    fn without_a_digest_an_item_waits_out_the_grace_then_is_not_issued() {
        let i = item("gatehouse-system", None);
        assert_eq!(
            issuance(&i, "gatehouse-system", at("2026-10-01T07:00:30Z")),
            Issuance::Awaiting
        );
        assert_eq!(
            issuance(&i, "gatehouse-system", at("2026-10-01T07:01:01Z")),
            Issuance::NotIssued(NotIssued::NoDigest)
        );
        // Without a creation time there is nothing to wait for.
        let mut undated = i.clone();
        undated.metadata.creation_timestamp = None;
        assert_eq!(
            issuance(&undated, "gatehouse-system", at("2026-10-01T07:00:30Z")),
            Issuance::NotIssued(NotIssued::NoDigest)
        );
    }

    #[test]
    fn a_digest_of_another_spec_is_refused_at_once() {
        let mut other = item("gatehouse-system", None);
        other.spec.binding.name = "cluster-admins".into();
        let i = item("gatehouse-system", Some(spec_digest(&other.spec)));
        assert_eq!(
            issuance(&i, "gatehouse-system", at("2026-10-01T07:00:02Z")),
            Issuance::NotIssued(NotIssued::DigestMismatch)
        );
    }

    fn quarterly(runs: &[&str]) -> AccessCampaign {
        let mut c = AccessCampaign::new("quarterly", Default::default());
        c.metadata.uid = Some("uid-campaign".into());
        c.status = Some(crate::api::AccessCampaignStatus {
            runs: runs
                .iter()
                .map(|r| crate::api::CampaignRun {
                    name: r.to_string(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        });
        c
    }

    fn owned_by(mut i: AccessCertification, uid: &str) -> AccessCertification {
        i.metadata.owner_references = Some(vec![
            k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
                api_version: "gatehouse.dev/v1alpha1".into(),
                kind: "AccessCampaign".into(),
                name: "quarterly".into(),
                uid: uid.into(),
                controller: Some(true),
                ..Default::default()
            },
        ]);
        i
    }

    #[test]
    fn an_item_is_issued_only_when_its_campaign_owns_it_and_records_its_run() {
        let mut i = owned_by(item("gatehouse-system", None), "uid-campaign");
        i.status.as_mut().unwrap().issued_digest = Some(spec_digest(&i.spec));
        let (soon, late) = (at("2026-10-01T07:00:30Z"), at("2026-10-01T08:00:00Z"));
        let run = "quarterly-20261001-0700";
        assert_eq!(issued(&i, Some(&quarterly(&[run])), late), Issuance::Issued);

        // What may still be on its way is waited for, then refused.
        assert_eq!(issued(&i, None, soon), Issuance::Awaiting);
        assert_eq!(
            issued(&i, None, late).to_string_reason(),
            "campaign quarterly does not exist"
        );
        assert_eq!(issued(&i, Some(&quarterly(&[])), soon), Issuance::Awaiting);
        assert_eq!(
            issued(&i, Some(&quarterly(&[])), late).to_string_reason(),
            format!("run {run} is not a run of campaign quarterly")
        );
        // A campaign of the same name that did not make it (another uid), at once.
        let forged = owned_by(i.clone(), "uid-other");
        assert_eq!(
            issued(&forged, Some(&quarterly(&[run])), soon).to_string_reason(),
            "it is not owned by campaign quarterly (uid uid-campaign): the operator did not create it"
        );
        // Owned and recorded, but no digest yet: waits, then is not issued.
        let undigested = owned_by(item("gatehouse-system", None), "uid-campaign");
        assert_eq!(
            issued(&undigested, Some(&quarterly(&[run])), soon),
            Issuance::Awaiting
        );
        assert_eq!(
            issued(&undigested, Some(&quarterly(&[run])), late),
            Issuance::NotIssued(NotIssued::NoDigest)
        );
    }

    impl Issuance {
        fn to_string_reason(&self) -> String {
            match self {
                Issuance::NotIssued(why) => why.to_string(),
                other => format!("{other:?}"),
            }
        }
    }
}
