//! A user's own sessions: list, revoke one, revoke all others, log out.

use mpanel_domain::SessionId;
use mpanel_store::identity::sessions::SessionRecord;
use serde_json::json;

use crate::actor::Change;
use crate::{Context, ServiceError};

pub async fn list(cx: &Context) -> Result<Vec<SessionRecord>, ServiceError> {
    let store = &cx.store;
    let who = &cx.principal;
    Ok(store
        .live_sessions(who.tenant_id, who.user_id, cx.now())
        .await?)
}

/// Revokes one of the caller's sessions.
pub async fn revoke(cx: &Context, id: SessionId, reason: &str) -> Result<(), ServiceError> {
    let store = &cx.store;
    let who = &cx.principal;
    let actor = &cx.actor;
    let now = cx.now();
    let mut tx = store.begin().await?;
    tx.revoke_session(who.tenant_id, who.user_id, id, reason, now)
        .await?
        .then_some(())
        .ok_or_else(ServiceError::missing("session"))?;
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
pub async fn revoke_others(cx: &Context) -> Result<u64, ServiceError> {
    let store = &cx.store;
    let who = &cx.principal;
    let actor = &cx.actor;
    let now = cx.now();
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
pub async fn logout(cx: &Context) -> Result<(), ServiceError> {
    let Some(session) = cx.principal.session_id else {
        return Err(ServiceError::invalid(
            "authorization",
            "log out ends a session; revoke an API token instead",
        ));
    };
    revoke(cx, session, "LOGOUT").await
}
