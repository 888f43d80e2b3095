//! A CloudPod's backups: vzdump archives on its cluster's backup storage.

use mpanel_domain::cloudpods::{BackupKind, BackupStatus};
use mpanel_domain::{CloudPodId, PodBackupId, TenantId};
use sqlx::Row;
use time::OffsetDateTime;

use crate::error::parse_text;
use crate::{Store, StoreResult, Tx};

/// A backup of a pod.
#[derive(Debug, Clone, PartialEq)]
pub struct PodBackupRecord {
    pub id: PodBackupId,
    pub tenant_id: TenantId,
    pub pod_id: CloudPodId,
    pub kind: BackupKind,
    pub status: BackupStatus,
    /// The archive's volume id on the cluster (`local:backup/vzdump-…`).
    pub volid: Option<String>,
    pub size_bytes: Option<i64>,
    /// The vzdump task's UPID.
    pub task: Option<String>,
    pub error: Option<String>,
    pub started_at: OffsetDateTime,
    pub finished_at: Option<OffsetDateTime>,
}

const BACKUP_COLUMNS: &str =
    "id, tenant_id, pod_id, kind, status, volid, size_bytes, task, error, started_at, finished_at";

macro_rules! backup_from_row {
    ($row:expr) => {{
        let row = $row;
        PodBackupRecord {
            id: PodBackupId::from_uuid(row.try_get("id")?),
            tenant_id: TenantId::from_uuid(row.try_get("tenant_id")?),
            pod_id: CloudPodId::from_uuid(row.try_get("pod_id")?),
            kind: parse_text("backup kind", row.try_get("kind")?)?,
            status: parse_text("backup status", row.try_get("status")?)?,
            volid: row.try_get("volid")?,
            size_bytes: row.try_get("size_bytes")?,
            task: row.try_get("task")?,
            error: row.try_get("error")?,
            started_at: row.try_get("started_at")?,
            finished_at: row.try_get("finished_at")?,
        }
    }};
}

impl Tx {
    pub async fn insert_pod_backup(&mut self, b: &PodBackupRecord) -> StoreResult<()> {
        let sql = sqlx::AssertSqlSafe(format!(
            "INSERT INTO cloud_pod_backups ({BACKUP_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        ));
        on_tx!(self, |c| {
            sqlx::query(sql)
                .bind(b.id.as_uuid())
                .bind(b.tenant_id.as_uuid())
                .bind(b.pod_id.as_uuid())
                .bind(b.kind.as_str())
                .bind(b.status.as_str())
                .bind(&b.volid)
                .bind(b.size_bytes)
                .bind(&b.task)
                .bind(&b.error)
                .bind(b.started_at)
                .bind(b.finished_at)
                .execute(c)
                .await?
                .rows_affected()
        });
        Ok(())
    }
}

impl Store {
    /// The pod's backups, newest first.
    pub async fn pod_backups(&self, pod: CloudPodId) -> StoreResult<Vec<PodBackupRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {BACKUP_COLUMNS} FROM cloud_pod_backups WHERE pod_id = $1 ORDER BY started_at DESC, id DESC"
        ));
        let found = on_pool!(self.pool, |p| {
            let mut out = Vec::new();
            for row in sqlx::query(sql).bind(pod.as_uuid()).fetch_all(p).await? {
                out.push(backup_from_row!(&row));
            }
            out
        });
        Ok(found)
    }

    pub async fn pod_backup(&self, id: PodBackupId) -> StoreResult<Option<PodBackupRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {BACKUP_COLUMNS} FROM cloud_pod_backups WHERE id = $1"
        ));
        let found = on_pool!(self.pool, |p| {
            match sqlx::query(sql)
                .bind(id.as_uuid())
                .fetch_optional(p)
                .await?
            {
                Some(row) => Some(backup_from_row!(&row)),
                None => None,
            }
        });
        Ok(found)
    }

    /// Records the backup's vzdump task before it is awaited.
    pub async fn set_pod_backup_task(&self, id: PodBackupId, task: &str) -> StoreResult<()> {
        on_pool!(self.writer, |p| {
            sqlx::query("UPDATE cloud_pod_backups SET task = $2 WHERE id = $1")
                .bind(id.as_uuid())
                .bind(task)
                .execute(p)
                .await?
                .rows_affected()
        });
        Ok(())
    }

    /// Records how the backup ended.
    pub async fn finish_pod_backup(&self, b: &PodBackupRecord) -> StoreResult<()> {
        on_pool!(self.writer, |p| {
            sqlx::query(
                "UPDATE cloud_pod_backups SET status = $2, volid = $3, size_bytes = $4, error = $5, \
                 finished_at = $6 WHERE id = $1",
            )
            .bind(b.id.as_uuid())
            .bind(b.status.as_str())
            .bind(&b.volid)
            .bind(b.size_bytes)
            .bind(&b.error)
            .bind(b.finished_at)
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    /// Forgets a backup whose archive was pruned.
    pub async fn delete_pod_backup(&self, id: PodBackupId) -> StoreResult<()> {
        on_pool!(self.writer, |p| {
            sqlx::query("DELETE FROM cloud_pod_backups WHERE id = $1")
                .bind(id.as_uuid())
                .execute(p)
                .await?
                .rows_affected()
        });
        Ok(())
    }
}
