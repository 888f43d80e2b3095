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

mod failures;
mod lifecycle;

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
