//! The plugin's errors: one line that says what failed and what to do about it,
//! with the API server's full answer kept for `-v`. API errors become these in
//! one place ([`super::classify`]), so every command words the same failure the
//! same way.

use thiserror::Error;

use super::Op;

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
