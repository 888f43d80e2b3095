//! Tenant isolation: every tenant-owned resource of tenant A is "not
//! found" for tenant B, even for B's administrator. The routes come from
//! the OpenAPI document; a route with an id in its path that this test
//! does not know how to fill fails it.

use mpanel_domain::identity::Role;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::TestApp;

#[tokio::test]
async fn another_tenants_resources_are_not_found() {
    let app = TestApp::start().await;
    let admin_a = app
        .account("alpha", "admin@alpha.test", Role::TenantAdmin)
        .await;
    let user_a = app.account("alpha", "user@alpha.test", Role::Support).await;
    let (_token_a, token_a_id) = app.api_token(&admin_a.access_token, &["READ"]).await;
    let admin_b = app
        .account("bravo", "admin@bravo.test", Role::TenantAdmin)
        .await;
    let res = app
        .post_as(
            &admin_a.access_token,
            "/api/billing/products",
            json!({"name": "Alpha web", "slug": "web", "category": "HOSTING", "billing_model": "RECURRING",
                   "status": "ACTIVE", "visibility": "PUBLIC"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let product_a = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = app
        .post_as(
            &admin_a.access_token,
            &format!("/api/billing/products/{product_a}/prices"),
            json!({"period": "MONTHLY", "currency": "EUR", "amount_minor": 500}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let price_a = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A webhook endpoint of A's, which the order's events are queued for.
    let res = app
        .post_as(
            &admin_a.access_token,
            "/api/webhooks/endpoints",
            json!({"url": "http://127.0.0.1:9/hooks", "event_types": ["order.created"]}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let endpoint_a = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = app
        .post_order(
            "alpha",
            &app.webhook_secret("alpha"),
            "alpha-1",
            &json!({"customer": {"email": "c@alpha.test", "name": "C", "country": "DE"},
                    "items": [{"product_id": product_a, "period": "MONTHLY", "domain": "alpha.example"}],
                    "currency": "EUR"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let placed: Value = res.json().await.unwrap();
    let order_a = placed["order_id"].as_str().unwrap().to_owned();
    let customer_a = placed["customer_id"].as_str().unwrap().to_owned();
    let invoice_a = placed["invoice_id"].as_str().unwrap().to_owned();
    // A site and a mailbox of A's subscription, on a server of the platform.
    let now = app.clock_now();
    let server_id = app.web_server("web-1").await;
    let resource = |name: &str| mpanel_store::provisioning::ResourceRecord {
        id: mpanel_domain::ResourceId::new(),
        tenant_id: admin_a.tenant_id,
        customer_id: customer_a.parse().unwrap(),
        subscription_id: placed["items"][0]["subscription_id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap(),
        server_id,
        name: name.into(),
        status: mpanel_domain::provisioning::ResourceStatus::Active,
        quota_mb: None,
        php_version: None,
        archive_path: None,
        created_at: now,
        updated_at: now,
    };
    let site_a = resource("alpha.example");
    let mailbox_a = resource("postmaster@alpha.example");
    use mpanel_store::provisioning::ResourceKind;
    app.store
        .insert_resource(ResourceKind::HostingAccount, &site_a)
        .await
        .unwrap();
    app.store
        .insert_resource(ResourceKind::MailAccount, &mailbox_a)
        .await
        .unwrap();
    let zone_a = resource("alpha.example.");
    app.store
        .insert_resource(ResourceKind::DnsZone, &zone_a)
        .await
        .unwrap();
    let res = app
        .post_as(
            &admin_a.access_token,
            &format!("/api/billing/invoices/{invoice_a}/credit-notes"),
            json!({"amount_minor": 100, "disposition": "REDUCE_BALANCE", "reason": "goodwill"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let credit_note_a = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let deliveries: Value = app
        .get_as(
            &admin_a.access_token,
            &format!("/api/webhooks/endpoints/{endpoint_a}/deliveries"),
        )
        .await
        .json()
        .await
        .unwrap();
    let delivery_a = deliveries["items"][0]["id"].as_str().unwrap().to_owned();

    let outbox: Value = app
        .get_as(&admin_a.access_token, "/api/notifications/outbox")
        .await
        .json()
        .await
        .unwrap();
    let message_a = outbox["items"][0]["id"].as_str().unwrap().to_owned();

    // A CloudPod of A's (made by staff for A's customer).
    let pod_product = crate::cloudpods::plan_product(&app, &admin_a, "PRO", 2, 2048, 50).await;
    let res = app
        .post_as(
            &admin_a.access_token,
            "/api/cloudpods",
            json!({"customer_id": customer_a, "product_id": pod_product, "period": "MONTHLY"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let pod_a = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // A's resource for each kind of id a path can hold.
    let id_for = |path: &str| -> String {
        if path.starts_with("/api/users/") {
            user_a.user_id.to_string()
        } else if path.starts_with("/api/security/me/sessions/") {
            admin_a.session_id.clone()
        } else if path.starts_with("/api/security/tokens/") {
            token_a_id.clone()
        } else if path.starts_with("/api/billing/products/") {
            product_a.clone()
        } else if path.starts_with("/api/orders/") {
            order_a.clone()
        } else if path.starts_with("/api/customers/") || path.starts_with("/api/billing/customers/")
        {
            customer_a.clone()
        } else if path.starts_with("/api/billing/invoices/")
            || path.starts_with("/api/me/invoices/")
        {
            invoice_a.clone()
        } else if path.starts_with("/api/billing/credit-notes/") {
            credit_note_a.clone()
        } else if path.starts_with("/api/billing/subscriptions/") {
            placed["items"][0]["subscription_id"]
                .as_str()
                .unwrap()
                .to_owned()
        } else if path.starts_with("/api/hosting/accounts/")
            || path.starts_with("/api/me/hosting/accounts/")
        {
            site_a.id.to_string()
        } else if path.starts_with("/api/mail/accounts/") {
            mailbox_a.id.to_string()
        } else if path.starts_with("/api/webhooks/endpoints/") {
            endpoint_a.clone()
        } else if path.starts_with("/api/webhooks/deliveries/") {
            delivery_a.clone()
        } else if path.starts_with("/api/notifications/outbox/") {
            message_a.clone()
        } else if path.starts_with("/api/cloudpods/") {
            pod_a.clone()
        } else {
            panic!("{path}: say which of tenant A's resources fills this id")
        }
    };

    let doc: Value = app.get("/api/openapi.json").await.json().await.unwrap();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        // Jobs, servers and tenants are the platform's, not a tenant's: only
        // SUPER_ADMIN reaches them, which the permission matrix test checks.
        // A message kind names no tenant's row: each tenant reads and
        // writes its own templates (the email_templates test).
        if !path.contains('{')
            || path.starts_with("/api/ops/")
            || path.starts_with("/api/servers/")
            || path.starts_with("/api/tenants/")
            || path.starts_with("/api/notifications/templates/")
        {
            continue;
        }
        let id = if path.contains("{id}") {
            id_for(path)
        } else {
            String::new()
        };
        let concrete = path
            .replace("{id}", &id)
            .replace("{price_id}", &price_a)
            .replace("{zone}", &zone_a.name)
            .replace("{name}", "www")
            .replace("{type}", "A");
        for method in item.as_object().unwrap().keys() {
            let method: Method = method.to_uppercase().parse().unwrap();
            let body = matches!(method, Method::POST | Method::PATCH | Method::PUT).then(|| {
                if path.starts_with("/api/billing/products/{id}/prices") {
                    json!({"period": "MONTHLY", "currency": "EUR", "amount_minor": 1})
                } else if path.ends_with("/notes") {
                    json!({"body": "pwned"})
                } else if path.ends_with("/certificates") {
                    json!({"certificate_chain": "pwned", "private_key": "pwned"})
                } else if path.starts_with("/api/customers/") {
                    json!({"name": "pwned"})
                } else if path.contains("/backups/") {
                    json!({"to": "BESIDE"})
                } else if path.starts_with("/api/mail/accounts/") || path.ends_with("/sftp") {
                    json!({"password": "pwned-pwned-pwned"})
                } else if path.starts_with("/api/dns/zones/") && method == Method::POST {
                    json!({"name": "www", "type": "A", "records": ["192.0.2.66"]})
                } else if path.starts_with("/api/dns/zones/") {
                    json!({"records": ["192.0.2.66"]})
                } else if path.starts_with("/api/webhooks/") {
                    json!({"description": "pwned", "event_types": ["invoice.paid"]})
                } else if path.ends_with("/payment-method") {
                    json!({"stripe_customer_id": "cus_x", "stripe_payment_method_id": "pm_x"})
                } else if path.ends_with("/cancel") {
                    json!({"mode": "IMMEDIATE"})
                } else if path.ends_with("/usage") {
                    json!({"metric": "pwned", "quantity": 1, "occurred_at": "2026-11-21T09:00:00Z", "idempotency_key": "pwned"})
                } else if path.starts_with("/api/billing/subscriptions/") {
                    json!({"auto_renew": false})
                } else if path.ends_with("/pay") {
                    json!({"amount_minor": 1, "provider": "MANUAL"})
                } else if path.ends_with("/credit-notes") {
                    json!({"amount_minor": 1, "disposition": "CREDIT", "reason": "pwned"})
                } else if path.starts_with("/api/billing/invoices/") {
                    json!({"customer_id": customer_a, "lines": []})
                } else if path.starts_with("/api/billing/products/") {
                    json!({"name": "pwned", "slug": "pwned", "category": "OTHER", "billing_model": "RECURRING",
                           "status": "ACTIVE", "visibility": "PUBLIC"})
                } else if path.ends_with("/resize") {
                    json!({"product_id": pod_product})
                } else if path.starts_with("/api/cloudpods/") {
                    json!({"name": "pwned"})
                } else {
                    json!({"display_name": "pwned", "role": "CUSTOMER"})
                }
            });
            let concrete = if path.ends_with("/pricing") {
                format!("{concrete}?period=MONTHLY")
            } else {
                concrete.clone()
            };
            let res = app
                .call(method.clone(), &concrete, Some(&admin_b.access_token), body)
                .await;
            assert_eq!(
                res.status(),
                404,
                "{method} {path} with tenant A's id, as tenant B's admin"
            );
            let body: Value = res.json().await.unwrap();
            assert_eq!(body["code"], "not_found");
            checked += 1;
        }
    }
    assert!(checked >= 16, "only {checked} routes checked");
    let orders: Value = app
        .get_as(&admin_b.access_token, "/api/orders")
        .await
        .json()
        .await
        .unwrap();
    assert!(orders["items"].as_array().unwrap().is_empty());
    let customers: Value = app
        .get_as(&admin_b.access_token, "/api/customers")
        .await
        .json()
        .await
        .unwrap();
    assert!(customers["items"].as_array().unwrap().is_empty());
    let customer: Value = app
        .get_as(
            &admin_a.access_token,
            &format!("/api/customers/{customer_a}"),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(customer["name"], "C", "A's customer unchanged");
    let prices: Value = app
        .get_as(
            &admin_a.access_token,
            &format!("/api/billing/products/{product_a}/prices"),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        prices["items"][0]["amount_minor"], 500,
        "A's price unchanged"
    );

    // Lists show B only B's rows.
    let users: Value = app
        .get_as(&admin_b.access_token, "/api/users")
        .await
        .json()
        .await
        .unwrap();
    let emails: Vec<&str> = users["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, vec!["admin@bravo.test"]);
    let audit: Value = app
        .get_as(&admin_b.access_token, "/api/audit?limit=200")
        .await
        .json()
        .await
        .unwrap();
    let text = audit.to_string();
    assert!(
        !text.contains("alpha.test") && !text.contains(&user_a.user_id.to_string()),
        "{text}"
    );

    // And nothing of A's changed.
    let me: Value = app
        .get_as(&user_a.access_token, "/api/auth/me")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["role"], "SUPPORT");
    let user: Value = app
        .get_as(
            &admin_a.access_token,
            &format!("/api/users/{}", user_a.user_id),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(user["display_name"], "");
    assert_eq!(user["status"], "ACTIVE");
    assert_eq!(
        app.get_as(&admin_a.access_token, "/api/auth/me")
            .await
            .status(),
        200
    );
}
