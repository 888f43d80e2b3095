//! The pure part of the web driver: names checked, vhosts and the default
//! pages rendered, the header line of a vhost read back.

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

/// The vhost for `spec`, byte for byte the same for the same input: a
/// header line recording the domain, PHP version and state, then one
/// `server` for `domain` and `www.domain` rooted at
/// `<root_dir>/<domain>/public`. With a PHP version, `.php` goes to
/// PHP-FPM at `/run/php/php<version>-fpm.sock` (Debian's socket path).
/// Suspended: every request is answered 503 with the page
/// `<root_dir>/<domain>/suspended.html`; the files stay. The disk quota is
/// not part of the vhost (nginx cannot enforce one).
pub fn render_vhost(
    spec: &super::SiteSpec,
    root_dir: &str,
    listen: &str,
    suspended: bool,
) -> Result<String, DriverError> {
    let domain = spec.domain.as_str();
    validate_domain(domain)?;
    let root = clean_dir("root_dir", root_dir)?;
    check_listen(listen)?;
    if let Some(php) = &spec.php_version {
        check_php(php)?;
    }
    let site = if root == "/" {
        format!("/{domain}")
    } else {
        format!("{root}/{domain}")
    };
    let php = spec.php_version.as_deref().unwrap_or("none");
    let state = if suspended { "suspended" } else { "active" };
    let mut v = format!(
        "{HEADER_PREFIX}{domain} php={php} state={state} (written by mPanel; local edits are overwritten)\n\
         server {{\n    \
             listen {listen};\n    \
             server_name {domain} www.{domain};\n    \
             root {site}/public;\n"
    );
    if suspended {
        v.push_str(&format!(
            "    error_page 503 /suspended.html;\n    \
                 location = /suspended.html {{\n        \
                     root {site};\n        \
                     internal;\n    \
                 }}\n    \
                 location / {{\n        \
                     return 503;\n    \
                 }}\n"
        ));
    } else if let Some(php) = &spec.php_version {
        v.push_str(&format!(
            "    index index.php index.html;\n    \
                 location ~ \\.php$ {{\n        \
                     try_files $uri =404;\n        \
                     include /etc/nginx/fastcgi_params;\n        \
                     fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;\n        \
                     fastcgi_pass unix:/run/php/php{php}-fpm.sock;\n    \
                 }}\n"
        ));
    } else {
        v.push_str("    index index.html;\n");
    }
    v.push_str("}\n");
    Ok(v)
}

/// What a vhost's header line says it was rendered from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    pub domain: String,
    pub php_version: Option<String>,
    pub suspended: bool,
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
    Some(Header {
        domain,
        php_version: (php != "none").then(|| php.to_owned()),
        suspended,
    })
}

/// The placeholder page of a new site (written only when absent).
pub(crate) fn index_page(domain: &str) -> String {
    format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{domain}</title></head>\n\
         <body><h1>{domain}</h1><p>This site is ready. Upload your files to replace this page.</p></body></html>\n"
    )
}

/// The page a suspended site answers with (status 503).
pub(crate) fn suspended_page(domain: &str) -> String {
    format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Site suspended</title></head>\n\
         <body><h1>Site suspended</h1><p>{domain} is suspended. Please contact your hosting provider.</p></body></html>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::SiteSpec;

    fn spec(domain: &str, php: Option<&str>) -> SiteSpec {
        SiteSpec {
            domain: domain.into(),
            php_version: php.map(Into::into),
            disk_quota_mb: Some(500),
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
    fn the_active_vhost_serves_the_document_root_for_both_names() {
        let v = render_vhost(&spec("t.test", None), "/srv/www/", "127.0.0.1:8080", false).unwrap();
        assert_eq!(
            v,
            "# mPanel site t.test php=none state=active (written by mPanel; local edits are overwritten)\n\
             server {\n    listen 127.0.0.1:8080;\n    server_name t.test www.t.test;\n    \
             root /srv/www/t.test/public;\n    index index.html;\n}\n"
        );
        let again =
            render_vhost(&spec("t.test", None), "/srv/www", "127.0.0.1:8080", false).unwrap();
        assert_eq!(v, again, "deterministic, trailing slash or not");
    }

    #[test]
    fn php_sites_pass_php_to_the_versioned_fpm_socket() {
        let v = render_vhost(&spec("t.test", Some("8.2")), "/srv/www", "80", false).unwrap();
        assert!(v.contains("    listen 80;\n"));
        assert!(v.contains("index index.php index.html;"));
        assert!(v.contains("fastcgi_pass unix:/run/php/php8.2-fpm.sock;"));
        for bad in ["8.2; evil", "8", "../8.2", "8.2.1", ""] {
            let r = render_vhost(&spec("t.test", Some(bad)), "/srv/www", "80", false);
            assert_eq!(r.is_ok(), bad == "8", "{bad:?}");
        }
    }

    #[test]
    fn a_suspended_vhost_answers_503_with_the_suspended_page() {
        let v = render_vhost(&spec("t.test", Some("8.2")), "/srv/www", "80", true).unwrap();
        assert!(v.contains("error_page 503 /suspended.html;"));
        assert!(v.contains("location / {\n        return 503;\n    }"));
        assert!(v.contains("root /srv/www/t.test;\n        internal;"));
        assert!(!v.contains("fastcgi_pass"), "nothing of the site runs");
        let header = parse_header(v.lines().next().unwrap()).unwrap();
        assert_eq!(
            header,
            Header {
                domain: "t.test".into(),
                php_version: Some("8.2".into()),
                suspended: true
            }
        );
    }

    #[test]
    fn unsafe_settings_are_refused() {
        let s = spec("t.test", None);
        assert!(render_vhost(&s, "relative/www", "80", false).is_err());
        assert!(render_vhost(&s, "/srv/my www", "80", false).is_err());
        assert!(render_vhost(&s, "/srv/../etc", "80", false).is_err());
        assert!(render_vhost(&s, "/srv/www", "80; include /etc/x", false).is_err());
        assert!(render_vhost(&spec("t.test/x", None), "/srv/www", "80", false).is_err());
        assert!(parse_header("server {").is_none());
        assert!(parse_header("# mPanel site t.test php=none state=odd").is_none());
    }
}
