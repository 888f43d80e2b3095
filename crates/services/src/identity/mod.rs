//! Identity and access: logins, sessions with rotating refresh tokens,
//! access tokens, API tokens, users.

pub mod access_tokens;
pub mod account_links;
pub mod api_tokens;
pub mod authenticate;
pub mod bootstrap;
pub mod login;
pub mod password_reset;
pub mod passwords;
pub mod principal;
pub mod secrets;
pub mod sessions;
pub mod step_up;
pub(crate) mod throttle;
pub mod users;

pub use access_tokens::AccessTokens;
pub use principal::Principal;

use mpanel_store::identity::security_events::SecurityEvent;
use mpanel_store::{Store, Tx};

/// Records a security event; a failure to record is logged, not raised
/// (the event is about a request that is being answered anyway).
pub(crate) async fn record_event(store: &Store, event: SecurityEvent) {
    if let Err(err) = store.record_security_event(&event).await {
        tracing::error!(kind = event.kind, error = %err, "cannot record security event");
    }
}

/// Records a security event in the caller's transaction.
pub(crate) async fn record_event_in(
    tx: &mut Tx,
    event: SecurityEvent,
) -> mpanel_store::StoreResult<()> {
    tx.record_security_event(&event).await
}

/// Checks a signed-in user's password again (before a sensitive change),
/// throttled like logins so a stolen session is no password oracle.
pub(crate) async fn reauthenticate(
    store: &Store,
    clock: &dyn mpanel_domain::Clock,
    who: &Principal,
    stored_hash: Option<&str>,
    password: &str,
    field: &'static str,
) -> Result<(), crate::ServiceError> {
    let now = clock.now();
    let key = format!("reauth:{}", who.user_id);
    let attempt = throttle::begin(
        store,
        key,
        mpanel_domain::identity::throttle::PER_ACCOUNT,
        now,
    )
    .await?;
    if !passwords::verify(stored_hash, password).await? {
        throttle::failed(store, &attempt, now).await?;
        return Err(crate::ServiceError::invalid(field, "is wrong"));
    }
    throttle::succeeded(store, &attempt).await
}
