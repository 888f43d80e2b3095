//! The viewer's own security: a second factor (TOTP enrolled by scanning
//! a QR code drawn on the server, confirmed with a code, recovery codes
//! shown once) and the sessions signed in as them.

use axum::Form;
use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Redirect, Response};
use mpanel_domain::ApiTokenId;
use mpanel_domain::SessionId;
use mpanel_domain::identity::Permission;
use mpanel_domain::identity::Scope;
use mpanel_services::ServiceError;
use mpanel_services::identity::api_tokens::{self, NewApiToken};
use mpanel_services::identity::{sessions, step_up};
use mpanel_services::security::mfa;
use serde::{Deserialize, Serialize};

use super::session::Viewer;
use super::view::{PageError, page};
use super::{Done, Notice};
use crate::routes::api_tokens::TokenView;

#[derive(Serialize)]
struct SessionRow {
    id: String,
    current: bool,
    created_at: String,
    last_used_at: String,
    ip: Option<String>,
    user_agent: Option<String>,
}

#[derive(Serialize, Default)]
struct SecurityPage {
    methods: Vec<&'static str>,
    restricted: bool,
    /// While enrolling: the secret, its QR code (SVG) and URI.
    enrolment: Option<Enrolling>,
    recovery_codes: Vec<String>,
    /// The change needs the password again first.
    reauthenticate: bool,
    error: Option<String>,
    sessions: Vec<SessionRow>,
    tokens: Vec<TokenView>,
    /// A token just made: shown this once.
    new_token: Option<String>,
    /// The scopes the viewer's role may put on a token.
    scopes: Vec<&'static str>,
    /// May edit the tenant's security policy.
    may_policy: bool,
    notice: Option<Notice>,
}

#[derive(Serialize)]
struct Enrolling {
    secret: String,
    otpauth_uri: String,
    qr_svg: String,
}

async fn render(viewer: &Viewer, mut data: SecurityPage) -> Result<Response, PageError> {
    data.methods = mfa::methods(&viewer.store, viewer.principal().user_id).await?;
    data.restricted = viewer.principal().restricted;
    data.may_policy = viewer.may(Permission::SecurityPolicyWrite);
    let current = viewer.principal().session_id;
    data.sessions = sessions::list(viewer)
        .await?
        .into_iter()
        .filter(|s| s.revoked_at.is_none())
        .map(|s| SessionRow {
            id: s.id.to_string(),
            current: Some(s.id) == current,
            created_at: rfc3339(s.created_at),
            last_used_at: rfc3339(s.last_used_at),
            ip: s.ip,
            user_agent: s.user_agent,
        })
        .collect();
    data.tokens = api_tokens::list(viewer)
        .await?
        .into_iter()
        .filter(|t| t.revoked_at.is_none())
        .map(TokenView::from)
        .collect();
    let role = viewer.principal().role();
    data.scopes = Scope::ALL
        .into_iter()
        .filter(|s| s.grantable_by(role))
        .map(Scope::as_str)
        .collect();
    page(viewer, "/security", "Security", "security.html", data)
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// `GET /security`.
pub async fn show(viewer: Viewer, Query(done): Query<Done>) -> Result<Response, PageError> {
    render(
        &viewer,
        SecurityPage {
            notice: done.notice(),
            ..SecurityPage::default()
        },
    )
    .await
}

/// The QR code of an `otpauth://` URI, as SVG markup.
fn qr_svg(uri: &str) -> Result<String, PageError> {
    let code = qrcode::QrCode::new(uri.as_bytes()).map_err(|_| {
        PageError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "The QR code could not be drawn; type the secret instead.",
        )
    })?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build())
}

/// `POST /security/totp`: a new secret to scan (after the password
/// again, when the sign-in is older than the step-up window).
pub async fn totp_start(viewer: Viewer) -> Result<Response, PageError> {
    viewer.require(Permission::SelfMfa)?;
    let e = match mfa::enable(&viewer).await {
        Ok(e) => e,
        Err(ServiceError::ReauthenticationRequired) => {
            let data = SecurityPage {
                reauthenticate: true,
                ..SecurityPage::default()
            };
            return render(&viewer, data).await;
        }
        Err(e) => return Err(e.into()),
    };
    let qr = qr_svg(&e.otpauth_uri)?;
    render(
        &viewer,
        SecurityPage {
            enrolment: Some(Enrolling {
                secret: e.secret,
                otpauth_uri: e.otpauth_uri,
                qr_svg: qr,
            }),
            ..SecurityPage::default()
        },
    )
    .await
}

#[derive(Deserialize)]
pub struct CodeForm {
    code: String,
}

/// `POST /security/totp/confirm`: active once a code matches; the
/// recovery codes are shown this once.
pub async fn totp_confirm(viewer: Viewer, Form(f): Form<CodeForm>) -> Result<Response, PageError> {
    viewer.require(Permission::SelfMfa)?;
    match mfa::confirm(&viewer, f.code.trim()).await {
        Ok(codes) => {
            render(
                &viewer,
                SecurityPage {
                    recovery_codes: codes,
                    ..SecurityPage::default()
                },
            )
            .await
        }
        Err(e) => {
            let problem = crate::Problem::from(e);
            if problem.status.is_server_error() {
                return Err(problem.into());
            }
            render(
                &viewer,
                SecurityPage {
                    error: Some(problem.detail),
                    ..SecurityPage::default()
                },
            )
            .await
        }
    }
}

/// `POST /security/sessions/{id}/revoke`.
pub async fn revoke_session(
    viewer: Viewer,
    Path(raw): Path<String>,
) -> Result<Response, PageError> {
    let id: SessionId = raw.parse().map_err(|_| PageError::not_found())?;
    sessions::revoke(&viewer, id, "REVOKED_BY_USER").await?;
    Ok(Redirect::to("/security?done=session_revoked").into_response())
}

#[derive(Deserialize)]
pub struct PasswordForm {
    password: String,
    /// The page to go back to: one of the pages that ask.
    #[serde(default)]
    back: String,
}

/// `POST /security/reauthenticate`: the password again, for the changes
/// that need a fresh proof (the API's step-up).
pub async fn reauthenticate(
    viewer: Viewer,
    Form(f): Form<PasswordForm>,
) -> Result<Response, PageError> {
    viewer.require(Permission::SelfSecurity)?;
    let proof = step_up::Proof::Password(f.password);
    match step_up::reauthenticate(&viewer, &proof, viewer.cx.ip.clone()).await {
        Ok(_) => {
            let back = match f.back.as_str() {
                "/settings" | "/security/policy" => f.back.as_str(),
                _ => "/security",
            };
            Ok(Redirect::to(&format!("{back}?done=reauthenticated")).into_response())
        }
        Err(e) => {
            let problem = crate::Problem::from(e);
            if problem.status.is_server_error() {
                return Err(problem.into());
            }
            let data = SecurityPage {
                reauthenticate: true,
                error: Some(problem.detail),
                ..SecurityPage::default()
            };
            render(&viewer, data).await
        }
    }
}

#[derive(Deserialize)]
pub struct TokenForm {
    name: String,
    /// Days until it expires (the tenant's policy caps it).
    days: i64,
    #[serde(default)]
    scope: Vec<String>,
}

/// `POST /security/tokens`: a token for a program, shown once.
pub async fn create_token(viewer: Viewer, body: axum::body::Bytes) -> Result<Response, PageError> {
    viewer.require(Permission::SelfTokens)?;
    // Several `scope` fields: read as pairs, not by serde's last-wins.
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let field = |k: &str| {
        pairs
            .iter()
            .find(|(name, _)| name == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let f = TokenForm {
        name: field("name"),
        days: field("days").parse().unwrap_or(30),
        scope: pairs
            .iter()
            .filter(|(k, _)| k == "scope")
            .map(|(_, v)| v.clone())
            .collect(),
    };
    let scopes = f
        .scope
        .iter()
        .map(|s| s.parse::<Scope>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PageError::new(axum::http::StatusCode::UNPROCESSABLE_ENTITY, e))?;
    let input = NewApiToken {
        name: f.name,
        scopes,
        expires_at: Some(viewer.now() + time::Duration::days(f.days.clamp(1, 3650))),
    };
    match api_tokens::create(&viewer, &input).await {
        Ok(created) => {
            let data = SecurityPage {
                new_token: Some(created.token),
                ..SecurityPage::default()
            };
            render(&viewer, data).await
        }
        Err(ServiceError::ReauthenticationRequired) => {
            let data = SecurityPage {
                reauthenticate: true,
                ..SecurityPage::default()
            };
            render(&viewer, data).await
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /security/tokens/{id}/revoke`.
pub async fn revoke_token(viewer: Viewer, Path(raw): Path<String>) -> Result<Response, PageError> {
    viewer.require(Permission::SelfTokens)?;
    let id: ApiTokenId = raw.parse().map_err(|_| PageError::not_found())?;
    api_tokens::revoke(&viewer, id).await?;
    Ok(Redirect::to("/security?done=token_revoked").into_response())
}

/// `GET /security/tokens/{id}/revoke`: asks first.
pub async fn revoke_token_confirm(
    viewer: Viewer,
    Path(raw): Path<String>,
) -> Result<Response, PageError> {
    viewer.require(Permission::SelfTokens)?;
    let id: ApiTokenId = raw.parse().map_err(|_| PageError::not_found())?;
    let token = api_tokens::list(&viewer)
        .await?
        .into_iter()
        .find(|t| t.id == id)
        .ok_or_else(PageError::not_found)?;
    super::confirm(
        &viewer,
        "/security",
        super::confirm::Question {
            title: format!("Revoke the token {}?", token.name),
            detail: "Programs using it are refused from now on.".into(),
            action: format!("/security/tokens/{id}/revoke"),
            button: "Revoke".into(),
            back: "/security".into(),
        },
    )
}

/// `GET /security/sessions/{id}/revoke`: asks first.
pub async fn revoke_session_confirm(
    viewer: Viewer,
    Path(raw): Path<String>,
) -> Result<Response, PageError> {
    viewer.require(Permission::SelfSecurity)?;
    let id: SessionId = raw.parse().map_err(|_| PageError::not_found())?;
    super::confirm(
        &viewer,
        "/security",
        super::confirm::Question {
            title: "Sign that browser out?".into(),
            detail: "It has to sign in again to use your account.".into(),
            action: format!("/security/sessions/{id}/revoke"),
            button: "Sign out".into(),
            back: "/security".into(),
        },
    )
}
