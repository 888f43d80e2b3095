//! A site's backups: its policy and state, its snapshots and last runs,
//! a backup now and a restore (the whole site or a path, in place or
//! beside), followed on the page until the runs end. The services'
//! rules: staff for the tenant's sites, a customer for their own.

use axum::Form;
use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Redirect, Response};
use mpanel_domain::ResourceId;
use mpanel_domain::backups::TargetKind;
use mpanel_domain::identity::Permission;
use mpanel_services::backups::api::{self, BackupsView, RestoreRequest, RestoreTo};
use serde::{Deserialize, Serialize};

use super::session::Viewer;
use super::view::{PageError, page};
use super::{Done, Notice};

fn site(raw: &str) -> Result<ResourceId, PageError> {
    raw.parse().map_err(|_| PageError::not_found())
}

#[derive(Serialize)]
struct BackupsPage {
    id: String,
    /// The polling address's query.
    follow: String,
    backups: BackupsView,
    may_write: bool,
    /// A run is under way: the page follows it.
    working: bool,
    notice: Option<Notice>,
}

/// `GET /hosting/{id}/backups`.
pub async fn show(
    viewer: Viewer,
    Path(raw): Path<String>,
    Query(done): Query<Done>,
    Query(follow): Query<Follow>,
) -> Result<Response, PageError> {
    viewer.require(Permission::BackupsRead)?;
    let id = site(&raw)?;
    let backups = api::list(&viewer, TargetKind::Site, id).await?;
    let running = backups.runs.iter().any(|r| r.status.as_str() == "RUNNING");
    // A backup asked for has no run until a worker starts it.
    let awaited = follow.since.is_some_and(|since| {
        !backups
            .runs
            .iter()
            .any(|r| r.started_at.unix_timestamp() >= since)
    });
    let working = (running || awaited) && follow.n < super::lists::MAX_POLLS;
    let data = BackupsPage {
        follow: match follow.since {
            Some(since) => format!("since={since}&n={}", follow.n + 1),
            None => format!("n={}", follow.n + 1),
        },
        id: id.to_string(),
        may_write: viewer.may(Permission::BackupsWrite),
        working,
        notice: done.notice(),
        backups,
    };
    page(&viewer, "/hosting", "Backups", "backups.html", data)
}

#[derive(Deserialize, Default)]
pub struct Follow {
    /// A backup asked for at this time (Unix seconds) is awaited.
    since: Option<i64>,
    #[serde(default)]
    n: u32,
}

/// `POST /hosting/{id}/backups`: a backup now, followed on the page.
pub async fn backup(viewer: Viewer, Path(raw): Path<String>) -> Result<Response, PageError> {
    viewer.require(Permission::BackupsWrite)?;
    let id = site(&raw)?;
    let since = viewer.now().unix_timestamp();
    api::request(&viewer, TargetKind::Site, id).await?;
    Ok(Redirect::to(&format!(
        "/hosting/{id}/backups?done=backup_queued&since={since}"
    ))
    .into_response())
}

#[derive(Serialize)]
struct RestorePage {
    id: String,
    snapshot: String,
}

/// `GET /hosting/{id}/backups/{snapshot}/restore`: what and where, asked
/// first.
pub async fn restore_form(
    viewer: Viewer,
    Path((raw, snapshot)): Path<(String, String)>,
) -> Result<Response, PageError> {
    viewer.require(Permission::BackupsWrite)?;
    let id = site(&raw)?;
    // A snapshot of this site (the id goes into the form's address).
    let backups = api::list(&viewer, TargetKind::Site, id).await?;
    if !backups.snapshots.iter().any(|s| s.id == snapshot) {
        return Err(PageError::not_found());
    }
    let data = RestorePage {
        id: id.to_string(),
        snapshot,
    };
    page(&viewer, "/hosting", "Restore", "restore.html", data)
}

#[derive(Deserialize)]
pub struct RestoreForm {
    #[serde(default)]
    path: String,
    to: String,
}

/// `POST /hosting/{id}/backups/{snapshot}/restore`.
pub async fn restore(
    viewer: Viewer,
    Path((raw, snapshot)): Path<(String, String)>,
    Form(f): Form<RestoreForm>,
) -> Result<Response, PageError> {
    viewer.require(Permission::BackupsWrite)?;
    let id = site(&raw)?;
    let req = RestoreRequest {
        path: Some(f.path.trim().to_owned()).filter(|p| !p.is_empty()),
        to: if f.to == "BESIDE" {
            RestoreTo::Beside
        } else {
            RestoreTo::InPlace
        },
    };
    api::restore(&viewer, TargetKind::Site, id, &snapshot, &req).await?;
    Ok(Redirect::to(&format!("/hosting/{id}/backups?done=restore_queued")).into_response())
}
