//! Websites on a web node: nginx vhosts and document roots, managed over
//! SSH as the user that owns nginx's configuration (no root needed).
//!
//! Layout on the node: the vhost `<sites_dir>/<domain>.conf` (nginx
//! includes `*.conf` from there), the site's files under
//! `<root_dir>/<domain>/` with the document root `public/`, and archives of
//! terminated sites in `<root_dir>/.archive/`. Every change of a vhost runs
//! under one lock per node (`<sites_dir>/.mpanel.lock`): write
//! `<domain>.conf.new`, move it over, `nginx -t` (on failure the previous
//! file comes back, so a broken vhost never stays), reload. The lock keeps a
//! broken vhost of one job from failing another job's `nginx -t`.
//!
//! A site's state (active or suspended, and its PHP version) is read back
//! from the header line of its vhost, so `suspend`/`unsuspend` need only
//! the domain, and `ensure_site` keeps a suspended site suspended.

mod render;

use std::time::{Duration, Instant};

pub(crate) use render::clean_dir;
pub use render::{render_vhost, validate_domain};

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
    /// The folder holding one folder per site.
    pub root_dir: String,
    /// What vhosts `listen` on: `80` in production, `127.0.0.1:PORT` in
    /// tests.
    pub listen: String,
    /// The nginx binary, by full path (`/usr/sbin/nginx`: SSH sessions'
    /// PATH has no `/usr/sbin`).
    pub nginx_bin: String,
}

/// A website as ordered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteSpec {
    pub domain: String,
    /// Passes `.php` to PHP-FPM of this version (`8.2`).
    pub php_version: Option<String>,
    /// Recorded by the caller; not enforced on the node (it needs
    /// filesystem quotas and root).
    pub disk_quota_mb: Option<u32>,
}

/// What the node serves for a site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SiteState {
    Active,
    Suspended,
}

/// A remote script's exit codes with a meaning (any other non-zero one is
/// an unexpected failure, reported as transient).
mod code {
    /// `nginx -t` refused the configuration (the change was undone).
    pub const REJECTED: i32 = 3;
    /// `nginx -s reload` failed (the change was undone).
    pub const RELOAD_FAILED: i32 = 4;
    /// The node's lock stayed taken.
    pub const LOCKED: i32 = 5;
    /// The vhost changed between reading and writing it.
    pub const CHANGED: i32 = 6;
}

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

    /// Makes the site exist as `spec` says: the document root with a
    /// default `index.html` (only if there is none), and the vhost. A
    /// suspended site stays suspended (with the new settings). `Created`
    /// when anything was written.
    pub async fn ensure_site(&self, spec: &SiteSpec) -> Result<Ensured, DriverError> {
        let domain = spec.domain.as_str();
        render_vhost(spec, &self.root_dir, &self.listen, false)?;
        let current = self.current(domain).await?;
        let suspended = current.header.as_ref().is_some_and(|h| h.suspended);
        let vhost = render_vhost(spec, &self.root_dir, &self.listen, suspended)?;
        let mut prelude = DOCROOT.to_owned();
        prelude.push_str(&format!(
            "if [ ! -e \"$site/public/index.html\" ]; then\n  \
               printf '%s' {index} >\"$site/public/.index.html.new\" \
               && mv -f \"$site/public/.index.html.new\" \"$site/public/index.html\" || exit 1\n  \
               echo INDEX_WRITTEN\n\
             fi\n",
            index = sh_quote(&render::index_page(domain)),
        ));
        if suspended {
            prelude.push_str(&self.suspended_page_lines(domain));
        }
        let out = self.install(domain, &vhost, &current, &prelude).await?;
        let written = out
            .stdout
            .lines()
            .any(|l| l == "CHANGED" || l == "INDEX_WRITTEN");
        Ok(if written {
            Ensured::Created
        } else {
            Ensured::AlreadyThere
        })
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

    /// Removes the vhost (and reloads nginx), then archives the site's
    /// files to `<root_dir>/.archive/<domain>-<unix time>.tar.gz` and
    /// removes them. Returns the archive's path; `None` when there were no
    /// files (a missing site is not an error). Safe to repeat after a
    /// failure: it goes on from where it stopped.
    pub async fn terminate(&self, domain: &str) -> Result<Option<String>, DriverError> {
        validate_domain(domain)?;
        let root = render::clean_dir("root_dir", &self.root_dir)?;
        let script = format!(
            "set -u\numask 022\n{vars}root={root}\narchives=\"$root/.archive\"\n{lock}\
             if [ -f \"$conf\" ]; then\n  \
               mv -f \"$conf\" \"$conf.old\" || exit 1\n  \
               if ! err=$(\"$nginx\" -q -t -c \"$nconf\" 2>&1); then\n    \
                 mv -f \"$conf.old\" \"$conf\"; printf '%s\\n' \"$err\" >&2; exit {rejected}\n  \
               fi\n  \
               if ! err=$(\"$nginx\" -s reload -c \"$nconf\" 2>&1); then\n    \
                 mv -f \"$conf.old\" \"$conf\"; printf '%s\\n' \"$err\" >&2; exit {reload}\n  \
               fi\n  \
               rm -f \"$conf.old\"\n\
             fi\n\
             rm -f \"$conf.new\"\n\
             exec 9>&-\n\
             if [ -d \"$site\" ]; then\n  \
               mkdir -p \"$archives\" || exit 1\n  \
               a=\"$archives/$domain-$(date +%s).tar.gz\"\n  \
               tar -czf \"$a.part\" -C \"$root\" \"$domain\" || {{ rm -f \"$a.part\"; exit 1; }}\n  \
               mv -f \"$a.part\" \"$a\" && rm -rf \"$site\" || exit 1\n  \
               printf 'ARCHIVE %s\\n' \"$a\"\n\
             fi\n",
            vars = self.vars(domain),
            root = sh_quote(&root),
            lock = lock_lines(),
            rejected = code::REJECTED,
            reload = code::RELOAD_FAILED,
        );
        let out = ssh::run(&self.ssh, &script, None).await?;
        check(&out, &format!("terminating {domain}"))?;
        Ok(out
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("ARCHIVE "))
            .map(str::to_owned))
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
        let current = self.current(domain).await?;
        let action = if suspended { "suspend" } else { "unsuspend" };
        if current.first_line == "ABSENT" {
            return Err(DriverError::Permanent(format!(
                "cannot {action} {domain}: the web node has no such site"
            )));
        }
        let Some(header) = current.header.as_ref().filter(|h| h.domain == domain) else {
            return Err(DriverError::Permanent(format!(
                "cannot {action} {domain}: its vhost was not written by mPanel"
            )));
        };
        let spec = SiteSpec {
            domain: domain.to_owned(),
            php_version: header.php_version.clone(),
            disk_quota_mb: None,
        };
        let vhost = render_vhost(&spec, &self.root_dir, &self.listen, suspended)?;
        let mut prelude = DOCROOT.to_owned();
        if suspended {
            prelude.push_str(&self.suspended_page_lines(domain));
        }
        let out = self.install(domain, &vhost, &current, &prelude).await?;
        Ok(if out.stdout.lines().any(|l| l == "CHANGED") {
            Ensured::Created
        } else {
            Ensured::AlreadyThere
        })
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
    /// tests the configuration and reloads. `prelude` runs first (under
    /// the lock). Prints `CHANGED` or `SAME`.
    async fn install(
        &self,
        domain: &str,
        vhost: &str,
        current: &Current,
        prelude: &str,
    ) -> Result<Output, DriverError> {
        let script = format!(
            "set -u\numask 022\n{vars}expect={expect}\nvhost={vhost}\n{lock}\
             if [ -f \"$conf\" ]; then cur=$(head -n 1 \"$conf\"); else cur=ABSENT; fi\n\
             if [ \"$cur\" != \"$expect\" ]; then echo \"the vhost of $domain changed meanwhile\" >&2; exit {changed}; fi\n\
             {prelude}\
             printf '%s' \"$vhost\" >\"$conf.new\" || exit 1\n\
             if [ -f \"$conf\" ] && cmp -s \"$conf.new\" \"$conf\"; then rm -f \"$conf.new\"; echo SAME; exit 0; fi\n\
             old=0\n\
             if [ -f \"$conf\" ]; then cp -p \"$conf\" \"$conf.old\" || exit 1; old=1; fi\n\
             mv -f \"$conf.new\" \"$conf\" || exit 1\n\
             undo() {{ if [ \"$old\" = 1 ]; then mv -f \"$conf.old\" \"$conf\"; else rm -f \"$conf\"; fi; }}\n\
             if ! err=$(\"$nginx\" -q -t -c \"$nconf\" 2>&1); then undo; printf '%s\\n' \"$err\" >&2; exit {rejected}; fi\n\
             if ! err=$(\"$nginx\" -s reload -c \"$nconf\" 2>&1); then undo; printf '%s\\n' \"$err\" >&2; exit {reload}; fi\n\
             rm -f \"$conf.old\"\n\
             echo CHANGED\n",
            vars = self.vars(domain),
            expect = sh_quote(&current.first_line),
            vhost = sh_quote(vhost),
            lock = lock_lines(),
            changed = code::CHANGED,
            rejected = code::REJECTED,
            reload = code::RELOAD_FAILED,
        );
        let out = ssh::run(&self.ssh, &script, None).await?;
        check(&out, &format!("writing the vhost of {domain}"))?;
        Ok(out)
    }

    /// Shell variables every script starts with (the domain is validated).
    fn vars(&self, domain: &str) -> String {
        let sites = self.sites_dir.trim_end_matches('/');
        let root = self.root_dir.trim_end_matches('/');
        format!(
            "domain={domain}\nsites={sites}\nconf={conf}\nsite={site}\nnginx={nginx}\nnconf={nconf}\n",
            domain = sh_quote(domain),
            sites = sh_quote(sites),
            conf = sh_quote(&format!("{sites}/{domain}.conf")),
            site = sh_quote(&format!("{root}/{domain}")),
            nginx = sh_quote(&self.nginx_bin),
            nconf = sh_quote(&self.nginx_conf),
        )
    }

    fn suspended_page_lines(&self, domain: &str) -> String {
        format!(
            "if [ ! -e \"$site/suspended.html\" ]; then\n  \
               printf '%s' {page} >\"$site/.suspended.html.new\" \
               && mv -f \"$site/.suspended.html.new\" \"$site/suspended.html\" || exit 1\n\
             fi\n",
            page = sh_quote(&render::suspended_page(domain)),
        )
    }
}

/// Creates the document root (the script's `$site` is the site's folder).
const DOCROOT: &str = "mkdir -p \"$site/public\" || exit 1\n";

/// Takes the node's lock on fd 9 (released when the script ends or
/// closes fd 9).
fn lock_lines() -> String {
    format!(
        "exec 9>>\"$sites/.mpanel.lock\" || exit {locked}\n\
         flock -w 20 9 || {{ echo \"the web node's lock stayed taken\" >&2; exit {locked}; }}\n",
        locked = code::LOCKED
    )
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
            "{what}: nginx reload failed (change undone): {}",
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
