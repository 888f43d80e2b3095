//! `/api/cloudpods` over HTTP without a cluster (no worker runs here):
//! the seed plans, staff making a pod for a customer (an order with its
//! invoice, `Idempotency-Key` honoured), who sees and acts on which pod,
//! and the moves a pod's status allows. Provisioning on Proxmox VE is
//! proven end to end in the binary's tests against the Proxmox fake.

use mpanel_domain::billing::subscription::SubscriptionStatus;
use mpanel_domain::cloudpods::{PodStatus, SuspendedBy};
use mpanel_domain::identity::Role;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Account, TestApp};

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHQ3kKIv3dZ0kd6J3fF2m8s0Qxq2cXx4n0Q0yWw4pL8c jane@laptop";

/// A CloudPod product of plan `code`, priced 19.99 EUR a month; its id.
pub async fn plan_product(
    app: &TestApp,
    admin: &Account,
    code: &str,
    vcpus: u32,
    memory_mb: u32,
    disk_gb: u32,
) -> String {
    let res = app
        .post_as(
            &admin.access_token,
            "/api/billing/products",
            json!({"name": code, "slug": format!("pod-{}", code.to_lowercase()), "category": "CLOUDPOD",
                "billing_model": "RECURRING", "status": "ACTIVE", "visibility": "PUBLIC", "base_currency": "EUR",
                "provisioning_template": {"type": "CLOUD_POD", "plan": code, "vcpus": vcpus,
                    "memory_mb": memory_mb, "disk_gb": disk_gb}}),
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
            json!({"period": "MONTHLY", "currency": "EUR", "amount_minor": 1999}),
        )
        .await;
    assert_eq!(res.status(), 201);
    id
}

async fn send(
    app: &TestApp,
    method: Method,
    token: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let res = app.call(method, path, Some(token), body).await;
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// A customer of tenant `slug` with a signed-in portal user.
async fn customer(app: &TestApp, admin: &Account, slug: &str, email: &str) -> (String, Account) {
    let (status, made) = send(
        app,
        Method::POST,
        &admin.access_token,
        "/api/customers",
        Some(json!({"email": email, "name": "Jane", "country": "DE", "send_invitation": false})),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let id: mpanel_domain::CustomerId = made["id"].as_str().unwrap().parse().unwrap();
    let user = app
        .account(slug, &format!("portal-{email}"), Role::Customer)
        .await;
    let mut record = app
        .store
        .customer(admin.tenant_id, id)
        .await
        .unwrap()
        .unwrap();
    record.portal_user_id = Some(user.user_id);
    let mut tx = app.store.begin().await.unwrap();
    tx.save_customer(&record).await.unwrap();
    tx.commit().await.unwrap();
    (id.to_string(), user)
}

#[tokio::test]
async fn the_seed_plans_are_made_once_and_priced_in_the_tenant_currency() {
    let app = TestApp::start().await;
    let admin = app
        .account("alpha", "admin@alpha.test", Role::TenantAdmin)
        .await;
    let (status, v) = send(
        &app,
        Method::POST,
        &admin.access_token,
        "/api/billing/cloudpod-plans",
        None,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let plans: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["plan"].as_str().unwrap())
        .collect();
    assert_eq!(plans, ["MINI", "PRO", "BUSINESS", "ENTERPRISE"]);
    assert!(
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["created"] == true)
    );
    let pro = v["items"][1]["product_id"].as_str().unwrap().to_owned();

    let (_, product) = send(
        &app,
        Method::GET,
        &admin.access_token,
        &format!("/api/billing/products/{pro}"),
        None,
    )
    .await;
    assert_eq!(
        product["provisioning_template"],
        json!({"type": "CLOUD_POD", "plan": "PRO", "vcpus": 2, "memory_mb": 2048, "disk_gb": 50}),
        "{product:#}"
    );
    let (_, prices) = send(
        &app,
        Method::GET,
        &admin.access_token,
        &format!("/api/billing/products/{pro}/prices"),
        None,
    )
    .await;
    assert_eq!(prices["items"][0]["amount_minor"], 1999, "{prices:#}");
    assert_eq!(prices["items"][0]["currency"], "EUR", "{prices:#}");

    // Again: nothing new; a plan the provider changed is left as it is.
    let (status, again) = send(
        &app,
        Method::POST,
        &admin.access_token,
        "/api/billing/cloudpod-plans",
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        again["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["created"] == false),
        "{again}"
    );
    assert_eq!(again["items"][1]["product_id"], pro.as_str());
}

#[tokio::test]
async fn staff_make_a_pod_for_a_customer_who_alone_sees_and_acts_on_it() {
    let app = TestApp::start().await;
    let admin = app
        .account("alpha", "admin@alpha.test", Role::TenantAdmin)
        .await;
    let pro = plan_product(&app, &admin, "PRO", 2, 2048, 50).await;
    let (jane_id, jane) = customer(&app, &admin, "alpha", "jane@example.org").await;
    let (_, joe) = customer(&app, &admin, "alpha", "joe@example.org").await;

    // Bad input: a clear problem about the request's own field, nothing made.
    for (body, field) in [
        (
            json!({"customer_id": jane_id, "product_id": pro, "period": "MONTHLY", "ssh_keys": ["not a key"]}),
            "ssh_keys",
        ),
        (
            json!({"customer_id": jane_id, "product_id": pro, "period": "MONTHLY", "hostname": "bad_host"}),
            "hostname",
        ),
        (
            json!({"customer_id": jane_id, "product_id": pro, "period": "MONTHLY", "os_image": "plan9"}),
            "os_image",
        ),
    ] {
        let (status, v) = send(
            &app,
            Method::POST,
            &admin.access_token,
            "/api/cloudpods",
            Some(body),
        )
        .await;
        assert_eq!((status, v["field"].as_str()), (422, Some(field)), "{v}");
    }
    let (_, none) = send(
        &app,
        Method::GET,
        &admin.access_token,
        "/api/cloudpods",
        None,
    )
    .await;
    assert_eq!(none["items"], json!([]));

    // Made with an Idempotency-Key: a retry answers the same pod.
    let body = json!({"customer_id": jane_id, "product_id": pro, "period": "MONTHLY",
        "hostname": "pod1.example.org", "ssh_keys": [KEY]});
    let post = || {
        app.client
            .post(app.url("/api/cloudpods"))
            .bearer_auth(&admin.access_token)
            .header("idempotency-key", "pod-jane-1")
            .json(&body)
    };
    let first = post().send().await.unwrap();
    assert_eq!(first.status(), 201);
    let pod: Value = first.json().await.unwrap();
    let again: Value = post().send().await.unwrap().json().await.unwrap();
    assert_eq!(again["id"], pod["id"]);
    assert_eq!(
        (
            pod["status"].as_str(),
            pod["plan"].as_str(),
            pod["hostname"].as_str()
        ),
        (Some("PROVISIONING"), Some("PRO"), Some("pod1.example.org")),
        "{pod:#}"
    );
    assert_eq!(
        pod["quota"],
        json!({"vcpus": 2, "memory_mb": 2048, "disk_gb": 50, "websites": 20, "mailboxes": 50})
    );
    assert_eq!(pod["ssh_keys"], json!([KEY]));
    let id = pod["id"].as_str().unwrap().to_owned();
    let path = format!("/api/cloudpods/{id}");

    // Jane sees it; Joe, of the same tenant, and another tenant's staff do not.
    let (_, mine) = send(
        &app,
        Method::GET,
        &jane.access_token,
        "/api/cloudpods",
        None,
    )
    .await;
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);
    let (_, theirs) = send(&app, Method::GET, &joe.access_token, "/api/cloudpods", None).await;
    assert_eq!(theirs["items"], json!([]));
    let (_, filtered) = send(
        &app,
        Method::GET,
        &joe.access_token,
        &format!("/api/cloudpods?customer_id={jane_id}"),
        None,
    )
    .await;
    assert_eq!(
        filtered["items"],
        json!([]),
        "a customer's filter is themselves"
    );
    let rival = app
        .account("bravo", "admin@bravo.test", Role::TenantAdmin)
        .await;
    for (token, method, route, body) in [
        (&joe.access_token, Method::GET, path.clone(), None),
        (
            &joe.access_token,
            Method::PUT,
            path.clone(),
            Some(json!({"name": "mine now"})),
        ),
        (
            &joe.access_token,
            Method::POST,
            format!("{path}/reboot"),
            None,
        ),
        (&rival.access_token, Method::GET, path.clone(), None),
        (&rival.access_token, Method::DELETE, path.clone(), None),
    ] {
        let (status, v) = send(&app, method.clone(), token, &route, body).await;
        assert_eq!(status, 404, "{method} {route}: {v}");
    }

    // Jane names it; a pod still being made allows no power action.
    let (status, v) = send(
        &app,
        Method::PUT,
        &jane.access_token,
        &path,
        Some(json!({"name": "My pod"})),
    )
    .await;
    assert_eq!((status, v["name"].as_str()), (200, Some("My pod")), "{v}");
    let (status, v) = send(
        &app,
        Method::POST,
        &jane.access_token,
        &format!("{path}/reboot"),
        None,
    )
    .await;
    assert_eq!(status, 409, "{v}");
    assert!(
        v["detail"].as_str().unwrap().contains("UPDATE, DELETE"),
        "{v}"
    );

    // Suspended for an unpaid invoice: nobody starts the pod while its
    // subscription is suspended; once it is in good standing, staff can.
    let pod_id: mpanel_domain::CloudPodId = id.parse().unwrap();
    app.store
        .set_cloud_pod_status(
            pod_id,
            PodStatus::Suspended,
            Some(SuspendedBy::Billing),
            app.clock_now(),
        )
        .await
        .unwrap();
    let sub_id: mpanel_domain::SubscriptionId =
        pod["subscription_id"].as_str().unwrap().parse().unwrap();
    let set_subscription = |status: SubscriptionStatus| {
        let store = app.store.clone();
        let tenant = admin.tenant_id;
        async move {
            let mut tx = store.begin().await.unwrap();
            let mut sub = tx
                .subscription_for_update(tenant, sub_id)
                .await
                .unwrap()
                .unwrap();
            sub.status = status;
            tx.save_subscription(&sub).await.unwrap();
            tx.commit().await.unwrap();
        }
    };
    set_subscription(SubscriptionStatus::Suspended).await;
    let support = app
        .account("alpha", "support@alpha.test", Role::Support)
        .await;
    for token in [
        &jane.access_token,
        &support.access_token,
        &admin.access_token,
    ] {
        let (status, v) = send(&app, Method::POST, token, &format!("{path}/resume"), None).await;
        assert_eq!(status, 409, "{v}");
        assert!(
            v["detail"]
                .as_str()
                .unwrap()
                .contains("subscription is suspended"),
            "{v}"
        );
    }
    set_subscription(SubscriptionStatus::Active).await;
    let (status, v) = send(
        &app,
        Method::POST,
        &jane.access_token,
        &format!("{path}/resume"),
        None,
    )
    .await;
    assert_eq!(
        status, 409,
        "the customer does not lift billing's hold: {v}"
    );
    assert!(
        v["detail"].as_str().unwrap().contains("unpaid invoice"),
        "{v}"
    );
    let (status, v) = send(
        &app,
        Method::POST,
        &support.access_token,
        &format!("{path}/resume"),
        None,
    )
    .await;
    assert_eq!(status, 202, "{v}");
    assert!(v["job_id"].is_string(), "{v}");

    // Suspended by Jane herself: she may start it again.
    app.store
        .set_cloud_pod_status(
            pod_id,
            PodStatus::Suspended,
            Some(SuspendedBy::Customer),
            app.clock_now(),
        )
        .await
        .unwrap();
    let (status, _) = send(
        &app,
        Method::POST,
        &jane.access_token,
        &format!("{path}/resume"),
        None,
    )
    .await;
    assert_eq!(status, 202);
}
