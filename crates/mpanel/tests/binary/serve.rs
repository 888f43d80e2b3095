//! `mpanel serve`: defaults, logs, signals, secrets, jobs in the same process.

use crate::support::*;

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
