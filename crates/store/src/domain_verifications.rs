//! The proof of control of each ordered domain (see
//! `mpanel_domain::orders::domain_control`): its token, whether it is
//! proven, how and when, and what the last check saw.

use mpanel_domain::orders::domain_control::{VerificationMethod, VerificationStatus};
use mpanel_domain::{SubscriptionId, TenantId};
use sqlx::Row;
use time::OffsetDateTime;

use crate::{Store, StoreResult, Tx};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainVerification {
    pub subscription_id: SubscriptionId,
    pub tenant_id: TenantId,
    pub domain: String,
    pub token: String,
    pub status: VerificationStatus,
    pub method: Option<VerificationMethod>,
    pub last_result: Option<String>,
    pub checked_at: Option<OffsetDateTime>,
    pub waiting_since: Option<OffsetDateTime>,
    pub verified_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
}

const COLUMNS: &str = "subscription_id, tenant_id, domain, token, status, method, last_result, \
    checked_at, waiting_since, verified_at, created_at";

const INSERT: &str = "INSERT INTO domain_verifications (subscription_id, tenant_id, domain, token, \
    status, created_at) VALUES ($1, $2, $3, $4, 'PENDING', $5) \
    ON CONFLICT (subscription_id) DO NOTHING";

macro_rules! verification_from_row {
    ($row:expr) => {{
        let row = $row;
        let status: String = row.try_get("status")?;
        let method: Option<String> = row.try_get("method")?;
        DomainVerification {
            subscription_id: SubscriptionId::from_uuid(row.try_get("subscription_id")?),
            tenant_id: TenantId::from_uuid(row.try_get("tenant_id")?),
            domain: row.try_get("domain")?,
            token: row.try_get("token")?,
            status: status
                .parse()
                .map_err(|e: String| sqlx::Error::Decode(e.into()))?,
            method: method
                .map(|m| m.parse())
                .transpose()
                .map_err(|e: String| sqlx::Error::Decode(e.into()))?,
            last_result: row.try_get("last_result")?,
            checked_at: row.try_get("checked_at")?,
            waiting_since: row.try_get("waiting_since")?,
            verified_at: row.try_get("verified_at")?,
            created_at: row.try_get("created_at")?,
        }
    }};
}

impl Tx {
    /// Records a new, pending proof for the subscription's domain (nothing
    /// if it has one).
    pub async fn insert_domain_verification(
        &mut self,
        tenant: TenantId,
        subscription: SubscriptionId,
        domain: &str,
        token: &str,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        on_tx!(self, |conn| {
            sqlx::query(INSERT)
                .bind(subscription.as_uuid())
                .bind(tenant.as_uuid())
                .bind(domain)
                .bind(token)
                .bind(now)
                .execute(&mut *conn)
                .await?;
        });
        Ok(())
    }
}

impl Store {
    /// Whether another subscription, of any tenant, held `domain` on the
    /// platform before: its registrar may still point at our name servers
    /// after it left ("dangling" delegation), so for such a name the
    /// delegation proves nothing about who orders it now.
    pub async fn domain_held_before(
        &self,
        domain: &str,
        subscription: SubscriptionId,
    ) -> StoreResult<bool> {
        let found = on_pool!(self.pool, |p| {
            sqlx::query(
                "SELECT 1 FROM domains
                 WHERE name = $1 AND subscription_id <> $2 AND status = 'RELEASED' LIMIT 1",
            )
            .bind(domain)
            .bind(subscription.as_uuid())
            .fetch_optional(p)
            .await?
            .is_some()
        });
        Ok(found)
    }

    /// The same, outside a transaction (a provisioning job of an order
    /// placed before proofs existed); the row that is there afterwards
    /// (`None` only if it was removed between the two statements).
    pub async fn ensure_domain_verification(
        &self,
        tenant: TenantId,
        subscription: SubscriptionId,
        domain: &str,
        token: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Option<DomainVerification>> {
        on_pool!(self.writer, |p| {
            sqlx::query(INSERT)
                .bind(subscription.as_uuid())
                .bind(tenant.as_uuid())
                .bind(domain)
                .bind(token)
                .bind(now)
                .execute(p)
                .await?;
        });
        self.domain_verification(subscription).await
    }

    /// The subscription's proof, if it has one (any tenant: the
    /// provisioning job knows only the subscription).
    pub async fn domain_verification(
        &self,
        subscription: SubscriptionId,
    ) -> StoreResult<Option<DomainVerification>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM domain_verifications WHERE subscription_id = $1"
        ));
        let found = on_pool!(self.pool, |p| {
            match sqlx::query(sql)
                .bind(subscription.as_uuid())
                .fetch_optional(p)
                .await?
            {
                Some(row) => Some(verification_from_row!(&row)),
                None => None,
            }
        });
        Ok(found)
    }

    /// The tenant's proofs for these subscriptions (an order's items): one
    /// query, whatever their number.
    pub async fn domain_verifications_of(
        &self,
        tenant: TenantId,
        subscriptions: &[SubscriptionId],
    ) -> StoreResult<Vec<DomainVerification>> {
        if subscriptions.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders = (2..subscriptions.len() + 2)
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM domain_verifications
              WHERE tenant_id = $1 AND subscription_id IN ({placeholders})"
        ));
        let found = on_pool!(self.pool, |p| {
            let mut q = sqlx::query(sql).bind(tenant.as_uuid());
            for sub in subscriptions {
                q = q.bind(sub.as_uuid());
            }
            let mut out = Vec::new();
            for row in q.fetch_all(p).await? {
                out.push(verification_from_row!(&row));
            }
            out
        });
        Ok(found)
    }

    /// What the last check saw, while still pending (the first such check
    /// starts the wait).
    pub async fn note_domain_check(
        &self,
        subscription: SubscriptionId,
        result: &str,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        on_pool!(self.writer, |p| {
            sqlx::query(
                "UPDATE domain_verifications SET last_result = $2, checked_at = $3,
                     waiting_since = COALESCE(waiting_since, $3)
                 WHERE subscription_id = $1 AND status = 'PENDING'",
            )
            .bind(subscription.as_uuid())
            .bind(result)
            .bind(now)
            .execute(p)
            .await?;
        });
        Ok(())
    }

    /// Records the proof: verified now, by `method`.
    pub async fn mark_domain_verified(
        &self,
        subscription: SubscriptionId,
        method: VerificationMethod,
        result: &str,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        on_pool!(self.writer, |p| {
            sqlx::query(
                "UPDATE domain_verifications SET status = 'VERIFIED', method = $2,
                     last_result = $3, checked_at = $4, verified_at = $4
                 WHERE subscription_id = $1 AND status = 'PENDING'",
            )
            .bind(subscription.as_uuid())
            .bind(method.as_str())
            .bind(result)
            .bind(now)
            .execute(p)
            .await?;
        });
        Ok(())
    }
}
