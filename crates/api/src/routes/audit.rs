//! `/api/audit`: the tenant's audit log.

use axum::Json;
use mpanel_domain::AuditEventId;
use mpanel_services::audit;
use mpanel_store::{AuditFilter, AuditRecord};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use crate::Problem;
use crate::caller::{Ctx, perm};
use crate::query::{Listing, Page, PageParams};

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditView {
    pub id: String,
    /// `USER`, `API_TOKEN`, `CLI` or `SYSTEM`.
    pub actor_type: String,
    pub actor_id: Option<String>,
    pub actor_label: String,
    /// `noun.verb`, e.g. `user.role_change`.
    pub action: String,
    pub target_type: String,
    pub target_id: Option<String>,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub request_id: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<AuditRecord> for AuditView {
    fn from(r: AuditRecord) -> Self {
        Self {
            id: r.id.to_string(),
            actor_type: r.actor_type,
            actor_id: r.actor_id.map(|a| a.to_string()),
            actor_label: r.actor_label,
            action: r.action,
            target_type: r.target_type,
            target_id: r.target_id,
            before: r.before,
            after: r.after,
            request_id: r.request_id,
            created_at: r.created_at,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Actor id or label (e-mail address).
    pub actor: Option<String>,
    /// Exact action, e.g. `user.create`.
    pub action: Option<String>,
    /// Target id or type.
    pub target: Option<String>,
    /// From this time on (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<OffsetDateTime>)]
    pub from: Option<OffsetDateTime>,
    /// Before this time (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<OffsetDateTime>)]
    pub to: Option<OffsetDateTime>,
    /// `PLATFORM`: the platform's own rows (servers), for a SUPER_ADMIN;
    /// otherwise the tenant's.
    #[param(pattern = "^(TENANT|PLATFORM)$")]
    pub scope: Option<String>,
}

/// The tenant's audit log, newest first.
#[utoipa::path(get, path = "/api/audit", tag = "audit", params(PageParams, AuditQuery),
    security(("bearer" = ["AUDIT_READ"])),
    responses((status = 200, description = "A page of audit rows", body = Page<AuditView>)))]
pub async fn list(
    cx: Ctx<perm::AuditRead>,
    list: Listing<AuditQuery>,
) -> Result<Json<Page<AuditView>>, Problem> {
    let Listing { paging, filter: q } = list;
    let filter = AuditFilter {
        actor: q.actor,
        action: q.action,
        target: q.target,
        from: q.from,
        to: q.to,
    };
    let stream = match q.scope.as_deref() {
        None | Some("TENANT") => audit::Stream::Tenant,
        Some("PLATFORM") => audit::Stream::Platform,
        Some(_) => {
            return Err(Problem::from(mpanel_services::ServiceError::invalid(
                "scope",
                "is TENANT or PLATFORM",
            )));
        }
    };
    let fetched = audit::list(
        &cx,
        stream,
        &filter,
        paging.after::<AuditEventId>()?,
        paging.fetch(),
    )
    .await?;
    Ok(Json(paging.page(
        fetched,
        |r| r.id.to_string(),
        AuditView::from,
    )))
}
