use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Go-style duration as accepted by `time.ParseDuration`, restricted to
/// non-negative values: "30m", "1h30m", "1.5h", "90s".
pub const DURATION_PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(h|m|s|ms|us|ns))+$";
/// Wall-clock time of day, 24-hour "HH:MM".
pub const TIME_OF_DAY_PATTERN: &str = r"^([01][0-9]|2[0-3]):[0-5][0-9]$";
/// Shape of an IANA time-zone name ("Europe/Berlin", "America/Argentina/Buenos_Aires",
/// "UTC", "Etc/GMT+5"). Whether the zone exists is checked by the operator.
pub const TIMEZONE_PATTERN: &str = r"^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*$";
/// A Kubernetes object name (DNS subdomain).
pub const NAME_PATTERN: &str = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$";
/// Kubernetes RBAC names allow more characters than a DNS subdomain (":" in
/// "system:aggregate-to-view"); anything but "/" and "%" is accepted by the API server.
pub const ROLE_NAME_PATTERN: &str = r"^[^/%]+$";

/// Kind of role a grant binds to.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, JsonSchema,
)]
pub enum RoleKind {
    /// A cluster-wide role; may be bound in a namespace (RoleBinding) or cluster-wide.
    #[default]
    ClusterRole,
    /// A role defined inside the target namespace; only bindable in that namespace.
    Role,
}

/// A reference to a ClusterRole or Role.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, JsonSchema)]
pub struct RoleRef {
    /// `ClusterRole` or `Role`.
    pub kind: RoleKind,
    /// Name of the role.
    #[schemars(length(min = 1, max = 253), regex(pattern = ROLE_NAME_PATTERN))]
    pub name: String,
}

impl std::fmt::Display for RoleRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.kind, self.name)
    }
}

/// An authenticated Kubernetes identity, as the API server saw it
/// (`request.userInfo`). Admission policies check it against the creator.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct Identity {
    /// Username exactly as the API server authenticates it (`kubectl auth whoami`).
    #[schemars(length(min = 1, max = 253))]
    pub username: String,
    /// Groups of the user; must be a subset of the creator's authenticated groups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 253)))]
    pub groups: Vec<String>,
}

/// A set of users and groups.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct Principals {
    /// Group names; a member of any of them matches.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 253)))]
    pub groups: Vec<String>,
    /// User names that match directly.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256), inner(length(min = 1, max = 253)))]
    pub users: Vec<String>,
}

impl Principals {
    /// Whether this set names no one at all.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty() && self.users.is_empty()
    }

    /// Whether the identity is one of the users or belongs to one of the groups.
    pub fn matches(&self, who: &Identity) -> bool {
        self.users.contains(&who.username) || who.groups.iter().any(|g| self.groups.contains(g))
    }

    /// Adds one principal.
    pub fn add(&mut self, p: Principal) {
        match p {
            Principal::User(u) => self.users.push(u),
            Principal::Group(g) => self.groups.push(g),
        }
    }

    /// Whether this set names the principal itself (not: one of its members).
    pub fn names(&self, p: &Principal) -> bool {
        match p {
            Principal::User(u) => self.users.contains(u),
            Principal::Group(g) => self.groups.contains(g),
        }
    }

    /// The users, then the groups, each as a [`Principal`].
    pub fn iter(&self) -> impl Iterator<Item = Principal> + '_ {
        let users = self.users.iter().cloned().map(Principal::User);
        users.chain(self.groups.iter().cloned().map(Principal::Group))
    }
}

/// One user or group, as people write it: `user:NAME`, `group:NAME`, or a bare
/// user name. The one parser and printer of that form (the owners annotation,
/// the plugin's `--reviewer` flags, reports).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Principal {
    /// A user name.
    User(String),
    /// A group name.
    Group(String),
}

impl Principal {
    /// `user:NAME`, `group:NAME` or a bare user name (without `:`); the name is
    /// trimmed. `None` for anything else (an empty name, another `KIND:`).
    pub fn parse(s: &str) -> Option<Principal> {
        let nonempty = |n: &str| Some(n.trim().to_string()).filter(|n| !n.is_empty());
        match s.split_once(':') {
            Some(("user", u)) => nonempty(u).map(Principal::User),
            Some(("group", g)) => nonempty(g).map(Principal::Group),
            Some(_) => None,
            None => nonempty(s).map(Principal::User),
        }
    }
}

impl std::fmt::Display for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Principal::User(u) => write!(f, "user:{u}"),
            Principal::Group(g) => write!(f, "group:{g}"),
        }
    }
}

/// Status of a condition, as in `metav1.Condition`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ConditionStatus {
    /// The condition holds.
    True,
    /// The condition does not hold.
    False,
    /// Not known yet.
    Unknown,
}

/// A condition following the `metav1.Condition` conventions.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Type of the condition, CamelCase (`Approved`, `Granted`, `Ready`, ...).
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: ConditionStatus,
    /// Machine-readable CamelCase reason for the last transition.
    pub reason: String,
    /// Human-readable explanation.
    #[serde(default)]
    pub message: String,
    /// Generation of the object the condition was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// When `status` last changed.
    pub last_transition_time: DateTime<Utc>,
}

crate::wire_names!(RoleKind, ConditionStatus);
