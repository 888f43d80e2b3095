//! Provisioning end to end through the real binary: a signed, paid order
//! becomes a DNS zone on PowerDNS, a site on nginx (over SSH) and a mailbox
//! on Dovecot, checked as a customer would (DNS query, HTTP, IMAP login,
//! SFTP login); then suspend, unsuspend and terminate; then the faults: a job run twice,
//! and a web node refusing SSH. Needs the services `scripts/test.sh` starts.

use serde_json::{Value, json};

use crate::provisioning_support::*;
use crate::support::*;

const SFTP_PASSWORD: &str = "the customer's sftp password";

fn postmaster(domain: &str) -> String {
    format!("postmaster@{domain}")
}

/// Sets the mailbox's password through the API; waits until it logs in.
fn set_mail_password(panel: &Panel, domain: &str) {
    let mailbox = panel.find("/api/mail/accounts", "name", &postmaster(domain));
    assert_eq!(mailbox["status"], "ACTIVE", "{mailbox:#}");
    let id = mailbox["id"].as_str().unwrap();
    let route = format!("POST /api/mail/accounts/{id}/password");
    let body = json!({"password": MAIL_PASSWORD});
    let v = panel.expect(202, &panel.admin, &route, Some(body));
    assert!(v["job_id"].is_string(), "{v}");
    panel.wait_imap(&postmaster(domain), true);
    // The plan's one mailbox is in use: no further one.
    let body = json!({"subscription_id": mailbox["subscription_id"], "local_part": "info",
        "password": MAIL_PASSWORD});
    let (status, v) = panel.call(&panel.admin, "POST /api/mail/accounts", Some(body));
    assert_eq!(status, 409, "{v}");
}

fn live(domain: &str) -> impl Fn(u16, &str) -> bool + '_ {
    move |status, body| status == 200 && body.contains(domain)
}

/// `POST /api/hosting/accounts/{id}/ACTION` answers 202 with a job.
fn lifecycle(panel: &Panel, account: &Value, action: &str) {
    let id = account["id"].as_str().unwrap();
    let route = format!("POST /api/hosting/accounts/{id}/{action}");
    let v = panel.expect(202, &panel.admin, &route, None);
    assert!(v["job_id"].is_string(), "{action}: {v}");
}

#[test]
fn a_paid_order_goes_live_then_suspends_unsuspends_and_terminates() {
    let panel = Panel::start();
    let domain = unique_domain();
    let order_id = panel.paid_order(&domain);
    panel.wait_steps(&order_id, "COMPLETED");

    eventually("the zone answers", || match panel.dig(&domain) {
        ip if ip == "127.0.0.1" => Ok(()),
        other => Err(other),
    });
    panel.wait_http("the site is served", &domain, live(&domain));
    set_mail_password(&panel, &domain);

    let account = panel.find("/api/hosting/accounts", "name", &domain);
    assert_eq!(account["status"], "ACTIVE", "{account:#}");

    // The customer's SFTP login, set by staff through a queued job.
    let id = account["id"].as_str().unwrap();
    let route = format!("PUT /api/hosting/accounts/{id}/sftp");
    let body = json!({"password": SFTP_PASSWORD});
    panel.expect(202, &panel.admin, &route, Some(body));
    panel.wait_sftp(id, SFTP_PASSWORD, true);

    lifecycle(&panel, &account, "suspend");
    panel.wait_http("suspended: 503", &domain, |status, _| status == 503);
    panel.wait_imap(&postmaster(&domain), false);
    panel.wait_sftp(id, SFTP_PASSWORD, false);
    // The job records SUSPENDED once every effect is in place: only then
    // may the account be unsuspended.
    eventually("the account is SUSPENDED", || {
        match panel.find("/api/hosting/accounts", "name", &domain)["status"].as_str() {
            Some("SUSPENDED") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });

    lifecycle(&panel, &account, "unsuspend");
    panel.wait_http("unsuspended: live again", &domain, live(&domain));
    panel.wait_imap(&postmaster(&domain), true);
    panel.wait_sftp(id, SFTP_PASSWORD, true);

    lifecycle(&panel, &account, "terminate");
    eventually("the zone is gone", || match panel.dig(&domain) {
        out if out.is_empty() => Ok(()),
        other => Err(other),
    });
    panel.wait_http("terminated: not the site", &domain, |status, body| {
        !live(&domain)(status, body)
    });
    panel.wait_imap(&postmaster(&domain), false);
    let account = panel.find("/api/hosting/accounts", "name", &domain);
    assert_eq!(account["status"], "TERMINATED", "{account:#}");
}

#[test]
fn an_unpaid_renewal_suspends_the_site_and_paying_it_brings_it_back() {
    let panel = Panel::start();
    let domain = unique_domain();
    let order_id = panel.paid_order(&domain);
    panel.wait_steps(&order_id, "COMPLETED");
    panel.wait_http("the site is served", &domain, live(&domain));

    // A month on, the renewal is issued and left unpaid…
    let renewal = time::OffsetDateTime::now_utc() + time::Duration::days(32);
    let dry = panel.billing_run_with(renewal, &["--dry-run"]);
    assert_eq!(
        (dry["invoices"].as_u64(), dry["dry_run"].as_bool()),
        (Some(1), Some(true))
    );
    let report = panel.billing_run(renewal);
    assert_eq!(report["invoices"], 1, "{report:#}");
    let (_, page) = panel.call(
        &panel.admin,
        "GET /api/billing/invoices?status=ISSUED",
        None,
    );
    let invoice = page["items"][0].clone();
    assert_eq!(invoice["total_minor"], 1500, "{page:#}");
    // The customer's copy is written by serve's workers after the run
    // (its `notify.invoice_copies` job).
    let number = invoice["number"].as_str().unwrap().to_owned();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (_, outbox) = panel.call(
            &panel.admin,
            "GET /api/notifications/outbox?kind=INVOICE_ISSUED",
            None,
        );
        let mailed = outbox["items"].as_array().unwrap().iter().any(|m| {
            m["subject"]
                .as_str()
                .is_some_and(|s| s.contains(number.as_str()))
        });
        if mailed {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no message for {number}: {outbox:#}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    // …and 7 days past its due date the site is suspended.
    let overdue = renewal + time::Duration::days(14 + 7) + time::Duration::hours(1);
    let report = panel.billing_run(overdue);
    assert_eq!(report["suspended"], 1, "{report:#}");
    panel.wait_http("suspended for non-payment: 503", &domain, |status, _| {
        status == 503
    });
    assert_eq!(
        panel.billing_run(overdue)["suspended"],
        0,
        "a re-run changes nothing"
    );

    // Paying restores it at once.
    let pay = format!(
        "POST /api/billing/invoices/{}/pay",
        invoice["id"].as_str().unwrap()
    );
    let body = json!({"amount_minor": 1500, "provider": "BANK_TRANSFER", "reference": "bank-1"});
    panel.expect(201, &panel.admin, &pay, Some(body));
    panel.wait_http("paid: live again", &domain, live(&domain));
    eventually("the account is active again", || {
        match panel.find("/api/hosting/accounts", "name", &domain)["status"].as_str() {
            Some("ACTIVE") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
}

#[test]
fn running_the_provisioning_again_makes_nothing_twice() {
    let panel = Panel::start();
    let domain = unique_domain();
    let reference = format!("pi_{}", domain.replace(['.', '-'], "_"));
    let body = panel.order_body(&domain, &reference);
    let (status, first) = panel.post_order(&body, "order-1");
    assert_eq!(status, 201, "{first}");
    let order_id = first["order_id"].as_str().unwrap();
    let order = panel.wait_steps(order_id, "COMPLETED");
    set_mail_password(&panel, &domain);

    // A COMPLETED job is not retryable through the ops API…
    let job_id = order["items"][0]["steps"][0]["job_id"].as_str().unwrap();
    let retry = format!("POST /api/ops/jobs/{job_id}/retry");
    let (status, v) = panel.call(&panel.operator, &retry, None);
    assert_eq!(status, 409, "retrying a COMPLETED job: {v}");
    // …so the same job is delivered again the way a duplicate would be.
    let copy = panel.enqueue_copy(job_id);
    panel.wait_job(&copy);

    // The marketing site retrying the same request gets the same order; a
    // new order for the live domain is refused.
    let (status, again) = panel.post_order(&body, "order-1");
    assert_eq!(status, 201, "{again}");
    assert_eq!(again["order_id"], first["order_id"], "{again}");
    let other = panel.order_body(&domain, &format!("{reference}_2"));
    let (status, v) = panel.post_order(&other, "order-2");
    assert_eq!(status, 422, "a second order for a live domain: {v}");

    // One apex A rrset holding one address.
    let (status, zone) = panel.pdns_zone(&domain);
    assert_eq!(status, 200, "{zone}");
    let apex = format!("{domain}.");
    let a: Vec<_> = zone["rrsets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["name"] == apex.as_str() && r["type"] == "A")
        .collect();
    assert_eq!(a.len(), 1, "{zone:#}");
    assert_eq!(a[0]["records"].as_array().unwrap().len(), 1, "{zone:#}");
    // One vhost.
    let sites_dir = panel.svc.var("WEB_SITES_DIR");
    let vhosts: Vec<_> = std::fs::read_dir(sites_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(&domain))
        .collect();
    assert_eq!(vhosts, [format!("{domain}.conf")]);
    // One passwd line, with the password the customer set still working.
    let passwd = std::fs::read_to_string(panel.svc.var("MAIL_PASSWD_FILE")).unwrap();
    let prefix = format!("{}:", postmaster(&domain));
    assert_eq!(passwd.lines().filter(|l| l.starts_with(&prefix)).count(), 1);
    panel.wait_imap(&postmaster(&domain), true);
    panel.wait_http("still live", &domain, live(&domain));
    panel.find("/api/hosting/accounts", "name", &domain);
    panel.find("/api/mail/accounts", "name", &postmaster(&domain));
}

#[test]
fn a_web_node_refusing_ssh_kills_the_job_and_undoes_the_zone() {
    let panel = Panel::start();
    let key = panel.dir.path().join("wrong");
    let out = Command::new("ssh-keygen")
        .args(["-t", "ed25519", "-N", "", "-q", "-f"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let server = format!("PATCH /api/servers/{}", panel.web_server_id);
    let wrong = panel
        .svc
        .ssh_credentials("WEB_SSH_USER", key.to_str().unwrap());
    let patch = json!({"credentials": wrong});
    panel.expect(200, &panel.operator, &server, Some(patch));

    let domain = unique_domain();
    let order_id = panel.paid_order(&domain);
    let order = panel.wait_steps(&order_id, "DEAD");
    let steps = order["items"][0]["steps"].as_array().unwrap();
    let dead = steps.iter().find(|s| s["state"] == "DEAD").unwrap();
    let error = dead["last_error"].as_str().unwrap_or_default();
    assert!(
        error.to_ascii_lowercase().contains("permission denied"),
        "{order:#}"
    );
    // The tenant's staff see why, not the node's address or SSH user; the
    // platform operator sees it all.
    let node = panel.svc.var("WEB_SSH_HOST");
    let user = panel.svc.var("WEB_SSH_USER");
    assert!(!error.contains(node) && !error.contains(user), "{error}");
    let job = dead["job_id"].as_str().unwrap();
    let raw = panel.expect(
        200,
        &panel.operator,
        &format!("GET /api/ops/jobs/{job}"),
        None,
    );
    let raw = raw["last_error"].to_string();
    assert!(raw.contains(node) || raw.contains(user), "{raw}");

    // The zone the job made before the site failed is gone again.
    assert_eq!(panel.dig(&domain), "", "the zone still answers");
    let (status, zone) = panel.pdns_zone(&domain);
    assert!(matches!(status, 404 | 422), "{status}: {zone}");
    let vhost = Path::new(panel.svc.var("WEB_SITES_DIR")).join(format!("{domain}.conf"));
    assert!(!vhost.exists(), "a vhost was left behind");

    // The operator fixes the key and retries the dead job: it goes live.
    let right = panel
        .svc
        .ssh_credentials("WEB_SSH_USER", panel.svc.var("WEB_SSH_KEY"));
    let patch = json!({"credentials": right});
    panel.expect(200, &panel.operator, &server, Some(patch));
    let job_id = dead["job_id"].as_str().unwrap();
    let retry = format!("POST /api/ops/jobs/{job_id}/retry");
    panel.expect(200, &panel.operator, &retry, None);
    panel.wait_steps(&order_id, "COMPLETED");
    panel.wait_http("live after the retry", &domain, live(&domain));
    assert_eq!(panel.dig(&domain), "127.0.0.1");
}

#[test]
fn an_order_placed_while_powerdns_is_stopped_completes_once_it_is_started_again() {
    let panel = Panel::start();
    // A PowerDNS of this test's own, so stopping it disturbs no other test.
    let mut pdns = crate::own_pdns::OwnPdns::start();
    let servers = panel.expect(200, &panel.operator, "GET /api/servers?role=DNS", None);
    let dns = servers["items"][0]["id"].as_str().unwrap().to_owned();
    let body = json!({"port": pdns.api_port,
        "credentials": {"type": "API", "url": pdns.api_url(), "key": pdns.key}});
    panel.expect(
        200,
        &panel.operator,
        &format!("PATCH /api/servers/{dns}"),
        Some(body),
    );
    pdns.stop();

    let domain = unique_domain();
    let order_id = panel.paid_order(&domain);
    // The job fails, keeps its attempts, and waits to retry (backed off).
    let order = panel.wait_steps(&order_id, "FAILED");
    let error = order["items"][0]["steps"][0]["last_error"]
        .as_str()
        .unwrap_or_default();
    assert!(error.starts_with("dns.zone.create: "), "{order:#}");

    // PowerDNS is started again: the next retry completes the order.
    pdns.resume();
    panel.wait_steps(&order_id, "COMPLETED");
    assert_eq!(pdns.dig(&domain), "127.0.0.1");
    panel.wait_http("live after PowerDNS came back", &domain, live(&domain));
}

#[test]
fn with_no_web_server_online_the_order_shows_why() {
    let panel = Panel::start();
    let route = format!("PATCH /api/servers/{}", panel.web_server_id);
    let body = json!({"status": "MAINTENANCE"});
    panel.expect(200, &panel.operator, &route, Some(body));

    let domain = unique_domain();
    let order_id = panel.paid_order(&domain);
    let order = panel.wait_steps(&order_id, "DEAD");
    let error = order["items"][0]["steps"][0]["last_error"]
        .as_str()
        .unwrap_or_default();
    assert!(error.contains("no WEB server is ONLINE"), "{order:#}");
    // Nothing was made for it.
    assert_eq!(panel.dig(&domain), "");
}

/// A customer staff create (no invitation); its id.
fn staff_customer(panel: &Panel, domain: &str) -> String {
    let body = json!({"email": format!("phone@{domain}"), "name": "Phone Order",
        "country": "DE", "send_invitation": false});
    let v = panel.expect(201, &panel.admin, "POST /api/customers", Some(body));
    v["id"].as_str().unwrap().to_owned()
}

/// The one issued invoice's id.
fn issued_invoice(panel: &Panel) -> String {
    let (_, page) = panel.call(
        &panel.admin,
        "GET /api/billing/invoices?status=ISSUED",
        None,
    );
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{page:#}");
    items[0]["id"].as_str().unwrap().to_owned()
}

#[test]
fn a_subscription_staff_create_goes_live_once_its_invoice_is_paid() {
    let panel = Panel::start();
    let domain = unique_domain();
    let customer = staff_customer(&panel, &domain);
    let body = json!({"customer_id": customer, "product_id": panel.product_id,
        "period": "MONTHLY", "currency": "EUR", "domain": domain});
    let sub = panel.expect(
        201,
        &panel.admin,
        "POST /api/billing/subscriptions",
        Some(body),
    );
    assert_eq!(sub["status"], "PENDING_ACTIVATION", "{sub:#}");
    let order_id = sub["order_id"].as_str().unwrap().to_owned();
    assert!(panel.dig(&domain).is_empty(), "nothing before payment");

    let pay = format!("POST /api/billing/invoices/{}/pay", issued_invoice(&panel));
    let body = json!({"amount_minor": 1500, "provider": "BANK_TRANSFER", "reference": "phone-1"});
    panel.expect(201, &panel.admin, &pay, Some(body));
    panel.wait_steps(&order_id, "COMPLETED");
    eventually("the zone answers", || match panel.dig(&domain) {
        ip if ip == "127.0.0.1" => Ok(()),
        other => Err(other),
    });
    panel.wait_http("the site is served", &domain, live(&domain));
    set_mail_password(&panel, &domain);
    let id = sub["id"].as_str().unwrap();
    let now = panel.expect(
        200,
        &panel.admin,
        &format!("GET /api/billing/subscriptions/{id}"),
        None,
    );
    assert_eq!(now["status"], "ACTIVE", "{now:#}");
    let steps = now["provisioning"].as_array().unwrap();
    assert!(steps.iter().all(|s| s["state"] == "COMPLETED"), "{now:#}");
}

#[test]
fn provisioned_before_payment_a_site_is_suspended_when_its_invoice_stays_unpaid() {
    let panel = Panel::start();
    let domain = unique_domain();
    let customer = staff_customer(&panel, &domain);
    let body = json!({"customer_id": customer, "product_id": panel.product_id,
        "period": "MONTHLY", "currency": "EUR", "domain": domain, "provision_before_payment": true});
    let sub = panel.expect(
        201,
        &panel.admin,
        "POST /api/billing/subscriptions",
        Some(body),
    );
    panel.wait_steps(sub["order_id"].as_str().unwrap(), "COMPLETED");
    panel.wait_http("live before payment", &domain, live(&domain));
    issued_invoice(&panel);

    // Unpaid past its due date and the dunning grace: suspended.
    let overdue =
        time::OffsetDateTime::now_utc() + time::Duration::days(14 + 7) + time::Duration::hours(1);
    let report = panel.billing_run(overdue);
    assert_eq!(report["suspended"], 1, "{report:#}");
    panel.wait_http("suspended for non-payment: 503", &domain, |status, _| {
        status == 503
    });
}
