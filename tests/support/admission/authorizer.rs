//! The API server's authorizer, modelled: kube-cel cannot call `authorizer`, so
//! an authorizer variable of a shipped policy is parsed and answered from the
//! RBAC grants the fixture gives its user.

use super::Admission;

/// One permission of the fixture user, like an RBAC rule bound to them.
#[derive(Clone, Debug)]
pub struct Grant {
    pub verb: String,
    pub group: String,
    /// `resource` or `resource/subresource`; `*` for any.
    pub resource: String,
    /// `None`: granted cluster-wide (ClusterRoleBinding).
    pub namespace: Option<String>,
}

/// What the API server's authorizer would answer for the fixture user.
#[derive(Clone, Debug, Default)]
pub struct Authz(pub Vec<Grant>);

impl Authz {
    pub fn none() -> Self {
        Authz::default()
    }

    /// Cluster admin: `*` verbs on `*` resources everywhere (as the `cluster-admin` ClusterRole).
    pub fn cluster_admin() -> Self {
        Authz(vec![Grant {
            verb: "*".into(),
            group: "*".into(),
            resource: "*".into(),
            namespace: None,
        }])
    }

    pub fn grant(mut self, verb: &str, resource: &str, namespace: Option<&str>) -> Self {
        self.0.push(Grant {
            verb: verb.into(),
            group: "gatehouse.dev".into(),
            resource: resource.into(),
            namespace: namespace.map(str::to_string),
        });
        self
    }

    pub fn allows(&self, c: &AuthzCheck) -> bool {
        let resource = if c.subresource.is_empty() {
            c.resource.clone()
        } else {
            format!("{}/{}", c.resource, c.subresource)
        };
        self.0.iter().any(|g| {
            (g.verb == "*" || g.verb == c.verb)
                && (g.group == "*" || g.group == c.group)
                && (g.resource == "*" || g.resource == resource)
                && g.namespace.as_ref().is_none_or(|ns| *ns == c.namespace)
        })
    }
}

/// One `authorizer.group(..).resource(..)...check(verb).allowed()` call.
#[derive(Debug, Default, PartialEq)]
pub struct AuthzCheck {
    pub group: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub verb: String,
}

/// Parses an authorizer chain as the shipped policies write it. Arguments are
/// string literals or fields of `request`. Anything else fails the test: the model
/// must be extended before a policy may rely on it.
pub fn parse_authorizer(expr: &str, adm: &Admission) -> AuthzCheck {
    let expr: String = expr.split_whitespace().collect();
    let mut rest = expr.strip_prefix("authorizer").unwrap_or_else(|| {
        panic!("an authorizer variable must be exactly one authorizer call chain: {expr}")
    });
    let mut check = AuthzCheck::default();
    let mut allowed = false;
    while !rest.is_empty() {
        let call = rest
            .strip_prefix('.')
            .unwrap_or_else(|| panic!("unexpected {rest:?} in {expr}"));
        let open = call.find('(').unwrap_or_else(|| panic!("no call in {call:?}"));
        let close = call
            .find(')')
            .unwrap_or_else(|| panic!("unclosed call in {call:?}"));
        let (method, arg) = (&call[..open], &call[open + 1..close]);
        let value = || -> String {
            if let Some(lit) = arg.strip_prefix('\'').and_then(|a| a.strip_suffix('\'')) {
                lit.to_string()
            } else {
                match arg {
                    "request.namespace" => adm.namespace.clone(),
                    "request.resource.resource" => adm.resource.clone(),
                    "request.name" => adm.name.clone(),
                    other => panic!("the authorizer model does not know the argument {other:?}"),
                }
            }
        };
        match method {
            "group" => check.group = value(),
            "resource" => check.resource = value(),
            "subresource" => check.subresource = value(),
            "namespace" => check.namespace = value(),
            // Grants here are for every name (no resourceNames): the name is read, not matched.
            "name" => drop(value()),
            "check" => check.verb = value(),
            "allowed" if arg.is_empty() => allowed = true,
            other => panic!("the authorizer model does not know .{other}({arg})"),
        }
        rest = &call[close + 1..];
    }
    assert!(
        allowed && !check.verb.is_empty(),
        "the chain must end in .check(verb).allowed(): {expr}"
    );
    check
}
