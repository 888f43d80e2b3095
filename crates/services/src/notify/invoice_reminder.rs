//! "Invoice reminder": a dunning step before or after an invoice's due
//! date, queued in the billing run's transaction.

use mpanel_domain::notify::{Attachment, EmailKind};
use mpanel_domain::{EmailId, InvoiceId};
use mpanel_store::{TenantRecord, Tx};
use serde::Serialize;
use time::OffsetDateTime;

use super::fields::date;
use super::invoice_issued::seller_name;
use super::outbox::{self, NewEmail};
use super::templates::{self, Templates};
use crate::ServiceError;
use crate::billing::documents::money;
use crate::billing::invoices::balance;

/// What the templates of this kind see, and nothing else.
#[derive(Debug, Clone, Serialize)]
pub struct InvoiceReminder {
    pub customer_name: String,
    pub seller_name: String,
    pub number: String,
    pub due_date: String,
    pub amount_due: String,
    /// Past the due date (else before it).
    pub overdue: bool,
    /// Days from (or to) the due date.
    pub days: u32,
}

impl InvoiceReminder {
    /// Made-up values, to check a tenant's templates with.
    pub fn sample() -> Self {
        Self {
            customer_name: "Jane Doe".into(),
            seller_name: "Host & Co".into(),
            number: "INV-2026-000001".into(),
            due_date: "2026-12-05".into(),
            amount_due: "12.34 EUR".into(),
            overdue: true,
            days: 3,
        }
    }
}

/// Queues the reminder `days` from the due date (negative: before) of
/// the tenant's invoice `id`, to its customer.
pub(crate) async fn enqueue_in(
    tx: &mut Tx,
    tenant: &TenantRecord,
    id: InvoiceId,
    days: i32,
    now: OffsetDateTime,
) -> Result<EmailId, ServiceError> {
    let inv = tx
        .invoice_for_update(tenant.id, id)
        .await?
        .ok_or_else(ServiceError::missing("invoice"))?;
    let customer = tx
        .customer(tenant.id, inv.customer_id)
        .await?
        .ok_or_else(ServiceError::missing("customer"))?;
    let context = InvoiceReminder {
        customer_name: customer.name.clone(),
        seller_name: seller_name(&inv, &tenant.name),
        number: inv.number.clone().unwrap_or_default(),
        due_date: date(inv.due_at),
        amount_due: money(balance(&inv).due().max(0), &inv.currency),
        overdue: days > 0,
        days: days.unsigned_abs(),
    };
    let email = NewEmail {
        tenant: tenant.id,
        kind: EmailKind::InvoiceReminder,
        recipient: customer.email,
        rendered: templates::render_in(
            tx,
            tenant.id,
            EmailKind::InvoiceReminder,
            &context,
            Templates::Tenant,
        )
        .await?,
        link: None,
        attachments: vec![Attachment::InvoicePdf { invoice_id: id }],
    };
    outbox::enqueue(tx, email, now).await
}
