//! The overview's certificates section: sites' served certificates that
//! end within [`mpanel_domain::tls::EXPIRY_WARNING`].

use mpanel_store::Store;
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::ServiceError;

/// Sites' certificates that end soon (renewal failing, or uploaded ones
/// nobody replaced).
#[derive(Debug, Serialize, ToSchema)]
pub struct OverviewCertificates {
    /// The window: certificates ending within this many days.
    pub expiring_within_days: i64,
    pub expiring_count: i64,
    /// Those certificates, soonest first (at most 100).
    pub expiring: Vec<OverviewExpiringCertificate>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OverviewExpiringCertificate {
    pub certificate_id: String,
    pub tenant_id: String,
    pub hosting_account_id: String,
    pub domain: String,
    /// `ACME` or `UPLOADED`.
    pub source: String,
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
}

/// Served certificates ending within [`mpanel_domain::tls::EXPIRY_WARNING`].
pub(super) async fn certificates(
    store: &Store,
    tenant: Option<mpanel_domain::TenantId>,
    now: OffsetDateTime,
) -> Result<OverviewCertificates, ServiceError> {
    let window = mpanel_domain::tls::EXPIRY_WARNING;
    let before = now + window;
    let expiring_count = store.count_certificates_ending(tenant, before).await?;
    let expiring = store
        .certificates_ending(tenant, before, 100)
        .await?
        .into_iter()
        .map(|c| OverviewExpiringCertificate {
            certificate_id: c.id.to_string(),
            tenant_id: c.tenant_id.to_string(),
            hosting_account_id: c.hosting_account_id.to_string(),
            domain: c.domain,
            source: c.source.as_str().to_owned(),
            not_after: c.not_after,
        })
        .collect();
    Ok(OverviewCertificates {
        expiring_within_days: window.whole_days(),
        expiring_count,
        expiring,
    })
}
