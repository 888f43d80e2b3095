//! Counting sign-in attempts so that parallel requests cannot multiply
//! them: each attempt is counted before its secret is checked (atomically
//! in the database, shared by every node), attempts beyond the allowance
//! are refused unchecked, and a success clears the count.

use mpanel_domain::identity::throttle::ThrottlePolicy;
use mpanel_store::Store;
use time::OffsetDateTime;

use crate::ServiceError;

/// An attempt in progress under one key.
#[derive(Debug, Clone)]
pub(crate) struct Attempt {
    key: String,
    policy: ThrottlePolicy,
    count: u32,
}

fn throttled(until: OffsetDateTime, now: OffsetDateTime) -> ServiceError {
    ServiceError::Throttled {
        retry_after_secs: u64::try_from((until - now).whole_seconds().max(1)).unwrap_or(1),
    }
}

/// Counts an attempt, or refuses it while the key is locked. The attempt
/// that goes past the allowance locks the key before it is checked.
pub(crate) async fn begin(
    store: &Store,
    key: String,
    policy: ThrottlePolicy,
    now: OffsetDateTime,
) -> Result<Attempt, ServiceError> {
    let provisional = now + policy.first_lock;
    let claimed = store
        .claim_throttle_attempt(
            &key,
            now,
            now - policy.forget_after,
            policy.free_failures,
            provisional,
        )
        .await?;
    let Some(count) = claimed else {
        let until = store
            .throttle_state(&key)
            .await?
            .and_then(|s| s.locked_until)
            .unwrap_or(provisional);
        return Err(throttled(until, now));
    };
    if let Some(until) = policy.lock_after(count, now) {
        store.lock_throttle(&key, until).await?;
    }
    Ok(Attempt { key, policy, count })
}

/// The secret was wrong (the attempt is already counted, and a lock it
/// earned already set). Returns whether this failure started a lock.
pub(crate) async fn failed(
    _store: &Store,
    attempt: &Attempt,
    _now: OffsetDateTime,
) -> Result<bool, ServiceError> {
    Ok(attempt.count == attempt.policy.free_failures + 1)
}

/// The secret was right: the count starts again.
pub(crate) async fn succeeded(store: &Store, attempt: &Attempt) -> Result<(), ServiceError> {
    store.clear_throttle(&attempt.key).await?;
    Ok(())
}
