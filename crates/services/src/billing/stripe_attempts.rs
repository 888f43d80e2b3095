//! Which PaymentIntent pays an invoice: the latest one again while Stripe
//! holds it open for the amount due, else a new attempt. Asking Stripe
//! (not relying on the idempotency key, which Stripe forgets after 24
//! hours) keeps one open intent per invoice: a card declined on it can be
//! tried again on the same intent, an intent for an amount no longer due
//! is canceled so a tab left open cannot charge it, and a payment under
//! way stops a second one.

use mpanel_domain::InvoiceId;
use mpanel_domain::billing::invoice::InvoiceStatus;
use mpanel_store::billing::{InvoiceRecord, PaymentIntentRecord};
use mpanel_store::{Store, TenantRecord};

use super::invoices::balance;
use super::stripe::{PaymentIntent, StripeClient, StripeError};
use super::stripe_flow::stripe_failure;
use crate::{Context, ServiceError};

/// What to pay the invoice with.
pub(super) enum Attempt {
    /// The latest intent, still open for the amount due.
    Again(PaymentIntent),
    /// A new intent, the attempt after the latest.
    Next,
}

/// The open invoice, what it owes and its latest intent, read under the
/// invoice's lock; the lock is let go before Stripe is called.
pub(super) async fn open_invoice(
    store: &Store,
    tenant: &TenantRecord,
    id: InvoiceId,
) -> Result<(InvoiceRecord, i64, Option<PaymentIntentRecord>), ServiceError> {
    let mut tx = store.begin().await?;
    let inv = tx
        .invoice_for_update(tenant.id, id)
        .await?
        .ok_or_else(ServiceError::missing("invoice"))?;
    if !matches!(
        inv.status,
        InvoiceStatus::Issued | InvoiceStatus::PartiallyPaid | InvoiceStatus::Overdue
    ) {
        return Err(ServiceError::Transition {
            what: "invoice",
            from: inv.status.as_str(),
            to: InvoiceStatus::Paid.as_str(),
            allowed: inv.status.next().iter().map(|s| s.as_str()).collect(),
        });
    }
    let due = balance(&inv).due();
    let latest = tx.latest_payment_intent(tenant.id, id).await?;
    tx.commit().await?;
    Ok((inv, due, latest))
}

fn going_through() -> ServiceError {
    ServiceError::Conflict(
        "a card payment of this invoice is going through: the invoice shows it as paid once Stripe confirms it"
            .into(),
    )
}

/// The latest intent as Stripe holds it now: taken up again while open
/// for `due`; canceled when open for another amount.
pub(super) async fn take_up(
    cx: &Context,
    stripe: &StripeClient,
    key: &str,
    latest: &PaymentIntentRecord,
    due: i64,
) -> Result<Attempt, ServiceError> {
    // Its payment is recorded (the webhook came): what is due now is new.
    if latest.status == "succeeded" {
        return Ok(Attempt::Next);
    }
    let live = match stripe.retrieve_payment_intent(key, &latest.id).await {
        Ok(live) => live,
        // Not in this Stripe account (the keys changed): start afresh.
        Err(StripeError::Api { status: 404, .. }) => return Ok(Attempt::Next),
        Err(err) => return Err(stripe_failure(err)),
    };
    match live.status.as_str() {
        "canceled" => Ok(Attempt::Next),
        "succeeded" | "processing" | "requires_capture" => Err(going_through()),
        _ if latest.amount_minor == due => Ok(Attempt::Again(live)),
        _ => {
            cancel(stripe, key, &latest.id).await?;
            let mut tx = cx.store.begin().await?;
            tx.set_payment_intent_status(cx.tenant_id(), &latest.id, "canceled", cx.now())
                .await?;
            tx.commit().await?;
            Ok(Attempt::Next)
        }
    }
}

/// Cancels an open intent; one canceled already is fine, one paid in the
/// meantime is a payment going through.
async fn cancel(stripe: &StripeClient, key: &str, id: &str) -> Result<(), ServiceError> {
    match stripe.cancel_payment_intent(key, id).await {
        Ok(_) => Ok(()),
        Err(StripeError::Api {
            payment_intent: Some(pi),
            ..
        }) if pi.status == "canceled" => Ok(()),
        Err(StripeError::Api {
            payment_intent: Some(_),
            ..
        }) => Err(going_through()),
        Err(err) => Err(stripe_failure(err)),
    }
}
