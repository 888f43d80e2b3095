//! A payment's restoration of what dunning suspended: the subscriptions
//! of the paid invoice that no other open invoice keeps suspended are
//! `ACTIVE` again and their services unsuspended, in the payment's
//! transaction.

use mpanel_domain::billing::subscription::{SubscriptionStatus, SuspendReason};
use mpanel_store::billing::InvoiceRecord;
use mpanel_store::subscriptions::SubscriptionRecord;
use mpanel_store::{TenantRecord, Tx};
use serde_json::json;
use time::OffsetDateTime;

use super::service_actions::ServiceAction;
use super::subscriptions::{StatusChange, commit_change};
use crate::{Actor, ServiceError};

fn suspended_by_dunning(sub: &SubscriptionRecord) -> bool {
    sub.status == SubscriptionStatus::Suspended
        && sub.suspend_reason.as_deref() == Some(SuspendReason::Dunning.as_str())
}

/// Takes the invoice's subscriptions that paying it may restore (those
/// dunning suspended) as [`restore_after_payment`] will, ahead of the
/// customer's credit: the order billing takes a subscription and then the
/// credit. For a payment from credit, which takes the credit first.
pub(crate) async fn hold_for_restore(
    tx: &mut Tx,
    tenant: &TenantRecord,
    inv: &InvoiceRecord,
) -> Result<(), ServiceError> {
    let subs = tx.subscriptions_of_invoice(tenant.id, inv.id).await?;
    if subs.iter().any(suspended_by_dunning) {
        tx.subscriptions_of_invoice_for_change(tenant.id, inv.id)
            .await?;
    }
    Ok(())
}

/// A paid invoice restores what dunning suspended for it: each of its
/// subscriptions suspended by dunning that no other open invoice keeps
/// suspended (one whose suspension step was taken). Paying a later
/// renewal or a usage invoice lifts nothing while the overdue one is
/// unpaid.
pub(crate) async fn restore_after_payment(
    tx: &mut Tx,
    tenant: &TenantRecord,
    inv: &InvoiceRecord,
    now: OffsetDateTime,
) -> Result<(), ServiceError> {
    let suspended = suspended_by_dunning;
    // Most payments restore nothing: their subscriptions are not taken.
    let subs = tx.subscriptions_of_invoice(tenant.id, inv.id).await?;
    if !subs.iter().any(suspended) {
        return Ok(());
    }
    // Locked as read: a cancellation committed while this waited
    // (dunning's termination, staff) is what it reads, not a copy from
    // before, which saving would bring back to life.
    for mut sub in tx
        .subscriptions_of_invoice_for_change(tenant.id, inv.id)
        .await?
    {
        if !suspended(&sub)
            || tx
                .subscription_dunned_by_open_invoice(tenant.id, sub.id)
                .await?
        {
            continue;
        }
        sub.status = SubscriptionStatus::Active;
        sub.suspend_reason = None;
        sub.updated_at = now;
        let change = StatusChange {
            action: "subscription.resume",
            before: json!({"status": "SUSPENDED", "reason": "DUNNING"}),
            service: Some(ServiceAction::Unsuspend),
            detail: json!({"invoice_id": inv.id}),
        };
        let actor = Actor::system("billing");
        commit_change(tx, tenant, &actor, &sub, change, now, now).await?;
    }
    Ok(())
}
