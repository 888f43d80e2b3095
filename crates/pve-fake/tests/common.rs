//! Starts the fake in-process and talks to it over real HTTPS, trusting
//! its self-signed certificate (and checking the advertised fingerprint).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use mpanel_pve_fake::{Config, Running, serve};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const AUTH_DELAY: Duration = Duration::from_millis(200);

pub struct Fake {
    pub run: Running,
    pub http: reqwest::Client,
}

pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }
    pub fn data(&self) -> Value {
        self.json()["data"].clone()
    }
    pub fn message(&self) -> String {
        self.json()["message"].as_str().unwrap_or("").to_owned()
    }
}

fn tls_config(run: &Running) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(
            run.cert_der.clone(),
        ))
        .unwrap();
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

pub async fn start() -> Fake {
    let run = serve(Config {
        task_duration: Duration::from_millis(150),
        auth_delay: AUTH_DELAY,
        ..Config::default()
    })
    .await
    .unwrap();
    assert_eq!(
        run.fingerprint,
        mpanel_pve_fake::fingerprint(&run.cert_der),
        "the advertised fingerprint is the certificate's"
    );
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(tls_config(&run))
        .build()
        .unwrap();
    Fake { run, http }
}

impl Fake {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.run.url, path)
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Answer {
        let res = req.send().await.unwrap();
        Answer {
            status: res.status().as_u16(),
            headers: res.headers().clone(),
            text: res.text().await.unwrap(),
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        let req = self
            .http
            .get(self.url(path))
            .header("Authorization", self.run.authorization());
        self.send(req).await
    }

    pub async fn delete(&self, path: &str) -> Answer {
        let req = self
            .http
            .delete(self.url(path))
            .header("Authorization", self.run.authorization());
        self.send(req).await
    }

    /// A form-encoded POST (PVE's default).
    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Answer {
        let req = self
            .http
            .post(self.url(path))
            .header("Authorization", self.run.authorization())
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(form).unwrap());
        self.send(req).await
    }

    pub async fn put(&self, path: &str, form: &[(&str, &str)]) -> Answer {
        let req = self
            .http
            .put(self.url(path))
            .header("Authorization", self.run.authorization())
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(form).unwrap());
        self.send(req).await
    }

    /// A JSON POST (as Convoy sends).
    pub async fn post_json(&self, path: &str, body: Value) -> Answer {
        let req = self
            .http
            .post(self.url(path))
            .header("Authorization", self.run.authorization())
            .json(&body);
        self.send(req).await
    }

    pub async fn admin(&self, path: &str, body: Value) -> Answer {
        self.send(self.http.post(self.run.admin_url(path)).json(&body))
            .await
    }

    pub async fn state(&self) -> Value {
        self.send(self.http.get(self.run.admin_url("state")))
            .await
            .data()
    }

    pub async fn vm_state(&self, vmid: u64) -> Value {
        self.state().await["vms"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["vmid"] == json!(vmid))
            .cloned()
            .unwrap_or(Value::Null)
    }

    /// Task status, polled on the UPID's node until it is stopped.
    pub async fn wait(&self, upid: &str) -> Value {
        let node = upid.split(':').nth(1).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let s = self
                .get(&format!("/nodes/{node}/tasks/{}/status", enc(upid)))
                .await
                .data();
            if s["status"] == "stopped" {
                return s;
            }
            assert!(Instant::now() < deadline, "task {upid} did not stop");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn task_log(&self, upid: &str) -> Vec<String> {
        let node = upid.split(':').nth(1).unwrap();
        self.get(&format!("/nodes/{node}/tasks/{}/log?limit=500", enc(upid)))
            .await
            .data()
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["t"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Clones template 9000 on pve1 to `newid` and waits for the task.
    pub async fn clone_template(&self, newid: u32) {
        let res = self
            .post(
                "/nodes/pve1/qemu/9000/clone",
                &[("newid", &newid.to_string()), ("name", "web1")],
            )
            .await;
        assert_eq!(res.status, 200, "{}", res.text);
        let status = self.wait(res.data().as_str().unwrap()).await;
        assert_eq!(status["exitstatus"], "OK");
    }

    /// The raw status line and body of a GET, for the reason phrase.
    pub async fn raw_get(&self, path: &str, authorization: Option<&str>) -> (String, String) {
        let connector = tokio_rustls::TlsConnector::from(Arc::new(tls_config(&self.run)));
        let tcp = tokio::net::TcpStream::connect(self.run.addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let mut tls = connector.connect(name, tcp).await.unwrap();
        let auth = authorization
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        let req = format!(
            "GET /api2/json{path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Connection: close\r\n\r\n"
        );
        tls.write_all(req.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        let _ = tls.read_to_end(&mut buf).await;
        let text = String::from_utf8_lossy(&buf).into_owned();
        let status_line = text.lines().next().unwrap_or("").to_owned();
        let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
        (status_line, body)
    }
}

pub fn enc(s: &str) -> String {
    s.replace(':', "%3A")
        .replace('/', "%2F")
        .replace('@', "%40")
        .replace('!', "%21")
}
