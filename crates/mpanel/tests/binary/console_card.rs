//! A customer pays an invoice by card in the console: Stripe's payment
//! element (the Stripe fake's Stripe.js) takes the card, Stripe confirms,
//! and its signed webhook, not the browser, marks the invoice paid.

use serde_json::json;

use crate::browser::Browser;
use crate::console::{heading, invitation_link, notice, text_of, visit};
use crate::provisioning_support::*;

const SECRET_KEY: &str = "sk_test_console";
const WEBHOOK_SECRET: &str = "whsec_console";

#[test]
fn console_customer_pays_an_invoice_by_card_through_stripe() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let stripe = rt.block_on(mpanel_stripe_fake::start());
    let relay = format!(
        "smtp://127.0.0.1:{}",
        std::env::var("SMTP_RELAY_PORT").expect("SMTP_RELAY_PORT: run under scripts/test.sh")
    );
    let panel = Panel::start_with(&[
        ("MPANEL_SMTP_URL", &relay),
        ("MPANEL_MAIL_FROM", "Acme Hosting <billing@acme-card.test>"),
        ("MPANEL_STRIPE_API_BASE", &stripe.base_url()),
    ]);
    let origin = format!("http://{}", panel.addr);
    panel.expect(
        200,
        &panel.admin,
        "PUT /api/billing/settings",
        Some(
            json!({"stripe_secret_key": SECRET_KEY, "stripe_webhook_secret": WEBHOOK_SECRET,
            "stripe_publishable_key": "pk_test_console"}),
        ),
    );
    // The endpoint the provider adds in Stripe's dashboard.
    stripe.add_webhook_endpoint(
        SECRET_KEY,
        &format!("{origin}/api/billing/stripe/webhook?tenant=acme"),
        WEBHOOK_SECRET,
    );

    // An order not paid yet: its invoice waits for her.
    let stamp = uuid::Uuid::now_v7().simple().to_string();
    let email = format!("card-{stamp}@inbox-console.test");
    let mut body = panel.order_body(&unique_domain(), &format!("card_{stamp}"));
    body["customer"]["email"] = email.clone().into();
    body.as_object_mut().unwrap().remove("payment");
    let (status, order) = panel.post_order(&body, &format!("card_{stamp}"));
    assert_eq!(status, 201, "{order}");

    let b = Browser::start();
    b.goto(&format!("{origin}{}", invitation_link(&email)));
    b.fill("#password", "card payer password 42");
    b.fill("#confirm", "card payer password 42");
    b.click("button[type=submit]");
    b.wait_for("#next:not([hidden]) a").click();
    b.wait_for("#password");
    b.fill("#password", "card payer password 42");
    b.click("form[action='/sign-in'] button[type=submit]");
    b.wait_until("her services", |b| heading(b) == "Your services");

    visit(&b, &origin, "/invoices", "customer-invoices-due");
    b.click("tbody a[href^='/invoices/']");
    b.wait_for("a[href$='/pay']").click();
    b.wait_for("#stripe-card-number");
    b.check_accessibility();
    b.shots("card-payment");

    // A declined card: Stripe's answer on the page, nothing paid.
    b.fill("#stripe-card-number", "4000 0000 0000 0002");
    b.click("#card-payment button[type=submit]");
    b.wait_until("the decline", |b| {
        text_of(b, "#card-status").contains("declined")
    });
    let invoice_url = b.url();
    let invoice_id = invoice_url
        .trim_end_matches("/pay")
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let route = format!("GET /api/billing/invoices/{invoice_id}");
    assert_eq!(
        panel.expect(200, &panel.admin, &route, None)["status"],
        "ISSUED"
    );

    // A good card: back on the invoice, which turns paid once Stripe's
    // webhook arrives.
    b.fill("#stripe-card-number", "4242 4242 4242 4242");
    b.click("#card-payment button[type=submit]");
    b.wait_until("the payment received", |b| {
        notice(b).contains("payment is received")
    });
    assert!(b.url().contains("done=card_paid"), "{}", b.url());
    assert!(heading(&b).ends_with("paid"), "{}", heading(&b));
    b.check_accessibility();
    let invoice = panel.expect(200, &panel.admin, &route, None);
    assert_eq!(invoice["status"], "PAID", "{invoice}");
    let payments = panel.expect(200, &panel.admin, &format!("{route}/payments"), None);
    let items = payments["payments"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 1, "one payment: {payments}");
    assert_eq!(items[0]["provider"], "STRIPE", "{payments}");
    assert_eq!(items[0]["amount_minor"], 1500, "{payments}");
    let delivered: Vec<_> = stripe
        .deliveries()
        .into_iter()
        .map(|d| (d.event_type, d.status))
        .collect();
    assert!(
        delivered.contains(&("payment_intent.succeeded".into(), 200)),
        "{delivered:?}"
    );
    assert!(
        delivered.contains(&("payment_intent.payment_failed".into(), 200)),
        "{delivered:?}"
    );
    // Paying again is not offered.
    assert!(
        !b.source().contains("/pay\""),
        "no card payment offered for a paid invoice"
    );
}
