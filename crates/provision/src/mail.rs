//! Mailboxes on a mail node: Dovecot with a passwd-file, managed over SSH
//! as the user that owns the passwd-file and the maildirs.
//!
//! Every change is a locked read-modify-write in one SSH session
//! ([`ssh::exchange`]): the remote script takes `flock` on
//! `<passwd_file>.lock`, sends the file, and the line is changed here in
//! Rust; the whole new file goes to a temporary file in the same folder
//! (mode 0640, so Dovecot's auth process can read it through the folder's
//! group), and is renamed over the old one. Two jobs editing the file at
//! once therefore never lose an edit.
//!
//! Dovecot re-reads a passwd-file by itself when a lookup finds its mtime
//! (in seconds) or size changed, at most once a second. A same-size edit
//! in the same second (a new password: Argon2 hashes are all one length)
//! would go unseen, so each new version gets an mtime past the previous
//! one's when the clock has not moved on: every version differs from every
//! earlier one, and a change is seen within a second without a reload.
//! A node may still name a `reload_cmd` (run after each change: for an
//! auth cache, which hides changes until its TTL, or where even a second
//! is too long). A change marks a reload pending
//! (`<passwd_file>.reload-pending`) before it lets the file's lock go;
//! the reload runs after, under a lock of its own, and only if a mark is
//! there: it takes the mark aside as it starts, so changes made at once
//! share one reload (Dovecot restarts its processes on each) and a change
//! made during a reload gets the next. The mark taken aside goes only when
//! the reload succeeded, so the next change (or its job's retry) makes a
//! reload that failed or was cut off.
//!
//! A suspended mailbox (`nologin reason=suspended`) stays suspended through
//! `ensure_mailbox` and `set_password`: only `unsuspend` lifts it.

mod passwd;

use std::time::{Duration, Instant};

pub use passwd::{MailboxInfo, hash_password};

use crate::ssh::{self, Output, Reply, SshTarget, sh_quote};
use crate::{DriverError, Ensured};
use passwd::Layout;

/// A mail node and where things live on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailNode {
    pub ssh: SshTarget,
    /// Dovecot's passdb/userdb passwd-file.
    pub passwd_file: String,
    /// Mailbox homes are `<root_dir>/<domain>/<local part>`.
    pub root_dir: String,
    /// The owner of the maildirs, written into every line.
    pub uid: u32,
    pub gid: u32,
    /// A shell command run after each change, e.g. `sudo -n /usr/bin/doveadm
    /// -c CONF reload` (the change is seen at once instead of within a
    /// second) or `… auth cache flush`; empty: none. Trusted configuration:
    /// it runs as written.
    pub reload_cmd: String,
}

/// Exit codes of the edit script with a meaning; any other non-zero one
/// is an unexpected failure, reported as transient.
mod code {
    /// The reload failed (the file was changed; the next edit reloads).
    pub const RELOAD_FAILED: i32 = 4;
    /// The lock stayed taken.
    pub const LOCKED: i32 = 5;
}

/// What a change does after the passwd-file is settled.
enum After {
    Nothing,
    RemoveHome,
}

impl MailNode {
    /// Runs `true` over SSH: how long a round trip takes.
    pub async fn ping(&self) -> Result<Duration, DriverError> {
        let start = Instant::now();
        let out = ssh::run(&self.ssh, "true", None).await?;
        if !out.success() {
            return Err(unexpected("ping", &out));
        }
        Ok(start.elapsed())
    }

    /// Makes the mailbox exist with this password hash (see
    /// [`hash_password`]; a bare Argon2 PHC string is accepted too) and
    /// quota (0: none), and its `Maildir/{cur,new,tmp}` (mode 0700).
    /// `AlreadyThere` when its line already says exactly that; a suspended
    /// mailbox stays suspended.
    pub async fn ensure_mailbox(
        &self,
        address: &str,
        password_hash: &str,
        quota_mb: u32,
    ) -> Result<Ensured, DriverError> {
        let addr = passwd::parse_address(address)?;
        let hash = passwd::normalise_hash(password_hash)?;
        let layout = self.layout()?;
        let home = layout.home(&addr);
        let prelude = format!(
            "home={home}\n( umask 077 && mkdir -p \"$home/Maildir/cur\" \"$home/Maildir/new\" \"$home/Maildir/tmp\" ) || exit 1\n",
            home = sh_quote(&home)
        );
        self.edit(address, &prelude, After::Nothing, |content| {
            let suspended = passwd::find(content, address)
                .and_then(passwd::parse_line)
                .is_some_and(|e| e.suspended);
            let line = layout.line(&addr, &hash, quota_mb, suspended);
            Ok(passwd::replace(content, address, Some(&line)))
        })
        .await
    }

    /// Gives an existing mailbox a new password hash.
    pub async fn set_password(
        &self,
        address: &str,
        password_hash: &str,
    ) -> Result<Ensured, DriverError> {
        let hash = passwd::normalise_hash(password_hash)?;
        self.change(address, "set the password of", |e| {
            (hash, e.quota_mb, e.suspended)
        })
        .await
    }

    /// Makes the correct password fail (`nologin reason=suspended`); the
    /// mail stays.
    pub async fn suspend(&self, address: &str) -> Result<Ensured, DriverError> {
        self.change(address, "suspend", |e| (e.hash, e.quota_mb, true))
            .await
    }

    /// Lets the mailbox log in again.
    pub async fn unsuspend(&self, address: &str) -> Result<Ensured, DriverError> {
        self.change(address, "unsuspend", |e| (e.hash, e.quota_mb, false))
            .await
    }

    /// Removes the mailbox's line and then its home with all its mail. An
    /// absent mailbox is `Ok(AlreadyThere)` (its home is removed all the
    /// same, so a retry finishes an interrupted delete).
    pub async fn delete(&self, address: &str) -> Result<Ensured, DriverError> {
        let addr = passwd::parse_address(address)?;
        let home = self.layout()?.home(&addr);
        let prelude = format!("home={}\n", sh_quote(&home));
        self.edit(address, &prelude, After::RemoveHome, |content| {
            Ok(passwd::replace(content, address, None))
        })
        .await
    }

    /// The mailboxes of `domain`, in the order of the passwd-file.
    pub async fn mailboxes(&self, domain: &str) -> Result<Vec<MailboxInfo>, DriverError> {
        crate::web::validate_domain(domain)?;
        let script = format!(
            "f={}\nif [ -f \"$f\" ]; then cat \"$f\"; fi\n",
            sh_quote(&self.passwd_file)
        );
        let out = ssh::run(&self.ssh, &script, None).await?;
        if !out.success() {
            return Err(unexpected("reading the passwd-file", &out));
        }
        Ok(passwd::mailboxes_of(&out.stdout, domain))
    }

    fn layout(&self) -> Result<Layout<'_>, DriverError> {
        let root = self.root_dir.trim_end_matches('/');
        if root.is_empty() || crate::web::clean_dir("root_dir", root).is_err() {
            return Err(DriverError::Permanent(format!(
                "mail root_dir {:?} must be an absolute path of letters, digits and /._-",
                self.root_dir
            )));
        }
        Ok(Layout {
            root_dir: root,
            uid: self.uid,
            gid: self.gid,
        })
    }

    /// Rewrites the line of an existing mailbox from what `new` makes of
    /// its entry (hash, quota, suspended).
    async fn change(
        &self,
        address: &str,
        action: &str,
        new: impl FnOnce(passwd::Entry) -> (String, u32, bool),
    ) -> Result<Ensured, DriverError> {
        let addr = passwd::parse_address(address)?;
        let layout = self.layout()?;
        self.edit(address, "", After::Nothing, |content| {
            let entry = passwd::find(content, address)
                .and_then(passwd::parse_line)
                .ok_or_else(|| {
                    DriverError::Permanent(format!("cannot {action} {address}: no such mailbox"))
                })?;
            let (hash, quota_mb, suspended) = new(entry);
            let line = layout.line(&addr, &hash, quota_mb, suspended);
            Ok(passwd::replace(content, address, Some(&line)))
        })
        .await
    }

    /// One locked read-modify-write of the passwd-file: `prelude` runs
    /// before the lock is taken, `modify` turns the content into the new
    /// content (`None`: unchanged), `after` runs once the file is settled
    /// and Dovecot reloaded.
    async fn edit(
        &self,
        address: &str,
        prelude: &str,
        after: After,
        modify: impl FnOnce(&str) -> Result<Option<String>, DriverError>,
    ) -> Result<Ensured, DriverError> {
        let after = match after {
            After::Nothing => "",
            After::RemoveHome => "rm -rf \"$home\" || exit 1\n",
        };
        let reloads = !self.reload_cmd.trim().is_empty();
        let script = format!(
            "set -u\numask 027\nf={file}\nlock=\"$f.lock\"\npending=\"$f.reload-pending\"\n\
             {prelude}\
             command exec 9>>\"$lock\" || exit {locked}\n\
             flock -w 20 9 || {{ echo \"the passwd-file's lock stayed taken\" >&2; exit {locked}; }}\n\
             if [ -f \"$f\" ]; then n=$(wc -c <\"$f\") || exit 1; printf '%s\\n' \"$n\"; cat \"$f\" || exit 1; else echo 0; fi\n\
             IFS= read -r answer || answer=ABORT\n\
             case \"$answer\" in\n\
             COMMIT)\n  \
               t=$(mktemp \"$(dirname \"$f\")/.passwd.XXXXXX\") || exit 1\n  \
               if ! cat >\"$t\"; then rm -f \"$t\"; exit 1; fi\n  \
               if [ -f \"$f\" ]; then old=$(stat -c %Y \"$f\") && new=$(stat -c %Y \"$t\") && if [ \"$new\" -le \"$old\" ]; then touch -d \"@$((old + 1))\" \"$t\"; fi || {{ rm -f \"$t\"; exit 1; }}; fi\n  \
               chmod 0640 \"$t\" && {mark}mv -f \"$t\" \"$f\"{mark_again} || {{ rm -f \"$t\"; exit 1; }}\n  \
               echo COMMITTED ;;\n\
             KEEP) ;;\n\
             *) exit 0 ;;\n\
             esac\n\
             exec 9>&-\n\
             {reload}\
             {after}",
            file = sh_quote(&self.passwd_file),
            mark = if reloads { ": >\"$pending\" && " } else { "" },
            mark_again = if reloads { " && : >\"$pending\"" } else { "" },
            reload = if reloads {
                self.reload_lines()
            } else {
                String::new()
            },
            locked = code::LOCKED,
        );
        let (decided, out) = ssh::exchange(&self.ssh, &script, |bytes| {
            let decision = std::str::from_utf8(bytes)
                .map_err(|_| {
                    DriverError::Permanent("the passwd-file is not UTF-8: not touching it".into())
                })
                .and_then(modify);
            match decision {
                Ok(Some(new)) => (Reply::Commit(new.into_bytes()), Ok(true)),
                Ok(None) => (Reply::Keep, Ok(false)),
                Err(e) => (Reply::Abort, Err(e)),
            }
        })
        .await?;
        let what = format!("updating the passwd-file for {address}");
        check(&out, &what)?;
        let changed = decided.ok_or_else(|| {
            DriverError::Transient(format!("{what}: the mail node did not send the file"))
        })??;
        if changed && !out.stdout.lines().any(|l| l == "COMMITTED") {
            return Err(DriverError::Transient(format!(
                "{what}: the new file was not confirmed"
            )));
        }
        Ok(if changed {
            Ensured::Created
        } else {
            Ensured::AlreadyThere
        })
    }
}

impl MailNode {
    /// The end of an edit when the node has a `reload_cmd`: under the
    /// reload's own lock, a pending mark (made before and after the file
    /// was replaced) is taken aside and Dovecot reloaded; the mark taken
    /// aside goes only once the reload succeeded, so a failed or cut-off
    /// reload is made by the next edit. An edit finds no mark only after
    /// every reload that covers its file has finished.
    fn reload_lines(&self) -> String {
        format!(
            "reload() {{\n{reload}\n}}\n\
             taken=\"$pending.taken\"\n\
             command exec 8>>\"$f.reload-lock\" || exit {locked}\n\
             flock -w 8 8 || {{ echo \"the reload's lock stayed taken\" >&2; exit {locked}; }}\n\
             if [ -e \"$pending\" ] || [ -e \"$taken\" ]; then\n  \
               mv -f \"$pending\" \"$taken\" 2>/dev/null\n  \
               if ! err=$(reload 2>&1 </dev/null 8>&-); then printf '%s\\n' \"$err\" >&2; exit {reload_failed}; fi\n  \
               rm -f \"$taken\"\n\
             fi\n\
             exec 8>&-\n",
            reload = self.reload_cmd,
            locked = code::LOCKED,
            reload_failed = code::RELOAD_FAILED,
        )
    }
}

/// Maps the edit script's exit code to the driver's errors.
fn check(out: &Output, what: &str) -> Result<(), DriverError> {
    match out.status {
        0 => Ok(()),
        code::RELOAD_FAILED => Err(DriverError::Transient(format!(
            "{what}: the file was changed but reloading Dovecot failed (retried by the next change): {}",
            out.error_text()
        ))),
        code::LOCKED => Err(DriverError::Transient(format!(
            "{what}: {}",
            out.error_text()
        ))),
        _ => Err(unexpected(what, out)),
    }
}

fn unexpected(what: &str, out: &Output) -> DriverError {
    DriverError::Transient(format!(
        "{what} failed on the mail node: {}",
        out.error_text()
    ))
}
