//! The daily retention pass deletes what is only kept for a while: throttle
//! rows gone quiet, expired challenges, idempotency keys older than a week,
//! and security events past the tenant's retention; what is recent stays.

use mpanel_domain::identity::Role;
use serde_json::json;
use time::Duration;

use crate::orders::{order, product};
use crate::security_center::set_policy;
use crate::support::{PASSWORD, TestApp};

#[tokio::test]
async fn retention_deletes_old_records_and_keeps_recent_ones() {
    let app = TestApp::start().await;
    let admin = app
        .account("acme", "admin@acme.test", Role::TenantAdmin)
        .await;
    let web = product(
        &app,
        &admin,
        "web",
        "ACTIVE",
        "PUBLIC",
        json!({"type": "NONE"}),
    )
    .await;
    // A security policy keeping events 30 days.
    set_policy(&app, &admin, json!({"security_event_retention_days": 30})).await;

    // Day 0: failed logins (throttle rows, events), an order (its key), a
    // challenge that expires in minutes.
    let elsewhere = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 4]))
        .build()
        .unwrap();
    for _ in 0..2 {
        elsewhere
            .post(app.url("/api/auth/login"))
            .json(&json!({"tenant": "acme", "email": "admin@acme.test", "password": "a wrong password"}))
            .send()
            .await
            .unwrap();
    }
    let res = app
        .post_as(
            &admin.access_token,
            "/api/webhooks/endpoints",
            json!({"url": "http://127.0.0.1:9/hook", "event_types": ["order.created"]}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let endpoint = res.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = app
        .post_order(
            "acme",
            &app.webhook_secret("acme"),
            "order-1",
            &order(&web, "keep.test", false),
        )
        .await;
    assert_eq!(res.status(), 201);
    // The order's webhook delivery, delivered.
    app.store
        .execute_raw_for_tests("UPDATE webhook_deliveries SET status = 'SUCCEEDED'")
        .await
        .unwrap();
    let challenge = app
        .store
        .insert_challenge(&mpanel_store::identity::second_factors::NewChallenge {
            tenant: admin.tenant_id,
            user: admin.user_id,
            kind: "MFA_LOGIN",
            token_hash: Some(b"old"),
            state: None,
            expires_at: app.clock_now() + Duration::minutes(5),
        })
        .await
        .unwrap();
    let _ = challenge;

    // Day 31: one fresh failure, then the pass.
    app.clock.advance(Duration::days(31));
    app.login_raw("acme", "admin@acme.test", "another wrong one")
        .await;
    let pruned = mpanel_services::security::retention::run(&app.store, app.clock.as_ref())
        .await
        .unwrap();
    assert_eq!(
        pruned.throttles, 2,
        "the account's and the address's: {pruned:?}"
    );
    assert_eq!(
        pruned.challenges, 2,
        "the MFA challenge and the new customer's invitation link: {pruned:?}"
    );
    assert_eq!(pruned.idempotency_keys, 1, "{pruned:?}");
    assert!(pruned.security_events >= 2, "{pruned:?}");
    assert_eq!(pruned.webhook_deliveries, 1, "{pruned:?}");
    let admin = app.sign_in("acme", "admin@acme.test", admin.user_id).await;
    let deliveries: serde_json::Value = app
        .get_as(
            &admin.access_token,
            &format!("/api/webhooks/endpoints/{endpoint}/deliveries"),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        deliveries["items"],
        json!([]),
        "a month-old delivery is gone: {deliveries}"
    );

    // What a user notices: only the recent failure is left in the events,
    // and the week-old key places a new order instead of replaying.
    let kinds = app.security_events(admin.tenant_id).await;
    assert_eq!(
        kinds.iter().filter(|k| *k == "LOGIN_FAILED").count(),
        1,
        "{kinds:?}"
    );
    let res = app
        .post_order(
            "acme",
            &app.webhook_secret("acme"),
            "order-1",
            &order(&web, "again.test", false),
        )
        .await;
    assert_eq!(res.status(), 201);
    assert!(res.headers().get("idempotent-replayed").is_none());
    // The owner still signs in.
    assert_eq!(
        app.login_raw("acme", "admin@acme.test", PASSWORD)
            .await
            .status(),
        200
    );
}
