//! Periods over the calendar: month ends, leap days, DST, hourly plans,
//! trials, cancellation, catch-up after an outage, the daily scheduled run.

use super::*;

#[tokio::test]
async fn monthly_renewals_over_two_years_clamp_month_ends_and_keep_local_time_across_dst() {
    let app = TestApp::start().await;
    let start = datetime!(2027-01-31 09:00 UTC); // 10:00 in Berlin
    app.clock.set(start);
    let shop = shop(&app, "berlin", "Europe/Berlin").await;
    let plan = product(&app, &shop, "web-monthly", "MONTHLY", 1000, None).await;
    let sub = subscribe(
        &app,
        &shop,
        json!({"customer_id": shop.customer, "product_id": plan, "period": "MONTHLY"}),
    )
    .await;
    assert_eq!(sub["status"], "ACTIVE");
    let all = invoices(&app, &shop).await;
    assert_eq!(all.len(), 1, "the first period is invoiced at once");
    // Paid well ahead: the excess is credit that pays each renewal as it is
    // issued, so dunning stays out of this test.
    let res = post(
        &app,
        &shop,
        &format!(
            "/api/billing/invoices/{}/pay",
            all[0]["id"].as_str().unwrap()
        ),
        json!({"amount_minor": 30_000, "provider": "BANK_TRANSFER"}),
    )
    .await;
    assert_eq!(res.status(), 201);

    // Local starts: the 31st clamps to the month's end and comes back;
    // 2028 is a leap year. 10:00 local is 09:00 UTC in winter, 08:00 in summer.
    let expected = [
        "2027-02-28",
        "2027-03-31",
        "2027-04-30",
        "2027-05-31",
        "2027-06-30",
        "2027-07-31",
        "2027-08-31",
        "2027-09-30",
        "2027-10-31",
        "2027-11-30",
        "2027-12-31",
        "2028-01-31",
        "2028-02-29",
        "2028-03-31",
        "2028-04-30",
        "2028-05-31",
        "2028-06-30",
        "2028-07-31",
        "2028-08-31",
        "2028-09-30",
        "2028-10-31",
        "2028-11-30",
        "2028-12-31",
        "2029-01-31",
        "2029-02-28",
    ];
    for (i, pair) in expected.windows(2).enumerate() {
        let (date, next) = (pair[0], pair[1]);
        let day = time::Date::parse(
            date,
            time::macros::format_description!("[year]-[month]-[day]"),
        )
        .unwrap();
        let summer = (4..=9).contains(&u8::from(day.month()))
            || (day.month() == time::Month::March && day.day() == 31);
        let starts = day
            .with_hms(if summer { 8 } else { 9 }, 0, 0)
            .unwrap()
            .assume_utc();
        app.clock.set(starts - Duration::seconds(1));
        assert_eq!(
            bill(&app, &shop).await.invoices,
            0,
            "{date}: not before the local start"
        );
        app.clock.set(starts + Duration::hours(3));
        assert_eq!(bill(&app, &shop).await.invoices, 1, "{date}: one renewal");
        assert_eq!(
            bill(&app, &shop).await.invoices,
            0,
            "{date}: a re-run bills nothing"
        );
        let all = invoices(&app, &shop).await;
        assert_eq!(all.len(), i + 2);
        let line = first_line(all.last().unwrap());
        assert!(
            line.contains(&format!("({date} to {next})")),
            "{line} should cover {date} to {next}"
        );
        assert_eq!(all.last().unwrap()["status"], "PAID");
    }
    let sub = get_sub(&app, &shop, sub["id"].as_str().unwrap()).await;
    assert_eq!(sub["current_period_start"], "2029-01-31T09:00:00Z");
    assert_eq!(sub["next_bill_at"], "2029-02-28T09:00:00Z");
    let first = &invoices(&app, &shop).await[0];
    assert!(first_line(first).contains("(2027-01-31 to 2027-02-28)"));
}

#[tokio::test]
async fn hourly_billing_across_dst_changes_bills_each_hour_once() {
    let app = TestApp::start().await;
    for (start, hours) in [
        // Berlin springs forward at 01:00 UTC on 28 March 2027 (a 23-hour day)…
        (datetime!(2027-03-27 22:00 UTC), 26),
        // …and falls back at 01:00 UTC on 31 October 2027 (25 hours).
        (datetime!(2027-10-30 22:00 UTC), 28),
    ] {
        app.clock.set(start);
        let slug = format!("hourly-{}", start.month() as u8);
        let shop = shop(&app, &slug, "Europe/Berlin").await;
        let plan = product(&app, &shop, &format!("pod-{slug}"), "HOURLY", 2, None).await;
        subscribe(
            &app,
            &shop,
            json!({"customer_id": shop.customer, "product_id": plan, "period": "HOURLY"}),
        )
        .await;
        for hour in 1..=hours {
            app.clock
                .set(start + Duration::hours(hour) + Duration::minutes(59));
            assert_eq!(bill(&app, &shop).await.invoices, 1, "hour {hour}");
        }
        let all = invoices(&app, &shop).await;
        assert_eq!(all.len() as i64, hours + 1, "one invoice per elapsed hour");
        let mut lines: Vec<String> = all.iter().map(first_line).collect();
        lines.dedup();
        assert_eq!(lines.len() as i64, hours + 1, "no hour billed twice");
    }
}

#[tokio::test]
async fn a_trial_bills_nothing_until_it_ends_and_a_cancelled_trial_expires() {
    let app = TestApp::start().await;
    let start = datetime!(2027-05-10 12:00 UTC);
    app.clock.set(start);
    let shop = shop(&app, "trials", "UTC").await;
    let plan = product(&app, &shop, "trial-plan", "MONTHLY", 1500, None).await;
    let body = json!({"customer_id": shop.customer, "product_id": plan, "period": "MONTHLY", "trial_days": 14});
    let kept = subscribe(&app, &shop, body.clone()).await;
    let dropped = subscribe(&app, &shop, body).await;
    assert_eq!(kept["trial_end"], "2027-05-24T12:00:00Z");
    assert_eq!(
        invoices(&app, &shop).await.len(),
        0,
        "nothing is charged in a trial"
    );
    let res = post(
        &app,
        &shop,
        &format!(
            "/api/billing/subscriptions/{}/cancel",
            dropped["id"].as_str().unwrap()
        ),
        json!({"mode": "END_OF_TERM"}),
    )
    .await;
    assert_eq!(res.status(), 200);

    app.clock.set(start + Duration::days(13));
    assert_eq!(bill(&app, &shop).await.invoices, 0);
    app.clock
        .set(start + Duration::days(14) + Duration::minutes(1));
    let report = bill(&app, &shop).await;
    assert_eq!((report.invoices, report.ended), (1, 1));
    let all = invoices(&app, &shop).await;
    assert_eq!(all[0]["total_minor"], 1500);
    assert!(first_line(&all[0]).contains("2027-05-24 to 2027-06-24"));
    let dropped = get_sub(&app, &shop, dropped["id"].as_str().unwrap()).await;
    assert_eq!(dropped["status"], "EXPIRED");
    assert_eq!(dropped["next_bill_at"], Value::Null);
}

#[tokio::test]
async fn cancelling_now_or_at_the_end_of_the_term() {
    let app = TestApp::start().await;
    let start = datetime!(2027-02-01 08:00 UTC);
    app.clock.set(start);
    let shop = shop(&app, "cancels", "UTC").await;
    let plan = product(&app, &shop, "cancel-plan", "MONTHLY", 1000, None).await;
    let body = json!({"customer_id": shop.customer, "product_id": plan, "period": "MONTHLY"});
    let now_sub = subscribe(&app, &shop, body.clone()).await;
    let later = subscribe(&app, &shop, body).await;
    let (now_id, later_id) = (
        now_sub["id"].as_str().unwrap(),
        later["id"].as_str().unwrap(),
    );

    let res = post(
        &app,
        &shop,
        &format!("/api/billing/subscriptions/{now_id}/cancel"),
        json!({"mode": "IMMEDIATE"}),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "CANCELLED");
    let res = post(
        &app,
        &shop,
        &format!("/api/billing/subscriptions/{later_id}/cancel"),
        json!({"mode": "END_OF_TERM"}),
    )
    .await;
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        (
            body["status"].as_str(),
            body["cancel_at_period_end"].as_bool()
        ),
        (Some("ACTIVE"), Some(true))
    );

    // A cancelled subscription cannot be resumed or suspended.
    let res = post(
        &app,
        &shop,
        &format!("/api/billing/subscriptions/{now_id}/suspend"),
        json!({}),
    )
    .await;
    assert_eq!(res.status(), 409);
    let problem: Value = res.json().await.unwrap();
    assert_eq!(problem["code"], "invalid_transition");

    app.clock.set(datetime!(2027-03-01 09:00 UTC));
    let report = bill(&app, &shop).await;
    assert_eq!(
        (report.invoices, report.ended),
        (0, 1),
        "no renewal for either"
    );
    assert_eq!(get_sub(&app, &shop, later_id).await["status"], "CANCELLED");
    assert_eq!(
        invoices(&app, &shop).await.len(),
        2,
        "only the two first invoices"
    );
}

#[tokio::test]
async fn catch_up_after_a_40_day_outage_bills_each_missed_period_once_within_the_bound() {
    let app = TestApp::start().await;
    app.clock.set(datetime!(2026-12-31 10:00 UTC));
    let shop = shop(&app, "outage", "UTC").await;
    let plan = product(&app, &shop, "outage-plan", "MONTHLY", 1000, None).await;
    let sub = subscribe(
        &app,
        &shop,
        json!({"customer_id": shop.customer, "product_id": plan, "period": "MONTHLY"}),
    )
    .await;
    // Paid, so that dunning leaves it alone through the outage.
    let first = invoices(&app, &shop).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = post(
        &app,
        &shop,
        &format!("/api/billing/invoices/{first}/pay"),
        json!({"amount_minor": 1000, "provider": "BANK_TRANSFER"}),
    )
    .await;
    assert_eq!(res.status(), 201);
    app.clock.set(datetime!(2027-01-30 10:00 UTC));
    assert_eq!(bill(&app, &shop).await.invoices, 0);

    // Down for 40 days: periods starting Jan 31 and Feb 28 were missed.
    app.clock.set(datetime!(2027-03-11 10:00 UTC));
    put_settings(
        &app,
        &shop.admin(&app).await,
        json!({"automation": {"max_catch_up_periods": 1}}),
    )
    .await;
    let report = bill(&app, &shop).await;
    assert_eq!(report.invoices, 0, "beyond the bound: reported, not billed");
    assert_eq!(report.beyond_catch_up.len(), 1);
    assert_eq!(
        report.beyond_catch_up[0].to_string(),
        sub["id"].as_str().unwrap()
    );

    put_settings(
        &app,
        &shop.admin(&app).await,
        json!({"automation": {"max_catch_up_periods": 12}}),
    )
    .await;
    let report = bill(&app, &shop).await;
    assert_eq!((report.invoices, report.periods), (2, 2), "{report:?}");
    assert_eq!(
        bill(&app, &shop).await.invoices,
        0,
        "a re-run creates nothing"
    );
    let all = invoices(&app, &shop).await;
    let lines: Vec<String> = all.iter().map(first_line).collect();
    assert!(lines[1].contains("2027-01-31 to 2027-02-28"), "{lines:?}");
    assert!(lines[2].contains("2027-02-28 to 2027-03-31"), "{lines:?}");
}

#[tokio::test]
async fn the_scheduled_run_bills_each_tenant_once_a_day_at_its_local_time() {
    use mpanel_services::billing::scheduled::scheduled;
    let app = TestApp::start().await;
    // 01:30 in Auckland (UTC+13 in January) is 12:30 UTC the day before.
    app.clock.set(datetime!(2027-01-10 12:00 UTC));
    let shop = shop(&app, "auckland", "Pacific/Auckland").await;
    put_settings(
        &app,
        &shop.admin(&app).await,
        json!({"automation": {"run_at": "01:30"}}),
    )
    .await;
    let plan = product(&app, &shop, "nz-plan", "MONTHLY", 1000, None).await;
    subscribe(
        &app,
        &shop,
        json!({"customer_id": shop.customer, "product_id": plan, "period": "MONTHLY"}),
    )
    .await;
    let ran = |report: &RunReport| report.tenants;

    app.clock.set(datetime!(2027-02-10 12:29 UTC)); // 01:29 local: not yet
    let report = scheduled(&app.store, app.clock.as_ref()).await.unwrap();
    assert_eq!(report.invoices, 0);
    app.clock.set(datetime!(2027-02-10 12:31 UTC));
    let report = scheduled(&app.store, app.clock.as_ref()).await.unwrap();
    assert!(ran(&report) >= 1);
    assert_eq!(report.invoices, 1, "the renewal due since 12:00 UTC");
    app.clock.set(datetime!(2027-02-10 18:00 UTC));
    let report = scheduled(&app.store, app.clock.as_ref()).await.unwrap();
    assert_eq!(report.tenants, 0, "once per local day");
    app.clock.set(datetime!(2027-02-11 12:31 UTC));
    let report = scheduled(&app.store, app.clock.as_ref()).await.unwrap();
    assert!(ran(&report) >= 1, "the next local day runs again");
}

/// Two tenants with a monthly subscription each (made 2027-01-10 08:00
/// UTC, the daily run at 09:00 UTC), the first made (so the first run)
/// one whose invoice lines the database refuses; returns them with the
/// statement that lets the database take them again.
async fn a_failing_and_a_fine_tenant(app: &TestApp) -> (Shop, Shop, &'static str) {
    app.clock.set(datetime!(2027-01-10 08:00 UTC));
    let failing = shop(app, "failing", "UTC").await;
    let other = shop(app, "other", "UTC").await;
    assert!(
        failing.tenant.to_string() < other.tenant.to_string(),
        "the failing tenant runs first"
    );
    for (s, plan) in [(&failing, "refused-plan"), (&other, "fine-plan")] {
        let admin = s.admin(app).await;
        put_settings(app, &admin, json!({"automation": {"run_at": "09:00"}})).await;
        let product = product(app, s, plan, "MONTHLY", 1000, None).await;
        subscribe(
            app,
            s,
            json!({"customer_id": s.customer, "product_id": product, "period": "MONTHLY"}),
        )
        .await;
    }
    let drop = refuse_lines(app).await;
    (failing, other, drop)
}

/// From now on, writing a line whose description names `refused-plan`
/// fails (an injected failure); answers the SQL that ends it.
async fn refuse_lines(app: &TestApp) -> &'static str {
    use mpanel_store::Engine;
    let (create, drop): (Vec<&str>, &str) = match app.store.engine() {
        Engine::Sqlite => (
            vec![
                "CREATE TRIGGER refuse_lines BEFORE INSERT ON invoice_lines \
                 WHEN NEW.description LIKE '%refused-plan%' \
                 BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
            ],
            "DROP TRIGGER refuse_lines",
        ),
        Engine::Postgres => (
            vec![
                "CREATE OR REPLACE FUNCTION refuse_lines() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
                 IF NEW.description LIKE '%refused-plan%' THEN RAISE EXCEPTION 'injected failure'; END IF; \
                 RETURN NEW; END $$",
                "CREATE TRIGGER refuse_lines BEFORE INSERT ON invoice_lines \
                 FOR EACH ROW EXECUTE FUNCTION refuse_lines()",
            ],
            "DROP TRIGGER refuse_lines ON invoice_lines",
        ),
    };
    for sql in create {
        app.store.execute_raw_for_tests(sql).await.unwrap();
    }
    drop
}

/// One tenant's scheduled run fails: the tenants after it are billed all
/// the same, nothing of the failed one is half-made, and its day is given
/// back, so the job's retry bills it once the database takes its invoices
/// again.
#[tokio::test]
async fn a_tenants_failed_scheduled_run_stops_no_other_and_its_retry_bills_it() {
    use mpanel_services::billing::scheduled::scheduled;
    let app = TestApp::start().await;
    let (failing, other, drop) = a_failing_and_a_fine_tenant(&app).await;
    let before = (
        invoices(&app, &failing).await.len(),
        invoices(&app, &other).await.len(),
    );

    app.clock.set(datetime!(2027-02-10 09:30 UTC));
    let report = scheduled(&app.store, app.clock.as_ref()).await.unwrap();
    assert_eq!(failed_tenants(&report), ["failing"]);
    assert_eq!(report.invoices, 1, "the other tenant's");
    assert_eq!(
        invoices(&app, &other).await.len(),
        before.1 + 1,
        "the tenant after the failed one is billed"
    );
    assert_eq!(
        invoices(&app, &failing).await.len(),
        before.0,
        "nothing of the failed run stays"
    );

    app.store.execute_raw_for_tests(drop).await.unwrap();
    app.clock.set(datetime!(2027-02-10 09:35 UTC));
    let retry = scheduled(&app.store, app.clock.as_ref()).await.unwrap();
    assert_eq!(retry.invoices, 1, "the failed tenant, and no one twice");
    assert_eq!(invoices(&app, &failing).await.len(), before.0 + 1);
    assert_eq!(invoices(&app, &other).await.len(), before.1 + 1);
    let again = scheduled(&app.store, app.clock.as_ref()).await.unwrap();
    assert_eq!(again.tenants, 0, "both days are done");
}

/// `mpanel billing run` for all tenants: one tenant's failure stops no
/// other's, and the run answers with the failure. The failing tenant's
/// dunning runs all the same: its unpaid first invoice is past its
/// suspension, as the other's is.
#[tokio::test]
async fn a_run_of_all_tenants_bills_the_others_when_one_fails() {
    let app = TestApp::start().await;
    let (failing, other, _) = a_failing_and_a_fine_tenant(&app).await;
    let before = (
        invoices(&app, &failing).await.len(),
        invoices(&app, &other).await.len(),
    );
    app.clock.set(datetime!(2027-02-10 09:30 UTC));
    let scope = RunScope::new(None, app.clock.now());
    let report = run(&app.store, app.clock.as_ref(), &scope, &|_| {})
        .await
        .unwrap();
    assert_eq!(failed_tenants(&report), ["failing"]);
    assert_eq!(invoices(&app, &other).await.len(), before.1 + 1);
    assert_eq!(invoices(&app, &failing).await.len(), before.0);
    assert_eq!(
        (report.tenants, report.suspended),
        (1, 2),
        "both tenants' overdue subscriptions suspended: {report:?}"
    );
}

/// A chunk that fails is rolled back and the run goes on with the next:
/// the failing tenant's other subscriptions are billed and counted, and the
/// tenant is listed as failed, not among those run.
#[tokio::test]
async fn a_failed_chunk_leaves_the_tenants_other_subscriptions_billed() {
    let app = TestApp::start().await;
    let (failing, _, drop) = a_failing_and_a_fine_tenant(&app).await;
    // Their first invoices are written before the failures are injected.
    app.store.execute_raw_for_tests(drop).await.unwrap();
    let fine = product(&app, &failing, "fine-too", "MONTHLY", 700, None).await;
    let refused = product(&app, &failing, "refused-plan-too", "MONTHLY", 700, None).await;
    // Due in this order (one chunk each): refused, fine, refused, fine,
    // fine. A lane stopping at its first failure (or its second, with
    // another lane beside it) leaves fine ones unbilled.
    for plan in [&fine, &refused, &fine, &fine] {
        subscribe(
            &app,
            &failing,
            json!({"customer_id": failing.customer, "product_id": plan, "period": "MONTHLY"}),
        )
        .await;
    }
    refuse_lines(&app).await;
    let before = invoices(&app, &failing).await.len();
    app.clock.set(datetime!(2027-02-10 09:30 UTC));
    let scope = RunScope {
        chunk: 1,
        ..RunScope::new(Some(failing.tenant), app.clock.now())
    };
    let report = run(&app.store, app.clock.as_ref(), &scope, &|_| {})
        .await
        .unwrap();
    assert_eq!(failed_tenants(&report), ["failing"]);
    assert_eq!((report.tenants, report.invoices), (0, 3), "{report:?}");
    assert_eq!(invoices(&app, &failing).await.len(), before + 3);
}

/// A tenant whose run keeps failing is tried a few times a day (each
/// failure gives the day back), then left for the next day: its job does
/// not rerun it every few minutes all day.
#[tokio::test]
async fn a_scheduled_run_that_keeps_failing_is_tried_three_times_a_day() {
    use mpanel_services::billing::scheduled::scheduled;
    let app = TestApp::start().await;
    let (failing, _, _) = a_failing_and_a_fine_tenant(&app).await;
    let before = invoices(&app, &failing).await.len();
    for minute in [30, 35, 40] {
        app.clock
            .set(datetime!(2027-02-10 09:00 UTC) + Duration::minutes(minute));
        let report = scheduled(&app.store, app.clock.as_ref()).await.unwrap();
        assert_eq!(failed_tenants(&report), ["failing"]);
        if minute == 30 {
            // Both tenants' overdue first invoices: the failing one's
            // dunning ran and is counted too.
            assert_eq!(report.suspended, 2, "{report:?}");
        }
    }
    app.clock.set(datetime!(2027-02-10 09:45 UTC));
    let report = scheduled(&app.store, app.clock.as_ref()).await.unwrap();
    assert_eq!(report.tenants, 0, "left for tomorrow");
    assert!(report.failed.is_empty());
    assert_eq!(invoices(&app, &failing).await.len(), before);
}

/// The slugs of the tenants a run lists as failed.
fn failed_tenants(report: &RunReport) -> Vec<&str> {
    report.failed.iter().map(|f| f.tenant.as_str()).collect()
}
