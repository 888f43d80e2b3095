//! The pure part of the web driver: names checked, vhosts rendered, the
//! header line of a vhost read back, account user names derived.

use mpanel_domain::ResourceId;

use crate::DriverError;

/// The first line of every vhost the driver writes starts with this; the
/// rest of the line records what the vhost was rendered from.
const HEADER_PREFIX: &str = "# mPanel site ";

/// Refuses anything but a canonical host name: at least two labels of
/// `a-z`, `0-9` and `-` (not at a label's ends), 1–63 characters each,
/// at most 253 in all, no trailing dot, not all-numeric at the end (so no
/// IP address). Nothing is normalised: `Example.test` is refused, so the
/// caller decides what the canonical form is.
pub fn validate_domain(domain: &str) -> Result<(), DriverError> {
    let bad = |why: &str| {
        Err(DriverError::Permanent(format!(
            "{domain:?} is not a canonical domain name: {why}"
        )))
    };
    if domain.is_empty() || domain.len() > 253 {
        return bad("it must have 1 to 253 characters");
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return bad("it needs at least two labels, like example.com");
    }
    for label in &labels {
        if label.is_empty() || label.len() > 63 {
            return bad("each label has 1 to 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return bad("only a-z, 0-9, '-' and '.' are allowed");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return bad("a label cannot start or end with '-'");
        }
    }
    if labels
        .last()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return bad("the last label cannot be numeric");
    }
    Ok(())
}

/// The Unix user of a hosting account: `mp` and the last 12 hex digits of
/// its id (the random part of a UUIDv7), so never anything the customer
/// typed, and never an existing system user's name.
pub fn account_user(account_id: ResourceId) -> String {
    let hex = account_id.as_uuid().simple().to_string();
    format!("mp{}", &hex[hex.len() - 12..])
}

/// Refuses any account user name but `mp` followed by 4 to 28 of `a-z0-9`
/// (what the node helper accepts too).
pub fn validate_user(user: &str) -> Result<(), DriverError> {
    let ok = user.len() >= 6
        && user.len() <= 30
        && user.starts_with("mp")
        && user[2..]
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(DriverError::Permanent(format!(
            "{user:?} is not an account user name (mp and 4 to 28 of a-z, 0-9)"
        )))
    }
}

/// An absolute path made of safe characters (it goes into nginx's
/// configuration unquoted), without a trailing `/` unless it is `/`.
pub(crate) fn clean_dir(what: &str, dir: &str) -> Result<String, DriverError> {
    let ok = dir.starts_with('/')
        && dir
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b))
        && !dir.split('/').any(|part| part == "..");
    if !ok {
        return Err(DriverError::Permanent(format!(
            "{what} {dir:?} must be an absolute path of letters, digits and /._-"
        )));
    }
    let trimmed = dir.trim_end_matches('/');
    Ok(if trimmed.is_empty() { "/" } else { trimmed }.to_owned())
}

fn check_listen(listen: &str) -> Result<(), DriverError> {
    let ok = !listen.is_empty()
        && listen
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".:[]".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(DriverError::Permanent(format!(
            "listen {listen:?} must be a port or address:port"
        )))
    }
}

fn check_php(version: &str) -> Result<(), DriverError> {
    let mut parts = version.split('.');
    let ok = version.split('.').count() <= 2
        && parts.all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()));
    if ok {
        Ok(())
    } else {
        Err(DriverError::Permanent(format!(
            "PHP version {version:?} must look like 8.2"
        )))
    }
}

/// Where a node keeps accounts and what its vhosts listen on.
#[derive(Debug, Clone, Copy)]
pub struct Layout<'a> {
    /// Account homes: `<root_dir>/<user>`, document root `web/public`.
    pub root_dir: &'a str,
    /// `80` in production, `127.0.0.1:PORT` in tests.
    pub listen: &'a str,
    /// PHP-FPM sockets: `<php_socket_dir>/<user>.sock`.
    pub php_socket_dir: &'a str,
    /// What HTTPS vhosts listen on: `443` in production.
    pub tls_listen: &'a str,
    /// The vhosts' folder: certificates and keys are in
    /// `<sites_dir>/tls/<domain>/`, ACME HTTP-01 answers (served at
    /// `/.well-known/acme-challenge/`) in `<sites_dir>/acme-challenge/`.
    pub sites_dir: &'a str,
}

/// A site served over HTTPS: its certificate is at
/// `<sites_dir>/tls/<domain>/fullchain.pem` and `key.pem`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Https {
    /// `Strict-Transport-Security` max-age; 0: no header.
    pub hsts_max_age_secs: u32,
}

/// Mozilla's "intermediate" TLS 1.2 ciphers (TLS 1.3 needs none).
const CIPHERS: &str = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:\
ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:\
ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

/// The vhost for `spec`, byte for byte the same for the same input: a
/// header line recording the domain, PHP, state and account user, then one
/// `server` for `domain` and `www.domain` rooted at
/// `<root_dir>/<user>/web/public`. With PHP, `.php` goes to the account's
/// own PHP-FPM pool at `<php_socket_dir>/<user>.sock`. nginx (whose group
/// can read every account's `web/`) follows no symbolic link whose owner
/// is not its target's, so a link cannot serve another account's files.
/// Suspended: every
/// request is answered 503 with a "suspended" page written into the vhost
/// (nothing of the account is read). The disk quota is not part of the
/// vhost (nginx cannot enforce one).
pub fn render_vhost(
    spec: &super::SiteSpec,
    layout: Layout<'_>,
    suspended: bool,
) -> Result<String, DriverError> {
    render_site(spec, layout, suspended, None)
}

/// [`render_vhost`], served over HTTPS when `https` is given: plain HTTP
/// then answers ACME challenges and redirects everything else to HTTPS,
/// and a second `server` serves the site with TLS 1.2 and 1.3 (and HSTS
/// when asked). Without HTTPS the one HTTP `server` answers ACME
/// challenges too, so a certificate can be obtained.
pub fn render_site(
    spec: &super::SiteSpec,
    layout: Layout<'_>,
    suspended: bool,
    https: Option<Https>,
) -> Result<String, DriverError> {
    let domain = spec.domain.as_str();
    validate_domain(domain)?;
    validate_user(&spec.user)?;
    let root = clean_dir("root_dir", layout.root_dir)?;
    let sockets = clean_dir("php_socket_dir", layout.php_socket_dir)?;
    let challenges = join(&clean_dir("sites_dir", layout.sites_dir)?, "acme-challenge");
    let listen = layout.listen;
    check_listen(listen)?;
    if let Some(php) = &spec.php_version {
        check_php(php)?;
    }
    let user = spec.user.as_str();
    let home = join(&root, user);
    let php = match (spec.php, &spec.php_version) {
        (false, _) => "none",
        (true, None) => "default",
        (true, Some(v)) => v.as_str(),
    };
    let state = if suspended { "suspended" } else { "active" };
    let tls = match https {
        Some(h) => format!(" tls=on hsts={}", h.hsts_max_age_secs),
        None => String::new(),
    };
    let challenge = format!(
        "    location ^~ /.well-known/acme-challenge/ {{\n        \
                 alias {challenges}/;\n        \
                 default_type text/plain;\n    \
             }}\n"
    );
    let mut v = format!(
        "{HEADER_PREFIX}{domain} php={php} state={state} user={user}{tls} (written by mPanel; local edits are overwritten)\n\
         server {{\n    \
             listen {listen};\n    \
             server_name {domain} www.{domain};\n"
    );
    if let Some(h) = https {
        v.push_str(&challenge);
        v.push_str("    location / {\n        return 301 https://$host$request_uri;\n    }\n}\n");
        v.push_str(&tls_server(domain, layout, h)?);
    } else {
        v.push_str(&challenge);
    }
    v.push_str(&format!(
        "    root {home}/web/public;\n    \
             disable_symlinks if_not_owner;\n"
    ));
    if suspended {
        v.push_str(&format!(
            "    location / {{\n        \
                     default_type text/html;\n        \
                     return 503 '{page}';\n    \
                 }}\n",
            page = suspended_page(domain),
        ));
    } else if spec.php {
        let socket = join(&sockets, &format!("{user}.sock"));
        v.push_str(&format!(
            "    index index.php index.html;\n    \
                 location ~ \\.php$ {{\n        \
                     try_files $uri =404;\n        \
                     include /etc/nginx/fastcgi_params;\n        \
                     fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;\n        \
                     fastcgi_pass unix:{socket};\n    \
                 }}\n"
        ));
    } else {
        v.push_str("    index index.html;\n");
    }
    v.push_str("}\n");
    Ok(v)
}

/// The start of the HTTPS `server` of `domain`.
fn tls_server(domain: &str, layout: Layout<'_>, https: Https) -> Result<String, DriverError> {
    let listen = layout.tls_listen;
    check_listen(listen)?;
    let dir = join(&clean_dir("sites_dir", layout.sites_dir)?, "tls");
    let dir = join(&dir, domain);
    let mut v = format!(
        "server {{\n    \
             listen {listen} ssl;\n    \
             server_name {domain} www.{domain};\n    \
             ssl_certificate {dir}/fullchain.pem;\n    \
             ssl_certificate_key {dir}/key.pem;\n    \
             ssl_protocols TLSv1.2 TLSv1.3;\n    \
             ssl_ciphers {CIPHERS};\n    \
             ssl_prefer_server_ciphers off;\n    \
             ssl_session_cache shared:mpanel_tls:10m;\n    \
             ssl_session_timeout 1d;\n    \
             ssl_session_tickets off;\n"
    );
    if https.hsts_max_age_secs > 0 {
        v.push_str(&format!(
            "    add_header Strict-Transport-Security \"max-age={}\" always;\n",
            https.hsts_max_age_secs
        ));
    }
    Ok(v)
}

fn join(dir: &str, name: &str) -> String {
    if dir == "/" {
        format!("/{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// What a vhost's header line says it was rendered from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    pub domain: String,
    pub php: bool,
    pub php_version: Option<String>,
    pub suspended: bool,
    /// The account's Unix user (vhosts written before accounts had their
    /// own users have none).
    pub user: Option<String>,
    /// Served over HTTPS.
    pub https: Option<Https>,
}

/// Reads the header line of a vhost this driver wrote; `None` for any
/// other first line.
pub(crate) fn parse_header(line: &str) -> Option<Header> {
    let rest = line.strip_prefix(HEADER_PREFIX)?;
    let mut words = rest.split_whitespace();
    let domain = words.next()?.to_owned();
    let php = words.next()?.strip_prefix("php=")?;
    let suspended = match words.next()?.strip_prefix("state=")? {
        "active" => false,
        "suspended" => true,
        _ => return None,
    };
    let user = words
        .next()
        .and_then(|w| w.strip_prefix("user="))
        .map(str::to_owned);
    let https = match words.next() {
        Some("tls=on") => Some(Https {
            hsts_max_age_secs: words
                .next()
                .and_then(|w| w.strip_prefix("hsts="))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0),
        }),
        _ => None,
    };
    Some(Header {
        domain,
        php: php != "none",
        php_version: (php != "none" && php != "default").then(|| php.to_owned()),
        suspended,
        user,
        https,
    })
}

/// The page a suspended site answers with (status 503), inside an nginx
/// single-quoted string: no `'`, `\\` or `$` (the domain is validated).
pub(crate) fn suspended_page(domain: &str) -> String {
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Site suspended</title></head>\
         <body><h1>Site suspended</h1><p>{domain} is suspended. Please contact your hosting provider.</p></body></html>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::SiteSpec;

    fn spec(domain: &str, php: Option<&str>) -> SiteSpec {
        SiteSpec {
            domain: domain.into(),
            user: "mp0123456789ab".into(),
            php: php.is_some(),
            php_version: php.map(Into::into),
            disk_quota_mb: Some(500),
        }
    }

    fn layout<'a>(root_dir: &'a str, listen: &'a str) -> Layout<'a> {
        Layout {
            root_dir,
            listen,
            php_socket_dir: "/run/mpanel-php/",
            tls_listen: "127.0.0.1:8443",
            sites_dir: "/etc/nginx/sites",
        }
    }

    #[test]
    fn canonical_domains_pass_and_everything_else_is_refused() {
        for ok in [
            "t.test",
            "www.shop-1.example.co.uk",
            "xn--bcher-kva.example",
        ] {
            assert!(validate_domain(ok).is_ok(), "{ok}");
        }
        let long_label = format!("{}.test", "a".repeat(64));
        for bad in [
            "",
            "localhost",
            "T.test",
            "a b.test",
            "a/b.test",
            "../x.test",
            "x.test.",
            ".x.test",
            "x..test",
            "-x.test",
            "x-.test",
            "x.test;",
            "x'.test",
            "x\".test",
            "x_y.test",
            "1.2.3.4",
            "x.test\n",
            long_label.as_str(),
        ] {
            assert!(
                matches!(validate_domain(bad), Err(DriverError::Permanent(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_active_vhost_serves_the_accounts_document_root_for_both_names() {
        let v = render_vhost(
            &spec("t.test", None),
            layout("/srv/www/", "127.0.0.1:8080"),
            false,
        )
        .unwrap();
        assert_eq!(
            v,
            "# mPanel site t.test php=none state=active user=mp0123456789ab (written by mPanel; local edits are overwritten)\n\
             server {\n    listen 127.0.0.1:8080;\n    server_name t.test www.t.test;\n    \
             location ^~ /.well-known/acme-challenge/ {\n        \
             alias /etc/nginx/sites/acme-challenge/;\n        default_type text/plain;\n    }\n    \
             root /srv/www/mp0123456789ab/web/public;\n    \
             disable_symlinks if_not_owner;\n    index index.html;\n}\n"
        );
        let again = render_vhost(
            &spec("t.test", None),
            layout("/srv/www", "127.0.0.1:8080"),
            false,
        )
        .unwrap();
        assert_eq!(v, again, "deterministic, trailing slash or not");
    }

    #[test]
    fn php_sites_pass_php_to_the_accounts_own_pool() {
        let v = render_vhost(
            &spec("t.test", Some("8.2")),
            layout("/srv/www", "80"),
            false,
        )
        .unwrap();
        assert!(v.contains("    listen 80;\n"));
        assert!(v.contains("index index.php index.html;"));
        assert!(v.contains("fastcgi_pass unix:/run/mpanel-php/mp0123456789ab.sock;"));
        let default = SiteSpec {
            php_version: None,
            ..spec("t.test", Some("8.2"))
        };
        let d = render_vhost(&default, layout("/srv/www", "80"), false).unwrap();
        assert!(d.starts_with("# mPanel site t.test php=default "), "{d}");
        assert!(d.contains("mp0123456789ab.sock"));
        let header = parse_header(d.lines().next().unwrap()).unwrap();
        assert!(header.php && header.php_version.is_none());
        for bad in ["8.2; evil", "8", "../8.2", "8.2.1", ""] {
            let r = render_vhost(&spec("t.test", Some(bad)), layout("/srv/www", "80"), false);
            assert_eq!(r.is_ok(), bad == "8", "{bad:?}");
        }
    }

    #[test]
    fn a_suspended_vhost_answers_503_and_runs_nothing_of_the_account() {
        let v = render_vhost(&spec("t.test", Some("8.2")), layout("/srv/www", "80"), true).unwrap();
        assert!(v.contains(
            "location / {\n        default_type text/html;\n        return 503 '<!doctype html>"
        ));
        assert!(v.contains("t.test is suspended"));
        assert!(!v.contains("fastcgi_pass"), "nothing of the site runs");
        let header = parse_header(v.lines().next().unwrap()).unwrap();
        assert_eq!(
            header,
            Header {
                domain: "t.test".into(),
                php: true,
                php_version: Some("8.2".into()),
                suspended: true,
                user: Some("mp0123456789ab".into()),
                https: None,
            }
        );
        let page = suspended_page("t.test");
        assert!(!page.contains(['\'', '\\', '$']));
    }

    #[test]
    fn an_https_site_redirects_plain_http_and_serves_tls_with_hsts() {
        let https = Some(Https {
            hsts_max_age_secs: 31_536_000,
        });
        let v = render_site(
            &spec("t.test", None),
            layout("/srv/www", "80"),
            false,
            https,
        )
        .unwrap();
        let (plain, tls) = v.split_once("}\n}\nserver {").unwrap();
        assert!(plain.contains("alias /etc/nginx/sites/acme-challenge/;"));
        assert!(plain.contains("return 301 https://$host$request_uri;"));
        assert!(
            !plain.contains("root /srv"),
            "plain HTTP serves nothing of the site"
        );
        assert!(tls.contains("listen 127.0.0.1:8443 ssl;"));
        assert!(tls.contains("ssl_certificate /etc/nginx/sites/tls/t.test/fullchain.pem;"));
        assert!(tls.contains("ssl_certificate_key /etc/nginx/sites/tls/t.test/key.pem;"));
        assert!(tls.contains("ssl_protocols TLSv1.2 TLSv1.3;"));
        assert!(tls.contains("add_header Strict-Transport-Security \"max-age=31536000\" always;"));
        assert!(tls.contains("root /srv/www/mp0123456789ab/web/public;"));
        let header = parse_header(v.lines().next().unwrap()).unwrap();
        assert_eq!(header.https, https);
        let no_hsts = Some(Https {
            hsts_max_age_secs: 0,
        });
        let v = render_site(
            &spec("t.test", None),
            layout("/srv/www", "80"),
            true,
            no_hsts,
        )
        .unwrap();
        assert!(!v.contains("Strict-Transport-Security"));
        assert!(v.contains("return 503"), "suspended over HTTPS too");
        assert_eq!(
            parse_header(v.lines().next().unwrap()).unwrap().https,
            no_hsts
        );
    }

    #[test]
    fn account_users_come_from_the_id_and_only_safe_names_pass() {
        let id: ResourceId = "01890a5d-ac96-774b-bcce-b302099a8057".parse().unwrap();
        assert_eq!(account_user(id), "mpb302099a8057");
        assert!(validate_user(&account_user(ResourceId::new())).is_ok());
        for bad in [
            "",
            "mp",
            "mp12",
            "root",
            "www-data",
            "mpanel-web",
            "mp-1234",
            "MPabcd",
            "mpabcd\n",
            "mp../x",
            "mpabcd ef",
            "mpabcdefghijklmnopqrstuvwxyz0123",
        ] {
            assert!(validate_user(bad).is_err(), "{bad:?}");
        }
        let s = SiteSpec {
            user: "root".into(),
            ..spec("t.test", None)
        };
        assert!(render_vhost(&s, layout("/srv/www", "80"), false).is_err());
    }

    #[test]
    fn unsafe_settings_are_refused() {
        let s = spec("t.test", None);
        assert!(render_vhost(&s, layout("relative/www", "80"), false).is_err());
        assert!(render_vhost(&s, layout("/srv/my www", "80"), false).is_err());
        assert!(render_vhost(&s, layout("/srv/../etc", "80"), false).is_err());
        assert!(render_vhost(&s, layout("/srv/www", "80; include /etc/x"), false).is_err());
        let bad_sockets = Layout {
            php_socket_dir: "/run/php;x",
            ..layout("/srv/www", "80")
        };
        assert!(render_vhost(&s, bad_sockets, false).is_err());
        assert!(render_vhost(&spec("t.test/x", None), layout("/srv/www", "80"), false).is_err());
        assert!(parse_header("server {").is_none());
        assert!(parse_header("# mPanel site t.test php=none state=odd").is_none());
    }
}
