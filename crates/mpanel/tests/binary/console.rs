//! The web console in headless Chromium, against `mpanel serve` and the
//! real services of the provisioning tests: what staff click through,
//! every page checked by axe-core and photographed at desktop and phone
//! width (`target/screenshots`).

use crate::browser::Browser;
use crate::provisioning_support::*;
use mpanel_domain::security::{base32, totp};

const BOSS_PASSWORD: &str = "console boss password 1";

/// The TOTP code of `secret` (base32) for the current time step plus
/// `offset` steps (the server accepts the step before and after its own).
/// Enrolment types the current step's code (0): it still passes when a
/// slow machine submits it in the next step, where the previous step's
/// (-1) would be two steps old and refused (a CI run failed so).
fn totp_code(secret: &str, offset: i64) -> String {
    let bytes = base32::decode(secret).unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let step = u64::try_from(now / totp::STEP_SECS + offset).unwrap();
    totp::code_at_step(&bytes, step, totp::Algorithm::Sha1, totp::DIGITS)
}

/// The page's heading, empty while there is none (a page loading).
pub(crate) fn heading(b: &Browser) -> String {
    b.execute(
        "const h = document.querySelector('h1'); return h ? h.textContent.trim() : '';",
        serde_json::json!([]),
    )
    .as_str()
    .unwrap_or_default()
    .to_owned()
}

/// The text of the first element matching `css` (read in the page: htmx
/// may be replacing it), empty when there is none.
pub(crate) fn text_of(b: &Browser, css: &str) -> String {
    b.execute(
        "const e = document.querySelector(arguments[0]); return e ? e.textContent : '';",
        serde_json::json!([css]),
    )
    .as_str()
    .unwrap_or_default()
    .to_owned()
}

/// The text of the page's success notice (read in the page, so a page
/// being replaced is no error).
pub(crate) fn notice(b: &Browser) -> String {
    b.execute(
        "const n = document.querySelector('.notice.ok'); return n ? n.textContent : '';",
        serde_json::json!([]),
    )
    .as_str()
    .unwrap_or_default()
    .to_owned()
}

/// The text of the state panel (read in the page: htmx swaps it).
fn progress(b: &Browser) -> String {
    b.execute(
        "const p = document.getElementById('progress'); return p ? p.textContent : '';",
        serde_json::json!([]),
    )
    .as_str()
    .unwrap_or_default()
    .to_owned()
}

fn sign_in(b: &Browser, origin: &str, email: &str, password: &str) {
    if !b.url().contains("/sign-in") {
        b.goto(&format!("{origin}/sign-in"));
    }
    b.fill("#tenant", "acme");
    b.fill("#email", email);
    b.fill("#password", password);
    b.click("form[action='/sign-in'] button[type=submit]");
}

/// Opens `path`, checks its accessibility and keeps its screenshots.
pub(crate) fn visit(b: &Browser, origin: &str, path: &str, shot: &str) {
    b.goto(&format!("{origin}{path}"));
    b.wait_for("main");
    b.check_accessibility();
    b.shots(shot);
}

#[test]
fn console_staff_sign_in_with_totp_take_a_payment_and_suspend_a_site() {
    let panel = Panel::start();
    let origin = format!("http://{}", panel.addr);
    // A second admin of the tenant signs in to the console (the test's
    // own API session, the first admin's, stays untouched).
    let out = crate::support::run(
        panel.dir.path(),
        &[
            "admin",
            "create-user",
            "--tenant",
            "acme",
            "--email",
            "boss@acme.test",
            "--role",
            "TENANT_ADMIN",
            "--password",
            BOSS_PASSWORD,
        ],
        &[("MPANEL_DATABASE_URL", panel.database_url())],
    );
    assert!(
        out.status.success(),
        "{}",
        crate::support::text(&out.stderr)
    );
    let b = Browser::start();

    // Not signed in: the sign-in page, which returns to the page asked for.
    b.goto(&format!("{origin}/invoices"));
    b.wait_for("#password");
    assert!(b.url().contains("/sign-in?next=%2Finvoices"), "{}", b.url());
    b.check_accessibility();
    b.shots("sign-in");
    sign_in(&b, &origin, "boss@acme.test", "wrong password!");
    assert!(!b.wait_for("[role=alert]").text().is_empty());
    sign_in(&b, &origin, "boss@acme.test", BOSS_PASSWORD);
    b.wait_until("the invoices page", |b| heading(b) == "Invoices");

    // Two-step verification: the QR code's secret scanned, a code typed.
    visit(&b, &origin, "/security", "security");
    b.click("form[action='/security/totp'] button");
    let secret = b.wait_for("#totp-secret").text();
    assert!(b.try_find(".qr svg").is_some(), "no QR code drawn");
    b.check_accessibility();
    b.shots("security-enrol");
    b.fill("#totp-code", &totp_code(&secret, 0));
    b.click("form[action='/security/totp/confirm'] button");
    assert_eq!(b.wait_for("#recovery-codes").text().lines().count(), 10);

    // Signed out, then in again with the second factor.
    b.click("form[action='/sign-out'] button");
    b.wait_for("#password");
    sign_in(&b, &origin, "boss@acme.test", BOSS_PASSWORD);
    b.wait_for("#code");
    b.check_accessibility();
    b.shots("sign-in-code");
    b.fill("#code", &totp_code(&secret, 1));
    b.click("form[action='/sign-in/verify'] button[type=submit]");
    b.wait_until("the dashboard", |b| heading(b) == "Dashboard");
    b.check_accessibility();
    b.shots("dashboard");

    // A product made in the console, with a price.
    visit(&b, &origin, "/products", "products");
    b.fill("#p-name", "Console Hosting");
    b.fill("#p-slug", "console-hosting");
    b.select("#p-provisions", "HOSTING");
    b.fill("#p-mailboxes", "1");
    b.click("form[method=post][action='/products'] button[type=submit]");
    b.wait_for("#r-amount");
    b.check_accessibility();
    b.fill("#r-currency", "EUR");
    b.fill("#r-amount", "15.00");
    b.click("form[action$='/prices'] button[type=submit]");
    b.wait_until("the price listed", |b| notice(b).contains("price is added"));
    let prices = b.text("section[aria-labelledby='prices-h'] tbody");
    assert!(prices.contains("15.00 EUR"), "{prices}");
    b.shots("product");
    let product_id = b.text("#product-id");

    // A signed order of it arrives from the marketing site, not paid yet.
    let domain = unique_domain();
    let mut body = panel.order_body(&domain, "console-order");
    body["items"][0]["product_id"] = product_id.into();
    body.as_object_mut().unwrap().remove("payment");
    let (status, order) = panel.post_order(&body, "console-order");
    assert_eq!(status, 201, "{order}");
    let order_id = order["order_id"].as_str().unwrap().to_owned();
    visit(&b, &origin, "/orders", "orders");
    assert!(b.source().contains(&order_id[..8]), "the order is listed");
    visit(&b, &origin, "/customers", "customers");
    assert!(b.source().contains("jane@example.org"));
    b.click("tbody a[href^='/customers/']");
    b.wait_for("#svc-h");
    b.check_accessibility();
    b.shots("customer");

    // Its invoice, found by state, paid by bank transfer.
    visit(&b, &origin, "/invoices?status=ISSUED", "invoices");
    b.click("tbody a[href^='/invoices/']");
    b.wait_for("#amount");
    b.check_accessibility();
    b.shots("invoice");
    assert_eq!(b.find("#amount").attr("value").as_deref(), Some("15.00"));
    b.fill("#reference", "BANK-4711");
    b.click("form[action$='/payments'] button[type=submit]");
    b.wait_until("the payment recorded", |b| {
        notice(b).contains("payment is recorded")
    });
    assert!(b.text("h1").contains("paid"), "{}", b.text("h1"));

    // The site goes live on the real web node; the order's page follows
    // its provisioning until every step is done.
    visit(&b, &origin, &format!("/orders/{order_id}"), "order");
    b.wait_until("the provisioning followed to the end", |b| {
        let steps = b
            .execute(
                "const s = document.getElementById('steps'); return s ? s.textContent : '';",
                serde_json::json!([]),
            )
            .as_str()
            .unwrap_or_default()
            .to_owned();
        !steps.contains("Working") && steps.contains("completed")
    });
    panel.wait_steps(&order_id, "COMPLETED");
    panel.wait_http("the site live", &domain, |s, _| s == 200);

    // Suspended from the console, asked first; the page follows the work.
    visit(&b, &origin, "/hosting", "hosting");
    b.click("tbody a[href^='/hosting/']");
    b.wait_for("#progress");
    let account_url = b.url();
    b.click("a[href$='/suspend']");
    b.wait_for("button.danger");
    b.check_accessibility();
    b.shots("confirm-suspend");
    b.click("button.danger");
    b.wait_until("the suspension done", |b| {
        progress(b).contains("suspended") && !progress(b).contains("Working")
    });
    panel.wait_http("the site suspended", &domain, |s, _| s == 503);
    b.shots("hosting-suspended");

    // A form posted without its token is refused and changes nothing.
    let path = account_url.trim_start_matches(&origin).to_owned();
    let (status, page) = b.fetch(
        "POST",
        &format!("{path}/unsuspend"),
        Some(""),
        &[("content-type", "application/x-www-form-urlencoded")],
    );
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("did not come from this console"), "{page}");
    assert_eq!(panel.http(&domain).unwrap().0, 503);

    // Restored (the page shows the new state's actions once done).
    b.wait_for("a[href$='/unsuspend']").click();
    b.click("button.danger");
    b.wait_until("the restore done", |b| {
        progress(b).contains("active") && !progress(b).contains("Working")
    });
    panel.wait_http("the site back", &domain, |s, _| s == 200);

    // The dashboard with a day's work on it.
    visit(&b, &origin, "/", "dashboard-day");
    assert!(b.source().contains("15.00 EUR"), "the payment counted");

    // The subscription the order made, and the audit log of all this.
    visit(&b, &origin, "/subscriptions", "subscriptions");
    b.click("tbody a[href^='/subscriptions/']");
    b.wait_for("a[href$='/cancel']");
    b.check_accessibility();
    b.shots("subscription");
    // To the harness's own plan at the same price: the preview credits
    // the rest of the period on the old plan and charges it on the new.
    b.select("#new-plan", &panel.product_id);
    b.click("form[action$='/change'] button[type=submit]");
    let credit = b.wait_for("#preview-credit").text();
    assert_eq!(
        credit,
        b.text("#preview-charge"),
        "the same price both ways"
    );
    assert!(credit.ends_with("EUR") && credit != "0.00 EUR", "{credit}");
    b.check_accessibility();
    b.shots("change-plan");
    b.click("form[action$='/change'] button[type=submit]");
    b.wait_until("the plan changed", |b| {
        notice(b).contains("plan is changed")
    });
    visit(&b, &origin, "/security/policy", "security-policy");
    visit(&b, &origin, "/security/events", "security-events");
    assert!(
        b.source().contains("LOGIN_FAILED"),
        "the wrong password is an event"
    );
    visit(&b, &origin, "/settings", "settings");
    b.fill("#s-legal", "Acme Hosting GmbH");
    b.click("form[action='/settings/billing'] button[type=submit]");
    b.wait_until("the settings saved", |b| notice(b).contains("saved"));
    assert_eq!(
        b.find("#s-legal").attr("value").as_deref(),
        Some("Acme Hosting GmbH")
    );
    visit(
        &b,
        &origin,
        "/settings/templates/INVOICE_ISSUED",
        "template",
    );
    visit(&b, &origin, "/audit", "audit");
    assert!(
        b.source().contains("payment.record"),
        "the payment is audited"
    );

    // The platform's operator: servers and the job queue.
    b.click("form[action='/sign-out'] button");
    sign_in(&b, &origin, "ops@acme.test", OPERATOR_PASSWORD);
    b.wait_until("the dashboard", |b| heading(b) == "Dashboard");
    visit(&b, &origin, "/servers", "servers");
    assert!(
        b.source().contains("WEB") || b.source().contains("web"),
        "the web node listed"
    );
    visit(&b, &origin, "/jobs?state=COMPLETED", "jobs");
    b.click("tbody a[href^='/jobs/']");
    b.wait_for("pre");
    b.check_accessibility();
    b.shots("job");

    // An address that is nothing, and a job id that is no job: the
    // not-found page; a page the operator's role may not see says so.
    visit(&b, &origin, "/no-such-page", "not-found");
    assert_eq!(b.text("h1"), "Not found");
    b.goto(&format!("{origin}/jobs/{}", uuid::Uuid::now_v7()));
    assert_eq!(b.text("h1"), "Not found");
    visit(&b, &origin, "/invoices", "not-allowed");
    assert_eq!(b.text("h1"), "Not allowed");
    assert!(
        b.text("main").contains("INVOICES_READ"),
        "{}",
        b.text("main")
    );
}

/// The invitation link (path and fragment) in the newest message the
/// harness's inbox holds for `address`.
pub(crate) fn invitation_link(address: &str) -> String {
    let inbox = std::env::var("INBOX_DIR").expect(
        "INBOX_DIR is not set: run under `bash scripts/test.sh` (it starts the mail relay)",
    );
    let (user, domain) = address.split_once('@').unwrap();
    let dir = std::path::Path::new(&inbox)
        .join(domain)
        .join(user)
        .join("Maildir/new");
    eventually("the invitation e-mail", || {
        let entries = std::fs::read_dir(&dir).map_err(|e| e.to_string())?;
        for entry in entries.flatten() {
            let raw = std::fs::read_to_string(entry.path()).unwrap_or_default();
            // Quoted-printable: soft line breaks and `=3D` undone.
            let text = raw
                .replace("=\r\n", "")
                .replace("=\n", "")
                .replace("=3D", "=");
            if let Some(at) = text.find("/invitation#token=") {
                let token: String = text[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || "/#=_-".contains(*c))
                    .collect();
                return Ok(token);
            }
        }
        Err(format!("no invitation in {}", dir.display()))
    })
}

#[test]
fn console_customer_accepts_the_invitation_and_manages_their_service() {
    let relay = format!(
        "smtp://127.0.0.1:{}",
        std::env::var("SMTP_RELAY_PORT").expect("SMTP_RELAY_PORT: run under scripts/test.sh")
    );
    let panel = Panel::start_with(&[
        ("MPANEL_SMTP_URL", &relay),
        (
            "MPANEL_MAIL_FROM",
            "Acme Hosting <billing@acme-console.test>",
        ),
    ]);
    let origin = format!("http://{}", panel.addr);
    let stamp = uuid::Uuid::now_v7().simple().to_string();
    let email = format!("jane-{stamp}@inbox-console.test");
    let domain = unique_domain();
    let mut body = panel.order_body(&domain, &format!("pi_{stamp}"));
    body["customer"]["email"] = email.clone().into();
    let (status, order) = panel.post_order(&body, &format!("pi_{stamp}"));
    assert_eq!(status, 201, "{order}");
    let order_id = order["order_id"].as_str().unwrap().to_owned();
    // Someone else's order, whose invoice and site she must not reach.
    let other_domain = unique_domain();
    let other_order = panel.paid_order(&other_domain);
    panel.wait_steps(&order_id, "COMPLETED");
    panel.wait_steps(&other_order, "COMPLETED");

    // The invitation from the e-mail: a password chosen, then sign-in.
    let b = Browser::start();
    b.goto(&format!("{origin}{}", invitation_link(&email)));
    b.fill("#password", "jane's own password 42");
    b.fill("#confirm", "jane's own password 42");
    b.click("button[type=submit]");
    b.wait_for("#next:not([hidden]) a").click();
    b.wait_for("#password");
    assert_eq!(b.find("#tenant").attr("value").as_deref(), Some("acme"));
    b.fill("#password", "jane's own password 42");
    b.click("form[action='/sign-in'] button[type=submit]");
    b.wait_until("her services", |b| heading(b) == "Your services");
    assert!(b.source().contains(&domain), "her site is listed");
    assert!(!b.source().contains(&other_domain), "only hers");
    b.check_accessibility();
    b.shots("customer-services");

    // Her invoice, and its PDF.
    visit(&b, &origin, "/invoices", "customer-invoices");
    b.click("tbody a[href^='/invoices/']");
    b.wait_for("a[href$='/pdf']");
    b.check_accessibility();
    b.shots("customer-invoice");
    let pdf_path = b.find("a[href$='/pdf']").attr("href").unwrap();
    let (status, pdf) = b.fetch("GET", &pdf_path, None, &[]);
    assert_eq!(status, 200);
    assert!(pdf.starts_with("%PDF"), "{}", &pdf[..pdf.len().min(40)]);

    // A DNS record she adds is answered by PowerDNS.
    visit(&b, &origin, &format!("/dns/{domain}"), "customer-dns");
    b.fill("#r-name", "hello");
    b.select("#r-type", "A");
    b.fill("#r-content", "192.0.2.55");
    b.click("form[action^='/dns/'] button[type=submit]:not([aria-label])");
    b.wait_until("the record saved", |b| notice(b).contains("saved"));
    assert_eq!(panel.dig(&format!("hello.{domain}")), "192.0.2.55");
    // Deleted again, asked first: PowerDNS no longer answers it.
    b.click("a[aria-label^='Delete A hello.']");
    b.wait_for("button.danger");
    b.check_accessibility();
    b.click("button.danger");
    b.wait_until("the record deleted", |b| notice(b).contains("deleted"));
    assert_eq!(panel.dig(&format!("hello.{domain}")), "");

    // Her mailbox's password, changed on her services page; the plan's
    // one mailbox is all she may have.
    let postmaster = format!("postmaster@{domain}");
    visit(&b, &origin, "/", "customer-mailboxes");
    b.fill(
        "form[action$='/password'] input[name=password]",
        MAIL_PASSWORD,
    );
    b.click("form[action$='/password'] button[type=submit]");
    b.wait_until("the password queued", |b| {
        notice(b).contains("new password")
    });
    panel.wait_imap(&postmaster, true);
    b.fill("form[action='/mailboxes'] input[name=local_part]", "info");
    b.fill(
        "form[action='/mailboxes'] input[name=password]",
        MAIL_PASSWORD,
    );
    b.click("form[action='/mailboxes'] button[type=submit]");
    b.wait_until("the plan's limit", |b| heading(b) == "That did not work");
    assert!(b.text("main").contains("mailbox"), "{}", b.text("main"));
    b.check_accessibility();

    // Two-step verification, enrolled by the QR code's secret.
    visit(&b, &origin, "/security", "customer-security");
    b.click("form[action='/security/totp'] button");
    let secret = b.wait_for("#totp-secret").text();
    b.fill("#totp-code", &totp_code(&secret, 0));
    b.click("form[action='/security/totp/confirm'] button");
    assert_eq!(b.wait_for("#recovery-codes").text().lines().count(), 10);

    // An API token for her own scripts: shown once, works, revoked.
    visit(&b, &origin, "/security", "customer-tokens");
    b.fill("#t-name", "my script");
    b.click("form[action='/security/tokens'] button[type=submit]");
    let token = b.wait_for("#new-token").text();
    assert!(token.starts_with("mpt_"), "{token}");
    let (status, me) = panel.call(&token, "GET /api/auth/me", None);
    assert_eq!((status, me["email"].as_str()), (200, Some(email.as_str())));
    b.click("a[href^='/security/tokens/'][href$='/revoke']");
    b.wait_for("button.danger");
    b.check_accessibility();
    b.click("button.danger");
    b.wait_until("the token revoked", |b| notice(b).contains("revoked"));
    assert_eq!(panel.call(&token, "GET /api/auth/me", None).0, 401);

    // Staff pages and someone else's invoice, site and zone: not found.
    let invoices = panel.expect(200, &panel.admin, "GET /api/billing/invoices", None);
    let other_invoice = invoices["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["order_id"] == other_order.as_str())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for path in [
        "/customers".to_owned(),
        "/orders".to_owned(),
        "/hosting".to_owned(),
        format!("/invoices/{other_invoice}"),
        format!("/invoices/{other_invoice}/pdf"),
        format!("/dns/{other_domain}"),
    ] {
        b.goto(&format!("{origin}{path}"));
        assert_eq!(heading(&b), "Not found", "{path}");
    }
    b.check_accessibility();
}

#[test]
fn console_staff_reboot_a_cloudpod_and_back_it_up() {
    let pods = crate::cloudpods_support::Pods::start();
    let panel = &pods.panel;
    let order = pods.order(
        "PRO",
        "pi_console_pod",
        serde_json::json!({"hostname": "console-pod.example.org"}),
    );
    panel.wait_steps(&order, "COMPLETED");
    let sub = pods.subscription_of(&order);
    let pod = pods.wait_pod(&sub, "ACTIVE");
    let vmid = pod["vmid"].as_u64().unwrap();
    let origin = format!("http://{}", panel.addr);
    let b = Browser::start();
    sign_in(&b, &origin, "admin@acme.test", ADMIN_PASSWORD);
    b.wait_until("the dashboard", |b| heading(b) == "Dashboard");

    visit(&b, &origin, "/cloudpods", "cloudpods");
    b.click("tbody a[href^='/cloudpods/']");
    b.wait_for("#bk-h");
    b.check_accessibility();
    b.shots("cloudpod");
    assert!(b.text("main").contains("203.0.113.10"), "its address");

    // Rebooted, asked first; the Proxmox fake sees the VM running after.
    b.click("a[href$='/reboot']");
    b.wait_for("button.danger");
    b.click("button.danger");
    b.wait_until("the reboot queued", |b| notice(b).contains("Rebooting"));
    eventually("the VM running again", || {
        let vm = pods.pve.vm(vmid);
        if vm["status"] == "running" {
            Ok(())
        } else {
            Err(vm.to_string())
        }
    });

    // A backup now: listed, then done.
    b.click("form[action$='/backups'] button[type=submit]");
    b.wait_until("the backup asked for", |b| notice(b).contains("backup"));
    eventually("the backup done", || {
        b.goto(&b.url());
        let table = b.text("section[aria-labelledby='bk-h'] tbody");
        if table.contains("done") {
            Ok(())
        } else {
            Err(table)
        }
    });
    b.check_accessibility();
}

#[test]
fn console_a_site_is_backed_up_and_restored_beside_from_its_page() {
    crate::backups::clear_of_the_hour();
    let panel = Panel::start();
    let product = panel.add_hosting_product(
        "web-console-backed-up",
        serde_json::json!({"type": "HOSTING", "dns_zone": true, "mailboxes": 0}),
    );
    let port = panel.svc.number("BACKUP_SSH_PORT");
    crate::backups::add_backup_server(&panel, port);
    let domain = unique_domain();
    let order_id = panel.paid_order_of(&product, &domain);
    panel.wait_steps(&order_id, "COMPLETED");
    // The schedule's pass takes the new site in.
    panel.backups_run(time::OffsetDateTime::now_utc());
    let account = panel.find("/api/hosting/accounts", "name", &domain);
    let id = account["id"].as_str().unwrap().to_owned();

    let origin = format!("http://{}", panel.addr);
    let b = Browser::start();
    sign_in(&b, &origin, "admin@acme.test", ADMIN_PASSWORD);
    b.wait_until("the dashboard", |b| heading(b) == "Dashboard");
    visit(&b, &origin, &format!("/hosting/{id}/backups"), "backups");

    // A backup now, followed on the page until it is done.
    b.click("form[action$='/backups'] button[type=submit]");
    b.wait_until("the backup done", |b| {
        let text = text_of(b, "main");
        !text.contains("Working on it") && text.contains("succeeded")
    });
    b.check_accessibility();
    b.shots("backups-done");

    // The whole site restored beside, asked first.
    b.click("a[href$='/restore']");
    b.wait_for("#r-path");
    b.check_accessibility();
    b.click("input[value=BESIDE]");
    b.click("button.danger");
    b.wait_until("the restore done", |b| {
        let first = text_of(b, "section[aria-labelledby='runs-h'] tbody tr");
        first.contains("restore") && first.contains("succeeded")
    });
}
