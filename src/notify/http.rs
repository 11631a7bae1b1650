//! POSTing a payload: the HTTP client every channel uses.
//!
//! Built on hyper-util and hyper-rustls, which kube already compiles in for the
//! API server connection, with ring as the crypto provider (as for the API
//! server) and the system's CA certificates. Every attempt has a deadline, so a
//! silent endpoint costs one timeout, never a stuck worker.

use std::time::Duration;

use bytes::Bytes;
use http::{header, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::{
    client::legacy::{connect::HttpConnector, Client},
    rt::TokioExecutor,
};
use thiserror::Error;
use tracing::warn;

/// The start of an answer kept for status and `notify test` (bytes).
pub const ANSWER_LIMIT: usize = 1024;
/// Answers are read up to this size, the rest is dropped.
const READ_LIMIT: usize = 64 * 1024;

/// Why an attempt got no answer.
#[derive(Debug, Error)]
pub enum SendError {
    /// The address is not an http(s) URL.
    #[error("invalid address: {0}")]
    Address(String),
    /// No connection, or it broke (refused, DNS, TLS, reset).
    #[error("cannot reach the endpoint: {0}")]
    Connect(String),
    /// No answer in time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

impl SendError {
    /// Metric label.
    pub fn label(&self) -> &'static str {
        match self {
            SendError::Address(_) => "address",
            SendError::Connect(_) => "connect",
            SendError::Timeout(_) => "timeout",
        }
    }
}

/// What the endpoint answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The start of the body, lossy UTF-8, at most [`ANSWER_LIMIT`] bytes.
    pub body: String,
}

impl Answer {
    /// 2xx: delivered.
    pub fn accepted(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Worth another attempt: a server error, throttling, or a timeout the
    /// endpoint reported. Other 4xx (a wrong address, a revoked webhook) stay
    /// wrong however often they are sent.
    pub fn retryable(&self) -> bool {
        self.status >= 500
            || self.status == StatusCode::TOO_MANY_REQUESTS.as_u16()
            || self.status == StatusCode::REQUEST_TIMEOUT.as_u16()
    }
}

/// The client.
#[derive(Clone)]
pub struct Http {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
}

impl Http {
    /// A client whose attempts give up after `timeout`.
    pub fn new(timeout: Duration) -> Result<Self, rustls::Error> {
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let builder = match hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(provider.clone())
        {
            Ok(b) => b,
            Err(e) => {
                // Plain http still works; https fails with a clear error per attempt.
                warn!(error = %e, "no CA certificates found: https endpoints cannot be verified");
                let config = rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()?
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth();
                hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(config)
            }
        };
        let connector = builder.https_or_http().enable_http1().build();
        Ok(Http {
            client: Client::builder(TokioExecutor::new()).build(connector),
            timeout,
        })
    }

    /// POSTs a JSON body with extra headers; the endpoint's answer, whatever its status.
    pub async fn post(
        &self,
        url: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> Result<Answer, SendError> {
        let uri: http::Uri = url.parse().map_err(|_| SendError::Address(redact(url)))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            return Err(SendError::Address(redact(url)));
        }
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header(header::CONTENT_TYPE, "application/json")
            .header(
                header::USER_AGENT,
                concat!("gatehouse/", env!("CARGO_PKG_VERSION")),
            );
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| SendError::Address(e.to_string()))?;
        let attempt = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| SendError::Connect(error_chain(&e)))?;
            let status = resp.status().as_u16();
            let body = Limited::new(resp.into_body(), READ_LIMIT)
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let cut = &body[..body.len().min(ANSWER_LIMIT)];
            Ok(Answer {
                status,
                body: String::from_utf8_lossy(cut).into_owned(),
            })
        };
        tokio::time::timeout(self.timeout, attempt)
            .await
            .map_err(|_| SendError::Timeout(self.timeout))?
    }
}

/// The error and its causes on one line ("client error (Connect): tcp connect
/// error: Connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// A webhook URL is a credential (Slack's and Teams' carry their secret in the
/// path): only its scheme and host are ever written to logs or status.
pub fn redact(url: &str) -> String {
    match url.parse::<http::Uri>() {
        Ok(u) => format!(
            "{}://{}/…",
            u.scheme_str().unwrap_or("?"),
            u.authority()
                .map_or("?", |a| a.as_str().rsplit('@').next().unwrap_or("?"))
        ),
        Err(_) => "(not a URL)".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_keeps_only_scheme_and_host() {
        assert_eq!(
            redact("https://hooks.slack.com/services/T000/B000/XXXX"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(redact("https://user:pw@example.com/x"), "https://example.com/…");
        assert_eq!(redact("::"), "(not a URL)");
    }

    #[test]
    fn only_server_errors_and_throttling_are_retried() {
        let a = |status| Answer {
            status,
            body: String::new(),
        };
        assert!(a(200).accepted() && a(204).accepted());
        assert!(a(500).retryable() && a(503).retryable() && a(429).retryable());
        assert!(!a(404).retryable() && !a(400).retryable() && !a(403).retryable());
    }
}
