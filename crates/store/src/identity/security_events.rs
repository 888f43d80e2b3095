//! Security events: logins, failures, lockouts, token use and misuse.

use mpanel_domain::{SecurityEventId, TenantId, UserId};
use serde_json::Value;
use sqlx::Row;
use sqlx::types::Json;
use time::OffsetDateTime;

use crate::{Store, StoreResult, Tx};

#[derive(Debug, Clone, PartialEq)]
pub struct SecurityEvent {
    pub tenant_id: Option<TenantId>,
    pub user_id: Option<UserId>,
    /// UPPER_SNAKE, e.g. `LOGIN_FAILED`, `REFRESH_TOKEN_REUSED`.
    pub kind: &'static str,
    pub ip: Option<String>,
    pub detail: Option<Value>,
    pub at: OffsetDateTime,
}

/// A stored event, as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct SecurityEventRecord {
    pub id: SecurityEventId,
    pub user_id: Option<UserId>,
    pub kind: String,
    pub ip: Option<String>,
    pub created_at: OffsetDateTime,
}

impl Tx {
    pub async fn record_security_event(&mut self, e: &SecurityEvent) -> StoreResult<()> {
        on_tx!(self, |conn| {
            sqlx::query(
                "INSERT INTO security_events (id, tenant_id, user_id, kind, ip, detail, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(SecurityEventId::new().as_uuid())
            .bind(e.tenant_id.map(|t| t.as_uuid()))
            .bind(e.user_id.map(|u| u.as_uuid()))
            .bind(e.kind)
            .bind(&e.ip)
            .bind(e.detail.as_ref().map(Json))
            .bind(e.at)
            .execute(conn)
            .await?;
        });
        Ok(())
    }
}

impl Store {
    /// Records one event in a transaction of its own.
    pub async fn record_security_event(&self, e: &SecurityEvent) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        tx.record_security_event(e).await?;
        tx.commit().await
    }

    /// A tenant's events, newest first.
    pub async fn security_events(
        &self,
        tenant: TenantId,
        limit: u32,
    ) -> StoreResult<Vec<SecurityEventRecord>> {
        let records = on_pool!(self.pool, |p| {
            let mut out = Vec::new();
            for row in sqlx::query(
                "SELECT id, user_id, kind, ip, created_at FROM security_events
                 WHERE tenant_id = $1 ORDER BY id DESC LIMIT $2",
            )
            .bind(tenant.as_uuid())
            .bind(i64::from(limit))
            .fetch_all(p)
            .await?
            {
                let user: Option<uuid::Uuid> = row.try_get("user_id")?;
                out.push(SecurityEventRecord {
                    id: SecurityEventId::from_uuid(row.try_get("id")?),
                    user_id: user.map(UserId::from_uuid),
                    kind: row.try_get("kind")?,
                    ip: row.try_get("ip")?,
                    created_at: row.try_get("created_at")?,
                });
            }
            out
        });
        Ok(records)
    }
}

/// A stored event with its detail, for listings.
#[derive(Debug, Clone, PartialEq)]
pub struct SecurityEventDetail {
    pub record: SecurityEventRecord,
    pub detail: Option<Value>,
}

impl Store {
    /// A page of a tenant's events (of one user, of one kind), newest first.
    pub async fn list_security_events(
        &self,
        tenant: TenantId,
        user: Option<UserId>,
        kind: Option<&str>,
        before: Option<SecurityEventId>,
        limit: u32,
    ) -> StoreResult<Vec<SecurityEventDetail>> {
        let found = on_pool!(self.pool, |p| {
            let mut out = Vec::new();
            for row in sqlx::query(
                "SELECT id, user_id, kind, ip, detail, created_at FROM security_events
                 WHERE tenant_id = $1 AND ($2 IS NULL OR user_id = $2) AND ($3 IS NULL OR kind = $3)
                   AND ($4 IS NULL OR id < $4)
                 ORDER BY id DESC LIMIT $5",
            )
            .bind(tenant.as_uuid())
            .bind(user.map(|u| u.as_uuid()))
            .bind(kind)
            .bind(before.map(|b| b.as_uuid()))
            .bind(i64::from(limit))
            .fetch_all(p)
            .await?
            {
                let user: Option<uuid::Uuid> = row.try_get("user_id")?;
                let detail: Option<Json<Value>> = row.try_get("detail")?;
                out.push(SecurityEventDetail {
                    record: SecurityEventRecord {
                        id: SecurityEventId::from_uuid(row.try_get("id")?),
                        user_id: user.map(UserId::from_uuid),
                        kind: row.try_get("kind")?,
                        ip: row.try_get("ip")?,
                        created_at: row.try_get("created_at")?,
                    },
                    detail: detail.map(|d| d.0),
                });
            }
            out
        });
        Ok(found)
    }
}
