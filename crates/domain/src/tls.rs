//! HTTPS for hosted sites: the states of a site's certificates and of its
//! issuance, when a certificate is renewed, how long a failed issuance
//! waits, and the jobs that do the work.

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::jobs::JobPayload;
use crate::{CertificateId, ResourceId, TenantId};

/// `tls.issue`: obtains (or renews) a site's certificate from the tenant's
/// ACME directory and installs it.
pub const ISSUE_JOB: &str = "tls.issue";
/// `tls.install`: puts an uploaded certificate and its key on the node.
pub const INSTALL_JOB: &str = "tls.install";
/// `tls.renew`: daily, queues `tls.issue` for certificates due for renewal.
pub const RENEW_JOB: &str = "tls.renew";

/// Let's Encrypt's production directory: the platform's default CA.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// Certificates ending within this are shown to the operator.
pub const EXPIRY_WARNING: Duration = Duration::days(14);

/// Failed issuances wait 1 min, 2, 4 … up to this, then try on.
pub const MAX_RETRY_WAIT: Duration = Duration::hours(6);

/// After this many failures in a row an issuance stops until the next
/// daily renewal run (or a customer's "issue now").
pub const MAX_ATTEMPTS: u32 = 12;

/// Where a certificate came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CertificateSource {
    Acme,
    Uploaded,
}

/// What became of a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CertificateStatus {
    /// Uploaded, not yet on the node.
    Pending,
    /// The one the site serves.
    Active,
    /// Superseded by a renewal or an upload.
    Replaced,
    /// Revoked at the CA (the site was terminated).
    Revoked,
    /// Taken off the node without revocation (an upload, at termination).
    Removed,
}

/// Where a site's issuance stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IssuanceState {
    /// Queued, not tried yet.
    Waiting,
    /// The last attempt failed; the next is at `next_attempt_at`.
    Failing,
    /// Gave up after [`MAX_ATTEMPTS`]; the daily run tries again.
    Failed,
    /// The certificate was issued and is served.
    Issued,
}

macro_rules! str_enum {
    ($t:ty { $($v:ident = $s:literal),* $(,)? }) => {
        impl $t {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$v => $s),* }
            }
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some(Self::$v),)* _ => None }
            }
        }
    };
}

str_enum!(CertificateSource { Acme = "ACME", Uploaded = "UPLOADED" });
str_enum!(CertificateStatus {
    Pending = "PENDING",
    Active = "ACTIVE",
    Replaced = "REPLACED",
    Revoked = "REVOKED",
    Removed = "REMOVED",
});
str_enum!(IssuanceState {
    Waiting = "WAITING",
    Failing = "FAILING",
    Failed = "FAILED",
    Issued = "ISSUED",
});

/// When a certificate is renewed: 30 days before it ends, or at two
/// thirds of its life when it lives less than 90 days (a 6-day
/// certificate is renewed 2 days before its end).
pub fn renew_at(not_before: OffsetDateTime, not_after: OffsetDateTime) -> OffsetDateTime {
    let life = not_after - not_before;
    let third: Duration = life / 3;
    not_after - third.min(Duration::days(30))
}

/// The wait after failure number `attempts` (from 1): 1 min doubling up to
/// [`MAX_RETRY_WAIT`].
pub fn retry_wait(attempts: u32) -> Duration {
    let exp = attempts.saturating_sub(1).min(20);
    (Duration::minutes(1) * 2i32.pow(exp)).min(MAX_RETRY_WAIT)
}

/// Whether a hosting account in `status` serves a site that can hold a
/// certificate (suspended ones answer their suspended page over HTTPS).
pub fn serves_site(status: crate::provisioning::ResourceStatus) -> bool {
    use crate::provisioning::ResourceStatus;
    matches!(status, ResourceStatus::Active | ResourceStatus::Suspended)
}

/// The names a site's certificate is for: the domain and its `www.`.
pub fn site_names(domain: &str) -> Vec<String> {
    vec![domain.to_owned(), format!("www.{domain}")]
}

/// HSTS: off, or a max-age of at most two years.
pub fn check_hsts(max_age_secs: i64) -> Result<(), String> {
    if (0..=63_072_000).contains(&max_age_secs) {
        Ok(())
    } else {
        Err("hsts_max_age_secs must be between 0 (off) and 63072000 (two years)".into())
    }
}

/// The payload of `tls.issue`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueCertificate {
    pub tenant_id: TenantId,
    pub hosting_account_id: ResourceId,
    /// Asked for by a person ("issue now"): it replaces an uploaded
    /// certificate, which automatic issuance and renewal leave alone.
    #[serde(default)]
    pub requested: bool,
}

impl JobPayload for IssueCertificate {
    const KIND: &'static str = ISSUE_JOB;
}

/// The payload of `tls.install`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallCertificate {
    pub tenant_id: TenantId,
    pub hosting_account_id: ResourceId,
    pub certificate_id: CertificateId,
}

impl JobPayload for InstallCertificate {
    const KIND: &'static str = INSTALL_JOB;
}

/// The payload of `tls.renew` (none).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenewDue {}

impl JobPayload for RenewDue {
    const KIND: &'static str = RENEW_JOB;
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn long_certificates_renew_30_days_before_their_end() {
        let start = datetime!(2026-01-01 0:00 UTC);
        let end = start + Duration::days(90);
        assert_eq!(renew_at(start, end), start + Duration::days(60));
        let year = start + Duration::days(365);
        assert_eq!(renew_at(start, year), year - Duration::days(30));
    }

    #[test]
    fn short_certificates_renew_at_two_thirds_of_their_life() {
        let start = datetime!(2026-01-01 0:00 UTC);
        assert_eq!(
            renew_at(start, start + Duration::days(6)),
            start + Duration::days(4)
        );
    }

    #[test]
    fn failed_issuances_back_off_to_six_hours() {
        assert_eq!(retry_wait(1), Duration::minutes(1));
        assert_eq!(retry_wait(3), Duration::minutes(4));
        assert_eq!(retry_wait(12), MAX_RETRY_WAIT);
    }

    #[test]
    fn states_read_back_as_written() {
        for s in ["PENDING", "ACTIVE", "REPLACED", "REVOKED", "REMOVED"] {
            assert_eq!(CertificateStatus::parse(s).map(|x| x.as_str()), Some(s));
        }
        assert!(check_hsts(-1).is_err());
        assert!(check_hsts(31_536_000).is_ok());
    }
}
