//! Orders from the marketing site: signed, idempotent, all or nothing.

use mpanel_domain::identity::Role;
use mpanel_store::Engine;
use serde_json::{Value, json};
use time::Duration;

use crate::support::{Account, PASSWORD, TestApp, problem};

pub struct Shop {
    pub app: TestApp,
    pub admin: Account,
    pub secret: String,
    pub hosting: String,
}

/// A tenant `acme` with a hosting product (DNS zone, 2 mailboxes) at
/// 10.00 EUR a month plus 5.00 setup.
pub async fn shop() -> Shop {
    let app = TestApp::start().await;
    let admin = app
        .account("acme", "admin@acme.test", Role::TenantAdmin)
        .await;
    let secret = app.webhook_secret("acme");
    let hosting = product(
        &app,
        &admin,
        "web",
        "ACTIVE",
        "PUBLIC",
        json!({"type": "HOSTING", "dns_zone": true, "mailboxes": 2}),
    )
    .await;
    Shop {
        app,
        admin,
        secret,
        hosting,
    }
}

pub async fn product(
    app: &TestApp,
    admin: &Account,
    slug: &str,
    status: &str,
    visibility: &str,
    template: Value,
) -> String {
    let res = app
        .post_as(
            &admin.access_token,
            "/api/billing/products",
            json!({"name": slug, "slug": slug, "category": "HOSTING", "billing_model": "RECURRING",
                   "status": status, "visibility": visibility, "base_currency": "EUR", "provisioning_template": template}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = app
        .post_as(
            &admin.access_token,
            &format!("/api/billing/products/{id}/prices"),
            json!({"period": "MONTHLY", "currency": "EUR", "amount_minor": 1000, "setup_fee_minor": 500}),
        )
        .await;
    assert_eq!(res.status(), 201);
    id
}

pub fn order(product: &str, domain: &str, paid: bool) -> Value {
    let mut body = json!({
        "customer": {"email": "Jane@Example.org", "name": "Jane Doe", "country": "DE", "tax_id": "DE123456789"},
        "items": [{"product_id": product, "period": "MONTHLY", "domain": domain}],
        "currency": "EUR",
    });
    if paid {
        body["payment"] = json!({"status": "PAID", "provider": "BANK_TRANSFER", "reference": format!("tx-{domain}"), "amount_minor": 1500});
    }
    body
}

impl Shop {
    pub async fn footprint(&self) -> [i64; 6] {
        let tenant = self.app.tenant("acme").await;
        self.app.store.order_footprint(tenant).await.unwrap()
    }

    async fn jobs(&self) -> usize {
        self.app
            .store
            .list_jobs(&Default::default(), None, 200)
            .await
            .unwrap()
            .into_iter()
            .filter(|j| j.kind.starts_with("provision."))
            .count()
    }
}

#[tokio::test]
async fn a_paid_order_creates_everything_and_queues_provisioning_in_one_go() {
    let s = shop().await;
    let res = s
        .app
        .post_order(
            "acme",
            &s.secret,
            "order-1",
            &order(&s.hosting, "Bücher.Example", true),
        )
        .await;
    assert_eq!(res.status(), 201);
    let placed: Value = res.json().await.unwrap();
    assert_eq!(placed["status"], "PAID");
    assert_eq!(placed["total_minor"], 1500);
    let item = &placed["items"][0];
    assert_eq!(item["domain"], "xn--bcher-kva.example");
    assert_eq!(
        item["steps"],
        json!([
            "dns.zone.create",
            "hosting.account.create",
            "mail.account.create",
            "subscription.activate"
        ])
    );
    assert_eq!(s.footprint().await, [1, 1, 1, 1, 1, 4]);
    assert_eq!(s.jobs().await, 1, "one provisioning job runs the steps");

    let id = placed["order_id"].as_str().unwrap();
    let detail: Value = s
        .app
        .get_as(&s.admin.access_token, &format!("/api/orders/{id}"))
        .await
        .json()
        .await
        .unwrap();
    let steps = detail["items"][0]["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 4);
    assert!(steps.iter().all(|st| st["state"] == "PENDING"), "{detail}");

    let customers: Value = s
        .app
        .get_as(&s.admin.access_token, "/api/customers")
        .await
        .json()
        .await
        .unwrap();
    let customer = &customers["items"][0];
    assert_eq!(customer["email"], "Jane@Example.org");
    assert_eq!(customer["country"], "DE");
    let users: Value = s
        .app
        .get_as(&s.admin.access_token, "/api/users")
        .await
        .json()
        .await
        .unwrap();
    let portal = users["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == customer["portal_user_id"])
        .unwrap();
    assert_eq!(portal["role"], "CUSTOMER");
    assert_eq!(portal["status"], "INVITED");

    // A second order of the same customer, signed in on the marketing
    // site, reuses the customer.
    let mut second = order(&s.hosting, "second.example", false);
    second["customer"]["email"] = json!("jane@example.org");
    second["customer"]["authenticated"] = json!(true);
    let res = s
        .app
        .post_order("acme", &s.secret, "order-2", &second)
        .await;
    assert_eq!(res.status(), 201);
    let placed: Value = res.json().await.unwrap();
    assert_eq!(placed["status"], "PENDING_PAYMENT");
    assert_eq!(
        placed["items"][0]["steps"],
        json!([]),
        "unpaid orders wait for payment"
    );
    assert_eq!(s.footprint().await, [1, 2, 2, 2, 2, 4]);
    assert_eq!(s.jobs().await, 1);
}

#[tokio::test]
async fn a_retry_gets_the_first_answer_and_creates_nothing() {
    let s = shop().await;
    let body = order(&s.hosting, "shop.example", true);
    let first = s.app.post_order("acme", &s.secret, "retry-me", &body).await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let footprint = s.footprint().await;

    s.app.clock.advance(Duration::seconds(30));
    let again = s.app.post_order("acme", &s.secret, "retry-me", &body).await;
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    assert_eq!(s.footprint().await, footprint);
    assert_eq!(s.jobs().await, 1);

    // The same payment under a new key pays for nothing twice.
    let mut replay = body.clone();
    replay["items"][0]["domain"] = json!("another.example");
    let res = s
        .app
        .post_order("acme", &s.secret, "replayed-elsewhere", &replay)
        .await;
    assert_eq!(res.status(), 422);
    assert_eq!(problem(res).await["field"], "payment.reference");
    assert_eq!(s.footprint().await, footprint);

    let other = order(&s.hosting, "other.example", true);
    let res = s
        .app
        .post_order("acme", &s.secret, "retry-me", &other)
        .await;
    assert_eq!(res.status(), 422);
    assert_eq!(problem(res).await["code"], "idempotency_key_reused");
    assert_eq!(s.footprint().await, footprint);
}

#[tokio::test]
async fn every_bad_order_is_refused_and_creates_nothing() {
    let s = shop().await;
    let inactive = product(
        &s.app,
        &s.admin,
        "old",
        "INACTIVE",
        "PUBLIC",
        json!({"type": "NONE"}),
    )
    .await;
    let private = product(
        &s.app,
        &s.admin,
        "secret",
        "ACTIVE",
        "PRIVATE",
        json!({"type": "NONE"}),
    )
    .await;
    let taken = s
        .app
        .post_order(
            "acme",
            &s.secret,
            "taken",
            &order(&s.hosting, "taken.example", true),
        )
        .await;
    assert_eq!(taken.status(), 201);
    let baseline = s.footprint().await;
    let jobs = s.jobs().await;

    let good = order(&s.hosting, "fresh.example", true);
    let raw = serde_json::to_vec(&good).unwrap();
    let now = s.app.clock_now().unix_timestamp();
    let signed = |secret: &str, t: i64, key: &str| {
        mpanel_domain::orders::signature::sign(
            secret,
            t,
            &mpanel_domain::orders::signature::order_payload(key, &raw),
        )
    };
    let send = |tenant: &str, signature: Option<String>, key: Option<&str>, body: Vec<u8>| {
        let mut req = s
            .app
            .client
            .post(s.app.url("/api/orders"))
            .header("content-type", "application/json")
            .header("x-mpanel-tenant", tenant)
            .body(body);
        if let Some(sig) = signature {
            req = req.header("x-mpanel-signature", sig);
        }
        if let Some(key) = key {
            req = req.header("idempotency-key", key);
        }
        req.send()
    };
    let cases: Vec<(&str, reqwest::Response, u16, &str)> = vec![
        (
            "wrong secret",
            send(
                "acme",
                Some(signed("whsec_wrong", now, "k1")),
                Some("k1"),
                raw.clone(),
            )
            .await
            .unwrap(),
            401,
            "invalid_signature",
        ),
        (
            "stale",
            send(
                "acme",
                Some(signed(&s.secret, now - 301, "k2")),
                Some("k2"),
                raw.clone(),
            )
            .await
            .unwrap(),
            401,
            "invalid_signature",
        ),
        (
            "from the future",
            send(
                "acme",
                Some(signed(&s.secret, now + 301, "k3")),
                Some("k3"),
                raw.clone(),
            )
            .await
            .unwrap(),
            401,
            "invalid_signature",
        ),
        (
            "unsigned",
            send("acme", None, Some("k4"), raw.clone()).await.unwrap(),
            401,
            "invalid_signature",
        ),
        (
            "tampered",
            send(
                "acme",
                Some(signed(&s.secret, now, "k5")),
                Some("k5"),
                [raw.clone(), b" ".to_vec()].concat(),
            )
            .await
            .unwrap(),
            401,
            "invalid_signature",
        ),
        (
            "replayed under another Idempotency-Key",
            send(
                "acme",
                Some(signed(&s.secret, now, "k8")),
                Some("k9"),
                raw.clone(),
            )
            .await
            .unwrap(),
            401,
            "invalid_signature",
        ),
        (
            "a key with a dot (the signed text must read one way)",
            send(
                "acme",
                Some(signed(&s.secret, now, "k.10")),
                Some("k.10"),
                raw.clone(),
            )
            .await
            .unwrap(),
            400,
            "idempotency_key_required",
        ),
        (
            "unknown tenant",
            send(
                "nope",
                Some(signed(&s.secret, now, "k6")),
                Some("k6"),
                raw.clone(),
            )
            .await
            .unwrap(),
            401,
            "invalid_signature",
        ),
        (
            "no key",
            send("acme", Some(signed(&s.secret, now, "")), None, raw.clone())
                .await
                .unwrap(),
            400,
            "idempotency_key_required",
        ),
    ];
    for (what, res, status, code) in cases {
        assert_eq!(res.status(), status, "{what}");
        assert_eq!(problem(res).await["code"], code, "{what}");
    }

    let mut bad_bodies: Vec<(&str, Value, u16, &str)> = Vec::new();
    let mut b = good.clone();
    b["items"][0]["product_id"] = json!(inactive);
    bad_bodies.push(("inactive product", b, 422, "items[0].product_id"));
    let mut b = good.clone();
    b["items"][0]["product_id"] = json!(private);
    bad_bodies.push(("private product", b, 422, "items[0].product_id"));
    let mut b = good.clone();
    b["currency"] = json!("XYZ");
    bad_bodies.push(("unknown currency", b, 422, "currency"));
    let mut b = good.clone();
    b["currency"] = json!("USD");
    b["payment"]["amount_minor"] = json!(1500);
    bad_bodies.push(("no price in the currency", b, 422, "items[0].period"));
    let mut b = good.clone();
    b["items"][0]["domain"] = json!("not a domain");
    bad_bodies.push(("invalid domain", b, 422, "items[0].domain"));
    let mut b = good.clone();
    b["items"][0]["domain"] = json!("TAKEN.example");
    bad_bodies.push(("domain already active", b, 422, "items[0].domain"));
    let mut b = good.clone();
    b["items"][0].as_object_mut().unwrap().remove("domain");
    bad_bodies.push(("hosting without a domain", b, 422, "items[0].domain"));
    let mut b = good.clone();
    b["payment"]["amount_minor"] = json!(1499);
    bad_bodies.push(("payment does not match", b, 422, "payment.amount_minor"));
    let mut b = good.clone();
    b["customer"]["country"] = json!("Germany");
    bad_bodies.push(("bad country", b, 422, "customer.country"));
    let mut b = good.clone();
    b["items"] = json!([]);
    bad_bodies.push(("no items", b, 422, "items"));
    for (i, (what, body, status, field)) in bad_bodies.into_iter().enumerate() {
        let res = s
            .app
            .post_order("acme", &s.secret, &format!("bad-{i}"), &body)
            .await;
        assert_eq!(res.status(), status, "{what}");
        assert_eq!(problem(res).await["field"], field, "{what}");
    }
    let mut b = good.clone();
    b["items"][0]["price"] = json!(1);
    let res = s.app.post_order("acme", &s.secret, "shape", &b).await;
    assert_eq!(res.status(), 422, "unknown fields are refused");
    let res = send(
        "acme",
        Some(mpanel_domain::orders::signature::sign(
            &s.secret,
            now,
            &mpanel_domain::orders::signature::order_payload("k7", b"{not json"),
        )),
        Some("k7"),
        b"{not json".to_vec(),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(problem(res).await["code"], "malformed_json");

    assert_eq!(s.footprint().await, baseline, "nothing was created");
    assert_eq!(s.jobs().await, jobs);
    // The rejected keys are free: the corrected order goes through.
    let res = s.app.post_order("acme", &s.secret, "bad-0", &good).await;
    assert_eq!(res.status(), 201);
}

#[tokio::test]
async fn a_failure_half_way_leaves_nothing_behind() {
    let s = shop().await;
    // The database refuses the provisioning jobs: the failure comes after
    // the customer, order, items, subscriptions and domains were written.
    let (create, drop): (Vec<&str>, &str) = match s.app.store.engine() {
        Engine::Sqlite => (
            vec![
                "CREATE TRIGGER fail_jobs BEFORE INSERT ON jobs BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
            ],
            "DROP TRIGGER fail_jobs",
        ),
        Engine::Postgres => (
            vec![
                "CREATE FUNCTION fail_jobs() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$",
                "CREATE TRIGGER fail_jobs BEFORE INSERT ON jobs FOR EACH ROW EXECUTE FUNCTION fail_jobs()",
            ],
            "DROP TRIGGER fail_jobs ON jobs",
        ),
    };
    for sql in create {
        s.app.store.execute_raw_for_tests(sql).await.unwrap();
    }
    let body = order(&s.hosting, "halfway.example", true);
    let res = s.app.post_order("acme", &s.secret, "half-way", &body).await;
    assert_eq!(res.status(), 500);
    let text = res.text().await.unwrap();
    assert!(!text.contains("injected"), "no internal detail: {text}");
    assert_eq!(s.footprint().await, [0, 0, 0, 0, 0, 0]);
    assert_eq!(s.jobs().await, 0);
    let users: Value = s
        .app
        .get_as(&s.admin.access_token, "/api/users")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        users["items"].as_array().unwrap().len(),
        1,
        "no portal user either"
    );

    s.app.store.execute_raw_for_tests(drop).await.unwrap();
    let res = s.app.post_order("acme", &s.secret, "half-way", &body).await;
    assert_eq!(
        res.status(),
        201,
        "the key was released and the retry goes through"
    );
    assert_eq!(s.footprint().await, [1, 1, 1, 1, 1, 4]);
}

#[tokio::test]
async fn customers_see_their_own_orders_and_secrets_rotate_with_a_grace() {
    let s = shop().await;
    let jane = s
        .app
        .account("acme", "jane@example.org", Role::Customer)
        .await;
    let res = s
        .app
        .post_order(
            "acme",
            &s.secret,
            "mine",
            &order(&s.hosting, "jane.example", true),
        )
        .await;
    assert_eq!(res.status(), 201);
    let mine: Value = s
        .app
        .get_as(&jane.access_token, "/api/me/orders")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        mine["items"][0]["items"][0]["steps"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    assert_eq!(
        s.app
            .get_as(&jane.access_token, "/api/orders")
            .await
            .status(),
        403
    );
    let other = s
        .app
        .account("acme", "other@example.org", Role::Customer)
        .await;
    let theirs: Value = s
        .app
        .get_as(&other.access_token, "/api/me/orders")
        .await
        .json()
        .await
        .unwrap();
    assert!(theirs["items"].as_array().unwrap().is_empty());
    let _ = PASSWORD;

    let res = s
        .app
        .post_as(
            &s.admin.access_token,
            "/api/settings/webhook-secret/rotate",
            json!({}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let new_secret = res.json::<Value>().await.unwrap()["webhook_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(new_secret, s.secret);
    let res = s
        .app
        .post_order(
            "acme",
            &new_secret,
            "rot-1",
            &order(&s.hosting, "new.example", false),
        )
        .await;
    assert_eq!(res.status(), 201);
    let res = s
        .app
        .post_order(
            "acme",
            &s.secret,
            "rot-2",
            &order(&s.hosting, "old.example", false),
        )
        .await;
    assert_eq!(res.status(), 201, "the old secret works during the grace");
    s.app.clock.advance(Duration::hours(25));
    let res = s
        .app
        .post_order(
            "acme",
            &s.secret,
            "rot-3",
            &order(&s.hosting, "late.example", false),
        )
        .await;
    assert_eq!(res.status(), 401, "and not after");
}

#[tokio::test]
async fn a_key_still_in_flight_is_a_409() {
    let s = shop().await;
    let body = order(&s.hosting, "busy.example", true);
    let raw = serde_json::to_vec(&body).unwrap();
    let tenant = s.app.tenant("acme").await;
    use sha2::Digest;
    let started = s
        .app
        .store
        .start_idempotency(
            tenant,
            "busy",
            &sha2::Sha256::digest(&raw),
            s.app.clock_now(),
        )
        .await
        .unwrap();
    assert!(matches!(
        started,
        mpanel_store::orders::IdempotencyStart::Fresh { .. }
    ));
    let res = s.app.post_order("acme", &s.secret, "busy", &body).await;
    assert_eq!(res.status(), 409);
    assert_eq!(problem(res).await["code"], "request_in_flight");
    assert_eq!(s.footprint().await, [0, 0, 0, 0, 0, 0]);
    // A request that never finished gives its key up after a minute.
    s.app.clock.advance(Duration::minutes(2));
    let res = s.app.post_order("acme", &s.secret, "busy", &body).await;
    assert_eq!(res.status(), 201);
}
