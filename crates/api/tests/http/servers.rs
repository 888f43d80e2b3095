//! The server inventory: SUPER_ADMIN only, credentials sealed at rest and
//! never returned, a health check that records reachability and latency.

use mpanel_domain::identity::Role;
use serde_json::{Value, json};

use crate::support::TestApp;

const KEY: &str = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n";

/// `GET /api/servers` as `token`.
async fn server_list(app: &TestApp, token: &str) -> Value {
    app.get_as(token, "/api/servers")
        .await
        .json()
        .await
        .unwrap()
}

/// The listed server called `name`.
fn named(list: &Value, name: &str) -> Value {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no server {name} in {list}"))
        .clone()
}

#[tokio::test]
async fn servers_keep_their_credentials_sealed_and_report_their_health() {
    let app = TestApp::start().await;
    let ops = app.account("acme", "ops@acme.test", Role::SuperAdmin).await;
    let admin = app
        .account("acme", "admin@acme.test", Role::TenantAdmin)
        .await;
    let body = json!({"name": "web-1", "role": "WEB", "address": "127.0.0.1", "port": app.addr.port(),
        "credentials": {"type": "SSH", "user": "mpanel-web", "private_key": KEY},
        "settings": {"public_ipv4": "192.0.2.10"}, "capacity": 500});
    let res = app
        .post_as(&admin.access_token, "/api/servers", body.clone())
        .await;
    assert_eq!(res.status(), 403, "a tenant admin does not run servers");
    let res = app
        .post_as(&ops.access_token, "/api/servers", body.clone())
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let web: Value = res.json().await.unwrap();
    assert_eq!(
        web["credentials"],
        json!({"type": "SSH", "user": "mpanel-web"})
    );
    assert_eq!(web["status"], "ONLINE");
    assert!(!web.to_string().contains("PRIVATE KEY"));
    let res = app.post_as(&ops.access_token, "/api/servers", body).await;
    assert_eq!(res.status(), 409, "names are unique");

    // Bad input names the field and makes nothing.
    let res = app
        .post_as(
            &ops.access_token,
            "/api/servers",
            json!({"name": "dns-1", "role": "DNS", "address": "127.0.0.1",
                   "credentials": {"type": "API", "url": "ftp://x", "key": "k"}, "capacity": 1}),
        )
        .await;
    assert_eq!(res.status(), 422);
    assert_eq!(
        res.json::<Value>().await.unwrap()["field"],
        "credentials.url"
    );

    // A closed port for the second one.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let res = app
        .post_as(
            &ops.access_token,
            "/api/servers",
            json!({"name": "dns-1", "role": "DNS", "address": "127.0.0.1", "port": closed_port,
                   "credentials": {"type": "API", "url": "http://127.0.0.1:8081", "key": "secret-api-key"},
                   "capacity": 1000}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let dns: Value = res.json().await.unwrap();
    assert_eq!(
        dns["credentials"],
        json!({"type": "API", "url": "http://127.0.0.1:8081"})
    );

    // At rest, nothing readable.
    let stored = app.store.list_servers(None).await.unwrap();
    for s in &stored {
        assert!(s.credentials.starts_with("v1:"));
        assert!(!s.credentials.contains("PRIVATE") && !s.credentials.contains("secret-api-key"));
    }
    // Platform changes go to the platform's own audit stream: not the
    // operator's home tenant, whose admins would read them.
    let audit = |token: &str, query: &str| {
        let (app, token, query) = (&app, token.to_owned(), query.to_owned());
        async move {
            let res = app.get_as(&token, &format!("/api/audit?{query}")).await;
            (res.status().as_u16(), res.json::<Value>().await.unwrap())
        }
    };
    let (status, tenant) = audit(&admin.access_token, "action=server.create").await;
    assert_eq!(status, 200);
    assert_eq!(tenant["items"], json!([]), "{tenant}");
    let (status, _) = audit(&admin.access_token, "action=server.create&scope=PLATFORM").await;
    assert_eq!(
        status, 403,
        "a tenant admin does not read the platform's stream"
    );
    let (status, platform) = audit(&ops.access_token, "action=server.create&scope=PLATFORM").await;
    assert_eq!(status, 200);
    assert_eq!(platform["items"].as_array().unwrap().len(), 2, "{platform}");
    assert!(!platform.to_string().contains("PRIVATE KEY"));

    assert_eq!(
        mpanel_services::servers::check_all(&app.store, app.clock.as_ref())
            .await
            .unwrap(),
        2
    );
    let list = server_list(&app, &ops.access_token).await;
    let by_name = |n: &str| named(&list, n);
    assert!(by_name("web-1")["last_latency_ms"].is_i64());
    assert_eq!(by_name("web-1")["last_error"], Value::Null);
    assert!(
        by_name("dns-1")["last_error"]
            .as_str()
            .unwrap()
            .contains("cannot connect")
    );

    // Maintenance: kept, but takes no new accounts (placement reads status).
    let id = web["id"].as_str().unwrap();
    let res = app
        .call(
            reqwest::Method::PATCH,
            &format!("/api/servers/{id}"),
            Some(&ops.access_token),
            Some(json!({"status": "MAINTENANCE", "capacity": 400})),
        )
        .await;
    assert_eq!(res.status(), 200);
    let web: Value = res.json().await.unwrap();
    assert_eq!(
        (&web["status"], &web["capacity"]),
        (&json!("MAINTENANCE"), &json!(400))
    );
    assert_eq!(web["credentials"]["user"], "mpanel-web", "credentials kept");
}

/// Stored credentials that no longer open (sealed with another
/// `secrets_key`, or changed outside mPanel) do not take the inventory
/// down: the server is listed as `UNREADABLE`, can be taken out of
/// service, a change checked against its credentials is refused with a
/// reason of its own, and new credentials mend it.
#[tokio::test]
async fn a_server_whose_credentials_cannot_be_opened_is_listed_and_mended() {
    let app = TestApp::start().await;
    let ops = app.account("acme", "ops@acme.test", Role::SuperAdmin).await;
    for name in ["web-1", "web-2"] {
        let res = app
            .post_as(
                &ops.access_token,
                "/api/servers",
                json!({"name": name, "role": "WEB", "address": "127.0.0.1",
                    "credentials": {"type": "SSH", "user": "mpanel-web", "private_key": KEY},
                    "settings": {"public_ipv4": "192.0.2.10"}, "capacity": 5}),
            )
            .await;
        assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    }
    let other = app.store.list_servers(None).await.unwrap();
    let (broken, fine) = (&other[0], &other[1]);
    // Sealed for another row: it does not open for this one.
    app.store
        .execute_raw_for_tests(&format!(
            "UPDATE servers SET credentials = '{}' WHERE name = '{}'",
            fine.credentials, broken.name
        ))
        .await
        .unwrap();

    let list = server_list(&app, &ops.access_token).await;
    let summary = |name: &str| named(&list, name)["credentials"].clone();
    assert_eq!(summary(&broken.name), json!({"type": "UNREADABLE"}));
    assert_eq!(
        summary(&fine.name),
        json!({"type": "SSH", "user": "mpanel-web"})
    );
    let path = format!("/api/servers/{}", broken.id);
    let one: Value = app
        .get_as(&ops.access_token, &path)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(one["credentials"], json!({"type": "UNREADABLE"}));

    let patch = |body: Value| {
        app.call(
            reqwest::Method::PATCH,
            &path,
            Some(&ops.access_token),
            Some(body),
        )
    };
    // Its health check says so (rather than pass on a TCP connect).
    let provisioner = mpanel_provision::saga::Provisioner {
        acme: Default::default(),
        store: app.store.clone(),
        clock: app.clock.clone() as std::sync::Arc<dyn mpanel_domain::Clock>,
        secrets: app.store.secrets().cloned(),
        control: mpanel_provision::domain_control::ControlSettings {
            resolver: "127.0.0.1:53".parse().unwrap(),
            authority_port: 53,
            recheck: time::Duration::seconds(1),
        },
    };
    provisioner.check_nodes().await.unwrap();
    let one: Value = app
        .get_as(&ops.access_token, &path)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        one["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("credentials cannot be used")),
        "{one}"
    );
    // It can be taken out of service without them...
    let res = patch(json!({"status": "MAINTENANCE"})).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let one: Value = res.json().await.unwrap();
    assert_eq!(one["credentials"], json!({"type": "UNREADABLE"}));
    assert_eq!(one["status"], "MAINTENANCE");
    // ...but what is checked against them needs them.
    let res = patch(json!({"settings": {"public_ipv4": "192.0.2.11"}})).await;
    assert_eq!(res.status(), 422);
    let problem: Value = res.json().await.unwrap();
    assert_eq!(problem["reason"], "credentials_unreadable", "{problem}");
    let res = patch(json!({"capacity": 10,
        "credentials": {"type": "SSH", "user": "mended", "private_key": KEY}}))
    .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let one: Value = app
        .get_as(&ops.access_token, &path)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(one["credentials"], json!({"type": "SSH", "user": "mended"}));
    assert_eq!(one["capacity"], 10);
}

/// A `BACKUP` server's helper (what makes each tenant's own login there)
/// is a command with an absolute path, or the default when left out; a
/// shell line is refused and nothing is registered.
#[tokio::test]
async fn a_backup_server_takes_a_helper_command_not_a_shell_line() {
    let app = TestApp::start().await;
    let ops = app.account("acme", "ops@acme.test", Role::SuperAdmin).await;
    let backup = |name: &str, settings: Value| {
        json!({"name": name, "role": "BACKUP", "address": "127.0.0.1", "port": 22,
            "credentials": {"type": "SSH", "user": "mpanel-backup", "private_key": KEY},
            "settings": settings, "capacity": 10})
    };
    let host_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGz0";
    for helper in [
        "sudo -n /usr/local/sbin/mpanel-backup-helper; rm -rf /",
        "mpanel-backup-helper",
        "$(reboot)",
    ] {
        let res = app
            .post_as(
                &ops.access_token,
                "/api/servers",
                backup(
                    "backup-bad",
                    json!({"host_key": host_key, "helper": helper}),
                ),
            )
            .await;
        assert_eq!(res.status(), 422, "{helper}");
        assert_eq!(
            res.json::<Value>().await.unwrap()["field"],
            "settings.helper",
            "{helper}"
        );
    }
    let list = server_list(&app, &ops.access_token).await;
    assert_eq!(list["items"], json!([]), "nothing registered");
    for (name, settings) in [
        ("backup-1", json!({"host_key": host_key})),
        (
            "backup-2",
            json!({"host_key": host_key, "helper": "sudo -n /opt/mpanel/bin/mpanel-backup-helper"}),
        ),
    ] {
        let res = app
            .post_as(&ops.access_token, "/api/servers", backup(name, settings))
            .await;
        assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    }
}
