//! A passkey registered and an MFA login completed by a real browser:
//! headless Chromium driven through chromedriver (W3C WebDriver) with a
//! virtual authenticator, `navigator.credentials.create/get` on a page of
//! mPanel's own origin, the browser's own JSON encoding (`toJSON()`);
//! then the console's sign-in completed with the passkey by its button.

use serde_json::json;

use crate::browser::{Browser, free_port};
use crate::provisioning_support::*;

const REGISTER: &str = r#"
const [token, done] = [arguments[0], arguments[arguments.length - 1]];
(async () => {
  const headers = {"authorization": "Bearer " + token, "content-type": "application/json"};
  const start = await (await fetch("/api/security/me/webauthn/register/start",
      {method: "POST", headers, body: "{}"})).json();
  const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(start.options.publicKey);
  const credential = await navigator.credentials.create({publicKey});
  const res = await fetch("/api/security/me/webauthn/register/finish", {method: "POST", headers,
      body: JSON.stringify({ceremony_id: start.ceremony_id, credential: credential.toJSON(), name: "browser key"})});
  done({status: res.status, body: await res.text()});
})().catch((e) => done({error: String(e)}));
"#;

const LOGIN: &str = r#"
const [email, password, done] = [arguments[0], arguments[1], arguments[arguments.length - 1]];
(async () => {
  const headers = {"content-type": "application/json"};
  const pending = await (await fetch("/api/auth/login", {method: "POST", headers,
      body: JSON.stringify({tenant: "acme", email, password})})).json();
  if (!pending.mfa_required) { done({error: "no MFA asked: " + JSON.stringify(pending)}); return; }
  const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(pending.webauthn.publicKey);
  const assertion = await navigator.credentials.get({publicKey});
  const res = await fetch("/api/auth/mfa", {method: "POST", headers,
      body: JSON.stringify({mfa_token: pending.mfa_token, webauthn_response: assertion.toJSON()})});
  done({status: res.status, body: await res.json()});
})().catch((e) => done({error: String(e)}));
"#;

#[test]
fn a_browser_registers_a_passkey_and_completes_an_mfa_login_with_it() {
    let port = free_port();
    let origin = format!("http://localhost:{port}");
    let listen = format!("127.0.0.1:{port}");
    let panel = Panel::start_bare_with(&[
        ("MPANEL_LISTEN", &listen),
        ("MPANEL_WEBAUTHN_RP_ID", "localhost"),
        ("MPANEL_WEBAUTHN_ORIGIN", &origin),
    ]);
    let browser = Browser::start();
    browser.call(
        "POST",
        "/webauthn/authenticator",
        json!({"protocol": "ctap2", "transport": "internal", "hasResidentKey": true,
            "hasUserVerification": true, "isUserVerified": true}),
    );
    // A page of mPanel's own origin (the scripts call its API from there).
    browser.goto(&format!("{origin}/invitation"));

    let registered = browser.run(REGISTER, json!([panel.admin]));
    assert_eq!(registered["status"], 201, "{registered}");

    let login = browser.run(LOGIN, json!(["admin@acme.test", ADMIN_PASSWORD]));
    assert_eq!(login["status"], 200, "{login}");
    assert!(login["body"]["access_token"].is_string(), "{login}");

    // The console's sign-in: the password, then the passkey button (no
    // code field: a passkey is the only factor).
    browser.goto(&format!("{origin}/sign-in"));
    browser.fill("#tenant", "acme");
    browser.fill("#email", "admin@acme.test");
    browser.fill("#password", ADMIN_PASSWORD);
    browser.click("form[action='/sign-in'] button[type=submit]");
    browser.wait_for("#use-passkey");
    assert!(browser.try_find("#code").is_none(), "no code field");
    browser.check_accessibility();
    browser.click("#use-passkey");
    browser.wait_until("the dashboard", |b| {
        b.execute(
            "const h = document.querySelector('h1'); return h ? h.textContent.trim() : '';",
            json!([]),
        ) == "Dashboard"
    });
}
