//! A run over more due subscriptions than one transaction takes: chunk
//! after chunk (on PostgreSQL two at once).

use super::*;

/// Every due subscription is billed once, the invoice numbers run on
/// without a gap or a repeat, and a second run bills nothing.
#[tokio::test]
async fn a_run_of_many_chunks_bills_each_subscription_once_with_numbers_in_sequence() {
    let app = TestApp::start().await;
    app.clock.set(datetime!(2027-03-01 09:00 UTC));
    let shop = shop(&app, "chunks", "UTC").await;
    let plan = product(&app, &shop, "web-monthly", "MONTHLY", 1000, None).await;
    let admin = shop.admin(&app).await;
    let mut customers = vec![shop.customer.clone()];
    for i in 0..4 {
        let email = format!("c{i}@chunks.test");
        customers.push(customer(&app, &admin, &email, "FR", None).await);
    }
    const SUBSCRIPTIONS: usize = 23;
    for n in 0..SUBSCRIPTIONS {
        let body = json!({"customer_id": customers[n % customers.len()], "product_id": plan, "period": "MONTHLY"});
        subscribe(&app, &shop, body).await;
    }

    app.clock.set(datetime!(2027-04-01 09:00 UTC));
    let scope = RunScope {
        chunk: 4,
        ..RunScope::new(Some(shop.tenant), app.clock.now())
    };
    let report = run(&app.store, app.clock.as_ref(), &scope, &|_| {})
        .await
        .unwrap();
    assert_eq!(
        (report.subscriptions, report.periods, report.invoices),
        (SUBSCRIPTIONS, SUBSCRIPTIONS, SUBSCRIPTIONS)
    );

    // Each customer: a first invoice and a renewal per subscription.
    let mut numbers = Vec::new();
    for (i, customer) in customers.iter().enumerate() {
        let theirs = invoices_of(&app, &shop, customer).await;
        let subscriptions = (i..SUBSCRIPTIONS).step_by(customers.len()).count();
        assert_eq!(theirs.len(), 2 * subscriptions, "customer {i}");
        for inv in theirs {
            let number = inv["number"].as_str().unwrap();
            numbers.push(number.rsplit('-').next().unwrap().parse::<u64>().unwrap());
        }
    }
    numbers.sort_unstable();
    let expected: Vec<u64> = (1..=2 * SUBSCRIPTIONS as u64).collect();
    assert_eq!(numbers, expected, "gapless, each number once");

    let again = run(&app.store, app.clock.as_ref(), &scope, &|_| {})
        .await
        .unwrap();
    assert_eq!((again.periods, again.invoices), (0, 0));
}
