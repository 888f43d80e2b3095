//! CloudPods on Proxmox VE: a paid subscription's pod made step by step
//! ([`build`]: place, clone, configure, start), and its life after that
//! ([`lifecycle`]: suspend, resume, reboot, resize, details, delete).
//!
//! The VMID and the IPv4 address are allocated in mPanel's database,
//! unique per cluster (PVE's `/cluster/nextid` reserves nothing), skipping
//! every VMID the cluster already holds. Every task's UPID is recorded on
//! the pod before it is awaited, so a retried job polls the task it
//! started instead of starting another. PVE's locks and unreachable nodes
//! are transient; a 59x means the outcome is unknown, so the next attempt
//! looks at the VM before doing anything again.

pub mod backups;
pub mod build;
pub mod health;
pub mod lifecycle;
pub mod usage;

use std::time::Duration;

use mpanel_domain::CloudPodId;
use mpanel_domain::cloudpods::ClusterSettings;
use mpanel_services::servers::{Credentials, open_credentials};
use mpanel_store::cloudpods::PodRecord;
use mpanel_store::servers::ServerRecord;

use crate::proxmox::{Cluster, TaskEnd, Upid};
use crate::saga::Provisioner;
use crate::{DriverError, Ensured};

/// How long a job waits on a task before it lets the worker go and looks
/// again later.
const TASK_WAIT: Duration = Duration::from_secs(20);
const TASK_POLL: Duration = Duration::from_millis(200);
/// When a job that let a running task be looks at it again.
const TASK_RECHECK: time::Duration = time::Duration::seconds(2);

pub(crate) fn store_err(e: mpanel_store::StoreError) -> DriverError {
    DriverError::Transient(format!("database: {e}"))
}

/// A cluster's API and settings.
pub struct Api {
    pub cluster: Cluster,
    pub settings: ClusterSettings,
    pub server: ServerRecord,
}

impl Provisioner {
    /// The API of a `CLOUD` server: its sealed token, its pinned
    /// fingerprint and its settings.
    pub async fn cluster_api(&self, server: &ServerRecord) -> Result<Api, DriverError> {
        let settings = ClusterSettings::from_value(&server.settings).map_err(|(f, why)| {
            DriverError::Permanent(format!("cluster {}: {f} {why}", server.name))
        })?;
        let Credentials::Api { url, key } = open_credentials(self.secrets()?, server)
            .map_err(|e| DriverError::Permanent(e.to_string()))?
        else {
            return Err(DriverError::Permanent(format!(
                "cluster {} has no API credentials",
                server.name
            )));
        };
        let cluster = Cluster::new(&url, &key, &settings.fingerprint)?;
        Ok(Api {
            cluster,
            settings,
            server: server.clone(),
        })
    }

    pub(crate) async fn pod(&self, id: CloudPodId) -> Result<PodRecord, DriverError> {
        self.store
            .cloud_pods_by_id(id)
            .await
            .map_err(store_err)?
            .ok_or_else(|| DriverError::Permanent("the CloudPod is gone".into()))
    }

    /// The API of the cluster the pod is placed on.
    pub(crate) async fn pod_api(&self, pod: &PodRecord) -> Result<Api, DriverError> {
        let cluster = pod
            .cluster_id
            .ok_or_else(|| DriverError::Permanent("the CloudPod is not placed".into()))?;
        let server = self.server(cluster).await?;
        self.cluster_api(&server).await
    }

    /// Records `upid` on the pod (before it is awaited), then waits for
    /// it: `Ok` with its warnings, a failed task as a permanent error, a
    /// task still running after [`TASK_WAIT`] as a wait (the next attempt
    /// polls the same task).
    pub(crate) async fn follow(
        &self,
        api: &Api,
        pod: CloudPodId,
        upid: &Upid,
    ) -> Result<u32, DriverError> {
        self.store
            .note_cloud_pod_task(pod, Some(&upid.to_string()), None, self.clock.now())
            .await
            .map_err(store_err)?;
        self.await_task(api, upid).await
    }

    pub(crate) async fn await_task(&self, api: &Api, upid: &Upid) -> Result<u32, DriverError> {
        match api.cluster.wait(upid, TASK_POLL, TASK_WAIT).await {
            Ok(TaskEnd::Ok { warnings }) => {
                if warnings > 0 {
                    tracing::info!(%upid, warnings, "Proxmox task ended with warnings");
                }
                Ok(warnings)
            }
            // A lock timeout inside the worker (a clone from a busy
            // template, a storage lock) goes away: retried, never final.
            Ok(TaskEnd::Failed(why)) if crate::proxmox::is_lock_error(&why) => Err(
                DriverError::Transient(format!("Proxmox task {} hit a lock: {why}", upid.kind)),
            ),
            Ok(TaskEnd::Failed(why)) => Err(DriverError::Permanent(format!(
                "Proxmox task {} failed: {why}",
                upid.kind
            ))),
            Err(DriverError::Transient(why)) if why.contains("still running") => {
                Err(DriverError::Waiting {
                    reason: why,
                    retry_in: TASK_RECHECK,
                })
            }
            Err(e) => Err(e),
        }
    }

    /// The last task recorded on the pod, if it is of `kind` (`qmclone`,
    /// `qmstart`, …) and still worth polling.
    pub(crate) fn last_task_of(pod: &PodRecord, kind: &str) -> Option<Upid> {
        pod.last_task
            .as_deref()
            .and_then(|t| Upid::parse(t).ok())
            .filter(|u| u.kind == kind)
    }

    /// Runs `action` on the VM once for the job made at `since`: a task of
    /// its kind recorded on the pod and started since then is this job's
    /// (a retry after a wait or an unknown outcome), and is polled instead
    /// of started again.
    pub(crate) async fn power_once(
        &self,
        api: &Api,
        pod: &PodRecord,
        action: crate::proxmox::Power,
        since: time::OffsetDateTime,
    ) -> Result<(), DriverError> {
        let kind = match action {
            crate::proxmox::Power::Start => "qmstart",
            crate::proxmox::Power::Stop => "qmstop",
            crate::proxmox::Power::Shutdown => "qmshutdown",
            crate::proxmox::Power::Reboot => "qmreboot",
        };
        if let Some(upid) = Self::last_task_of(pod, kind)
            && upid
                .started_at()
                .is_some_and(|t| t >= since.unix_timestamp())
            && self.adopt(api, &upid).await?
        {
            return Ok(());
        }
        let (node, vmid) = build::where_is(pod)?;
        let upid = api.cluster.power(node, vmid, action).await?;
        self.follow(api, pod.id, &upid).await?;
        Ok(())
    }

    /// Follows a task a job started before: `true` once it ended well
    /// (awaited if still running), `false` when it failed (the caller
    /// starts it again: a lock error it met has gone with its task).
    pub(crate) async fn adopt(&self, api: &Api, upid: &Upid) -> Result<bool, DriverError> {
        match api.cluster.task(upid).await? {
            crate::proxmox::TaskState::Stopped(TaskEnd::Ok { .. }) => Ok(true),
            crate::proxmox::TaskState::Stopped(TaskEnd::Failed(_)) => Ok(false),
            crate::proxmox::TaskState::Running => match self.await_task(api, upid).await {
                Ok(_) => Ok(true),
                Err(DriverError::Transient(_)) => Ok(false),
                Err(e) => Err(e),
            },
        }
    }

    /// The node that holds the pod's VM now: the recorded one, or the one
    /// it was migrated to (recorded from then on); `None` when no node of
    /// the cluster holds it.
    pub(crate) async fn current_node(
        &self,
        api: &Api,
        pod: &PodRecord,
    ) -> Result<Option<String>, DriverError> {
        let (node, vmid) = build::where_is(pod)?;
        if api.cluster.config(node, vmid).await?.is_some() {
            return Ok(Some(node.to_owned()));
        }
        let found = api.cluster.locate(vmid).await?;
        if let Some(moved) = &found {
            self.store
                .move_cloud_pod(pod.id, moved, self.clock.now())
                .await
                .map_err(store_err)?;
        }
        Ok(found)
    }

    /// Stops the VM (a stopped one is fine) and waits until it is.
    pub(crate) async fn stop_vm(
        &self,
        api: &Api,
        pod: &PodRecord,
        node: &str,
        vmid: u32,
    ) -> Result<Ensured, DriverError> {
        match api.cluster.status(node, vmid).await? {
            None => return Ok(Ensured::AlreadyThere),
            Some(s) if s.status == "stopped" => return Ok(Ensured::AlreadyThere),
            Some(_) => {}
        }
        let upid = api
            .cluster
            .power(node, vmid, crate::proxmox::Power::Stop)
            .await?;
        self.follow(api, pod.id, &upid).await?;
        Ok(Ensured::Created)
    }

    /// Destroys the VM with its disks (stopping it first), wherever in
    /// the cluster it is now; a VM no node holds is fine.
    pub(crate) async fn destroy_vm(&self, api: &Api, pod: &PodRecord) -> Result<(), DriverError> {
        let Some(node) = self.current_node(api, pod).await? else {
            return Ok(());
        };
        let (_, vmid) = build::where_is(pod)?;
        let node = node.as_str();
        let Some(config) = api.cluster.config(node, vmid).await? else {
            return Ok(());
        };
        if !is_ours(&config, pod) {
            // Someone else's VM under the VMID we meant: never ours to remove.
            return Ok(());
        }
        self.stop_vm(api, pod, node, vmid).await?;
        let upid = api.cluster.destroy(node, vmid).await?;
        self.follow(api, pod.id, &upid).await?;
        Ok(())
    }
}

/// Whether the VM is the pod's: it carries the pod's tag in its
/// description (set when it is configured), or the name it was cloned
/// under.
pub(crate) fn is_ours(config: &crate::proxmox::VmConfig, pod: &PodRecord) -> bool {
    config.name.as_deref() == Some(vm_name(pod).as_str())
        || config
            .raw
            .get("description")
            .and_then(serde_json::Value::as_str)
            .is_some_and(|d| d.contains(&tag(pod)))
}

/// The tag in a pod's VM's description.
pub(crate) fn tag(pod: &PodRecord) -> String {
    format!("mpanel-pod:{}", pod.id)
}

/// The name a pod's VM is cloned under (unique, a valid DNS name); once
/// configured it carries the pod's host name (cloud-init's hostname).
pub(crate) fn vm_name(pod: &PodRecord) -> String {
    let id = pod.id.to_string().replace('-', "");
    format!("pod-{}", &id[id.len() - 12..])
}
