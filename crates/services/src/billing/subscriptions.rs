//! Subscriptions: what staff create, list, cancel, suspend and resume, what
//! customers see of theirs, when billing starts (activation, or the end of
//! a trial), and the restoration of services when an overdue invoice is
//! paid.

use mpanel_domain::billing::calendar::{Cycle, Schedule};
use mpanel_domain::billing::subscription::{CancelMode, SubscriptionStatus, SuspendReason};
use mpanel_domain::catalog::ProvisioningTemplate;
use mpanel_domain::catalog::{Currency, Period, PriceRequest};
use mpanel_domain::webhooks::EventType;
use mpanel_domain::{CustomerId, OrderId, ProductId, SubscriptionId, TenantId};
use mpanel_store::billing::DueSubscription;
use mpanel_store::subscriptions::{SubscriptionFilter, SubscriptionRecord};
use mpanel_store::{TenantRecord, Tx};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;

use super::final_usage;
use super::run::{self, Addon, RunContext, RunReport, addons};
use super::service_actions::{self, ServiceAction};
use super::settings;
use crate::actor::Change;
use crate::catalog::quote_from;
use crate::idempotency::{self, IdempotencyHold};
use crate::{Actor, Context, ServiceError};

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct SubscriptionView {
    pub id: SubscriptionId,
    pub customer_id: CustomerId,
    pub product_id: ProductId,
    pub period: String,
    pub currency: String,
    /// One period of the plan, addons excluded.
    pub amount_minor: i64,
    pub addons: Vec<Addon>,
    pub status: SubscriptionStatus,
    /// The statuses it may move to from here.
    pub allowed_transitions: Vec<SubscriptionStatus>,
    pub suspend_reason: Option<String>,
    pub external_ref: Option<String>,
    pub auto_renew: bool,
    pub cancel_at_period_end: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    pub trial_end: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub current_period_start: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub current_period_end: Option<OffsetDateTime>,
    /// When the next invoice is due to be issued.
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_bill_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub cancelled_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// The order that made it (from the marketing site, or staff for a
    /// product that provisions), when one did.
    pub order_id: Option<OrderId>,
    /// Its provisioning steps, as on the order: `step` and the job's
    /// `state` (PENDING, RUNNING, COMPLETED, FAILED, DEAD, CANCELLED).
    pub provisioning: Vec<ProvisioningStep>,
}

/// One provisioning step of a subscription.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct ProvisioningStep {
    pub step: String,
    pub state: Option<String>,
}

pub fn view(s: SubscriptionRecord) -> SubscriptionView {
    let allowed = s.status.next().to_vec();
    SubscriptionView {
        addons: addons(&s.addons),
        id: s.id,
        customer_id: s.customer_id,
        product_id: s.product_id,
        period: s.period,
        currency: s.currency,
        amount_minor: s.amount_minor,
        status: s.status,
        allowed_transitions: allowed,
        suspend_reason: s.suspend_reason,
        external_ref: s.external_ref,
        auto_renew: s.auto_renew,
        cancel_at_period_end: s.cancel_at_period_end,
        trial_end: s.trial_end,
        current_period_start: s.current_period_start,
        current_period_end: s.current_period_end,
        next_bill_at: s.next_bill_at,
        cancelled_at: s.cancelled_at,
        created_at: s.created_at,
        order_id: None,
        provisioning: Vec::new(),
    }
}

/// `views` with the order that made each and its provisioning steps (two
/// queries whatever their number).
async fn with_orders(
    cx: &Context,
    mut views: Vec<SubscriptionView>,
) -> Result<Vec<SubscriptionView>, ServiceError> {
    let tenant = cx.tenant_id();
    let ids: Vec<SubscriptionId> = views.iter().map(|v| v.id).collect();
    let items = cx.store.order_items_of_subscriptions(tenant, &ids).await?;
    let orders: Vec<OrderId> = items.iter().map(|(o, _)| *o).collect();
    let steps = cx.store.order_steps_of(tenant, &orders).await?;
    for v in &mut views {
        let Some((order, item)) = items.iter().find(|(_, i)| i.subscription_id == v.id) else {
            continue;
        };
        v.order_id = Some(*order);
        v.provisioning = steps
            .iter()
            .filter(|st| st.order_item_id == item.id)
            .map(|st| ProvisioningStep {
                step: st.step.clone(),
                state: st.job_state.map(|j| j.as_str().to_ascii_uppercase()),
            })
            .collect();
    }
    Ok(views)
}

pub async fn get(cx: &Context, id: SubscriptionId) -> Result<SubscriptionView, ServiceError> {
    let store = &cx.store;
    let tenant = cx.tenant_id();
    let one = store
        .subscription(tenant, id)
        .await?
        .map(view)
        .ok_or_else(ServiceError::missing("subscription"))?;
    let mut views = with_orders(cx, vec![one]).await?;
    views
        .pop()
        .ok_or_else(ServiceError::missing("subscription"))
}

pub async fn list(
    cx: &Context,
    filter: &SubscriptionFilter,
) -> Result<Vec<SubscriptionView>, ServiceError> {
    let store = &cx.store;
    let tenant = cx.tenant_id();
    let views = store
        .list_subscriptions(tenant, filter)
        .await?
        .into_iter()
        .map(view)
        .collect();
    with_orders(cx, views).await
}

/// An addon to attach: a product priced for the subscription's period and
/// currency.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddonInput {
    pub product_id: ProductId,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInput {
    pub customer_id: CustomerId,
    pub product_id: ProductId,
    pub period: Period,
    /// The tenant's default currency when left out.
    pub currency: Option<String>,
    /// When the service starts; now when left out.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub start_at: Option<OffsetDateTime>,
    /// Days free before the first invoice.
    #[serde(default)]
    pub trial_days: u32,
    #[serde(default)]
    pub addons: Vec<AddonInput>,
    pub auto_renew: Option<bool>,
    /// The resource it runs, for a service that already runs (an import):
    /// the subscription is then ACTIVE at once and nothing is provisioned.
    pub external_ref: Option<String>,
    /// For a product that provisions: the domain, as an order item takes
    /// it (normalised, free on the platform).
    #[schema(max_length = 253)]
    pub domain: Option<String>,
    /// For a product that provisions: what an order item takes
    /// (`mailbox_password`, hashed on arrival).
    #[schema(value_type = Option<Object>)]
    pub options: Option<serde_json::Value>,
    /// For a product that provisions: queue the provisioning now, before
    /// the first invoice is paid (dunning suspends it if it stays unpaid).
    #[serde(default)]
    pub provision_before_payment: bool,
}

/// A product's name, per-period price and usage block, as billing needs it.
pub(crate) struct Priced {
    pub name: String,
    pub billing_model: String,
    pub usage: Option<serde_json::Value>,
    pub amount_minor: i64,
}

/// The product, priced for the period and currency.
pub(crate) async fn price(
    tx: &mut Tx,
    tenant: TenantId,
    product: ProductId,
    period: Period,
    currency: Currency,
    field: &'static str,
) -> Result<Priced, ServiceError> {
    let id = product;
    let record = tx
        .product(tenant, id)
        .await?
        .ok_or_else(|| ServiceError::invalid(field, "no such product"))?;
    if record.archived_at.is_some() {
        return Err(ServiceError::invalid(field, "the product is archived"));
    }
    let rules = tx.prices_of(tenant, id).await?;
    let request = PriceRequest {
        period,
        currency,
        region: None,
        tenant: Some(tenant),
    };
    let quote = quote_from(&record, &rules, &request)
        .map_err(|e| ServiceError::invalid(field, e.to_string()))?;
    Ok(Priced {
        name: record.fields.name,
        billing_model: record.fields.billing_model.as_str().to_owned(),
        usage: record
            .fields
            .usage
            .as_ref()
            .and_then(|u| serde_json::to_value(u).ok()),
        amount_minor: quote.rule.amount_minor,
    })
}

pub(crate) async fn price_addons(
    tx: &mut Tx,
    tenant: TenantId,
    inputs: &[AddonInput],
    period: Period,
    currency: Currency,
) -> Result<Vec<Addon>, ServiceError> {
    if inputs.len() > 20 {
        return Err(ServiceError::invalid("addons", "at most 20 addons"));
    }
    let mut out = Vec::with_capacity(inputs.len());
    for a in inputs {
        let priced = price(tx, tenant, a.product_id, period, currency, "addons").await?;
        out.push(Addon {
            product_id: a.product_id,
            name: priced.name,
            amount_minor: priced.amount_minor,
        });
    }
    Ok(out)
}

fn cycle_of(period: Period) -> Result<Cycle, ServiceError> {
    Cycle::from_period(period).ok_or_else(|| {
        ServiceError::invalid("period", "a subscription renews: HOURLY, MONTHLY or YEARLY")
    })
}

/// The input's own checks (nothing read yet); answers its currency, the
/// tenant's default unless it names one.
pub(crate) fn check_create(
    tenant: &TenantRecord,
    input: &CreateInput,
) -> Result<Currency, ServiceError> {
    cycle_of(input.period)?;
    let currency = Currency::parse(
        input
            .currency
            .as_deref()
            .unwrap_or(&tenant.default_currency),
    )
    .map_err(|m| ServiceError::invalid("currency", m))?;
    if input.trial_days > 366 {
        return Err(ServiceError::invalid("trial_days", "at most 366 days"));
    }
    if input.external_ref.as_ref().is_some_and(|r| r.len() > 200) {
        return Err(ServiceError::invalid(
            "external_ref",
            "at most 200 characters",
        ));
    }
    Ok(currency)
}

/// The customer must be the tenant's; the plan and its addons priced for
/// the period and currency, in `tx`.
async fn price_for(
    tx: &mut Tx,
    tenant: &TenantRecord,
    input: &CreateInput,
    currency: Currency,
) -> Result<(Priced, Vec<Addon>), ServiceError> {
    tx.customer(tenant.id, input.customer_id)
        .await?
        .ok_or_else(|| ServiceError::invalid("customer_id", "no such customer"))?;
    let plan = price(
        tx,
        tenant.id,
        input.product_id,
        input.period,
        currency,
        "product_id",
    )
    .await?;
    let addons = price_addons(tx, tenant.id, &input.addons, input.period, currency).await?;
    Ok((plan, addons))
}

/// Whether the subscription goes the way of an order: its product makes
/// a site, mailboxes or a CloudPod and staff did
/// not name a service that already runs (`external_ref`: an import, kept
/// as before). The fields only that way takes are refused otherwise.
async fn provisions(cx: &Context, input: &CreateInput) -> Result<bool, ServiceError> {
    let Some(product) = cx.store.product(cx.tenant_id(), input.product_id).await? else {
        return Err(ServiceError::invalid("product_id", "no such product"));
    };
    let makes = matches!(
        product.fields.template,
        ProvisioningTemplate::Hosting { .. }
            | ProvisioningTemplate::Email { .. }
            | ProvisioningTemplate::CloudPod { .. }
    );
    if makes && input.external_ref.is_none() {
        return Ok(true);
    }
    let only = |field: &'static str| {
        ServiceError::invalid(
            field,
            "only for a product that provisions a site or mailboxes, without external_ref",
        )
    };
    if input.domain.is_some() {
        return Err(only("domain"));
    }
    if input.options.is_some() {
        return Err(only("options"));
    }
    if input.provision_before_payment {
        return Err(only("provision_before_payment"));
    }
    Ok(false)
}

/// `POST /api/billing/subscriptions`: an active subscription. Without a
/// trial its first invoice is issued at once (when it starts now or
/// earlier); with one, at the trial's end. For a product that provisions
/// a site or mailboxes it goes the way of an order instead
/// ([`super::staff_orders`]).
pub async fn create(
    cx: &Context,
    input: CreateInput,
    hold: Option<&IdempotencyHold>,
) -> Result<SubscriptionView, ServiceError> {
    let store = &cx.store;
    let tenant = &cx.tenant;
    let actor = &cx.actor;
    let now = cx.now();
    let currency = check_create(tenant, &input)?;
    if provisions(cx, &input).await? {
        return super::staff_orders::place(cx, &input, currency, hold).await;
    }
    let start = input
        .start_at
        .unwrap_or(now)
        .replace_nanosecond(0)
        .unwrap_or(now);
    let trial_end =
        (input.trial_days > 0).then(|| start + time::Duration::days(input.trial_days.into()));
    // Billing starts when the trial ends (or at the start without one).
    let anchor = trial_end.unwrap_or(start);
    let mut tx = store.begin().await?;
    let (plan, addons) = price_for(&mut tx, tenant, &input, currency).await?;
    let sub = SubscriptionRecord {
        id: SubscriptionId::new(),
        tenant_id: tenant.id,
        customer_id: input.customer_id,
        product_id: input.product_id,
        period: input.period.as_str().to_owned(),
        currency: currency.code().to_owned(),
        amount_minor: plan.amount_minor,
        status: SubscriptionStatus::Active,
        external_ref: input.external_ref,
        anchor_at: Some(anchor),
        next_period: 0,
        next_bill_at: Some(anchor),
        current_period_start: None,
        current_period_end: None,
        trial_end,
        auto_renew: input.auto_renew.unwrap_or(true),
        cancel_at_period_end: false,
        cancelled_at: None,
        suspend_reason: None,
        addons: serde_json::to_value(&addons)
            .map_err(|e| ServiceError::internal("cannot serialize add-ons", e))?,
        created_at: now,
        updated_at: now,
    };
    tx.insert_subscription(&sub).await?;
    tx.record_audit(&actor.audit(Change {
        tenant: tenant.id,
        action: "subscription.create",
        target_type: "subscription",
        target_id: sub.id.to_string(),
        before: None,
        after: Some(json!({"customer_id": sub.customer_id, "product_id": sub.product_id, "period": sub.period,
            "amount_minor": sub.amount_minor, "currency": sub.currency, "trial_end": trial_end.map(|t| t.unix_timestamp())})),
        at: now,
    }))
    .await?;
    if anchor <= now {
        // The first period has begun: invoice it now, as the run would.
        let due = DueSubscription {
            sub: sub.clone(),
            product_name: plan.name,
            billing_model: plan.billing_model,
            usage: plan.usage,
        };
        bill_now(&mut tx, tenant, vec![due], now).await?;
    }
    let out = view(
        tx.subscription_for_update(tenant.id, sub.id)
            .await?
            .ok_or_else(ServiceError::missing("subscription"))?,
    );
    idempotency::finish(&mut tx, tenant.id, hold, 201, &out).await?;
    tx.commit().await?;
    Ok(out)
}

/// Bills `due` inside `tx` as the run would at `now`.
async fn bill_now(
    tx: &mut Tx,
    tenant: &TenantRecord,
    due: Vec<DueSubscription>,
    now: OffsetDateTime,
) -> Result<(), ServiceError> {
    let ctx = RunContext::immediate(
        tenant,
        settings::load_in(tx, tenant.id).await?.settings,
        now,
    );
    let mut report = RunReport::default();
    run::bill_chunk(tx, &ctx, due, &mut report).await
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelInput {
    pub mode: CancelMode,
}

fn refuse(from: SubscriptionStatus, to: SubscriptionStatus) -> ServiceError {
    ServiceError::Transition {
        what: "subscription",
        from: from.as_str(),
        to: to.as_str(),
        allowed: from.next().iter().map(|s| s.as_str()).collect(),
    }
}

/// What staff may do to a subscription's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Cancel(CancelMode),
    Suspend,
    Resume,
}

/// `POST …/cancel`, `…/suspend`, `…/resume`.
pub async fn transition(
    cx: &Context,
    id: SubscriptionId,
    what: Transition,
) -> Result<SubscriptionView, ServiceError> {
    let store = &cx.store;
    let tenant = cx.tenant_id();
    let actor = &cx.actor;
    let now = cx.now();
    let mut tx = store.begin().await?;
    let mut sub = tx
        .subscription_for_update(tenant, id)
        .await?
        .ok_or_else(ServiceError::missing("subscription"))?;
    let from = sub.status;
    let before = json!({"status": sub.status, "cancel_at_period_end": sub.cancel_at_period_end});
    let (action, service) = match what {
        Transition::Cancel(CancelMode::EndOfTerm)
            if from != SubscriptionStatus::PendingActivation =>
        {
            if from.is_terminal() {
                return Err(refuse(from, SubscriptionStatus::Cancelled));
            }
            sub.cancel_at_period_end = true;
            ("subscription.cancel_at_period_end", None)
        }
        Transition::Cancel(_) => {
            from.check_transition(SubscriptionStatus::Cancelled)
                .map_err(|_| refuse(from, SubscriptionStatus::Cancelled))?;
            sub.status = SubscriptionStatus::Cancelled;
            sub.cancelled_at = Some(now);
            sub.next_bill_at = None;
            ("subscription.cancel", Some(ServiceAction::Terminate))
        }
        Transition::Suspend => {
            if from != SubscriptionStatus::Active {
                return Err(refuse(from, SubscriptionStatus::Suspended));
            }
            sub.status = SubscriptionStatus::Suspended;
            sub.suspend_reason = Some(SuspendReason::Manual.as_str().to_owned());
            ("subscription.suspend", Some(ServiceAction::Suspend))
        }
        Transition::Resume => {
            if from != SubscriptionStatus::Suspended {
                return Err(refuse(from, SubscriptionStatus::Active));
            }
            sub.status = SubscriptionStatus::Active;
            sub.suspend_reason = None;
            ("subscription.resume", Some(ServiceAction::Unsuspend))
        }
    };
    sub.updated_at = now;
    let change = StatusChange {
        action,
        before,
        service,
        detail: json!({"cancel_at_period_end": sub.cancel_at_period_end}),
    };
    commit_change(&mut tx, &cx.tenant, actor, &sub, change, now, now).await?;
    // Its usage so far, by a job once this commits (see
    // `final_usage::queue_in`); its usage is closed already (locked above).
    if sub.status == SubscriptionStatus::Cancelled && from != SubscriptionStatus::Cancelled {
        final_usage::queue_in(&mut tx, tenant, &[sub.id], now).await?;
    }
    tx.commit().await?;
    Ok(view(sub))
}

/// A subscription's state change, ready to be written: the audit action,
/// what it was before, what its services must do, and details for the
/// audit (beside the new status).
pub(crate) struct StatusChange<'a> {
    pub action: &'a str,
    pub before: serde_json::Value,
    pub service: Option<ServiceAction>,
    pub detail: serde_json::Value,
}

/// Saves `sub` (already changed), queues the service action (runnable from
/// `jobs_at`), writes the audit row and, for a change customers hear of,
/// the webhook event and the customer's e-mail, in `tx`.
pub(crate) async fn commit_change(
    tx: &mut Tx,
    tenant: &TenantRecord,
    actor: &Actor,
    sub: &SubscriptionRecord,
    change: StatusChange<'_>,
    at: OffsetDateTime,
    jobs_at: OffsetDateTime,
) -> Result<(), ServiceError> {
    tx.save_subscription(sub).await?;
    if sub.status.is_terminal() {
        tx.release_domains(sub.id, at).await?;
    }
    if let Some(service) = change.service {
        service_actions::request(tx, sub.tenant_id, sub.id, service, jobs_at).await?;
    }
    let was = change.before.get("status").and_then(|s| s.as_str());
    let event = status_event(was.and_then(|w| w.parse().ok()), sub.status);
    let mut after = json!({"status": sub.status});
    if let (Some(after), Some(detail)) = (after.as_object_mut(), change.detail.as_object()) {
        after.extend(detail.clone());
    }
    tx.record_audit(&actor.audit(Change {
        tenant: sub.tenant_id,
        action: change.action,
        target_type: "subscription",
        target_id: sub.id.to_string(),
        before: Some(change.before),
        after: Some(after.clone()),
        at,
    }))
    .await?;
    if let Some(event) = event {
        let mut data =
            json!({"id": sub.id, "customer_id": sub.customer_id, "product_id": sub.product_id});
        if let (Some(data), Some(after)) = (data.as_object_mut(), after.as_object()) {
            data.extend(after.clone());
        }
        crate::webhooks::emit(tx, sub.tenant_id, event, data, at).await?;
        if let Some(kind) = crate::notify::service_status::kind_of(event) {
            crate::notify::service_status::enqueue_in(tx, tenant, sub, kind, jobs_at).await?;
        }
    }
    Ok(())
}

/// The webhook event of a change from `was` to `now`, if it is one.
fn status_event(was: Option<SubscriptionStatus>, now: SubscriptionStatus) -> Option<EventType> {
    let was = was?;
    match now {
        SubscriptionStatus::Suspended if was != now => Some(EventType::SubscriptionSuspended),
        SubscriptionStatus::Active if was == SubscriptionStatus::Suspended => {
            Some(EventType::SubscriptionRestored)
        }
        _ if now.is_terminal() && !was.is_terminal() => Some(EventType::SubscriptionCancelled),
        _ => None,
    }
}

/// Billing starts when provisioning activates an ordered subscription: the
/// order's invoice paid period 0, which starts now; the run invoices the
/// next one when it begins.
pub async fn start_billing_in(
    tx: &mut Tx,
    tenant: TenantId,
    id: SubscriptionId,
    zone: &str,
    now: OffsetDateTime,
) -> Result<(), ServiceError> {
    let mut sub = tx
        .subscription_for_update(tenant, id)
        .await?
        .ok_or_else(ServiceError::missing("subscription"))?;
    let Some(cycle) = sub
        .period
        .parse::<Period>()
        .ok()
        .and_then(Cycle::from_period)
    else {
        return Ok(());
    };
    let anchor = now.replace_nanosecond(0).unwrap_or(now);
    let schedule = Schedule::new(anchor, cycle, zone).map_err(ServiceError::internal_msg)?;
    let (start, end) = schedule.period(0);
    sub.anchor_at = Some(anchor);
    sub.next_period = 1;
    sub.next_bill_at = Some(end);
    sub.current_period_start = Some(start);
    sub.current_period_end = Some(end);
    sub.updated_at = now;
    tx.save_subscription(&sub).await?;
    Ok(())
}
