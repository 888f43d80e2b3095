//! The scheduled billing run: each tenant once per local day, at or after
//! its configured time (`automation.run_at`), by the recurring
//! `billing.run` job.

use mpanel_store::{Store, TenantRecord};
use time::OffsetDateTime;

use super::run::{RunReport, RunScope, TenantFailed, run_tenant};
use super::settings;
use crate::ServiceError;

/// How many times a day a tenant's scheduled run is tried (a failed one
/// gives its day back for the job's retry, up to this).
const ATTEMPTS_A_DAY: i32 = 3;

/// The scheduled run: each tenant once per local day, at or after its
/// configured time. A day is claimed before it runs, so two nodes never
/// both run it; a run that stopped half-way is finished by the next one
/// (or `mpanel billing run`), as nothing is invoiced twice. One tenant's
/// failure (its settings, its run) stops no other's: a failed run gives
/// its day back (up to [`ATTEMPTS_A_DAY`] runs a day), is listed under
/// `failed`, and the run goes on; the job fails when any did, so its
/// retry runs those tenants again.
pub async fn scheduled(
    store: &Store,
    clock: &dyn mpanel_domain::Clock,
) -> Result<RunReport, ServiceError> {
    let now = clock.now();
    let mut report = RunReport::default();
    for tenant in store.list_tenants().await? {
        match scheduled_tenant(store, clock, &tenant, now).await {
            Ok(Some(done)) => report.add(done),
            Ok(None) => {}
            Err(failed) => {
                report.add(failed.done);
                report.fail(&tenant, &failed.error);
            }
        }
    }
    Ok(report)
}

/// One tenant's part of [`scheduled`]: `None` when it is not due or its
/// day is claimed.
async fn scheduled_tenant(
    store: &Store,
    clock: &dyn mpanel_domain::Clock,
    tenant: &TenantRecord,
    now: OffsetDateTime,
) -> Result<Option<RunReport>, TenantFailed> {
    let Some(day) = due_day(store, tenant, now).await? else {
        return Ok(None);
    };
    let mut tx = store.begin().await?;
    if !tx
        .claim_billing_run(tenant.id, &day, now, ATTEMPTS_A_DAY)
        .await?
    {
        tx.rollback().await?;
        return Ok(None);
    }
    tx.commit().await?;
    let scope = RunScope::new(Some(tenant.id), now);
    let failure = match run_tenant(store, clock, tenant, &scope, &|_| {}).await {
        Ok(done) => return Ok(Some(done)),
        Err(failed) => failed,
    };
    // Given back, so the job's retry runs this tenant again.
    let given_back = async {
        let mut tx = store.begin().await?;
        tx.release_billing_run(tenant.id, &day).await?;
        tx.commit().await
    };
    if let Err(e) = given_back.await {
        tracing::error!(tenant = %tenant.slug, error = %e,
            "the failed billing run's day could not be given back: it runs again tomorrow");
    }
    Err(failure)
}

/// The tenant's local date when its scheduled run is due at `now` (at or
/// after its configured time), `None` when it has none or not yet.
async fn due_day(
    store: &Store,
    tenant: &TenantRecord,
    now: OffsetDateTime,
) -> Result<Option<String>, ServiceError> {
    let settings = settings::load(store, tenant.id).await?.settings;
    let Some((hour, minute)) = settings.automation.run_time() else {
        return Ok(None);
    };
    let Ok(zone) = jiff::tz::TimeZone::get(&tenant.timezone) else {
        return Ok(None);
    };
    let local = jiff::Timestamp::from_second(now.unix_timestamp())
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .to_zoned(zone);
    let due = (local.hour(), local.minute())
        >= (
            i8::try_from(hour).unwrap_or(0),
            i8::try_from(minute).unwrap_or(0),
        );
    Ok(due.then(|| local.date().to_string()))
}
