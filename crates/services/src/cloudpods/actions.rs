//! What is asked of a pod: its details changed, suspend, resume, reboot,
//! resize, delete. Each is checked against the pod's status (409 with the
//! allowed actions otherwise), queued as one of the pod's jobs and
//! audited, in one transaction.

use mpanel_domain::billing::subscription::{CancelMode, SubscriptionStatus};
use mpanel_domain::catalog::ProvisioningTemplate;
use mpanel_domain::cloudpods::{
    DELETE_JOB, PodAction, PodPlan, PodStatus, REBOOT_JOB, RESIZE_JOB, RESUME_JOB, SUSPEND_JOB,
    SuspendedBy, UPDATE_JOB, valid_hostname,
};
use mpanel_domain::identity::Role;
use mpanel_domain::{CloudPodId, JobId, ProductId, SubscriptionId, TenantId};
use mpanel_store::Tx;
use mpanel_store::cloudpods::PodRecord;
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;

use super::jobs::{PodJob, queue_in};
use super::{PodView, plan_of, record, view};
use crate::actor::Change;
use crate::billing::plan_change::{self, UpdateInput, UpdateView};
use crate::billing::subscriptions::{Transition, transition};
use crate::{Context, ServiceError};

/// `PUT /api/cloudpods/{id}`: what may change of a pod's details.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PodPatch {
    #[schema(min_length = 1, max_length = 100)]
    pub name: Option<String>,
    #[schema(max_length = 253)]
    pub hostname: Option<String>,
    /// The full list of OpenSSH public keys cloud-init installs.
    pub ssh_keys: Option<Vec<String>>,
    #[schema(max_length = 2000)]
    pub notes: Option<String>,
}

fn refuse(pod: &PodRecord, action: PodAction) -> ServiceError {
    ServiceError::Transition {
        what: "CloudPod",
        from: pod.status.as_str(),
        to: action.as_str(),
        allowed: pod.status.allowed().iter().map(|a| a.as_str()).collect(),
    }
}

pub(crate) fn check(pod: &PodRecord, action: PodAction) -> Result<(), ServiceError> {
    pod.status.check(action).map_err(|_| refuse(pod, action))
}

async fn audited_job(
    cx: &Context,
    tx: &mut Tx,
    pod: &PodRecord,
    kind: &str,
    job: &PodJob,
) -> Result<JobId, ServiceError> {
    let now = cx.now();
    let id = queue_in(tx, kind, job, now).await?;
    tx.record_audit(&cx.actor.audit(Change {
        tenant: pod.tenant_id,
        action: kind,
        target_type: "cloud_pod",
        target_id: pod.id.to_string(),
        before: Some(json!({"status": pod.status})),
        after: Some(json!({"job_id": id, "by": job.by})),
        at: now,
    }))
    .await?;
    Ok(id)
}

/// Changes the pod's details; a placed pod's VM gets them at its next
/// boot (cloud-init), queued as `cloudpod.update`.
pub async fn update(
    cx: &Context,
    id: CloudPodId,
    patch: PodPatch,
) -> Result<PodView, ServiceError> {
    let mut pod = record(cx, id).await?;
    check(&pod, PodAction::Update)?;
    if let Some(name) = patch.name {
        let name = name.trim().to_owned();
        if name.is_empty() || name.len() > 100 {
            return Err(ServiceError::invalid("name", "must be 1 to 100 characters"));
        }
        pod.name = name;
    }
    if let Some(hostname) = patch.hostname {
        let hostname = hostname.to_ascii_lowercase();
        if !valid_hostname(&hostname) {
            return Err(ServiceError::invalid("hostname", "must be a host name"));
        }
        pod.hostname = hostname;
    }
    if let Some(keys) = patch.ssh_keys {
        let keys = serde_json::Value::from(keys);
        pod.ssh_keys = super::order_item::ssh_keys(Some(&keys), "ssh_keys")?.join("\n");
    }
    if let Some(notes) = patch.notes {
        if notes.len() > 2000 {
            return Err(ServiceError::invalid("notes", "at most 2000 characters"));
        }
        pod.notes = notes;
    }
    pod.updated_at = cx.now();
    let mut tx = cx.store.begin().await?;
    tx.update_cloud_pod_details(&pod).await?;
    // A pod still being made takes its details when it is configured.
    if matches!(pod.status, PodStatus::Active | PodStatus::Suspended) {
        audited_job(
            cx,
            &mut tx,
            &pod,
            UPDATE_JOB,
            &PodJob::new(pod.tenant_id, pod.id),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(view(pod))
}

/// Suspend, resume, reboot or delete: checked, queued and audited; the
/// answer is the pod as it stands and the job that will do it.
pub async fn request(
    cx: &Context,
    id: CloudPodId,
    action: PodAction,
) -> Result<(PodView, Option<JobId>), ServiceError> {
    let pod = record(cx, id).await?;
    check(&pod, action)?;
    let customer = cx.principal.access.role == Role::Customer;
    let mut job = PodJob::new(pod.tenant_id, pod.id);
    let kind = match action {
        PodAction::Suspend => {
            job.by = Some(if customer {
                SuspendedBy::Customer
            } else {
                SuspendedBy::Staff
            });
            SUSPEND_JOB
        }
        PodAction::Resume => {
            job.by = Some(if customer {
                SuspendedBy::Customer
            } else {
                SuspendedBy::Staff
            });
            let sub = cx
                .store
                .subscription_ref(pod.subscription_id)
                .await?
                .ok_or_else(ServiceError::missing("subscription"))?;
            if sub.status == SubscriptionStatus::Suspended {
                return Err(ServiceError::Conflict(
                    "this CloudPod's subscription is suspended (an unpaid invoice, or by staff): it starts again when the subscription is paid or resumed".into(),
                ));
            }
            if customer && pod.suspended_by != Some(SuspendedBy::Customer) {
                return Err(ServiceError::Conflict(match pod.suspended_by {
                    Some(SuspendedBy::Billing) => {
                        "this CloudPod is suspended for an unpaid invoice: paying it starts the pod again".into()
                    }
                    _ => "this CloudPod was suspended by the provider: ask them to resume it".into(),
                }));
            }
            RESUME_JOB
        }
        PodAction::Reboot => REBOOT_JOB,
        PodAction::Delete => return delete(cx, pod).await,
        other => {
            return Err(ServiceError::invalid(
                "action",
                format!("{other} is not asked this way"),
            ));
        }
    };
    let mut tx = cx.store.begin().await?;
    let job_id = audited_job(cx, &mut tx, &pod, kind, &job).await?;
    tx.commit().await?;
    Ok((view(pod), Some(job_id)))
}

/// Deleting a pod ends its subscription at once (which queues the pod's
/// deletion, as any cancellation does); a pod whose subscription ended
/// already is deleted directly.
async fn delete(cx: &Context, pod: PodRecord) -> Result<(PodView, Option<JobId>), ServiceError> {
    let sub = cx
        .store
        .subscription_ref(pod.subscription_id)
        .await?
        .ok_or_else(ServiceError::missing("subscription"))?;
    if !sub.status.is_terminal() {
        transition(
            cx,
            pod.subscription_id,
            Transition::Cancel(CancelMode::Immediate),
        )
        .await?;
        return Ok((view(pod), None));
    }
    let mut tx = cx.store.begin().await?;
    let job_id = audited_job(
        cx,
        &mut tx,
        &pod,
        DELETE_JOB,
        &PodJob::new(pod.tenant_id, pod.id),
    )
    .await?;
    tx.commit().await?;
    Ok((view(pod), Some(job_id)))
}

/// `POST /api/cloudpods/{id}/resize`: the subscription moves to another
/// CloudPod plan (prorated as any plan change); the VM follows.
pub async fn resize(
    cx: &Context,
    id: CloudPodId,
    product: ProductId,
) -> Result<UpdateView, ServiceError> {
    let pod = record(cx, id).await?;
    check(&pod, PodAction::Resize)?;
    plan_change::update(
        cx,
        pod.subscription_id,
        UpdateInput {
            product_id: Some(product),
            addons: None,
            auto_renew: None,
        },
    )
    .await
}

/// Called in a plan change's transaction: a subscription that runs a pod
/// may move only to a CloudPod plan whose disk is at least as large (a
/// disk only grows); its VM is resized by `cloudpod.resize`.
pub async fn plan_changed_in(
    tx: &mut Tx,
    tenant: TenantId,
    subscription: SubscriptionId,
    product: ProductId,
    now: OffsetDateTime,
) -> Result<(), ServiceError> {
    let Some(pod) = tx.cloud_pod_of_subscription(subscription).await? else {
        return Ok(());
    };
    let product = tx
        .product(tenant, product)
        .await?
        .ok_or_else(|| ServiceError::invalid("product_id", "no such product"))?;
    let to = match &product.fields.template {
        t @ ProvisioningTemplate::CloudPod { .. } => PodPlan::of(t),
        _ => None,
    }
    .ok_or_else(|| {
        ServiceError::invalid(
            "product_id",
            "a CloudPod moves only to another CloudPod plan",
        )
    })?;
    let from = plan_of(&pod);
    if from == to {
        // Only the add-ons changed: the VM stays as it is.
        return Ok(());
    }
    from.can_move_to(&to)
        .map_err(|why| ServiceError::invalid("product_id", why))?;
    // The pod's plan is the one it is billed for from now on (its disk
    // never shrinks, so no later change can go below what the VM has);
    // `cloudpod.resize` makes the VM match it.
    tx.set_cloud_pod_plan(pod.id, &to, now).await?;
    if matches!(pod.status, PodStatus::Active | PodStatus::Suspended) {
        queue_in(tx, RESIZE_JOB, &PodJob::new(tenant, pod.id), now).await?;
    }
    Ok(())
}
