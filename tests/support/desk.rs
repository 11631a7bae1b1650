//! `kubectl gatehouse ui --no-open` as a subprocess of the tests, acting as the
//! user of a kubeconfig, and plain HTTP/1.1 to it (any Host, Origin or header a
//! hostile page could make a browser send).

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
};

use super::operator::spawn_bound_to_this_process;

/// A running desk, killed when dropped.
pub struct Desk {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Its per-start secret.
    pub secret: String,
    /// The address it printed (with the secret in the fragment).
    pub url: String,
}

impl Desk {
    /// Starts `kubectl-gatehouse ui --no-open` with `kubeconfig` (and `-n ns`)
    /// and waits for the address it prints.
    pub fn start(kubeconfig: &Path, namespace: &str) -> Desk {
        let mut command = Command::new(env!("CARGO_BIN_EXE_kubectl-gatehouse"));
        command
            .args(["ui", "--no-open", "-n", namespace])
            .env("KUBECONFIG", kubeconfig)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = spawn_bound_to_this_process(command);
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        let mut reader = BufReader::new(stdout);
        reader.read_line(&mut line).unwrap();
        // Keep reading what it prints, so that it never writes to a closed pipe.
        std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("kubectl gatehouse ui printed no address: {line:?}"))
            .to_string();
        let (base, secret) = url.split_once("/#").unwrap();
        let port = base.rsplit_once(':').unwrap().1.parse().unwrap();
        Desk {
            child,
            port,
            secret: secret.to_string(),
            url,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The headers the page sends: the right Host and the secret.
    pub fn own(&self) -> Vec<(String, String)> {
        vec![
            ("Host".into(), format!("127.0.0.1:{}", self.port)),
            ("X-Gatehouse-Secret".into(), self.secret.clone()),
        ]
    }

    /// GET `path` as the page does: status and body.
    pub async fn get(&self, path: &str) -> Answer {
        raw(self.port, "GET", path, &self.own(), None).await
    }

    /// POST `body` (JSON) to `path` as the page does.
    pub async fn post(&self, path: &str, body: &serde_json::Value) -> Answer {
        let mut headers = self.own();
        headers.push(("Content-Type".into(), "application/json".into()));
        raw(self.port, "POST", path, &headers, Some(&body.to_string())).await
    }
}

impl Drop for Desk {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// Header lines, lowercased names.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// One HTTP/1.1 request with exactly `headers` (none added), `Connection: close`.
pub async fn raw(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: Option<&str>,
) -> Answer {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        // Nothing listens (yet): status 0.
        return Answer {
            status: 0,
            headers: Vec::new(),
            body: String::new(),
        };
    };
    let mut head = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = body {
        head.push_str(&format!("Content-Length: {}\r\n", b.len()));
    }
    head.push_str("\r\n");
    head.push_str(body.unwrap_or_default());
    s.write_all(head.as_bytes()).await.unwrap();
    // Some servers (chromedriver) keep the connection despite `Connection: close`:
    // read by Content-Length, or to the last chunk, or to the end.
    let mut bytes = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        if complete(&bytes) {
            break;
        }
        match s.read(&mut buf).await {
            // A server may answer and close before reading a body it refuses (a
            // reset): what arrived is the answer.
            Ok(0) | Err(_) => break,
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&bytes).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    Answer {
        status,
        body: if chunked { dechunk(body) } else { body.to_string() },
        headers,
    }
}

/// Whether `bytes` hold a whole response (headers, then the body its headers announce).
fn complete(bytes: &[u8]) -> bool {
    let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&bytes[..end]).to_ascii_lowercase();
    let body = &bytes[end + 4..];
    for line in head.lines() {
        if let Some(v) = line.strip_prefix("content-length:") {
            return v.trim().parse::<usize>().is_ok_and(|n| body.len() >= n);
        }
        if line.starts_with("transfer-encoding:") && line.contains("chunked") {
            return body.ends_with(b"0\r\n\r\n");
        }
    }
    false
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}
