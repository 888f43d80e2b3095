//! `/api/billing/subscriptions`: create, list, change plan and addons,
//! cancel, suspend, resume, record usage; `/api/billing/usage/batch` for
//! metering systems; `/api/me/subscriptions` for the customer.

use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mpanel_domain::billing::subscription::SubscriptionStatus;
use mpanel_domain::{CustomerId, ProductId, SubscriptionId};
use mpanel_services::billing::autopay::{CardInput, CardSaved};
use mpanel_services::billing::plan_change::{self, UpdateInput, UpdateView};
use mpanel_services::billing::subscriptions::{
    self, CancelInput, CreateInput, SubscriptionView, Transition,
};
use mpanel_services::billing::usage::{self, BatchInput, Ingested, UsageInput};
use mpanel_services::{Context, customers};
use mpanel_store::subscriptions::SubscriptionFilter;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::Problem;
use crate::caller::{Ctx, perm};
use crate::idempotency::{self, Idempotent};
use crate::json::ApiJson;
use crate::query::{self, Listing, Page, PageParams};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListFilter {
    #[param(value_type = Option<uuid::Uuid>)]
    customer_id: Option<CustomerId>,
    #[serde(default, deserialize_with = "query::from_str_opt")]
    #[param(value_type = Option<SubscriptionStatus>, inline)]
    status: Option<SubscriptionStatus>,
    #[param(value_type = Option<uuid::Uuid>)]
    product_id: Option<ProductId>,
}

fn sub_id(raw: &str) -> Result<SubscriptionId, Problem> {
    query::path_id(raw, "subscription")
}

pub(crate) async fn list_for(
    cx: &Context,
    list: Listing<ListFilter>,
    customer: Option<CustomerId>,
) -> Result<Page<SubscriptionView>, Problem> {
    let Listing { paging, filter: q } = list;
    let filter = SubscriptionFilter {
        customer: customer.or(q.customer_id),
        status: q.status,
        product: q.product_id,
        after: paging.after::<SubscriptionId>()?,
        limit: paging.fetch(),
    };
    let fetched = subscriptions::list(cx, &filter).await?;
    Ok(paging.page(fetched, |s| s.id.to_string(), |s| s))
}

/// The tenant's subscriptions, oldest first.
#[utoipa::path(get, path = "/api/billing/subscriptions", tag = "billing", params(PageParams, ListFilter),
    security(("bearer" = ["SUBSCRIPTIONS_READ"])),
    responses((status = 200, description = "A page of subscriptions", body = Page<SubscriptionView>)))]
pub async fn list(
    cx: Ctx<perm::SubscriptionsRead>,
    list: Listing<ListFilter>,
) -> Result<Json<Page<SubscriptionView>>, Problem> {
    Ok(Json(list_for(&cx, list, None).await?))
}

/// A subscription (`Idempotency-Key` honoured). Without a trial, its first
/// invoice is issued at once.
#[utoipa::path(post, path = "/api/billing/subscriptions", tag = "billing", request_body = CreateInput,
    security(("bearer" = ["SUBSCRIPTIONS_WRITE"])),
    responses((status = 201, description = "The subscription", body = SubscriptionView),
        (status = 409, description = "A request with the same Idempotency-Key is still being processed (`request_in_flight`)"),
        (status = 422, description = "Unknown customer or product, no price for the period, or the Idempotency-Key was used for another request (`idempotency_key_reused`)")))]
pub async fn create(
    cx: Ctx<perm::SubscriptionsWrite>,
    request: Idempotent<CreateInput>,
) -> Result<Response, Problem> {
    let (cx, body) = (&*cx, &request.body);
    idempotency::run(cx, &request, |hold| async move {
        subscriptions::create(cx, body.clone(), hold.as_ref()).await
    })
    .await
}

/// One subscription.
#[utoipa::path(get, path = "/api/billing/subscriptions/{id}", tag = "billing",
    params(("id" = String, Path)), security(("bearer" = ["SUBSCRIPTIONS_READ"])),
    responses((status = 200, description = "The subscription", body = SubscriptionView),
        (status = 404, description = "No such subscription")))]
pub async fn get(
    cx: Ctx<perm::SubscriptionsRead>,
    Path(id): Path<String>,
) -> Result<Json<SubscriptionView>, Problem> {
    let id = sub_id(&id)?;
    Ok(Json(subscriptions::get(&cx, id).await?))
}

/// Change the plan, the addons or auto-renew. A plan change inside a paid
/// period is prorated: `{product_id?, addons?: [{product_id}], auto_renew?}`.
#[utoipa::path(put, path = "/api/billing/subscriptions/{id}", tag = "billing", request_body = UpdateInput,
    params(("id" = String, Path)), security(("bearer" = ["SUBSCRIPTIONS_WRITE"])),
    responses((status = 200, description = "The subscription, with `proration` after a plan change", body = UpdateView),
        (status = 409, description = "Cancelled or expired")))]
pub async fn update(
    cx: Ctx<perm::SubscriptionsWrite>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateInput>,
) -> Result<Json<UpdateView>, Problem> {
    let id = sub_id(&id)?;
    Ok(Json(plan_change::update(&cx, id, body).await?))
}

async fn transition(
    cx: &Context,
    id: &str,
    what: Transition,
) -> Result<Json<SubscriptionView>, Problem> {
    let id = sub_id(id)?;
    Ok(Json(subscriptions::transition(cx, id, what).await?))
}

/// Cancel: `{mode: IMMEDIATE | END_OF_TERM}`.
#[utoipa::path(post, path = "/api/billing/subscriptions/{id}/cancel", tag = "billing", request_body = CancelInput,
    params(("id" = String, Path)), security(("bearer" = ["SUBSCRIPTIONS_WRITE"])),
    responses((status = 200, description = "The subscription", body = SubscriptionView),
        (status = 409, description = "Not allowed from its status (`invalid_transition`)")))]
pub async fn cancel(
    cx: Ctx<perm::SubscriptionsWrite>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CancelInput>,
) -> Result<Json<SubscriptionView>, Problem> {
    transition(&cx, &id, Transition::Cancel(body.mode)).await
}

/// Suspend (staff decision; its services are suspended too).
#[utoipa::path(post, path = "/api/billing/subscriptions/{id}/suspend", tag = "billing",
    params(("id" = String, Path)), security(("bearer" = ["SUBSCRIPTIONS_WRITE"])),
    responses((status = 200, description = "The subscription", body = SubscriptionView),
        (status = 409, description = "Not ACTIVE")))]
pub async fn suspend(
    cx: Ctx<perm::SubscriptionsWrite>,
    Path(id): Path<String>,
) -> Result<Json<SubscriptionView>, Problem> {
    transition(&cx, &id, Transition::Suspend).await
}

/// Resume a suspended subscription and its services.
#[utoipa::path(post, path = "/api/billing/subscriptions/{id}/resume", tag = "billing",
    params(("id" = String, Path)), security(("bearer" = ["SUBSCRIPTIONS_WRITE"])),
    responses((status = 200, description = "The subscription", body = SubscriptionView),
        (status = 409, description = "Not SUSPENDED")))]
pub async fn resume(
    cx: Ctx<perm::SubscriptionsWrite>,
    Path(id): Path<String>,
) -> Result<Json<SubscriptionView>, Problem> {
    transition(&cx, &id, Transition::Resume).await
}

fn accepted(out: Ingested) -> Response {
    (StatusCode::ACCEPTED, Json(out)).into_response()
}

/// Record usage: `{metric, quantity, occurred_at, idempotency_key}`; a key
/// seen before is ignored.
#[utoipa::path(post, path = "/api/billing/subscriptions/{id}/usage", tag = "billing", request_body = UsageInput,
    params(("id" = String, Path)), security(("bearer" = ["USAGE_WRITE"])),
    responses((status = 202, description = "What was stored", body = Ingested),
        (status = 409, description = "The subscription is cancelled or expired"),
        (status = 422, description = "Wrong metric, negative quantity, future time")))]
pub async fn record_usage(
    cx: Ctx<perm::UsageWrite>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UsageInput>,
) -> Result<Response, Problem> {
    let id = sub_id(&id)?;
    let out = usage::record(&cx, id, body).await?;
    Ok(accepted(out))
}

/// Record up to 5,000 usage records in one request:
/// `{records: [{subscription_id, metric, quantity, occurred_at, idempotency_key}]}`.
/// One bad record refuses the batch and names it.
#[utoipa::path(post, path = "/api/billing/usage/batch", tag = "billing", request_body = BatchInput,
    security(("bearer" = ["USAGE_WRITE"])),
    responses((status = 202, description = "What was stored", body = Ingested),
        (status = 409, description = "A record's subscription is cancelled or expired"),
        (status = 422, description = "A record is not valid (`field` names it)")))]
pub async fn record_batch(
    cx: Ctx<perm::UsageWrite>,
    ApiJson(body): ApiJson<BatchInput>,
) -> Result<Response, Problem> {
    let out = usage::record_batch(&cx, body).await?;
    Ok(accepted(out))
}

/// The signed-in customer's subscriptions.
#[utoipa::path(get, path = "/api/me/subscriptions", tag = "billing", params(PageParams, ListFilter),
    security(("bearer" = ["SELF_READ"])),
    responses((status = 200, description = "A page of subscriptions", body = Page<SubscriptionView>)))]
pub async fn my_list(
    cx: Ctx<perm::SelfRead>,
    list: Listing<ListFilter>,
) -> Result<Json<Page<SubscriptionView>>, Problem> {
    // A caller without a customer record gets an empty page; a bad query
    // was already refused by the extractor, for everyone alike.
    let Some(customer) = customers::own(&cx).await? else {
        return Ok(Json(Page::empty()));
    };
    Ok(Json(list_for(&cx, list, Some(customer)).await?))
}

/// Save (or, with nulls, forget) the customer's Stripe card for auto-pay:
/// `{stripe_customer_id: "cus_…", stripe_payment_method_id: "pm_…"}`.
/// Invoices the billing run issues to the customer are then charged
/// off-session.
#[utoipa::path(put, path = "/api/billing/customers/{id}/payment-method", tag = "billing", request_body = CardInput,
    params(("id" = String, Path)), security(("bearer" = ["PAYMENTS_WRITE"])),
    responses((status = 200, description = "Whether auto-pay is on", body = CardSaved),
        (status = 404, description = "No such customer")))]
pub async fn payment_method(
    cx: Ctx<perm::PaymentsWrite>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CardInput>,
) -> Result<Json<CardSaved>, Problem> {
    let id: CustomerId = query::path_id(&id, "customer")?;
    Ok(Json(
        mpanel_services::billing::autopay::set_card(&cx, id, body).await?,
    ))
}
