//! The jobs of one pod: a payload naming the pod and who asked, each
//! queued under its own key `pod:<id>:<kind>:<nonce>` (two requests are
//! never merged into one job: a billing suspension must not become the
//! customer's), so the handlers can run them in the order asked.

use mpanel_domain::cloudpods::SuspendedBy;
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

/// The prefix of every key of the pod's jobs.
pub fn prefix(pod: CloudPodId) -> String {
    format!("pod:{pod}:")
}

/// Queues `kind` for the job's pod in `tx`, after the pod's earlier jobs.
pub async fn queue_in(
    tx: &mut Tx,
    kind: &str,
    job: &PodJob,
    now: OffsetDateTime,
) -> Result<JobId, ServiceError> {
    let options = JobOptions {
        queue: "provisioning".into(),
        unique_key: Some(format!("{}{kind}:{}", prefix(job.pod_id), JobId::new())),
        max_attempts: 10,
        ..JobOptions::default()
    };
    let (id, _) = enqueue(tx, kind, job, &options, now).await?;
    Ok(id)
}
