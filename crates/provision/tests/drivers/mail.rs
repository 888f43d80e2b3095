//! The mail-node driver against the harness's real sshd and Dovecot
//! (`MAIL_SSH_*`, `MAIL_IMAP_PORT`, `MAIL_PASSWD_FILE`, `MAIL_ROOT_DIR`,
//! `MAIL_UID`, `MAIL_GID`, `MAIL_RELOAD_CMD`); mailboxes are checked with
//! IMAP logins.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use mpanel_provision::mail::{MailNode, MailboxInfo, hash_password};
use mpanel_provision::ssh::{SshTarget, sh_quote};
use mpanel_provision::{DriverError, Ensured};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run these tests under `bash scripts/test.sh`, which starts \
             the mail node (sshd + Dovecot) and exports MAIL_SSH_*, MAIL_IMAP_PORT, \
             MAIL_PASSWD_FILE, MAIL_ROOT_DIR, MAIL_UID, MAIL_GID and MAIL_RELOAD_CMD"
        )
    })
}

fn node() -> MailNode {
    MailNode {
        ssh: SshTarget {
            host: env("MAIL_SSH_HOST"),
            port: env("MAIL_SSH_PORT").parse().unwrap(),
            user: env("MAIL_SSH_USER"),
            key_path: env("MAIL_SSH_KEY").into(),
            known_hosts: env("MAIL_SSH_KNOWN_HOSTS").into(),
        },
        passwd_file: env("MAIL_PASSWD_FILE"),
        root_dir: env("MAIL_ROOT_DIR"),
        uid: env("MAIL_UID").parse().unwrap(),
        gid: env("MAIL_GID").parse().unwrap(),
        reload_cmd: env("MAIL_RELOAD_CMD"),
    }
}

/// A mail domain no other test (process or run) uses.
fn fresh_domain(tag: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros()
        % 1_000_000_000;
    format!("{tag}-{}-{n}-{micros}.mail.test", std::process::id())
}

/// How an IMAP LOGIN ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Login {
    Ok,
    /// Wrong user or password.
    Refused,
    /// The right password, refused for the reason Dovecot gives.
    Disabled(String),
    /// Anything else (a reload in progress, say).
    Other(String),
}

/// One IMAP LOGIN on the harness's Dovecot, spoken directly.
async fn login(user: &str, password: &str) -> Login {
    let port: u16 = env("MAIL_IMAP_PORT").parse().unwrap();
    let talk = async {
        let stream = TcpStream::connect(("127.0.0.1", port)).await?;
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        let greeting = lines.next_line().await?.unwrap_or_default();
        if !greeting.starts_with("* OK") {
            // `* BYE Shutting down`: a login process retiring on a reload.
            return Ok(format!("greeting: {greeting}"));
        }
        let command = format!("a LOGIN \"{user}\" \"{password}\"\r\n");
        write.write_all(command.as_bytes()).await?;
        while let Some(line) = lines.next_line().await? {
            if let Some(reply) = line.strip_prefix("a ") {
                let _ = write.write_all(b"b LOGOUT\r\n").await;
                return Ok(reply.to_owned());
            }
        }
        Ok::<_, std::io::Error>("connection closed".to_owned())
    };
    let reply = tokio::time::timeout(Duration::from_secs(10), talk)
        .await
        .expect("Dovecot answers a LOGIN within 10 s")
        .unwrap_or_else(|e| format!("connection failed: {e}"));
    if reply.starts_with("OK") {
        Login::Ok
    } else if reply.contains("[AUTHENTICATIONFAILED]") {
        Login::Refused
    } else if reply.contains("[CONTACTADMIN]") {
        Login::Disabled(reply)
    } else {
        Login::Other(reply)
    }
}

/// Logs in until the outcome is of the kind `want` (a concurrent test's
/// reload can interrupt one attempt), for up to 3 s; returns the last.
async fn login_until(user: &str, password: &str, want: fn(&Login) -> bool) -> Login {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let outcome = login(user, password).await;
        if want(&outcome) || Instant::now() > deadline {
            return outcome;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn is_ok(l: &Login) -> bool {
    *l == Login::Ok
}

fn is_refused(l: &Login) -> bool {
    *l == Login::Refused
}

fn is_suspended(l: &Login) -> bool {
    matches!(l, Login::Disabled(reply) if reply.contains("suspended"))
}

/// The lines of the passwd-file for `address`.
fn passwd_lines(address: &str) -> Vec<String> {
    let content = std::fs::read_to_string(env("MAIL_PASSWD_FILE")).unwrap();
    let prefix = format!("{address}:");
    content
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn mail_mailbox_logs_in_is_suspended_changes_password_and_is_deleted() {
    let mail = node();
    let domain = fresh_domain("life");
    let address = format!("alice.b-x@{domain}");
    let hash = hash_password("first secret").unwrap();

    assert!(mail.ping().await.unwrap() < Duration::from_secs(5));
    assert_eq!(
        mail.ensure_mailbox(&address, &hash, 100).await.unwrap(),
        Ensured::Created
    );
    assert_eq!(
        login_until(&address, "first secret", is_ok).await,
        Login::Ok
    );
    assert_eq!(
        login_until(&address, "wrong secret", is_refused).await,
        Login::Refused
    );
    assert_eq!(
        mail.ensure_mailbox(&address, &hash, 100).await.unwrap(),
        Ensured::AlreadyThere
    );
    let lines = passwd_lines(&address);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].ends_with("::userdb_quota_rule=*:storage=100M"),
        "{}",
        lines[0]
    );

    let home = format!("{}/{domain}/alice.b-x", env("MAIL_ROOT_DIR"));
    for sub in ["cur", "new", "tmp"] {
        let meta = std::fs::metadata(format!("{home}/Maildir/{sub}")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o700, "{sub}");
        assert_eq!(meta.uid().to_string(), env("MAIL_UID"));
    }
    let file = std::fs::metadata(env("MAIL_PASSWD_FILE")).unwrap();
    assert_eq!(
        file.permissions().mode() & 0o777,
        0o640,
        "readable by Dovecot's group only"
    );

    // A quota change rewrites the line.
    assert_eq!(
        mail.ensure_mailbox(&address, &hash, 250).await.unwrap(),
        Ensured::Created
    );
    assert_eq!(
        mail.mailboxes(&domain).await.unwrap(),
        vec![MailboxInfo {
            address: address.clone(),
            quota_mb: 250,
            suspended: false
        }]
    );

    assert_eq!(mail.suspend(&address).await.unwrap(), Ensured::Created);
    let outcome = login_until(&address, "first secret", is_suspended).await;
    assert!(
        is_suspended(&outcome),
        "the right password fails: {outcome:?}"
    );
    assert_eq!(mail.suspend(&address).await.unwrap(), Ensured::AlreadyThere);
    // Re-running the provisioning does not lift a suspension.
    assert_eq!(
        mail.ensure_mailbox(&address, &hash, 250).await.unwrap(),
        Ensured::AlreadyThere
    );
    assert!(mail.mailboxes(&domain).await.unwrap()[0].suspended);
    let outcome = login_until(&address, "first secret", is_suspended).await;
    assert!(is_suspended(&outcome), "still suspended: {outcome:?}");

    assert_eq!(mail.unsuspend(&address).await.unwrap(), Ensured::Created);
    assert_eq!(
        login_until(&address, "first secret", is_ok).await,
        Login::Ok
    );
    assert_eq!(
        mail.unsuspend(&address).await.unwrap(),
        Ensured::AlreadyThere
    );

    let new_hash = hash_password("second secret").unwrap();
    assert_eq!(
        mail.set_password(&address, &new_hash).await.unwrap(),
        Ensured::Created
    );
    assert_eq!(
        login_until(&address, "first secret", is_refused).await,
        Login::Refused
    );
    assert_eq!(
        login_until(&address, "second secret", is_ok).await,
        Login::Ok
    );
    assert_eq!(
        mail.set_password(&address, &new_hash).await.unwrap(),
        Ensured::AlreadyThere
    );

    assert_eq!(mail.delete(&address).await.unwrap(), Ensured::Created);
    assert_eq!(
        login_until(&address, "second secret", is_refused).await,
        Login::Refused
    );
    assert!(passwd_lines(&address).is_empty());
    assert!(!std::path::Path::new(&home).exists(), "mail removed");
    assert_eq!(mail.mailboxes(&domain).await.unwrap(), vec![]);
    assert_eq!(
        mail.delete(&address).await.unwrap(),
        Ensured::AlreadyThere,
        "absent is fine"
    );
    let err = mail.set_password(&address, &new_hash).await.unwrap_err();
    assert!(matches!(err, DriverError::Permanent(_)), "{err:?}");
}

#[tokio::test]
async fn mail_concurrent_edits_of_the_passwd_file_lose_nothing() {
    let mail = node();
    let domain = fresh_domain("many");
    let hash = hash_password("shared secret").unwrap();
    let mut jobs = tokio::task::JoinSet::new();
    for i in 0..10 {
        let (mail, hash, address) = (mail.clone(), hash.clone(), format!("user{i}@{domain}"));
        jobs.spawn(async move { mail.ensure_mailbox(&address, &hash, 10 + i).await });
    }
    while let Some(result) = jobs.join_next().await {
        assert_eq!(result.unwrap().unwrap(), Ensured::Created);
    }
    let mut listed: Vec<String> = mail
        .mailboxes(&domain)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.address)
        .collect();
    listed.sort();
    let mut expected: Vec<String> = (0..10).map(|i| format!("user{i}@{domain}")).collect();
    expected.sort();
    assert_eq!(listed, expected);
    for address in &expected {
        assert_eq!(passwd_lines(address).len(), 1, "{address}");
    }
    assert_eq!(
        login_until(&expected[3], "shared secret", is_ok).await,
        Login::Ok
    );
    assert_eq!(
        login_until(&expected[9], "shared secret", is_ok).await,
        Login::Ok
    );

    for address in expected {
        let mail = mail.clone();
        jobs.spawn(async move { mail.delete(&address).await });
    }
    while let Some(result) = jobs.join_next().await {
        assert_eq!(result.unwrap().unwrap(), Ensured::Created);
    }
    assert_eq!(mail.mailboxes(&domain).await.unwrap(), vec![]);
}

#[tokio::test]
async fn mail_bad_addresses_and_hashes_are_refused_before_anything_runs() {
    // An unreachable node: a refusal here cannot come from the node.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed = listener.local_addr().unwrap().port();
    drop(listener);
    let mail = MailNode {
        ssh: SshTarget {
            port: closed,
            ..node().ssh
        },
        ..node()
    };
    let hash = hash_password("x").unwrap();
    for address in [
        "a+tag@t.test",
        "../x@t.test",
        "Alice@t.test",
        "a@b@t.test",
        "a b@t.test",
        "a@t.test/..",
        "a:b@t.test",
    ] {
        let err = mail.ensure_mailbox(address, &hash, 10).await.unwrap_err();
        assert!(
            matches!(err, DriverError::Permanent(_)),
            "{address}: {err:?}"
        );
        assert!(matches!(
            mail.delete(address).await,
            Err(DriverError::Permanent(_))
        ));
    }
    for bad_hash in ["plaintext", "{ARGON2ID}a:b", "{ARGON2ID}a\nb"] {
        let err = mail
            .ensure_mailbox("ok@t.test", bad_hash, 10)
            .await
            .unwrap_err();
        assert!(
            matches!(err, DriverError::Permanent(_)),
            "{bad_hash:?}: {err:?}"
        );
    }
    let err = mail.ping().await.unwrap_err();
    assert!(
        err.is_transient(),
        "the closed port itself is transient: {err:?}"
    );
}

#[tokio::test]
async fn mail_without_a_reload_command_every_change_is_seen_within_a_second() {
    // No reload: Dovecot finds changes by the file's mtime and size, so a
    // same-size change (a new password) in the same second must still get
    // an mtime of its own.
    let mail = MailNode {
        reload_cmd: String::new(),
        ..node()
    };
    let domain = fresh_domain("noreload");
    let address = format!("info@{domain}");
    let (first, second) = ("first-Pass-1", "secnd-Pass-2");
    let hashes = (
        hash_password(first).unwrap(),
        hash_password(second).unwrap(),
    );
    assert_eq!(hashes.0.len(), hashes.1.len());
    // Start just after a second begins, so what follows shares it.
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    tokio::time::sleep(Duration::from_nanos(u64::from(
        1_000_000_000 - now.subsec_nanos(),
    )))
    .await;
    let file = env("MAIL_PASSWD_FILE");
    let before = std::fs::metadata(&file).unwrap().mtime();
    mail.ensure_mailbox(&address, &hashes.0, 0).await.unwrap();
    let made = std::fs::metadata(&file).unwrap().mtime();
    assert!(made > before, "each version's mtime is past the last");
    // Dovecot reads this version (the lookup finds the new mtime)...
    assert_eq!(login_until(&address, first, is_ok).await, Login::Ok);
    // ...and a same-size change right after is not hidden from it.
    mail.set_password(&address, &hashes.1).await.unwrap();
    let changed = std::fs::metadata(&file).unwrap();
    assert!(changed.mtime() > made);
    assert_eq!(login_until(&address, second, is_ok).await, Login::Ok);
    assert_eq!(login(&address, first).await, Login::Refused);
    mail.delete(&address).await.unwrap();
    assert_eq!(
        login_until(&address, second, is_refused).await,
        Login::Refused
    );
}

/// A folder of its own, owned by the mail node's SSH user, for a
/// passwd-file and mailboxes no other test (nor Dovecot) reads; removed
/// when dropped.
struct PrivateNodeDir(std::path::PathBuf);

impl PrivateNodeDir {
    fn new(tag: &str) -> Self {
        let dir = std::path::Path::new(&env("MAIL_ROOT_DIR"))
            .parent()
            .unwrap()
            .join(fresh_domain(tag));
        std::fs::create_dir(&dir).unwrap();
        let (uid, gid) = (
            env("MAIL_UID").parse().unwrap(),
            env("MAIL_GID").parse().unwrap(),
        );
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).unwrap();
        Self(dir)
    }
}

impl Drop for PrivateNodeDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A reload the test's `reload_cmd` logged: when it ended (Unix seconds)
/// and the addresses in the file as it began.
struct LoggedReload {
    ended: f64,
    addresses: String,
}

fn logged_reloads(path: &std::path::Path) -> Vec<LoggedReload> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| {
            let (ended, addresses) = line.split_once(' ').unwrap_or((line, ""));
            LoggedReload {
                ended: ended.parse().unwrap(),
                addresses: addresses.to_owned(),
            }
        })
        .collect()
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Dovecot restarts its processes on each reload: mailboxes made at once
/// share reloads, and each change returns only after a reload that began
/// with it in the file has ended; a reload that fails is made by the next
/// change to the file.
#[tokio::test]
async fn mail_changes_made_at_once_share_reloads_and_a_failed_one_is_made_next() {
    let dir = PrivateNodeDir::new("reloads");
    let (passwd, reloads) = (dir.0.join("passwd"), dir.0.join("reloads"));
    let counting = |extra: &str| MailNode {
        passwd_file: passwd.to_str().unwrap().to_owned(),
        root_dir: dir.0.join("mailboxes").to_str().unwrap().to_owned(),
        // A reload that takes a while, as Dovecot's does under load; it
        // logs when it ended and the addresses it saw as it began.
        reload_cmd: format!(
            "a=$(cut -d: -f1 {passwd} | tr '\\n' ,); sleep 0.5{extra}; \
             echo \"$(date +%s.%N) $a\" >>{log}",
            passwd = sh_quote(passwd.to_str().unwrap()),
            log = sh_quote(reloads.to_str().unwrap()),
        ),
        ..node()
    };
    let mail = counting("");
    let domain = fresh_domain("shared");
    let hash = hash_password("shared secret").unwrap();
    let mut jobs = tokio::task::JoinSet::new();
    for i in 0..8 {
        let (mail, hash, address) = (mail.clone(), hash.clone(), format!("user{i}@{domain}"));
        jobs.spawn(async move {
            let ensured = mail.ensure_mailbox(&address, &hash, 0).await;
            (address, ensured, unix_now())
        });
    }
    let mut returned = Vec::new();
    while let Some(result) = jobs.join_next().await {
        let (address, ensured, at) = result.unwrap();
        assert_eq!(ensured.unwrap(), Ensured::Created);
        returned.push((address, at));
    }
    assert_eq!(mail.mailboxes(&domain).await.unwrap().len(), 8);
    let logged = logged_reloads(&reloads);
    assert!(
        (1..8).contains(&logged.len()),
        "8 changes at once made {} reloads",
        logged.len()
    );
    for (address, at) in &returned {
        let seen = format!("{address},");
        assert!(
            logged
                .iter()
                .any(|r| r.addresses.contains(&seen) && r.ended <= *at),
            "{address} returned at {at} before a reload with it in the file had ended"
        );
    }

    // The reload fails: the change stays in the file, the job hears of it.
    let failing = counting("; exit 1");
    let address = format!("late@{domain}");
    let err = failing
        .ensure_mailbox(&address, &hash, 0)
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert!(
        err.to_string().contains("reloading Dovecot failed"),
        "{err}"
    );
    assert_eq!(mail.mailboxes(&domain).await.unwrap().len(), 9);
    // The job's retry changes nothing in the file and still reloads, once.
    let before = logged_reloads(&reloads).len();
    assert_eq!(
        mail.ensure_mailbox(&address, &hash, 0).await.unwrap(),
        Ensured::AlreadyThere
    );
    assert_eq!(logged_reloads(&reloads).len(), before + 1);
    assert_eq!(
        mail.ensure_mailbox(&address, &hash, 0).await.unwrap(),
        Ensured::AlreadyThere
    );
    assert_eq!(
        logged_reloads(&reloads).len(),
        before + 1,
        "nothing left to reload"
    );
}
