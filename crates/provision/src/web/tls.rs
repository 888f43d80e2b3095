//! HTTPS on a web node: the key and certificate request made on the node
//! (the key never leaves it), ACME HTTP-01 answers put where every site's
//! plain-HTTP vhost serves them, and a certificate installed with its
//! vhost switched to HTTPS, under the node's lock, kept only when
//! `nginx -t` passes (otherwise the previous files come back).

use base64::Engine;

use super::nginx_reload::nginx_reload_lines;
use super::render::{self, Https};
use super::{Current, SiteSpec, WebNode, check, code, lock_lines, unexpected};
use crate::DriverError;
use crate::ssh::{self, sh_quote};

/// The node has no vhost for the domain.
const NO_SITE: i32 = 9;
/// The key made for the certificate request is gone.
const NO_KEY: i32 = 10;

/// Where the key of an installed certificate comes from.
#[derive(Debug, Clone, Copy)]
pub enum KeySource<'a> {
    /// The one [`WebNode::certificate_request`] made on the node.
    Requested,
    /// A key the customer uploaded (PEM).
    Uploaded(&'a str),
}

/// An ACME token: base64url characters only (it becomes a file name).
fn check_token(token: &str) -> Result<(), DriverError> {
    let ok = !token.is_empty()
        && token.len() <= 256
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(DriverError::Permanent(format!(
            "the CA's token {token:?} is not base64url"
        )))
    }
}

fn no_site(domain: &str) -> DriverError {
    DriverError::Permanent(format!("the web node has no site {domain}"))
}

impl WebNode {
    /// Makes (or reuses, after a failed attempt) a P-256 key in the site's
    /// TLS folder and answers the DER certificate request for `names`.
    pub async fn certificate_request(
        &self,
        domain: &str,
        names: &[String],
    ) -> Result<Vec<u8>, DriverError> {
        render::validate_domain(domain)?;
        for name in names {
            render::validate_domain(name)?;
        }
        let san: Vec<String> = names.iter().map(|n| format!("DNS:{n}")).collect();
        // X.509 caps a common name at 64 characters; the names that count
        // are the subjectAltName's, so a longer domain goes without one.
        let subject = if domain.len() <= 64 {
            format!("/CN={domain}")
        } else {
            "/".to_owned()
        };
        let script = format!(
            "set -u\n{vars}\
             [ -f \"$conf\" ] || exit {no_site}\n\
             umask 077\nd=\"$tls/$domain\"\nmkdir -p \"$d\" || exit 1\n\
             if [ ! -f \"$d/key.pending.pem\" ]; then\n  \
               openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out \"$d/key.pending.tmp\" 2>/dev/null \
               && mv -f \"$d/key.pending.tmp\" \"$d/key.pending.pem\" || exit 1\n\
             fi\n\
             openssl req -new -key \"$d/key.pending.pem\" -subj {subject} \
               -addext {san} -outform DER | base64 -w0\n",
            vars = self.vars(domain),
            no_site = NO_SITE,
            subject = sh_quote(&subject),
            san = sh_quote(&format!("subjectAltName={}", san.join(","))),
        );
        let out = ssh::run(&self.ssh, &script, None).await?;
        if out.status == NO_SITE {
            return Err(no_site(domain));
        }
        if !out.success() {
            return Err(unexpected(
                &format!("making the certificate request of {domain}"),
                &out,
            ));
        }
        base64::engine::general_purpose::STANDARD
            .decode(out.stdout.trim())
            .map_err(|e| DriverError::Transient(format!("the node's certificate request: {e}")))
    }

    /// Publishes HTTP-01 answers: `(token, key authorization)` pairs.
    pub async fn put_challenges(&self, answers: &[(String, String)]) -> Result<(), DriverError> {
        let mut script = format!("set -u\numask 022\n{}", self.vars("challenge.invalid"));
        script.push_str("mkdir -p \"$challenges\" || exit 1\n");
        for (token, answer) in answers {
            check_token(token)?;
            check_token(&answer.replace('.', "_"))?;
            script.push_str(&format!(
                "printf '%s' {a} >\"$challenges/{token}.tmp\" && mv -f \"$challenges/{token}.tmp\" \"$challenges/{token}\" || exit 1\n",
                a = sh_quote(answer),
            ));
        }
        let out = ssh::run(&self.ssh, &script, None).await?;
        if out.success() {
            Ok(())
        } else {
            Err(unexpected("publishing ACME answers", &out))
        }
    }

    /// Removes HTTP-01 answers (missing ones are fine).
    pub async fn remove_challenges(&self, tokens: &[String]) -> Result<(), DriverError> {
        let mut script = format!("set -u\n{}", self.vars("challenge.invalid"));
        for token in tokens {
            check_token(token)?;
            script.push_str(&format!("rm -f \"$challenges/{token}\"\n"));
        }
        let out = ssh::run(&self.ssh, &script, None).await?;
        if out.success() {
            Ok(())
        } else {
            Err(unexpected("removing ACME answers", &out))
        }
    }

    /// Installs `chain_pem` (leaf first) with its key and serves the site
    /// over HTTPS (`https` says how); nginx reloads gracefully, so no
    /// request fails in between. The chain and an uploaded key travel on
    /// the session's standard input, never on a command line. A refused
    /// configuration (or any failure once files move) brings the previous
    /// certificate, key and vhost back.
    pub async fn install_certificate(
        &self,
        domain: &str,
        user: &str,
        chain_pem: &str,
        key: KeySource<'_>,
        https: Https,
    ) -> Result<(), DriverError> {
        render::validate_domain(domain)?;
        let current = self.current(domain).await?;
        self.check_owner(&current, domain, user)?;
        let spec = self.spec_of(&current, domain)?;
        let suspended = current.header.as_ref().is_some_and(|h| h.suspended);
        let vhost = render::render_site(&spec, self.layout(), suspended, Some(https))?;
        let mut input = chain_pem.to_owned();
        let key_step = match key {
            KeySource::Requested => format!(
                "[ -f \"$d/key.pending.pem\" ] || {{ rm -f \"$d/incoming.tmp\"; echo 'the key made for this certificate is gone' >&2; exit {NO_KEY}; }}\n\
                 cp -p \"$d/key.pending.pem\" \"$d/key.pem.new\" || exit 1\n"
            ),
            KeySource::Uploaded(pem) => {
                input.push_str(pem);
                "sed -n '/^-----BEGIN [A-Z ]*PRIVATE KEY-----$/,/^-----END [A-Z ]*PRIVATE KEY-----$/p' \"$d/incoming.tmp\" >\"$d/key.pem.new\" || exit 1\n".to_owned()
            }
        };
        let script = format!(
            "set -u\n{vars}expect={expect}\nvhost={vhost}\n{lock}\
             [ -f \"$conf\" ] || exit {no_site}\n\
             [ \"$(head -n 1 \"$conf\")\" = \"$expect\" ] || {{ echo \"the vhost of $domain changed meanwhile\" >&2; exit {changed}; }}\n\
             umask 077\nd=\"$tls/$domain\"\nmkdir -p \"$d\" || exit 1\n\
             cat >\"$d/incoming.tmp\" || exit 1\n\
             sed -n '/^-----BEGIN CERTIFICATE-----$/,/^-----END CERTIFICATE-----$/p' \"$d/incoming.tmp\" >\"$d/fullchain.pem.new\" || exit 1\n\
             {key_step}\
             rm -f \"$d/incoming.tmp\"\n\
             if [ ! -s \"$d/fullchain.pem.new\" ] || [ ! -s \"$d/key.pem.new\" ]; then\n  \
               rm -f \"$d/fullchain.pem.new\" \"$d/key.pem.new\"; echo 'the certificate or its key did not arrive' >&2; exit 1\n\
             fi\n\
             for f in key.pem fullchain.pem; do\n  \
               if [ -f \"$d/$f\" ]; then cp -p \"$d/$f\" \"$d/$f.old\" || exit 1; else rm -f \"$d/$f.old\"; fi\n\
             done\n\
             umask 022\ncp -p \"$conf\" \"$conf.old\" || exit 1\n\
             : >\"$pending\" || exit 1\n\
             undo() {{\n  \
               mv -f \"$conf.old\" \"$conf\"\n  \
               for f in key.pem fullchain.pem; do\n    \
                 if [ -f \"$d/$f.old\" ]; then mv -f \"$d/$f.old\" \"$d/$f\"; else rm -f \"$d/$f\"; fi\n  \
               done\n  \
               rm -f \"$d/key.pem.new\" \"$d/fullchain.pem.new\" \"$conf.new\"\n\
             }}\n\
             {{ mv -f \"$d/key.pem.new\" \"$d/key.pem\" && mv -f \"$d/fullchain.pem.new\" \"$d/fullchain.pem\" \
               && printf '%s' \"$vhost\" >\"$conf.new\" && mv -f \"$conf.new\" \"$conf\"; }} || {{ undo; exit 1; }}\n\
             if ! err=$(\"$nginx\" -t -c \"$nconf\" 2>&1); then undo; printf '%s\\n' \"$err\" >&2; exit {rejected}; fi\n\
             exec 9>&-\n\
             if ! err=$(reload_pending 2>&1); then\n  \
               {relock}\
               undo; : >\"$pending\"\n  \
               printf '%s\\n' \"$err\" >&2; exit {reload}\n\
             fi\n\
             rm -f \"$conf.old\" \"$d/key.pem.old\" \"$d/fullchain.pem.old\" \"$d/key.pending.pem\"\n",
            vars = self.vars(domain),
            expect = sh_quote(&current.first_line),
            vhost = sh_quote(&vhost),
            lock = lock_lines() + nginx_reload_lines(),
            relock = lock_lines(),
            no_site = NO_SITE,
            changed = code::CHANGED,
            rejected = code::REJECTED,
            reload = code::RELOAD_FAILED,
        );
        let out = ssh::run_with_timeout(
            &self.ssh,
            &script,
            Some(input.as_bytes()),
            super::VHOST_TIMEOUT,
        )
        .await?;
        match out.status {
            NO_SITE => Err(no_site(domain)),
            NO_KEY => Err(DriverError::Transient(format!(
                "installing the certificate of {domain}: {}",
                out.error_text()
            ))),
            _ => check(&out, &format!("installing the certificate of {domain}")),
        }
    }

    /// Makes the site's vhost answer ACME challenges (vhosts written
    /// before HTTPS existed do not): re-rendered from its header, written
    /// only if it differs.
    pub async fn ensure_challenge_path(&self, domain: &str) -> Result<(), DriverError> {
        render::validate_domain(domain)?;
        let current = self.current(domain).await?;
        let spec = self.spec_of(&current, domain)?;
        let header = current.header.as_ref();
        let suspended = header.is_some_and(|h| h.suspended);
        let https = header.and_then(|h| h.https);
        let vhost = render::render_site(&spec, self.layout(), suspended, https)?;
        self.install(domain, &vhost, &current).await.map(|_| ())
    }

    /// What the site's vhost was rendered from.
    pub(super) fn spec_of(&self, current: &Current, domain: &str) -> Result<SiteSpec, DriverError> {
        let Some(header) = current.header.as_ref().filter(|h| h.domain == domain) else {
            return Err(if current.first_line == "ABSENT" {
                no_site(domain)
            } else {
                DriverError::Permanent(format!("the vhost of {domain} was not written by mPanel"))
            });
        };
        let user = header.user.clone().ok_or_else(|| {
            DriverError::Permanent(format!("the vhost of {domain} names no account user"))
        })?;
        Ok(SiteSpec {
            domain: domain.to_owned(),
            user,
            php: header.php,
            php_version: header.php_version.clone(),
            disk_quota_mb: None,
        })
    }
}
