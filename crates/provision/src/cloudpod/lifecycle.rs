//! A pod's jobs after provisioning: suspend (the VM stopped), resume
//! (started), reboot, resize (cores, memory, disk to the plan the pod is
//! billed for), update (host name, SSH keys), delete (stopped, destroyed
//! with its disks, the VMID and address given back). Each looks at the VM
//! first, and a power action is sent once per job (a retry polls the
//! task it started), so a retry after a wait or an unknown outcome does
//! not repeat a change.

use mpanel_domain::JobId;
use mpanel_domain::cloudpods::{PodStatus, SuspendedBy};
use mpanel_domain::provisioning::PROVISION_JOB;
use mpanel_services::cloudpods::jobs::PodJob;
use mpanel_store::cloudpods::PodRecord;
use time::OffsetDateTime;

use super::build::{pod_config, where_is};
use super::{Api, store_err};
use crate::DriverError;
use crate::proxmox::Power;
use crate::saga::Provisioner;

/// When a job was asked for (its id is a UUIDv7).
pub fn asked_at(job: JobId) -> OffsetDateTime {
    job.as_uuid()
        .get_timestamp()
        .map(|t| t.to_unix().0)
        .and_then(|secs| i64::try_from(secs).ok())
        .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok())
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// How strong a suspension is: billing's over staff's over the
/// customer's. A suspension keeps the strongest reason asked for.
fn rank(by: SuspendedBy) -> u8 {
    match by {
        SuspendedBy::Customer => 1,
        SuspendedBy::Staff => 2,
        SuspendedBy::Billing => 3,
    }
}

/// Whether a resume asked by `by` lifts a suspension by `was`, the
/// subscription being in good standing (a suspended subscription keeps
/// its pod stopped whoever asks): the customer lifts only their own,
/// billing (a payment) its own and the customer's, staff any.
fn may_lift(by: SuspendedBy, was: Option<SuspendedBy>) -> bool {
    matches!(
        (by, was),
        (_, None | Some(SuspendedBy::Customer))
            | (SuspendedBy::Staff, _)
            | (SuspendedBy::Billing, Some(SuspendedBy::Billing))
    )
}

impl Provisioner {
    /// Shows a job's final failure on the pod (a permanent one, or the
    /// last attempt's; never a wait, and never over the reason a pod's
    /// provisioning failed).
    pub async fn note_pod_failure(
        &self,
        pod: mpanel_domain::CloudPodId,
        e: &DriverError,
        last_attempt: bool,
    ) {
        let fatal = match e {
            DriverError::Permanent(_) => true,
            DriverError::Transient(_) => last_attempt,
            DriverError::Waiting { .. } => false,
        };
        if !fatal {
            return;
        }
        match self.store.cloud_pods_by_id(pod).await {
            Ok(Some(p)) if p.status != PodStatus::Failed => {}
            _ => return,
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

    /// The pod's provisioning job is still to finish.
    async fn provisioning_unfinished(
        &self,
        pod: &PodRecord,
        this: JobId,
    ) -> Result<bool, DriverError> {
        self.store
            .earlier_job_unfinished(&[format!("{PROVISION_JOB}:{}", pod.subscription_id)], this)
            .await
            .map_err(store_err)
    }

    /// A job that needs the VM: it waits while the pod's provisioning is
    /// under way, and has nothing to act on once that gave up.
    async fn needs_vm(&self, pod: &PodRecord, this: JobId) -> Result<(), DriverError> {
        match pod.status {
            PodStatus::Active | PodStatus::Suspended => Ok(()),
            PodStatus::Provisioning if self.provisioning_unfinished(pod, this).await? => {
                Err(DriverError::Waiting {
                    reason: "the CloudPod is still being provisioned".into(),
                    retry_in: time::Duration::seconds(5),
                })
            }
            other => Err(DriverError::Permanent(format!(
                "the CloudPod is {other}: there is no VM to act on"
            ))),
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

    /// Whether the pod's subscription may run it (not suspended, not
    /// ended).
    async fn subscription_in_good_standing(&self, pod: &PodRecord) -> Result<bool, DriverError> {
        use mpanel_domain::billing::subscription::SubscriptionStatus;
        let sub = self
            .store
            .subscription_ref(pod.subscription_id)
            .await
            .map_err(store_err)?
            .ok_or_else(|| DriverError::Permanent("the subscription is gone".into()))?;
        Ok(matches!(
            sub.status,
            SubscriptionStatus::Active | SubscriptionStatus::PendingActivation
        ))
    }

    /// The pod's cluster, and the pod with the node its VM is on now.
    async fn located(&self, pod: PodRecord) -> Result<(Api, PodRecord), DriverError> {
        let api = self.pod_api(&pod).await?;
        match self.current_node(&api, &pod).await? {
            Some(node) if pod.node.as_deref() != Some(node.as_str()) => {
                let pod = self.pod(pod.id).await?;
                Ok((api, pod))
            }
            Some(_) => Ok((api, pod)),
            None => Err(DriverError::Permanent(format!(
                "the VM {} of this CloudPod is on no node of its cluster",
                pod.vmid.unwrap_or_default()
            ))),
        }
    }

    /// `cloudpod.suspend`: the VM stopped, the pod `SUSPENDED` by whoever
    /// asked (billing's reason outranks staff's, staff's the customer's).
    pub async fn pod_suspend(&self, job: &PodJob, this: JobId) -> Result<(), DriverError> {
        let pod = self.job_pod(job).await?;
        self.needs_vm(&pod, this).await?;
        let by = job.by.unwrap_or(SuspendedBy::Staff);
        // Billing's suspension that a payment overtook: nothing to stop.
        if by == SuspendedBy::Billing && self.subscription_in_good_standing(&pod).await? {
            return Ok(());
        }
        let (api, pod) = self.located(pod).await?;
        let (node, vmid) = where_is(&pod)?;
        self.stop_vm(&api, &pod, node, vmid).await?;
        let kept = match (pod.status, pod.suspended_by) {
            (PodStatus::Suspended, Some(was)) if rank(was) > rank(by) => was,
            _ => by,
        };
        self.record_status(&pod, PodStatus::Suspended, Some(kept))
            .await
    }

    /// `cloudpod.resume`: the VM running again, the pod `ACTIVE`, unless
    /// whoever asked may not lift the suspension (a customer's resume of
    /// a pod billing suspended meanwhile, a payment while staff hold it).
    pub async fn pod_resume(&self, job: &PodJob, this: JobId) -> Result<(), DriverError> {
        let pod = self.job_pod(job).await?;
        self.needs_vm(&pod, this).await?;
        let by = job.by.unwrap_or(SuspendedBy::Staff);
        if !self.subscription_in_good_standing(&pod).await? {
            if by == SuspendedBy::Billing {
                // A payment's resume that a new suspension overtook.
                return Ok(());
            }
            return Err(DriverError::Permanent(
                "the CloudPod's subscription is suspended: it starts again when the subscription does".into(),
            ));
        }
        if pod.status == PodStatus::Suspended && !may_lift(by, pod.suspended_by) {
            if by == SuspendedBy::Customer {
                return Err(DriverError::Permanent(
                    "the CloudPod was suspended by billing or the provider meanwhile".into(),
                ));
            }
            // A payment does not start what staff hold: nothing to do.
            return Ok(());
        }
        let (api, pod) = self.located(pod).await?;
        self.ensure_running(&api, &pod).await?;
        self.record_status(&pod, PodStatus::Active, None).await
    }

    /// `cloudpod.reboot`: a running VM rebooted (pending config applied).
    pub async fn pod_reboot(&self, job: &PodJob, this: JobId) -> Result<(), DriverError> {
        let pod = self.job_pod(job).await?;
        if pod.status != PodStatus::Active {
            return Err(DriverError::Permanent(format!(
                "the CloudPod is {}: only a running pod reboots",
                pod.status
            )));
        }
        let (api, pod) = self.located(pod).await?;
        self.power_once(&api, &pod, Power::Reboot, asked_at(this))
            .await
    }

    /// `cloudpod.update`: the VM's config made the pod's (host name, SSH
    /// keys, address, resolvers); the guest takes them at its next boot.
    pub async fn pod_update(&self, job: &PodJob, this: JobId) -> Result<(), DriverError> {
        let pod = self.job_pod(job).await?;
        self.needs_vm(&pod, this).await?;
        let (api, pod) = self.located(pod).await?;
        self.apply_config(&api, &pod).await
    }

    /// `cloudpod.resize`: cores, memory and disk made the plan the pod is
    /// billed for; a running VM is rebooted once so they take effect (a
    /// stopped one gets them at its next start).
    pub async fn pod_resize(&self, job: &PodJob, this: JobId) -> Result<(), DriverError> {
        let pod = self.job_pod(job).await?;
        self.needs_vm(&pod, this).await?;
        let (api, pod) = self.located(pod).await?;
        self.apply_config(&api, &pod).await?;
        if pod.status == PodStatus::Active {
            self.power_once(&api, &pod, Power::Reboot, asked_at(this))
                .await?;
        }
        Ok(())
    }

    async fn apply_config(&self, api: &Api, pod: &PodRecord) -> Result<(), DriverError> {
        let (node, vmid) = where_is(pod)?;
        let config = api
            .cluster
            .config(node, vmid)
            .await?
            .ok_or_else(|| DriverError::Transient(format!("VM {vmid} is not on {node}")))?;
        let set = pod_config(pod, api, &config)?;
        api.cluster
            .set_config(node, vmid, &set, &[], Some(&config.digest))
            .await?;
        self.grow_disk(api, pod, &config).await
    }

    /// `cloudpod.delete`: after the pod's provisioning ended, the VM
    /// stopped and destroyed with its disks wherever it is now, the VMID
    /// and address given back, the pod `DELETED` (its row and audit trail
    /// kept).
    pub async fn pod_delete(&self, job: &PodJob, this: JobId) -> Result<(), DriverError> {
        let pod = self.job_pod(job).await?;
        if pod.status == PodStatus::Deleted {
            return Ok(());
        }
        if self.provisioning_unfinished(&pod, this).await? {
            return Err(DriverError::Waiting {
                reason: "the CloudPod's provisioning is still under way".into(),
                retry_in: time::Duration::seconds(2),
            });
        }
        let pod = self.job_pod(job).await?;
        if pod.vmid.is_some() {
            let api = self.pod_api(&pod).await?;
            self.destroy_vm(&api, &pod).await?;
            self.delete_archives(&api, &pod).await?;
        }
        self.store
            .release_cloud_pod(pod.id, PodStatus::Deleted, None, self.clock.now())
            .await
            .map_err(store_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn who_may_lift_a_suspension() {
        use SuspendedBy::*;
        assert!(may_lift(Customer, Some(Customer)));
        assert!(!may_lift(Customer, Some(Billing)));
        assert!(!may_lift(Customer, Some(Staff)));
        assert!(may_lift(Billing, Some(Billing)));
        assert!(!may_lift(Billing, Some(Staff)));
        assert!(may_lift(Staff, Some(Billing)));
        assert!(rank(Billing) > rank(Staff) && rank(Staff) > rank(Customer));
    }

    #[test]
    fn a_job_was_asked_for_when_its_id_was_made() {
        let before = OffsetDateTime::now_utc().unix_timestamp();
        let at = asked_at(JobId::new()).unix_timestamp();
        assert!((before..=before + 1).contains(&at), "{at}");
    }
}
