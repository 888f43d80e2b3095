//! What staff and customers do with a site's or mailbox's backups: see its
//! policy, snapshots and runs, ask for a backup now, restore a snapshot
//! (all of it or one path, in place or beside). A customer sees only their
//! own accounts; another tenant's account is 404.

use mpanel_domain::backups::{
    BackupPolicy, MAX_AGE, Operation, RunStatus, TargetKind, TargetState, Trigger,
};
use mpanel_domain::identity::Role;
use mpanel_domain::{BackupRunId, BackupTargetId, JobId, ResourceId};
use mpanel_store::backups::{RunRecord, TargetRecord};
use mpanel_store::provisioning::{ResourceKind, ResourceRecord};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;

use super::jobs::{BackupRestore, BackupRun, queue_backup, queue_restore};
use super::{new_run, policy};
use crate::actor::Change;
use crate::{Context, ServiceError};

/// How a target is backed up and how it stands.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct TargetView {
    pub id: BackupTargetId,
    pub kind: TargetKind,
    /// The site's domain or the mailbox's address.
    pub label: String,
    pub policy: BackupPolicy,
    pub state: TargetState,
    #[serde(with = "time::serde::rfc3339")]
    pub next_run_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_success_at: Option<OffsetDateTime>,
    pub last_status: Option<RunStatus>,
    pub last_error: Option<String>,
    /// No good backup within a day and two hours.
    pub overdue: bool,
    /// A terminated account's snapshots are removed then.
    #[serde(with = "time::serde::rfc3339::option")]
    pub retain_until: Option<OffsetDateTime>,
}

/// A snapshot in the repository.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct SnapshotView {
    /// restic's snapshot id (as restic reported it: 8 hex digits before
    /// 0.15, the full id after): what a restore names.
    pub id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    pub size_bytes: Option<i64>,
    pub files: Option<i64>,
}

/// One backup or restore.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct RunView {
    pub id: BackupRunId,
    pub operation: Operation,
    pub trigger: Trigger,
    pub status: RunStatus,
    pub snapshot_id: Option<String>,
    pub size_bytes: Option<i64>,
    pub files: Option<i64>,
    /// A restore: what (null: everything) and where it went (null: in place).
    pub restore_path: Option<String>,
    pub restore_to: Option<String>,
    pub error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
}

/// An account's backups.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct BackupsView {
    /// Null until the hourly schedule has taken the account in (at most
    /// an hour after it went live, once a backup server is registered).
    pub target: Option<TargetView>,
    /// Newest first.
    pub snapshots: Vec<SnapshotView>,
    /// The last 20 runs, newest first.
    pub runs: Vec<RunView>,
}

/// Where a restore puts what it brings back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RestoreTo {
    /// Over the files as they are now (files deleted since come back).
    #[default]
    InPlace,
    /// Beside them: a site into `/web/restored-<snapshot>/`, a mailbox
    /// into the IMAP folder `Restored-<snapshot>`.
    Beside,
}

/// `POST …/backups/{snapshot}/restore`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreRequest {
    /// What to bring back: a site's path as seen over SFTP (`/web` or
    /// below it); a mailbox's `/Maildir` or below it. Absent: all of it.
    #[serde(default)]
    #[schema(max_length = 1000, example = "/web/public/index.html")]
    pub path: Option<String>,
    #[serde(default)]
    pub to: RestoreTo,
}

fn resource_kind(kind: TargetKind) -> ResourceKind {
    match kind {
        TargetKind::Site => ResourceKind::HostingAccount,
        TargetKind::Mailbox => ResourceKind::MailAccount,
    }
}

fn what(kind: TargetKind) -> &'static str {
    match kind {
        TargetKind::Site => "hosting account",
        TargetKind::Mailbox => "mailbox",
    }
}

/// The account, if the caller may see it.
async fn account(
    cx: &Context,
    kind: TargetKind,
    id: ResourceId,
) -> Result<ResourceRecord, ServiceError> {
    let found = cx
        .store
        .resource(resource_kind(kind), cx.tenant_id(), id)
        .await?
        .ok_or_else(ServiceError::missing(what(kind)))?;
    if cx.principal.access.role == Role::Customer {
        let own = crate::customers::own(cx).await?;
        if own != Some(found.customer_id) {
            return Err(ServiceError::NotFound(format!("no such {}", what(kind))));
        }
    }
    Ok(found)
}

/// What a customer is told of a failure: its kind, not restic's or ssh's
/// words (they name the backup server, its folders and its hosts).
fn for_customer(error: Option<String>) -> Option<String> {
    let e = error?;
    let kind = if e.contains("locked") {
        "the backup repository was busy; it is tried again"
    } else if e.contains("onnect") || e.contains("sftp session") || e.contains("timed out") {
        "the backup server could not be reached; it is tried again"
    } else if e.contains("no longer live") {
        "the account is no longer live"
    } else if e.contains("holds nothing at") {
        "the snapshot holds nothing at that path"
    } else {
        "the backup service failed; staff can see why"
    };
    Some(kind.to_owned())
}

/// A view as the caller may see it (customers get the kind of an error).
fn shown(cx: &Context, error: Option<String>) -> Option<String> {
    if cx.principal.access.role == Role::Customer {
        for_customer(error)
    } else {
        error
    }
}

pub fn target_view(t: &TargetRecord, now: OffsetDateTime) -> TargetView {
    let last_good = t.last_success_at.unwrap_or(t.created_at);
    TargetView {
        id: t.id,
        kind: t.kind,
        label: t.label.clone(),
        policy: policy(t),
        state: t.state,
        next_run_at: t.next_run_at,
        last_success_at: t.last_success_at,
        last_status: t.last_status,
        last_error: t.last_error.clone(),
        overdue: t.state == TargetState::Active && now - last_good > MAX_AGE,
        retain_until: t.retain_until,
    }
}

pub fn run_view(r: &RunRecord) -> RunView {
    RunView {
        id: r.id,
        operation: r.operation,
        trigger: r.trigger,
        status: r.status,
        snapshot_id: r.snapshot_id.clone(),
        size_bytes: r.size_bytes,
        files: r.files,
        restore_path: r.restore_path.clone(),
        restore_to: r.restore_to.clone(),
        error: r.error.clone(),
        started_at: r.started_at,
        finished_at: r.finished_at,
    }
}

/// `GET …/{id}/backups`.
pub async fn list(
    cx: &Context,
    kind: TargetKind,
    id: ResourceId,
) -> Result<BackupsView, ServiceError> {
    let acct = account(cx, kind, id).await?;
    let Some(t) = cx.store.backup_target_of(kind, acct.id).await? else {
        return Ok(BackupsView {
            target: None,
            snapshots: Vec::new(),
            runs: Vec::new(),
        });
    };
    let snapshots = cx
        .store
        .backup_snapshots(t.id)
        .await?
        .into_iter()
        .filter_map(|r| {
            Some(SnapshotView {
                id: r.snapshot_id?,
                time: r.started_at,
                size_bytes: r.size_bytes,
                files: r.files,
            })
        })
        .collect();
    let runs = cx
        .store
        .backup_runs(t.id, 20)
        .await?
        .iter()
        .map(|r| RunView {
            error: shown(cx, r.error.clone()),
            ..run_view(r)
        })
        .collect();
    let target = TargetView {
        last_error: shown(cx, t.last_error.clone()),
        ..target_view(&t, cx.now())
    };
    Ok(BackupsView {
        target: Some(target),
        snapshots,
        runs,
    })
}

async fn live_target(
    cx: &Context,
    kind: TargetKind,
    id: ResourceId,
) -> Result<TargetRecord, ServiceError> {
    let acct = account(cx, kind, id).await?;
    let t = cx.store.backup_target_of(kind, acct.id).await?.ok_or_else(|| {
        ServiceError::Conflict(format!(
            "this {} is not backed up yet (it is taken in within the hour once a backup server is registered)",
            what(kind)
        ))
    })?;
    if t.state != TargetState::Active {
        return Err(ServiceError::Conflict(format!(
            "this {} is no longer live",
            what(kind)
        )));
    }
    Ok(t)
}

/// `POST …/{id}/backups`: a backup now (one already waiting is answered).
pub async fn request(
    cx: &Context,
    kind: TargetKind,
    id: ResourceId,
) -> Result<JobId, ServiceError> {
    let t = live_target(cx, kind, id).await?;
    let now = cx.now();
    let mut tx = cx.store.begin().await?;
    let job = BackupRun {
        tenant_id: t.tenant_id,
        target_id: t.id,
        trigger: Trigger::Manual,
    };
    let (job_id, _) = queue_backup(&mut tx, &job, now).await?;
    audit(
        &mut tx,
        cx,
        &t,
        "backup.request",
        json!({"job_id": job_id}),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(job_id)
}

/// The restore's path, checked: absent is all of it.
fn restore_path(kind: TargetKind, path: Option<&str>) -> Result<String, ServiceError> {
    let root = match kind {
        TargetKind::Site => "/web",
        TargetKind::Mailbox => "/Maildir",
    };
    let Some(path) = path
        .map(|p| p.trim_end_matches('/'))
        .filter(|p| !p.is_empty())
    else {
        return Ok(root.to_owned());
    };
    let clean = path.len() <= 1000
        && (path == root || path.starts_with(&format!("{root}/")))
        && !path.contains("..")
        && path.split('/').all(|seg| seg != ".")
        && !path.contains("//")
        && path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._@+ -".contains(c));
    if clean {
        Ok(path.to_owned())
    } else {
        Err(ServiceError::invalid(
            "path",
            format!("must be {root} or a path below it, of letters, digits, space and /._@+-"),
        ))
    }
}

/// `POST …/{id}/backups/{snapshot}/restore`: the restore run, `RUNNING`,
/// and its job.
pub async fn restore(
    cx: &Context,
    kind: TargetKind,
    id: ResourceId,
    snapshot: &str,
    req: &RestoreRequest,
) -> Result<(RunView, JobId), ServiceError> {
    let t = live_target(cx, kind, id).await?;
    let path = restore_path(kind, req.path.as_deref())?;
    let found = cx
        .store
        .backup_snapshots(t.id)
        .await?
        .into_iter()
        .find(|r| r.snapshot_id.as_deref() == Some(snapshot))
        .ok_or_else(ServiceError::missing("snapshot of this account"))?;
    let now = cx.now();
    let mut run = new_run(&t, Operation::Restore, Trigger::Manual, now);
    run.snapshot_id = found.snapshot_id;
    run.restore_path = Some(path);
    run.restore_to = match req.to {
        RestoreTo::InPlace => None,
        RestoreTo::Beside => Some("BESIDE".into()),
    };
    let mut tx = cx.store.begin().await?;
    tx.insert_backup_run(&run).await?;
    let job = BackupRestore {
        tenant_id: t.tenant_id,
        target_id: t.id,
        run_id: run.id,
    };
    let job_id = queue_restore(&mut tx, &job, now).await?;
    let after = json!({"run_id": run.id, "snapshot": snapshot, "path": run.restore_path, "to": req.to, "job_id": job_id});
    audit(&mut tx, cx, &t, "backup.restore", after, now).await?;
    tx.commit().await?;
    Ok((run_view(&run), job_id))
}

async fn audit(
    tx: &mut mpanel_store::Tx,
    cx: &Context,
    t: &TargetRecord,
    action: &str,
    after: serde_json::Value,
    now: OffsetDateTime,
) -> Result<(), ServiceError> {
    tx.record_audit(&cx.actor.audit(Change {
        tenant: t.tenant_id,
        action,
        target_type: match t.kind {
            TargetKind::Site => "hosting_account",
            TargetKind::Mailbox => "mail_account",
        },
        target_id: t.account_id.to_string(),
        before: None,
        after: Some(after),
        at: now,
    }))
    .await?;
    Ok(())
}
