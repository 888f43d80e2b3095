//! The tenant's audit log, newest first, filtered by action, actor or
//! target (the same reading as `/api/audit`).

use axum::response::Response;
use mpanel_domain::AuditEventId;
use mpanel_domain::identity::Permission;
use mpanel_services::audit;
use mpanel_store::AuditFilter;
use serde::Serialize;

use super::listing::Listed;
use super::session::Viewer;
use super::view::{PageError, page};
use crate::routes::audit::{AuditQuery, AuditView};

#[derive(Serialize)]
struct AuditPage {
    rows: Vec<AuditView>,
    next_href: Option<String>,
    action: String,
    actor: String,
}

/// `GET /audit`.
pub async fn list(viewer: Viewer, listed: Listed<AuditQuery>) -> Result<Response, PageError> {
    viewer.require(Permission::AuditRead)?;
    let Listed { listing, links } = listed;
    let q = listing.filter;
    let paging = listing.paging;
    let filter = AuditFilter {
        actor: q.actor,
        action: q.action,
        target: q.target,
        from: q.from,
        to: q.to,
    };
    let fetched = audit::list(
        &viewer,
        audit::Stream::Tenant,
        &filter,
        paging.after::<AuditEventId>()?,
        paging.fetch(),
    )
    .await?;
    let found = paging.page(fetched, |r| r.id.to_string(), AuditView::from);
    let data = AuditPage {
        next_href: links.next_href(found.next_cursor.as_deref()),
        rows: found.items,
        action: links.value("action"),
        actor: links.value("actor"),
    };
    page(&viewer, "/audit", "Audit log", "audit.html", data)
}
