//! Stripe in the billing flow: a PaymentIntent for what an invoice still
//! owes, and the webhook that records what Stripe reports. Every event id
//! is kept once (a replay changes nothing); amounts Stripe reports are
//! cumulative, so events arriving out of order are applied once and in
//! effect; an event about a payment not yet known is refused with a 503 so
//! that Stripe delivers it again later.

use mpanel_domain::billing::invoice::InvoiceStatus;
use mpanel_domain::billing::payment::{CreditDisposition, PaymentProvider};
use mpanel_domain::billing::stripe::{StripeEvent, stripe_exponent, verify_signature};
use mpanel_domain::catalog::Currency;
use mpanel_domain::orders::signature;
use mpanel_domain::{Clock, InvoiceId, PaymentId, TenantId};
use mpanel_store::billing::{CreditEntry, InvoiceRecord, PaymentIntentRecord, PaymentRecord};
use mpanel_store::identity::security_events::SecurityEvent;
use mpanel_store::{Store, TenantRecord, Tx};
use serde::Serialize;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::credit_notes::{self, CreditNoteInput};
use super::invoices::balance;
use super::payments;
use super::settings;
use super::stripe::{PaymentIntent, PaymentIntentRequest, StripeClient, StripeError};
use super::stripe_attempts::{self, Attempt};
use crate::actor::Change;
use crate::{Actor, Context, ServiceError};

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct IntentCreated {
    pub payment_intent_id: String,
    /// For Stripe.js in the customer's browser.
    pub client_secret: Option<String>,
    pub amount_minor: i64,
    pub currency: String,
    pub status: String,
}

pub(super) fn stripe_failure(err: StripeError) -> ServiceError {
    match err {
        StripeError::Transient(_) => ServiceError::Busy,
        StripeError::Api { message, .. } => {
            ServiceError::Conflict(format!("Stripe refused the payment: {message}"))
        }
        StripeError::Invalid(m) => ServiceError::invalid("amount_minor", m),
    }
}

/// `POST /api/billing/invoices/:id/stripe/payment-intent`: an intent for
/// the amount due. The invoice's latest intent is taken up again while
/// Stripe holds it open for that amount (see [`super::stripe_attempts`]);
/// a new one's Stripe `Idempotency-Key` is the invoice id, the attempt and
/// the amount, so a retry whose answer was lost makes no second one.
pub async fn create_payment_intent(
    cx: &Context,
    stripe: &StripeClient,
    id: InvoiceId,
) -> Result<IntentCreated, ServiceError> {
    let store = &cx.store;
    let tenant = &cx.tenant;
    let actor = &cx.actor;
    store
        .invoice(tenant.id, id)
        .await?
        .ok_or_else(ServiceError::missing("invoice"))?;
    let loaded = settings::load(store, tenant.id).await?;
    let key = loaded.open_stripe_secret_key(store)?.ok_or_else(|| {
        ServiceError::Conflict(
            "Stripe is not set up: PUT /api/billing/settings with stripe_secret_key".into(),
        )
    })?;
    let now = cx.now();
    let (inv, due, latest) = stripe_attempts::open_invoice(store, tenant, id).await?;
    let attempt = match latest {
        None => 1,
        Some(pi) => match stripe_attempts::take_up(cx, stripe, &key, &pi, due).await? {
            Attempt::Again(intent) => return Ok(created(intent, due, inv.currency)),
            Attempt::Next => pi.attempt + 1,
        },
    };
    let currency = Currency::parse(&inv.currency).map_err(ServiceError::internal_msg)?;
    let intent = stripe
        .create_payment_intent(
            &key,
            // The amount is part of the key: an attempt whose answer was
            // lost cannot block a later one for another amount.
            &format!("mpanel-invoice-{id}-attempt-{attempt}-{due}"),
            &PaymentIntentRequest {
                amount_minor: due,
                currency,
                invoice_id: id.to_string(),
                tenant_id: tenant.id,
                customer: None,
                payment_method: None,
                off_session: false,
            },
        )
        .await
        .map_err(stripe_failure)?;
    let record = PaymentIntentRecord {
        id: intent.id.clone(),
        tenant_id: tenant.id,
        invoice_id: id,
        attempt,
        amount_minor: due,
        currency: inv.currency.clone(),
        status: intent.status.clone(),
    };
    save_intent(store, actor, &record, now).await?;
    Ok(created(intent, due, inv.currency))
}

fn created(intent: PaymentIntent, due: i64, currency: String) -> IntentCreated {
    IntentCreated {
        payment_intent_id: intent.id,
        client_secret: intent.client_secret,
        amount_minor: due,
        currency,
        status: intent.status,
    }
}

/// Keeps the intent Stripe made (so its webhook events are known), audited.
async fn save_intent(
    store: &Store,
    actor: &Actor,
    record: &PaymentIntentRecord,
    now: OffsetDateTime,
) -> Result<(), ServiceError> {
    let mut tx = store.begin().await?;
    tx.save_payment_intent(record, now).await?;
    tx.record_audit(&actor.audit(Change {
        tenant: record.tenant_id,
        action: "stripe.payment_intent.create",
        target_type: "invoice",
        target_id: record.invoice_id.to_string(),
        before: None,
        after: Some(json!({"payment_intent": record.id, "amount_minor": record.amount_minor, "attempt": record.attempt})),
        at: now,
    }))
    .await?;
    tx.commit().await?;
    Ok(())
}

/// What the webhook did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookOutcome {
    Handled,
    /// Seen before: nothing changed.
    Replayed,
    /// A type we do not act on (recorded, so a replay is still a no-op).
    Ignored,
}

/// Stripe's amount back in our minor units.
fn from_stripe(amount: i64, currency: Currency) -> Result<i64, ServiceError> {
    let (ours, theirs) = (currency.exponent(), stripe_exponent(currency));
    let scale = |d: u8| 10i64.pow(u32::from(d));
    if ours >= theirs {
        amount
            .checked_mul(scale(ours - theirs))
            .ok_or_else(|| ServiceError::invalid("amount", "too large"))
    } else {
        Ok(amount / scale(theirs - ours))
    }
}

fn field<'a>(object: &'a Value, name: &str) -> Result<&'a str, ServiceError> {
    object
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| ServiceError::invalid(format!("data.object.{name}"), "is missing"))
}

fn amount(object: &Value, name: &str, currency: Currency) -> Result<i64, ServiceError> {
    let raw = object
        .get(name)
        .and_then(Value::as_i64)
        .ok_or_else(|| ServiceError::invalid(format!("data.object.{name}"), "is missing"))?;
    from_stripe(raw, currency)
}

fn currency_of(object: &Value) -> Result<Currency, ServiceError> {
    Currency::parse(&field(object, "currency")?.to_ascii_uppercase())
        .map_err(|m| ServiceError::invalid("data.object.currency", m))
}

/// A refused `Stripe-Signature`.
fn refused(e: signature::SignatureError) -> ServiceError {
    ServiceError::Unauthenticated(
        e.to_string()
            .replace("X-Mpanel-Signature", "Stripe-Signature"),
    )
}

/// The payment an event is about is not recorded yet: have Stripe retry.
fn not_yet(what: &str) -> ServiceError {
    ServiceError::Unavailable(format!(
        "{what} is not recorded yet; deliver this event again later"
    ))
}

/// `POST /api/billing/stripe/webhook?tenant=…`: verifies and applies one
/// event. An unknown tenant, or one without a webhook secret, is refused
/// exactly like a bad signature (same work, same answer).
pub async fn handle_webhook(
    store: &Store,
    clock: &dyn Clock,
    tenant: Option<&TenantRecord>,
    signature: Option<&str>,
    body: &[u8],
) -> Result<WebhookOutcome, ServiceError> {
    let now = clock.now();
    // The same lookup whoever is named (a tenant that does not exist reads
    // as one without settings), so the time does not tell who exists. A
    // secret that does not open (moved from another tenant's row, or sealed
    // under another key) is refused like a wrong signature.
    let lookup = tenant.map_or(TenantId::from_uuid(uuid::Uuid::nil()), |t| t.id);
    let secret = settings::load(store, lookup)
        .await?
        .open_stripe_webhook_secret(store)
        .ok()
        .flatten();
    let (Some(tenant), Some(secret)) = (tenant, secret) else {
        return Err(refused(signature::refuse_unknown(
            signature,
            body,
            now.unix_timestamp(),
        )));
    };
    verify_signature(&secret, signature, body, now.unix_timestamp()).map_err(refused)?;
    let event: StripeEvent = serde_json::from_slice(body)
        .map_err(|e| ServiceError::invalid("body", format!("not a Stripe event: {e}")))?;
    let actor = Actor::system("webhook:stripe");
    let mut tx = store.begin().await?;
    if !tx
        .record_stripe_event(tenant.id, &event.id, &event.type_, now)
        .await?
    {
        return Ok(WebhookOutcome::Replayed);
    }
    let object = &event.data.object;
    let outcome = match event.type_.as_str() {
        "payment_intent.succeeded" => {
            intent_succeeded(&mut tx, tenant, object, &actor, now).await?
        }
        "payment_intent.payment_failed" => {
            let id = field(object, "id")?;
            tx.set_payment_intent_status(tenant.id, id, "failed", now)
                .await?;
            WebhookOutcome::Handled
        }
        "charge.refunded" => charge_refunded(&mut tx, tenant, object, &actor, now).await?,
        "charge.dispute.created" => {
            dispute_created(&mut tx, tenant, object, &event.id, now).await?
        }
        _ => WebhookOutcome::Ignored,
    };
    tx.commit().await?;
    Ok(outcome)
}

async fn intent_succeeded(
    tx: &mut Tx,
    tenant: &TenantRecord,
    object: &Value,
    actor: &Actor,
    now: OffsetDateTime,
) -> Result<WebhookOutcome, ServiceError> {
    let pi = field(object, "id")?;
    // Intents mPanel did not create (the marketing site's, the Stripe
    // account's other uses) are acknowledged and left alone.
    let Some(invoice) = our_invoice(tenant, object) else {
        return Ok(WebhookOutcome::Ignored);
    };
    let currency = currency_of(object)?;
    let received = amount(object, "amount_received", currency)?;
    let inv = tx
        .invoice_for_update(tenant.id, invoice)
        .await?
        .ok_or_else(ServiceError::missing("invoice"))?;
    tx.set_payment_intent_status(tenant.id, pi, "succeeded", now)
        .await?;
    // Checked under the invoice's lock: concurrent deliveries record once.
    if tx
        .payment_by_reference(tenant.id, PaymentProvider::Stripe.as_str(), pi)
        .await?
        .is_some()
    {
        return Ok(WebhookOutcome::Handled);
    }
    if inv.currency != currency.code() {
        return Err(ServiceError::invalid(
            "data.object.currency",
            "is not the invoice's currency",
        ));
    }
    if matches!(
        inv.status,
        InvoiceStatus::Issued | InvoiceStatus::PartiallyPaid | InvoiceStatus::Overdue
    ) {
        payments::record_in(
            tx,
            tenant,
            inv,
            payments::Received {
                provider: PaymentProvider::Stripe,
                reference: Some(pi.to_owned()),
                amount_minor: received,
            },
            actor,
            now,
        )
        .await?;
    } else {
        payment_to_credit(tx, tenant, &inv, pi, received, actor, now).await?;
    }
    Ok(WebhookOutcome::Handled)
}

/// The invoice an intent pays, when this tenant's mPanel created it.
fn our_invoice(tenant: &TenantRecord, object: &Value) -> Option<InvoiceId> {
    let ours = object
        .pointer("/metadata/tenant_id")
        .and_then(Value::as_str)
        .is_some_and(|t| t == tenant.id.to_string());
    let invoice: Option<InvoiceId> = object
        .pointer("/metadata/invoice_id")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok());
    invoice.filter(|_| ours)
}

/// An invoice paid meanwhile by other means (or voided): the money is
/// recorded against the intent (so refunds and disputes find it) and
/// becomes the customer's credit, never lost.
async fn payment_to_credit(
    tx: &mut Tx,
    tenant: &TenantRecord,
    inv: &InvoiceRecord,
    pi: &str,
    received: i64,
    actor: &Actor,
    now: OffsetDateTime,
) -> Result<(), ServiceError> {
    let payment = PaymentRecord {
        id: PaymentId::new(),
        tenant_id: tenant.id,
        invoice_id: inv.id,
        customer_id: inv.customer_id,
        provider: PaymentProvider::Stripe.as_str().to_owned(),
        reference: Some(pi.to_owned()),
        currency: inv.currency.clone(),
        amount_minor: received,
        applied_minor: 0,
        refunded_minor: 0,
        status: "SUCCESS".to_owned(),
        failure: None,
        created_at: now,
        updated_at: now,
    };
    tx.insert_payment(&payment).await?;
    tx.adjust_credit(&CreditEntry {
        tenant: tenant.id,
        customer: inv.customer_id,
        currency: &inv.currency,
        delta_minor: received,
        reason: "Stripe payment for a settled invoice",
        invoice: Some(inv.id),
        payment: Some(payment.id),
        credit_note: None,
        at: now,
    })
    .await?;
    tx.record_audit(&actor.audit(Change {
        tenant: tenant.id,
        action: "payment.to_credit",
        target_type: "invoice",
        target_id: inv.id.to_string(),
        before: Some(json!({"status": inv.status.as_str()})),
        after: Some(
            json!({"payment_id": payment.id, "payment_intent": pi, "credited_minor": received}),
        ),
        at: now,
    }))
    .await?;
    Ok(())
}

/// The recorded payment of intent `pi`, or why there is none: an intent
/// mPanel created whose payment is not recorded yet is retried by Stripe
/// later; any other is not ours.
async fn payment_of_intent(
    tx: &mut Tx,
    tenant: &TenantRecord,
    pi: &str,
) -> Result<Option<PaymentRecord>, ServiceError> {
    if let Some(p) = tx
        .payment_by_reference(tenant.id, PaymentProvider::Stripe.as_str(), pi)
        .await?
    {
        return Ok(Some(p));
    }
    if tx.payment_intent_known(tenant.id, pi).await? {
        return Err(not_yet(&format!("the payment {pi}")));
    }
    Ok(None)
}

async fn charge_refunded(
    tx: &mut Tx,
    tenant: &TenantRecord,
    object: &Value,
    actor: &Actor,
    now: OffsetDateTime,
) -> Result<WebhookOutcome, ServiceError> {
    let pi = field(object, "payment_intent")?;
    let charge = field(object, "id")?;
    let currency = currency_of(object)?;
    let refunded_total = amount(object, "amount_refunded", currency)?;
    let Some(found) = payment_of_intent(tx, tenant, pi).await? else {
        return Ok(WebhookOutcome::Ignored);
    };
    // Lock the invoice, then read the payment again: concurrent refund
    // events for one charge apply their cumulative totals one after the
    // other, never on a stale read.
    let inv = tx
        .invoice_for_update(tenant.id, found.invoice_id)
        .await?
        .ok_or_else(ServiceError::missing("invoice"))?;
    let payment = tx
        .payment_by_reference(tenant.id, PaymentProvider::Stripe.as_str(), pi)
        .await?
        .unwrap_or(found);
    // Cumulative: a late, smaller total changes nothing. What was given
    // back otherwise (a CREDIT note) is not refunded twice.
    let delta = (refunded_total.min(payment.applied_minor) - payment.refunded_minor)
        .min(balance(&inv).received());
    if delta <= 0 {
        return Ok(WebhookOutcome::Handled);
    }
    credit_notes::create_in(
        tx,
        tenant,
        inv,
        &CreditNoteInput {
            amount_minor: delta,
            disposition: CreditDisposition::Refund,
            reason: format!("Refunded in Stripe (charge {charge})"),
            payment_id: Some(payment.id),
        },
        Some(format!("stripe:{charge}:{refunded_total}")),
        actor,
        now,
    )
    .await?;
    Ok(WebhookOutcome::Handled)
}

async fn dispute_created(
    tx: &mut Tx,
    tenant: &TenantRecord,
    object: &Value,
    event_id: &str,
    now: OffsetDateTime,
) -> Result<WebhookOutcome, ServiceError> {
    let pi = field(object, "payment_intent")?;
    let Some(payment) = payment_of_intent(tx, tenant, pi).await? else {
        return Ok(WebhookOutcome::Ignored);
    };
    tx.flag_invoice_disputed(tenant.id, payment.invoice_id, now)
        .await?;
    tx.record_security_event(&SecurityEvent {
        tenant_id: Some(tenant.id),
        user_id: None,
        kind: "PAYMENT_DISPUTED",
        ip: None,
        detail: Some(
            json!({"invoice_id": payment.invoice_id, "payment_intent": pi, "event": event_id,
            "reason": object.get("reason"), "amount": object.get("amount")}),
        ),
        at: now,
    })
    .await?;
    tx.record_audit(&Actor::system("webhook:stripe").audit(Change {
        tenant: tenant.id,
        action: "invoice.disputed",
        target_type: "invoice",
        target_id: payment.invoice_id.to_string(),
        before: None,
        after: Some(json!({"disputed": true, "payment_intent": pi})),
        at: now,
    }))
    .await?;
    Ok(WebhookOutcome::Handled)
}
