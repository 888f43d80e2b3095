//! CloudPods: what staff and customers see of a pod and ask of it. A pod
//! is made with its subscription (an order's item, or staff's
//! `POST /api/cloudpods`) and provisioned by the subscription's
//! provisioning job; what is asked of it later (suspend, resume, reboot,
//! resize, delete, details) is queued as one of the pod's own jobs, which
//! run in the order asked. A customer sees and acts on their own pods
//! only: another's is 404.

pub mod actions;
pub mod backups;
pub mod create;
pub mod jobs;
pub mod order_item;
pub mod plans;

use mpanel_domain::CloudPodId;
use mpanel_domain::cloudpods::{PodPlan, PodStatus, SEED_PLANS, SuspendedBy};
use mpanel_domain::identity::Role;
use mpanel_store::cloudpods::{PodFilter, PodRecord};
use serde::Serialize;
use time::OffsetDateTime;

use crate::{Context, ServiceError};

/// What a pod's plan allows.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct PodQuota {
    pub vcpus: u32,
    pub memory_mb: u32,
    pub disk_gb: u32,
    /// Websites and mailboxes placed on the pod; `null` is unlimited
    /// (the seed plans' limits; other plans have none).
    pub websites: Option<u32>,
    pub mailboxes: Option<u32>,
}

/// A pod as the API shows it.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct PodView {
    pub id: CloudPodId,
    pub customer_id: mpanel_domain::CustomerId,
    pub subscription_id: mpanel_domain::SubscriptionId,
    pub name: String,
    pub hostname: String,
    pub status: PodStatus,
    /// Who suspended it, while `SUSPENDED`.
    pub suspended_by: Option<SuspendedBy>,
    pub plan: String,
    pub quota: PodQuota,
    /// The cluster (a `CLOUD` server), node and VMID, once placed.
    pub cluster_id: Option<mpanel_domain::ServerId>,
    pub node: Option<String>,
    pub vmid: Option<u32>,
    pub ipv4: Option<String>,
    pub os_image: Option<String>,
    pub ssh_keys: Vec<String>,
    pub notes: String,
    /// The UPID of the last Proxmox task started for it.
    pub last_task: Option<String>,
    /// Why the last action (or provisioning) failed, if it did.
    pub last_error: Option<String>,
    /// The last reading of the VM (`cpu`, `memory_bytes`,
    /// `memory_max_bytes`, `disk_max_bytes`, `net_in_bytes`,
    /// `net_out_bytes`, `uptime_secs`), to set against `quota`.
    #[schema(value_type = Option<Object>)]
    pub usage: Option<serde_json::Value>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub usage_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

pub fn view(p: PodRecord) -> PodView {
    let seed = SEED_PLANS.iter().find(|s| s.code == p.plan);
    PodView {
        id: p.id,
        customer_id: p.customer_id,
        subscription_id: p.subscription_id,
        name: p.name,
        hostname: p.hostname,
        status: p.status,
        suspended_by: p.suspended_by,
        quota: PodQuota {
            vcpus: p.vcpus,
            memory_mb: p.memory_mb,
            disk_gb: p.disk_gb,
            websites: seed.and_then(|s| s.websites),
            mailboxes: seed.and_then(|s| s.mailboxes),
        },
        plan: p.plan,
        cluster_id: p.cluster_id,
        node: p.node,
        vmid: p.vmid,
        ipv4: p.ipv4.map(|a| a.to_string()),
        os_image: p.os_image,
        ssh_keys: p
            .ssh_keys
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect(),
        notes: p.notes,
        last_task: p.last_task,
        last_error: p.last_error,
        usage: p.usage,
        usage_at: p.usage_at,
        created_at: p.created_at,
        updated_at: p.updated_at,
    }
}

/// The record's plan.
pub fn plan_of(p: &PodRecord) -> PodPlan {
    PodPlan {
        name: p.plan.clone(),
        vcpus: p.vcpus,
        memory_mb: p.memory_mb,
        disk_gb: p.disk_gb,
    }
}

/// Whose pods the caller sees: `Ok(None)` all the tenant's (staff),
/// `Ok(Some(c))` customer `c`'s, `Err` none (a customer user without a
/// customer record).
async fn scope(cx: &Context) -> Result<Option<Option<mpanel_domain::CustomerId>>, ServiceError> {
    if cx.principal.access.role != Role::Customer {
        return Ok(Some(None));
    }
    Ok(crate::customers::own(cx).await?.map(Some))
}

/// A page of the pods the caller sees, newest first.
pub async fn list(
    cx: &Context,
    status: Option<PodStatus>,
    customer: Option<mpanel_domain::CustomerId>,
    after: Option<CloudPodId>,
    limit: u32,
) -> Result<Vec<PodRecord>, ServiceError> {
    let Some(own) = scope(cx).await? else {
        return Ok(Vec::new());
    };
    // A customer's filter is themselves, whatever they ask for.
    let customer = own.or(customer);
    if own.is_some() && customer != own {
        return Ok(Vec::new());
    }
    Ok(cx
        .store
        .cloud_pods(cx.tenant_id(), PodFilter { customer, status }, after, limit)
        .await?)
}

/// One pod the caller sees (404 otherwise).
pub async fn record(cx: &Context, id: CloudPodId) -> Result<PodRecord, ServiceError> {
    let pod = cx
        .store
        .cloud_pod(cx.tenant_id(), id)
        .await?
        .ok_or_else(ServiceError::missing("CloudPod"))?;
    match scope(cx).await? {
        Some(None) => Ok(pod),
        Some(Some(customer)) if customer == pod.customer_id => Ok(pod),
        _ => Err(ServiceError::NotFound("no such CloudPod".into())),
    }
}

/// One pod with its backups.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct PodDetail {
    #[serde(flatten)]
    pub pod: PodView,
    /// Newest first.
    pub backups: Vec<backups::BackupView>,
}

pub async fn get(cx: &Context, id: CloudPodId) -> Result<PodDetail, ServiceError> {
    let pod = record(cx, id).await?;
    let backups = cx
        .store
        .pod_backups(pod.id)
        .await?
        .into_iter()
        .map(backups::view)
        .collect();
    Ok(PodDetail {
        pod: view(pod),
        backups,
    })
}
