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
