//! Reusing one authenticated SSH connection per node (OpenSSH connection
//! multiplexing).
//!
//! A new login costs a TCP handshake, a key exchange and a public-key
//! authentication: about 190 ms on loopback, several times that across a
//! network, paid by every script a job runs. With `ControlMaster=auto` the
//! first session to a node becomes the master of a control socket, and the
//! sessions after it open a channel on that connection instead (a few ms).
//! The master stays up for [`IDLE`] after its last session ends
//! (`ControlPersist`), so a quiet node costs nothing; a master whose
//! connection died refuses the socket, and the next session logs in anew
//! and takes its place (ssh removes the stale socket itself); one the
//! network silently dropped is ended by the keep-alives within 30 s. When
//! the node refuses one more session on the shared connection (sshd's
//! `MaxSessions`, 10 by default), ssh falls back to a login of its own.
//!
//! Who may use a master: the sockets live in a folder this process makes
//! with a fresh random name and mode 0700, so no other local user can open
//! sessions through them. A socket's name is a digest of everything that
//! decides the login — host, port, user, and the contents of the private
//! key and of the known-hosts file — so a node whose key or host key
//! changed gets a login of its own with the new ones, never a session on a
//! connection authenticated with the old. The name also carries the
//! current [`LIFETIME`] period, so even a node kept busy logs in anew at
//! least that often: a key pulled from the node's `authorized_keys` stops
//! working within one period (plus [`IDLE`] for the old master to go).

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::SshTarget;

/// How long a master outlives its last session.
pub const IDLE: Duration = Duration::from_secs(120);

/// How long new sessions go to the same master at most.
pub const LIFETIME: Duration = Duration::from_secs(600);

/// The options of a session that must log in on its own.
pub(super) const OWN_LOGIN: [&str; 2] = ["ControlMaster=no", "ControlPath=none"];

/// The longest socket path used: a Unix socket's path has at most 107
/// bytes, and ssh briefly binds the master at the path plus 17 more.
const MAX_SOCKET_PATH: usize = 80;

/// The folder of this process's control sockets, made on first use;
/// `None` (sharing off) when it cannot be made.
fn socket_dir() -> Option<&'static PathBuf> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        match super::scratch::folder("mux-") {
            // Kept for the life of the process: masters may outlive any
            // one session, and they remove their own sockets on exit; the
            // next process removes the folder once this one is gone.
            Ok(dir) => Some(dir.keep()),
            Err(e) => {
                tracing::warn!(
                    "cannot make a folder for SSH control sockets ({e}): every session logs in anew"
                );
                None
            }
        }
    })
    .as_ref()
}

/// The ssh options that share one connection to `target`, or none when
/// the connection cannot be shared (no socket folder, unreadable key
/// files — ssh then reports those itself).
pub(super) fn options(target: &SshTarget) -> Vec<OsString> {
    let Some(dir) = socket_dir() else {
        return Vec::new();
    };
    let period = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / LIFETIME.as_secs());
    let Some(name) = socket_name(target, period) else {
        return Vec::new();
    };
    let path = dir.join(name);
    if path.as_os_str().len() > MAX_SOCKET_PATH {
        static TOLD: std::sync::Once = std::sync::Once::new();
        TOLD.call_once(|| {
            tracing::warn!(folder = %dir.display(),
                "the temporary folder's path is too long for SSH control sockets: every session logs in anew (set TMPDIR to a shorter one)");
        });
        return Vec::new();
    }
    let mut control_path = OsString::from("ControlPath=");
    control_path.push(&path);
    vec![
        "ControlMaster=auto".into(),
        control_path,
        format!("ControlPersist={}", IDLE.as_secs()).into(),
    ]
}

/// A digest of everything that decides the login to `target`, as 32 hex
/// digits: no `%` (ssh expands those in ControlPath) and short.
fn socket_name(target: &SshTarget, period: u64) -> Option<String> {
    let key = std::fs::read(&target.key_path).ok()?;
    let known_hosts = std::fs::read(&target.known_hosts).ok()?;
    let mut digest = Sha256::new();
    for part in [
        target.host.as_bytes(),
        &target.port.to_be_bytes(),
        target.user.as_bytes(),
        &key,
        &known_hosts,
        &period.to_be_bytes(),
    ] {
        digest.update((part.len() as u64).to_be_bytes());
        digest.update(part);
    }
    let hash = digest.finalize();
    Some(hash[..16].iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(dir: &std::path::Path, key: &str, hosts: &str) -> SshTarget {
        let key_path = dir.join(format!("id-{key}"));
        let known_hosts = dir.join(format!("kh-{hosts}"));
        std::fs::write(&key_path, key).unwrap();
        std::fs::write(&known_hosts, hosts).unwrap();
        SshTarget {
            host: "127.0.0.1".into(),
            port: 2222,
            user: "mpanel-web".into(),
            key_path,
            known_hosts,
        }
    }

    #[test]
    fn the_same_login_shares_a_socket_and_another_key_or_host_key_does_not() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        // The same key contents in another folder (a new driver): shared.
        let first = socket_name(&target(a.path(), "k1", "h1"), 7).unwrap();
        assert_eq!(
            socket_name(&target(b.path(), "k1", "h1"), 7).unwrap(),
            first
        );
        assert_ne!(
            socket_name(&target(a.path(), "k2", "h1"), 7).unwrap(),
            first
        );
        assert_ne!(
            socket_name(&target(a.path(), "k1", "h2"), 7).unwrap(),
            first
        );
        // The next period: a master of its own.
        assert_ne!(
            socket_name(&target(a.path(), "k1", "h1"), 8).unwrap(),
            first
        );
        let other_port = SshTarget {
            port: 2223,
            ..target(a.path(), "k1", "h1")
        };
        assert_ne!(socket_name(&other_port, 7).unwrap(), first);
        assert_eq!(first.len(), 32);
        assert!(first.chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn options_name_a_private_socket_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let opts = options(&target(dir.path(), "k", "h"));
        let text: Vec<String> = opts
            .iter()
            .map(|o| o.to_string_lossy().into_owned())
            .collect();
        assert_eq!(text[0], "ControlMaster=auto");
        let socket = text[1].strip_prefix("ControlPath=").unwrap();
        let folder = std::path::Path::new(socket).parent().unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(folder).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let missing = SshTarget {
            key_path: dir.path().join("absent"),
            ..target(dir.path(), "k", "h")
        };
        assert!(options(&missing).is_empty());
    }
}
