//! How this installation sends e-mail: the SMTP server (`smtp_url`, whose
//! credentials are a secret) and the platform's sender, used for tenants
//! that have not set their own.

use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};

/// The default of `mail_from`.
pub const DEFAULT_SENDER: &str = "mPanel <noreply@localhost>";

#[derive(Clone)]
pub struct MailSettings {
    /// `smtp://host:port` (plain), `smtp://host:port?tls=required`
    /// (STARTTLS) or `smtps://host:port` (TLS), with `user:password@` when
    /// the server wants a login. `None`: messages stay in the outbox,
    /// marked undeliverable.
    smtp_url: Option<SecretString>,
    /// The platform's sender.
    pub sender: Mailbox,
    /// Where the links in messages lead (invitations, password resets):
    /// the portal's public URL, without a trailing slash.
    portal_url: String,
}

/// The default of `portal_url` (the default `webauthn_origin`).
pub const DEFAULT_PORTAL_URL: &str = "http://localhost:2271";

impl std::fmt::Debug for MailSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailSettings")
            .field("smtp_url", &self.smtp_url_redacted())
            .field("sender", &self.sender.to_string())
            .field("portal_url", &self.portal_url)
            .finish()
    }
}

impl MailSettings {
    /// Checks both values; each error names what is wrong, never the
    /// URL's credentials. (`key`, message) on failure.
    pub fn new(smtp_url: Option<&str>, sender: &str) -> Result<Self, (&'static str, String)> {
        let sender = parse_sender(sender).map_err(|m| ("mail_from", m))?;
        if let Some(url) = smtp_url {
            check_smtp_url(url).map_err(|m| ("smtp_url", m))?;
        }
        Ok(Self {
            smtp_url: smtp_url.map(|u| SecretString::from(u.to_owned())),
            sender,
            portal_url: DEFAULT_PORTAL_URL.into(),
        })
    }

    /// These settings with links leading to `url` (`http(s)://host[:port]`
    /// and maybe a path); `(key, message)` when it is not such a URL.
    pub fn with_portal_url(mut self, url: &str) -> Result<Self, (&'static str, String)> {
        let parsed = url::Url::parse(url).map_err(|e| ("portal_url", format!("{url:?}: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https")
            || parsed.host().is_none()
            || parsed.query().is_some()
            || parsed.fragment().is_some()
        {
            return Err((
                "portal_url",
                "must be an http(s) URL without query or fragment".into(),
            ));
        }
        self.portal_url = url.trim_end_matches('/').to_owned();
        Ok(self)
    }

    /// Where the links in messages lead.
    pub fn portal_url(&self) -> &str {
        &self.portal_url
    }

    pub fn smtp_configured(&self) -> bool {
        self.smtp_url.is_some()
    }

    /// The SMTP URL with its password replaced, for logs.
    pub fn smtp_url_redacted(&self) -> Option<String> {
        self.smtp_url
            .as_ref()
            .map(|u| redact_userinfo(u.expose_secret()))
    }

    /// A transport to the configured server (one connection per message).
    pub fn transport(&self) -> Result<Option<AsyncSmtpTransport<Tokio1Executor>>, String> {
        self.smtp_url
            .as_ref()
            .map(|u| transport(u.expose_secret()))
            .transpose()
    }
}

/// `Name <address>` or a bare address.
pub fn parse_sender(value: &str) -> Result<Mailbox, String> {
    value
        .trim()
        .parse::<Mailbox>()
        .map_err(|e| format!("must be an address or `Name <address>`: {e}"))
}

fn transport(url: &str) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url).map_err(|e| e.to_string())?;
    Ok(builder
        .timeout(Some(std::time::Duration::from_secs(30)))
        .build())
}

fn check_smtp_url(url: &str) -> Result<(), String> {
    let parsed = url::Url::parse(url)
        .map_err(|e| format!("is not a URL ({e}); use smtp://host:port or smtps://host:port"))?;
    if !matches!(parsed.scheme(), "smtp" | "smtps") {
        return Err("must start with smtp:// or smtps://".into());
    }
    if credentials_in_clear(&parsed) {
        return Err(
            "carries a login on a plain smtp:// connection, which would send the \
             password unencrypted: use smtps://host:port or smtp://host:port?tls=required \
             (a login over plain smtp:// is allowed only to a loopback host)"
                .into(),
        );
    }
    transport(url).map(drop).map_err(|e| {
        format!("{e} (use smtp://host:port, smtp://host:port?tls=required or smtps://host:port)")
    })
}

/// Whether a login would cross the network unencrypted: credentials on a
/// plain `smtp://` URL without `tls=required`, to a host not on loopback
/// (lettre logs in with PLAIN on a connection that is not encrypted).
fn credentials_in_clear(url: &url::Url) -> bool {
    if url.scheme() != "smtp" || (url.username().is_empty() && url.password().is_none()) {
        return false;
    }
    let tls_required = url
        .query_pairs()
        .any(|(k, v)| k == "tls" && v == "required");
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        // `smtp` is not a special scheme: its IPv4 hosts come as names.
        Some(url::Host::Domain(name)) => {
            name.eq_ignore_ascii_case("localhost")
                || name
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        None => false,
    };
    !tls_required && !loopback
}

/// `smtp://user:secret@host` → `smtp://user:***@host`.
fn redact_userinfo(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => "[unparseable]".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_url_forms_are_accepted() {
        for url in [
            "smtp://127.0.0.1:2525",
            "smtp://mail.example.com:587?tls=required",
            "smtps://user:pw@mail.example.com",
        ] {
            MailSettings::new(Some(url), DEFAULT_SENDER).unwrap();
        }
        assert_eq!(
            MailSettings::new(Some("http://x"), DEFAULT_SENDER)
                .unwrap_err()
                .0,
            "smtp_url"
        );
        assert_eq!(
            MailSettings::new(None, "not an address").unwrap_err().0,
            "mail_from"
        );
    }

    #[test]
    fn a_login_over_plain_smtp_is_refused_off_loopback() {
        for url in [
            "smtp://mailer:s3cret-pw@mail.example.com:25",
            "smtp://mailer:s3cret-pw@mail.example.com:587?tls=opportunistic",
            "smtp://mailer@192.0.2.7:25",
        ] {
            let (key, message) = MailSettings::new(Some(url), DEFAULT_SENDER).unwrap_err();
            assert_eq!(key, "smtp_url", "{url}");
            assert!(message.contains("tls=required"), "{message}");
            assert!(!message.contains("s3cret-pw"), "{message}");
        }
        for url in [
            "smtp://mailer:s3cret-pw@mail.example.com:587?tls=required",
            "smtps://mailer:s3cret-pw@mail.example.com:465",
            "smtp://mailer:s3cret-pw@127.0.0.1:25",
            "smtp://mailer:s3cret-pw@127.3.4.5:25",
            "smtp://mailer:s3cret-pw@[::1]:25",
            "smtp://mailer:s3cret-pw@localhost:25",
            "smtp://mail.example.com:25",
        ] {
            MailSettings::new(Some(url), DEFAULT_SENDER).unwrap();
        }
    }

    #[test]
    fn credentials_never_show() {
        let s = MailSettings::new(
            Some("smtps://mailer:s3cret-pw@mail.example.com:465"),
            "Host <billing@example.com>",
        )
        .unwrap();
        let shown = format!("{s:?}");
        assert!(!shown.contains("s3cret-pw"), "{shown}");
        assert!(shown.contains("mailer:***@mail.example.com"), "{shown}");
        assert!(s.smtp_configured());
        assert!(
            !MailSettings::new(None, DEFAULT_SENDER)
                .unwrap()
                .smtp_configured()
        );
    }
}
