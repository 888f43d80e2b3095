//! The two unauthenticated webhooks (orders, Stripe) cost a bounded amount
//! of work before the sender is known: a signature header stuffed with
//! `v1=` values over the largest body accepted is refused in about the time
//! of an ordinary bad signature, a larger body is refused unread, and a
//! tenant that does not exist gets the answer a bad signature gets.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::billing::{billing_admin, put_settings};
use crate::support::TestApp;

/// The limits the server states (src/webhook_body.rs, domain signature).
const BODY_LIMIT: usize = 256 * 1024;
const HEADER_LIMIT: usize = 1024;

struct Hook {
    path: &'static str,
    signature_header: &'static str,
}

const ORDERS: Hook = Hook {
    path: "/api/orders",
    signature_header: "x-mpanel-signature",
};
const STRIPE: Hook = Hook {
    path: "/api/billing/stripe/webhook?tenant=acme",
    signature_header: "stripe-signature",
};

async fn send(
    app: &TestApp,
    hook: &Hook,
    tenant: &str,
    signature: &str,
    body: Vec<u8>,
) -> reqwest::Response {
    let path = hook
        .path
        .replace("tenant=acme", &format!("tenant={tenant}"));
    app.client
        .post(app.url(&path))
        .header("content-type", "application/json")
        .header("x-mpanel-tenant", tenant)
        .header("idempotency-key", "cost")
        .header(hook.signature_header, signature)
        .body(body)
        .send()
        .await
        .unwrap()
}

/// The median time of three refusals, each asserted to be a 401.
async fn refusal_time(app: &TestApp, hook: &Hook, signature: &str, body: &[u8]) -> Duration {
    let mut times = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let res = send(app, hook, "acme", signature, body.to_vec()).await;
        times.push(started.elapsed());
        assert_eq!(res.status(), 401, "{}", res.text().await.unwrap());
    }
    times.sort();
    times[1]
}

/// `t=<now>` followed by as many `v1=<64 hex>` values as fit in `len` bytes.
fn stuffed(now: i64, len: usize) -> String {
    let mut header = format!("t={now}");
    let value = format!(",v1={}", "ab".repeat(32));
    while header.len() + value.len() <= len {
        header.push_str(&value);
    }
    header
}

async fn hostile_headers_cost_one_mac(app: &TestApp, hook: &Hook) {
    let now = app.clock_now().unix_timestamp();
    let body = vec![b' '; BODY_LIMIT];
    let ordinary = mpanel_domain::orders::signature::sign("whsec_wrong", now, &body);
    let baseline = refusal_time(app, hook, &ordinary, &body).await;
    for len in [HEADER_LIMIT, 64 * 1024] {
        let hostile = refusal_time(app, hook, &stuffed(now, len), &body).await;
        assert!(
            hostile <= baseline * 3 + Duration::from_millis(100),
            "{} with a {len}-byte header of v1 values: {hostile:?} against {baseline:?} for a bad signature",
            hook.path
        );
    }
    let res = send(app, hook, "acme", &ordinary, vec![b' '; 1_000_000]).await;
    assert_eq!(res.status(), 413, "{}: a 1 MB body", hook.path);
}

/// The answer to a bad signature, without what differs per request.
async fn answer(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    let mut body: Value = res.json().await.unwrap();
    body.as_object_mut().unwrap().remove("instance");
    body.as_object_mut().unwrap().remove("request_id");
    (status, body)
}

async fn unknown_tenants_look_like_bad_signatures(app: &TestApp, hook: &Hook) {
    let now = app.clock_now().unix_timestamp();
    let body = br#"{"id":"evt_1"}"#.to_vec();
    let signature = mpanel_domain::orders::signature::sign("whsec_wrong", now, &body);
    let known = answer(send(app, hook, "acme", &signature, body.clone()).await).await;
    let unknown = answer(send(app, hook, "nobody-here", &signature, body).await).await;
    assert_eq!(known.0, 401, "{}", hook.path);
    assert_eq!(known, unknown, "{}", hook.path);
}

#[tokio::test]
async fn the_orders_webhook_costs_one_mac_and_tells_nobody_who_exists() {
    let app = TestApp::start().await;
    app.tenant("acme").await;
    hostile_headers_cost_one_mac(&app, &ORDERS).await;
    unknown_tenants_look_like_bad_signatures(&app, &ORDERS).await;
}

#[tokio::test]
async fn stripes_webhook_costs_one_mac_and_tells_nobody_who_exists() {
    let app = TestApp::start().await;
    let admin = billing_admin(&app, "acme").await;
    // A tenant without Stripe webhooks answers like one that has them.
    unknown_tenants_look_like_bad_signatures(&app, &STRIPE).await;
    put_settings(
        &app,
        &admin,
        json!({"stripe_secret_key": "sk_test_abc", "stripe_webhook_secret": "whsec_test"}),
    )
    .await;
    hostile_headers_cost_one_mac(&app, &STRIPE).await;
    unknown_tenants_look_like_bad_signatures(&app, &STRIPE).await;
}
