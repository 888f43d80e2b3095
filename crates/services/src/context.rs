//! One request's context: the store, the clock, who acts (the principal,
//! and the actor the audit log records) and their tenant. Use cases take
//! it as one value instead of four arguments; the API's `Ctx<P>`
//! extractor builds it after authenticating and authorising the caller.

use std::sync::Arc;

use mpanel_domain::{Clock, TenantId};
use mpanel_store::{Store, TenantRecord};
use time::OffsetDateTime;

use crate::Actor;
use crate::actor::Change;
use crate::identity::Principal;

#[derive(Clone)]
pub struct Context {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub principal: Principal,
    pub actor: Actor,
    pub tenant: TenantRecord,
    /// The client's address, when known (a request's, not its session's).
    pub ip: Option<String>,
}

impl Context {
    pub fn tenant_id(&self) -> TenantId {
        self.tenant.id
    }

    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// The audit row of a change in this tenant, by this actor.
    pub fn audit(&self, change: Audited<'_>) -> mpanel_store::AuditEntry {
        self.actor.audit(Change {
            tenant: self.tenant.id,
            action: change.action,
            target_type: change.target_type,
            target_id: change.target_id,
            before: change.before,
            after: change.after,
            at: change.at,
        })
    }
}

/// What changed, for [`Context::audit`] (the tenant and actor come from
/// the context).
pub struct Audited<'a> {
    pub action: &'a str,
    pub target_type: &'a str,
    pub target_id: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    pub at: OffsetDateTime,
}
