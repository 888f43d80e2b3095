//! Backups of sites and mailboxes with restic on the real nodes, to the
//! harness's backup node over SFTP: a file added over SFTP is backed up by
//! the nightly run (`mpanel backups run --as-of`, the hourly job's work at
//! chosen times), deleted, restored by its path through the API and served
//! by nginx again; ten nightly runs with keep-daily 7 leave seven
//! snapshots; a backup node that refuses the connection fails the run with
//! the reason, the site shows overdue, and the next run succeeds once the
//! node is back. A mailbox's message (IMAP APPEND) is backed up, deleted
//! and brought back. Each tenant's repository has a login of its own on
//! the backup node (see `backup_logins`). Needs the services
//! `scripts/test.sh` starts.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;

use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use crate::backup_logins::{made_before_logins, other_login_reaches_nothing_of, tenant_login};
use crate::provisioning_support::*;

const SFTP_PASSWORD: &str = "the customer's sftp password";

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

fn parse(at: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(
        at.as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
}

/// The harness's backup node as a `BACKUP` server, reached on `port`.
/// These tests run the schedule's passes at chosen times beside `serve`,
/// whose own hourly `backup.schedule` pass would take the same (past-due)
/// targets at the top of the hour and race the test's runs for the
/// repository's lock. A test starts clear of the next hour, which it ends
/// well before (it takes under a minute).
pub(crate) fn clear_of_the_hour() {
    let now = OffsetDateTime::now_utc();
    let left = 3600 - (i64::from(now.minute()) * 60 + i64::from(now.second()));
    if left < 150 {
        let wait = u64::try_from(left + 5).unwrap_or(0);
        std::thread::sleep(std::time::Duration::from_secs(wait));
    }
}

pub(crate) fn add_backup_server(panel: &Panel, port: u64) -> String {
    let s = &panel.svc;
    let server = json!({"name": "backup-1", "role": "BACKUP", "address": s.var("BACKUP_SSH_HOST"),
        "port": port,
        "credentials": s.ssh_credentials("BACKUP_SSH_USER", s.var("BACKUP_SSH_KEY")),
        "settings": {"host_key": s.host_key("BACKUP_SSH_KNOWN_HOSTS"),
            "helper": s.var("BACKUP_HELPER")},
        "capacity": 1000});
    let v = panel.expect(201, &panel.operator, "POST /api/servers", Some(server));
    v["id"].as_str().unwrap().to_owned()
}

fn backups(panel: &Panel, route: &str) -> Value {
    panel.expect(200, &panel.admin, &format!("GET {route}"), None)
}

/// Runs the nightly backups due at the target's next run (plus a minute):
/// the report and the time it ran at.
fn nightly(panel: &Panel, route: &str) -> (Value, OffsetDateTime) {
    let next = parse(&backups(panel, route)["target"]["next_run_at"]);
    let at = next + Duration::minutes(1);
    (panel.backups_run(at), at)
}

/// Waits until the restore run `id` ended; its view.
fn restored(panel: &Panel, route: &str, id: &str) -> Value {
    eventually("the restore ended", || {
        let v = backups(panel, route);
        let run = v["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .cloned()
            .unwrap();
        if run["status"] == "RUNNING" {
            Err(format!("{run:#}"))
        } else {
            Ok(run)
        }
    })
}

#[test]
fn a_deleted_file_comes_back_from_the_nightly_backup_and_the_policy_prunes() {
    clear_of_the_hour();
    let panel = Panel::start();
    let product = panel.add_hosting_product(
        "web-backed-up",
        json!({"type": "HOSTING", "dns_zone": true, "mailboxes": 0,
            "backup": {"at": "03:00", "keep_daily": 7, "keep_weekly": 0}}),
    );
    let backup_port = panel.svc.number("BACKUP_SSH_PORT");
    let backup_server = add_backup_server(&panel, backup_port);
    let domain = unique_domain();
    let order_id = panel.paid_order_of(&product, &domain);
    panel.wait_steps(&order_id, "COMPLETED");
    let account = panel.find("/api/hosting/accounts", "name", &domain);
    let id = account["id"].as_str().unwrap().to_owned();
    let route = format!("/api/hosting/accounts/{id}/backups");
    panel.expect(
        202,
        &panel.admin,
        &format!("PUT /api/hosting/accounts/{id}/sftp"),
        Some(json!({"password": SFTP_PASSWORD})),
    );
    panel.wait_sftp(&id, SFTP_PASSWORD, true);
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("hello.html");
    std::fs::write(&page, "<p>hello from the backup</p>\n").unwrap();
    let (ok, text) = panel
        .sftp(
            &id,
            SFTP_PASSWORD,
            &format!("put {} /web/public/hello.html\n", page.display()),
        )
        .unwrap();
    assert!(ok, "{text}");
    assert_eq!(panel.http_at(&domain, "/hello.html").unwrap().0, 200);

    // The first pass takes the site in: due at the policy's next 03:00.
    // Thirteen days back: the tenth night is at least two days old, so the
    // site is overdue now whatever the time of day the test runs at.
    let start = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap() - Duration::days(13);
    let report = panel.backups_run(start);
    assert_eq!(report["targets_made"], 1, "{report:#}");
    assert_eq!(report["queued"], 0, "{report:#}");
    let target = backups(&panel, &route)["target"].clone();
    assert_eq!(
        target["policy"],
        json!({"at": "03:00", "keep_daily": 7, "keep_weekly": 0})
    );
    assert_eq!(target["state"], "ACTIVE");

    // Ten nights: each makes a snapshot; keep-daily 7 leaves seven.
    let mut last = start;
    for night in 1..=10 {
        let (report, at) = nightly(&panel, &route);
        assert_eq!(report["succeeded"], 1, "night {night}: {report:#}");
        if night > 1 {
            assert!(
                at >= last + Duration::hours(23),
                "one a night: {last} then {at}"
            );
        }
        last = at;
    }
    let v = backups(&panel, &route);
    let snapshots = v["snapshots"].as_array().unwrap();
    assert_eq!(snapshots.len(), 7, "{v:#}");
    let newest = &snapshots[0];
    assert!(newest["files"].as_i64().unwrap() >= 2, "{newest:#}");
    assert!(newest["size_bytes"].as_i64().unwrap() > 0, "{newest:#}");
    let backed_up = v["runs"][0].clone();
    assert_eq!(backed_up["operation"], "BACKUP");
    assert_eq!(backed_up["status"], "SUCCEEDED");
    assert_eq!(backed_up["trigger"], "SCHEDULED");
    assert_eq!(v["target"]["last_success_at"], rfc3339(last));
    let login = tenant_login(&panel);
    other_login_reaches_nothing_of(&panel, &login);

    // The backup server loses the login's key (rebuilt without it, or an
    // operator took it away): the run fails saying so, and the next has
    // the helper authorize a new one.
    let key_file = std::path::Path::new(panel.svc.var("BACKUP_KEYS_DIR")).join(&login);
    let refused_key = std::fs::read_to_string(&key_file).unwrap();
    std::fs::remove_file(&key_file).unwrap();
    let (report, refused_at) = nightly(&panel, &route);
    assert_eq!(report["failed"], 1, "{report:#}");
    let why = backups(&panel, &route)["runs"][0]["error"].clone();
    assert!(why.as_str().unwrap().contains("Permission denied"), "{why}");
    let report = panel.backups_run(refused_at + Duration::hours(1) + Duration::minutes(1));
    assert_eq!(report["succeeded"], 1, "{report:#}");
    let new_key = std::fs::read_to_string(&key_file).unwrap();
    assert_ne!(new_key, refused_key, "a refused key is never offered again");

    // The backup node refuses the connection: the run fails with why, is
    // tried again an hour later, and the site becomes overdue.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let patch = format!("PATCH /api/servers/{backup_server}");
    panel.expect(
        200,
        &panel.operator,
        &patch,
        Some(json!({"port": closed_port})),
    );
    let (report, failed_at) = nightly(&panel, &route);
    assert_eq!(report["failed"], 1, "{report:#}");
    let v = backups(&panel, &route);
    let failed = &v["runs"][0];
    assert_eq!(failed["status"], "FAILED", "{v:#}");
    let why = failed["error"].as_str().unwrap();
    assert!(
        why.contains("refused") || why.contains("onnection"),
        "{why}"
    );
    assert_eq!(v["target"]["last_status"], "FAILED");
    assert_eq!(
        v["target"]["next_run_at"],
        rfc3339(failed_at + Duration::hours(1))
    );
    assert_eq!(v["target"]["overdue"], true, "{v:#}");
    let overdue_in_overview = |panel: &Panel| {
        let o = panel.expect(200, &panel.admin, "GET /api/ops/platform-overview", None);
        o["backups"]["overdue"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["label"] == domain.as_str() && t["kind"] == "SITE")
    };
    assert!(
        overdue_in_overview(&panel),
        "the overview lists the site as overdue"
    );

    // Back: the next run (now) succeeds and the site is no longer overdue.
    panel.expect(
        200,
        &panel.operator,
        &patch,
        Some(json!({"port": backup_port})),
    );
    let report = panel.backups_run(OffsetDateTime::now_utc().replace_nanosecond(0).unwrap());
    assert_eq!(report["succeeded"], 1, "{report:#}");
    let v = backups(&panel, &route);
    assert_eq!(v["target"]["overdue"], false, "{v:#}");
    assert!(
        !overdue_in_overview(&panel),
        "no longer overdue in the overview"
    );
    let snapshot = v["snapshots"][0]["id"].as_str().unwrap().to_owned();

    // The file is deleted; restoring its path brings it back, served.
    let (ok, text) = panel
        .sftp(&id, SFTP_PASSWORD, "rm /web/public/hello.html\n")
        .unwrap();
    assert!(ok, "{text}");
    assert_eq!(panel.http_at(&domain, "/hello.html").unwrap().0, 404);
    let body = json!({"path": "/web/public/hello.html"});
    let restore = format!("POST {route}/{snapshot}/restore");
    let queued = panel.expect(202, &panel.admin, &restore, Some(body));
    let run = restored(&panel, &route, queued["run"]["id"].as_str().unwrap());
    assert_eq!(run["status"], "SUCCEEDED", "{run:#}");
    assert_eq!(run["restore_path"], "/web/public/hello.html");
    let (status, page) = panel.http_at(&domain, "/hello.html").unwrap();
    assert_eq!(status, 200);
    assert!(page.contains("hello from the backup"), "{page}");

    // Beside: the whole site under /web/restored-<snapshot>/.
    let queued = panel.expect(202, &panel.admin, &restore, Some(json!({"to": "BESIDE"})));
    let run = restored(&panel, &route, queued["run"]["id"].as_str().unwrap());
    assert_eq!(run["status"], "SUCCEEDED", "{run:#}");
    assert_eq!(run["restore_to"], format!("/web/restored-{snapshot}"));
    let (ok, listing) = panel
        .sftp(
            &id,
            SFTP_PASSWORD,
            &format!("ls /web/restored-{snapshot}/public\n"),
        )
        .unwrap();
    assert!(ok && listing.contains("hello.html"), "{listing}");

    // A path outside the site, and a snapshot it does not have.
    let (status, problem) = panel.call(
        &panel.admin,
        &restore,
        Some(json!({"path": "/web/../../etc/passwd"})),
    );
    assert_eq!(status, 422, "{problem:#}");
    let (status, _) = panel.call(
        &panel.admin,
        &format!("POST {route}/deadbeef/restore"),
        Some(json!({})),
    );
    assert_eq!(status, 404);

    // Terminated: the snapshots are kept for the tenant's retention (30
    // days by default), then removed.
    panel.expect(
        202,
        &panel.admin,
        &format!("POST /api/hosting/accounts/{id}/terminate"),
        None,
    );
    eventually("the account is terminated", || {
        let shown = panel.find("/api/hosting/accounts", "name", &domain);
        if shown["status"] == "TERMINATED" {
            Ok(())
        } else {
            Err(format!("{shown:#}"))
        }
    });
    let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    let report = panel.backups_run(now);
    assert_eq!(report["retired"], 1, "{report:#}");
    let v = backups(&panel, &route);
    assert_eq!(v["target"]["state"], "RETAINED");
    assert_eq!(
        v["target"]["retain_until"],
        rfc3339(now + Duration::days(30))
    );
    // Its last backup is kept, the others go at once.
    assert_eq!(v["snapshots"].as_array().unwrap().len(), 1, "{v:#}");
    assert_eq!(v["snapshots"][0]["id"], snapshot.as_str());
    let report = panel.backups_run(now + Duration::days(30));
    assert_eq!(report["removed"], 1, "{report:#}");
    let v = backups(&panel, &route);
    assert_eq!(v["target"]["state"], "REMOVED");
    assert_eq!(v["snapshots"], json!([]));
}

/// A minimal IMAP session: log in, run `commands` (each tagged), log out;
/// every line the server sent.
fn imap(port: &str, user: &str, commands: &[String]) -> String {
    let mut stream = TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut all = String::new();
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let mut send = |tag: &str, command: &str, all: &mut String| {
        write!(stream, "{tag} {command}\r\n").unwrap();
        loop {
            let mut line = String::new();
            assert!(reader.read_line(&mut line).unwrap() > 0, "closed: {all}");
            all.push_str(&line);
            if line.starts_with(&format!("{tag} ")) {
                assert!(line.starts_with(&format!("{tag} OK")), "{all}");
                break;
            }
            if line.starts_with('+') {
                // A literal's continuation: the caller put it after CRLF.
                continue;
            }
        }
    };
    send(
        "a0",
        &format!("LOGIN \"{user}\" \"{MAIL_PASSWORD}\""),
        &mut all,
    );
    for (n, c) in commands.iter().enumerate() {
        send(&format!("a{}", n + 1), c, &mut all);
    }
    let _ = write!(stream, "z LOGOUT\r\n");
    all
}

#[test]
fn a_deleted_message_comes_back_from_the_mailbox_backup() {
    clear_of_the_hour();
    let panel = Panel::start();
    let product = panel.add_hosting_product(
        "mail-backed-up",
        json!({"type": "HOSTING", "dns_zone": true, "mailboxes": 1}),
    );
    add_backup_server(&panel, panel.svc.number("BACKUP_SSH_PORT"));
    let domain = unique_domain();
    let order_id = panel.paid_order_of(&product, &domain);
    panel.wait_steps(&order_id, "COMPLETED");
    let address = format!("postmaster@{domain}");
    let mailbox = panel.find("/api/mail/accounts", "name", &address);
    let id = mailbox["id"].as_str().unwrap().to_owned();
    let route = format!("/api/mail/accounts/{id}/backups");
    panel.expect(
        202,
        &panel.admin,
        &format!("POST /api/mail/accounts/{id}/password"),
        Some(json!({"password": MAIL_PASSWORD})),
    );
    panel.wait_imap(&address, true);
    let port = panel.svc.var("MAIL_IMAP_PORT").to_owned();
    let subject = format!("kept-{}", domain.split('.').next().unwrap());
    let message = format!("From: a@example.net\r\nSubject: {subject}\r\n\r\nkeep me\r\n");
    imap(
        &port,
        &address,
        &[format!("APPEND INBOX {{{}+}}\r\n{message}", message.len())],
    );
    let found = imap(
        &port,
        &address,
        &[
            "SELECT INBOX".into(),
            format!("SEARCH SUBJECT \"{subject}\""),
        ],
    );
    assert!(found.contains("* SEARCH 1"), "{found}");

    // Taken in, then the nightly backup.
    let start = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap() - Duration::days(2);
    let report = panel.backups_run(start);
    assert!(
        report["targets_made"].as_u64() >= Some(2),
        "site and mailbox: {report:#}"
    );
    let (report, _) = nightly(&panel, &route);
    assert_eq!(report["failed"], 0, "{report:#}");
    let v = backups(&panel, &route);
    assert_eq!(v["target"]["kind"], "MAILBOX");
    assert_eq!(v["target"]["label"], address);
    let snapshot = v["snapshots"][0]["id"].as_str().unwrap().to_owned();

    // A run whose worker died stays RUNNING until the schedule's next pass
    // more than 3 hours on: then it is FAILED, saying so.
    let target_id: mpanel_domain::BackupTargetId =
        v["target"]["id"].as_str().unwrap().parse().unwrap();
    let stale_at = parse(&v["runs"][0]["started_at"]) + Duration::minutes(5);
    panel.block_on(async {
        let store = mpanel_store::Store::connect(
            panel.database_url(),
            &mpanel_store::PoolSettings::default(),
        )
        .await
        .unwrap();
        let t = store.backup_target(target_id).await.unwrap().unwrap();
        let run = mpanel_services::backups::new_run(
            &t,
            mpanel_domain::backups::Operation::Backup,
            mpanel_domain::backups::Trigger::Scheduled,
            stale_at,
        );
        let mut tx = store.begin().await.unwrap();
        tx.insert_backup_run(&run).await.unwrap();
        tx.commit().await.unwrap();
        store.close().await;
    });
    let report = panel.backups_run(stale_at + Duration::hours(2));
    assert_eq!(report["interrupted"], 0, "{report:#}");
    let report = panel.backups_run(stale_at + Duration::hours(3) + Duration::minutes(1));
    assert_eq!(report["interrupted"], 1, "{report:#}");
    let v = backups(&panel, &route);
    let stale = v["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["started_at"] == rfc3339(stale_at))
        .unwrap();
    assert_eq!(stale["status"], "FAILED", "{stale:#}");
    // A customer would read the kind; staff read the reason.
    assert!(stale["error"].as_str().unwrap().contains("interrupted"));

    // The repository as a release from before per-tenant logins left it:
    // under the server's old root, the admin's, with no login recorded.
    // The next backups move it into a new login whole.
    let legacy = made_before_logins(&panel);
    let (report, _) = nightly(&panel, &route);
    assert_eq!(report["failed"], 0, "{report:#}");
    assert!(report["succeeded"].as_u64() >= Some(1), "{report:#}");
    assert!(!legacy.exists(), "moved into the login's folder");
    tenant_login(&panel);

    // Deleted and expunged; the restore in place brings it back.
    imap(
        &port,
        &address,
        &[
            "SELECT INBOX".into(),
            "STORE 1 +FLAGS (\\Deleted)".into(),
            "EXPUNGE".into(),
        ],
    );
    let gone = imap(
        &port,
        &address,
        &[
            "SELECT INBOX".into(),
            format!("SEARCH SUBJECT \"{subject}\""),
        ],
    );
    assert!(!gone.contains("* SEARCH 1"), "{gone}");
    let restore = format!("POST {route}/{snapshot}/restore");
    let queued = panel.expect(202, &panel.admin, &restore, Some(json!({})));
    let run = restored(&panel, &route, queued["run"]["id"].as_str().unwrap());
    assert_eq!(run["status"], "SUCCEEDED", "{run:#}");
    let back = imap(
        &port,
        &address,
        &[
            "SELECT INBOX".into(),
            format!("SEARCH SUBJECT \"{subject}\""),
        ],
    );
    assert!(back.contains("* SEARCH 1"), "{back}");

    // Beside: an IMAP folder holding the snapshot's INBOX.
    let queued = panel.expect(202, &panel.admin, &restore, Some(json!({"to": "BESIDE"})));
    let run = restored(&panel, &route, queued["run"]["id"].as_str().unwrap());
    assert_eq!(run["status"], "SUCCEEDED", "{run:#}");
    let folder = format!("Restored-{snapshot}");
    assert_eq!(run["restore_to"], folder);
    let beside = imap(
        &port,
        &address,
        &[
            format!("SELECT \"{folder}\""),
            format!("SEARCH SUBJECT \"{subject}\""),
        ],
    );
    assert!(beside.contains("* SEARCH 1"), "{beside}");
}
