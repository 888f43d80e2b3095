//! `/api/security/me`: one's sign-in security at a glance.

use axum::Json;
use axum::extract::State;
use mpanel_services::security::mfa;
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::caller::{Authorized, perm};
use crate::{AppState, Problem};

#[derive(Debug, Serialize, ToSchema)]
pub struct Profile {
    /// TOTP, RECOVERY_CODE, WEBAUTHN.
    pub mfa_methods: Vec<&'static str>,
    pub recovery_codes_left: i64,
    pub webauthn_credentials: Vec<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_login_at: Option<OffsetDateTime>,
    pub sessions: usize,
    /// This session may only enrol a second factor (the policy requires one).
    pub mfa_enrollment_required: bool,
}

/// Your sign-in security at a glance.
#[utoipa::path(get, path = "/api/security/me/profile", tag = "security",
    security(("bearer" = ["SELF_READ"])),
    responses((status = 200, description = "Your profile", body = Profile)))]
pub async fn profile(
    State(state): State<AppState>,
    caller: Authorized<perm::SelfRead>,
) -> Result<Json<Profile>, Problem> {
    let p = &caller.principal;
    let logins = state
        .store
        .list_security_events(
            p.tenant_id,
            Some(p.user_id),
            Some("LOGIN_SUCCEEDED"),
            None,
            1,
        )
        .await?;
    Ok(Json(Profile {
        mfa_methods: mfa::methods(&state.store, p.user_id).await?,
        recovery_codes_left: state.store.recovery_codes_left(p.user_id).await?,
        webauthn_credentials: state
            .store
            .webauthn_credentials(p.user_id)
            .await?
            .into_iter()
            .map(|c| c.name)
            .collect(),
        last_login_at: logins.first().map(|e| e.record.created_at),
        sessions: state
            .store
            .live_sessions(
                p.tenant_id,
                p.user_id,
                mpanel_domain::Clock::now(state.clock.as_ref()),
            )
            .await?
            .len(),
        mfa_enrollment_required: p.restricted,
    }))
}
