//! `POST /api/orders`: the marketing site's signed, idempotent webhook;
//! `/api/orders`, `/api/me/orders`: order status for staff and customers.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mpanel_domain::jobs::JobState;
use mpanel_domain::orders::OrderStatus;
use mpanel_domain::orders::domain_control::{VerificationMethod, VerificationStatus};
use mpanel_domain::{CustomerId, OrderId, SubscriptionId};
use mpanel_services::Context;
use mpanel_services::orders::{self, OrderRows};
use mpanel_store::domain_verifications::DomainVerification;
use mpanel_store::orders::{OrderFilter, OrderItemRecord, OrderRecord, OrderStepRecord};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use crate::caller::{Ctx, perm};
use crate::idempotency::{self, Start};
use crate::middleware::RequestId;
use crate::query::{self, Listing, NoFilter, Page, PageParams};
use crate::signed_order::SignedOrder;
use crate::{AppState, Problem};

/// Place an order from the marketing site: names the tenant
/// (`X-Mpanel-Tenant`), signed (`X-Mpanel-Signature: t=…,v1=…`, HMAC-SHA256
/// of `"<t>.<Idempotency-Key>.<body>"` with the tenant's webhook secret,
/// ±300 s), and
/// idempotent (`Idempotency-Key`: a retry gets the first answer).
#[utoipa::path(post, path = "/api/orders", tag = "orders", request_body = mpanel_services::orders::OrderInput,
    params(
        ("X-Mpanel-Tenant" = String, Header, description = "The tenant's slug"),
        ("X-Mpanel-Signature" = String, Header, description = "t=<unix seconds>,v1=<hex HMAC-SHA256>"),
        ("Idempotency-Key" = String, Header, description = "Unique per order attempt: 1 to 255 visible characters, no `.`", pattern = "^[!-\\-/-~]{1,255}$"),
    ),
    responses(
        (status = 201, description = "Placed (a retry answers the same, with Idempotent-Replayed: true)", body = mpanel_services::orders::OrderPlaced),
        (status = 401, description = "Bad or stale signature, or an unknown tenant (the same answer: `invalid_signature`)"),
        (status = 403, description = "The tenant is suspended (`tenant_suspended`; told only to a valid signature)"),
        (status = 413, description = "Body over 256 KiB"),
        (status = 409, description = "A request with this key is still running"),
        (status = 422, description = "Invalid order, a Stripe payment Stripe does not confirm, or the key was used for another body"),
        (status = 503, description = "Stripe could not be asked to confirm the payment (`not_ready`); retry with the same key"),
    ))]
pub async fn place(
    State(state): State<AppState>,
    request_id: Option<axum::Extension<RequestId>>,
    order: SignedOrder,
) -> Result<Response, Problem> {
    let tenant = &order.tenant;
    let hold = match idempotency::begin(
        &state.store,
        state.clock.now(),
        tenant.id,
        &order.key,
        &order.hash,
    )
    .await?
    {
        Start::Replay(first_answer) => return Ok(first_answer),
        Start::Run(hold) => hold,
    };
    let request_id = request_id.map(|axum::Extension(RequestId(id))| id);
    match orders::place_order(
        &state.store,
        state.clock.as_ref(),
        &state.stripe,
        tenant,
        &order.input,
        &hold,
        request_id,
    )
    .await
    {
        Ok(placed) => Ok((StatusCode::CREATED, Json(placed)).into_response()),
        // Another request took the key over while this one ran: it answers.
        Err(mpanel_services::ServiceError::Store(mpanel_store::StoreError::Conflict(_))) => Err(
            idempotency::in_flight("Another request with this Idempotency-Key took over."),
        ),
        Err(err) => {
            // Nothing was made: let a corrected or later retry run afresh.
            idempotency::release(&state.store, tenant.id, &hold).await;
            Err(err.into())
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderView {
    pub id: String,
    pub customer_id: String,
    pub status: OrderStatus,
    pub currency: String,
    pub total_minor: i64,
    #[schema(value_type = Option<Object>)]
    pub payment: Option<Value>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Only on a single order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<OrderItemView>>,
    /// Only on a single order: for each ordered domain, the proof of
    /// control the tenant's policy may require before it goes live.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain_verifications: Option<Vec<DomainVerificationView>>,
}

/// How to prove control of an ordered domain, and whether it is proven:
/// publish `txt_value` as a TXT record at `txt_name`, or delegate the
/// domain to the provider's name servers.
#[derive(Debug, Serialize, ToSchema)]
pub struct DomainVerificationView {
    pub domain: String,
    pub subscription_id: String,
    pub status: VerificationStatus,
    /// Once verified.
    pub method: Option<VerificationMethod>,
    /// `_mpanel-challenge.<domain>`.
    pub txt_name: String,
    pub txt_value: String,
    /// What the last check saw.
    pub last_result: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub checked_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub verified_at: Option<OffsetDateTime>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderItemView {
    pub id: String,
    pub product_id: String,
    pub subscription_id: String,
    pub period: String,
    pub domain: Option<String>,
    pub amount_minor: i64,
    pub setup_fee_minor: i64,
    pub steps: Vec<StepView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StepView {
    /// e.g. `provision.dns_zone`.
    pub step: String,
    pub job_id: String,
    /// The job's state: PENDING, RUNNING, COMPLETED, FAILED, DEAD, CANCELLED;
    /// or WAITING_FOR_VERIFICATION while the job waits for the domain's
    /// proof of control.
    pub state: Option<String>,
    pub attempts: Option<i32>,
    pub last_error: Option<String>,
}

pub(crate) fn summary(o: OrderRecord) -> OrderView {
    OrderView {
        id: o.id.to_string(),
        customer_id: o.customer_id.to_string(),
        status: o.status,
        currency: o.currency,
        total_minor: o.total_minor,
        payment: o.payment,
        created_at: o.created_at,
        items: None,
        domain_verifications: None,
    }
}

async fn detailed(cx: &Context, o: OrderRecord) -> Result<OrderView, Problem> {
    let mut views = detailed_many(cx, vec![o]).await?;
    views
        .pop()
        .ok_or_else(|| Problem::not_found("No such order."))
}

/// `orders` with their items, steps and proofs of domain control, in
/// three queries whatever their number.
async fn detailed_many(cx: &Context, orders: Vec<OrderRecord>) -> Result<Vec<OrderView>, Problem> {
    let OrderRows {
        items,
        steps,
        proofs,
    } = orders::rows_of(cx, &orders).await?;
    let mut items_of: std::collections::HashMap<OrderId, Vec<OrderItemRecord>> = Default::default();
    for (order, item) in items {
        items_of.entry(order).or_default().push(item);
    }
    Ok(orders
        .into_iter()
        .map(|o| {
            let items = items_of.remove(&o.id).unwrap_or_default();
            view_of(o, items, &steps, &proofs)
        })
        .collect())
}

/// One order's view from its rows (`steps` and `proofs` may hold other
/// orders' too).
fn view_of(
    o: OrderRecord,
    items: Vec<OrderItemRecord>,
    steps: &[OrderStepRecord],
    proofs: &[DomainVerification],
) -> OrderView {
    use mpanel_domain::orders::domain_control::{
        WAITING_FOR_VERIFICATION, challenge_name, step_waits_for_proof,
    };
    let subscriptions: Vec<SubscriptionId> = items.iter().map(|i| i.subscription_id).collect();
    let proofs: Vec<&DomainVerification> = proofs
        .iter()
        .filter(|v| subscriptions.contains(&v.subscription_id))
        .collect();
    let items = items
        .into_iter()
        .map(|i| {
            let proof = proofs
                .iter()
                .find(|v| v.subscription_id == i.subscription_id);
            OrderItemView {
                steps: steps
                    .iter()
                    .filter(|s| s.order_item_id == i.id)
                    .map(|s| {
                        let pending =
                            matches!(s.job_state, Some(JobState::Pending | JobState::Failed));
                        let waits = proof.is_some_and(|v| {
                            step_waits_for_proof(pending, v.status, v.checked_at.is_some())
                        });
                        StepView {
                            step: s.step.clone(),
                            job_id: s.job_id.to_string(),
                            state: if waits {
                                Some(WAITING_FOR_VERIFICATION.to_owned())
                            } else {
                                s.job_state.map(|st| st.as_str().to_ascii_uppercase())
                            },
                            attempts: s.attempts,
                            last_error: s.last_error.clone(),
                        }
                    })
                    .collect(),
                id: i.id.to_string(),
                product_id: i.product_id.to_string(),
                subscription_id: i.subscription_id.to_string(),
                period: i.period,
                domain: i.domain,
                amount_minor: i.amount_minor,
                setup_fee_minor: i.setup_fee_minor,
            }
        })
        .collect();
    let proofs = proofs
        .into_iter()
        .map(|v| DomainVerificationView {
            txt_name: challenge_name(&v.domain),
            domain: v.domain.clone(),
            subscription_id: v.subscription_id.to_string(),
            status: v.status,
            method: v.method,
            txt_value: v.token.clone(),
            last_result: v.last_result.clone(),
            checked_at: v.checked_at,
            verified_at: v.verified_at,
        })
        .collect();
    let mut view = summary(o);
    view.items = Some(items);
    view.domain_verifications = Some(proofs);
    view
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrderListFilter {
    #[serde(default, deserialize_with = "query::from_str_opt")]
    #[param(value_type = Option<String>, pattern = "^(PENDING_PAYMENT|PAID)$")]
    pub status: Option<OrderStatus>,
    #[param(value_type = Option<uuid::Uuid>)]
    pub customer_id: Option<CustomerId>,
}

/// The tenant's orders, newest first.
#[utoipa::path(get, path = "/api/orders", tag = "orders", params(PageParams, OrderListFilter),
    security(("bearer" = ["ORDERS_READ"])),
    responses((status = 200, description = "A page of orders", body = Page<OrderView>)))]
pub async fn list(
    cx: Ctx<perm::OrdersRead>,
    list: Listing<OrderListFilter>,
) -> Result<Json<Page<OrderView>>, Problem> {
    Ok(Json(list_for(&cx, list).await?))
}

/// A page of orders, for the API and the console.
pub(crate) async fn list_for(
    cx: &mpanel_services::Context,
    list: Listing<OrderListFilter>,
) -> Result<Page<OrderView>, Problem> {
    let paging = &list.paging;
    let filter = OrderFilter {
        customer: list.filter.customer_id,
        status: list.filter.status,
    };
    let fetched = orders::list(cx, filter, paging.after::<OrderId>()?, paging.fetch()).await?;
    Ok(paging.page(fetched, |o| o.id.to_string(), summary))
}

/// One order, with each item's provisioning steps.
#[utoipa::path(get, path = "/api/orders/{id}", tag = "orders",
    params(("id" = String, Path, description = "Order id")),
    security(("bearer" = ["ORDERS_READ"])),
    responses((status = 200, description = "The order", body = OrderView),
        (status = 404, description = "No such order")))]
pub async fn get(
    cx: Ctx<perm::OrdersRead>,
    Path(id): Path<String>,
) -> Result<Json<OrderView>, Problem> {
    let id = query::path_id::<OrderId>(&id, "order")?;
    Ok(Json(order_view(&cx, id).await?))
}

/// One order with each item's provisioning steps, as staff may see it.
pub(crate) async fn order_view(cx: &Context, id: OrderId) -> Result<OrderView, Problem> {
    let order = orders::get(cx, id).await?;
    let mut view = detailed(cx, order).await?;
    // Node addresses, ports, Unix users and paths are the platform
    // operator's; a tenant's staff see what failed and why without them.
    if cx.principal.role() != mpanel_domain::identity::Role::SuperAdmin {
        for step in view
            .items
            .iter_mut()
            .flatten()
            .flat_map(|i| i.steps.iter_mut())
        {
            step.last_error = step
                .last_error
                .as_deref()
                .map(mpanel_domain::provisioning::error_text::for_tenant_staff);
        }
    }
    Ok(view)
}

/// Your own orders, with each item's provisioning steps.
#[utoipa::path(get, path = "/api/me/orders", tag = "orders", params(PageParams),
    security(("bearer" = ["SELF_READ"])),
    responses((status = 200, description = "Your orders", body = Page<OrderView>)))]
pub async fn mine(
    cx: Ctx<perm::SelfRead>,
    list: Listing<NoFilter>,
) -> Result<Json<Page<OrderView>>, Problem> {
    let paging = &list.paging;
    let before = paging.after::<OrderId>()?;
    let Some(fetched) = orders::mine(&cx, before, paging.fetch()).await? else {
        return Ok(Json(Page::empty()));
    };
    let page = paging.page(fetched, |o| o.id.to_string(), |o| o);
    let mut items = detailed_many(&cx, page.items).await?;
    // A driver's error text is for staff, not customers.
    for step in items
        .iter_mut()
        .flat_map(|view| view.items.iter_mut().flatten())
        .flat_map(|item| item.steps.iter_mut())
    {
        step.last_error = None;
    }
    Ok(Json(Page {
        items,
        next_cursor: page.next_cursor,
    }))
}
