//! Money in: payments recorded by staff, by Stripe, or taken from the
//! customer's credit. A payment fills what is due; any excess becomes
//! credit. The payment that settles an order's invoice starts that order's
//! provisioning in the same transaction.

use mpanel_domain::billing::invoice::InvoiceStatus;
use mpanel_domain::billing::payment::{PaymentProvider, PaymentStatus};
use mpanel_domain::webhooks::EventType;
use mpanel_domain::{InvoiceId, PaymentId};
use mpanel_store::billing::{CreditEntry, InvoiceMoney, InvoiceRecord, PaymentRecord};
use mpanel_store::{StoreError, TenantRecord, Tx};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;

use super::invoices::balance;
use crate::actor::Change;
use crate::idempotency::{self, IdempotencyHold};
use crate::{Actor, Context, ServiceError};

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentInput {
    pub amount_minor: i64,
    /// `MANUAL` or `BANK_TRANSFER` (Stripe payments arrive by webhook).
    pub provider: PaymentProvider,
    /// The bank or provider reference; recorded once per provider.
    pub reference: Option<String>,
    /// Must be the invoice's currency when given.
    pub currency: Option<String>,
}

/// What recording a payment did.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct PaymentOutcome {
    pub payment_id: PaymentId,
    pub invoice_id: InvoiceId,
    pub provider: String,
    pub reference: Option<String>,
    pub currency: String,
    pub amount_minor: i64,
    /// The part that paid the invoice.
    pub applied_minor: i64,
    /// The excess, added to the customer's credit.
    pub credited_minor: i64,
    pub invoice_status: String,
    pub amount_due_minor: i64,
}

/// The largest payment accepted (a typo with extra zeros is refused, and
/// credit balances cannot overflow).
pub const MAX_PAYMENT_MINOR: i64 = 1_000_000_000_000_000;

fn refuse_payment(from: InvoiceStatus) -> ServiceError {
    ServiceError::Transition {
        what: "invoice",
        from: from.as_str(),
        to: InvoiceStatus::Paid.as_str(),
        allowed: from.next().iter().map(|s| s.as_str()).collect(),
    }
}

/// A payment received, as `record_in` records it.
pub(crate) struct Received {
    pub provider: PaymentProvider,
    /// The provider's reference (unique per provider and tenant).
    pub reference: Option<String>,
    pub amount_minor: i64,
}

/// Records a successful payment against the locked `inv`: what the invoice
/// still owed is applied, the rest becomes the customer's credit; money
/// received (not credit applied) is confirmed to the customer by e-mail.
pub(crate) async fn record_in(
    tx: &mut Tx,
    tenant: &TenantRecord,
    inv: InvoiceRecord,
    received: Received,
    actor: &Actor,
    now: OffsetDateTime,
) -> Result<(PaymentRecord, InvoiceRecord), ServiceError> {
    let amount = received.amount_minor;
    if !matches!(
        inv.status,
        InvoiceStatus::Issued | InvoiceStatus::PartiallyPaid | InvoiceStatus::Overdue
    ) {
        return Err(refuse_payment(inv.status));
    }
    if !(1..=MAX_PAYMENT_MINOR).contains(&amount) {
        return Err(ServiceError::invalid(
            "amount_minor",
            "must be greater than zero and at most 10^15 minor units",
        ));
    }
    let before = balance(&inv);
    let (applied, excess) = before.apply(amount);
    // Credit applied to an invoice is not money received: the invoice
    // (issued with it) already says so.
    let money_in = received.provider != PaymentProvider::Credit;
    let payment = insert_payment(tx, tenant, &inv, received, applied, now).await?;
    let after = mpanel_domain::billing::invoice::Balance {
        paid_minor: before.paid_minor + applied,
        ..before
    };
    let status = settle_paid(tx, tenant, &inv, &after, now).await?;
    tx.record_audit(&actor.audit(Change {
        tenant: tenant.id,
        action: "payment.record",
        target_type: "invoice",
        target_id: inv.id.to_string(),
        before: Some(json!({"status": inv.status.as_str(), "paid_minor": before.paid_minor})),
        after: Some(json!({"status": status.as_str(), "paid_minor": after.paid_minor, "payment_id": payment.id,
            "provider": payment.provider, "amount_minor": amount, "excess_to_credit_minor": excess})),
        at: now,
    }))
    .await?;
    let updated = tx
        .invoice_for_update(tenant.id, inv.id)
        .await?
        .ok_or_else(ServiceError::missing("invoice"))?;
    if money_in {
        crate::notify::payment_received::enqueue_in(tx, tenant, &updated, &payment, now).await?;
    }
    if status == InvoiceStatus::Paid && inv.status != InvoiceStatus::Paid {
        on_paid(tx, tenant, &updated, now).await?;
    }
    // The excess to credit last: the subscriptions `on_paid` restores are
    // taken before the customer's credit, as a billing chunk and a plan
    // change take them (subscription, then credit), so neither waits on
    // the other in a cycle.
    if excess > 0 {
        tx.adjust_credit(&CreditEntry {
            tenant: tenant.id,
            customer: inv.customer_id,
            currency: &inv.currency,
            delta_minor: excess,
            reason: "overpayment",
            invoice: Some(inv.id),
            payment: Some(payment.id),
            credit_note: None,
            at: now,
        })
        .await?;
    }
    Ok((payment, updated))
}

/// The payment row, `applied` of it on the invoice; a reference already
/// recorded is a conflict.
async fn insert_payment(
    tx: &mut Tx,
    tenant: &TenantRecord,
    inv: &InvoiceRecord,
    received: Received,
    applied: i64,
    now: OffsetDateTime,
) -> Result<PaymentRecord, ServiceError> {
    let Received {
        provider,
        reference,
        amount_minor,
    } = received;
    let payment = PaymentRecord {
        id: PaymentId::new(),
        tenant_id: tenant.id,
        invoice_id: inv.id,
        customer_id: inv.customer_id,
        provider: provider.as_str().to_owned(),
        reference: reference.clone(),
        currency: inv.currency.clone(),
        amount_minor,
        applied_minor: applied,
        refunded_minor: 0,
        status: PaymentStatus::Success.as_str().to_owned(),
        failure: None,
        created_at: now,
        updated_at: now,
    };
    tx.insert_payment(&payment).await.map_err(|e| match e {
        StoreError::Conflict(_) => ServiceError::Conflict(format!(
            "the {} payment {} is already recorded",
            provider.as_str(),
            reference.as_deref().unwrap_or("")
        )),
        other => other.into(),
    })?;
    Ok(payment)
}

/// Writes the invoice's amounts after the payment; answers its status
/// (paid now, or still partly open).
async fn settle_paid(
    tx: &mut Tx,
    tenant: &TenantRecord,
    inv: &InvoiceRecord,
    after: &mpanel_domain::billing::invoice::Balance,
    now: OffsetDateTime,
) -> Result<InvoiceStatus, ServiceError> {
    let status = after.settled_status(inv.status);
    let money = InvoiceMoney {
        status,
        paid_minor: after.paid_minor,
        credited_minor: after.credited_minor,
        refunded_minor: after.refunded_minor,
        paid_at: if status == InvoiceStatus::Paid {
            Some(now)
        } else {
            inv.paid_at
        },
    };
    tx.update_invoice_money(tenant.id, inv.id, &money, now)
        .await?;
    Ok(status)
}

/// A paid invoice: an order's is `PAID` and its provisioning jobs are
/// queued; services suspended for non-payment of it are restored; all in
/// this transaction.
pub(crate) async fn on_paid(
    tx: &mut Tx,
    tenant: &TenantRecord,
    inv: &InvoiceRecord,
    now: OffsetDateTime,
) -> Result<(), ServiceError> {
    let event = json!({"id": inv.id, "number": inv.number, "customer_id": inv.customer_id,
        "order_id": inv.order_id, "total_minor": inv.total_minor, "currency": inv.currency});
    crate::webhooks::emit(tx, tenant.id, EventType::InvoicePaid, event, now).await?;
    if let Some(order) = inv.order_id
        && tx.mark_order_paid(tenant.id, order, now).await?
    {
        crate::orders::enqueue_order_provisioning(tx, tenant, order, now).await?;
    }
    super::restore::lift_dunning_suspensions(tx, tenant, inv, now).await?;
    Ok(())
}

/// Pays what it can of a newly issued invoice from the customer's credit.
pub(crate) async fn apply_credit(
    tx: &mut Tx,
    tenant: &TenantRecord,
    inv: InvoiceRecord,
    actor: &Actor,
    now: OffsetDateTime,
) -> Result<InvoiceRecord, ServiceError> {
    super::restore::hold_for_restore(tx, tenant, &inv).await?;
    let credit = tx
        .credit_balance_for_update(tenant.id, inv.customer_id, &inv.currency)
        .await?;
    let due = balance(&inv).due();
    let amount = credit.min(due);
    if amount <= 0 {
        return Ok(inv);
    }
    let (invoice_id, customer, currency) = (inv.id, inv.customer_id, inv.currency.clone());
    let (payment, updated) = record_in(
        tx,
        tenant,
        inv,
        Received {
            provider: PaymentProvider::Credit,
            reference: None,
            amount_minor: amount,
        },
        actor,
        now,
    )
    .await?;
    tx.adjust_credit(&CreditEntry {
        tenant: tenant.id,
        customer,
        currency: &currency,
        delta_minor: -amount,
        reason: "applied to invoice",
        invoice: Some(invoice_id),
        payment: Some(payment.id),
        credit_note: None,
        at: now,
    })
    .await?;
    Ok(updated)
}

/// An invoice of zero is paid the moment it is issued.
pub(crate) async fn settle_if_nothing_due(
    tx: &mut Tx,
    tenant: &TenantRecord,
    inv: InvoiceRecord,
    actor: &Actor,
    now: OffsetDateTime,
) -> Result<InvoiceRecord, ServiceError> {
    if balance(&inv).due() > 0 {
        return Ok(inv);
    }
    tx.update_invoice_money(
        tenant.id,
        inv.id,
        &InvoiceMoney {
            status: InvoiceStatus::Paid,
            paid_minor: inv.paid_minor,
            credited_minor: inv.credited_minor,
            refunded_minor: inv.refunded_minor,
            paid_at: Some(now),
        },
        now,
    )
    .await?;
    tx.record_audit(&actor.audit(Change {
        tenant: tenant.id,
        action: "invoice.settled",
        target_type: "invoice",
        target_id: inv.id.to_string(),
        before: Some(json!({"status": inv.status.as_str()})),
        after: Some(json!({"status": "PAID", "reason": "nothing due"})),
        at: now,
    }))
    .await?;
    let updated = tx
        .invoice_for_update(tenant.id, inv.id)
        .await?
        .ok_or_else(ServiceError::missing("invoice"))?;
    on_paid(tx, tenant, &updated, now).await?;
    Ok(updated)
}

pub(crate) fn outcome(payment: &PaymentRecord, inv: &InvoiceRecord) -> PaymentOutcome {
    PaymentOutcome {
        payment_id: payment.id,
        invoice_id: inv.id,
        provider: payment.provider.clone(),
        reference: payment.reference.clone(),
        currency: payment.currency.clone(),
        amount_minor: payment.amount_minor,
        applied_minor: payment.applied_minor,
        credited_minor: payment.amount_minor - payment.applied_minor,
        invoice_status: inv.status.as_str().to_owned(),
        amount_due_minor: balance(inv).due(),
    }
}

/// `POST /api/billing/invoices/:id/pay`: staff record money received.
pub async fn pay(
    cx: &Context,
    id: InvoiceId,
    input: PaymentInput,
    hold: Option<&IdempotencyHold>,
) -> Result<PaymentOutcome, ServiceError> {
    let store = &cx.store;
    let tenant = &cx.tenant;
    let actor = &cx.actor;
    if !matches!(
        input.provider,
        PaymentProvider::Manual | PaymentProvider::BankTransfer
    ) {
        return Err(ServiceError::invalid(
            "provider",
            "staff record MANUAL or BANK_TRANSFER payments; Stripe payments arrive by webhook",
        ));
    }
    let reference = input
        .reference
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty());
    if reference
        .as_ref()
        .is_some_and(|r| r.len() > 200 || r.chars().any(char::is_control))
    {
        return Err(ServiceError::invalid(
            "reference",
            "at most 200 characters, no control characters",
        ));
    }
    let now = cx.now();
    let mut tx = store.begin().await?;
    let inv = tx
        .invoice_for_update(tenant.id, id)
        .await?
        .ok_or_else(ServiceError::missing("invoice"))?;
    if let Some(currency) = &input.currency
        && !currency.eq_ignore_ascii_case(&inv.currency)
    {
        return Err(ServiceError::invalid(
            "currency",
            format!("the invoice is in {}", inv.currency),
        ));
    }
    let (payment, updated) = record_in(
        &mut tx,
        tenant,
        inv,
        Received {
            provider: input.provider,
            reference,
            amount_minor: input.amount_minor,
        },
        actor,
        now,
    )
    .await?;
    let out = outcome(&payment, &updated);
    idempotency::finish(&mut tx, tenant.id, hold, 201, &out).await?;
    tx.commit().await?;
    Ok(out)
}
