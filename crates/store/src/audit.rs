//! The audit log: who changed what, written in the same transaction as the
//! change itself, so neither exists without the other.

use mpanel_domain::{AuditEventId, TenantId};
use serde_json::Value;
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Store, StoreResult, Tx};

/// Who acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorType {
    /// An operator at the command line of a node (`mpanel admin …`).
    Cli,
    /// The system itself (scheduler, workers).
    System,
    /// A signed-in user.
    User,
    /// An API token.
    ApiToken,
}

impl ActorType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cli => "CLI",
            Self::System => "SYSTEM",
            Self::User => "USER",
            Self::ApiToken => "API_TOKEN",
        }
    }
}

/// One audit row to write.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub tenant_id: Option<TenantId>,
    pub actor_type: ActorType,
    pub actor_id: Option<Uuid>,
    /// A human-readable actor: an e-mail address, a token name, `cli@host`.
    pub actor_label: String,
    /// `noun.verb`, e.g. `tenant.create`.
    pub action: String,
    pub target_type: String,
    pub target_id: Option<String>,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub request_id: Option<String>,
    pub at: OffsetDateTime,
}

impl Tx {
    pub async fn record_audit(&mut self, entry: &AuditEntry) -> StoreResult<AuditEventId> {
        let id = AuditEventId::new();
        on_tx!(self, |conn| {
            sqlx::query(
                "INSERT INTO audit_log (id, tenant_id, actor_type, actor_id, actor_label, action,
                     target_type, target_id, before, after, request_id, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            )
            .bind(id.as_uuid())
            .bind(entry.tenant_id.map(|t| t.as_uuid()))
            .bind(entry.actor_type.as_str())
            .bind(entry.actor_id)
            .bind(&entry.actor_label)
            .bind(&entry.action)
            .bind(&entry.target_type)
            .bind(&entry.target_id)
            .bind(entry.before.as_ref().map(Json))
            .bind(entry.after.as_ref().map(Json))
            .bind(&entry.request_id)
            .bind(entry.at)
            .execute(conn)
            .await?;
        });
        Ok(id)
    }
}

impl Store {
    /// The actions recorded for a tenant, oldest first.
    pub async fn audit_actions(&self, tenant_id: TenantId) -> StoreResult<Vec<String>> {
        let actions = on_pool!(self.pool, |p| {
            sqlx::query_scalar::<_, String>(
                "SELECT action FROM audit_log WHERE tenant_id = $1 ORDER BY id",
            )
            .bind(tenant_id.as_uuid())
            .fetch_all(p)
            .await?
        });
        Ok(actions)
    }
}

/// Filters for reading the audit log; `None` matches everything.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// The actor's id (a user or token id) or label (an e-mail address).
    pub actor: Option<String>,
    pub action: Option<String>,
    /// The target's id or type.
    pub target: Option<String>,
    pub from: Option<OffsetDateTime>,
    pub to: Option<OffsetDateTime>,
}

/// One audit row as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    pub id: AuditEventId,
    pub actor_type: String,
    pub actor_id: Option<Uuid>,
    pub actor_label: String,
    pub action: String,
    pub target_type: String,
    pub target_id: Option<String>,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub request_id: Option<String>,
    pub created_at: OffsetDateTime,
}

impl Store {
    /// A page of a tenant's audit log, newest first, older than `before`.
    /// A tenant's audit rows, or with `None` the platform's own stream.
    pub async fn list_audit(
        &self,
        tenant: Option<TenantId>,
        filter: &AuditFilter,
        before: Option<AuditEventId>,
        limit: u32,
    ) -> StoreResult<Vec<AuditRecord>> {
        let actor_id = filter
            .actor
            .as_deref()
            .and_then(|a| Uuid::parse_str(a).ok());
        let actor_label = filter.actor.as_deref().filter(|_| actor_id.is_none());
        let records = on_pool!(self.pool, |p| {
            let mut out = Vec::new();
            for row in sqlx::query(
                "SELECT id, actor_type, actor_id, actor_label, action, target_type, target_id,
                        before, after, request_id, created_at
                 FROM audit_log
                 WHERE (tenant_id = $1 OR ($1 IS NULL AND tenant_id IS NULL))
                   AND ($2 IS NULL OR id < $2)
                   AND ($3 IS NULL OR actor_id = $3)
                   AND ($4 IS NULL OR actor_label = $4)
                   AND ($5 IS NULL OR action = $5)
                   AND ($6 IS NULL OR target_id = $6 OR target_type = $6)
                   AND ($7 IS NULL OR created_at >= $7)
                   AND ($8 IS NULL OR created_at < $8)
                 ORDER BY id DESC LIMIT $9",
            )
            .bind(tenant.map(|t| t.as_uuid()))
            .bind(before.map(|b| b.as_uuid()))
            .bind(actor_id)
            .bind(actor_label)
            .bind(&filter.action)
            .bind(&filter.target)
            .bind(filter.from)
            .bind(filter.to)
            .bind(i64::from(limit))
            .fetch_all(p)
            .await?
            {
                use sqlx::Row;
                let before: Option<Json<Value>> = row.try_get("before")?;
                let after: Option<Json<Value>> = row.try_get("after")?;
                out.push(AuditRecord {
                    id: AuditEventId::from_uuid(row.try_get("id")?),
                    actor_type: row.try_get("actor_type")?,
                    actor_id: row.try_get("actor_id")?,
                    actor_label: row.try_get("actor_label")?,
                    action: row.try_get("action")?,
                    target_type: row.try_get("target_type")?,
                    target_id: row.try_get("target_id")?,
                    before: before.map(|j| j.0),
                    after: after.map(|j| j.0),
                    request_id: row.try_get("request_id")?,
                    created_at: row.try_get("created_at")?,
                });
            }
            out
        });
        Ok(records)
    }
}
