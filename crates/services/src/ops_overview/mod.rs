//! The operations overview: nodes, queues, provisioning, security, billing
//! and backups, read from the database at the moment of the request.
//!
//! Scope: a `SUPER_ADMIN` sees the platform. A `TENANT_ADMIN` sees their
//! tenant's share: the nodes hosting its services (hosting accounts,
//! mailboxes, zones, pods, backups), the jobs working for it (their
//! payload names the tenant), and its own orders, events, users, money and
//! backups. Node and provisioning errors are masked for tenant staff as on
//! orders (addresses and paths are the operator's).

use std::collections::BTreeMap;

use mpanel_domain::identity::{Permission, Role};
use mpanel_domain::ops;
use mpanel_domain::provisioning::error_text;
use mpanel_domain::{Clock, TenantId};
use mpanel_store::Store;
use mpanel_store::ops_overview::{MoneyRow, ProvisioningRow};
use serde::Serialize;
use serde_json::Value;
use time::{Duration, OffsetDateTime};
use utoipa::ToSchema;

use crate::{Context, ServiceError};

/// The provisioning window.
pub const PROVISIONING_WINDOW: Duration = Duration::hours(24);
/// "Completed recently" for the queues.
pub const RECENT: Duration = Duration::minutes(5);
/// How many recent failures and security events are shown.
const LATEST: usize = 10;
/// Bounds on the rows one overview reads.
const MAX_PROVISIONING_ROWS: u32 = 20_000;
const MAX_OVERDUE_LISTED: u32 = 1_000;

#[derive(Debug, Serialize, ToSchema)]
pub struct Overview {
    /// PLATFORM (a super admin) or TENANT (a tenant's admin: its share).
    pub scope: String,
    /// The tenant, for scope TENANT.
    pub tenant_id: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub generated_at: OffsetDateTime,
    pub nodes: Vec<OverviewNode>,
    pub queues: Vec<OverviewQueue>,
    pub provisioning: OverviewProvisioning,
    pub security: OverviewSecurity,
    pub billing: OverviewBilling,
    pub backups: OverviewBackups,
    pub certificates: OverviewCertificates,
}

mod certificates;
use certificates::certificates;
pub use certificates::{OverviewCertificates, OverviewExpiringCertificate};

#[derive(Debug, Serialize, ToSchema)]
pub struct OverviewNode {
    pub id: String,
    pub name: String,
    /// WEB, MAIL, DNS, CLOUD, DB, BACKUP.
    pub role: String,
    /// ONLINE, DEGRADED, OFFLINE, MAINTENANCE (as set by operators).
    pub status: String,
    /// UP (the last check answered), DOWN (it failed) or UNCHECKED.
    pub reachable: String,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_check_at: Option<OffsetDateTime>,
    pub last_latency_ms: Option<i64>,
    pub last_error: Option<String>,
    /// What the last check read: for an SSH node `load` (1m, 5m, 15m),
    /// `memory` and `disk` (of `/`) in bytes; for a CLOUD server the
    /// Proxmox VE nodes as its API reports them. Null until read.
    #[schema(value_type = Option<Object>)]
    pub health: Option<Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OverviewQueue {
    pub kind: String,
    /// Due and not yet claimed.
    pub waiting: i64,
    pub running: i64,
    /// Due later.
    pub scheduled: i64,
    /// Failed, awaiting a retry.
    pub retrying: i64,
    /// Out of attempts.
    pub dead: i64,
    /// Seconds the oldest waiting job has waited.
    pub oldest_waiting_age_secs: Option<i64>,
    /// Completed in the last 5 minutes.
    pub completed_last_5m: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OverviewProvisioning {
    pub window_hours: i64,
    /// Orders whose every provisioning job completed in the window.
    pub provisioned: i64,
    /// Orders one of whose provisioning jobs ran out of attempts in the window.
    pub failed: i64,
    /// provisioned / (provisioned + failed), in %; null when neither.
    pub success_rate_percent: Option<f64>,
    /// From the order to its last provisioning job's completion, seconds.
    pub order_to_live_p50_secs: Option<i64>,
    pub order_to_live_p95_secs: Option<i64>,
    /// The latest failures, newest first (at most 10).
    pub recent_failures: Vec<OverviewFailure>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OverviewFailure {
    pub order_id: String,
    pub tenant_id: String,
    /// The step that failed (e.g. `hosting.account.create`), when named.
    pub step: Option<String>,
    pub reason: String,
    #[serde(with = "time::serde::rfc3339")]
    pub failed_at: OffsetDateTime,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OverviewSecurity {
    /// LOGIN_FAILED events in the last 24 hours.
    pub failed_logins_24h: i64,
    /// Distinct addresses refused or locked for too many failures in 24 hours.
    pub throttled_addresses_24h: i64,
    /// Requests refused by a security policy (IP allow-list) in 24 hours.
    pub policy_refusals_24h: i64,
    pub mfa: OverviewMfa,
    /// The 10 latest security events, newest first.
    pub latest_events: Vec<OverviewEvent>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OverviewMfa {
    /// Active staff users, and those with a confirmed TOTP or a passkey.
    pub staff_users: i64,
    pub staff_with_mfa: i64,
    pub staff_percent: Option<f64>,
    pub customer_users: i64,
    pub customers_with_mfa: i64,
    pub customers_percent: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OverviewEvent {
    pub tenant_id: Option<String>,
    pub kind: String,
    pub ip: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OverviewBilling {
    /// Open invoices past due, per currency, with what is still to pay.
    pub overdue_invoices: Vec<OverviewMoney>,
    /// Payments received in the last 24 hours, per currency.
    pub payments_24h: Vec<OverviewMoney>,
    pub subscriptions: Vec<OverviewStatusCount>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OverviewMoney {
    pub currency: String,
    pub count: i64,
    /// Integer minor units.
    pub amount_minor: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OverviewStatusCount {
    pub status: String,
    pub count: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OverviewBackups {
    /// How old a last good backup may be.
    pub max_age_hours: i64,
    /// Backups of the last 7 days that succeeded, of those that ended, in %.
    pub success_rate_7d_percent: Option<f64>,
    pub kinds: Vec<OverviewBackupKind>,
    /// ACTIVE targets whose last good backup is older than allowed.
    pub overdue_count: i64,
    /// Those targets, oldest first (at most 1,000).
    pub overdue: Vec<OverviewOverdueBackup>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OverviewBackupKind {
    /// SITE or MAILBOX.
    pub kind: String,
    /// Backups started today by outcome (the tenant's day for its admin,
    /// the UTC day for the platform).
    pub today_succeeded: i64,
    pub today_failed: i64,
    pub today_running: i64,
    pub success_rate_7d_percent: Option<f64>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_success_at: Option<OffsetDateTime>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OverviewOverdueBackup {
    pub target_id: String,
    pub tenant_id: String,
    pub kind: String,
    /// The domain or the address.
    pub label: String,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_success_at: Option<OffsetDateTime>,
    /// Seconds since the last good backup (or, never backed up, since
    /// the target was made).
    pub age_secs: i64,
}

/// The overview for the caller: the platform for a super admin, the
/// tenant's share for its admin (the route's permission admits no one else).
pub async fn overview(cx: &Context) -> Result<Overview, ServiceError> {
    let tenant = match cx.principal.role() {
        Role::SuperAdmin => None,
        _ => Some(cx.tenant_id()),
    };
    let now = cx.now();
    let store = &cx.store;
    let mask = |s: String| match tenant {
        None => s,
        Some(_) => error_text::for_tenant_staff(&s),
    };
    // The sections are independent reads: run them side by side, each on
    // a connection of the pool.
    let nodes = async {
        Ok::<_, ServiceError>(
            store
                .ops_nodes(tenant)
                .await?
                .into_iter()
                .map(|n| OverviewNode {
                    id: n.id.to_string(),
                    reachable: reachability(n.last_check_at, n.last_error.as_deref()).to_owned(),
                    name: n.name,
                    role: n.role,
                    status: n.status,
                    last_check_at: n.last_check_at,
                    last_latency_ms: n.last_latency_ms,
                    // A tenant's staff see that a shared node is down, not
                    // its error (host names, URLs and addresses are the
                    // operator's).
                    last_error: if tenant.is_some() { None } else { n.last_error },
                    health: n.health,
                })
                .collect::<Vec<_>>(),
        )
    };
    let billing = async {
        let (overdue, payments, subscriptions) = tokio::try_join!(
            store.ops_overdue_invoices(tenant, now),
            store.ops_payments(tenant, now - Duration::hours(24)),
            store.ops_subscriptions(tenant),
        )?;
        Ok::<_, ServiceError>(OverviewBilling {
            overdue_invoices: money(overdue),
            payments_24h: money(payments),
            subscriptions: subscriptions
                .into_iter()
                .map(|(status, count)| OverviewStatusCount { status, count })
                .collect(),
        })
    };
    let (nodes, queues, provisioning, security, billing, backups, certificates) = tokio::try_join!(
        nodes,
        queues(store, tenant, now),
        provisioning(store, tenant, now, &mask),
        security(store, tenant, now),
        billing,
        backups(store, tenant, now),
        certificates(store, tenant, now),
    )?;
    Ok(Overview {
        scope: if tenant.is_some() {
            "TENANT"
        } else {
            "PLATFORM"
        }
        .to_owned(),
        tenant_id: tenant.map(|t| t.to_string()),
        generated_at: now,
        nodes,
        queues,
        provisioning,
        security,
        billing,
        backups,
        certificates,
    })
}

/// UP, DOWN or UNCHECKED from a server's last check.
pub fn reachability(checked: Option<OffsetDateTime>, error: Option<&str>) -> &'static str {
    match (checked, error) {
        (None, _) => "UNCHECKED",
        (Some(_), None) => "UP",
        (Some(_), Some(_)) => "DOWN",
    }
}

pub async fn queues(
    store: &Store,
    tenant: Option<TenantId>,
    now: OffsetDateTime,
) -> Result<Vec<OverviewQueue>, ServiceError> {
    Ok(store
        .ops_queues(tenant, now, now - RECENT)
        .await?
        .into_iter()
        .map(|q| OverviewQueue {
            kind: q.kind,
            waiting: q.waiting,
            running: q.running,
            scheduled: q.scheduled,
            retrying: q.retrying,
            dead: q.dead,
            oldest_waiting_age_secs: q
                .oldest_waiting_since
                .map(|t| (now - t).whole_seconds().max(0)),
            completed_last_5m: q.completed_recently,
        })
        .collect())
}

/// Provisioning outcomes of the window, per order.
pub struct Outcomes {
    pub provisioned: i64,
    pub failed: i64,
    /// Seconds from order to live, of the provisioned ones.
    pub to_live: Vec<i64>,
    /// (failed at, order row, error), newest first.
    pub failures: Vec<(OffsetDateTime, ProvisioningRow)>,
}

/// Classifies the orders of the rows: failed when a job of theirs died in
/// the window; provisioned when every job completed and the last did in
/// the window; otherwise still under way (not counted).
pub fn outcomes(rows: Vec<ProvisioningRow>, since: OffsetDateTime) -> Outcomes {
    let mut by_order: BTreeMap<uuid::Uuid, Vec<ProvisioningRow>> = BTreeMap::new();
    for row in rows {
        by_order.entry(row.order_id).or_default().push(row);
    }
    let mut out = Outcomes {
        provisioned: 0,
        failed: 0,
        to_live: Vec::new(),
        failures: Vec::new(),
    };
    for (_, jobs) in by_order {
        let dead = jobs
            .iter()
            .filter(|j| j.state.as_deref() == Some("dead"))
            .filter_map(|j| j.finished_at.map(|at| (at, j)))
            .max_by_key(|(at, _)| *at);
        if let Some((at, job)) = dead {
            if at >= since {
                out.failed += 1;
                out.failures.push((at, job.clone()));
            }
            continue;
        }
        if jobs.iter().all(|j| j.state.as_deref() == Some("completed"))
            && let Some(live_at) = jobs.iter().filter_map(|j| j.finished_at).max()
            && live_at >= since
        {
            out.provisioned += 1;
            out.to_live
                .push((live_at - jobs[0].ordered_at).whole_seconds().max(0));
        }
    }
    out.failures.sort_by_key(|f| std::cmp::Reverse(f.0));
    out
}

async fn provisioning(
    store: &Store,
    tenant: Option<TenantId>,
    now: OffsetDateTime,
    mask: &(dyn Fn(String) -> String + Sync),
) -> Result<OverviewProvisioning, ServiceError> {
    let since = now - PROVISIONING_WINDOW;
    let rows = store
        .ops_provisioning(tenant, since, MAX_PROVISIONING_ROWS)
        .await?;
    let mut o = outcomes(rows, since);
    Ok(OverviewProvisioning {
        window_hours: PROVISIONING_WINDOW.whole_hours(),
        provisioned: o.provisioned,
        failed: o.failed,
        success_rate_percent: ops::percent(o.provisioned, o.provisioned + o.failed),
        order_to_live_p50_secs: ops::percentile(&mut o.to_live, 50),
        order_to_live_p95_secs: ops::percentile(&mut o.to_live, 95),
        recent_failures: o
            .failures
            .into_iter()
            .take(LATEST)
            .map(|(at, row)| {
                let (step, reason) = ops::failure_step(row.last_error.as_deref().unwrap_or(""));
                OverviewFailure {
                    order_id: row.order_id.to_string(),
                    tenant_id: row.tenant_id.to_string(),
                    step,
                    reason: mask(reason),
                    failed_at: at,
                }
            })
            .collect(),
    })
}

async fn security(
    store: &Store,
    tenant: Option<TenantId>,
    now: OffsetDateTime,
) -> Result<OverviewSecurity, ServiceError> {
    let counts = store
        .ops_security_counts(
            tenant,
            now - Duration::hours(24),
            ops::LOGIN_FAILED,
            &ops::THROTTLED,
            ops::POLICY_REFUSED,
        )
        .await?;
    let mfa = store.ops_mfa_counts(tenant).await?;
    let latest_events = store
        .ops_latest_events(tenant, LATEST as u32)
        .await?
        .into_iter()
        .map(|e| OverviewEvent {
            tenant_id: e.tenant_id.map(|t| t.to_string()),
            kind: e.kind,
            ip: e.ip,
            at: e.created_at,
        })
        .collect();
    Ok(OverviewSecurity {
        failed_logins_24h: counts.failed_logins,
        throttled_addresses_24h: counts.throttled_addresses,
        policy_refusals_24h: counts.policy_refusals,
        mfa: OverviewMfa {
            staff_users: mfa.staff,
            staff_with_mfa: mfa.staff_with_mfa,
            staff_percent: ops::percent(mfa.staff_with_mfa, mfa.staff),
            customer_users: mfa.customers,
            customers_with_mfa: mfa.customers_with_mfa,
            customers_percent: ops::percent(mfa.customers_with_mfa, mfa.customers),
        },
        latest_events,
    })
}

fn money(rows: Vec<MoneyRow>) -> Vec<OverviewMoney> {
    rows.into_iter()
        .map(|r| OverviewMoney {
            currency: r.currency,
            count: r.count,
            amount_minor: r.amount_minor,
        })
        .collect()
}

/// The start of `now`'s day in `zone`.
fn local_midnight(now: OffsetDateTime, zone: &jiff::tz::TimeZone) -> OffsetDateTime {
    jiff::Timestamp::from_second(now.unix_timestamp())
        .ok()
        .and_then(|ts| ts.to_zoned(zone.clone()).start_of_day().ok())
        .and_then(|z| OffsetDateTime::from_unix_timestamp(z.timestamp().as_second()).ok())
        .unwrap_or_else(|| now.replace_time(time::Time::MIDNIGHT))
}

async fn backups(
    store: &Store,
    tenant: Option<TenantId>,
    now: OffsetDateTime,
) -> Result<OverviewBackups, ServiceError> {
    let day_start = match tenant {
        // Backups run at local times: a tenant's "today" is its own.
        Some(t) => local_midnight(now, &crate::backups::tenant_zone(store, t).await?),
        None => now.replace_time(time::Time::MIDNIGHT),
    };
    let kinds = store
        .ops_backup_kinds(tenant, day_start, now - Duration::days(7))
        .await?;
    let (ok, failed) = kinds.iter().fold((0, 0), |(o, f), k| {
        (o + k.week_succeeded, f + k.week_failed)
    });
    let cutoff = now - mpanel_domain::backups::MAX_AGE;
    let age = store.ops_backup_age(tenant, cutoff).await?;
    let overdue = store
        .ops_overdue_backups(tenant, cutoff, MAX_OVERDUE_LISTED)
        .await?;
    Ok(OverviewBackups {
        max_age_hours: mpanel_domain::backups::MAX_AGE.whole_hours(),
        success_rate_7d_percent: ops::percent(ok, ok + failed),
        kinds: kinds
            .into_iter()
            .map(|k| OverviewBackupKind {
                success_rate_7d_percent: ops::percent(
                    k.week_succeeded,
                    k.week_succeeded + k.week_failed,
                ),
                kind: k.kind,
                today_succeeded: k.today_succeeded,
                today_failed: k.today_failed,
                today_running: k.today_running,
                last_success_at: k.last_success_at,
            })
            .collect(),
        overdue_count: age.overdue,
        overdue: overdue
            .into_iter()
            .map(|t| OverviewOverdueBackup {
                target_id: t.id.to_string(),
                tenant_id: t.tenant_id.to_string(),
                kind: t.kind,
                label: t.label,
                last_success_at: t.last_success_at,
                age_secs: (now - t.since).whole_seconds().max(0),
            })
            .collect(),
    })
}

/// The platform's figures for `/metrics`, read at scrape time.
pub struct MetricsNode {
    pub name: String,
    pub role: String,
    /// ONLINE, DEGRADED, OFFLINE or MAINTENANCE (what staff set).
    pub status: String,
    /// UP, DOWN or UNCHECKED.
    pub up: &'static str,
    /// Seconds since the last health check.
    pub check_age_secs: Option<i64>,
}

pub struct MetricsFigures {
    pub nodes: Vec<MetricsNode>,
    pub queues: Vec<OverviewQueue>,
    pub provisioned_24h: i64,
    pub failed_24h: i64,
    pub failed_logins_15m: i64,
    pub failed_logins_24h: i64,
    /// Seconds since the oldest ACTIVE target's last good backup.
    pub backup_oldest_age_secs: Option<i64>,
    pub backup_overdue: i64,
    /// Served certificates ending within 14 days.
    pub certificates_expiring: i64,
}

/// The platform-wide figures `/metrics` shows.
pub async fn metrics_figures(
    store: &Store,
    clock: &dyn Clock,
) -> Result<MetricsFigures, ServiceError> {
    let now = clock.now();
    let nodes = store
        .ops_nodes(None)
        .await?
        .into_iter()
        .map(|n| MetricsNode {
            up: reachability(n.last_check_at, n.last_error.as_deref()),
            check_age_secs: n.last_check_at.map(|at| (now - at).whole_seconds().max(0)),
            name: n.name,
            role: n.role,
            status: n.status,
        })
        .collect();
    let queues = queues(store, None, now).await?;
    let since = now - PROVISIONING_WINDOW;
    let o = outcomes(
        store
            .ops_provisioning(None, since, MAX_PROVISIONING_ROWS)
            .await?,
        since,
    );
    let logins = |since| {
        store.ops_security_counts(
            None,
            since,
            ops::LOGIN_FAILED,
            &ops::THROTTLED,
            ops::POLICY_REFUSED,
        )
    };
    let failed_15m = logins(now - Duration::minutes(15)).await?.failed_logins;
    let failed_24h = logins(now - Duration::hours(24)).await?.failed_logins;
    let age = store
        .ops_backup_age(None, now - mpanel_domain::backups::MAX_AGE)
        .await?;
    Ok(MetricsFigures {
        nodes,
        queues,
        provisioned_24h: o.provisioned,
        failed_24h: o.failed,
        failed_logins_15m: failed_15m,
        failed_logins_24h: failed_24h,
        backup_oldest_age_secs: age.oldest.map(|t| (now - t).whole_seconds().max(0)),
        backup_overdue: age.overdue,
        certificates_expiring: store
            .count_certificates_ending(None, now + mpanel_domain::tls::EXPIRY_WARNING)
            .await?,
    })
}

/// One day of the dashboard's charts.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DayActivity {
    /// `YYYY-MM-DD`, UTC.
    pub day: String,
    pub orders: i64,
    /// Money received that day, per currency.
    pub received: Vec<DayMoney>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DayMoney {
    pub currency: String,
    pub amount_minor: i64,
}

/// Orders and money received per day over the last `days` days (today
/// included), every day present even when nothing happened; the same
/// scope as [`overview`].
pub async fn daily_activity(cx: &Context, days: u16) -> Result<Vec<DayActivity>, ServiceError> {
    cx.principal.require(Permission::OpsOverviewRead)?;
    let tenant = match cx.principal.role() {
        Role::SuperAdmin => None,
        _ => Some(cx.tenant_id()),
    };
    let today = cx.now().to_offset(time::UtcOffset::UTC).date();
    let first = today - time::Duration::days(i64::from(days.max(1)) - 1);
    let rows = cx
        .store
        .ops_daily_activity(tenant, first.midnight().assume_utc())
        .await?;
    let mut out: Vec<DayActivity> = (0..i64::from(days.max(1)))
        .map(|i| DayActivity {
            day: (first + time::Duration::days(i)).to_string(),
            orders: 0,
            received: Vec::new(),
        })
        .collect();
    for row in rows {
        let Some(day) = out.iter_mut().find(|d| d.day == row.day) else {
            continue;
        };
        day.orders += row.orders;
        if !row.currency.is_empty() {
            day.received.push(DayMoney {
                currency: row.currency,
                amount_minor: row.received_minor,
            });
        }
    }
    Ok(out)
}
