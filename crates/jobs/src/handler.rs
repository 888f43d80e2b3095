//! Handlers by job kind, with typed payloads.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use mpanel_domain::JobId;
use mpanel_domain::jobs::JobPayload;
use serde::de::DeserializeOwned;
use serde_json::Value;
use time::OffsetDateTime;

/// What a handler knows about the job it runs.
#[derive(Debug, Clone)]
pub struct JobContext {
    pub id: JobId,
    pub kind: String,
    pub queue: String,
    /// This attempt's number, from 1.
    pub attempt: i32,
    pub max_attempts: i32,
    pub due_at: OffsetDateTime,
    /// When it was queued.
    pub created_at: OffsetDateTime,
    /// The worker running it.
    pub worker: String,
}

/// Why a handler did not finish its job.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// Try again later (with back-off), while attempts remain.
    #[error("{0}")]
    Retry(String),
    /// Trying again cannot help: the job is dead at once.
    #[error("{0}")]
    Permanent(String),
    /// Nothing went wrong, but the job cannot go on yet (a customer has
    /// still to prove control of a domain): run it again after `retry_in`
    /// without spending an attempt, so a wait of days does not exhaust a
    /// retry budget meant for failures. The handler decides when waiting
    /// has gone on long enough.
    #[error("{reason}")]
    Wait {
        reason: String,
        retry_in: time::Duration,
    },
}

impl JobError {
    pub fn retry(e: impl std::fmt::Display) -> Self {
        Self::Retry(e.to_string())
    }
}

/// How long a job of a kind a worker has no handler for waits before a
/// worker looks at it again...
pub const UNKNOWN_KIND_RETRY: time::Duration = time::Duration::minutes(1);

/// ...until it is this old: then no worker is going to know the kind (a
/// rollback, a kind a later release dropped, a worker set up without what
/// the kind needs), and it is dead, so that the jobs queued after it under
/// the same key go on and an operator sees it among the dead.
pub const UNKNOWN_KIND_GIVE_UP: time::Duration = time::Duration::hours(24);

type BoxFuture = Pin<Box<dyn Future<Output = Result<(), JobError>> + Send>>;
type ErasedHandler = Arc<dyn Fn(JobContext, Value) -> BoxFuture + Send + Sync>;

/// The handlers a pool runs, by kind.
#[derive(Clone, Default)]
pub struct Registry {
    handlers: HashMap<String, ErasedHandler>,
    /// The kinds without a handler this worker has warned of (once each;
    /// the rest go to the debug log).
    unknown_warned: Arc<Mutex<HashSet<String>>>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers the handler of the kind `P` is tied to (see
    /// [`JobPayload`]).
    pub fn handle<P, F, Fut>(&mut self, handler: F) -> &mut Self
    where
        P: JobPayload,
        F: Fn(JobContext, P) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), JobError>> + Send + 'static,
    {
        self.register(P::KIND, handler)
    }

    /// Registers the handler of `kind`. Its payload is decoded into `P`; a
    /// payload that does not decode makes the job dead with a clear error.
    pub fn register<P, F, Fut>(&mut self, kind: &str, handler: F) -> &mut Self
    where
        P: DeserializeOwned + Send + 'static,
        F: Fn(JobContext, P) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), JobError>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        let erased: ErasedHandler = Arc::new(move |ctx: JobContext, payload: Value| {
            let handler = handler.clone();
            Box::pin(async move {
                let payload: P = serde_json::from_value(payload).map_err(|e| {
                    JobError::Permanent(format!(
                        "the payload of this {} job cannot be decoded: {e}",
                        ctx.kind
                    ))
                })?;
                handler(ctx, payload).await
            }) as BoxFuture
        });
        self.handlers.insert(kind.to_owned(), erased);
        self
    }

    pub fn kinds(&self) -> impl Iterator<Item = &str> {
        self.handlers.keys().map(String::as_str)
    }

    /// Runs the job. A kind with no handler here waits (no attempt spent)
    /// for a worker that has one: during a rolling upgrade a newer node
    /// queues kinds an older worker does not know, and that worker must
    /// not kill them. A day after it was queued, it is dead.
    /// `now` is the worker's clock when it took the job.
    pub(crate) async fn run(
        &self,
        ctx: JobContext,
        payload: Value,
        now: OffsetDateTime,
    ) -> Result<(), JobError> {
        match self.handlers.get(&ctx.kind) {
            Some(handler) => handler(ctx, payload).await,
            None => {
                self.note_unknown(&ctx);
                Err(unknown_kind(&ctx, now))
            }
        }
    }

    /// Logs a kind without a handler: a warning the first time, then at
    /// debug level (a billing run's jobs queued during an upgrade would
    /// otherwise warn thousands of times a minute; `jobs_deferred_total`
    /// counts them).
    fn note_unknown(&self, ctx: &JobContext) {
        let first = self
            .unknown_warned
            .lock()
            .map(|mut warned| warned.insert(ctx.kind.clone()))
            .unwrap_or(true);
        if first {
            tracing::warn!(job = %ctx.id, kind = %ctx.kind, worker = %ctx.worker,
                "this worker has no handler for a job kind it claimed: such jobs wait for a \
                 worker that has one (logged once per kind)");
        } else {
            tracing::debug!(job = %ctx.id, kind = %ctx.kind, "no handler for this job kind");
        }
    }
}

/// What becomes of a job of a kind this worker has no handler for: it
/// waits, or dead once it was queued [`UNKNOWN_KIND_GIVE_UP`] ago.
fn unknown_kind(ctx: &JobContext, now: OffsetDateTime) -> JobError {
    let why = format!(
        "no handler is registered for job kind {:?} on worker {}",
        ctx.kind, ctx.worker
    );
    if now - ctx.created_at >= UNKNOWN_KIND_GIVE_UP {
        return JobError::Permanent(format!(
            "{why}; it was queued at {}, more than a day ago, and no worker has run it",
            ctx.created_at
        ));
    }
    JobError::Wait {
        reason: format!(
            "{why}: left for a worker that has one (a newer release's, during an upgrade)"
        ),
        retry_in: UNKNOWN_KIND_RETRY,
    }
}
