//! CloudPods: a customer's virtual machine on a Proxmox VE cluster. Where a
//! pod stands and which moves it allows, its plan, the cluster's settings
//! and the address pool its IPv4 comes from.

pub mod cluster;
pub mod plan;
pub mod pool;

use crate::catalog::upper_enum;

pub use cluster::{ClusterSettings, IPV4_POOL, VmidRange, valid_api_token};
pub use plan::{PodPlan, SEED_PLANS, SeedPlan};
pub use pool::Ipv4Pool;

/// The job kinds of a pod's life after provisioning (which runs as the
/// subscription's `provision.subscription`). Jobs of one pod share a
/// queue key so they run in the order asked.
pub const SUSPEND_JOB: &str = "cloudpod.suspend";
pub const RESUME_JOB: &str = "cloudpod.resume";
pub const DELETE_JOB: &str = "cloudpod.delete";
pub const REBOOT_JOB: &str = "cloudpod.reboot";
pub const RESIZE_JOB: &str = "cloudpod.resize";
pub const UPDATE_JOB: &str = "cloudpod.update";
pub const BACKUP_JOB: &str = "cloudpod.backup";
pub const RESTORE_JOB: &str = "cloudpod.restore";

/// Every kind of a pod's own jobs, for running them in order.
pub const POD_JOBS: [&str; 8] = [
    SUSPEND_JOB,
    RESUME_JOB,
    DELETE_JOB,
    REBOOT_JOB,
    RESIZE_JOB,
    UPDATE_JOB,
    BACKUP_JOB,
    RESTORE_JOB,
];

upper_enum!(
    /// `PROVISIONING` until the VM runs, then `ACTIVE`; `SUSPENDED` while
    /// stopped for non-payment or by staff; `DELETED` once the VM is
    /// destroyed (its VMID and address free again); `FAILED` when
    /// provisioning gave up (nothing is left on the cluster).
    PodStatus {
        Provisioning => "PROVISIONING", Active => "ACTIVE", Suspended => "SUSPENDED",
        Failed => "FAILED", Deleted => "DELETED",
    }
);

upper_enum!(
    /// What one asks of a pod.
    PodAction {
        Update => "UPDATE", Resize => "RESIZE", Suspend => "SUSPEND", Resume => "RESUME",
        Reboot => "REBOOT", Delete => "DELETE", Backup => "BACKUP", Restore => "RESTORE",
    }
);

upper_enum!(
    /// Who suspended a pod: billing (a payment or staff lift it), staff
    /// (staff lift it), or its customer (who may start it again).
    SuspendedBy { Billing => "BILLING", Staff => "STAFF", Customer => "CUSTOMER" }
);

upper_enum!(
    /// A backup: `RUNNING` while vzdump works, then `DONE` (its archive on
    /// the cluster's backup storage) or `FAILED` with why.
    BackupStatus { Running => "RUNNING", Done => "DONE", Failed => "FAILED" }
);

upper_enum!(
    /// Why a backup was made.
    BackupKind { Manual => "MANUAL", Scheduled => "SCHEDULED" }
);

/// Every pod's backup policy: one a day, the newest 7 kept.
pub const BACKUP_EVERY: time::Duration = time::Duration::days(1);
pub const BACKUPS_KEPT: usize = 7;

/// The recurring job that queues the pods' daily backups.
pub const BACKUP_SCHEDULE_JOB: &str = "cloudpod.backup_schedule";

impl PodStatus {
    /// The actions a pod in this status allows.
    pub fn allowed(self) -> &'static [PodAction] {
        use PodAction::*;
        match self {
            Self::Provisioning => &[Update, Delete],
            Self::Active => &[Update, Resize, Suspend, Reboot, Delete, Backup, Restore],
            Self::Suspended => &[Update, Resize, Resume, Delete, Backup],
            Self::Failed => &[Update, Delete],
            Self::Deleted => &[],
        }
    }

    /// `Ok` when `action` is allowed now, else the allowed ones (for the
    /// 409 the caller answers).
    pub fn check(self, action: PodAction) -> Result<(), &'static [PodAction]> {
        if self.allowed().contains(&action) {
            Ok(())
        } else {
            Err(self.allowed())
        }
    }

    /// Whether the pod holds a VMID and an address on its cluster.
    pub fn holds_resources(self) -> bool {
        !matches!(self, Self::Deleted | Self::Failed)
    }
}

/// A host name a pod may carry (RFC 1123, at most 253 characters, labels
/// of letters, digits and hyphens).
pub fn valid_hostname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_follow_the_status() {
        assert!(PodStatus::Active.check(PodAction::Suspend).is_ok());
        assert_eq!(
            PodStatus::Suspended.check(PodAction::Reboot),
            Err(PodStatus::Suspended.allowed())
        );
        assert!(PodStatus::Deleted.check(PodAction::Delete).is_err());
        assert!(PodStatus::Provisioning.check(PodAction::Resize).is_err());
        assert!(!PodStatus::Deleted.holds_resources());
    }

    #[test]
    fn host_names() {
        assert!(valid_hostname("pod1.example.com"));
        assert!(valid_hostname("a"));
        assert!(!valid_hostname("-a.example"));
        assert!(!valid_hostname("a..b"));
        assert!(!valid_hostname("a_b"));
        assert!(!valid_hostname(""));
    }
}
