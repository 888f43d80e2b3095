//! "Service suspended", "service restored", "subscription cancelled":
//! sent to the customer from the one place a subscription's state changes
//! (`billing::subscriptions::commit_change`), with the webhook event of
//! the same change and in its transaction. One context, three kinds.

use mpanel_domain::EmailId;
use mpanel_domain::billing::subscription::{SubscriptionStatus, SuspendReason};
use mpanel_domain::notify::EmailKind;
use mpanel_domain::webhooks::EventType;
use mpanel_store::subscriptions::SubscriptionRecord;
use mpanel_store::{TenantRecord, Tx};
use serde::Serialize;
use time::OffsetDateTime;

use super::fields::date;
use super::outbox;
use crate::ServiceError;

/// What the templates of these kinds see, and nothing else.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceStatus {
    pub name: String,
    pub sender: String,
    /// The product's name.
    pub service: String,
    pub domain: Option<String>,
    /// The day of the change.
    pub on: String,
    /// Suspended because an invoice is overdue (paying it restores it).
    pub unpaid: bool,
    /// Ended because it expired (else cancelled).
    pub expired: bool,
}

impl ServiceStatus {
    /// Made-up values, to check a tenant's templates with.
    pub fn sample() -> Self {
        Self {
            name: "Jane Doe".into(),
            sender: "Host & Co".into(),
            service: "Web Pro".into(),
            domain: Some("example.org".into()),
            on: "2026-11-21".into(),
            unpaid: true,
            expired: false,
        }
    }
}

/// The message kind of a subscription's webhook event, if it has one.
pub(crate) fn kind_of(event: EventType) -> Option<EmailKind> {
    match event {
        EventType::SubscriptionSuspended => Some(EmailKind::ServiceSuspended),
        EventType::SubscriptionRestored => Some(EmailKind::ServiceRestored),
        EventType::SubscriptionCancelled => Some(EmailKind::SubscriptionCancelled),
        _ => None,
    }
}

/// The subscription's product name and domain, as the customer knows it.
pub(crate) async fn service_names(
    tx: &mut Tx,
    sub: &SubscriptionRecord,
) -> Result<(String, Option<String>), ServiceError> {
    let product = tx
        .product(sub.tenant_id, sub.product_id)
        .await?
        .map(|p| p.fields.name)
        .unwrap_or_default();
    let domain = tx.subscription_domain(sub.id).await?;
    Ok((product, domain))
}

/// Queues the `kind` message of `sub`'s change (already saved) to its
/// customer.
pub(crate) async fn enqueue_in(
    tx: &mut Tx,
    tenant: &TenantRecord,
    sub: &SubscriptionRecord,
    kind: EmailKind,
    now: OffsetDateTime,
) -> Result<EmailId, ServiceError> {
    let customer = tx
        .customer(tenant.id, sub.customer_id)
        .await?
        .ok_or_else(ServiceError::missing("customer"))?;
    let (service, domain) = service_names(tx, sub).await?;
    let context = ServiceStatus {
        name: customer.name,
        sender: tenant.name.clone(),
        service,
        domain,
        on: date(Some(now)),
        unpaid: sub.suspend_reason.as_deref() == Some(SuspendReason::Dunning.as_str()),
        expired: sub.status == SubscriptionStatus::Expired,
    };
    outbox::enqueue_plain(tx, tenant.id, kind, &customer.email, &context, now).await
}
