//! `/api/hosting/accounts/{id}/backups` and `/api/mail/accounts/{id}/backups`:
//! a site's or mailbox's backups (restic snapshots on the tenant's backup
//! server), a backup now, and restores. Staff see the tenant's accounts, a
//! customer their own; another tenant's account is 404.

use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use mpanel_domain::ResourceId;
use mpanel_domain::backups::TargetKind;
use mpanel_services::backups::api::{self, BackupsView, RestoreRequest, RunView};
use serde::Serialize;
use utoipa::ToSchema;

use crate::Problem;
use crate::caller::{Ctx, perm};
use crate::json::ApiJson;

/// A backup was queued.
#[derive(Debug, Serialize, ToSchema)]
pub struct BackupQueued {
    pub job_id: String,
}

/// A restore was queued: its run (`RUNNING` until the job ends) and job.
#[derive(Debug, Serialize, ToSchema)]
pub struct RestoreQueued {
    pub run: RunView,
    pub job_id: String,
}

fn id_of(raw: &str, kind: TargetKind) -> Result<ResourceId, Problem> {
    crate::query::path_id(
        raw,
        match kind {
            TargetKind::Site => "hosting account",
            TargetKind::Mailbox => "mailbox",
        },
    )
}

async fn list(
    cx: &mpanel_services::Context,
    kind: TargetKind,
    id: &str,
) -> Result<Json<BackupsView>, Problem> {
    Ok(Json(api::list(cx, kind, id_of(id, kind)?).await?))
}

async fn request(
    cx: &mpanel_services::Context,
    kind: TargetKind,
    id: &str,
) -> Result<(StatusCode, Json<BackupQueued>), Problem> {
    let job = api::request(cx, kind, id_of(id, kind)?).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(BackupQueued {
            job_id: job.to_string(),
        }),
    ))
}

async fn restore(
    cx: &mpanel_services::Context,
    kind: TargetKind,
    (id, snapshot): (String, String),
    body: RestoreRequest,
) -> Result<(StatusCode, Json<RestoreQueued>), Problem> {
    let (run, job) = api::restore(cx, kind, id_of(&id, kind)?, &snapshot, &body).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(RestoreQueued {
            run,
            job_id: job.to_string(),
        }),
    ))
}

/// The site's backup policy and state, its snapshots and its last runs.
#[utoipa::path(get, path = "/api/hosting/accounts/{id}/backups", tag = "backups",
    params(("id" = String, Path)), security(("bearer" = ["BACKUPS_READ"])),
    responses((status = 200, description = "The site's backups", body = BackupsView),
        (status = 404, description = "No such hosting account (of yours)")))]
pub async fn site_backups(
    cx: Ctx<perm::BackupsRead>,
    Path(id): Path<String>,
) -> Result<Json<BackupsView>, Problem> {
    list(&cx, TargetKind::Site, &id).await
}

/// A backup of the site now (one already waiting is answered).
#[utoipa::path(post, path = "/api/hosting/accounts/{id}/backups", tag = "backups",
    params(("id" = String, Path)), security(("bearer" = ["BACKUPS_WRITE"])),
    responses((status = 202, description = "Queued", body = BackupQueued),
        (status = 404, description = "No such hosting account (of yours)"),
        (status = 409, description = "The site is not backed up yet, or no longer live")))]
pub async fn site_backup(
    cx: Ctx<perm::BackupsWrite>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<BackupQueued>), Problem> {
    request(&cx, TargetKind::Site, &id).await
}

/// Restore the whole site or one path (`/web/…`, as seen over SFTP) from a
/// snapshot, in place or beside (`/web/restored-<snapshot>/`).
#[utoipa::path(post, path = "/api/hosting/accounts/{id}/backups/{snapshot}/restore", tag = "backups",
    params(("id" = String, Path), ("snapshot" = String, Path)), request_body = RestoreRequest,
    security(("bearer" = ["BACKUPS_WRITE"])),
    responses((status = 202, description = "Queued", body = RestoreQueued),
        (status = 404, description = "No such hosting account (of yours), or no such snapshot of it"),
        (status = 409, description = "The site is not backed up yet, or no longer live"),
        (status = 422, description = "A path outside the site")))]
pub async fn site_restore(
    cx: Ctx<perm::BackupsWrite>,
    Path(ids): Path<(String, String)>,
    ApiJson(body): ApiJson<RestoreRequest>,
) -> Result<(StatusCode, Json<RestoreQueued>), Problem> {
    restore(&cx, TargetKind::Site, ids, body).await
}

/// The mailbox's backup policy and state, its snapshots and its last runs.
#[utoipa::path(get, path = "/api/mail/accounts/{id}/backups", tag = "backups",
    params(("id" = String, Path)), security(("bearer" = ["BACKUPS_READ"])),
    responses((status = 200, description = "The mailbox's backups", body = BackupsView),
        (status = 404, description = "No such mailbox (of yours)")))]
pub async fn mailbox_backups(
    cx: Ctx<perm::BackupsRead>,
    Path(id): Path<String>,
) -> Result<Json<BackupsView>, Problem> {
    list(&cx, TargetKind::Mailbox, &id).await
}

/// A backup of the mailbox now (one already waiting is answered).
#[utoipa::path(post, path = "/api/mail/accounts/{id}/backups", tag = "backups",
    params(("id" = String, Path)), security(("bearer" = ["BACKUPS_WRITE"])),
    responses((status = 202, description = "Queued", body = BackupQueued),
        (status = 404, description = "No such mailbox (of yours)"),
        (status = 409, description = "The mailbox is not backed up yet, or no longer live")))]
pub async fn mailbox_backup(
    cx: Ctx<perm::BackupsWrite>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<BackupQueued>), Problem> {
    request(&cx, TargetKind::Mailbox, &id).await
}

/// Restore the mailbox (`/Maildir`) or one folder of it from a snapshot,
/// in place or beside (the IMAP folder `Restored-<snapshot>`).
#[utoipa::path(post, path = "/api/mail/accounts/{id}/backups/{snapshot}/restore", tag = "backups",
    params(("id" = String, Path), ("snapshot" = String, Path)), request_body = RestoreRequest,
    security(("bearer" = ["BACKUPS_WRITE"])),
    responses((status = 202, description = "Queued", body = RestoreQueued),
        (status = 404, description = "No such mailbox (of yours), or no such snapshot of it"),
        (status = 409, description = "The mailbox is not backed up yet, or no longer live"),
        (status = 422, description = "A path outside the mailbox")))]
pub async fn mailbox_restore(
    cx: Ctx<perm::BackupsWrite>,
    Path(ids): Path<(String, String)>,
    ApiJson(body): ApiJson<RestoreRequest>,
) -> Result<(StatusCode, Json<RestoreQueued>), Problem> {
    restore(&cx, TargetKind::Mailbox, ids, body).await
}
