//! Running a shell script on a node over SSH with the system `ssh` client
//! (OpenSSH), as a child process with a time limit.
//!
//! The script goes to the remote side as one quoted argument
//! (`sh -c '<script>'`), which leaves the session's stdin free for data (a
//! file's new content). Every value interpolated into a script must go
//! through [`sh_quote`]. The remote login shell parses that one argument,
//! so a script is limited to [`MAX_SCRIPT_LEN`] bytes (Linux caps one
//! argument at 128 KiB); bulk data belongs on stdin.
//!
//! Errors: ssh's own failures (exit 255) are [`DriverError::Transient`]
//! (refused, unreachable, timed out), except refused credentials and an
//! unknown or changed host key, which are [`DriverError::Permanent`]. A
//! remote script's own non-zero exit is returned in [`Output`] for the
//! caller to judge, so scripts must not use exit code 255 themselves.
//!
//! Sessions to the same node share one authenticated connection
//! ([`shared`]), so only the first of a burst pays for a login.

pub(crate) mod scratch;
mod shared;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

use crate::DriverError;

/// The longest a session may take before the `ssh` process is killed.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// The longest script [`run`] sends (it travels as one argument).
pub const MAX_SCRIPT_LEN: usize = 100 * 1024;

/// Where and as whom to log in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    pub host: String,
    pub port: u16,
    pub user: String,
    /// The private key (OpenSSH format, mode 0600).
    pub key_path: PathBuf,
    /// A known_hosts file holding the node's host key (`[host]:port key`
    /// when the port is not 22); an unknown or different key is refused.
    pub known_hosts: PathBuf,
}

/// How a remote script ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// The script's exit status.
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.status == 0
    }

    /// stderr, trimmed, or a placeholder when it is empty (for messages).
    pub fn error_text(&self) -> String {
        let text = self.stderr.trim();
        if text.is_empty() {
            format!("exit status {} with no message", self.status)
        } else {
            text.to_owned()
        }
    }
}

/// `s` as one POSIX shell word: single-quoted, with each `'` written as
/// `'\''`. Safe for any content, newlines included.
pub fn sh_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// Runs `script` with `sh` on the target, feeding it `stdin` (or nothing),
/// killed after [`TIMEOUT`]. A non-zero exit of the script is `Ok`.
pub async fn run(
    target: &SshTarget,
    script: &str,
    stdin: Option<&[u8]>,
) -> Result<Output, DriverError> {
    run_with_timeout(target, script, stdin, TIMEOUT).await
}

/// [`run`] with another time limit.
pub async fn run_with_timeout(
    target: &SshTarget,
    script: &str,
    stdin: Option<&[u8]>,
    limit: Duration,
) -> Result<Output, DriverError> {
    session(target, script, stdin, limit, Login::Shared).await
}

/// [`run_with_timeout`] on a login of its own, never on a shared
/// connection: for a health check, whose answer must say that a new login
/// works now (credentials, sshd accepting) and whose round trip is a
/// login's.
pub async fn run_own_login(
    target: &SshTarget,
    script: &str,
    limit: Duration,
) -> Result<Output, DriverError> {
    session(target, script, None, limit, Login::Own).await
}

/// Whether a session may ride on a shared connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Login {
    Shared,
    Own,
}

async fn session(
    target: &SshTarget,
    script: &str,
    stdin: Option<&[u8]>,
    limit: Duration,
    login: Login,
) -> Result<Output, DriverError> {
    let mut cmd = command(target, script, login)?;
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd.spawn().map_err(spawn_error)?;
    let pipe = child.stdin.take();
    let input = stdin.map(<[u8]>::to_vec);
    let session = async move {
        let feed = async move {
            if let (Some(mut pipe), Some(input)) = (pipe, input) {
                // The script may exit without reading it all: not an error
                // here; its exit status tells.
                let _ = pipe.write_all(&input).await;
                let _ = pipe.shutdown().await;
            }
        };
        let (_, output) = tokio::join!(feed, child.wait_with_output());
        output
    };
    // On timeout the future, and with it the child, is dropped: kill_on_drop.
    match tokio::time::timeout(limit, session).await {
        Err(_) => Err(timed_out(target, limit)),
        Ok(Err(e)) => Err(DriverError::Transient(format!(
            "ssh to {}: {e}",
            describe(target)
        ))),
        Ok(Ok(out)) => finish(
            target,
            out.status.code(),
            lossy(out.stdout),
            lossy(out.stderr),
        ),
    }
}

/// What the `edit` callback of [`exchange`] answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Write this as the new content.
    Commit(Vec<u8>),
    /// Change nothing, but let the script finish its work.
    Keep,
    /// Change nothing and stop the script.
    Abort,
}

/// A locked read-modify-write in one session. The remote `script` must
/// (typically while holding a lock) print the current content as a line
/// with its length in bytes followed by exactly those bytes, then read one
/// line from stdin: `COMMIT` (the new content follows until EOF), `KEEP` or
/// `ABORT`. `edit` sees the content and answers; its second value comes
/// back as `Some` once it ran. It ran does not mean it was written: check
/// [`Output::status`] (and whatever the script prints afterwards, which is
/// in [`Output::stdout`]). `None`: the script ended before sending the
/// content.
pub async fn exchange<T>(
    target: &SshTarget,
    script: &str,
    edit: impl FnOnce(&[u8]) -> (Reply, T),
) -> Result<(Option<T>, Output), DriverError> {
    exchange_with_timeout(target, script, TIMEOUT, edit).await
}

/// [`exchange`] with another time limit.
pub async fn exchange_with_timeout<T>(
    target: &SshTarget,
    script: &str,
    limit: Duration,
    edit: impl FnOnce(&[u8]) -> (Reply, T),
) -> Result<(Option<T>, Output), DriverError> {
    let mut cmd = command(target, script, Login::Shared)?;
    cmd.stdin(Stdio::piped());
    let mut child = cmd.spawn().map_err(spawn_error)?;
    let mut pipe = child.stdin.take();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let session = async move {
        let errors = async move {
            let mut buf = Vec::new();
            if let Some(mut stderr) = stderr {
                let _ = stderr.read_to_end(&mut buf).await;
            }
            buf
        };
        let talk = async move {
            let mut seen = Vec::new();
            let mut result = None;
            let Some(stdout) = stdout else {
                return (result, seen);
            };
            let mut reader = BufReader::new(stdout);
            let mut first = String::new();
            let _ = reader.read_line(&mut first).await;
            match first.trim().parse::<usize>() {
                Ok(len) => {
                    let mut content = vec![0; len];
                    if reader.read_exact(&mut content).await.is_ok() {
                        let (reply, value) = edit(&content);
                        result = Some(value);
                        let message = match reply {
                            Reply::Commit(new) => [b"COMMIT\n".as_slice(), &new].concat(),
                            Reply::Keep => b"KEEP\n".to_vec(),
                            Reply::Abort => b"ABORT\n".to_vec(),
                        };
                        if let Some(mut pipe) = pipe.take() {
                            let _ = pipe.write_all(&message).await;
                            let _ = pipe.shutdown().await;
                        }
                    }
                }
                Err(_) => seen.extend_from_slice(first.as_bytes()),
            }
            // EOF for a script still waiting for an answer.
            drop(pipe);
            let _ = reader.read_to_end(&mut seen).await;
            (result, seen)
        };
        let ((result, stdout), stderr) = tokio::join!(talk, errors);
        let status = child.wait().await;
        (result, stdout, stderr, status)
    };
    match tokio::time::timeout(limit, session).await {
        Err(_) => Err(timed_out(target, limit)),
        Ok((_, _, _, Err(e))) => Err(DriverError::Transient(format!(
            "ssh to {}: {e}",
            describe(target)
        ))),
        Ok((result, stdout, stderr, Ok(status))) => {
            let out = finish(target, status.code(), lossy(stdout), lossy(stderr))?;
            Ok((result, out))
        }
    }
}

/// The `ssh` command for `script`, with stdout and stderr piped.
fn command(target: &SshTarget, script: &str, login: Login) -> Result<Command, DriverError> {
    check_target(target)?;
    if script.len() > MAX_SCRIPT_LEN {
        return Err(DriverError::Permanent(format!(
            "remote script of {} bytes is over the {MAX_SCRIPT_LEN}-byte limit",
            script.len()
        )));
    }
    let mut cmd = Command::new("ssh");
    cmd.arg("-F")
        .arg("/dev/null") // no user or system client configuration
        .arg("-T")
        .arg("-i")
        .arg(&target.key_path)
        .arg("-p")
        .arg(target.port.to_string())
        .arg("-l")
        .arg(&target.user);
    let mut known_hosts = std::ffi::OsString::from("UserKnownHostsFile=");
    known_hosts.push(&target.known_hosts);
    cmd.arg("-o").arg(known_hosts);
    for option in [
        "BatchMode=yes",
        "StrictHostKeyChecking=yes",
        "IdentitiesOnly=yes",
        "ConnectTimeout=5",
        "ServerAliveInterval=10",
    ] {
        cmd.arg("-o").arg(option);
    }
    let sharing = match login {
        Login::Shared => shared::options(target),
        Login::Own => shared::OWN_LOGIN.iter().map(Into::into).collect(),
    };
    for option in sharing {
        cmd.arg("-o").arg(option);
    }
    cmd.arg("--")
        .arg(&target.host)
        .arg(format!("sh -c {}", sh_quote(script)))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    Ok(cmd)
}

/// Refuses values ssh would read as options or expand (`%` tokens), and
/// paths its option parser would split.
fn check_target(target: &SshTarget) -> Result<(), DriverError> {
    let word = |s: &str, extra: &[char]| {
        !s.is_empty()
            && !s.starts_with('-')
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c) || extra.contains(&c))
    };
    if !word(&target.host, &[':']) {
        return Err(DriverError::Permanent(format!(
            "invalid SSH host {:?}",
            target.host
        )));
    }
    if !word(&target.user, &[]) {
        return Err(DriverError::Permanent(format!(
            "invalid SSH user {:?}",
            target.user
        )));
    }
    if target.port == 0 {
        return Err(DriverError::Permanent("SSH port 0".into()));
    }
    for path in [&target.key_path, &target.known_hosts] {
        if !plain_path(path) {
            return Err(DriverError::Permanent(format!(
                "SSH file path {} must be absolute, without spaces, quotes or %",
                path.display()
            )));
        }
    }
    Ok(())
}

fn plain_path(path: &Path) -> bool {
    path.is_absolute()
        && path.to_str().is_some_and(|s| {
            !s.chars()
                .any(|c| c.is_whitespace() || c.is_control() || "\"'%\\".contains(c))
        })
}

/// Turns an ended `ssh` into an [`Output`] or the error ssh reported.
fn finish(
    target: &SshTarget,
    code: Option<i32>,
    stdout: String,
    stderr: String,
) -> Result<Output, DriverError> {
    match code {
        Some(255) | None => Err(ssh_failure(target, code, &stderr)),
        Some(status) => Ok(Output {
            status,
            stdout,
            stderr,
        }),
    }
}

/// Classifies a failure of ssh itself from what it printed.
fn ssh_failure(target: &SshTarget, code: Option<i32>, stderr: &str) -> DriverError {
    let message = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('@') && !l.starts_with("Warning:"))
        .collect::<Vec<_>>()
        .join(" / ");
    let message = match (message.is_empty(), code) {
        (false, _) => message,
        (true, Some(c)) => format!("ssh exited {c}"),
        (true, None) => "ssh was killed by a signal".to_owned(),
    };
    let text = format!("ssh to {}: {message}", describe(target));
    let permanent = [
        "Permission denied",
        "Host key verification failed",
        "REMOTE HOST IDENTIFICATION HAS CHANGED",
        "Too many authentication failures",
        "Bad configuration option",
    ];
    if permanent.iter().any(|p| stderr.contains(p)) {
        DriverError::Permanent(text)
    } else {
        DriverError::Transient(text)
    }
}

fn spawn_error(e: std::io::Error) -> DriverError {
    DriverError::Permanent(format!("cannot start the ssh client: {e}"))
}

fn timed_out(target: &SshTarget, limit: Duration) -> DriverError {
    DriverError::Transient(format!(
        "ssh to {}: no answer within {} s (killed)",
        describe(target),
        limit.as_secs()
    ))
}

fn describe(target: &SshTarget) -> String {
    format!("{}@{}:{}", target.user, target.host, target.port)
}

fn lossy(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> SshTarget {
        SshTarget {
            host: "127.0.0.1".into(),
            port: 2222,
            user: "mpanel-web".into(),
            key_path: "/keys/id".into(),
            known_hosts: "/keys/known_hosts".into(),
        }
    }

    #[test]
    fn quoted_words_come_back_unchanged_through_sh() {
        let words = [
            "",
            "plain",
            "it's",
            "a b\nc",
            "$(id) `id` \"x\" \\ ; & |",
            "'''",
        ];
        for word in words {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf %s {}", sh_quote(word)))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8(out.stdout).unwrap(), word);
        }
        assert_eq!(sh_quote("it's"), "'it'\\''s'");
    }

    #[test]
    fn targets_that_ssh_would_misread_are_refused() {
        assert!(check_target(&target()).is_ok());
        for host in ["-oProxyCommand=x", "", "a b", "h;x"] {
            let t = SshTarget {
                host: host.into(),
                ..target()
            };
            assert!(matches!(check_target(&t), Err(DriverError::Permanent(_))));
        }
        let t = SshTarget {
            key_path: "/keys/%u".into(),
            ..target()
        };
        assert!(check_target(&t).is_err());
        let t = SshTarget {
            user: "-l".into(),
            ..target()
        };
        assert!(check_target(&t).is_err());
    }

    #[test]
    fn ssh_failures_are_classified() {
        let t = target();
        let denied = "u@h: Permission denied (publickey).\n";
        assert!(!ssh_failure(&t, Some(255), denied).is_transient());
        let changed = "@@@\n@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @\nHost key verification failed.\n";
        assert!(!ssh_failure(&t, Some(255), changed).is_transient());
        let refused = "ssh: connect to host 127.0.0.1 port 1: Connection refused\n";
        assert!(ssh_failure(&t, Some(255), refused).is_transient());
        assert!(ssh_failure(&t, None, "").is_transient());
        let out = finish(&t, Some(3), "o".into(), "e".into()).unwrap();
        assert_eq!(out.status, 3);
    }
}
