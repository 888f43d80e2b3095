//! Subscriptions and the billing run over HTTP, with the server's clock
//! moved by the test: month ends and leap days, DST in a non-UTC tenant,
//! hourly billing across a DST change, trials, cancellation, catch-up after
//! an outage, proration, usage, and dunning with restoration on payment.

use mpanel_domain::identity::Role;
use mpanel_domain::{Clock, TenantId};
use mpanel_services::billing::run::{RunReport, run};
use mpanel_store::jobs::JobFilter;
use serde_json::{Value, json};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use crate::billing::{customer, put_settings};
use crate::support::{Account, TestApp};

struct Shop {
    tenant: TenantId,
    admin: Account,
    customer: String,
}

async fn shop(app: &TestApp, slug: &str, zone: &str) -> Shop {
    mpanel_services::tenants::create_tenant(
        &app.store,
        app.clock.as_ref(),
        &mpanel_services::Actor::cli("test"),
        &mpanel_services::tenants::CreateTenant {
            slug: slug.into(),
            name: slug.into(),
            timezone: zone.into(),
            default_currency: "EUR".into(),
        },
    )
    .await
    .unwrap();
    let mut admin = app
        .account(slug, &format!("billing@{slug}.test"), Role::TenantAdmin)
        .await;
    // An API token outlives the clock moving by years (a session would not).
    admin.access_token = app
        .api_token(&admin.access_token, &["READ", "WRITE", "BILLING"])
        .await
        .0;
    let customer = customer(app, &admin, &format!("jane@{slug}.test"), "FR", None).await;
    Shop {
        tenant: admin.tenant_id,
        admin,
        customer,
    }
}

/// A product priced `amount` per `period`, with an optional usage block.
async fn product(
    app: &TestApp,
    shop: &Shop,
    slug: &str,
    period: &str,
    amount: i64,
    usage: Option<Value>,
) -> String {
    let (model, category) = match &usage {
        Some(_) => ("USAGE_TIERED", "CLOUDPOD"),
        None => ("RECURRING", "HOSTING"),
    };
    let mut body = json!({"name": slug, "slug": slug, "category": category, "billing_model": model,
        "status": "ACTIVE", "visibility": "PUBLIC", "base_currency": "EUR",
        "provisioning_template": {"type": "NONE"}});
    if let Some(u) = usage {
        body["usage"] = u;
    }
    let res = app
        .post_as(&shop.admin.access_token, "/api/billing/products", body)
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = app
        .post_as(
            &shop.admin.access_token,
            &format!("/api/billing/products/{id}/prices"),
            json!({"period": period, "currency": "EUR", "amount_minor": amount, "setup_fee_minor": 0}),
        )
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    id
}

async fn subscribe(app: &TestApp, shop: &Shop, body: Value) -> Value {
    let res = app
        .post_as(&shop.admin.access_token, "/api/billing/subscriptions", body)
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    res.json().await.unwrap()
}

async fn bill(app: &TestApp, shop: &Shop) -> RunReport {
    run(
        &app.store,
        app.clock.as_ref(),
        Some(shop.tenant),
        app.clock.now(),
        false,
        &|_| {},
    )
    .await
    .unwrap()
}

/// The customer's invoices, oldest first, with their lines.
async fn invoices(app: &TestApp, shop: &Shop) -> Vec<Value> {
    let page: Value = app
        .get_as(
            &shop.admin.access_token,
            &format!(
                "/api/billing/invoices?customer_id={}&limit=200",
                shop.customer
            ),
        )
        .await
        .json()
        .await
        .unwrap();
    let mut out = Vec::new();
    for inv in page["items"].as_array().unwrap().iter().rev() {
        let id = inv["id"].as_str().unwrap();
        out.push(crate::billing::get_invoice(app, &shop.admin, id).await);
    }
    out
}

fn first_line(inv: &Value) -> String {
    inv["lines"][0]["description"].as_str().unwrap().to_owned()
}

async fn get_sub(app: &TestApp, shop: &Shop, id: &str) -> Value {
    app.get_as(
        &shop.admin.access_token,
        &format!("/api/billing/subscriptions/{id}"),
    )
    .await
    .json()
    .await
    .unwrap()
}

async fn post(app: &TestApp, shop: &Shop, path: &str, body: Value) -> reqwest::Response {
    app.post_as(&shop.admin.access_token, path, body).await
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

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
        &shop.admin,
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
        &shop.admin,
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
            Some(&shop.admin.access_token),
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
        &shop.admin,
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
            Some(&shop.admin.access_token),
            Some(json!({"product_id": small})),
        )
        .await;
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["proration"]["credit_minor"], 2000);
    assert_eq!(body["proration"]["charge_minor"], 667);
    assert_eq!(body["proration"]["credited_to_balance_minor"], 1333);
    let credit: Value = app
        .get_as(
            &shop.admin.access_token,
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
        .get_as(&shop.admin.access_token, "/api/billing/subscriptions")
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

#[tokio::test]
async fn a_saved_card_is_charged_off_session_and_a_decline_is_retried_later() {
    use mpanel_services::billing::autopay::{Autopay, attempt};
    let app = TestApp::start().await;
    app.clock.set(datetime!(2027-03-01 10:00 UTC));
    let shop = shop(&app, "autopay", "UTC").await;
    put_settings(
        &app,
        &shop.admin,
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
            Some(&shop.admin.access_token),
            Some(json!({"stripe_customer_id": "cus_123"})),
        )
        .await;
    assert_eq!(res.status(), 422, "both ids or neither");
    let res = app
        .call(
            reqwest::Method::PUT,
            &card_route,
            Some(&shop.admin.access_token),
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
            Some(&shop.admin.access_token),
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
async fn the_scheduled_run_bills_each_tenant_once_a_day_at_its_local_time() {
    use mpanel_services::billing::run::scheduled;
    let app = TestApp::start().await;
    // 01:30 in Auckland (UTC+13 in January) is 12:30 UTC the day before.
    app.clock.set(datetime!(2027-01-10 12:00 UTC));
    let shop = shop(&app, "auckland", "Pacific/Auckland").await;
    put_settings(
        &app,
        &shop.admin,
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
