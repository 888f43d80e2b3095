//! Names are owned on the whole platform: once a customer of one tenant
//! has ordered a name, no customer of any tenant may order it, a name
//! inside it, a name containing it, or its `www.` alias; a public suffix
//! cannot be ordered at all; one order cannot hold two nested names. A
//! refused order makes nothing. (The same on the real PowerDNS and nginx:
//! crates/mpanel/tests/binary/names.rs.)

use mpanel_domain::identity::Role;
use serde_json::{Value, json};

use crate::orders::{order, product};
use crate::support::{Account, TestApp, problem};

async fn tenant_with_hosting(app: &TestApp, slug: &str) -> (String, Account) {
    let admin = app
        .account(slug, &format!("admin@{slug}.test"), Role::TenantAdmin)
        .await;
    let web = product(
        app,
        &admin,
        "web",
        "ACTIVE",
        "PUBLIC",
        json!({"type": "HOSTING", "dns_zone": true, "mailboxes": 1}),
    )
    .await;
    (web, admin)
}

async fn place(app: &TestApp, slug: &str, key: &str, body: &Value) -> (u16, Value) {
    let secret = app.webhook_secret(slug);
    let res = app.post_order(slug, &secret, key, body).await;
    let status = res.status().as_u16();
    (status, res.json().await.unwrap())
}

#[tokio::test]
async fn a_name_held_in_one_tenant_cannot_be_taken_from_another() {
    let app = TestApp::start().await;
    let (victim_web, _) = tenant_with_hosting(&app, "victim").await;
    let (rival_web, _) = tenant_with_hosting(&app, "rival").await;
    let (status, v) = place(
        &app,
        "victim",
        "v1",
        &order(&victim_web, "victim.test", false),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    let (status, v) = place(
        &app,
        "victim",
        "v2",
        &order(&victim_web, "www.beta.test", false),
    )
    .await;
    assert_eq!(status, 201, "{v}");

    let rival_tenant = app.tenant("rival").await;
    let before = app.store.order_footprint(rival_tenant).await.unwrap();
    let cases = [
        ("the same name", "victim.test"),
        ("a name inside it", "shop.victim.test"),
        ("deeper inside it", "a.b.victim.test"),
        ("its www alias", "www.victim.test"),
        ("the parent of a www site", "beta.test"),
        ("a public suffix", "co.uk"),
        ("a private public suffix", "github.io"),
    ];
    for (i, (what, domain)) in cases.into_iter().enumerate() {
        let (status, v) = place(
            &app,
            "rival",
            &format!("r{i}"),
            &order(&rival_web, domain, true),
        )
        .await;
        assert_eq!(status, 422, "{what}: {v}");
        assert_eq!(v["field"], "items[0].domain", "{what}: {v}");
    }
    assert_eq!(
        app.store.order_footprint(rival_tenant).await.unwrap(),
        before,
        "refused orders made nothing"
    );

    // Neighbours are not nested: a sibling and a name under a public
    // suffix are free.
    for (i, domain) in ["evictim.test", "victim.example", "me.github.io"]
        .into_iter()
        .enumerate()
    {
        let (status, v) = place(
            &app,
            "rival",
            &format!("ok{i}"),
            &order(&rival_web, domain, false),
        )
        .await;
        assert_eq!(status, 201, "{domain}: {v}");
    }

    // One order cannot hold two nested names either.
    let mut two = order(&rival_web, "two.test", false);
    two["items"]
        .as_array_mut()
        .unwrap()
        .push(json!({"product_id": rival_web, "period": "MONTHLY", "domain": "shop.two.test"}));
    let res = app
        .post_order("rival", &app.webhook_secret("rival"), "two", &two)
        .await;
    assert_eq!(res.status(), 422);
    assert_eq!(problem(res).await["field"], "items[1].domain");
}

#[tokio::test]
async fn a_mailbox_password_hash_sent_by_the_client_never_reaches_the_job() {
    let app = TestApp::start().await;
    let (web, _) = tenant_with_hosting(&app, "acme").await;
    let mut body = order(&web, "plain.test", true);
    body["items"][0]["options"] = json!({"mailbox_password_hash": "{PLAIN}hunter2"});
    let (status, v) = place(&app, "acme", "plain", &body).await;
    assert_eq!(status, 201, "{v}");
    let jobs = app
        .store
        .list_jobs(&Default::default(), None, 200)
        .await
        .unwrap();
    let job = jobs
        .iter()
        .find(|j| j.kind == "provision.subscription")
        .expect("the provisioning job");
    assert_eq!(
        job.payload["mailbox_password_hash"],
        Value::Null,
        "{}",
        job.payload
    );
}

#[tokio::test]
async fn a_name_is_free_again_once_its_subscription_ends() {
    let app = TestApp::start().await;
    let (victim_web, admin) = tenant_with_hosting(&app, "victim").await;
    let (rival_web, _) = tenant_with_hosting(&app, "rival").await;
    let (status, v) = place(
        &app,
        "victim",
        "v1",
        &order(&victim_web, "moving.test", false),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    let subscription = v["items"][0]["subscription_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = place(
        &app,
        "rival",
        "r1",
        &order(&rival_web, "moving.test", false),
    )
    .await;
    assert_eq!(status, 422, "held while the order waits for payment");

    let res = app
        .post_as(
            &admin.access_token,
            &format!("/api/billing/subscriptions/{subscription}/cancel"),
            json!({"mode": "IMMEDIATE"}),
        )
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let (status, v) = place(
        &app,
        "rival",
        "r2",
        &order(&rival_web, "moving.test", false),
    )
    .await;
    assert_eq!(status, 201, "released when the subscription ended: {v}");
}
