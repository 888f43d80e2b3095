//! E-mail, end to end: an issued invoice is written to the outbox in the
//! issuing transaction, its `notify.email` job sends it through the
//! harness's real Postfix, and the customer's mailbox (read over IMAP,
//! parsed as a mail client would) holds it: the PDF attached (its text
//! holds the invoice number), a DKIM signature that dkimpy verifies
//! against the record `GET /api/notifications/dkim` shows, and one copy
//! however often the job is retried. Without `smtp_url` the message stays,
//! undeliverable; refusals by the SMTP server are recorded.

use mail_parser::{MessageParser, MimeHeaders};
use mpanel_domain::identity::Role;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use crate::billing::{billing_admin, customer, draft, issue};
use crate::inbox::{self, Imap};
use crate::support::{Account, MAIL_FROM, TestApp};

/// A recipient address no other test (or earlier run) uses.
fn fresh_address(who: &str) -> String {
    format!("{who}-{}@customer.test", uuid::Uuid::now_v7().simple())
}

/// Issues a one-line invoice to `customer_id`; answers its number.
async fn issued_invoice(app: &TestApp, admin: &Account, customer_id: &str) -> String {
    let inv = draft(
        app,
        admin,
        json!({"customer_id": customer_id, "lines": [
            {"kind": "ITEM", "description": "Web hosting Pro", "quantity": "1", "unit_price": "9.99"}]}),
    )
    .await;
    let res = issue(app, admin, inv["id"].as_str().unwrap()).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let issued: Value = res.json().await.unwrap();
    issued["number"].as_str().unwrap().to_owned()
}

async fn outbox(app: &TestApp, bearer: &str, query: &str) -> Vec<Value> {
    let res = app
        .get_as(bearer, &format!("/api/notifications/outbox{query}"))
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let page: Value = res.json().await.unwrap();
    page["items"].as_array().unwrap().clone()
}

async fn dkim_record(app: &TestApp, bearer: &str) -> Value {
    let res = app.get_as(bearer, "/api/notifications/dkim").await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    res.json().await.unwrap()
}

#[tokio::test]
async fn an_issued_invoice_arrives_by_mail_signed_with_its_pdf_once() {
    let app = TestApp::start().await;
    let admin = billing_admin(&app, "mailco").await;
    let to = fresh_address("jane");
    let jane = customer(&app, &admin, &to, "DE", None).await;
    let number = issued_invoice(&app, &admin, &jane).await;

    let queued = outbox(&app, &admin.access_token, "").await;
    assert_eq!(queued.len(), 1, "{queued:?}");
    assert_eq!(
        (
            &queued[0]["status"],
            &queued[0]["kind"],
            &queued[0]["recipient"]
        ),
        (&json!("QUEUED"), &json!("INVOICE_ISSUED"), &json!(to))
    );
    assert!(queued[0].get("text_body").is_none(), "no bodies for staff");

    let mailer = inbox::relay_mailer();
    assert_eq!(inbox::run_mail_jobs(&app, &mailer).await, vec![Ok(())]);
    let sent = outbox(&app, &admin.access_token, "").await;
    assert_eq!(
        (&sent[0]["status"], &sent[0]["attempts"]),
        (&json!("SENT"), &json!(1))
    );

    let raw = inbox::messages(&to, 1).await.remove(0);
    let message = MessageParser::default().parse(&raw).unwrap();
    assert!(
        message.subject().unwrap().contains(&number),
        "{:?}",
        message.subject()
    );
    assert_eq!(
        format!("<{}>", message.message_id().unwrap()),
        sent[0]["message_id"].as_str().unwrap()
    );
    assert!(message.body_text(0).unwrap().contains(&number));
    assert!(message.body_html(0).unwrap().contains(&number));
    let pdf = message
        .attachments()
        .find(|a| a.attachment_name() == Some(&format!("{number}.pdf")))
        .expect("the invoice PDF is attached");
    assert!(inbox::pdf_text(pdf.contents()).contains(&number));

    let record = dkim_record(&app, &admin.access_token).await;
    assert_eq!(record["domain"], "mpanel.test");
    // What dkimpy verifies covers the MIME structure too (RFC 6376 §5.4).
    let signature = message
        .header_raw("DKIM-Signature")
        .expect("a DKIM signature")
        .to_ascii_lowercase();
    let signed: String = signature.split_whitespace().collect();
    assert!(
        signed.contains("mime-version") && signed.contains("content-type"),
        "{signature}"
    );
    // The value as DNS holds it: quoted strings of at most 255.
    let quoted = record["value_quoted"].as_str().unwrap();
    let strings: Vec<&str> = quoted.trim_matches('"').split("\" \"").collect();
    assert!(strings.len() >= 2, "{quoted}");
    assert!(strings.iter().all(|s| s.len() <= 255), "{quoted}");
    assert_eq!(strings.concat(), record["value"].as_str().unwrap());
    assert!(
        inbox::dkim_verifies(
            &raw,
            record["record_name"].as_str().unwrap(),
            record["value"].as_str().unwrap()
        ),
        "the DKIM signature verifies against the published key"
    );
    // Another key does not verify it: the check is real.
    let other = billing_admin(&app, "othermail").await;
    let res = app
        .post_as(&other.access_token, "/api/notifications/dkim", json!({}))
        .await;
    let foreign = res.json::<Value>().await.unwrap()["record"].clone();
    assert_ne!(foreign["selector"], record["selector"]);
    assert!(!inbox::dkim_verifies(
        &raw,
        record["record_name"].as_str().unwrap(),
        foreign["value"].as_str().unwrap()
    ));

    // The job retried after the server accepted: nothing is sent again.
    assert_eq!(inbox::run_mail_jobs(&app, &mailer).await, vec![Ok(())]);
    assert_eq!(
        outbox(&app, &admin.access_token, "").await[0]["attempts"],
        1
    );
    // A second invoice arrives after it: two messages, not three.
    let second = issued_invoice(&app, &admin, &jane).await;
    assert_eq!(
        inbox::run_mail_jobs(&app, &mailer).await,
        vec![Ok(()), Ok(())]
    );
    let all = inbox::messages(&to, 2).await;
    assert_eq!(all.len(), 2);
    let last = MessageParser::default().parse(&all[1]).unwrap();
    assert!(last.subject().unwrap().contains(&second));
    assert_eq!(Imap::login(&to).await.search_all().await.len(), 2);
}

#[tokio::test]
async fn the_tenants_sender_signs_for_its_own_domain() {
    let app = TestApp::start().await;
    let admin = billing_admin(&app, "ownsender").await;
    app.store
        .set_tenant_sender(
            admin.tenant_id,
            &mpanel_store::notify::TenantSender {
                name: Some("Own Hosting".into()),
                address: Some("billing@own-hosting.test".into()),
            },
            app.clock_now(),
        )
        .await
        .unwrap();
    let to = fresh_address("sam");
    let sam = customer(&app, &admin, &to, "DE", None).await;
    issued_invoice(&app, &admin, &sam).await;
    assert_eq!(
        inbox::run_mail_jobs(&app, &inbox::relay_mailer()).await,
        vec![Ok(())]
    );
    let raw = inbox::messages(&to, 1).await.remove(0);
    let message = MessageParser::default().parse(&raw).unwrap();
    let from = message.from().unwrap().first().unwrap();
    assert_eq!(
        (from.name(), from.address()),
        (Some("Own Hosting"), Some("billing@own-hosting.test"))
    );
    assert!(message.message_id().unwrap().ends_with("@own-hosting.test"));
    let record = dkim_record(&app, &admin.access_token).await;
    assert_eq!(record["domain"], "own-hosting.test");
    assert!(
        record["record_name"]
            .as_str()
            .unwrap()
            .ends_with("._domainkey.own-hosting.test")
    );
    assert!(inbox::dkim_verifies(
        &raw,
        record["record_name"].as_str().unwrap(),
        record["value"].as_str().unwrap()
    ));
    // The key was made once, audited, its secret nowhere in the row.
    let audit: Value = app
        .get_as(&admin.access_token, "/api/audit?target=dkim_key")
        .await
        .json()
        .await
        .unwrap();
    let rows = audit["items"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{audit}");
    assert_eq!(rows[0]["action"], "dkim.key_create");
    assert_eq!(rows[0]["after"]["domain"], "own-hosting.test");
    assert!(!audit.to_string().contains("PRIVATE KEY"));
}

#[tokio::test]
async fn without_smtp_url_a_message_is_undeliverable_and_visible() {
    let app = TestApp::start().await;
    let admin = billing_admin(&app, "nosmtp").await;
    let jane = customer(&app, &admin, &fresh_address("jane"), "DE", None).await;
    issued_invoice(&app, &admin, &jane).await;
    assert_eq!(
        inbox::run_mail_jobs(&app, &inbox::unconfigured_mailer()).await,
        vec![Ok(())],
        "nothing to retry"
    );
    let kept = outbox(&app, &admin.access_token, "?status=UNDELIVERABLE").await;
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0]["attempts"], 0);
    assert!(kept[0]["last_error"].as_str().unwrap().contains("smtp_url"));
    assert!(
        outbox(&app, &admin.access_token, "?status=SENT")
            .await
            .is_empty()
    );
    let res = app
        .get_as(&admin.access_token, "/api/notifications/outbox?status=LOST")
        .await;
    assert_eq!(res.status(), 422);

    // Once mail is set up, staff send it again: it arrives.
    let resend = format!(
        "/api/notifications/outbox/{}/resend",
        kept[0]["id"].as_str().unwrap()
    );
    let other = billing_admin(&app, "elsewhere").await;
    assert_eq!(
        app.post_as(&other.access_token, &resend, json!({}))
            .await
            .status(),
        404
    );
    let support = app
        .account("nosmtp", "support@nosmtp.test", Role::Support)
        .await;
    assert_eq!(
        app.post_as(&support.access_token, &resend, json!({}))
            .await
            .status(),
        403
    );
    let res = app.post_as(&admin.access_token, &resend, json!({})).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "QUEUED");
    let sent = inbox::run_mail_jobs(&app, &inbox::relay_mailer()).await;
    assert!(sent.iter().all(Result::is_ok), "{sent:?}");
    let to = kept[0]["recipient"].as_str().unwrap();
    assert_eq!(inbox::messages(to, 1).await.len(), 1);
    assert_eq!(
        outbox(&app, &admin.access_token, "?status=SENT")
            .await
            .len(),
        1
    );
    let res = app.post_as(&admin.access_token, &resend, json!({})).await;
    assert_eq!(res.status(), 409, "delivered: not again");
    let res = app
        .get_as(&admin.access_token, "/api/notifications/outbox?colour=red")
        .await;
    assert_eq!(res.status(), 422, "an unknown filter is refused");
}

#[tokio::test]
async fn another_tenant_sees_nothing_and_a_role_without_the_permission_is_refused() {
    let app = TestApp::start().await;
    let admin = billing_admin(&app, "mine").await;
    let jane = customer(&app, &admin, &fresh_address("jane"), "DE", None).await;
    issued_invoice(&app, &admin, &jane).await;
    assert_eq!(outbox(&app, &admin.access_token, "").await.len(), 1);

    let other = billing_admin(&app, "theirs").await;
    assert!(outbox(&app, &other.access_token, "").await.is_empty());
    let support = app
        .account("mine", "support@mine.test", Role::Support)
        .await;
    assert_eq!(outbox(&app, &support.access_token, "").await.len(), 1);
    for role in [Role::SuperAdmin, Role::Customer] {
        let email = format!("{}@mine.test", role.as_str().to_ascii_lowercase());
        let who = app.account("mine", &email, role).await;
        for path in ["/api/notifications/outbox", "/api/notifications/dkim"] {
            let res = app.get_as(&who.access_token, path).await;
            assert_eq!(res.status(), 403, "{role:?} {path}");
        }
    }
}

/// An SMTP server that answers every RCPT TO with `answer`.
async fn refusing_smtp(answer: &'static str) -> u16 {
    fake_smtp(Box::leak(Box::new([("RCPT", answer)]))).await
}

/// An SMTP server that offers AUTH PLAIN and answers each command in
/// `answers` (by its first four letters) as given, anything else with 250.
async fn fake_smtp(answers: &'static [(&'static str, &'static str)]) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 fake ESMTP\r\n").await.unwrap();
                while let Ok(Some(line)) = lines.next_line().await {
                    let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                    let given = answers.iter().find(|(v, _)| *v == verb).map(|(_, a)| *a);
                    let reply = match (verb.as_str(), given) {
                        (_, Some(answer)) => answer,
                        ("EHLO", None) => "250-fake\r\n250 AUTH PLAIN LOGIN\r\n",
                        ("HELO", None) => "250 fake\r\n",
                        ("QUIT", None) => "221 bye\r\n",
                        _ => "250 ok\r\n",
                    };
                    if write.write_all(reply.as_bytes()).await.is_err() || verb == "QUIT" {
                        break;
                    }
                }
            });
        }
    });
    port
}

fn mailer_at(url: &str) -> mpanel_services::notify::Mailer {
    mpanel_services::notify::Mailer::new(
        mpanel_services::notify::MailSettings::new(Some(url), MAIL_FROM).unwrap(),
    )
    .unwrap()
}

/// Runs each `notify.email` job once as its last attempt.
async fn run_last_attempt(
    app: &TestApp,
    mailer: &mpanel_services::notify::Mailer,
) -> Vec<Result<(), String>> {
    let mut out = Vec::new();
    for job in inbox::mail_jobs(app).await {
        let done =
            mpanel_services::notify::deliver(&app.store, app.clock.as_ref(), mailer, &job, true)
                .await;
        out.push(done.map_err(|e| e.to_string()));
    }
    out
}

#[tokio::test]
async fn a_message_whose_outcome_was_lost_is_not_sent_again_but_unknown() {
    let app = TestApp::start().await;
    let admin = billing_admin(&app, "lostmail").await;
    let to = fresh_address("jane");
    let jane = customer(&app, &admin, &to, "DE", None).await;
    issued_invoice(&app, &admin, &jane).await;
    let mailer = inbox::relay_mailer();
    assert_eq!(inbox::run_mail_jobs(&app, &mailer).await, vec![Ok(())]);
    assert_eq!(inbox::messages(&to, 1).await.len(), 1);

    // The server accepted it, but writing SENT never happened (a crash, a
    // lapsed lease, a database error): the row is left as the sending
    // attempt claimed it.
    app.store
        .execute_raw_for_tests(&format!(
            "UPDATE email_outbox SET status = 'SENDING', sent_at = NULL WHERE recipient = '{to}'"
        ))
        .await
        .unwrap();
    assert_eq!(inbox::run_mail_jobs(&app, &mailer).await, vec![Ok(())]);
    let row = &outbox(&app, &admin.access_token, "").await[0];
    assert_eq!(
        (&row["status"], &row["attempts"]),
        (&json!("UNKNOWN"), &json!(1))
    );
    assert!(
        row["last_error"]
            .as_str()
            .unwrap()
            .contains("may or may not have been delivered"),
        "{row}"
    );
    // Another retry changes nothing; no second copy arrives.
    assert_eq!(inbox::run_mail_jobs(&app, &mailer).await, vec![Ok(())]);
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(Imap::login(&to).await.search_all().await.len(), 1);
    assert_eq!(
        outbox(&app, &admin.access_token, "?status=UNKNOWN")
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn a_refused_login_or_starttls_is_retried_not_failed() {
    let app = TestApp::start().await;
    let admin = billing_admin(&app, "badlogin").await;
    let jane = customer(&app, &admin, &fresh_address("jane"), "DE", None).await;
    issued_invoice(&app, &admin, &jane).await;

    // A wrong password (535 to AUTH): the configuration's fault, retried.
    let port = fake_smtp(&[("AUTH", "535 5.7.8 Authentication credentials invalid\r\n")]).await;
    let wrong = mailer_at(&format!("smtp://mailer:wrong-pw@127.0.0.1:{port}"));
    let ran = inbox::run_mail_jobs(&app, &wrong).await;
    assert!(ran[0].as_ref().unwrap_err().contains("535"), "{ran:?}");
    let row = &outbox(&app, &admin.access_token, "").await[0];
    assert_eq!(
        (&row["status"], &row["attempts"]),
        (&json!("QUEUED"), &json!(1))
    );
    assert!(
        row["last_error"]
            .as_str()
            .unwrap()
            .contains("Authentication credentials invalid")
    );

    // 530 (STARTTLS required) to MAIL FROM: also the configuration's.
    let port = fake_smtp(&[("MAIL", "530 5.7.0 Must issue a STARTTLS command first\r\n")]).await;
    let ran = inbox::run_mail_jobs(&app, &mailer_at(&format!("smtp://127.0.0.1:{port}"))).await;
    assert!(ran[0].as_ref().unwrap_err().contains("530"), "{ran:?}");
    let row = &outbox(&app, &admin.access_token, "").await[0];
    assert_eq!(
        (&row["status"], &row["attempts"]),
        (&json!("QUEUED"), &json!(2))
    );

    // The last attempt gives up: FAILED, the error kept.
    let ran = run_last_attempt(&app, &wrong).await;
    assert!(ran[0].is_err(), "{ran:?}");
    let row = &outbox(&app, &admin.access_token, "").await[0];
    assert_eq!(
        (&row["status"], &row["attempts"]),
        (&json!("FAILED"), &json!(3))
    );
    assert!(row["last_error"].as_str().unwrap().contains("535"));
}

#[tokio::test]
async fn an_error_before_sending_is_recorded_and_the_last_attempt_fails_it() {
    let app = TestApp::start().await;
    let admin = billing_admin(&app, "unsignable").await;
    let jane = customer(&app, &admin, &fresh_address("jane"), "DE", None).await;
    issued_invoice(&app, &admin, &jane).await;
    // The tenant's DKIM key cannot be opened (damaged at rest).
    let res = app
        .post_as(&admin.access_token, "/api/notifications/dkim", json!({}))
        .await;
    assert_eq!(res.status(), 200);
    app.store
        .execute_raw_for_tests("UPDATE dkim_keys SET private_key = 'damaged'")
        .await
        .unwrap();
    let mailer = inbox::relay_mailer();

    let ran = inbox::run_mail_jobs(&app, &mailer).await;
    assert!(ran[0].is_err(), "{ran:?}");
    let row = &outbox(&app, &admin.access_token, "").await[0];
    assert_eq!(
        (&row["status"], &row["attempts"]),
        (&json!("QUEUED"), &json!(0)),
        "{row}"
    );
    assert!(
        row["last_error"]
            .as_str()
            .unwrap()
            .contains("before sending"),
        "{row}"
    );

    let ran = run_last_attempt(&app, &mailer).await;
    assert!(ran[0].is_err(), "{ran:?}");
    let row = &outbox(&app, &admin.access_token, "").await[0];
    assert_eq!(
        (&row["status"], &row["attempts"]),
        (&json!("FAILED"), &json!(0)),
        "{row}"
    );
    assert!(row["last_error"].as_str().is_some(), "{row}");
}

#[tokio::test]
async fn smtp_refusals_are_recorded_transient_ones_retried() {
    let app = TestApp::start().await;
    let admin = billing_admin(&app, "refused").await;
    let jane = customer(&app, &admin, &fresh_address("jane"), "DE", None).await;
    issued_invoice(&app, &admin, &jane).await;
    let mailer = |port: u16| mailer_at(&format!("smtp://127.0.0.1:{port}"));

    // 4xx: kept QUEUED for the job's next attempt, the error recorded.
    let busy = mailer(refusing_smtp("451 4.3.0 try again later\r\n").await);
    let ran = inbox::run_mail_jobs(&app, &busy).await;
    assert!(ran[0].as_ref().unwrap_err().contains("451"), "{ran:?}");
    let row = &outbox(&app, &admin.access_token, "").await[0];
    assert_eq!(
        (&row["status"], &row["attempts"]),
        (&json!("QUEUED"), &json!(1))
    );
    assert!(
        row["last_error"]
            .as_str()
            .unwrap()
            .contains("try again later")
    );

    // 5xx: FAILED at once.
    let gone = mailer(refusing_smtp("550 5.1.1 no such user\r\n").await);
    let ran = inbox::run_mail_jobs(&app, &gone).await;
    assert!(ran[0].as_ref().unwrap_err().contains("550"), "{ran:?}");
    let row = &outbox(&app, &admin.access_token, "").await[0];
    assert_eq!(
        (&row["status"], &row["attempts"]),
        (&json!("FAILED"), &json!(2))
    );
    assert!(row["last_error"].as_str().unwrap().contains("no such user"));
    // The Message-ID was fixed at the first attempt and kept.
    assert!(
        row["message_id"]
            .as_str()
            .unwrap()
            .ends_with("@mpanel.test>")
    );
}

#[tokio::test]
async fn the_dkim_record_is_published_in_the_tenants_own_zone_and_verifies_from_dns() {
    let app = TestApp::start().await;
    let ops = app
        .account("dkimco", "ops@dkimco.test", Role::SuperAdmin)
        .await;
    let admin = app
        .account("dkimco", "admin@dkimco.test", Role::TenantAdmin)
        .await;
    let (pdns, zone) = crate::dns_records::live_zone(&app, &ops, &admin, "dkimco").await;
    let domain = zone.trim_end_matches('.').to_owned();
    let res = app
        .call(
            reqwest::Method::PATCH,
            &format!("/api/tenants/{}", admin.tenant_id),
            Some(&ops.access_token),
            Some(json!({"sender_name": "DKIM Co", "sender_address": format!("hello@{domain}")})),
        )
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());

    // No key yet: reading does not make one; publishing does.
    let res = app
        .get_as(&admin.access_token, "/api/notifications/dkim")
        .await;
    assert_eq!(res.status(), 404);
    let support = app
        .account("dkimco", "support@dkimco.test", Role::Support)
        .await;
    let res = app
        .post_as(&support.access_token, "/api/notifications/dkim", json!({}))
        .await;
    assert_eq!(res.status(), 403);
    let res = app
        .post_as(&admin.access_token, "/api/notifications/dkim", json!({}))
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let published: Value = res.json().await.unwrap();
    assert_eq!(published["published_in_zone"], json!(zone));
    let record = &published["record"];
    assert_eq!(record["domain"], json!(domain));
    let name = record["record_name"].as_str().unwrap();
    let dns_port = std::env::var("PDNS_DNS_PORT").unwrap();
    crate::dns_records::dig_until(
        &dns_port,
        name,
        "TXT",
        record["value_quoted"].as_str().unwrap(),
    )
    .await;
    // Another tenant's publishing touches only its own (it has no zone).
    let billing = app
        .account("dkimco", "billing@dkimco.test", Role::Billing)
        .await;
    let res = app
        .post_as(&billing.access_token, "/api/notifications/dkim", json!({}))
        .await;
    assert_eq!(res.status(), 403, "BILLING cannot publish");
    let other_admin = app
        .account("nozone", "admin@nozone.test", Role::TenantAdmin)
        .await;
    let res = app
        .post_as(
            &other_admin.access_token,
            "/api/notifications/dkim",
            json!({}),
        )
        .await;
    let theirs: Value = res.json().await.unwrap();
    assert_eq!(theirs["published_in_zone"], Value::Null);

    // A message from the tenant verifies against what DNS answers.
    let to = fresh_address("dee");
    let dee = customer(&app, &admin, &to, "DE", None).await;
    issued_invoice(&app, &admin, &dee).await;
    let sent = inbox::run_mail_jobs(&app, &inbox::relay_mailer()).await;
    assert!(sent.iter().all(Result::is_ok), "{sent:?}");
    let raw = inbox::messages(&to, 1).await.remove(0);
    let from_dns = crate::dns_records::dig(&dns_port, name, "TXT").await;
    let joined: String = from_dns
        .split("\" \"")
        .map(|s| s.trim_matches('"'))
        .collect();
    assert_eq!(joined, record["value"].as_str().unwrap());
    assert!(inbox::dkim_verifies(&raw, name, &joined));
    pdns.delete_zone(&zone).await.unwrap();
}
