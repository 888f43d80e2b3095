//! A subscription's last usage invoice: all the usage it recorded and no
//! invoice billed yet, rated at its current product's prices. The run
//! writes one when a term ends without renewal and a move to another
//! product writes one at once; cancelling now (staff, or dunning's
//! termination) queues a `billing.final_usage` job that writes it once the
//! cancellation is committed.

use std::collections::HashMap;

use mpanel_domain::{Clock, InvoiceId, SubscriptionId, TenantId};
use mpanel_jobs::{JobOptions, JobPayload, enqueue_jobs};
use mpanel_store::billing::{DueSubscription, UsageCharge};
use mpanel_store::subscriptions::SubscriptionRecord;
use mpanel_store::{Store, TenantRecord, Tx};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::run::{RunContext, RunReport, usage_lines};
use super::run_invoices::{Draft, write_invoices};
use super::settings;
use crate::ServiceError;

/// The draft of that invoice (none for a subscription without usage, or
/// without any). It takes what occurred after a term's end too: it was
/// used before the services were stopped, and no later invoice would
/// bill it.
pub(super) async fn draft<'a>(
    tx: &mut Tx,
    d: &'a DueSubscription,
) -> Result<Option<Draft<'a>>, ServiceError> {
    if d.usage.is_none() {
        return Ok(None);
    }
    let invoice = InvoiceId::new();
    let charge = [UsageCharge {
        subscription: d.sub.id,
        before: OffsetDateTime::new_utc(time::Date::MAX, time::Time::MIDNIGHT),
        invoice,
    }];
    let subs = HashMap::from([(d.sub.id, d)]);
    Ok(usage_lines(tx, &charge, &subs)
        .await?
        .remove(&invoice)
        .map(|lines| Draft {
            id: invoice,
            sub: &d.sub,
            lines,
            period: None,
        }))
}

/// The invoice issued now, in `tx`, at the product's current prices (none
/// for a subscription that meters nothing, or has no usage unbilled): when
/// staff move it to another product (whose prices, or metric, are not the
/// ones it was used under; `sub` still names the old one), and from the
/// `billing.final_usage` job. The caller holds `sub` `FOR UPDATE`, which
/// closes its usage (see [`Tx::close_usage_of`]).
pub(super) async fn bill_so_far(
    tx: &mut Tx,
    tenant: &TenantRecord,
    sub: &SubscriptionRecord,
    now: OffsetDateTime,
) -> Result<(), ServiceError> {
    let plan = tx
        .product(tenant.id, sub.product_id)
        .await?
        .ok_or_else(ServiceError::missing("product"))?
        .fields;
    let Some(usage) = plan
        .usage
        .as_ref()
        .and_then(|u| serde_json::to_value(u).ok())
    else {
        return Ok(());
    };
    let due = DueSubscription {
        sub: sub.clone(),
        product_name: plan.name,
        billing_model: plan.billing_model.as_str().to_owned(),
        usage: Some(usage),
    };
    let ctx = RunContext::immediate(
        tenant,
        settings::load_in(tx, tenant.id).await?.settings,
        now,
    );
    let drafts = draft(tx, &due).await?.into_iter().collect();
    write_invoices(tx, &ctx, drafts, &mut RunReport::default()).await
}

/// The job that bills the usage so far of a subscription cancelled now
/// (by staff or dunning's termination).
pub const FINAL_USAGE_JOB: &str = "billing.final_usage";

/// The `billing.final_usage` job's payload: a cancelled subscription
/// (metered or not: the job looks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalUsage {
    pub tenant_id: TenantId,
    pub subscription_id: SubscriptionId,
}

impl JobPayload for FinalUsage {
    const KIND: &'static str = FINAL_USAGE_JOB;
}

/// Attempts before the job is dead: as many as an e-mail's (half an hour
/// to an hour of backing off). A dead one leaves the usage unbilled until an
/// operator retries it, which is safe (it bills only what no invoice
/// has).
const MAX_ATTEMPTS: i32 = 12;

/// Queues, in `tx` (which cancelled `subs` and closed their usage), one
/// job per subscription that bills its usage so far once `tx` commits.
/// Not in `tx` itself: writing an invoice there would take the numbers and
/// the credit while `tx` holds the page's invoices `FOR KEY SHARE`, and
/// paying from credit would then restore subscriptions inside the page.
/// A job keeps the page short and does one thing. Their usage is closed,
/// so what a job finds unbilled is all there will be.
pub(super) async fn queue_in(
    tx: &mut Tx,
    tenant: TenantId,
    subs: &[SubscriptionId],
    now: OffsetDateTime,
) -> Result<(), ServiceError> {
    let jobs: Vec<(FinalUsage, JobOptions)> = subs
        .iter()
        .map(|&subscription_id| {
            let options = JobOptions {
                queue: "billing".into(),
                max_attempts: MAX_ATTEMPTS,
                unique_key: Some(format!("{FINAL_USAGE_JOB}:{subscription_id}")),
                ..JobOptions::default()
            };
            let job = FinalUsage {
                tenant_id: tenant,
                subscription_id,
            };
            (job, options)
        })
        .collect();
    if !jobs.is_empty() {
        enqueue_jobs(tx, &jobs, now).await?;
    }
    Ok(())
}

/// Runs a `billing.final_usage` job: one transaction that takes the
/// subscription, then writes its last usage invoice, as a plan change
/// does. A second attempt after one that committed finds nothing unbilled
/// and writes nothing; a subscription that is not cancelled (or expired)
/// is left to the run.
pub async fn bill_final_usage(
    store: &Store,
    clock: &dyn Clock,
    job: &FinalUsage,
) -> Result<(), ServiceError> {
    let Some(tenant) = store.tenant(job.tenant_id).await? else {
        tracing::warn!(tenant = %job.tenant_id, "final usage of a tenant that is gone: none billed");
        return Ok(());
    };
    let mut tx = store.begin().await?;
    let sub = tx
        .subscription_for_update(tenant.id, job.subscription_id)
        .await?
        .filter(|sub| sub.status.is_terminal());
    if let Some(sub) = sub {
        bill_so_far(&mut tx, &tenant, &sub, clock.now()).await?;
    }
    tx.commit().await?;
    Ok(())
}
