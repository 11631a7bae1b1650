//! Just enough of the W3C WebDriver protocol to drive Debian's headless Chromium
//! through `chromedriver`: plain HTTP/1.1 with `serde_json`, the same raw client
//! the desk's security tests use (tests/support/desk.rs), so no WebDriver crate
//! and its async stack join the build for a dozen calls. Shared by the browser
//! tests and the desk's bench (`benches/ui/`), which uses a part.
#![allow(dead_code)]

use std::{path::Path, process::Command, time::Duration};

use serde_json::{json, Value};

use crate::support::{
    cluster::{eventually, REQUIRED_ENV, SKIP_MARKER},
    desk::raw,
    operator::{free_port, spawn_bound_to_this_process},
};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
pub const WAIT: Duration = Duration::from_secs(30);

/// A headless Chromium session; the browser and chromedriver end when dropped.
pub struct Browser {
    driver: std::process::Child,
    port: u16,
    session: String,
}

/// The chromium and chromedriver binaries, or `None` (then the test skips,
/// unless GATEHOUSE_E2E_REQUIRED is set: then it fails).
fn binaries() -> Option<(String, String)> {
    let find = |names: &[&str]| {
        names
            .iter()
            .find(|n| Path::new(n).exists())
            .map(|n| n.to_string())
    };
    let chromium = find(&[
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ]);
    let driver = find(&["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]);
    match (chromium, driver) {
        (Some(c), Some(d)) => Some((c, d)),
        _ => {
            let test = std::thread::current().name().unwrap_or("?").to_string();
            assert!(
                std::env::var_os(REQUIRED_ENV).is_none(),
                "{REQUIRED_ENV} is set but chromium and chromedriver are not installed (apt-get install chromium chromium-driver): {test} cannot run"
            );
            eprintln!("{SKIP_MARKER} {test}: chromium or chromedriver is not installed");
            None
        }
    }
}

impl Browser {
    /// Starts chromedriver and a headless Chromium, or `None` to skip.
    pub async fn start(profile: &Path) -> Option<Browser> {
        let (chromium, chromedriver) = binaries()?;
        let port = free_port();
        let mut command = Command::new(chromedriver);
        command
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let driver = spawn_bound_to_this_process(command);
        eventually("chromedriver to answer", WAIT, || async {
            let a = raw(port, "GET", "/status", &host(port), None).await;
            (a.status == 200 && a.body.contains("\"ready\":true")).then_some(())
        })
        .await;
        std::fs::create_dir_all(profile).unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,900", "--no-first-run", "--disable-extensions",
                         format!("--user-data-dir={}", profile.display())]
            }
        }}});
        let mut browser = Browser {
            driver,
            port,
            session: String::new(),
        };
        let answer = browser.call("POST", "/session", Some(caps)).await;
        browser.session = answer["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {answer}"))
            .to_string();
        Some(browser)
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let mut headers = host(self.port);
        headers.push(("Content-Type".into(), "application/json".into()));
        let body = body.map(|b| b.to_string());
        let a = raw(self.port, method, path, &headers, body.as_deref()).await;
        let v: Value = serde_json::from_str(&a.body).unwrap_or(Value::Null);
        v.get("value").cloned().unwrap_or(v)
    }

    async fn session(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let v = self
            .call(method, &format!("/session/{}{path}", self.session), body)
            .await;
        if let Some(e) = v.get("error") {
            panic!("WebDriver {method} {path}: {e}: {}", v["message"]);
        }
        v
    }

    pub async fn goto(&self, url: &str) {
        self.session("POST", "/url", Some(json!({"url": url}))).await;
    }

    /// Runs `script` (a function body; `arguments` are `args`): its return value.
    pub async fn js(&self, script: &str, args: Value) -> Value {
        self.session(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    /// Runs `script` that calls `arguments[arguments.length - 1](value)` when done.
    pub async fn js_async(&self, script: &str) -> Value {
        self.session(
            "POST",
            "/execute/async",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    /// The element matching `css`, if any now.
    pub async fn find(&self, css: &str) -> Option<String> {
        let v = self
            .call(
                "POST",
                &format!("/session/{}/element", self.session),
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v.get(ELEMENT).and_then(Value::as_str).map(str::to_string)
    }

    /// Waits for an element matching `css`.
    pub async fn wait_for(&self, css: &str) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        while tokio::time::Instant::now() < deadline {
            if let Some(e) = self.find(css).await {
                return e;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let page = self.page().await;
        panic!("timed out after {WAIT:?} waiting for an element {css}; the page: {page}");
    }

    /// The route and the start of the page's text, for a failure message.
    async fn page(&self) -> Value {
        self.js(
            "return location.hash + ' ' + document.body.innerText.slice(0, 800);",
            json!([]),
        )
        .await
    }

    /// Waits until no element matches `css`.
    pub async fn wait_gone(&self, css: &str) {
        eventually(&format!("no element {css}"), WAIT, || async {
            self.find(css).await.is_none().then_some(())
        })
        .await
    }

    /// The text of `element`; `None` when a live refresh redrew it since it
    /// was found.
    async fn text(&self, element: &str) -> Option<String> {
        let path = format!("/session/{}/element/{element}/text", self.session);
        let v = self.call("GET", &path, None).await;
        match v.get("error").and_then(Value::as_str) {
            None => Some(v.as_str().unwrap_or_default().to_string()),
            Some("stale element reference") => None,
            Some(e) => panic!("WebDriver GET {path}: {e}: {}", v["message"]),
        }
    }

    /// Waits until the element matching `css` has text containing `part`; the text.
    pub async fn wait_text(&self, css: &str, part: &str) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut last = None;
        while tokio::time::Instant::now() < deadline {
            if let Some(e) = self.find(css).await {
                if let Some(t) = self.text(&e).await {
                    if t.contains(part) {
                        return t;
                    }
                    last = Some(t);
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let page = self.page().await;
        panic!(
            "timed out after {WAIT:?} waiting for {css} to say {part:?}; it said {last:?}; the page: {page}"
        );
    }

    /// Clicks the element matching `css`; found again when a live refresh
    /// redrew it in between.
    pub async fn click(&self, css: &str) {
        self.on_element(css, "click", json!({})).await;
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        self.on_element(css, "value", json!({"text": text})).await;
    }

    async fn on_element(&self, css: &str, what: &str, body: Value) {
        for _ in 0..20 {
            let e = self.wait_for(css).await;
            let path = format!("/session/{}/element/{e}/{what}", self.session);
            let v = self.call("POST", &path, Some(body.clone())).await;
            match v.get("error").and_then(Value::as_str) {
                None => return,
                Some("stale element reference") => continue,
                Some(e) => panic!("WebDriver {what} on {css}: {e}: {}", v["message"]),
            }
        }
        panic!("{css} kept being redrawn");
    }

    /// Presses `key` (a character, or a WebDriver key code like "\u{E007}" for Enter)
    /// on whatever has the focus.
    pub async fn press(&self, key: &str) {
        let actions = json!({"actions": [{"type": "key", "id": "keyboard", "actions": [
            {"type": "keyDown", "value": key}, {"type": "keyUp", "value": key}]}]});
        self.session("POST", "/actions", Some(actions)).await;
    }

    /// A PNG of the window into `dir/NAME.png` when GATEHOUSE_UI_SCREENSHOTS names
    /// a directory (`GATEHOUSE_UI_SCREENSHOTS=docs/ui`, relative to the repository).
    pub async fn screenshot(&self, name: &str) {
        let Some(dir) = std::env::var_os("GATEHOUSE_UI_SCREENSHOTS").filter(|d| !d.is_empty()) else {
            return;
        };
        let dir = crate::support::tools::repo().join(dir);
        std::fs::create_dir_all(&dir).unwrap();
        let b64 = self.session("GET", "/screenshot", None).await;
        let png = base64(b64.as_str().unwrap());
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The session's end closes Chromium; killing chromedriver ends the rest.
        let port = self.port;
        let session = self.session.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build();
            if let Ok(rt) = rt {
                rt.block_on(async {
                    let _ = tokio::time::timeout(
                        Duration::from_secs(5),
                        raw(port, "DELETE", &format!("/session/{session}"), &host(port), None),
                    )
                    .await;
                });
            }
        })
        .join();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn host(port: u16) -> Vec<(String, String)> {
    vec![("Host".into(), format!("127.0.0.1:{port}"))]
}

/// Standard base64 (what WebDriver sends screenshots in).
fn base64(s: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let digits: Vec<u8> = s.bytes().filter_map(value).collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let mut n = 0u32;
        for (i, d) in chunk.iter().enumerate() {
            n |= u32::from(*d) << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}

#[test]
fn base64_decodes_padding_and_all() {
    assert_eq!(base64("aGVsbG8="), b"hello");
    assert_eq!(base64("aGVsbG8h"), b"hello!");
    assert_eq!(base64("aGk="), b"hi");
}
