//! The billing run's invoices: a chunk's drafts priced for their
//! customers, numbered from one reserved block and written issued (many
//! rows per statement; on SQLite written as drafts, then issued), paid
//! from credit, mailed and charged to saved cards. A plan change issues
//! its invoice the same way.

use std::collections::{HashMap, HashSet};

use mpanel_domain::billing::invoice::{self, InvoiceStatus};
use mpanel_domain::billing::tax::{REVERSE_CHARGE_NOTE, Treatment};
use mpanel_domain::catalog::Currency;
use mpanel_domain::webhooks::EventType;
use mpanel_domain::{CustomerId, InvoiceId, SubscriptionId};
use mpanel_store::billing::{InvoiceLineRecord, InvoiceRecord};
use mpanel_store::orders::CustomerRecord;
use mpanel_store::subscriptions::SubscriptionRecord;
use mpanel_store::{AuditEntry, Engine, Tx};
use serde_json::json;

use super::invoices::{customer_snapshot, draft_record, price_lines, seller_snapshot, tenant_year};
use super::lines::LineIn;
use super::run::{Copies, RunContext, RunReport};
use super::{autopay, payments};
use crate::ServiceError;
use crate::actor::Change;
use crate::notify::invoice_issued;

/// One invoice the run is about to write.
pub(crate) struct Draft<'a> {
    pub id: InvoiceId,
    pub sub: &'a SubscriptionRecord,
    pub lines: Vec<LineIn>,
    /// The period it charges, if any.
    pub period: Option<(SubscriptionId, i32)>,
}

/// Prices, numbers and issues the drafts (many rows per statement), then
/// pays what customers' credit can and queues their copies and card
/// charges.
pub(crate) async fn write_invoices(
    tx: &mut Tx,
    ctx: &RunContext<'_>,
    drafts: Vec<Draft<'_>>,
    report: &mut RunReport,
) -> Result<(), ServiceError> {
    if drafts.is_empty() {
        return Ok(());
    }
    let mut customer_ids: Vec<CustomerId> = drafts.iter().map(|d| d.sub.customer_id).collect();
    customer_ids.sort_unstable();
    customer_ids.dedup();
    let customers: HashMap<CustomerId, CustomerRecord> = tx
        .customers_by_ids(ctx.tenant.id, &customer_ids)
        .await?
        .into_iter()
        .map(|c| (c.id, c))
        .collect();
    let mut priced = price_drafts(tx, ctx, drafts, &customers, report).await?;
    if priced.invoices.is_empty() {
        return Ok(());
    }
    issue_priced(tx, ctx, &mut priced).await?;
    report.invoices += priced.invoices.len();
    settle_issued(tx, ctx, &priced.invoices, &customer_ids).await
}

/// The drafts that charge something, priced: invoice rows (not yet
/// numbered) and their lines (by invoice id).
struct Priced {
    invoices: Vec<InvoiceRecord>,
    lines: Vec<(InvoiceId, InvoiceLineRecord)>,
}

/// Prices each draft for its customer; a draft with nothing to charge (a
/// free plan, no usage) makes no invoice and frees its period's claim.
async fn price_drafts(
    tx: &mut Tx,
    ctx: &RunContext<'_>,
    drafts: Vec<Draft<'_>>,
    customers: &HashMap<CustomerId, CustomerRecord>,
    report: &mut RunReport,
) -> Result<Priced, ServiceError> {
    let seller = seller_snapshot(ctx.tenant, &ctx.settings);
    let mut out = Priced {
        invoices: Vec::with_capacity(drafts.len()),
        lines: Vec::new(),
    };
    for d in drafts {
        let customer = customers.get(&d.sub.customer_id).ok_or_else(|| {
            ServiceError::internal_msg(format!("customer of {} missing", d.sub.id))
        })?;
        let currency = Currency::parse(&d.sub.currency).map_err(ServiceError::internal_msg)?;
        let priced = if d.lines.is_empty() {
            None
        } else {
            Some(price_lines(&d.lines, currency, &ctx.settings, customer)?)
        };
        let Some((records, subtotal, tax, total, treatment)) = priced.filter(|p| p.3 > 0) else {
            if let Some((sub, index)) = d.period {
                tx.clear_period_invoice(sub, index).await?;
            }
            continue;
        };
        let mut notes = Vec::new();
        if treatment == Treatment::ReverseCharge {
            notes.push(REVERSE_CHARGE_NOTE.to_owned());
        }
        out.lines.extend(records.into_iter().map(|l| (d.id, l)));
        *report
            .totals_minor
            .entry(d.sub.currency.clone())
            .or_default() += total;
        out.invoices.push(InvoiceRecord {
            customer_snapshot: Some(customer_snapshot(customer)),
            seller_snapshot: Some(seller.clone()),
            notes,
            ..draft_record(
                d.id,
                ctx.tenant.id,
                customer.id,
                currency,
                ctx.settings.tax_mode,
                [subtotal, tax, total],
                ctx.at,
            )
        });
    }
    Ok(out)
}

/// Writes the invoices issued and numbered from one reserved block, with
/// their lines and audit rows; `priced` then holds them as the database
/// does.
async fn issue_priced(
    tx: &mut Tx,
    ctx: &RunContext<'_>,
    priced: &mut Priced,
) -> Result<(), ServiceError> {
    write_numbered(tx, ctx, priced).await?;
    let invoices = &priced.invoices;
    let audits: Vec<AuditEntry> = invoices
        .iter()
        .map(|inv| {
            ctx.actor.audit(Change {
                tenant: ctx.tenant.id,
                action: "invoice.issue",
                target_type: "invoice",
                target_id: inv.id.to_string(),
                before: None,
                after: Some(json!({"status": "ISSUED", "number": inv.number, "total_minor": inv.total_minor, "currency": inv.currency, "source": "billing_run"})),
                at: ctx.at,
            })
        })
        .collect();
    tx.record_audits(&audits).await?;
    let events = invoices
        .iter()
        .map(|inv| {
            let data = json!({"id": inv.id, "number": inv.number, "customer_id": inv.customer_id,
                "total_minor": inv.total_minor, "currency": inv.currency,
                "due_at": inv.due_at.map(|d| d.unix_timestamp())});
            (EventType::InvoiceIssued, data)
        })
        .collect();
    crate::webhooks::emit_many(tx, ctx.tenant.id, events, ctx.at).await
}

/// Writes the priced invoices and their lines, numbered from one reserved
/// block and issued. The numbers' row stays locked from the reservation
/// until this commits, so what is written after it is what another lane
/// of the run waits for.
async fn write_numbered(
    tx: &mut Tx,
    ctx: &RunContext<'_>,
    priced: &mut Priced,
) -> Result<(), ServiceError> {
    let tenant = ctx.tenant.id;
    match tx.engine() {
        // Each invoice written once, issued: its lines first (their key to
        // it checked once the invoices are in). Issuing a draft rewrote the
        // whole row and every index entry: over a quarter of the run's
        // database time.
        Engine::Postgres => {
            tx.defer_invoice_line_check().await?;
            tx.insert_invoice_lines(tenant, &priced.lines).await?;
            number_and_issue(tx, ctx, &mut priced.invoices).await?;
            tx.insert_invoices(&priced.invoices).await?;
            tx.check_invoice_lines_now().await?;
        }
        // Drafts, then issued: SQLite updates a row in place, and its
        // deferred key's bookkeeping cost more than that update (the run
        // was 7 % slower written once).
        Engine::Sqlite => {
            tx.insert_invoices(&priced.invoices).await?;
            tx.insert_invoice_lines(tenant, &priced.lines).await?;
            number_and_issue(tx, ctx, &mut priced.invoices).await?;
            tx.issue_drafts(&priced.invoices).await?;
        }
    }
    Ok(())
}

/// Reserves one block of numbers and sets each invoice issued, in memory.
async fn number_and_issue(
    tx: &mut Tx,
    ctx: &RunContext<'_>,
    invoices: &mut [InvoiceRecord],
) -> Result<(), ServiceError> {
    let terms = time::Duration::days(i64::from(ctx.settings.payment_terms_days));
    let year = tenant_year(ctx.tenant, ctx.at)?;
    let first = tx
        .reserve_document_numbers(ctx.tenant.id, "INV", year, invoices.len() as u64)
        .await?;
    for (i, inv) in invoices.iter_mut().enumerate() {
        inv.status = InvoiceStatus::Issued;
        inv.number = Some(invoice::number("INV", year, first + i as u64));
        inv.issued_at = Some(ctx.at);
        inv.due_at = Some(ctx.at + terms);
    }
    Ok(())
}

/// Pays the new invoices from customers' credit, queues the customers'
/// copies, then a charge of the saved card for customers who have one
/// (what credit did not pay; the job looks again when it runs). The copies
/// go first: jobs ready at once are claimed in the order they were queued,
/// so the copies job starts no later than the charges (two worker slots
/// may still run them side by side; a card's payment is recorded later,
/// from Stripe's webhook).
async fn settle_issued(
    tx: &mut Tx,
    ctx: &RunContext<'_>,
    invoices: &[InvoiceRecord],
    customer_ids: &[CustomerId],
) -> Result<(), ServiceError> {
    let credited = pay_from_credit(tx, ctx, invoices, customer_ids).await?;
    queue_invoice_copies(tx, ctx, invoices, credited).await?;
    queue_autopay(tx, ctx, invoices, customer_ids).await
}

/// Pays what customers' credit can; the invoices it paid (part of), as
/// they now stand (`apply_credit` answers with them).
async fn pay_from_credit(
    tx: &mut Tx,
    ctx: &RunContext<'_>,
    invoices: &[InvoiceRecord],
    customer_ids: &[CustomerId],
) -> Result<HashMap<InvoiceId, InvoiceRecord>, ServiceError> {
    let with_credit: HashSet<(CustomerId, String)> = tx
        .customers_with_credit(ctx.tenant.id, customer_ids)
        .await?
        .into_iter()
        .collect();
    let mut credited = HashMap::new();
    for inv in invoices {
        if with_credit.contains(&(inv.customer_id, inv.currency.clone())) {
            let issued = tx
                .invoice_for_update(ctx.tenant.id, inv.id)
                .await?
                .ok_or_else(ServiceError::missing("invoice"))?;
            let paid = payments::apply_credit(tx, ctx.tenant, issued, &ctx.actor, ctx.at).await?;
            credited.insert(paid.id, paid);
        }
    }
    Ok(credited)
}

/// Queues the customers' copies of the invoices as `ctx.copies` says;
/// `credited` (what credit paid) is what the copies written here show.
async fn queue_invoice_copies(
    tx: &mut Tx,
    ctx: &RunContext<'_>,
    invoices: &[InvoiceRecord],
    mut credited: HashMap<InvoiceId, InvoiceRecord>,
) -> Result<(), ServiceError> {
    match ctx.copies {
        // One job writes them once this commits, each invoice as it then
        // stands (perhaps paid from credit).
        Copies::ByJob => {
            invoice_issued::queue_copies_in(tx, ctx.tenant.id, invoices, ctx.jobs_at).await
        }
        // Each invoice as it now stands (numbered, perhaps paid from
        // credit), without reading it again.
        Copies::InTransaction => {
            let issued: Vec<InvoiceRecord> = invoices
                .iter()
                .map(|inv| credited.remove(&inv.id).unwrap_or_else(|| inv.clone()))
                .collect();
            invoice_issued::enqueue_many_in(
                tx,
                ctx.tenant.id,
                &ctx.tenant.name,
                &issued,
                ctx.jobs_at,
            )
            .await
        }
    }
}

/// A `billing.autopay` job for each invoice of a customer with a saved
/// card.
async fn queue_autopay(
    tx: &mut Tx,
    ctx: &RunContext<'_>,
    invoices: &[InvoiceRecord],
    customer_ids: &[CustomerId],
) -> Result<(), ServiceError> {
    let with_card: HashSet<CustomerId> = tx
        .customers_with_saved_card(ctx.tenant.id, customer_ids)
        .await?
        .into_iter()
        .collect();
    for inv in invoices
        .iter()
        .filter(|i| with_card.contains(&i.customer_id))
    {
        let job = autopay::Autopay {
            tenant_id: ctx.tenant.id,
            invoice_id: inv.id,
            attempt: 1,
        };
        autopay::enqueue_in(tx, &job, ctx.jobs_at, ctx.jobs_at).await?;
    }
    Ok(())
}
