//! The audit webhook receiver (`gatehouse run --audit-webhook-addr`): the
//! kube-apiserver's audit webhook backend posts `EventList` batches here, and
//! each event becomes usage evidence ([`crate::usage`]).
//!
//! Only the API server may post: the connection must carry a client certificate
//! from the configured CA, or the bearer token of the webhook kubeconfig.
//! Everything else is refused and counted (`gatehouse_audit_webhook_refused`,
//! by cause). Bodies are capped, decoded off the async threads, and an
//! unreadable event is counted and skipped.

mod state;
mod tls;

use std::{net::SocketAddr, path::PathBuf, sync::Arc};

use axum::{
    extract::{connect_info::Connected, ConnectInfo, Request, State},
    http::{header::AUTHORIZATION, StatusCode},
    routing::post,
    Router,
};
use tokio::sync::watch;

pub use self::state::UsageState;
use crate::{
    metrics::{CauseLabel, Metrics},
    usage::decode::{events_in, Limits},
};

/// The largest batch accepted (the API server's default batch is far smaller).
pub const MAX_BODY: usize = 32 << 20;

/// Why the receiver could not start.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// A PEM file could not be read.
    #[error("{0}: {1}")]
    Pem(String, String),
    /// The TLS configuration was refused.
    #[error("TLS: {0}")]
    Tls(String),
    /// The token file could not be read or is empty.
    #[error("{0}: {1}")]
    Token(String, String),
    /// Neither a client CA nor a token: anyone could post.
    #[error("the audit webhook needs --audit-client-ca or --audit-token-file: without one anyone could post events")]
    NoClientAuth,
    /// The port could not be bound.
    #[error("listening on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
}

/// Where the receiver's credentials are.
#[derive(Clone, Debug)]
pub struct Credentials {
    /// The serving certificate (PEM, chain first).
    pub cert: PathBuf,
    /// Its key (PEM).
    pub key: PathBuf,
    /// The CA of the API server's client certificate (its `--audit-webhook-config-file`
    /// kubeconfig's `client-certificate`).
    pub client_ca: Option<PathBuf>,
    /// A file holding the bearer token of that kubeconfig.
    pub token_file: Option<PathBuf>,
}

/// The receiver, ready to serve.
pub struct AuditWebhook {
    config: Arc<rustls::ServerConfig>,
    shared: Arc<Shared>,
}

struct Shared {
    token: Option<Vec<u8>>,
    state: Arc<UsageState>,
    metrics: Arc<Metrics>,
}

/// What the TLS layer established about the client.
#[derive(Clone, Copy, Debug)]
struct Peer {
    /// A client certificate from the configured CA was verified.
    client_cert: bool,
}

impl Connected<axum::serve::IncomingStream<'_, tls::TlsListener>> for Peer {
    fn connect_info(stream: axum::serve::IncomingStream<'_, tls::TlsListener>) -> Self {
        Peer {
            client_cert: stream
                .io()
                .get_ref()
                .1
                .peer_certificates()
                .is_some_and(|c| !c.is_empty()),
        }
    }
}

fn refuse(metrics: &Metrics, cause: &str) {
    metrics
        .audit_refused
        .get_or_create(&CauseLabel { cause: cause.into() })
        .inc();
}

impl AuditWebhook {
    /// Reads the credentials; refuses a configuration that would let anyone post.
    pub fn new(
        creds: &Credentials,
        state: Arc<UsageState>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, AuditError> {
        let token = match &creds.token_file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| AuditError::Token(path.display().to_string(), e.to_string()))?;
                let t = text.trim();
                if t.is_empty() {
                    return Err(AuditError::Token(path.display().to_string(), "empty".into()));
                }
                Some(t.as_bytes().to_vec())
            }
            None => None,
        };
        if token.is_none() && creds.client_ca.is_none() {
            return Err(AuditError::NoClientAuth);
        }
        let config = tls::server_config(&creds.cert, &creds.key, creds.client_ca.as_deref())?;
        Ok(AuditWebhook {
            config,
            shared: Arc::new(Shared {
                token,
                state,
                metrics,
            }),
        })
    }

    /// Binds `addr` and serves until `shutdown` turns true; returns the bound address.
    pub async fn serve(
        self,
        addr: SocketAddr,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<SocketAddr, AuditError> {
        let tcp = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| AuditError::Listen(addr, e))?;
        let metrics = self.shared.metrics.clone();
        let on_refused: Arc<dyn Fn() + Send + Sync> = Arc::new(move || refuse(&metrics, "Handshake"));
        let listener =
            tls::TlsListener::new(tcp, self.config, on_refused).map_err(|e| AuditError::Listen(addr, e))?;
        let bound = axum::serve::Listener::local_addr(&listener).map_err(|e| AuditError::Listen(addr, e))?;
        let app = Router::new()
            .route("/audit", post(receive))
            .with_state(self.shared);
        tokio::spawn(async move {
            let serve = axum::serve(listener, app.into_make_service_with_connect_info::<Peer>())
                .with_graceful_shutdown(async move {
                    while !*shutdown.borrow() {
                        if shutdown.changed().await.is_err() {
                            std::future::pending::<()>().await;
                        }
                    }
                });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "audit webhook receiver failed");
            }
        });
        Ok(bound)
    }
}

/// Compares without an early exit, so the time taken says nothing about the token.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The API server: a verified client certificate, or the webhook kubeconfig's token.
fn authenticated(shared: &Shared, peer: Peer, req: &Request) -> bool {
    if peer.client_cert {
        return true;
    }
    let presented = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "));
    match (&shared.token, presented) {
        (Some(expected), Some(given)) => same(expected, given.trim_ascii()),
        _ => false,
    }
}

async fn receive(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    req: Request,
) -> StatusCode {
    if !authenticated(&shared, peer, &req) {
        refuse(&shared.metrics, "Unauthenticated");
        return StatusCode::UNAUTHORIZED;
    }
    let Ok(body) = axum::body::to_bytes(req.into_body(), MAX_BODY).await else {
        refuse(&shared.metrics, "TooLarge");
        return StatusCode::PAYLOAD_TOO_LARGE;
    };
    let state = shared.state.clone();
    let metrics = shared.metrics.clone();
    let decoded = tokio::task::spawn_blocking(move || {
        let mut events = Vec::new();
        let limits = Limits {
            max_line: MAX_BODY,
            max_document: MAX_BODY,
        };
        let d = events_in(&body, limits, &mut |e| events.push(e));
        let malformed = d.as_ref().map_or(1, |d| d.malformed);
        state.ingest(&events, malformed);
        (events.len(), malformed)
    })
    .await;
    match decoded {
        Ok((events, malformed)) => {
            metrics
                .audit_events
                .get_or_create(&CauseLabel { cause: "Read".into() })
                .inc_by(events as u64);
            metrics
                .audit_events
                .get_or_create(&CauseLabel {
                    cause: "Malformed".into(),
                })
                .inc_by(malformed);
            StatusCode::OK
        }
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}
