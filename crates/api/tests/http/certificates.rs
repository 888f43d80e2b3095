//! A site's certificates over the API: a customer sees and manages only
//! their own sites' (another's is 404), "issue now" queues one job, a bad
//! upload is refused with a reason and stores nothing, the tenant's TLS
//! settings are checked, and certificates ending soon reach the operator
//! (overview and /metrics). Issuance against a real CA is in the binary's
//! tests (Pebble).

use mpanel_domain::identity::Role;
use mpanel_domain::tls::{CertificateSource, CertificateStatus};
use mpanel_store::certificates::CertificateRecord;
use mpanel_store::jobs::JobFilter;
use reqwest::Method;
use serde_json::{Value, json};

use crate::hosting_sftp::shop;
use crate::support::TestApp;

async fn issue_jobs(app: &TestApp) -> usize {
    let filter = JobFilter {
        state: None,
        kind: Some("tls.issue".into()),
        queue: None,
    };
    app.store.list_jobs(&filter, None, 100).await.unwrap().len()
}

#[tokio::test]
async fn a_customer_manages_only_their_own_sites_certificates() {
    let app = TestApp::start().await;
    let (admin, customer, site) = shop(&app).await;
    let path = format!("/api/hosting/accounts/{site}/certificates");
    let res = app.get_as(&customer.access_token, &path).await;
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["domain"], "alpha.example");
    assert!(v["issuance"].is_null(), "{v}");
    assert_eq!(v["certificates"], json!([]));

    // Another customer of the same tenant: not found, nothing queued.
    let other = app
        .account("alpha", "other@alpha.test", Role::Customer)
        .await;
    let res = app.get_as(&other.access_token, &path).await;
    assert_eq!(res.status(), 404);
    let issue = format!("{path}/issue");
    let res = app.post_as(&other.access_token, &issue, json!({})).await;
    assert_eq!(res.status(), 404);
    assert_eq!(issue_jobs(&app).await, 0);

    // The owner asks; asking again within 5 minutes is refused.
    let res = app.post_as(&customer.access_token, &issue, json!({})).await;
    assert_eq!(res.status(), 202);
    let res = app.post_as(&customer.access_token, &issue, json!({})).await;
    assert_eq!(res.status(), 409);
    let problem: Value = res.json().await.unwrap();
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("ask again after") && detail.ends_with("UTC"),
        "{detail}"
    );
    let pending = JobFilter {
        state: Some(mpanel_domain::jobs::JobState::Pending),
        kind: Some("tls.issue".into()),
        queue: None,
    };
    let waiting = app.store.list_jobs(&pending, None, 10).await.unwrap();
    assert_eq!(waiting.len(), 1);
    let v: Value = app
        .get_as(&admin.access_token, &path)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["issuance"]["state"], "WAITING", "{v}");

    // A bad upload: a reason, and nothing stored.
    let body = json!({"certificate_chain": "not a certificate", "private_key": "nor a key"});
    let res = app.post_as(&customer.access_token, &path, body).await;
    assert_eq!(res.status(), 422);
    let problem: Value = res.json().await.unwrap();
    assert_eq!(problem["reason"], "certificate_unreadable", "{problem}");
    assert_eq!(problem["field"], "certificate_chain");
    let mine = app.store.certificates(admin.tenant_id, None, None, 10);
    assert!(mine.await.unwrap().is_empty());
}

#[tokio::test]
async fn tls_settings_are_checked_and_kept() {
    let app = TestApp::start().await;
    let admin = app
        .account("alpha", "admin@alpha.test", Role::TenantAdmin)
        .await;
    let put = |body: Value| {
        app.call(
            Method::PUT,
            "/api/tls/settings",
            Some(&admin.access_token),
            Some(body),
        )
    };
    for bad in [
        json!({"acme_directory_url": "http://ca.example/directory"}),
        // The worker would talk to it: no private addresses.
        json!({"acme_directory_url": "https://10.1.2.3/directory"}),
        json!({"acme_contact_email": "not an address"}),
        json!({"hsts_max_age_secs": -1}),
        json!({"hsts_max_age_secs": 100_000_000}),
        json!([null, null]),
    ] {
        let res = put(bad.clone()).await;
        assert_eq!(res.status(), 422, "{bad}");
    }
    let good = json!({"acme_directory_url": "https://ca.example/directory",
        "acme_contact_email": "tls@alpha.test", "hsts_max_age_secs": 31_536_000});
    let res = put(good.clone()).await;
    assert_eq!(res.status(), 200);
    let v: Value = app
        .get_as(&admin.access_token, "/api/tls/settings")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v, good);
}

#[tokio::test]
async fn certificates_ending_soon_reach_the_operator() {
    let app = TestApp::start().await;
    let (admin, _, site) = shop(&app).await;
    let now = app.clock_now();
    for (days, serial) in [(5, "aa01"), (60, "aa02")] {
        let cert = CertificateRecord {
            id: mpanel_domain::CertificateId::new(),
            tenant_id: admin.tenant_id,
            hosting_account_id: site,
            domain: "alpha.example".into(),
            source: CertificateSource::Uploaded,
            status: CertificateStatus::Pending,
            names: vec!["alpha.example".into()],
            serial: serial.into(),
            issuer: "Test CA".into(),
            not_before: now - time::Duration::days(30),
            not_after: now + time::Duration::days(days),
            chain_pem: String::new(),
            key_sealed: None,
            directory_url: None,
            created_at: now,
            ended_at: None,
        };
        app.store.insert_certificate(&cert).await.unwrap();
        // Only a served (ACTIVE) certificate counts: the other stays PENDING.
        if days == 5 {
            app.store
                .activate_certificate(site, cert.id, now)
                .await
                .unwrap();
        }
    }
    // The tenant's staff list them; another tenant's admin sees none.
    let page: Value = app
        .get_as(&admin.access_token, "/api/certificates")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 2, "{page}");
    let stranger = app
        .account("beta", "admin@beta.test", Role::TenantAdmin)
        .await;
    let page: Value = app
        .get_as(&stranger.access_token, "/api/certificates")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"], json!([]), "{page}");
    let ops = app
        .account("platform", "ops@platform.test", Role::SuperAdmin)
        .await;
    let o: Value = app
        .get_as(&ops.access_token, "/api/ops/platform-overview")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(o["certificates"]["expiring_count"], 1, "{o:#}");
    assert_eq!(o["certificates"]["expiring"][0]["domain"], "alpha.example");
    let text = app.get("/metrics").await.text().await.unwrap();
    assert!(
        text.contains("\nmpanel_certificates_expiring 1\n"),
        "{text}"
    );
}
