//! Names are owned on the whole platform, checked on the real services: a
//! customer cannot order a name inside another customer's live zone (and
//! PowerDNS never holds it), nor the parent of another's `www.` site (whose
//! vhost would claim that site's name), nor a name another customer's
//! order is still provisioning. Cross-tenant orders are refused by the
//! same rule (crates/api/tests/http/orders_names.rs).

use serde_json::{Value, json};

use crate::provisioning_support::*;

/// An order from a customer other than the one `paid_order` uses.
fn stranger_order(panel: &Panel, domain: &str, n: usize) -> (u16, Value) {
    let mut body = panel.order_body(domain, &format!("pi_stranger_{n}"));
    body["customer"] =
        json!({"email": format!("mallory{n}@example.net"), "name": "Mallory", "country": "DE"});
    panel.post_order(&body, &format!("stranger-{n}"))
}

fn assert_refused(panel: &Panel, domain: &str, n: usize) {
    let (status, v) = stranger_order(panel, domain, n);
    assert_eq!(status, 422, "{domain}: {v}");
    assert_eq!(v["field"], "items[0].domain", "{domain}: {v}");
}

/// Refused, and PowerDNS holds no zone of that name.
fn assert_refused_and_absent(panel: &Panel, domain: &str, n: usize) {
    assert_refused(panel, domain, n);
    let (zone, body) = panel.pdns_zone(domain);
    assert_eq!(zone, 404, "PowerDNS holds no zone {domain}: {body}");
}

#[test]
fn no_customer_can_take_over_another_customers_names() {
    let panel = Panel::start();
    let victim = unique_domain();
    let order = panel.paid_order(&victim);
    panel.wait_steps(&order, "COMPLETED");
    assert_refused_and_absent(&panel, &format!("shop.{victim}"), 1);
    assert_refused(&panel, &victim, 2);
    assert_refused_and_absent(&panel, &format!("www.{victim}"), 3);

    // A live site on www.NAME: ordering NAME would claim it in nginx.
    let beta = unique_domain();
    let www_beta = format!("www.{beta}");
    let order = panel.paid_order(&www_beta);
    panel.wait_steps(&order, "COMPLETED");
    panel.wait_http("the www site is served", &www_beta, |status, body| {
        status == 200 && body.contains(&www_beta)
    });
    assert_refused_and_absent(&panel, &beta, 4);
    panel.wait_http(
        "the www site still serves its own page",
        &www_beta,
        |status, body| status == 200 && body.contains(&www_beta),
    );

    // An order still being paid for holds its name and everything under it.
    let pending = unique_domain();
    let mut unpaid = panel.order_body(&pending, "unpaid");
    unpaid.as_object_mut().unwrap().remove("payment");
    let (status, v) = panel.post_order(&unpaid, "unpaid");
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["status"], "PENDING_PAYMENT", "{v}");
    assert_refused(&panel, &pending, 5);
    assert_refused_and_absent(&panel, &format!("mail.{pending}"), 6);

    // A public suffix cannot be owned at all.
    assert_refused(&panel, "co.uk", 7);
}
