//! A dunning reminder arrives as mail, through the harness's real
//! Postfix, read back over IMAP.

use mail_parser::MessageParser;

use super::*;
use crate::inbox;

#[tokio::test]
async fn a_dunning_reminder_arrives_by_mail() {
    let app = TestApp::start().await;
    let start = datetime!(2027-09-01 08:00 UTC);
    app.clock.set(start);
    let shop = shop(&app, "remindmail", "UTC").await;
    let plan = product(&app, &shop, "remind-plan", "MONTHLY", 1000, None).await;
    let to = format!("late-{}@customer.test", uuid::Uuid::now_v7().simple());
    let admin = shop.admin(&app).await;
    let late = customer(&app, &admin, &to, "FR", None).await;
    subscribe(
        &app,
        &shop,
        json!({"customer_id": late, "product_id": plan, "period": "MONTHLY"}),
    )
    .await;
    let due = start + Duration::days(14);
    app.clock.set(due - Duration::days(3) + Duration::hours(1));
    assert_eq!(bill(&app, &shop).await.reminders, 1);

    let res = app
        .get_as(
            &admin.access_token,
            "/api/notifications/outbox?status=QUEUED",
        )
        .await;
    let page: Value = res.json().await.unwrap();
    let kinds: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["INVOICE_REMINDER", "INVOICE_ISSUED"],
        "newest first"
    );

    let ran = inbox::run_mail_jobs(&app, &inbox::relay_mailer()).await;
    assert_eq!(ran, vec![Ok(()), Ok(())]);
    let arrived = inbox::messages(&to, 2).await;
    let reminder = arrived
        .iter()
        .map(|raw| MessageParser::default().parse(raw).unwrap())
        .find(|m| m.subject().unwrap().starts_with("Reminder: invoice"))
        .expect("the reminder arrived");
    let text = reminder.body_text(0).unwrap();
    assert!(text.contains("is due on 2027-09-15, in 3 days"), "{text}");
}

#[tokio::test]
async fn the_billing_run_mails_each_invoice_once_in_the_tenants_own_words() {
    let app = TestApp::start().await;
    let start = datetime!(2027-10-01 08:00 UTC);
    app.clock.set(start);
    let shop = shop(&app, "runmail", "UTC").await;
    let plan = product(&app, &shop, "runmail-plan", "MONTHLY", 1000, None).await;
    let admin = shop.admin(&app).await;
    let (customers, addresses): (Vec<String>, Vec<String>) =
        subscribed(&app, &shop, &admin, &plan, ["ana", "ben"])
            .await
            .into_iter()
            .unzip();
    // Ben pays his first invoice well over: the excess is credit, which
    // pays his renewal as the run issues it, and his mail must say so.
    let first = invoices_of(&app, &shop, &customers[1]).await.remove(0);
    let res = post(
        &app,
        &shop,
        &format!(
            "/api/billing/invoices/{}/pay",
            first["id"].as_str().unwrap()
        ),
        json!({"amount_minor": 30_000, "provider": "BANK_TRANSFER"}),
    )
    .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    // The first invoices went out with the built-in words; the run's are
    // to use the tenant's own, set now.
    let settings_token = app.fixture_api_token(&admin, &["ADMIN"]).await;
    let res = app
        .call(
            reqwest::Method::PUT,
            "/api/notifications/templates/INVOICE_ISSUED",
            Some(&settings_token),
            Some(json!({
                "subject": "Your bill {{ number }} from {{ seller_name }}",
                "text": "Dear {{ customer_name }}, {{ amount_due }} by {{ due_date }}.\n",
                "html": "<p>Dear {{ customer_name }}, {{ amount_due }} by {{ due_date }}.</p>\n",
            })),
        )
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    app.clock
        .set(start + Duration::days(31) + Duration::hours(1));
    assert_eq!(bill(&app, &shop).await.invoices, 2);
    assert_eq!(inbox::write_run_copies(&app).await, 1, "one job per chunk");

    let res = app
        .get_as(
            &admin.access_token,
            "/api/notifications/outbox?status=QUEUED",
        )
        .await;
    let page: Value = res.json().await.unwrap();
    let mut own: Vec<(String, String)> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["subject"].as_str().unwrap().starts_with("Your bill "))
        .map(|m| {
            (
                m["recipient"].as_str().unwrap().to_owned(),
                m["subject"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    own.sort();
    assert_eq!(own.len(), 2, "one message per invoice of the run: {page}");
    assert_eq!(own[0].0, addresses[0]);
    assert_eq!(own[1].0, addresses[1]);
    for (customer, (_, subject)) in customers.iter().zip(&own) {
        let renewal = invoices_of(&app, &shop, customer).await.pop().unwrap();
        let number = renewal["number"].as_str().unwrap();
        assert!(
            subject.starts_with(&format!("Your bill {number} from ")),
            "{subject} names {number}"
        );
    }

    // Every queued message (the run's among them) has its delivery job,
    // and the run's arrive.
    let ran = inbox::run_mail_jobs(&app, &inbox::relay_mailer()).await;
    let queued = page["items"].as_array().unwrap().len();
    assert_eq!(ran, vec![Ok(()); queued]);
    for (n, (to, subject)) in own.iter().enumerate() {
        let expected = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["recipient"] == to.as_str())
            .count();
        let arrived = inbox::messages(to, expected).await;
        let run_mail = arrived
            .iter()
            .map(|raw| MessageParser::default().parse(raw).unwrap())
            .find(|m| m.subject() == Some(subject.as_str()))
            .expect("the run's message arrived");
        let text = run_mail.body_text(0).unwrap();
        assert!(text.contains(" EUR by 2027-11-15."), "{text}");
        // Ana owes her renewal; Ben's credit paid his.
        let paid_from_credit = text.contains(", 0.00 EUR by ");
        assert_eq!(paid_from_credit, n == 1, "{to}: {text}");
    }
}

#[tokio::test]
async fn the_runs_copies_are_written_once_and_a_voided_invoice_gets_none() {
    let app = TestApp::start().await;
    let start = datetime!(2027-10-01 08:00 UTC);
    app.clock.set(start);
    let shop = shop(&app, "runcopies", "UTC").await;
    let plan = product(&app, &shop, "runcopies-plan", "MONTHLY", 1000, None).await;
    let admin = shop.admin(&app).await;
    let customers = subscribed(&app, &shop, &admin, &plan, ["cid", "dora"]).await;
    let first_copies = issued_to(&app, &admin.access_token).await;
    assert_eq!(first_copies.len(), 2, "the first invoices' messages");

    app.clock
        .set(start + Duration::days(31) + Duration::hours(1));
    assert_eq!(bill(&app, &shop).await.invoices, 2);
    // Issued, not yet written: the job writes them once the run commits.
    assert_eq!(issued_to(&app, &admin.access_token).await, first_copies);
    // Dora's renewal is voided before the job runs: she gets no message.
    let renewal = invoices_of(&app, &shop, &customers[1].0)
        .await
        .pop()
        .unwrap();
    let res = post(
        &app,
        &shop,
        &format!(
            "/api/billing/invoices/{}/void",
            renewal["id"].as_str().unwrap()
        ),
        json!({}),
    )
    .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());

    let filter = mpanel_store::jobs::JobFilter {
        kind: Some(mpanel_services::notify::invoice_issued::COPIES_JOB.into()),
        ..Default::default()
    };
    let job = app
        .store
        .list_jobs(&filter, None, 10)
        .await
        .unwrap()
        .remove(0);
    let copies: mpanel_services::notify::invoice_issued::InvoiceCopies =
        serde_json::from_value(job.payload).unwrap();
    assert_eq!(copies.copies.len(), 2);
    // A second attempt (the first's outcome lost) writes nothing again.
    for _ in 0..2 {
        mpanel_services::notify::invoice_issued::write_copies(
            &app.store,
            app.clock.as_ref(),
            &copies,
        )
        .await
        .unwrap();
    }
    let mut expected = first_copies.clone();
    expected.push(customers[0].1.clone());
    expected.sort();
    assert_eq!(issued_to(&app, &admin.access_token).await, expected);
    // The one message written has one delivery job.
    let delivering: Vec<_> = inbox::mail_jobs(&app)
        .await
        .into_iter()
        .filter(|j| copies.copies.iter().any(|c| c.1 == j.email_id))
        .collect();
    assert_eq!(delivering.len(), 1, "{delivering:?}");
}

/// A customer in France for each name, each subscribed monthly to `plan`:
/// their ids and addresses.
async fn subscribed<const N: usize>(
    app: &TestApp,
    shop: &Shop,
    admin: &Account,
    plan: &str,
    names: [&str; N],
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for name in names {
        let to = format!("{name}-{}@customer.test", uuid::Uuid::now_v7().simple());
        let id = customer(app, admin, &to, "FR", None).await;
        subscribe(
            app,
            shop,
            json!({"customer_id": id, "product_id": plan, "period": "MONTHLY"}),
        )
        .await;
        out.push((id, to));
    }
    out
}

/// Who the tenant's INVOICE_ISSUED messages are to, sorted.
async fn issued_to(app: &TestApp, token: &str) -> Vec<String> {
    let url = "/api/notifications/outbox?kind=INVOICE_ISSUED&limit=100";
    let page: Value = app.get_as(token, url).await.json().await.unwrap();
    let mut to: Vec<String> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["recipient"].as_str().unwrap().to_owned())
        .collect();
    to.sort();
    to
}
