//! API tokens: long-lived bearer tokens of a user, stored as a hash.

use mpanel_domain::identity::{Role, ScopeSet};
use mpanel_domain::{ApiTokenId, TenantId, UserId};
use sqlx::Row;
use time::{Duration, OffsetDateTime};

use super::users::UserStatus;
use crate::{Store, StoreResult, Tx};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTokenRecord {
    pub id: ApiTokenId,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub name: String,
    /// The first characters of the token, to tell tokens apart.
    pub token_start: String,
    pub scopes: ScopeSet,
    pub created_at: OffsetDateTime,
    pub expires_at: Option<OffsetDateTime>,
    pub last_used_at: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
}

/// A token found by its hash, with what authenticating with it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTokenAuth {
    pub token: ApiTokenRecord,
    pub email: String,
    pub role: Role,
    pub user_status: UserStatus,
}

/// `last_used_at` is written at most this often per token.
const LAST_USED_RESOLUTION: Duration = Duration::minutes(1);

const COLUMNS: &str = "t.id, t.tenant_id, t.user_id, t.name, t.token_start, t.scopes, t.created_at, \
     t.expires_at, t.last_used_at, t.revoked_at";

macro_rules! token_from_row {
    ($row:expr) => {{
        let row = $row;
        let scopes: String = row.try_get("scopes")?;
        ApiTokenRecord {
            id: ApiTokenId::from_uuid(row.try_get("id")?),
            tenant_id: TenantId::from_uuid(row.try_get("tenant_id")?),
            user_id: UserId::from_uuid(row.try_get("user_id")?),
            name: row.try_get("name")?,
            token_start: row.try_get("token_start")?,
            scopes: ScopeSet::from_stored(&scopes).map_err(|e| sqlx::Error::Decode(e.into()))?,
            created_at: row.try_get("created_at")?,
            expires_at: row.try_get("expires_at")?,
            last_used_at: row.try_get("last_used_at")?,
            revoked_at: row.try_get("revoked_at")?,
        }
    }};
}

impl Tx {
    pub async fn insert_api_token(
        &mut self,
        t: &ApiTokenRecord,
        token_hash: &[u8],
    ) -> StoreResult<()> {
        on_tx!(self, |conn| {
            sqlx::query(
                "INSERT INTO api_tokens (id, tenant_id, user_id, name, token_start, token_hash, scopes, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(t.id.as_uuid())
            .bind(t.tenant_id.as_uuid())
            .bind(t.user_id.as_uuid())
            .bind(&t.name)
            .bind(&t.token_start)
            .bind(token_hash)
            .bind(t.scopes.to_stored())
            .bind(t.created_at)
            .bind(t.expires_at)
            .execute(conn)
            .await?;
        });
        Ok(())
    }

    /// Revokes one of a user's tokens (again is fine: the first revocation
    /// time stays); `false` unless the token is theirs.
    pub async fn revoke_api_token(
        &mut self,
        tenant: TenantId,
        user: UserId,
        id: ApiTokenId,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        let changed = on_tx!(self, |conn| {
            sqlx::query(
                "UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $4)
                 WHERE tenant_id = $1 AND user_id = $2 AND id = $3",
            )
            .bind(tenant.as_uuid())
            .bind(user.as_uuid())
            .bind(id.as_uuid())
            .bind(now)
            .execute(conn)
            .await?
            .rows_affected()
        });
        Ok(changed > 0)
    }

    /// Revokes every token of a user; returns how many were live.
    pub async fn revoke_user_api_tokens(
        &mut self,
        tenant: TenantId,
        user: UserId,
        now: OffsetDateTime,
    ) -> StoreResult<u64> {
        let changed = on_tx!(self, |conn| {
            sqlx::query(
                "UPDATE api_tokens SET revoked_at = $3
                 WHERE tenant_id = $1 AND user_id = $2 AND revoked_at IS NULL",
            )
            .bind(tenant.as_uuid())
            .bind(user.as_uuid())
            .bind(now)
            .execute(conn)
            .await?
            .rows_affected()
        });
        Ok(changed)
    }
}

impl Store {
    pub async fn api_token_by_hash(&self, hash: &[u8]) -> StoreResult<Option<ApiTokenAuth>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS}, u.email, u.role, u.status FROM api_tokens t JOIN users u ON u.id = t.user_id
             WHERE t.token_hash = $1"
        ));
        let found = on_pool!(self.pool, |p| {
            match sqlx::query(sql).bind(hash).fetch_optional(p).await? {
                None => None,
                Some(row) => {
                    let role: String = row.try_get("role")?;
                    let status: String = row.try_get("status")?;
                    Some(ApiTokenAuth {
                        token: token_from_row!(&row),
                        email: row.try_get("email")?,
                        role: role
                            .parse()
                            .map_err(|e: String| sqlx::Error::Decode(e.into()))?,
                        user_status: UserStatus::parse(&status)?,
                    })
                }
            }
        });
        Ok(found)
    }

    /// A user's tokens, newest first (revoked ones included).
    pub async fn api_tokens_of(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> StoreResult<Vec<ApiTokenRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM api_tokens t WHERE t.tenant_id = $1 AND t.user_id = $2 ORDER BY t.id DESC"
        ));
        let records = on_pool!(self.pool, |p| {
            let mut out = Vec::new();
            for row in sqlx::query(sql)
                .bind(tenant.as_uuid())
                .bind(user.as_uuid())
                .fetch_all(p)
                .await?
            {
                out.push(token_from_row!(&row));
            }
            out
        });
        Ok(records)
    }

    /// Records a use of the token, at most once a minute.
    pub async fn touch_api_token(&self, id: ApiTokenId, now: OffsetDateTime) -> StoreResult<()> {
        on_pool!(self.writer, |p| {
            sqlx::query(
                "UPDATE api_tokens SET last_used_at = $2
                 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $3)",
            )
            .bind(id.as_uuid())
            .bind(now)
            .bind(now - LAST_USED_RESOLUTION)
            .execute(p)
            .await?;
        });
        Ok(())
    }
}
