//! The RBAC authorizer's reason, read back into the binding and subject it names.
//!
//! Kubernetes writes (plugin/pkg/auth/authorizer/rbac, pkg/registry/rbac/validation):
//!
//! ```text
//! RBAC: allowed by ClusterRoleBinding "NAME" of ClusterRole "ROLE" to User "alice"
//! RBAC: allowed by RoleBinding "NAME/NAMESPACE" of Role "ROLE" to Group "ci"
//! ... to ServiceAccount "NAME/NAMESPACE"
//! ```
//!
//! with every quoted part in Go's `%q`. The reader accepts exactly that shape and
//! nothing around it: anything else is [`ReasonError`], counted, never guessed at.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::quoted::unquote;
use crate::api::{BindingKind, RoleKind, RoleRef, Subject, SubjectKind};

/// What every RBAC reason starts with.
pub const RBAC_PREFIX: &str = "RBAC: ";
const ALLOWED_BY: &str = "RBAC: allowed by ";
/// The longest reason read; a longer one cannot come from valid object names.
pub const MAX_REASON: usize = 2048;
/// The longest name (binding, role, namespace) read from a reason.
pub const MAX_NAME: usize = 253;
/// The longest subject name (user and group names have no API limit; this is ours).
pub const MAX_SUBJECT: usize = 512;

/// A binding, as a reason names it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BindingRef {
    /// `RoleBinding` or `ClusterRoleBinding`.
    pub kind: BindingKind,
    /// Namespace of a RoleBinding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Name of the binding.
    pub name: String,
}

impl fmt::Display for BindingRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind.as_str(), self.name),
            None => write!(f, "{} {}", self.kind.as_str(), self.name),
        }
    }
}

/// Who RBAC credited with allowing a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credit {
    /// The binding.
    pub binding: BindingRef,
    /// The role it binds.
    pub role: RoleRef,
    /// The binding's subject that matched the requester.
    pub subject: Subject,
}

/// Why a reason that says RBAC allowed could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReasonError {
    /// Longer than [`MAX_REASON`].
    #[error("longer than {MAX_REASON} bytes")]
    TooLong,
    /// Not of the shape the RBAC authorizer writes.
    #[error("not of the shape the RBAC authorizer writes")]
    Shape,
}

fn word<'a>(s: &'a str, w: &str) -> Result<&'a str, ReasonError> {
    s.strip_prefix(w)
        .and_then(|r| r.strip_prefix(' '))
        .ok_or(ReasonError::Shape)
}

fn quoted(s: &str, max: usize) -> Result<(String, &str), ReasonError> {
    unquote(s, max).ok_or(ReasonError::Shape)
}

/// `NAME/NAMESPACE`: neither part may be empty or hold another `/` (Kubernetes
/// names cannot).
fn split_namespaced(s: &str) -> Result<(String, String), ReasonError> {
    match s.split_once('/') {
        Some((name, ns)) if !name.is_empty() && !ns.is_empty() && !ns.contains('/') => {
            Ok((name.to_string(), ns.to_string()))
        }
        _ => Err(ReasonError::Shape),
    }
}

/// Reads an RBAC reason. `Ok(None)` when the reason is not from RBAC's allow
/// path (another authorizer, or empty).
pub fn parse(reason: &str) -> Result<Option<Credit>, ReasonError> {
    let Some(rest) = reason.strip_prefix(ALLOWED_BY) else {
        return Ok(None);
    };
    if reason.len() > MAX_REASON {
        return Err(ReasonError::TooLong);
    }
    let (kind, rest) = if let Ok(r) = word(rest, "ClusterRoleBinding") {
        (BindingKind::ClusterRoleBinding, r)
    } else {
        (BindingKind::RoleBinding, word(rest, "RoleBinding")?)
    };
    let (name, rest) = quoted(rest, MAX_NAME * 2 + 1)?;
    let binding = match kind {
        BindingKind::ClusterRoleBinding if !name.is_empty() && name.len() <= MAX_NAME => BindingRef {
            kind,
            namespace: None,
            name,
        },
        BindingKind::RoleBinding => {
            let (name, ns) = split_namespaced(&name)?;
            BindingRef {
                kind,
                namespace: Some(ns),
                name,
            }
        }
        BindingKind::ClusterRoleBinding => return Err(ReasonError::Shape),
    };
    let rest = word(rest, " of")?;
    let (role_kind, rest) = if let Ok(r) = word(rest, "ClusterRole") {
        (RoleKind::ClusterRole, r)
    } else {
        (RoleKind::Role, word(rest, "Role")?)
    };
    let (role_name, rest) = quoted(rest, MAX_NAME)?;
    let rest = word(rest, " to")?;
    let (subject_kind, rest) = if let Ok(r) = word(rest, "User") {
        (SubjectKind::User, r)
    } else if let Ok(r) = word(rest, "Group") {
        (SubjectKind::Group, r)
    } else {
        (SubjectKind::ServiceAccount, word(rest, "ServiceAccount")?)
    };
    let (subject_name, rest) = quoted(rest, MAX_SUBJECT)?;
    if !rest.is_empty() || role_name.is_empty() || subject_name.is_empty() {
        return Err(ReasonError::Shape);
    }
    let subject = match subject_kind {
        SubjectKind::ServiceAccount => {
            // A ClusterRoleBinding's ServiceAccount without a namespace reads "name/".
            let (name, ns) = subject_name.split_once('/').ok_or(ReasonError::Shape)?;
            if name.is_empty() || ns.contains('/') {
                return Err(ReasonError::Shape);
            }
            Subject {
                kind: subject_kind,
                name: name.to_string(),
                namespace: (!ns.is_empty()).then(|| ns.to_string()),
            }
        }
        _ => Subject {
            kind: subject_kind,
            name: subject_name,
            namespace: None,
        },
    };
    Ok(Some(Credit {
        binding,
        role: RoleRef {
            kind: role_kind,
            name: role_name,
        },
        subject,
    }))
}
