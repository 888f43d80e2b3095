//! Plan changes and addons (`PUT /api/billing/subscriptions/:id`): the
//! unused part of the old plan is credited and the rest of the period on
//! the new one charged, to the second for hourly plans and to the day
//! otherwise (the rule and its rounding: `billing::proration` and
//! docs/billing.md). An upgrade's credit and charge go on one invoice,
//! issued at once; a downgrade's net credit goes to the customer's credit
//! balance (an invoice cannot be negative). Provisioning is told in the
//! same transaction (a resize job).

use mpanel_domain::billing::calendar::Cycle;
use mpanel_domain::billing::invoice::{LineKind, LineSource};
use mpanel_domain::billing::money::from_minor;
use mpanel_domain::billing::proration::{PlanChange, Proration, prorate};
use mpanel_domain::billing::subscription::SubscriptionStatus;
use mpanel_domain::catalog::{Currency, Period};
use mpanel_domain::{InvoiceId, ProductId, SubscriptionId};
use mpanel_store::billing::CreditEntry;
use mpanel_store::subscriptions::SubscriptionRecord;
use mpanel_store::{TenantRecord, Tx};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;

use super::final_usage;
use super::invoices::price_lines;
use super::lines::LineIn;
use super::run::{Addon, RunContext, RunReport, addons};
use super::run_invoices::{Draft, write_invoices};
use super::service_actions;
use super::settings;
use super::subscriptions::{AddonInput, SubscriptionView, price, price_addons, view};
use crate::actor::Change;
use crate::{Context, ServiceError};

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateInput {
    /// The new plan (a product priced for the same period and currency).
    pub product_id: Option<ProductId>,
    /// The full list of addons from now on.
    pub addons: Option<Vec<AddonInput>>,
    pub auto_renew: Option<bool>,
}

/// What a plan change charged and credited.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct ProrationView {
    pub credit_minor: i64,
    pub charge_minor: i64,
    /// Days (seconds for hourly plans) left of the period, and in it.
    pub remaining: i64,
    pub total: i64,
    /// The invoice of an upgrade.
    pub invoice_id: Option<InvoiceId>,
    /// A downgrade's net credit (tax included) put on the customer's balance.
    pub credited_to_balance_minor: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct UpdateView {
    #[serde(flatten)]
    pub subscription: SubscriptionView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proration: Option<ProrationView>,
}

fn per_period(amount: i64, addons: &[Addon]) -> i64 {
    amount + addons.iter().map(|a| a.amount_minor).sum::<i64>()
}

/// The subscription, locked, if it may change (ACTIVE or SUSPENDED).
async fn changeable(
    tx: &mut Tx,
    tenant: &TenantRecord,
    id: SubscriptionId,
) -> Result<SubscriptionRecord, ServiceError> {
    let sub = tx
        .subscription_for_update(tenant.id, id)
        .await?
        .ok_or_else(ServiceError::missing("subscription"))?;
    let status = sub.status;
    if !matches!(
        status,
        SubscriptionStatus::Active | SubscriptionStatus::Suspended
    ) {
        return Err(ServiceError::Conflict(format!(
            "subscription is {}: only an ACTIVE or SUSPENDED one can change",
            status.as_str()
        )));
    }
    Ok(sub)
}

/// The plan after the change: the product and addons asked for (priced
/// now, for the subscription's period and currency), or those it has.
struct NewPlan {
    product: ProductId,
    amount_minor: i64,
    name: String,
    addons: Vec<Addon>,
}

async fn new_plan(
    tx: &mut Tx,
    tenant: &TenantRecord,
    sub: &SubscriptionRecord,
    input: &UpdateInput,
    old_addons: &[Addon],
) -> Result<NewPlan, ServiceError> {
    let period: Period = sub.period.parse().map_err(ServiceError::internal_msg)?;
    let currency = Currency::parse(&sub.currency).map_err(ServiceError::internal_msg)?;
    let (product, amount_minor, name) = match input.product_id {
        Some(p) => {
            let priced = price(tx, tenant.id, p, period, currency, "product_id").await?;
            (p, priced.amount_minor, priced.name)
        }
        None => (
            sub.product_id,
            sub.amount_minor,
            tx.product(tenant.id, sub.product_id)
                .await?
                .ok_or_else(ServiceError::missing("product"))?
                .fields
                .name,
        ),
    };
    let addons = match &input.addons {
        Some(list) => price_addons(tx, tenant.id, list, period, currency).await?,
        None => old_addons.to_vec(),
    };
    Ok(NewPlan {
        product,
        amount_minor,
        name,
        addons,
    })
}

pub async fn update(
    cx: &Context,
    id: SubscriptionId,
    input: UpdateInput,
) -> Result<UpdateView, ServiceError> {
    let store = &cx.store;
    let tenant = &cx.tenant;
    let actor = &cx.actor;
    let now = cx.now();
    let mut tx = store.begin().await?;
    let sub = changeable(&mut tx, tenant, id).await?;
    let old_addons = addons(&sub.addons);
    let old_total = per_period(sub.amount_minor, &old_addons);
    let old_product = sub.product_id;
    let NewPlan {
        product: new_product,
        amount_minor: new_amount,
        name: new_name,
        addons: new_addons,
    } = new_plan(&mut tx, tenant, &sub, &input, &old_addons).await?;
    let new_total = per_period(new_amount, &new_addons);
    let before = json!({"product_id": sub.product_id, "amount_minor": sub.amount_minor,
        "addons": old_addons.len(), "auto_renew": sub.auto_renew});
    let plan_changed = new_product != old_product || new_addons != old_addons;

    if new_product != old_product {
        final_usage::bill_so_far(&mut tx, tenant, &sub, now).await?;
    }
    let mut proration = None;
    if plan_changed && new_total != old_total {
        proration = settle(&mut tx, tenant, &sub, old_total, new_total, &new_name, now).await?;
    }
    // Read again: an invoice just issued and paid from credit may have
    // restored it (a dunning suspension lifted), which saving the copy
    // read before would undo.
    let mut sub = changeable(&mut tx, tenant, id).await?;
    sub.product_id = new_product;
    sub.amount_minor = new_amount;
    sub.addons = serde_json::to_value(&new_addons)
        .map_err(|e| ServiceError::internal("cannot serialize add-ons", e))?;
    if let Some(auto) = input.auto_renew {
        sub.auto_renew = auto;
    }
    sub.updated_at = now;
    tx.save_subscription(&sub).await?;
    if plan_changed {
        service_actions::resize(&mut tx, tenant.id, sub.id, new_product, now).await?;
    }
    tx.record_audit(&actor.audit(Change {
        tenant: tenant.id,
        action: if plan_changed {
            "subscription.change_plan"
        } else {
            "subscription.update"
        },
        target_type: "subscription",
        target_id: sub.id.to_string(),
        before: Some(before),
        after: Some(
            json!({"product_id": sub.product_id, "amount_minor": sub.amount_minor,
            "addons": new_addons.len(), "auto_renew": sub.auto_renew, "proration": proration}),
        ),
        at: now,
    }))
    .await?;
    tx.commit().await?;
    Ok(UpdateView {
        subscription: view(sub),
        proration,
    })
}

/// What changing to `product` would cost now, nothing changed: the new
/// price per period and the prorated credit and charge inside the current
/// paid period (none outside one). The same reading as [`update`].
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PlanPreview {
    pub currency: String,
    pub old_total_minor: i64,
    pub new_total_minor: i64,
    pub new_name: String,
    pub credit_minor: i64,
    pub charge_minor: i64,
    /// Days (seconds for hourly plans) left of the period, and in it.
    pub remaining: i64,
    pub total: i64,
}

pub async fn preview(
    cx: &Context,
    id: SubscriptionId,
    product: ProductId,
) -> Result<PlanPreview, ServiceError> {
    let tenant = &cx.tenant;
    // Read only, nothing locked: a preview never holds up a writer.
    let sub = cx
        .store
        .subscription(tenant.id, id)
        .await?
        .ok_or_else(ServiceError::missing("subscription"))?;
    if !matches!(
        sub.status,
        SubscriptionStatus::Active | SubscriptionStatus::Suspended
    ) {
        return Err(ServiceError::Conflict(format!(
            "subscription is {}: only an ACTIVE or SUSPENDED one can change",
            sub.status.as_str()
        )));
    }
    let mut tx = cx.store.begin_read().await?;
    let old_addons = addons(&sub.addons);
    let input = UpdateInput {
        product_id: Some(product),
        addons: None,
        auto_renew: None,
    };
    let plan = new_plan(&mut tx, tenant, &sub, &input, &old_addons).await?;
    drop(tx);
    let old_total = per_period(sub.amount_minor, &old_addons);
    let new_total = per_period(plan.amount_minor, &plan.addons);
    let p = proration(tenant, &sub, old_total, new_total, cx.now())?.map(|(p, _)| p);
    Ok(PlanPreview {
        currency: sub.currency.clone(),
        old_total_minor: old_total,
        new_total_minor: new_total,
        new_name: plan.name,
        credit_minor: p.as_ref().map_or(0, |p| p.credit_minor),
        charge_minor: p.as_ref().map_or(0, |p| p.charge_minor),
        remaining: p.as_ref().map_or(0, |p| p.remaining),
        total: p.as_ref().map_or(0, |p| p.total),
    })
}

/// The change's share of the current period, when it falls inside one
/// that is paid (not a trial); with the period's cycle.
fn proration(
    tenant: &TenantRecord,
    sub: &SubscriptionRecord,
    old_total: i64,
    new_total: i64,
    now: OffsetDateTime,
) -> Result<Option<(Proration, Cycle)>, ServiceError> {
    let (Some(start), Some(end)) = (sub.current_period_start, sub.current_period_end) else {
        return Ok(None);
    };
    let in_trial = sub.trial_end.is_some_and(|t| now < t);
    let cycle = sub
        .period
        .parse::<Period>()
        .ok()
        .and_then(Cycle::from_period);
    let Some(cycle) = cycle.filter(|_| !in_trial && start <= now && now < end) else {
        return Ok(None);
    };
    let zone = jiff::tz::TimeZone::get(&tenant.timezone)
        .map_err(|e| ServiceError::internal("tenant time zone", e))?;
    let p = prorate(&PlanChange {
        old_amount_minor: old_total,
        new_amount_minor: new_total,
        period_start: start,
        period_end: end,
        at: now,
        cycle,
        zone,
    })
    .map_err(ServiceError::internal_msg)?;
    Ok(Some((p, cycle)))
}

/// Charges or credits the change inside the current period.
async fn settle(
    tx: &mut Tx,
    tenant: &TenantRecord,
    sub: &SubscriptionRecord,
    old_total: i64,
    new_total: i64,
    new_name: &str,
    now: OffsetDateTime,
) -> Result<Option<ProrationView>, ServiceError> {
    let Some((p, cycle)) = proration(tenant, sub, old_total, new_total, now)? else {
        return Ok(None);
    };
    let currency = Currency::parse(&sub.currency).map_err(ServiceError::internal_msg)?;
    let unit = if cycle == Cycle::Hourly {
        "seconds"
    } else {
        "days"
    };
    let share = format!("{}/{} {unit}", p.remaining, p.total);
    let line = |kind, description: String, minor: i64| LineIn {
        kind,
        source: Some(LineSource::Adjustment),
        description,
        quantity: Decimal::ONE,
        unit_price: from_minor(minor, currency),
        subscription_id: Some(sub.id),
    };
    let settings = settings::load_in(tx, tenant.id).await?.settings;
    let mut out = ProrationView {
        credit_minor: p.credit_minor,
        charge_minor: p.charge_minor,
        remaining: p.remaining,
        total: p.total,
        invoice_id: None,
        credited_to_balance_minor: 0,
    };
    if p.net_minor() > 0 {
        let mut lines = Vec::new();
        if p.credit_minor > 0 {
            lines.push(line(
                LineKind::Adjustment,
                format!("Unused time on the previous plan ({share})"),
                -p.credit_minor,
            ));
        }
        lines.push(line(
            LineKind::Item,
            format!("{new_name}: rest of the period ({share})"),
            p.charge_minor,
        ));
        let ctx = RunContext::immediate(tenant, settings, now);
        let id = InvoiceId::new();
        let draft = Draft {
            id,
            sub,
            lines,
            period: None,
        };
        write_invoices(tx, &ctx, vec![draft], &mut RunReport::default()).await?;
        out.invoice_id = Some(id);
    } else if p.net_minor() < 0 {
        out.credited_to_balance_minor =
            credit_balance(tx, tenant, sub, &settings, &p, &share, now).await?;
    }
    Ok(Some(out))
}

/// A downgrade: the net unused value, taxed as the plan was, becomes
/// customer credit.
async fn credit_balance(
    tx: &mut Tx,
    tenant: &TenantRecord,
    sub: &SubscriptionRecord,
    settings: &settings::BillingSettings,
    p: &Proration,
    share: &str,
    now: OffsetDateTime,
) -> Result<i64, ServiceError> {
    let currency = Currency::parse(&sub.currency).map_err(ServiceError::internal_msg)?;
    let customer = tx
        .customer(tenant.id, sub.customer_id)
        .await?
        .ok_or_else(ServiceError::missing("customer"))?;
    let net = LineIn {
        kind: LineKind::Item,
        source: Some(LineSource::Adjustment),
        description: format!("Plan change credit ({share})"),
        quantity: Decimal::ONE,
        unit_price: from_minor(-p.net_minor(), currency),
        subscription_id: Some(sub.id),
    };
    let (_, _, _, gross, _) = price_lines(&[net], currency, settings, &customer)?;
    tx.adjust_credit(&CreditEntry {
        tenant: tenant.id,
        customer: sub.customer_id,
        currency: &sub.currency,
        delta_minor: gross,
        reason: "plan_change",
        invoice: None,
        payment: None,
        credit_note: None,
        at: now,
    })
    .await?;
    Ok(gross)
}
