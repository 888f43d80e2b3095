//! `/api/hosting/accounts` and `/api/mail/accounts`: what subscriptions
//! run, and the lifecycle actions staff take on them (queued as jobs).

use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use mpanel_domain::{CustomerId, ResourceId};
use mpanel_services::Context;
use mpanel_services::hosting::{self, AccountView, Action, HostingAccountView};
use mpanel_store::provisioning::ResourceKind;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::Problem;
use crate::caller::{Ctx, perm};
use crate::json::ApiJson;
use crate::query::ApiQuery;

#[derive(Debug, Serialize, ToSchema)]
pub struct Accounts {
    pub items: Vec<AccountView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HostingAccounts {
    pub items: Vec<HostingAccountView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Queued {
    /// The job doing it (`GET /api/ops/jobs/{id}` for operators).
    pub job_id: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[param(value_type = Option<uuid::Uuid>)]
    customer_id: Option<CustomerId>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordBody {
    /// 10 to 200 characters, no control characters.
    #[schema(pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]{10,200}$")]
    password: String,
}

fn id_of(raw: &str, what: &str) -> Result<ResourceId, Problem> {
    crate::query::path_id(raw, what)
}

/// The tenant's hosting accounts, with each one's measured disk use.
#[utoipa::path(get, path = "/api/hosting/accounts", tag = "hosting", params(ListQuery),
    security(("bearer" = ["HOSTING_READ"])),
    responses((status = 200, description = "Hosting accounts", body = HostingAccounts)))]
pub async fn list_hosting(
    cx: Ctx<perm::HostingRead>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<HostingAccounts>, Problem> {
    let items = hosting::list_hosting(&cx, q.customer_id).await?;
    Ok(Json(HostingAccounts { items }))
}

/// The tenant's mailboxes.
#[utoipa::path(get, path = "/api/mail/accounts", tag = "hosting", params(ListQuery),
    security(("bearer" = ["HOSTING_READ"])),
    responses((status = 200, description = "Mailboxes", body = Accounts)))]
pub async fn list_mail(
    cx: Ctx<perm::HostingRead>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Accounts>, Problem> {
    let items = hosting::list(&cx, ResourceKind::MailAccount, q.customer_id).await?;
    Ok(Json(Accounts { items }))
}

async fn act(
    cx: &Context,
    id: &str,
    action: Action,
) -> Result<(StatusCode, Json<Queued>), Problem> {
    let job = hosting::request(cx, id_of(id, "hosting account")?, action).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Queued {
            job_id: job.to_string(),
        }),
    ))
}

/// Suspend: the site answers 503 and its mailboxes refuse logins.
#[utoipa::path(post, path = "/api/hosting/accounts/{id}/suspend", tag = "hosting",
    params(("id" = String, Path)), security(("bearer" = ["HOSTING_WRITE"])),
    responses((status = 202, description = "Queued", body = Queued),
        (status = 409, description = "Not from its status (`invalid_transition`)")))]
pub async fn suspend(
    cx: Ctx<perm::HostingWrite>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Queued>), Problem> {
    act(&cx, &id, Action::Suspend).await
}

/// Unsuspend: the site and its mailboxes are back.
#[utoipa::path(post, path = "/api/hosting/accounts/{id}/unsuspend", tag = "hosting",
    params(("id" = String, Path)), security(("bearer" = ["HOSTING_WRITE"])),
    responses((status = 202, description = "Queued", body = Queued),
        (status = 409, description = "Not suspended")))]
pub async fn unsuspend(
    cx: Ctx<perm::HostingWrite>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Queued>), Problem> {
    act(&cx, &id, Action::Unsuspend).await
}

/// Terminate: mailboxes deleted, the site archived then removed, the zone
/// deleted.
#[utoipa::path(post, path = "/api/hosting/accounts/{id}/terminate", tag = "hosting",
    params(("id" = String, Path)), security(("bearer" = ["HOSTING_WRITE"])),
    responses((status = 202, description = "Queued", body = Queued),
        (status = 409, description = "Already terminated")))]
pub async fn terminate(
    cx: Ctx<perm::HostingWrite>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Queued>), Problem> {
    act(&cx, &id, Action::Terminate).await
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MailboxQueued {
    pub mailbox: AccountView,
    pub job_id: String,
}

/// A further mailbox of an active subscription, within its plan's count
/// (`{subscription_id, local_part, password}`); made by a queued job.
#[utoipa::path(post, path = "/api/mail/accounts", tag = "hosting", request_body = hosting::NewMailbox,
    security(("bearer" = ["HOSTING_WRITE"])),
    responses((status = 202, description = "Recorded and queued", body = MailboxQueued),
        (status = 404, description = "No such subscription"),
        (status = 409, description = "The plan's mailboxes are all in use, or the address exists")))]
pub async fn create_mail(
    cx: Ctx<perm::HostingWrite>,
    ApiJson(body): ApiJson<hosting::NewMailbox>,
) -> Result<(StatusCode, Json<MailboxQueued>), Problem> {
    let (mailbox, job) = hosting::create_mailbox(&cx, body).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(MailboxQueued {
            mailbox,
            job_id: job.to_string(),
        }),
    ))
}

/// A mailbox's new password (hashed before it is queued).
#[utoipa::path(post, path = "/api/mail/accounts/{id}/password", tag = "hosting",
    params(("id" = String, Path)), request_body = PasswordBody,
    security(("bearer" = ["HOSTING_WRITE"])),
    responses((status = 202, description = "Queued", body = Queued),
        (status = 409, description = "The mailbox is deleted"),
        (status = 422, description = "Too short")))]
pub async fn mail_password(
    cx: Ctx<perm::HostingWrite>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PasswordBody>,
) -> Result<(StatusCode, Json<Queued>), Problem> {
    let job = hosting::set_mail_password(&cx, id_of(&id, "mailbox")?, &body.password).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Queued {
            job_id: job.to_string(),
        }),
    ))
}
