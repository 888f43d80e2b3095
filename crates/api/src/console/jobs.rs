//! The job queue, for the platform's operator: jobs by state, kind and
//! queue; one job with its attempts and last error; retry or cancel.

use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Redirect, Response};
use mpanel_domain::JobId;
use mpanel_domain::identity::Permission;
use mpanel_services::jobs;
use mpanel_store::jobs::JobFilter;
use serde::Serialize;

use super::listing::Listed;
use super::session::Viewer;
use super::view::{PageError, page};
use super::{Done, Notice};
use crate::routes::ops::{JobView, JobsQuery};

#[derive(Serialize)]
struct JobsPage {
    jobs: Vec<JobView>,
    next_href: Option<String>,
    state: String,
    kind: String,
    states: [&'static str; 6],
}

/// `GET /jobs`.
pub async fn list(viewer: Viewer, listed: Listed<JobsQuery>) -> Result<Response, PageError> {
    viewer.require(Permission::JobsRead)?;
    let Listed { listing, links } = listed;
    let q = listing.filter;
    let paging = listing.paging;
    let filter = JobFilter {
        state: q.state,
        kind: q.kind,
        queue: q.queue,
    };
    let fetched = jobs::list(&viewer, &filter, paging.after::<JobId>()?, paging.fetch()).await?;
    let found = paging.page(fetched, |j| j.id.to_string(), JobView::from);
    let data = JobsPage {
        next_href: links.next_href(found.next_cursor.as_deref()),
        jobs: found.items,
        state: links.value("state"),
        kind: links.value("kind"),
        states: [
            "PENDING",
            "RUNNING",
            "COMPLETED",
            "FAILED",
            "DEAD",
            "CANCELLED",
        ],
    };
    page(&viewer, "/jobs", "Jobs", "jobs.html", data)
}

#[derive(Serialize)]
struct JobPage {
    job: JobView,
    payload: String,
    may_manage: bool,
    notice: Option<Notice>,
}

fn job_id(raw: &str) -> Result<JobId, PageError> {
    raw.parse().map_err(|_| PageError::not_found())
}

/// `GET /jobs/{id}`.
pub async fn show(
    viewer: Viewer,
    Path(raw): Path<String>,
    Query(done): Query<Done>,
) -> Result<Response, PageError> {
    viewer.require(Permission::JobsRead)?;
    let job = JobView::from(jobs::get(&viewer, job_id(&raw)?).await?);
    let data = JobPage {
        payload: serde_json::to_string_pretty(&job.payload).unwrap_or_default(),
        may_manage: viewer.may(Permission::JobsManage),
        notice: done.notice(),
        job,
    };
    page(&viewer, "/jobs", "Job", "job.html", data)
}

/// `POST /jobs/{id}/retry`.
pub async fn retry(viewer: Viewer, Path(raw): Path<String>) -> Result<Response, PageError> {
    viewer.require(Permission::JobsManage)?;
    let job = jobs::retry(&viewer, job_id(&raw)?).await?;
    Ok(Redirect::to(&format!("/jobs/{}?done=job_retried", job.id)).into_response())
}

/// `POST /jobs/{id}/cancel`.
pub async fn cancel(viewer: Viewer, Path(raw): Path<String>) -> Result<Response, PageError> {
    viewer.require(Permission::JobsManage)?;
    let job = jobs::cancel(&viewer, job_id(&raw)?).await?;
    Ok(Redirect::to(&format!("/jobs/{}?done=job_cancelled", job.id)).into_response())
}

/// `GET /jobs/{id}/cancel`: asks first.
pub async fn cancel_confirm(
    viewer: Viewer,
    Path(raw): Path<String>,
) -> Result<Response, PageError> {
    viewer.require(Permission::JobsManage)?;
    let job = jobs::get(&viewer, job_id(&raw)?).await?;
    super::confirm(
        &viewer,
        "/jobs",
        super::confirm::Question {
            title: format!("Cancel this {} job?", job.kind),
            detail: "It will not run again unless it is retried.".into(),
            action: format!("/jobs/{}/cancel", job.id),
            button: "Cancel the job".into(),
            back: format!("/jobs/{}", job.id),
        },
    )
}
