//! Enqueueing a typed job inside the caller's transaction.

use mpanel_domain::JobId;
use mpanel_domain::jobs::JobPayload;
use mpanel_store::jobs::NewJob;
use mpanel_store::{StoreError, Tx};
use serde::Serialize;
use time::OffsetDateTime;

/// How a job is queued.
#[derive(Debug, Clone)]
pub struct JobOptions {
    pub queue: String,
    /// Higher runs first.
    pub priority: i32,
    /// Not before this time; `None`: now.
    pub run_at: Option<OffsetDateTime>,
    pub max_attempts: i32,
    /// While a job with this key is pending, failed or running, enqueueing
    /// another returns it instead.
    pub unique_key: Option<String>,
}

impl Default for JobOptions {
    fn default() -> Self {
        Self {
            queue: "default".into(),
            priority: 0,
            run_at: None,
            max_attempts: 5,
            unique_key: None,
        }
    }
}

/// Enqueues `payload` as a job of the kind its type is tied to, in `tx`.
/// Returns the job's id and whether it is new.
pub async fn enqueue_job<P: JobPayload>(
    tx: &mut Tx,
    payload: &P,
    options: &JobOptions,
    now: OffsetDateTime,
) -> Result<(JobId, bool), StoreError> {
    enqueue(tx, P::KIND, payload, options, now).await
}

/// Enqueues many jobs of `P`'s kind in `tx`, many rows per statement: for
/// jobs whose unique keys (if any) are new, as those of new rows are. A
/// job whose key is live is not added.
pub async fn enqueue_jobs<P: JobPayload>(
    tx: &mut Tx,
    jobs: &[(P, JobOptions)],
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let new_jobs = jobs
        .iter()
        .map(|(payload, options)| new_job(P::KIND, payload, options, now))
        .collect::<Result<Vec<_>, _>>()?;
    let added = tx.enqueue_new(&new_jobs, now).await?;
    metrics::counter!("jobs_enqueued_total", "kind" => P::KIND.to_owned()).increment(added);
    Ok(())
}

fn new_job<P: Serialize>(
    kind: &str,
    payload: &P,
    options: &JobOptions,
    now: OffsetDateTime,
) -> Result<NewJob, StoreError> {
    let payload = serde_json::to_value(payload).map_err(|e| {
        StoreError::InvalidConfig(format!("job payload for {kind} cannot be encoded: {e}"))
    })?;
    Ok(NewJob {
        queue: options.queue.clone(),
        kind: kind.to_owned(),
        payload,
        priority: options.priority,
        run_at: options.run_at.unwrap_or(now),
        max_attempts: options.max_attempts.max(1),
        unique_key: options.unique_key.clone(),
    })
}

/// Enqueues `payload` as a job of `kind` in `tx`. Returns the job's id and
/// whether it is new.
pub async fn enqueue<P: Serialize>(
    tx: &mut Tx,
    kind: &str,
    payload: &P,
    options: &JobOptions,
    now: OffsetDateTime,
) -> Result<(JobId, bool), StoreError> {
    let job = new_job(kind, payload, options, now)?;
    let out = tx.enqueue(&job, now).await?;
    if out.1 {
        metrics::counter!("jobs_enqueued_total", "kind" => kind.to_owned()).increment(1);
    }
    Ok(out)
}
