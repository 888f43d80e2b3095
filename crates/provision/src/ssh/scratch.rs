//! The private temporary folders mPanel's SSH sessions use (a server's key
//! and pinned host key; the control sockets of shared connections). Each
//! is named after the process (`mpanel-ssh-<pid>-…`,
//! `mpanel-ssh-mux-<pid>-…`), and the first one a process makes removes
//! those of its user's processes that are gone: a process that was killed,
//! or ended with sessions in flight, leaves no private key behind for
//! longer than until the next one starts.

use std::path::{Path, PathBuf};
use std::sync::Once;

/// A new folder (0700) for `kind` (`""` for keys, `"mux-"` for sockets).
pub(crate) fn folder(kind: &str) -> std::io::Result<tempfile::TempDir> {
    static SWEEP: Once = Once::new();
    SWEEP.call_once(|| sweep(&std::env::temp_dir()));
    use std::os::unix::fs::PermissionsExt;
    tempfile::Builder::new()
        .prefix(&format!("mpanel-ssh-{kind}{}-", std::process::id()))
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir()
}

/// Removes the folders in `root` of this user's processes that are gone.
fn sweep(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    let me = own_uid();
    for entry in entries.flatten() {
        let path = entry.path();
        if !left_behind(&path, me) {
            continue;
        }
        if let Err(e) = std::fs::remove_dir_all(&path) {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove a left-behind SSH folder");
        }
    }
}

/// Whether `path` is an SSH folder of a process of `uid` that is gone.
fn left_behind(path: &Path, uid: Option<u32>) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Some(pid) = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(owner_pid)
    else {
        return false;
    };
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return false;
    };
    meta.is_dir()
        && Some(meta.uid()) == uid
        && pid != std::process::id()
        && !PathBuf::from(format!("/proc/{pid}")).exists()
}

/// The pid in `mpanel-ssh-[mux-]<pid>-<random>`.
fn owner_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("mpanel-ssh-")?;
    let rest = rest.strip_prefix("mux-").unwrap_or(rest);
    let (pid, random) = rest.split_once('-')?;
    if random.is_empty() || pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

fn own_uid() -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").ok().map(|m| m.uid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_owner_is_read_from_the_name_only_in_its_own_form() {
        assert_eq!(owner_pid("mpanel-ssh-123-AbC1x9"), Some(123));
        assert_eq!(owner_pid("mpanel-ssh-mux-77-AbC1x9"), Some(77));
        assert_eq!(owner_pid("mpanel-ssh-33laQj"), None, "the old form");
        assert_eq!(owner_pid("mpanel-ssh-mux-AbC1x9"), None);
        assert_eq!(owner_pid("mpanel-ssh-12-"), None);
        assert_eq!(owner_pid("other-123-x"), None);
    }

    #[test]
    fn folders_of_gone_processes_go_and_others_stay() {
        let root = tempfile::tempdir().unwrap();
        // Past the kernel's largest pid: no such process.
        let gone = root.path().join("mpanel-ssh-4194305-AbC1x9");
        let gone_mux = root.path().join("mpanel-ssh-mux-4194305-AbC1x9");
        let mine = root
            .path()
            .join(format!("mpanel-ssh-{}-AbC1x9", std::process::id()));
        let old_form = root.path().join("mpanel-ssh-33laQj");
        let other = root.path().join("something-4194305-x");
        for dir in [&gone, &gone_mux, &mine, &old_form, &other] {
            std::fs::create_dir(dir).unwrap();
        }
        std::fs::write(gone.join("id"), "a key").unwrap();
        sweep(root.path());
        assert!(!gone.exists() && !gone_mux.exists(), "gone");
        assert!(mine.exists() && old_form.exists() && other.exists(), "kept");
    }
}
