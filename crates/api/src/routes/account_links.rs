//! `/api/auth/invitations/accept`, `/api/auth/password/forgot` and
//! `/api/auth/password/reset`: setting a password through a link sent by
//! e-mail. Public: the link's token is the credential.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use mpanel_domain::identity::account_link::{LinkPurpose, PasswordResetRequest};
use mpanel_services::identity::account_links::{self, LinkUsed, UseLink};
use mpanel_services::identity::password_reset;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::middleware::ClientIp;
use crate::{ApiJson, AppState, Problem};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPasswordRequest {
    /// The token from the link (`#token=…`).
    pub token: String,
    /// 12 to 128 characters (or the tenant's longer minimum).
    pub password: String,
}

/// The account whose password was set: sign in with these and the new
/// password (a second factor still applies).
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountReady {
    /// The tenant's slug.
    pub tenant: String,
    pub email: String,
    /// Always `ACTIVE`.
    pub status: &'static str,
    /// Sessions ended (a reset ends every session of the account).
    pub sessions_revoked: u64,
}

impl From<LinkUsed> for AccountReady {
    fn from(used: LinkUsed) -> Self {
        Self {
            tenant: used.tenant.slug,
            email: used.user.email,
            status: used.user.status.as_str(),
            sessions_revoked: used.sessions_revoked,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForgotRequest {
    /// The tenant's slug.
    #[schema(max_length = 100)]
    pub tenant: String,
    #[schema(max_length = 254)]
    pub email: String,
}

/// The one answer to a reset request, whatever the address.
#[derive(Debug, Serialize, ToSchema)]
pub struct ForgotAccepted {
    /// Always `ACCEPTED`.
    pub status: &'static str,
    pub message: &'static str,
}

fn ip_of(ip: Option<axum::Extension<ClientIp>>) -> Option<String> {
    ip.map(|axum::Extension(ClientIp(ip))| ip.to_string())
}

async fn use_link(
    state: &AppState,
    purpose: LinkPurpose,
    body: SetPasswordRequest,
    ip: Option<axum::Extension<ClientIp>>,
) -> Result<Json<AccountReady>, Problem> {
    let input = UseLink {
        token: body.token,
        password: body.password,
        ip: ip_of(ip),
    };
    let used =
        account_links::set_password(&state.store, state.clock.as_ref(), purpose, &input).await?;
    Ok(Json(used.into()))
}

/// Accept an invitation: choose the password of an invited account, which
/// becomes active. The link works once, for 7 days, and only the newest
/// one a user was sent.
#[utoipa::path(post, path = "/api/auth/invitations/accept", tag = "auth",
    request_body = SetPasswordRequest,
    responses(
        (status = 200, description = "The password is set; sign in", body = AccountReady),
        (status = 403, description = "The account is disabled (`account_disabled`) or its tenant suspended (`tenant_suspended`)"),
        (status = 422, description = "The link is used, replaced or expired (field `token`), or the password too weak (field `password`)"),
    ))]
pub async fn accept_invitation(
    State(state): State<AppState>,
    ip: Option<axum::Extension<ClientIp>>,
    ApiJson(body): ApiJson<SetPasswordRequest>,
) -> Result<Json<AccountReady>, Problem> {
    use_link(&state, LinkPurpose::Invitation, body, ip).await
}

/// Ask for a password reset link. The answer is the same (202) whether or
/// not the account exists; when it does, the link arrives by e-mail and
/// works once, for an hour.
#[utoipa::path(post, path = "/api/auth/password/forgot", tag = "auth",
    request_body = ForgotRequest,
    responses(
        (status = 202, description = "Accepted (whether or not the account exists)", body = ForgotAccepted),
        (status = 422, description = "A field longer than documented"),
        (status = 429, description = "Too many requests from this client (`throttled`), see Retry-After"),
    ))]
pub async fn forgot_password(
    State(state): State<AppState>,
    ip: Option<axum::Extension<ClientIp>>,
    ApiJson(body): ApiJson<ForgotRequest>,
) -> Result<(StatusCode, Json<ForgotAccepted>), Problem> {
    let request = PasswordResetRequest {
        tenant: body.tenant,
        email: body.email,
        ip: ip_of(ip),
    };
    password_reset::request(&state.store, state.clock.as_ref(), &request).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(ForgotAccepted {
            status: "ACCEPTED",
            message: "If an account uses this address, a link to reset its password is on its way.",
        }),
    ))
}

/// Set a new password with a reset link: every session and refresh token
/// of the account stops working (a second factor still applies at the
/// next sign-in).
#[utoipa::path(post, path = "/api/auth/password/reset", tag = "auth",
    request_body = SetPasswordRequest,
    responses(
        (status = 200, description = "The password is set; sign in", body = AccountReady),
        (status = 403, description = "The account is disabled (`account_disabled`) or its tenant suspended (`tenant_suspended`)"),
        (status = 422, description = "The link is used, replaced or expired (field `token`), or the password too weak (field `password`)"),
    ))]
pub async fn reset_password(
    State(state): State<AppState>,
    ip: Option<axum::Extension<ClientIp>>,
    ApiJson(body): ApiJson<SetPasswordRequest>,
) -> Result<Json<AccountReady>, Problem> {
    use_link(&state, LinkPurpose::PasswordReset, body, ip).await
}
