//! The console's card payment page under the matrix and tenancy, with
//! Stripe.js let in by that page's CSP only.

use mpanel_domain::identity::Role;
use reqwest::header;
use serde_json::{Value, json};

use crate::console::{client, page};
use crate::support::TestApp;

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
