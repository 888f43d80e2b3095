//! `/api/security/events`: sign-ins, lockouts, factor changes and token
//! use, one's own or (for admins) the tenant's.

use axum::Json;
use mpanel_domain::SecurityEventId;
use mpanel_services::security;
use mpanel_store::identity::security_events::SecurityEventDetail;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use crate::Problem;
use crate::caller::{Ctx, perm};
use crate::query::{Listing, Page, PageParams};

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
    cx: Ctx<perm::SelfSecurity>,
    list: Listing<EventsQuery>,
) -> Result<Json<Page<EventView>>, Problem> {
    let Listing { paging, filter: q } = list;
    let before = paging.after::<SecurityEventId>()?;
    let fetched =
        security::events(&cx, q.user_id, q.kind.as_deref(), before, paging.fetch()).await?;
    Ok(Json(paging.page(
        fetched,
        |e| e.record.id.to_string(),
        EventView::from,
    )))
}

impl From<SecurityEventDetail> for EventView {
    fn from(e: SecurityEventDetail) -> Self {
        Self {
            id: e.record.id.to_string(),
            user_id: e.record.user_id.map(|u| u.to_string()),
            kind: e.record.kind,
            ip: e.record.ip,
            detail: e.detail,
            created_at: e.record.created_at,
        }
    }
}
