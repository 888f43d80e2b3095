//! `/api/security/me`: one's sign-in security at a glance.

use axum::Json;
use mpanel_services::security::{self, Profile};

use crate::Problem;
use crate::caller::{Ctx, perm};

/// Your sign-in security at a glance.
#[utoipa::path(get, path = "/api/security/me/profile", tag = "security",
    security(("bearer" = ["SELF_READ"])),
    responses((status = 200, description = "Your profile", body = Profile)))]
pub async fn profile(cx: Ctx<perm::SelfRead>) -> Result<Json<Profile>, Problem> {
    Ok(Json(security::profile(&cx).await?))
}
