//! `GET /api/ops/platform-overview`: nodes, queues, provisioning,
//! security, billing and backups at a glance.

use axum::Json;
use mpanel_services::ops_overview::{self, Overview};

use crate::Problem;
use crate::caller::{Ctx, perm};

/// The platform (a super admin) or the caller's tenant's share (its
/// admin), read from the database now. A section with nothing to show is
/// empty (rates and percentiles null).
#[utoipa::path(get, path = "/api/ops/platform-overview", tag = "ops",
    security(("bearer" = ["OPS_OVERVIEW_READ"])),
    responses((status = 200, description = "The overview", body = Overview)))]
pub async fn get(cx: Ctx<perm::OpsOverviewRead>) -> Result<Json<Overview>, Problem> {
    Ok(Json(ops_overview::overview(&cx).await?))
}
