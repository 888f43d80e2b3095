//! The security center: second factors, policies, security events.

pub mod mfa;
pub mod policy;
pub mod retention;
pub mod webauthn;

use mpanel_domain::{TenantId, UserId};
use mpanel_store::Store;
use mpanel_store::identity::security_events::SecurityEvent;
use serde_json::Value;
use time::OffsetDateTime;

/// Records a security event (logged, not raised, if it cannot be stored).
pub async fn event(
    store: &Store,
    tenant: TenantId,
    user: Option<UserId>,
    kind: &'static str,
    ip: Option<String>,
    detail: Option<Value>,
    at: OffsetDateTime,
) {
    crate::identity::record_event(
        store,
        SecurityEvent {
            tenant_id: Some(tenant),
            user_id: user,
            kind,
            ip,
            detail,
            at,
        },
    )
    .await;
}
