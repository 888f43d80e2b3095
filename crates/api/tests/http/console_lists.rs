//! The console's lists: customers searched and noted on, and every list
//! filtered and paged.

use mpanel_domain::identity::Role;
use serde_json::{Value, json};

use crate::console::{created, csrf, page, post};
use crate::support::TestApp;

/// Customers searched and noted on in the console: the note form needs
/// its token and the permission; another tenant's customer is not found.
#[tokio::test]
async fn console_customers_are_searched_and_noted() {
    let app = TestApp::start().await;
    let support = app
        .account("alpha", "support@alpha.test", Role::Support)
        .await;
    let customer = app
        .account("alpha", "cust@alpha.test", Role::Customer)
        .await;
    let other = app
        .account("bravo", "admin@bravo.test", Role::TenantAdmin)
        .await;
    let mut ids = Vec::new();
    for (email, name) in [
        ("ann@example.org", "Ann Lee"),
        ("bob@example.org", "Bob Ray"),
    ] {
        let c = created(
            app.post_as(
                &support.access_token,
                "/api/customers",
                json!({"email": email, "name": name, "country": "DE", "send_invitation": false}),
            )
            .await,
        )
        .await;
        ids.push(c["id"].as_str().unwrap().to_owned());
    }
    let (status, html) = page(&app, &support.access_token, "/customers?q=ANN").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("Ann Lee") && !html.contains("Bob Ray"),
        "{html}"
    );
    assert!(html.contains("value=\"ANN\""), "the search kept: {html}");
    let (_, html) = page(&app, &support.access_token, "/customers?q=zzz").await;
    assert!(html.contains("No customer matches"), "{html}");

    let notes = format!("/customers/{}/notes", ids[0]);
    let (status, _) = post(&app, &support.access_token, &notes, &[("body", "no token")]).await;
    assert_eq!(status, 403);
    let token = csrf(&app, &support.access_token).await;
    let form = [
        ("_csrf", token.as_str()),
        ("body", "Prefers <b>e-mail</b>."),
    ];
    let (status, _) = post(&app, &support.access_token, &notes, &form).await;
    assert_eq!(status, 303);
    let (_, html) = page(
        &app,
        &support.access_token,
        &format!("/customers/{}?done=note_added", ids[0]),
    )
    .await;
    assert!(html.contains("The note is kept."), "{html}");
    assert!(
        html.contains("Prefers &lt;b&gt;e-mail&lt;&#x2f;b&gt;."),
        "escaped: {html}"
    );
    let (_, html) = page(
        &app,
        &support.access_token,
        &format!("/customers/{}", ids[1]),
    )
    .await;
    assert!(html.contains("No notes yet."), "{html}");
    // An empty note: the problem shown, nothing kept.
    let (status, html) = post(
        &app,
        &support.access_token,
        &notes,
        &[("_csrf", &token), ("body", " ")],
    )
    .await;
    assert_eq!(status, 422, "{html}");
    // A customer: no such page; another tenant: not found.
    let customer_token = csrf(&app, &customer.access_token).await;
    let (status, _) = post(
        &app,
        &customer.access_token,
        &notes,
        &[("_csrf", &customer_token), ("body", "hi")],
    )
    .await;
    assert_eq!(status, 404);
    let other_token = csrf(&app, &other.access_token).await;
    let (status, _) = post(
        &app,
        &other.access_token,
        &notes,
        &[("_csrf", &other_token), ("body", "hi")],
    )
    .await;
    assert_eq!(status, 404);
    let res = app
        .get_as(
            &support.access_token,
            &format!("/api/customers/{}/notes", ids[0]),
        )
        .await;
    let kept: Value = res.json().await.unwrap();
    assert_eq!(kept["items"].as_array().unwrap().len(), 1, "{kept}");
}

/// Every list filters and pages: products by state and category, orders
/// by state and customer, hosting accounts by state and domain, zones by
/// name, servers by role.
#[tokio::test]
async fn console_lists_filter_and_page() {
    use mpanel_store::provisioning::{ResourceKind, ResourceRecord};
    let app = TestApp::start().await;
    let admin = app
        .account("alpha", "admin@alpha.test", Role::TenantAdmin)
        .await;
    let operator = app
        .account("alpha", "ops@alpha.test", Role::SuperAdmin)
        .await;
    let mut first_product = String::new();
    for (slug, status, category) in [
        ("web-a", "ACTIVE", "HOSTING"),
        ("web-b", "INACTIVE", "HOSTING"),
        ("mail-a", "ACTIVE", "EMAIL"),
    ] {
        let p = created(
            app.post_as(
                &admin.access_token,
                "/api/billing/products",
                json!({"name": slug, "slug": slug, "category": category, "billing_model": "RECURRING",
                    "status": status, "visibility": "PUBLIC"}),
            )
            .await,
        )
        .await;
        if first_product.is_empty() {
            first_product = p["id"].as_str().unwrap().to_owned();
        }
    }
    let (_, html) = page(&app, &admin.access_token, "/products?status=INACTIVE").await;
    assert!(
        html.contains("web-b") && !html.contains(">web-a<"),
        "{html}"
    );
    let (_, html) = page(&app, &admin.access_token, "/products?category=EMAIL").await;
    assert!(html.contains("mail-a") && !html.contains("web-b"), "{html}");
    let res = app
        .get_as(
            &admin.access_token,
            "/api/billing/products?status=ACTIVE&category=HOSTING",
        )
        .await;
    let found: Value = res.json().await.unwrap();
    assert_eq!(found["items"].as_array().unwrap().len(), 1, "{found}");
    let res = app
        .get_as(&admin.access_token, "/api/billing/products?status=SOLD")
        .await;
    assert_eq!(res.status(), 422);
    // Edited from its page: renamed and deprecated.
    let token = csrf(&app, &admin.access_token).await;
    let edit = format!("/products/{first_product}");
    let form = [
        ("_csrf", token.as_str()),
        ("name", "Web A (old)"),
        ("description", "Replaced by Web B."),
        ("status", "DEPRECATED"),
        ("visibility", "PRIVATE"),
    ];
    let (status, html) = post(&app, &admin.access_token, &edit, &form).await;
    assert_eq!(status, 303, "{html}");
    let (_, html) = page(&app, &admin.access_token, "/products?status=DEPRECATED").await;
    assert!(html.contains("Web A (old)"), "{html}");
    let mut bad = form;
    bad[3].1 = "SOLD";
    let (status, _) = post(&app, &admin.access_token, &edit, &bad).await;
    assert_eq!(status, 422);
    let support = app
        .account("alpha", "support@alpha.test", Role::Support)
        .await;
    let support_token = csrf(&app, &support.access_token).await;
    let mut theirs = form;
    theirs[0].1 = support_token.as_str();
    let (status, _) = post(&app, &support.access_token, &edit, &theirs).await;
    assert_eq!(status, 403, "support may not edit the catalog");
    let bravo = app
        .account("bravo", "admin@bravo.test", Role::TenantAdmin)
        .await;
    let bravo_token = csrf(&app, &bravo.access_token).await;
    let mut other = form;
    other[0].1 = bravo_token.as_str();
    let (status, _) = post(&app, &bravo.access_token, &edit, &other).await;
    assert_eq!(status, 404, "another tenant's product");
    let mut back = form;
    back[3].1 = "ACTIVE";
    back[4].1 = "PUBLIC";
    let (status, _) = post(&app, &admin.access_token, &edit, &back).await;
    assert_eq!(status, 303);

    // Two orders, one paid: filtered by state and by customer.
    created(
        app.post_as(
            &admin.access_token,
            &format!("/api/billing/products/{first_product}/prices"),
            json!({"period": "MONTHLY", "currency": "EUR", "amount_minor": 500}),
        )
        .await,
    )
    .await;
    let mut placed = Vec::new();
    for (key, email, paid) in [
        ("o-1", "one@example.org", false),
        ("o-2", "two@example.org", true),
    ] {
        let mut body = json!({"customer": {"email": email, "name": "C", "country": "DE"},
            "items": [{"product_id": first_product, "period": "MONTHLY", "domain": format!("{key}.example")}],
            "currency": "EUR"});
        if paid {
            body["payment"] = json!({"status": "PAID", "provider": "BANK_TRANSFER", "reference": key,
                "amount_minor": 500});
        }
        let res = app
            .post_order("alpha", &app.webhook_secret("alpha"), key, &body)
            .await;
        assert_eq!(res.status(), 201);
        placed.push(res.json::<Value>().await.unwrap());
    }
    let res = app
        .get_as(&admin.access_token, "/api/orders?status=PAID")
        .await;
    let found: Value = res.json().await.unwrap();
    let ids: Vec<_> = found["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].clone())
        .collect();
    assert_eq!(ids, [placed[1]["order_id"].clone()], "{found}");
    let customer = placed[0]["customer_id"].as_str().unwrap();
    let (_, html) = page(
        &app,
        &admin.access_token,
        &format!("/orders?customer_id={customer}"),
    )
    .await;
    let first = placed[0]["order_id"].as_str().unwrap();
    let second = placed[1]["order_id"].as_str().unwrap();
    let link = |id: &str| format!("/orders/{id}");
    assert!(
        html.contains(&link(first)) && !html.contains(&link(second)),
        "{html}"
    );

    // Sites and zones: three of each, a page of two, then the rest.
    let now = app.clock_now();
    let server_id = app.web_server("web-1").await;
    let subscription: mpanel_domain::SubscriptionId = placed[0]["items"][0]["subscription_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    for (i, name) in ["shop.example", "blog.example", "old.example"]
        .iter()
        .enumerate()
    {
        let status = if i == 2 {
            mpanel_domain::provisioning::ResourceStatus::Suspended
        } else {
            mpanel_domain::provisioning::ResourceStatus::Active
        };
        for (kind, name) in [
            (ResourceKind::HostingAccount, name.to_string()),
            (ResourceKind::DnsZone, format!("{name}.")),
        ] {
            let r = ResourceRecord {
                id: mpanel_domain::ResourceId::new(),
                tenant_id: admin.tenant_id,
                customer_id: customer.parse().unwrap(),
                subscription_id: subscription,
                server_id,
                name,
                status,
                quota_mb: None,
                php_version: None,
                archive_path: None,
                created_at: now,
                updated_at: now,
            };
            app.store.insert_resource(kind, &r).await.unwrap();
        }
    }
    let (_, html) = page(&app, &admin.access_token, "/hosting?status=SUSPENDED").await;
    assert!(
        html.contains("old.example") && !html.contains("shop.example"),
        "{html}"
    );
    let (_, html) = page(&app, &admin.access_token, "/hosting?q=SHOP").await;
    assert!(
        html.contains("shop.example") && !html.contains("blog.example"),
        "{html}"
    );
    let (_, html) = page(&app, &admin.access_token, "/hosting?limit=2").await;
    assert!(
        html.contains("old.example") && html.contains("blog.example"),
        "newest first: {html}"
    );
    assert!(!html.contains(">shop.example<"), "{html}");
    let at = html.find("href=\"&#x2f;hosting?").expect("a next page") + 6;
    let next = html[at..]
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&")
        .replace("&#x2f;", "/");
    let (_, html) = page(&app, &admin.access_token, &next).await;
    assert!(
        html.contains("shop.example") && !html.contains("old.example"),
        "{next}: {html}"
    );
    let (_, html) = page(&app, &admin.access_token, "/dns?q=blog").await;
    assert!(
        html.contains("blog.example") && !html.contains("shop.example"),
        "{html}"
    );

    // (The fixture's web server has no sealed credentials to show, so
    // only the filter leaving it out is looked at here.)
    let (status, html) = page(&app, &operator.access_token, "/servers?role=MAIL").await;
    assert_eq!(status, 200, "{html}");
    assert!(
        !html.contains("web-1") && html.contains("No server has this role"),
        "{html}"
    );
    let (status, html) = page(&app, &operator.access_token, "/servers?role=BOGUS").await;
    assert_eq!(status, 422, "{html}");
    let long = format!("/hosting?q={}", "x".repeat(201));
    let (status, _) = page(&app, &admin.access_token, &long).await;
    assert_eq!(status, 422);
}
