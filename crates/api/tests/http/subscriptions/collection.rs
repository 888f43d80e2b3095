//! Getting paid: dunning (reminders, suspension, termination, restoration
//! on payment) and auto-pay with a saved card.

use super::*;

#[tokio::test]
async fn dunning_reminds_once_suspends_terminates_and_payment_restores() {
    let app = TestApp::start().await;
    let start = datetime!(2027-09-01 08:00 UTC);
    app.clock.set(start);
    let shop = shop(&app, "dunning", "UTC").await;
    let plan = product(&app, &shop, "dunning-plan", "MONTHLY", 1000, None).await;
    let body = json!({"customer_id": shop.customer, "product_id": plan, "period": "MONTHLY"});
    let paid_late = subscribe(&app, &shop, body.clone()).await;
    let never = subscribe(&app, &shop, body).await;
    let (paid_id, never_id) = (
        paid_late["id"].as_str().unwrap(),
        never["id"].as_str().unwrap(),
    );
    let all = invoices(&app, &shop).await;
    let invoice_of = |sub: &str| {
        all.iter()
            .find(|i| i["lines"][0]["subscription_id"] == sub)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (paid_invoice, never_invoice) = (invoice_of(paid_id), invoice_of(never_id));
    let due = start + Duration::days(14);

    app.clock.set(due - Duration::days(3) + Duration::hours(1));
    assert_eq!(
        bill(&app, &shop).await.reminders,
        2,
        "3 days before the due date"
    );
    assert_eq!(bill(&app, &shop).await.reminders, 0, "never twice");
    app.clock.set(due + Duration::days(1) + Duration::hours(1));
    assert_eq!(bill(&app, &shop).await.reminders, 2);
    app.clock.set(due + Duration::days(7) + Duration::hours(1));
    let report = bill(&app, &shop).await;
    assert_eq!(
        (report.reminders, report.suspended),
        (2, 2),
        "+3 skipped, +7 sent, suspended"
    );
    assert_eq!(get_sub(&app, &shop, paid_id).await["status"], "SUSPENDED");
    assert_eq!(
        get_sub(&app, &shop, paid_id).await["suspend_reason"],
        "DUNNING"
    );
    let reminders = app
        .store
        .list_jobs(
            &JobFilter {
                kind: Some("billing.invoice_reminder".into()),
                ..JobFilter::default()
            },
            None,
            50,
        )
        .await
        .unwrap();
    assert_eq!(
        reminders.len(),
        6,
        "three reminders sent per invoice, none twice"
    );

    // Paying restores at once.
    let res = post(
        &app,
        &shop,
        &format!("/api/billing/invoices/{paid_invoice}/pay"),
        json!({"amount_minor": 1000, "provider": "BANK_TRANSFER"}),
    )
    .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let restored = get_sub(&app, &shop, paid_id).await;
    assert_eq!(
        (restored["status"].as_str(), &restored["suspend_reason"]),
        (Some("ACTIVE"), &Value::Null)
    );

    // 30 days overdue: terminated and cancelled.
    app.clock.set(due + Duration::days(30) + Duration::hours(1));
    let report = bill(&app, &shop).await;
    assert_eq!(report.terminated, 1);
    assert_eq!(get_sub(&app, &shop, never_id).await["status"], "CANCELLED");
    // It meters nothing: its final usage job bills nothing.
    let billed = invoices(&app, &shop).await.len();
    bill_final_usage(&app).await;
    assert_eq!(invoices(&app, &shop).await.len(), billed);
    let actions = app.store.audit_actions(shop.tenant).await.unwrap();
    for action in [
        "invoice.reminder",
        "invoice.dunning_suspend",
        "invoice.dunning_terminate",
        "subscription.resume",
    ] {
        assert!(actions.iter().any(|a| a == action), "{action} audited");
    }
    let _ = never_invoice;
}

/// Dunning's termination of a metered subscription bills all its usage not
/// yet billed (by a job, once the termination is committed): nothing else
/// ever would.
#[tokio::test]
async fn dunning_terminating_a_metered_subscription_bills_its_usage_so_far() {
    let app = TestApp::start().await;
    let (shop, id, billed_before) = metered_and_overdue(&app, "dunning-metered", false).await;

    // 30 days past the first invoice's due date: terminated.
    app.clock.set(datetime!(2027-07-15 01:00 UTC));
    let report = bill(&app, &shop).await;
    assert_eq!(report.terminated, 1);
    assert_eq!(get_sub(&app, &shop, &id).await["status"], "CANCELLED");
    // Its usage is billed by a job once the cancellation is committed.
    let at = rfc3339(datetime!(2027-07-05 00:00 UTC));
    assert_eq!(record_usage(&app, &shop, &id, "late", &at, 5).await, 409);
    bill_final_usage(&app).await;
    let last = one_usage_invoice(&app, &shop, billed_before).await;
    assert_eq!(last["status"], "ISSUED");

    // Nothing more is billed, by the job again or the next run.
    bill_final_usage(&app).await;
    app.clock.set(datetime!(2027-08-01 00:30 UTC));
    assert_eq!(bill(&app, &shop).await.invoices, 0);
    assert_eq!(invoices(&app, &shop).await.len(), billed_before + 1);
}

/// The customer's credit pays that last invoice, and paying it restores
/// nothing: the subscription is cancelled before its usage is billed.
#[tokio::test]
async fn dunning_terminating_a_metered_subscription_pays_its_usage_from_credit_and_restores_nothing()
 {
    let app = TestApp::start().await;
    let (shop, id, billed_before) = metered_and_overdue(&app, "dunning-credit", true).await;
    app.clock.set(datetime!(2027-07-15 01:00 UTC));
    assert_eq!(bill(&app, &shop).await.terminated, 1);
    bill_final_usage(&app).await;
    assert_eq!(get_sub(&app, &shop, &id).await["status"], "CANCELLED");
    let last = one_usage_invoice(&app, &shop, billed_before).await;
    assert_eq!(last["status"], "PAID");
    assert_nothing_resumed(&app, &shop).await;
}

/// Staff cancelling now a subscription dunning suspended: the same, its
/// usage paid from credit restores nothing.
#[tokio::test]
async fn cancelling_now_a_suspended_metered_subscription_pays_its_usage_from_credit_and_restores_nothing()
 {
    let app = TestApp::start().await;
    let (shop, id, billed_before) = metered_and_overdue(&app, "cancel-credit", true).await;
    let sub = get_sub(&app, &shop, &id).await;
    assert_eq!(
        (&sub["status"], &sub["suspend_reason"]),
        (&json!("SUSPENDED"), &json!("DUNNING"))
    );
    let res = post(
        &app,
        &shop,
        &format!("/api/billing/subscriptions/{id}/cancel"),
        json!({"mode": "IMMEDIATE"}),
    )
    .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "CANCELLED");
    bill_final_usage(&app).await;
    let last = one_usage_invoice(&app, &shop, billed_before).await;
    assert_eq!(last["status"], "PAID");
    assert_nothing_resumed(&app, &shop).await;
}

/// A payment restoring a subscription that is being cancelled meanwhile
/// (here: a transaction that cancelled it and has not committed, as
/// dunning's termination or staff would) waits for the cancellation and
/// leaves the subscription cancelled, not brought back to life.
#[tokio::test]
async fn a_payment_restoring_a_subscription_being_cancelled_leaves_it_cancelled() {
    use mpanel_domain::SubscriptionId;
    use mpanel_domain::billing::subscription::SubscriptionStatus;
    let app = TestApp::start().await;
    let (shop, id, _) = metered_and_overdue(&app, "restore-race", false).await;
    assert_eq!(get_sub(&app, &shop, &id).await["suspend_reason"], "DUNNING");
    let first = invoices(&app, &shop).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let sub_id = SubscriptionId::from_uuid(id.parse().unwrap());
    let token = shop.admin(&app).await.access_token;
    let mut cancelling = app.store.begin().await.unwrap();
    let mut sub = cancelling
        .subscription_for_update(shop.tenant, sub_id)
        .await
        .unwrap()
        .unwrap();
    sub.status = SubscriptionStatus::Cancelled;
    sub.next_bill_at = None;
    cancelling.save_subscription(&sub).await.unwrap();

    let paying = tokio::spawn({
        let url = app.url(&format!("/api/billing/invoices/{first}/pay"));
        async move {
            reqwest::Client::new()
                .post(url)
                .bearer_auth(token)
                .json(&json!({"amount_minor": 500, "provider": "BANK_TRANSFER"}))
                .send()
                .await
                .unwrap()
                .status()
        }
    });
    // On PostgreSQL, until the payment waits for the subscription's lock
    // (SQLite's writer waits for the transaction as a whole).
    if app.store.engine() == mpanel_store::Engine::Postgres {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while app.store.lock_waits_for_tests().await.unwrap() == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the payment never waited"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    } else {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    cancelling.commit().await.unwrap();
    assert_eq!(paying.await.unwrap(), 201);
    assert_eq!(get_sub(&app, &shop, &id).await["status"], "CANCELLED");
    assert_nothing_resumed(&app, &shop).await;
}

/// A subscription dunning suspended for an overdue invoice stays
/// suspended when another of its invoices (the next renewal) is paid; it is
/// restored when the overdue one is.
#[tokio::test]
async fn paying_a_later_invoice_leaves_a_dunning_suspension_until_the_overdue_one_is_paid() {
    let app = TestApp::start().await;
    let (shop, id, _) = metered_and_overdue(&app, "dunned-until-paid", false).await;
    assert_eq!(get_sub(&app, &shop, &id).await["suspend_reason"], "DUNNING");
    let all = invoices(&app, &shop).await;
    let (june, july) = (&all[0], &all[1]);
    assert_eq!(july["status"], "ISSUED", "{july:#}");
    let pay = |inv: &Value| {
        let route = format!("/api/billing/invoices/{}/pay", inv["id"].as_str().unwrap());
        let amount = inv["total_minor"].clone();
        let (app, shop) = (&app, &shop);
        async move {
            let res = post(
                app,
                shop,
                &route,
                json!({"amount_minor": amount, "provider": "BANK_TRANSFER"}),
            )
            .await;
            assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
        }
    };
    pay(july).await;
    let sub = get_sub(&app, &shop, &id).await;
    assert_eq!(
        (sub["status"].as_str(), sub["suspend_reason"].as_str()),
        (Some("SUSPENDED"), Some("DUNNING")),
        "June is still unpaid"
    );
    assert_nothing_resumed(&app, &shop).await;
    pay(june).await;
    let sub = get_sub(&app, &shop, &id).await;
    assert_eq!(sub["status"], "ACTIVE", "{sub:#}");
}

/// A plan change of a subscription dunning suspended, whose invoices (the
/// old plan's usage, the proration) are paid from credit, keeps what that
/// payment restored: nothing else keeps it suspended (no open invoice of
/// its was dunned), so it is `ACTIVE` on its new plan, as its audit says.
#[tokio::test]
async fn a_plan_change_paid_from_credit_keeps_the_restore_it_brings() {
    use mpanel_domain::SubscriptionId;
    use mpanel_domain::billing::subscription::SubscriptionStatus;
    let app = TestApp::start().await;
    let (shop, id, _) = metered_and_overdue(&app, "change-restores", true).await;
    // Its June invoice paid, but the suspension left in place (as voiding
    // June left it before voids lifted suspensions).
    let june = invoices(&app, &shop).await[0].clone();
    let route = format!("/api/billing/invoices/{}/pay", june["id"].as_str().unwrap());
    let res = post(
        &app,
        &shop,
        &route,
        json!({"amount_minor": june["total_minor"], "provider": "BANK_TRANSFER"}),
    )
    .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let mut tx = app.store.begin().await.unwrap();
    let sub_id = SubscriptionId::from_uuid(id.parse().unwrap());
    let mut sub = tx
        .subscription_for_update(shop.tenant, sub_id)
        .await
        .unwrap()
        .unwrap();
    sub.status = SubscriptionStatus::Suspended;
    sub.suspend_reason = Some("DUNNING".into());
    tx.save_subscription(&sub).await.unwrap();
    tx.commit().await.unwrap();
    let resumed = |actions: &[String]| {
        actions
            .iter()
            .filter(|a| *a == "subscription.resume")
            .count()
    };
    let before = resumed(&app.store.audit_actions(shop.tenant).await.unwrap());
    let usage = json!({"metric": "bandwidth_gb", "tier_mode": "GRADUATED",
        "tiers": [{"unit_price": "0.02"}]});
    let larger = product(
        &app,
        &shop,
        "change-restores-xl",
        "MONTHLY",
        1000,
        Some(usage),
    )
    .await;
    let res = app
        .call(
            reqwest::Method::PUT,
            &format!("/api/billing/subscriptions/{id}"),
            Some(&shop.admin(&app).await.access_token),
            Some(json!({"product_id": larger})),
        )
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let sub = get_sub(&app, &shop, &id).await;
    assert_eq!(
        (sub["status"].as_str(), sub["product_id"].as_str()),
        (Some("ACTIVE"), Some(larger.as_str())),
        "{sub:#}"
    );
    let actions = app.store.audit_actions(shop.tenant).await.unwrap();
    assert_eq!(resumed(&actions), before + 1, "{actions:?}");
}

/// Voiding the invoice a subscription was suspended for lifts the
/// suspension (nothing else keeps it suspended).
#[tokio::test]
async fn voiding_the_overdue_invoice_lifts_its_dunning_suspension() {
    let app = TestApp::start().await;
    let (shop, id, _) = metered_and_overdue(&app, "void-restores", false).await;
    assert_eq!(get_sub(&app, &shop, &id).await["suspend_reason"], "DUNNING");
    let june = invoices(&app, &shop).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = post(
        &app,
        &shop,
        &format!("/api/billing/invoices/{june}/void"),
        json!({}),
    )
    .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let sub = get_sub(&app, &shop, &id).await;
    assert_eq!(
        (sub["status"].as_str(), &sub["suspend_reason"]),
        (Some("ACTIVE"), &Value::Null)
    );
}

/// Dunning takes no lock on a page whose steps were all taken already: a
/// payment in flight on one of its invoices (which holds the invoice) does
/// not hold the run up. On PostgreSQL; SQLite's writes take turns anyway.
#[tokio::test]
async fn dunning_waits_for_no_payment_once_its_steps_are_taken() {
    use mpanel_domain::InvoiceId;
    let app = TestApp::start().await;
    let (shop, id, _) = metered_and_overdue(&app, "dunning-idle", false).await;
    assert_eq!(get_sub(&app, &shop, &id).await["suspend_reason"], "DUNNING");
    if app.store.engine() != mpanel_store::Engine::Postgres {
        return;
    }
    let first = invoices(&app, &shop).await[0]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let mut paying = app.store.begin().await.unwrap();
    paying
        .invoice_for_update(shop.tenant, InvoiceId::from_uuid(first))
        .await
        .unwrap()
        .unwrap();
    // Suspended on 06-22; terminated from 07-15 on.
    app.clock.set(datetime!(2027-07-12 00:00 UTC));
    let report = tokio::time::timeout(std::time::Duration::from_secs(30), bill(&app, &shop))
        .await
        .expect("the run waited for the payment's invoice");
    assert_eq!((report.suspended, report.terminated), (0, 0));
    paying.rollback().await.unwrap();
}

/// A metered subscription started 2027-06-01 whose first invoice (due
/// 06-15) is never paid, renewed for July, with 120 units used on 07-05;
/// with `credit`, its customer then has credit (a manual invoice paid
/// twice over). The invoices so far.
async fn metered_and_overdue(app: &TestApp, slug: &str, credit: bool) -> (Shop, String, usize) {
    let (shop, id) = metered_subscription(app, slug).await;
    app.clock.set(datetime!(2027-07-01 00:30 UTC));
    assert_eq!(bill(app, &shop).await.invoices, 1, "July renews");
    app.clock.set(datetime!(2027-07-10 00:00 UTC));
    let at = rfc3339(datetime!(2027-07-05 00:00 UTC));
    assert_eq!(record_usage(app, &shop, &id, "july", &at, 120).await, 202);
    if credit {
        let admin = shop.admin(app).await;
        let inv = crate::billing::draft(
            app,
            &admin,
            json!({"customer_id": shop.customer, "lines": [
                {"kind": "ITEM", "description": "Setup", "quantity": 1, "unit_price": "1.00"}]}),
        )
        .await;
        let inv = inv["id"].as_str().unwrap();
        assert_eq!(crate::billing::issue(app, &admin, inv).await.status(), 200);
        let res = post(
            app,
            &shop,
            &format!("/api/billing/invoices/{inv}/pay"),
            json!({"amount_minor": 1000, "provider": "BANK_TRANSFER"}),
        )
        .await;
        assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    }
    let billed = invoices(app, &shop).await.len();
    (shop, id, billed)
}

#[tokio::test]
async fn a_saved_card_is_charged_off_session_and_a_decline_is_retried_later() {
    use mpanel_services::billing::autopay::{Autopay, attempt};
    let app = TestApp::start().await;
    app.clock.set(datetime!(2027-03-01 10:00 UTC));
    let shop = shop(&app, "autopay", "UTC").await;
    put_settings(
        &app,
        &shop.admin(&app).await,
        json!({"stripe_secret_key": "sk_test_abc"}),
    )
    .await;
    let plan = product(&app, &shop, "autopay-plan", "MONTHLY", 2500, None).await;
    let save = |pm: &str| json!({"stripe_customer_id": "cus_123", "stripe_payment_method_id": pm});
    let card_route = format!("/api/billing/customers/{}/payment-method", shop.customer);
    let res = app
        .call(
            reqwest::Method::PUT,
            &card_route,
            Some(&shop.admin(&app).await.access_token),
            Some(json!({"stripe_customer_id": "cus_123"})),
        )
        .await;
    assert_eq!(res.status(), 422, "both ids or neither");
    let res = app
        .call(
            reqwest::Method::PUT,
            &card_route,
            Some(&shop.admin(&app).await.access_token),
            Some(save("pm_card_visa")),
        )
        .await;
    assert_eq!(res.status(), 200);

    subscribe(
        &app,
        &shop,
        json!({"customer_id": shop.customer, "product_id": plan, "period": "MONTHLY"}),
    )
    .await;
    let jobs = |app: &TestApp| {
        let store = app.store.clone();
        async move {
            store
                .list_jobs(
                    &JobFilter {
                        kind: Some("billing.autopay".into()),
                        ..JobFilter::default()
                    },
                    None,
                    10,
                )
                .await
                .unwrap()
        }
    };
    let queued = jobs(&app).await;
    assert_eq!(queued.len(), 1, "the new invoice is charged to the card");
    let job: Autopay = serde_json::from_value(queued[0].payload.clone()).unwrap();
    let stripe =
        mpanel_services::billing::stripe::StripeClient::new(&app.stripe.base_url()).unwrap();
    attempt(&app.store, app.clock.as_ref(), &stripe, &job)
        .await
        .unwrap();
    let sent = app.stripe.requests();
    let create = sent.last().unwrap();
    assert_eq!(create.param("amount"), Some("2500"));
    assert_eq!(create.param("off_session"), Some("true"));
    assert_eq!(create.param("confirm"), Some("true"));
    assert_eq!(create.param("customer"), Some("cus_123"));
    assert_eq!(create.param("payment_method"), Some("pm_card_visa"));

    // A declined card: the next try is queued for a day later.
    let res = app
        .call(
            reqwest::Method::PUT,
            &card_route,
            Some(&shop.admin(&app).await.access_token),
            Some(save("pm_card_chargeDeclined")),
        )
        .await;
    assert_eq!(res.status(), 200);
    // The second try of the same invoice (the first one's intent exists).
    let declined = Autopay {
        attempt: 2,
        ..job.clone()
    };
    attempt(&app.store, app.clock.as_ref(), &stripe, &declined)
        .await
        .unwrap();
    let queued = jobs(&app).await;
    let next = queued
        .iter()
        .find(|j| j.payload["attempt"] == 3)
        .expect("a retry is queued");
    assert_eq!(
        next.run_at,
        app.clock.now() + Duration::days(3),
        "the second retry waits 3 days"
    );
    let actions = app.store.audit_actions(shop.tenant).await.unwrap();
    assert!(actions.iter().any(|a| a == "stripe.autopay.declined"));
}

#[tokio::test]
async fn the_runs_invoice_copy_is_claimed_before_its_card_charge() {
    let app = TestApp::start().await;
    let start = datetime!(2027-03-01 10:00 UTC);
    app.clock.set(start);
    let shop = shop(&app, "copyfirst", "UTC").await;
    let admin = shop.admin(&app).await;
    put_settings(&app, &admin, json!({"stripe_secret_key": "sk_test_abc"})).await;
    let plan = product(&app, &shop, "copyfirst-plan", "MONTHLY", 2500, None).await;
    let res = app
        .call(
            reqwest::Method::PUT,
            &format!("/api/billing/customers/{}/payment-method", shop.customer),
            Some(&admin.access_token),
            Some(json!({"stripe_customer_id": "cus_123", "stripe_payment_method_id": "pm_card_visa"})),
        )
        .await;
    assert_eq!(res.status(), 200);
    subscribe(
        &app,
        &shop,
        json!({"customer_id": shop.customer, "product_id": plan, "period": "MONTHLY"}),
    )
    .await;
    app.clock
        .set(start + Duration::days(31) + Duration::hours(1));
    assert_eq!(bill(&app, &shop).await.invoices, 1);

    // Claimed one at a time: the renewal's copies job comes before its
    // card charge, so a worker starts writing the message no later than
    // it charges the card.
    let now = app.clock.now();
    let mut kinds = Vec::new();
    let mut charged: Vec<mpanel_services::billing::autopay::Autopay> = Vec::new();
    while let Some(job) = app
        .store
        .claim_jobs("test", 1, now, now + Duration::minutes(5))
        .await
        .unwrap()
        .pop()
    {
        if job.kind == "billing.autopay" {
            charged.push(serde_json::from_value(job.payload).unwrap());
        }
        kinds.push(job.kind);
    }
    let copies = kinds
        .iter()
        .position(|k| k == "notify.invoice_copies")
        .unwrap_or_else(|| panic!("no copies job: {kinds:?}"));
    let charges: Vec<usize> = kinds
        .iter()
        .enumerate()
        .filter(|(_, k)| *k == "billing.autopay")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        charges.len(),
        2,
        "the first invoice's and the renewal's: {kinds:?}"
    );
    assert!(copies < charges[1], "{kinds:?}");
    let renewal = invoices(&app, &shop).await.pop().unwrap();
    assert_eq!(
        charged[1].invoice_id.to_string(),
        renewal["id"].as_str().unwrap()
    );
}
