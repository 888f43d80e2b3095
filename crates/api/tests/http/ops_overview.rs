//! The operations overview: exactly the figures of a database with known
//! contents, the platform for a super admin, a tenant's share for its
//! admin, 403 for everyone else; and the alert rules use only metric names
//! `/metrics` shows.

use mpanel_domain::identity::Role;
use mpanel_domain::jobs::JobState;
use mpanel_domain::{Clock, JobId, ServerId, TenantId};
use mpanel_store::identity::security_events::SecurityEvent;
use mpanel_store::jobs::NewJob;
use mpanel_store::ops_overview::seed_for_tests as seed;
use serde_json::{Value, json};
use time::Duration;

use crate::orders::{order, product};
use crate::support::{Account, TestApp};

const WORKER: &str = "test-worker";

/// A tenant's admin, its hosting product and webhook secret.
async fn shop(app: &TestApp, slug: &str) -> (Account, String, String) {
    let admin = app
        .account(slug, &format!("admin@{slug}.test"), Role::TenantAdmin)
        .await;
    let secret = app.webhook_secret(slug);
    let hosting = product(
        app,
        &admin,
        "web",
        "ACTIVE",
        "PUBLIC",
        json!({"type": "HOSTING", "dns_zone": true, "mailboxes": 0}),
    )
    .await;
    (admin, secret, hosting)
}

/// Posts a paid order; the id of its provisioning job.
async fn paid_order(app: &TestApp, slug: &str, secret: &str, product: &str, domain: &str) -> JobId {
    let res = app
        .post_order(
            slug,
            secret,
            &domain.replace('.', "-"),
            &order(product, domain, true),
        )
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let jobs = app
        .store
        .list_jobs(&Default::default(), None, 500)
        .await
        .unwrap();
    let job = jobs
        .into_iter()
        .find(|j| j.kind == "provision.subscription" && j.payload.to_string().contains(domain))
        .expect("a provisioning job");
    job.id
}

/// Claims everything due, so the test decides how each job ends.
async fn claim_all(app: &TestApp) {
    let now = app.clock.now();
    app.store
        .claim_jobs(WORKER, 1000, now, now + Duration::hours(1))
        .await
        .unwrap();
}

async fn complete(app: &TestApp, job: JobId) {
    let n = app
        .store
        .complete_jobs(WORKER, &[job], app.clock.now())
        .await
        .unwrap();
    assert_eq!(n, 1);
}

async fn die(app: &TestApp, job: JobId, error: &str) {
    let now = app.clock.now();
    assert!(
        app.store
            .fail_job(WORKER, job, JobState::Dead, now, error, now)
            .await
            .unwrap()
    );
}

async fn event(app: &TestApp, tenant: TenantId, kind: &'static str, ip: &str) {
    app.store
        .record_security_event(&SecurityEvent {
            tenant_id: Some(tenant),
            user_id: None,
            kind,
            ip: Some(ip.into()),
            detail: None,
            at: app.clock.now(),
        })
        .await
        .unwrap();
}

async fn totp_on(app: &TestApp, tenant: TenantId, user: mpanel_domain::UserId) {
    let now = app.clock.now();
    let mut tx = app.store.begin().await.unwrap();
    tx.begin_totp(tenant, user, "v1:sealed", now).await.unwrap();
    tx.confirm_totp(user, 1, now).await.unwrap();
    tx.commit().await.unwrap();
}

async fn server(app: &TestApp, name: &str, health: Option<Value>, error: Option<&str>) -> ServerId {
    let id = app.web_server(name).await;
    let latency = error.is_none().then_some(12);
    app.store
        .record_server_check(id, app.clock.now(), latency, error, health.as_ref())
        .await
        .unwrap();
    id
}

async fn first_customer(app: &TestApp, admin: &Account) -> uuid::Uuid {
    let page: Value = app
        .get_as(&admin.access_token, "/api/customers")
        .await
        .json()
        .await
        .unwrap();
    page["items"][0]["id"].as_str().unwrap().parse().unwrap()
}

async fn overview(app: &TestApp, who: &Account) -> Value {
    let res = app
        .get_as(&who.access_token, "/api/ops/platform-overview")
        .await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

fn queue<'a>(o: &'a Value, kind: &str) -> &'a Value {
    o["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["kind"] == kind)
        .unwrap_or_else(|| panic!("no queue {kind} in {o}"))
}

fn names(list: &Value, key: &str) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| v[key].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_overview_shows_exactly_the_databases_figures_scoped_to_the_caller() {
    let app = TestApp::start().await;
    let t0 = app.clock.now();
    let (acme_admin, acme_secret, acme_web) = shop(&app, "acme").await;
    let (globex_admin, globex_secret, globex_web) = shop(&app, "globex").await;
    let ops = app
        .account("platform", "ops@platform.test", Role::SuperAdmin)
        .await;
    let acme = app.tenant("acme").await;
    let globex = app.tenant("globex").await;

    // An unpaid order of 40 days ago: its invoice is overdue now.
    app.clock.set(t0 - Duration::days(40));
    let res = app
        .post_order(
            "acme",
            &acme_secret,
            "late",
            &order(&acme_web, "late.example", false),
        )
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    app.clock.set(t0);
    claim_all(&app).await;

    // Provisioning: acme 2 live (after 60 s and 180 s) and 1 failed,
    // globex 1 failed.
    let a = paid_order(&app, "acme", &acme_secret, &acme_web, "a.example").await;
    let b = paid_order(&app, "acme", &acme_secret, &acme_web, "b.example").await;
    let c = paid_order(&app, "acme", &acme_secret, &acme_web, "c.example").await;
    let g = paid_order(&app, "globex", &globex_secret, &globex_web, "g.example").await;
    claim_all(&app).await;
    app.clock.advance(Duration::seconds(60));
    complete(&app, a).await;
    app.clock.advance(Duration::seconds(120));
    complete(&app, b).await;
    die(
        &app,
        c,
        "hosting.account.create: ssh to 10.9.8.7:22 refused; what was made before was removed",
    )
    .await;
    die(&app, g, "dns.zone.create: PowerDNS answered 422").await;

    // Queues: one acme job waiting since t0, one scheduled in an hour.
    let now = app.clock.now();
    for run_at in [t0, now + Duration::hours(1)] {
        let job = NewJob {
            queue: "default".into(),
            kind: "test.ops".into(),
            payload: json!({"tenant_id": acme.to_string()}),
            priority: 0,
            run_at,
            max_attempts: 3,
            unique_key: None,
        };
        app.store.enqueue(&job, now).await.unwrap();
    }

    // Security: 3 failed logins at acme, 1 at globex; 2 addresses
    // throttled at acme; 1 request refused by acme's allow-list.
    for _ in 0..3 {
        let res = app.login_raw("acme", "admin@acme.test", "wrong").await;
        assert_eq!(res.status(), 401);
    }
    let res = app.login_raw("globex", "admin@globex.test", "wrong").await;
    assert_eq!(res.status(), 401);
    event(&app, acme, "LOGIN_THROTTLED", "203.0.113.9").await;
    event(&app, acme, "LOGIN_THROTTLED", "203.0.113.9").await;
    event(&app, acme, "LOGIN_LOCKED", "203.0.113.10").await;
    event(&app, acme, "IP_BLOCKED", "198.51.100.1").await;

    // MFA: acme has 3 staff (admin with TOTP) and 2 customers (one with).
    app.user("acme", "billing@acme.test", Role::Billing).await;
    app.user("acme", "support@acme.test", Role::Support).await;
    let c1 = app.user("acme", "c1@acme.test", Role::Customer).await;
    app.user("acme", "c2@acme.test", Role::Customer).await;
    totp_on(&app, acme, acme_admin.user_id).await;
    totp_on(&app, acme, c1).await;

    // Nodes: web-1 (acme's backups) up, web-2 (globex's) down, dns-9 no
    // one's.
    let health = json!({"load": {"1m": 0.5, "5m": 0.4, "15m": 0.3}});
    let web1 = server(&app, "web-1", Some(health.clone()), None).await;
    let web2 = server(
        &app,
        "web-2",
        None,
        Some("cannot connect to 10.1.2.3:22: refused"),
    )
    .await;
    server(&app, "dns-9", None, None).await;

    // Backups: acme's SITE backed up 2 h ago, its MAILBOX 30 h ago
    // (overdue), a SITE never backed up made 2 days ago (overdue), a
    // RETAINED one long ago (not counted); globex's MAILBOX 1 h ago.
    let now = app.clock.now();
    let acme_customer = first_customer(&app, &acme_admin).await;
    let globex_customer = first_customer(&app, &globex_admin).await;
    let t = |kind, label, state, last: Option<Duration>, made: Duration, tenant, customer, node| {
        let app = &app;
        async move {
            seed::backup_target(
                &app.store,
                tenant,
                customer,
                node,
                kind,
                label,
                state,
                last.map(|d| now - d),
                now - made,
            )
            .await
            .unwrap()
        }
    };
    let d = Duration::days(10);
    let site = t(
        "SITE",
        "a.example",
        "ACTIVE",
        Some(Duration::hours(2)),
        d,
        acme,
        acme_customer,
        web1,
    )
    .await;
    let mailbox = t(
        "MAILBOX",
        "m@a.example",
        "ACTIVE",
        Some(Duration::hours(30)),
        d,
        acme,
        acme_customer,
        web1,
    )
    .await;
    t(
        "SITE",
        "new.example",
        "ACTIVE",
        None,
        Duration::days(2),
        acme,
        acme_customer,
        web1,
    )
    .await;
    t(
        "SITE",
        "gone.example",
        "RETAINED",
        Some(Duration::days(9)),
        d,
        acme,
        acme_customer,
        web1,
    )
    .await;
    let g_mailbox = t(
        "MAILBOX",
        "m@g.example",
        "ACTIVE",
        Some(Duration::hours(1)),
        d,
        globex,
        globex_customer,
        web2,
    )
    .await;
    for (target, kind, status, ago) in [
        (site, "SITE", "SUCCEEDED", Duration::hours(2)),
        (site, "SITE", "SUCCEEDED", Duration::hours(3)),
        (site, "SITE", "FAILED", Duration::hours(4)),
        (site, "SITE", "RUNNING", Duration::minutes(5)),
        (mailbox, "MAILBOX", "SUCCEEDED", Duration::hours(30)),
        (mailbox, "MAILBOX", "FAILED", Duration::hours(5)),
        (mailbox, "MAILBOX", "SUCCEEDED", Duration::days(8)),
    ] {
        seed::backup_job(&app.store, acme, target, kind, status, now - ago)
            .await
            .unwrap();
    }
    seed::backup_job(
        &app.store,
        globex,
        g_mailbox,
        "MAILBOX",
        "SUCCEEDED",
        now - Duration::hours(1),
    )
    .await
    .unwrap();

    // --- acme's admin: acme's share only.
    let o = overview(&app, &acme_admin).await;
    assert_eq!(o["scope"], "TENANT");
    assert_eq!(o["tenant_id"], acme.to_string());
    assert_eq!(names(&o["nodes"], "name"), ["web-1"]);
    assert_eq!(o["nodes"][0]["reachable"], "UP");
    assert_eq!(o["nodes"][0]["last_latency_ms"], 12);
    assert_eq!(o["nodes"][0]["health"], health);

    let prov = queue(&o, "provision.subscription");
    assert_eq!(
        (
            prov["dead"].clone(),
            prov["completed_last_5m"].clone(),
            prov["waiting"].clone()
        ),
        (json!(1), json!(2), json!(0))
    );
    let test = queue(&o, "test.ops");
    assert_eq!(test["waiting"], 1);
    assert_eq!(test["scheduled"], 1);
    assert_eq!(test["oldest_waiting_age_secs"], 180);

    let p = &o["provisioning"];
    assert_eq!(p["provisioned"], 2);
    assert_eq!(p["failed"], 1);
    assert_eq!(p["success_rate_percent"], 66.7);
    assert_eq!(p["order_to_live_p50_secs"], 60);
    assert_eq!(p["order_to_live_p95_secs"], 180);
    let failures = p["recent_failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0]["step"], "hosting.account.create");
    assert!(
        !failures[0]["reason"].as_str().unwrap().contains("10.9.8.7"),
        "node addresses are the operator's: {failures:?}"
    );

    let s = &o["security"];
    assert_eq!(s["failed_logins_24h"], 3);
    assert_eq!(s["throttled_addresses_24h"], 2);
    assert_eq!(s["policy_refusals_24h"], 1);
    assert_eq!(
        s["mfa"],
        json!({"staff_users": 3, "staff_with_mfa": 1, "staff_percent": 33.3,
               "customer_users": 2, "customers_with_mfa": 1, "customers_percent": 50.0})
    );
    let events = s["latest_events"].as_array().unwrap();
    // The admin's sign-in, 3 failures, 3 throttling events, 1 refusal.
    assert_eq!(events.len(), 8, "{events:?}");
    assert_eq!(events[0]["kind"], "IP_BLOCKED");
    assert!(events.iter().all(|e| e["tenant_id"] == acme.to_string()));

    let billing = &o["billing"];
    assert_eq!(
        billing["overdue_invoices"],
        json!([{"currency": "EUR", "count": 1, "amount_minor": 1500}])
    );
    assert_eq!(
        billing["payments_24h"],
        json!([{"currency": "EUR", "count": 3, "amount_minor": 4500}])
    );
    assert_eq!(
        billing["subscriptions"],
        json!([{"status": "PENDING_ACTIVATION", "count": 4}])
    );

    let backups = &o["backups"];
    assert_eq!(backups["max_age_hours"], 26);
    // 7 days: SITE 2 of 3, MAILBOX 1 of 2 (the 8-day-old one is out).
    assert_eq!(backups["success_rate_7d_percent"], 60.0);
    let site_k = &backups["kinds"][1];
    assert_eq!(site_k["kind"], "SITE");
    assert_eq!(
        (
            site_k["today_succeeded"].clone(),
            site_k["today_failed"].clone(),
            site_k["today_running"].clone()
        ),
        (json!(2), json!(1), json!(1))
    );
    assert_eq!(site_k["success_rate_7d_percent"], 66.7);
    let mail_k = &backups["kinds"][0];
    assert_eq!(mail_k["kind"], "MAILBOX");
    assert_eq!(mail_k["today_failed"], 1);
    assert_eq!(mail_k["today_succeeded"], 0);
    assert_eq!(mail_k["success_rate_7d_percent"], 50.0);
    assert_eq!(
        mail_k["last_success_at"],
        json!(rfc3339(now - Duration::hours(30) + Duration::minutes(1)))
    );
    assert_eq!(backups["overdue_count"], 2);
    assert_eq!(
        names(&backups["overdue"], "label"),
        ["new.example", "m@a.example"]
    );
    assert_eq!(backups["overdue"][0]["age_secs"], 2 * 86_400);

    // --- globex's admin: globex's share only.
    let o = overview(&app, &globex_admin).await;
    assert_eq!(names(&o["nodes"], "name"), ["web-2"]);
    assert_eq!(o["nodes"][0]["reachable"], "DOWN");
    // A shared node's error names the operator's hosts: not shown.
    assert_eq!(o["nodes"][0]["last_error"], Value::Null);
    assert_eq!(o["provisioning"]["provisioned"], 0);
    assert_eq!(o["provisioning"]["failed"], 1);
    assert_eq!(o["provisioning"]["success_rate_percent"], 0.0);
    assert_eq!(o["provisioning"]["order_to_live_p50_secs"], Value::Null);
    assert!(
        o["queues"]
            .as_array()
            .unwrap()
            .iter()
            .all(|q| q["kind"] != "test.ops")
    );
    assert_eq!(queue(&o, "provision.subscription")["dead"], 1);
    assert_eq!(o["security"]["failed_logins_24h"], 1);
    assert_eq!(o["security"]["throttled_addresses_24h"], 0);
    assert_eq!(o["security"]["mfa"]["customers_percent"], Value::Null);
    assert_eq!(o["billing"]["overdue_invoices"], json!([]));
    assert_eq!(
        o["billing"]["payments_24h"],
        json!([{"currency": "EUR", "count": 1, "amount_minor": 1500}])
    );
    assert_eq!(o["backups"]["overdue_count"], 0);
    assert_eq!(o["backups"]["overdue"], json!([]));
    assert_eq!(o["backups"]["success_rate_7d_percent"], 100.0);

    // --- the operator: the platform.
    let o = overview(&app, &ops).await;
    assert_eq!(o["scope"], "PLATFORM");
    assert_eq!(o["tenant_id"], Value::Null);
    assert_eq!(names(&o["nodes"], "name"), ["dns-9", "web-1", "web-2"]);
    assert_eq!(
        o["nodes"][2]["last_error"],
        "cannot connect to 10.1.2.3:22: refused"
    );
    assert_eq!(o["provisioning"]["provisioned"], 2);
    assert_eq!(o["provisioning"]["failed"], 2);
    assert_eq!(o["provisioning"]["success_rate_percent"], 50.0);
    let failures = o["provisioning"]["recent_failures"].as_array().unwrap();
    assert_eq!(failures.len(), 2);
    assert!(failures[0]["reason"].as_str().unwrap().contains("10.9.8.7"));
    assert_eq!(queue(&o, "provision.subscription")["dead"], 2);
    assert_eq!(o["security"]["failed_logins_24h"], 4);
    // acme's 3, globex's admin and the operator.
    assert_eq!(o["security"]["mfa"]["staff_users"], 5);
    assert_eq!(o["security"]["mfa"]["staff_with_mfa"], 1);
    assert_eq!(
        o["billing"]["payments_24h"],
        json!([{"currency": "EUR", "count": 4, "amount_minor": 6000}])
    );
    assert_eq!(o["backups"]["overdue_count"], 2);
    assert_eq!(o["backups"]["success_rate_7d_percent"], 66.7);

    // The same figures on /metrics.
    let text = app.get("/metrics").await.text().await.unwrap();
    for line in [
        r#"mpanel_provisioning_orders_24h{outcome="provisioned"} 2"#,
        r#"mpanel_provisioning_orders_24h{outcome="failed"} 2"#,
        r#"mpanel_queue_jobs{kind="provision.subscription",state="dead"} 2"#,
        r#"mpanel_queue_jobs{kind="test.ops",state="waiting"} 1"#,
        r#"mpanel_queue_oldest_waiting_seconds{kind="test.ops"} 180"#,
        r#"mpanel_node_up{node="web-1",role="WEB",status="ONLINE"} 1"#,
        r#"mpanel_node_up{node="web-2",role="WEB",status="ONLINE"} 0"#,
        r#"mpanel_nodes{state="down"} 1"#,
        "mpanel_failed_logins_24h 4",
        "mpanel_backup_overdue_targets 2",
        "mpanel_backup_oldest_age_seconds 172800",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
    }
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

#[tokio::test]
async fn only_admins_see_the_overview_and_an_empty_platform_shows_empty_sections() {
    let app = TestApp::start().await;
    for role in [Role::Billing, Role::Support, Role::Customer] {
        let who = app
            .account("acme", &format!("{role}@acme.test").to_lowercase(), role)
            .await;
        let res = app
            .get_as(&who.access_token, "/api/ops/platform-overview")
            .await;
        assert_eq!(res.status(), 403, "{role}");
    }
    let res = app.get("/api/ops/platform-overview").await;
    assert_eq!(res.status(), 401);

    let ops = app
        .account("platform", "ops@platform.test", Role::SuperAdmin)
        .await;
    let o = overview(&app, &ops).await;
    assert_eq!(o["nodes"], json!([]));
    assert_eq!(o["queues"], json!([]));
    assert_eq!(o["provisioning"]["provisioned"], 0);
    assert_eq!(o["provisioning"]["success_rate_percent"], Value::Null);
    assert_eq!(o["provisioning"]["order_to_live_p95_secs"], Value::Null);
    assert_eq!(o["provisioning"]["recent_failures"], json!([]));
    assert_eq!(o["billing"]["overdue_invoices"], json!([]));
    assert_eq!(o["billing"]["subscriptions"], json!([]));
    assert_eq!(o["backups"]["kinds"], json!([]));
    assert_eq!(o["backups"]["success_rate_7d_percent"], Value::Null);
    // One customer user (the 403 check's), without a second factor.
    assert_eq!(o["security"]["mfa"]["customer_users"], 1);
    assert_eq!(o["security"]["mfa"]["customers_percent"], 0.0);
}

/// Every metric an alert rule uses is one `/metrics` shows, so the rules
/// cannot drift from the code.
#[tokio::test]
async fn every_metric_the_alert_rules_use_is_on_metrics() {
    let app = TestApp::start().await;
    let text = app.get("/metrics").await.text().await.unwrap();
    let shown: std::collections::BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    let rules = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/prometheus/mpanel-alerts.yml"
    ))
    .unwrap();
    let mut used = std::collections::BTreeSet::new();
    for line in rules.lines() {
        let Some(expr) = line.trim().strip_prefix("expr:") else {
            continue;
        };
        let b = expr.as_bytes();
        let mut i = 0;
        while i < b.len() {
            let starts = b[i..].starts_with(b"mpanel_")
                && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_'));
            if starts {
                let len = b[i..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
                    .count();
                used.insert(expr[i..i + len].to_owned());
                i += len;
            } else {
                i += 1;
            }
        }
    }
    assert!(used.len() >= 5, "the rules use {used:?}");
    for name in &used {
        assert!(
            shown.contains(name.as_str()),
            "{name} is not on /metrics:\n{text}"
        );
    }
}
