//! The pages `mpanel serve` serves, in headless Chromium (`crate::browser`):
//! what a visitor sees and does, no serious or critical accessibility
//! problem (axe-core), screenshots at desktop and phone width. And the
//! browser client itself, on those pages, for the tests that will use it.

use serde_json::json;

use crate::browser::{Browser, free_port};
use crate::provisioning_support::*;

/// A bare panel on a known port, its origin, and a browser.
fn panel_and_browser() -> (Panel, String, Browser) {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let panel = Panel::start_bare_with(&[("MPANEL_LISTEN", &listen)]);
    (panel, format!("http://{listen}"), Browser::start())
}

#[test]
fn browser_shows_the_invitation_and_password_reset_pages_accessibly() {
    let (_panel, origin, browser) = panel_and_browser();

    // The link from an invitation e-mail: the token leaves the address bar.
    browser.goto(&format!("{origin}/invitation#token=mplk_not-issued"));
    assert_eq!(browser.title(), "Choose your password");
    assert_eq!(browser.text("h1"), "Choose your password");
    assert_eq!(browser.url(), format!("{origin}/invitation"));
    browser.check_accessibility();
    browser.shots("invitation");

    // Two passwords that differ are caught in the page.
    browser.fill("#password", "a long new password");
    browser.fill("#confirm", "another long password");
    browser.click("button[type=submit]");
    browser.wait_until("the passwords to be found different", |b| {
        b.text("#outcome") == "The two passwords differ."
    });
    // A token the panel never issued: the API refuses, the page says why.
    browser.fill("#confirm", "a long new password");
    browser.click("button[type=submit]");
    browser.wait_until("the API's refusal", |b| {
        let outcome = b.text("#outcome");
        !outcome.is_empty() && outcome != "The two passwords differ."
    });
    assert_eq!(
        browser.find("#outcome").attr("class").as_deref(),
        Some("error")
    );
    browser.check_accessibility();

    // Opened without its token: no form, and the page says what to do.
    browser.goto(&format!("{origin}/password-reset"));
    assert_eq!(browser.text("h1"), "Choose a new password");
    assert!(
        browser
            .text("#outcome")
            .contains("open it again from the e-mail")
    );
    assert!(browser.find("#set-password").attr("hidden").is_some());
    browser.check_accessibility();
    browser.shots("password-reset");
}

#[test]
fn browser_client_reads_fills_selects_fetches_and_keeps_cookies() {
    let (_panel, origin, browser) = panel_and_browser();
    browser.goto(&format!("{origin}/invitation#token=mplk_not-issued"));
    assert!(browser.source().contains("account.js"));

    let inputs = browser.find_all("input");
    let types: Vec<_> = inputs.iter().map(|i| i.attr("type")).collect();
    assert_eq!(
        types,
        [Some("password".to_owned()), Some("password".to_owned())]
    );
    assert!(browser.try_find("#no-such-thing").is_none());
    browser.fill("#password", "first");
    browser.fill("#password", "second");
    let typed = browser.execute(
        "return document.getElementById(arguments[0]).value",
        json!(["password"]),
    );
    assert_eq!(typed, "second", "fill clears the field first");

    // Elements that arrive later, and a <select> (none of these pages has one).
    browser.execute(
        "setTimeout(() => document.querySelector('main').insertAdjacentHTML('beforeend', \
         '<label for=plan>Plan</label><select id=plan><option value=a>A</option>\
         <option value=b>B</option></select>'), 300)",
        json!([]),
    );
    browser.wait_for("#plan");
    browser.select("#plan", "b");
    assert_eq!(
        browser.execute("return document.getElementById('plan').value", json!([])),
        "b"
    );

    // fetch() from the page: its origin, what the server answered.
    let body = json!({"token": "mplk_not-issued", "password": "a long new password"});
    let (status, text) = browser.fetch(
        "POST",
        "/api/auth/invitations/accept",
        Some(&body.to_string()),
        &[("content-type", "application/json")],
    );
    assert_eq!(status, 422, "{text}");
    assert!(text.contains("token"), "{text}");

    // Cookies of the page's origin.
    browser.add_cookie("probe", "1");
    assert_eq!(browser.cookie("probe").unwrap()["value"], "1");
    assert!(browser.cookies().iter().any(|c| c["name"] == "probe"));
    assert_eq!(
        browser.execute("return document.cookie", json!([])),
        "probe=1"
    );
    browser.delete_cookie("probe");
    assert!(browser.cookie("probe").is_none());
}
