//! `/`: staff see the platform overview with its charts; a customer sees
//! their services.

use axum::response::Response;
use mpanel_domain::identity::Permission;
use mpanel_services::ops_overview::{self, DayActivity, Overview};
use serde::Serialize;

use super::charts::{self, Bar};
use super::session::Viewer;
use super::view::{PageError, page};

/// How many days the charts show.
const DAYS: u16 = 14;

#[derive(Serialize)]
struct Dashboard {
    overview: Option<Overview>,
    orders_chart: String,
    revenue_chart: String,
    revenue_currency: String,
    queue_chart: String,
    queue_waiting: i64,
    queue_dead: i64,
    overdue_count: i64,
    provisioning_meter: String,
    staff_mfa_meter: String,
    customer_mfa_meter: String,
}

pub async fn home(
    viewer: Viewer,
    axum::extract::Query(done): axum::extract::Query<super::Done>,
) -> Result<Response, PageError> {
    if !viewer.is_staff() {
        return super::services::home(viewer, done).await;
    }
    if !viewer.may(Permission::OpsOverviewRead) {
        return page(&viewer, "/", "Dashboard", "dashboard.html", empty());
    }
    let (overview, days) = tokio::try_join!(
        ops_overview::overview(&viewer),
        ops_overview::daily_activity(&viewer, DAYS)
    )?;
    let data = dashboard(overview, &days);
    page(&viewer, "/", "Dashboard", "dashboard.html", data)
}

fn empty() -> Dashboard {
    Dashboard {
        overview: None,
        orders_chart: String::new(),
        revenue_chart: String::new(),
        revenue_currency: String::new(),
        queue_chart: String::new(),
        queue_waiting: 0,
        queue_dead: 0,
        overdue_count: 0,
        provisioning_meter: String::new(),
        staff_mfa_meter: String::new(),
        customer_mfa_meter: String::new(),
    }
}

fn short_day(day: &str) -> String {
    day.get(5..).unwrap_or(day).to_owned()
}

/// The currency most money came in over the period (the revenue chart's).
fn main_currency(days: &[DayActivity]) -> String {
    let mut totals: std::collections::BTreeMap<&str, i64> = Default::default();
    for m in days.iter().flat_map(|d| &d.received) {
        *totals.entry(&m.currency).or_default() += m.amount_minor;
    }
    totals
        .into_iter()
        .max_by_key(|(_, v)| *v)
        .map(|(c, _)| c.to_owned())
        .unwrap_or_else(|| "EUR".to_owned())
}

fn dashboard(overview: Overview, days: &[DayActivity]) -> Dashboard {
    let orders: Vec<Bar> = days
        .iter()
        .map(|d| Bar {
            label: short_day(&d.day),
            value: d.orders,
            text: format!("{} orders", d.orders),
        })
        .collect();
    let currency = main_currency(days);
    let revenue: Vec<Bar> = days
        .iter()
        .map(|d| {
            let minor: i64 = d
                .received
                .iter()
                .filter(|m| m.currency == currency)
                .map(|m| m.amount_minor)
                .sum();
            Bar {
                label: short_day(&d.day),
                value: minor,
                text: mpanel_services::billing::documents::money(minor, &currency),
            }
        })
        .collect();
    let queues: Vec<Bar> = overview
        .queues
        .iter()
        .map(|q| Bar {
            label: q.kind.rsplit('.').next().unwrap_or(&q.kind).to_owned(),
            value: q.waiting + q.running + q.retrying,
            text: format!(
                "{} waiting, {} running, {} retrying",
                q.waiting, q.running, q.retrying
            ),
        })
        .collect();
    let p = &overview.provisioning;
    let mfa = &overview.security.mfa;
    Dashboard {
        orders_chart: charts::bars("Orders per day", &orders, "bar"),
        revenue_chart: charts::bars(
            &format!("Money received per day ({currency})"),
            &revenue,
            "bar alt",
        ),
        revenue_currency: currency,
        queue_chart: charts::bars("Jobs waiting per queue", &queues, "bar"),
        queue_waiting: overview.queues.iter().map(|q| q.waiting).sum(),
        queue_dead: overview.queues.iter().map(|q| q.dead).sum(),
        overdue_count: overview
            .billing
            .overdue_invoices
            .iter()
            .map(|m| m.count)
            .sum(),
        provisioning_meter: charts::meter(
            "Provisioning success",
            p.success_rate_percent.unwrap_or(100.0),
        ),
        staff_mfa_meter: charts::meter("Staff with MFA", mfa.staff_percent.unwrap_or(0.0)),
        customer_mfa_meter: charts::meter(
            "Customers with MFA",
            mfa.customers_percent.unwrap_or(0.0),
        ),
        overview: Some(overview),
    }
}
