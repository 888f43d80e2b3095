//! A pool's life and the queue's upkeep: shutdown, wake-ups, recurring
//! jobs, pruning and vacuuming.

use super::*;

#[tokio::test]
async fn shutdown_lets_running_jobs_finish_within_the_grace() {
    let h = harness().await;
    let (started_tx, mut started_rx) = mpsc::unbounded_channel();
    let mut registry = Registry::new();
    registry.register("slow", move |_ctx, _: serde_json::Value| {
        let started = started_tx.clone();
        async move {
            let _ = started.send(());
            tokio::time::sleep(Duration::from_millis(300)).await;
            Ok(())
        }
    });
    let (id, _) = h
        .enqueue("slow", serde_json::json!({}), &JobOptions::default())
        .await;
    let pool = h.start(registry, config());
    started_rx.recv().await.unwrap();
    pool.stop().await;
    assert_eq!(
        h.store.job(id).await.unwrap().expect("the job").state,
        JobState::Completed
    );
}

#[tokio::test]
async fn shutdown_gives_back_what_it_cannot_finish() {
    let h = harness().await;
    let (started_tx, mut started_rx) = mpsc::unbounded_channel();
    let mut registry = Registry::new();
    registry.register("stuck", move |_ctx, _: serde_json::Value| {
        let started = started_tx.clone();
        async move {
            let _ = started.send(());
            std::future::pending::<()>().await;
            Ok(())
        }
    });
    let (stuck, _) = h
        .enqueue("stuck", serde_json::json!({}), &JobOptions::default())
        .await;
    let cfg = PoolConfig {
        concurrency: 1,
        batch_size: 5,
        shutdown_grace: Duration::from_millis(100),
        ..config()
    };
    let (waiting, _) = h
        .enqueue("stuck", serde_json::json!({}), &JobOptions::default())
        .await;
    let pool = h.start(registry, cfg);
    started_rx.recv().await.unwrap();
    pool.stop().await;
    for id in [stuck, waiting] {
        let job = h.store.job(id).await.unwrap().expect("the job");
        assert_eq!(job.state, JobState::Pending, "{id}");
        assert_eq!(job.locked_by, None);
        assert_eq!(job.attempts, 0, "an interrupted attempt does not count");
    }
    // Another worker takes them at once, without waiting for a lease.
    let now = h.clock.now();
    assert_eq!(
        h.store
            .claim_jobs("next", 10, now, now)
            .await
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn an_enqueue_wakes_an_idle_worker_without_waiting_for_the_poll() {
    let h = harness().await;
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let mut registry = Registry::new();
    registry.register("greet", move |_ctx, g: Greet| {
        let done = done_tx.clone();
        async move {
            let _ = done.send(g.name);
            Ok(())
        }
    });
    let pool = h.start(
        registry,
        PoolConfig {
            poll_interval: Duration::from_secs(3600),
            ..config()
        },
    );
    // Let the pool find the queue empty and go idle first.
    tokio::time::sleep(Duration::from_millis(200)).await;
    h.enqueue(
        "greet",
        serde_json::json!({"name": "now"}),
        &JobOptions::default(),
    )
    .await;
    let got = tokio::time::timeout(Duration::from_secs(10), done_rx.recv()).await;
    assert_eq!(
        got.expect("woken long before the hour-long poll").unwrap(),
        "now"
    );
    pool.stop().await;
}

#[tokio::test]
async fn recurring_jobs_are_enqueued_once_per_slot_across_nodes() {
    let h = harness().await;
    let nightly = Recurring {
        name: "billing.nightly".into(),
        schedule: Schedule::DailyAt { hour: 2, minute: 0 },
        kind: "billing.run".into(),
        payload: serde_json::json!({}),
        options: JobOptions::default(),
    };
    let node_a = Scheduler::new(h.store.clone(), h.clock.clone(), vec![nightly.clone()]);
    let node_b = Scheduler::new(h.store.clone(), h.clock.clone(), vec![nightly]);
    let (a, b) = tokio::join!(node_a.tick(), node_b.tick());
    assert_eq!(a.unwrap() + b.unwrap(), 1);
    assert_eq!(node_a.tick().await.unwrap(), 0);

    let count = |s: &Store| {
        let s = s.clone();
        async move {
            s.list_jobs(
                &mpanel_store::jobs::JobFilter {
                    kind: Some("billing.run".into()),
                    ..Default::default()
                },
                None,
                100,
            )
            .await
            .unwrap()
        }
    };
    let jobs = count(&h.store).await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].payload["slot"], "2026-11-21T02:00:00Z");

    h.clock.advance(time::Duration::days(1));
    assert_eq!(node_b.tick().await.unwrap(), 1);
    assert_eq!(count(&h.store).await.len(), 2);
}

#[tokio::test]
async fn finished_jobs_are_pruned_after_the_retention() {
    let h = harness().await;
    let (id, _) = h
        .enqueue(
            "greet",
            serde_json::json!({"name": "old"}),
            &JobOptions::default(),
        )
        .await;
    let now = h.clock.now();
    h.store
        .claim_jobs("w", 1, now, now + time::Duration::seconds(30))
        .await
        .unwrap();
    h.store.complete_jobs("w", &[id], now).await.unwrap();
    assert_eq!(
        h.store
            .prune_jobs(now - time::Duration::days(7), 100)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        h.store
            .prune_jobs(now + time::Duration::seconds(1), 100)
            .await
            .unwrap(),
        1
    );
    assert!(h.store.job(id).await.unwrap().is_none());
}

/// Every claim leaves the job's pending version behind in the ready index
/// until PostgreSQL vacuums the table; the pool does it when the queue runs
/// dry after many claims, before the next burst has to walk past them.
#[tokio::test]
async fn the_job_table_is_vacuumed_when_the_queue_runs_dry_after_many_claims() {
    let h = harness().await;
    if h.store.engine() != mpanel_store::Engine::Postgres {
        return; // SQLite frees a row's space as it writes: nothing to vacuum
    }
    let mut registry = Registry::new();
    registry.register("noop", |_ctx, _: serde_json::Value| async { Ok(()) });
    let cfg = PoolConfig {
        vacuum_after_claims: 20,
        ..config()
    };
    let last = h.enqueue_several("noop", 10).await;
    let pool = h.start(registry, cfg);
    h.wait_for_state(last, JobState::Completed).await;
    assert_eq!(
        h.store.vacuums_for_tests("jobs").await.unwrap(),
        0,
        "10 claims are not enough"
    );
    let last = h.enqueue_several("noop", 15).await;
    h.wait_for_state(last, JobState::Completed).await;
    tokio::time::timeout(Duration::from_secs(10), async {
        while h.store.vacuums_for_tests("jobs").await.unwrap() == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the table vacuumed once 25 jobs were claimed and the queue ran dry");
    pool.stop().await;
    assert_eq!(h.store.vacuums_for_tests("jobs").await.unwrap(), 1);
}
