//! The private temporary folders mPanel's SSH sessions use (a server's key
//! and pinned host key; the control sockets of shared connections).
//!
//! Each process that makes one takes a token and holds an exclusive lock
//! on `mpanel-ssh-<token>.lock` in the temporary directory for its life;
//! its folders are `mpanel-ssh-<token>-…` and `mpanel-ssh-mux-<token>-…`.
//! The first folder a process makes removes the folders of every token
//! whose lock it can take: the kernel drops a lock when its process ends,
//! however it ends and whichever pid namespace it ran in, so a process
//! killed mid-session leaves its keys only until another process makes its
//! first SSH folder, and no live process loses a folder.

use std::fs::File;
use std::path::Path;
use std::sync::OnceLock;

/// This process's token and the lock that says it is alive.
struct Owner {
    token: String,
    lock: File,
}

/// A new folder (0700) for `kind` (`""` for keys, `"mux-"` for sockets),
/// named after this process's token; without one (no lock could be
/// made), a `mpanel-ssh-[mux-]nolock-…` folder no sweep removes.
pub(crate) fn folder(kind: &str) -> std::io::Result<tempfile::TempDir> {
    use std::os::unix::fs::PermissionsExt;
    let prefix = match owner() {
        Some(owner) => format!("mpanel-ssh-{kind}{}-", owner.token),
        None => format!("mpanel-ssh-{kind}nolock-"),
    };
    tempfile::Builder::new()
        .prefix(&prefix)
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir()
}

/// This process's owner; the first that is made sweeps the left-behind
/// folders. A failure is not kept: the next folder tries again.
fn owner() -> Option<&'static Owner> {
    static OWNER: OnceLock<Owner> = OnceLock::new();
    if let Some(owner) = OWNER.get() {
        return Some(owner);
    }
    let root = std::env::temp_dir();
    match take_token(&root) {
        Ok(owner) => {
            if OWNER.set(owner).is_ok()
                && let Some(owner) = OWNER.get()
            {
                sweep(&root, owner);
            }
            OWNER.get()
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot make a lock for SSH folders: they will not be swept");
            None
        }
    }
}

/// A fresh token (10 hex digits: the socket paths stay short) and its
/// lock, held. The lock is taken under a name no sweep reads and only then
/// given its own, so no sweeper can take it first.
fn take_token(root: &Path) -> std::io::Result<Owner> {
    use std::os::unix::fs::OpenOptionsExt;
    let id = uuid::Uuid::now_v7().simple().to_string();
    let token = id[id.len() - 10..].to_owned();
    let fresh = root.join(format!("mpanel-ssh-{token}.new"));
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&fresh)?;
    let taken = lock
        .try_lock()
        .map_err(std::io::Error::other)
        .and_then(|()| std::fs::rename(&fresh, root.join(format!("mpanel-ssh-{token}.lock"))));
    if let Err(e) = taken {
        let _ = std::fs::remove_file(&fresh);
        return Err(e);
    }
    Ok(Owner { token, lock })
}

/// Removes, in `root`, the folders and lock file of every token whose lock
/// can be taken (its process is gone) and whose lock file belongs to the
/// same user as `owner`'s.
fn sweep(root: &Path, owner: &Owner) {
    use std::os::unix::fs::MetadataExt;
    let Ok(uid) = owner.lock.metadata().map(|m| m.uid()) else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    let names: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    for token in names.iter().filter_map(|n| lock_token(n)) {
        if token == owner.token {
            continue;
        }
        let lock_path = root.join(format!("mpanel-ssh-{token}.lock"));
        let Some(_held) = abandoned(&lock_path, uid) else {
            continue;
        };
        for name in names.iter().filter(|n| folder_of(n, token)) {
            let path = root.join(name);
            let ours = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir() && m.uid() == uid);
            if ours && let Err(e) = std::fs::remove_dir_all(&path) {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove a left-behind SSH folder");
            }
        }
        // Removed while held: a sweeper that opened it before locks a file
        // no longer in the folder, and finds nothing left to remove.
        let _ = std::fs::remove_file(&lock_path);
    }
}

/// The lock file, locked, when it is a regular file of `uid` whose process
/// is gone. Opened without following a link and without blocking (a FIFO
/// swapped in by another user would hang a blocking open), then checked on
/// the open file itself.
fn abandoned(path: &Path, uid: u32) -> Option<File> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let lock = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    let meta = lock.metadata().ok()?;
    if !meta.is_file() || meta.uid() != uid {
        return None;
    }
    lock.try_lock().ok()?;
    Some(lock)
}
/// The token of a lock file's name, `mpanel-ssh-<token>.lock`.
fn lock_token(name: &str) -> Option<&str> {
    let token = name.strip_prefix("mpanel-ssh-")?.strip_suffix(".lock")?;
    (!token.is_empty() && token.bytes().all(|b| b.is_ascii_hexdigit())).then_some(token)
}

/// Whether `name` is a folder of `token`: `mpanel-ssh-[mux-]<token>-…`.
fn folder_of(name: &str, token: &str) -> bool {
    let Some(rest) = name.strip_prefix("mpanel-ssh-") else {
        return false;
    };
    let rest = rest.strip_prefix("mux-").unwrap_or(rest);
    rest.strip_prefix(token)
        .and_then(|r| r.strip_prefix('-'))
        .is_some_and(|random| !random.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_read_only_in_their_own_form() {
        assert_eq!(lock_token("mpanel-ssh-0a1b2c3d4e.lock"), Some("0a1b2c3d4e"));
        assert_eq!(lock_token("mpanel-ssh-.lock"), None);
        assert_eq!(lock_token("mpanel-ssh-x/y.lock"), None);
        assert!(folder_of("mpanel-ssh-0a1b2c3d4e-AbC1x9", "0a1b2c3d4e"));
        assert!(folder_of("mpanel-ssh-mux-0a1b2c3d4e-AbC1x9", "0a1b2c3d4e"));
        assert!(!folder_of("mpanel-ssh-0a1b2c3d4e-", "0a1b2c3d4e"));
        assert!(!folder_of("mpanel-ssh-0a1b2c3d4eff-AbC1x9", "0a1b2c3d4e"));
        assert!(!folder_of("mpanel-ssh-33laQj", "33"));
    }

    /// Another user can put anything in /tmp under a lock file's name: a
    /// FIFO, which a blocking open would wait on for ever.
    #[test]
    fn a_fifo_in_place_of_a_lock_file_is_passed_over() {
        let root = tempfile::tempdir().unwrap();
        let sweeper = take_token(root.path()).unwrap();
        let fifo = root.path().join("mpanel-ssh-0a1b2c3d4e.lock");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if !made.is_ok_and(|s| s.success()) {
            return;
        }
        let folder = root.path().join("mpanel-ssh-0a1b2c3d4e-AbC1x9");
        std::fs::create_dir(&folder).unwrap();
        sweep(root.path(), &sweeper);
        assert!(folder.exists());
    }

    #[test]
    fn folders_whose_lock_is_free_go_and_those_of_a_live_owner_stay() {
        let root = tempfile::tempdir().unwrap();
        let sweeper = take_token(root.path()).unwrap();
        let live = take_token(root.path()).unwrap();
        let gone = take_token(root.path()).unwrap();
        let gone_token = gone.token.clone();
        // Its process ended: the kernel let go of its lock.
        drop(gone);
        let make = |name: String| {
            let path = root.path().join(name);
            std::fs::create_dir(&path).unwrap();
            path
        };
        let gone_keys = make(format!("mpanel-ssh-{gone_token}-AbC1x9"));
        let gone_mux = make(format!("mpanel-ssh-mux-{gone_token}-AbC1x9"));
        std::fs::write(gone_keys.join("id"), "a key").unwrap();
        let live_keys = make(format!("mpanel-ssh-{}-AbC1x9", live.token));
        let live_mux = make(format!("mpanel-ssh-mux-{}-AbC1x9", live.token));
        let old_form = make("mpanel-ssh-33laQj".into());
        sweep(root.path(), &sweeper);
        assert!(!gone_keys.exists() && !gone_mux.exists(), "gone");
        assert!(
            !root
                .path()
                .join(format!("mpanel-ssh-{gone_token}.lock"))
                .exists()
        );
        assert!(
            live_keys.exists() && live_mux.exists() && old_form.exists(),
            "kept"
        );
        drop(live);
    }
}
