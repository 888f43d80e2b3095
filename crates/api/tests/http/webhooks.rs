//! Outbound webhooks: a tenant subscribes a URL; invoice events reach a
//! receiver on loopback signed as Standard Webhooks says (checked with the
//! reference library, not mPanel's code); a failing receiver is retried on
//! the schedule (test clock) until it accepts; private addresses are
//! refused; other tenants and roles get 404 and 403.

use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};
use mpanel_domain::identity::Role;
use mpanel_domain::{Clock, WebhookDeliveryId};
use mpanel_services::webhooks::WebhookPolicy;
use mpanel_services::webhooks::deliver::{Deliverer, Outcome};
use mpanel_services::webhooks::endpoints;
use serde_json::{Value, json};
use time::Duration;

use crate::billing::{customer, draft, issue, put_settings};
use crate::support::{Account, TestApp};

/// What one delivery attempt brought.
#[derive(Debug, Clone)]
struct Received {
    headers: Value,
    body: String,
}

/// An HTTP receiver on loopback: records every request and answers the
/// next status of `answers` (204 when none are left).
#[derive(Clone, Default)]
struct Receiver {
    received: Arc<Mutex<Vec<Received>>>,
    answers: Arc<Mutex<Vec<u16>>>,
}

impl Receiver {
    async fn start(answers: &[u16]) -> (Self, String) {
        let receiver = Self::default();
        receiver
            .answers
            .lock()
            .unwrap()
            .extend(answers.iter().rev());
        let state = receiver.clone();
        let app = axum::Router::new().route(
            "/hooks",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let state = state.clone();
                async move {
                    let headers: serde_json::Map<String, Value> = headers
                        .iter()
                        .map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap())))
                        .collect();
                    state.received.lock().unwrap().push(Received {
                        headers: Value::Object(headers),
                        body,
                    });
                    let code = state.answers.lock().unwrap().pop().unwrap_or(204);
                    StatusCode::from_u16(code).unwrap()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (receiver, url)
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

/// Verifies a delivery with the Standard Webhooks reference library
/// (`scripts/verify_webhook.py`); answers the event type it verified.
fn verify(secret: &str, got: &Received, now: time::OffsetDateTime) -> Result<String, String> {
    let python = std::env::var("MPANEL_TEST_PROOF_PYTHON").expect(
        "MPANEL_TEST_PROOF_PYTHON: a Python with standardwebhooks; run through scripts/test.sh",
    );
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scripts/verify_webhook.py"
    );
    let input = json!({"secret": secret, "headers": got.headers, "body": got.body,
        "now": now.unix_timestamp()});
    let mut child = std::process::Command::new(python)
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), input.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).unwrap().trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn allow_loopback() -> WebhookPolicy {
    WebhookPolicy {
        allowed_networks: vec!["127.0.0.0/8".parse().unwrap()],
    }
}

fn deliverer(app: &TestApp, allowed: &[&str]) -> Deliverer {
    Deliverer {
        store: app.store.clone(),
        clock: app.clock.clone(),
        policy: WebhookPolicy {
            allowed_networks: allowed.iter().map(|n| n.parse().unwrap()).collect(),
        },
    }
}

async fn subscribe(app: &TestApp, admin: &Account, url: &str, events: &[&str]) -> Value {
    let res = app
        .post_as(
            &admin.access_token,
            "/api/webhooks/endpoints",
            json!({"url": url, "description": "accounting", "event_types": events}),
        )
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    res.json().await.unwrap()
}

async fn deliveries(app: &TestApp, admin: &Account, endpoint: &str) -> Vec<Value> {
    let res = app
        .get_as(
            &admin.access_token,
            &format!("/api/webhooks/endpoints/{endpoint}/deliveries"),
        )
        .await;
    assert_eq!(res.status(), 200);
    let page: Value = res.json().await.unwrap();
    page["items"].as_array().unwrap().clone()
}

/// The live job that sends a delivery, as operators see it.
async fn delivery_job(app: &TestApp, ops: &Account, id: WebhookDeliveryId) -> Value {
    let res = app
        .get_as(
            &ops.access_token,
            "/api/ops/jobs?kind=webhook.deliver&limit=200",
        )
        .await;
    assert_eq!(res.status(), 200);
    let jobs: Value = res.json().await.unwrap();
    let key = format!("webhook.deliver:{id}");
    jobs["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["unique_key"] == key.as_str() && j["state"] == "PENDING")
        .cloned()
        .unwrap_or_else(|| panic!("no pending job for {id}: {jobs}"))
}

async fn redeliver(app: &TestApp, admin: &Account, id: WebhookDeliveryId) -> u16 {
    let path = format!("/api/webhooks/deliveries/{id}/redeliver");
    app.post_as(&admin.access_token, &path, json!({}))
        .await
        .status()
        .as_u16()
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

fn delivery_id(d: &Value) -> WebhookDeliveryId {
    d["id"].as_str().unwrap().parse().unwrap()
}

/// A tenant with billing settings and an issued invoice of 10.00.
async fn issued_invoice(app: &TestApp, admin: &Account) -> Value {
    put_settings(
        app,
        admin,
        json!({"legal_name": "Acme Hosting GmbH", "address_lines": ["Hauptstr. 1"],
               "country": "DE", "tax_mode": "EXCLUSIVE", "tax_rates": {"DE": "0.19"},
               "payment_terms_days": 14}),
    )
    .await;
    let jane = customer(app, admin, "jane@example.de", "DE", None).await;
    let inv = draft(
        app,
        admin,
        json!({"customer_id": jane, "lines": [
            {"kind": "ITEM", "description": "Web hosting", "quantity": 1, "unit_price": "10.00"}]}),
    )
    .await;
    let res = issue(app, admin, inv["id"].as_str().unwrap()).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    res.json().await.unwrap()
}

#[tokio::test]
async fn events_reach_the_receiver_signed_and_a_failing_one_is_retried_until_it_accepts() {
    let app = TestApp::start().await;
    let admin = app
        .account("acme", "admin@acme.test", Role::TenantAdmin)
        .await;
    // The receiver fails twice, then accepts.
    let (receiver, url) = Receiver::start(&[500, 503]).await;
    let endpoint = subscribe(&app, &admin, &url, &["invoice.issued", "invoice.paid"]).await;
    let secret = endpoint["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{endpoint}");
    let endpoint_id = endpoint["id"].as_str().unwrap().to_owned();
    let shown: Value = app
        .get_as(
            &admin.access_token,
            &format!("/api/webhooks/endpoints/{endpoint_id}"),
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(shown.get("secret").is_none(), "the secret is shown once");
    assert_eq!(shown["status"], "ACTIVE");

    let invoice = issued_invoice(&app, &admin).await;
    let queued = deliveries(&app, &admin, &endpoint_id).await;
    assert_eq!(queued.len(), 1, "one event, one delivery: {queued:?}");
    assert_eq!(queued[0]["event_type"], "invoice.issued");
    assert_eq!(queued[0]["status"], "PENDING");
    let id = delivery_id(&queued[0]);

    // The event queued its job in the same transaction.
    let ops = app.account("acme", "ops@acme.test", Role::SuperAdmin).await;
    let job = delivery_job(&app, &ops, id).await;
    assert_eq!(job["state"], "PENDING");

    // Attempt 1 (500) and 2 (503) fail; the waits grow: 5 s, then 5 min.
    let sender = deliverer(&app, &["127.0.0.0/8"]);
    let mut waits = Vec::new();
    for _ in 0..2 {
        let now = app.clock.now();
        match sender.deliver(id).await.unwrap() {
            Outcome::RetryAt(at) => {
                waits.push(at - now);
                app.clock.set(at);
            }
            other => panic!("expected a retry, got {other:?}"),
        }
    }
    assert_eq!(waits, [Duration::seconds(5), Duration::minutes(5)]);
    let pending = deliveries(&app, &admin, &endpoint_id).await;
    assert_eq!(pending[0]["status"], "PENDING");
    assert_eq!(pending[0]["attempts"], 2);
    assert_eq!(pending[0]["last_status"], 503);
    let failing: Value = app
        .get_as(
            &admin.access_token,
            &format!("/api/webhooks/endpoints/{endpoint_id}"),
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(failing["failing_since"].is_string(), "{failing}");

    // Attempt 3 is accepted; the delivery is done and not sent again.
    assert_eq!(sender.deliver(id).await.unwrap(), Outcome::Delivered);
    assert_eq!(sender.deliver(id).await.unwrap(), Outcome::Skipped);
    let done = deliveries(&app, &admin, &endpoint_id).await;
    assert_eq!(done[0]["status"], "SUCCEEDED");
    assert_eq!(done[0]["attempts"], 3);
    assert_eq!(done[0]["last_status"], 204);

    // Every attempt carried the same webhook-id and a valid signature.
    let got = receiver.received();
    assert_eq!(got.len(), 3);
    for attempt in &got {
        assert_eq!(attempt.headers["webhook-id"], format!("msg_{id}"));
        assert_eq!(attempt.headers["content-type"], "application/json");
        let at: i64 = attempt.headers["webhook-timestamp"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let at = time::OffsetDateTime::from_unix_timestamp(at).unwrap();
        assert_eq!(
            verify(&secret, attempt, at).as_deref(),
            Ok("invoice.issued")
        );
    }
    let body: Value = serde_json::from_str(&got[2].body).unwrap();
    assert_eq!(body["data"]["number"], invoice["number"]);
    assert_eq!(body["data"]["id"], invoice["id"]);
    // A signature made with another secret does not verify.
    let other = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    assert!(verify(other, &got[2], app.clock.now()).is_err());
    let healthy: Value = app
        .get_as(
            &admin.access_token,
            &format!("/api/webhooks/endpoints/{endpoint_id}"),
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(healthy["failing_since"].is_null(), "{healthy}");

    // Redelivery sends it again, with the same id.
    assert_eq!(redeliver(&app, &admin, id).await, 202);
    let job = delivery_job(&app, &ops, id).await;
    assert_eq!(job["state"], "PENDING", "a new job: {job}");
    assert_eq!(job["run_at"], json!(rfc3339(app.clock.now())));
    assert_eq!(sender.deliver(id).await.unwrap(), Outcome::Delivered);
    let got = receiver.received();
    assert_eq!(got.len(), 4);
    assert_eq!(got[3].headers["webhook-id"], format!("msg_{id}"));
}

#[tokio::test]
async fn a_receiver_that_never_accepts_is_given_up_after_three_days_and_disabled_after_five() {
    let app = TestApp::start().await;
    let admin = app
        .account("acme", "admin@acme.test", Role::TenantAdmin)
        .await;
    // Who is told when it is disabled: the tenant's admins, not support.
    app.user("acme", "second-admin@acme.test", Role::TenantAdmin)
        .await;
    app.user("acme", "support@acme.test", Role::Support).await;
    let (receiver, url) = Receiver::start(&[500; 64]).await;
    let endpoint = subscribe(&app, &admin, &url, &["invoice.issued"]).await;
    let endpoint_id = endpoint["id"].as_str().unwrap().to_owned();
    issued_invoice(&app, &admin).await;
    let id = delivery_id(&deliveries(&app, &admin, &endpoint_id).await[0]);
    let sender = deliverer(&app, &["127.0.0.0/8"]);
    let start = app.clock.now();
    let outcome = loop {
        match sender.deliver(id).await.unwrap() {
            Outcome::RetryAt(at) => app.clock.set(at),
            other => break other,
        }
    };
    assert_eq!(outcome, Outcome::GaveUp);
    assert!(app.clock.now() - start <= Duration::days(3));
    // Days went by: a fresh session.
    let admin = app.sign_in("acme", "admin@acme.test", admin.user_id).await;
    let failed = &deliveries(&app, &admin, &endpoint_id).await[0];
    assert_eq!(failed["status"], "FAILED");
    assert_eq!(failed["last_error"], "the receiver answered HTTP 500");
    let attempts = receiver.received().len();
    assert_eq!(failed["attempts"], attempts);

    // Two days later, one more failure: after a pause of more than a day
    // it starts a new run of failures, and disables nothing.
    app.clock.set(start + Duration::days(5));
    let admin = app.sign_in("acme", "admin@acme.test", admin.user_id).await;
    assert_eq!(redeliver(&app, &admin, id).await, 202);
    // Past its three days: one attempt, then given up.
    assert_eq!(sender.deliver(id).await.unwrap(), Outcome::GaveUp);
    let endpoint_now = endpoint_view(&app, &admin, &endpoint_id).await;
    assert_eq!(endpoint_now["status"], "ACTIVE", "{endpoint_now}");
    let run_start = app.clock.now();

    // Failures without a pause for five days disable it: a new event
    // whenever the last delivery gave up.
    loop {
        let admin = app.sign_in("acme", "admin@acme.test", admin.user_id).await;
        issued_invoice_again(&app, &admin).await;
        let newest = delivery_id(&deliveries(&app, &admin, &endpoint_id).await[0]);
        while let Outcome::RetryAt(at) = sender.deliver(newest).await.unwrap() {
            app.clock.set(at);
        }
        let admin = app.sign_in("acme", "admin@acme.test", admin.user_id).await;
        if endpoint_view(&app, &admin, &endpoint_id).await["status"] == "DISABLED" {
            break;
        }
        assert!(
            app.clock.now() - run_start < Duration::days(6),
            "never disabled"
        );
    }
    assert!(app.clock.now() - run_start >= Duration::days(5));
    let admin = app.sign_in("acme", "admin@acme.test", admin.user_id).await;
    let disabled: Value = app
        .get_as(
            &admin.access_token,
            &format!("/api/webhooks/endpoints/{endpoint_id}"),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(disabled["status"], "DISABLED", "{disabled}");
    assert!(
        disabled["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("5 days")
    );

    // A disabled endpoint's deliveries are not sent again until it is
    // enabled.
    assert_eq!(redeliver(&app, &admin, id).await, 409);

    // Staff find it in the audit log.
    let audit: Value = app
        .get_as(&admin.access_token, "/api/audit")
        .await
        .json()
        .await
        .unwrap();
    assert!(
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "webhook_endpoint.disabled"),
        "{audit}"
    );
    crate::messages::assert_admins_told_of_disabled_endpoint(
        &app,
        &admin,
        &["admin@acme.test", "second-admin@acme.test"],
    )
    .await;

    // A disabled endpoint gets no new deliveries; enabling it again does.
    let before = deliveries(&app, &admin, &endpoint_id).await.len();
    issued_invoice_again(&app, &admin).await;
    assert_eq!(deliveries(&app, &admin, &endpoint_id).await.len(), before);
    let res = app
        .call(
            reqwest::Method::PATCH,
            &format!("/api/webhooks/endpoints/{endpoint_id}"),
            Some(&admin.access_token),
            Some(json!({"status": "ACTIVE"})),
        )
        .await;
    assert_eq!(res.status(), 200);
    let enabled: Value = res.json().await.unwrap();
    assert!(enabled["failing_since"].is_null());
    issued_invoice_again(&app, &admin).await;
    assert_eq!(
        deliveries(&app, &admin, &endpoint_id).await.len(),
        before + 1
    );
}

async fn endpoint_view(app: &TestApp, admin: &Account, id: &str) -> Value {
    let res = app
        .get_as(
            &admin.access_token,
            &format!("/api/webhooks/endpoints/{id}"),
        )
        .await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// Another invoice for the customer made by [`issued_invoice`].
async fn issued_invoice_again(app: &TestApp, admin: &Account) {
    let res = app.get_as(&admin.access_token, "/api/customers").await;
    let customers: Value = res.json().await.unwrap();
    let jane = customers["items"][0]["id"].as_str().unwrap().to_owned();
    let inv = draft(
        app,
        admin,
        json!({"customer_id": jane, "lines": [
            {"kind": "ITEM", "description": "Domain", "quantity": 1, "unit_price": "12.00"}]}),
    )
    .await;
    let res = issue(app, admin, inv["id"].as_str().unwrap()).await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn private_addresses_are_refused_unless_the_operator_allows_them() {
    let app = TestApp::start().await;
    let admin = app
        .account("acme", "admin@acme.test", Role::TenantAdmin)
        .await;
    for url in [
        "http://10.0.0.5/hooks",
        "http://169.254.169.254/latest/meta-data",
        "http://[fd00::1]/hooks",
        "http://192.168.1.1:8080/",
        "ftp://hooks.example.com/",
        "https://user:pass@hooks.example.com/",
    ] {
        let res = app
            .post_as(
                &admin.access_token,
                "/api/webhooks/endpoints",
                json!({"url": url, "event_types": ["invoice.paid"]}),
            )
            .await;
        assert_eq!(res.status(), 422, "{url}");
        let problem: Value = res.json().await.unwrap();
        assert_eq!(problem["field"], "url", "{problem}");
    }
    let res = app
        .post_as(
            &admin.access_token,
            "/api/webhooks/endpoints",
            json!({"url": "https://hooks.example.com/", "event_types": []}),
        )
        .await;
    assert_eq!(res.status(), 422);
    let listed: Value = app
        .get_as(&admin.access_token, "/api/webhooks/endpoints")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["items"], json!([]), "nothing was made");

    // Loopback is allowed here (the test configuration), so the endpoint
    // is stored; a worker whose policy does not allow it refuses to send,
    // and the receiver hears nothing.
    let (receiver, url) = Receiver::start(&[]).await;
    let endpoint = subscribe(&app, &admin, &url, &["invoice.issued"]).await;
    let endpoint_id = endpoint["id"].as_str().unwrap().to_owned();
    issued_invoice(&app, &admin).await;
    let id = delivery_id(&deliveries(&app, &admin, &endpoint_id).await[0]);
    let strict = deliverer(&app, &[]);
    assert!(matches!(
        strict.deliver(id).await.unwrap(),
        Outcome::RetryAt(_)
    ));
    assert!(receiver.received().is_empty());
    let refused = &deliveries(&app, &admin, &endpoint_id).await[0];
    let error = refused["last_error"].as_str().unwrap();
    assert_eq!(
        error, "the host did not resolve to an address this installation sends webhooks to",
        "the tenant learns nothing about the provider's network"
    );

    // A host name is checked when saved too: `localhost` resolves to
    // loopback, refused by a policy that does not allow it.
    let strict = WebhookPolicy::default();
    let err = endpoints::checked_url("http://localhost:8080/hooks", &strict)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("loopback"), "{err}");
    assert!(
        endpoints::checked_url("http://localhost:8080/hooks", &allow_loopback())
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn endpoints_are_the_tenants_own_and_need_the_admin_role() {
    let app = TestApp::start().await;
    let admin = app
        .account("acme", "admin@acme.test", Role::TenantAdmin)
        .await;
    let rival = app
        .account("rival", "admin@rival.test", Role::TenantAdmin)
        .await;
    let billing = app
        .account("acme", "billing@acme.test", Role::Billing)
        .await;
    let (receiver, url) = Receiver::start(&[]).await;
    let endpoint = subscribe(&app, &admin, &url, &["invoice.issued"]).await;
    let endpoint_id = endpoint["id"].as_str().unwrap().to_owned();
    issued_invoice(&app, &admin).await;
    let id = delivery_id(&deliveries(&app, &admin, &endpoint_id).await[0]);

    let path = format!("/api/webhooks/endpoints/{endpoint_id}");
    assert_eq!(app.get_as(&rival.access_token, &path).await.status(), 404);
    let res = app
        .get_as(&rival.access_token, &format!("{path}/deliveries"))
        .await;
    assert_eq!(res.status(), 404);
    let res = app
        .call(
            reqwest::Method::PATCH,
            &path,
            Some(&rival.access_token),
            Some(json!({"description": "mine now"})),
        )
        .await;
    assert_eq!(res.status(), 404);
    let res = app
        .call(
            reqwest::Method::DELETE,
            &path,
            Some(&rival.access_token),
            None,
        )
        .await;
    assert_eq!(res.status(), 404);
    assert_eq!(redeliver(&app, &rival, id).await, 404);
    let listed: Value = app
        .get_as(&rival.access_token, "/api/webhooks/endpoints")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["items"], json!([]));

    assert_eq!(app.get_as(&billing.access_token, &path).await.status(), 403);
    let res = app
        .post_as(
            &billing.access_token,
            "/api/webhooks/endpoints",
            json!({"url": url, "event_types": ["invoice.issued"]}),
        )
        .await;
    assert_eq!(res.status(), 403);

    // At rest the secret is sealed.
    let stored = app
        .store
        .list_webhook_endpoints(admin.tenant_id, None, 10)
        .await
        .unwrap();
    assert!(stored[0].secret.starts_with("v1:"), "{}", stored[0].secret);
    assert!(
        !stored[0]
            .secret
            .contains(endpoint["secret"].as_str().unwrap())
    );

    // Rotation shows a new secret once; deletion removes it all.
    let res = app
        .call(
            reqwest::Method::PATCH,
            &path,
            Some(&admin.access_token),
            Some(json!({"rotate_secret": true})),
        )
        .await;
    assert_eq!(res.status(), 200);
    let rotated: Value = res.json().await.unwrap();
    assert_ne!(rotated["secret"], endpoint["secret"]);
    assert!(rotated["secret"].as_str().unwrap().starts_with("whsec_"));
    // For a day, deliveries carry a signature under each secret, so a
    // receiver still holding the old one keeps accepting them.
    issued_invoice_again(&app, &admin).await;
    let newest = delivery_id(&deliveries(&app, &admin, &endpoint_id).await[0]);
    let sender = deliverer(&app, &["127.0.0.0/8"]);
    assert_eq!(sender.deliver(newest).await.unwrap(), Outcome::Delivered);
    let sent = receiver.received().pop().unwrap();
    let now = app.clock.now();
    for secret in [&rotated["secret"], &endpoint["secret"]] {
        assert_eq!(
            verify(secret.as_str().unwrap(), &sent, now).as_deref(),
            Ok("invoice.issued")
        );
    }
    app.clock.advance(Duration::hours(25));
    let admin = app.sign_in("acme", "admin@acme.test", admin.user_id).await;
    issued_invoice_again(&app, &admin).await;
    let later = delivery_id(&deliveries(&app, &admin, &endpoint_id).await[0]);
    assert_eq!(sender.deliver(later).await.unwrap(), Outcome::Delivered);
    let sent = receiver.received().pop().unwrap();
    let now = app.clock.now();
    assert!(verify(endpoint["secret"].as_str().unwrap(), &sent, now).is_err());
    assert!(verify(rotated["secret"].as_str().unwrap(), &sent, now).is_ok());
    let res = app
        .call(
            reqwest::Method::DELETE,
            &path,
            Some(&admin.access_token),
            None,
        )
        .await;
    assert_eq!(res.status(), 204);
    assert_eq!(app.get_as(&admin.access_token, &path).await.status(), 404);
    assert_eq!(
        redeliver(&app, &admin, id).await,
        404,
        "its deliveries went with it"
    );
}
