//! Who is acting, as recorded in the audit log.

use mpanel_domain::TenantId;
use mpanel_store::{ActorType, AuditEntry};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::identity::Principal;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub kind: ActorType,
    pub id: Option<Uuid>,
    pub label: String,
    /// The HTTP request this action belongs to, if any.
    pub request_id: Option<String>,
}

impl Actor {
    /// An operator at a node's command line.
    pub fn cli(operator: &str) -> Self {
        Self {
            kind: ActorType::Cli,
            id: None,
            label: format!("cli:{operator}"),
            request_id: None,
        }
    }

    /// mPanel itself (a scheduled job, a provider's webhook): `label`
    /// says which part, e.g. `billing` or `webhook:stripe`.
    pub fn system(label: &str) -> Self {
        Self {
            kind: ActorType::System,
            id: None,
            label: label.to_owned(),
            request_id: None,
        }
    }

    /// A signed-in user or API token, acting in request `request_id`.
    pub fn principal(p: &Principal, request_id: Option<String>) -> Self {
        match p.api_token_id {
            Some(token) => Self {
                kind: ActorType::ApiToken,
                id: Some(p.user_id.as_uuid()),
                label: format!("{} (token {token})", p.email),
                request_id,
            },
            None => Self {
                kind: ActorType::User,
                id: Some(p.user_id.as_uuid()),
                label: p.email.clone(),
                request_id,
            },
        }
    }
}

/// What changed, for an audit row: `action` (`noun.verb`) on a target,
/// with a summary of it before and after.
#[derive(Debug, Clone)]
pub struct Change<'a> {
    pub tenant: TenantId,
    pub action: &'a str,
    pub target_type: &'a str,
    pub target_id: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub at: OffsetDateTime,
}

impl Actor {
    /// The audit row of a platform change (servers): in the platform's own
    /// stream, not the acting operator's home tenant, whose admins would
    /// otherwise read it.
    pub fn platform_audit(&self, change: Change<'_>) -> AuditEntry {
        AuditEntry {
            tenant_id: None,
            ..self.audit(change)
        }
    }

    /// The audit row for `change` made by this actor.
    pub fn audit(&self, change: Change<'_>) -> AuditEntry {
        AuditEntry {
            tenant_id: Some(change.tenant),
            actor_type: self.kind,
            actor_id: self.id,
            actor_label: self.label.clone(),
            action: change.action.into(),
            target_type: change.target_type.into(),
            target_id: Some(change.target_id),
            before: change.before,
            after: change.after,
            request_id: self.request_id.clone(),
            at: change.at,
        }
    }
}
