//! Backups of customers' data with restic: what is backed up (a hosting
//! account's site or a mailbox), the policy it follows, and the record of
//! each backup and restore.

pub mod policy;

use crate::catalog::upper_enum;

pub use policy::{BackupPolicy, PolicyError};

/// Runs one target's backup (payload: the target's id).
pub const RUN_JOB: &str = "backup.run";
/// Restores from a snapshot (payload: the backup job's id).
pub const RESTORE_JOB: &str = "backup.restore";
/// Hourly: queues the backups that are due and removes the archives of
/// terminated accounts whose retention ended.
pub const SCHEDULE_JOB: &str = "backup.schedule";

/// How old a target's last good backup may be before it is overdue: a day
/// and two hours' grace (every policy is daily).
pub const MAX_AGE: time::Duration = time::Duration::hours(26);

upper_enum!(
    /// What is backed up.
    TargetKind { Site => "SITE", Mailbox => "MAILBOX" }
);

upper_enum!(
    /// `ACTIVE` while the account lives; `RETAINED` once it is gone (its
    /// snapshots kept until the retention ends); `REMOVED` after.
    TargetState { Active => "ACTIVE", Retained => "RETAINED", Removed => "REMOVED" }
);

upper_enum!(
    /// A run: a backup or a restore.
    Operation { Backup => "BACKUP", Restore => "RESTORE" }
);

upper_enum!(
    /// Why it ran.
    Trigger { Scheduled => "SCHEDULED", Manual => "MANUAL" }
);

upper_enum!(
    /// `RUNNING`, then `SUCCEEDED` or `FAILED` with why.
    RunStatus { Running => "RUNNING", Succeeded => "SUCCEEDED", Failed => "FAILED" }
);
