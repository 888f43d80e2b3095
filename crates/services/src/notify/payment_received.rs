//! "Payment received": sent to the customer when money is recorded
//! against an invoice (by staff, by Stripe, or with an order), in the
//! transaction that records it: how much, for which invoice, and what is
//! still due.

use mpanel_domain::EmailId;
use mpanel_domain::notify::EmailKind;
use mpanel_store::billing::{InvoiceRecord, PaymentRecord};
use mpanel_store::{TenantRecord, Tx};
use serde::Serialize;
use time::OffsetDateTime;

use super::fields::date;
use super::invoice_issued::seller_name;
use super::outbox;
use crate::ServiceError;
use crate::billing::documents::money;
use crate::billing::invoices::balance;

/// What the templates of this kind see, and nothing else.
#[derive(Debug, Clone, Serialize)]
pub struct PaymentReceived {
    pub name: String,
    pub sender: String,
    pub number: String,
    /// The payment, all of it.
    pub amount: String,
    pub received_on: String,
    /// What the invoice still asks for after it.
    pub remaining: String,
    pub paid_in_full: bool,
    /// The part beyond what the invoice asked for, kept as credit.
    pub credited: Option<String>,
}

impl PaymentReceived {
    /// Made-up values, to check a tenant's templates with.
    pub fn sample() -> Self {
        Self {
            name: "Jane Doe".into(),
            sender: "Host & Co".into(),
            number: "INV-2026-000001".into(),
            amount: "15.00 EUR".into(),
            received_on: "2026-11-21".into(),
            remaining: "5.00 EUR".into(),
            paid_in_full: false,
            credited: None,
        }
    }
}

/// Queues the message for `payment`, recorded against `inv` (as it is
/// after the payment), to the invoice's customer.
pub(crate) async fn enqueue_in(
    tx: &mut Tx,
    tenant: &TenantRecord,
    inv: &InvoiceRecord,
    payment: &PaymentRecord,
    now: OffsetDateTime,
) -> Result<EmailId, ServiceError> {
    let customer = tx
        .customer(tenant.id, inv.customer_id)
        .await?
        .ok_or_else(ServiceError::missing("customer"))?;
    let due = balance(inv).due().max(0);
    let excess = payment.amount_minor - payment.applied_minor;
    let context = PaymentReceived {
        name: customer.name,
        sender: seller_name(inv, &tenant.name),
        number: inv.number.clone().unwrap_or_default(),
        amount: money(payment.amount_minor, &inv.currency),
        received_on: date(Some(now)),
        remaining: money(due, &inv.currency),
        paid_in_full: due == 0,
        credited: (excess > 0).then(|| money(excess, &inv.currency)),
    };
    outbox::enqueue_plain(
        tx,
        tenant.id,
        EmailKind::PaymentReceived,
        &customer.email,
        &context,
        now,
    )
    .await
}
