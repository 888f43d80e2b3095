//! The web node's locks: sites made at once each end up served with their
//! own PHP, one account's slow command does not hold up another account,
//! and a pool written but never loaded gets loaded.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use mpanel_provision::Ensured;
use mpanel_provision::ssh::sh_quote;
use mpanel_provision::web::SiteSpec;

use crate::web::{as_user, docroot, env, fresh_domain, get_until, node, php_spec};

/// The site's user writes an `index.php` that prints who runs it; the site
/// answers with that user's name.
pub(crate) async fn assert_runs_php_as_its_user(site: &SiteSpec) {
    let index = docroot(&site.user).join("index.php");
    let write = format!(
        "printf '%s' '<?php echo \"php=\", posix_getpwuid(posix_geteuid())[\"name\"];' > {}",
        sh_quote(index.to_str().unwrap())
    );
    let (ok, text) = as_user(&site.user, &write);
    assert!(ok, "{text}");
    let (status, body) = get_until(&site.domain, 200).await;
    assert_eq!((status, body), (200, format!("php={}", site.user)));
}

/// Sites made at the same moment (the helper's lock takes them in turn):
/// each is made, and each then runs its PHP in its own pool as its own
/// user.
#[tokio::test]
async fn web_sites_made_at_once_each_run_their_own_php() {
    let sites: Vec<SiteSpec> = (0..4)
        .map(|i| php_spec(&fresh_domain(&format!("many{i}"))))
        .collect();
    let mut made = tokio::task::JoinSet::new();
    for site in &sites {
        let site = site.clone();
        made.spawn(async move { node().ensure_site(&site).await });
    }
    while let Some(ensured) = made.join_next().await {
        assert_eq!(ensured.unwrap().unwrap(), Ensured::Created);
    }
    for site in &sites {
        assert_runs_php_as_its_user(site).await;
    }
    for site in &sites {
        node().terminate(&site.domain, &site.user).await.unwrap();
    }
}

/// A helper stopped after writing a pool and before reloading PHP-FPM
/// (a lost SSH connection, a node restarted) leaves the pool on disk but
/// not loaded: the next ensure loads it, so the retried job makes the site
/// work instead of waiting for a socket that never comes.
#[tokio::test]
async fn web_a_pool_written_but_never_loaded_is_loaded_by_the_next_ensure() {
    let web = node();
    let stopped = php_spec(&fresh_domain("unloaded"));
    assert_eq!(web.ensure_site(&stopped).await.unwrap(), Ensured::Created);
    let pools = PathBuf::from(env("WEB_PHP_POOL_DIR"));
    let pool = pools.join(format!("{}.conf", stopped.user));
    let aside = pools.join(format!("{}.aside", stopped.user));
    std::fs::rename(&pool, &aside).unwrap();
    // Another site's reload unloads it; then its file is back, unloaded.
    let other = php_spec(&fresh_domain("reloads"));
    assert_eq!(web.ensure_site(&other).await.unwrap(), Ensured::Created);
    let socket = Path::new(&env("WEB_PHP_SOCKET_DIR")).join(format!("{}.sock", stopped.user));
    assert!(!socket.exists(), "PHP-FPM still has the pool");
    // Back, written now (a rename keeps the old time).
    std::fs::rename(&aside, &pool).unwrap();
    let file = std::fs::File::options().append(true).open(&pool).unwrap();
    file.set_modified(SystemTime::now()).unwrap();

    // Created, or already there when another test's reload loaded it
    // meanwhile; either way PHP answers.
    web.ensure_site(&stopped).await.unwrap();
    assert_runs_php_as_its_user(&stopped).await;
    for site in [&stopped, &other] {
        web.terminate(&site.domain, &site.user).await.unwrap();
    }
}

/// The helper run as the driver runs it (`WEB_HELPER`), here as root.
fn helper(args: &str) -> Command {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!("{} {args}", env("WEB_HELPER")));
    command
}

/// One account's command that takes long (the archive of a large site,
/// here `keys` reading a slow stdin) holds that account only: another
/// account's site is made meanwhile, the same account's waits its turn.
#[tokio::test]
async fn web_one_accounts_slow_command_does_not_hold_up_another_account() {
    let web = node();
    let (slow, other) = (
        php_spec(&fresh_domain("slow")),
        php_spec(&fresh_domain("other")),
    );
    assert_eq!(web.ensure_site(&slow).await.unwrap(), Ensured::Created);

    let mut keys = helper(&format!("keys {}", slow.user))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let marker = format!("held-{}", slow.user);
    let line = format!("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ {marker}\n");
    let mut stdin = keys.stdin.take().unwrap();
    stdin.write_all(line.as_bytes()).unwrap();
    stdin.flush().unwrap();
    // The helper has the account's lock once it has written the line to
    // its temporary file.
    let keys_dir = PathBuf::from(env("WEB_SFTP_KEYS_DIR"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !holds_line(&keys_dir, &marker) {
        assert!(
            Instant::now() < deadline,
            "the keys command never read its line"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let same = tokio::spawn({
        let (web, slow) = (web.clone(), slow.clone());
        async move { web.ensure_site(&slow).await }
    });
    assert_eq!(web.ensure_site(&other).await.unwrap(), Ensured::Created);
    assert!(
        keys.try_wait().unwrap().is_none(),
        "the slow command went on"
    );
    assert!(!same.is_finished(), "the same account waits for its lock");

    drop(stdin);
    let out = keys.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(same.await.unwrap().unwrap(), Ensured::AlreadyThere);
    let authorized = std::fs::read_to_string(keys_dir.join(&slow.user)).unwrap();
    assert!(authorized.contains(&marker), "{authorized}");
    assert_runs_php_as_its_user(&other).await;
    for site in [&slow, &other] {
        web.terminate(&site.domain, &site.user).await.unwrap();
    }
}

/// A helper's temporary keys file (`.keys.*`) holds `marker`.
fn holds_line(keys_dir: &Path, marker: &str) -> bool {
    std::fs::read_dir(keys_dir).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            e.file_name().to_string_lossy().starts_with(".keys.")
                && std::fs::read_to_string(e.path()).is_ok_and(|t| t.contains(marker))
        })
    })
}
