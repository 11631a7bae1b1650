//! What a notice says to a person, independent of where it goes: a headline, a
//! sentence, the facts (who, what role, where, for how long, why) and the exact
//! commands to act. The renderers ([`super::render`]) only lay this out.
//!
//! There is deliberately no approve button anywhere: acting means running the
//! command as yourself, so the API server authenticates and authorizes the
//! reviewer (a click in a chat is not a Kubernetes identity).

use chrono::{DateTime, Utc};

use super::{
    certification::{ItemFacts, RunFacts},
    events::{Details, Notice, RequestFacts},
};
use crate::{
    api::{recommendation_words, NotificationEvent as E, Principals},
    decide::{eligibility::describe, reason::ApprovalKind, timestamp::rfc3339},
    escape::shell,
};

/// How a message should stand out (its serde name is its name in the webhook payload).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tone {
    /// Someone must act.
    Action,
    /// Good news.
    Good,
    /// For information.
    Info,
    /// Something ended badly or needs attention.
    Warning,
}

crate::wire_names!(Tone);

impl Tone {
    /// The colour chat messages use for it.
    pub fn colour(self) -> &'static str {
        match self {
            Tone::Action => "#1f6feb",
            Tone::Good => "#2da44e",
            Tone::Info => "#6e7781",
            Tone::Warning => "#cf222e",
        }
    }
}

/// A message, ready to be laid out.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// How it stands out.
    pub tone: Tone,
    /// One line: what happened to what.
    pub title: String,
    /// One or two sentences.
    pub text: String,
    /// Label and value of each fact.
    pub fields: Vec<(&'static str, String)>,
    /// The commands to act or look, in order of use.
    pub commands: Vec<String>,
}

/// The message of a notice.
pub fn message(n: &Notice) -> Message {
    match &n.details {
        Details::Request(f) => request_message(n, f),
        Details::Item(f) => item_message(n, f),
        Details::Run(f) => run_message(n, f),
    }
}

fn at(t: DateTime<Utc>) -> String {
    rfc3339(t)
}

fn who(p: &Principals) -> String {
    describe(p)
}

/// What every request message says the same way.
struct Said {
    name: String,
    ns: String,
    /// `NAME -n NAMESPACE`, for commands.
    target: [String; 3],
    place: String,
    /// `ROLE in PLACE for SUBJECT`.
    what: String,
    /// The `status` command.
    status: String,
}

/// What a request message adds to the common fields, by event.
type Body = (Tone, String, String, Vec<String>);

fn request_message(n: &Notice, f: &RequestFacts) -> Message {
    let name = n.object.name.clone();
    let ns = n.object.namespace.clone().unwrap_or_default();
    let target = [name.clone(), "-n".to_string(), ns.clone()];
    let place = match &f.namespace {
        Some(ns) => format!("namespace {ns}"),
        None => "the whole cluster".to_string(),
    };
    let said = Said {
        what: format!("{} in {place} for {}", f.role, f.subject),
        status: gatehouse(&["status"], &target, &[]),
        name,
        ns,
        target,
        place: place.clone(),
    };
    let mut fields = vec![
        ("Requester", f.requester.clone()),
        ("Access", f.subject.clone()),
        ("Role", f.role.clone()),
        ("Where", place),
    ];
    if let Some(d) = &f.duration {
        fields.push(("Duration", d.clone()));
    }
    fields.push((
        "Reason",
        f.reason.clone().unwrap_or_else(|| "(none given)".into()),
    ));
    if let Some(p) = &f.policy {
        fields.push(("Policy", p.clone()));
    }
    let (tone, title, text, commands) = match n.event {
        E::ReviewRequired | E::Escalated => review_needed(n.event, f, &said, &mut fields),
        E::Approved => approved(f, &said, &mut fields),
        E::Granted | E::ExpiringSoon => granted(n.event, f, &said, &mut fields),
        _ => ended(n.event, f, &said, &mut fields),
    };
    Message {
        tone,
        title,
        text,
        fields,
        commands,
    }
}

fn review_needed(event: E, f: &RequestFacts, s: &Said, fields: &mut Vec<(&'static str, String)>) -> Body {
    fields.push(("Reviewers", who(&f.reviewers)));
    if let Some(stage) = &f.stage {
        fields.push(("Stage", stage.clone()));
    }
    let (name, what) = (&s.name, &s.what);
    let (title, text) = if event == E::Escalated {
        (
            format!("Escalated: {name} still waits for a review"),
            format!(
                "{} asked for {what}; nobody decided in time, so more reviewers may now: {}.",
                f.requester,
                who(&f.reviewers)
            ),
        )
    } else {
        (
            format!("Review needed: {name}"),
            format!(
                "{} asks for {what}. Reviewers: {}.",
                f.requester,
                who(&f.reviewers)
            ),
        )
    };
    let commands = vec![
        s.status.clone(),
        gatehouse(&["approve"], &s.target, &["--comment", WHY]),
        gatehouse(&["reject"], &s.target, &["--comment", WHY]),
    ];
    (Tone::Action, title, text, commands)
}

fn approved(f: &RequestFacts, s: &Said, fields: &mut Vec<(&'static str, String)>) -> Body {
    let by = match f.approval {
        Some(ApprovalKind::AutoApproved) => "automatically by the policy".to_string(),
        Some(ApprovalKind::ForceApproved) => {
            format!("by force approval of {}", f.approvers.join(", "))
        }
        _ => format!("by {}", f.approvers.join(", ")),
    };
    fields.push(("Approved by", by.clone()));
    let tone = if f.approval == Some(ApprovalKind::ForceApproved) {
        Tone::Warning
    } else {
        Tone::Good
    };
    let text = format!("{} ({}) was approved {by}.", s.name, s.what);
    (
        tone,
        format!("Approved: {}", s.name),
        text,
        vec![s.status.clone()],
    )
}

fn granted(event: E, f: &RequestFacts, s: &Said, fields: &mut Vec<(&'static str, String)>) -> Body {
    let until = f.expires_at.map_or_else(|| "-".to_string(), at);
    fields.push(("Expires", until.clone()));
    if let Some(img) = &f.job_image {
        fields.push(("Job image", img.clone()));
    }
    let place = &s.place;
    if event == E::Granted {
        let text = format!("{} now has {} in {place}, until {until}.", f.subject, f.role);
        let commands = vec![
            s.status.clone(),
            gatehouse(&["revoke"], &s.target, &["--comment", WHY]),
        ];
        (Tone::Good, format!("Granted: {}", s.name), text, commands)
    } else {
        let text = format!(
            "{} loses {} in {place} at {until}. To keep working, ask again:",
            f.subject, f.role
        );
        let commands = vec![again(f, &s.ns), s.status.clone()];
        (Tone::Info, format!("Expiring soon: {}", s.name), text, commands)
    }
}

fn ended(event: E, f: &RequestFacts, s: &Said, fields: &mut Vec<(&'static str, String)>) -> Body {
    if let Some(by) = &f.ended_by {
        fields.push(("By", by.clone()));
    }
    if let Some(why) = &f.why {
        fields.push(("Why", why.clone()));
    }
    if let Some(usage) = &f.usage {
        fields.push(("Usage", usage.clone()));
    }
    let (tone, verb) = match event {
        E::Expired => (Tone::Info, "expired"),
        E::Executed => (Tone::Good, "ran its job successfully"),
        E::Revoked => (Tone::Warning, "was revoked"),
        E::Rejected => (Tone::Warning, "was rejected"),
        E::Denied => (Tone::Warning, "was denied by the policy"),
        E::TimedOut => (Tone::Warning, "timed out without a decision"),
        E::Canceled => (Tone::Info, "was canceled by the requester"),
        _ => (Tone::Warning, "failed to run its job"),
    };
    let by = f
        .ended_by
        .as_ref()
        .map(|b| format!(" by {b}"))
        .unwrap_or_default();
    let text = format!("{} ({}) {verb}{by}.", s.name, s.what);
    (tone, format!("{event}: {}", s.name), text, vec![s.status.clone()])
}

/// The placeholder a person replaces with their reason.
const WHY: &str = "<why>";

/// `kubectl gatehouse VERB... TARGET... ARGS...`, every word quoted: names come
/// from the cluster and may hold anything ([`shell`]).
fn gatehouse(verb: &[&str], target: &[String], args: &[&str]) -> String {
    let mut argv: Vec<&str> = vec!["kubectl", "gatehouse"];
    argv.extend(verb);
    argv.extend(target.iter().map(String::as_str));
    argv.extend(args);
    shell::join(&argv)
}

/// The command that asks for the same access again.
fn again(f: &RequestFacts, ns: &str) -> String {
    let (kind, role) = f.role.split_once('/').unwrap_or(("ClusterRole", f.role.as_str()));
    let mut argv = vec!["kubectl", "gatehouse", "request", role, "-n", ns];
    if kind == "Role" {
        argv.extend(["--kind", "Role"]);
    }
    if f.namespace.is_none() {
        argv.push("--cluster");
    }
    if let Some(d) = &f.duration {
        argv.extend(["--for", d]);
    }
    argv.extend(["--reason", WHY]);
    shell::join(&argv)
}

fn item_message(n: &Notice, f: &ItemFacts) -> Message {
    let name = &n.object.name;
    let ns = n.object.namespace.clone().unwrap_or_default();
    let describe_item = shell::join(&["kubectl", "describe", "accesscertification", name, "-n", &ns]);
    let mut fields = vec![
        ("Campaign", format!("{} (run {})", f.campaign, f.run)),
        ("Holder", f.subject.clone()),
        ("Role", f.role.clone()),
        ("Binding", f.binding.clone()),
        ("Due", at(f.due_at)),
        ("Recommendation", recommendation_words(f.recommendation)),
    ];
    if let Some(r) = &f.risk {
        fields.push(("Risk", r.clone()));
    }
    if let Some(l) = &f.level {
        fields.push(("Level", l.clone()));
    }
    fields.push(("Reviewers", who(&f.reviewers)));
    let what = format!("{} holds {} through {}", f.subject, f.role, f.binding);
    let (tone, title, text) = match n.event {
        E::CertificationItemWaiting => (
            Tone::Action,
            format!("Certification needed: {name}"),
            format!("Keep or revoke? {what}. Decide by {}.", at(f.due_at)),
        ),
        E::CertificationReminder => (
            Tone::Action,
            format!("Reminder: {name} is due {}", at(f.due_at)),
            format!("Still undecided: {what}."),
        ),
        E::CertificationEscalated => (
            Tone::Action,
            format!("Escalated: {name}"),
            format!("Nobody decided in time; more reviewers may now. {what}."),
        ),
        _ => {
            let then = match f.closed_by {
                Some(crate::api::ClosedBy::NoDecisionRevoke) => "the access is removed",
                Some(crate::api::ClosedBy::NoDecisionRecommendation) => "the recommendation applies",
                _ => "the access stays",
            };
            (
                Tone::Warning,
                format!("Overdue: {name}"),
                format!("{what}; nobody decided by {}, so {then}.", at(f.due_at)),
            )
        }
    };
    Message {
        tone,
        title,
        text,
        fields,
        commands: vec![describe_item],
    }
}

fn run_message(n: &Notice, f: &RunFacts) -> Message {
    let list = shell::join(&[
        "kubectl",
        "get",
        "accesscertifications",
        "-A",
        "-l",
        &format!("gatehouse.dev/run={}", crate::labels::label_value(&f.run)),
    ]);
    let mut fields = vec![
        ("Campaign", f.campaign.clone()),
        ("Run", f.run.clone()),
        ("Started", at(f.started_at)),
        ("Due", at(f.due_at)),
        ("Items", f.items.to_string()),
    ];
    if n.event == E::CertificationRunStarted {
        Message {
            tone: Tone::Info,
            title: format!("Certification run started: {}", f.run),
            text: format!(
                "Campaign {} started run {} with {} items, due {}.",
                f.campaign,
                f.run,
                f.items,
                at(f.due_at)
            ),
            fields,
            commands: vec![list],
        }
    } else {
        fields.push(("Kept", f.approved.to_string()));
        fields.push(("Revoked", f.revoked.to_string()));
        fields.push(("Unreviewed", f.unreviewed.to_string()));
        Message {
            tone: if f.unreviewed > 0 {
                Tone::Warning
            } else {
                Tone::Good
            },
            title: format!("Certification run completed: {}", f.run),
            text: format!(
                "Run {} of {}: {} items, {} kept, {} revoked, {} unreviewed.",
                f.run, f.campaign, f.items, f.approved, f.revoked, f.unreviewed
            ),
            fields,
            commands: vec![list],
        }
    }
}
