//! The web-node driver against the harness's real sshd and nginx
//! (`WEB_SSH_*`, `WEB_HTTP_PORT`, `WEB_NGINX_CONF`, `WEB_SITES_DIR`,
//! `WEB_ROOT_DIR`); what nginx serves is checked with HTTP requests.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use mpanel_provision::ssh::{self, SshTarget, sh_quote};
use mpanel_provision::web::{SiteSpec, SiteState, WebNode};
use mpanel_provision::{DriverError, Ensured};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run these tests under `bash scripts/test.sh`, which starts \
             the web node (sshd + nginx) and exports WEB_SSH_*, WEB_HTTP_PORT, WEB_NGINX_CONF, \
             WEB_SITES_DIR and WEB_ROOT_DIR"
        )
    })
}

fn target() -> SshTarget {
    SshTarget {
        host: env("WEB_SSH_HOST"),
        port: env("WEB_SSH_PORT").parse().unwrap(),
        user: env("WEB_SSH_USER"),
        key_path: env("WEB_SSH_KEY").into(),
        known_hosts: env("WEB_SSH_KNOWN_HOSTS").into(),
    }
}

fn node() -> WebNode {
    WebNode {
        ssh: target(),
        nginx_conf: env("WEB_NGINX_CONF"),
        sites_dir: env("WEB_SITES_DIR"),
        root_dir: env("WEB_ROOT_DIR"),
        listen: format!("127.0.0.1:{}", env("WEB_HTTP_PORT")),
        nginx_bin: "/usr/sbin/nginx".into(),
    }
}

/// A domain no other test (process or run) uses.
fn fresh_domain(tag: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros()
        % 1_000_000_000;
    format!("{tag}-{}-{n}-{micros}.web.test", std::process::id())
}

fn spec(domain: &str) -> SiteSpec {
    SiteSpec {
        domain: domain.into(),
        php_version: None,
        disk_quota_mb: Some(100),
    }
}

/// `GET /` with this Host header: status and body.
async fn get(host: &str) -> (u16, String) {
    let port: u16 = env("WEB_HTTP_PORT").parse().unwrap();
    let exchange = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let request = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        String::from_utf8_lossy(&raw).into_owned()
    };
    let text = tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .expect("nginx answers within 5 s");
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Polls briefly (a reload takes effect a moment later) until the status
/// is `want`; returns the last answer.
async fn get_until(host: &str, want: u16) -> (u16, String) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let answer = get(host).await;
        if answer.0 == want || Instant::now() > deadline {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn web_site_is_served_suspended_unsuspended_and_terminated_with_an_archive() {
    let web = node();
    let domain = fresh_domain("life");
    let www = format!("www.{domain}");

    assert!(web.ping().await.unwrap() < Duration::from_secs(5));
    assert_eq!(web.site_state(&domain).await.unwrap(), None);
    assert_eq!(
        web.ensure_site(&spec(&domain)).await.unwrap(),
        Ensured::Created
    );
    let (status, body) = get_until(&domain, 200).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains(&domain),
        "the default page names the site: {body}"
    );
    assert_eq!(get_until(&www, 200).await.0, 200, "www. is served too");
    assert_eq!(
        web.ensure_site(&spec(&domain)).await.unwrap(),
        Ensured::AlreadyThere
    );
    assert_eq!(
        web.site_state(&domain).await.unwrap(),
        Some(SiteState::Active)
    );

    assert_eq!(web.suspend(&domain).await.unwrap(), Ensured::Created);
    let (status, body) = get_until(&domain, 503).await;
    assert_eq!(status, 503);
    assert!(body.contains("suspended"), "{body}");
    assert_eq!(web.suspend(&domain).await.unwrap(), Ensured::AlreadyThere);
    assert_eq!(
        web.site_state(&domain).await.unwrap(),
        Some(SiteState::Suspended)
    );
    // Re-running the provisioning does not lift a suspension.
    assert_eq!(
        web.ensure_site(&spec(&domain)).await.unwrap(),
        Ensured::AlreadyThere
    );
    assert_eq!(get(&domain).await.0, 503);

    assert_eq!(web.unsuspend(&domain).await.unwrap(), Ensured::Created);
    let (status, body) = get_until(&domain, 200).await;
    assert_eq!(status, 200);
    assert!(body.contains(&domain), "the files were kept: {body}");
    assert_eq!(web.unsuspend(&domain).await.unwrap(), Ensured::AlreadyThere);

    let archive = web.terminate(&domain).await.unwrap().expect("an archive");
    let vhost = format!("{}/{domain}.conf", env("WEB_SITES_DIR"));
    assert!(!Path::new(&vhost).exists(), "vhost removed");
    let (status, body) = get_until(&domain, 404).await;
    assert_eq!(status, 404, "nginx's default server answers: {body}");
    assert!(!body.contains(&domain));
    let archives = format!("{}/.archive/{domain}-", env("WEB_ROOT_DIR"));
    assert!(
        archive.starts_with(&archives) && archive.ends_with(".tar.gz"),
        "{archive}"
    );
    let listing = std::process::Command::new("tar")
        .args(["-tzf", &archive])
        .output()
        .unwrap();
    let listing = String::from_utf8(listing.stdout).unwrap();
    assert!(
        listing.contains(&format!("{domain}/public/index.html")),
        "{listing}"
    );
    assert!(
        !Path::new(&format!("{}/{domain}", env("WEB_ROOT_DIR"))).exists(),
        "files removed"
    );
    assert_eq!(web.site_state(&domain).await.unwrap(), None);
    assert_eq!(
        web.terminate(&domain).await.unwrap(),
        None,
        "a missing site is fine"
    );
    assert!(matches!(
        web.suspend(&domain).await,
        Err(DriverError::Permanent(_))
    ));
}

#[tokio::test]
async fn web_ensure_site_keeps_the_customers_index_page() {
    let web = node();
    let domain = fresh_domain("keep");
    assert_eq!(
        web.ensure_site(&spec(&domain)).await.unwrap(),
        Ensured::Created
    );
    let index = format!("{}/{domain}/public/index.html", env("WEB_ROOT_DIR"));
    let write = format!("printf 'customer page' > {}", sh_quote(&index));
    assert_eq!(ssh::run(&target(), &write, None).await.unwrap().status, 0);
    assert_eq!(
        web.ensure_site(&spec(&domain)).await.unwrap(),
        Ensured::AlreadyThere
    );
    let (status, body) = get_until(&domain, 200).await;
    assert_eq!((status, body.as_str()), (200, "customer page"));

    // A PHP site is a different vhost: rewritten, the page still kept.
    let php = SiteSpec {
        php_version: Some("8.2".into()),
        ..spec(&domain)
    };
    assert_eq!(web.ensure_site(&php).await.unwrap(), Ensured::Created);
    assert_eq!(web.ensure_site(&php).await.unwrap(), Ensured::AlreadyThere);
    let vhost = std::fs::read_to_string(format!("{}/{domain}.conf", env("WEB_SITES_DIR"))).unwrap();
    assert!(vhost.contains("php8.2-fpm.sock"), "{vhost}");
    assert_eq!(get_until(&domain, 200).await.1, "customer page");
    web.terminate(&domain).await.unwrap();
}

#[tokio::test]
async fn web_configuration_nginx_refuses_is_undone_and_permanent() {
    // Passes the driver's checks, but nginx refuses the port.
    let web = WebNode {
        listen: "127.0.0.1:99999".into(),
        ..node()
    };
    let domain = fresh_domain("bad");
    let err = web.ensure_site(&spec(&domain)).await.unwrap_err();
    let DriverError::Permanent(message) = err else {
        panic!("expected a permanent error, got {err:?}");
    };
    assert!(message.contains("99999"), "nginx's own message: {message}");
    assert_eq!(
        web.site_state(&domain).await.unwrap(),
        None,
        "no broken vhost stays"
    );
    let sites = env("WEB_SITES_DIR");
    assert!(!Path::new(&format!("{sites}/{domain}.conf.new")).exists());
    assert!(!Path::new(&format!("{sites}/{domain}.conf.old")).exists());
    // nginx still works for everyone else.
    let other = fresh_domain("after-bad");
    assert_eq!(
        node().ensure_site(&spec(&other)).await.unwrap(),
        Ensured::Created
    );
    assert_eq!(get_until(&other, 200).await.0, 200);
    node().terminate(&other).await.unwrap();
    node().terminate(&domain).await.unwrap();
}

#[tokio::test]
async fn web_domains_that_are_not_canonical_are_refused_before_anything_runs() {
    // An unreachable node: a refusal here cannot come from the node.
    let web = WebNode {
        ssh: SshTarget {
            port: closed_port().await,
            ..target()
        },
        ..node()
    };
    for domain in [
        "../etc",
        "Upper.test",
        "a b.test",
        "x.test/..",
        "x'.test",
        "localhost",
    ] {
        let err = web.ensure_site(&spec(domain)).await.unwrap_err();
        assert!(
            matches!(err, DriverError::Permanent(_)),
            "{domain}: {err:?}"
        );
        assert!(matches!(
            web.terminate(domain).await,
            Err(DriverError::Permanent(_))
        ));
    }
}

#[tokio::test]
async fn web_ssh_with_a_wrong_key_or_host_key_is_permanent() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("id_other");
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(made.success());
    let wrong_key = WebNode {
        ssh: SshTarget {
            key_path: key.clone(),
            ..target()
        },
        ..node()
    };
    let err = wrong_key.ping().await.unwrap_err();
    assert!(
        matches!(&err, DriverError::Permanent(m) if m.contains("Permission denied")),
        "{err:?}"
    );

    // The node presents a host key other than the one we know.
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let key_type_and_key: Vec<&str> = public.split_whitespace().take(2).collect();
    let known = dir.path().join("known_hosts");
    let t = target();
    std::fs::write(
        &known,
        format!("[{}]:{} {}\n", t.host, t.port, key_type_and_key.join(" ")),
    )
    .unwrap();
    let wrong_host = WebNode {
        ssh: SshTarget {
            known_hosts: known,
            ..target()
        },
        ..node()
    };
    let err = wrong_host
        .ensure_site(&spec(&fresh_domain("mitm")))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, DriverError::Permanent(m) if m.contains("Host key verification failed")),
        "{err:?}"
    );
}

#[tokio::test]
async fn web_ssh_to_a_closed_port_is_transient() {
    let web = WebNode {
        ssh: SshTarget {
            port: closed_port().await,
            ..target()
        },
        ..node()
    };
    let err = web.ping().await.unwrap_err();
    assert!(
        matches!(&err, DriverError::Transient(m) if m.contains("refused")),
        "{err:?}"
    );
    let err = web
        .ensure_site(&spec(&fresh_domain("down")))
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err:?}");
}

#[tokio::test]
async fn web_remote_exit_codes_and_stdin_come_back_in_the_output() {
    let script = "cat; printf 'to stderr' >&2; exit 7";
    let out = ssh::run(&target(), script, Some(b"it's \"data\"\n"))
        .await
        .unwrap();
    assert_eq!(out.status, 7);
    assert_eq!(out.stdout, "it's \"data\"\n");
    assert_eq!(out.stderr, "to stderr");
    let word = "a 'quoted' $(word) `x` ; & |";
    let out = ssh::run(&target(), &format!("printf %s {}", sh_quote(word)), None)
        .await
        .unwrap();
    assert_eq!(out.stdout, word, "sh_quote survives the remote shell");
    let started = Instant::now();
    let slow = ssh::run_with_timeout(&target(), "sleep 5", None, Duration::from_millis(700)).await;
    let err = slow.unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "killed at the time limit"
    );
}

/// A loopback port nothing listens on.
async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}
