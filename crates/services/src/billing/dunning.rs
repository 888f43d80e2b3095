//! Dunning: reminders before and after an invoice's due date, then the
//! suspension of the services it pays for, then their termination and the
//! subscription's cancellation (a job then bills a metered one's usage so
//! far). Each step is recorded once per invoice (a re-run takes
//! none twice) and audited; a reminder becomes a notification job. After
//! downtime, reminders that were missed are recorded as skipped and only
//! the latest is sent.

use std::collections::HashSet;

use mpanel_domain::billing::dunning::{DunningStep, steps_due};
use mpanel_domain::billing::subscription::{SubscriptionStatus, SuspendReason};
use mpanel_domain::{InvoiceId, SubscriptionId};
use mpanel_jobs::{JobOptions, enqueue};
use mpanel_store::billing::OpenInvoice;
use mpanel_store::{Store, Tx};
use serde_json::json;

use super::final_usage;
use super::run::{RunContext, RunReport, finish};
use super::service_actions::ServiceAction;
use super::subscriptions::StatusChange;
use crate::ServiceError;
use crate::actor::Change;

/// The job a reminder becomes.
pub const REMINDER_JOB: &str = "billing.invoice_reminder";

/// Invoices looked at per transaction.
const PAGE: u32 = 500;

pub(crate) async fn run_tenant(
    store: &Store,
    ctx: &RunContext<'_>,
    report: &mut RunReport,
) -> Result<(), ServiceError> {
    let policy = &ctx.settings.automation.dunning;
    let ahead = policy
        .reminder_days_before
        .iter()
        .copied()
        .max()
        .unwrap_or(0);
    // Older invoices finished their steps long ago (every setting is at
    // most 365 days).
    let from = ctx.at - time::Duration::days(400);
    let to = ctx.at + time::Duration::days(i64::from(ahead));
    let mut after = None;
    loop {
        let mut tx = store.begin().await?;
        // Counted once the page commits: a failed page did nothing.
        let mut done = RunReport::default();
        let page = dun_page(&mut tx, ctx, (from, to), &mut after, &mut done).await;
        match page {
            Ok(true) => {
                finish(tx, ctx.dry_run).await?;
                report.add(done);
            }
            Ok(false) => {
                tx.rollback().await?;
                return Ok(());
            }
            Err(e) => {
                if let Err(rollback) = tx.rollback().await {
                    tracing::warn!(tenant = %ctx.tenant.slug, error = %rollback,
                        "rolling a failed dunning page back failed");
                }
                return Err(e);
            }
        }
    }
}

/// The steps due of the next page of open invoices due between `due.0`
/// and `due.1` (ids after `after`, moved on): false when none is left.
async fn dun_page(
    tx: &mut Tx,
    ctx: &RunContext<'_>,
    due: (time::OffsetDateTime, time::OffsetDateTime),
    after: &mut Option<InvoiceId>,
    report: &mut RunReport,
) -> Result<bool, ServiceError> {
    let page = tx
        .open_invoices_due(ctx.tenant.id, due.0, due.1, *after, PAGE)
        .await?;
    let Some(last) = page.last() else {
        return Ok(false);
    };
    *after = Some(last.id);
    let page = take_page(tx, ctx, page).await?;
    let mut cancelled = Vec::new();
    for inv in &page {
        take_steps(tx, ctx, inv, report, &mut cancelled).await?;
    }
    final_usage::queue_in(tx, ctx.tenant.id, &cancelled, ctx.jobs_at).await?;
    Ok(true)
}

/// First in a page with a step still to take: those invoices (`FOR KEY
/// SHARE`, as recording their steps takes them), so a payment of one,
/// which takes its invoice and then restores its subscriptions, is waited
/// for before any subscription is taken, not while the page holds one;
/// those paid since the page was read leave it. Then the subscriptions
/// their suspensions and terminations change, all in one statement in id
/// order (a payment restoring several takes them in id order too); then,
/// again in id order, those the terminations will cancel stop taking usage
/// (see [`Tx::close_usage_of`]), so the jobs billing their last usage find
/// all of it. A page whose steps were all taken before takes no lock (its
/// invoices' payments are not held up). Answers the page as it now stands.
async fn take_page(
    tx: &mut Tx,
    ctx: &RunContext<'_>,
    mut page: Vec<OpenInvoice>,
) -> Result<Vec<OpenInvoice>, ServiceError> {
    let policy = &ctx.settings.automation.dunning;
    let left = |inv: &OpenInvoice| -> Vec<DunningStep> {
        steps_due(policy, inv.due_at, ctx.at)
            .into_iter()
            .filter(|s| !inv.took(&s.key()))
            .collect()
    };
    let touched: HashSet<InvoiceId> = page
        .iter()
        .filter(|inv| !left(inv).is_empty())
        .map(|inv| inv.id)
        .collect();
    if touched.is_empty() {
        return Ok(page);
    }
    let ids: Vec<InvoiceId> = touched.iter().copied().collect();
    let open: HashSet<InvoiceId> = tx
        .share_open_invoices(ctx.tenant.id, &ids)
        .await?
        .into_iter()
        .collect();
    page.retain(|inv| open.contains(&inv.id) || !touched.contains(&inv.id));
    let (mut changing, mut ending) = (Vec::new(), Vec::new());
    for inv in page.iter().filter(|inv| open.contains(&inv.id)) {
        let steps = left(inv);
        if steps.contains(&DunningStep::Terminate) {
            ending.push(inv.id);
        }
        if steps.contains(&DunningStep::Terminate) || steps.contains(&DunningStep::Suspend) {
            changing.push(inv.id);
        }
    }
    tx.lock_subscriptions_of_invoices(ctx.tenant.id, &changing)
        .await?;
    close_usage_of_ending(tx, ctx, &ending).await?;
    Ok(page)
}

/// The subscriptions the terminations of `invoices` will cancel stop
/// taking usage.
async fn close_usage_of_ending(
    tx: &mut Tx,
    ctx: &RunContext<'_>,
    invoices: &[InvoiceId],
) -> Result<(), ServiceError> {
    let mut cancelling = Vec::new();
    for id in invoices {
        let subs = tx.subscriptions_of_invoice(ctx.tenant.id, *id).await?;
        cancelling.extend(
            subs.into_iter()
                .filter(|s| {
                    s.status
                        .check_transition(SubscriptionStatus::Cancelled)
                        .is_ok()
                })
                .map(|s| s.id),
        );
    }
    tx.close_usage_of(&cancelling).await?;
    Ok(())
}

/// Takes the invoice's steps that are due; the subscriptions it cancels
/// go to `cancelled`.
async fn take_steps(
    tx: &mut Tx,
    ctx: &RunContext<'_>,
    inv: &OpenInvoice,
    report: &mut RunReport,
    cancelled: &mut Vec<SubscriptionId>,
) -> Result<(), ServiceError> {
    let steps = steps_due(&ctx.settings.automation.dunning, inv.due_at, ctx.at);
    let latest_reminder = steps
        .iter()
        .rev()
        .find(|s| matches!(s, DunningStep::Reminder { .. }))
        .copied();
    for step in steps {
        if !tx
            .record_dunning_step(ctx.tenant.id, inv.id, &step.key(), ctx.at)
            .await?
        {
            continue;
        }
        match step {
            DunningStep::Reminder { days } => {
                let send = Some(step) == latest_reminder;
                if send {
                    remind(tx, ctx, inv, days).await?;
                    report.reminders += 1;
                }
                audit(
                    tx,
                    ctx,
                    inv,
                    "invoice.reminder",
                    json!({"days": days, "sent": send}),
                )
                .await?;
            }
            DunningStep::Suspend => {
                report.suspended +=
                    set_status(tx, ctx, inv, SubscriptionStatus::Suspended, cancelled).await?;
                audit(
                    tx,
                    ctx,
                    inv,
                    "invoice.dunning_suspend",
                    json!({"step": "suspend"}),
                )
                .await?;
            }
            DunningStep::Terminate => {
                report.terminated +=
                    set_status(tx, ctx, inv, SubscriptionStatus::Cancelled, cancelled).await?;
                audit(
                    tx,
                    ctx,
                    inv,
                    "invoice.dunning_terminate",
                    json!({"step": "terminate"}),
                )
                .await?;
            }
        }
    }
    Ok(())
}

async fn remind(
    tx: &mut Tx,
    ctx: &RunContext<'_>,
    inv: &OpenInvoice,
    days: i32,
) -> Result<(), ServiceError> {
    let options = JobOptions {
        queue: "notifications".into(),
        unique_key: Some(format!("{REMINDER_JOB}:{}:{days}", inv.id)),
        ..JobOptions::default()
    };
    enqueue(
        tx,
        REMINDER_JOB,
        &json!({"tenant_id": ctx.tenant.id, "invoice_id": inv.id, "customer_id": inv.customer_id,
                "number": inv.number, "days": days}),
        &options,
        ctx.jobs_at,
    )
    .await?;
    // The reminder itself, as e-mail to the customer.
    crate::notify::invoice_reminder::enqueue_in(tx, ctx.tenant, inv.id, days, ctx.jobs_at).await?;
    Ok(())
}

/// Suspends (for non-payment) or cancels the subscriptions the invoice
/// charges (those cancelled go to `cancelled`, whose usage so far a job
/// bills), and queues the same for their services; returns how many.
async fn set_status(
    tx: &mut Tx,
    ctx: &RunContext<'_>,
    inv: &OpenInvoice,
    to: SubscriptionStatus,
    cancelled: &mut Vec<SubscriptionId>,
) -> Result<usize, ServiceError> {
    let mut changed = 0;
    // Locked as read: a staff cancellation committed while this waited is
    // what it changes, not a copy from before.
    for mut sub in tx
        .subscriptions_of_invoice_for_change(ctx.tenant.id, inv.id)
        .await?
    {
        let from = sub.status;
        if from.check_transition(to).is_err() {
            continue;
        }
        let before = json!({"status": sub.status});
        sub.status = to;
        sub.updated_at = ctx.at;
        let (action, service) = if to == SubscriptionStatus::Suspended {
            sub.suspend_reason = Some(SuspendReason::Dunning.as_str().to_owned());
            ("subscription.suspend", ServiceAction::Suspend)
        } else {
            sub.cancelled_at = Some(ctx.at);
            sub.next_bill_at = None;
            ("subscription.cancel", ServiceAction::Terminate)
        };
        let change = StatusChange {
            action,
            before,
            service: Some(service),
            detail: json!({"reason": "DUNNING", "invoice_id": inv.id}),
        };
        ctx.commit_change(tx, &sub, change).await?;
        if to == SubscriptionStatus::Cancelled {
            cancelled.push(sub.id);
        }
        changed += 1;
    }
    Ok(changed)
}

async fn audit(
    tx: &mut Tx,
    ctx: &RunContext<'_>,
    inv: &OpenInvoice,
    action: &str,
    after: serde_json::Value,
) -> Result<(), ServiceError> {
    tx.record_audit(&ctx.actor.audit(Change {
        tenant: ctx.tenant.id,
        action,
        target_type: "invoice",
        target_id: inv.id.to_string(),
        before: None,
        after: Some(after),
        at: ctx.at,
    }))
    .await?;
    Ok(())
}
