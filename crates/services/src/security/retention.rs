//! The daily retention pass: short-lived security records go after their
//! time, and each tenant's security events after the retention its policy
//! sets (events of no tenant after the platform default).

use mpanel_domain::Clock;
use mpanel_domain::security::SecurityPolicy;
use mpanel_store::Store;
use mpanel_store::retention::Pruned;
use time::Duration;

use crate::ServiceError;

pub async fn run(store: &Store, clock: &dyn Clock) -> Result<Pruned, ServiceError> {
    let now = clock.now();
    let mut pruned = store.prune_short_lived(now).await?;
    for tenant in store.list_tenants().await? {
        let days = super::policy::load(store, tenant.id)
            .await?
            .security_event_retention_days;
        pruned.security_events += store
            .prune_security_events(Some(tenant.id), now - Duration::days(i64::from(days)))
            .await?;
    }
    let default_days = SecurityPolicy::default().security_event_retention_days;
    pruned.security_events += store
        .prune_security_events(None, now - Duration::days(i64::from(default_days)))
        .await?;
    tracing::info!(?pruned, "retention pass");
    Ok(pruned)
}
