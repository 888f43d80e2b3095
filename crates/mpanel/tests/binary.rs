//! The `mpanel` binary as an operator runs it: configuration, subcommands,
//! start-up, logs and signals. Database tests use the engine the test run
//! selects (`MPANEL_TEST_ENGINE`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mpanel_store::Engine;
use mpanel_store::testing::TestDatabase;

const BIN: &str = env!("CARGO_BIN_EXE_mpanel");

/// `mpanel ARGS` in `dir` with only the given `MPANEL_*` variables.
fn mpanel(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
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

fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    mpanel(dir, args, env).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A running `mpanel` process whose standard error is collected line by line.
struct Running {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Running {
    fn start(mut cmd: Command) -> Self {
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

    fn log(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// Waits (polling, bounded) for a log line that satisfies `pred`.
    fn wait_for_line(&self, pred: impl Fn(&str) -> bool) -> String {
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
    fn address(&self) -> String {
        let line = self.wait_for_line(|l| l.contains("listening on http://"));
        let start = line.find("http://").unwrap() + "http://".len();
        line[start..]
            .split(|c: char| c == '"' || c.is_whitespace())
            .next()
            .unwrap()
            .to_owned()
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits (bounded) for the process to exit and returns its exit code.
    fn wait_exit(&mut self) -> i32 {
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

fn get(addr: &str, path: &str, request_id: Option<&str>) -> (u16, String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut req = reqwest::Client::new().get(format!("http://{addr}{path}"));
        if let Some(id) = request_id {
            req = req.header("x-request-id", id);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.text().await.unwrap())
    })
}

fn test_database() -> TestDatabase {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(TestDatabase::create())
        .unwrap()
}

#[test]
fn with_no_configuration_it_runs_on_sqlite_under_data() {
    let dir = tempfile::tempdir().unwrap();
    // The only setting: a free port, so tests never collide on 2271.
    let mut server = Running::start(mpanel(
        dir.path(),
        &["serve"],
        &[("MPANEL_LISTEN", "127.0.0.1:0")],
    ));
    let addr = server.address();
    assert_eq!(get(&addr, "/api/health", None).0, 200);
    let (status, body) = get(&addr, "/api/ready", None);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("SQLITE"), "{body}");
    assert!(dir.path().join("data/mpanel.db").is_file());
    server.signal("TERM");
    assert_eq!(server.wait_exit(), 0);
}

#[test]
fn serve_logs_requests_with_their_id_and_stops_cleanly_on_sigterm() {
    let db = test_database();
    let dir = tempfile::tempdir().unwrap();
    let mut server = Running::start(mpanel(
        dir.path(),
        &["serve"],
        &[
            ("MPANEL_DATABASE_URL", db.url()),
            ("MPANEL_LISTEN", "127.0.0.1:0"),
            ("MPANEL_LOG_FORMAT", "json"),
        ],
    ));
    let addr = server.address();
    let (status, body) = get(&addr, "/api/ready", Some("ops-check-0042"));
    assert_eq!(status, 200, "{body}");
    let engine = db.engine().as_str().to_ascii_uppercase();
    assert!(body.contains(&engine), "{body}");

    let line = server.wait_for_line(|l| l.contains("ops-check-0042"));
    let entry: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(entry["message"], "request finished");
    assert_eq!(entry["span"]["request_id"], "ops-check-0042");
    assert_eq!(entry["status"], 200);

    server.signal("TERM");
    assert_eq!(server.wait_exit(), 0);
    server.wait_for_line(|l| l.contains("\"stopped\""));
}

#[test]
fn sigint_stops_serve_too() {
    let db = test_database();
    let dir = tempfile::tempdir().unwrap();
    let mut server = Running::start(mpanel(
        dir.path(),
        &["serve"],
        &[
            ("MPANEL_DATABASE_URL", db.url()),
            ("MPANEL_LISTEN", "127.0.0.1:0"),
        ],
    ));
    server.address();
    server.signal("INT");
    assert_eq!(server.wait_exit(), 0);
}

#[test]
fn migrate_applies_pending_migrations_and_says_what_it_did() {
    let db = test_database();
    let dir = tempfile::tempdir().unwrap();
    let env = [("MPANEL_DATABASE_URL", db.url())];

    let out = run(dir.path(), &["migrate", "--status"], &env);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("pending: 1 foundation"),
        "{}",
        text(&out.stdout)
    );

    let out = run(dir.path(), &["migrate"], &env);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("applied 1 foundation"),
        "{}",
        text(&out.stdout)
    );

    let out = run(dir.path(), &["migrate"], &env);
    assert!(
        text(&out.stdout).contains("up to date, nothing to apply"),
        "{}",
        text(&out.stdout)
    );

    let out = run(dir.path(), &["migrate", "--status"], &env);
    assert!(
        text(&out.stdout).contains("up to date"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn environment_beats_file_beats_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let status =
        |env: &[(&str, &str)]| text(&run(dir.path(), &["migrate", "--status"], env).stdout);

    assert!(status(&[]).contains("database: sqlite://./data/mpanel.db"));

    std::fs::write(
        dir.path().join("mpanel.toml"),
        "database_url = \"sqlite://./from-file.db\"\n",
    )
    .unwrap();
    assert!(status(&[]).contains("database: sqlite://./from-file.db"));

    let from_env = status(&[("MPANEL_DATABASE_URL", "sqlite://./from-env.db")]);
    assert!(
        from_env.contains("database: sqlite://./from-env.db"),
        "{from_env}"
    );

    std::fs::write(
        dir.path().join("other.toml"),
        "database_url = \"sqlite://./other.db\"\n",
    )
    .unwrap();
    let out = text(
        &run(
            dir.path(),
            &["--config", "other.toml", "migrate", "--status"],
            &[],
        )
        .stdout,
    );
    assert!(out.contains("database: sqlite://./other.db"), "{out}");
    let out = status(&[("MPANEL_CONFIG", "other.toml")]);
    assert!(out.contains("database: sqlite://./other.db"), "{out}");
}

#[test]
fn a_bad_value_stops_start_up_naming_the_key_and_its_source() {
    let dir = tempfile::tempdir().unwrap();
    /// Arguments, environment, and words the error must contain.
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a [&'a str]);
    let cases: &[Case] = &[
        (
            &["serve"],
            &[("MPANEL_LISTEN", "not-an-address")],
            &["listen", "MPANEL_LISTEN"],
        ),
        (
            &["serve"],
            &[("MPANEL_LOG_FORMAT", "xml")],
            &["log_format", "MPANEL_LOG_FORMAT"],
        ),
        (
            &["serve"],
            &[("MPANEL_DATABASE_URL", "mysql://db/x")],
            &["database_url", "MPANEL_DATABASE_URL"],
        ),
        (
            &["serve"],
            &[("MPANEL_CORS_ALLOWED_ORIGINS", "*")],
            &["cors_allowed_origins"],
        ),
        (
            &["--config", "missing.toml", "serve"],
            &[],
            &["missing.toml", "does not exist"],
        ),
    ];
    for (args, env, expected) in cases {
        let out = run(dir.path(), args, env);
        assert_eq!(out.status.code(), Some(2), "{args:?} {env:?}");
        let err = text(&out.stderr);
        for word in *expected {
            assert!(err.contains(word), "{word:?} missing from: {err}");
        }
    }

    std::fs::write(dir.path().join("bad.toml"), "request_timeout_secs = 0\n").unwrap();
    let out = run(dir.path(), &["--config", "bad.toml", "serve"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("request_timeout_secs") && err.contains("bad.toml"),
        "{err}"
    );

    std::fs::write(dir.path().join("typo.toml"), "lissen = \"127.0.0.1:1\"\n").unwrap();
    let out = run(dir.path(), &["--config", "typo.toml", "serve"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("unknown key \"lissen\"") && err.contains("typo.toml"),
        "{err}"
    );

    // Nothing was started or created.
    assert!(!dir.path().join("data").exists());
}

#[test]
fn unknown_input_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    for args in [&["frobnicate"][..], &["serve", "--bogus"], &[]] {
        let out = run(dir.path(), args, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            text(&out.stderr).contains("Usage:"),
            "{}",
            text(&out.stderr)
        );
    }
}

#[test]
fn every_subcommand_has_help() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["worker", "--help"],
        &["migrate", "--help"],
        &["admin", "--help"],
        &["admin", "create-tenant", "--help"],
        &["admin", "create-user", "--help"],
    ] {
        let out = run(dir.path(), args, &[]);
        assert!(out.status.success(), "{args:?}");
        assert!(text(&out.stdout).contains("Usage:"), "{args:?}");
    }
}

#[test]
fn secrets_never_reach_the_logs() {
    let db = test_database();
    let dir = tempfile::tempdir().unwrap();
    let url = match db.engine() {
        // The test cluster trusts loopback, so any password is accepted.
        Engine::Postgres => db.url().replacen("postgres@", "postgres:pw-Zq81xK@", 1),
        Engine::Sqlite => db.url().to_owned(),
    };
    let token = "metrics-token-Hh27Pq9x";
    let mut server = Running::start(mpanel(
        dir.path(),
        &["serve"],
        &[
            ("MPANEL_DATABASE_URL", &url),
            ("MPANEL_LISTEN", "127.0.0.1:0"),
            ("MPANEL_LOG_LEVEL", "trace"),
            ("MPANEL_METRICS_TOKEN", token),
        ],
    ));
    let addr = server.address();
    assert_eq!(get(&addr, "/metrics", None).0, 401);
    server.signal("TERM");
    assert_eq!(server.wait_exit(), 0);
    let log = server.log();
    assert!(log.contains("starting mpanel"));
    assert!(!log.contains(token), "the metrics token was logged");
    assert!(
        !log.contains("pw-Zq81xK"),
        "the database password was logged"
    );
}

#[test]
fn admin_creates_a_tenant_once() {
    let db = test_database();
    let dir = tempfile::tempdir().unwrap();
    let env = [("MPANEL_DATABASE_URL", db.url())];
    let args = [
        "admin",
        "create-tenant",
        "--slug",
        "acme",
        "--name",
        "Acme Hosting",
        "--timezone",
        "Europe/Berlin",
        "--currency",
        "EUR",
    ];
    let out = run(dir.path(), &args, &env);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(
        said.contains("created tenant acme") && said.contains("Europe/Berlin"),
        "{said}"
    );

    let out = run(dir.path(), &args, &env);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("already exists"),
        "{}",
        text(&out.stderr)
    );

    let out = run(
        dir.path(),
        &[
            "admin",
            "create-tenant",
            "--slug",
            "Bad Slug",
            "--name",
            "X",
        ],
        &env,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("--slug"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn worker_starts_and_stops_on_sigterm() {
    let db = test_database();
    let dir = tempfile::tempdir().unwrap();
    let mut worker = Running::start(mpanel(
        dir.path(),
        &["worker"],
        &[("MPANEL_DATABASE_URL", db.url())],
    ));
    worker.wait_for_line(|l| l.contains("worker started"));
    worker.signal("TERM");
    assert_eq!(worker.wait_exit(), 0);
}

#[test]
fn first_start_creates_the_first_tenant_and_admin_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    // Without an admin e-mail address: no account at all.
    let db = test_database();
    let mut server = Running::start(mpanel(
        dir.path(),
        &["serve"],
        &[
            ("MPANEL_DATABASE_URL", db.url()),
            ("MPANEL_LISTEN", "127.0.0.1:0"),
        ],
    ));
    let addr = server.address();
    assert_eq!(
        login(&addr, "default", "admin@example.test", "whatever password"),
        401
    );
    server.signal("TERM");
    assert_eq!(server.wait_exit(), 0);

    // With one and a password: that admin can log in.
    let db = test_database();
    let mut server = Running::start(mpanel(
        dir.path(),
        &["serve"],
        &[
            ("MPANEL_DATABASE_URL", db.url()),
            ("MPANEL_LISTEN", "127.0.0.1:0"),
            ("MPANEL_BOOTSTRAP_TENANT", "acme"),
            ("MPANEL_BOOTSTRAP_ADMIN_EMAIL", "admin@acme.test"),
            (
                "MPANEL_BOOTSTRAP_ADMIN_PASSWORD",
                "a long bootstrap password",
            ),
        ],
    ));
    let addr = server.address();
    assert_eq!(
        login(
            &addr,
            "acme",
            "admin@acme.test",
            "a long bootstrap password"
        ),
        200
    );
    server.signal("TERM");
    assert_eq!(server.wait_exit(), 0);
    assert!(!server.log().contains("a long bootstrap password"));
}

#[test]
fn a_generated_bootstrap_password_is_printed_once_and_works() {
    let dir = tempfile::tempdir().unwrap();
    let db = test_database();
    let env = [
        ("MPANEL_DATABASE_URL", db.url()),
        ("MPANEL_LISTEN", "127.0.0.1:0"),
        ("MPANEL_BOOTSTRAP_ADMIN_EMAIL", "admin@example.test"),
    ];
    let mut cmd = mpanel(dir.path(), &["serve"], &env);
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut password = None;
    for line in stdout.lines().map_while(Result::ok) {
        if let Some(rest) = line.split("with password: ").nth(1) {
            password = Some(rest.trim().to_owned());
            break;
        }
    }
    let password = password.expect("the generated password is printed");
    let stderr = child.stderr.take().unwrap();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    let mut server = Running { child, lines };
    let addr = server.address();
    assert_eq!(
        login(&addr, "default", "admin@example.test", &password),
        200
    );
    server.signal("TERM");
    assert_eq!(server.wait_exit(), 0);
    assert!(
        !server.log().contains(&password),
        "the password is never logged"
    );

    // A second start prints nothing: the tenant exists.
    let out = run(dir.path(), &["migrate"], &env);
    assert!(out.status.success());
}

#[test]
fn admin_creates_users_with_a_role() {
    let db = test_database();
    let dir = tempfile::tempdir().unwrap();
    let env = [("MPANEL_DATABASE_URL", db.url())];
    let out = run(
        dir.path(),
        &["admin", "create-tenant", "--slug", "acme", "--name", "Acme"],
        &env,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));

    let out = run(
        dir.path(),
        &[
            "admin",
            "create-user",
            "--tenant",
            "acme",
            "--email",
            "ops@acme.test",
            "--role",
            "SUPER_ADMIN",
        ],
        &env,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(
        said.contains("created user ops@acme.test") && said.contains("SUPER_ADMIN"),
        "{said}"
    );
    let password = said
        .lines()
        .find_map(|l| l.strip_prefix("password (shown once): "))
        .expect("a generated password")
        .to_owned();

    let mut server = Running::start(mpanel(
        dir.path(),
        &["serve"],
        &[
            ("MPANEL_DATABASE_URL", db.url()),
            ("MPANEL_LISTEN", "127.0.0.1:0"),
        ],
    ));
    let addr = server.address();
    assert_eq!(login(&addr, "acme", "ops@acme.test", &password), 200);
    server.signal("TERM");
    assert_eq!(server.wait_exit(), 0);

    let out = run(
        dir.path(),
        &[
            "admin",
            "create-user",
            "--tenant",
            "acme",
            "--email",
            "x@acme.test",
            "--role",
            "ROOT",
        ],
        &env,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("--role"),
        "{}",
        text(&out.stderr)
    );
    let out = run(
        dir.path(),
        &[
            "admin",
            "create-user",
            "--tenant",
            "nope",
            "--email",
            "x@acme.test",
            "--role",
            "CUSTOMER",
        ],
        &env,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("--tenant"),
        "{}",
        text(&out.stderr)
    );
}

/// Logs in over HTTP and returns the status.
fn login(addr: &str, tenant: &str, email: &str, password: &str) -> u16 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        reqwest::Client::new()
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
struct Run {
    worker: String,
    start: i128,
    end: Option<i128>,
}

fn read_runs(log: &Path) -> std::collections::HashMap<String, Vec<Run>> {
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

#[test]
fn three_worker_processes_share_ten_thousand_jobs_and_survive_a_sigkill() {
    let db = test_database();
    if db.engine() != Engine::Postgres {
        // Several worker processes on one database is the PostgreSQL
        // deployment; SQLite serves one process.
        eprintln!("skipped on SQLite: multi-process workers need PostgreSQL");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("probe.log");
    let env = [
        ("MPANEL_DATABASE_URL", db.url()),
        ("MPANEL_DIAGNOSTICS_LOG", log.to_str().unwrap()),
        ("MPANEL_JOB_LEASE_SECS", "2"),
        ("MPANEL_WORKER_CONCURRENCY", "3"),
    ];
    assert!(run(dir.path(), &["migrate"], &env).status.success());

    const JOBS: usize = 10_000;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = rt.block_on(async {
        let store = mpanel_store::Store::connect(db.url(), &mpanel_store::PoolSettings::default())
            .await
            .unwrap();
        let now = time::OffsetDateTime::now_utc();
        let jobs: Vec<_> = (0..JOBS)
            .map(|_| mpanel_store::jobs::NewJob {
                queue: "default".into(),
                kind: "diagnostics.probe".into(),
                payload: serde_json::json!({"sleep_ms": 1}),
                priority: 0,
                run_at: now,
                max_attempts: 5,
                unique_key: None,
            })
            .collect();
        store.enqueue_many(&jobs, now).await.unwrap();
        store
    });

    let mut workers: Vec<Running> = (0..3)
        .map(|_| Running::start(mpanel(dir.path(), &["worker"], &env)))
        .collect();
    for w in &workers {
        w.wait_for_line(|l| l.contains("worker pool started"));
    }
    let victim_pid = workers[0].child.id();

    // Kill one worker mid-run, without warning.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let ended = std::fs::read_to_string(&log)
            .unwrap_or_default()
            .matches("end ")
            .count();
        if ended >= JOBS / 3 {
            break;
        }
        assert!(Instant::now() < deadline, "too slow: {ended} jobs ran");
        std::thread::sleep(Duration::from_millis(20));
    }
    workers[0].child.kill().unwrap();
    workers[0].child.wait().unwrap();
    let killed_at = time::OffsetDateTime::now_utc().unix_timestamp_nanos();

    // Every job completes.
    loop {
        let completed: i64 = rt
            .block_on(store.queue_stats(time::OffsetDateTime::now_utc()))
            .unwrap()
            .iter()
            .filter(|s| s.state == mpanel_domain::jobs::JobState::Completed)
            .map(|s| s.count)
            .sum();
        if completed as usize == JOBS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {completed} of {JOBS} jobs completed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    for w in &mut workers[1..] {
        w.signal("TERM");
        assert_eq!(w.wait_exit(), 0);
    }

    let runs = read_runs(&log);
    assert_eq!(runs.len(), JOBS, "every job ran");
    let victim = format!(":{victim_pid}:");
    let mut rerun = 0;
    for (job, job_runs) in &runs {
        assert!(
            job_runs.iter().any(|r| r.end.is_some()),
            "job {job} never finished"
        );
        for r in job_runs {
            if r.end.is_none() {
                assert!(
                    r.worker.contains(&victim),
                    "job {job}: only the killed worker leaves runs unfinished"
                );
            }
        }
        if job_runs.len() > 1 {
            rerun += 1;
            assert_eq!(job_runs.len(), 2, "job {job} ran {} times", job_runs.len());
            let (first, second) = (&job_runs[0], &job_runs[1]);
            // Held by the killed worker: still running, or finished but
            // its completion not yet recorded when it died.
            assert!(
                first.worker.contains(&victim),
                "job {job}: a second run only of the killed worker's jobs"
            );
            assert!(
                second.start > killed_at,
                "job {job}: the second run started while the first could still run"
            );
        }
        // Never two runs at once.
        let mut sorted = job_runs.clone();
        sorted.sort_by_key(|r| r.start);
        for pair in sorted.windows(2) {
            let first_end = pair[0].end.unwrap_or(killed_at);
            assert!(
                first_end <= pair[1].start,
                "job {job} ran in two places at once"
            );
        }
    }
    assert!(
        rerun <= 3,
        "{rerun} jobs ran twice; only the killed worker's 3 running jobs may"
    );
    eprintln!("{} jobs, {rerun} re-run after the SIGKILL", runs.len());
}

#[test]
fn serve_runs_jobs_too_and_reports_them_in_metrics() {
    let db = test_database();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("probe.log");
    let mut server = Running::start(mpanel(
        dir.path(),
        &["serve"],
        &[
            ("MPANEL_DATABASE_URL", db.url()),
            ("MPANEL_LISTEN", "127.0.0.1:0"),
            ("MPANEL_DIAGNOSTICS_LOG", log.to_str().unwrap()),
        ],
    ));
    let addr = server.address();
    server.wait_for_line(|l| l.contains("worker pool started"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = mpanel_store::Store::connect(db.url(), &mpanel_store::PoolSettings::default())
            .await
            .unwrap();
        let now = time::OffsetDateTime::now_utc();
        let job = mpanel_store::jobs::NewJob {
            queue: "default".into(),
            kind: "diagnostics.probe".into(),
            payload: serde_json::json!({}),
            priority: 0,
            run_at: now,
            max_attempts: 1,
            unique_key: None,
        };
        store.enqueue(&job, now).await.unwrap();
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let metrics = loop {
        let (_, text) = get(&addr, "/metrics", None);
        if text.contains(r#"jobs_completed_total{kind="diagnostics.probe"} 1"#) {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "the job was not reported completed:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        metrics.contains(r#"job_pickup_seconds_count{kind="diagnostics.probe"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"job_run_seconds_count{kind="diagnostics.probe"} 1"#),
        "{metrics}"
    );
    assert!(std::fs::read_to_string(&log).unwrap().contains("end "));
    server.signal("TERM");
    assert_eq!(server.wait_exit(), 0);
}
