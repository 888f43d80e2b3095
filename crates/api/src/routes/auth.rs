//! `/api/auth`: log in, refresh, log out, who am I, change password.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mpanel_domain::identity::{Permission, Role, Scope};
use mpanel_services::identity::login::{self, LoginInput, TokenPair};
use mpanel_services::identity::{sessions, users};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::caller::{Ctx, perm};
use crate::middleware::ClientIp;
use crate::{ApiJson, AppState, Problem};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// The tenant's slug.
    pub tenant: String,
    pub email: String,
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    /// A JWT, valid `expires_in` seconds; send as `Authorization: Bearer …`.
    pub access_token: String,
    /// Opaque; trade it at `/api/auth/refresh` for a new pair. Single use.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    pub expires_in: i64,
    pub session_id: String,
}

impl From<TokenPair> for TokenResponse {
    fn from(p: TokenPair) -> Self {
        Self {
            access_token: p.access_token,
            refresh_token: p.refresh_token,
            token_type: "Bearer",
            expires_in: p.expires_in,
            session_id: p.session_id.to_string(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current_password: String,
    /// 12 to 128 characters.
    pub new_password: String,
    /// Revoke your API tokens too (default `true`).
    #[serde(default)]
    pub revoke_api_tokens: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReauthenticateRequest {
    /// Your password; or instead:
    pub password: Option<String>,
    /// A current TOTP code; or instead:
    pub code: Option<String>,
    /// An unused recovery code.
    pub recovery_code: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Reauthenticated {
    /// Sensitive changes are allowed until then.
    #[serde(with = "time::serde::rfc3339")]
    pub valid_until: time::OffsetDateTime,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    pub user_id: String,
    pub tenant_id: String,
    pub email: String,
    pub role: Role,
    /// Set when signed in with a session.
    pub session_id: Option<String>,
    /// Set when calling with an API token.
    pub api_token_id: Option<String>,
    /// The token's scopes (absent for a session: all the role allows).
    pub scopes: Option<Vec<Scope>>,
    /// Everything this caller may do.
    pub permissions: Vec<Permission>,
}

pub(crate) fn client_ip(headers_ip: Option<axum::Extension<ClientIp>>) -> Option<String> {
    headers_ip.map(|axum::Extension(ClientIp(ip))| ip.to_string())
}

/// Asked for when the user has a second factor.
#[derive(Debug, Serialize, ToSchema)]
pub struct MfaRequired {
    /// Always true.
    pub mfa_required: bool,
    /// Single use, five minutes, for `POST /api/auth/mfa`.
    pub mfa_token: String,
    /// TOTP, RECOVERY_CODE, WEBAUTHN.
    pub methods: Vec<&'static str>,
    /// WebAuthn request options (`navigator.credentials.get`), when a passkey is enrolled.
    #[schema(value_type = Option<Object>)]
    pub webauthn: Option<Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MfaRequest {
    pub mfa_token: String,
    /// A TOTP code …
    pub code: Option<String>,
    /// … or a recovery code …
    pub recovery_code: Option<String>,
    /// … or the authenticator's answer to the WebAuthn options.
    #[schema(value_type = Option<Object>)]
    pub webauthn_response: Option<Value>,
}

pub(crate) fn user_agent(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(256).collect())
}

pub(crate) fn sign_in(state: &AppState) -> login::SignIn<'_> {
    login::SignIn {
        store: &state.store,
        clock: state.clock.as_ref(),
        tokens: &state.tokens,
        passkeys: &state.passkeys,
    }
}

/// Log in with tenant, e-mail address and password. A user with a second
/// factor gets `{mfa_required: true, mfa_token, methods}` instead of tokens.
#[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in (TokenResponse), or a second factor is needed (MfaRequired)", body = TokenResponse),
        (status = 401, description = "Wrong tenant, e-mail address or password (`invalid_credentials`)"),
        (status = 403, description = "The account is disabled (`account_disabled`)"),
        (status = 429, description = "Too many failed logins (`login_throttled`), see Retry-After"),
    ))]
pub async fn login(
    State(state): State<AppState>,
    ip: Option<axum::Extension<ClientIp>>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<Response, Problem> {
    let input = LoginInput {
        tenant: body.tenant,
        email: body.email,
        password: body.password,
        ip: client_ip(ip),
        user_agent: user_agent(&headers),
    };
    let outcome = login::login(&sign_in(&state), &input).await?;
    Ok(match outcome {
        login::LoginOutcome::Signed(pair) => Json(TokenResponse::from(pair)).into_response(),
        login::LoginOutcome::MfaRequired {
            mfa_token,
            methods,
            webauthn,
        } => Json(MfaRequired {
            mfa_required: true,
            mfa_token,
            methods,
            webauthn,
        })
        .into_response(),
    })
}

/// Complete a login with the second factor.
#[utoipa::path(post, path = "/api/auth/mfa", tag = "auth", request_body = MfaRequest,
    responses(
        (status = 200, description = "Signed in", body = TokenResponse),
        (status = 401, description = "The MFA token is invalid, expired or used"),
        (status = 403, description = "The account is disabled, or the tenant suspended"),
        (status = 404, description = "The user is gone"),
        (status = 422, description = "Wrong or replayed code"),
        (status = 429, description = "Too many failed attempts"),
    ))]
pub async fn mfa(
    State(state): State<AppState>,
    ip: Option<axum::Extension<ClientIp>>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<MfaRequest>,
) -> Result<Json<TokenResponse>, Problem> {
    let input = login::MfaInput {
        mfa_token: body.mfa_token,
        code: body.code,
        recovery_code: body.recovery_code,
        webauthn_response: body.webauthn_response,
        ip: client_ip(ip),
        user_agent: user_agent(&headers),
    };
    let pair = login::complete_mfa(&sign_in(&state), &input).await?;
    Ok(Json(pair.into()))
}

/// Trade a refresh token for a new pair; the old one stops working. Using
/// a refresh token twice revokes its session.
#[utoipa::path(post, path = "/api/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses(
        (status = 200, description = "A new pair", body = TokenResponse),
        (status = 401, description = "Invalid, expired, revoked or reused"),
        (status = 403, description = "The tenant is suspended, or its policy refuses staff sessions from this address"),
        (status = 404, description = "The user or session is gone"),
    ))]
pub async fn refresh(
    State(state): State<AppState>,
    ip: Option<axum::Extension<ClientIp>>,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> Result<Json<TokenResponse>, Problem> {
    let pair = login::refresh(
        &state.store,
        state.clock.as_ref(),
        &state.tokens,
        &body.refresh_token,
        client_ip(ip),
    )
    .await?;
    Ok(Json(pair.into()))
}

/// End the current session: its access and refresh tokens stop working.
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth",
    security(("bearer" = ["SELF_SECURITY"])),
    responses((status = 204, description = "Signed out"),
        (status = 422, description = "Called with an API token, which has no session: revoke the token instead")))]
pub async fn logout(cx: Ctx<perm::SelfSecurity>) -> Result<StatusCode, Problem> {
    sessions::logout(&cx).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Who is calling, and what they may do.
#[utoipa::path(get, path = "/api/auth/me", tag = "auth",
    security(("bearer" = ["SELF_READ"])),
    responses((status = 200, description = "The caller", body = Me)))]
pub async fn me(cx: Ctx<perm::SelfRead>) -> Result<Json<Me>, Problem> {
    let p = &cx.principal;
    Ok(Json(Me {
        user_id: p.user_id.to_string(),
        tenant_id: p.tenant_id.to_string(),
        email: p.email.clone(),
        role: p.role(),
        session_id: p.session_id.map(|s| s.to_string()),
        api_token_id: p.api_token_id.map(|t| t.to_string()),
        scopes: p.access.scopes.as_ref().map(|s| s.iter().collect()),
        permissions: Permission::ALL
            .into_iter()
            .filter(|perm| p.access.permits(*perm))
            .collect(),
    }))
}

/// Change your password; your other sessions end.
#[utoipa::path(post, path = "/api/auth/password", tag = "auth", request_body = PasswordChange,
    security(("bearer" = ["SELF_SECURITY"])),
    responses(
        (status = 204, description = "Changed"),
        (status = 422, description = "Current password wrong or new one too weak"),
    ))]
pub async fn change_password(
    cx: Ctx<perm::SelfSecurity>,
    ApiJson(body): ApiJson<PasswordChange>,
) -> Result<impl IntoResponse, Problem> {
    users::change_own_password(
        &cx,
        &users::PasswordChange {
            current: body.current_password,
            new: body.new_password,
            revoke_api_tokens: body.revoke_api_tokens.unwrap_or(true),
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Prove it is you again (password, TOTP code or recovery code) before a
/// sensitive change: creating API tokens, enrolling a second factor,
/// changing Stripe keys, rotating the webhook secret. Valid 5 minutes;
/// throttled like logins.
#[utoipa::path(post, path = "/api/auth/reauthenticate", tag = "auth", request_body = ReauthenticateRequest,
    security(("bearer" = ["SELF_SECURITY"])),
    responses(
        (status = 200, description = "Re-authenticated", body = Reauthenticated),
        (status = 403, description = "An API token (`forbidden`)"),
        (status = 422, description = "Wrong password or code, or not exactly one given"),
        (status = 429, description = "Too many failures (`throttled`)"),
    ))]
pub async fn reauthenticate(
    cx: Ctx<perm::SelfSecurity>,
    ApiJson(body): ApiJson<ReauthenticateRequest>,
) -> Result<Json<Reauthenticated>, Problem> {
    use mpanel_services::identity::step_up::{self, Proof};
    use mpanel_services::security::mfa::Factor;
    let proof = match (body.password, body.code, body.recovery_code) {
        (Some(p), None, None) => Proof::Password(p),
        (None, Some(c), None) => Proof::SecondFactor(Factor::Code(c)),
        (None, None, Some(r)) => Proof::SecondFactor(Factor::RecoveryCode(r)),
        _ => {
            return Err(Problem::from(mpanel_services::ServiceError::invalid(
                "password",
                "send exactly one of password, code or recovery_code",
            )));
        }
    };
    let valid_until = step_up::reauthenticate(&cx, &proof, cx.ip.clone()).await?;
    Ok(Json(Reauthenticated { valid_until }))
}
