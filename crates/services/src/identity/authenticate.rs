//! Turning a bearer token into a [`Principal`]: an API token (`mpt_…`) or
//! an access token (JWT). Every request re-reads the session or token and
//! its user, so revocation and disabling take effect at once.

use mpanel_domain::Clock;
use mpanel_domain::identity::Access;
use mpanel_domain::identity::api_token::{self, hash_secret};
use mpanel_store::{Store, TenantRecord, UserStatus};
use time::OffsetDateTime;

use super::login::{IDLE_TIMEOUT, session_end_reason};
use super::{AccessTokens, Principal};
use crate::ServiceError;

/// Who a request is from, and its tenant when authenticating read it.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub principal: Principal,
    /// The caller's tenant as read with a session (`None` for API tokens:
    /// read it when it is needed).
    pub tenant: Option<TenantRecord>,
}

pub async fn authenticate(
    store: &Store,
    clock: &dyn Clock,
    tokens: &AccessTokens,
    bearer: &str,
    ip: Option<std::net::IpAddr>,
) -> Result<Authenticated, ServiceError> {
    let now = clock.now();
    if bearer.starts_with(api_token::PREFIX) {
        Ok(Authenticated {
            principal: api_token_principal(store, bearer, ip, now).await?,
            tenant: None,
        })
    } else {
        session_principal(store, tokens, bearer, ip, now).await
    }
}

/// An API token's principal: live, within the policy's longest life,
/// from an allowed address, and its user enrolled in MFA if required.
async fn api_token_principal(
    store: &Store,
    bearer: &str,
    ip: Option<std::net::IpAddr>,
    now: OffsetDateTime,
) -> Result<Principal, ServiceError> {
    let refused =
        || ServiceError::Unauthenticated("the API token is invalid, expired or revoked".into());
    if !api_token::is_well_formed(bearer) {
        return Err(refused());
    }
    let Some(found) = store.api_token_by_hash(&hash_secret(bearer)).await? else {
        return Err(refused());
    };
    let t = &found.token;
    let expired = t.expires_at.is_some_and(|e| now >= e);
    if t.revoked_at.is_some() || expired || found.user_status != UserStatus::Active {
        return Err(refused());
    }
    let policy = crate::security::policy::load(store, t.tenant_id).await?;
    // However it was made (before the ceiling, or before the tenant
    // lowered it), no token outlives the policy's longest life.
    let max_age = time::Duration::days(i64::from(policy.api_token_max_days()));
    if now >= t.created_at + max_age {
        return Err(refused());
    }
    if !policy.ip_allowed(ip) {
        ip_blocked(
            store,
            t.tenant_id,
            t.user_id,
            ip,
            Some(serde_json::json!({"token_id": t.id})),
            now,
        )
        .await;
        return Err(ServiceError::Forbidden(
            "API tokens may not be used from this address under the tenant's policy".into(),
        ));
    }
    if policy.mfa_required_for(found.role)
        && crate::security::mfa::methods(store, t.user_id)
            .await?
            .is_empty()
    {
        return Err(ServiceError::MfaEnrollmentRequired);
    }
    store.touch_api_token(t.id, now).await?;
    Ok(Principal {
        tenant_id: t.tenant_id,
        user_id: t.user_id,
        email: found.email.clone(),
        access: Access {
            role: found.role,
            scopes: Some(t.scopes.clone()),
        },
        session_id: None,
        api_token_id: Some(t.id),
        restricted: false,
        authenticated_at: None,
    })
}

/// An access token's principal: its session live and within the policy
/// (address, idle time, lifetime); restricted while a required second
/// factor is missing.
async fn session_principal(
    store: &Store,
    tokens: &AccessTokens,
    bearer: &str,
    ip: Option<std::net::IpAddr>,
    now: OffsetDateTime,
) -> Result<Authenticated, ServiceError> {
    let claims = tokens.verify(bearer, now)?;
    let ended = || ServiceError::Unauthenticated("the session has ended".into());
    let auth = store
        .session_auth(claims.tenant_id, claims.user_id, claims.session_id)
        .await?
        .ok_or_else(ended)?;
    if auth.revoked || now >= auth.expires_at || auth.user_status != UserStatus::Active {
        return Err(ended());
    }
    let policy = crate::security::policy::from_stored(claims.tenant_id, auth.policy)?;
    // The allow-list holds for every request of a staff session, not only
    // its login: a session taken elsewhere is of no use outside it.
    if auth.role.is_staff() && !policy.ip_allowed(ip) {
        ip_blocked(
            store,
            claims.tenant_id,
            claims.user_id,
            ip,
            Some(serde_json::json!({"session_id": claims.session_id})),
            now,
        )
        .await;
        return Err(ServiceError::Forbidden(
            "staff sessions may not be used from this address under the tenant's policy".into(),
        ));
    }
    if let Some(reason) = session_end_reason(&policy, auth.created_at, auth.last_used_at, now) {
        let mut tx = store.begin().await?;
        tx.revoke_session(
            claims.tenant_id,
            claims.user_id,
            claims.session_id,
            reason,
            now,
        )
        .await?
        .then_some(())
        .ok_or_else(ServiceError::missing("session"))?;
        tx.commit().await?;
        return Err(ServiceError::Unauthenticated(format!(
            "the session has ended ({})",
            if reason == IDLE_TIMEOUT {
                "unused for too long"
            } else {
                "too old"
            }
        )));
    }
    // At most once a minute: on SQLite even an UPDATE that changes no row
    // takes the write lock, and every request would queue behind writers.
    if now - auth.last_used_at >= time::Duration::minutes(1) {
        store.touch_session_used(claims.session_id, now).await?;
    }
    // The policy applies from the next request, to sessions opened before it.
    let restricted = auth.restricted
        || (policy.mfa_required_for(auth.role)
            && crate::security::mfa::methods(store, claims.user_id)
                .await?
                .is_empty());
    let principal = Principal {
        tenant_id: claims.tenant_id,
        user_id: claims.user_id,
        email: auth.email,
        access: Access {
            role: auth.role,
            scopes: None,
        },
        session_id: Some(claims.session_id),
        api_token_id: None,
        restricted,
        authenticated_at: Some(auth.authenticated_at),
    };
    Ok(Authenticated {
        principal,
        tenant: Some(auth.tenant),
    })
}

/// Records a request refused by the tenant's IP allow-list.
pub(crate) async fn ip_blocked(
    store: &Store,
    tenant: mpanel_domain::TenantId,
    user: mpanel_domain::UserId,
    ip: Option<std::net::IpAddr>,
    detail: Option<serde_json::Value>,
    now: time::OffsetDateTime,
) {
    crate::security::event(
        store,
        tenant,
        Some(user),
        "IP_BLOCKED",
        ip.map(|i| i.to_string()),
        detail,
        now,
    )
    .await;
}
