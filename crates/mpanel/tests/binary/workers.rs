//! `mpanel worker` processes sharing the queue, one killed mid-run.

use crate::support::*;

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
            .filter(|s| {
                s.state == mpanel_domain::jobs::JobState::Completed && s.kind == "diagnostics.probe"
            })
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
    // Killed mid-run: at most one unfinished run per slot (concurrency 3).
    // Finished runs whose completion the victim had not yet written may
    // also run again; that is the at-least-once promise.
    let unfinished = runs.values().flatten().filter(|r| r.end.is_none()).count();
    assert!(
        unfinished <= 3,
        "{unfinished} runs unfinished; the killed worker ran 3 at a time"
    );
    eprintln!("{} jobs, {rerun} re-run after the SIGKILL", runs.len());
}

/// `serve` and `worker` open their whole PostgreSQL pool at start and keep
/// it, so a burst after a quiet spell does not wait for new server
/// processes.
#[test]
fn serve_and_worker_hold_their_whole_postgres_pool_from_the_start() {
    let db = test_database();
    if db.engine() != Engine::Postgres {
        eprintln!("skipped on SQLite: its connections are threads of the process");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("MPANEL_DATABASE_URL", db.url()),
        ("MPANEL_DATABASE_MAX_CONNECTIONS", "20"),
        ("MPANEL_LISTEN", "127.0.0.1:0"),
    ];
    assert!(run(dir.path(), &["migrate"], &env).status.success());
    let open = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(db.connections_from("mpanel"))
            .unwrap()
    };
    for (command, started) in [("worker", "worker started"), ("serve", "listening on")] {
        // The last process's connections gone (their server processes end
        // a moment after it does).
        let deadline = Instant::now() + Duration::from_secs(10);
        while open() > 0 {
            assert!(
                Instant::now() < deadline,
                "connections left open before {command}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut process = Running::start(mpanel(dir.path(), &[command], &env));
        process.wait_for_line(|l| l.contains(started));
        let held = open();
        assert!(held >= 20, "{command}: {held} connections open");
        process.signal("TERM");
        assert_eq!(process.wait_exit(), 0);
    }
}
