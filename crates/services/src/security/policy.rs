//! Reading and changing a tenant's security policy.

use mpanel_domain::TenantId;
use mpanel_domain::security::SecurityPolicy;
use mpanel_store::Store;
use serde_json::json;

use crate::ServiceError;
use crate::context::{Audited, Context};

/// The caller's tenant's policy (`GET /api/security/policy`).
pub async fn get(cx: &Context) -> Result<SecurityPolicy, ServiceError> {
    load(&cx.store, cx.tenant_id()).await
}

/// The tenant's policy (the defaults until one is saved), for
/// authentication, login and the disk-usage job, which run before or
/// without a request context.
pub async fn load(store: &Store, tenant: TenantId) -> Result<SecurityPolicy, ServiceError> {
    from_stored(tenant, store.security_policy(tenant).await?)
}

/// The policy from its stored form (`None`: the defaults).
pub fn from_stored(
    tenant: TenantId,
    stored: Option<serde_json::Value>,
) -> Result<SecurityPolicy, ServiceError> {
    match stored {
        // A policy that no longer reads must not switch protection off.
        Some(v) => serde_json::from_value(v).map_err(|e| {
            tracing::error!(%tenant, error = %e, "the stored security policy cannot be read");
            ServiceError::internal("unreadable security policy", e)
        }),
        None => Ok(SecurityPolicy::default()),
    }
}

/// Saves the tenant's policy. An allow-list that leaves out the address
/// the change is made from is refused: it would end the caller's own
/// session with its next request.
pub async fn update(
    cx: &Context,
    policy: &SecurityPolicy,
    from: Option<std::net::IpAddr>,
) -> Result<SecurityPolicy, ServiceError> {
    let who = &cx.principal;
    crate::identity::step_up::require_recent(who, cx.now())?;
    policy
        .check()
        .map_err(|(field, m)| ServiceError::invalid(field, m))?;
    if who.role().is_staff() && !policy.ip_allowed(from) {
        return Err(ServiceError::invalid(
            "ip_allow_list",
            format!(
                "would lock you out: include the address you are using ({})",
                from.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
            ),
        ));
    }
    let before = load(&cx.store, who.tenant_id).await?;
    let value = serde_json::to_value(policy)
        .map_err(|e| ServiceError::internal("cannot serialize the security policy", e))?;
    let now = cx.now();
    let mut tx = cx.store.begin().await?;
    tx.save_security_policy(who.tenant_id, &value, now).await?;
    tx.record_audit(&cx.audit(Audited {
        action: "security_policy.update",
        target_type: "tenant",
        target_id: who.tenant_id.to_string(),
        before: serde_json::to_value(&before).ok(),
        after: Some(value.clone()),
        at: now,
    }))
    .await?;
    tx.record_security_event(&mpanel_store::identity::security_events::SecurityEvent {
        tenant_id: Some(who.tenant_id),
        user_id: Some(who.user_id),
        kind: "POLICY_CHANGED",
        ip: None,
        detail: Some(json!({"policy": value})),
        at: now,
    })
    .await?;
    tx.commit().await?;
    Ok(policy.clone())
}
