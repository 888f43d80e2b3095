//! "Invoice issued": sent to the customer when an invoice is issued, in
//! the issuing transaction, with the invoice's PDF attached.

use mpanel_domain::notify::{Attachment, EmailKind};
use mpanel_domain::{EmailId, TenantId};
use mpanel_store::Tx;
use mpanel_store::billing::InvoiceRecord;
use serde::Serialize;
use time::OffsetDateTime;

use super::fields::date;
use super::outbox::{self, NewEmail};
use super::templates::{self, Templates};
use crate::ServiceError;
use crate::billing::documents::money;
use crate::billing::invoices::balance;

/// What the templates of this kind see, and nothing else.
#[derive(Debug, Clone, Serialize)]
pub struct InvoiceIssued {
    pub customer_name: String,
    pub seller_name: String,
    pub number: String,
    pub issued_date: String,
    pub due_date: String,
    pub total: String,
    pub amount_due: String,
}

impl InvoiceIssued {
    /// Made-up values, to check a tenant's templates with.
    pub fn sample() -> Self {
        Self {
            customer_name: "Jane Doe".into(),
            seller_name: "Host & Co".into(),
            number: "INV-2026-000001".into(),
            issued_date: "2026-11-21".into(),
            due_date: "2026-12-05".into(),
            total: "12.34 EUR".into(),
            amount_due: "12.34 EUR".into(),
        }
    }
}

/// The seller's name as frozen on the invoice.
pub(crate) fn seller_name(inv: &InvoiceRecord, fallback: &str) -> String {
    inv.seller_snapshot
        .as_ref()
        .and_then(|s| s.get("name"))
        .and_then(serde_json::Value::as_str)
        .filter(|n| !n.trim().is_empty())
        .unwrap_or(fallback)
        .to_owned()
}

/// A field of the customer as frozen on the invoice.
pub(crate) fn customer_field(inv: &InvoiceRecord, field: &str) -> String {
    inv.customer_snapshot
        .as_ref()
        .and_then(|s| s.get(field))
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// Queues the message for the issued invoice `inv`, to the customer's
/// address frozen on it.
pub(crate) async fn enqueue_in(
    tx: &mut Tx,
    tenant_name: &str,
    inv: &InvoiceRecord,
    now: OffsetDateTime,
) -> Result<EmailId, ServiceError> {
    let renderer = templates::renderer_in(
        tx,
        inv.tenant_id,
        EmailKind::InvoiceIssued,
        Templates::Tenant,
    )
    .await?;
    let email = message(&renderer, tenant_name, inv)?;
    outbox::enqueue(tx, email, now).await
}

/// Queues the messages for the issued invoices `invoices` of `tenant`
/// (the billing run's chunk): the templates looked up once, the messages
/// and their jobs written many rows per statement.
pub(crate) async fn enqueue_many_in(
    tx: &mut Tx,
    tenant: TenantId,
    tenant_name: &str,
    invoices: &[InvoiceRecord],
    now: OffsetDateTime,
) -> Result<(), ServiceError> {
    let renderer =
        templates::renderer_in(tx, tenant, EmailKind::InvoiceIssued, Templates::Tenant).await?;
    let emails = invoices
        .iter()
        .map(|inv| message(&renderer, tenant_name, inv))
        .collect::<Result<Vec<_>, _>>()?;
    outbox::enqueue_many(tx, emails, now).await?;
    Ok(())
}

/// The message for `inv`, rendered.
fn message(
    renderer: &templates::Renderer,
    tenant_name: &str,
    inv: &InvoiceRecord,
) -> Result<NewEmail, ServiceError> {
    let context = InvoiceIssued {
        customer_name: customer_field(inv, "name"),
        seller_name: seller_name(inv, tenant_name),
        number: inv.number.clone().unwrap_or_default(),
        issued_date: date(inv.issued_at),
        due_date: date(inv.due_at),
        total: money(inv.total_minor, &inv.currency),
        amount_due: money(balance(inv).due().max(0), &inv.currency),
    };
    Ok(NewEmail {
        tenant: inv.tenant_id,
        kind: EmailKind::InvoiceIssued,
        recipient: customer_field(inv, "email"),
        rendered: renderer.render(&context)?,
        link: None,
        attachments: vec![Attachment::InvoicePdf { invoice_id: inv.id }],
    })
}
