//! A pod made, one recorded step at a time: `cloudpod.place` (a node with
//! room, a VMID and an address, chosen in mPanel's database),
//! `cloudpod.clone` (a full clone of the image's template, its task
//! awaited), `cloudpod.configure` (cores, memory, cloud-init, the disk
//! grown to the plan) and `cloudpod.start`. A permanent failure undoes
//! them ([`Provisioner::undo_pod`]): the VM destroyed with its disks, the
//! VMID and address free again, the pod `FAILED` with why.

use std::net::Ipv4Addr;

use mpanel_domain::cloudpods::PodStatus;
use mpanel_domain::provisioning::{ServerRole, ServerStatus};
use mpanel_store::StoreError;
use mpanel_store::cloudpods::{Placement, PodRecord};
use mpanel_store::provisioning::SubscriptionRef;
use serde_json::{Value, json};

use super::{Api, is_ours, store_err, tag, vm_name};
use crate::DriverError;
use crate::proxmox::{CloneRequest, NodeInfo, Power, TaskState, encode_ssh_keys};
use crate::saga::Provisioner;

/// How often placement tries again when a racing pod took the VMID or
/// address it chose.
const PLACE_TRIES: usize = 16;
/// After a collision, a pod picks at random among this many of the lowest
/// free VMIDs and addresses, so pods ordered at once stop choosing alike.
const SPREAD: usize = 32;

/// The lowest of `free` on the first try, one of them at random after.
fn pick<T: Copy>(free: &[T], attempt: usize) -> Option<T> {
    if attempt == 0 || free.len() < 2 {
        return free.first().copied();
    }
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        return free.first().copied();
    }
    let n = usize::try_from(u64::from_le_bytes(bytes) % free.len() as u64).unwrap_or(0);
    free.get(n).copied()
}

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

impl Provisioner {
    async fn pod_of(&self, sub: &SubscriptionRef) -> Result<PodRecord, DriverError> {
        self.store
            .cloud_pod_of_subscription(sub.id)
            .await
            .map_err(store_err)?
            .ok_or_else(|| DriverError::Permanent("the subscription has no CloudPod".into()))
    }

    /// `cloudpod.place`.
    pub(crate) async fn pod_place(&self, sub: &SubscriptionRef) -> Result<Value, DriverError> {
        let pod = self.placed_pod(sub).await?;
        Ok(
            json!({"cluster_id": pod.cluster_id, "node": pod.node, "vmid": pod.vmid,
            "ipv4": pod.ipv4.map(|a| a.to_string())}),
        )
    }

    /// The subscription's pod, placed now if it is not yet.
    async fn placed_pod(&self, sub: &SubscriptionRef) -> Result<PodRecord, DriverError> {
        let pod = self.pod_of(sub).await?;
        if pod.vmid.is_some() {
            return Ok(pod);
        }
        let clusters: Vec<_> = self
            .store
            .list_servers(Some(ServerRole::Cloud))
            .await
            .map_err(store_err)?
            .into_iter()
            .filter(|s| s.status == ServerStatus::Online)
            .collect();
        if clusters.is_empty() {
            return Err(DriverError::Permanent(
                "no ONLINE CLOUD server (Proxmox VE cluster) is in the inventory".into(),
            ));
        }
        let mut last = None;
        for server in &clusters {
            let api = self.cluster_api(server).await?;
            match self.place_on(&api, &pod).await {
                Ok(placed) => return Ok(placed),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| DriverError::Permanent("no cluster has room".into())))
    }

    /// Places the pod on `api`'s cluster: the node with the most free
    /// memory that has the image's template and room for the plan, the
    /// lowest VMID of the range the cluster does not hold, the lowest
    /// free address of the pool.
    async fn place_on(&self, api: &Api, pod: &PodRecord) -> Result<PodRecord, DriverError> {
        let settings = &api.settings;
        let image = image_of(pod, api)?;
        if !settings.templates.contains_key(&image) {
            return Err(DriverError::Permanent(format!(
                "the cluster {} has no {image} image",
                api.server.name
            )));
        }
        let pool = settings
            .pool()
            .map_err(|e| DriverError::Permanent(format!("cluster {}: {e}", api.server.name)))?;
        // The cluster is read once; what pods hold is read again on every try.
        let nodes = api.cluster.nodes().await?;
        let on_cluster = api.cluster.vmids().await?;
        for attempt in 0..PLACE_TRIES {
            let held = self
                .store
                .cluster_holdings(api.server.id)
                .await
                .map_err(store_err)?;
            let node = choose_node(&nodes, pod, &image, api, &held.pending)?;
            let range = settings.vmid_range;
            let vmids: Vec<u32> = (range.first..=range.last)
                .filter(|v| !on_cluster.contains(v) && !held.vmids.contains(v))
                .take(SPREAD)
                .collect();
            let vmid = pick(&vmids, attempt).ok_or_else(|| {
                DriverError::Permanent(format!("no free VMID left on {}", api.server.name))
            })?;
            let ipv4: Ipv4Addr =
                pick(&pool.free(&held.addresses, SPREAD), attempt).ok_or_else(|| {
                    DriverError::Permanent(format!(
                        "the IPv4 pool of {} is exhausted",
                        api.server.name
                    ))
                })?;
            let at = Placement {
                cluster: api.server.id,
                node,
                vmid,
                ipv4,
            };
            match self
                .store
                .place_cloud_pod(pod.id, &at, self.clock.now())
                .await
            {
                Ok(_) => return self.pod(pod.id).await,
                // A racing pod took the VMID or the address: choose again.
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(store_err(e)),
            }
        }
        Err(DriverError::Transient(
            "other pods kept taking the chosen VMID or address; trying again".into(),
        ))
    }

    /// `cloudpod.clone`: a full clone of the template to the pod's VMID.
    /// A clone already started is polled, not started again.
    pub(crate) async fn pod_clone(&self, sub: &SubscriptionRef) -> Result<Value, DriverError> {
        let pod = self.placed_pod(sub).await?;
        let api = self.pod_api(&pod).await?;
        let (node, vmid) = where_is(&pod)?;
        if let Some(config) = api.cluster.config(node, vmid).await? {
            if !is_ours(&config, &pod) {
                return Err(self.vmid_taken(&pod, vmid).await);
            }
            if config.lock.as_deref() == Some("clone") {
                match Self::last_task_of(&pod, "qmclone") {
                    Some(upid) => {
                        self.await_task(&api, &upid).await?;
                    }
                    None => {
                        return Err(DriverError::Waiting {
                            reason: format!("VM {vmid} is still being cloned"),
                            retry_in: time::Duration::seconds(2),
                        });
                    }
                }
            }
            return Ok(json!({"vmid": vmid, "node": node}));
        }
        if let Some(upid) = Self::last_task_of(&pod, "qmclone")
            && let TaskState::Running = api.cluster.task(&upid).await?
        {
            self.await_task(&api, &upid).await?;
            return Ok(json!({"vmid": vmid, "node": node}));
        }
        let image = image_of(&pod, &api)?;
        let template = api.settings.template(&image, node).ok_or_else(|| {
            DriverError::Permanent(format!("node {node} has no template of {image}"))
        })?;
        let name = vm_name(&pod);
        let started = api
            .cluster
            .clone_vm(&CloneRequest {
                node,
                template,
                newid: vmid,
                name: &name,
                storage: Some(&api.settings.storage),
            })
            .await;
        let upid = match started {
            Ok(upid) => upid,
            Err(DriverError::Permanent(why)) if why.contains("already exists") => {
                return Err(self.taken_or_ours(&api, &pod).await);
            }
            Err(e) => return Err(e),
        };
        match self.follow(&api, pod.id, &upid).await {
            // Another node's clone took the VMID first (the task says so).
            Err(DriverError::Permanent(why)) if why.contains("already exists") => {
                Err(self.taken_or_ours(&api, &pod).await)
            }
            Err(e) => Err(e),
            Ok(_) => Ok(json!({"vmid": vmid, "node": node, "task": upid.to_string()})),
        }
    }

    /// The clone was refused because the VMID exists: if the VM there is
    /// this pod's (an earlier clone whose answer was lost), the next
    /// attempt polls it; otherwise the VMID is someone else's and the pod
    /// is placed again.
    async fn taken_or_ours(&self, api: &Api, pod: &PodRecord) -> DriverError {
        let Ok((node, vmid)) = where_is(pod) else {
            return DriverError::Transient("the CloudPod lost its placement".into());
        };
        match api.cluster.config(node, vmid).await {
            Ok(Some(config)) if is_ours(&config, pod) => DriverError::Waiting {
                reason: format!("VM {vmid} is this pod's clone, still being made"),
                retry_in: time::Duration::seconds(2),
            },
            Ok(_) => self.vmid_taken(pod, vmid).await,
            Err(e) => e,
        }
    }

    /// The VMID is held on the cluster by a VM mPanel did not make: the
    /// pod is placed again (on the next attempt).
    async fn vmid_taken(&self, pod: &PodRecord, vmid: u32) -> DriverError {
        if let Err(e) = self.store.unplace_cloud_pod(pod.id, self.clock.now()).await {
            return store_err(e);
        }
        DriverError::Transient(format!(
            "VMID {vmid} is taken on the cluster by a VM mPanel did not make; placing the pod again"
        ))
    }

    /// `cloudpod.configure`: cores, memory, cloud-init (host name, SSH
    /// keys, address, resolvers), the bridge, and the disk grown to the
    /// plan.
    pub(crate) async fn pod_configure(&self, sub: &SubscriptionRef) -> Result<Value, DriverError> {
        let pod = self.pod_of(sub).await?;
        let api = self.pod_api(&pod).await?;
        let (node, vmid) = where_is(&pod)?;
        let config =
            api.cluster.config(node, vmid).await?.ok_or_else(|| {
                DriverError::Transient(format!("VM {vmid} is not on {node} (yet)"))
            })?;
        let set = pod_config(&pod, &api, &config)?;
        api.cluster
            .set_config(node, vmid, &set, &[], Some(&config.digest))
            .await?;
        self.grow_disk(&api, &pod, &config).await?;
        Ok(json!({"cores": pod.vcpus, "memory_mb": pod.memory_mb, "disk_gb": pod.disk_gb}))
    }

    /// Grows the boot disk to the plan's size (never shrinks it).
    pub(crate) async fn grow_disk(
        &self,
        api: &Api,
        pod: &PodRecord,
        config: &crate::proxmox::VmConfig,
    ) -> Result<(), DriverError> {
        let (node, vmid) = where_is(pod)?;
        let (disk, size) = boot_disk(config)
            .ok_or_else(|| DriverError::Permanent(format!("VM {vmid} has no disk")))?;
        let want = u64::from(pod.disk_gb) * GIB;
        if size >= want {
            return Ok(());
        }
        if let Some(upid) = api
            .cluster
            .resize_disk(node, vmid, &disk, u64::from(pod.disk_gb))
            .await?
        {
            self.follow(api, pod.id, &upid).await?;
        }
        Ok(())
    }

    /// `cloudpod.start`: the VM running.
    pub(crate) async fn pod_start(&self, sub: &SubscriptionRef) -> Result<Value, DriverError> {
        let pod = self.pod_of(sub).await?;
        let api = self.pod_api(&pod).await?;
        self.ensure_running(&api, &pod).await?;
        Ok(json!({"running": true}))
    }

    pub(crate) async fn ensure_running(
        &self,
        api: &Api,
        pod: &PodRecord,
    ) -> Result<(), DriverError> {
        let (node, vmid) = where_is(pod)?;
        let status = api
            .cluster
            .status(node, vmid)
            .await?
            .ok_or_else(|| DriverError::Permanent(format!("VM {vmid} is gone from {node}")))?;
        if status.status == "running" && status.qmpstatus.as_deref() != Some("paused") {
            return Ok(());
        }
        if let Some(upid) = Self::last_task_of(pod, "qmstart")
            && let TaskState::Running = api.cluster.task(&upid).await?
        {
            self.await_task(api, &upid).await?;
            return Ok(());
        }
        let upid = api.cluster.power(node, vmid, Power::Start).await?;
        self.follow(api, pod.id, &upid).await?;
        Ok(())
    }

    /// Compensation: the pod's VM destroyed with its disks (if it is
    /// ours), its VMID and address given back, the pod `FAILED`.
    pub(crate) async fn undo_pod(&self, sub: &SubscriptionRef) -> Result<(), DriverError> {
        let Some(pod) = self
            .store
            .cloud_pod_of_subscription(sub.id)
            .await
            .map_err(store_err)?
        else {
            return Ok(());
        };
        if pod.vmid.is_some() {
            let api = self.pod_api(&pod).await?;
            self.destroy_vm(&api, &pod).await?;
        }
        self.store
            .release_cloud_pod(
                pod.id,
                PodStatus::Failed,
                pod.last_error.as_deref(),
                self.clock.now(),
            )
            .await
            .map_err(store_err)
    }
}

/// The disk the VM boots from: the first disk of `boot: order=…`, else
/// its first disk.
fn boot_disk(config: &crate::proxmox::VmConfig) -> Option<(String, u64)> {
    let order = config
        .raw
        .get("boot")
        .and_then(Value::as_str)
        .and_then(|b| b.strip_prefix("order="))
        .unwrap_or_default();
    order
        .split(';')
        .find_map(|key| config.disks.iter().find(|(k, _)| k == key))
        .or_else(|| config.disks.first())
        .cloned()
}

/// The OS image of the pod: its own, else the cluster's default.
fn image_of(pod: &PodRecord, api: &Api) -> Result<String, DriverError> {
    pod.os_image
        .clone()
        .or_else(|| api.settings.default_image().map(str::to_owned))
        .ok_or_else(|| DriverError::Permanent("the cluster names no OS image".into()))
}

/// The pod's node and VMID.
pub(crate) fn where_is(pod: &PodRecord) -> Result<(&str, u32), DriverError> {
    match (pod.node.as_deref(), pod.vmid) {
        (Some(node), Some(vmid)) => Ok((node, vmid)),
        _ => Err(DriverError::Permanent("the CloudPod is not placed".into())),
    }
}

/// The config a pod's VM gets.
pub(crate) fn pod_config(
    pod: &PodRecord,
    api: &Api,
    config: &crate::proxmox::VmConfig,
) -> Result<Vec<(&'static str, String)>, DriverError> {
    let pool = api
        .settings
        .pool()
        .map_err(|e| DriverError::Permanent(format!("cluster {}: {e}", api.server.name)))?;
    let ipv4 = pod
        .ipv4
        .ok_or_else(|| DriverError::Permanent("the CloudPod has no address".into()))?;
    let mut set = vec![
        ("cores", pod.vcpus.to_string()),
        ("memory", pod.memory_mb.to_string()),
        ("name", pod.hostname.clone()),
        ("description", tag(pod)),
        ("ipconfig0", pool.ipconfig(ipv4)),
    ];
    let keys: Vec<String> = pod
        .ssh_keys
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect();
    if !keys.is_empty() {
        set.push(("sshkeys", encode_ssh_keys(&keys)));
    }
    if !api.settings.resolvers.is_empty() {
        set.push(("nameserver", api.settings.resolvers.join(" ")));
    }
    if let Some(net0) = config.raw.get("net0").and_then(Value::as_str) {
        let bridged: Vec<String> = net0
            .split(',')
            .map(|part| match part.split_once('=') {
                Some(("bridge", _)) => format!("bridge={}", api.settings.bridge),
                _ => part.to_owned(),
            })
            .collect();
        let bridged = bridged.join(",");
        if bridged != net0 {
            set.push(("net0", bridged));
        }
    }
    Ok(set)
}

/// The online node with the image's template that has room for the plan
/// (its own figures, less what pods still being made there will take),
/// the one with the most free memory first.
fn choose_node(
    nodes: &[NodeInfo],
    pod: &PodRecord,
    image: &str,
    api: &Api,
    pending: &[(String, u64, u64)],
) -> Result<String, DriverError> {
    let settings = &api.settings;
    let want_mem = u64::from(pod.memory_mb) * MIB;
    let want_disk = u64::from(pod.disk_gb) * GIB;
    let free = |n: &NodeInfo| {
        let (mem, disk) = pending
            .iter()
            .find(|(name, _, _)| *name == n.name)
            .map(|(_, m, d)| (m * MIB, d * GIB))
            .unwrap_or((0, 0));
        (
            n.maxmem.saturating_sub(n.mem).saturating_sub(mem),
            n.maxdisk.saturating_sub(n.disk).saturating_sub(disk),
        )
    };
    let candidates: Vec<_> = nodes
        .iter()
        .filter(|n| settings.nodes.contains(&n.name) && settings.template(image, &n.name).is_some())
        .collect();
    if candidates.is_empty() {
        return Err(DriverError::Permanent(format!(
            "no node of {} allowed for pods has the {image} template",
            api.server.name
        )));
    }
    let online: Vec<_> = candidates.into_iter().filter(|n| n.online).collect();
    if online.is_empty() {
        return Err(DriverError::Transient(format!(
            "no node of {} allowed for pods is online",
            api.server.name
        )));
    }
    online
        .into_iter()
        .filter(|n| {
            let (mem, disk) = free(n);
            mem >= want_mem && disk >= want_disk
        })
        .max_by_key(|n| free(n).0)
        .map(|n| n.name.clone())
        .ok_or_else(|| {
            DriverError::Permanent(format!(
                "no online node of {} has {} MB of memory and {} GB of disk free",
                api.server.name, pod.memory_mb, pod.disk_gb
            ))
        })
}
