//! Instants: from Kubernetes timestamps, and as Gatehouse writes them.

use chrono::{DateTime, SecondsFormat, Utc};

/// Converts a Kubernetes timestamp to chrono.
pub fn to_chrono(t: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.0.as_second(), t.0.subsec_nanosecond().try_into().ok()?)
}

/// When the API server created the object.
pub fn created_at<K: kube::Resource>(obj: &K) -> Option<DateTime<Utc>> {
    obj.meta().creation_timestamp.as_ref().and_then(to_chrono)
}

/// RFC 3339 to the second, in UTC: `2026-11-23T12:00:00Z`. The one format Gatehouse
/// writes instants in: messages, annotations, tables.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// [`rfc3339`], or `-` for no instant.
pub fn rfc3339_or_dash(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(|| "-".to_string(), rfc3339)
}
