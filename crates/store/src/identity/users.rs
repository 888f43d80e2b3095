//! Users of a tenant. Every call takes the caller's tenant: a user of
//! another tenant is simply not found.

use mpanel_domain::identity::Role;
use mpanel_domain::{TenantId, UserId};
use sqlx::Row;
use time::OffsetDateTime;

use crate::{Store, StoreResult, Tx};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserStatus {
    Active,
    Disabled,
    /// Created for a customer by an order; no password yet.
    Invited,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::Disabled => "DISABLED",
            Self::Invited => "INVITED",
        }
    }

    pub(crate) fn parse(s: &str) -> Result<Self, sqlx::Error> {
        match s {
            "ACTIVE" => Ok(Self::Active),
            "DISABLED" => Ok(Self::Disabled),
            "INVITED" => Ok(Self::Invited),
            other => Err(sqlx::Error::Decode(
                format!("unknown user status {other:?}").into(),
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub id: UserId,
    pub tenant_id: TenantId,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub status: UserStatus,
    pub password_hash: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// A user to insert.
#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    pub id: UserId,
    pub tenant_id: TenantId,
    pub email: &'a str,
    pub display_name: &'a str,
    pub role: Role,
    /// `None`: no password yet (an invited customer).
    pub password_hash: Option<&'a str>,
    pub status: UserStatus,
}

const COLUMNS: &str =
    "id, tenant_id, email, display_name, role, status, password_hash, created_at, updated_at";

macro_rules! user_from_row {
    ($row:expr) => {{
        let row = $row;
        let role: String = row.try_get("role")?;
        let status: String = row.try_get("status")?;
        UserRecord {
            id: UserId::from_uuid(row.try_get("id")?),
            tenant_id: TenantId::from_uuid(row.try_get("tenant_id")?),
            email: row.try_get("email")?,
            display_name: row.try_get("display_name")?,
            role: role
                .parse::<Role>()
                .map_err(|e| sqlx::Error::Decode(e.into()))?,
            status: UserStatus::parse(&status)?,
            password_hash: row.try_get("password_hash")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        }
    }};
}

impl Tx {
    /// Inserts a user; an e-mail address taken in the tenant (any case) is
    /// a `Conflict`.
    pub async fn insert_user(
        &mut self,
        user: &NewUser<'_>,
        now: OffsetDateTime,
    ) -> StoreResult<UserRecord> {
        let sql = sqlx::AssertSqlSafe(format!(
            "INSERT INTO users (id, tenant_id, email, display_name, role, status, password_hash,
                 password_changed_at, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $8, $6, $7, $7, $7)
             RETURNING {COLUMNS}"
        ));
        let record = on_tx!(self, |conn| {
            let row = sqlx::query(sql)
                .bind(user.id.as_uuid())
                .bind(user.tenant_id.as_uuid())
                .bind(user.email)
                .bind(user.display_name)
                .bind(user.role.as_str())
                .bind(user.password_hash)
                .bind(now)
                .bind(user.status.as_str())
                .fetch_one(conn)
                .await?;
            user_from_row!(&row)
        });
        Ok(record)
    }

    /// The user, read inside this transaction (for a change based on it);
    /// `None` when the tenant has no such user.
    pub async fn user(&mut self, tenant: TenantId, id: UserId) -> StoreResult<Option<UserRecord>> {
        self.user_where(tenant, id, "").await
    }

    /// The user, its row locked until this transaction ends (changes to
    /// this one user wait; other users and the tenant do not).
    pub async fn lock_user(
        &mut self,
        tenant: TenantId,
        id: UserId,
    ) -> StoreResult<Option<UserRecord>> {
        let lock = match self.engine() {
            crate::Engine::Postgres => " FOR UPDATE",
            crate::Engine::Sqlite => "",
        };
        self.user_where(tenant, id, lock).await
    }

    async fn user_where(
        &mut self,
        tenant: TenantId,
        id: UserId,
        lock: &str,
    ) -> StoreResult<Option<UserRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM users WHERE tenant_id = $1 AND id = $2{lock}"
        ));
        let found = on_tx!(self, |conn| {
            match sqlx::query(sql)
                .bind(tenant.as_uuid())
                .bind(id.as_uuid())
                .fetch_optional(conn)
                .await?
            {
                Some(row) => Some(user_from_row!(&row)),
                None => None,
            }
        });
        Ok(found)
    }

    /// The user with this e-mail address (any case), read in this transaction.
    pub async fn user_by_email(
        &mut self,
        tenant: TenantId,
        email: &str,
    ) -> StoreResult<Option<UserRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM users WHERE tenant_id = $1 AND lower(email) = lower($2)"
        ));
        let record = on_tx!(self, |conn| {
            match sqlx::query(sql)
                .bind(tenant.as_uuid())
                .bind(email)
                .fetch_optional(conn)
                .await?
            {
                Some(row) => Some(user_from_row!(&row)),
                None => None,
            }
        });
        Ok(record)
    }

    /// Writes a user's role, name and status as given; the row as written,
    /// `None` when the user is not there.
    pub async fn update_user(
        &mut self,
        user: &UserRecord,
        now: OffsetDateTime,
    ) -> StoreResult<Option<UserRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "UPDATE users SET display_name = $3, role = $4, status = $5, updated_at = $6
             WHERE tenant_id = $1 AND id = $2
             RETURNING {COLUMNS}"
        ));
        let found = on_tx!(self, |conn| {
            match sqlx::query(sql)
                .bind(user.tenant_id.as_uuid())
                .bind(user.id.as_uuid())
                .bind(&user.display_name)
                .bind(user.role.as_str())
                .bind(user.status.as_str())
                .bind(now)
                .fetch_optional(conn)
                .await?
            {
                Some(row) => Some(user_from_row!(&row)),
                None => None,
            }
        });
        Ok(found)
    }

    pub async fn set_password(
        &mut self,
        tenant: TenantId,
        id: UserId,
        password_hash: &str,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        on_tx!(self, |conn| {
            sqlx::query(
                "UPDATE users SET password_hash = $3, password_changed_at = $4, updated_at = $4
                 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant.as_uuid())
            .bind(id.as_uuid())
            .bind(password_hash)
            .bind(now)
            .execute(conn)
            .await?;
        });
        Ok(())
    }

    /// Serialises changes to a tenant's users (who is the last admin) until
    /// this transaction ends. SQLite's write transactions are serial already.
    pub async fn lock_tenant_users(&mut self, tenant: TenantId) -> StoreResult<()> {
        if let crate::tx::TxInner::Postgres(t) = &mut self.inner {
            sqlx::query("SELECT id FROM tenants WHERE id = $1 FOR UPDATE")
                .bind(tenant.as_uuid())
                .execute(&mut **t)
                .await?;
        }
        Ok(())
    }

    /// The tenant's active users holding `role`, oldest first.
    pub async fn active_users_with_role(
        &mut self,
        tenant: TenantId,
        role: Role,
    ) -> StoreResult<Vec<UserRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM users WHERE tenant_id = $1 AND role = $2 AND status = 'ACTIVE' ORDER BY id"
        ));
        let users = on_tx!(self, |conn| {
            let mut out = Vec::new();
            for row in sqlx::query(sql)
                .bind(tenant.as_uuid())
                .bind(role.as_str())
                .fetch_all(conn)
                .await?
            {
                out.push(user_from_row!(&row));
            }
            out
        });
        Ok(users)
    }

    /// How many active users of the tenant hold `role`.
    pub async fn count_active_with_role(
        &mut self,
        tenant: TenantId,
        role: Role,
    ) -> StoreResult<i64> {
        let n = on_tx!(self, |conn| {
            sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM users WHERE tenant_id = $1 AND role = $2 AND status = 'ACTIVE'",
            )
            .bind(tenant.as_uuid())
            .bind(role.as_str())
            .fetch_one(conn)
            .await?
        });
        Ok(n)
    }
}

impl Store {
    /// The tenant's user; `None` when the tenant has no such user.
    pub async fn user(&self, tenant: TenantId, id: UserId) -> StoreResult<Option<UserRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM users WHERE tenant_id = $1 AND id = $2"
        ));
        let found = on_pool!(self.pool, |p| {
            match sqlx::query(sql)
                .bind(tenant.as_uuid())
                .bind(id.as_uuid())
                .fetch_optional(p)
                .await?
            {
                Some(row) => Some(user_from_row!(&row)),
                None => None,
            }
        });
        Ok(found)
    }

    /// The user with this e-mail address (any case) in the tenant.
    pub async fn user_by_email(
        &self,
        tenant: TenantId,
        email: &str,
    ) -> StoreResult<Option<UserRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM users WHERE tenant_id = $1 AND lower(email) = lower($2)"
        ));
        let record = on_pool!(self.pool, |p| {
            match sqlx::query(sql)
                .bind(tenant.as_uuid())
                .bind(email)
                .fetch_optional(p)
                .await?
            {
                Some(row) => Some(user_from_row!(&row)),
                None => None,
            }
        });
        Ok(record)
    }

    /// A page of the tenant's users, oldest first, after `after`.
    pub async fn list_users(
        &self,
        tenant: TenantId,
        after: Option<UserId>,
        limit: u32,
    ) -> StoreResult<Vec<UserRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM users
             WHERE tenant_id = $1 AND ($2 IS NULL OR id > $2)
             ORDER BY id LIMIT $3"
        ));
        let records = on_pool!(self.pool, |p| {
            let mut out = Vec::new();
            for row in sqlx::query(sql)
                .bind(tenant.as_uuid())
                .bind(after.map(|a| a.as_uuid()))
                .bind(i64::from(limit))
                .fetch_all(p)
                .await?
            {
                out.push(user_from_row!(&row));
            }
            out
        });
        Ok(records)
    }

    pub async fn count_users(&self) -> StoreResult<i64> {
        let n = on_pool!(self.pool, |p| {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM users")
                .fetch_one(p)
                .await?
        });
        Ok(n)
    }
}
