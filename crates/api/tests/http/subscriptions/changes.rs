//! What staff and metering systems change: plans (prorated), usage, and
//! input that is refused.

use super::*;

#[tokio::test]
async fn a_plan_change_is_prorated_on_one_invoice_and_tells_provisioning() {
    let app = TestApp::start().await;
    app.clock.set(datetime!(2027-04-01 00:00 UTC));
    let shop = shop(&app, "upgrades", "UTC").await;
    let small = product(&app, &shop, "small", "MONTHLY", 1000, None).await;
    let large = product(&app, &shop, "large", "MONTHLY", 3000, None).await;
    let sub = subscribe(
        &app,
        &shop,
        json!({"customer_id": shop.customer, "product_id": small, "period": "MONTHLY"}),
    )
    .await;
    let id = sub["id"].as_str().unwrap();

    // April has 30 days; on the 11th, 20 are left.
    app.clock.set(datetime!(2027-04-11 12:00 UTC));
    let res = app
        .call(
            reqwest::Method::PUT,
            &format!("/api/billing/subscriptions/{id}"),
            Some(&shop.admin(&app).await.access_token),
            Some(json!({"product_id": large})),
        )
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["amount_minor"], 3000);
    assert_eq!(
        body["proration"]["credit_minor"], 667,
        "1000 × 20/30, rounded"
    );
    assert_eq!(body["proration"]["charge_minor"], 2000, "3000 × 20/30");
    let inv = crate::billing::get_invoice(
        &app,
        &shop.admin(&app).await,
        body["proration"]["invoice_id"].as_str().unwrap(),
    )
    .await;
    assert_eq!(inv["status"], "ISSUED");
    assert_eq!(inv["total_minor"], 1333);
    assert_eq!(inv["lines"].as_array().unwrap().len(), 2);
    let resize = app
        .store
        .list_jobs(
            &JobFilter {
                kind: Some("provision.resize".into()),
                ..JobFilter::default()
            },
            None,
            10,
        )
        .await
        .unwrap();
    assert_eq!(resize.len(), 1, "provisioning is told");

    // Back down at the same instant: the credit goes to the balance and the
    // two changes net to zero within a unit per line.
    let res = app
        .call(
            reqwest::Method::PUT,
            &format!("/api/billing/subscriptions/{id}"),
            Some(&shop.admin(&app).await.access_token),
            Some(json!({"product_id": small})),
        )
        .await;
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["proration"]["credit_minor"], 2000);
    assert_eq!(body["proration"]["charge_minor"], 667);
    assert_eq!(body["proration"]["credited_to_balance_minor"], 1333);
    let credit: Value = app
        .get_as(
            &shop.admin(&app).await.access_token,
            &format!("/api/billing/customers/{}/credit", shop.customer),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(credit["balances"][0]["balance_minor"], 1333);

    // The next renewal is at the new price, paid from that credit first.
    app.clock.set(datetime!(2027-05-01 01:00 UTC));
    assert_eq!(bill(&app, &shop).await.invoices, 1);
    let all = invoices(&app, &shop).await;
    let renewal = all.last().unwrap();
    assert_eq!(renewal["total_minor"], 1000);
    assert_eq!(renewal["status"], "PAID", "the customer's credit paid it");
}

#[tokio::test]
async fn usage_is_rated_in_arrears_once_per_key_and_bad_batches_store_nothing() {
    let app = TestApp::start().await;
    app.clock.set(datetime!(2027-06-01 00:00 UTC));
    let shop = shop(&app, "metered", "UTC").await;
    let usage = json!({"metric": "bandwidth_gb", "tier_mode": "GRADUATED",
        "tiers": [{"up_to": 100, "unit_price": "0.02"}, {"unit_price": "0.015"}]});
    let plan = product(&app, &shop, "metered-pod", "MONTHLY", 500, Some(usage)).await;
    let sub = subscribe(
        &app,
        &shop,
        json!({"customer_id": shop.customer, "product_id": plan, "period": "MONTHLY"}),
    )
    .await;
    let id = sub["id"].as_str().unwrap();
    let at = rfc3339(datetime!(2027-06-10 00:00 UTC));
    app.clock.set(datetime!(2027-06-15 00:00 UTC));

    let res = post(&app, &shop, &format!("/api/billing/subscriptions/{id}/usage"),
        json!({"metric": "bandwidth_gb", "quantity": 120, "occurred_at": at, "idempotency_key": "a"})).await;
    assert_eq!(res.status(), 202);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"accepted": 1, "duplicates": 0})
    );
    let batch = json!({"records": [
        {"subscription_id": id, "metric": "bandwidth_gb", "quantity": 120, "occurred_at": at, "idempotency_key": "a"},
        {"subscription_id": id, "metric": "bandwidth_gb", "quantity": 30, "occurred_at": at, "idempotency_key": "b"},
    ]});
    let res = post(&app, &shop, "/api/billing/usage/batch", batch).await;
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"accepted": 1, "duplicates": 1})
    );

    let bad = json!({"records": [
        {"subscription_id": id, "metric": "bandwidth_gb", "quantity": 5, "occurred_at": at, "idempotency_key": "c"},
        {"subscription_id": id, "metric": "cpu_hours", "quantity": 5, "occurred_at": at, "idempotency_key": "d"},
    ]});
    let res = post(&app, &shop, "/api/billing/usage/batch", bad).await;
    assert_eq!(res.status(), 422);
    assert_eq!(
        res.json::<Value>().await.unwrap()["field"],
        "records[1].metric"
    );
    let res = post(&app, &shop, &format!("/api/billing/subscriptions/{id}/usage"),
        json!({"metric": "bandwidth_gb", "quantity": 1.5, "occurred_at": at, "idempotency_key": "e"})).await;
    assert_eq!(res.status(), 422, "a fractional quantity is refused");

    app.clock.set(datetime!(2027-07-01 00:30 UTC));
    assert_eq!(bill(&app, &shop).await.invoices, 1);
    let all = invoices(&app, &shop).await;
    let renewal = all.last().unwrap();
    // 500 in advance + 100 × 0.02 + 50 × 0.015 in arrears (key "c" was never stored).
    assert_eq!(renewal["total_minor"], 500 + 200 + 75);
    let sources: Vec<&str> = renewal["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["source"].as_str().unwrap())
        .collect();
    assert_eq!(sources, ["SUBSCRIPTION", "USAGE", "USAGE"]);

    // Charged once: the next period's invoice has no usage from June.
    app.clock.set(datetime!(2027-08-01 00:30 UTC));
    bill(&app, &shop).await;
    assert_eq!(
        invoices(&app, &shop).await.last().unwrap()["total_minor"],
        500
    );
}

#[tokio::test]
async fn cancelling_a_metered_subscription_now_bills_its_usage_so_far() {
    let app = TestApp::start().await;
    let (shop, id) = metered_subscription(&app, "metered-now").await;
    let id = id.as_str();
    let billed_before = invoices(&app, &shop).await.len();
    app.clock.set(datetime!(2027-06-15 00:00 UTC));
    let at = rfc3339(datetime!(2027-06-10 00:00 UTC));
    assert_eq!(record_usage(&app, &shop, id, "a", &at, 120).await, 202);

    let res = post(
        &app,
        &shop,
        &format!("/api/billing/subscriptions/{id}/cancel"),
        json!({"mode": "IMMEDIATE"}),
    )
    .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    // Billed by a job once the cancellation is committed.
    bill_final_usage(&app).await;
    let last = one_usage_invoice(&app, &shop, billed_before).await;
    assert_eq!(last["status"], "ISSUED");

    // Nothing more is recorded or billed.
    assert_eq!(record_usage(&app, &shop, id, "b", &at, 5).await, 409);
    app.clock.set(datetime!(2027-07-01 00:30 UTC));
    assert_eq!(bill(&app, &shop).await.invoices, 0);
    assert_eq!(invoices(&app, &shop).await.len(), billed_before + 1);
}

#[tokio::test]
async fn a_metered_term_ending_bills_all_its_usage_even_what_came_after_its_end() {
    let app = TestApp::start().await;
    let (shop, id) = metered_subscription(&app, "metered-end").await;
    let id = id.as_str();
    let res = post(
        &app,
        &shop,
        &format!("/api/billing/subscriptions/{id}/cancel"),
        json!({"mode": "END_OF_TERM"}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let billed_before = invoices(&app, &shop).await.len();
    // One record in the term, one after its end (06-30 24:00) but before
    // the run that ends it: the services ran until then.
    app.clock.set(datetime!(2027-07-01 00:20 UTC));
    for (key, at, quantity) in [
        ("in-term", datetime!(2027-06-20 00:00 UTC), 100),
        ("after-end", datetime!(2027-07-01 00:10 UTC), 20),
    ] {
        assert_eq!(
            record_usage(&app, &shop, id, key, &rfc3339(at), quantity).await,
            202
        );
    }
    app.clock.set(datetime!(2027-07-01 00:30 UTC));
    let report = bill(&app, &shop).await;
    assert_eq!((report.ended, report.invoices), (1, 1));
    let all = invoices(&app, &shop).await;
    assert_eq!(all.len(), billed_before + 1);
    assert_eq!(all.last().unwrap()["total_minor"], 120 * 2);
    assert_eq!(get_sub(&app, &shop, id).await["status"], "CANCELLED");
}

#[tokio::test]
async fn a_move_off_a_metered_product_bills_its_usage_so_far_at_the_old_prices() {
    let app = TestApp::start().await;
    let (shop, id) = metered_subscription(&app, "metered-move").await;
    let id = id.as_str();
    let flat = product(&app, &shop, "flat-move", "MONTHLY", 500, None).await;
    app.clock.set(datetime!(2027-06-15 00:00 UTC));
    let at = rfc3339(datetime!(2027-06-10 00:00 UTC));
    assert_eq!(record_usage(&app, &shop, id, "a", &at, 120).await, 202);
    let billed_before = invoices(&app, &shop).await.len();

    let res = app
        .call(
            reqwest::Method::PUT,
            &format!("/api/billing/subscriptions/{id}"),
            Some(&shop.admin(&app).await.access_token),
            Some(json!({"product_id": flat})),
        )
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    // Same price: only the usage is billed.
    one_usage_invoice(&app, &shop, billed_before).await;

    // The renewal under the flat plan has no usage left to rate.
    app.clock.set(datetime!(2027-07-01 00:30 UTC));
    assert_eq!(bill(&app, &shop).await.invoices, 1);
    assert_eq!(
        invoices(&app, &shop).await.last().unwrap()["total_minor"],
        500
    );
}

#[tokio::test]
async fn bad_input_is_refused_and_customers_see_only_their_own() {
    let app = TestApp::start().await;
    let shop = shop(&app, "inputs", "UTC").await;
    let plan = product(&app, &shop, "inputs-plan", "MONTHLY", 1000, None).await;
    for (body, field) in [
        (
            json!({"customer_id": shop.customer, "product_id": plan, "period": "ONE_TIME"}),
            "period",
        ),
        (
            json!({"customer_id": shop.customer, "product_id": plan, "period": "YEARLY"}),
            "product_id",
        ),
        (
            json!({"customer_id": shop.customer, "product_id": uuid::Uuid::now_v7(), "period": "MONTHLY"}),
            "product_id",
        ),
        (
            json!({"customer_id": uuid::Uuid::now_v7(), "product_id": plan, "period": "MONTHLY"}),
            "customer_id",
        ),
    ] {
        let res = post(&app, &shop, "/api/billing/subscriptions", body).await;
        assert_eq!(res.status(), 422);
        assert_eq!(res.json::<Value>().await.unwrap()["field"], field);
    }
    let res = post(
        &app,
        &shop,
        "/api/billing/subscriptions",
        json!({"customer_id": shop.customer, "product_id": plan, "period": "MONTHLY", "price": 1}),
    )
    .await;
    assert_eq!(res.status(), 422, "unknown fields are refused");
    let page: Value = app
        .get_as(
            &shop.admin(&app).await.access_token,
            "/api/billing/subscriptions",
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        page["items"].as_array().unwrap().len(),
        0,
        "nothing was made"
    );

    let sub = subscribe(
        &app,
        &shop,
        json!({"customer_id": shop.customer, "product_id": plan, "period": "MONTHLY"}),
    )
    .await;
    let other = shop_customer_token(&app, &shop).await;
    let mine: Value = app
        .get_as(&other, "/api/me/subscriptions")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        mine["items"].as_array().unwrap().len(),
        0,
        "another customer's subscription is not listed"
    );
    let elsewhere = crate::billing::billing_admin(&app, "elsewhere").await;
    let res = app
        .get_as(
            &elsewhere.access_token,
            &format!("/api/billing/subscriptions/{}", sub["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(
        res.status(),
        404,
        "another tenant's subscription does not exist"
    );
}

/// A signed-in customer of the shop who owns nothing.
async fn shop_customer_token(app: &TestApp, shop: &Shop) -> String {
    let _ = shop;
    app.account("inputs", "someone@inputs.test", Role::Customer)
        .await
        .access_token
}
