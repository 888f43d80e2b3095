//! `/api/tenants`: the platform's tenants, for its operator (`SUPER_ADMIN`).

use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use mpanel_domain::TenantId;
use mpanel_services::platform_tenants::{
    self, CreatedTenantView, NewTenantInput, TenantPatch, TenantView,
};

use crate::Problem;
use crate::caller::{Ctx, perm};
use crate::json::ApiJson;
use crate::query::{self, Listing, NoFilter, Page, PageParams};

fn tenant_id(raw: &str) -> Result<TenantId, Problem> {
    query::path_id(raw, "tenant")
}

/// Every tenant, newest first.
#[utoipa::path(get, path = "/api/tenants", tag = "tenants", params(PageParams),
    security(("bearer" = ["TENANTS_READ"])),
    responses((status = 200, description = "A page of tenants", body = Page<TenantView>)))]
pub async fn list(
    cx: Ctx<perm::TenantsRead>,
    list: Listing<NoFilter>,
) -> Result<Json<Page<TenantView>>, Problem> {
    let paging = &list.paging;
    let fetched = platform_tenants::list(&cx, paging.after()?, paging.fetch()).await?;
    Ok(Json(paging.page(fetched, |t| t.id.to_string(), |t| t)))
}

/// A new tenant; the answer holds its order-webhook secret, shown once.
#[utoipa::path(post, path = "/api/tenants", tag = "tenants", request_body = NewTenantInput,
    security(("bearer" = ["TENANTS_WRITE"])),
    responses((status = 201, description = "Created", body = CreatedTenantView),
        (status = 409, description = "The slug is taken"),
        (status = 422, description = "A field is not valid")))]
pub async fn create(
    cx: Ctx<perm::TenantsWrite>,
    ApiJson(body): ApiJson<NewTenantInput>,
) -> Result<(StatusCode, Json<CreatedTenantView>), Problem> {
    let created = platform_tenants::create(&cx, body).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// One tenant.
#[utoipa::path(get, path = "/api/tenants/{id}", tag = "tenants",
    params(("id" = String, Path)), security(("bearer" = ["TENANTS_READ"])),
    responses((status = 200, description = "The tenant", body = TenantView),
        (status = 404, description = "No such tenant")))]
pub async fn get(
    cx: Ctx<perm::TenantsRead>,
    Path(id): Path<String>,
) -> Result<Json<TenantView>, Problem> {
    Ok(Json(platform_tenants::get(&cx, tenant_id(&id)?).await?))
}

/// Change a tenant: name, time zone, currency, profile, or status
/// (`SUSPENDED` stops its sign-ins, public catalog and order webhook).
#[utoipa::path(patch, path = "/api/tenants/{id}", tag = "tenants", request_body = TenantPatch,
    params(("id" = String, Path)), security(("bearer" = ["TENANTS_WRITE"])),
    responses((status = 200, description = "Changed", body = TenantView),
        (status = 404, description = "No such tenant"),
        (status = 409, description = "Suspending the tenant you sign in through"),
        (status = 422, description = "A field is not valid")))]
pub async fn update(
    cx: Ctx<perm::TenantsWrite>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<TenantPatch>,
) -> Result<Json<TenantView>, Problem> {
    let id = tenant_id(&id)?;
    Ok(Json(platform_tenants::update(&cx, id, body).await?))
}
