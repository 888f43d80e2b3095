//! "Invoice issued": sent to the customer when an invoice is issued, with
//! the invoice's PDF attached. One invoice's message is written in the
//! issuing transaction; the billing run's are written by one
//! `notify.invoice_copies` job per chunk, queued in the chunk's
//! transaction.

use std::collections::{HashMap, HashSet};

use mpanel_domain::billing::invoice::InvoiceStatus;
use mpanel_domain::notify::{Attachment, EmailKind};
use mpanel_domain::{Clock, EmailId, InvoiceId, TenantId};
use mpanel_jobs::{JobOptions, JobPayload, enqueue_job};
use mpanel_store::billing::InvoiceRecord;
use mpanel_store::{Store, Tx};
use serde::{Deserialize, Serialize};
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

/// Queues the messages for the issued invoices `invoices` of `tenant` (one
/// outside a run: a new subscription, a plan change), in `tx`, the
/// templates looked up once.
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

/// The job that writes the customers' copies of a billing run chunk's
/// invoices.
pub const COPIES_JOB: &str = "notify.invoice_copies";

/// The `notify.invoice_copies` job's payload: each invoice with the id its
/// message is written under (chosen when the invoice was issued, so a
/// second attempt finds what the first wrote).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceCopies {
    pub tenant_id: TenantId,
    pub copies: Vec<(InvoiceId, EmailId)>,
}

impl JobPayload for InvoiceCopies {
    const KIND: &'static str = COPIES_JOB;
}

/// Queues, in `tx`, one job that writes the messages for the issued
/// invoices `invoices` of `tenant` (the billing run's chunk). Rendering
/// and writing a message per invoice in the run took over a quarter of
/// its time, inside the stretch where the other lane waits for the
/// invoice numbers.
pub(crate) async fn queue_copies_in(
    tx: &mut Tx,
    tenant: TenantId,
    invoices: &[InvoiceRecord],
    now: OffsetDateTime,
) -> Result<(), ServiceError> {
    let job = InvoiceCopies {
        tenant_id: tenant,
        copies: invoices
            .iter()
            .map(|inv| (inv.id, EmailId::new()))
            .collect(),
    };
    let options = JobOptions {
        queue: "notify".into(),
        max_attempts: outbox::MAX_ATTEMPTS,
        ..JobOptions::default()
    };
    enqueue_job(tx, &job, &options, now).await?;
    Ok(())
}

/// Runs a `notify.invoice_copies` job: writes each invoice's message as
/// the invoice now stands (a void one gets none) with its delivery job,
/// all in one transaction. What an earlier attempt wrote is not written
/// again.
pub async fn write_copies(
    store: &Store,
    clock: &dyn Clock,
    job: &InvoiceCopies,
) -> Result<(), ServiceError> {
    let tenant = store
        .tenant(job.tenant_id)
        .await?
        .ok_or_else(ServiceError::missing("tenant"))?;
    let mut tx = store.begin().await?;
    let ids: Vec<EmailId> = job.copies.iter().map(|c| c.1).collect();
    let written: HashSet<EmailId> = tx
        .written_email_ids(tenant.id, &ids)
        .await?
        .into_iter()
        .collect();
    let todo: Vec<InvoiceId> = job
        .copies
        .iter()
        .filter(|c| !written.contains(&c.1))
        .map(|c| c.0)
        .collect();
    if todo.is_empty() {
        tx.rollback().await?;
        return Ok(());
    }
    let invoices: HashMap<InvoiceId, InvoiceRecord> = tx
        .invoices_by_ids(tenant.id, &todo)
        .await?
        .into_iter()
        .map(|inv| (inv.id, inv))
        .collect();
    let renderer = templates::renderer_in(
        &mut tx,
        tenant.id,
        EmailKind::InvoiceIssued,
        Templates::Tenant,
    )
    .await?;
    let mut emails = Vec::with_capacity(todo.len());
    for (invoice_id, email_id) in job.copies.iter().filter(|c| !written.contains(&c.1)) {
        let Some(inv) = invoices.get(invoice_id) else {
            continue;
        };
        if matches!(inv.status, InvoiceStatus::Draft | InvoiceStatus::Void) {
            continue;
        }
        emails.push((*email_id, message(&renderer, &tenant.name, inv)?));
    }
    outbox::enqueue_many_as(&mut tx, emails, clock.now()).await?;
    tx.commit().await?;
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
