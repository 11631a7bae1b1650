//! API errors into [`CliError`]s: from the operation ([`Op`]) and the answer (a
//! Kubernetes `Status`, or a transport failure), the one line a person can act on.

use super::{forbidden_hint, CliError, Op, Persona, Place, Resource};
use crate::api::Identity;

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
            "check the name with `{}` (yours) or `kubectl gatehouse pending -A`, or pass -n NAMESPACE",
            crate::escape::shell::join(&["kubectl", "gatehouse", "list", "-n", ns])
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
