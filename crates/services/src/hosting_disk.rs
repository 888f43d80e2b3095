//! Recording a hosting account's measured disk use: the measurement is
//! saved, compared with the plan's quota by the domain rules
//! (`mpanel_domain::provisioning::disk_quota`), and what follows is done
//! in the same transaction: the tenant is told once (an audit row when the
//! account goes over, another when it is back under) and, by the tenant's
//! policy, the site's suspension or its lifting is queued through the same
//! jobs staff and billing use.

use mpanel_domain::billing::subscription::SubscriptionStatus;
use mpanel_domain::provisioning::disk_quota::{
    Assessment, NodeStep, QuotaPolicy, QuotaState, Standing, assess, quota_bytes,
};
use mpanel_domain::provisioning::payloads::HostingAction;
use mpanel_domain::provisioning::{ResourceStatus, SUSPEND_JOB, UNSUSPEND_JOB};
use mpanel_domain::{Clock, ResourceId, TenantId};
use mpanel_jobs::{JobOptions, enqueue};
use mpanel_store::disk_usage::{DiskAccount, DiskUsage};
use mpanel_store::{Store, Tx};
use serde_json::json;
use time::OffsetDateTime;

use crate::actor::Change;
use crate::{Actor, ServiceError};

/// Why the quota job suspends a site, as the audit log says it.
pub const OVER_QUOTA: &str = "OVER_QUOTA";

/// The tenant's rule for accounts over quota (its security policy).
pub async fn policy(store: &Store, tenant: TenantId) -> Result<QuotaPolicy, ServiceError> {
    Ok(crate::security::policy::load(store, tenant)
        .await?
        .quota_policy())
}

/// Records that hosting account `id` used `used_bytes` at `as_of`, and
/// acts on it; `None` when the account is no longer live (terminated
/// meanwhile). Jobs it queues may run at `as_of`, or now when `as_of` is
/// ahead of the clock (`mpanel hosting disk-usage --as-of` a later time),
/// like the billing run's.
pub async fn record(
    store: &Store,
    clock: &dyn Clock,
    as_of: OffsetDateTime,
    policy: QuotaPolicy,
    id: ResourceId,
    used_bytes: i64,
) -> Result<Option<Assessment>, ServiceError> {
    let now = as_of;
    let jobs_at = as_of.min(clock.now());
    let mut tx = store.begin().await?;
    let Some((account, a)) = assess_locked(&mut tx, id, policy, used_bytes, now).await? else {
        return Ok(None);
    };
    tx.save_disk_usage(
        id,
        &DiskUsage {
            used_bytes: Some(used_bytes),
            measured_at: Some(now),
            over_quota_since: a.state.over_since,
            suspended_for_quota: a.state.suspended_for_quota,
        },
    )
    .await?;
    let acting = Acting {
        account: &account,
        actor: Actor::system("disk_usage"),
        figures: json!({"disk_used_bytes": used_bytes, "disk_quota_bytes": quota_bytes(account.quota_mb),
            "over_quota_action": policy.action}),
        now,
        jobs_at,
    };
    acting.announce_crossing(&mut tx, &a).await?;
    acting.queue_node_step(&mut tx, a.step).await?;
    tx.commit().await?;
    Ok(Some(a))
}

/// The account (read under its subscription's lock) and what the policy
/// makes of `used_bytes`; `None` when the account is no longer live.
async fn assess_locked(
    tx: &mut Tx,
    id: ResourceId,
    policy: QuotaPolicy,
    used_bytes: i64,
    now: OffsetDateTime,
) -> Result<Option<(DiskAccount, Assessment)>, ServiceError> {
    let owner = tx
        .disk_account(id)
        .await?
        .ok_or_else(ServiceError::missing("hosting account"))?;
    // Locked: a payment restoring the subscription meanwhile reads the
    // quota's mark after this commits (and leaves the account suspended).
    let subscription = tx
        .subscription_for_update(owner.tenant_id, owner.subscription_id)
        .await?
        .ok_or_else(ServiceError::missing("subscription"))?;
    // Read again under the lock: a concurrent run or payment that
    // committed meanwhile is seen, not overwritten.
    let account = tx
        .disk_account(id)
        .await?
        .ok_or_else(ServiceError::missing("hosting account"))?;
    let account_active = match account.status {
        ResourceStatus::Active => true,
        ResourceStatus::Suspended => false,
        _ => return Ok(None),
    };
    let before = QuotaState {
        over_since: account.usage.over_quota_since,
        suspended_for_quota: account.usage.suspended_for_quota,
    };
    let standing = Standing {
        account_active,
        subscription_suspended: subscription.status == SubscriptionStatus::Suspended,
    };
    let quota = quota_bytes(account.quota_mb);
    let a = assess(policy, used_bytes, quota, before, standing, now);
    Ok(Some((account, a)))
}

/// What one measurement does about its account, in its transaction.
struct Acting<'a> {
    account: &'a DiskAccount,
    actor: Actor,
    /// The measurement and the rule, for the audit rows.
    figures: serde_json::Value,
    now: OffsetDateTime,
    /// When the jobs it queues may run.
    jobs_at: OffsetDateTime,
}

impl Acting<'_> {
    /// Audits the account going over its quota, or back under it.
    async fn announce_crossing(&self, tx: &mut Tx, a: &Assessment) -> Result<(), ServiceError> {
        let told = if a.newly_over {
            Some("hosting.disk.over_quota")
        } else if a.back_under {
            Some("hosting.disk.under_quota")
        } else {
            None
        };
        if let Some(action) = told {
            tx.record_audit(&self.actor.audit(Change {
                tenant: self.account.tenant_id,
                action,
                target_type: "hosting_account",
                target_id: self.account.id.to_string(),
                before: None,
                after: Some(self.figures.clone()),
                at: self.now,
            }))
            .await?;
        }
        Ok(())
    }

    /// Queues the suspension or unsuspension the policy asks for.
    async fn queue_node_step(&self, tx: &mut Tx, step: NodeStep) -> Result<(), ServiceError> {
        let kind = match step {
            NodeStep::Nothing => return Ok(()),
            NodeStep::Suspend => SUSPEND_JOB,
            NodeStep::Unsuspend => UNSUSPEND_JOB,
        };
        let id = self.account.id;
        let (job_id, new) = enqueue(
            tx,
            kind,
            &HostingAction {
                tenant_id: self.account.tenant_id,
                hosting_account_id: id,
            },
            &JobOptions {
                queue: "provisioning".into(),
                unique_key: Some(format!("{kind}:{id}")),
                max_attempts: 10,
                ..JobOptions::default()
            },
            self.jobs_at,
        )
        .await?;
        // One still waiting (its node unreachable for a while) is not
        // asked for, nor audited, again every hour.
        if new {
            tx.record_audit(&self.actor.audit(Change {
                tenant: self.account.tenant_id,
                action: kind,
                target_type: "hosting_account",
                target_id: id.to_string(),
                before: Some(json!({"status": self.account.status})),
                after: Some(
                    json!({"reason": OVER_QUOTA, "job_id": job_id, "figures": self.figures}),
                ),
                at: self.now,
            }))
            .await?;
        }
        Ok(())
    }
}
