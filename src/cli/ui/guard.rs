//! The desk's door: which HTTP requests reach it at all.
//!
//! The server listens on 127.0.0.1, so only this machine connects; but every web
//! page open in any browser on this machine can make the browser send requests
//! to it. What stops them (like `kubectl proxy`, but stricter):
//!
//! - **Host**: only `127.0.0.1:PORT` or `localhost:PORT`. A DNS-rebinding page
//!   (`evil.example` resolving to 127.0.0.1) sends its own name, and is refused.
//! - **Origin**: a request a browser marks as coming from another origin (the
//!   `Origin` header, or `Sec-Fetch-Site: cross-site`/`same-site`) is refused.
//!   No CORS header is ever sent, so no other origin may read an answer either.
//! - **The secret**: every API call carries the per-start secret (header
//!   [`SECRET_HEADER`]), which is only in the URL the command printed or opened.
//!   A custom header also makes any cross-origin attempt a preflighted request,
//!   which this server never approves.
//! - **Writes** are POST only, with a JSON body (`Content-Type: application/json`).
//!
//! The static files (HTML, CSS, JS) carry no data and are served with the Host and
//! Origin checks alone; everything under `/api/` needs the secret too.

use http::{header, HeaderMap, Method};

/// The header the page sends the secret in.
pub const SECRET_HEADER: &str = "x-gatehouse-secret";

/// Why a request was refused (the body of the 403, one line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The Host header names another server (DNS rebinding).
    Host,
    /// The browser says the request comes from another origin.
    Origin,
    /// An API call without the right secret.
    Secret,
    /// A write that is not a POST with a JSON body.
    Write,
}

impl Refusal {
    /// The one-line answer.
    pub fn message(self) -> &'static str {
        match self {
            Refusal::Host => "refused: the Host header is not this desk's address (127.0.0.1 or localhost with its port)",
            Refusal::Origin => "refused: the request comes from another origin",
            Refusal::Secret => "refused: the desk's secret is missing or wrong (use the address `kubectl gatehouse ui` printed)",
            Refusal::Write => "refused: changes are POST requests with a JSON body",
        }
    }
}

/// What the door knows: its port and its secret.
#[derive(Clone)]
pub struct Door {
    /// The port the server listens on.
    pub port: u16,
    /// The per-start secret.
    pub secret: String,
}

impl Door {
    /// Whether a request with `method`, `path` and `headers` may pass.
    pub fn check(&self, method: &Method, path: &str, headers: &HeaderMap) -> Result<(), Refusal> {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        if !host.is_some_and(|h| self.is_me(h)) {
            return Err(Refusal::Host);
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let ok = origin
                .to_str()
                .ok()
                .and_then(|o| o.strip_prefix("http://"))
                .is_some_and(|o| self.is_me(o));
            if !ok {
                return Err(Refusal::Origin);
            }
        }
        let site = headers.get("sec-fetch-site").and_then(|h| h.to_str().ok());
        if matches!(site, Some("cross-site" | "same-site")) {
            return Err(Refusal::Origin);
        }
        if !path.starts_with("/api/") {
            return match *method {
                Method::GET | Method::HEAD => Ok(()),
                _ => Err(Refusal::Write),
            };
        }
        let given = headers
            .get(SECRET_HEADER)
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        if !same(given, self.secret.as_bytes()) {
            return Err(Refusal::Secret);
        }
        match *method {
            Method::GET => Ok(()),
            Method::POST => {
                let json = headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| {
                        v.split(';')
                            .next()
                            .is_some_and(|t| t.trim() == "application/json")
                    });
                if json {
                    Ok(())
                } else {
                    Err(Refusal::Write)
                }
            }
            _ => Err(Refusal::Write),
        }
    }

    /// `127.0.0.1:PORT` or `localhost:PORT`, exactly.
    fn is_me(&self, host: &str) -> bool {
        let port = self.port.to_string();
        match host.rsplit_once(':') {
            Some((name, p)) => p == port && (name == "127.0.0.1" || name.eq_ignore_ascii_case("localhost")),
            None => false,
        }
    }
}

/// Compares without stopping at the first difference, so the time taken does not
/// tell how much of a guess was right.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A new secret: 32 random bytes, hex.
pub fn new_secret() -> Result<String, ring::error::Unspecified> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new().fill(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn door() -> Door {
        Door {
            port: 4321,
            secret: "s3cret".into(),
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn only_this_address_by_either_name_passes_the_host_check() {
        let d = door();
        for host in ["127.0.0.1:4321", "localhost:4321", "LOCALHOST:4321"] {
            assert_eq!(
                d.check(&Method::GET, "/", &headers(&[("host", host)])),
                Ok(()),
                "{host}"
            );
        }
        for host in [
            "evil.example:4321",
            "127.0.0.1:80",
            "127.0.0.1",
            "localhost.evil:4321",
            "[::1]:4321",
        ] {
            let h = headers(&[("host", host)]);
            assert_eq!(d.check(&Method::GET, "/", &h), Err(Refusal::Host), "{host}");
        }
        assert_eq!(d.check(&Method::GET, "/", &HeaderMap::new()), Err(Refusal::Host));
    }

    #[test]
    fn another_origin_is_refused_even_with_the_secret() {
        let d = door();
        for origin in [
            "http://evil.example",
            "null",
            "https://127.0.0.1:4321",
            "http://127.0.0.1:9",
        ] {
            let h = headers(&[
                ("host", "127.0.0.1:4321"),
                ("origin", origin),
                (SECRET_HEADER, "s3cret"),
            ]);
            assert_eq!(
                d.check(&Method::GET, "/api/me", &h),
                Err(Refusal::Origin),
                "{origin}"
            );
        }
        let h = headers(&[("host", "127.0.0.1:4321"), ("sec-fetch-site", "cross-site")]);
        assert_eq!(d.check(&Method::GET, "/", &h), Err(Refusal::Origin));
        let h = headers(&[
            ("host", "127.0.0.1:4321"),
            ("origin", "http://localhost:4321"),
            (SECRET_HEADER, "s3cret"),
        ]);
        assert_eq!(d.check(&Method::GET, "/api/me", &h), Ok(()));
    }

    #[test]
    fn the_api_needs_the_secret_and_writes_need_post_with_json() {
        let d = door();
        let host = ("host", "127.0.0.1:4321");
        assert_eq!(
            d.check(&Method::GET, "/api/me", &headers(&[host])),
            Err(Refusal::Secret)
        );
        let wrong = headers(&[host, (SECRET_HEADER, "s3creT")]);
        assert_eq!(d.check(&Method::GET, "/api/me", &wrong), Err(Refusal::Secret));
        let short = headers(&[host, (SECRET_HEADER, "s3cre")]);
        assert_eq!(d.check(&Method::GET, "/api/me", &short), Err(Refusal::Secret));
        let right = headers(&[host, (SECRET_HEADER, "s3cret")]);
        assert_eq!(d.check(&Method::GET, "/api/me", &right), Ok(()));
        // A form post (no preflight in a browser) is not a write here.
        let form = headers(&[host, (SECRET_HEADER, "s3cret"), ("content-type", "text/plain")]);
        assert_eq!(d.check(&Method::POST, "/api/review", &form), Err(Refusal::Write));
        let json = headers(&[
            host,
            (SECRET_HEADER, "s3cret"),
            ("content-type", "application/json"),
        ]);
        assert_eq!(d.check(&Method::POST, "/api/review", &json), Ok(()));
        assert_eq!(d.check(&Method::PUT, "/api/review", &json), Err(Refusal::Write));
        assert_eq!(d.check(&Method::POST, "/", &json), Err(Refusal::Write));
    }

    #[test]
    fn secrets_are_long_and_differ() {
        let a = new_secret().unwrap();
        let b = new_secret().unwrap();
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }
}
