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
