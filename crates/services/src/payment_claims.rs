//! An order's `payment` claim with provider `STRIPE` names a PaymentIntent
//! the marketing site says it collected. A leaked order secret must not be
//! enough to get services for free, so the claim is checked against Stripe,
//! with the tenant's own key, before the order is recorded as paid: the
//! intent exists in the tenant's Stripe account, succeeded, and collected
//! the claimed amount in the order's currency. Claims with other providers
//! (bank transfer, manual) are the site's word, as before.

use mpanel_domain::billing::payment::PaymentProvider;
use mpanel_domain::billing::stripe::stripe_amount;
use mpanel_domain::catalog::Currency;
use mpanel_store::{Store, TenantRecord};

use crate::ServiceError;
use crate::billing::settings;
use crate::billing::stripe::{StripeClient, StripeError};
use crate::orders::PaymentInput;

/// Refuses a Stripe claim Stripe does not confirm; other providers pass.
pub(crate) async fn check(
    store: &Store,
    stripe: &StripeClient,
    tenant: &TenantRecord,
    claim: &PaymentInput,
    currency: Currency,
) -> Result<(), ServiceError> {
    let provider = claim.provider.trim().to_ascii_uppercase().parse();
    // A zero claim records no payment (a free order settles on issue; any
    // other total refuses the mismatch), so there is nothing to confirm.
    if provider != Ok(PaymentProvider::Stripe) || claim.amount_minor == 0 {
        return Ok(());
    }
    let key = settings::load(store, tenant.id)
        .await?
        .open_stripe_secret_key(store)?
        .ok_or_else(|| {
            ServiceError::invalid(
                "payment.provider",
                "this tenant has no Stripe key, so a Stripe payment cannot be confirmed",
            )
        })?;
    let reference = claim.reference.trim();
    let intent = stripe
        .retrieve_payment_intent(&key, reference)
        .await
        .map_err(|e| match e {
            StripeError::Transient(_) => ServiceError::Unavailable(
                "Stripe cannot be reached to confirm the payment; retry with the same Idempotency-Key"
                    .into(),
            ),
            StripeError::Api { .. } | StripeError::Invalid(_) => ServiceError::invalid(
                "payment.reference",
                "not a PaymentIntent of this tenant's Stripe account",
            ),
        })?;
    let expected = stripe_amount(claim.amount_minor, currency)
        .map_err(|m| ServiceError::invalid("payment.amount_minor", m))?;
    confirmed(&intent, expected, currency)
}

/// What Stripe says must match the claim.
fn confirmed(
    intent: &crate::billing::stripe::PaymentIntent,
    expected: i64,
    currency: Currency,
) -> Result<(), ServiceError> {
    if intent.metadata.contains_key("invoice_id") {
        // mPanel made it to collect one of its invoices: it pays that one.
        return Err(ServiceError::invalid(
            "payment.reference",
            "this PaymentIntent pays an mPanel invoice, not a new order",
        ));
    }
    if intent.status != "succeeded" {
        return Err(ServiceError::invalid(
            "payment.status",
            format!(
                "Stripe says the PaymentIntent is {}, not succeeded",
                intent.status
            ),
        ));
    }
    if !intent.currency.eq_ignore_ascii_case(currency.code()) {
        return Err(ServiceError::invalid(
            "payment.reference",
            format!(
                "the PaymentIntent is in {}, the order in {}",
                intent.currency.to_ascii_uppercase(),
                currency.code()
            ),
        ));
    }
    if intent.amount_received != expected {
        return Err(ServiceError::invalid(
            "payment.amount_minor",
            "Stripe collected a different amount than the order claims",
        ));
    }
    Ok(())
}
