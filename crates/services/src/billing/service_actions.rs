//! What billing tells provisioning: suspend, unsuspend or terminate the
//! services a subscription runs, and resize them after a plan change. Jobs
//! are queued in the caller's transaction, so they happen exactly when the
//! billing change commits.

use mpanel_domain::provisioning::payloads::HostingAction;
use mpanel_domain::provisioning::{ResourceStatus, SUSPEND_JOB, TERMINATE_JOB, UNSUSPEND_JOB};
use mpanel_domain::{ProductId, SubscriptionId, TenantId};
use mpanel_jobs::{JobOptions, JobPayload, enqueue, enqueue_job};
use mpanel_store::Tx;
use serde_json::json;
use time::OffsetDateTime;

use crate::ServiceError;

/// The job a plan change queues for the services it runs.
pub const RESIZE_JOB: &str = "provision.resize";

/// A lifecycle action on a subscription's services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceAction {
    Suspend,
    Unsuspend,
    Terminate,
}

impl ServiceAction {
    fn job(self) -> &'static str {
        match self {
            Self::Suspend => SUSPEND_JOB,
            Self::Unsuspend => UNSUSPEND_JOB,
            Self::Terminate => TERMINATE_JOB,
        }
    }

    fn applies_to(self, status: ResourceStatus) -> bool {
        use ResourceStatus::*;
        match self {
            // An account may be between the two while a job is under way;
            // the jobs of one account run in order, so asking is safe.
            Self::Suspend | Self::Unsuspend => matches!(status, Active | Suspended),
            Self::Terminate => matches!(status, Active | Suspended | Pending),
        }
    }
}

/// Queues `action` for each of the subscription's hosting accounts it
/// applies to; returns how many jobs were queued.
pub async fn request(
    tx: &mut Tx,
    tenant: TenantId,
    subscription: SubscriptionId,
    action: ServiceAction,
    now: OffsetDateTime,
) -> Result<usize, ServiceError> {
    let mut queued = 0;
    // An account its disk quota suspended stays so when the subscription
    // is restored (a payment, staff's resume): only a measurement back
    // under quota lifts that (`crate::hosting_disk`).
    let held = if action == ServiceAction::Unsuspend {
        tx.held_by_quota(tenant, subscription).await?
    } else {
        Vec::new()
    };
    for (id, status) in tx.hosting_accounts_of(tenant, subscription).await? {
        if !action.applies_to(status) || held.contains(&id) {
            continue;
        }
        let options = JobOptions {
            queue: "provisioning".into(),
            unique_key: Some(format!("{}:{id}", action.job())),
            max_attempts: 10,
            ..JobOptions::default()
        };
        enqueue(
            tx,
            action.job(),
            &HostingAction {
                tenant_id: tenant,
                hosting_account_id: id,
            },
            &options,
            now,
        )
        .await?;
        queued += 1;
    }
    queued += request_pod(tx, tenant, subscription, action, now).await?;
    Ok(queued)
}

/// The subscription's CloudPod follows it: stopped while it is suspended
/// (only a payment or staff start it again), deleted when it ends.
async fn request_pod(
    tx: &mut Tx,
    tenant: TenantId,
    subscription: SubscriptionId,
    action: ServiceAction,
    now: OffsetDateTime,
) -> Result<usize, ServiceError> {
    use crate::cloudpods::jobs::{PodJob, queue_in};
    use mpanel_domain::cloudpods::{DELETE_JOB, PodStatus, RESUME_JOB, SUSPEND_JOB, SuspendedBy};
    let Some(pod) = tx.cloud_pod_of_subscription(subscription).await? else {
        return Ok(0);
    };
    let mut job = PodJob::new(tenant, pod.id);
    let kind = match (action, pod.status) {
        (_, PodStatus::Deleted) => return Ok(0),
        (ServiceAction::Terminate, _) => DELETE_JOB,
        // A pod still being made (provisioned before payment) is stopped
        // once it is made: the job waits for its provisioning.
        (
            ServiceAction::Suspend,
            PodStatus::Active | PodStatus::Suspended | PodStatus::Provisioning,
        ) => {
            job.by = Some(SuspendedBy::Billing);
            SUSPEND_JOB
        }
        // A suspension still under way reads ACTIVE until its job ran: the
        // resume runs after it, in order, and lifts only billing's.
        (
            ServiceAction::Unsuspend,
            PodStatus::Active | PodStatus::Suspended | PodStatus::Provisioning,
        ) => {
            job.by = Some(SuspendedBy::Billing);
            RESUME_JOB
        }
        _ => return Ok(0),
    };
    queue_in(tx, kind, &job, now).await?;
    Ok(1)
}

/// Tells provisioning the subscription's plan changed (the handler applies
/// the new plan's limits to what it runs).
pub async fn resize(
    tx: &mut Tx,
    tenant: TenantId,
    subscription: SubscriptionId,
    product: ProductId,
    now: OffsetDateTime,
) -> Result<(), ServiceError> {
    let options = JobOptions {
        queue: "provisioning".into(),
        max_attempts: 10,
        ..JobOptions::default()
    };
    let resize = Resize {
        tenant_id: tenant,
        subscription_id: subscription,
        product_id: product,
    };
    enqueue_job(tx, &resize, &options, now).await?;
    crate::cloudpods::actions::plan_changed_in(tx, tenant, subscription, product, now).await?;
    Ok(())
}

/// The payload of a resize job.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Resize {
    pub tenant_id: TenantId,
    pub subscription_id: SubscriptionId,
    pub product_id: ProductId,
}

impl JobPayload for Resize {
    const KIND: &'static str = RESIZE_JOB;
}

/// Applies the new plan's limits to what the subscription runs (the disk
/// quota of its hosting accounts, the quota of its mailboxes), as recorded
/// limits; a node enforces them when it next applies the account.
pub async fn apply_resize(
    store: &mpanel_store::Store,
    clock: &dyn mpanel_domain::Clock,
    job: &Resize,
) -> Result<(), ServiceError> {
    let now = clock.now();
    let mut tx = store.begin().await?;
    let product = tx
        .product(job.tenant_id, job.product_id)
        .await?
        .ok_or_else(ServiceError::missing("product"))?;
    let (disk, mail) = match product.fields.template {
        mpanel_domain::catalog::ProvisioningTemplate::Hosting { disk_quota_mb, .. } => {
            (disk_quota_mb, None)
        }
        mpanel_domain::catalog::ProvisioningTemplate::Email { quota_mb, .. } => (None, quota_mb),
        _ => (None, None),
    };
    tx.set_subscription_quotas(
        job.subscription_id,
        disk.map(i64::from),
        mail.map(i64::from),
        now,
    )
    .await?;
    tx.record_audit(
        &crate::Actor::system("provisioning").audit(crate::actor::Change {
            tenant: job.tenant_id,
            action: RESIZE_JOB,
            target_type: "subscription",
            target_id: job.subscription_id.to_string(),
            before: None,
            after: Some(
                json!({"product_id": job.product_id, "disk_quota_mb": disk, "mail_quota_mb": mail}),
            ),
            at: now,
        }),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
