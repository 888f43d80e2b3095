//! A subscription staff create for a product that provisions something (a
//! phone order, a migration, a partner's free account) goes the way an
//! order from the marketing site goes: the same checks of product, price,
//! domain (normalised, free on the platform) and options (the mailbox
//! password hashed on arrival), an order with one item and its
//! `PENDING_ACTIVATION` subscription, the invoice issued, and the same
//! provisioning job once the invoice is paid, or at once when staff say
//! so (`provision_before_payment`; dunning suspends it later if the
//! invoice stays unpaid).

use mpanel_domain::OrderId;
use mpanel_domain::billing::invoice::InvoiceStatus;
use mpanel_domain::catalog::Currency;
use mpanel_domain::webhooks::EventType;
use mpanel_store::subscriptions::SubscriptionRecord;
use serde_json::json;

use mpanel_domain::provisioning::plan;

use super::subscriptions::{CreateInput, ProvisioningStep, SubscriptionView, view};
use crate::actor::Change;
use crate::idempotency::{self, IdempotencyHold};
use crate::orders::{self, ItemInput, Placing};
use crate::{Context, ServiceError};

/// What an order item takes that a plain subscription does not.
fn refuse_subscription_only(input: &CreateInput) -> Result<(), ServiceError> {
    let only = |field: &'static str| {
        ServiceError::invalid(
            field,
            "a product that provisions starts now, without a trial or add-ons",
        )
    };
    if input.trial_days > 0 {
        return Err(only("trial_days"));
    }
    if input.start_at.is_some() {
        return Err(only("start_at"));
    }
    if !input.addons.is_empty() {
        return Err(only("addons"));
    }
    Ok(())
}

/// An order's field names (`items[0].domain`, `items.domain`) as this
/// request's (`domain`), so staff get the problem an order gets, about
/// their field.
fn as_request_field(e: ServiceError) -> ServiceError {
    match e {
        ServiceError::Invalid { field, message } => ServiceError::Invalid {
            field: field
                .strip_prefix("items[0].")
                .or_else(|| field.strip_prefix("items."))
                .map(|f| f.to_owned().into())
                .unwrap_or(field),
            message,
        },
        other => other,
    }
}

/// `POST /api/billing/subscriptions` for a product that provisions.
pub(crate) async fn place(
    cx: &Context,
    input: &CreateInput,
    currency: Currency,
    hold: Option<&IdempotencyHold>,
) -> Result<SubscriptionView, ServiceError> {
    let (mut tx, out) = place_in(cx, input, currency, hold).await?;
    idempotency::finish(&mut tx, cx.tenant_id(), hold, 201, &out).await?;
    tx.commit().await?;
    Ok(out)
}

/// Places the order in a transaction left open for the caller's answer
/// (`POST /api/cloudpods` answers the pod, not the subscription).
pub(crate) async fn place_in(
    cx: &Context,
    input: &CreateInput,
    currency: Currency,
    hold: Option<&IdempotencyHold>,
) -> Result<(mpanel_store::Tx, SubscriptionView), ServiceError> {
    refuse_subscription_only(input)?;
    let item = ItemInput {
        product_id: input.product_id.to_string(),
        period: input.period.as_str().to_owned(),
        domain: input.domain.clone(),
        options: input.options.clone(),
    };
    let items = orders::check_items_for(
        &cx.store,
        &cx.tenant,
        orders::Seller::Staff,
        currency,
        std::slice::from_ref(&item),
    )
    .await
    .map_err(as_request_field)?;
    let total = orders::order_total(&items)?;
    let now = cx.now();
    let mut tx = cx.store.begin().await?;
    let customer = tx
        .customer(cx.tenant_id(), input.customer_id)
        .await?
        .ok_or_else(|| ServiceError::invalid("customer_id", "no such customer"))?;
    if customer.pending_for.is_some() {
        return Err(ServiceError::invalid(
            "customer_id",
            "is waiting for its address to be verified: use the customer it belongs to",
        ));
    }
    let order_id = OrderId::new();
    let placing = Placing {
        tenant: &cx.tenant,
        customer: &customer,
        order_id,
        currency,
        paid: false,
        actor: cx.actor.clone(),
        now,
    };
    let key = hold.map_or_else(|| format!("staff:{order_id}"), |h| h.key.clone());
    placing.insert_order(&mut tx, total, None, &key).await?;
    let (placed_items, subscriptions) = placing
        .insert_items(&mut tx, &items)
        .await
        .map_err(as_request_field)?;
    let invoice = placing
        .issue_invoice(&mut tx, &items, &subscriptions, total)
        .await?;
    // Paid at issue (free, or from credit): queued by the payment already.
    let queued = input.provision_before_payment || invoice.status == InvoiceStatus::Paid;
    if input.provision_before_payment && invoice.status != InvoiceStatus::Paid {
        orders::enqueue_order_provisioning(&mut tx, &cx.tenant, order_id, now).await?;
    }
    let placed = placing.placed(&invoice, placed_items);
    placing.audit(&mut tx, &placed, &invoice, false).await?;
    let sub = subscriptions
        .first()
        .copied()
        .ok_or_else(|| ServiceError::internal_msg("an order of one item made no subscription"))?;
    let mut record = tx
        .subscription_for_update(cx.tenant_id(), sub)
        .await?
        .ok_or_else(ServiceError::missing("subscription"))?;
    if let Some(auto_renew) = input.auto_renew.filter(|a| *a != record.auto_renew) {
        record.auto_renew = auto_renew;
        tx.save_subscription(&record).await?;
    }
    audit_subscription(
        &mut tx,
        cx,
        &record,
        order_id,
        input.provision_before_payment,
    )
    .await?;
    let event = serde_json::to_value(&placed)
        .map_err(|e| ServiceError::internal("cannot serialize the order for its event", e))?;
    crate::webhooks::emit(&mut tx, cx.tenant_id(), EventType::OrderCreated, event, now).await?;
    let mut out = view(record);
    out.order_id = Some(order_id);
    if let Some(item) = items.first().filter(|_| queued) {
        out.provisioning = plan(&item.template)
            .into_iter()
            .map(|step| ProvisioningStep {
                step: step.name().to_owned(),
                state: Some("PENDING".into()),
            })
            .collect();
    }
    Ok((tx, out))
}

async fn audit_subscription(
    tx: &mut mpanel_store::Tx,
    cx: &Context,
    sub: &SubscriptionRecord,
    order: OrderId,
    before_payment: bool,
) -> Result<(), ServiceError> {
    tx.record_audit(&cx.actor.audit(Change {
        tenant: cx.tenant_id(),
        action: "subscription.create",
        target_type: "subscription",
        target_id: sub.id.to_string(),
        before: None,
        after: Some(
            json!({"customer_id": sub.customer_id, "product_id": sub.product_id,
            "period": sub.period, "amount_minor": sub.amount_minor, "currency": sub.currency,
            "order_id": order, "provision_before_payment": before_payment}),
        ),
        at: cx.now(),
    }))
    .await?;
    Ok(())
}
