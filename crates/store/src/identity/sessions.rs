//! Sessions (one per login) and their refresh tokens. A session is the
//! refresh-token family: revoking it ends every token it issued.

use mpanel_domain::identity::Role;
use mpanel_domain::{RefreshTokenId, SessionId, TenantId, UserId};
use sqlx::Row;
use time::OffsetDateTime;

use super::users::UserStatus;
use crate::{Store, StoreResult, Tx};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub id: SessionId,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub created_at: OffsetDateTime,
    pub last_used_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// May only enrol a second factor (MFA required, none yet).
    pub restricted: bool,
}

/// What authenticating a request with a session's access token needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionAuth {
    pub email: String,
    pub revoked: bool,
    pub created_at: OffsetDateTime,
    /// When the user last proved who they are in this session.
    pub authenticated_at: OffsetDateTime,
    pub last_used_at: OffsetDateTime,
    pub restricted: bool,
    pub expires_at: OffsetDateTime,
    pub role: Role,
    pub user_status: UserStatus,
    /// The tenant's security policy as stored (`None`: the defaults),
    /// read in the same statement: every request needs both.
    pub policy: Option<serde_json::Value>,
    /// The session's tenant, read in the same statement too.
    pub tenant: crate::TenantRecord,
}

/// A refresh token's row, found by its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshTokenRecord {
    pub id: RefreshTokenId,
    pub session_id: SessionId,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub expires_at: OffsetDateTime,
    pub used_at: Option<OffsetDateTime>,
    pub session_revoked: bool,
    pub session_expires_at: OffsetDateTime,
}

const COLUMNS: &str = "id, tenant_id, user_id, created_at, last_used_at, expires_at, revoked_at, ip, user_agent, restricted";

macro_rules! session_from_row {
    ($row:expr) => {{
        let row = $row;
        SessionRecord {
            id: SessionId::from_uuid(row.try_get("id")?),
            tenant_id: TenantId::from_uuid(row.try_get("tenant_id")?),
            user_id: UserId::from_uuid(row.try_get("user_id")?),
            created_at: row.try_get("created_at")?,
            last_used_at: row.try_get("last_used_at")?,
            expires_at: row.try_get("expires_at")?,
            revoked_at: row.try_get("revoked_at")?,
            ip: row.try_get("ip")?,
            user_agent: row.try_get("user_agent")?,
            restricted: row.try_get("restricted")?,
        }
    }};
}

impl Tx {
    pub async fn insert_session(&mut self, s: &SessionRecord) -> StoreResult<()> {
        on_tx!(self, |conn| {
            sqlx::query(
                "INSERT INTO sessions (id, tenant_id, user_id, created_at, last_used_at, expires_at, ip, user_agent, restricted)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(s.id.as_uuid())
            .bind(s.tenant_id.as_uuid())
            .bind(s.user_id.as_uuid())
            .bind(s.created_at)
            .bind(s.last_used_at)
            .bind(s.expires_at)
            .bind(&s.ip)
            .bind(&s.user_agent)
            .bind(s.restricted)
            .execute(conn)
            .await?;
        });
        Ok(())
    }

    /// The addresses the user's sessions (live or ended) were opened
    /// from, once each, and whether each may be trusted; empty when the
    /// user never signed in. An address whose only sessions ended for a
    /// security reason (a password changed or reset, all sessions signed
    /// out, a refresh token reused, the user disabled) is not trusted: it
    /// may have been the intruder's.
    pub async fn session_addresses(
        &mut self,
        tenant: TenantId,
        user: UserId,
    ) -> StoreResult<Vec<(Option<String>, bool)>> {
        let rows = on_tx!(self, |conn| {
            sqlx::query_as::<_, (Option<String>, i64)>(
                "SELECT ip, CAST(MAX(CASE WHEN revoked_reason IN ('PASSWORD_CHANGED', 'PASSWORD_RESET',
                        'REVOKE_ALL', 'REFRESH_TOKEN_REUSED', 'USER_DISABLED') THEN 0 ELSE 1 END)
                        AS BIGINT)
                 FROM sessions WHERE tenant_id = $1 AND user_id = $2 GROUP BY ip",
            )
            .bind(tenant.as_uuid())
            .bind(user.as_uuid())
            .fetch_all(conn)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(ip, trusted)| (ip, trusted == 1))
            .collect())
    }

    pub async fn insert_refresh_token(
        &mut self,
        id: RefreshTokenId,
        session: SessionId,
        token_hash: &[u8],
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> StoreResult<()> {
        on_tx!(self, |conn| {
            sqlx::query(
                "INSERT INTO refresh_tokens (id, session_id, token_hash, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(id.as_uuid())
            .bind(session.as_uuid())
            .bind(token_hash)
            .bind(now)
            .bind(expires_at)
            .execute(conn)
            .await?;
        });
        Ok(())
    }

    /// Marks a refresh token used, if it was not; `false` when another
    /// request used it first.
    pub async fn mark_refresh_token_used(
        &mut self,
        id: RefreshTokenId,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        let changed = on_tx!(self, |conn| {
            sqlx::query("UPDATE refresh_tokens SET used_at = $2 WHERE id = $1 AND used_at IS NULL")
                .bind(id.as_uuid())
                .bind(now)
                .execute(conn)
                .await?
                .rows_affected()
        });
        Ok(changed == 1)
    }

    pub async fn touch_session(&mut self, id: SessionId, now: OffsetDateTime) -> StoreResult<()> {
        on_tx!(self, |conn| {
            sqlx::query("UPDATE sessions SET last_used_at = $2 WHERE id = $1")
                .bind(id.as_uuid())
                .bind(now)
                .execute(conn)
                .await?;
        });
        Ok(())
    }

    /// Revokes one session of a user (again is fine: the first revocation
    /// stays); `false` unless the session is theirs.
    pub async fn revoke_session(
        &mut self,
        tenant: TenantId,
        user: UserId,
        id: SessionId,
        reason: &str,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        let changed = on_tx!(self, |conn| {
            sqlx::query(
                "UPDATE sessions SET revoked_at = COALESCE(revoked_at, $4), revoked_reason = COALESCE(revoked_reason, $5)
                 WHERE tenant_id = $1 AND user_id = $2 AND id = $3",
            )
            .bind(tenant.as_uuid())
            .bind(user.as_uuid())
            .bind(id.as_uuid())
            .bind(now)
            .bind(reason)
            .execute(conn)
            .await?
            .rows_affected()
        });
        Ok(changed > 0)
    }

    /// Revokes every live session of a user but `keep`; returns how many.
    pub async fn revoke_user_sessions(
        &mut self,
        tenant: TenantId,
        user: UserId,
        keep: Option<SessionId>,
        reason: &str,
        now: OffsetDateTime,
    ) -> StoreResult<u64> {
        let changed = on_tx!(self, |conn| {
            sqlx::query(
                "UPDATE sessions SET revoked_at = $4, revoked_reason = $5
                 WHERE tenant_id = $1 AND user_id = $2 AND revoked_at IS NULL
                   AND ($3 IS NULL OR id <> $3)",
            )
            .bind(tenant.as_uuid())
            .bind(user.as_uuid())
            .bind(keep.map(|k| k.as_uuid()))
            .bind(now)
            .bind(reason)
            .execute(conn)
            .await?
            .rows_affected()
        });
        Ok(changed)
    }
}

impl Store {
    /// The session an access token names, with its user's role and status.
    pub async fn session_auth(
        &self,
        tenant: TenantId,
        user: UserId,
        session: SessionId,
    ) -> StoreResult<Option<SessionAuth>> {
        // The tenant's columns first, read by position; the others by
        // their (unique) names.
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {}, s.revoked_at, s.expires_at, s.created_at AS session_created_at,
                 s.authenticated_at, s.last_used_at, s.restricted, u.email, u.role,
                 u.status AS user_status, p.policy
             FROM sessions s JOIN users u ON u.id = s.user_id
             JOIN tenants t ON t.id = s.tenant_id
             LEFT JOIN security_policies p ON p.tenant_id = s.tenant_id
             WHERE s.id = $1 AND s.tenant_id = $2 AND s.user_id = $3",
            crate::tenants::columns_of("t")
        ));
        let auth = on_pool!(self.pool, |p| {
            match sqlx::query(sql)
                .bind(session.as_uuid())
                .bind(tenant.as_uuid())
                .bind(user.as_uuid())
                .fetch_optional(p)
                .await?
            {
                None => None,
                Some(row) => {
                    let revoked_at: Option<OffsetDateTime> = row.try_get("revoked_at")?;
                    let role: String = row.try_get("role")?;
                    let status: String = row.try_get("user_status")?;
                    let created_at: OffsetDateTime = row.try_get("session_created_at")?;
                    let authenticated_at: Option<OffsetDateTime> =
                        row.try_get("authenticated_at")?;
                    Some(SessionAuth {
                        email: row.try_get("email")?,
                        created_at,
                        authenticated_at: authenticated_at.unwrap_or(created_at),
                        last_used_at: row.try_get("last_used_at")?,
                        restricted: row.try_get("restricted")?,
                        revoked: revoked_at.is_some(),
                        expires_at: row.try_get("expires_at")?,
                        role: role
                            .parse()
                            .map_err(|e: String| sqlx::Error::Decode(e.into()))?,
                        user_status: UserStatus::parse(&status)?,
                        policy: row
                            .try_get::<Option<sqlx::types::Json<serde_json::Value>>, _>("policy")?
                            .map(|j| j.0),
                        tenant: crate::tenants::from_row_at(&row, 0)?,
                    })
                }
            }
        });
        Ok(auth)
    }

    pub async fn refresh_token_by_hash(
        &self,
        hash: &[u8],
    ) -> StoreResult<Option<RefreshTokenRecord>> {
        let record = on_pool!(self.pool, |p| {
            match sqlx::query(
                "SELECT r.id, r.session_id, r.expires_at, r.used_at, s.tenant_id, s.user_id,
                        s.revoked_at AS session_revoked_at, s.expires_at AS session_expires_at
                 FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id
                 WHERE r.token_hash = $1",
            )
            .bind(hash)
            .fetch_optional(p)
            .await?
            {
                None => None,
                Some(row) => {
                    let revoked: Option<OffsetDateTime> = row.try_get("session_revoked_at")?;
                    Some(RefreshTokenRecord {
                        id: RefreshTokenId::from_uuid(row.try_get("id")?),
                        session_id: SessionId::from_uuid(row.try_get("session_id")?),
                        tenant_id: TenantId::from_uuid(row.try_get("tenant_id")?),
                        user_id: UserId::from_uuid(row.try_get("user_id")?),
                        expires_at: row.try_get("expires_at")?,
                        used_at: row.try_get("used_at")?,
                        session_revoked: revoked.is_some(),
                        session_expires_at: row.try_get("session_expires_at")?,
                    })
                }
            }
        });
        Ok(record)
    }

    /// Records a session's use, at most once a minute (idle timeouts count from it).
    /// The session's user proved who they are again, at `now`.
    pub async fn set_session_authenticated(
        &self,
        id: SessionId,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        on_pool!(self.writer, |p| {
            sqlx::query("UPDATE sessions SET authenticated_at = $2 WHERE id = $1")
                .bind(id.as_uuid())
                .bind(now)
                .execute(p)
                .await?;
        });
        Ok(())
    }

    pub async fn touch_session_used(&self, id: SessionId, now: OffsetDateTime) -> StoreResult<()> {
        on_pool!(self.writer, |p| {
            sqlx::query(
                "UPDATE sessions SET last_used_at = $2 WHERE id = $1 AND last_used_at < $3",
            )
            .bind(id.as_uuid())
            .bind(now)
            .bind(now - time::Duration::minutes(1))
            .execute(p)
            .await?;
        });
        Ok(())
    }

    /// A user's sessions that are neither revoked nor expired, newest first.
    pub async fn live_sessions(
        &self,
        tenant: TenantId,
        user: UserId,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<SessionRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM sessions
             WHERE tenant_id = $1 AND user_id = $2 AND revoked_at IS NULL AND expires_at > $3
             ORDER BY id DESC"
        ));
        let records = on_pool!(self.pool, |p| {
            let mut out = Vec::new();
            for row in sqlx::query(sql)
                .bind(tenant.as_uuid())
                .bind(user.as_uuid())
                .bind(now)
                .fetch_all(p)
                .await?
            {
                out.push(session_from_row!(&row));
            }
            out
        });
        Ok(records)
    }

    /// The tenant's session; `None` when the tenant has no such session.
    pub async fn session(
        &self,
        tenant: TenantId,
        id: SessionId,
    ) -> StoreResult<Option<SessionRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM sessions WHERE tenant_id = $1 AND id = $2"
        ));
        let found = on_pool!(self.pool, |p| {
            match sqlx::query(sql)
                .bind(tenant.as_uuid())
                .bind(id.as_uuid())
                .fetch_optional(p)
                .await?
            {
                Some(row) => Some(session_from_row!(&row)),
                None => None,
            }
        });
        Ok(found)
    }
}
