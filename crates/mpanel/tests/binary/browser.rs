//! A small blocking W3C WebDriver client for the browser tests: headless
//! Chromium through chromedriver (`chromium` and `chromium-driver`, which
//! `scripts/test.sh` installs), axe-core on the pages a test visits
//! (`MPANEL_TEST_AXE`) and screenshots at desktop and phone width
//! (`MPANEL_TEST_SCREENSHOTS`), both set by `scripts/test.sh`.

use std::fmt;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

/// The viewport tests run at, and the one `shots` adds (a phone's width).
pub const DESKTOP: (u32, u32) = (1280, 900);
pub const PHONE: (u32, u32) = (390, 844);
/// How long `wait_for` and `wait_until` poll the page.
const WAIT: Duration = Duration::from_secs(20);
/// The key W3C WebDriver names an element reference with.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A free TCP port on 127.0.0.1 (the listener is dropped at once).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A command chromedriver refused, as it said it.
pub struct WebDriverError {
    pub command: String,
    pub status: u16,
    pub error: String,
    pub message: String,
}

impl fmt::Display for WebDriverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let message = self.message.lines().next().unwrap_or_default();
        write!(
            f,
            "WebDriver {}: {} {}: {message}",
            self.command, self.status, self.error
        )
    }
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

/// chromedriver, and the one browser session a test drives.
pub struct Browser {
    /// Held for its `Drop`: the process ends with the browser.
    _driver: Driver,
    url: String,
    session: String,
    http: reqwest::Client,
    rt: tokio::runtime::Runtime,
}

/// An element of the page, found by [`Browser::find`] and its kin.
pub struct Element<'a> {
    browser: &'a Browser,
    id: String,
}

impl Browser {
    /// chromedriver on a free port and a headless Chromium session at the
    /// desktop size.
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
            // reqwest is built without a TLS provider of its own.
            mpanel_services::tls::install_crypto_provider();
            reqwest::Client::builder()
                .timeout(Duration::from_secs(90))
                .build()
                .unwrap()
        };
        let deadline = Instant::now() + WAIT;
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
        // As root (the sandbox, CI) Chromium needs --no-sandbox.
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
        // axe-core on a large page takes a while.
        browser.call("POST", "/timeouts", json!({"script": 60_000}));
        browser.set_size(DESKTOP.0, DESKTOP.1);
        browser
    }

    /// A WebDriver command (`path` is under the session, but for
    /// `/session` itself); its `value`, or what chromedriver said.
    pub fn try_call(&self, method: &str, path: &str, body: Value) -> Result<Value, WebDriverError> {
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
        let command = format!("{method} {path}");
        let (status, v) = self.rt.block_on(async {
            let res = req
                .send()
                .await
                .unwrap_or_else(|e| panic!("WebDriver {command}: {e}"));
            let status = res.status();
            let v: Value = res
                .json()
                .await
                .unwrap_or_else(|e| panic!("WebDriver {command}: {status}, not JSON: {e}"));
            (status, v)
        });
        let value = v["value"].clone();
        if status.is_success() {
            return Ok(value);
        }
        let field = |k: &str| value[k].as_str().unwrap_or_default().to_owned();
        Err(WebDriverError {
            command,
            status: status.as_u16(),
            error: field("error"),
            message: field("message"),
        })
    }

    /// [`Self::try_call`] that panics with what chromedriver said.
    pub fn call(&self, method: &str, path: &str, body: Value) -> Value {
        self.try_call(method, path, body)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn goto(&self, url: &str) {
        self.call("POST", "/url", json!({ "url": url }));
    }

    /// The page's current URL.
    pub fn url(&self) -> String {
        self.call("GET", "/url", json!({}))
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub fn title(&self) -> String {
        let title = self.call("GET", "/title", json!({}));
        title.as_str().unwrap().to_owned()
    }

    pub fn source(&self) -> String {
        let source = self.call("GET", "/source", json!({}));
        source.as_str().unwrap().to_owned()
    }

    /// The page's URL and the start of its body, for failure messages.
    fn whereabouts(&self) -> String {
        let body = self.execute(
            "return document.body ? document.body.outerHTML : document.documentElement.outerHTML",
            json!([]),
        );
        format!(
            "on {}; the page begins: {}",
            self.url(),
            excerpt(body.as_str().unwrap_or_default(), 600)
        )
    }

    pub fn try_find(&self, css: &str) -> Option<Element<'_>> {
        let by = json!({"using": "css selector", "value": css});
        match self.try_call("POST", "/element", by) {
            Ok(found) => Some(self.element(&found)),
            Err(e) if e.error == "no such element" => None,
            Err(e) => panic!("{e}"),
        }
    }

    /// The first element `css` matches; panics if there is none.
    pub fn find(&self, css: &str) -> Element<'_> {
        self.try_find(css)
            .unwrap_or_else(|| panic!("no element matches {css:?} {}", self.whereabouts()))
    }

    pub fn find_all(&self, css: &str) -> Vec<Element<'_>> {
        let by = json!({"using": "css selector", "value": css});
        let found = self.call("POST", "/elements", by);
        found
            .as_array()
            .unwrap()
            .iter()
            .map(|e| self.element(e))
            .collect()
    }

    fn element(&self, reference: &Value) -> Element<'_> {
        let id = reference[ELEMENT].as_str().unwrap().to_owned();
        Element { browser: self, id }
    }

    pub fn click(&self, css: &str) {
        self.find(css).click();
    }

    pub fn fill(&self, css: &str, text: &str) {
        self.find(css).fill(text);
    }

    pub fn text(&self, css: &str) -> String {
        self.find(css).text()
    }

    /// Chooses the option of the `<select>` `css` whose value is `value`.
    pub fn select(&self, css: &str, value: &str) {
        let select = self.find(css);
        let options = self.call(
            "POST",
            &format!("/element/{}/elements", select.id),
            json!({"using": "css selector", "value": "option"}),
        );
        let option = options
            .as_array()
            .unwrap()
            .iter()
            .map(|o| self.element(o))
            .find(|o| o.attr("value").as_deref() == Some(value))
            .unwrap_or_else(|| panic!("{css:?} has no option {value:?} {}", self.whereabouts()));
        option.click();
    }

    /// Waits for an element `css` matches.
    pub fn wait_for(&self, css: &str) -> Element<'_> {
        self.wait_until(&format!("an element matching {css:?}"), |b| {
            b.try_find(css).is_some()
        });
        self.find(css)
    }

    /// Polls `ready` until it holds; panics, naming `what`, if it does not
    /// within 20 s.
    pub fn wait_until(&self, what: &str, ready: impl Fn(&Self) -> bool) {
        let deadline = Instant::now() + WAIT;
        while !ready(self) {
            if Instant::now() >= deadline {
                panic!(
                    "waited {} s for {what}, in vain, {}",
                    WAIT.as_secs(),
                    self.whereabouts()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs `script` (an async function body that calls its last argument,
    /// `done(value)`) in the page; answers that value.
    pub fn run(&self, script: &str, args: Value) -> Value {
        self.call(
            "POST",
            "/execute/async",
            json!({"script": script, "args": args}),
        )
    }

    /// Runs `script` (a function body) in the page; answers what it returns.
    pub fn execute(&self, script: &str, args: Value) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            json!({"script": script, "args": args}),
        )
    }

    /// Makes the viewport `width` x `height` CSS pixels (the window is
    /// larger by the frame headless Chromium draws around it).
    pub fn set_size(&self, width: u32, height: u32) {
        let viewport = || {
            let v = self.execute("return [innerWidth, innerHeight]", json!([]));
            (v[0].as_i64().unwrap(), v[1].as_i64().unwrap())
        };
        // The page learns of a new window size a moment later: read the
        // viewport once it stopped changing.
        let settled = || {
            let mut last = viewport();
            for _ in 0..20 {
                std::thread::sleep(Duration::from_millis(50));
                let now = viewport();
                if now == last {
                    return now;
                }
                last = now;
            }
            last
        };
        let (w, h) = (i64::from(width), i64::from(height));
        let mut window = (w, h);
        for _ in 0..5 {
            self.call(
                "POST",
                "/window/rect",
                json!({"width": window.0, "height": window.1}),
            );
            let (inner_w, inner_h) = settled();
            if (inner_w, inner_h) == (w, h) {
                return;
            }
            window = (window.0 + w - inner_w, window.1 + h - inner_h);
        }
        assert_eq!(viewport(), (w, h), "the viewport did not take the size");
    }

    /// Writes a PNG of the viewport to `path`.
    pub fn screenshot(&self, path: &Path) {
        let png = self.call("GET", "/screenshot", json!({}));
        let png = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }

    /// `<name>-desktop.png` and `<name>-phone.png` in the screenshot folder
    /// (`MPANEL_TEST_SCREENSHOTS`, else the workspace's
    /// `target/screenshots`); the desktop size is restored after.
    pub fn shots(&self, name: &str) {
        let dir = std::env::var_os("MPANEL_TEST_SCREENSHOTS")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2);
                workspace.unwrap().join("target/screenshots")
            });
        for (size, (w, h)) in [("desktop", DESKTOP), ("phone", PHONE)] {
            self.set_size(w, h);
            self.screenshot(&dir.join(format!("{name}-{size}.png")));
        }
        self.set_size(DESKTOP.0, DESKTOP.1);
    }

    /// The page's cookies, as WebDriver's cookie objects.
    pub fn cookies(&self) -> Vec<Value> {
        let all = self.call("GET", "/cookie", json!({}));
        all.as_array().unwrap().clone()
    }

    pub fn cookie(&self, name: &str) -> Option<Value> {
        match self.try_call("GET", &format!("/cookie/{name}"), json!({})) {
            Ok(cookie) => Some(cookie),
            Err(e) if e.error == "no such cookie" => None,
            Err(e) => panic!("{e}"),
        }
    }

    /// Sets a cookie on the current page's origin, for all its paths.
    pub fn add_cookie(&self, name: &str, value: &str) {
        let cookie = json!({"name": name, "value": value, "path": "/"});
        self.call("POST", "/cookie", json!({ "cookie": cookie }));
    }

    pub fn delete_cookie(&self, name: &str) {
        self.call("DELETE", &format!("/cookie/{name}"), json!({}));
    }

    /// `fetch()` from the page (its origin, its cookies); answers the
    /// status and body text.
    pub fn fetch(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> (u16, String) {
        let headers: serde_json::Map<String, Value> = headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(v)))
            .collect();
        let answer = self.run(FETCH, json!([method, path, body, headers]));
        let status = answer["status"]
            .as_u64()
            .unwrap_or_else(|| panic!("fetch {method} {path}: {answer}"));
        let text = answer["body"].as_str().unwrap().to_owned();
        (u16::try_from(status).unwrap(), text)
    }

    /// Runs axe-core on the page; panics listing every serious or critical
    /// violation.
    pub fn check_accessibility(&self) {
        if self.execute("return typeof axe", json!([])) == "undefined" {
            let path = std::env::var("MPANEL_TEST_AXE").unwrap_or_else(|_| {
                panic!(
                    "MPANEL_TEST_AXE (axe-core's axe.min.js) is not set: scripts/test.sh \
                     fetches axe-core and sets it (or point it at \
                     target/axe-core/package/axe.min.js once scripts/test.sh has run)"
                )
            });
            let axe = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            self.execute(&format!("{axe}\n;return typeof axe;"), json!([]));
        }
        let found = self.run(AXE_RUN, json!([]));
        let violations = found
            .as_array()
            .unwrap_or_else(|| panic!("axe-core on {}: {found}", self.url()));
        if violations.is_empty() {
            return;
        }
        let mut report = format!(
            "{} serious or critical accessibility violation(s) (axe-core) on {}:",
            violations.len(),
            self.url()
        );
        let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        for v in violations {
            let (id, impact, help) = (s(&v["id"]), s(&v["impact"]), s(&v["help"]));
            report += &format!("\n- {id} ({impact}): {help}");
            let nodes = v["nodes"].as_array().unwrap();
            for node in nodes.iter().take(5) {
                let html = excerpt(&s(&node["html"]), 200);
                report += &format!("\n    {}  {html}", s(&node["target"]));
            }
            if nodes.len() > 5 {
                report += &format!("\n    … and {} more", nodes.len() - 5);
            }
        }
        panic!("{report}");
    }
}

impl Element<'_> {
    pub fn click(&self) {
        self.browser
            .call("POST", &format!("/element/{}/click", self.id), json!({}));
    }

    /// The element's rendered text.
    pub fn text(&self) -> String {
        let text = self
            .browser
            .call("GET", &format!("/element/{}/text", self.id), json!({}));
        text.as_str().unwrap().to_owned()
    }

    /// The attribute `name`, or `None` if the element has none.
    pub fn attr(&self, name: &str) -> Option<String> {
        let path = format!("/element/{}/attribute/{name}", self.id);
        let value = self.browser.call("GET", &path, json!({}));
        value.as_str().map(str::to_owned)
    }

    /// Clears the field, then types `text` into it.
    pub fn fill(&self, text: &str) {
        let element = format!("/element/{}", self.id);
        self.browser
            .call("POST", &format!("{element}/clear"), json!({}));
        self.browser
            .call("POST", &format!("{element}/value"), json!({ "text": text }));
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

/// At most `max` characters of `s`, on one line.
fn excerpt(s: &str, max: usize) -> String {
    let flat: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &flat[..end]),
        None => flat,
    }
}

const FETCH: &str = r#"
const [method, path, body, headers, done] = arguments;
fetch(path, {method, headers, body: body === null ? undefined : body})
  .then(async (res) => done({status: res.status, body: await res.text()}))
  .catch((e) => done({error: String(e)}));
"#;

const AXE_RUN: &str = r#"
const done = arguments[arguments.length - 1];
axe.run(document, {resultTypes: ["violations"]})
  .then((r) => done(r.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => ({id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.map((n) => ({target: n.target.join(" "), html: n.html}))}))))
  .catch((e) => done({error: String(e)}));
"#;
