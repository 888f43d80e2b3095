//! The catalog over HTTP: products, price rules, resolution order, the
//! public catalog and its caching, and what is refused.

use mpanel_domain::identity::Role;
use serde_json::{Value, json};

use crate::support::{Account, TestApp, problem};

fn product(slug: &str) -> Value {
    json!({
        "name": format!("Product {slug}"), "slug": slug, "category": "HOSTING",
        "billing_model": "RECURRING", "status": "ACTIVE", "visibility": "PUBLIC",
        "base_currency": "EUR",
        "provisioning_template": {"type": "HOSTING", "dns_zone": true, "mailboxes": 5}
    })
}

async fn create(app: &TestApp, who: &Account, body: Value) -> String {
    let res = app
        .post_as(&who.access_token, "/api/billing/products", body)
        .await;
    assert_eq!(res.status(), 201);
    res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn price(app: &TestApp, who: &Account, product: &str, body: Value) -> reqwest::Response {
    app.post_as(
        &who.access_token,
        &format!("/api/billing/products/{product}/prices"),
        body,
    )
    .await
}

#[tokio::test]
async fn prices_resolve_most_specific_first() {
    let app = TestApp::start().await;
    let billing = app
        .account("acme", "billing@acme.test", Role::Billing)
        .await;
    let reseller = app.tenant("reseller").await;
    let other = app.tenant("other").await;
    let id = create(&app, &billing, product("web")).await;
    for rule in [
        json!({"period": "MONTHLY", "currency": "EUR", "amount_minor": 1000, "setup_fee_minor": 500}),
        json!({"period": "MONTHLY", "currency": "USD", "amount_minor": 1100}),
        json!({"period": "MONTHLY", "currency": "EUR", "amount_minor": 900, "region": "eu"}),
        json!({"period": "MONTHLY", "currency": "EUR", "amount_minor": 800, "tenant_id": reseller.to_string()}),
        json!({"period": "MONTHLY", "currency": "EUR", "amount_minor": 700, "tenant_id": reseller.to_string(), "region": "eu"}),
        json!({"period": "YEARLY", "currency": "EUR", "amount_minor": 10000}),
    ] {
        assert_eq!(price(&app, &billing, &id, rule).await.status(), 201);
    }
    let cases: Vec<(String, Option<(i64, &str)>)> = vec![
        ("period=MONTHLY".into(), Some((1000, "BASE"))),
        ("period=MONTHLY&currency=EUR".into(), Some((1000, "BASE"))),
        (
            "period=MONTHLY&currency=USD".into(),
            Some((1100, "CURRENCY")),
        ),
        (
            "period=MONTHLY&currency=USD&region=eu".into(),
            Some((1100, "CURRENCY")),
        ),
        ("period=MONTHLY&region=eu".into(), Some((900, "REGION"))),
        ("period=MONTHLY&region=us".into(), Some((1000, "BASE"))),
        (
            format!("period=MONTHLY&tenant_id={reseller}"),
            Some((800, "TENANT")),
        ),
        (
            format!("period=MONTHLY&tenant_id={reseller}&region=eu"),
            Some((700, "TENANT")),
        ),
        (
            format!("period=MONTHLY&tenant_id={other}&region=eu"),
            Some((900, "REGION")),
        ),
        ("period=YEARLY".into(), Some((10000, "BASE"))),
        ("period=YEARLY&currency=USD".into(), None),
        ("period=MONTHLY&currency=JPY".into(), None),
    ];
    for (query, expected) in cases {
        let res = app
            .get_as(
                &billing.access_token,
                &format!("/api/billing/products/{id}/pricing?{query}"),
            )
            .await;
        match expected {
            Some((amount, rule)) => {
                assert_eq!(res.status(), 200, "{query}");
                let body: Value = res.json().await.unwrap();
                assert_eq!(body["amount_minor"], amount, "{query}");
                assert_eq!(body["matched_rule"], rule, "{query}");
                assert!(body["amount_minor"].is_i64(), "money is an integer");
            }
            None => {
                assert_eq!(res.status(), 404, "{query}");
                let body = problem(res).await;
                assert!(body["detail"].as_str().unwrap().contains("no"), "{body}");
            }
        }
    }
    for bad in [
        "period=WEEKLY",
        "period=MONTHLY&currency=XYZ",
        "period=MONTHLY&region=EU!",
        "",
    ] {
        let res = app
            .get_as(
                &billing.access_token,
                &format!("/api/billing/products/{id}/pricing?{bad}"),
            )
            .await;
        assert_eq!(res.status(), 422, "{bad}");
    }
}

#[tokio::test]
async fn bad_catalog_input_is_refused_and_changes_nothing() {
    let app = TestApp::start().await;
    let admin = app
        .account("acme", "admin@acme.test", Role::TenantAdmin)
        .await;
    let id = create(&app, &admin, product("web")).await;
    let res = app
        .post_as(&admin.access_token, "/api/billing/products", product("web"))
        .await;
    assert_eq!(res.status(), 409, "slug taken");

    let mut usage = product("metered");
    usage["billing_model"] = json!("USAGE_BASED");
    let res = app
        .post_as(&admin.access_token, "/api/billing/products", usage.clone())
        .await;
    assert_eq!(res.status(), 422);
    assert_eq!(problem(res).await["field"], "usage");
    usage["usage"] = json!({"metric": "bandwidth_gb", "unit_price": "0.015"});
    assert_eq!(
        app.post_as(&admin.access_token, "/api/billing/products", usage)
            .await
            .status(),
        201
    );

    for (rule, field) in [
        (
            json!({"period": "MONTHLY", "currency": "XYZ", "amount_minor": 1}),
            "currency",
        ),
        (
            json!({"period": "MONTHLY", "currency": "EUR", "amount_minor": -1}),
            "amount_minor",
        ),
        (
            json!({"period": "ONE_TIME", "currency": "EUR", "amount_minor": 1}),
            "period",
        ),
        (
            json!({"period": "MONTHLY", "currency": "EUR", "amount_minor": 1, "region": "Europe!"}),
            "region",
        ),
    ] {
        let res = price(&app, &admin, &id, rule).await;
        assert_eq!(res.status(), 422);
        assert_eq!(problem(res).await["field"], field);
    }
    let res = price(
        &app,
        &admin,
        &id,
        json!({"period": "MONTHLY", "currency": "EUR", "amount_minor": 12.5}),
    )
    .await;
    assert_eq!(res.status(), 422, "money is never a float");
    let ok = json!({"period": "MONTHLY", "currency": "EUR", "amount_minor": 1000});
    assert_eq!(price(&app, &admin, &id, ok.clone()).await.status(), 201);
    assert_eq!(
        price(&app, &admin, &id, ok).await.status(),
        409,
        "the same rule twice"
    );

    let prices: Value = app
        .get_as(
            &admin.access_token,
            &format!("/api/billing/products/{id}/prices"),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(prices["items"].as_array().unwrap().len(), 1);
    let audit: Value = app
        .get_as(&admin.access_token, "/api/audit?target=price")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(audit["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn the_public_catalog_shows_active_public_products_with_prices_and_caches() {
    let app = TestApp::start().await;
    let admin = app
        .account("acme", "admin@acme.test", Role::TenantAdmin)
        .await;
    let shown = create(&app, &admin, product("web")).await;
    let mut private = product("internal");
    private["visibility"] = json!("PRIVATE");
    let hidden = create(&app, &admin, private).await;
    let archived = create(&app, &admin, product("old")).await;
    for id in [&shown, &hidden, &archived] {
        let res = price(
            &app,
            &admin,
            id,
            json!({"period": "MONTHLY", "currency": "EUR", "amount_minor": 999}),
        )
        .await;
        assert_eq!(res.status(), 201);
    }
    let res = price(
        &app,
        &admin,
        &shown,
        json!({"period": "YEARLY", "currency": "EUR", "amount_minor": 9990}),
    )
    .await;
    assert_eq!(res.status(), 201);
    let res = app
        .call(
            reqwest::Method::DELETE,
            &format!("/api/billing/products/{archived}"),
            Some(&admin.access_token),
            None,
        )
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "INACTIVE");
    assert!(body["archived_at"].is_string());
    assert_eq!(
        app.get_as(
            &admin.access_token,
            &format!("/api/billing/products/{archived}")
        )
        .await
        .status(),
        200
    );

    let other = app
        .account("other", "admin@other.test", Role::TenantAdmin)
        .await;
    create(&app, &other, product("theirs")).await;

    let res = app.get("/api/public/products?tenant=acme").await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age")
    );
    let etag = res.headers()["etag"].to_str().unwrap().to_owned();
    let catalog: Value = res.json().await.unwrap();
    let items = catalog["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{catalog}");
    assert_eq!(items[0]["slug"], "web");
    assert_eq!(items[0]["prices"].as_array().unwrap().len(), 2);
    assert_eq!(
        items[0]["prices"][0],
        json!({"period": "MONTHLY", "currency": "EUR", "amount_minor": 999, "setup_fee_minor": 0})
    );

    let res = app
        .client
        .get(app.url("/api/public/products?tenant=acme"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 304);
    let alias: Value = app
        .get("/api/billing/products/catalog/public?tenant=acme")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(alias, catalog);

    // A change shows at once, with a new ETag.
    let res = price(
        &app,
        &admin,
        &shown,
        json!({"period": "HOURLY", "currency": "EUR", "amount_minor": 2}),
    )
    .await;
    assert_eq!(res.status(), 201);
    let res = app
        .client
        .get(app.url("/api/public/products?tenant=acme"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_ne!(res.headers()["etag"].to_str().unwrap(), etag);
    let res = price(
        &app,
        &admin,
        &shown,
        json!({"period": "MONTHLY", "currency": "USD", "amount_minor": 1099}),
    )
    .await;
    assert_eq!(res.status(), 201);
    let usd: Value = app
        .get("/api/public/products?tenant=acme&currency=USD")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        usd["items"][0]["prices"],
        json!([{"period": "MONTHLY", "currency": "USD", "amount_minor": 1099, "setup_fee_minor": 0}])
    );
    let jpy: Value = app
        .get("/api/public/products?tenant=acme&currency=JPY")
        .await
        .json()
        .await
        .unwrap();
    assert!(
        jpy["items"].as_array().unwrap().is_empty(),
        "no JPY price, no product: never a conversion"
    );

    assert_eq!(
        app.get("/api/public/products?tenant=nobody").await.status(),
        404
    );
    assert_eq!(app.get("/api/public/products").await.status(), 422);
}

#[tokio::test]
async fn the_public_catalog_is_kept_briefly_and_a_change_elsewhere_shows_after_30_seconds() {
    use mpanel_domain::catalog::Period;
    let app = TestApp::start().await;
    let admin = app
        .account("acme", "admin@acme.test", Role::TenantAdmin)
        .await;
    let shown = create(&app, &admin, product("shown")).await;
    let res = price(
        &app,
        &admin,
        &shown,
        json!({"period": "MONTHLY", "currency": "EUR", "amount_minor": 1000}),
    )
    .await;
    assert_eq!(res.status(), 201);
    let monthly = |catalog: &Value| catalog["items"][0]["prices"].as_array().unwrap().len();
    let get = || async {
        app.get("/api/public/products?tenant=acme&currency=EUR")
            .await
            .json::<Value>()
            .await
            .unwrap()
    };
    assert_eq!(monthly(&get().await), 1);

    // Another node adds a price (through the service, not this process's
    // handlers): this node keeps serving what it has, for 30 s at most.
    let principal = mpanel_services::identity::Principal {
        tenant_id: admin.tenant_id,
        user_id: admin.user_id,
        email: "admin@acme.test".into(),
        access: mpanel_domain::identity::Access {
            role: Role::TenantAdmin,
            scopes: None,
        },
        session_id: None,
        api_token_id: None,
        restricted: false,
        authenticated_at: Some(app.clock_now()),
    };
    let cx = mpanel_services::Context {
        store: app.store.clone(),
        clock: app.clock.clone(),
        principal,
        actor: mpanel_services::Actor::cli("another node"),
        tenant: app.store.tenant(admin.tenant_id).await.unwrap().unwrap(),
        ip: None,
    };
    mpanel_services::catalog::add_price(
        &cx,
        shown.parse().unwrap(),
        &mpanel_services::catalog::PriceInput {
            period: Period::Yearly,
            currency: "EUR".into(),
            amount_minor: 10_000,
            setup_fee_minor: 0,
            tenant: None,
            region: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(monthly(&get().await), 1, "served from this node's copy");
    app.clock.advance(time::Duration::seconds(31));
    assert_eq!(monthly(&get().await), 2, "after 30 s the change shows");
}
