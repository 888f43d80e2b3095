//! A customer's DNS records edited over the API, live on the real PowerDNS
//! the test harness starts (`bash scripts/test.sh`): what the API accepts
//! is what `dig` answers, what it refuses never reaches PowerDNS, another
//! tenant never sees the zone, and only roles with HOSTING_WRITE change it.

use std::time::Duration;

use mpanel_domain::identity::Role;
use mpanel_provision::dns::PowerDns;
use mpanel_store::provisioning::{ResourceKind, ResourceRecord};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Account, TestApp};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests under `bash scripts/test.sh` (it starts PowerDNS)")
    })
}

/// `dig +short` for `name`/`rtype` at the harness's PowerDNS.
pub async fn dig(port: &str, name: &str, rtype: &str) -> String {
    let args: Vec<String> = [
        "@127.0.0.1",
        "-p",
        port,
        "+short",
        "+time=2",
        "+tries=1",
        rtype,
        name,
    ]
    .map(str::to_owned)
    .to_vec();
    let out =
        tokio::task::spawn_blocking(move || std::process::Command::new("dig").args(&args).output())
            .await
            .unwrap()
            .expect("dig runs");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Polls `dig` until it answers `want` (PowerDNS caches for a moment).
pub async fn dig_until(port: &str, name: &str, rtype: &str, want: &str) {
    let mut last = String::new();
    for _ in 0..50 {
        last = dig(port, name, rtype).await;
        if last == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("dig {rtype} {name}: wanted {want:?}, last answer {last:?}");
}

/// A live DNS zone of a customer of `slug` on the harness's PowerDNS (the
/// server registered by `ops`, the product and order made by `admin`);
/// answers the driver and the zone's canonical name.
pub async fn live_zone(
    app: &TestApp,
    ops: &Account,
    admin: &Account,
    slug: &str,
) -> (PowerDns, String) {
    let api_url = env("PDNS_API_URL");
    let api_key = env("PDNS_API_KEY");
    // The DNS server in the inventory.
    let res = app
        .post_as(
            &ops.access_token,
            "/api/servers",
            json!({"name": "dns-1", "role": "DNS", "address": "127.0.0.1", "port": app.addr.port(),
                   "credentials": {"type": "API", "url": api_url, "key": api_key},
                   "settings": {"server_id": "localhost", "nameservers": ["ns1.example.net."]},
                   "capacity": 100}),
        )
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let server_id: mpanel_domain::ServerId = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();

    // A customer with a subscription.
    let res = app
        .post_as(
            &admin.access_token,
            "/api/billing/products",
            json!({"name": "Web", "slug": "web", "category": "HOSTING", "billing_model": "RECURRING",
                   "status": "ACTIVE", "visibility": "PUBLIC"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let product = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = app
        .post_as(
            &admin.access_token,
            &format!("/api/billing/products/{product}/prices"),
            json!({"period": "MONTHLY", "currency": "EUR", "amount_minor": 500}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let unique = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
    );
    let zone = format!("rec-{unique}.test.");
    let res = app
        .post_order(
            slug,
            &app.webhook_secret(slug),
            "dns-1",
            &json!({"customer": {"email": "c@acme.test", "name": "C", "country": "DE"},
                    "items": [{"product_id": product, "period": "MONTHLY", "domain": zone.trim_end_matches('.')}],
                    "currency": "EUR"}),
        )
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let placed: Value = res.json().await.unwrap();

    // The zone on PowerDNS, and recorded for the subscription.
    let pdns = PowerDns::new(&api_url, &api_key, "localhost").unwrap();
    pdns.ensure_zone(&zone, &["ns1.example.net.".to_owned()], &[])
        .await
        .unwrap();
    let now = app.clock_now();
    let zone_row = ResourceRecord {
        id: mpanel_domain::ResourceId::new(),
        tenant_id: admin.tenant_id,
        customer_id: placed["customer_id"].as_str().unwrap().parse().unwrap(),
        subscription_id: placed["items"][0]["subscription_id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap(),
        server_id,
        name: zone.clone(),
        status: mpanel_domain::provisioning::ResourceStatus::Active,
        quota_mb: None,
        php_version: None,
        archive_path: None,
        created_at: now,
        updated_at: now,
    };
    app.store
        .insert_resource(ResourceKind::DnsZone, &zone_row)
        .await
        .unwrap();
    (pdns, zone)
}

#[tokio::test]
async fn dns_records_are_edited_live_checked_first_and_tenant_scoped() {
    let dns_port = env("PDNS_DNS_PORT");
    let app = TestApp::start().await;
    let ops = app.account("acme", "ops@acme.test", Role::SuperAdmin).await;
    let admin = app
        .account("acme", "admin@acme.test", Role::TenantAdmin)
        .await;
    let support = app
        .account("acme", "support@acme.test", Role::Support)
        .await;
    let billing = app
        .account("acme", "billing@acme.test", Role::Billing)
        .await;
    let other = app
        .account("bravo", "admin@bravo.test", Role::TenantAdmin)
        .await;

    let (pdns, zone) = live_zone(&app, &ops, &admin, "acme").await;

    let token = admin.access_token.as_str();
    let zones: Value = app
        .get_as(token, "/api/dns/zones")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(zones["items"][0]["name"], zone.as_str(), "{zones}");
    assert_eq!(zones["items"][0]["status"], "ACTIVE");
    let bare = zone.trim_end_matches('.');
    let records = format!("/api/dns/zones/{bare}/records");
    let res = app.get_as(token, &records).await;
    assert_eq!(res.status(), 200);
    let listed: Value = res.json().await.unwrap();
    let types: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, vec!["NS"], "SOA left out: {listed}");

    // An A record answers in DNS.
    let www = format!("www.{zone}");
    let res = app
        .post_as(
            token,
            &records,
            json!({"name": "www", "type": "A", "records": ["192.0.2.7"]}),
        )
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let set: Value = res.json().await.unwrap();
    assert_eq!(
        set,
        json!({"name": www, "type": "A", "ttl": 3600, "records": ["192.0.2.7"]})
    );
    dig_until(&dns_port, &www, "A", "192.0.2.7").await;

    // A CNAME beside the A is refused and PowerDNS is unchanged.
    let before = pdns.zone(&zone).await.unwrap().unwrap();
    let res = app
        .post_as(
            token,
            &records,
            json!({"name": "www", "type": "CNAME", "records": ["example.net."]}),
        )
        .await;
    assert_eq!(res.status(), 422);
    let problem: Value = res.json().await.unwrap();
    assert_eq!(problem["code"], "validation_failed");
    assert!(
        problem["field"] == "type" || problem["field"] == "name",
        "{problem}"
    );
    // An MX pointing at an address is refused.
    let res = app
        .post_as(
            token,
            &records,
            json!({"name": "@", "type": "MX", "records": ["10 192.0.2.8"]}),
        )
        .await;
    assert_eq!(res.status(), 422);
    assert_eq!(
        res.json::<Value>().await.unwrap()["code"],
        "validation_failed"
    );
    assert_eq!(pdns.zone(&zone).await.unwrap().unwrap(), before);

    // Plain TXT text is quoted.
    let res = app
        .post_as(
            token,
            &records,
            json!({"name": "@", "type": "TXT", "ttl": 300, "records": ["hello world"]}),
        )
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    assert_eq!(
        res.json::<Value>().await.unwrap()["records"],
        json!(["\"hello world\""])
    );
    dig_until(&dns_port, &zone, "TXT", "\"hello world\"").await;

    // PATCH replaces the set (a SUPPORT user may write, BILLING may not).
    let www_a = format!("/api/dns/zones/{zone}/records/www/A");
    let res = app
        .call(
            Method::PATCH,
            &www_a,
            Some(&billing.access_token),
            Some(json!({"records": ["192.0.2.9"]})),
        )
        .await;
    assert_eq!(res.status(), 403);
    let res = app
        .call(
            Method::PATCH,
            &www_a,
            Some(&support.access_token),
            Some(json!({"ttl": 120, "records": ["192.0.2.9"]})),
        )
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    dig_until(&dns_port, &www, "A", "192.0.2.9").await;
    let sets = pdns.zone(&zone).await.unwrap().unwrap();
    let www_sets: Vec<_> = sets.iter().filter(|s| s.name == www).collect();
    assert_eq!(www_sets.len(), 1, "{sets:?}");
    assert_eq!(www_sets[0].records, vec!["192.0.2.9".to_owned()]);
    assert_eq!(www_sets[0].ttl, 120);
    let res = app
        .call(
            Method::PATCH,
            &format!("/api/dns/zones/{zone}/records/ftp/A"),
            Some(token),
            Some(json!({"records": ["192.0.2.9"]})),
        )
        .await;
    assert_eq!(res.status(), 404, "PATCH needs an existing set");

    // Another tenant's admin does not find the zone.
    for (method, path, body) in [
        (Method::GET, records.clone(), None),
        (
            Method::POST,
            records.clone(),
            Some(json!({"name": "evil", "type": "A", "records": ["192.0.2.66"]})),
        ),
        (
            Method::PATCH,
            www_a.clone(),
            Some(json!({"records": ["192.0.2.66"]})),
        ),
        (Method::DELETE, www_a.clone(), None),
    ] {
        let res = app
            .call(method.clone(), &path, Some(&other.access_token), body)
            .await;
        assert_eq!(res.status(), 404, "{method} {path} as another tenant");
        assert_eq!(res.json::<Value>().await.unwrap()["code"], "not_found");
    }
    let zones: Value = app
        .get_as(&other.access_token, "/api/dns/zones")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(zones["items"], json!([]));

    // NS stays the platform's; DELETE removes a set, then it is gone.
    let res = app
        .call(
            Method::DELETE,
            &format!("/api/dns/zones/{zone}/records/@/NS"),
            Some(token),
            None,
        )
        .await;
    assert_eq!(res.status(), 422);
    let res = app
        .call(Method::DELETE, &www_a, Some(&billing.access_token), None)
        .await;
    assert_eq!(res.status(), 403);
    let res = app.call(Method::DELETE, &www_a, Some(token), None).await;
    assert_eq!(res.status(), 204);
    dig_until(&dns_port, &www, "A", "").await;
    let res = app.call(Method::DELETE, &www_a, Some(token), None).await;
    assert_eq!(res.status(), 404, "already gone");

    // Every change audited.
    let audit: Value = app
        .get_as(token, "/api/audit?limit=200")
        .await
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .filter(|a| a.starts_with("dns.rrset."))
        .collect();
    assert_eq!(actions.len(), 4, "{actions:?}");

    pdns.delete_zone(&zone).await.unwrap();
}
