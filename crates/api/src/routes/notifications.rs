//! `/api/notifications`: the e-mail mPanel sends for the tenant, as staff
//! see it (delivery status, never bodies), and the DKIM record to publish.

use axum::Json;
use axum::extract::State;
use mpanel_domain::EmailId;
use mpanel_domain::notify::{EmailKind, EmailStatus};
use mpanel_services::notify::dkim::{self, DkimRecordView};
use mpanel_services::notify::outbox::{self, OutboxView};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::caller::{Ctx, perm};
use crate::query::{self, Listing, Page, PageParams};
use crate::{AppState, Problem};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct OutboxFilter {
    #[serde(default, deserialize_with = "query::from_str_opt")]
    #[param(value_type = Option<EmailStatus>, inline)]
    status: Option<EmailStatus>,
    #[serde(default, deserialize_with = "query::from_str_opt")]
    #[param(value_type = Option<EmailKind>, inline)]
    kind: Option<EmailKind>,
}

/// The tenant's outbox, newest first (of one status, of one kind): each
/// message's status, attempts and last error.
#[utoipa::path(get, path = "/api/notifications/outbox", tag = "notifications",
    params(PageParams, OutboxFilter), security(("bearer" = ["NOTIFICATIONS_READ"])),
    responses((status = 200, description = "A page of messages", body = Page<OutboxView>)))]
pub async fn outbox(
    cx: Ctx<perm::NotificationsRead>,
    list: Listing<OutboxFilter>,
) -> Result<Json<Page<OutboxView>>, Problem> {
    let Listing { paging, filter } = list;
    let before = paging.after::<EmailId>()?;
    let fetched = outbox::list(&cx, filter.status, filter.kind, before, paging.fetch()).await?;
    Ok(Json(paging.page(
        fetched,
        |e| e.id.to_string(),
        outbox::view,
    )))
}

/// The DKIM key the tenant's messages are signed with (made on first
/// use): the TXT record to publish under the sender's domain.
#[utoipa::path(get, path = "/api/notifications/dkim", tag = "notifications",
    security(("bearer" = ["NOTIFICATIONS_READ"])),
    responses((status = 200, description = "The record to publish", body = DkimRecordView)))]
pub async fn dkim(
    State(state): State<AppState>,
    cx: Ctx<perm::NotificationsRead>,
) -> Result<Json<DkimRecordView>, Problem> {
    Ok(Json(dkim::record(&cx, &state.mail).await?))
}
