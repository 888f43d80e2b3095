//! The viewer's own security: a second factor (TOTP enrolled by scanning
//! a QR code drawn on the server, confirmed with a code, recovery codes
//! shown once) and the sessions signed in as them.

use axum::Form;
use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Redirect, Response};
use mpanel_domain::SessionId;
use mpanel_services::identity::sessions;
use mpanel_services::security::mfa;
use serde::{Deserialize, Serialize};

use super::session::Viewer;
use super::view::{PageError, page};
use super::{Done, Notice};

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
    error: Option<String>,
    sessions: Vec<SessionRow>,
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

/// `POST /security/totp`: a new secret to scan.
pub async fn totp_start(viewer: Viewer) -> Result<Response, PageError> {
    let e = mfa::enable(&viewer).await?;
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
