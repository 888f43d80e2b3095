//! A subscription staff create for a product that provisions goes the way
//! of an order: checked like an order item, its invoice issued, its
//! provisioning queued when the invoice is paid (or at once when staff say
//! so, and then not again on payment); a support plan stays as before; a
//! bad domain is the order's problem and makes nothing.

use serde_json::{Value, json};

use crate::orders::product;
use crate::support::{Account, TestApp, problem};

const PROVISION_JOB: &str = "provision.subscription";

async fn provisioning_jobs(app: &TestApp) -> usize {
    let filter = mpanel_store::jobs::JobFilter {
        kind: Some(PROVISION_JOB.into()),
        ..Default::default()
    };
    app.store.list_jobs(&filter, None, 200).await.unwrap().len()
}

/// Tenant `acme` with a hosting product (zone, one mailbox) and a customer.
async fn setup(app: &TestApp) -> (Account, String, String) {
    let admin = app
        .account(
            "acme",
            "admin@acme.test",
            mpanel_domain::identity::Role::TenantAdmin,
        )
        .await;
    let hosting = product(
        app,
        &admin,
        "web",
        "ACTIVE",
        "PUBLIC",
        json!({"type": "HOSTING", "dns_zone": true, "mailboxes": 1}),
    )
    .await;
    let customer = crate::billing::customer(app, &admin, "jane@acme.test", "DE", None).await;
    (admin, hosting, customer)
}

async fn subscribe(app: &TestApp, admin: &Account, body: Value) -> reqwest::Response {
    app.post_as(&admin.access_token, "/api/billing/subscriptions", body)
        .await
}

#[tokio::test]
async fn a_hosting_subscription_is_invoiced_and_provisioned_once_paid() {
    let app = TestApp::start().await;
    let (admin, hosting, customer) = setup(&app).await;
    let res = subscribe(
        &app,
        &admin,
        json!({"customer_id": customer, "product_id": hosting, "period": "MONTHLY",
               "domain": "Phone-Order.Example", "options": {"mailbox_password": "a mailbox password"}}),
    )
    .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let sub: Value = res.json().await.unwrap();
    assert_eq!(sub["status"], "PENDING_ACTIVATION");
    assert_eq!(sub["provisioning"], json!([]), "nothing before payment");
    let order_id = sub["order_id"].as_str().unwrap().to_owned();
    assert_eq!(provisioning_jobs(&app).await, 0);

    // The order holds the normalised domain; its invoice is issued.
    let order: Value = app
        .get_as(&admin.access_token, &format!("/api/orders/{order_id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(order["items"][0]["domain"], "phone-order.example");
    let invoices: Value = app
        .get_as(&admin.access_token, "/api/billing/invoices?status=ISSUED")
        .await
        .json()
        .await
        .unwrap();
    let invoice = &invoices["items"][0];
    assert_eq!(invoice["total_minor"], 1500, "{invoices}");

    // Paying it queues the same job an order would.
    let res = app
        .post_as(
            &admin.access_token,
            &format!(
                "/api/billing/invoices/{}/pay",
                invoice["id"].as_str().unwrap()
            ),
            json!({"amount_minor": 1500, "provider": "BANK_TRANSFER", "reference": "bank-77"}),
        )
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    assert_eq!(provisioning_jobs(&app).await, 1);
    let id = sub["id"].as_str().unwrap();
    let now: Value = app
        .get_as(
            &admin.access_token,
            &format!("/api/billing/subscriptions/{id}"),
        )
        .await
        .json()
        .await
        .unwrap();
    let steps: Vec<&str> = now["provisioning"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "dns.zone.create",
            "hosting.account.create",
            "mail.account.create",
            "subscription.activate"
        ]
    );
    assert_eq!(now["order_id"], json!(order_id));
}

#[tokio::test]
async fn provisioning_before_payment_is_queued_at_once_and_not_again_when_paid() {
    let app = TestApp::start().await;
    let (admin, hosting, customer) = setup(&app).await;
    let body = json!({"customer_id": customer, "product_id": hosting, "period": "MONTHLY",
                      "domain": "early.example", "provision_before_payment": true});
    let res = app
        .call(
            reqwest::Method::POST,
            "/api/billing/subscriptions",
            Some(&admin.access_token),
            Some(body.clone()),
        )
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let sub: Value = res.json().await.unwrap();
    assert_eq!(sub["provisioning"].as_array().unwrap().len(), 4);
    assert_eq!(provisioning_jobs(&app).await, 1);
    let invoices: Value = app
        .get_as(&admin.access_token, "/api/billing/invoices?status=ISSUED")
        .await
        .json()
        .await
        .unwrap();
    let invoice = invoices["items"][0]["id"].as_str().unwrap().to_owned();
    let res = app
        .post_as(
            &admin.access_token,
            &format!("/api/billing/invoices/{invoice}/pay"),
            json!({"amount_minor": 1500, "provider": "BANK_TRANSFER", "reference": "bank-78"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let id = sub["id"].as_str().unwrap();
    let now: Value = app
        .get_as(
            &admin.access_token,
            &format!("/api/billing/subscriptions/{id}"),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        now["provisioning"].as_array().unwrap().len(),
        4,
        "no second set"
    );
    assert_eq!(provisioning_jobs(&app).await, 1);
}

#[tokio::test]
async fn a_bad_domain_is_the_orders_problem_and_a_support_plan_stays_as_before() {
    let app = TestApp::start().await;
    let (admin, hosting, customer) = setup(&app).await;
    let tenant = app.tenant("acme").await;
    let before = app.store.order_footprint(tenant).await.unwrap();
    for (domain, field) in [("not a domain", "domain"), ("co.uk", "domain")] {
        let res = subscribe(
            &app,
            &admin,
            json!({"customer_id": customer, "product_id": hosting, "period": "MONTHLY", "domain": domain}),
        )
        .await;
        assert_eq!(res.status(), 422, "{domain}");
        let p = problem(res).await;
        assert_eq!(
            (p["code"].as_str(), p["field"].as_str()),
            (Some("validation_failed"), Some(field)),
            "{p}"
        );
    }
    let res = subscribe(
        &app,
        &admin,
        json!({"customer_id": customer, "product_id": hosting, "period": "MONTHLY"}),
    )
    .await;
    assert_eq!(res.status(), 422, "a hosting product needs a domain");
    assert_eq!(
        app.store.order_footprint(tenant).await.unwrap(),
        before,
        "nothing made"
    );

    // A support plan provisions nothing: active at once, as before.
    let support = product(
        &app,
        &admin,
        "support",
        "ACTIVE",
        "PUBLIC",
        json!({"type": "NONE"}),
    )
    .await;
    let res = subscribe(
        &app,
        &admin,
        json!({"customer_id": customer, "product_id": support, "period": "MONTHLY"}),
    )
    .await;
    assert_eq!(res.status(), 201);
    let sub: Value = res.json().await.unwrap();
    assert_eq!(
        (&sub["status"], &sub["order_id"]),
        (&json!("ACTIVE"), &Value::Null)
    );
    let res = subscribe(
        &app,
        &admin,
        json!({"customer_id": customer, "product_id": support, "period": "MONTHLY", "domain": "x.example"}),
    )
    .await;
    assert_eq!(res.status(), 422);
    assert_eq!(problem(res).await["field"], "domain");
    assert_eq!(provisioning_jobs(&app).await, 0);
}

#[tokio::test]
async fn a_repeated_request_makes_nothing_twice() {
    let app = TestApp::start().await;
    let (admin, hosting, customer) = setup(&app).await;
    let body = json!({"customer_id": customer, "product_id": hosting, "period": "MONTHLY",
                      "domain": "once.example"});
    let send = || {
        reqwest::Client::new()
            .post(app.url("/api/billing/subscriptions"))
            .bearer_auth(&admin.access_token)
            .header("idempotency-key", "phone-order-1")
            .json(&body)
            .send()
    };
    let first = send().await.unwrap();
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let again = send().await.unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(first["id"], again["id"]);
    let tenant = app.tenant("acme").await;
    assert_eq!(
        app.store.order_footprint(tenant).await.unwrap()[1],
        1,
        "one order"
    );
}

#[tokio::test]
async fn staff_sell_private_plans_keep_auto_renew_and_can_import_a_running_site() {
    let app = TestApp::start().await;
    let (admin, _, customer) = setup(&app).await;
    let private = product(
        &app,
        &admin,
        "partner",
        "ACTIVE",
        "PRIVATE",
        json!({"type": "HOSTING", "dns_zone": false, "mailboxes": 0}),
    )
    .await;
    let res = subscribe(
        &app,
        &admin,
        json!({"customer_id": customer, "product_id": private, "period": "MONTHLY",
               "domain": "partner.example", "auto_renew": false}),
    )
    .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let sub: Value = res.json().await.unwrap();
    assert_eq!(
        (&sub["status"], &sub["auto_renew"]),
        (&json!("PENDING_ACTIVATION"), &json!(false))
    );

    // A site that already runs elsewhere is imported as before: active,
    // nothing provisioned, no order.
    let res = subscribe(
        &app,
        &admin,
        json!({"customer_id": customer, "product_id": private, "period": "MONTHLY",
               "external_ref": "legacy-account-42"}),
    )
    .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let imported: Value = res.json().await.unwrap();
    assert_eq!(
        (&imported["status"], &imported["order_id"]),
        (&json!("ACTIVE"), &Value::Null)
    );
    assert_eq!(provisioning_jobs(&app).await, 0);
}
