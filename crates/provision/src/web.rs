//! Websites on a web node: one hosting account = one Unix user with its
//! own home, PHP-FPM pool and chrooted SFTP, behind an nginx vhost; managed
//! over SSH as the user that owns nginx's configuration.
//!
//! Layout on the node: the vhost `<sites_dir>/<domain>.conf` (nginx
//! includes `*.conf` from there); the account's home `<root_dir>/<user>`
//! (root-owned: it is the SFTP chroot) holding `web/` (0750, the user and
//! nginx's group; the document root is `web/public`) and `tmp/` (0700, PHP's
//! uploads and sessions); its PHP-FPM socket `<php_socket_dir>/<user>.sock`.
//! What needs root (the user, the folders, the pool, the SFTP password and
//! keys, archives) is done by the node helper `scripts/node/mpanel-web-helper`,
//! run through one sudo rule (`helper` setting); nothing else runs as root.
//!
//! Every change of a vhost is written to a temporary file beside it
//! (`<domain>.conf.new.XXXXXX`, which nginx's `*.conf` does not include)
//! and then, under one lock per node (`<sites_dir>/.mpanel.lock`), moved
//! over, tested with `nginx -t` (on failure the previous file comes back,
//! so a broken vhost never stays). The lock keeps a broken vhost of one
//! job from failing another job's `nginx -t`, or from being read by a
//! reload. nginx is then reloaded under a lock of its own, once for the
//! changes made meanwhile, and a change is reported done only once nginx
//! serves it (see `nginx_reload.rs`).
//!
//! A site's state (active or suspended, PHP, its account user, HTTPS) is
//! read back from the header line of its vhost, so `suspend`/`unsuspend`
//! need only the domain, and `ensure_site` keeps a suspended site
//! suspended and an HTTPS site on HTTPS.
//!
//! Certificates (see [`tls`]) live in `<sites_dir>/tls/<domain>/` (0700,
//! readable by nginx's master only; keys are made there and never leave
//! the node), ACME HTTP-01 answers in `<sites_dir>/acme-challenge/`.

mod disk;
mod nginx_reload;
mod render;
mod tls;

use self::nginx_reload::nginx_reload_lines;

use std::time::{Duration, Instant};

pub use disk::Usage;
pub(crate) use render::clean_dir;
pub use render::{
    Https, Layout, account_user, render_site, render_vhost, validate_domain, validate_user,
};
pub use tls::KeySource;

use crate::ssh::{self, Output, SshTarget, sh_quote};
use crate::{DriverError, Ensured};

/// A web node and where things live on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebNode {
    pub ssh: SshTarget,
    /// nginx's main configuration file (`-c`).
    pub nginx_conf: String,
    /// The folder nginx includes `*.conf` from.
    pub sites_dir: String,
    /// Account homes (`<root_dir>/<user>`); the helper's `HOME_BASE`.
    pub root_dir: String,
    /// What vhosts `listen` on: `80` in production, `127.0.0.1:PORT` in
    /// tests.
    pub listen: String,
    /// The nginx binary, by full path (`/usr/sbin/nginx`: SSH sessions'
    /// PATH has no `/usr/sbin`).
    pub nginx_bin: String,
    /// The command that runs the node helper as root, e.g.
    /// `sudo -n /usr/local/sbin/mpanel-web-helper`.
    pub helper: String,
    /// Where PHP-FPM's account sockets are (the helper's `SOCKET_DIR`).
    pub php_socket_dir: String,
    /// What HTTPS vhosts listen on: `443` in production,
    /// `127.0.0.1:PORT` in tests.
    pub tls_listen: String,
}

/// A website as ordered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteSpec {
    pub domain: String,
    /// The account's Unix user ([`account_user`] of the hosting account).
    pub user: String,
    /// Runs `.php` in the account's own PHP-FPM pool.
    pub php: bool,
    /// The PHP version the plan names (recorded in the vhost; the node's
    /// one PHP-FPM serves it).
    pub php_version: Option<String>,
    /// Recorded by the caller; not enforced on the node (it needs
    /// filesystem quotas); [`WebNode::disk_usage`] measures use.
    pub disk_quota_mb: Option<u32>,
}

/// What the node serves for a site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SiteState {
    Active,
    Suspended,
}

/// A crypt(3) hash the node's shadow file takes: `$6$`, `$5$` or `$y$`,
/// then salt and hash of `./0-9A-Za-z` (and `$`, `=`, `,` of yescrypt's
/// parameters).
pub fn validate_crypt_hash(hash: &str) -> Result<(), DriverError> {
    let body = ["$6$", "$5$", "$y$"]
        .iter()
        .find_map(|p| hash.strip_prefix(p));
    let ok = body.is_some_and(|b| {
        b.len() >= 8
            && b.len() <= 200
            && b.bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"./$=,-".contains(&c))
    });
    if ok {
        Ok(())
    } else {
        Err(DriverError::Permanent(
            "an SFTP password must be a crypt(3) hash ($6$, $5$ or $y$)".into(),
        ))
    }
}

/// One OpenSSH public key line without options: type, base64, optional
/// plain comment.
pub fn validate_public_key(key: &str) -> Result<(), DriverError> {
    let ok = mpanel_domain::provisioning::ssh_key::is_public_key_line(key.trim());
    if ok {
        Ok(())
    } else {
        Err(DriverError::Permanent(
            "an SFTP key must be one OpenSSH public key line (type, key, optional comment)".into(),
        ))
    }
}

/// A remote script's exit codes with a meaning (any other non-zero one is
/// an unexpected failure, reported as transient).
mod code {
    /// `nginx -t` refused the configuration (the change was undone).
    pub const REJECTED: i32 = 3;
    /// nginx did not reload (a lock stayed taken, the signal was refused,
    /// nginx did not take the configuration or its old workers still
    /// served after 15 s); the change stays (a certificate's is undone),
    /// and the next script's reload loads it.
    pub const RELOAD_FAILED: i32 = 4;
    /// The node's lock stayed taken.
    pub const LOCKED: i32 = 5;
    /// The vhost changed between reading and writing it.
    pub const CHANGED: i32 = 6;
    /// The helper refused its arguments.
    pub const HELPER_BAD_ARGS: i32 = 2;
    /// The helper found a user of that name that is not an account.
    pub const HELPER_NOT_OURS: i32 = 7;
    /// PHP-FPM refused the configuration (the helper undid the change).
    pub const HELPER_FPM_REFUSED: i32 = 8;
    /// In a script that runs the helper and then more, the helper's
    /// failure `N` is this plus `N`.
    pub const HELPER_BASE: i32 = 100;
}

/// A whole `ensure_site` session: the helper (its locks wait up to 27 s,
/// PHP-FPM's reload and socket up to 10 s each), then the vhost under the
/// node's lock (up to 20 s) and [`VHOST_TIMEOUT`]'s reload.
const ENSURE_TIMEOUT: Duration = Duration::from_secs(180);

/// A script that changes a vhost and reloads nginx: the node's lock (up
/// to 20 s), then the reload's lock (15 s), the node's lock again (20 s),
/// two rounds of signal and read (15 s each) and the old workers' going
/// (15 s) at the very worst, and `nginx -t`.
pub(super) const VHOST_TIMEOUT: Duration = Duration::from_secs(120);

/// What the vhost file holds before a change.
struct Current {
    /// Its first line, or `ABSENT` (what the install script compares).
    first_line: String,
    header: Option<render::Header>,
}

impl WebNode {
    /// Runs `true` over SSH: how long a round trip takes.
    pub async fn ping(&self) -> Result<Duration, DriverError> {
        let start = Instant::now();
        let out = ssh::run(&self.ssh, "true", None).await?;
        if !out.success() {
            return Err(unexpected("ping", &out));
        }
        Ok(start.elapsed())
    }

    /// Makes the site exist as `spec` says: the account's user, home,
    /// document root with a default `index.html` (only if there is no
    /// index), its PHP pool, then the vhost. A suspended site stays
    /// suspended (with the new settings). `Created` when anything was
    /// written.
    ///
    /// One SSH session does it all: the node sends the vhost's first line,
    /// the new vhost is rendered here from it (a suspended site stays
    /// suspended) and sent back, then the node runs the helper and installs
    /// the vhost (three sessions before: a node's work per site is mostly
    /// starting them).
    pub async fn ensure_site(&self, spec: &SiteSpec) -> Result<Ensured, DriverError> {
        let domain = spec.domain.as_str();
        render_vhost(spec, self.layout(), false)?;
        self.check_helper()?;
        let script = self.ensure_script(spec);
        let answer = |first: &[u8]| match self.ensure_answer(spec, first) {
            Ok(payload) => (ssh::Reply::Commit(payload), Ok(())),
            Err(e) => (ssh::Reply::Abort, Err(e)),
        };
        let (rendered, out) =
            ssh::exchange_with_timeout(&self.ssh, &script, ENSURE_TIMEOUT, answer).await?;
        let what = format!("making the site {domain}");
        rendered.ok_or_else(|| {
            DriverError::Transient(format!("{what}: the web node did not send the vhost"))
        })??;
        if out.status > code::HELPER_BASE {
            return Err(helper_error(out.status - code::HELPER_BASE, &what, &out));
        }
        check(&out, &what)?;
        let written = out
            .stdout
            .lines()
            .any(|l| l == "CHANGED" || l == "ACCOUNT_CHANGED");
        Ok(if written {
            Ensured::Created
        } else {
            Ensured::AlreadyThere
        })
    }

    /// The node's side of [`Self::ensure_site`]: send the vhost's first
    /// line, read the answer (PHP or not, the state, the vhost's length and
    /// the vhost), run the helper, install the vhost.
    fn ensure_script(&self, spec: &SiteSpec) -> String {
        let domain = spec.domain.as_str();
        format!(
            "set -u\numask 022\nLC_ALL=C\nexport LC_ALL\n{vars}\
             if [ -f \"$conf\" ]; then expect=$(head -n 1 \"$conf\"); else expect=ABSENT; fi\n\
             printf '%s\\n%s' \"${{#expect}}\" \"$expect\"\n\
             IFS= read -r answer || answer=ABORT\n\
             [ \"$answer\" = COMMIT ] || exit 0\n\
             IFS= read -r php && IFS= read -r state && IFS= read -r size || exit 1\n\
             new=$(mktemp \"$conf.new.XXXXXX\") || exit 1\n\
             trap 'rm -f \"$new\"' EXIT\n\
             trap 'rm -f \"$new\"; exit 1' HUP PIPE TERM\n\
             cat >\"$new\" || exit 1\n\
             [ \"$(wc -c <\"$new\")\" -eq \"$size\" ] || {{ echo \"the vhost arrived cut short\" >&2; exit 1; }}\n\
             account=$({helper} ensure {user} \"$domain\" \"$php\" \"$state\" </dev/null)\n\
             rc=$?\n\
             [ \"$rc\" -lt 100 ] || rc=99\n\
             [ \"$rc\" = 0 ] || exit $(({helper_base} + rc))\n\
             case \"$account\" in *CHANGED*) echo ACCOUNT_CHANGED ;; esac\n\
             {install}",
            vars = self.vars(domain),
            helper = self.helper,
            user = sh_quote(&spec.user),
            helper_base = code::HELPER_BASE,
            install = install_lines(),
        )
    }

    /// mPanel's side of [`Self::ensure_site`]: from the vhost's first line,
    /// the answer the node's script reads (the owner checked, a suspended
    /// site kept suspended).
    fn ensure_answer(&self, spec: &SiteSpec, first: &[u8]) -> Result<Vec<u8>, DriverError> {
        let domain = spec.domain.as_str();
        let first_line = String::from_utf8_lossy(first).into_owned();
        let header = render::parse_header(&first_line);
        let current = Current { first_line, header };
        self.check_owner(&current, domain, &spec.user)?;
        let suspended = current.header.as_ref().is_some_and(|h| h.suspended);
        let https = current.header.as_ref().and_then(|h| h.https);
        let vhost = render_site(spec, self.layout(), suspended, https)?;
        let php = if spec.php { "php" } else { "nophp" };
        let state = if suspended { "suspended" } else { "active" };
        Ok(format!("{php}\n{state}\n{}\n{vhost}", vhost.len()).into_bytes())
    }

    /// Makes the site answer 503 with a "suspended" page; its files stay.
    /// A site that does not exist is a permanent error.
    pub async fn suspend(&self, domain: &str) -> Result<Ensured, DriverError> {
        self.set_suspended(domain, true).await
    }

    /// Serves the site again.
    pub async fn unsuspend(&self, domain: &str) -> Result<Ensured, DriverError> {
        self.set_suspended(domain, false).await
    }

    /// Removes the vhost (and reloads nginx), then the account: its PHP
    /// pool and socket, SFTP keys, Unix user and home; the files of `web/`
    /// are archived first to the helper's `ARCHIVE_DIR` (mode 0600, outside
    /// every web root). Returns the archive's path; `None` when there were
    /// no files (a missing site is not an error). Safe to repeat after a
    /// failure: it goes on from where it stopped.
    pub async fn terminate(&self, domain: &str, user: &str) -> Result<Option<String>, DriverError> {
        validate_domain(domain)?;
        validate_user(user)?;
        self.check_helper()?;
        let current = self.current(domain).await?;
        self.check_owner(&current, domain, user)?;
        let script = format!(
            "set -u\numask 022\n{vars}{lock}\
             if [ -f \"$conf\" ]; then\n  \
               : >\"$pending\" || exit 1\n  \
               mv -f \"$conf\" \"$conf.old\" || exit 1\n  \
               if ! err=$(\"$nginx\" -q -t -c \"$nconf\" 2>&1); then\n    \
                 mv -f \"$conf.old\" \"$conf\"; printf '%s\\n' \"$err\" >&2; exit {rejected}\n  \
               fi\n\
             fi\n\
             rm -f \"$conf.old\" \"$conf.new\" \"$conf\".new.*\n\
             rm -rf \"$tls/$domain\"\n\
             {reload}",
            vars = self.vars(domain),
            lock = lock_lines() + nginx_reload_lines(),
            rejected = code::REJECTED,
            reload = unlock_and_reload_lines(),
        );
        let out = ssh::run_with_timeout(&self.ssh, &script, None, VHOST_TIMEOUT).await?;
        check(&out, &format!("terminating {domain}"))?;
        let out = self
            .helper(&["remove", user, domain], None, &format!("removing {user}"))
            .await?;
        Ok(out
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("ARCHIVE "))
            .map(str::to_owned))
    }

    /// Sets the SFTP password of the account from a crypt(3) hash
    /// (`$6$…` SHA-512, `$5$…`, `$y$…` yescrypt), never the password. A
    /// suspended account stays locked with the new password.
    pub async fn set_sftp_password(&self, user: &str, hash: &str) -> Result<(), DriverError> {
        validate_user(user)?;
        validate_crypt_hash(hash)?;
        self.check_helper()?;
        self.helper(
            &["password", user, hash],
            None,
            &format!("setting the SFTP password of {user}"),
        )
        .await?;
        Ok(())
    }

    /// Replaces the SFTP public keys of the account (none: empty).
    pub async fn set_sftp_keys(&self, user: &str, keys: &[String]) -> Result<(), DriverError> {
        validate_user(user)?;
        for key in keys {
            validate_public_key(key)?;
        }
        self.check_helper()?;
        let text: String = keys.iter().map(|k| format!("{}\n", k.trim())).collect();
        self.helper(
            &["keys", user],
            Some(text.as_bytes()),
            &format!("setting the SFTP keys of {user}"),
        )
        .await?;
        Ok(())
    }

    /// Whether the node serves the site, and how; `None` without a vhost.
    pub async fn site_state(&self, domain: &str) -> Result<Option<SiteState>, DriverError> {
        validate_domain(domain)?;
        let current = self.current(domain).await?;
        if current.first_line == "ABSENT" {
            return Ok(None);
        }
        Ok(Some(match current.header {
            Some(h) if h.suspended => SiteState::Suspended,
            _ => SiteState::Active,
        }))
    }

    async fn set_suspended(&self, domain: &str, suspended: bool) -> Result<Ensured, DriverError> {
        validate_domain(domain)?;
        self.check_helper()?;
        let current = self.current(domain).await?;
        let action = if suspended { "suspend" } else { "unsuspend" };
        let spec = self.spec_of(&current, domain).map_err(|e| match e {
            DriverError::Permanent(m) => DriverError::Permanent(format!("cannot {action}: {m}")),
            other => other,
        })?;
        let https = current.header.as_ref().and_then(|h| h.https);
        let vhost = render_site(&spec, self.layout(), suspended, https)?;
        // Suspend: the site answers 503 before the pool stops and SFTP is
        // locked; unsuspend: the pool runs before the site is served.
        let mut account = false;
        if !suspended {
            account = self.account(&spec.user, domain, spec.php, false).await?;
        }
        let out = self.install(domain, &vhost, &current).await?;
        if suspended {
            account = self.account(&spec.user, domain, spec.php, true).await?;
        }
        Ok(if account || out.stdout.lines().any(|l| l == "CHANGED") {
            Ensured::Created
        } else {
            Ensured::AlreadyThere
        })
    }

    /// `ensure` through the helper: user, folders, pool and SFTP lock as
    /// asked; whether anything changed.
    async fn account(
        &self,
        user: &str,
        domain: &str,
        php: bool,
        suspended: bool,
    ) -> Result<bool, DriverError> {
        let args = [
            "ensure",
            user,
            domain,
            if php { "php" } else { "nophp" },
            if suspended { "suspended" } else { "active" },
        ];
        let out = self
            .helper(
                &args,
                None,
                &format!("making the account {user} of {domain}"),
            )
            .await?;
        Ok(out.stdout.lines().any(|l| l == "CHANGED"))
    }

    /// Runs the node helper with `args` (each shell-quoted); maps its exit
    /// codes to the driver's errors.
    async fn helper(
        &self,
        args: &[&str],
        stdin: Option<&[u8]>,
        what: &str,
    ) -> Result<Output, DriverError> {
        let mut script = self.helper.clone();
        for arg in args {
            script.push(' ');
            script.push_str(&sh_quote(arg));
        }
        script.push('\n');
        let out = ssh::run(&self.ssh, &script, stdin).await?;
        match out.status {
            0 => Ok(out),
            status => Err(helper_error(status, what, &out)),
        }
    }

    /// The `helper` setting: a command of plain words (it runs unquoted).
    fn check_helper(&self) -> Result<(), DriverError> {
        let ok = !self.helper.trim().is_empty()
            && self
                .helper
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b" /._-".contains(&b));
        if ok {
            Ok(())
        } else {
            Err(DriverError::Permanent(format!(
                "the web node's helper {:?} must be a command of letters, digits, spaces and /._-",
                self.helper
            )))
        }
    }

    /// A vhost already there for `domain` must be this account's.
    fn check_owner(&self, current: &Current, domain: &str, user: &str) -> Result<(), DriverError> {
        match current.header.as_ref().and_then(|h| h.user.as_deref()) {
            Some(owner) if owner != user => Err(DriverError::Permanent(format!(
                "the site {domain} on the web node belongs to the account {owner}, not {user}"
            ))),
            _ => Ok(()),
        }
    }

    fn layout(&self) -> Layout<'_> {
        Layout {
            root_dir: &self.root_dir,
            listen: &self.listen,
            php_socket_dir: &self.php_socket_dir,
            tls_listen: &self.tls_listen,
            sites_dir: &self.sites_dir,
        }
    }

    /// Reads the first line of the site's vhost.
    async fn current(&self, domain: &str) -> Result<Current, DriverError> {
        let script = format!(
            "{vars}if [ -f \"$conf\" ]; then head -n 1 \"$conf\"; echo; else echo ABSENT; fi\n",
            vars = self.vars(domain)
        );
        let out = ssh::run(&self.ssh, &script, None).await?;
        if !out.success() {
            return Err(unexpected(&format!("reading the vhost of {domain}"), &out));
        }
        let first_line = out.stdout.lines().next().unwrap_or_default().to_owned();
        let header = render::parse_header(&first_line);
        Ok(Current { first_line, header })
    }

    /// Writes `vhost` if it differs from the file, under the node's lock,
    /// provided the file still starts with what [`Self::current`] read;
    /// tests the configuration and reloads. Prints `CHANGED` or `SAME`.
    async fn install(
        &self,
        domain: &str,
        vhost: &str,
        current: &Current,
    ) -> Result<Output, DriverError> {
        let script = format!(
            "set -u\numask 022\n{vars}expect={expect}\n\
             new=$(mktemp \"$conf.new.XXXXXX\") || exit 1\n\
             trap 'rm -f \"$new\"' EXIT\n\
             trap 'rm -f \"$new\"; exit 1' HUP PIPE TERM\n\
             printf '%s' {vhost} >\"$new\" || exit 1\n\
             {install}",
            vars = self.vars(domain),
            expect = sh_quote(&current.first_line),
            vhost = sh_quote(vhost),
            install = install_lines(),
        );
        let out = ssh::run_with_timeout(&self.ssh, &script, None, VHOST_TIMEOUT).await?;
        check(&out, &format!("writing the vhost of {domain}"))?;
        Ok(out)
    }

    /// Shell variables every script starts with (the domain is validated).
    fn vars(&self, domain: &str) -> String {
        let sites = self.sites_dir.trim_end_matches('/');
        format!(
            "domain={domain}\nsites={sites}\nconf={conf}\nnginx={nginx}\nnconf={nconf}\n\
             tls={sites}/tls\nchallenges={sites}/acme-challenge\n",
            domain = sh_quote(domain),
            sites = sh_quote(sites),
            conf = sh_quote(&format!("{sites}/{domain}.conf")),
            nginx = sh_quote(&self.nginx_bin),
            nconf = sh_quote(&self.nginx_conf),
        )
    }
}

/// Takes the node's lock on fd 9 (released when the script ends or
/// closes fd 9).
fn lock_lines() -> String {
    format!(
        "command exec 9>>\"$sites/.mpanel.lock\" || exit {locked}\n\
         flock -w 20 9 || {{ echo \"the web node's lock stayed taken\" >&2; exit {locked}; }}\n",
        locked = code::LOCKED
    )
}

/// Installs the vhost in the file `$new` as `$conf`, under the node's
/// lock, provided the file still starts with `$expect` (what was read
/// before); tests the configuration or puts the old file back. Then, with
/// the node's lock let go, makes the pending reload (see
/// `nginx_reload.rs`). Prints `CHANGED` or `SAME` once nginx serves the
/// file.
fn install_lines() -> String {
    format!(
        "{lock}{reload}\
         if [ -f \"$conf\" ]; then cur=$(head -n 1 \"$conf\"); else cur=ABSENT; fi\n\
         if [ \"$cur\" != \"$expect\" ]; then echo \"the vhost of $domain changed meanwhile\" >&2; exit {changed}; fi\n\
         result=SAME\n\
         if [ ! -f \"$conf\" ] || ! cmp -s \"$new\" \"$conf\"; then\n  \
           result=CHANGED\n  \
           chmod 0644 \"$new\" || exit 1\n  \
           old=0\n  \
           if [ -f \"$conf\" ]; then cp -p \"$conf\" \"$conf.old\" || exit 1; old=1; fi\n  \
           : >\"$pending\" || exit 1\n  \
           mv -f \"$new\" \"$conf\" || exit 1\n  \
           undo() {{ if [ \"$old\" = 1 ]; then mv -f \"$conf.old\" \"$conf\"; else rm -f \"$conf\"; fi; }}\n  \
           if ! err=$(\"$nginx\" -t -c \"$nconf\" 2>&1); then undo; printf '%s\\n' \"$err\" >&2; exit {rejected}; fi\n  \
           case \"$err\" in *'conflicting server name'*) undo; printf '%s\\n' \"$err\" >&2; exit {rejected};; esac\n  \
           rm -f \"$conf.old\"\n\
         fi\n\
         {unlock_and_reload}\
         echo \"$result\"\n",
        lock = lock_lines(),
        reload = nginx_reload_lines(),
        changed = code::CHANGED,
        rejected = code::REJECTED,
        unlock_and_reload = unlock_and_reload_lines(),
    )
}

/// Lets the node's lock go and makes the pending reload (see
/// `nginx_reload.rs`); a reload that fails ends the script with
/// [`code::RELOAD_FAILED`], the change kept.
fn unlock_and_reload_lines() -> String {
    format!(
        "exec 9>&-\n\
         if ! err=$(reload_pending 2>&1); then printf '%s\\n' \"$err\" >&2; exit {reload_failed}; fi\n",
        reload_failed = code::RELOAD_FAILED,
    )
}

/// The helper's exit code `status` as the driver's error.
fn helper_error(status: i32, what: &str, out: &Output) -> DriverError {
    match status {
        code::HELPER_BAD_ARGS | code::HELPER_NOT_OURS | code::HELPER_FPM_REFUSED => {
            DriverError::Permanent(format!("{what}: {}", out.error_text()))
        }
        _ => unexpected(what, out),
    }
}

/// Maps a script's exit code to the driver's errors.
fn check(out: &Output, what: &str) -> Result<(), DriverError> {
    match out.status {
        0 => Ok(()),
        code::REJECTED => Err(DriverError::Permanent(format!(
            "{what}: nginx refused the configuration (change undone): {}",
            out.error_text()
        ))),
        code::RELOAD_FAILED => Err(DriverError::Transient(format!(
            "{what}: nginx did not reload: {}",
            out.error_text()
        ))),
        code::LOCKED | code::CHANGED => Err(DriverError::Transient(format!(
            "{what}: {}",
            out.error_text()
        ))),
        _ => Err(unexpected(what, out)),
    }
}

fn unexpected(what: &str, out: &Output) -> DriverError {
    DriverError::Transient(format!(
        "{what} failed on the web node: {}",
        out.error_text()
    ))
}
