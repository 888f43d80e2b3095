//! `/api/ops`: the job queue, for platform operators.

use axum::Json;
use axum::extract::Path;
use mpanel_domain::JobId;
use mpanel_domain::jobs::JobState;
use mpanel_services::jobs;
use mpanel_store::jobs::{JobFilter, JobRecord, QueueStat};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use crate::Problem;
use crate::caller::{Ctx, perm};
use crate::query::{self, Listing, Page, PageParams};

#[derive(Debug, Serialize, ToSchema)]
pub struct JobView {
    pub id: String,
    pub queue: String,
    pub kind: String,
    pub payload: Value,
    /// PENDING, RUNNING, COMPLETED, FAILED (awaiting retry), DEAD, CANCELLED.
    #[schema(value_type = String, example = "DEAD")]
    pub state: JobState,
    pub priority: i32,
    #[serde(with = "time::serde::rfc3339")]
    pub run_at: OffsetDateTime,
    pub attempts: i32,
    pub max_attempts: i32,
    pub unique_key: Option<String>,
    /// The worker holding it, while running.
    pub locked_by: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub locked_until: Option<OffsetDateTime>,
    pub last_error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub started_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
}

impl From<JobRecord> for JobView {
    fn from(j: JobRecord) -> Self {
        Self {
            id: j.id.to_string(),
            queue: j.queue,
            kind: j.kind,
            payload: mpanel_domain::jobs::redacted_payload(&j.payload),
            state: j.state,
            priority: j.priority,
            run_at: j.run_at,
            attempts: j.attempts,
            max_attempts: j.max_attempts,
            unique_key: j.unique_key,
            locked_by: j.locked_by,
            locked_until: j.locked_until,
            last_error: j.last_error,
            created_at: j.created_at,
            started_at: j.started_at,
            finished_at: j.finished_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QueueView {
    pub queue: String,
    pub kind: String,
    #[schema(value_type = String)]
    pub state: JobState,
    pub count: i64,
    /// Seconds the oldest due, unclaimed job has waited.
    pub oldest_pending_age_secs: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Queues {
    pub items: Vec<QueueView>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobsQuery {
    /// PENDING, RUNNING, COMPLETED, FAILED, DEAD or CANCELLED.
    #[param(pattern = "^(PENDING|RUNNING|COMPLETED|FAILED|DEAD|CANCELLED)$", value_type = Option<String>)]
    #[serde(default, deserialize_with = "query::from_str_opt")]
    pub state: Option<JobState>,
    pub kind: Option<String>,
    pub queue: Option<String>,
}

/// Jobs, newest first.
#[utoipa::path(get, path = "/api/ops/jobs", tag = "ops", params(PageParams, JobsQuery),
    security(("bearer" = ["JOBS_READ"])),
    responses((status = 200, description = "A page of jobs", body = Page<JobView>)))]
pub async fn list(
    cx: Ctx<perm::JobsRead>,
    list: Listing<JobsQuery>,
) -> Result<Json<Page<JobView>>, Problem> {
    let Listing { paging, filter: q } = list;
    let filter = JobFilter {
        state: q.state,
        kind: q.kind,
        queue: q.queue,
    };
    let before = paging.after::<JobId>()?;
    let fetched = jobs::list(&cx, &filter, before, paging.fetch()).await?;
    Ok(Json(paging.page(
        fetched,
        |j| j.id.to_string(),
        JobView::from,
    )))
}

/// One job, with its last error.
#[utoipa::path(get, path = "/api/ops/jobs/{id}", tag = "ops",
    params(("id" = String, Path, description = "Job id")),
    security(("bearer" = ["JOBS_READ"])),
    responses(
        (status = 200, description = "The job", body = JobView),
        (status = 404, description = "No such job"),
    ))]
pub async fn get(
    cx: Ctx<perm::JobsRead>,
    Path(id): Path<String>,
) -> Result<Json<JobView>, Problem> {
    let id = query::path_id::<JobId>(&id, "job")?;
    Ok(Json(jobs::get(&cx, id).await?.into()))
}

/// Put a FAILED, DEAD or CANCELLED job back in the queue, with fresh attempts.
#[utoipa::path(post, path = "/api/ops/jobs/{id}/retry", tag = "ops",
    params(("id" = String, Path, description = "Job id")),
    security(("bearer" = ["JOBS_MANAGE"])),
    responses(
        (status = 200, description = "Queued again", body = JobView),
        (status = 404, description = "No such job"),
        (status = 409, description = "Not in a state that can be retried"),
    ))]
pub async fn retry(
    cx: Ctx<perm::JobsManage>,
    Path(id): Path<String>,
) -> Result<Json<JobView>, Problem> {
    let id = query::path_id::<JobId>(&id, "job")?;
    let job = jobs::retry(&cx, id).await?;
    Ok(Json(job.into()))
}

/// Cancel a PENDING or FAILED job.
#[utoipa::path(post, path = "/api/ops/jobs/{id}/cancel", tag = "ops",
    params(("id" = String, Path, description = "Job id")),
    security(("bearer" = ["JOBS_MANAGE"])),
    responses(
        (status = 200, description = "Cancelled", body = JobView),
        (status = 404, description = "No such job"),
        (status = 409, description = "Already running or finished"),
    ))]
pub async fn cancel(
    cx: Ctx<perm::JobsManage>,
    Path(id): Path<String>,
) -> Result<Json<JobView>, Problem> {
    let id = query::path_id::<JobId>(&id, "job")?;
    let job = jobs::cancel(&cx, id).await?;
    Ok(Json(job.into()))
}

/// Counts by queue, kind and state, and how long the oldest due job has waited.
#[utoipa::path(get, path = "/api/ops/queues", tag = "ops",
    security(("bearer" = ["JOBS_READ"])),
    responses((status = 200, description = "Queue counts", body = Queues)))]
pub async fn queues(cx: Ctx<perm::JobsRead>) -> Result<Json<Queues>, Problem> {
    let now = cx.now();
    let items = jobs::queues(&cx)
        .await?
        .into_iter()
        .map(|s: QueueStat| QueueView {
            queue: s.queue,
            kind: s.kind,
            state: s.state,
            count: s.count,
            oldest_pending_age_secs: s.oldest_due.map(|t| (now - t).whole_seconds().max(0)),
        })
        .collect();
    Ok(Json(Queues { items }))
}
