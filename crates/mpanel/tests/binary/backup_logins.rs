//! Each tenant's repository has a login of its own on the backup node: its
//! files are written as that login, another login reaches none of them,
//! the node's helper refuses what is not a login of its own, and a
//! repository from before logins were per tenant is moved into one. The
//! backup runs themselves are in `backups`. Needs the services
//! `scripts/test.sh` starts.

use std::io::Write;

use time::OffsetDateTime;

use crate::provisioning_support::*;

/// The backup node's login of the panel's tenant (the one whose key names
/// the tenant), its folder and its repository's files: the tenant's
/// restic wrote them as that login, into a folder only it can open.
pub(crate) fn tenant_login(panel: &Panel) -> String {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let me = panel.expect(200, &panel.admin, "GET /api/auth/me", None);
    let mark = format!("mpanel-tenant-{}", me["tenant_id"].as_str().unwrap());
    let keys = panel.svc.var("BACKUP_KEYS_DIR");
    let ours: Vec<String> = std::fs::read_dir(keys)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| std::fs::read_to_string(e.path()).unwrap().contains(&mark))
        .map(|e| e.file_name().into_string().unwrap())
        .collect();
    assert_eq!(ours.len(), 1, "one login names the tenant: {ours:?}");
    let user = ours[0].clone();
    let uid = std::process::Command::new("id")
        .args(["-u", &user])
        .output()
        .unwrap();
    let uid: u32 = String::from_utf8_lossy(&uid.stdout).trim().parse().unwrap();
    let repo = std::path::Path::new(panel.svc.var("BACKUP_REPO_ROOT"))
        .join(&user)
        .join("repo");
    let meta = std::fs::metadata(&repo).unwrap();
    assert_eq!(
        (meta.uid(), meta.permissions().mode() & 0o777),
        (uid, 0o700)
    );
    assert!(
        repo.join("config").is_file(),
        "restic's repository is there"
    );
    let mut pending = vec![repo];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            assert_eq!(meta.uid(), uid, "{} is the login's", entry.path().display());
            if meta.is_dir() {
                pending.push(entry.path());
            }
        }
    }
    user
}

/// Another tenant's login on the backup node (made by its helper, as
/// mPanel makes one) sees its own empty repository and nothing else: not
/// `user`'s repository by its path on the server, not by `..`, and no
/// shell.
pub(crate) fn other_login_reaches_nothing_of(panel: &Panel, user: &str) {
    let s = &panel.svc;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("id");
    let made = std::process::Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "another-tenant",
            "-f",
        ])
        .arg(&key)
        .status()
        .unwrap();
    assert!(made.success());
    let other = format!("mpb-{}", &uuid_hex()[8..32]);
    let public = std::fs::read(key.with_extension("pub")).unwrap();
    let out = helper_run(s, &format!("login {other}"), &public);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ssh_opts = |cmd: &mut std::process::Command| {
        cmd.arg("-i")
            .arg(&key)
            .arg("-o")
            .arg(format!(
                "UserKnownHostsFile={}",
                s.var("BACKUP_SSH_KNOWN_HOSTS")
            ))
            .args(["-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"])
            .args(["-o", "IdentitiesOnly=yes", "-F", "/dev/null"]);
    };
    let sftp = |batch: &str| {
        let mut cmd = std::process::Command::new("sftp");
        ssh_opts(&mut cmd);
        cmd.args(["-P", s.var("BACKUP_SSH_PORT"), "-b", "-"])
            .arg(format!("{other}@{}", s.var("BACKUP_SSH_HOST")));
        let out = run_with_input(&mut cmd, batch.as_bytes());
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };
    let (ok, listing) = sftp("ls -1a /\n");
    assert!(ok, "the login works: {listing}");
    assert!(listing.contains("repo"), "{listing}");
    assert!(!listing.contains(user), "{listing}");
    let theirs = format!("{}/{user}/repo", s.var("BACKUP_REPO_ROOT"));
    for path in [
        theirs.as_str(),
        &format!("/../{user}/repo"),
        &format!("../{user}"),
    ] {
        let (ok, text) = sftp(&format!("ls {path}\n"));
        assert!(!ok, "{path} is out of reach: {text}");
    }
    let mut cmd = std::process::Command::new("ssh");
    ssh_opts(&mut cmd);
    let shell = cmd
        .args(["-p", s.var("BACKUP_SSH_PORT")])
        .arg(format!("{other}@{}", s.var("BACKUP_SSH_HOST")))
        .arg("id")
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&shell.stdout).contains("uid="),
        "SFTP only"
    );
}

/// Puts the panel's repository back as it was before logins were per
/// tenant: no login on the server, the folder under the old root
/// (`BACKUP_LEGACY_ROOT/<tenant id>`, the admin's), and the row with that
/// path and no login. Answers the folder.
pub(crate) fn made_before_logins(panel: &Panel) -> std::path::PathBuf {
    let s = &panel.svc;
    let login = tenant_login(panel);
    let me = panel.expect(200, &panel.admin, "GET /api/auth/me", None);
    let legacy =
        std::path::Path::new(s.var("BACKUP_LEGACY_ROOT")).join(me["tenant_id"].as_str().unwrap());
    let home = std::path::Path::new(s.var("BACKUP_REPO_ROOT")).join(&login);
    std::fs::rename(home.join("repo"), &legacy).unwrap();
    let owner = format!("{0}:{0}", s.var("BACKUP_SSH_USER"));
    let run = |args: &[&str]| {
        let out = std::process::Command::new(args[0])
            .args(&args[1..])
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
    };
    run(&["chown", "-R", &owner, legacy.to_str().unwrap()]);
    run(&["userdel", &login]);
    let _ = std::process::Command::new("groupdel").arg(&login).status();
    std::fs::remove_dir_all(&home).unwrap();
    std::fs::remove_file(std::path::Path::new(s.var("BACKUP_KEYS_DIR")).join(&login)).unwrap();
    let sql = format!(
        "UPDATE backup_repositories SET login_user = NULL, login_key = NULL, \
         login_ready_at = NULL, path = '{}'",
        legacy.display()
    );
    panel.block_on(async {
        let store = mpanel_store::Store::connect(
            panel.database_url(),
            &mpanel_store::PoolSettings::default(),
        )
        .await
        .unwrap();
        store.execute_raw_for_tests(&sql).await.unwrap();
        store.close().await;
    });
    legacy
}

/// Runs `cmd` with `input` on its stdin; what it printed and how it ended.
fn run_with_input(cmd: &mut std::process::Command, input: &[u8]) -> std::process::Output {
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// The backup node's helper run (as root, through its sudo rule) with
/// `args`, `input` on its stdin.
fn helper_run(s: &Services, args: &str, input: &[u8]) -> std::process::Output {
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg(format!("{} {args}", s.var("BACKUP_HELPER")));
    run_with_input(&mut cmd, input)
}

fn uuid_hex() -> String {
    let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
    format!("{:032x}", nanos ^ (i128::from(std::process::id()) << 64))
}

/// The backup node's helper (root, through sudo) acts on its own logins
/// only: a name that is not a login's, a key with options or of another
/// kind, an old repository outside its old root, a user it did not make
/// and a login an operator locked are each refused, and nothing is made.
#[test]
fn the_backup_helper_refuses_what_is_not_a_login_of_its_own() {
    let s = Services::from_env();
    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ a";
    let helper = |args: &str, stdin: &str| {
        let out = helper_run(&s, args, stdin.as_bytes());
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let name = format!("mpb-{}", &uuid_hex()[8..32]);
    let home = std::path::Path::new(s.var("BACKUP_REPO_ROOT")).join(&name);
    let exists = |user: &str| {
        std::process::Command::new("getent")
            .args(["passwd", user])
            .status()
            .unwrap()
            .success()
    };
    for (args, stdin, code) in [
        ("login root".to_owned(), key.to_owned(), 2),
        ("login 'mpb-../../etc'".to_owned(), key.to_owned(), 2),
        (format!("login {name} extra more"), key.to_owned(), 2),
        (format!("login {name}"), format!("command=\"sh\" {key}"), 2),
        (
            format!("login {name}"),
            "ssh-rsa AAAAB3NzaC1yc2E= a".to_owned(),
            2,
        ),
        (
            format!("login {name} /etc/00000000-0000-0000-0000-000000000000"),
            key.to_owned(),
            5,
        ),
        (format!("login {name} '/x/../../etc'"), key.to_owned(), 2),
    ] {
        let (got, why) = helper(&args, &stdin);
        assert_eq!(got, code, "{args}: {why}");
        assert!(!exists(&name) && !home.exists(), "{args}: nothing made");
    }
    // A second line is not read.
    let (got, why) = helper(&format!("login {name}"), &format!("{key}\nsecond"));
    assert_eq!(got, 0, "{why}");
    let keys = std::path::Path::new(s.var("BACKUP_KEYS_DIR")).join(&name);
    assert_eq!(std::fs::read_to_string(&keys).unwrap(), format!("{key}\n"));
    assert_eq!(
        helper(&format!("login {name}"), key).0,
        0,
        "again: unchanged"
    );

    // A user of the same form the helper did not make.
    let stranger = format!("mpb-{}", &uuid_hex()[4..28]);
    let made = std::process::Command::new("useradd")
        .args([
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            &stranger,
        ])
        .status()
        .unwrap();
    assert!(made.success());
    let (got, why) = helper(&format!("login {stranger}"), key);
    let _ = std::process::Command::new("userdel")
        .arg(&stranger)
        .status();
    assert_eq!(got, 7, "{why}");

    // An operator locked the login, by its password field (what sshd
    // checks without PAM) or by an expiry date (what PAM checks): the
    // helper leaves it locked.
    let usermod = |args: &[&str]| {
        let done = std::process::Command::new("usermod")
            .args(args)
            .arg(&name)
            .status()
            .unwrap();
        assert!(done.success(), "usermod {args:?}");
    };
    for (lock, unlock) in [(["-e", "1"], ["-e", ""]), (["-p", "!*"], ["-p", "*"])] {
        usermod(&lock);
        let (got, why) = helper(&format!("login {name}"), key);
        assert_eq!(got, 6, "{lock:?}: {why}");
        assert!(why.contains("locked"), "{why}");
        usermod(&unlock);
        assert_eq!(helper(&format!("login {name}"), key).0, 0, "{unlock:?}");
    }
}
