//! The console's pages under the permission matrix and tenant isolation:
//! each page answers a role with the permission (200), staff without it
//! the "not allowed" page (403), a customer the not-found page (404) for
//! anything staff-only, another tenant's record the not-found page; and
//! every POST needs its anti-forgery token. (What users click through is
//! proven in a real browser: `crates/mpanel/tests/binary/console.rs`.)

use mpanel_domain::identity::{Permission, Role};
use reqwest::header;
use serde_json::{Value, json};

use crate::support::TestApp;

pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// `GET path` as the console's session of `access` would: status, body.
pub(crate) async fn page(app: &TestApp, access: &str, path: &str) -> (u16, String) {
    let res = client()
        .get(app.url(path))
        .header(header::COOKIE, format!("mp_access={access}"))
        .header(header::ACCEPT, "text/html")
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.text().await.unwrap())
}

/// The session's anti-forgery token, as its pages carry it.
pub(crate) async fn csrf(app: &TestApp, access: &str) -> String {
    let (status, html) = page(app, access, "/security").await;
    assert_eq!(status, 200, "{html}");
    let at = html.find("name=\"_csrf\" value=\"").unwrap() + 20;
    html[at..].split('"').next().unwrap().to_owned()
}

pub(crate) async fn post(
    app: &TestApp,
    access: &str,
    path: &str,
    form: &[(&str, &str)],
) -> (u16, String) {
    let res = client()
        .post(app.url(path))
        .header(header::COOKIE, format!("mp_access={access}"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(form).unwrap())
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.text().await.unwrap())
}

pub(crate) async fn created(res: reqwest::Response) -> Value {
    assert!(res.status().is_success(), "{}", res.status());
    res.json().await.unwrap()
}

#[tokio::test]
async fn console_pages_follow_the_permission_matrix_and_tenancy() {
    let app = TestApp::start().await;
    let admin = app
        .account("alpha", "admin@alpha.test", Role::TenantAdmin)
        .await;
    let billing = app
        .account("alpha", "billing@alpha.test", Role::Billing)
        .await;
    let support = app
        .account("alpha", "support@alpha.test", Role::Support)
        .await;
    let customer = app
        .account("alpha", "cust@alpha.test", Role::Customer)
        .await;
    let other = app
        .account("bravo", "admin@bravo.test", Role::TenantAdmin)
        .await;

    let product = created(
        app.post_as(
            &admin.access_token,
            "/api/billing/products",
            json!({"name": "Web", "slug": "web", "category": "HOSTING", "billing_model": "RECURRING",
                "status": "ACTIVE", "visibility": "PUBLIC"}),
        )
        .await,
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let buyer = created(
        app.post_as(
            &admin.access_token,
            "/api/customers",
            json!({"email": "buyer@example.org", "name": "Buyer", "country": "DE", "send_invitation": false}),
        )
        .await,
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let invoice = created(
        app.post_as(
            &admin.access_token,
            "/api/billing/invoices",
            json!({"customer_id": buyer, "lines": [{"kind": "ITEM", "description": "Setup",
                "quantity": "1", "unit_price": "10.00"}]}),
        )
        .await,
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let product_page = format!("/products/{product}");
    let invoice_page = format!("/invoices/{invoice}");
    let customer_page = format!("/customers/{buyer}");

    // Each staff page against the matrix, for each staff role.
    let pages: [(&str, Option<Permission>); 20] = [
        ("/", None),
        ("/products", Some(Permission::CatalogRead)),
        (&product_page, Some(Permission::CatalogRead)),
        ("/customers", Some(Permission::CustomersRead)),
        (&customer_page, Some(Permission::CustomersRead)),
        ("/orders", Some(Permission::OrdersRead)),
        ("/invoices", Some(Permission::InvoicesRead)),
        (&invoice_page, Some(Permission::InvoicesRead)),
        ("/subscriptions", Some(Permission::SubscriptionsRead)),
        ("/hosting", Some(Permission::HostingRead)),
        ("/dns", Some(Permission::HostingRead)),
        ("/cloudpods", Some(Permission::CloudPodsRead)),
        ("/servers", Some(Permission::ServersRead)),
        ("/jobs", Some(Permission::JobsRead)),
        ("/audit", Some(Permission::AuditRead)),
        ("/security", None),
        ("/security/policy", Some(Permission::SecurityPolicyWrite)),
        ("/security/events", None),
        ("/settings", Some(Permission::BillingSettingsWrite)),
        (
            "/settings/templates/INVOICE_ISSUED",
            Some(Permission::NotificationsRead),
        ),
    ];
    for (role, who) in [
        (Role::TenantAdmin, &admin),
        (Role::Billing, &billing),
        (Role::Support, &support),
    ] {
        for (path, needs) in &pages {
            let allowed = needs.is_none_or(|p| p.allowed_for(role));
            let (status, html) = page(&app, &who.access_token, path).await;
            let expected = if allowed { 200 } else { 403 };
            assert_eq!(status, expected, "{role:?} {path}: {html}");
            assert!(html.starts_with("<!DOCTYPE html>"), "{path}: a page");
        }
    }
    // A customer: staff pages do not exist for them; their own do.
    for (path, needs) in &pages {
        let (status, html) = page(&app, &customer.access_token, path).await;
        let own = needs.is_none() || ["/invoices", "/dns", "/cloudpods"].contains(path);
        let expected = if own { 200 } else { 404 };
        assert_eq!(status, expected, "customer {path}: {html}");
        if !own {
            assert!(html.contains("Not found"), "{html}");
        }
    }
    // Another tenant's admin: not found.
    for path in [&product_page, &invoice_page, &customer_page] {
        let (status, _) = page(&app, &other.access_token, path).await;
        assert_eq!(status, 404, "{path}");
    }

    // Pages of one record: a record that is not there (or another
    // tenant's) is not found; a role without the permission is refused.
    let nobody = "01a23d00-0000-7000-8000-000000000000";
    for (path, refused) in [
        (format!("/hosting/{nobody}"), None),
        (format!("/hosting/{nobody}/backups"), Some(&billing)),
        (format!("/orders/{nobody}"), None),
        (format!("/subscriptions/{nobody}"), None),
        (
            format!("/subscriptions/{nobody}/change?product_id={product}"),
            Some(&support),
        ),
        (format!("/cloudpods/{nobody}"), None),
        (format!("/customers/{nobody}"), None),
        (format!("/jobs/{nobody}"), Some(&admin)),
        (format!("/products/{nobody}"), None),
    ] {
        let (status, _) = page(&app, &admin.access_token, &path).await;
        let expected = if path.starts_with("/jobs") { 403 } else { 404 };
        assert_eq!(status, expected, "admin {path}");
        let (status, _) = page(&app, &other.access_token, &path).await;
        assert!(
            matches!(status, 403 | 404),
            "another tenant {path}: {status}"
        );
        if let Some(who) = refused {
            let (status, _) = page(&app, &who.access_token, &path).await;
            assert_eq!(status, 403, "{path}");
        }
    }

    // Actions: the token is needed, then the permission, then the tenant.
    let void = format!("{invoice_page}/void");
    let token = csrf(&app, &admin.access_token).await;
    let (status, html) = post(&app, &admin.access_token, &void, &[]).await;
    assert_eq!(status, 403, "no token: {html}");
    assert!(html.contains("did not come from this console"));
    let (status, _) = post(&app, &admin.access_token, &void, &[("_csrf", "forged")]).await;
    assert_eq!(status, 403);
    let other_token = csrf(&app, &billing.access_token).await;
    let (status, _) = post(&app, &admin.access_token, &void, &[("_csrf", &other_token)]).await;
    assert_eq!(status, 403, "another session's token");
    let support_token = csrf(&app, &support.access_token).await;
    let (status, html) = post(
        &app,
        &support.access_token,
        &void,
        &[("_csrf", &support_token)],
    )
    .await;
    assert_eq!(status, 403, "support may not void: {html}");
    let bravo_token = csrf(&app, &other.access_token).await;
    let (status, _) = post(&app, &other.access_token, &void, &[("_csrf", &bravo_token)]).await;
    assert_eq!(status, 404, "another tenant's invoice");
    let issue = format!("{invoice_page}/issue");
    let (status, _) = post(&app, &admin.access_token, &issue, &[("_csrf", &token)]).await;
    assert_eq!(status, 303, "issued");
    let (_, html) = page(&app, &admin.access_token, &invoice_page).await;
    assert!(html.contains("INV-"), "numbered once issued");
    let (status, _) = post(&app, &admin.access_token, &void, &[("_csrf", &token)]).await;
    assert_eq!(status, 303, "voided");
    let (_, html) = page(
        &app,
        &admin.access_token,
        &format!("{invoice_page}?done=invoice_voided"),
    )
    .await;
    assert!(html.contains("The invoice is void."), "{html}");

    // Mailboxes: billing staff may not; another's subscription is not found.
    let form = [
        ("_csrf", other_token.as_str()),
        ("subscription_id", "01a23d00-0000-7000-8000-000000000000"),
        ("local_part", "info"),
        ("password", "a long enough password"),
    ];
    let (status, _) = post(&app, &billing.access_token, "/mailboxes", &form).await;
    assert_eq!(status, 403, "billing may not add mailboxes");
    let customer_token = csrf(&app, &customer.access_token).await;
    let mut form = form;
    form[0].1 = customer_token.as_str();
    let (status, _) = post(&app, &customer.access_token, "/mailboxes", &form).await;
    assert_eq!(status, 404, "not her subscription");

    // Not signed in: the sign-in page, keeping where the user was going.
    let res = client().get(app.url("/invoices")).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()[header::LOCATION], "/sign-in?next=%2Finvoices");
    // An API token is for programs: the console does not take it.
    let (api_token, _) = app.api_token(&admin.access_token, &["READ"]).await;
    let (status, _) = page(&app, &api_token, "/invoices").await;
    assert_eq!(status, 303);
    // An unknown address asked for by a browser: the not-found page; by
    // a program: the problem.
    let (status, html) = page(&app, &admin.access_token, "/no-such-page").await;
    assert_eq!(status, 404);
    assert!(html.contains("Not found"));
    let res = app.get("/no-such-page").await;
    assert_eq!(res.status(), 404);
    assert_eq!(
        res.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
}
