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
    let mut addresses = Vec::new();
    let mut customers = Vec::new();
    for name in ["ana", "ben"] {
        let to = format!("{name}-{}@customer.test", uuid::Uuid::now_v7().simple());
        let id = customer(&app, &admin, &to, "FR", None).await;
        subscribe(
            &app,
            &shop,
            json!({"customer_id": id, "product_id": plan, "period": "MONTHLY"}),
        )
        .await;
        addresses.push(to);
        customers.push(id);
    }
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
