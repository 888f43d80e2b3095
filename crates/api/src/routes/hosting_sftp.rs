//! `PUT /api/hosting/accounts/{id}/sftp` (staff) and
//! `PUT /api/me/hosting/accounts/{id}/sftp` (the account's customer): a
//! new SFTP password and/or public keys for a hosting account, queued as a
//! job (the password is hashed before it is queued).

use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use mpanel_services::hosting_sftp::{self, SftpAccess};
use serde::Deserialize;
use utoipa::ToSchema;

use super::hosting::Queued;
use crate::caller::{Ctx, perm};
use crate::json::ApiJson;
use crate::{Problem, query};

/// At least one of the two; `keys: []` removes every key.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SftpBody {
    /// 10 to 200 characters; stored on the node as a SHA-512-crypt hash.
    #[serde(default)]
    password: Option<String>,
    /// OpenSSH public key lines (`ssh-ed25519 AAAA… comment`), at most 20.
    #[serde(default)]
    keys: Option<Vec<String>>,
}

impl From<SftpBody> for SftpAccess {
    fn from(b: SftpBody) -> Self {
        SftpAccess {
            password: b.password,
            keys: b.keys,
        }
    }
}

fn queued(job: mpanel_domain::JobId) -> (StatusCode, Json<Queued>) {
    (
        StatusCode::ACCEPTED,
        Json(Queued {
            job_id: job.to_string(),
        }),
    )
}

/// A hosting account's SFTP password and/or keys (staff).
#[utoipa::path(put, path = "/api/hosting/accounts/{id}/sftp", tag = "hosting",
    params(("id" = String, Path)), request_body = SftpBody,
    security(("bearer" = ["HOSTING_WRITE"])),
    responses((status = 202, description = "Queued", body = Queued),
        (status = 404, description = "No such hosting account"),
        (status = 409, description = "The account is terminated, or an SFTP change is running"),
        (status = 422, description = "Bad password or key")))]
pub async fn staff_sftp(
    cx: Ctx<perm::HostingWrite>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SftpBody>,
) -> Result<(StatusCode, Json<Queued>), Problem> {
    let id = query::path_id(&id, "hosting account")?;
    Ok(queued(
        hosting_sftp::set_sftp_access(&cx, id, body.into()).await?,
    ))
}

/// The signed-in customer's own hosting account's SFTP password and/or
/// keys (a credential of their own, like their password: `SELF_SECURITY`).
/// Another customer's account is 404.
#[utoipa::path(put, path = "/api/me/hosting/accounts/{id}/sftp", tag = "hosting",
    params(("id" = String, Path)), request_body = SftpBody,
    security(("bearer" = ["SELF_SECURITY"])),
    responses((status = 202, description = "Queued", body = Queued),
        (status = 404, description = "No such hosting account of yours"),
        (status = 409, description = "The account is terminated, or an SFTP change is running"),
        (status = 422, description = "Bad password or key")))]
pub async fn my_sftp(
    cx: Ctx<perm::SelfSecurity>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SftpBody>,
) -> Result<(StatusCode, Json<Queued>), Problem> {
    let id = query::path_id(&id, "hosting account")?;
    Ok(queued(
        hosting_sftp::set_own_sftp_access(&cx, id, body.into()).await?,
    ))
}
