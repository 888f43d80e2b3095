//! What dunning suspended, restored when the invoice it was suspended for
//! is settled (paid, credited to zero or voided): the invoice's
//! subscriptions that no other open invoice keeps suspended are `ACTIVE`
//! again and their services unsuspended, in the same transaction.

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

/// Takes the invoice's subscriptions as [`lift_dunning_suspensions`]
/// will, ahead of the invoice numbers and the customer's credit: the order
/// billing takes a subscription and then those (a billing chunk or a plan
/// change already holds them: nothing to wait for). For issuing, voiding
/// and paying from credit, which would otherwise take them later.
pub(crate) async fn hold_for_restore(
    tx: &mut Tx,
    tenant: &TenantRecord,
    inv: &InvoiceRecord,
) -> Result<(), ServiceError> {
    tx.subscriptions_of_invoice_for_change(tenant.id, inv.id)
        .await?;
    Ok(())
}

/// A settled invoice restores what dunning suspended for it: each of its
/// subscriptions suspended by dunning that no other open invoice keeps
/// suspended (one whose suspension step was taken). Paying a later
/// renewal or a usage invoice lifts nothing while the overdue one is
/// unpaid.
pub(crate) async fn lift_dunning_suspensions(
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
