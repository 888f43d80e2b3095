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
use mpanel_store::tenants::TenantRecord;
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
/// invoices `invoices` of `tenant` (the billing run's chunk), to run once
/// the chunk commits.
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
/// all in one transaction, so an attempt writes all of them or none. The
/// messages' ids were chosen with the job: an attempt after one that
/// committed (its outcome lost) finds them and writes nothing, and two
/// attempts at once cannot both write one (its id is the outbox's key).
pub async fn write_copies(
    store: &Store,
    clock: &dyn Clock,
    job: &InvoiceCopies,
) -> Result<(), ServiceError> {
    let Some(tenant) = store.tenant(job.tenant_id).await? else {
        tracing::warn!(tenant = %job.tenant_id, "invoice copies of a tenant that is gone: none written");
        return Ok(());
    };
    // Read, rendered and written in the write transaction. Rendering in a
    // read transaction first kept one open at nearly every moment on
    // SQLite (a worker runs three jobs at once), so no checkpoint could
    // finish: writing a million messages grew the WAL to 964 MB and every
    // read slowed with it.
    let mut tx = store.begin().await?;
    let unwritten = unwritten(&mut tx, job).await?;
    if unwritten.is_empty() {
        tx.rollback().await?;
        return Ok(());
    }
    let emails = rendered(&mut tx, &tenant, &unwritten).await?;
    outbox::enqueue_many_as(&mut tx, emails, clock.now()).await?;
    tx.commit().await?;
    Ok(())
}

/// The job's copies the outbox does not hold yet.
async fn unwritten(
    tx: &mut Tx,
    job: &InvoiceCopies,
) -> Result<Vec<(InvoiceId, EmailId)>, ServiceError> {
    let ids: Vec<EmailId> = job.copies.iter().map(|(_, email_id)| *email_id).collect();
    let written: HashSet<EmailId> = tx
        .written_email_ids(job.tenant_id, &ids)
        .await?
        .into_iter()
        .collect();
    Ok(job
        .copies
        .iter()
        .filter(|(_, email_id)| !written.contains(email_id))
        .copied()
        .collect())
}

/// The messages of `copies`, rendered with the tenant's templates; an
/// invoice that is void (or missing) gets none.
async fn rendered(
    tx: &mut Tx,
    tenant: &TenantRecord,
    copies: &[(InvoiceId, EmailId)],
) -> Result<Vec<(EmailId, NewEmail)>, ServiceError> {
    let invoice_ids: Vec<InvoiceId> = copies.iter().map(|(invoice_id, _)| *invoice_id).collect();
    let invoices: HashMap<InvoiceId, InvoiceRecord> = tx
        .invoices_by_ids(tenant.id, &invoice_ids)
        .await?
        .into_iter()
        .map(|inv| (inv.id, inv))
        .collect();
    let renderer =
        templates::renderer_in(tx, tenant.id, EmailKind::InvoiceIssued, Templates::Tenant).await?;
    let mut emails = Vec::with_capacity(copies.len());
    for (invoice_id, email_id) in copies {
        match invoices.get(invoice_id) {
            Some(inv) if inv.status != InvoiceStatus::Void => {
                emails.push((*email_id, message(&renderer, &tenant.name, inv)?));
            }
            found => tracing::info!(
                invoice = %invoice_id,
                void = found.is_some(),
                "no copy of an invoice that is void or gone"
            ),
        }
    }
    Ok(emails)
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
