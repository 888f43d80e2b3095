//! A subscription's last usage invoice: all the usage it recorded and no
//! invoice billed yet, rated at its current product's prices. The run
//! writes one when a term ends without renewal; staff cancelling now,
//! dunning's termination and a move to another product write one at once.

use std::collections::HashMap;

use mpanel_domain::InvoiceId;
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

/// The invoice issued now, in `tx`, at the product's current prices: when
/// staff or dunning cancel a metered subscription now (nothing would ever
/// bill its usage) or staff move it to another product (whose prices, or
/// metric, are not the ones it was used under).
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
    tx.close_usage_of(&[sub.id]).await?;
    let drafts = draft(tx, &due).await?.into_iter().collect();
    write_invoices(tx, &ctx, drafts, &mut RunReport::default()).await
}
