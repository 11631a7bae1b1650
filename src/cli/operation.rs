//! What the plugin was doing when the API server said no ([`Op`]), for whom
//! ([`Persona`]), and which of `gatehouse rbac`'s user roles would allow it.

use std::fmt;

use crate::rbac;

/// What the plugin does with a resource, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// get
    Get,
    /// list
    List,
    /// watch
    Watch,
    /// create
    Create,
    /// patch
    Patch,
}

impl Verb {
    /// The RBAC verb.
    pub fn rbac(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
            Verb::Patch => "patch",
        }
    }
}

/// The resources the plugin touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// gatehouse.dev approvalrequests
    ApprovalRequests,
    /// gatehouse.dev accessreviews
    AccessReviews,
    /// gatehouse.dev accesspolicies (cluster-scoped)
    AccessPolicies,
    /// core namespaces (cluster-scoped)
    Namespaces,
    /// authentication.k8s.io selfsubjectreviews
    SelfSubjectReviews,
    /// gatehouse.dev notificationchannels (cluster-scoped)
    NotificationChannels,
    /// gatehouse.dev accesscertifications
    AccessCertifications,
    /// gatehouse.dev accesscampaigns (cluster-scoped)
    AccessCampaigns,
}

impl Resource {
    /// The kind, as people write it.
    pub fn kind(self) -> &'static str {
        match self {
            Resource::ApprovalRequests => "ApprovalRequest",
            Resource::AccessReviews => "AccessReview",
            Resource::AccessPolicies => "AccessPolicy",
            Resource::Namespaces => "Namespace",
            Resource::SelfSubjectReviews => "SelfSubjectReview",
            Resource::NotificationChannels => "NotificationChannel",
            Resource::AccessCertifications => "AccessCertification",
            Resource::AccessCampaigns => "AccessCampaign",
        }
    }

    /// The resource name RBAC uses.
    pub fn plural(self) -> &'static str {
        match self {
            Resource::ApprovalRequests => "approvalrequests",
            Resource::AccessReviews => "accessreviews",
            Resource::AccessPolicies => "accesspolicies",
            Resource::Namespaces => "namespaces",
            Resource::SelfSubjectReviews => "selfsubjectreviews",
            Resource::NotificationChannels => "notificationchannels",
            Resource::AccessCertifications => "accesscertifications",
            Resource::AccessCampaigns => "accesscampaigns",
        }
    }

    pub(super) fn gatehouse(self) -> bool {
        matches!(
            self,
            Resource::ApprovalRequests
                | Resource::AccessReviews
                | Resource::AccessPolicies
                | Resource::NotificationChannels
                | Resource::AccessCertifications
                | Resource::AccessCampaigns
        )
    }
}

/// Where an operation applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// One namespace.
    Namespace(String),
    /// Every namespace (`-A`).
    AllNamespaces,
    /// A cluster-scoped resource.
    Cluster,
}

/// One API operation of the plugin, as messages name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    /// The verb.
    pub verb: Verb,
    /// The resource.
    pub resource: Resource,
    /// Where.
    pub place: Place,
    /// The object, when there is one.
    pub name: Option<String>,
}

impl Op {
    /// An operation on a namespaced resource.
    pub fn namespaced(verb: Verb, resource: Resource, namespace: &str, name: Option<&str>) -> Op {
        Op {
            verb,
            resource,
            place: Place::Namespace(namespace.to_string()),
            name: name.map(str::to_string),
        }
    }

    /// An operation on every namespace, or on a cluster-scoped resource.
    pub fn cluster(verb: Verb, resource: Resource, place: Place) -> Op {
        Op {
            verb,
            resource,
            place,
            name: None,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A created object's name is often generated: the kind says enough.
        let what = match (self.verb, &self.name) {
            (Verb::Get, Some(n)) => format!("read {} {n}", self.resource.kind()),
            (Verb::Get | Verb::List, _) => format!("read {}s", self.resource.kind()),
            (Verb::Watch, _) => format!("watch {}s", self.resource.kind()),
            (Verb::Create, _) => format!("create {}s", self.resource.kind()),
            (Verb::Patch, Some(n)) => format!("change {} {n}", self.resource.kind()),
            (Verb::Patch, None) => format!("change {}s", self.resource.kind()),
        };
        // "AccessPolicys" would be wrong; the other kinds take a plain "s".
        let what = what.replace("Policys", "Policies");
        match &self.place {
            Place::Namespace(ns) => write!(f, "{what} in namespace {ns}"),
            Place::AllNamespaces => write!(f, "{what} in all namespaces"),
            Place::Cluster => write!(f, "{what}"),
        }
    }
}

/// Who the command acts for, so a refusal names the role that fits the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Persona {
    /// request, list, cancel, status
    #[default]
    Requester,
    /// approve, reject, revoke, comment, pending
    Reviewer,
}

impl Persona {
    fn role(self) -> &'static str {
        match self {
            Persona::Requester => rbac::REQUESTER_ROLE,
            Persona::Reviewer => rbac::REVIEWER_ROLE,
        }
    }
}

/// The user ClusterRole of `gatehouse rbac` that allows `op`, preferring the one
/// of `persona`; `None` when none does (namespaces, for one).
pub fn role_for(op: &Op, persona: Persona) -> Option<&'static str> {
    let roles = rbac::user_roles();
    let allows = |name: &str| {
        roles.iter().any(|r| {
            r.metadata.name.as_deref() == Some(name)
                && r.rules.iter().flatten().any(|rule| {
                    rule.verbs.iter().any(|v| v == op.verb.rbac())
                        && rule.api_groups.iter().flatten().any(|g| g == crate::api::GROUP)
                        && rule.resources.iter().flatten().any(|x| x == op.resource.plural())
                })
        })
    };
    let other = match persona {
        Persona::Requester => Persona::Reviewer,
        Persona::Reviewer => Persona::Requester,
    };
    [persona.role(), other.role()].into_iter().find(|r| allows(r))
}

/// What to ask for after a refusal of `op` to `user`: the role, and the kubectl
/// command an admin runs to grant it (a RoleBinding for one namespace, a
/// ClusterRoleBinding for every namespace or cluster-scoped policies).
pub fn forbidden_hint(op: &Op, user: &str, persona: Persona) -> String {
    let Some(role) = role_for(op, persona).filter(|_| op.resource.gatehouse()) else {
        return format!(
            "ask your cluster admin for {} on {}",
            op.verb.rbac(),
            op.resource.plural()
        );
    };
    let subject = match user.strip_prefix("system:serviceaccount:") {
        Some(sa) => ["--serviceaccount", sa],
        None => ["--user", user],
    };
    let binding = format!("{}-{role}", super::name_part(user));
    let command = |kind: &str, place: &[&str]| {
        let mut argv = vec!["kubectl", "create", kind, &binding, "--clusterrole", role];
        argv.extend(subject);
        argv.extend(place);
        crate::escape::shell::join(&argv)
    };
    match &op.place {
        Place::Namespace(ns) => format!(
            "ask for the {role} role there ({})",
            command("rolebinding", &["-n", ns])
        ),
        Place::AllNamespaces | Place::Cluster => format!(
            "ask for the {role} role cluster-wide ({})",
            command("clusterrolebinding", &[])
        ),
    }
}
