//! Auto-pay: an invoice the billing run issues to a customer with a saved
//! Stripe card is charged off-session by a `billing.autopay` job. A decline
//! schedules the next try (`automation.autopay_retry_days`); Stripe being
//! unreachable retries the job. The money is recorded when Stripe's webhook
//! reports it, as for any PaymentIntent.

use mpanel_domain::billing::invoice::InvoiceStatus;
use mpanel_domain::catalog::Currency;
use mpanel_domain::{Clock, CustomerId, InvoiceId, TenantId};
use mpanel_jobs::{JobOptions, JobPayload, enqueue_job};
use mpanel_store::billing::{PaymentIntentRecord, SavedCard};
use mpanel_store::{Store, Tx};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;

use super::invoices::balance;
use super::settings;
use super::stripe::{PaymentIntentRequest, StripeClient, StripeError};
use crate::actor::Change;
use crate::{Actor, Context, ServiceError};

pub const AUTOPAY_JOB: &str = "billing.autopay";

/// The payload of an auto-pay job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Autopay {
    pub tenant_id: TenantId,
    pub invoice_id: InvoiceId,
    /// 1 for the first try.
    pub attempt: u32,
}

impl JobPayload for Autopay {
    const KIND: &'static str = AUTOPAY_JOB;
}

/// Queues try `attempt` of charging the invoice, not before `run_at`.
pub(crate) async fn enqueue_in(
    tx: &mut Tx,
    job: &Autopay,
    run_at: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<(), ServiceError> {
    let options = JobOptions {
        queue: "billing".into(),
        run_at: Some(run_at),
        unique_key: Some(format!("{AUTOPAY_JOB}:{}:{}", job.invoice_id, job.attempt)),
        max_attempts: 10,
        ..JobOptions::default()
    };
    enqueue_job(tx, job, &options, now).await?;
    Ok(())
}

/// `PUT /api/billing/customers/:id/payment-method`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CardInput {
    /// `cus_…`; both absent (or null) forgets the card.
    #[schema(pattern = "^cus_[A-Za-z0-9_]{0,251}$")]
    pub stripe_customer_id: Option<String>,
    /// `pm_…`.
    #[schema(pattern = "^pm_[A-Za-z0-9_]{0,252}$")]
    pub stripe_payment_method_id: Option<String>,
}

/// Whether the customer now pays by saved card.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CardSaved {
    pub customer_id: CustomerId,
    pub autopay: bool,
}

fn stripe_id(value: &str, prefix: &str, field: &'static str) -> Result<(), ServiceError> {
    let ok = value.starts_with(prefix)
        && value.len() <= 255
        && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ServiceError::invalid(
            field,
            format!("a Stripe id such as {prefix}…"),
        ))
    }
}

/// Saves or forgets the customer's card for auto-pay.
pub async fn set_card(
    cx: &Context,
    customer: CustomerId,
    input: CardInput,
) -> Result<CardSaved, ServiceError> {
    let store = &cx.store;
    let tenant = cx.tenant_id();
    let actor = &cx.actor;
    let card = match (input.stripe_customer_id, input.stripe_payment_method_id) {
        (Some(c), Some(pm)) => {
            stripe_id(&c, "cus_", "stripe_customer_id")?;
            stripe_id(&pm, "pm_", "stripe_payment_method_id")?;
            Some((c, pm))
        }
        (None, None) => None,
        _ => {
            return Err(ServiceError::invalid(
                "stripe_payment_method_id",
                "give both the customer and the payment method, or neither",
            ));
        }
    };
    let now = cx.now();
    let mut tx = store.begin().await?;
    if !tx.set_saved_card(tenant, customer, card.as_ref()).await? {
        return Err(ServiceError::NotFound("no such customer".into()));
    }
    tx.record_audit(&actor.audit(Change {
        tenant,
        action: "customer.payment_method",
        target_type: "customer",
        target_id: customer.to_string(),
        before: None,
        after: Some(json!({"saved": card.is_some()})),
        at: now,
    }))
    .await?;
    tx.commit().await?;
    Ok(CardSaved {
        customer_id: customer,
        autopay: card.is_some(),
    })
}

/// One try: an off-session PaymentIntent for what the invoice still owes.
pub async fn attempt(
    store: &Store,
    clock: &dyn Clock,
    stripe: &StripeClient,
    job: &Autopay,
) -> Result<(), ServiceError> {
    let now = clock.now();
    let tenant = job.tenant_id;
    let loaded = settings::load(store, tenant).await?;
    let Some(key) = loaded.open_stripe_secret_key(store)? else {
        return Ok(());
    };
    let mut tx = store.begin().await?;
    let inv = tx
        .invoice_for_update(tenant, job.invoice_id)
        .await?
        .ok_or_else(ServiceError::missing("invoice"))?;
    let due = balance(&inv).due();
    let open = matches!(
        inv.status,
        InvoiceStatus::Issued | InvoiceStatus::PartiallyPaid | InvoiceStatus::Overdue
    );
    let card: Option<SavedCard> = tx.saved_card(tenant, inv.customer_id).await?;
    tx.commit().await?;
    let (Some((customer, method)), true, true) = (card, open, due > 0) else {
        return Ok(());
    };
    let currency = Currency::parse(&inv.currency).map_err(ServiceError::internal_msg)?;
    let answer = stripe
        .create_payment_intent(
            &key,
            &format!("mpanel-autopay-{}-{}-{due}", job.invoice_id, job.attempt),
            &PaymentIntentRequest {
                amount_minor: due,
                currency,
                invoice_id: job.invoice_id.to_string(),
                tenant_id: tenant,
                customer: Some(customer),
                payment_method: Some(method),
                off_session: true,
            },
        )
        .await;
    let mut tx = store.begin().await?;
    let actor = Actor::system("billing");
    match answer {
        Ok(intent) => {
            tx.save_payment_intent(
                &PaymentIntentRecord {
                    id: intent.id.clone(),
                    tenant_id: tenant,
                    invoice_id: job.invoice_id,
                    // Apart from the attempts of the customer's own
                    // checkout (1, 2, ...), which share the invoice.
                    attempt: 1000 + i32::try_from(job.attempt).unwrap_or(0),
                    amount_minor: due,
                    currency: inv.currency.clone(),
                    status: intent.status.clone(),
                },
                now,
            )
            .await?;
            audit(
                &mut tx,
                &actor,
                job,
                "stripe.autopay",
                json!({"payment_intent": intent.id, "status": intent.status, "amount_minor": due}),
                now,
            )
            .await?;
        }
        Err(StripeError::Transient(m)) => return Err(ServiceError::Unavailable(m)),
        Err(StripeError::Api { message, .. }) | Err(StripeError::Invalid(message)) => {
            let retry_days = &loaded.settings.automation.autopay_retry_days;
            declined(&mut tx, &actor, job, &message, retry_days, now).await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// A declined card: audited, and tried again after the next of the
/// tenant's retry intervals, if one is left.
async fn declined(
    tx: &mut Tx,
    actor: &Actor,
    job: &Autopay,
    message: &str,
    retry_days: &[u32],
    now: OffsetDateTime,
) -> Result<(), ServiceError> {
    let next = retry_days.get(job.attempt as usize - 1).copied();
    audit(
        tx,
        actor,
        job,
        "stripe.autopay.declined",
        json!({"reason": message, "retry_in_days": next}),
        now,
    )
    .await?;
    if let Some(days) = next {
        let again = Autopay {
            attempt: job.attempt + 1,
            ..job.clone()
        };
        enqueue_in(tx, &again, now + time::Duration::days(i64::from(days)), now).await?;
    }
    Ok(())
}

async fn audit(
    tx: &mut Tx,
    actor: &Actor,
    job: &Autopay,
    action: &str,
    after: serde_json::Value,
    now: OffsetDateTime,
) -> Result<(), ServiceError> {
    let mut after = after;
    after["attempt"] = json!(job.attempt);
    tx.record_audit(&actor.audit(Change {
        tenant: job.tenant_id,
        action,
        target_type: "invoice",
        target_id: job.invoice_id.to_string(),
        before: None,
        after: Some(after),
        at: now,
    }))
    .await?;
    Ok(())
}
