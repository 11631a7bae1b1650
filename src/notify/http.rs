//! POSTing a payload: the HTTP client every channel uses.
//!
//! Built on hyper-util and hyper-rustls, which kube already compiles in for the
//! API server connection, with ring as the crypto provider (as for the API
//! server) and the system's CA certificates. Every attempt has a deadline, so a
//! silent endpoint costs one timeout, never a stuck worker.

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use bytes::Bytes;
use futures::future::BoxFuture;
use http::{header, Method, Request, StatusCode};
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::{
    client::legacy::{
        connect::{
            dns::{GaiResolver, Name},
            HttpConnector,
        },
        Client,
    },
    rt::TokioExecutor,
};
use thiserror::Error;
use tower::Service;
use tracing::warn;

use super::destination::{Destinations, Refusal};

/// Why an attempt got no answer.
#[derive(Debug, Error)]
pub enum SendError {
    /// The address is not an http(s) URL.
    #[error("invalid address: {0}")]
    Address(String),
    /// The address, or what its name resolved to, is not a destination the
    /// notifier sends to ([`super::destination`]); nothing was connected to.
    #[error("not sent: {}{refusal}", via.as_ref().map(|n| format!("{n} resolves to an address that is refused: ")).unwrap_or_default())]
    Refused {
        /// The host name whose resolution was refused (none: the literal address).
        via: Option<String>,
        /// Why.
        refusal: Refusal,
    },
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
            SendError::Refused { .. } => "refused",
            SendError::Connect(_) => "connect",
            SendError::Timeout(_) => "timeout",
        }
    }
}

/// What the endpoint answered: its status and how long it took. Never its
/// body: a channel's address is chosen by whoever writes its Secret, and an
/// answer copied into status would make the operator a request forger with
/// read-back (the body is not even read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// From the start of the attempt to the answer's headers.
    pub elapsed: Duration,
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

/// Looks up a host name: its IP addresses. The system resolver in the
/// operator; tests give their own, so that no test needs a real name.
pub type Lookup = Arc<dyn Fn(String) -> BoxFuture<'static, std::io::Result<Vec<IpAddr>>> + Send + Sync>;

/// The system resolver (getaddrinfo, as every other client uses).
pub fn system_lookup() -> Lookup {
    Arc::new(|host: String| {
        Box::pin(async move {
            let name: Name = host.parse().map_err(std::io::Error::other)?;
            let addrs = GaiResolver::new().call(name).await?;
            Ok(addrs.map(|a| a.ip()).collect())
        })
    })
}

/// A name whose addresses the rule refuses.
#[derive(Debug, Error)]
#[error("{name} resolves to an address that is refused: {refusal}")]
struct NameRefused {
    name: String,
    refusal: Refusal,
}

/// The resolver of the connectors: looks the name up, then checks every
/// address with the rule before the connector sees any of them. One refused
/// address refuses the name (a name that points at a metadata service is not
/// a webhook, whatever else it points at).
#[derive(Clone)]
struct Guard {
    lookup: Lookup,
    rules: Destinations,
    plain: bool,
}

impl Service<Name> for Guard {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = Box<dyn std::error::Error + Send + Sync>;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let (lookup, rules, plain) = (self.lookup.clone(), self.rules, self.plain);
        let name = name.as_str().to_string();
        Box::pin(async move {
            let ips = lookup(name.clone()).await?;
            for ip in &ips {
                if let Err(refusal) = rules.check_ip(*ip, plain) {
                    return Err(Box::new(NameRefused { name, refusal }) as Self::Error);
                }
            }
            // Port 0: the connector puts the URL's port in.
            let addrs: Vec<SocketAddr> = ips.into_iter().map(|ip| SocketAddr::new(ip, 0)).collect();
            Ok(addrs.into_iter())
        })
    }
}

/// The client: one connector for https, one for plain http (loopback only),
/// each resolving through the [`Guard`].
#[derive(Clone)]
pub struct Http {
    tls: Client<HttpsConnector<HttpConnector<Guard>>, Full<Bytes>>,
    plain: Client<HttpConnector<Guard>, Full<Bytes>>,
    destinations: Destinations,
    timeout: Duration,
}

impl Http {
    /// A client whose attempts give up after `timeout`, sending only where
    /// `destinations` allows, resolving names with the system resolver.
    pub fn new(timeout: Duration, destinations: Destinations) -> Result<Self, rustls::Error> {
        Http::with_lookup(timeout, destinations, system_lookup())
    }

    /// [`Http::new`] with another resolver.
    pub fn with_lookup(
        timeout: Duration,
        destinations: Destinations,
        lookup: Lookup,
    ) -> Result<Self, rustls::Error> {
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let builder = match hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(provider.clone())
        {
            Ok(b) => b,
            Err(e) => {
                // Loopback http still works; https fails with a clear error per attempt.
                warn!(error = %e, "no CA certificates found: https endpoints cannot be verified");
                let config = rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()?
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth();
                hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(config)
            }
        };
        let guard = |plain| Guard {
            lookup: lookup.clone(),
            rules: destinations,
            plain,
        };
        let mut tcp = HttpConnector::new_with_resolver(guard(false));
        tcp.enforce_http(false);
        let tls = builder.https_only().enable_http1().wrap_connector(tcp);
        let plain = HttpConnector::new_with_resolver(guard(true));
        Ok(Http {
            tls: Client::builder(TokioExecutor::new()).build(tls),
            plain: Client::builder(TokioExecutor::new()).build(plain),
            destinations,
            timeout,
        })
    }

    /// POSTs a JSON body with extra headers; the endpoint's status, whatever it is.
    /// An address the rule refuses is refused here, before any connection.
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
        self.destinations
            .check_url(url)
            .map_err(|refusal| SendError::Refused { via: None, refusal })?;
        let plain = uri.scheme_str() == Some("http");
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
        let started = Instant::now();
        let attempt = async {
            let sent = if plain {
                self.plain.request(req).await
            } else {
                self.tls.request(req).await
            };
            let resp = sent.map_err(|e| connect_error(&e))?;
            // The body is dropped unread (see [`Answer`]).
            Ok(Answer {
                status: resp.status().as_u16(),
                elapsed: started.elapsed(),
            })
        };
        tokio::time::timeout(self.timeout, attempt)
            .await
            .map_err(|_| SendError::Timeout(self.timeout))?
    }
}

/// A connection error, or the resolver's refusal it carries.
fn connect_error(e: &(dyn std::error::Error + 'static)) -> SendError {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(r) = c.downcast_ref::<NameRefused>() {
            return SendError::Refused {
                via: Some(r.name.clone()),
                refusal: r.refusal.clone(),
            };
        }
        cause = c.source();
    }
    SendError::Connect(error_chain(e))
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

    /// A loopback endpoint that counts connections and answers 200 with a body
    /// that must never be kept.
    async fn counting_endpoint() -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = count.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\nConnection: close\r\n\r\nAKIA-SECRET",
                    )
                    .await;
            }
        });
        (port, count)
    }

    /// Resolves every name to `ip`.
    fn resolving_to(ip: &'static str) -> Lookup {
        Arc::new(move |_| Box::pin(async move { Ok(vec![ip.parse().unwrap()]) }))
    }

    #[tokio::test]
    async fn a_name_resolving_to_a_refused_address_is_never_connected_to() {
        let (port, connections) = counting_endpoint().await;
        // 0.0.0.0 reaches this host's listeners: had the guard let it through,
        // the endpoint would count a connection.
        let http = Http::with_lookup(
            Duration::from_secs(5),
            Destinations::default(),
            resolving_to("0.0.0.0"),
        )
        .unwrap();
        for url in [
            format!("https://hooks.example.test:{port}/x"),
            format!("http://localhost:{port}/x"),
        ] {
            let err = http.post(&url, &[], b"{}".to_vec()).await.unwrap_err();
            assert_eq!(err.label(), "refused", "{url}: {err}");
            assert!(
                err.to_string()
                    .contains("resolves to an address that is refused: 0.0.0.0"),
                "{err}"
            );
        }
        // A literal is refused before the resolver is asked.
        let err = http
            .post(&format!("http://0.0.0.0:{port}/x"), &[], b"{}".to_vec())
            .await
            .unwrap_err();
        assert_eq!(err.label(), "refused", "{err}");
        assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 0);

        // The same path with an allowed address connects, and keeps no body.
        let http = Http::with_lookup(
            Duration::from_secs(5),
            Destinations::default(),
            resolving_to("127.0.0.1"),
        )
        .unwrap();
        let answer = http
            .post(&format!("http://localhost:{port}/x"), &[], b"{}".to_vec())
            .await
            .unwrap();
        assert_eq!(answer.status, 200);
        assert!(!format!("{answer:?}").contains("AKIA"));
        assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[test]
    fn only_server_errors_and_throttling_are_retried() {
        let a = |status| Answer {
            status,
            elapsed: Duration::ZERO,
        };
        assert!(a(200).accepted() && a(204).accepted());
        assert!(a(500).retryable() && a(503).retryable() && a(429).retryable());
        assert!(!a(404).retryable() && !a(400).retryable() && !a(403).retryable());
    }
}
