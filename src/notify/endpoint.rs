//! The channel's endpoint: its address and key, read from the Secret at the
//! moment of sending, and one POST of one payload.
//!
//! The Secret is read with a GET at delivery time instead of being watched: the
//! operator then needs only `get`, by name, on the channels' Secrets (a watch
//! needs `list`, which cannot be limited to names), holds no key in memory
//! between messages, and picks up a rotated address or key with the next
//! message. Its Role names those Secrets (`resourceNames`), so no other Secret
//! of its namespace is readable to it: a Secret it may not read makes the
//! channel `SecretNotPermitted`, with the chart value to set. Notifications are
//! few and off the reconcile path, so the extra read costs nothing that matters.
//!
//! The address is checked against [`super::destination`] here, so a refused one
//! shows on the channel's Ready condition before anything is sent.

use std::collections::BTreeMap;

use k8s_openapi::{api::core::v1::Secret, ByteString};
use kube::{Api, Client};
use thiserror::Error;

use super::{
    destination::{Destinations, Refusal},
    hmac::{self, DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER},
    http::{Answer, Http, SendError},
};
use crate::api::ChannelType;

/// Key of the endpoint URL in the Secret.
pub const ADDRESS_KEY: &str = "address";
/// Key of the HMAC key in the Secret (`webhook` channels).
pub const TOKEN_KEY: &str = "token";

/// Why a channel's Secret cannot be used.
#[derive(Debug, Error)]
pub enum EndpointError {
    /// The Secret does not exist.
    #[error("Secret {namespace}/{name} not found")]
    NotFound {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },
    /// A key is missing or empty.
    #[error("Secret {name} has no {key:?}")]
    MissingKey {
        /// Name of the Secret.
        name: String,
        /// The key.
        key: &'static str,
    },
    /// The operator's RBAC does not let it read the Secret.
    #[error(
        "the operator may not read Secret {namespace}/{name}: list it in the chart value \
         notifications.secretNames (gatehouse rbac --channel-secret {name})"
    )]
    Forbidden {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },
    /// The address is not one the notifier sends to.
    #[error("Secret {name}: {ADDRESS_KEY:?}: {refusal}")]
    Refused {
        /// Name of the Secret.
        name: String,
        /// Why.
        refusal: Refusal,
    },
    /// Reading the Secret failed.
    #[error("reading Secret {name}: {source}")]
    Kube {
        /// Name of the Secret.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
}

impl EndpointError {
    /// The CamelCase reason of the channel's Ready condition.
    pub fn reason(&self) -> &'static str {
        match self {
            EndpointError::NotFound { .. } => "SecretNotFound",
            EndpointError::MissingKey { .. } => "SecretIncomplete",
            EndpointError::Forbidden { .. } => "SecretNotPermitted",
            EndpointError::Refused { refusal, .. } => refusal.reason(),
            EndpointError::Kube { .. } => "SecretUnreadable",
        }
    }
}

/// Where and how to send.
pub struct Endpoint {
    /// The URL.
    pub address: String,
    /// The HMAC key (`webhook`).
    pub token: Option<Vec<u8>>,
}

fn value(data: &BTreeMap<String, ByteString>, key: &str) -> Option<Vec<u8>> {
    data.get(key)
        .map(|v| v.0.clone())
        .filter(|v| !v.iter().all(u8::is_ascii_whitespace))
}

/// Reads and checks the channel's Secret.
pub async fn endpoint(
    client: &Client,
    namespace: &str,
    secret: &str,
    type_: ChannelType,
    destinations: Destinations,
) -> Result<Endpoint, EndpointError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let found = api.get_opt(secret).await.map_err(|source| match source {
        kube::Error::Api(s) if s.code == 403 => EndpointError::Forbidden {
            namespace: namespace.to_string(),
            name: secret.to_string(),
        },
        source => EndpointError::Kube {
            name: secret.to_string(),
            source,
        },
    })?;
    let Some(found) = found else {
        return Err(EndpointError::NotFound {
            namespace: namespace.to_string(),
            name: secret.to_string(),
        });
    };
    let data = found.data.unwrap_or_default();
    let missing = |key| EndpointError::MissingKey {
        name: secret.to_string(),
        key,
    };
    let address = value(&data, ADDRESS_KEY).ok_or_else(|| missing(ADDRESS_KEY))?;
    let address = String::from_utf8_lossy(&address).trim().to_string();
    destinations
        .check_url(&address)
        .map_err(|refusal| EndpointError::Refused {
            name: secret.to_string(),
            refusal,
        })?;
    let token = value(&data, TOKEN_KEY);
    if type_ == ChannelType::Webhook && token.is_none() {
        return Err(missing(TOKEN_KEY));
    }
    Ok(Endpoint { address, token })
}

/// POSTs one payload with the delivery headers (and the signature, when the
/// endpoint has a key).
pub async fn post(
    http: &Http,
    endpoint: &Endpoint,
    event: &str,
    delivery: &str,
    body: &serde_json::Value,
) -> Result<Answer, SendError> {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut headers = vec![
        (DELIVERY_HEADER, delivery.to_string()),
        (EVENT_HEADER, event.to_string()),
    ];
    if let Some(key) = &endpoint.token {
        headers.push((SIGNATURE_HEADER, hmac::sign(key, &bytes)));
    }
    http.post(&endpoint.address, &headers, bytes).await
}
