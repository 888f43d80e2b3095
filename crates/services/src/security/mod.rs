//! The security center: second factors, policies, security events.

pub mod mfa;
pub mod policy;
pub mod retention;
pub mod webauthn;

use mpanel_domain::identity::Permission;
use mpanel_domain::{SecurityEventId, TenantId, UserId};
use mpanel_store::Store;
use mpanel_store::identity::security_events::{SecurityEvent, SecurityEventDetail};
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;

use crate::{Context, ServiceError};

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

/// A page of security events, newest first: the caller's own, or, for a
/// caller who may read the tenant's (`SECURITY_EVENTS_READ`), everyone's
/// or `user`'s.
pub async fn events(
    cx: &Context,
    user: Option<UserId>,
    kind: Option<&str>,
    before: Option<SecurityEventId>,
    limit: u32,
) -> Result<Vec<SecurityEventDetail>, ServiceError> {
    let p = &cx.principal;
    let user = if p.access.permits(Permission::SecurityEventsRead) {
        user
    } else {
        Some(p.user_id)
    };
    Ok(cx
        .store
        .list_security_events(cx.tenant_id(), user, kind, before, limit)
        .await?)
}

/// One's sign-in security at a glance.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Profile {
    /// TOTP, RECOVERY_CODE, WEBAUTHN.
    pub mfa_methods: Vec<&'static str>,
    pub recovery_codes_left: i64,
    pub webauthn_credentials: Vec<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_login_at: Option<OffsetDateTime>,
    pub sessions: usize,
    /// This session may only enrol a second factor (the policy requires one).
    pub mfa_enrollment_required: bool,
}

/// The caller's [`Profile`].
pub async fn profile(cx: &Context) -> Result<Profile, ServiceError> {
    let (store, p) = (&cx.store, &cx.principal);
    let logins = store
        .list_security_events(
            p.tenant_id,
            Some(p.user_id),
            Some("LOGIN_SUCCEEDED"),
            None,
            1,
        )
        .await?;
    Ok(Profile {
        mfa_methods: mfa::methods(store, p.user_id).await?,
        recovery_codes_left: store.recovery_codes_left(p.user_id).await?,
        webauthn_credentials: store
            .webauthn_credentials(p.user_id)
            .await?
            .into_iter()
            .map(|c| c.name)
            .collect(),
        last_login_at: logins.first().map(|e| e.record.created_at),
        sessions: store
            .live_sessions(p.tenant_id, p.user_id, cx.now())
            .await?
            .len(),
        mfa_enrollment_required: p.restricted,
    })
}
