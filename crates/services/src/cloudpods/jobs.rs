//! The jobs of one pod: a payload naming the pod (and, for a suspension,
//! who asked), queued with a key per kind and pod so the handlers can run
//! them in the order asked.

use mpanel_domain::cloudpods::{POD_JOBS, SuspendedBy};
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
    /// Suspend: who asked (billing, staff, the customer).
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

/// The key a job of `kind` on `pod` is queued under.
pub fn key(kind: &str, pod: CloudPodId) -> String {
    format!("{kind}:{pod}")
}

/// Every key of the pod's jobs (to find an earlier one still under way).
pub fn keys(pod: CloudPodId) -> Vec<String> {
    POD_JOBS.iter().map(|kind| key(kind, pod)).collect()
}

/// Queues `kind` for the job's pod in `tx`; a job of the same kind still
/// waiting is returned instead of a second one.
pub async fn queue_in(
    tx: &mut Tx,
    kind: &str,
    job: &PodJob,
    now: OffsetDateTime,
) -> Result<JobId, ServiceError> {
    let options = JobOptions {
        queue: "provisioning".into(),
        unique_key: Some(key(kind, job.pod_id)),
        max_attempts: 10,
        ..JobOptions::default()
    };
    let (id, _) = enqueue(tx, kind, job, &options, now).await?;
    Ok(id)
}
