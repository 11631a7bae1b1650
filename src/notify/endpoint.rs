//! The channel's endpoint: its address and key, read from the Secret at the
//! moment of sending, and one POST of one payload.
//!
//! The Secret is read with a GET at delivery time instead of being watched: the
//! operator then needs only `get` on Secrets of its own namespace (a watch needs
//! `list`, which would hand it every Secret there, Helm release data included),
//! holds no key in memory between messages, and picks up a rotated address or
//! key with the next message. Notifications are few and off the reconcile path,
//! so the extra read costs nothing that matters.

use std::collections::BTreeMap;

use k8s_openapi::{api::core::v1::Secret, ByteString};
use kube::{Api, Client};
use thiserror::Error;

use super::{
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
    /// The address is not an http(s) URL.
    #[error("Secret {name}: {ADDRESS_KEY:?} is not an http(s) URL")]
    BadAddress {
        /// Name of the Secret.
        name: String,
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
            EndpointError::BadAddress { .. } => "InvalidAddress",
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
) -> Result<Endpoint, EndpointError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let found = api.get_opt(secret).await.map_err(|source| EndpointError::Kube {
        name: secret.to_string(),
        source,
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
    let uri: Option<http::Uri> = address.parse().ok();
    if !uri.is_some_and(|u| matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some()) {
        return Err(EndpointError::BadAddress {
            name: secret.to_string(),
        });
    }
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
