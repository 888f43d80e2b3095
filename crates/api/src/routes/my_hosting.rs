//! `GET /api/me/hosting/accounts` and `GET /api/me/hosting/accounts/{id}`:
//! the signed-in customer's own hosting accounts with their measured disk
//! use against the plan's quota. Another customer's account is 404.

use axum::Json;
use axum::extract::Path;
use mpanel_domain::ResourceId;
use mpanel_services::hosting::{self, HostingAccountView};

use super::hosting::HostingAccounts;
use crate::Problem;
use crate::caller::{Ctx, perm};
use crate::query;

/// The signed-in customer's hosting accounts, with each one's disk use.
#[utoipa::path(get, path = "/api/me/hosting/accounts", tag = "hosting",
    security(("bearer" = ["SELF_READ"])),
    responses((status = 200, description = "Your hosting accounts", body = HostingAccounts)))]
pub async fn my_list(cx: Ctx<perm::SelfRead>) -> Result<Json<HostingAccounts>, Problem> {
    let items = hosting::mine(&cx).await?;
    Ok(Json(HostingAccounts { items }))
}

/// One of the signed-in customer's hosting accounts, with its disk use.
#[utoipa::path(get, path = "/api/me/hosting/accounts/{id}", tag = "hosting",
    params(("id" = String, Path)), security(("bearer" = ["SELF_READ"])),
    responses((status = 200, description = "Your hosting account", body = mpanel_services::hosting::HostingAccountView),
        (status = 404, description = "No such hosting account of yours")))]
pub async fn my_get(
    cx: Ctx<perm::SelfRead>,
    Path(id): Path<String>,
) -> Result<Json<HostingAccountView>, Problem> {
    let id: ResourceId = query::path_id(&id, "hosting account")?;
    hosting::mine(&cx)
        .await?
        .into_iter()
        .find(|a| a.account.id == id)
        .map(Json)
        .ok_or_else(|| Problem::not_found("No such hosting account."))
}
