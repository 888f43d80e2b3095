//! The web-node driver against the harness's real sshd, nginx and PHP-FPM
//! (`WEB_SSH_*`, `WEB_HTTP_PORT`, `WEB_NGINX_CONF`, `WEB_SITES_DIR`,
//! `WEB_ROOT_DIR`, `WEB_HELPER`, `WEB_PHP_*`, `WEB_ARCHIVE_DIR`); what nginx
//! serves is checked with HTTP requests, what a customer can reach with the
//! `sftp` client and `runuser`. The tests run as root (like the harness).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use mpanel_provision::ssh::{self, SshTarget, sh_quote};
use mpanel_provision::web::{SiteSpec, SiteState, WebNode, account_user};
use mpanel_provision::{DriverError, Ensured};

pub(crate) fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run these tests under `bash scripts/test.sh`, which starts \
             the web node (sshd + nginx + PHP-FPM) and exports WEB_SSH_*, WEB_HTTP_PORT, \
             WEB_NGINX_CONF, WEB_SITES_DIR, WEB_ROOT_DIR, WEB_HELPER, WEB_PHP_* and WEB_ARCHIVE_DIR"
        )
    })
}

pub(crate) fn target() -> SshTarget {
    SshTarget {
        host: env("WEB_SSH_HOST"),
        port: env("WEB_SSH_PORT").parse().unwrap(),
        user: env("WEB_SSH_USER"),
        key_path: env("WEB_SSH_KEY").into(),
        known_hosts: env("WEB_SSH_KNOWN_HOSTS").into(),
    }
}

pub(crate) fn node() -> WebNode {
    WebNode {
        ssh: target(),
        nginx_conf: env("WEB_NGINX_CONF"),
        sites_dir: env("WEB_SITES_DIR"),
        root_dir: env("WEB_ROOT_DIR"),
        listen: format!("127.0.0.1:{}", env("WEB_HTTP_PORT")),
        nginx_bin: "/usr/sbin/nginx".into(),
        helper: env("WEB_HELPER"),
        php_socket_dir: env("WEB_PHP_SOCKET_DIR"),
        tls_listen: format!("127.0.0.1:{}", env("WEB_HTTPS_PORT")),
    }
}

/// A domain no other test (process or run) uses.
pub(crate) fn fresh_domain(tag: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros()
        % 1_000_000_000;
    format!("{tag}-{}-{n}-{micros}.web.test", std::process::id())
}

/// A static site of a new account.
pub(crate) fn spec(domain: &str) -> SiteSpec {
    SiteSpec {
        domain: domain.into(),
        user: account_user(mpanel_domain::ResourceId::new()),
        php: false,
        php_version: None,
        disk_quota_mb: Some(100),
    }
}

/// A PHP site of a new account.
pub(crate) fn php_spec(domain: &str) -> SiteSpec {
    SiteSpec {
        php: true,
        ..spec(domain)
    }
}

/// The account's home and document root on the node.
pub(crate) fn home(user: &str) -> PathBuf {
    Path::new(&env("WEB_ROOT_DIR")).join(user)
}

pub(crate) fn docroot(user: &str) -> PathBuf {
    home(user).join("web/public")
}

/// Runs `sh -c script` as `user` (`runuser`): exit status and output.
pub(crate) fn as_user(user: &str, script: &str) -> (bool, String) {
    let out = Command::new("runuser")
        .args(["-u", user, "--", "sh", "-c", script])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

pub(crate) fn user_exists(user: &str) -> bool {
    Command::new("getent")
        .args(["passwd", user])
        .stdout(Stdio::null())
        .status()
        .unwrap()
        .success()
}

/// A customer's SSH key pair (private key path, public key line).
pub(crate) fn customer_key(dir: &Path, name: &str) -> (PathBuf, String) {
    let key = dir.join(name);
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(made.success());
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    (key, public.trim().to_owned())
}

/// Runs `commands` (one sftp command a line) as `user` over SFTP with a
/// key: whether every command succeeded, and what sftp printed.
pub(crate) fn sftp_key(user: &str, key: &Path, commands: &str) -> (bool, String) {
    sftp(
        user,
        commands,
        &[
            "-i",
            key.to_str().unwrap(),
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "PasswordAuthentication=no",
            "-b",
            "-",
        ],
        &[],
    )
}

/// The same with a password (through SSH_ASKPASS: no terminal here).
pub(crate) fn sftp_password(
    user: &str,
    password: &str,
    dir: &Path,
    commands: &str,
) -> (bool, String) {
    let secret = dir.join("password.txt");
    std::fs::write(&secret, format!("{password}\n")).unwrap();
    let askpass = dir.join("askpass.sh");
    let script = format!("#!/bin/sh\ncat {}\n", sh_quote(secret.to_str().unwrap()));
    std::fs::write(&askpass, script).unwrap();
    std::fs::set_permissions(&askpass, std::fs::Permissions::from_mode(0o700)).unwrap();
    let askpass = askpass.to_str().unwrap().to_owned();
    sftp(
        user,
        commands,
        &[
            "-o",
            "PubkeyAuthentication=no",
            "-o",
            "PreferredAuthentications=password",
            "-o",
            "NumberOfPasswordPrompts=1",
        ],
        &[
            ("SSH_ASKPASS", askpass.as_str()),
            ("SSH_ASKPASS_REQUIRE", "force"),
        ],
    )
}

pub(crate) fn sftp(
    user: &str,
    commands: &str,
    args: &[&str],
    envs: &[(&str, &str)],
) -> (bool, String) {
    let mut child = Command::new("sftp")
        .args(["-P", &env("WEB_SSH_PORT")])
        .args([
            "-o",
            &format!("UserKnownHostsFile={}", env("WEB_SSH_KNOWN_HOSTS")),
        ])
        .args(["-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=5"])
        .args(args)
        .arg(format!("{user}@{}", env("WEB_SSH_HOST")))
        .envs(envs.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(commands.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A file with `text` to upload.
pub(crate) fn local_file(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

/// `GET /` with this Host header: status and body.
pub(crate) async fn get(host: &str) -> (u16, String) {
    get_path(host, "/").await
}

/// `GET path` with this Host header: status and body.
pub(crate) async fn get_path(host: &str, path: &str) -> (u16, String) {
    let port: u16 = env("WEB_HTTP_PORT").parse().unwrap();
    let exchange = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        // HTTP/1.0: the body comes whole, never chunked.
        let request = format!("GET {path} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n");
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
pub(crate) async fn get_until(host: &str, want: u16) -> (u16, String) {
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
    let site = php_spec(&domain);
    let user = site.user.clone();

    assert!(web.ping().await.unwrap() < Duration::from_secs(5));
    assert_eq!(web.site_state(&domain).await.unwrap(), None);
    assert_eq!(web.ensure_site(&site).await.unwrap(), Ensured::Created);
    let (status, body) = get_until(&domain, 200).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains(&domain),
        "the default page names the site: {body}"
    );
    assert_eq!(get_until(&www, 200).await.0, 200, "www. is served too");
    assert_eq!(web.ensure_site(&site).await.unwrap(), Ensured::AlreadyThere);
    assert_eq!(
        web.site_state(&domain).await.unwrap(),
        Some(SiteState::Active)
    );
    // The account: its own user, a root-owned chroot home, the writable
    // part 0750 (setgid) with nginx's group, PHP's tmp private.
    assert!(user_exists(&user));
    let mode = |p: &Path| {
        let out = Command::new("stat")
            .args(["-c", "%U:%G %a"])
            .arg(p)
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let nginx_group = env("WEB_SSH_USER");
    assert_eq!(mode(&home(&user)), "root:root 755");
    assert_eq!(
        mode(&home(&user).join("web")),
        format!("{user}:{nginx_group} 2750")
    );
    assert_eq!(mode(&docroot(&user)), format!("{user}:{nginx_group} 2750"));
    assert_eq!(mode(&home(&user).join("tmp")), format!("{user}:{user} 700"));
    let socket = Path::new(&env("WEB_PHP_SOCKET_DIR")).join(format!("{user}.sock"));
    assert_eq!(mode(&socket), format!("{user}:{nginx_group} 660"));
    // Another account with the same domain is refused.
    let thief = php_spec(&domain);
    assert!(matches!(
        web.ensure_site(&thief).await,
        Err(DriverError::Permanent(m)) if m.contains(&user)
    ));
    assert!(
        !user_exists(&thief.user),
        "nothing made for the other account"
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
    assert_eq!(web.ensure_site(&site).await.unwrap(), Ensured::AlreadyThere);
    assert_eq!(get(&domain).await.0, 503);

    assert_eq!(web.unsuspend(&domain).await.unwrap(), Ensured::Created);
    let (status, body) = get_until(&domain, 200).await;
    assert_eq!(status, 200);
    assert!(body.contains(&domain), "the files were kept: {body}");
    assert_eq!(web.unsuspend(&domain).await.unwrap(), Ensured::AlreadyThere);

    let archive = web
        .terminate(&domain, &user)
        .await
        .unwrap()
        .expect("an archive");
    let vhost = format!("{}/{domain}.conf", env("WEB_SITES_DIR"));
    assert!(!Path::new(&vhost).exists(), "vhost removed");
    let (status, body) = get_until(&domain, 404).await;
    assert_eq!(status, 404, "nginx's default server answers: {body}");
    assert!(!body.contains(&domain));
    // (e) user, pool, socket and home are gone; the archive is private and
    // outside every web root.
    assert!(!user_exists(&user), "the account's user was removed");
    let pool = Path::new(&env("WEB_PHP_POOL_DIR")).join(format!("{user}.conf"));
    assert!(!pool.exists(), "the pool was removed");
    assert!(!socket.exists(), "the socket was removed");
    assert!(!home(&user).exists(), "the home was removed");
    let archives = format!("{}/{domain}-{user}-", env("WEB_ARCHIVE_DIR"));
    assert!(
        archive.starts_with(&archives) && archive.ends_with(".tar.gz"),
        "{archive}"
    );
    assert!(!archive.starts_with(&env("WEB_ROOT_DIR")));
    let meta = std::fs::metadata(&archive).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{archive}");
    let listing = Command::new("tar")
        .args(["-tzf", &archive])
        .output()
        .unwrap();
    let listing = String::from_utf8(listing.stdout).unwrap();
    assert!(listing.contains("web/public/index.html"), "{listing}");
    assert_eq!(web.site_state(&domain).await.unwrap(), None);
    assert_eq!(
        web.terminate(&domain, &user).await.unwrap(),
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
    let site = spec(&domain);
    let user = site.user.clone();
    assert_eq!(web.ensure_site(&site).await.unwrap(), Ensured::Created);
    let index = docroot(&user).join("index.html");
    let write = format!(
        "printf 'customer page' > {}",
        sh_quote(index.to_str().unwrap())
    );
    let (ok, text) = as_user(&user, &write);
    assert!(ok, "{text}");
    assert_eq!(web.ensure_site(&site).await.unwrap(), Ensured::AlreadyThere);
    let (status, body) = get_until(&domain, 200).await;
    assert_eq!((status, body.as_str()), (200, "customer page"));

    // A PHP site is a different vhost and a pool: rewritten, the page kept.
    let php = SiteSpec {
        php: true,
        php_version: Some("8.2".into()),
        ..site.clone()
    };
    assert_eq!(web.ensure_site(&php).await.unwrap(), Ensured::Created);
    assert_eq!(web.ensure_site(&php).await.unwrap(), Ensured::AlreadyThere);
    let vhost = std::fs::read_to_string(format!("{}/{domain}.conf", env("WEB_SITES_DIR"))).unwrap();
    assert!(vhost.contains(&format!("{user}.sock")), "{vhost}");
    assert_eq!(get_until(&domain, 200).await.1, "customer page");
    // And back: the pool goes.
    assert_eq!(web.ensure_site(&site).await.unwrap(), Ensured::Created);
    let pool = Path::new(&env("WEB_PHP_POOL_DIR")).join(format!("{user}.conf"));
    assert!(!pool.exists());
    web.terminate(&domain, &user).await.unwrap();
}

#[tokio::test]
async fn web_a_name_another_vhost_serves_is_refused_not_shared() {
    // A vhost mPanel did not write already answers the name (and its www.):
    // nginx would only warn and pick one; the install is refused instead.
    let domain = fresh_domain("clash");
    let sites = env("WEB_SITES_DIR");
    let stray = format!("{sites}/zz-stray-{domain}.conf");
    std::fs::write(
        &stray,
        format!(
            "server {{ listen {}; server_name www.{domain}; return 200 'stray'; }}\n",
            node().listen
        ),
    )
    .unwrap();
    let claim = spec(&domain);
    let user = claim.user.clone();
    let err = node().ensure_site(&claim).await.unwrap_err();
    let DriverError::Permanent(message) = err else {
        panic!("expected a permanent error, got {err:?}");
    };
    assert!(message.contains("conflicting server name"), "{message}");
    assert_eq!(
        node().site_state(&domain).await.unwrap(),
        None,
        "no vhost stays"
    );
    std::fs::remove_file(&stray).unwrap();
    node().terminate(&domain, &user).await.unwrap();
}

#[tokio::test]
async fn web_configuration_nginx_refuses_is_undone_and_permanent() {
    // Passes the driver's checks, but nginx refuses the port.
    let web = WebNode {
        listen: "127.0.0.1:99999".into(),
        ..node()
    };
    let domain = fresh_domain("bad");
    let bad = spec(&domain);
    let user = bad.user.clone();
    let err = web.ensure_site(&bad).await.unwrap_err();
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
    let good = spec(&other);
    let other_user = good.user.clone();
    assert_eq!(node().ensure_site(&good).await.unwrap(), Ensured::Created);
    assert_eq!(get_until(&other, 200).await.0, 200);
    node().terminate(&other, &other_user).await.unwrap();
    node().terminate(&domain, &user).await.unwrap();
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
            web.terminate(domain, "mp0123456789ab").await,
            Err(DriverError::Permanent(_))
        ));
    }
    for user in ["root", "mpanel-web", "mp'x", "../mp1234"] {
        let s = SiteSpec {
            user: user.into(),
            ..spec("t.test")
        };
        assert!(matches!(
            web.ensure_site(&s).await,
            Err(DriverError::Permanent(_))
        ));
        assert!(matches!(
            web.terminate("t.test", user).await,
            Err(DriverError::Permanent(_))
        ));
        assert!(matches!(
            web.disk_usage(user).await,
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
