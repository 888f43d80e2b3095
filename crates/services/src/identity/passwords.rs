//! Argon2id password hashing, off the async threads, on a few threads of
//! its own.

use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
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
    PERMITS.get_or_init(|| Semaphore::new(hashing_threads()))
}

fn hashing_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    (cores * 2).max(2)
}

type Work = Box<dyn FnOnce() + Send>;

/// Where hashing runs: as many long-lived threads as there are slots, so
/// hashing never takes threads from tokio's blocking pool (which file and
/// process work share) and a login burst uses at most this many threads.
/// (It does not bound serve's resident memory under a login burst: glibc
/// keeps the freed 19 MiB blocks; bench/load.sh `ONLY=login` shows it.)
fn hashers() -> Option<&'static mpsc::Sender<Work>> {
    static HASHERS: OnceLock<Option<mpsc::Sender<Work>>> = OnceLock::new();
    HASHERS
        .get_or_init(|| {
            let (sender, receiver) = mpsc::channel::<Work>();
            let receiver = Arc::new(Mutex::new(receiver));
            for n in 0..hashing_threads() {
                let receiver = Arc::clone(&receiver);
                let started = std::thread::Builder::new()
                    .name(format!("argon2-{n}"))
                    .spawn(move || {
                        loop {
                            // The lock is held only while waiting for work.
                            let work = match receiver.lock() {
                                Ok(next) => next.recv(),
                                Err(_) => return,
                            };
                            match work {
                                Ok(work) => work(),
                                Err(_) => return,
                            }
                        }
                    });
                if let Err(e) = started {
                    tracing::error!("cannot start a password hashing thread: {e}");
                    // Hashing runs on those that did start, if any.
                    return (n > 0).then_some(sender);
                }
            }
            Some(sender)
        })
        .as_ref()
}

/// Runs `work` on a hashing thread once a slot is free. The slot goes with
/// the work and is given back when the thread is done with it, not when
/// the request goes: a request given up on (a timeout, a client gone)
/// frees no slot for another while its hash still runs, and work whose
/// asker is gone is skipped.
async fn on_hasher<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ServiceError> {
    let slot = slot().await?;
    let (answer, answered) = tokio::sync::oneshot::channel();
    let work: Work = Box::new(move || {
        let _slot = slot;
        if answer.is_closed() {
            return;
        }
        // A panic is this request's failure, not the thread's end.
        if let Ok(value) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)) {
            let _ = answer.send(value);
        }
    });
    hashers()
        .ok_or_else(|| ServiceError::internal_msg("no password hashing thread could start"))?
        .send(work)
        .map_err(|_| ServiceError::internal_msg("the password hashing threads are gone"))?;
    answered
        .await
        .map_err(|e| ServiceError::internal("password hashing failed", e))
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
    let password = password.to_owned();
    on_hasher(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| ServiceError::internal("password hashing failed", e))
    })
    .await?
}

/// Whether `password` matches `stored`. With no stored hash (unknown user)
/// it checks against a dummy hash, so both answers take the same time.
pub async fn verify(stored: Option<&str>, password: &str) -> Result<bool, ServiceError> {
    let stored = stored.map(str::to_owned);
    let password = password.to_owned();
    on_hasher(move || {
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
