//! Backups of customers' sites and mailboxes (restic, run on the node by
//! the provisioning crate): which targets exist, when each is due, the
//! tenant's repository on a backup server, and the records of runs.

pub mod api;
pub mod jobs;
pub mod login;

use mpanel_domain::backups::{
    BackupPolicy, Operation, RunStatus, TargetKind, TargetState, Trigger, policy::parse_hh_mm,
};
use mpanel_domain::catalog::ProvisioningTemplate;
use mpanel_domain::provisioning::{ServerRole, ServerStatus};
use mpanel_domain::{BackupRepoId, BackupRunId, BackupTargetId, TenantId};
use mpanel_store::Store;
use mpanel_store::backups::{RepoRecord, RunRecord, TargetRecord, Unbacked};
use mpanel_store::secret_box::{SecretBox, kind};
use mpanel_store::servers::ServerRecord;
use time::OffsetDateTime;

use crate::ServiceError;

/// How many accounts one sync looks at (the rest at the next).
const SYNC_BATCH: i64 = 1000;

/// A failed backup is tried again this much later (not the next day).
pub const RETRY_AFTER: time::Duration = time::Duration::hours(1);

/// The restic tag of a target's snapshots.
pub fn tag(t: &TargetRecord) -> String {
    let kind = match t.kind {
        TargetKind::Site => "site",
        TargetKind::Mailbox => "mailbox",
    };
    format!("{kind}-{}", t.account_id)
}

/// The target's policy, as recorded.
pub fn policy(t: &TargetRecord) -> BackupPolicy {
    BackupPolicy {
        at: parse_hh_mm(&t.run_at).unwrap_or(BackupPolicy::default().at),
        keep_daily: u32::try_from(t.keep_daily).unwrap_or(7),
        keep_weekly: u32::try_from(t.keep_weekly).unwrap_or(0),
    }
}

fn zone(name: &str) -> jiff::tz::TimeZone {
    jiff::tz::TimeZone::get(name).unwrap_or(jiff::tz::TimeZone::UTC)
}

/// The tenant's time zone.
pub async fn tenant_zone(
    store: &Store,
    tenant: TenantId,
) -> Result<jiff::tz::TimeZone, ServiceError> {
    let t = store
        .tenant(tenant)
        .await?
        .ok_or_else(ServiceError::missing("tenant"))?;
    Ok(zone(&t.timezone))
}

/// Whether any backup server is registered (without one nothing is
/// scheduled: every site would be overdue for a reason no run can fix).
pub async fn backup_server(store: &Store) -> Result<Option<ServerRecord>, ServiceError> {
    Ok(store
        .list_servers(Some(ServerRole::Backup))
        .await?
        .into_iter()
        .min_by(|a, b| a.name.cmp(&b.name)))
}

/// Makes targets for live sites and mailboxes that have none, and retires
/// those whose account is gone (their last snapshot kept for the tenant's
/// `backup_retention_days`). Returns how many were made, and the targets
/// retired.
pub async fn sync_targets(
    store: &Store,
    now: OffsetDateTime,
) -> Result<(usize, Vec<BackupTargetId>), ServiceError> {
    let mut made = 0;
    if backup_server(store).await?.is_some() {
        for u in store.unbacked_accounts(SYNC_BATCH).await? {
            if store.insert_backup_target(&new_target(&u, now)).await? {
                made += 1;
            }
        }
    }
    let mut retired = Vec::new();
    for (target, tenant) in store.gone_backup_targets(SYNC_BATCH).await? {
        let days = crate::security::policy::load(store, tenant)
            .await?
            .backup_retention_days;
        let until = now + time::Duration::days(i64::from(days));
        store
            .set_backup_target_state(target, TargetState::Retained, Some(until), now)
            .await?;
        retired.push(target);
    }
    Ok((made, retired))
}

fn new_target(u: &Unbacked, now: OffsetDateTime) -> TargetRecord {
    let policy = serde_json::from_value::<ProvisioningTemplate>(u.template.clone())
        .ok()
        .and_then(|t| t.backup_policy())
        .unwrap_or_default();
    TargetRecord {
        id: BackupTargetId::new(),
        tenant_id: u.tenant_id,
        customer_id: u.customer_id,
        kind: u.kind,
        account_id: u.account_id,
        label: u.label.clone(),
        node_id: u.node_id,
        run_at: format!("{:02}:{:02}", policy.at.hour(), policy.at.minute()),
        keep_daily: i64::from(policy.keep_daily),
        keep_weekly: i64::from(policy.keep_weekly),
        state: TargetState::Active,
        retain_until: None,
        next_run_at: policy.next_run(now, &zone(&u.timezone)),
        last_success_at: None,
        last_snapshot: None,
        last_status: None,
        last_error: None,
        created_at: now,
    }
}

/// A tenant's repository, opened for a run.
pub struct TenantRepository {
    pub repo: RepoRecord,
    pub server: ServerRecord,
    pub password: String,
    /// The tenant's own login on the server.
    pub login: login::Login,
}

impl TenantRepository {
    /// Where a repository recorded before logins were per tenant still
    /// is on the server (`<repo_root>/<tenant id>`), for the helper to move
    /// into the login's chroot: `None` once the login is made, or when
    /// nothing was ever backed up into it.
    pub fn legacy_path(&self) -> Option<&str> {
        Some(self.repo.path.as_str())
            .filter(|p| *p != login::REPO_PATH && self.repo.initialized_at.is_some())
    }
}

/// The tenant's repository: the one it has (on whichever backup server
/// it was made), or a new one on the first `ONLINE` backup server (its
/// password and login made here, sealed). A repository recorded before
/// logins were per tenant gets its login now.
pub async fn repository(
    store: &Store,
    secrets: &SecretBox,
    tenant: TenantId,
    now: OffsetDateTime,
) -> Result<TenantRepository, ServiceError> {
    let mut repo = match store.backup_repository_of(tenant).await? {
        Some(r) => r,
        None => new_repository(store, secrets, tenant, now).await?,
    };
    if repo.login.is_none() {
        let fresh = login::new_login(secrets, repo.id)?;
        store.set_backup_login(repo.id, &fresh).await?;
        repo = store
            .backup_repository(tenant, repo.server_id)
            .await?
            .ok_or_else(ServiceError::missing("backup repository"))?;
    }
    let server = store
        .server(repo.server_id)
        .await?
        .ok_or_else(|| ServiceError::Conflict("the tenant's backup server is gone".into()))?;
    let password = secrets
        .open_str(
            &repo.password,
            kind::BACKUP_REPOSITORY,
            &repo.id.to_string(),
        )
        .map_err(|e| ServiceError::Internal(anyhow::anyhow!("{e}")))?;
    let login = login::open(secrets, &repo)?;
    Ok(TenantRepository {
        repo,
        server,
        password,
        login,
    })
}

/// Records that the server's helper made the repository's login with
/// the key `login` holds (and moved an older repository into it).
pub async fn login_made(
    store: &Store,
    repo: BackupRepoId,
    login: &login::Login,
    at: OffsetDateTime,
) -> Result<(), ServiceError> {
    Ok(store
        .mark_backup_login_made(repo, &login.sealed, login::REPO_PATH, at)
        .await?)
}

/// Whether a run's failure says the backup server refused the tenant's
/// key (a server rebuilt or restored without its logins, or a key an
/// operator removed), not that mPanel's own SSH login to the node failed.
pub fn login_refused(error: &str) -> bool {
    !error.starts_with("ssh to ") && error.contains("Permission denied (publickey")
}

/// The backup server refused the tenant's key `used` (sealed, as a run
/// used it): the login gets a new key, which the next run has the helper
/// authorize. A key once refused is never offered again; two runs
/// refused at once replace it once.
pub async fn login_lost(
    store: &Store,
    secrets: &SecretBox,
    tenant: TenantId,
    used: &str,
) -> Result<(), ServiceError> {
    let Some(repo) = store.backup_repository_of(tenant).await? else {
        return Ok(());
    };
    let fresh = login::new_login(secrets, repo.id)?;
    store
        .replace_backup_login_key(repo.id, used, &fresh.key)
        .await?;
    Ok(())
}

async fn new_repository(
    store: &Store,
    secrets: &SecretBox,
    tenant: TenantId,
    now: OffsetDateTime,
) -> Result<RepoRecord, ServiceError> {
    let server = store
        .list_servers(Some(ServerRole::Backup))
        .await?
        .into_iter()
        .filter(|s| s.status == ServerStatus::Online)
        .min_by(|a, b| a.name.cmp(&b.name))
        .ok_or_else(|| ServiceError::Conflict("no ONLINE BACKUP server is registered".into()))?;
    let id = BackupRepoId::new();
    let password = hex(&crate::identity::secrets::random_bytes::<24>()?);
    let sealed = secrets
        .seal_str(&password, kind::BACKUP_REPOSITORY, &id.to_string())
        .map_err(|e| ServiceError::Internal(anyhow::anyhow!("{e}")))?;
    let fresh = RepoRecord {
        id,
        tenant_id: tenant,
        server_id: server.id,
        path: login::REPO_PATH.into(),
        password: sealed,
        initialized_at: None,
        pruned_at: None,
        login: Some(login::new_login(secrets, id)?),
    };
    Ok(store.claim_backup_repository(&fresh, now).await?)
}

/// Whether this forget also prunes the tenant's repository: once a day
/// (restic prune takes the repository's exclusive lock and reads its whole
/// index), claimed so two runs do not both prune.
pub async fn claim_daily_prune(
    store: &Store,
    tenant: TenantId,
    at: OffsetDateTime,
) -> Result<bool, ServiceError> {
    let Some(repo) = store.backup_repository_of(tenant).await? else {
        return Ok(false);
    };
    Ok(store
        .claim_backup_prune(repo.id, at - time::Duration::hours(20), at)
        .await?)
}

/// Records that the tenant's repository holds a backup: from now on a
/// missing repository is an error, not a reason to make an empty one.
pub async fn repository_made(
    store: &Store,
    tenant: TenantId,
    at: OffsetDateTime,
) -> Result<(), ServiceError> {
    if let Some(repo) = store.backup_repository_of(tenant).await?
        && repo.initialized_at.is_none()
    {
        store
            .mark_backup_repository_initialized(repo.id, at)
            .await?;
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A run record, `RUNNING`.
pub fn new_run(
    t: &TargetRecord,
    operation: Operation,
    trigger: Trigger,
    now: OffsetDateTime,
) -> RunRecord {
    RunRecord {
        id: BackupRunId::new(),
        tenant_id: t.tenant_id,
        target_id: t.id,
        kind: t.kind,
        operation,
        trigger,
        status: RunStatus::Running,
        snapshot_id: None,
        size_bytes: None,
        files: None,
        restore_path: None,
        restore_to: None,
        error: None,
        snapshot_removed_at: None,
        started_at: now,
        finished_at: None,
    }
}

/// Records how a backup ended, on the run and on its target. A scheduled
/// success next runs at the policy's next time, a scheduled failure an
/// hour later; a backup asked for leaves the schedule as it was.
pub async fn finish_backup(
    store: &Store,
    t: &TargetRecord,
    run: &RunRecord,
) -> Result<(), ServiceError> {
    store.finish_backup_run(run).await?;
    let next = match (run.trigger, run.status) {
        (Trigger::Manual, _) => t.next_run_at,
        (Trigger::Scheduled, RunStatus::Succeeded) => {
            let zone = tenant_zone(store, t.tenant_id).await?;
            policy(t).next_run(run.started_at, &zone)
        }
        (Trigger::Scheduled, _) => run.started_at + RETRY_AFTER,
    };
    store.record_backup_outcome(run, next).await?;
    Ok(())
}
