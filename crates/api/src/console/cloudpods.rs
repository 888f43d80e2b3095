//! CloudPods: staff see the tenant's, a customer their own (the service
//! filters); one pod's state, address and plan, with reboot, suspend and
//! resume, and its backups (one now, a restore asked first).

use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Redirect, Response};
use mpanel_domain::CloudPodId;
use mpanel_domain::cloudpods::PodAction;
use mpanel_domain::identity::Permission;
use mpanel_services::cloudpods::{self, PodDetail, PodView, actions, backups};
use serde::Serialize;

use super::listing::Listed;
use super::session::Viewer;
use super::view::{PageError, page};
use super::{Done, Notice, confirm};
use crate::routes::cloudpods::PodListFilter;

#[derive(Serialize)]
struct PodsPage {
    pods: Vec<PodView>,
    next_href: Option<String>,
    status: String,
}

/// `GET /cloudpods`.
pub async fn list(viewer: Viewer, listed: Listed<PodListFilter>) -> Result<Response, PageError> {
    viewer.require(Permission::CloudPodsRead)?;
    let Listed { listing, links } = listed;
    let status = links.value("status");
    let paging = listing.paging;
    let q = listing.filter;
    let fetched = cloudpods::list(
        &viewer,
        q.status,
        q.customer_id,
        paging.after::<CloudPodId>()?,
        paging.fetch(),
    )
    .await?;
    let found = paging.page(fetched, |p| p.id.to_string(), cloudpods::view);
    let data = PodsPage {
        next_href: links.next_href(found.next_cursor.as_deref()),
        pods: found.items,
        status,
    };
    page(&viewer, "/cloudpods", "CloudPods", "cloudpods.html", data)
}

fn pod_id(raw: &str) -> Result<CloudPodId, PageError> {
    raw.parse().map_err(|_| PageError::not_found())
}

#[derive(Serialize)]
struct PodPage {
    pod: PodDetail,
    may_operate: bool,
    notice: Option<Notice>,
}

/// `GET /cloudpods/{id}`.
pub async fn show(
    viewer: Viewer,
    Path(raw): Path<String>,
    Query(done): Query<Done>,
) -> Result<Response, PageError> {
    viewer.require(Permission::CloudPodsRead)?;
    let pod = cloudpods::get(&viewer, pod_id(&raw)?).await?;
    let title = pod.pod.name.clone();
    let data = PodPage {
        may_operate: viewer.may(Permission::CloudPodsOperate),
        notice: done.notice(),
        pod,
    };
    page(&viewer, "/cloudpods", &title, "cloudpod.html", data)
}

fn action_of(raw: &str) -> Result<(PodAction, &'static str, &'static str), PageError> {
    match raw {
        "reboot" => Ok((
            PodAction::Reboot,
            "Reboot",
            "The server restarts; whatever runs on it stops for a moment.",
        )),
        "suspend" => Ok((
            PodAction::Suspend,
            "Suspend",
            "The server is stopped until it is resumed.",
        )),
        "resume" => Ok((PodAction::Resume, "Resume", "The server starts again.")),
        _ => Err(PageError::not_found()),
    }
}

/// `GET /cloudpods/{id}/{action}`: asks first.
pub async fn action_confirm(
    viewer: Viewer,
    Path((raw, action)): Path<(String, String)>,
) -> Result<Response, PageError> {
    viewer.require(Permission::CloudPodsOperate)?;
    let (_, verb, detail) = action_of(&action)?;
    let pod = cloudpods::get(&viewer, pod_id(&raw)?).await?.pod;
    confirm(
        &viewer,
        "/cloudpods",
        super::confirm::Question {
            title: format!("{verb} {}?", pod.name),
            detail: detail.to_owned(),
            action: format!("/cloudpods/{}/{action}", pod.id),
            button: verb.to_owned(),
            back: format!("/cloudpods/{}", pod.id),
        },
    )
}

/// `POST /cloudpods/{id}/{action}`.
pub async fn action(
    viewer: Viewer,
    Path((raw, action)): Path<(String, String)>,
) -> Result<Response, PageError> {
    viewer.require(Permission::CloudPodsOperate)?;
    let (what, _, _) = action_of(&action)?;
    let (pod, _) = actions::request(&viewer, pod_id(&raw)?, what).await?;
    Ok(Redirect::to(&format!("/cloudpods/{}?done=pod_{action}", pod.id)).into_response())
}

/// `POST /cloudpods/{id}/backups`: a backup now.
pub async fn backup(viewer: Viewer, Path(raw): Path<String>) -> Result<Response, PageError> {
    viewer.require(Permission::CloudPodsOperate)?;
    let id = pod_id(&raw)?;
    backups::request(&viewer, id).await?;
    Ok(Redirect::to(&format!("/cloudpods/{id}?done=pod_backup")).into_response())
}

/// `GET /cloudpods/{id}/backups/{backup}/restore`: asks first.
pub async fn restore_confirm(
    viewer: Viewer,
    Path((raw, backup)): Path<(String, String)>,
) -> Result<Response, PageError> {
    viewer.require(Permission::CloudPodsOperate)?;
    let detail = cloudpods::get(&viewer, pod_id(&raw)?).await?;
    // A finished backup of this pod (the id goes into the form's address).
    let backup: mpanel_domain::PodBackupId = backup.parse().map_err(|_| PageError::not_found())?;
    if !detail
        .backups
        .iter()
        .any(|b| b.id == backup && b.status.as_str() == "DONE")
    {
        return Err(PageError::not_found());
    }
    let pod = detail.pod;
    confirm(
        &viewer,
        "/cloudpods",
        super::confirm::Question {
            title: format!("Restore {}?", pod.name),
            detail: "The server is stopped and its disk replaced by the backup's; what changed since is lost.".into(),
            action: format!("/cloudpods/{}/backups/{backup}/restore", pod.id),
            button: "Restore".into(),
            back: format!("/cloudpods/{}", pod.id),
        },
    )
}

/// `POST /cloudpods/{id}/backups/{backup}/restore`.
pub async fn restore(
    viewer: Viewer,
    Path((raw, backup)): Path<(String, String)>,
) -> Result<Response, PageError> {
    viewer.require(Permission::CloudPodsOperate)?;
    let id = pod_id(&raw)?;
    let backup_id = backup.parse().map_err(|_| PageError::not_found())?;
    backups::restore(&viewer, id, backup_id).await?;
    Ok(Redirect::to(&format!("/cloudpods/{id}?done=pod_restore")).into_response())
}
