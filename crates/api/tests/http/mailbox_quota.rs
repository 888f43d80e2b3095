//! A plan's mailbox count holds under concurrency: requests racing for the
//! last free mailboxes cannot all pass the count and exceed the plan.

use std::sync::Arc;

use mpanel_domain::identity::Role;
use mpanel_store::provisioning::{ResourceKind, ResourceRecord};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::orders::product;
use crate::support::TestApp;

#[tokio::test]
async fn concurrent_new_mailboxes_never_exceed_the_plan() {
    let app = Arc::new(TestApp::start().await);
    let ops = app.account("acme", "ops@acme.test", Role::SuperAdmin).await;
    let admin = app
        .account("acme", "admin@acme.test", Role::TenantAdmin)
        .await;
    // A server for the rows to point at (nothing runs the jobs here).
    let res = app
        .post_as(
            &ops.access_token,
            "/api/servers",
            json!({"name": "dns-1", "role": "DNS", "address": "127.0.0.1", "port": 53,
                   "credentials": {"type": "API", "url": "http://127.0.0.1:9", "key": "k"},
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
    let mail = product(
        &app,
        &admin,
        "mail",
        "ACTIVE",
        "PUBLIC",
        json!({"type": "EMAIL", "mailboxes": 3}),
    )
    .await;
    let res = app
        .post_order(
            "acme",
            &app.webhook_secret("acme"),
            "mail-1",
            &crate::orders::order(&mail, "quota.test", true),
        )
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let placed: Value = res.json().await.unwrap();
    let subscription: mpanel_domain::SubscriptionId = placed["items"][0]["subscription_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    // Provisioned: active, with its first mailbox.
    let now = app.clock_now();
    let mut tx = app.store.begin().await.unwrap();
    assert!(
        tx.activate_subscription(subscription, "test", now)
            .await
            .unwrap()
    );
    tx.commit().await.unwrap();
    app.store
        .insert_resource(
            ResourceKind::MailAccount,
            &ResourceRecord {
                id: mpanel_domain::ResourceId::new(),
                tenant_id: admin.tenant_id,
                customer_id: placed["customer_id"].as_str().unwrap().parse().unwrap(),
                subscription_id: subscription,
                server_id,
                name: "postmaster@quota.test".into(),
                status: mpanel_domain::provisioning::ResourceStatus::Active,
                quota_mb: None,
                php_version: None,
                archive_path: None,
                created_at: now,
                updated_at: now,
            },
        )
        .await
        .unwrap();

    let mut set = JoinSet::new();
    for i in 0..8 {
        let (app, token) = (app.clone(), admin.access_token.clone());
        set.spawn(async move {
            app.post_as(
                &token,
                "/api/mail/accounts",
                json!({"subscription_id": subscription, "local_part": format!("box{i}"),
                       "password": "a long mailbox password"}),
            )
            .await
            .status()
            .as_u16()
        });
    }
    let mut statuses = Vec::new();
    while let Some(status) = set.join_next().await {
        statuses.push(status.unwrap());
    }
    statuses.sort();
    assert_eq!(
        statuses,
        vec![202, 202, 409, 409, 409, 409, 409, 409],
        "two free mailboxes, eight requests"
    );
    let listed: Value = app
        .get_as(&admin.access_token, "/api/mail/accounts")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 3, "{listed}");
}
