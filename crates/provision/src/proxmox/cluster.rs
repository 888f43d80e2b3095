//! Cluster-wide reads (§3): the nodes with their load, and every VMID in
//! use (to pick a free one client-side: `/cluster/nextid` reserves
//! nothing, §5).

use serde::Serialize;
use serde_json::Value;

use super::Cluster;
use super::values::{array, f64_of, str_of, u32_of, u64_of};
use crate::DriverError;

/// One node of `GET /nodes`. The stats are 0 when PVE leaves them out
/// (an offline node, or a token without Sys.Audit).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeInfo {
    pub name: String,
    /// `status: online`.
    pub online: bool,
    /// CPU load, a fraction of `maxcpu`.
    pub cpu: f64,
    pub maxcpu: u32,
    /// Bytes.
    pub mem: u64,
    pub maxmem: u64,
    /// Bytes of the root file system.
    pub disk: u64,
    pub maxdisk: u64,
}

impl NodeInfo {
    fn from_json(v: &Value) -> Option<Self> {
        let o = v.as_object()?;
        Some(Self {
            name: str_of(o.get("node"))?,
            online: o.get("status").and_then(Value::as_str) == Some("online"),
            cpu: f64_of(o.get("cpu")).unwrap_or(0.0),
            maxcpu: u32_of(o.get("maxcpu")).unwrap_or(0),
            mem: u64_of(o.get("mem")).unwrap_or(0),
            maxmem: u64_of(o.get("maxmem")).unwrap_or(0),
            disk: u64_of(o.get("disk")).unwrap_or(0),
            maxdisk: u64_of(o.get("maxdisk")).unwrap_or(0),
        })
    }
}

impl Cluster {
    /// `GET /nodes`: every node of the cluster, by name.
    pub async fn nodes(&self) -> Result<Vec<NodeInfo>, DriverError> {
        let data = self.get("/nodes", &[]).await?;
        let mut nodes: Vec<NodeInfo> = array(&data, "GET /nodes")?
            .iter()
            .filter_map(NodeInfo::from_json)
            .collect();
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(nodes)
    }

    /// The node that holds VM `vmid` now (it may have been migrated),
    /// from `GET /cluster/resources?type=vm`; `None` when no node does.
    pub async fn locate(&self, vmid: u32) -> Result<Option<String>, DriverError> {
        let what = "GET /cluster/resources";
        let data = self
            .get("/cluster/resources", &[("type", "vm".to_owned())])
            .await?;
        Ok(array(&data, what)?
            .iter()
            .find(|entry| u32_of(entry.get("vmid")) == Some(vmid))
            .and_then(|entry| entry.get("node")?.as_str().map(str::to_owned)))
    }

    /// `GET /cluster/resources?type=vm`: every VMID in use in the cluster
    /// (QEMU and LXC, templates included), sorted. A token without
    /// VM.Audit on a VM does not see it (§1): give the token that right on
    /// `/vms` or IDs will collide.
    pub async fn vmids(&self) -> Result<Vec<u32>, DriverError> {
        let what = "GET /cluster/resources";
        let data = self
            .get("/cluster/resources", &[("type", "vm".to_owned())])
            .await?;
        let mut ids: Vec<u32> = array(&data, what)?
            .iter()
            .filter_map(|entry| {
                u32_of(entry.get("vmid")).or_else(|| {
                    // `id: "qemu/105"` when `vmid` is missing.
                    let id = entry.get("id")?.as_str()?;
                    id.rsplit_once('/')?.1.parse().ok()
                })
            })
            .collect();
        ids.sort_unstable();
        ids.dedup();
        Ok(ids)
    }
}
