//! `/api/settings`: the tenant's settings.

use axum::Json;
use axum::extract::State;
use mpanel_services::tenants::rotate_webhook_secret;
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::caller::{Authorized, perm};
use crate::{AppState, Problem};

#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedSecret {
    /// The new secret: shown this once.
    pub webhook_secret: String,
    /// Until when the previous secret still verifies.
    #[serde(with = "time::serde::rfc3339")]
    pub previous_valid_until: OffsetDateTime,
}

/// A new webhook secret for the marketing site; the previous one keeps
/// working for 24 hours.
#[utoipa::path(post, path = "/api/settings/webhook-secret/rotate", tag = "settings",
    security(("bearer" = ["SETTINGS_WRITE"])),
    responses((status = 200, description = "The new secret, shown once", body = RotatedSecret)))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    caller: Authorized<perm::SettingsWrite>,
) -> Result<Json<RotatedSecret>, Problem> {
    let (secret, until) = rotate_webhook_secret(
        &state.store,
        state.clock.as_ref(),
        caller.principal.tenant_id,
        &caller.actor,
    )
    .await?;
    Ok(Json(RotatedSecret {
        webhook_secret: secret,
        previous_valid_until: until,
    }))
}
