//! `/api/notifications`: the e-mail mPanel sends for the tenant, as staff
//! see it (delivery status, never bodies), the DKIM record to publish, and
//! the tenant's own message templates.

use axum::Json;
use axum::extract::{Path, State};
use mpanel_domain::EmailId;
use mpanel_domain::notify::{EmailKind, EmailStatus};
use mpanel_services::ServiceError;
use mpanel_services::notify::dkim::{self, DkimRecordView};
use mpanel_services::notify::outbox::{self, OutboxView};
use mpanel_services::notify::templates::Sources;
use mpanel_services::notify::tenant_templates::{self, Preview, TemplateView};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::caller::{Ctx, perm};
use crate::query::{self, Listing, Page, PageParams};
use crate::{ApiJson, AppState, Problem};

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

/// Send a message that was not delivered (FAILED, UNKNOWN or
/// UNDELIVERABLE) again, e.g. once `smtp_url` is set. For UNKNOWN the
/// customer may get it twice: staff decide. Messages with a link are not
/// resent (send a new invitation or reset).
#[utoipa::path(post, path = "/api/notifications/outbox/{id}/resend", tag = "notifications",
    params(("id" = String, Path, description = "Message id")),
    security(("bearer" = ["SETTINGS_WRITE"])),
    responses((status = 200, description = "Queued again", body = OutboxView),
        (status = 404, description = "No such message in this tenant"),
        (status = 409, description = "Delivered, on its way, or a message with a link")))]
pub async fn resend(
    cx: Ctx<perm::SettingsWrite>,
    Path(id): Path<String>,
) -> Result<Json<OutboxView>, Problem> {
    let id = query::path_id::<EmailId>(&id, "message")?;
    Ok(Json(outbox::resend(&cx, id).await?))
}

/// The DKIM key the tenant's messages are signed with: the TXT record to
/// publish under the sender's domain.
#[utoipa::path(get, path = "/api/notifications/dkim", tag = "notifications",
    security(("bearer" = ["NOTIFICATIONS_READ"])),
    responses((status = 200, description = "The record to publish", body = DkimRecordView),
        (status = 404, description = "No key yet (the first message or `POST` makes one)")))]
pub async fn dkim(
    State(state): State<AppState>,
    cx: Ctx<perm::NotificationsRead>,
) -> Result<Json<DkimRecordView>, Problem> {
    Ok(Json(dkim::record(&cx, &state.mail).await?))
}

/// The tenant's message templates, one per kind.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct TemplateList {
    pub items: Vec<TemplateView>,
}

/// A kind's templates to store. Each is a minijinja template (at most
/// 32 KiB) that may use only the kind's `variables`; the HTML one is
/// escaped automatically.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateBody {
    #[schema(max_length = 32768)]
    pub subject: String,
    #[schema(max_length = 32768)]
    pub text: String,
    #[schema(max_length = 32768)]
    pub html: String,
}

/// The stored templates and a sample message rendered with them.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct TemplateSaved {
    pub template: TemplateView,
    pub preview: Preview,
}

fn kind_of(raw: &str) -> Result<EmailKind, Problem> {
    raw.parse::<EmailKind>()
        .map_err(|_| Problem::from(ServiceError::NotFound("no such message kind".into())))
}

/// Every message kind with the templates in use (the tenant's own or the
/// built-in ones) and the names they may use.
#[utoipa::path(get, path = "/api/notifications/templates", tag = "notifications",
    security(("bearer" = ["NOTIFICATIONS_READ"])),
    responses((status = 200, description = "The templates", body = TemplateList)))]
pub async fn templates(cx: Ctx<perm::NotificationsRead>) -> Result<Json<TemplateList>, Problem> {
    Ok(Json(TemplateList {
        items: tenant_templates::list(&cx).await?,
    }))
}

/// One kind's templates in use.
#[utoipa::path(get, path = "/api/notifications/templates/{kind}", tag = "notifications",
    params(("kind" = EmailKind, Path, description = "The message kind")),
    security(("bearer" = ["NOTIFICATIONS_READ"])),
    responses((status = 200, description = "The templates", body = TemplateView),
        (status = 404, description = "No such message kind")))]
pub async fn template(
    cx: Ctx<perm::NotificationsRead>,
    Path(kind): Path<String>,
) -> Result<Json<TemplateView>, Problem> {
    Ok(Json(tenant_templates::get(&cx, kind_of(&kind)?).await?))
}

/// Use the tenant's own templates for a kind. They must render a sample
/// of the kind (any name it does not give is an error) within a budget;
/// the answer holds that sample.
#[utoipa::path(put, path = "/api/notifications/templates/{kind}", tag = "notifications",
    params(("kind" = EmailKind, Path, description = "The message kind")),
    request_body = TemplateBody,
    security(("bearer" = ["SETTINGS_WRITE"])),
    responses((status = 200, description = "Stored", body = TemplateSaved),
        (status = 404, description = "No such message kind"),
        (status = 409, description = "A security notice: it always uses the built-in templates (`customizable: false`)"),
        (status = 422, description = "A template does not render (field `subject`, `text` or `html`)")))]
pub async fn put_template(
    cx: Ctx<perm::SettingsWrite>,
    Path(kind): Path<String>,
    ApiJson(body): ApiJson<TemplateBody>,
) -> Result<Json<TemplateSaved>, Problem> {
    let sources = Sources {
        subject: body.subject,
        text: body.text,
        html: body.html,
    };
    let (template, preview) = tenant_templates::put(&cx, kind_of(&kind)?, sources).await?;
    Ok(Json(TemplateSaved { template, preview }))
}

/// Go back to the built-in templates of a kind.
#[utoipa::path(delete, path = "/api/notifications/templates/{kind}", tag = "notifications",
    params(("kind" = EmailKind, Path, description = "The message kind")),
    security(("bearer" = ["SETTINGS_WRITE"])),
    responses((status = 200, description = "The built-in templates, now in use", body = TemplateView),
        (status = 404, description = "No such message kind")))]
pub async fn reset_template(
    cx: Ctx<perm::SettingsWrite>,
    Path(kind): Path<String>,
) -> Result<Json<TemplateView>, Problem> {
    Ok(Json(tenant_templates::reset(&cx, kind_of(&kind)?).await?))
}

/// The record, and where mPanel published it.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct DkimPublished {
    pub record: DkimRecordView,
    /// The tenant's DNS zone the TXT record was written to, when mPanel
    /// serves the sender's domain; `null`: publish it yourself.
    pub published_in_zone: Option<String>,
}

/// Make the tenant's DKIM key for its sender's domain if it has none, and
/// publish its TXT record when the domain is in one of the tenant's DNS
/// zones. Safe to repeat (after changing the sender, it makes the new
/// domain's key).
#[utoipa::path(post, path = "/api/notifications/dkim", tag = "notifications",
    security(("bearer" = ["SETTINGS_WRITE"])),
    responses((status = 200, description = "The key's record", body = DkimPublished),
        (status = 409, description = "The zone's DNS server is not in the inventory"),
        (status = 422, description = "The zone refuses the record (a CNAME at its name)"),
        (status = 503, description = "The zone's DNS server is unreachable (`not_ready`; the key is made: repeat to publish)")))]
pub async fn publish_dkim(
    State(state): State<AppState>,
    cx: Ctx<perm::SettingsWrite>,
) -> Result<Json<DkimPublished>, Problem> {
    let key = dkim::ensure(&cx, &state.mail).await?;
    let zone = mpanel_provision::dkim_publish::publish(&cx, state.secrets.as_ref(), &key).await?;
    Ok(Json(DkimPublished {
        record: dkim::record_view(&key),
        published_in_zone: zone,
    }))
}
