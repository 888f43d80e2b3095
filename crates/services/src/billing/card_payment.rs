//! Paying an invoice by card in the console: the Stripe PaymentIntent for
//! what the invoice still owes, with the publishable key Stripe.js needs
//! in the browser. A customer pays only their own issued invoices;
//! Stripe's webhook then records the payment (see [`super::stripe_flow`]),
//! never the browser's word.

use mpanel_domain::InvoiceId;
use mpanel_domain::identity::{Permission, Role};

use super::invoices;
use super::settings;
use super::stripe::StripeClient;
use super::stripe_flow::{self, IntentCreated};
use crate::{Context, ServiceError};

/// What the payment page hands to Stripe.js.
#[derive(Debug, Clone)]
pub struct CardPayment {
    pub intent: IntentCreated,
    pub client_secret: String,
    pub publishable_key: String,
}

/// The publishable key when the tenant takes cards (both Stripe keys
/// are set); `None` otherwise.
pub async fn publishable_key(cx: &Context) -> Result<Option<String>, ServiceError> {
    let loaded = settings::load(&cx.store, cx.tenant_id()).await?;
    Ok(loaded
        .settings
        .stripe_publishable_key
        .filter(|_| loaded.stripe_secret_key.is_some()))
}

/// Starts (or takes up again) paying invoice `id` by card: asking again
/// returns the same intent while it is open for the amount due.
pub async fn start(
    cx: &Context,
    stripe: &StripeClient,
    id: InvoiceId,
) -> Result<CardPayment, ServiceError> {
    cx.principal.require(Permission::InvoicesPay)?;
    if cx.principal.role() == Role::Customer && !invoices::is_customers_own(cx, id).await? {
        return Err(ServiceError::missing("invoice")());
    }
    let not_set_up = || {
        ServiceError::Conflict(
            "card payments are not set up: the provider has not given its Stripe keys".into(),
        )
    };
    let loaded = settings::load(&cx.store, cx.tenant_id()).await?;
    let publishable_key = loaded
        .settings
        .stripe_publishable_key
        .clone()
        .ok_or_else(not_set_up)?;
    let secret_key = loaded
        .open_stripe_secret_key(&cx.store)?
        .ok_or_else(not_set_up)?;
    if is_live(&secret_key) != is_live(&publishable_key) {
        return Err(ServiceError::Conflict(
            "card payments are not set up: the provider's Stripe keys are one a test key, the other a live key".into(),
        ));
    }
    let intent = stripe_flow::create_payment_intent(cx, stripe, id).await?;
    let client_secret = intent
        .client_secret
        .clone()
        .ok_or_else(|| ServiceError::internal_msg("Stripe gave no client secret"))?;
    Ok(CardPayment {
        intent,
        client_secret,
        publishable_key,
    })
}

/// Stripe's live keys say so (`sk_live_…`, `rk_live_…`, `pk_live_…`).
fn is_live(key: &str) -> bool {
    key.split('_').nth(1) == Some("live")
}

#[cfg(test)]
mod tests {
    use super::is_live;

    #[test]
    fn live_and_test_keys_are_told_apart() {
        assert!(is_live("sk_live_abc") && is_live("rk_live_abc") && is_live("pk_live_x"));
        assert!(!is_live("sk_test_abc") && !is_live("pk_test_live_x"));
    }
}
