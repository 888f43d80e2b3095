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

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// `GET path` as the console's session of `access` would: status, body.
async fn page(app: &TestApp, access: &str, path: &str) -> (u16, String) {
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
async fn csrf(app: &TestApp, access: &str) -> String {
    let (status, html) = page(app, access, "/security").await;
    assert_eq!(status, 200, "{html}");
    let at = html.find("name=\"_csrf\" value=\"").unwrap() + 20;
    html[at..].split('"').next().unwrap().to_owned()
}

async fn post(app: &TestApp, access: &str, path: &str, form: &[(&str, &str)]) -> (u16, String) {
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

async fn created(res: reqwest::Response) -> Value {
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

/// The card payment page: offered once both Stripe keys are set, for the
/// customer's own invoice (another customer's or tenant's is not found,
/// support staff are refused), with Stripe.js let in by that page's CSP
/// only. (Paying through it, and Stripe's webhook marking the invoice
/// paid, is clicked through in the browser test.)
#[tokio::test]
async fn console_card_payment_page_is_the_customers_own_and_only_it_lets_stripe_in() {
    use crate::billing::{billing_admin, customer, draft, issue, put_settings};
    let app = TestApp::start().await;
    let admin = billing_admin(&app, "acme").await;
    let support = app
        .account("acme", "support@acme.test", Role::Support)
        .await;
    let jane = app.account("acme", "jane@example.de", Role::Customer).await;
    let joe = app.account("acme", "joe@example.de", Role::Customer).await;
    let bravo = app
        .account("bravo", "admin@bravo.test", Role::TenantAdmin)
        .await;
    let jane_id = customer(&app, &admin, "jane@example.de", "DE", None).await;
    customer(&app, &admin, "joe@example.de", "DE", None).await;
    let inv = draft(
        &app,
        &admin,
        json!({"customer_id": jane_id, "lines": [{"kind": "ITEM", "description": "Server",
            "quantity": "1", "unit_price": "49.90"}]}),
    )
    .await;
    let id = inv["id"].as_str().unwrap().to_owned();
    issue(&app, &admin, &id).await;
    let invoice_page = format!("/invoices/{id}");
    let pay = format!("/invoices/{id}/pay");

    // Stripe not set up: no offer, and the page says why.
    let (status, html) = page(&app, &jane.access_token, &invoice_page).await;
    assert_eq!(status, 200, "{html}");
    assert!(!html.contains(&pay), "no card payment offered yet");
    let (status, html) = page(&app, &jane.access_token, &pay).await;
    assert_eq!(status, 409, "{html}");
    assert!(html.contains("card payments are not set up"), "{html}");

    // A secret key in the publishable key's place is refused.
    let res = app
        .call(
            reqwest::Method::PUT,
            "/api/billing/settings",
            Some(&admin.access_token),
            Some(json!({"stripe_publishable_key": "sk_test_wrong"})),
        )
        .await;
    assert_eq!(res.status(), 422);
    let problem: Value = res.json().await.unwrap();
    assert_eq!(problem["field"], "stripe_publishable_key", "{problem}");
    put_settings(
        &app,
        &admin,
        json!({"stripe_secret_key": "sk_test_acme", "stripe_webhook_secret": "whsec_acme",
            "stripe_publishable_key": "pk_test_acme"}),
    )
    .await;

    let (_, html) = page(&app, &jane.access_token, &invoice_page).await;
    assert!(html.contains(&pay), "offered: {html}");
    assert!(html.contains("by card"), "{html}");
    let res = client()
        .get(app.url(&pay))
        .header(header::COOKIE, format!("mp_access={}", jane.access_token))
        .header(header::ACCEPT, "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let csp = res.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    let html = res.text().await.unwrap();
    let stripe = app.stripe.base_url();
    assert!(
        csp.contains(&format!("script-src 'self' {stripe};")),
        "{csp}"
    );
    assert!(
        csp.contains(&format!("connect-src 'self' {stripe};")),
        "{csp}"
    );
    assert!(csp.contains("form-action 'self'"), "{csp}");
    let js = format!("{stripe}/v3/").replace('/', "&#x2f;");
    assert!(html.contains(&format!("src=\"{js}\"")), "{html}");
    assert!(
        html.contains("data-publishable-key=\"pk_test_acme\""),
        "{html}"
    );
    let create = app
        .stripe
        .requests()
        .into_iter()
        .find(|r| r.path == "/v1/payment_intents")
        .expect("an intent asked for");
    assert_eq!(create.param("amount"), Some("4990"));
    assert_eq!(create.param("metadata[invoice_id]"), Some(id.as_str()));
    assert!(html.contains("data-client-secret=\"pi_"), "{html}");
    // Other pages keep the console's own CSP.
    let res = client()
        .get(app.url(&invoice_page))
        .header(header::COOKIE, format!("mp_access={}", jane.access_token))
        .send()
        .await
        .unwrap();
    let csp = res.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(!csp.contains(&stripe), "{csp}");

    // Back from Stripe: the invoice is followed until it is paid.
    let (_, html) = page(
        &app,
        &jane.access_token,
        &format!("{invoice_page}?paying=1"),
    )
    .await;
    assert!(html.contains("Stripe is confirming your payment"), "{html}");
    assert!(html.contains("?paying=1&amp;n=1"), "{html}");
    let (_, html) = page(
        &app,
        &jane.access_token,
        &format!("{invoice_page}?paying=1&n=150"),
    )
    .await;
    assert!(!html.contains("hx-trigger"), "it stops asking: {html}");
    assert!(html.contains("please do not pay again"), "{html}");
    assert!(!html.contains(&pay), "no second payment offered: {html}");
    let (_, html) = page(
        &app,
        &jane.access_token,
        &format!("{invoice_page}?paying=1&redirect_status=failed"),
    )
    .await;
    assert!(html.contains("The payment did not go through"), "{html}");
    assert!(html.contains(&pay), "tried again: {html}");

    // Another customer, another tenant: not found; support: refused.
    let (status, _) = page(&app, &joe.access_token, &pay).await;
    assert_eq!(status, 404);
    let (status, _) = page(&app, &bravo.access_token, &pay).await;
    assert_eq!(status, 404);
    let (status, html) = page(&app, &support.access_token, &pay).await;
    assert_eq!(status, 403, "{html}");
    assert!(html.contains("INVOICES_PAY"), "{html}");
    assert_eq!(
        app.stripe
            .requests()
            .iter()
            .filter(|r| r.path == "/v1/payment_intents")
            .count(),
        1,
        "no intent for those refused"
    );
}

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
