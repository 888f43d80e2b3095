//! A user's own sessions: list, revoke one, revoke all others, log out.

use mpanel_domain::{Clock, SessionId};
use mpanel_store::Store;
use mpanel_store::identity::sessions::SessionRecord;
use serde_json::json;

use super::Principal;
use crate::actor::Change;
use crate::{Actor, ServiceError};

pub async fn list(
    store: &Store,
    clock: &dyn Clock,
    who: &Principal,
) -> Result<Vec<SessionRecord>, ServiceError> {
    Ok(store
        .live_sessions(who.tenant_id, who.user_id, clock.now())
        .await?)
}

/// Revokes one of the caller's sessions.
pub async fn revoke(
    store: &Store,
    clock: &dyn Clock,
    who: &Principal,
    actor: &Actor,
    id: SessionId,
    reason: &str,
) -> Result<(), ServiceError> {
    let now = clock.now();
    let mut tx = store.begin().await?;
    tx.revoke_session(who.tenant_id, who.user_id, id, reason, now)
        .await
        .map_err(ServiceError::not_found_as("session"))?;
    tx.record_audit(&actor.audit(Change {
        tenant: who.tenant_id,
        action: "session.revoke",
        target_type: "session",
        target_id: id.to_string(),
        before: None,
        after: Some(json!({"reason": reason})),
        at: now,
    }))
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Revokes every session of the caller but the current one; returns how many.
pub async fn revoke_others(
    store: &Store,
    clock: &dyn Clock,
    who: &Principal,
    actor: &Actor,
) -> Result<u64, ServiceError> {
    let now = clock.now();
    let mut tx = store.begin().await?;
    let n = tx
        .revoke_user_sessions(
            who.tenant_id,
            who.user_id,
            who.session_id,
            "REVOKE_ALL",
            now,
        )
        .await?;
    tx.record_audit(&actor.audit(Change {
        tenant: who.tenant_id,
        action: "session.revoke_all",
        target_type: "user",
        target_id: who.user_id.to_string(),
        before: None,
        after: Some(json!({"revoked": n, "kept": who.session_id})),
        at: now,
    }))
    .await?;
    tx.commit().await?;
    Ok(n)
}

/// Ends the caller's current session.
pub async fn logout(
    store: &Store,
    clock: &dyn Clock,
    who: &Principal,
    actor: &Actor,
) -> Result<(), ServiceError> {
    let Some(session) = who.session_id else {
        return Err(ServiceError::invalid(
            "authorization",
            "log out ends a session; revoke an API token instead",
        ));
    };
    revoke(store, clock, who, actor, session, "LOGOUT").await
}
