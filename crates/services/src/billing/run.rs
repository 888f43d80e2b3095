//! The billing run: for every subscription whose next period has started,
//! the renewal invoice for that period (in advance) with the usage of the
//! periods before it (in arrears); subscriptions whose term ended without
//! renewal are cancelled or expire. Then dunning.
//!
//! Work goes in chunks of subscriptions, one transaction each, with rows
//! written many per statement. Each invoiced period is a row with a unique
//! key (subscription, period): a second run, or a second node running at
//! the same moment, creates nothing twice. A subscription with more missed
//! periods than the tenant's bound is reported and skipped, never billed in
//! a loop.

use std::collections::{BTreeMap, HashMap, HashSet};

use mpanel_domain::billing::calendar::{Cycle, Schedule};
use mpanel_domain::billing::invoice::{LineKind, LineSource};
use mpanel_domain::billing::money::from_minor;
use mpanel_domain::billing::subscription::SubscriptionStatus;
use mpanel_domain::billing::usage::rate;
use mpanel_domain::catalog::{Currency, Period, UsagePricing};
use mpanel_domain::{InvoiceId, ProductId, SubscriptionId, TenantId};
use mpanel_store::billing::{Advance, DueSubscription, PeriodClaim, UsageCharge};
use mpanel_store::subscriptions::SubscriptionRecord;
use mpanel_store::{Store, TenantRecord, Tx};
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::dunning;
use super::final_usage;
use super::lines::LineIn;
use super::run_invoices::{Draft, write_invoices};
use super::service_actions::ServiceAction;
use super::settings::{self, BillingSettings};
use super::subscriptions::{StatusChange, commit_change};
use crate::{Actor, ServiceError};

/// Subscriptions per transaction.
const CHUNK: u32 = 500;

/// What a run did (or, dry, would do).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct RunReport {
    pub dry_run: bool,
    pub tenants: usize,
    /// Subscriptions found due.
    pub subscriptions: usize,
    /// Periods invoiced (several per subscription when catching up).
    pub periods: usize,
    pub invoices: usize,
    /// Invoiced, per currency.
    pub totals_minor: BTreeMap<String, i64>,
    /// Subscriptions cancelled or expired at the end of their term.
    pub ended: usize,
    /// Subscriptions with more missed periods than the catch-up bound:
    /// left alone for an operator.
    pub beyond_catch_up: Vec<SubscriptionId>,
    pub reminders: usize,
    pub suspended: usize,
    pub terminated: usize,
    /// Tenants whose run failed (rolled back; the others went on).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<FailedTenant>,
}

/// A tenant whose run failed, and why.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FailedTenant {
    pub tenant: String,
    pub error: String,
}

impl RunReport {
    pub(super) fn add(&mut self, other: RunReport) {
        self.tenants += other.tenants;
        self.subscriptions += other.subscriptions;
        self.periods += other.periods;
        self.invoices += other.invoices;
        for (currency, amount) in other.totals_minor {
            *self.totals_minor.entry(currency).or_default() += amount;
        }
        self.ended += other.ended;
        self.beyond_catch_up.extend(other.beyond_catch_up);
        self.reminders += other.reminders;
        self.suspended += other.suspended;
        self.terminated += other.terminated;
        self.failed.extend(other.failed);
    }

    /// Notes a tenant's failed run (logged; the others go on).
    pub(super) fn fail(&mut self, tenant: &TenantRecord, e: &ServiceError) {
        tracing::error!(tenant = %tenant.slug, error = %e, "the billing run of a tenant failed");
        self.failed.push(FailedTenant {
            tenant: tenant.slug.clone(),
            error: e.to_string(),
        });
    }
}

/// What one tenant's run works with.
pub(crate) struct RunContext<'a> {
    pub tenant: &'a TenantRecord,
    pub settings: BillingSettings,
    /// The run's moment: what is due by then is billed, and invoices are
    /// issued then.
    pub at: OffsetDateTime,
    /// When the jobs it queues may run: the run's moment, or now when the
    /// run looks ahead (`--as-of` a future date).
    pub jobs_at: OffsetDateTime,
    pub actor: Actor,
    pub dry_run: bool,
    pub copies: Copies,
}

/// How the customers' copies of the invoices billing issues are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Copies {
    /// In the issuing transaction (billing outside a run: one invoice).
    InTransaction,
    /// By one `notify.invoice_copies` job per chunk, after it commits (the
    /// run: rendering and writing them took over a quarter of its time).
    ByJob,
}

impl RunContext<'_> {
    /// Commits a subscription's state change made by the run (or its
    /// dunning), as the run's actor, at its moment.
    pub(crate) async fn commit_change(
        &self,
        tx: &mut Tx,
        sub: &SubscriptionRecord,
        change: StatusChange<'_>,
    ) -> Result<(), ServiceError> {
        commit_change(
            tx,
            self.tenant,
            &self.actor,
            sub,
            change,
            self.at,
            self.jobs_at,
        )
        .await
    }
}

impl<'a> RunContext<'a> {
    /// Billing at `at` outside a run (a new subscription, a plan change):
    /// its jobs may run at once, and it is never dry.
    pub(crate) fn immediate(
        tenant: &'a TenantRecord,
        settings: BillingSettings,
        at: OffsetDateTime,
    ) -> Self {
        Self {
            tenant,
            settings,
            at,
            jobs_at: at,
            actor: Actor::system("billing"),
            dry_run: false,
            copies: Copies::InTransaction,
        }
    }
}

/// What a run bills: one tenant or all, as of a moment.
#[derive(Debug, Clone)]
pub struct RunScope {
    pub tenant: Option<TenantId>,
    pub as_of: OffsetDateTime,
    /// Rolls every chunk back: reports what would be billed.
    pub dry_run: bool,
    /// Subscriptions per transaction (500 unless a test wants many chunks).
    pub chunk: u32,
}

impl RunScope {
    pub fn new(tenant: Option<TenantId>, as_of: OffsetDateTime) -> Self {
        Self {
            tenant,
            as_of,
            dry_run: false,
            chunk: CHUNK,
        }
    }
}

/// Runs billing for `scope`; `progress` is told how many subscriptions each
/// chunk handled. A tenant whose run fails (its chunk in progress rolls
/// back) stops no other tenant's: it is listed under `failed`.
pub async fn run(
    store: &Store,
    clock: &dyn mpanel_domain::Clock,
    scope: &RunScope,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<RunReport, ServiceError> {
    let tenants = match scope.tenant {
        Some(id) => vec![
            store
                .tenant(id)
                .await?
                .ok_or(ServiceError::NotFound("no such tenant".into()))?,
        ],
        None => store.list_tenants().await?,
    };
    let mut report = RunReport {
        dry_run: scope.dry_run,
        ..RunReport::default()
    };
    for tenant in &tenants {
        match run_tenant(store, clock, tenant, scope, progress).await {
            Ok(done) => report.add(done),
            Err(failed) => {
                report.add(failed.done);
                report.fail(tenant, &failed.error);
            }
        }
    }
    Ok(report)
}

/// A tenant's run that failed: what it did all the same (the chunks it
/// committed, its dunning), and why. Not counted among the tenants run.
pub(super) struct TenantFailed {
    pub done: RunReport,
    pub error: ServiceError,
}

impl<E: Into<ServiceError>> From<E> for TenantFailed {
    fn from(error: E) -> Self {
        Self {
            done: RunReport::default(),
            error: error.into(),
        }
    }
}

/// How many subscriptions are due (for a progress bar).
pub async fn count_due(
    store: &Store,
    tenant: Option<TenantId>,
    as_of: OffsetDateTime,
) -> Result<u64, ServiceError> {
    Ok(store.count_due_subscriptions(tenant, as_of).await?)
}

/// One tenant's run: billing, then dunning, which runs even when billing
/// failed (a renewal that cannot be written holds up no reminder,
/// suspension or termination of invoices already issued).
pub(super) async fn run_tenant(
    store: &Store,
    clock: &dyn mpanel_domain::Clock,
    tenant: &TenantRecord,
    scope: &RunScope,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<RunReport, TenantFailed> {
    let ctx = RunContext {
        tenant,
        settings: settings::load(store, tenant.id).await?.settings,
        at: scope.as_of,
        jobs_at: scope.as_of.min(clock.now()),
        actor: Actor::system("billing"),
        dry_run: scope.dry_run,
        copies: Copies::ByJob,
    };
    let mut report = RunReport {
        dry_run: scope.dry_run,
        tenants: 1,
        ..RunReport::default()
    };
    let billed = super::run_lanes::bill_tenant(store, &ctx, scope, progress, &mut report).await;
    let dunned = dunning::run_tenant(store, &ctx, &mut report).await;
    if let (Err(_), Err(e)) = (&billed, &dunned) {
        tracing::error!(tenant = %tenant.slug, error = %e, "dunning failed too");
    }
    match billed.and(dunned) {
        Ok(()) => Ok(report),
        Err(error) => Err(TenantFailed {
            done: RunReport {
                tenants: 0,
                ..report
            },
            error,
        }),
    }
}

/// Commits, or for a dry run rolls back.
pub(crate) async fn finish(tx: Tx, dry_run: bool) -> Result<(), ServiceError> {
    if dry_run {
        tx.rollback().await?;
    } else {
        tx.commit().await?;
    }
    Ok(())
}

/// The schedule of a subscription; `None` for one-time ones.
pub(crate) fn schedule_of(
    sub: &SubscriptionRecord,
    zone: &str,
) -> Result<Option<Schedule>, ServiceError> {
    let cycle = sub
        .period
        .parse::<Period>()
        .ok()
        .and_then(Cycle::from_period);
    match (cycle, sub.anchor_at) {
        (Some(cycle), Some(anchor)) => Schedule::new(anchor, cycle, zone)
            .map(Some)
            .map_err(ServiceError::internal_msg),
        _ => Ok(None),
    }
}

pub(crate) async fn bill_chunk(
    tx: &mut Tx,
    ctx: &RunContext<'_>,
    due: Vec<DueSubscription>,
    report: &mut RunReport,
) -> Result<(), ServiceError> {
    let plan = plan_periods(ctx, &due, report)?;
    // First, while the chunk holds nothing usage waits on: a usage batch
    // holding one of these terms could otherwise wait on a record this
    // chunk charges further down, and each would wait for the other.
    let closing: Vec<SubscriptionId> = plan
        .ended
        .iter()
        .filter(|d| d.usage.is_some())
        .map(|d| d.sub.id)
        .collect();
    tx.close_usage_of(&closing).await?;
    let claimed: HashSet<(SubscriptionId, i32)> = tx
        .claim_periods(ctx.tenant.id, &plan.claims, ctx.at)
        .await?
        .into_iter()
        .collect();
    // A period another run claimed first is its to invoice.
    let claims: Vec<&PeriodClaim> = plan
        .claims
        .iter()
        .filter(|c| claimed.contains(&(c.subscription, c.index)))
        .collect();
    report.periods += claims.len();
    let by_id: HashMap<SubscriptionId, &DueSubscription> =
        due.iter().map(|d| (d.sub.id, d)).collect();
    let usage = usage_on_latest(tx, &claims, &by_id).await?;
    let mut drafts = Vec::with_capacity(claims.len());
    for c in &claims {
        let (Some(d), Some(invoice)) = (by_id.get(&c.subscription), c.invoice) else {
            continue;
        };
        let zone = &plan.schedules[&c.subscription].zone;
        let mut lines = plan_lines(d, c.start, c.end, zone)?;
        if let Some(extra) = usage.get(&invoice) {
            lines.extend(extra.iter().cloned());
        }
        drafts.push(Draft {
            id: invoice,
            sub: &d.sub,
            lines,
            period: Some((c.subscription, c.index)),
        });
    }
    tx.advance_subscriptions(&plan.advances, ctx.at).await?;
    for d in plan.ended {
        if let Some(draft) = end_of_term(tx, ctx, d, report).await? {
            drafts.push(draft);
        }
    }
    write_invoices(tx, ctx, drafts, report).await
}

/// What a chunk of due subscriptions comes to, before anything is written.
struct PeriodPlan<'a> {
    /// Every period due by the run's moment, each with its invoice's id.
    claims: Vec<PeriodClaim>,
    /// Where each renewing subscription's schedule moves to.
    advances: Vec<Advance>,
    /// Terms that end without renewal.
    ended: Vec<&'a DueSubscription>,
    schedules: HashMap<SubscriptionId, Schedule>,
}

/// The periods each subscription owes by the run's moment (at most the
/// catch-up bound; beyond it the subscription is reported, not billed).
fn plan_periods<'a>(
    ctx: &RunContext<'_>,
    due: &'a [DueSubscription],
    report: &mut RunReport,
) -> Result<PeriodPlan<'a>, ServiceError> {
    let bound = ctx.settings.automation.max_catch_up_periods;
    let mut plan = PeriodPlan {
        claims: Vec::new(),
        advances: Vec::new(),
        ended: Vec::new(),
        schedules: HashMap::new(),
    };
    for d in due {
        report.subscriptions += 1;
        let Some(schedule) = schedule_of(&d.sub, &ctx.tenant.timezone)? else {
            continue;
        };
        if d.sub.cancel_at_period_end || !d.sub.auto_renew {
            plan.ended.push(d);
            continue;
        }
        let next = u32::try_from(d.sub.next_period).unwrap_or(0);
        let last = schedule.index_at(ctx.at);
        if last < next {
            continue;
        }
        if last - next >= bound {
            report.beyond_catch_up.push(d.sub.id);
            continue;
        }
        for k in next..=last {
            let (start, end) = schedule.period(k);
            plan.claims.push(PeriodClaim {
                subscription: d.sub.id,
                index: i32::try_from(k).unwrap_or(i32::MAX),
                start,
                end,
                invoice: Some(InvoiceId::new()),
            });
        }
        let (start, end) = schedule.period(last);
        plan.advances.push(Advance {
            subscription: d.sub.id,
            next_period: i32::try_from(last + 1).unwrap_or(i32::MAX),
            next_bill_at: Some(end),
            current_period_start: Some(start),
            current_period_end: Some(end),
        });
        plan.schedules.insert(d.sub.id, schedule);
    }
    Ok(plan)
}

/// The usage lines by invoice: usage goes on each subscription's latest
/// invoice of this run.
async fn usage_on_latest(
    tx: &mut Tx,
    claims: &[&PeriodClaim],
    by_id: &HashMap<SubscriptionId, &DueSubscription>,
) -> Result<HashMap<InvoiceId, Vec<LineIn>>, ServiceError> {
    let mut latest: HashMap<SubscriptionId, &PeriodClaim> = HashMap::new();
    for c in claims {
        latest.insert(c.subscription, c);
    }
    let charges: Vec<UsageCharge> = latest
        .values()
        .filter(|c| {
            by_id
                .get(&c.subscription)
                .is_some_and(|d| d.usage.is_some())
        })
        .filter_map(|c| {
            Some(UsageCharge {
                subscription: c.subscription,
                before: c.start,
                invoice: c.invoice?,
            })
        })
        .collect();
    usage_lines(tx, &charges, by_id).await
}

/// The usage lines per invoice.
pub(super) async fn usage_lines(
    tx: &mut Tx,
    charges: &[UsageCharge],
    subs: &HashMap<SubscriptionId, &DueSubscription>,
) -> Result<HashMap<InvoiceId, Vec<LineIn>>, ServiceError> {
    let mut out: HashMap<InvoiceId, Vec<LineIn>> = HashMap::new();
    if charges.is_empty() {
        return Ok(out);
    }
    let invoice_of: HashMap<SubscriptionId, InvoiceId> = charges
        .iter()
        .map(|c| (c.subscription, c.invoice))
        .collect();
    for total in tx.charge_usage(charges).await? {
        let Some(pricing) = subs
            .get(&total.subscription)
            .and_then(|d| d.usage.clone())
            .and_then(|u| serde_json::from_value::<UsagePricing>(u).ok())
        else {
            continue;
        };
        if pricing.metric != total.metric {
            continue;
        }
        let lines = rate(&pricing, total.quantity).into_iter().map(|l| LineIn {
            kind: LineKind::Item,
            source: Some(LineSource::Usage),
            description: l.description,
            quantity: l.quantity,
            unit_price: l.unit_price,
            subscription_id: Some(total.subscription),
        });
        if let Some(invoice) = invoice_of.get(&total.subscription) {
            out.entry(*invoice).or_default().extend(lines);
        }
    }
    Ok(out)
}

fn local(at: OffsetDateTime, zone: &jiff::tz::TimeZone, with_time: bool) -> String {
    let zoned = jiff::Timestamp::from_second(at.unix_timestamp())
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .to_zoned(zone.clone());
    if with_time {
        zoned.strftime("%Y-%m-%d %H:%M %Z").to_string()
    } else {
        zoned.date().to_string()
    }
}

/// The plan's and addons' lines for one period.
pub(crate) fn plan_lines(
    d: &DueSubscription,
    start: OffsetDateTime,
    end: OffsetDateTime,
    zone: &jiff::tz::TimeZone,
) -> Result<Vec<LineIn>, ServiceError> {
    let currency = Currency::parse(&d.sub.currency).map_err(ServiceError::internal_msg)?;
    let hourly = d.sub.period == Period::Hourly.as_str();
    let span = format!(
        "{} to {}",
        local(start, zone, hourly),
        local(end, zone, hourly)
    );
    let mut lines = Vec::new();
    let mut push = |name: &str, amount: i64| {
        if amount > 0 {
            lines.push(LineIn {
                kind: LineKind::Item,
                source: Some(LineSource::Subscription),
                description: format!("{name} ({span})"),
                quantity: Decimal::ONE,
                unit_price: from_minor(amount, currency),
                subscription_id: Some(d.sub.id),
            });
        }
    };
    push(&d.product_name, d.sub.amount_minor);
    for addon in addons(&d.sub.addons) {
        push(&addon.name, addon.amount_minor);
    }
    Ok(lines)
}

/// An addon as stored on a subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Addon {
    pub product_id: ProductId,
    pub name: String,
    /// Per period.
    pub amount_minor: i64,
}

pub(crate) fn addons(value: &Value) -> Vec<Addon> {
    serde_json::from_value(value.clone()).unwrap_or_default()
}

/// A term that ended without renewal: the final usage invoice (if any),
/// and the subscription cancelled (or expired: not renewing, or cancelled
/// in its trial), its services terminated.
async fn end_of_term<'a>(
    tx: &mut Tx,
    ctx: &RunContext<'_>,
    d: &'a DueSubscription,
    report: &mut RunReport,
) -> Result<Option<Draft<'a>>, ServiceError> {
    let mut sub = d.sub.clone();
    let Some(ended_at) = sub.next_bill_at else {
        return Ok(None);
    };
    let in_trial = sub.next_period == 0 && sub.trial_end == Some(ended_at);
    let status = if in_trial || !sub.auto_renew {
        SubscriptionStatus::Expired
    } else {
        SubscriptionStatus::Cancelled
    };
    let draft = final_usage::draft(tx, d).await?;
    let before = json!({"status": sub.status});
    sub.status = status;
    sub.next_bill_at = None;
    sub.cancelled_at = Some(ended_at);
    sub.updated_at = ctx.at;
    let change = StatusChange {
        action: if status == SubscriptionStatus::Expired {
            "subscription.expire"
        } else {
            "subscription.cancel"
        },
        before,
        service: Some(ServiceAction::Terminate),
        detail: json!({"at": ended_at.unix_timestamp()}),
    };
    ctx.commit_change(tx, &sub, change).await?;
    report.ended += 1;
    Ok(draft)
}
