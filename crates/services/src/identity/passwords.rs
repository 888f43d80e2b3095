//! Argon2id password hashing, off the async threads.

use std::sync::OnceLock;
use std::time::Duration;

use tokio::sync::Semaphore;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

use crate::ServiceError;

/// Hashing takes 19 MiB and a core for ~50 ms: at most this many run at
/// once, so a burst of logins queues instead of exhausting memory.
fn permits() -> &'static Semaphore {
    static PERMITS: OnceLock<Semaphore> = OnceLock::new();
    PERMITS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Semaphore::new((cores * 2).max(2))
    })
}

/// How long a request waits for a hashing slot before the server says it
/// is busy.
const QUEUE_WAIT: Duration = Duration::from_secs(5);

async fn slot() -> Result<tokio::sync::SemaphorePermit<'static>, ServiceError> {
    match tokio::time::timeout(QUEUE_WAIT, permits().acquire()).await {
        Ok(Ok(permit)) => Ok(permit),
        _ => Err(ServiceError::Busy),
    }
}

/// Hashes a password (PHC string, `$argon2id$…`).
pub async fn hash(password: &str) -> Result<String, ServiceError> {
    let _slot = slot().await?;
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| ServiceError::internal("password hashing failed", e))
    })
    .await
    .map_err(|e| ServiceError::internal("hashing task failed", e))?
}

/// Whether `password` matches `stored`. With no stored hash (unknown user)
/// it checks against a dummy hash, so both answers take the same time.
pub async fn verify(stored: Option<&str>, password: &str) -> Result<bool, ServiceError> {
    let _slot = slot().await?;
    let stored = stored.map(str::to_owned);
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        let (phc, real) = match &stored {
            Some(s) => (s.as_str(), true),
            None => (dummy_hash(), false),
        };
        let Ok(parsed) = PasswordHash::new(phc) else {
            return false;
        };
        let ok = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        ok && real
    })
    .await
    .map_err(|e| ServiceError::internal("verification task failed", e))
}

/// A hash of a random password, made once per process.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        Argon2::default()
            .hash_password(b"mpanel dummy password for timing")
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_unknown_users_never_match() {
        let h = hash("correct horse battery").await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify(Some(&h), "correct horse battery").await.unwrap());
        assert!(!verify(Some(&h), "correct horse batterY").await.unwrap());
        assert!(
            !verify(None, "mpanel dummy password for timing")
                .await
                .unwrap()
        );
        assert!(!verify(Some("garbage"), "x").await.unwrap());
    }
}
