//! Step-up: sensitive changes (API tokens, second factors, payment keys,
//! webhook secrets) need the user, not just a token. A signed-in user who
//! entered the password (or a second factor) within the last few minutes
//! may make them; a session older than that re-authenticates first, and an
//! API token, which has no user at the keyboard, never may.

use serde_json::json;
use time::{Duration, OffsetDateTime};

use super::Principal;
use crate::security::mfa::{self, Factor};
use crate::{Context, ServiceError};

/// How long a login or a re-entered password counts for sensitive changes.
pub const STEP_UP_WINDOW: Duration = Duration::minutes(5);

/// Refuses a sensitive change unless `who` proved who they are within
/// [`STEP_UP_WINDOW`] of `now`.
pub fn require_recent(who: &Principal, now: OffsetDateTime) -> Result<(), ServiceError> {
    match who.authenticated_at {
        Some(at) if now - at <= STEP_UP_WINDOW => Ok(()),
        _ => Err(ServiceError::ReauthenticationRequired),
    }
}

/// What a signed-in user presents to prove who they are again.
#[derive(Debug, Clone)]
pub enum Proof {
    Password(String),
    SecondFactor(Factor),
}

/// Checks `proof` (throttled like a login, so a stolen session is no
/// password or code oracle) and marks the session as just authenticated.
/// Returns until when sensitive changes are allowed.
pub async fn reauthenticate(
    cx: &Context,
    proof: &Proof,
    ip: Option<String>,
) -> Result<OffsetDateTime, ServiceError> {
    let store = &cx.store;
    let clock = cx.clock.as_ref();
    let who = &cx.principal;
    let Some(session) = who.session_id else {
        return Err(ServiceError::Forbidden(
            "an API token cannot re-authenticate: sign in as the user".into(),
        ));
    };
    match proof {
        Proof::Password(password) => {
            let user = store
                .user(who.tenant_id, who.user_id)
                .await?
                .ok_or_else(ServiceError::missing("user"))?;
            let checked = super::reauthenticate(
                store,
                clock,
                who,
                user.password_hash.as_deref(),
                password,
                "password",
            )
            .await;
            if let Err(err) = checked {
                crate::security::event(
                    store,
                    who.tenant_id,
                    Some(who.user_id),
                    "REAUTHENTICATION_FAILED",
                    ip,
                    Some(json!({"method": "PASSWORD"})),
                    clock.now(),
                )
                .await;
                return Err(err);
            }
        }
        Proof::SecondFactor(factor) => {
            mfa::verify_factor_throttled(
                store,
                clock,
                who.tenant_id,
                who.user_id,
                factor,
                ip.clone(),
            )
            .await?;
        }
    }
    let now = clock.now();
    store.set_session_authenticated(session, now).await?;
    crate::security::event(
        store,
        who.tenant_id,
        Some(who.user_id),
        "REAUTHENTICATED",
        ip,
        None,
        now,
    )
    .await;
    Ok(now + STEP_UP_WINDOW)
}
