//! Backups of sites and mailboxes with restic, run on the node that holds
//! the data (`scripts/node/mpanel-restic`): the web node's helper runs it
//! as root beside itself; a mail node gets it inline and runs it as the
//! maildirs' owner. The tenant's repository, its password and the backup
//! server's key travel on the session's stdin, never on a command line.
//!
//! `backup.schedule` (hourly) takes new accounts in and queues a
//! `backup.run` for every target due; `mpanel backups run --as-of` does
//! the same work at a chosen time, running each backup at once. A backup
//! is recorded as a run (`SUCCEEDED` with its snapshot, size and files, or
//! `FAILED` with restic's reason, retried an hour later), then the
//! target's snapshots are pruned by its policy (`restic forget --prune`).

mod login;
mod node;

use mpanel_domain::backups::{Operation, RunStatus, TargetKind, TargetState, Trigger};
use mpanel_domain::{BackupTargetId, TenantId};
use mpanel_services::backups::jobs::{BackupRestore, BackupRun, queue_backup};
use mpanel_services::backups::{self as svc, new_run};
use mpanel_store::backups::{RunRecord, TargetRecord};
use serde::Serialize;
use time::OffsetDateTime;

use crate::DriverError;
use crate::saga::Provisioner;
use node::{Access, NodeRun, Outcome};

pub use mpanel_domain::backups::{RESTORE_JOB, RUN_JOB, SCHEDULE_JOB};

/// What a schedule pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BackupReport {
    /// Sites and mailboxes taken in.
    pub targets_made: usize,
    /// Targets of terminated accounts, now kept for the retention period.
    pub retired: usize,
    /// Backups queued (the job) or run (`mpanel backups run`).
    pub queued: usize,
    pub succeeded: usize,
    pub failed: usize,
    /// Targets whose retention ended, their snapshots removed.
    pub removed: usize,
    /// Runs left `RUNNING` by a worker that died, now `FAILED`.
    pub interrupted: u64,
}

fn store_err(e: mpanel_store::StoreError) -> DriverError {
    DriverError::Transient(format!("database: {e}"))
}

fn service_err(e: mpanel_services::ServiceError) -> DriverError {
    DriverError::Transient(format!("backups: {e}"))
}

const DUE_BATCH: i64 = 500;

/// A run still `RUNNING` this long after it started was interrupted (the
/// node session's own limit is 2 hours).
const STALE_AFTER: time::Duration = time::Duration::hours(3);

impl Provisioner {
    /// `backup.schedule`: new accounts taken in, terminated ones retired,
    /// a `backup.run` queued for every target due.
    pub async fn schedule_account_backups(&self) -> Result<BackupReport, DriverError> {
        let now = self.clock.now();
        let mut report = self.sync_targets(now).await?;
        // A run outlives its SSH session's limit only if its worker died.
        report.interrupted = self
            .store
            .fail_stale_backup_runs(now - STALE_AFTER, now)
            .await
            .map_err(store_err)?;
        let due = self
            .store
            .due_backup_targets(now, DUE_BATCH)
            .await
            .map_err(store_err)?;
        for t in due {
            if t.state == TargetState::Retained {
                report.removed += usize::from(self.try_remove_retained(&t, now).await);
                continue;
            }
            let mut tx = self.store.begin().await.map_err(store_err)?;
            let job = BackupRun {
                tenant_id: t.tenant_id,
                target_id: t.id,
                trigger: Trigger::Scheduled,
            };
            let (_, new) = queue_backup(&mut tx, &job, now)
                .await
                .map_err(service_err)?;
            // Not due again while queued (the run sets its real next time),
            // so the next pass reads the targets after these.
            tx.set_backup_target_next_run(t.id, now + svc::RETRY_AFTER, now)
                .await
                .map_err(store_err)?;
            tx.commit().await.map_err(store_err)?;
            report.queued += usize::from(new);
        }
        Ok(report)
    }

    /// `mpanel backups run --as-of`: the schedule's work at `as_of`, each
    /// due backup run here and now (its snapshot dated `as_of`).
    pub async fn run_due_backups(
        &self,
        as_of: OffsetDateTime,
    ) -> Result<BackupReport, DriverError> {
        let mut report = self.sync_targets(as_of).await?;
        report.interrupted = self
            .store
            .fail_stale_backup_runs(as_of - STALE_AFTER, as_of)
            .await
            .map_err(store_err)?;
        let due = self
            .store
            .due_backup_targets(as_of, DUE_BATCH)
            .await
            .map_err(store_err)?;
        for t in due {
            if t.state == TargetState::Retained {
                report.removed += usize::from(self.try_remove_retained(&t, as_of).await);
                continue;
            }
            report.queued += 1;
            match self.back_up(&t, Trigger::Scheduled, as_of).await {
                Ok(run) if run.status == RunStatus::Succeeded => report.succeeded += 1,
                Ok(_) | Err(_) => report.failed += 1,
            }
        }
        Ok(report)
    }

    async fn sync_targets(&self, now: OffsetDateTime) -> Result<BackupReport, DriverError> {
        let (made, retired) = svc::sync_targets(&self.store, now)
            .await
            .map_err(service_err)?;
        for id in &retired {
            self.keep_last_only(*id, now).await;
        }
        Ok(BackupReport {
            targets_made: made,
            retired: retired.len(),
            ..BackupReport::default()
        })
    }

    /// A retired target keeps its last snapshot only (until its retention
    /// ends); a failure is logged, and the retention's end removes all.
    async fn keep_last_only(&self, id: BackupTargetId, now: OffsetDateTime) {
        let t = match self.store.backup_target(id).await {
            Ok(Some(t)) => t,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "reading a retired backup target failed");
                return;
            }
        };
        let one_daily = TargetRecord {
            keep_daily: 1,
            keep_weekly: 0,
            ..t
        };
        self.prune(&one_daily, now).await;
    }

    /// `backup.run`: the target backed up now.
    pub async fn run_backup_job(&self, job: &BackupRun) -> Result<(), DriverError> {
        let t = self.target(job.target_id, job.tenant_id).await?;
        if t.state != TargetState::Active || !self.account_live(&t).await? {
            return Ok(());
        }
        self.back_up(&t, job.trigger, self.clock.now()).await?;
        Ok(())
    }

    async fn target(
        &self,
        id: BackupTargetId,
        tenant: TenantId,
    ) -> Result<TargetRecord, DriverError> {
        self.store
            .backup_target(id)
            .await
            .map_err(store_err)?
            .filter(|t| t.tenant_id == tenant)
            .ok_or_else(|| DriverError::Permanent(format!("no backup target {id}")))
    }

    /// One backup of `t` dated `at`, recorded; then pruning by its policy.
    /// A repository locked by another run is retried (the run says so).
    async fn back_up(
        &self,
        t: &TargetRecord,
        trigger: Trigger,
        at: OffsetDateTime,
    ) -> Result<RunRecord, DriverError> {
        let mut run = new_run(t, Operation::Backup, trigger, at);
        let mut tx = self.store.begin().await.map_err(store_err)?;
        tx.insert_backup_run(&run).await.map_err(store_err)?;
        tx.commit().await.map_err(store_err)?;
        let started = std::time::Instant::now();
        let (outcome, key_used) = match self.access(t, at).await {
            Ok((access, fresh)) => (
                access.backup(&svc::tag(t), at, fresh).await,
                Some(access.login_key().to_owned()),
            ),
            Err(e) => (Outcome::Failed(e.to_string()), None),
        };
        // Dated from `at` (a run `--as-of` a past night ends that night).
        let took = time::Duration::try_from(started.elapsed()).unwrap_or_default();
        run.finished_at = Some(at + took);
        let locked = matches!(outcome, Outcome::Locked(_));
        match outcome {
            Outcome::Done(summary) => {
                run.status = RunStatus::Succeeded;
                run.snapshot_id = Some(summary.snapshot_id);
                run.size_bytes = Some(summary.bytes);
                run.files = Some(summary.files);
            }
            Outcome::Failed(why) | Outcome::Locked(why) => {
                run.status = RunStatus::Failed;
                run.error = Some(why);
            }
        }
        svc::finish_backup(&self.store, t, &run)
            .await
            .map_err(service_err)?;
        if locked {
            return Err(DriverError::Transient(
                run.error.clone().unwrap_or_default(),
            ));
        }
        if run.status == RunStatus::Succeeded {
            svc::repository_made(&self.store, t.tenant_id, at)
                .await
                .map_err(service_err)?;
            self.prune(t, at).await;
        } else {
            tracing::warn!(target = %t.label, error = ?run.error, "backup failed");
            if let Some(used) = key_used
                && run.error.as_deref().is_some_and(svc::login_refused)
            {
                svc::login_lost(&self.store, self.secrets()?, t.tenant_id, &used)
                    .await
                    .map_err(service_err)?;
            }
        }
        Ok(run)
    }

    /// Forgets by the target's policy (the repository's data pruned with it
    /// once a day) and records the snapshots removed; a failure is logged
    /// (the next backup forgets again).
    async fn prune(&self, t: &TargetRecord, at: OffsetDateTime) {
        let policy = svc::policy(t);
        let kept = match self.access(t, at).await {
            Ok((access, _)) => {
                let prune = svc::claim_daily_prune(&self.store, t.tenant_id, at)
                    .await
                    .unwrap_or(false);
                access
                    .forget(&svc::tag(t), policy.keep_daily, policy.keep_weekly, prune)
                    .await
            }
            Err(e) => Err(e),
        };
        let kept = match kept {
            Ok(kept) => kept,
            Err(e) => {
                tracing::warn!(target = %t.label, error = %e, "pruning backups failed");
                return;
            }
        };
        let removed: Vec<String> = match self.store.backup_snapshots(t.id).await {
            Ok(list) => list
                .into_iter()
                .filter_map(|r| r.snapshot_id)
                // restic 0.14 reports short ids, 0.15 and later full ones.
                .filter(|s| !kept.iter().any(|k| k.starts_with(s.as_str())))
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "reading snapshots failed");
                return;
            }
        };
        if let Err(e) = self.store.mark_snapshots_removed(t.id, &removed, at).await {
            tracing::warn!(error = %e, "recording pruned snapshots failed");
        }
    }

    /// A retained target whose retention ended: every snapshot of its tag
    /// removed. A failure is logged and tried at the next pass (it does not
    /// hold up the others).
    async fn try_remove_retained(&self, t: &TargetRecord, now: OffsetDateTime) -> bool {
        match self.remove_retained(t, now).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(target = %t.label, error = %e, "removing a retained backup failed");
                false
            }
        }
    }

    async fn remove_retained(
        &self,
        t: &TargetRecord,
        now: OffsetDateTime,
    ) -> Result<(), DriverError> {
        let (access, _) = self.access(t, now).await?;
        access.forget_tag(&svc::tag(t)).await?;
        let ids: Vec<String> = self
            .store
            .backup_snapshots(t.id)
            .await
            .map_err(store_err)?
            .into_iter()
            .filter_map(|r| r.snapshot_id)
            .collect();
        self.store
            .mark_snapshots_removed(t.id, &ids, now)
            .await
            .map_err(store_err)?;
        self.store
            .set_backup_target_state(t.id, TargetState::Removed, t.retain_until, now)
            .await
            .map_err(store_err)
    }

    /// `backup.restore`: the recorded restore carried out, its outcome
    /// recorded (a transient failure is retried, until the last attempt).
    pub async fn run_restore_job(
        &self,
        job: &BackupRestore,
        last_attempt: bool,
    ) -> Result<(), DriverError> {
        let t = self.target(job.target_id, job.tenant_id).await?;
        let mut run = self
            .store
            .backup_run(job.run_id)
            .await
            .map_err(store_err)?
            .filter(|r| r.target_id == t.id && r.operation == Operation::Restore)
            .ok_or_else(|| DriverError::Permanent(format!("no restore run {}", job.run_id)))?;
        if run.status != RunStatus::Running {
            return Ok(());
        }
        // Never into an account that is gone: its address or domain may
        // be someone else's by now.
        let outcome = if t.state == TargetState::Active && self.account_live(&t).await? {
            match self.access(&t, self.clock.now()).await {
                Ok((access, _)) => access.restore(&NodeRun::restore(&run)).await,
                Err(e) => Err(e),
            }
        } else {
            Err(DriverError::Permanent(
                "the account is no longer live".into(),
            ))
        };
        run.finished_at = Some(self.clock.now());
        match outcome {
            Ok(to) => {
                run.status = RunStatus::Succeeded;
                if to.is_some() {
                    run.restore_to = to;
                }
            }
            Err(DriverError::Transient(why)) if !last_attempt => {
                return Err(DriverError::Transient(why));
            }
            Err(e) => {
                run.status = RunStatus::Failed;
                run.error = Some(e.to_string());
            }
        }
        self.store.finish_backup_run(&run).await.map_err(store_err)
    }

    /// Whether the target's account is still live (the same account, not
    /// terminated or deleted).
    async fn account_live(&self, t: &TargetRecord) -> Result<bool, DriverError> {
        use mpanel_domain::provisioning::ResourceStatus;
        use mpanel_store::provisioning::ResourceKind;
        let kind = match t.kind {
            TargetKind::Site => ResourceKind::HostingAccount,
            TargetKind::Mailbox => ResourceKind::MailAccount,
        };
        let found = self
            .store
            .resource(kind, t.tenant_id, t.account_id)
            .await
            .map_err(store_err)?;
        Ok(found.is_some_and(|a| {
            matches!(a.status, ResourceStatus::Active | ResourceStatus::Suspended)
        }))
    }

    /// How to reach the target's node and its tenant's repository (its
    /// login made on the backup server first, if it is not yet), and
    /// whether the repository may still be made (no backup in it yet).
    async fn access(
        &self,
        t: &TargetRecord,
        now: OffsetDateTime,
    ) -> Result<(Access, bool), DriverError> {
        let sb = self.secrets()?;
        let repo = svc::repository(&self.store, sb, t.tenant_id, now)
            .await
            .map_err(|e| DriverError::Permanent(e.to_string()))?;
        if !repo.login.ready {
            login::make(sb, &repo).await?;
            svc::login_made(&self.store, repo.repo.id, &repo.login, now)
                .await
                .map_err(service_err)?;
        }
        let node = self
            .store
            .server(t.node_id)
            .await
            .map_err(store_err)?
            .ok_or_else(|| DriverError::Permanent(format!("the node of {} is gone", t.label)))?;
        let access = Access::new(sb, &node, &repo, t)?;
        Ok((access, repo.repo.initialized_at.is_none()))
    }
}
