//! `cloudpod.backup`, `cloudpod.restore` and the daily policy
//! (`cloudpod.backup_schedule`): vzdump through the pod's cluster to its
//! backup storage, the archive found in the storage's content and
//! recorded, the oldest beyond [`BACKUPS_KEPT`] pruned; a restore stops
//! the VM, restores the archive over it, applies the pod's plan and
//! cloud-init again and starts it if it ran. Each task is recorded before
//! it is awaited, so a retry polls it instead of starting another.

use mpanel_domain::JobId;
use mpanel_domain::cloudpods::{BACKUP_EVERY, BACKUPS_KEPT, BackupKind, BackupStatus, PodStatus};
use mpanel_services::cloudpods::jobs::PodJob;
use mpanel_store::cloudpod_backups::PodBackupRecord;
use mpanel_store::cloudpods::PodRecord;

use super::build::where_is;
use super::lifecycle::asked_at;
use super::{Api, store_err};
use crate::DriverError;
use crate::proxmox::Upid;
use crate::saga::Provisioner;

/// The archive's file name in a vzdump log line, if it names one.
fn archive_named_in(line: &str) -> Option<String> {
    let rest = line.split("creating vzdump archive '").nth(1)?;
    let path = rest.split('\'').next()?;
    path.rsplit('/').next().map(str::to_owned)
}

impl Provisioner {
    async fn job_backup(&self, job: &PodJob) -> Result<(PodRecord, PodBackupRecord), DriverError> {
        let pod = self.pod(job.pod_id).await?;
        let backup = match job.backup_id {
            Some(id) => self.store.pod_backup(id).await.map_err(store_err)?,
            None => None,
        }
        .filter(|b| b.pod_id == pod.id && pod.tenant_id == job.tenant_id)
        .ok_or_else(|| DriverError::Permanent("no such backup of this CloudPod".into()))?;
        Ok((pod, backup))
    }

    /// `cloudpod.backup`; on the job's last attempt a transient failure
    /// is final too (the backup is `FAILED` with why, not left `RUNNING`).
    pub async fn pod_backup(
        &self,
        job: &PodJob,
        this: JobId,
        last_attempt: bool,
    ) -> Result<(), DriverError> {
        let (pod, mut backup) = self.job_backup(job).await?;
        if backup.status != BackupStatus::Running {
            return Ok(());
        }
        let outcome = self.make_backup(&pod, &backup, this).await;
        backup.finished_at = Some(self.clock.now());
        match outcome {
            Ok((volid, size)) => {
                backup.status = BackupStatus::Done;
                backup.volid = Some(volid);
                backup.size_bytes = i64::try_from(size).ok();
            }
            Err(e @ DriverError::Permanent(_)) => {
                backup.status = BackupStatus::Failed;
                backup.error = Some(e.to_string());
            }
            Err(e @ DriverError::Transient(_)) if last_attempt => {
                backup.status = BackupStatus::Failed;
                backup.error = Some(e.to_string());
            }
            Err(other) => return Err(other),
        }
        self.store
            .finish_pod_backup(&backup)
            .await
            .map_err(store_err)?;
        if backup.status == BackupStatus::Done {
            self.prune_backups(&pod).await?;
        }
        Ok(())
    }

    /// Runs (or, on a retry, follows) the vzdump; the archive made.
    async fn make_backup(
        &self,
        pod: &PodRecord,
        backup: &PodBackupRecord,
        this: JobId,
    ) -> Result<(String, u64), DriverError> {
        self.needs_vm_for_backup(pod, this).await?;
        let api = self.pod_api(pod).await?;
        let (node, vmid) = where_is(pod)?;
        let storage = api.settings.backup_storage().to_owned();
        let before: Vec<String> = api
            .cluster
            .backups(node, &storage, vmid)
            .await?
            .into_iter()
            .map(|v| v.volid)
            .collect();
        let adopted = match backup.task.as_deref().map(Upid::parse) {
            Some(Ok(upid)) if self.adopt(&api, &upid).await? => Some(upid),
            _ => None,
        };
        let upid = match adopted {
            Some(upid) => upid,
            None => {
                let upid = api.cluster.backup(node, vmid, &storage).await?;
                self.store
                    .set_pod_backup_task(backup.id, &upid.to_string())
                    .await
                    .map_err(store_err)?;
                self.await_task(&api, &upid).await?;
                upid
            }
        };
        // vzdump names its archive in its log ("creating vzdump archive
        // '/…/vzdump-qemu-105-….vma.zst'"): that file is this backup's.
        let named = api
            .cluster
            .task_error_log(&upid)
            .await
            .unwrap_or_default()
            .iter()
            .find_map(|line| archive_named_in(line));
        let recorded: Vec<String> = self
            .store
            .pod_backups(pod.id)
            .await
            .map_err(store_err)?
            .into_iter()
            .filter_map(|b| b.volid)
            .collect();
        api.cluster
            .backups(node, &storage, vmid)
            .await?
            .into_iter()
            .filter(|v| !recorded.contains(&v.volid))
            .max_by_key(|v| {
                let is_named = named
                    .as_deref()
                    .is_some_and(|file| v.volid.ends_with(&format!("/{file}")));
                (is_named, !before.contains(&v.volid), v.ctime)
            })
            .map(|v| (v.volid, v.size))
            .ok_or_else(|| {
                DriverError::Permanent(format!(
                    "vzdump ended OK but no new archive of VM {vmid} is on {storage}"
                ))
            })
    }

    async fn needs_vm_for_backup(&self, pod: &PodRecord, _this: JobId) -> Result<(), DriverError> {
        match pod.status {
            PodStatus::Active | PodStatus::Suspended => Ok(()),
            other => Err(DriverError::Permanent(format!(
                "the CloudPod is {other}: there is no VM to back up"
            ))),
        }
    }

    /// Keeps the newest [`BACKUPS_KEPT`] finished backups; older archives
    /// are deleted from the storage and forgotten.
    async fn prune_backups(&self, pod: &PodRecord) -> Result<(), DriverError> {
        let done: Vec<PodBackupRecord> = self
            .store
            .pod_backups(pod.id)
            .await
            .map_err(store_err)?
            .into_iter()
            .filter(|b| b.status == BackupStatus::Done)
            .collect();
        if done.len() <= BACKUPS_KEPT {
            return Ok(());
        }
        let api = self.pod_api(pod).await?;
        let (node, _) = where_is(pod)?;
        let storage = api.settings.backup_storage().to_owned();
        for old in &done[BACKUPS_KEPT..] {
            if let Some(volid) = &old.volid
                && let Some(upid) = api.cluster.delete_volume(node, &storage, volid).await?
                && let Err(e) = self.await_task(&api, &upid).await
            {
                tracing::warn!(pod = %pod.id, %volid, error = %e, "a pruned archive was not deleted");
                continue;
            }
            self.store
                .delete_pod_backup(old.id)
                .await
                .map_err(store_err)?;
        }
        Ok(())
    }

    /// Deletes every archive of the pod from the storage and forgets its
    /// backups (a deleted pod leaves nothing behind, and its VMID may be
    /// given to another pod).
    pub(crate) async fn delete_archives(
        &self,
        api: &Api,
        pod: &PodRecord,
    ) -> Result<(), DriverError> {
        let Some(node) = pod.node.as_deref() else {
            return Ok(());
        };
        let storage = api.settings.backup_storage().to_owned();
        for backup in self.store.pod_backups(pod.id).await.map_err(store_err)? {
            if let Some(volid) = &backup.volid {
                let gone = match api.cluster.delete_volume(node, &storage, volid).await {
                    Ok(Some(upid)) => self.await_task(api, &upid).await.map(drop),
                    Ok(None) => Ok(()),
                    Err(e) => Err(e),
                };
                if let Err(e) = gone {
                    tracing::warn!(pod = %pod.id, %volid, error = %e, "an archive of a deleted pod was not deleted");
                }
            }
            self.store
                .delete_pod_backup(backup.id)
                .await
                .map_err(store_err)?;
        }
        Ok(())
    }

    /// `cloudpod.restore`.
    pub async fn pod_restore(&self, job: &PodJob, this: JobId) -> Result<(), DriverError> {
        let (pod, backup) = self.job_backup(job).await?;
        let volid = backup
            .volid
            .clone()
            .filter(|_| backup.status == BackupStatus::Done)
            .ok_or_else(|| DriverError::Permanent("the backup is not finished".into()))?;
        self.needs_vm_for_backup(&pod, this).await?;
        let api = self.pod_api(&pod).await?;
        let (node, vmid) = where_is(&pod)?;
        let since = asked_at(this);
        self.restore_once(&api, &pod, &volid, since).await?;
        let config = api.cluster.config(node, vmid).await?.ok_or_else(|| {
            DriverError::Permanent(format!("VM {vmid} is gone after its restore"))
        })?;
        let set = super::build::pod_config(&pod, &api, &config)?;
        api.cluster
            .set_config(node, vmid, &set, &[], Some(&config.digest))
            .await?;
        self.grow_disk(&api, &pod, &config).await?;
        // Restoring the same archive again (a retry that lost track of the
        // restore) ends the same: every step here is safe to repeat.
        if pod.status == PodStatus::Active {
            self.ensure_running(&api, &pod).await?;
        }
        Ok(())
    }

    /// Stops the VM and restores the archive over it, once per job.
    async fn restore_once(
        &self,
        api: &Api,
        pod: &PodRecord,
        volid: &str,
        since: time::OffsetDateTime,
    ) -> Result<(), DriverError> {
        if let Some(upid) = Self::last_task_of(pod, "qmrestore")
            && upid
                .started_at()
                .is_some_and(|t| t >= since.unix_timestamp())
            && self.adopt(api, &upid).await?
        {
            return Ok(());
        }
        let (node, vmid) = where_is(pod)?;
        self.stop_vm(api, pod, node, vmid).await?;
        let upid = api.cluster.restore(node, vmid, volid).await?;
        self.follow(api, pod.id, &upid).await?;
        Ok(())
    }

    /// `cloudpod.backup_schedule`: a backup queued for every running pod
    /// whose last one is older than [`BACKUP_EVERY`]; how many.
    pub async fn schedule_backups(&self) -> Result<usize, DriverError> {
        let now = self.clock.now();
        let due = self
            .store
            .pods_due_for_backup(now - BACKUP_EVERY, 500)
            .await
            .map_err(store_err)?;
        for pod in &due {
            let mut tx = self.store.begin().await.map_err(store_err)?;
            mpanel_services::cloudpods::backups::start_in(&mut tx, pod, BackupKind::Scheduled, now)
                .await
                .map_err(|e| DriverError::Transient(e.to_string()))?;
            tx.commit().await.map_err(store_err)?;
        }
        Ok(due.len())
    }
}

#[cfg(test)]
mod tests {
    use super::archive_named_in;

    #[test]
    fn the_archive_is_read_from_vzdumps_log() {
        let line = "INFO: creating vzdump archive '/var/lib/vz/dump/vzdump-qemu-105-2026_12_03-10_00_00.vma.zst'";
        assert_eq!(
            archive_named_in(line).as_deref(),
            Some("vzdump-qemu-105-2026_12_03-10_00_00.vma.zst")
        );
        assert_eq!(archive_named_in("INFO: starting new backup job"), None);
    }
}
