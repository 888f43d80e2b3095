//! A subscription's last usage invoice: all the usage it recorded and no
//! invoice billed yet, rated at its current product's prices. The run
//! writes one when a term ends without renewal; staff cancelling now,
//! dunning's termination and a move to another product write one at once.

use std::collections::HashMap;

use mpanel_domain::{InvoiceId, SubscriptionId};
use mpanel_store::billing::{DueSubscription, UsageCharge};
use mpanel_store::subscriptions::SubscriptionRecord;
use mpanel_store::{TenantRecord, Tx};
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

/// The invoices issued in `tx` for the metered subscriptions among `subs`,
/// each at its product's current prices, as `ctx` writes invoices: when
/// dunning cancels them (nothing would ever bill their usage).
pub(super) async fn bill_so_far(
    tx: &mut Tx,
    ctx: &RunContext<'_>,
    subs: &[SubscriptionRecord],
    report: &mut RunReport,
) -> Result<(), ServiceError> {
    let ids: Vec<SubscriptionId> = subs.iter().map(|s| s.id).collect();
    tx.close_usage_of(&ids).await?;
    let mut due = Vec::with_capacity(subs.len());
    for sub in subs {
        let plan = tx
            .product(ctx.tenant.id, sub.product_id)
            .await?
            .ok_or_else(ServiceError::missing("product"))?
            .fields;
        let Some(usage) = plan
            .usage
            .as_ref()
            .and_then(|u| serde_json::to_value(u).ok())
        else {
            continue;
        };
        due.push(DueSubscription {
            sub: sub.clone(),
            product_name: plan.name,
            billing_model: plan.billing_model.as_str().to_owned(),
            usage: Some(usage),
        });
    }
    let mut drafts = Vec::with_capacity(due.len());
    for d in &due {
        drafts.extend(draft(tx, d).await?);
    }
    write_invoices(tx, ctx, drafts, report).await
}

/// The same for one subscription, issued now: when staff cancel it now or
/// move it to another product (whose prices, or metric, are not the ones
/// it was used under; `sub` still names the old one).
pub(super) async fn bill_now(
    tx: &mut Tx,
    tenant: &TenantRecord,
    sub: &SubscriptionRecord,
    now: OffsetDateTime,
) -> Result<(), ServiceError> {
    let settings = settings::load_in(tx, tenant.id).await?.settings;
    let ctx = RunContext::immediate(tenant, settings, now);
    bill_so_far(
        tx,
        &ctx,
        std::slice::from_ref(sub),
        &mut RunReport::default(),
    )
    .await
}
