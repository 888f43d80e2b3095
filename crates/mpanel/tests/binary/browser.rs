//! A small blocking W3C WebDriver client for the browser tests: headless
//! Chromium through chromedriver (`chromium` and `chromium-driver`, which
//! `scripts/test.sh` installs).

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// A free TCP port on 127.0.0.1 (the listener is dropped at once).
pub fn free_port() -> u16 {
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
pub struct Browser {
    /// Held for its `Drop`: the process ends with the browser.
    _driver: Driver,
    url: String,
    session: String,
    http: reqwest::Client,
    rt: tokio::runtime::Runtime,
}

impl Browser {
    pub fn start() -> Self {
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

    pub fn call(&self, method: &str, path: &str, body: Value) -> Value {
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

    pub fn goto(&self, url: &str) {
        self.call("POST", "/url", json!({ "url": url }));
    }

    /// Runs `script` (an async function body ending in `done(value)`) in
    /// the page and answers its value.
    pub fn run(&self, script: &str, args: Value) -> Value {
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
