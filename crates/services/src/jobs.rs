//! Operating the job queue: look, retry, cancel. Platform-wide: jobs are
//! not a tenant's resource, so only `SUPER_ADMIN` reaches these.

use mpanel_domain::JobId;
use mpanel_domain::jobs::JobState;
use mpanel_store::jobs::{JobFilter, JobRecord, QueueStat};
use serde_json::json;

use crate::actor::Change;
use crate::{Context, ServiceError};

pub async fn list(
    cx: &Context,
    filter: &JobFilter,
    before: Option<JobId>,
    limit: u32,
) -> Result<Vec<JobRecord>, ServiceError> {
    let store = &cx.store;
    Ok(store.list_jobs(filter, before, limit).await?)
}

pub async fn get(cx: &Context, id: JobId) -> Result<JobRecord, ServiceError> {
    let store = &cx.store;
    store
        .job(id)
        .await?
        .ok_or_else(ServiceError::missing("job"))
}

pub async fn queues(cx: &Context) -> Result<Vec<QueueStat>, ServiceError> {
    let store = &cx.store;
    Ok(store.queue_stats(cx.now()).await?)
}

/// Puts a failed, dead or cancelled job back in the queue with fresh attempts.
pub async fn retry(cx: &Context, id: JobId) -> Result<JobRecord, ServiceError> {
    change(cx, id, Move::Retry).await
}

/// Cancels a job that has not started (or waits for a retry).
pub async fn cancel(cx: &Context, id: JobId) -> Result<JobRecord, ServiceError> {
    change(cx, id, Move::Cancel).await
}

/// The moves an operator makes on a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Move {
    Retry,
    Cancel,
}

impl Move {
    fn action(self) -> &'static str {
        match self {
            Self::Retry => "job.retry",
            Self::Cancel => "job.cancel",
        }
    }

    fn allowed(self, state: JobState) -> bool {
        match self {
            Self::Retry => state.can_retry(),
            Self::Cancel => state.can_cancel(),
        }
    }

    /// The states `allowed` accepts, as the refusal names them.
    fn allowed_from(self) -> &'static str {
        match self {
            Self::Retry => "FAILED, DEAD or CANCELLED",
            Self::Cancel => "PENDING or FAILED",
        }
    }

    fn done(self) -> &'static str {
        match self {
            Self::Retry => "retried",
            Self::Cancel => "cancelled",
        }
    }
}

async fn change(cx: &Context, id: JobId, how: Move) -> Result<JobRecord, ServiceError> {
    let store = &cx.store;
    let who = &cx.principal;
    let actor = &cx.actor;
    let now = cx.now();
    let mut tx = store.begin().await?;
    let before = tx.job(id).await?.ok_or_else(ServiceError::missing("job"))?;
    if !how.allowed(before.state) {
        return Err(ServiceError::Conflict(format!(
            "a {} job cannot be {}; only a job that is {} can",
            before.state.as_str().to_ascii_uppercase(),
            how.done(),
            how.allowed_from(),
        )));
    }
    let moved = match how {
        Move::Retry => tx.requeue_job(id, now).await?,
        Move::Cancel => tx.cancel_job(id, now).await?,
    };
    if !moved {
        return Err(ServiceError::Conflict(
            "the job changed state meanwhile; look at it again".into(),
        ));
    }
    let after = tx.job(id).await?.ok_or_else(ServiceError::missing("job"))?;
    tx.record_audit(&actor.audit(Change {
        tenant: who.tenant_id,
        action: how.action(),
        target_type: "job",
        target_id: id.to_string(),
        before: Some(json!({"state": before.state, "attempts": before.attempts, "last_error": before.last_error})),
        after: Some(json!({"state": after.state, "attempts": after.attempts})),
        at: now,
    }))
    .await?;
    tx.commit().await?;
    Ok(after)
}
