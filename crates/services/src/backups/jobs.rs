//! The backup jobs: a backup (`backup.run`) and a restore
//! (`backup.restore`), each keyed under `backup:<tenant>:` so the handler
//! runs one at a time per tenant (its sites and mailboxes share one restic
//! repository, whose prune takes an exclusive lock), in the order asked.

use mpanel_domain::backups::{RESTORE_JOB, RUN_JOB, Trigger};
use mpanel_domain::{BackupRunId, BackupTargetId, JobId, TenantId};
use mpanel_jobs::{JobOptions, enqueue};
use mpanel_store::Tx;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ServiceError;

/// `backup.run`: back up the target now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupRun {
    pub tenant_id: TenantId,
    pub target_id: BackupTargetId,
    pub trigger: Trigger,
}

/// `backup.restore`: carry out the recorded restore run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupRestore {
    pub tenant_id: TenantId,
    pub target_id: BackupTargetId,
    pub run_id: BackupRunId,
}

/// The prefix of the keys of a tenant's backup jobs.
pub fn prefix(tenant: TenantId) -> String {
    format!("backup:{tenant}:")
}

/// Backups and restores may wait for each other a long time.
const ATTEMPTS: i32 = 10;

/// Queues a backup of the target; a backup already waiting is answered
/// instead of a second one.
pub async fn queue_backup(
    tx: &mut Tx,
    job: &BackupRun,
    now: OffsetDateTime,
) -> Result<(JobId, bool), ServiceError> {
    let options = JobOptions {
        queue: "provisioning".into(),
        unique_key: Some(format!("{}{}:run", prefix(job.tenant_id), job.target_id)),
        max_attempts: ATTEMPTS,
        ..JobOptions::default()
    };
    Ok(enqueue(tx, RUN_JOB, job, &options, now).await?)
}

/// Queues a restore after the target's earlier jobs.
pub async fn queue_restore(
    tx: &mut Tx,
    job: &BackupRestore,
    now: OffsetDateTime,
) -> Result<JobId, ServiceError> {
    let options = JobOptions {
        queue: "provisioning".into(),
        unique_key: Some(format!(
            "{}{}:restore:{}",
            prefix(job.tenant_id),
            job.target_id,
            job.run_id
        )),
        max_attempts: ATTEMPTS,
        ..JobOptions::default()
    };
    Ok(enqueue(tx, RESTORE_JOB, job, &options, now).await?.0)
}
