//! Backups (§3 vzdump, storage content, restore): a snapshot-mode vzdump
//! of one VM to a backup storage, the archives of a VM on a storage,
//! deleting one, and restoring one over an existing (stopped) VM.

use serde::Serialize;

use super::values::{array, i64_of, segment, str_of, u32_of, u64_of};
use super::vms::{maybe_upid, upid_of};
use super::{Cluster, Upid};
use crate::DriverError;

/// A backup archive on a storage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackupVolume {
    /// `local:backup/vzdump-qemu-105-2026_01_31-12_00_00.vma.zst`
    pub volid: String,
    /// Bytes.
    pub size: u64,
    /// Unix time the archive was made.
    pub ctime: i64,
}

impl Cluster {
    /// `POST /nodes/{node}/vzdump` with `vmid`, `storage`, `mode=snapshot`,
    /// `compress=zstd`: the `vzdump` task (one runs per node; others wait
    /// for it). It ends `job errors` when the VM could not be backed up
    /// (e.g. locked). A VM that is not on `node` is a permanent error (PVE
    /// answers `"OK"` and does nothing).
    pub async fn backup(&self, node: &str, vmid: u32, storage: &str) -> Result<Upid, DriverError> {
        let path = format!("/nodes/{}/vzdump", segment(node));
        let params = [
            ("vmid", vmid.to_string()),
            ("storage", storage.to_owned()),
            ("mode", "snapshot".to_owned()),
            ("compress", "zstd".to_owned()),
        ];
        let data = self.post(&path, &params).await?;
        if data.as_str() == Some("OK") {
            return Err(DriverError::Permanent(format!(
                "Proxmox VE POST {path}: nothing was backed up: VM {vmid} is not on node {node}"
            )));
        }
        upid_of(&data, &format!("POST {path}"))
    }

    /// `GET /nodes/{node}/storage/{storage}/content?content=backup&vmid=`:
    /// the VM's backup archives on that storage, oldest first.
    pub async fn backups(
        &self,
        node: &str,
        storage: &str,
        vmid: u32,
    ) -> Result<Vec<BackupVolume>, DriverError> {
        let path = format!(
            "/nodes/{}/storage/{}/content",
            segment(node),
            segment(storage)
        );
        let params = [("content", "backup".to_owned()), ("vmid", vmid.to_string())];
        let data = self.get(&path, &params).await?;
        let mut volumes: Vec<BackupVolume> = array(&data, &format!("GET {path}"))?
            .iter()
            .filter(|v| str_of(v.get("content")).is_none_or(|c| c == "backup"))
            .filter(|v| u32_of(v.get("vmid")).is_none_or(|id| id == vmid))
            .filter_map(|v| {
                Some(BackupVolume {
                    volid: str_of(v.get("volid"))?,
                    size: u64_of(v.get("size")).unwrap_or(0),
                    ctime: i64_of(v.get("ctime")).unwrap_or(0),
                })
            })
            .collect();
        volumes.sort_by(|a, b| (a.ctime, &a.volid).cmp(&(b.ctime, &b.volid)));
        Ok(volumes)
    }

    /// `DELETE /nodes/{node}/storage/{storage}/content/{volid}`: the
    /// `imgdel` task, or `None` when PVE deleted it synchronously.
    pub async fn delete_volume(
        &self,
        node: &str,
        storage: &str,
        volid: &str,
    ) -> Result<Option<Upid>, DriverError> {
        let path = format!(
            "/nodes/{}/storage/{}/content/{}",
            segment(node),
            segment(storage),
            segment(volid)
        );
        let data = self.delete(&path, &[]).await?;
        maybe_upid(&data, &format!("DELETE {path}"))
    }

    /// `POST /nodes/{node}/qemu` with `vmid`, `archive`, `force=1`: the
    /// `qmrestore` task, replacing the VM's disks and config with the
    /// archive's. The VM must be stopped (the task fails "vm is running").
    pub async fn restore(&self, node: &str, vmid: u32, archive: &str) -> Result<Upid, DriverError> {
        let path = format!("/nodes/{}/qemu", segment(node));
        let params = [
            ("vmid", vmid.to_string()),
            ("archive", archive.to_owned()),
            ("force", "1".to_owned()),
        ];
        let data = self.post(&path, &params).await?;
        upid_of(&data, &format!("POST {path}"))
    }
}
