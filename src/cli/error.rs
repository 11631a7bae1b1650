//! The plugin's errors: one line that says what failed and what to do about it,
//! with the API server's full answer kept for `-v`.
//!
//! API errors are classified once, here, from the operation the plugin was doing
//! ([`Op`]) and the answer (a Kubernetes `Status` or a transport failure), so
//! every command words the same failure the same way.

use std::fmt;

use thiserror::Error;

use crate::{api::Identity, rbac};

/// Errors of the plugin, each saying what to do about it.
#[derive(Debug, Error)]
pub enum CliError {
    /// RBAC refused an operation: who, what, and the role to ask for.
    #[error("{who} may not {op}: {hint}")]
    Forbidden {
        /// The user refused.
        who: String,
        /// What was refused.
        op: Op,
        /// The role to ask for and the command that grants it.
        hint: String,
        /// The API server's answer.
        #[source]
        source: Box<kube::Error>,
    },
    /// An object the command names does not exist.
    #[error("{kind} {name} not found in namespace {namespace}: {hint}")]
    NotFound {
        /// Kind of the object.
        kind: &'static str,
        /// Its name.
        name: String,
        /// Where the plugin looked.
        namespace: String,
        /// Where to look instead.
        hint: String,
        /// The API server's answer.
        #[source]
        source: Box<kube::Error>,
    },
    /// The namespace does not exist.
    #[error(
        "namespace {namespace} does not exist: check -n or the context's namespace (kubectl get namespaces)"
    )]
    NoNamespace {
        /// The namespace.
        namespace: String,
        /// The API server's answer.
        #[source]
        source: Box<kube::Error>,
    },
    /// The API server does not serve Gatehouse's resources.
    #[error("the API server does not serve {resource}: is Gatehouse installed? (kubectl get crd {resource}.gatehouse.dev)")]
    NotInstalled {
        /// The resource (plural).
        resource: &'static str,
        /// The API server's answer.
        #[source]
        source: Box<kube::Error>,
    },
    /// The credentials were not accepted.
    #[error("the API server did not accept your credentials (401 Unauthorized): log in again, or check the kubeconfig's user or --token (kubectl auth whoami)")]
    Unauthorized {
        /// The API server's answer.
        #[source]
        source: Box<kube::Error>,
    },
    /// The API server (or its admission policies) refused the object.
    #[error("the API server refused to {op}: {message}")]
    Refused {
        /// What was refused.
        op: Op,
        /// The API server's reason, which says what to fix.
        message: String,
        /// The API server's answer.
        #[source]
        source: Box<kube::Error>,
    },
    /// The API server could not be reached, or did not answer in time.
    #[error("cannot reach the API server at {server}: {why}")]
    Unreachable {
        /// Its address.
        server: String,
        /// Refused, timed out, certificate not trusted, ..., and what to check.
        why: String,
        /// The transport error.
        #[source]
        source: Box<kube::Error>,
    },
    /// Any other failed API call.
    #[error("could not {op}: {message}; retry, or rerun with -v for the API server's answer")]
    Api {
        /// What the plugin was doing.
        op: Op,
        /// The short reason.
        message: String,
        /// The API error.
        #[source]
        source: Box<kube::Error>,
    },
    /// The kubeconfig could not be used.
    #[error("{problem}: {hint}")]
    Kubeconfig {
        /// What is wrong with it.
        problem: String,
        /// What to do.
        hint: String,
        /// The underlying error, if any.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The API server did not say who the user is.
    #[error("the API server did not return a user for SelfSubjectReview; check your kubeconfig credentials (kubectl auth whoami)")]
    NoIdentity,
    /// A request has no uid to pin a review to.
    #[error("ApprovalRequest {0} has no metadata.uid; is it stored by a real API server?")]
    NoUid(String),
    /// No AccessPolicy would accept the request.
    #[error("{0}")]
    NoPolicy(String),
    /// The user gave a value the plugin cannot use.
    #[error("{0}")]
    Invalid(String),
    /// Output could not be written or encoded.
    #[error("writing output: {0}")]
    Output(String),
    /// Nothing conclusive happened before the timeout; says what was last seen.
    #[error("{0}")]
    TimedOut(String),
    /// The object waited on was deleted.
    #[error("{kind} {name} in namespace {namespace} was deleted while waiting for it")]
    Deleted {
        /// Its kind.
        kind: &'static str,
        /// Its name.
        name: String,
        /// Its namespace.
        namespace: String,
    },
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError::Output(e.to_string())
    }
}

impl CliError {
    /// The exit code of this error (see [`super::exit`]).
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::TimedOut(_) => super::exit::TIMEOUT,
            _ => super::exit::ERROR,
        }
    }

    /// What `-v` adds: every cause, and the API server's full `Status`.
    pub fn details(&self) -> Vec<String> {
        let mut lines = Vec::new();
        let mut cause = std::error::Error::source(self);
        while let Some(e) = cause {
            let kube = e
                .downcast_ref::<kube::Error>()
                .or_else(|| e.downcast_ref::<Box<kube::Error>>().map(|b| b.as_ref()));
            if let Some(kube::Error::Api(status)) = kube {
                // The Status says it all; its own source is itself again.
                lines.push(format!(
                    "API server answer: {}",
                    serde_json::to_string(status).unwrap_or_else(|_| format!("{status:?}"))
                ));
                break;
            }
            lines.push(format!("caused by: {e}"));
            cause = e.source();
        }
        lines
    }
}

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
}

impl Verb {
    /// The RBAC verb.
    pub fn rbac(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
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
        }
    }

    fn gatehouse(self) -> bool {
        matches!(
            self,
            Resource::ApprovalRequests | Resource::AccessReviews | Resource::AccessPolicies
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
        Some(sa) => format!("--serviceaccount {sa}"),
        None => format!("--user {user}"),
    };
    let binding = format!("{}-{role}", super::name_part(user));
    match &op.place {
        Place::Namespace(ns) => format!(
            "ask for the {role} role there (kubectl create rolebinding {binding} --clusterrole {role} {subject} -n {ns})"
        ),
        Place::AllNamespaces | Place::Cluster => format!(
            "ask for the {role} role cluster-wide (kubectl create clusterrolebinding {binding} --clusterrole {role} {subject})"
        ),
    }
}

/// Context to turn an API error into a [`CliError`]: who was acting, for which
/// kind of command, against which server.
#[derive(Debug, Clone, Copy)]
pub struct Blame<'a> {
    /// The user, if known yet.
    pub me: Option<&'a Identity>,
    /// The kind of command.
    pub persona: Persona,
    /// The API server's address.
    pub server: &'a str,
}

impl Blame<'_> {
    /// Classifies the failure of `op`.
    pub fn error(&self, op: Op, err: kube::Error) -> CliError {
        let source = Box::new(err);
        let kube::Error::Api(status) = source.as_ref() else {
            return match transport_problem(&source) {
                Some(why) => CliError::Unreachable {
                    server: self.server.to_string(),
                    why,
                    source,
                },
                None => CliError::Api {
                    message: first_line(&source.to_string()),
                    op,
                    source,
                },
            };
        };
        let message = if status.message.is_empty() {
            format!("{} {}", status.code, status.reason)
        } else {
            status.message.clone()
        };
        let details = status
            .details
            .as_ref()
            .map(|d| (d.kind.clone(), d.name.clone()))
            .unwrap_or_default();
        match status.code {
            401 => CliError::Unauthorized { source },
            // RBAC says `User "bob" cannot list resource ...`; an admission policy's
            // 403 says what to fix instead.
            403 if message.contains("forbidden: User \"") && message.contains(" cannot ") => {
                let who = self
                    .me
                    .map(|m| m.username.clone())
                    .or_else(|| user_in(&message))
                    .unwrap_or_else(|| "you".to_string());
                CliError::Forbidden {
                    hint: forbidden_hint(&op, &who, self.persona),
                    who,
                    op,
                    source,
                }
            }
            404 => self.not_found(op, &message, details, source),
            409 if status.reason == "AlreadyExists" => CliError::Refused {
                message: format!(
                    "{}; choose another --name, or leave it out for a generated one",
                    first_line(&message)
                ),
                op,
                source,
            },
            400 | 403 | 409 | 422 => CliError::Refused {
                message: admission_reason(&message),
                op,
                source,
            },
            _ => CliError::Api {
                message: first_line(&message),
                op,
                source,
            },
        }
    }
}

impl Blame<'_> {
    /// A 404: a missing namespace, a missing object, or no such resource at all
    /// (Gatehouse not installed). The API server says which in its message
    /// (`namespaces "team" not found`, `approvalrequests.gatehouse.dev "x" not found`,
    /// `the server could not find the requested resource`) and, usually, its details.
    fn not_found(
        &self,
        op: Op,
        message: &str,
        details: (String, String),
        source: Box<kube::Error>,
    ) -> CliError {
        let (resource, name) = missing(message).unwrap_or(details);
        if resource.starts_with("namespaces") && !name.is_empty() {
            return CliError::NoNamespace {
                namespace: name,
                source,
            };
        }
        match (&op.place, &op.name) {
            (Place::Namespace(ns), Some(wanted)) if *wanted == name => CliError::NotFound {
                kind: op.resource.kind(),
                name: name.clone(),
                namespace: ns.clone(),
                hint: not_found_hint(op.resource, ns),
                source,
            },
            _ if name.is_empty() && op.resource.gatehouse() => CliError::NotInstalled {
                resource: op.resource.plural(),
                source,
            },
            _ => CliError::Api {
                message: first_line(message),
                op,
                source,
            },
        }
    }
}

/// `RESOURCE "NAME" not found` -> (RESOURCE, NAME).
fn missing(message: &str) -> Option<(String, String)> {
    let head = message.strip_suffix(" not found")?;
    let (resource, quoted) = head.split_once(' ')?;
    let name = quoted.strip_prefix('"')?.strip_suffix('"')?;
    Some((resource.to_string(), name.to_string()))
}

fn not_found_hint(resource: Resource, ns: &str) -> String {
    match resource {
        Resource::ApprovalRequests => format!(
            "check the name with `kubectl gatehouse list -n {ns}` (yours) or `kubectl gatehouse pending -A`, or pass -n NAMESPACE"
        ),
        _ => format!("check the name and the namespace (-n, now {ns})"),
    }
}

/// The user in an RBAC refusal: `... User "bob" cannot ...`.
fn user_in(message: &str) -> Option<String> {
    let rest = message.split_once("User \"")?.1;
    Some(rest.split_once('"')?.0.to_string())
}

/// An admission policy's own message, without the policy and binding names
/// (`-v` shows them).
fn admission_reason(message: &str) -> String {
    let m = message
        .split_once("denied request: ")
        .map_or(message, |(_, reason)| reason);
    first_line(m)
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().trim().to_string()
}

/// The TLS error inside `e`, also when wrapped in I/O errors (which do not list
/// their payload among their sources).
fn rustls_in<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    if let Some(tls) = e.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    let inner = e.downcast_ref::<std::io::Error>()?.get_ref()?;
    rustls_in(inner)
}

/// Why a request never got an answer (refused, timed out, certificate not
/// trusted, ...) and what to check. `None` for errors that are not about transport.
fn transport_problem(err: &kube::Error) -> Option<String> {
    const CHECK: &str =
        "check that the cluster is up and that --context/--server point at it (kubectl cluster-info)";
    let why = connection_problem(err)?;
    Some(match why {
        Problem::Tls(text) => text,
        Problem::Other(text) => format!("{text}; {CHECK}"),
    })
}

enum Problem {
    Tls(String),
    Other(String),
}

fn connection_problem(err: &kube::Error) -> Option<Problem> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    let mut transport = matches!(err, kube::Error::HyperError(_) | kube::Error::Service(_));
    while let Some(e) = cause {
        let io = e.downcast_ref::<std::io::Error>();
        if let Some(tls) = rustls_in(e) {
            // rustls lists every name a certificate has: the first clause says enough.
            let what = tls.to_string();
            let what = what.split(';').next().unwrap_or_default();
            return Some(Problem::Tls(format!(
                "its TLS certificate is not trusted ({what}): check the kubeconfig's certificate-authority, or pass --certificate-authority"
            )));
        }
        if let Some(io) = io {
            return Some(Problem::Other(match io.kind() {
                std::io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
                std::io::ErrorKind::TimedOut => "no answer in time (--request-timeout)".to_string(),
                _ => io.to_string(),
            }));
        }
        let text = e.to_string();
        if text.contains("dns error") || text.contains("failed to lookup address") {
            return Some(Problem::Other("its host name does not resolve".to_string()));
        }
        if text.contains("timed out") || text.contains("deadline has elapsed") {
            return Some(Problem::Other(
                "no answer in time (--request-timeout)".to_string(),
            ));
        }
        transport |= text.contains("client error (Connect)");
        cause = e.source();
    }
    transport.then(|| Problem::Other(first_line(&err.to_string())))
}
