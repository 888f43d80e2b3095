//! `/api/security/me/mfa` and `/api/security/me/webauthn`: one's second
//! factors (TOTP with recovery codes, passkeys and security keys).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use mpanel_services::security::mfa;
use mpanel_services::security::webauthn::RegistrationAnswer;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::caller::{Ctx, perm};
use crate::problem::codes;
use crate::{ApiJson, AppState, Problem};

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
pub async fn mfa_enable(cx: Ctx<perm::SelfMfa>) -> Result<Json<TotpEnrolment>, Problem> {
    let e = mfa::enable(&cx).await?;
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
    cx: Ctx<perm::SelfMfa>,
    ApiJson(body): ApiJson<CodeBody>,
) -> Result<Json<RecoveryCodes>, Problem> {
    let codes = mfa::confirm(&cx, &body.code).await?;
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
    cx: Ctx<perm::SelfMfa>,
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
        &cx,
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
    cx: Ctx<perm::SelfMfa>,
) -> Result<Json<Ceremony>, Problem> {
    let (options, id) = state.passkeys.register_start(&cx).await?;
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
    cx: Ctx<perm::SelfMfa>,
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
            &cx,
            RegistrationAnswer {
                ceremony,
                response: &body.credential,
                name: &name,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(Registered { id: id.to_string() })))
}
