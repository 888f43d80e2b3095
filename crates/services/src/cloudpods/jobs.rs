//! The jobs of one pod: a payload naming the pod and who asked, each
//! queued under its own key `pod:<id>:<kind>:<nonce>` (two requests are
//! never merged into one job: a billing suspension must not become the
//! customer's), so the handlers can run them in the order asked.

use mpanel_domain::cloudpods::{BACKUP_JOB, RESTORE_JOB, SuspendedBy};
use mpanel_domain::{CloudPodId, JobId, PodBackupId, TenantId};
use mpanel_jobs::{JobOptions, enqueue};
use mpanel_store::Tx;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ServiceError;

/// What a pod job carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodJob {
    pub tenant_id: TenantId,
    pub pod_id: CloudPodId,
    /// Suspend and resume: who asked (billing, staff, the customer).
    #[serde(default)]
    pub by: Option<SuspendedBy>,
    /// Backup restore: which backup.
    #[serde(default)]
    pub backup_id: Option<PodBackupId>,
}

impl PodJob {
    pub fn new(tenant_id: TenantId, pod_id: CloudPodId) -> Self {
        Self {
            tenant_id,
            pod_id,
            by: None,
            backup_id: None,
        }
    }
}

/// The prefix of the keys of the pod's jobs that run strictly in order
/// (power, details, resize, delete).
pub fn prefix(pod: CloudPodId) -> String {
    format!("pod:{pod}:")
}

/// The prefix of the pod's backup and restore jobs: in order among
/// themselves, but never in front of a suspension, a payment's resume or a
/// delete (a vzdump may wait hours for its node's lock).
pub fn backup_prefix(pod: CloudPodId) -> String {
    format!("podbackup:{pod}:")
}

/// The prefix `kind` is queued under.
pub fn prefix_of(kind: &str, pod: CloudPodId) -> String {
    if kind == BACKUP_JOB || kind == RESTORE_JOB {
        backup_prefix(pod)
    } else {
        prefix(pod)
    }
}

/// How often a pod's job is tried: with the queue's back-off, about a
/// day, so a payment's resume outlives a cluster's outage.
pub const POD_JOB_ATTEMPTS: i32 = 20;

/// Queues `kind` for the job's pod in `tx`, after the pod's earlier jobs.
pub async fn queue_in(
    tx: &mut Tx,
    kind: &str,
    job: &PodJob,
    now: OffsetDateTime,
) -> Result<JobId, ServiceError> {
    let options = JobOptions {
        queue: "provisioning".into(),
        unique_key: Some(format!(
            "{}{kind}:{}",
            prefix_of(kind, job.pod_id),
            JobId::new()
        )),
        max_attempts: POD_JOB_ATTEMPTS,
        ..JobOptions::default()
    };
    let (id, _) = enqueue(tx, kind, job, &options, now).await?;
    Ok(id)
}
