//! A pod's backups: listed, asked for now (`cloudpod.backup`: vzdump to
//! the cluster's backup storage, then the oldest beyond the policy
//! pruned), restored (`cloudpod.restore`: the VM stopped, the archive
//! restored over it, the pod's plan and cloud-init applied again, started
//! if it ran), and queued daily by the policy for every running pod.

use mpanel_domain::cloudpods::{BACKUP_JOB, BackupKind, BackupStatus, PodAction, RESTORE_JOB};
use mpanel_domain::{CloudPodId, JobId, PodBackupId};
use mpanel_store::Tx;
use mpanel_store::cloudpod_backups::PodBackupRecord;
use mpanel_store::cloudpods::PodRecord;
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;

use super::jobs::{PodJob, queue_in};
use super::record;
use crate::actor::Change;
use crate::{Actor, Context, ServiceError};

/// A backup as the API shows it.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct BackupView {
    pub id: PodBackupId,
    pub kind: BackupKind,
    pub status: BackupStatus,
    /// The archive on the cluster's backup storage, once made.
    pub volid: Option<String>,
    pub size_bytes: Option<i64>,
    pub error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
}

pub fn view(b: PodBackupRecord) -> BackupView {
    BackupView {
        id: b.id,
        kind: b.kind,
        status: b.status,
        volid: b.volid,
        size_bytes: b.size_bytes,
        error: b.error,
        started_at: b.started_at,
        finished_at: b.finished_at,
    }
}

/// The pod's backups, newest first.
pub async fn list(cx: &Context, pod: CloudPodId) -> Result<Vec<BackupView>, ServiceError> {
    let pod = record(cx, pod).await?;
    Ok(cx
        .store
        .pod_backups(pod.id)
        .await?
        .into_iter()
        .map(view)
        .collect())
}

/// A backup row `RUNNING` and its job, in `tx`.
pub async fn start_in(
    tx: &mut Tx,
    pod: &PodRecord,
    kind: BackupKind,
    now: OffsetDateTime,
) -> Result<(PodBackupRecord, JobId), ServiceError> {
    let backup = PodBackupRecord {
        id: PodBackupId::new(),
        tenant_id: pod.tenant_id,
        pod_id: pod.id,
        kind,
        status: BackupStatus::Running,
        volid: None,
        size_bytes: None,
        task: None,
        error: None,
        started_at: now,
        finished_at: None,
    };
    tx.insert_pod_backup(&backup).await?;
    let mut job = PodJob::new(pod.tenant_id, pod.id);
    job.backup_id = Some(backup.id);
    let job_id = queue_in(tx, BACKUP_JOB, &job, now).await?;
    Ok((backup, job_id))
}

async fn audit(
    tx: &mut Tx,
    actor: &Actor,
    pod: &PodRecord,
    action: &str,
    backup: PodBackupId,
    job: JobId,
    now: OffsetDateTime,
) -> Result<(), ServiceError> {
    tx.record_audit(&actor.audit(Change {
        tenant: pod.tenant_id,
        action,
        target_type: "cloud_pod",
        target_id: pod.id.to_string(),
        before: None,
        after: Some(json!({"backup_id": backup, "job_id": job})),
        at: now,
    }))
    .await?;
    Ok(())
}

/// `POST /api/cloudpods/{id}/backups`: a backup now.
pub async fn request(cx: &Context, pod: CloudPodId) -> Result<(BackupView, JobId), ServiceError> {
    let pod = record(cx, pod).await?;
    super::actions::check(&pod, PodAction::Backup)?;
    let now = cx.now();
    let mut tx = cx.store.begin().await?;
    let (backup, job) = start_in(&mut tx, &pod, BackupKind::Manual, now).await?;
    audit(&mut tx, &cx.actor, &pod, BACKUP_JOB, backup.id, job, now).await?;
    tx.commit().await?;
    Ok((view(backup), job))
}

/// `POST /api/cloudpods/{id}/backups/{backup}/restore`: the pod's VM
/// brought back to a finished backup of its own.
pub async fn restore(
    cx: &Context,
    pod: CloudPodId,
    backup: PodBackupId,
) -> Result<(BackupView, JobId), ServiceError> {
    let pod = record(cx, pod).await?;
    let backup = cx
        .store
        .pod_backup(backup)
        .await?
        .filter(|b| b.pod_id == pod.id)
        .ok_or_else(ServiceError::missing("backup of this CloudPod"))?;
    super::actions::check(&pod, PodAction::Restore)?;
    if backup.status != BackupStatus::Done {
        return Err(ServiceError::Conflict(format!(
            "this backup is {}: only a finished one is restored",
            backup.status
        )));
    }
    let now = cx.now();
    let mut tx = cx.store.begin().await?;
    let mut job = PodJob::new(pod.tenant_id, pod.id);
    job.backup_id = Some(backup.id);
    let job_id = queue_in(&mut tx, RESTORE_JOB, &job, now).await?;
    audit(
        &mut tx,
        &cx.actor,
        &pod,
        RESTORE_JOB,
        backup.id,
        job_id,
        now,
    )
    .await?;
    tx.commit().await?;
    Ok((view(backup), job_id))
}
