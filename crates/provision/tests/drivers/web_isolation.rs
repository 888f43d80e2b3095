//! Accounts on one web node cannot reach each other: each runs its own PHP
//! as its own user, files and SFTP stay inside the account, and a
//! suspended account runs nothing and logs in nowhere (real sshd, nginx and
//! PHP-FPM, like the rest of the web driver's tests).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use mpanel_provision::DriverError;
use mpanel_provision::web::Usage;

use crate::web::*;

fn probe_php(other: &Path) -> String {
    format!(
        r#"<?php
echo "user=", posix_getpwuid(posix_geteuid())['name'], "\n";
$r = @file_get_contents('{other}');
echo "other=", $r === false ? "DENIED" : "LEAKED:" . $r, "\n";
$l = @scandir('{dir}');
echo "list=", $l === false ? "DENIED" : "LEAKED:" . implode(',', $l), "\n";
file_put_contents(__DIR__ . '/written-by-php.txt', 'private to my account');
echo "wrote\n";
"#,
        other = other.display(),
        dir = other.parent().unwrap().display(),
    )
}

#[tokio::test]
async fn web_accounts_run_their_own_php_and_cannot_reach_each_other() {
    let web = node();
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let (a_domain, b_domain) = (fresh_domain("iso-a"), fresh_domain("iso-b"));
    let (a, b) = (php_spec(&a_domain), php_spec(&b_domain));
    web.ensure_site(&a).await.unwrap();
    web.ensure_site(&b).await.unwrap();
    let (a_key, a_pub) = customer_key(dir.path(), "a");
    let (b_key, b_pub) = customer_key(dir.path(), "b");
    web.set_sftp_keys(&a.user, &[a_pub]).await.unwrap();
    web.set_sftp_keys(&b.user, &[b_pub]).await.unwrap();

    // B's secret, uploaded over SFTP by B.
    let secret = local_file(dir.path(), "secret.txt", "b's secret");
    let (ok, text) = sftp_key(
        &b.user,
        &b_key,
        &format!("put {secret} /web/public/secret.txt\n"),
    );
    assert!(ok, "{text}");
    let b_secret = docroot(&b.user).join("secret.txt");
    assert!(b_secret.exists());

    // (a) A uploads index.php over SFTP; nginx runs it in A's own pool.
    let probe = local_file(dir.path(), "index.php", &probe_php(&b_secret));
    let (ok, text) = sftp_key(
        &a.user,
        &a_key,
        &format!("put {probe} /web/public/index.php\n"),
    );
    assert!(ok, "{text}");
    let (status, body) = get_until(&a_domain, 200).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&format!("user={}\n", a.user)), "{body}");
    // (b) A's PHP cannot read or list B's files.
    assert!(body.contains("other=DENIED\n"), "{body}");
    assert!(body.contains("list=DENIED\n"), "{body}");
    assert!(body.contains("wrote\n"), "{body}");

    // (c) What A's site wrote is A's, and B's user cannot read it — not
    // even without PHP's open_basedir (plain file permissions).
    let written = docroot(&a.user).join("written-by-php.txt");
    let (ok, text) = as_user(&a.user, &format!("cat {}", written.display()));
    assert!(ok && text == "private to my account", "{text}");
    let (ok, text) = as_user(&b.user, &format!("cat {}", written.display()));
    assert!(!ok && text.contains("Permission denied"), "{text}");
    let (ok, text) = as_user(
        &b.user,
        &format!("ls {}", home(&a.user).join("web").display()),
    );
    assert!(!ok, "{text}");
    // nginx (which can read both) does not follow B's link to A's file.
    let link = docroot(&b.user).join("link.txt");
    let (ok, text) = as_user(
        &b.user,
        &format!("ln -s {} {}", written.display(), link.display()),
    );
    assert!(ok, "{text}");
    let (status, body) = get_path(&b_domain, "/link.txt").await;
    assert_eq!(status, 403, "{body}");
    assert!(!body.contains("private to my account"));
    // Nor B's whole document root swapped for a link to A's (every
    // component of the path is checked, the document root's own included).
    let b_web = home(&b.user).join("web");
    let swap = format!(
        "mv {web}/public {web}/kept && ln -s {a_root} {web}/public",
        web = b_web.display(),
        a_root = docroot(&a.user).display()
    );
    let (ok, text) = as_user(&b.user, &swap);
    assert!(ok, "{text}");
    let (status, body) = get_path(&b_domain, "/written-by-php.txt").await;
    assert!(!body.contains("private to my account"), "{status}: {body}");
    assert_eq!(status, 403, "{body}");
    let restore = format!(
        "rm {web}/public && mv {web}/kept {web}/public",
        web = b_web.display()
    );
    let (ok, text) = as_user(&b.user, &restore);
    assert!(ok, "{text}");
    // And B's PHP cannot read it either.
    let probe_b = local_file(dir.path(), "probe.php", &probe_php(&written));
    let (ok, text) = sftp_key(
        &b.user,
        &b_key,
        &format!("put {probe_b} /web/public/probe.php\n"),
    );
    assert!(ok, "{text}");
    let (status, body) = get_path(&b_domain, "/probe.php").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&format!("user={}\n", b.user)), "{body}");
    assert!(body.contains("other=DENIED\n"), "{body}");

    // (d) A's SFTP is chrooted to A's home: `/` is the home, B's path
    // does not exist there, `..` leads nowhere.
    let (ok, text) = sftp_key(&a.user, &a_key, "ls -1 /\ncd ..\nls -1\n");
    assert!(ok, "{text}");
    let names: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with("sftp>"))
        .map(|l| l.trim_start_matches('/'))
        .collect();
    assert_eq!(names, ["tmp", "web", "tmp", "web"], "{text}");
    let (ok, text) = sftp_key(
        &a.user,
        &a_key,
        &format!(
            "get {} {}\n",
            b_secret.display(),
            dir.path().join("stolen").display()
        ),
    );
    assert!(!ok, "{text}");
    assert!(!dir.path().join("stolen").exists());
    let (ok, text) = sftp_key(&a.user, &a_key, "get /../../etc/passwd /dev/null\n");
    assert!(!ok, "{text}");
    // Nor a shell: the account gets SFTP only.
    let shell = Command::new("ssh")
        .args(["-p", &env("WEB_SSH_PORT"), "-i", a_key.to_str().unwrap()])
        .args([
            "-o",
            &format!("UserKnownHostsFile={}", env("WEB_SSH_KNOWN_HOSTS")),
        ])
        .args(["-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes"])
        .arg(format!("{}@{}", a.user, env("WEB_SSH_HOST")))
        .arg("id")
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&shell.stdout).contains("uid="),
        "{shell:?}"
    );

    // The disk use is measured on the node.
    let used_before = web.disk_usage(&a.user).await.unwrap();
    let big = local_file(dir.path(), "big.bin", &"x".repeat(1 << 20));
    let (ok, text) = sftp_key(&a.user, &a_key, &format!("put {big} /web/big.bin\n"));
    assert!(ok, "{text}");
    let used = web.disk_usage(&a.user).await.unwrap();
    assert!(used >= used_before + (1 << 20), "{used_before} -> {used}");
    // All of a node's accounts in one session: the same figures, and 0 for
    // an account without a home.
    let gone = "mp000000000000".to_owned();
    let all = web
        .disk_usage_all(&[a.user.clone(), b.user.clone(), gone.clone()])
        .await
        .unwrap();
    assert_eq!(all[&a.user], Usage::Bytes(used));
    assert_eq!(
        all[&b.user],
        Usage::Bytes(web.disk_usage(&b.user).await.unwrap())
    );
    assert_eq!(all[&gone], Usage::Bytes(0));
    assert!(
        web.disk_usage_all(&["root".into()]).await.is_err(),
        "not an account name"
    );

    web.terminate(&a_domain, &a.user).await.unwrap();
    web.terminate(&b_domain, &b.user).await.unwrap();
    assert_eq!(web.disk_usage(&a.user).await.unwrap(), 0);
}

#[tokio::test]
async fn web_a_suspended_account_answers_503_runs_no_php_and_refuses_sftp() {
    let web = node();
    let dir = tempfile::tempdir().unwrap();
    let domain = fresh_domain("susp");
    let site = php_spec(&domain);
    let user = site.user.clone();
    web.ensure_site(&site).await.unwrap();
    let (key, public) = customer_key(dir.path(), "c");
    web.set_sftp_keys(&user, &[public]).await.unwrap();
    let hash = Command::new("openssl")
        .args(["passwd", "-6", "a customer's sftp password"])
        .output()
        .unwrap();
    let hash = String::from_utf8(hash.stdout).unwrap().trim().to_owned();
    web.set_sftp_password(&user, &hash).await.unwrap();
    let probe = local_file(dir.path(), "index.php", "<?php echo 'php ran';");
    let (ok, text) = sftp_key(&user, &key, &format!("put {probe} /web/public/index.php\n"));
    assert!(ok, "{text}");
    let (ok, text) = sftp_password(&user, "a customer's sftp password", dir.path(), "ls /\n");
    assert!(ok, "the password logs in: {text}");
    let (ok, text) = sftp_password(&user, "a wrong password", dir.path(), "ls /\n");
    assert!(!ok, "{text}");
    assert_eq!(get_until(&domain, 200).await.1, "php ran");

    // (f) Suspended: 503, no pool, no SFTP with the key or the password —
    // also after the password is changed while suspended.
    web.suspend(&domain).await.unwrap();
    let (status, body) = get_until(&domain, 503).await;
    assert_eq!(status, 503, "{body}");
    assert!(!body.contains("php ran"));
    assert_eq!(get_path(&domain, "/index.php").await.0, 503);
    let pool = Path::new(&env("WEB_PHP_POOL_DIR")).join(format!("{user}.conf"));
    assert!(!pool.exists(), "the pool does not run while suspended");
    let (ok, text) = sftp_key(&user, &key, "ls /\n");
    assert!(!ok && text.contains("Permission denied"), "{text}");
    web.set_sftp_password(&user, &hash).await.unwrap();
    let (ok, text) = sftp_password(&user, "a customer's sftp password", dir.path(), "ls /\n");
    assert!(!ok, "{text}");

    web.unsuspend(&domain).await.unwrap();
    assert_eq!(get_until(&domain, 200).await.1, "php ran");
    assert!(pool.exists());
    let (ok, text) = sftp_key(&user, &key, "ls /\n");
    assert!(ok, "{text}");
    let (ok, text) = sftp_password(&user, "a customer's sftp password", dir.path(), "ls /\n");
    assert!(ok, "{text}");

    // Bad input never reaches the node.
    for bad in ["plain", "$1$abcdefgh$x", "$6$abc def", "$6$a\nb:c"] {
        assert!(matches!(
            web.set_sftp_password(&user, bad).await,
            Err(DriverError::Permanent(_))
        ));
    }
    for bad in [
        "command=\"x\" ssh-ed25519 AAAA",
        "ssh-ed25519 AAAA\nssh-rsa BBBB",
        "ssh-ed25519",
        "ssh-ed25519 ===",
    ] {
        assert!(matches!(
            web.set_sftp_keys(&user, &[bad.to_owned()]).await,
            Err(DriverError::Permanent(_))
        ));
    }
    web.terminate(&domain, &user).await.unwrap();
}

/// The helper runs as root and sources its settings file: a copy of it
/// beside settings that others than root can write refuses to run; the
/// same settings made root's only, it runs.
#[test]
fn web_helper_refuses_settings_others_can_write() {
    let installed = env("WEB_HELPER");
    let installed = Path::new(installed.trim_start_matches("sudo -n "));
    let dir = tempfile::tempdir().unwrap();
    let helper = dir.path().join("mpanel-web-helper");
    std::fs::copy(installed, &helper).unwrap();
    let conf = dir.path().join("mpanel-web-helper.conf");
    std::fs::copy(installed.with_extension("conf"), &conf).unwrap();
    let run = || {
        Command::new(&helper)
            .args(["du", "mpnosuchuser1"])
            .output()
            .unwrap()
    };
    for mode in [0o666, 0o620, 0o602] {
        std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(mode)).unwrap();
        let out = run();
        assert_eq!(out.status.code(), Some(1), "mode {mode:o}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("writable by others than root"), "{err}");
    }
    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "0\n");
}

/// A Unix user the test made itself, removed (with the helper's lock
/// file for it) when dropped.
struct ForeignUser(String);

impl Drop for ForeignUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.0).status();
        let lock = Path::new(&env("WEB_PHP_POOL_DIR"))
            .join(".mpanel-locks")
            .join(&self.0);
        let _ = std::fs::remove_file(lock);
    }
}

/// A user of the account's name that mPanel did not make (another home)
/// is not taken over: the site is refused as permanent, and the user and
/// the node's sites stay as they were.
#[tokio::test]
async fn web_a_user_mpanel_did_not_make_is_not_taken_over() {
    let web = node();
    let site = php_spec(&fresh_domain("foreign"));
    let made = Command::new("useradd")
        .args([
            "--no-create-home",
            "--home-dir",
            "/nonexistent-foreign",
            "--shell",
        ])
        .args(["/usr/sbin/nologin", &site.user])
        .status()
        .unwrap();
    assert!(made.success());
    let _user = ForeignUser(site.user.clone());
    let err = web.ensure_site(&site).await.unwrap_err();
    assert!(
        matches!(&err, DriverError::Permanent(m) if m.contains("is not an mPanel account")),
        "{err:?}"
    );
    assert_eq!(
        web.site_state(&site.domain).await.unwrap(),
        None,
        "no vhost"
    );
    assert!(!home(&site.user).exists());
}
