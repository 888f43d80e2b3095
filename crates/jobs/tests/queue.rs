//! The job queue on the engine the test run selects: transactional
//! enqueue, unique keys, retries with back-off on an injected clock, dead
//! jobs, lease expiry, graceful shutdown and the scheduler.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mpanel_domain::jobs::JobState;
use mpanel_domain::{Clock, JobId, ManualClock};
use mpanel_jobs::{
    JobError, JobOptions, PoolConfig, Recurring, Registry, Schedule, Scheduler,
    UNKNOWN_KIND_GIVE_UP, UNKNOWN_KIND_RETRY, WorkerPool, enqueue,
};
use mpanel_store::testing::TestDatabase;
use mpanel_store::{PoolSettings, Store};
use serde::{Deserialize, Serialize};
use time::macros::datetime;
use tokio::sync::{mpsc, oneshot};

struct Harness {
    store: Store,
    clock: Arc<ManualClock>,
    _db: TestDatabase,
}

async fn harness() -> Harness {
    let db = TestDatabase::create().await.unwrap();
    let store = Store::connect(db.url(), &PoolSettings::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    Harness {
        store,
        clock: Arc::new(ManualClock::at(datetime!(2026-11-21 12:00 UTC))),
        _db: db,
    }
}

fn config() -> PoolConfig {
    PoolConfig {
        poll_interval: Duration::from_millis(20),
        shutdown_grace: Duration::from_secs(5),
        ..PoolConfig::default()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Greet {
    name: String,
}

impl Harness {
    async fn enqueue(
        &self,
        kind: &str,
        payload: serde_json::Value,
        options: &JobOptions,
    ) -> (JobId, bool) {
        let mut tx = self.store.begin().await.unwrap();
        let out = enqueue(&mut tx, kind, &payload, options, self.clock.now())
            .await
            .unwrap();
        tx.commit().await.unwrap();
        out
    }

    /// Enqueues `n` jobs of `kind` (empty payload); answers the last one.
    async fn enqueue_several(&self, kind: &str, n: usize) -> JobId {
        let mut last = None;
        for _ in 0..n {
            let (id, _) = self
                .enqueue(kind, serde_json::json!({}), &JobOptions::default())
                .await;
            last = Some(id);
        }
        last.expect("at least one job")
    }

    /// Starts a pool; returns a handle that stops it.
    fn start(&self, registry: Registry, config: PoolConfig) -> Running {
        let (tx, rx) = oneshot::channel::<()>();
        let pool = WorkerPool::new(self.store.clone(), self.clock.clone(), registry, config);
        let task = tokio::spawn(pool.run(async move {
            let _ = rx.await;
        }));
        Running {
            stop: Some(tx),
            task,
        }
    }

    async fn wait_for_state(&self, id: JobId, state: JobState) -> mpanel_store::jobs::JobRecord {
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let job = self.store.job(id).await.unwrap().expect("the job");
                if job.state == state {
                    return job;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("job {id} never became {state}"))
    }
}

struct Running {
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), mpanel_store::StoreError>>,
}

impl Running {
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(20), self.task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}

#[tokio::test]
async fn a_job_exists_only_if_its_transaction_commits() {
    let h = harness().await;
    let mut tx = h.store.begin().await.unwrap();
    let (id, _) = enqueue(
        &mut tx,
        "greet",
        &Greet { name: "a".into() },
        &JobOptions::default(),
        h.clock.now(),
    )
    .await
    .unwrap();
    tx.rollback().await.unwrap();
    assert!(h.store.job(id).await.unwrap().is_none());

    let (id, created) = h
        .enqueue(
            "greet",
            serde_json::json!({"name": "b"}),
            &JobOptions::default(),
        )
        .await;
    assert!(created);
    assert_eq!(
        h.store.job(id).await.unwrap().expect("the job").state,
        JobState::Pending
    );
}

#[tokio::test]
async fn a_live_unique_key_returns_the_existing_job() {
    let h = harness().await;
    let options = JobOptions {
        unique_key: Some("provision:order-7".into()),
        ..JobOptions::default()
    };
    let (first, created) = h
        .enqueue("greet", serde_json::json!({"name": "x"}), &options)
        .await;
    assert!(created);
    let (second, created) = h
        .enqueue("greet", serde_json::json!({"name": "y"}), &options)
        .await;
    assert!(!created);
    assert_eq!(first, second);

    // Once it finished, the key is free again.
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let mut registry = Registry::new();
    registry.register("greet", move |_ctx, g: Greet| {
        let done = done_tx.clone();
        async move {
            let _ = done.send(g.name);
            Ok(())
        }
    });
    let pool = h.start(registry, config());
    assert_eq!(done_rx.recv().await.unwrap(), "x");
    h.wait_for_state(first, JobState::Completed).await;
    pool.stop().await;
    let (third, created) = h
        .enqueue("greet", serde_json::json!({"name": "z"}), &options)
        .await;
    assert!(created);
    assert_ne!(third, first);
}

#[tokio::test]
async fn failures_retry_with_back_off_on_the_clock_then_die() {
    let h = harness().await;
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = runs.clone();
    let mut registry = Registry::new();
    registry.register("flaky", move |ctx, _: serde_json::Value| {
        let runs = counter.clone();
        async move {
            runs.fetch_add(1, Ordering::SeqCst);
            Err(JobError::Retry(format!(
                "upstream refused (attempt {})",
                ctx.attempt
            )))
        }
    });
    let options = JobOptions {
        max_attempts: 3,
        ..JobOptions::default()
    };
    let (id, _) = h.enqueue("flaky", serde_json::json!({}), &options).await;
    let pool = h.start(registry, config());

    let job = h.wait_for_state(id, JobState::Failed).await;
    assert_eq!(job.attempts, 1);
    let wait = job.run_at - h.clock.now();
    assert!(
        wait >= time::Duration::seconds(1) && wait <= time::Duration::seconds(2),
        "{wait}"
    );
    assert_eq!(
        job.last_error.as_deref(),
        Some("upstream refused (attempt 1)")
    );

    // Not before its time: the clock has not moved, so it stays failed.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(runs.load(Ordering::SeqCst), 1);

    h.clock.advance(time::Duration::seconds(2));
    let job = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let job = h.store.job(id).await.unwrap().expect("the job");
            if job.attempts == 2 && job.state == JobState::Failed {
                return job;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
    let wait = job.run_at - h.clock.now();
    assert!(
        wait >= time::Duration::seconds(2) && wait <= time::Duration::seconds(4),
        "second back-off {wait}"
    );

    h.clock.advance(time::Duration::seconds(4));
    let job = h.wait_for_state(id, JobState::Dead).await;
    assert_eq!(job.attempts, 3);
    assert_eq!(
        job.last_error.as_deref(),
        Some("upstream refused (attempt 3)")
    );
    assert_eq!(runs.load(Ordering::SeqCst), 3);
    pool.stop().await;
}

#[tokio::test]
async fn a_waiting_job_comes_back_at_its_time_without_spending_attempts() {
    let h = harness().await;
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = runs.clone();
    let mut registry = Registry::new();
    registry.register("patient", move |_ctx, _: serde_json::Value| {
        let runs = counter.clone();
        async move {
            // Waits three times, then finishes: more runs than attempts.
            if runs.fetch_add(1, Ordering::SeqCst) < 3 {
                Err(JobError::Wait {
                    reason: "waiting for the customer".into(),
                    retry_in: time::Duration::minutes(5),
                })
            } else {
                Ok(())
            }
        }
    });
    let options = JobOptions {
        max_attempts: 1,
        ..JobOptions::default()
    };
    let (id, _) = h.enqueue("patient", serde_json::json!({}), &options).await;
    let pool = h.start(registry, config());
    for round in 1..=3 {
        let job = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let job = h.store.job(id).await.unwrap().expect("the job");
                // Put back to wait: pending again, at a later time (a job
                // just claimed can read as pending with its old time).
                if runs.load(Ordering::SeqCst) == round
                    && job.state == JobState::Pending
                    && job.run_at > h.clock.now()
                {
                    return job;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .unwrap();
        assert_eq!(job.attempts, 0, "a wait spends no attempt");
        assert_eq!(job.run_at - h.clock.now(), time::Duration::minutes(5));
        assert_eq!(job.last_error.as_deref(), Some("waiting for the customer"));
        // Not before its time.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(runs.load(Ordering::SeqCst), round);
        h.clock.advance(time::Duration::minutes(5));
    }
    let job = h.wait_for_state(id, JobState::Completed).await;
    assert_eq!(job.attempts, 1);
    assert_eq!(runs.load(Ordering::SeqCst), 4);
    pool.stop().await;
}

#[tokio::test]
async fn bad_payloads_and_permanent_errors_die_at_once_and_the_worker_goes_on() {
    let h = harness().await;
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let mut registry = Registry::new();
    registry.register("greet", move |_ctx, g: Greet| {
        let done = done_tx.clone();
        async move {
            if g.name == "never" {
                return Err(JobError::Permanent("this account no longer exists".into()));
            }
            let _ = done.send(g.name);
            Ok(())
        }
    });
    registry.register("boom", |_ctx, _: serde_json::Value| async {
        if std::hint::black_box(true) {
            panic!("handler bug");
        }
        Ok(())
    });
    let (bad, _) = h
        .enqueue(
            "greet",
            serde_json::json!({"nom": 1}),
            &JobOptions::default(),
        )
        .await;
    let (permanent, _) = h
        .enqueue(
            "greet",
            serde_json::json!({"name": "never"}),
            &JobOptions::default(),
        )
        .await;
    let one_try = JobOptions {
        max_attempts: 1,
        ..JobOptions::default()
    };
    let (panics, _) = h.enqueue("boom", serde_json::json!({}), &one_try).await;
    let (good, _) = h
        .enqueue(
            "greet",
            serde_json::json!({"name": "ok"}),
            &JobOptions::default(),
        )
        .await;
    let pool = h.start(registry, config());

    assert_eq!(done_rx.recv().await.unwrap(), "ok");
    h.wait_for_state(good, JobState::Completed).await;
    let job = h.wait_for_state(bad, JobState::Dead).await;
    assert!(job.last_error.unwrap().contains("cannot be decoded"));
    let job = h.wait_for_state(permanent, JobState::Dead).await;
    assert_eq!(
        job.last_error.as_deref(),
        Some("this account no longer exists")
    );
    let job = h.wait_for_state(panics, JobState::Dead).await;
    assert_eq!(job.last_error.as_deref(), Some("the handler panicked"));
    pool.stop().await;
}

#[tokio::test]
async fn a_kind_a_worker_does_not_know_is_left_for_one_that_does() {
    let h = harness().await;
    let one_try = JobOptions {
        max_attempts: 1,
        ..JobOptions::default()
    };
    let (id, _) = h
        .enqueue("newer.kind", serde_json::json!({}), &one_try)
        .await;
    // An older worker, during an upgrade: it has no handler for the kind.
    let older = h.start(Registry::new(), config());
    let job = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let job = h.store.job(id).await.unwrap().expect("the job");
            if job.state == JobState::Pending && job.last_error.is_some() {
                return job;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the older worker put the job back");
    older.stop().await;
    assert_eq!(job.attempts, 0, "no attempt spent");
    assert_eq!(job.run_at - h.clock.now(), UNKNOWN_KIND_RETRY);
    assert!(job.last_error.unwrap().contains("no handler"));
    // A worker of the newer release runs it once it is due again.
    let mut newer = Registry::new();
    newer.register("newer.kind", |_ctx, _: serde_json::Value| async { Ok(()) });
    let pool = h.start(newer, config());
    h.clock.advance(UNKNOWN_KIND_RETRY);
    let job = h.wait_for_state(id, JobState::Completed).await;
    assert_eq!(job.attempts, 1);
    pool.stop().await;
    // A kind no worker takes for a day is dead, for an operator to see.
    let (id, _) = h
        .enqueue("dropped.kind", serde_json::json!({}), &one_try)
        .await;
    h.clock.advance(UNKNOWN_KIND_GIVE_UP);
    let older = h.start(Registry::new(), config());
    let job = h.wait_for_state(id, JobState::Dead).await;
    older.stop().await;
    assert!(job.last_error.unwrap().contains("more than a day ago"));
}

#[tokio::test]
async fn a_job_whose_lease_lapsed_is_claimed_again() {
    let h = harness().await;
    let (id, _) = h
        .enqueue(
            "greet",
            serde_json::json!({"name": "again"}),
            &JobOptions::default(),
        )
        .await;
    // A worker claims it and vanishes.
    let now = h.clock.now();
    let claimed = h
        .store
        .claim_jobs("ghost", 10, now, now + time::Duration::seconds(30))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert!(
        h.store
            .claim_jobs("other", 10, now, now)
            .await
            .unwrap()
            .is_empty(),
        "held under the lease"
    );
    assert_eq!(
        h.store.requeue_expired_leases(now).await.unwrap(),
        0,
        "the lease holds"
    );

    h.clock.advance(time::Duration::seconds(31));
    assert_eq!(
        h.store.requeue_expired_leases(h.clock.now()).await.unwrap(),
        1
    );
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let mut registry = Registry::new();
    registry.register("greet", move |ctx, g: Greet| {
        let done = done_tx.clone();
        async move {
            let _ = done.send((g.name, ctx.attempt));
            Ok(())
        }
    });
    let pool = h.start(registry, config());
    assert_eq!(done_rx.recv().await.unwrap(), ("again".into(), 2));
    h.wait_for_state(id, JobState::Completed).await;
    pool.stop().await;
    // The vanished worker cannot complete it behind the new one's back.
    assert_eq!(
        h.store
            .complete_jobs("ghost", &[id], h.clock.now())
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn concurrent_claims_never_hand_out_a_job_twice() {
    let h = harness().await;
    let jobs: Vec<_> = (0..300)
        .map(|i| mpanel_store::jobs::NewJob {
            queue: "default".into(),
            kind: "n".into(),
            payload: serde_json::json!({"i": i}),
            priority: 0,
            run_at: h.clock.now(),
            max_attempts: 3,
            unique_key: None,
        })
        .collect();
    h.store.enqueue_many(&jobs, h.clock.now()).await.unwrap();
    let claimers = (0..6).map(|w| {
        let store = h.store.clone();
        let now = h.clock.now();
        tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let batch = store
                    .claim_jobs(&format!("w{w}"), 7, now, now + time::Duration::seconds(30))
                    .await
                    .unwrap();
                if batch.is_empty() {
                    return mine;
                }
                mine.extend(batch.into_iter().map(|j| j.id));
            }
        })
    });
    let mut all = Vec::new();
    for c in claimers.collect::<Vec<_>>() {
        all.extend(c.await.unwrap());
    }
    let total = all.len();
    all.sort();
    all.dedup();
    assert_eq!(total, 300);
    assert_eq!(all.len(), 300, "a job was claimed twice");
}

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
