//! What the binary's tests share: running `mpanel`, reading its logs,
//! calling its HTTP API.

pub use std::io::{BufRead, BufReader};
pub use std::path::Path;
pub use std::process::{Child, Command, Output, Stdio};
pub use std::sync::{Arc, Mutex};
pub use std::time::{Duration, Instant};

pub use mpanel_store::Engine;
pub use mpanel_store::testing::TestDatabase;

pub const BIN: &str = env!("CARGO_BIN_EXE_mpanel");

/// The `secrets_key` the tests start `mpanel` with (unless they say
/// otherwise: `mpanel_without_secrets_key`).
pub const TEST_SECRETS_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// `mpanel ARGS` in `dir` with only the given `MPANEL_*` variables (and a
/// test `MPANEL_SECRETS_KEY` unless `env` sets one).
pub fn mpanel(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = mpanel_without_secrets_key(dir, args, env);
    if !env.iter().any(|(k, _)| *k == "MPANEL_SECRETS_KEY") {
        cmd.env("MPANEL_SECRETS_KEY", TEST_SECRETS_KEY);
    }
    cmd
}

/// `mpanel ARGS` in `dir` with only the given `MPANEL_*` variables.
pub fn mpanel_without_secrets_key(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir).args(args);
    for (key, _) in std::env::vars() {
        if key.starts_with("MPANEL_") {
            cmd.env_remove(key);
        }
    }
    cmd.envs(env.iter().copied());
    cmd
}

pub fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    mpanel(dir, args, env).output().unwrap()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A running `mpanel` process whose standard error is collected line by line.
pub struct Running {
    pub child: Child,
    pub lines: Arc<Mutex<Vec<String>>>,
}

impl Running {
    pub fn start(mut cmd: Command) -> Self {
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Self { child, lines }
    }

    pub fn log(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// Waits (polling, bounded) for a log line that satisfies `pred`.
    pub fn wait_for_line(&self, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(line) = self.lines.lock().unwrap().iter().find(|l| pred(l)) {
                return line.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no such log line in:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The address from the "listening on http://…" line.
    pub fn address(&self) -> String {
        let line = self.wait_for_line(|l| l.contains("listening on http://"));
        let start = line.find("http://").unwrap() + "http://".len();
        line[start..]
            .split(|c: char| c == '"' || c.is_whitespace())
            .next()
            .unwrap()
            .to_owned()
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits (bounded) for the process to exit and returns its exit code.
    pub fn wait_exit(&mut self) -> i32 {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "did not exit:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn get(addr: &str, path: &str, request_id: Option<&str>) -> (u16, String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut req = http_client().get(format!("http://{addr}{path}"));
        if let Some(id) = request_id {
            req = req.header("x-request-id", id);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.text().await.unwrap())
    })
}

pub fn test_database() -> TestDatabase {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(TestDatabase::create())
        .unwrap()
}

/// Logs in over HTTP and returns the status.
pub fn login(addr: &str, tenant: &str, email: &str, password: &str) -> u16 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        http_client()
            .post(format!("http://{addr}/api/auth/login"))
            .json(&serde_json::json!({"tenant": tenant, "email": email, "password": password}))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    })
}

/// One run of a job, from the diagnostics log.
#[derive(Debug, Clone)]
pub struct Run {
    pub worker: String,
    pub start: i128,
    pub end: Option<i128>,
}

pub fn read_runs(log: &Path) -> std::collections::HashMap<String, Vec<Run>> {
    let mut runs: std::collections::HashMap<String, Vec<Run>> = std::collections::HashMap::new();
    let text = std::fs::read_to_string(log).unwrap_or_default();
    for line in text.lines() {
        let parts: Vec<&str> = line.split(' ').collect();
        assert_eq!(parts.len(), 4, "log line {line:?}");
        let (phase, job, worker, t) = (
            parts[0],
            parts[1],
            parts[2],
            parts[3].parse::<i128>().unwrap(),
        );
        let job_runs = runs.entry(job.to_owned()).or_default();
        match phase {
            "start" => job_runs.push(Run {
                worker: worker.to_owned(),
                start: t,
                end: None,
            }),
            "end" => {
                let run = job_runs
                    .iter_mut()
                    .rev()
                    .find(|r| r.worker == worker && r.end.is_none())
                    .unwrap_or_else(|| panic!("end without start: {line}"));
                run.end = Some(t);
            }
            other => panic!("unknown phase {other}"),
        }
    }
    runs
}

/// A plain HTTP client (TLS needs the process's crypto provider first).
pub fn http_client() -> reqwest::Client {
    mpanel_services::tls::install_crypto_provider();
    reqwest::Client::new()
}
