//! A passkey registered and an MFA login completed by a real browser:
//! headless Chromium driven through chromedriver (W3C WebDriver) with a
//! virtual authenticator, `navigator.credentials.create/get` on a page of
//! mPanel's own origin, the browser's own JSON encoding (`toJSON()`).
//! Needs `chromium` and `chromium-driver`, which `scripts/test.sh`
//! installs.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::provisioning_support::*;

/// A free TCP port on 127.0.0.1 (the listener is dropped at once).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The chromedriver process, killed when this is dropped (also when the
/// test panics while it starts the session).
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// chromedriver, and the one browser session the test drives.
struct Browser {
    /// Held for its `Drop`: the process ends with the browser.
    _driver: Driver,
    url: String,
    session: String,
    http: reqwest::Client,
    rt: tokio::runtime::Runtime,
}

impl Browser {
    fn start() -> Self {
        let port = free_port();
        let driver = Driver(Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("chromedriver is needed (Debian: chromium chromium-driver; scripts/test.sh installs them): {e}")
            }));
        let url = format!("http://127.0.0.1:{port}");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let http = {
            let _in_runtime = rt.enter();
            reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap()
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = format!("{url}/status");
        while rt
            .block_on(async { http.get(&status).send().await })
            .is_err()
        {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut browser = Self {
            _driver: driver,
            url,
            session: String::new(),
            http,
            rt,
        };
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
        ];
        let made = browser.call(
            "POST",
            "/session",
            json!({"capabilities": {"alwaysMatch": {"browserName": "chrome",
                "goog:chromeOptions": {"args": args}}}}),
        );
        browser.session = made["sessionId"].as_str().unwrap().to_owned();
        browser
    }

    fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let url = if path == "/session" {
            format!("{}{path}", self.url)
        } else {
            format!("{}/session/{}{path}", self.url, self.session)
        };
        let req = match method {
            "POST" => self.http.post(url).json(&body),
            "DELETE" => self.http.delete(url),
            _ => self.http.get(url),
        };
        let (status, v) = self.rt.block_on(async {
            let res = req.send().await.unwrap();
            let status = res.status();
            let v: Value = res.json().await.unwrap();
            (status, v)
        });
        assert!(status.is_success(), "{method} {path}: {v}");
        v["value"].clone()
    }

    /// Runs `script` (an async function body ending in `done(value)`) in
    /// the page and answers its value.
    fn run(&self, script: &str, args: Value) -> Value {
        self.call(
            "POST",
            "/execute/async",
            json!({"script": script, "args": args}),
        )
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let req = self
                .http
                .delete(format!("{}/session/{}", self.url, self.session));
            let _ = self.rt.block_on(async { req.send().await });
        }
        // The session is closed first; `driver` is killed when dropped.
    }
}

const REGISTER: &str = r#"
const [token, done] = [arguments[0], arguments[arguments.length - 1]];
(async () => {
  const headers = {"authorization": "Bearer " + token, "content-type": "application/json"};
  const start = await (await fetch("/api/security/me/webauthn/register/start",
      {method: "POST", headers, body: "{}"})).json();
  const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(start.options.publicKey);
  const credential = await navigator.credentials.create({publicKey});
  const res = await fetch("/api/security/me/webauthn/register/finish", {method: "POST", headers,
      body: JSON.stringify({ceremony_id: start.ceremony_id, credential: credential.toJSON(), name: "browser key"})});
  done({status: res.status, body: await res.text()});
})().catch((e) => done({error: String(e)}));
"#;

const LOGIN: &str = r#"
const [email, password, done] = [arguments[0], arguments[1], arguments[arguments.length - 1]];
(async () => {
  const headers = {"content-type": "application/json"};
  const pending = await (await fetch("/api/auth/login", {method: "POST", headers,
      body: JSON.stringify({tenant: "acme", email, password})})).json();
  if (!pending.mfa_required) { done({error: "no MFA asked: " + JSON.stringify(pending)}); return; }
  const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(pending.webauthn.publicKey);
  const assertion = await navigator.credentials.get({publicKey});
  const res = await fetch("/api/auth/mfa", {method: "POST", headers,
      body: JSON.stringify({mfa_token: pending.mfa_token, webauthn_response: assertion.toJSON()})});
  done({status: res.status, body: await res.json()});
})().catch((e) => done({error: String(e)}));
"#;

#[test]
fn a_browser_registers_a_passkey_and_completes_an_mfa_login_with_it() {
    let port = free_port();
    let origin = format!("http://localhost:{port}");
    let listen = format!("127.0.0.1:{port}");
    let panel = Panel::start_bare_with(&[
        ("MPANEL_LISTEN", &listen),
        ("MPANEL_WEBAUTHN_RP_ID", "localhost"),
        ("MPANEL_WEBAUTHN_ORIGIN", &origin),
    ]);
    let browser = Browser::start();
    browser.call(
        "POST",
        "/webauthn/authenticator",
        json!({"protocol": "ctap2", "transport": "internal", "hasResidentKey": true,
            "hasUserVerification": true, "isUserVerified": true}),
    );
    // A page of mPanel's own origin (the scripts call its API from there).
    browser.call(
        "POST",
        "/url",
        json!({"url": format!("{origin}/invitation")}),
    );

    let registered = browser.run(REGISTER, json!([panel.admin]));
    assert_eq!(registered["status"], 201, "{registered}");

    let login = browser.run(LOGIN, json!(["admin@acme.test", ADMIN_PASSWORD]));
    assert_eq!(login["status"], 200, "{login}");
    assert!(login["body"]["access_token"].is_string(), "{login}");
}
