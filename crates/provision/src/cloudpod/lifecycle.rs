//! A pod's jobs after provisioning: suspend (the VM stopped), resume
//! (started), reboot, resize (cores, memory, disk to the subscription's
//! plan), update (host name, SSH keys), delete (stopped, destroyed with
//! its disks, the VMID and address given back). Each looks at the VM
//! first, so a retry after an unknown outcome does not repeat a change.

use mpanel_domain::catalog::ProvisioningTemplate;
use mpanel_domain::cloudpods::{PodPlan, PodStatus, SuspendedBy};
use mpanel_services::cloudpods::jobs::PodJob;
use mpanel_store::cloudpods::PodRecord;

use super::build::{pod_config, where_is};
use super::store_err;
use crate::DriverError;
use crate::proxmox::Power;
use crate::saga::Provisioner;

impl Provisioner {
    /// Shows a job's failure on the pod (a wait is not one); best effort.
    pub async fn note_pod_failure(&self, pod: mpanel_domain::CloudPodId, e: &DriverError) {
        if matches!(e, DriverError::Waiting { .. }) {
            return;
        }
        if let Err(err) = self
            .store
            .note_cloud_pod_task(pod, None, Some(&e.to_string()), self.clock.now())
            .await
        {
            tracing::warn!(%pod, error = %err, "the pod's error was not recorded");
        }
    }

    /// The job's pod, if it belongs to the job's tenant.
    async fn job_pod(&self, job: &PodJob) -> Result<PodRecord, DriverError> {
        let pod = self.pod(job.pod_id).await?;
        if pod.tenant_id != job.tenant_id {
            return Err(DriverError::Permanent("no such CloudPod".into()));
        }
        Ok(pod)
    }

    /// The pod is waiting for its provisioning (or its VM is gone): a job
    /// that needs the VM has nothing to act on yet.
    fn needs_vm(pod: &PodRecord) -> Result<(), DriverError> {
        match pod.status {
            PodStatus::Active | PodStatus::Suspended => Ok(()),
            PodStatus::Provisioning => Err(DriverError::Waiting {
                reason: "the CloudPod is still being provisioned".into(),
                retry_in: time::Duration::seconds(5),
            }),
            other => Err(DriverError::Permanent(format!("the CloudPod is {other}"))),
        }
    }

    async fn record_status(
        &self,
        pod: &PodRecord,
        status: PodStatus,
        by: Option<SuspendedBy>,
    ) -> Result<(), DriverError> {
        self.store
            .set_cloud_pod_status(pod.id, status, by, self.clock.now())
            .await
            .map_err(store_err)?;
        self.store
            .note_cloud_pod_task(pod.id, None, None, self.clock.now())
            .await
            .map_err(store_err)
    }

    /// `cloudpod.suspend`: the VM stopped, the pod `SUSPENDED` by whoever
    /// asked (a billing suspension is not lifted by the customer).
    pub async fn pod_suspend(&self, job: &PodJob) -> Result<(), DriverError> {
        let pod = self.job_pod(job).await?;
        Self::needs_vm(&pod)?;
        let api = self.pod_api(&pod).await?;
        let (node, vmid) = where_is(&pod)?;
        self.stop_vm(&api, &pod, node, vmid).await?;
        // Billing's reason outranks staff's, staff's the customer's.
        let by = match (pod.suspended_by, job.by) {
            (Some(SuspendedBy::Billing), _) | (_, Some(SuspendedBy::Billing)) => {
                SuspendedBy::Billing
            }
            (Some(SuspendedBy::Staff), _) | (_, None | Some(SuspendedBy::Staff)) => {
                SuspendedBy::Staff
            }
            _ => SuspendedBy::Customer,
        };
        self.record_status(&pod, PodStatus::Suspended, Some(by))
            .await
    }

    /// `cloudpod.resume`: the VM running again, the pod `ACTIVE`.
    pub async fn pod_resume(&self, job: &PodJob) -> Result<(), DriverError> {
        let pod = self.job_pod(job).await?;
        Self::needs_vm(&pod)?;
        let api = self.pod_api(&pod).await?;
        self.ensure_running(&api, &pod).await?;
        self.record_status(&pod, PodStatus::Active, None).await
    }

    /// `cloudpod.reboot`: a running VM rebooted (pending config applied).
    pub async fn pod_reboot(&self, job: &PodJob) -> Result<(), DriverError> {
        let pod = self.job_pod(job).await?;
        if pod.status != PodStatus::Active {
            return Err(DriverError::Permanent(format!(
                "the CloudPod is {}: only a running pod reboots",
                pod.status
            )));
        }
        let api = self.pod_api(&pod).await?;
        let (node, vmid) = where_is(&pod)?;
        let upid = api.cluster.power(node, vmid, Power::Reboot).await?;
        self.follow(&api, pod.id, &upid).await?;
        Ok(())
    }

    /// `cloudpod.update` and `cloudpod.resize`: the VM's config made the
    /// pod's (cores, memory, cloud-init) and its disk grown; a resize
    /// first takes the plan of the subscription's product.
    pub async fn pod_apply(&self, job: &PodJob, resize: bool) -> Result<(), DriverError> {
        let mut pod = self.job_pod(job).await?;
        Self::needs_vm(&pod)?;
        if resize {
            let plan = self.subscription_plan(&pod).await?;
            self.store
                .set_cloud_pod_plan(pod.id, &plan, self.clock.now())
                .await
                .map_err(store_err)?;
            pod = self.job_pod(job).await?;
        }
        let api = self.pod_api(&pod).await?;
        let (node, vmid) = where_is(&pod)?;
        let config = api
            .cluster
            .config(node, vmid)
            .await?
            .ok_or_else(|| DriverError::Permanent(format!("VM {vmid} is gone from {node}")))?;
        let set = pod_config(&pod, &api, &config)?;
        api.cluster
            .set_config(node, vmid, &set, &[], Some(&config.digest))
            .await?;
        self.grow_disk(&api, &pod, &config).await?;
        // New cores and memory stay pending on a running VM until it
        // restarts: a resize takes effect now (a stopped pod gets them at
        // its next start). New details wait for the customer's reboot.
        if resize && pod.status == PodStatus::Active {
            let upid = api.cluster.power(node, vmid, Power::Reboot).await?;
            self.follow(&api, pod.id, &upid).await?;
        }
        Ok(())
    }

    /// The plan the pod's subscription is on now.
    async fn subscription_plan(&self, pod: &PodRecord) -> Result<PodPlan, DriverError> {
        let sub = self
            .store
            .subscription_ref(pod.subscription_id)
            .await
            .map_err(store_err)?
            .ok_or_else(|| DriverError::Permanent("the subscription is gone".into()))?;
        let product = self
            .store
            .product(pod.tenant_id, sub.product_id)
            .await
            .map_err(store_err)?
            .ok_or_else(|| DriverError::Permanent("the product is gone".into()))?;
        match &product.fields.template {
            t @ ProvisioningTemplate::CloudPod { .. } => PodPlan::of(t),
            _ => None,
        }
        .ok_or_else(|| DriverError::Permanent("the product is not a CloudPod plan".into()))
    }

    /// `cloudpod.delete`: after the pod's provisioning ended, the VM
    /// stopped and destroyed with its disks, the VMID and address given
    /// back, the pod `DELETED` (its row and audit trail kept).
    pub async fn pod_delete(
        &self,
        job: &PodJob,
        this: mpanel_domain::JobId,
    ) -> Result<(), DriverError> {
        let pod = self.job_pod(job).await?;
        if pod.status == PodStatus::Deleted {
            return Ok(());
        }
        let provisioning = self
            .store
            .earlier_job_unfinished(
                &[format!(
                    "{}:{}",
                    mpanel_domain::provisioning::PROVISION_JOB,
                    pod.subscription_id
                )],
                this,
            )
            .await
            .map_err(store_err)?;
        if provisioning {
            return Err(DriverError::Waiting {
                reason: "the CloudPod's provisioning is still under way".into(),
                retry_in: time::Duration::seconds(2),
            });
        }
        let pod = self.job_pod(job).await?;
        if let (Some(node), Some(vmid)) = (pod.node.as_deref(), pod.vmid) {
            let api = self.pod_api(&pod).await?;
            self.destroy_vm(&api, &pod, node, vmid).await?;
        }
        self.store
            .release_cloud_pod(pod.id, PodStatus::Deleted, None, self.clock.now())
            .await
            .map_err(store_err)
    }
}
