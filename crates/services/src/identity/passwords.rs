//! Argon2id password hashing, off the async threads, on a few threads of
//! its own.

use std::cell::RefCell;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::Semaphore;

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};

use crate::ServiceError;

/// Hashing takes 19 MiB and a core for ~50 ms: at most this many run at
/// once, so a burst of logins queues instead of exhausting memory.
fn permits() -> &'static Semaphore {
    static PERMITS: OnceLock<Semaphore> = OnceLock::new();
    PERMITS.get_or_init(|| Semaphore::new(hashing_threads()))
}

/// One per CPU, at most 8: a hash is all CPU, so more threads than CPUs
/// hash no faster (with half the threads, logins under `bench/load.sh`
/// went no slower: docs/benchmarks.md, "Under load") and each thread
/// keeps 19 MiB; 8 hashes at once (about 160 a second) are far above what
/// the login rate limits let through.
fn hashing_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    cores.clamp(1, 8)
}

type Work = Box<dyn FnOnce() + Send>;

/// Where hashing runs: as many long-lived threads as there are slots, so
/// hashing never takes threads from tokio's blocking pool (which file and
/// process work share) and a login burst uses at most this many threads.
/// Each keeps its hashing memory (`with_memory`), so a login burst holds
/// at most this many 19 MiB blocks.
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
        argon2::password_hash::try_generate_salt()
            .map_err(|e| ServiceError::internal_msg(format!("no random salt: {e}")))
            .and_then(|salt| {
                hash_with_salt(password.as_bytes(), &salt).map_err(|e| {
                    ServiceError::internal_msg(format!("password hashing failed: {e}"))
                })
            })
    })
    .await?
}

/// Whether `password` matches `stored`. With no stored hash (unknown user)
/// it checks against a dummy hash, so both answers take the same time.
pub async fn verify(stored: Option<&str>, password: &str) -> Result<bool, ServiceError> {
    let stored = stored.map(str::to_owned);
    let password = password.to_owned();
    on_hasher(move || match &stored {
        Some(phc) => matches(phc, password.as_bytes()),
        None => {
            let _ = matches(dummy_hash(), password.as_bytes());
            false
        }
    })
    .await
}

/// The hashing memory of this thread: one block of the default cost
/// (m=19456 KiB), made on the first hash and reused by every later one.
/// Argon2's own `hash_password` allocates and frees it on each call, and
/// glibc keeps the freed 19 MiB resident (its mmap threshold rises after
/// the first such free), so a burst of logins took `serve` from 40 to
/// 500 MB; with one block per hashing thread the total stays at their
/// number × 19 MiB. `None` when the memory cannot be had (a stored hash
/// asking for more than [`MAX_BLOCKS`], or the allocation failing): such
/// a hash matches nothing, and the process does not abort.
fn with_memory<T>(blocks: usize, work: impl FnOnce(&mut [Block]) -> T) -> Option<T> {
    thread_local! {
        static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
    }
    let default_blocks = Params::default().block_count();
    if blocks > default_blocks {
        // A hash made with a higher cost than ours (an import): its own
        // memory, freed after.
        return own_memory(blocks).map(|mut memory| work(&mut memory));
    }
    MEMORY.with(|memory| match memory.try_borrow_mut() {
        Ok(mut memory) => {
            if memory.len() < default_blocks {
                *memory = own_memory(default_blocks)?;
            }
            Some(work(&mut memory[..blocks]))
        }
        Err(_) => own_memory(blocks).map(|mut memory| work(&mut memory)),
    })
}

/// The most memory a stored hash may ask for: 256 MiB (13 times ours).
const MAX_BLOCKS: usize = 256 * 1024;

/// `blocks` of hashing memory, allocated fallibly.
fn own_memory(blocks: usize) -> Option<Vec<Block>> {
    if blocks > MAX_BLOCKS {
        return None;
    }
    let mut memory = Vec::new();
    memory.try_reserve_exact(blocks).ok()?;
    memory.resize(blocks, Block::default());
    Some(memory)
}

/// The PHC string of `password` with `salt` at the default cost, hashed in
/// this thread's memory.
fn hash_with_salt(password: &[u8], salt: &[u8]) -> Result<String, argon2::password_hash::Error> {
    let argon = Argon2::default();
    let params = argon.params().clone();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    with_memory(params.block_count(), |memory| {
        argon.hash_password_into_with_memory(password, salt, &mut out, memory)
    })
    .unwrap_or(Err(argon2::Error::OutOfMemory))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::default().into()),
        params: ParamsString::try_from(&params)?,
        salt: Some(Salt::new(salt)?),
        hash: Some(Output::new(&out)?),
    };
    Ok(phc.to_string())
}

/// Whether `password` hashes to the stored PHC string `phc` (with the
/// algorithm, version and cost it names), compared in constant time.
fn matches(phc: &str, password: &[u8]) -> bool {
    let computed = || -> Result<bool, argon2::password_hash::Error> {
        let parsed = PasswordHash::new(phc)?;
        let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
            return Ok(false);
        };
        let algorithm = Algorithm::try_from(parsed.algorithm.as_str())?;
        let version = parsed
            .version
            .map(Version::try_from)
            .transpose()?
            .unwrap_or_default();
        let params = Params::try_from(&parsed)?;
        let argon = Argon2::new(algorithm, version, params.clone());
        let mut out = vec![0u8; expected.len()];
        with_memory(params.block_count(), |memory| {
            argon.hash_password_into_with_memory(password, salt, &mut out, memory)
        })
        .unwrap_or(Err(argon2::Error::OutOfMemory))?;
        // `Output`'s equality is constant-time.
        Ok(Output::new(&out)? == *expected)
    };
    computed().unwrap_or(false)
}

/// A hash of a fixed password with a random salt, made once per process.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        argon2::password_hash::try_generate_salt()
            .ok()
            .and_then(|salt| hash_with_salt(b"mpanel dummy password for timing", &salt).ok())
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

    #[test]
    fn hashes_agree_with_argon2s_own_in_both_directions() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let ours = hash_with_salt(b"hunter42", b"saltsaltsalt").unwrap();
        let theirs = Argon2::default()
            .hash_password_with_salt(b"hunter42", b"saltsaltsalt")
            .unwrap()
            .to_string();
        assert_eq!(ours, theirs);
        assert!(
            Argon2::default()
                .verify_password(b"hunter42", ours.as_str())
                .is_ok()
        );
        // A stored hash of another cost (lower and higher than ours).
        for m in [8192, 32768] {
            let other = Argon2::new(
                Algorithm::Argon2id,
                Version::V0x13,
                Params::new(m, 1, 1, None).unwrap(),
            )
            .hash_password_with_salt(b"hunter42", b"saltsaltsalt")
            .unwrap()
            .to_string();
            assert!(matches(&other, b"hunter42"), "m={m}");
            assert!(!matches(&other, b"hunter43"), "m={m}");
        }
        assert!(matches(&ours, b"hunter42"));
        assert!(!matches(&ours, b"hunter4"));
        // A stored hash asking for 4 TB matches nothing, and nothing aborts.
        let greedy = ours.replace("m=19456", "m=4000000000");
        assert!(greedy.contains("m=4000000000"));
        assert!(!matches(&greedy, b"hunter42"));
    }
}
