//! What the plugin writes: who the user is, request and review objects, and the
//! pre-check of a request against the policies the user can read.

use std::collections::BTreeMap;

use chrono::Utc;
use k8s_openapi::api::authentication::v1::{SelfSubjectReview, SelfSubjectReviewStatus};
use kube::{
    api::{Api, PostParams},
    Client, ResourceExt,
};

use crate::api::{
    AccessPolicy, AccessReview, AccessReviewSpec, ApprovalRequest, ApprovalRequestSpec, Decision, EnvVar,
    Identity, JobSpec, RequestRef, RequestType, RoleKind, RoleRef, Scope, Subject, SubjectKind,
};
use crate::decide::reason::DenialReason;

use super::*;

/// Asks the API server who the kubeconfig's credentials belong to (`kubectl auth
/// whoami`). With impersonation (`--as`) the answer is the impersonated user, which
/// is what the admission policies compare requests and reviews with.
pub async fn whoami(client: &Client, server: &str) -> Result<Identity, CliError> {
    let api: Api<SelfSubjectReview> = Api::all(client.clone());
    let blame = Blame {
        me: None,
        persona: Persona::default(),
        server,
    };
    let created = api
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .map_err(|e| {
            blame.error(
                Op::cluster(Verb::Create, Resource::SelfSubjectReviews, Place::Cluster),
                e,
            )
        })?;
    identity_from_review(created.status)
}

/// The identity in a SelfSubjectReview's status. All groups are kept: the admission
/// policy accepts any subset of the authenticated ones.
pub fn identity_from_review(status: Option<SelfSubjectReviewStatus>) -> Result<Identity, CliError> {
    let info = status.and_then(|s| s.user_info).ok_or(CliError::NoIdentity)?;
    let username = info
        .username
        .filter(|u| !u.is_empty())
        .ok_or(CliError::NoIdentity)?;
    Ok(Identity {
        username,
        groups: info.groups.unwrap_or_default(),
    })
}

/// Five random lowercase letters and digits, like `generateName` uses. The std
/// hasher's per-process random keys are random enough for a name suffix.
pub fn random_suffix() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Utc::now().timestamp_nanos_opt().unwrap_or_default() as u128);
    let mut n = h.finish();
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..5)
        .map(|_| {
            let c = ALPHABET[(n % ALPHABET.len() as u64) as usize] as char;
            n /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

/// Turns any text into something usable inside an object name: lowercase
/// alphanumerics and dashes ("alice@example.com" -> "alice-example-com").
pub fn name_part(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

/// The generated request name `<user>-<role>-<suffix>`, kept within the 253 characters
/// of an object name.
pub fn request_name(user: &str, role: &str, suffix: &str) -> String {
    let mut head = [name_part(user), name_part(role)]
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    head.truncate(240);
    let head = head.trim_end_matches('-');
    if head.is_empty() {
        format!("request-{suffix}")
    } else {
        format!("{head}-{suffix}")
    }
}

/// Builds the ApprovalRequest of `request`. Pure, so the object is unit-tested.
pub fn build_request(
    args: &RequestArgs,
    me: &Identity,
    namespace: &str,
    suffix: &str,
) -> Result<ApprovalRequest, CliError> {
    if args.cluster_wide && args.kind == KindArg::Role {
        return Err(CliError::Invalid(
            "--cluster-wide needs a ClusterRole: a Role exists only in its namespace (drop --kind Role or --cluster-wide)"
                .into(),
        ));
    }
    for d in args.duration.iter() {
        crate::decide::duration::parse(d).map_err(|e| CliError::Invalid(format!("--for: {e}")))?;
    }
    let subject = args.subject.as_deref().map(parse_subject).transpose()?;
    let job = one_time_job(args)?;
    if job.is_some() && subject.is_some() {
        return Err(CliError::Invalid(
            "--run and --subject do not go together: a OneTime job runs as its own ServiceAccount".into(),
        ));
    }
    let name = match &args.name {
        Some(n) => n.clone(),
        None => request_name(&me.username, &args.role, suffix),
    };
    let mut req = ApprovalRequest::new(
        &name,
        ApprovalRequestSpec {
            requester: me.clone(),
            role: RoleRef {
                kind: match args.kind {
                    KindArg::ClusterRole => RoleKind::ClusterRole,
                    KindArg::Role => RoleKind::Role,
                },
                name: args.role.clone(),
            },
            scope: if args.cluster_wide {
                Scope::Cluster
            } else {
                Scope::Namespace
            },
            duration: args.duration.clone(),
            reason: args.reason.clone(),
            policy: args.policy.clone(),
            subject,
            type_: if job.is_some() {
                RequestType::OneTime
            } else {
                RequestType::Jit
            },
            job,
            ..Default::default()
        },
    );
    req.metadata.namespace = Some(namespace.to_string());
    Ok(req)
}

/// The job of `--run IMAGE [--env N=V] -- COMMAND...`, if any.
fn one_time_job(args: &RequestArgs) -> Result<Option<JobSpec>, CliError> {
    let Some(image) = &args.run else {
        if !args.command.is_empty() {
            return Err(CliError::Invalid(format!(
                "a command ({}) needs --run IMAGE: it is the job of a OneTime request",
                args.command.join(" ")
            )));
        }
        return Ok(None);
    };
    if image.trim().is_empty() {
        return Err(CliError::Invalid("--run needs an image".into()));
    }
    let env = args
        .env
        .iter()
        .map(|e| match e.split_once('=') {
            Some((name, value)) if !name.is_empty() => Ok(EnvVar {
                name: name.to_string(),
                value: value.to_string(),
            }),
            _ => Err(CliError::Invalid(format!("--env {e:?}: use NAME=VALUE"))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    // All of it as the command (the image's entrypoint is replaced): reviewers
    // see exactly what runs.
    Ok(Some(JobSpec {
        image: image.clone(),
        command: args.command.clone(),
        args: Vec::new(),
        env,
    }))
}

/// Parses `--subject`: `user:NAME`, `group:NAME` or `serviceaccount:[NAMESPACE/]NAME`
/// (kinds are case-insensitive; `sa` is short for `serviceaccount`).
pub fn parse_subject(s: &str) -> Result<Subject, CliError> {
    let invalid = |why: &str| {
        CliError::Invalid(format!(
            "--subject {s:?}: {why}; use user:NAME, group:NAME or serviceaccount:[NAMESPACE/]NAME"
        ))
    };
    let (kind, name) = s.split_once(':').ok_or_else(|| invalid("no kind"))?;
    if name.trim().is_empty() {
        return Err(invalid("no name"));
    }
    let subject = |kind, name: &str, namespace: Option<&str>| Subject {
        kind,
        name: name.to_string(),
        namespace: namespace.map(str::to_string),
    };
    match kind.to_ascii_lowercase().as_str() {
        "user" => Ok(subject(SubjectKind::User, name, None)),
        "group" => Ok(subject(SubjectKind::Group, name, None)),
        "serviceaccount" | "sa" => match name.split_once('/') {
            Some((ns, n)) if ns.is_empty() || n.is_empty() || n.contains('/') => {
                Err(invalid("a ServiceAccount is NAMESPACE/NAME or NAME"))
            }
            Some((ns, n)) => Ok(subject(SubjectKind::ServiceAccount, n, Some(ns))),
            None => Ok(subject(SubjectKind::ServiceAccount, name, None)),
        },
        other => Err(invalid(&format!("unknown kind {other:?}"))),
    }
}

/// Builds an AccessReview of `request`, pinned to its uid, signed by `me`.
pub fn build_review(
    request: &ApprovalRequest,
    decision: Decision,
    me: &Identity,
    comment: Option<String>,
    suffix: &str,
) -> Result<AccessReview, CliError> {
    let req_name = request.name_any();
    let uid = request.uid().ok_or_else(|| CliError::NoUid(req_name.clone()))?;
    let mut head = format!("{req_name}-{}", decision.to_string().to_lowercase());
    head.truncate(246);
    let mut review = AccessReview::new(
        &format!("{}-{suffix}", head.trim_end_matches(['-', '.'])),
        AccessReviewSpec {
            request: Some(RequestRef { name: req_name, uid }),
            decision,
            reviewer: me.clone(),
            comment,
            ..Default::default()
        },
    );
    review.metadata.namespace = request.namespace();
    Ok(review)
}

/// Checks the request against the policies the user can read, as the operator would.
/// `Ok` when one matches, or when the answer depends on namespace labels the user cannot
/// read; the error message names the policies that grant the role.
pub fn precheck_policy(
    req: &ApprovalRequest,
    policies: &[AccessPolicy],
    ns_labels: Option<&BTreeMap<String, String>>,
) -> Result<(), CliError> {
    let admitted = crate::decide::admit::select(req, policies, ns_labels)
        .and_then(|p| crate::decide::admit::admit(req, p));
    match admitted {
        Ok(_) => Ok(()),
        // A selector-based policy may match labels we could not read: let the operator decide.
        Err(d)
            if d.reason == DenialReason::NoMatchingPolicy
                && ns_labels.is_none()
                && policies.iter().any(|p| p.spec.namespaces.selector.is_some()) =>
        {
            Ok(())
        }
        Err(d) => Err(CliError::NoPolicy(format!(
            "{} ({}); ask an admin for access, or pick a policy with --policy",
            d.message,
            d.reason.as_str()
        ))),
    }
}
