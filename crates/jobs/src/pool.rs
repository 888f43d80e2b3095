//! The worker pool: claims due jobs in batches under a lease, runs them
//! `concurrency` at a time, completes them in batches, retries failures
//! with back-off, and on shutdown gives back what it has not finished.

use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mpanel_domain::jobs::{Backoff, JobState};
use mpanel_domain::{Clock, JobId};
use mpanel_store::jobs::ClaimedJob;
use mpanel_store::{Store, StoreError};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use crate::handler::{JobContext, JobError, Registry};

#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Unique per process: it marks the jobs this pool holds.
    pub worker_id: String,
    /// Jobs run at once.
    pub concurrency: usize,
    /// Jobs claimed per round trip (kept in a local queue until a slot frees).
    pub batch_size: u32,
    /// How long a claim holds without renewal; renewed every third of it.
    pub lease: Duration,
    /// The safety-net poll, besides wake-ups.
    pub poll_interval: Duration,
    /// How long shutdown waits for running jobs before giving them back.
    pub shutdown_grace: Duration,
    pub backoff: Backoff,
    /// Completed and cancelled jobs are deleted after this long.
    pub retention: Duration,
    /// After this many claims (counted since the last vacuum), the job
    /// table is vacuumed the next time the queue runs dry (see
    /// [`Store::vacuum_jobs`]).
    pub vacuum_after_claims: u64,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            worker_id: default_worker_id(),
            concurrency: 3,
            batch_size: 3,
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(20),
            backoff: Backoff::default(),
            retention: Duration::from_secs(7 * 24 * 3600),
            vacuum_after_claims: 10_000,
        }
    }
}

/// `host:pid:random`, unique across processes and restarts.
pub fn default_worker_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into());
    let id = uuid::Uuid::now_v7().simple().to_string();
    format!("{host}:{}:{}", std::process::id(), &id[id.len() - 8..])
}

/// What running one job came to.
struct Outcome {
    id: JobId,
    kind: String,
    attempt: i32,
    max_attempts: i32,
    result: Result<(), JobError>,
}

/// The jobs this pool has claimed and not yet recorded the end of: only
/// their leases are renewed, so a job whose outcome could not be written
/// lapses and runs again instead of staying "running" for good.
#[derive(Clone, Default)]
struct Held(Arc<std::sync::Mutex<HashSet<JobId>>>);

impl Held {
    fn with<T>(&self, f: impl FnOnce(&mut HashSet<JobId>) -> T) -> T {
        let mut set = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut set)
    }
}

pub struct WorkerPool {
    store: Store,
    clock: Arc<dyn Clock>,
    registry: Arc<Registry>,
    config: PoolConfig,
}

impl WorkerPool {
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        registry: Registry,
        config: PoolConfig,
    ) -> Self {
        Self {
            store,
            clock,
            registry: Arc::new(registry),
            config,
        }
    }

    pub fn worker_id(&self) -> &str {
        &self.config.worker_id
    }

    /// Runs until `shutdown` resolves, then stops claiming, lets running
    /// jobs finish within the grace period and gives back the rest.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), StoreError> {
        let cfg = self.config.clone();
        let listener = self.store.listen_for_jobs().await?;
        let wakeup = self.store.job_wakeup();
        let slots = Arc::new(Semaphore::new(cfg.concurrency.max(1)));
        let (outcomes_tx, outcomes_rx) = mpsc::unbounded_channel::<Outcome>();
        let held = Held::default();
        let completer = tokio::spawn(complete(
            self.store.clone(),
            self.clock.clone(),
            cfg.clone(),
            outcomes_rx,
            held.clone(),
        ));
        let upkeep = tokio::spawn(upkeep(
            self.store.clone(),
            self.clock.clone(),
            cfg.clone(),
            held.clone(),
        ));
        let mut running: JoinSet<()> = JoinSet::new();
        let mut local: VecDeque<ClaimedJob> = VecDeque::new();
        let mut vacuum = Vacuum::new(cfg.vacuum_after_claims);
        tracing::info!(worker = %cfg.worker_id, concurrency = cfg.concurrency, kinds = ?self.registry.kinds().collect::<Vec<_>>(), "worker pool started");

        tokio::pin!(shutdown);
        'work: loop {
            let permit = tokio::select! {
                biased;
                () = &mut shutdown => break 'work,
                permit = slots.clone().acquire_owned() => match permit {
                    Ok(p) => p,
                    Err(_) => break 'work,
                },
            };
            while running.try_join_next().is_some() {}
            if local.is_empty() {
                vacuum.claimed(self.claim_into(&mut local, &held).await);
            }
            let Some(job) = local.pop_front() else {
                drop(permit);
                vacuum.when_dry(&self.store);
                tokio::select! {
                    biased;
                    () = &mut shutdown => break 'work,
                    () = wakeup.notified() => {}
                    () = tokio::time::sleep(cfg.poll_interval) => {}
                }
                continue;
            };
            let registry = self.registry.clone();
            let outcomes = outcomes_tx.clone();
            let clock = self.clock.clone();
            let worker = cfg.worker_id.clone();
            running.spawn(async move {
                let outcome = execute(registry, clock, worker, job).await;
                let _ = outcomes.send(outcome);
                drop(permit);
            });
        }
        self.give_back_unstarted(&mut local, &held).await?;
        self.drain(&mut running).await;
        // The completer ends once every sender is gone and it has recorded
        // what the drained jobs sent.
        drop(outcomes_tx);
        let _ = completer.await;
        upkeep.abort();
        if let Some(listener) = listener {
            listener.abort();
        }
        let released = self
            .store
            .release_jobs(&cfg.worker_id, None, self.clock.now())
            .await?;
        vacuum.finish().await;
        tracing::info!(released, "worker pool stopped");
        Ok(())
    }

    /// Claims a batch under a fresh lease into `local` (held, so upkeep
    /// renews it) and answers how many; a failed claim is logged and tried
    /// after the poll.
    async fn claim_into(&self, local: &mut VecDeque<ClaimedJob>, held: &Held) -> usize {
        let cfg = &self.config;
        let now = self.clock.now();
        let lease_until = now + to_time(cfg.lease);
        match self
            .store
            .claim_jobs(&cfg.worker_id, cfg.batch_size.max(1), now, lease_until)
            .await
        {
            Ok(claimed) => {
                held.with(|h| h.extend(claimed.iter().map(|j| j.id)));
                let n = claimed.len();
                local.extend(claimed);
                n
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot claim jobs; retrying after the poll interval");
                0
            }
        }
    }

    /// Shutdown: nothing more is claimed; unstarted jobs go back at once.
    async fn give_back_unstarted(
        &self,
        local: &mut VecDeque<ClaimedJob>,
        held: &Held,
    ) -> Result<(), StoreError> {
        let unstarted: Vec<JobId> = local.drain(..).map(|j| j.id).collect();
        held.with(|h| {
            unstarted.iter().for_each(|id| {
                h.remove(id);
            })
        });
        if !unstarted.is_empty() {
            self.store
                .release_jobs(&self.config.worker_id, Some(&unstarted), self.clock.now())
                .await?;
        }
        Ok(())
    }

    /// Lets running jobs finish within the grace period, then aborts the
    /// rest (their jobs are given back with the pool's other leases).
    async fn drain(&self, running: &mut JoinSet<()>) {
        let drained = tokio::time::timeout(self.config.shutdown_grace, async {
            while running.join_next().await.is_some() {}
        })
        .await
        .is_ok();
        if !drained {
            tracing::warn!(
                still_running = running.len(),
                "grace period over: giving the remaining jobs back"
            );
            running.abort_all();
            while running.join_next().await.is_some() {}
        }
    }
}

/// Vacuums the job table in the background when the queue runs dry after
/// many claims: the quiet moment before the next burst, which would
/// otherwise walk past every claimed job's dead pending version.
struct Vacuum {
    after: u64,
    claimed: u64,
    running: Option<tokio::task::JoinHandle<()>>,
}

impl Vacuum {
    fn new(after: u64) -> Self {
        Self {
            after: after.max(1),
            claimed: 0,
            running: None,
        }
    }

    fn claimed(&mut self, n: usize) {
        self.claimed = self.claimed.saturating_add(n as u64);
    }

    fn when_dry(&mut self, store: &Store) {
        if self.claimed < self.after || self.running.as_ref().is_some_and(|r| !r.is_finished()) {
            return;
        }
        self.claimed = 0;
        let store = store.clone();
        self.running = Some(tokio::spawn(async move {
            match store.vacuum_jobs().await {
                Ok(()) => tracing::debug!("job table vacuumed"),
                Err(err) => tracing::warn!(error = %err, "cannot vacuum the job table"),
            }
        }));
    }

    /// Shutdown, once every job is given back: a vacuum under way gets a
    /// few seconds to finish (122 ms after 150,000 jobs, measured); past them
    /// it is left to PostgreSQL, which finishes it without its connection.
    async fn finish(&mut self) {
        const GRACE: Duration = Duration::from_secs(5);
        if let Some(mut running) = self.running.take()
            && tokio::time::timeout(GRACE, &mut running).await.is_err()
        {
            running.abort();
        }
    }
}

async fn execute(
    registry: Arc<Registry>,
    clock: Arc<dyn Clock>,
    worker: String,
    job: ClaimedJob,
) -> Outcome {
    let taken_at = clock.now();
    let pickup = (taken_at - job.due_at).as_seconds_f64().max(0.0);
    metrics::histogram!("job_pickup_seconds", "kind" => job.kind.clone()).record(pickup);
    let ctx = JobContext {
        id: job.id,
        kind: job.kind.clone(),
        queue: job.queue.clone(),
        attempt: job.attempt,
        max_attempts: job.max_attempts,
        due_at: job.due_at,
        created_at: job.created_at,
        worker,
    };
    let started = Instant::now();
    // Its own task, so a panicking handler fails its job, not the worker;
    // aborted with this task (shutdown past its grace).
    let mut handler = AbortOnDrop(tokio::spawn(async move {
        registry.run(ctx, job.payload, taken_at).await
    }));
    let result = match (&mut handler.0).await {
        Ok(result) => result,
        Err(err) if err.is_panic() => Err(JobError::Retry("the handler panicked".into())),
        Err(_) => Err(JobError::Retry("the handler was cancelled".into())),
    };
    metrics::histogram!("job_run_seconds", "kind" => job.kind.clone())
        .record(started.elapsed().as_secs_f64());
    Outcome {
        id: job.id,
        kind: job.kind,
        attempt: job.attempt,
        max_attempts: job.max_attempts,
        result,
    }
}

/// A task that is aborted when its handle is dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Writes outcomes: successes in batches, failures one by one.
async fn complete(
    store: Store,
    clock: Arc<dyn Clock>,
    cfg: PoolConfig,
    mut rx: mpsc::UnboundedReceiver<Outcome>,
    held: Held,
) {
    const MAX_BATCH: usize = 1000;
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let now = clock.now();
        let mut done: Vec<JobId> = Vec::new();
        for outcome in batch.drain(..) {
            match outcome.result {
                Ok(()) => {
                    metrics::counter!("jobs_completed_total", "kind" => outcome.kind).increment(1);
                    done.push(outcome.id);
                }
                Err(ref err) => {
                    held.with(|h| h.remove(&outcome.id));
                    record_failure(&store, &cfg, &outcome, err, now).await
                }
            }
        }
        // Recorded or not, these are no longer renewed: if the write failed,
        // their leases lapse and they run again (handlers are idempotent).
        held.with(|h| {
            done.iter().for_each(|id| {
                h.remove(id);
            })
        });
        if !done.is_empty()
            && let Err(err) = store.complete_jobs(&cfg.worker_id, &done, now).await
        {
            // The leases lapse and the jobs run again: handlers are idempotent.
            tracing::error!(error = %err, jobs = done.len(), "cannot record completed jobs");
        }
    }
}

/// Records a failed (or waiting) job: deferred, retried after its
/// back-off, or dead.
async fn record_failure(
    store: &Store,
    cfg: &PoolConfig,
    outcome: &Outcome,
    err: &JobError,
    now: time::OffsetDateTime,
) {
    let (id, kind) = (outcome.id, outcome.kind.as_str());
    let (attempt, max_attempts) = (outcome.attempt, outcome.max_attempts);
    if let JobError::Wait { reason, retry_in } = err {
        metrics::counter!("jobs_deferred_total", "kind" => kind.to_owned()).increment(1);
        tracing::info!(job = %id, kind, retry_in = %retry_in, reason = %reason, "job waits");
        if let Err(e) = store
            .defer_job(&cfg.worker_id, id, now + *retry_in, reason, now)
            .await
        {
            tracing::error!(job = %id, error = %e, "cannot record a waiting job");
        }
        return;
    }
    let permanent = matches!(err, JobError::Permanent(_));
    let (next, retry_at) = if permanent || attempt >= max_attempts {
        metrics::counter!("jobs_dead_total", "kind" => kind.to_owned()).increment(1);
        (JobState::Dead, now)
    } else {
        metrics::counter!("jobs_failed_total", "kind" => kind.to_owned()).increment(1);
        let delay = cfg
            .backoff
            .delay(u32::try_from(attempt).unwrap_or(1), jitter());
        (JobState::Failed, now + delay)
    };
    tracing::warn!(job = %id, kind, attempt, max_attempts, next = %next, error = %err, "job failed");
    if let Err(e) = store
        .fail_job(&cfg.worker_id, id, next, retry_at, &err.to_string(), now)
        .await
    {
        tracing::error!(job = %id, error = %e, "cannot record a failed job");
    }
}

/// A number in `[0, 1)`.
fn jitter() -> f64 {
    let mut b = [0u8; 4];
    if getrandom::fill(&mut b).is_err() {
        return 0.5;
    }
    f64::from(u32::from_le_bytes(b)) / (f64::from(u32::MAX) + 1.0)
}

/// Lease renewal, re-queueing jobs of vanished workers, pruning.
async fn upkeep(store: Store, clock: Arc<dyn Clock>, cfg: PoolConfig, held: Held) {
    let renew_every = (cfg.lease / 3).max(Duration::from_millis(100));
    let mut renew = tokio::time::interval(renew_every);
    let mut reap = tokio::time::interval((cfg.lease / 2).max(Duration::from_millis(100)));
    let mut prune = tokio::time::interval(Duration::from_secs(600));
    loop {
        tokio::select! {
            _ = renew.tick() => {
                let until = clock.now() + to_time(cfg.lease);
                let ids: Vec<JobId> = held.with(|h| h.iter().copied().collect());
                if let Err(err) = store.renew_leases(&cfg.worker_id, &ids, until).await {
                    tracing::warn!(error = %err, "cannot renew job leases");
                }
            }
            _ = reap.tick() => match store.requeue_expired_leases(clock.now()).await {
                Ok(0) => {}
                Ok(n) => tracing::warn!(jobs = n, "re-queued jobs whose worker stopped renewing its lease"),
                Err(err) => tracing::warn!(error = %err, "cannot re-queue lapsed jobs"),
            },
            _ = prune.tick() => {
                let before = clock.now() - to_time(cfg.retention);
                match store.prune_jobs(before, 10_000).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(jobs = n, "pruned finished jobs"),
                    Err(err) => tracing::warn!(error = %err, "cannot prune jobs"),
                }
            }
        }
    }
}

fn to_time(d: Duration) -> time::Duration {
    time::Duration::try_from(d).unwrap_or(time::Duration::MAX)
}
