//! `kubectl gatehouse ui`: the review desk, a web page on 127.0.0.1 acting as you.
//!
//! The server is part of the plugin process and uses its connection: the user's
//! kubeconfig, context and `--as` flags, exactly as every other command. The API
//! server authenticates the person at the keyboard, RBAC and the admission
//! policies judge every write, and reviews carry that person's identity. The desk
//! holds no other credential and writes nothing to disk (what its watches return
//! stays in memory, see [`feed`]); it stops with the command.
//!
//! Who may talk to it: [`guard`]. What it answers: [`api`] (JSON, built by the
//! plugin's own functions), [`events`] (live updates) and [`feed`] (the
//! user's watches behind both). The page is three static files built into the
//! binary (`assets/`): no CDN, no build step.

pub mod api;
pub mod events;
pub mod feed;
pub mod guard;
pub mod view;

use std::{io::Write, sync::Arc};

use axum::{
    extract::{Request, State},
    http::{header, HeaderValue, StatusCode},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
    Router,
};

use super::{exit, CliError, Env, UiArgs};
use guard::Door;

/// What the handlers share: the user's connection and the door's secret.
pub struct Desk {
    /// The user's connection and identity.
    pub env: Env,
    /// Port and secret.
    pub door: Door,
    /// What the user's own watches returned, kept in memory.
    pub feeds: feed::Feeds,
}

const INDEX: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/app.js");
const STYLE: &str = include_str!("assets/app.css");

/// Starts the desk and serves until Ctrl-C (or the end of the process).
pub async fn serve(env: &Env, args: &UiArgs, out: &mut dyn Write) -> Result<i32, CliError> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
        .await
        .map_err(|e| CliError::Invalid(format!("cannot listen on 127.0.0.1:{}: {e}", args.port)))?;
    let port = listener.local_addr()?.port();
    // The watches start now, while the browser opens.
    let feeds = feed::Feeds::start(env);
    let secret = guard::new_secret()
        .map_err(|_| CliError::Output("no random numbers for the desk's secret".into()))?;
    // The secret travels in the fragment: browsers never send it to a server, nor
    // in a Referer; the page keeps it for its calls.
    let url = format!("http://127.0.0.1:{port}/#{secret}");
    writeln!(out, "Gatehouse review desk for {}: {url}", env.me.username)?;
    out.flush()?;
    // Whoever reads the address may stop reading: the desk goes on serving.
    let _ = writeln!(
        out,
        "It acts as you on {}; keep the address to yourself. Ctrl-C stops it.",
        env.server
    );
    if !args.no_open && !open_browser(&url) {
        let _ = writeln!(out, "Could not start a browser: open the address above yourself.");
    }
    let _ = out.flush();
    let desk = Arc::new(Desk {
        env: env.clone(),
        door: Door { port, secret },
        feeds,
    });
    axum::serve(listener, router(desk))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(exit::OK)
}

/// The routes, behind the door.
pub fn router(desk: Arc<Desk>) -> Router {
    Router::new()
        .route("/", get(|| async { asset("text/html; charset=utf-8", INDEX) }))
        .route(
            "/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }),
        )
        .route(
            "/app.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        )
        .route("/api/me", get(api::me))
        .route("/api/queue", get(api::queue))
        .route("/api/mine", get(api::mine))
        .route("/api/request/{ns}/{name}", get(api::request))
        .route("/api/runs", get(api::runs))
        .route("/api/run/{campaign}/{run}", get(api::run))
        .route("/api/report/{campaign}/{run}", get(api::report))
        .route("/api/events", get(events::events))
        .route("/api/review", post(api::post_review))
        .route("/api/certify", post(api::post_certify))
        .route("/api/certify/recommended", post(api::post_recommended))
        .route("/api/request-again", post(api::post_again))
        .layer(middleware::from_fn_with_state(desk.clone(), door))
        .with_state(desk)
}

fn asset(kind: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}

/// Refuses what the door refuses; adds headers that keep the page to itself.
async fn door(State(desk): State<Arc<Desk>>, request: Request, next: Next) -> Response {
    let mut response = match desk
        .door
        .check(request.method(), request.uri().path(), request.headers())
    {
        Ok(()) => next.run(request).await,
        Err(refusal) => (StatusCode::FORBIDDEN, refusal.message()).into_response(),
    };
    let headers = response.headers_mut();
    for (name, value) in [
        (
            "content-security-policy",
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        ),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("cache-control", "no-store"),
        ("cross-origin-resource-policy", "same-origin"),
        ("cross-origin-opener-policy", "same-origin"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// Opens `url` in the user's browser; whether a browser could be started.
fn open_browser(url: &str) -> bool {
    let mut command = if cfg!(target_os = "macos") {
        std::process::Command::new("open")
    } else if cfg!(windows) {
        let mut c = std::process::Command::new("rundll32");
        c.arg("url.dll,FileProtocolHandler");
        c
    } else {
        std::process::Command::new("xdg-open")
    };
    command
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .is_ok()
}
