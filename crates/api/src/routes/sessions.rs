//! `/api/security/me/sessions`: one's own signed-in sessions.

use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use mpanel_domain::SessionId;
use mpanel_services::identity::sessions;
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::Problem;
use crate::caller::{Ctx, perm};
use crate::query::{self, Page};

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    pub id: String,
    /// The session this request is made with.
    pub current: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_used_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RevokedCount {
    pub revoked: u64,
}

/// Your sessions that are still live, newest first.
#[utoipa::path(get, path = "/api/security/me/sessions", tag = "security",
    security(("bearer" = ["SELF_SECURITY"])),
    responses((status = 200, description = "Live sessions", body = Page<SessionView>)))]
pub async fn list_sessions(
    cx: Ctx<perm::SelfSecurity>,
) -> Result<Json<Page<SessionView>>, Problem> {
    let current = cx.principal.session_id;
    let items = sessions::list(&cx)
        .await?
        .into_iter()
        .map(|s| SessionView {
            id: s.id.to_string(),
            current: Some(s.id) == current,
            created_at: s.created_at,
            last_used_at: s.last_used_at,
            expires_at: s.expires_at,
            ip: s.ip,
            user_agent: s.user_agent,
        })
        .collect();
    Ok(Json(Page {
        items,
        next_cursor: None,
    }))
}

/// End one of your sessions.
#[utoipa::path(post, path = "/api/security/me/sessions/{id}/revoke", tag = "security",
    params(("id" = String, Path, description = "Session id")),
    security(("bearer" = ["SELF_SECURITY"])),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "Not one of your sessions"),
    ))]
pub async fn revoke_session(
    cx: Ctx<perm::SelfSecurity>,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    let id = query::path_id::<SessionId>(&id, "session")?;
    sessions::revoke(&cx, id, "REVOKED_BY_USER").await?;
    Ok(StatusCode::NO_CONTENT)
}

/// End all your sessions but the current one.
#[utoipa::path(post, path = "/api/security/me/sessions/revoke-all", tag = "security",
    security(("bearer" = ["SELF_SECURITY"])),
    responses((status = 200, description = "How many were revoked", body = RevokedCount)))]
pub async fn revoke_all_sessions(
    cx: Ctx<perm::SelfSecurity>,
) -> Result<Json<RevokedCount>, Problem> {
    let revoked = sessions::revoke_others(&cx).await?;
    Ok(Json(RevokedCount { revoked }))
}
