//! QEMU VMs (§3): clone a template, read and write the config, resize a
//! disk, power actions, status, metrics, destroy.
//!
//! `{node}` must be the node that holds the VM; a VM looked for on
//! another node "does not exist" there. The readers ([`Cluster::config`],
//! [`Cluster::status`]) turn that into `None`.

use serde::Serialize;
use serde_json::{Map, Value};

use super::client::Failure;
use super::sshkeys::decode_ssh_keys;
use super::values::{array, drive_size, f64_of, i64_of, object, segment, str_of, u32_of, u64_of};
use super::{Cluster, Upid};
use crate::DriverError;

/// What to clone: a full clone of `template` on `node` to `newid`.
#[derive(Debug, Clone, Copy)]
pub struct CloneRequest<'a> {
    pub node: &'a str,
    pub template: u32,
    pub newid: u32,
    /// The new VM's name (PVE checks it is a DNS name).
    pub name: &'a str,
    /// Where the disks go; `None` keeps the template's storage.
    pub storage: Option<&'a str>,
}

/// A power action (`POST …/status/{action}`), each a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Power {
    Start,
    /// Hard stop (QEMU quit, then SIGTERM/SIGKILL); a stopped VM is fine.
    Stop,
    /// ACPI shutdown (refused while paused).
    Shutdown,
    /// Reboot (applies pending changes; refused when not running).
    Reboot,
}

impl Power {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Stop => "stop",
            Self::Shutdown => "shutdown",
            Self::Reboot => "reboot",
        }
    }
}

/// A VM's config (`GET …/config`, pending changes applied).
#[derive(Debug, Clone, PartialEq)]
pub struct VmConfig {
    /// SHA-1 of the config file; send it back to detect concurrent changes.
    pub digest: String,
    pub name: Option<String>,
    pub cores: Option<u32>,
    /// `memory` (`"2048"` or `"current=2048"`), MiB.
    pub memory_mib: Option<u64>,
    /// The config lock (`clone`, `backup`, `create`, `destroyed`, …).
    pub lock: Option<String>,
    /// The attached disks (`scsiN`, `virtioN`, `sataN`, `ideN`; CD-ROMs and
    /// the cloud-init drive left out), in bus and index order, with their
    /// size in bytes from `size=` (0 when the value has none).
    pub disks: Vec<(String, u64)>,
    /// The `sshkeys` value decoded: the public keys, one per line.
    pub sshkeys: Option<String>,
    /// Every key as PVE sent it (`ipconfig0`, `nameserver`, `net0`, …).
    pub raw: Map<String, Value>,
}

/// `GET …/status/current`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VmStatus {
    /// `running` or `stopped` (a QEMU process exists or not).
    pub status: String,
    /// The QMP state: `running`, `paused`, `prelaunch` (started paused for
    /// a backup), `suspended`, …
    pub qmpstatus: Option<String>,
    pub lock: Option<String>,
    /// Fraction of the VM's CPUs in use.
    pub cpu: f64,
    /// Bytes.
    pub mem: u64,
    pub maxmem: u64,
    /// Always 0 for QEMU VMs (PVE cannot see inside).
    pub disk: u64,
    /// The boot disk's size.
    pub maxdisk: u64,
    /// Bytes since QEMU started.
    pub netin: u64,
    pub netout: u64,
    /// Seconds.
    pub uptime: u64,
}

/// One bucket of `…/rrddata` (a field is `None` when PVE has no value).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RrdPoint {
    /// Unix time of the bucket.
    pub time: i64,
    /// Fraction of the VM's CPUs.
    pub cpu: Option<f64>,
    /// Bytes.
    pub mem: Option<f64>,
    /// Bytes per second.
    pub netin: Option<f64>,
    pub netout: Option<f64>,
    /// Bytes (0 for QEMU VMs).
    pub disk: Option<f64>,
}

/// `(bus, index)` of a disk key that counts as an attached disk.
fn disk_key(key: &str) -> Option<(&'static str, u32)> {
    ["scsi", "virtio", "sata", "ide"]
        .into_iter()
        .find_map(|bus| {
            let index = key.strip_prefix(bus)?;
            (!index.is_empty() && index.bytes().all(|b| b.is_ascii_digit()))
                .then(|| index.parse().ok())
                .flatten()
                .map(|i| (bus, i))
        })
}

/// `2048` or `current=2048` (the property string of PVE 8.1+).
fn memory_mib(v: Option<&Value>) -> Option<u64> {
    if let Some(n) = u64_of(v) {
        return Some(n);
    }
    let text = v?.as_str()?;
    text.split(',').find_map(|part| {
        let part = part.trim();
        part.strip_prefix("current=")
            .unwrap_or(part)
            .parse::<u64>()
            .ok()
    })
}

impl VmConfig {
    fn from_json(data: Value, what: &str) -> Result<Self, DriverError> {
        let raw = object(&data, what)?.clone();
        let text = |k: &str| str_of(raw.get(k)).filter(|s| !s.is_empty());
        let mut disks: Vec<((&str, u32), String, u64)> = raw
            .iter()
            .filter_map(|(k, v)| {
                let order = disk_key(k)?;
                let value = v.as_str()?;
                let cdrom = value.split(',').any(|o| o == "media=cdrom");
                let empty = value.split(',').next() == Some("none");
                (!cdrom && !empty).then(|| (order, k.clone(), drive_size(value).unwrap_or(0)))
            })
            .collect();
        disks.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Self {
            digest: text("digest").unwrap_or_default(),
            name: text("name"),
            cores: u32_of(raw.get("cores")),
            memory_mib: memory_mib(raw.get("memory")),
            lock: text("lock"),
            disks: disks.into_iter().map(|(_, k, size)| (k, size)).collect(),
            sshkeys: text("sshkeys").map(|s| decode_ssh_keys(&s)),
            raw,
        })
    }
}

impl VmStatus {
    fn from_json(data: &Value, what: &str) -> Result<Self, DriverError> {
        let o = object(data, what)?;
        let text = |k: &str| str_of(o.get(k)).filter(|s| !s.is_empty());
        let num = |k: &str| u64_of(o.get(k)).unwrap_or(0);
        Ok(Self {
            status: text("status").unwrap_or_else(|| "unknown".to_owned()),
            qmpstatus: text("qmpstatus"),
            lock: text("lock"),
            cpu: f64_of(o.get("cpu")).unwrap_or(0.0),
            mem: num("mem"),
            maxmem: num("maxmem"),
            disk: num("disk"),
            maxdisk: num("maxdisk"),
            netin: num("netin"),
            netout: num("netout"),
            uptime: num("uptime"),
        })
    }
}

fn vm_path(node: &str, vmid: u32) -> String {
    format!("/nodes/{}/qemu/{vmid}", segment(node))
}

/// `data` as a UPID (what asynchronous calls return).
pub(super) fn upid_of(data: &Value, what: &str) -> Result<Upid, DriverError> {
    match data.as_str() {
        Some(s) => Upid::parse(s).map_err(|e| {
            DriverError::Permanent(format!("Proxmox VE {what}: unexpected answer: {e}"))
        }),
        None => Err(super::values::unexpected(what, "a task id (UPID)", data)),
    }
}

/// `null` (synchronous, done) or a UPID (a task to wait for).
pub(super) fn maybe_upid(data: &Value, what: &str) -> Result<Option<Upid>, DriverError> {
    if data.is_null() {
        Ok(None)
    } else {
        upid_of(data, what).map(Some)
    }
}

impl Cluster {
    /// `POST /nodes/{node}/qemu/{template}/clone` with `newid`, `name`,
    /// `full=1` (and `storage`): the `qmclone` task. The new config exists
    /// with `lock: clone` while it runs and is removed if it fails;
    /// configure the VM only after the task ended OK (§5).
    pub async fn clone_vm(&self, req: &CloneRequest<'_>) -> Result<Upid, DriverError> {
        let path = format!("{}/clone", vm_path(req.node, req.template));
        let mut params = vec![
            ("newid", req.newid.to_string()),
            ("name", req.name.to_owned()),
            ("full", "1".to_owned()),
        ];
        if let Some(storage) = req.storage {
            params.push(("storage", storage.to_owned()));
        }
        let data = self.post(&path, &params).await?;
        upid_of(&data, &format!("POST {path}"))
    }

    /// `GET …/config`; `None` when the VM does not exist on that node.
    pub async fn config(&self, node: &str, vmid: u32) -> Result<Option<VmConfig>, DriverError> {
        let path = format!("{}/config", vm_path(node, vmid));
        match self.call(reqwest::Method::GET, &path, &[]).await {
            Ok(data) => VmConfig::from_json(data, &format!("GET {path}")).map(Some),
            Err(Failure::Refused(r)) if r.vm_missing() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// `PUT …/config` (synchronous): sets `set`, deletes the keys in
    /// `delete`; with `digest`, only if the config is still that one
    /// (else a permanent "checksum mismatch"). Values go as given: encode
    /// `sshkeys` with [`super::encode_ssh_keys`]. On a running VM most
    /// changes stay pending until a reboot. Nothing to set or delete is a
    /// no-op. A VM locked by a task is a transient error.
    pub async fn set_config(
        &self,
        node: &str,
        vmid: u32,
        set: &[(&str, String)],
        delete: &[&str],
        digest: Option<&str>,
    ) -> Result<(), DriverError> {
        if set.is_empty() && delete.is_empty() {
            return Ok(());
        }
        let path = format!("{}/config", vm_path(node, vmid));
        let mut params: Vec<(&str, String)> = set.to_vec();
        if !delete.is_empty() {
            params.push(("delete", delete.join(",")));
        }
        if let Some(digest) = digest {
            params.push(("digest", digest.to_owned()));
        }
        self.put(&path, &params).await.map(drop)
    }

    /// `PUT …/resize` to an absolute `size_gib` GiB (shrinking is refused
    /// in the task; the same size is a no-op that ends OK). PVE 8+ answers
    /// with a task; older versions resize synchronously (`None`).
    pub async fn resize_disk(
        &self,
        node: &str,
        vmid: u32,
        disk: &str,
        size_gib: u64,
    ) -> Result<Option<Upid>, DriverError> {
        let path = format!("{}/resize", vm_path(node, vmid));
        let params = [("disk", disk.to_owned()), ("size", format!("{size_gib}G"))];
        let data = self.put(&path, &params).await?;
        maybe_upid(&data, &format!("PUT {path}"))
    }

    /// `POST …/status/{start|stop|shutdown|reboot}`: the task.
    pub async fn power(&self, node: &str, vmid: u32, action: Power) -> Result<Upid, DriverError> {
        let path = format!("{}/status/{}", vm_path(node, vmid), action.as_str());
        let data = self.post(&path, &[]).await?;
        upid_of(&data, &format!("POST {path}"))
    }

    /// `GET …/status/current`; `None` when the VM does not exist on that node.
    pub async fn status(&self, node: &str, vmid: u32) -> Result<Option<VmStatus>, DriverError> {
        let path = format!("{}/status/current", vm_path(node, vmid));
        match self.call(reqwest::Method::GET, &path, &[]).await {
            Ok(data) => VmStatus::from_json(&data, &format!("GET {path}")).map(Some),
            Err(Failure::Refused(r)) if r.vm_missing() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// `DELETE …/qemu/{vmid}?purge=1&destroy-unreferenced-disks=1`: the
    /// `qmdestroy` task. The VM must be stopped (else a permanent "VM N is
    /// running - destroy failed"): stop it and wait for that task first.
    pub async fn destroy(&self, node: &str, vmid: u32) -> Result<Upid, DriverError> {
        let path = vm_path(node, vmid);
        let params = [
            ("purge", "1".to_owned()),
            ("destroy-unreferenced-disks", "1".to_owned()),
        ];
        let data = self.delete(&path, &params).await?;
        upid_of(&data, &format!("DELETE {path}"))
    }

    /// `GET …/rrddata?timeframe=hour&cf=AVERAGE`: the last hour by minute.
    pub async fn rrd(&self, node: &str, vmid: u32) -> Result<Vec<RrdPoint>, DriverError> {
        let path = format!("{}/rrddata", vm_path(node, vmid));
        let params = [
            ("timeframe", "hour".to_owned()),
            ("cf", "AVERAGE".to_owned()),
        ];
        let data = self.get(&path, &params).await?;
        Ok(array(&data, &format!("GET {path}"))?
            .iter()
            .filter_map(|row| {
                let o = row.as_object()?;
                Some(RrdPoint {
                    time: i64_of(o.get("time"))?,
                    cpu: f64_of(o.get("cpu")),
                    mem: f64_of(o.get("mem")),
                    netin: f64_of(o.get("netin")),
                    netout: f64_of(o.get("netout")),
                    disk: f64_of(o.get("disk")),
                })
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{VmConfig, VmStatus, disk_key, memory_mib};

    #[test]
    fn memory_is_a_number_or_a_property_string() {
        assert_eq!(memory_mib(Some(&json!(2048))), Some(2048));
        assert_eq!(memory_mib(Some(&json!("2048"))), Some(2048));
        assert_eq!(memory_mib(Some(&json!("current=4096"))), Some(4096));
        assert_eq!(memory_mib(None), None);
    }

    #[test]
    fn a_config_lists_its_disks_in_order_and_decodes_sshkeys() {
        let config = VmConfig::from_json(
            json!({
                "digest": "0123abcd",
                "name": "web1",
                "cores": "4",
                "memory": "current=2048",
                "scsi10": "local-lvm:vm-150-disk-2,size=1T",
                "scsi0": "local-lvm:vm-150-disk-0,iothread=1,size=50G",
                "scsi2": "local-lvm:vm-150-disk-1,size=512M",
                "ide2": "local-lvm:vm-150-cloudinit,media=cdrom",
                "ide0": "none,media=cdrom",
                "virtio1": "local-lvm:vm-150-disk-3",
                "unused0": "local-lvm:vm-150-disk-9",
                "efidisk0": "local-lvm:vm-150-disk-8,size=4M",
                "sshkeys": "ssh-ed25519%20AAAA%2B%2F%3D%20a%40b",
            }),
            "GET config",
        )
        .unwrap();
        assert_eq!(config.cores, Some(4));
        assert_eq!(config.memory_mib, Some(2048));
        assert_eq!(config.lock, None);
        assert_eq!(
            config.disks,
            vec![
                ("scsi0".to_owned(), 50 << 30),
                ("scsi2".to_owned(), 512 << 20),
                ("scsi10".to_owned(), 1 << 40),
                ("virtio1".to_owned(), 0),
            ]
        );
        assert_eq!(config.sshkeys.as_deref(), Some("ssh-ed25519 AAAA+/= a@b"));
        assert!(VmConfig::from_json(json!([]), "GET config").is_err());
        assert_eq!(disk_key("scsi"), None);
        assert_eq!(disk_key("scsihw"), None);
        assert_eq!(disk_key("ide2"), Some(("ide", 2)));
    }

    #[test]
    fn a_status_tolerates_strings_and_missing_stats() {
        let s = VmStatus::from_json(
            &json!({"status": "running", "qmpstatus": "prelaunch", "lock": "backup",
                    "cpu": "0.5", "mem": "1024", "maxmem": 2048, "uptime": 3}),
            "GET status",
        )
        .unwrap();
        assert_eq!(s.status, "running");
        assert_eq!(s.qmpstatus.as_deref(), Some("prelaunch"));
        assert_eq!(s.lock.as_deref(), Some("backup"));
        assert_eq!(
            (s.cpu, s.mem, s.maxmem, s.netin, s.uptime),
            (0.5, 1024, 2048, 0, 3)
        );
    }
}
