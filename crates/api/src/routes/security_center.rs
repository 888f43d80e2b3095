//! The security center: your profile, second factors and events; the
//! tenant's security policy.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use mpanel_domain::SecurityEventId;
use mpanel_domain::identity::Permission;
use mpanel_domain::security::SecurityPolicy;
use mpanel_services::security::{mfa, policy};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::caller::{Authorized, perm};
use crate::problem::codes;
use crate::query::{Listing, Page, PageParams};
use crate::{ApiJson, AppState, Problem};

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

#[derive(Debug, Serialize, ToSchema)]
pub struct TotpEnrolment {
    /// Base32; type it into the app, or scan the URI.
    pub secret: String,
    pub otpauth_uri: String,
}

/// Start TOTP enrolment: a secret and its `otpauth://` URI; nothing is
/// active until confirmed with a code.
#[utoipa::path(post, path = "/api/security/me/mfa/enable", tag = "security",
    security(("bearer" = ["SELF_MFA"])),
    responses((status = 200, description = "The secret", body = TotpEnrolment),
        (status = 409, description = "Already enabled")))]
pub async fn mfa_enable(
    State(state): State<AppState>,
    caller: Authorized<perm::SelfMfa>,
) -> Result<Json<TotpEnrolment>, Problem> {
    let e = mfa::enable(&state.store, state.clock.as_ref(), &caller.principal).await?;
    Ok(Json(TotpEnrolment {
        secret: e.secret,
        otpauth_uri: e.otpauth_uri,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeBody {
    pub code: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecoveryCodes {
    /// Ten single-use codes, shown this once.
    pub recovery_codes: Vec<String>,
}

/// Activate TOTP with a current code; answers 10 recovery codes (shown
/// once) and ends your other sessions.
#[utoipa::path(post, path = "/api/security/me/mfa/confirm", tag = "security", request_body = CodeBody,
    security(("bearer" = ["SELF_MFA"])),
    responses((status = 200, description = "Active", body = RecoveryCodes),
        (status = 409, description = "No enrolment started (POST /api/security/me/mfa/enable first)"),
        (status = 422, description = "Wrong code")))]
pub async fn mfa_confirm(
    State(state): State<AppState>,
    caller: Authorized<perm::SelfMfa>,
    ApiJson(body): ApiJson<CodeBody>,
) -> Result<Json<RecoveryCodes>, Problem> {
    let codes = mfa::confirm(
        &state.store,
        state.clock.as_ref(),
        &caller.principal,
        &caller.actor,
        &body.code,
    )
    .await?;
    Ok(Json(RecoveryCodes {
        recovery_codes: codes,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisableBody {
    pub password: String,
    pub code: Option<String>,
    pub recovery_code: Option<String>,
    /// Revoke your API tokens too (default `true`).
    #[serde(default)]
    pub revoke_api_tokens: Option<bool>,
}

/// Remove your second factors (password plus a current or recovery code);
/// ends your other sessions and, unless asked not to, your API tokens.
#[utoipa::path(post, path = "/api/security/me/mfa/disable", tag = "security", request_body = DisableBody,
    security(("bearer" = ["SELF_MFA"])),
    responses((status = 204, description = "Removed"),
        (status = 422, description = "Wrong password or code")))]
pub async fn mfa_disable(
    State(state): State<AppState>,
    caller: Authorized<perm::SelfMfa>,
    ApiJson(body): ApiJson<DisableBody>,
) -> Result<StatusCode, Problem> {
    let factor = match (body.code, body.recovery_code) {
        (Some(c), None) => mfa::Factor::Code(c),
        (None, Some(r)) => mfa::Factor::RecoveryCode(r),
        _ => {
            return Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                codes::VALIDATION_FAILED,
                "code: send a code or a recovery_code",
            )
            .with("field", "code"));
        }
    };
    mfa::disable(
        &state.store,
        state.clock.as_ref(),
        &caller.principal,
        &caller.actor,
        &mfa::Disable {
            password: body.password,
            factor,
            revoke_api_tokens: body.revoke_api_tokens.unwrap_or(true),
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Ceremony {
    pub ceremony_id: String,
    /// For `navigator.credentials.create`.
    #[schema(value_type = Object)]
    pub options: Value,
}

/// Start registering a passkey or security key.
#[utoipa::path(post, path = "/api/security/me/webauthn/register/start", tag = "security",
    security(("bearer" = ["SELF_MFA"])),
    responses((status = 200, description = "The creation options", body = Ceremony)))]
pub async fn webauthn_start(
    State(state): State<AppState>,
    caller: Authorized<perm::SelfMfa>,
) -> Result<Json<Ceremony>, Problem> {
    let (options, id) = state
        .passkeys
        .register_start(&state.store, state.clock.as_ref(), &caller.principal)
        .await?;
    Ok(Json(Ceremony {
        ceremony_id: id.to_string(),
        options,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FinishBody {
    #[schema(value_type = uuid::Uuid)]
    pub ceremony_id: String,
    /// The authenticator's answer.
    #[schema(value_type = Object)]
    pub credential: Value,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Registered {
    pub id: String,
}

/// Finish registering: the key becomes a second factor; other sessions end.
#[utoipa::path(post, path = "/api/security/me/webauthn/register/finish", tag = "security", request_body = FinishBody,
    security(("bearer" = ["SELF_MFA"])),
    responses((status = 201, description = "Registered", body = Registered),
        (status = 422, description = "Bad answer or ceremony")))]
pub async fn webauthn_finish(
    State(state): State<AppState>,
    caller: Authorized<perm::SelfMfa>,
    ApiJson(body): ApiJson<FinishBody>,
) -> Result<(StatusCode, Json<Registered>), Problem> {
    let ceremony: Uuid = body.ceremony_id.parse().map_err(|_| {
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            codes::VALIDATION_FAILED,
            "ceremony_id: not an id",
        )
        .with("field", "ceremony_id")
    })?;
    let name = body.name.unwrap_or_else(|| "security key".into());
    let id = state
        .passkeys
        .register_finish(
            &state.store,
            state.clock.as_ref(),
            &caller.principal,
            &caller.actor,
            ceremony,
            &body.credential,
            &name,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(Registered { id: id.to_string() })))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    pub id: String,
    pub user_id: Option<String>,
    /// e.g. LOGIN_FAILED, MFA_REPLAY, IP_BLOCKED.
    pub kind: String,
    pub ip: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub detail: Option<Value>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    pub kind: Option<String>,
    /// Admins: one user's events (others only ever see their own).
    #[param(value_type = Option<uuid::Uuid>)]
    pub user_id: Option<mpanel_domain::UserId>,
}

/// Security events, newest first: your own, or the tenant's for admins.
#[utoipa::path(get, path = "/api/security/events", tag = "security", params(PageParams, EventsQuery),
    security(("bearer" = ["SELF_SECURITY"])),
    responses((status = 200, description = "A page of events", body = Page<EventView>)))]
pub async fn events(
    State(state): State<AppState>,
    caller: Authorized<perm::SelfSecurity>,
    list: Listing<EventsQuery>,
) -> Result<Json<Page<EventView>>, Problem> {
    let p = &caller.principal;
    let Listing { paging, filter: q } = list;
    let before = paging.after::<SecurityEventId>()?;
    let user = if p.access.permits(Permission::SecurityEventsRead) {
        q.user_id
    } else {
        Some(p.user_id)
    };
    let fetched = state
        .store
        .list_security_events(p.tenant_id, user, q.kind.as_deref(), before, paging.fetch())
        .await?;
    Ok(Json(paging.page(
        fetched,
        |e| e.record.id.to_string(),
        |e| EventView {
            id: e.record.id.to_string(),
            user_id: e.record.user_id.map(|u| u.to_string()),
            kind: e.record.kind,
            ip: e.record.ip,
            detail: e.detail,
            created_at: e.record.created_at,
        },
    )))
}

/// The tenant's security policy.
#[utoipa::path(get, path = "/api/security/policy", tag = "security",
    security(("bearer" = ["SECURITY_POLICY_WRITE"])),
    responses((status = 200, description = "The policy", body = SecurityPolicy)))]
pub async fn get_policy(
    State(state): State<AppState>,
    caller: Authorized<perm::SecurityPolicyWrite>,
) -> Result<Json<SecurityPolicy>, Problem> {
    Ok(Json(
        policy::load(&state.store, caller.principal.tenant_id).await?,
    ))
}

/// Replace the tenant's security policy; enforced from the next request.
#[utoipa::path(put, path = "/api/security/policy", tag = "security", request_body = SecurityPolicy,
    security(("bearer" = ["SECURITY_POLICY_WRITE"])),
    responses((status = 200, description = "The policy", body = SecurityPolicy),
        (status = 422, description = "Out of range")))]
pub async fn put_policy(
    State(state): State<AppState>,
    caller: Authorized<perm::SecurityPolicyWrite>,
    ApiJson(body): ApiJson<SecurityPolicy>,
) -> Result<Json<SecurityPolicy>, Problem> {
    let saved = policy::update(
        &state.store,
        state.clock.as_ref(),
        &caller.principal,
        &caller.actor,
        &body,
        caller.ip.as_deref().and_then(|ip| ip.parse().ok()),
    )
    .await?;
    Ok(Json(saved))
}
