//! Each tenant's restic repository on a backup server: its sealed
//! password, its own SFTP login there, its first backup and its daily
//! prune.

use mpanel_domain::{BackupRepoId, ServerId, TenantId};
use sqlx::Row;
use time::OffsetDateTime;

use crate::{Store, StoreResult};

/// A tenant's repository on a backup server.
#[derive(Debug, Clone, PartialEq)]
pub struct RepoRecord {
    pub id: BackupRepoId,
    pub tenant_id: TenantId,
    pub server_id: ServerId,
    pub path: String,
    /// Sealed with the secrets key.
    pub password: String,
    pub initialized_at: Option<OffsetDateTime>,
    pub pruned_at: Option<OffsetDateTime>,
    /// The tenant's own SFTP login on the backup server (`None` for a
    /// repository recorded before logins were per tenant).
    pub login: Option<RepoLogin>,
}

/// A tenant's SFTP login on its backup server.
#[derive(Debug, Clone, PartialEq)]
pub struct RepoLogin {
    /// The chrooted user the server's helper makes.
    pub user: String,
    /// Its key's Ed25519 seed (hex), sealed with the secrets key.
    pub key: String,
    /// When the helper last confirmed it (`None`: not yet made there).
    pub ready_at: Option<OffsetDateTime>,
}

const REPO_COLUMNS: &str = "id, tenant_id, server_id, path, password, initialized_at, pruned_at, \
     login_user, login_key, login_ready_at";

macro_rules! repo_from_row {
    ($row:expr) => {{
        let row = $row;
        RepoRecord {
            id: BackupRepoId::from_uuid(row.try_get("id")?),
            tenant_id: TenantId::from_uuid(row.try_get("tenant_id")?),
            server_id: ServerId::from_uuid(row.try_get("server_id")?),
            path: row.try_get("path")?,
            password: row.try_get("password")?,
            initialized_at: row.try_get("initialized_at")?,
            pruned_at: row.try_get("pruned_at")?,
            login: match (
                row.try_get::<Option<String>, _>("login_user")?,
                row.try_get::<Option<String>, _>("login_key")?,
            ) {
                (Some(user), Some(key)) => Some(RepoLogin {
                    user,
                    key,
                    ready_at: row.try_get("login_ready_at")?,
                }),
                _ => None,
            },
        }
    }};
}
impl Store {
    pub async fn backup_repository(
        &self,
        tenant: TenantId,
        server: ServerId,
    ) -> StoreResult<Option<RepoRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {REPO_COLUMNS} FROM backup_repositories WHERE tenant_id = $1 AND server_id = $2"
        ));
        let found = on_pool!(self.pool, |p| {
            match sqlx::query(sql)
                .bind(tenant.as_uuid())
                .bind(server.as_uuid())
                .fetch_optional(p)
                .await?
            {
                Some(row) => Some(repo_from_row!(&row)),
                None => None,
            }
        });
        Ok(found)
    }

    /// The tenant's repository (the first made, if it has several).
    pub async fn backup_repository_of(&self, tenant: TenantId) -> StoreResult<Option<RepoRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {REPO_COLUMNS} FROM backup_repositories WHERE tenant_id = $1 \
             ORDER BY created_at, id LIMIT 1"
        ));
        let found = on_pool!(self.pool, |p| {
            match sqlx::query(sql)
                .bind(tenant.as_uuid())
                .fetch_optional(p)
                .await?
            {
                Some(row) => Some(repo_from_row!(&row)),
                None => None,
            }
        });
        Ok(found)
    }

    /// Records the repository unless the tenant has one on that server
    /// already (two first backups at once): the one recorded is answered.
    pub async fn claim_backup_repository(
        &self,
        repo: &RepoRecord,
        now: OffsetDateTime,
    ) -> StoreResult<RepoRecord> {
        let sql = sqlx::AssertSqlSafe(format!(
            "INSERT INTO backup_repositories ({REPO_COLUMNS}, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (tenant_id, server_id) DO NOTHING"
        ));
        on_pool!(self.writer, |p| {
            sqlx::query(sql)
                .bind(repo.id.as_uuid())
                .bind(repo.tenant_id.as_uuid())
                .bind(repo.server_id.as_uuid())
                .bind(&repo.path)
                .bind(&repo.password)
                .bind(repo.initialized_at)
                .bind(repo.pruned_at)
                .bind(repo.login.as_ref().map(|l| l.user.as_str()))
                .bind(repo.login.as_ref().map(|l| l.key.as_str()))
                .bind(repo.login.as_ref().and_then(|l| l.ready_at))
                .bind(now)
                .execute(p)
                .await?
                .rows_affected()
        });
        self.backup_repository(repo.tenant_id, repo.server_id)
            .await?
            .ok_or_else(|| crate::StoreError::Database(sqlx::Error::RowNotFound))
    }

    pub async fn mark_backup_repository_initialized(
        &self,
        id: BackupRepoId,
        at: OffsetDateTime,
    ) -> StoreResult<()> {
        on_pool!(self.writer, |p| {
            sqlx::query("UPDATE backup_repositories SET initialized_at = $2 WHERE id = $1 AND initialized_at IS NULL")
                .bind(id.as_uuid())
                .bind(at)
                .execute(p)
                .await?
                .rows_affected()
        });
        Ok(())
    }

    /// Gives a repository recorded before logins were per tenant its
    /// login (its recorded path, the old place, is kept until the login is
    /// made), unless another run just did: false then (read it again).
    pub async fn set_backup_login(&self, id: BackupRepoId, login: &RepoLogin) -> StoreResult<bool> {
        let n = on_pool!(self.writer, |p| {
            sqlx::query(
                "UPDATE backup_repositories SET login_user = $2, login_key = $3, \
                 login_ready_at = $4 WHERE id = $1 AND login_key IS NULL",
            )
            .bind(id.as_uuid())
            .bind(&login.user)
            .bind(&login.key)
            .bind(login.ready_at)
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }

    /// Records that the backup server's helper made (or confirmed) the
    /// repository's login with the key sealed as `key`, and the
    /// repository's path as the login sees it; nothing if the key was
    /// replaced meanwhile (that one is still to be made).
    pub async fn mark_backup_login_made(
        &self,
        id: BackupRepoId,
        key: &str,
        path: &str,
        at: OffsetDateTime,
    ) -> StoreResult<()> {
        on_pool!(self.writer, |p| {
            sqlx::query(
                "UPDATE backup_repositories SET login_ready_at = $2, path = $3 \
                 WHERE id = $1 AND login_key = $4",
            )
            .bind(id.as_uuid())
            .bind(at)
            .bind(path)
            .bind(key)
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    /// Replaces the login's key (sealed `old` by `new`) and marks the
    /// login to be made again, unless another run replaced it first.
    pub async fn replace_backup_login_key(
        &self,
        id: BackupRepoId,
        old: &str,
        new: &str,
    ) -> StoreResult<bool> {
        let n = on_pool!(self.writer, |p| {
            sqlx::query(
                "UPDATE backup_repositories SET login_key = $3, login_ready_at = NULL \
                 WHERE id = $1 AND login_key = $2",
            )
            .bind(id.as_uuid())
            .bind(old)
            .bind(new)
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }

    /// Claims the repository's daily prune: true when it was last pruned
    /// before `due_before` (or never), and records `at` as its prune.
    pub async fn claim_backup_prune(
        &self,
        id: BackupRepoId,
        due_before: OffsetDateTime,
        at: OffsetDateTime,
    ) -> StoreResult<bool> {
        let n = on_pool!(self.writer, |p| {
            sqlx::query(
                "UPDATE backup_repositories SET pruned_at = $3 WHERE id = $1 \
                 AND (pruned_at IS NULL OR pruned_at < $2)",
            )
            .bind(id.as_uuid())
            .bind(due_before)
            .bind(at)
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }
}
