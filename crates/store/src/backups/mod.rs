//! Backups of customers' data: each tenant's restic repository on a backup
//! server, the targets (a site or a mailbox, with its policy and its last
//! good backup) and the record of every backup and restore run.

use mpanel_domain::backups::{Operation, RunStatus, TargetKind, TargetState, Trigger};
use mpanel_domain::{BackupRunId, BackupTargetId, CustomerId, ResourceId, ServerId, TenantId};
use serde_json::Value;
use sqlx::Row;
use sqlx::types::Json;
use time::OffsetDateTime;

use crate::error::parse_text;
use crate::{Store, StoreResult, Tx};

mod repositories;
pub use repositories::{RepoLogin, RepoRecord};

/// A site or a mailbox and how it is backed up.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetRecord {
    pub id: BackupTargetId,
    pub tenant_id: TenantId,
    pub customer_id: CustomerId,
    pub kind: TargetKind,
    pub account_id: ResourceId,
    pub label: String,
    pub node_id: ServerId,
    /// `HH:MM`, the tenant's zone.
    pub run_at: String,
    pub keep_daily: i64,
    pub keep_weekly: i64,
    pub state: TargetState,
    pub retain_until: Option<OffsetDateTime>,
    pub next_run_at: OffsetDateTime,
    pub last_success_at: Option<OffsetDateTime>,
    pub last_snapshot: Option<String>,
    pub last_status: Option<RunStatus>,
    pub last_error: Option<String>,
    pub created_at: OffsetDateTime,
}

/// One backup or restore.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    pub id: BackupRunId,
    pub tenant_id: TenantId,
    pub target_id: BackupTargetId,
    pub kind: TargetKind,
    pub operation: Operation,
    pub trigger: Trigger,
    pub status: RunStatus,
    pub snapshot_id: Option<String>,
    pub size_bytes: Option<i64>,
    pub files: Option<i64>,
    pub restore_path: Option<String>,
    pub restore_to: Option<String>,
    pub error: Option<String>,
    pub snapshot_removed_at: Option<OffsetDateTime>,
    pub started_at: OffsetDateTime,
    pub finished_at: Option<OffsetDateTime>,
}

/// A live site or mailbox that has no target yet, with what its target
/// is made from.
#[derive(Debug, Clone)]
pub struct Unbacked {
    pub kind: TargetKind,
    pub account_id: ResourceId,
    pub tenant_id: TenantId,
    pub customer_id: CustomerId,
    pub label: String,
    pub node_id: ServerId,
    /// The plan's provisioning template (JSON).
    pub template: Value,
    pub timezone: String,
}

const TARGET_COLUMNS: &str = "id, tenant_id, customer_id, kind, account_id, label, node_id, run_at, \
     keep_daily, keep_weekly, state, retain_until, next_run_at, last_success_at, last_snapshot, \
     last_status, last_error, created_at";
const RUN_COLUMNS: &str = "id, tenant_id, target_id, kind, operation, trigger, status, snapshot_id, \
     size_bytes, files, restore_path, restore_to, error, snapshot_removed_at, started_at, finished_at";

macro_rules! target_from_row {
    ($row:expr) => {{
        let row = $row;
        let status: Option<String> = row.try_get("last_status")?;
        TargetRecord {
            id: BackupTargetId::from_uuid(row.try_get("id")?),
            tenant_id: TenantId::from_uuid(row.try_get("tenant_id")?),
            customer_id: CustomerId::from_uuid(row.try_get("customer_id")?),
            kind: parse_text("backup target kind", row.try_get("kind")?)?,
            account_id: ResourceId::from_uuid(row.try_get("account_id")?),
            label: row.try_get("label")?,
            node_id: ServerId::from_uuid(row.try_get("node_id")?),
            run_at: row.try_get("run_at")?,
            keep_daily: row.try_get("keep_daily")?,
            keep_weekly: row.try_get("keep_weekly")?,
            state: parse_text("backup target state", row.try_get("state")?)?,
            retain_until: row.try_get("retain_until")?,
            next_run_at: row.try_get("next_run_at")?,
            last_success_at: row.try_get("last_success_at")?,
            last_snapshot: row.try_get("last_snapshot")?,
            last_status: match status {
                Some(s) => Some(parse_text("backup status", s)?),
                None => None,
            },
            last_error: row.try_get("last_error")?,
            created_at: row.try_get("created_at")?,
        }
    }};
}

/// Runs a SELECT of [`TARGET_COLUMNS`] with these binds.
macro_rules! fetch_targets {
    ($store:expr, $sql:expr $(, $bind:expr)*) => {{
        let sql = $sql;
        on_pool!($store.pool, |p| {
            let mut out = Vec::new();
            for row in sqlx::query(sql)$(.bind($bind))*.fetch_all(p).await? {
                out.push(target_from_row!(&row));
            }
            out
        })
    }};
}

macro_rules! run_from_row {
    ($row:expr) => {{
        let row = $row;
        RunRecord {
            id: BackupRunId::from_uuid(row.try_get("id")?),
            tenant_id: TenantId::from_uuid(row.try_get("tenant_id")?),
            target_id: BackupTargetId::from_uuid(row.try_get("target_id")?),
            kind: parse_text("backup target kind", row.try_get("kind")?)?,
            operation: parse_text("backup operation", row.try_get("operation")?)?,
            trigger: parse_text("backup trigger", row.try_get("trigger")?)?,
            status: parse_text("backup status", row.try_get("status")?)?,
            snapshot_id: row.try_get("snapshot_id")?,
            size_bytes: row.try_get("size_bytes")?,
            files: row.try_get("files")?,
            restore_path: row.try_get("restore_path")?,
            restore_to: row.try_get("restore_to")?,
            error: row.try_get("error")?,
            snapshot_removed_at: row.try_get("snapshot_removed_at")?,
            started_at: row.try_get("started_at")?,
            finished_at: row.try_get("finished_at")?,
        }
    }};
}

/// The live sites and mailboxes without a target: the account, its plan's
/// template and its tenant's zone.
const UNBACKED_SQL: &str = "\
SELECT 'SITE' AS kind, a.id AS account_id, a.tenant_id, a.customer_id, a.domain AS label, \
       a.server_id AS node_id, p.template, t.timezone \
  FROM hosting_accounts a \
  JOIN subscriptions s ON s.id = a.subscription_id \
  JOIN products p ON p.id = s.product_id \
  JOIN tenants t ON t.id = a.tenant_id \
 WHERE a.status IN ('ACTIVE', 'SUSPENDED') \
   AND NOT EXISTS (SELECT 1 FROM backup_targets b WHERE b.kind = 'SITE' AND b.account_id = a.id) \
UNION ALL \
SELECT 'MAILBOX' AS kind, m.id AS account_id, m.tenant_id, m.customer_id, m.address AS label, \
       m.server_id AS node_id, p.template, t.timezone \
  FROM mail_accounts m \
  JOIN subscriptions s ON s.id = m.subscription_id \
  JOIN products p ON p.id = s.product_id \
  JOIN tenants t ON t.id = m.tenant_id \
 WHERE m.status IN ('ACTIVE', 'SUSPENDED') \
   AND NOT EXISTS (SELECT 1 FROM backup_targets b WHERE b.kind = 'MAILBOX' AND b.account_id = m.id) \
 LIMIT $1";

/// The active targets whose account is gone.
const GONE_SQL: &str = "\
SELECT b.id, b.tenant_id FROM backup_targets b \
 WHERE b.state = 'ACTIVE' AND ( \
   (b.kind = 'SITE' AND EXISTS (SELECT 1 FROM hosting_accounts a \
        WHERE a.id = b.account_id AND a.status = 'TERMINATED')) \
   OR (b.kind = 'MAILBOX' AND EXISTS (SELECT 1 FROM mail_accounts m \
        WHERE m.id = b.account_id AND m.status = 'DELETED'))) \
 LIMIT $1";

impl Store {
    /// Up to `limit` live sites and mailboxes without a target.
    pub async fn unbacked_accounts(&self, limit: i64) -> StoreResult<Vec<Unbacked>> {
        let found = on_pool!(self.pool, |p| {
            let mut out = Vec::new();
            for row in sqlx::query(UNBACKED_SQL).bind(limit).fetch_all(p).await? {
                let template: Json<Value> = row.try_get("template")?;
                out.push(Unbacked {
                    kind: parse_text("backup target kind", row.try_get("kind")?)?,
                    account_id: ResourceId::from_uuid(row.try_get("account_id")?),
                    tenant_id: TenantId::from_uuid(row.try_get("tenant_id")?),
                    customer_id: CustomerId::from_uuid(row.try_get("customer_id")?),
                    label: row.try_get("label")?,
                    node_id: ServerId::from_uuid(row.try_get("node_id")?),
                    template: template.0,
                    timezone: row.try_get("timezone")?,
                });
            }
            out
        });
        Ok(found)
    }

    /// Makes the target unless the account has one already.
    pub async fn insert_backup_target(&self, t: &TargetRecord) -> StoreResult<bool> {
        let sql = sqlx::AssertSqlSafe(format!(
            "INSERT INTO backup_targets ({TARGET_COLUMNS}, updated_at) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $18) \
             ON CONFLICT (kind, account_id) DO NOTHING"
        ));
        let n = on_pool!(self.writer, |p| {
            sqlx::query(sql)
                .bind(t.id.as_uuid())
                .bind(t.tenant_id.as_uuid())
                .bind(t.customer_id.as_uuid())
                .bind(t.kind.as_str())
                .bind(t.account_id.as_uuid())
                .bind(&t.label)
                .bind(t.node_id.as_uuid())
                .bind(&t.run_at)
                .bind(t.keep_daily)
                .bind(t.keep_weekly)
                .bind(t.state.as_str())
                .bind(t.retain_until)
                .bind(t.next_run_at)
                .bind(t.last_success_at)
                .bind(&t.last_snapshot)
                .bind(t.last_status.map(|s| s.as_str()))
                .bind(&t.last_error)
                .bind(t.created_at)
                .execute(p)
                .await?
                .rows_affected()
        });
        Ok(n == 1)
    }

    /// Active targets whose account was terminated or deleted: (target, tenant).
    pub async fn gone_backup_targets(
        &self,
        limit: i64,
    ) -> StoreResult<Vec<(BackupTargetId, TenantId)>> {
        let found = on_pool!(self.pool, |p| {
            let mut out = Vec::new();
            for row in sqlx::query(GONE_SQL).bind(limit).fetch_all(p).await? {
                out.push((
                    BackupTargetId::from_uuid(row.try_get("id")?),
                    TenantId::from_uuid(row.try_get("tenant_id")?),
                ));
            }
            out
        });
        Ok(found)
    }

    /// Moves a target to `state` (retention's end in `retain_until`).
    pub async fn set_backup_target_state(
        &self,
        id: BackupTargetId,
        state: TargetState,
        retain_until: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        on_pool!(self.writer, |p| {
            sqlx::query("UPDATE backup_targets SET state = $2, retain_until = $3, updated_at = $4 WHERE id = $1")
                .bind(id.as_uuid())
                .bind(state.as_str())
                .bind(retain_until)
                .bind(now)
                .execute(p)
                .await?
                .rows_affected()
        });
        Ok(())
    }

    /// Active targets due at `now` (oldest due first), and retained ones
    /// whose retention ended.
    pub async fn due_backup_targets(
        &self,
        now: OffsetDateTime,
        limit: i64,
    ) -> StoreResult<Vec<TargetRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {TARGET_COLUMNS} FROM backup_targets \
             WHERE (state = 'ACTIVE' AND next_run_at <= $1) \
                OR (state = 'RETAINED' AND retain_until <= $1) \
             ORDER BY next_run_at, id LIMIT $2"
        ));
        Ok(fetch_targets!(self, sql, now, limit))
    }

    pub async fn backup_target(&self, id: BackupTargetId) -> StoreResult<Option<TargetRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {TARGET_COLUMNS} FROM backup_targets WHERE id = $1"
        ));
        Ok(fetch_targets!(self, sql, id.as_uuid()).pop())
    }

    /// The target of a site or mailbox.
    pub async fn backup_target_of(
        &self,
        kind: TargetKind,
        account: ResourceId,
    ) -> StoreResult<Option<TargetRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {TARGET_COLUMNS} FROM backup_targets WHERE kind = $1 AND account_id = $2"
        ));
        Ok(fetch_targets!(self, sql, kind.as_str(), account.as_uuid()).pop())
    }

    /// Records how a backup ended on its target: the next run, and the
    /// last good one when it succeeded.
    pub async fn record_backup_outcome(
        &self,
        run: &RunRecord,
        next_run_at: OffsetDateTime,
    ) -> StoreResult<()> {
        let ok = run.status == RunStatus::Succeeded;
        // The last good backup is dated by its snapshot.
        let at = run.started_at;
        on_pool!(self.writer, |p| {
            sqlx::query(
                "UPDATE backup_targets SET next_run_at = $2, last_status = $3, last_error = $4, \
                 last_success_at = CASE WHEN $5 THEN $6 ELSE last_success_at END, \
                 last_snapshot = CASE WHEN $5 THEN $7 ELSE last_snapshot END, updated_at = $6 \
                 WHERE id = $1",
            )
            .bind(run.target_id.as_uuid())
            .bind(next_run_at)
            .bind(run.status.as_str())
            .bind(&run.error)
            .bind(ok)
            .bind(at)
            .bind(&run.snapshot_id)
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    /// Records how a run ended.
    pub async fn finish_backup_run(&self, r: &RunRecord) -> StoreResult<()> {
        on_pool!(self.writer, |p| {
            sqlx::query(
                "UPDATE backup_jobs SET status = $2, snapshot_id = $3, size_bytes = $4, files = $5, \
                 error = $6, finished_at = $7, restore_to = $8 WHERE id = $1",
            )
            .bind(r.id.as_uuid())
            .bind(r.status.as_str())
            .bind(&r.snapshot_id)
            .bind(r.size_bytes)
            .bind(r.files)
            .bind(&r.error)
            .bind(r.finished_at)
            .bind(&r.restore_to)
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    pub async fn backup_run(&self, id: BackupRunId) -> StoreResult<Option<RunRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {RUN_COLUMNS} FROM backup_jobs WHERE id = $1"
        ));
        let found = on_pool!(self.pool, |p| {
            match sqlx::query(sql)
                .bind(id.as_uuid())
                .fetch_optional(p)
                .await?
            {
                Some(row) => Some(run_from_row!(&row)),
                None => None,
            }
        });
        Ok(found)
    }

    /// The target's runs, newest first (at most `limit`).
    pub async fn backup_runs(
        &self,
        target: BackupTargetId,
        limit: i64,
    ) -> StoreResult<Vec<RunRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {RUN_COLUMNS} FROM backup_jobs WHERE target_id = $1 \
             ORDER BY started_at DESC, id DESC LIMIT $2"
        ));
        let found = on_pool!(self.pool, |p| {
            let mut out = Vec::new();
            for row in sqlx::query(sql)
                .bind(target.as_uuid())
                .bind(limit)
                .fetch_all(p)
                .await?
            {
                out.push(run_from_row!(&row));
            }
            out
        });
        Ok(found)
    }

    /// The target's snapshots still in the repository, newest first.
    pub async fn backup_snapshots(&self, target: BackupTargetId) -> StoreResult<Vec<RunRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {RUN_COLUMNS} FROM backup_jobs WHERE target_id = $1 AND operation = 'BACKUP' \
             AND status = 'SUCCEEDED' AND snapshot_removed_at IS NULL \
             ORDER BY started_at DESC, id DESC"
        ));
        let found = on_pool!(self.pool, |p| {
            let mut out = Vec::new();
            for row in sqlx::query(sql).bind(target.as_uuid()).fetch_all(p).await? {
                out.push(run_from_row!(&row));
            }
            out
        });
        Ok(found)
    }

    /// Fails the runs still `RUNNING` that started before `before` (their
    /// worker died, or the session was cut): how many.
    pub async fn fail_stale_backup_runs(
        &self,
        before: OffsetDateTime,
        now: OffsetDateTime,
    ) -> StoreResult<u64> {
        let n = on_pool!(self.writer, |p| {
            sqlx::query(
                "UPDATE backup_jobs SET status = 'FAILED', finished_at = $2, \
                 error = 'the run was interrupted: no outcome was recorded within 3 hours' \
                 WHERE status = 'RUNNING' AND started_at < $1",
            )
            .bind(before)
            .bind(now)
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(n)
    }

    /// Marks the target's snapshots that pruning removed (those not in `kept`).
    pub async fn mark_snapshots_removed(
        &self,
        target: BackupTargetId,
        removed: &[String],
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        for snapshot in removed {
            on_pool!(self.writer, |p| {
                sqlx::query(
                    "UPDATE backup_jobs SET snapshot_removed_at = $3 WHERE target_id = $1 \
                     AND snapshot_id = $2 AND snapshot_removed_at IS NULL",
                )
                .bind(target.as_uuid())
                .bind(snapshot)
                .bind(now)
                .execute(p)
                .await?
                .rows_affected()
            });
        }
        Ok(())
    }
}

impl Tx {
    pub async fn insert_backup_run(&mut self, r: &RunRecord) -> StoreResult<()> {
        let sql = sqlx::AssertSqlSafe(format!(
            "INSERT INTO backup_jobs ({RUN_COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
        ));
        on_tx!(self, |c| {
            sqlx::query(sql)
                .bind(r.id.as_uuid())
                .bind(r.tenant_id.as_uuid())
                .bind(r.target_id.as_uuid())
                .bind(r.kind.as_str())
                .bind(r.operation.as_str())
                .bind(r.trigger.as_str())
                .bind(r.status.as_str())
                .bind(&r.snapshot_id)
                .bind(r.size_bytes)
                .bind(r.files)
                .bind(&r.restore_path)
                .bind(&r.restore_to)
                .bind(&r.error)
                .bind(r.snapshot_removed_at)
                .bind(r.started_at)
                .bind(r.finished_at)
                .execute(c)
                .await?
                .rows_affected()
        });
        Ok(())
    }

    /// When the target is next due.
    pub async fn set_backup_target_next_run(
        &mut self,
        id: BackupTargetId,
        next_run_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        on_tx!(self, |c| {
            sqlx::query("UPDATE backup_targets SET next_run_at = $2, updated_at = $3 WHERE id = $1")
                .bind(id.as_uuid())
                .bind(next_run_at)
                .bind(now)
                .execute(c)
                .await?
                .rows_affected()
        });
        Ok(())
    }
}
