//! The private temporary folders mPanel's SSH sessions use (a server's key
//! and pinned host key; the control sockets of shared connections).
//!
//! Each process that makes one takes a token and holds an exclusive lock
//! on `mpanel-ssh-<token>.lock` in the temporary directory for its life;
//! its folders are `mpanel-ssh-<token>-…` and `mpanel-ssh-mux-<token>-…`.
//! The first folder a process makes removes the folders of every token
//! whose lock it can take: the kernel drops a lock when its process ends,
//! however it ends and whichever pid namespace it ran in, so a process
//! killed mid-session leaves its keys only until another one next uses
//! SSH, and no live process loses a folder.

use std::fs::File;
use std::path::Path;
use std::sync::OnceLock;

/// This process's token and the lock that says it is alive.
struct Owner {
    token: String,
    _lock: File,
}

/// A new folder (0700) for `kind` (`""` for keys, `"mux-"` for sockets).
pub(crate) fn folder(kind: &str) -> std::io::Result<tempfile::TempDir> {
    use std::os::unix::fs::PermissionsExt;
    let owner = owner().ok_or_else(|| std::io::Error::other("no lock file for SSH folders"))?;
    tempfile::Builder::new()
        .prefix(&format!("mpanel-ssh-{kind}{}-", owner.token))
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir()
}

/// This process's owner, made (and the left-behind folders swept) on
/// first use; `None` when its lock file cannot be made.
fn owner() -> Option<&'static Owner> {
    static OWNER: OnceLock<Option<Owner>> = OnceLock::new();
    OWNER
        .get_or_init(|| {
            let root = std::env::temp_dir();
            let owner = take_token(&root);
            if let Err(e) = &owner {
                tracing::warn!(error = %e, "cannot make a lock file for SSH folders");
            }
            sweep(&root);
            owner.ok()
        })
        .as_ref()
}

/// A fresh token (10 hex digits: the socket paths stay short) and its
/// lock, held.
fn take_token(root: &Path) -> std::io::Result<Owner> {
    use std::os::unix::fs::OpenOptionsExt;
    let id = uuid::Uuid::now_v7().simple().to_string();
    let token = id[id.len() - 10..].to_owned();
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(root.join(format!("mpanel-ssh-{token}.lock")))?;
    lock.try_lock().map_err(std::io::Error::other)?;
    Ok(Owner { token, _lock: lock })
}

/// Removes, in `root`, the folders and lock file of every token whose lock
/// can be taken (its process is gone), that this user owns.
fn sweep(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    let names: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    for token in names.iter().filter_map(|n| lock_token(n)) {
        let lock_path = root.join(format!("mpanel-ssh-{token}.lock"));
        let Some(lock) = abandoned(&lock_path) else {
            continue;
        };
        for name in names.iter().filter(|n| folder_of(n, token)) {
            let path = root.join(name);
            let ours =
                std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir() && same_owner(&m, &lock));
            if ours && let Err(e) = std::fs::remove_dir_all(&path) {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove a left-behind SSH folder");
            }
        }
        // Removed while held: a sweeper that opens it after takes a lock
        // on a file no longer in the folder, and finds nothing to remove.
        let _ = std::fs::remove_file(&lock_path);
    }
}

/// The lock file, locked, when it is a plain file whose process is gone.
fn abandoned(path: &Path) -> Option<File> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    if !meta.is_file() {
        return None;
    }
    let lock = File::open(path).ok()?;
    lock.try_lock().ok()?;
    Some(lock)
}

fn same_owner(meta: &std::fs::Metadata, lock: &File) -> bool {
    use std::os::unix::fs::MetadataExt;
    lock.metadata().is_ok_and(|l| l.uid() == meta.uid())
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

    #[test]
    fn folders_whose_lock_is_free_go_and_those_of_a_live_owner_stay() {
        let root = tempfile::tempdir().unwrap();
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
        sweep(root.path());
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
