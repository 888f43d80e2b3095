//! `/api/settings`: the tenant's settings.

use axum::Json;
use mpanel_services::tenants::rotate_webhook_secret_as;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use crate::Problem;
use crate::caller::{Ctx, perm};
use crate::query::ApiQuery;

#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedSecret {
    /// The new secret: shown this once.
    pub webhook_secret: String,
    /// Until when the previous secret still verifies.
    #[serde(with = "time::serde::rfc3339")]
    pub previous_valid_until: OffsetDateTime,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RotateQuery {
    /// `true` when the secret leaked: the previous one stops verifying now
    /// instead of after 24 hours.
    #[serde(default)]
    revoke_previous: bool,
}

/// A new webhook secret for the marketing site; the previous one keeps
/// working for 24 hours, or stops at once with `revoke_previous=true`.
/// Needs the password entered within the last 5 minutes.
#[utoipa::path(post, path = "/api/settings/webhook-secret/rotate", tag = "settings",
    params(RotateQuery),
    security(("bearer" = ["SETTINGS_WRITE"])),
    responses((status = 200, description = "The new secret, shown once", body = RotatedSecret),
        (status = 403, description = "Without the permission, or not re-authenticated (`reauthentication_required`)")))]
pub async fn rotate_secret(
    cx: Ctx<perm::SettingsWrite>,
    ApiQuery(q): ApiQuery<RotateQuery>,
) -> Result<Json<RotatedSecret>, Problem> {
    let (secret, until) = rotate_webhook_secret_as(&cx, q.revoke_previous).await?;
    Ok(Json(RotatedSecret {
        webhook_secret: secret,
        previous_valid_until: until,
    }))
}
