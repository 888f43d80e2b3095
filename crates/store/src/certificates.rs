//! HTTPS for hosted sites: their certificates (the SslCertificate model),
//! where each site's issuance stands, tenants' ACME accounts and TLS
//! choices.

use mpanel_domain::tls::{CertificateSource, CertificateStatus, IssuanceState};
use mpanel_domain::{CertificateId, ResourceId, TenantId};
use sqlx::Row;
use time::OffsetDateTime;

use crate::{Store, StoreError, StoreResult, Tx};

/// One certificate a site had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateRecord {
    pub id: CertificateId,
    pub tenant_id: TenantId,
    pub hosting_account_id: ResourceId,
    pub domain: String,
    pub source: CertificateSource,
    pub status: CertificateStatus,
    /// The DNS names it is for.
    pub names: Vec<String>,
    pub serial: String,
    pub issuer: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// Leaf first, then the intermediates.
    pub chain_pem: String,
    /// An uploaded key, sealed, until it is on the node.
    pub key_sealed: Option<String>,
    /// The ACME directory that issued it (revocation goes there).
    pub directory_url: Option<String>,
    pub created_at: OffsetDateTime,
    /// When it stopped being served.
    pub ended_at: Option<OffsetDateTime>,
}

/// Where a site's issuance stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuanceRecord {
    pub hosting_account_id: ResourceId,
    pub tenant_id: TenantId,
    pub state: IssuanceState,
    /// Failures in a row.
    pub attempts: u32,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<OffsetDateTime>,
    pub updated_at: OffsetDateTime,
}

/// A tenant's TLS choices (defaults when it made none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettingsRecord {
    /// `None`: the platform's directory.
    pub acme_directory_url: Option<String>,
    pub acme_contact_email: Option<String>,
    /// 0: no HSTS header.
    pub hsts_max_age_secs: i64,
}

/// A tenant's account at an ACME directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeAccountRecord {
    pub account_url: String,
    pub key_sealed: String,
}

const CERT_COLUMNS: &str = "id, tenant_id, hosting_account_id, domain, source, status, names, \
     serial, issuer, not_before, not_after, chain_pem, key_sealed, directory_url, created_at, ended_at";

fn bad(what: &str, value: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("unknown {what} {value:?}").into())
}

macro_rules! cert_from_row {
    ($row:expr) => {{
        let row = $row;
        let source: String = row.try_get("source")?;
        let status: String = row.try_get("status")?;
        let names: String = row.try_get("names")?;
        CertificateRecord {
            id: CertificateId::from_uuid(row.try_get("id")?),
            tenant_id: TenantId::from_uuid(row.try_get("tenant_id")?),
            hosting_account_id: ResourceId::from_uuid(row.try_get("hosting_account_id")?),
            domain: row.try_get("domain")?,
            source: CertificateSource::parse(&source).ok_or_else(|| bad("source", &source))?,
            status: CertificateStatus::parse(&status).ok_or_else(|| bad("status", &status))?,
            names: names
                .split(',')
                .filter(|n| !n.is_empty())
                .map(str::to_owned)
                .collect(),
            serial: row.try_get("serial")?,
            issuer: row.try_get("issuer")?,
            not_before: row.try_get("not_before")?,
            not_after: row.try_get("not_after")?,
            chain_pem: row.try_get("chain_pem")?,
            key_sealed: row.try_get("key_sealed")?,
            directory_url: row.try_get("directory_url")?,
            created_at: row.try_get("created_at")?,
            ended_at: row.try_get("ended_at")?,
        }
    }};
}

const ISSUANCE_SELECT_BY_ACCOUNT: &str = "SELECT hosting_account_id, tenant_id, state, attempts,
     last_error, next_attempt_at, updated_at FROM tls_issuance WHERE hosting_account_id = $1";
const ISSUANCE_SELECT_BY_STATE: &str = "SELECT hosting_account_id, tenant_id, state, attempts,
     last_error, next_attempt_at, updated_at FROM tls_issuance WHERE state = $1";

macro_rules! issuance_from_row {
    ($row:expr) => {{
        let row = $row;
        let state: String = row.try_get("state")?;
        let attempts: i32 = row.try_get("attempts")?;
        IssuanceRecord {
            hosting_account_id: ResourceId::from_uuid(row.try_get("hosting_account_id")?),
            tenant_id: TenantId::from_uuid(row.try_get("tenant_id")?),
            state: IssuanceState::parse(&state).ok_or_else(|| bad("issuance state", &state))?,
            attempts: u32::try_from(attempts).unwrap_or(0),
            last_error: row.try_get("last_error")?,
            next_attempt_at: row.try_get("next_attempt_at")?,
            updated_at: row.try_get("updated_at")?,
        }
    }};
}

impl Tx {
    pub async fn insert_certificate(&mut self, c: &CertificateRecord) -> StoreResult<()> {
        let sql = sqlx::AssertSqlSafe(format!(
            "INSERT INTO ssl_certificates ({CERT_COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
        ));
        on_tx!(self, |conn| {
            sqlx::query(sql)
                .bind(c.id.as_uuid())
                .bind(c.tenant_id.as_uuid())
                .bind(c.hosting_account_id.as_uuid())
                .bind(&c.domain)
                .bind(c.source.as_str())
                .bind(c.status.as_str())
                .bind(c.names.join(","))
                .bind(&c.serial)
                .bind(&c.issuer)
                .bind(c.not_before)
                .bind(c.not_after)
                .bind(&c.chain_pem)
                .bind(&c.key_sealed)
                .bind(&c.directory_url)
                .bind(c.created_at)
                .bind(c.ended_at)
                .execute(conn)
                .await?;
        });
        Ok(())
    }

    /// Makes `id` the site's served certificate: the one served before is
    /// REPLACED, and an uploaded key's sealed copy is dropped (it is on
    /// the node now).
    pub async fn activate_certificate(
        &mut self,
        account: ResourceId,
        id: CertificateId,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        on_tx!(self, |conn| {
            sqlx::query(
                "UPDATE ssl_certificates SET status = 'REPLACED', ended_at = $2
                 WHERE hosting_account_id = $1 AND status = 'ACTIVE' AND id <> $3",
            )
            .bind(account.as_uuid())
            .bind(now)
            .bind(id.as_uuid())
            .execute(&mut *conn)
            .await?;
            sqlx::query(
                "UPDATE ssl_certificates SET status = 'ACTIVE', key_sealed = NULL
                 WHERE id = $1 AND hosting_account_id = $2",
            )
            .bind(id.as_uuid())
            .bind(account.as_uuid())
            .execute(conn)
            .await?;
        });
        Ok(())
    }
}

impl Tx {
    /// Writes where a site's issuance stands.
    pub async fn set_issuance(&mut self, r: &IssuanceRecord) -> StoreResult<()> {
        let attempts = i32::try_from(r.attempts).unwrap_or(i32::MAX);
        on_tx!(self, |conn| {
            sqlx::query(
                "INSERT INTO tls_issuance (hosting_account_id, tenant_id, state, attempts,
                     last_error, next_attempt_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (hosting_account_id) DO UPDATE SET state = excluded.state,
                     attempts = excluded.attempts, last_error = excluded.last_error,
                     next_attempt_at = excluded.next_attempt_at, updated_at = excluded.updated_at",
            )
            .bind(r.hosting_account_id.as_uuid())
            .bind(r.tenant_id.as_uuid())
            .bind(r.state.as_str())
            .bind(attempts)
            .bind(&r.last_error)
            .bind(r.next_attempt_at)
            .bind(r.updated_at)
            .execute(conn)
            .await?;
        });
        Ok(())
    }

    pub async fn set_tls_settings(
        &mut self,
        tenant: TenantId,
        s: &TlsSettingsRecord,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        on_tx!(self, |conn| {
            sqlx::query(
                "INSERT INTO tls_settings (tenant_id, acme_directory_url, acme_contact_email,
                     hsts_max_age_secs, updated_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (tenant_id) DO UPDATE SET
                     acme_directory_url = excluded.acme_directory_url,
                     acme_contact_email = excluded.acme_contact_email,
                     hsts_max_age_secs = excluded.hsts_max_age_secs,
                     updated_at = excluded.updated_at",
            )
            .bind(tenant.as_uuid())
            .bind(&s.acme_directory_url)
            .bind(&s.acme_contact_email)
            .bind(s.hsts_max_age_secs)
            .bind(now)
            .execute(conn)
            .await?;
        });
        Ok(())
    }
}

impl Store {
    /// Records a certificate on its own.
    pub async fn insert_certificate(&self, c: &CertificateRecord) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        tx.insert_certificate(c).await?;
        tx.commit().await
    }

    /// [`Tx::activate_certificate`] on its own.
    pub async fn activate_certificate(
        &self,
        account: ResourceId,
        id: CertificateId,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        tx.activate_certificate(account, id, now).await?;
        tx.commit().await
    }

    /// Ends a certificate (REVOKED or REMOVED).
    pub async fn end_certificate(
        &self,
        id: CertificateId,
        status: CertificateStatus,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        on_pool!(self.writer, |p| {
            sqlx::query(
                "UPDATE ssl_certificates SET status = $2, ended_at = $3, key_sealed = NULL
                 WHERE id = $1",
            )
            .bind(id.as_uuid())
            .bind(status.as_str())
            .bind(now)
            .execute(p)
            .await?;
        });
        Ok(())
    }

    pub async fn certificate(
        &self,
        tenant: TenantId,
        id: CertificateId,
    ) -> StoreResult<Option<CertificateRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {CERT_COLUMNS} FROM ssl_certificates WHERE tenant_id = $1 AND id = $2"
        ));
        let found = on_pool!(self.pool, |p| {
            match sqlx::query(sql)
                .bind(tenant.as_uuid())
                .bind(id.as_uuid())
                .fetch_optional(p)
                .await?
            {
                Some(row) => Some(cert_from_row!(&row)),
                None => None,
            }
        });
        Ok(found)
    }

    /// A tenant's certificates, newest first: one site's when `account` is
    /// given, those before `before` (an id) when given.
    pub async fn certificates(
        &self,
        tenant: TenantId,
        account: Option<ResourceId>,
        before: Option<CertificateId>,
        limit: u32,
    ) -> StoreResult<Vec<CertificateRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {CERT_COLUMNS} FROM ssl_certificates
             WHERE tenant_id = $1 AND ($2 IS NULL OR hosting_account_id = $2)
               AND ($3 IS NULL OR id < $3)
             ORDER BY id DESC LIMIT $4"
        ));
        let found = on_pool!(self.pool, |p| {
            let mut out = Vec::new();
            for row in sqlx::query(sql)
                .bind(tenant.as_uuid())
                .bind(account.map(|a| a.as_uuid()))
                .bind(before.map(|b| b.as_uuid()))
                .bind(i64::from(limit))
                .fetch_all(p)
                .await?
            {
                out.push(cert_from_row!(&row));
            }
            out
        });
        Ok(found)
    }

    /// The certificates of a site in `status`, newest first.
    pub async fn site_certificates(
        &self,
        account: ResourceId,
        status: CertificateStatus,
    ) -> StoreResult<Vec<CertificateRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {CERT_COLUMNS} FROM ssl_certificates
             WHERE hosting_account_id = $1 AND status = $2 ORDER BY id DESC"
        ));
        let found = on_pool!(self.pool, |p| {
            let mut out = Vec::new();
            for row in sqlx::query(sql)
                .bind(account.as_uuid())
                .bind(status.as_str())
                .fetch_all(p)
                .await?
            {
                out.push(cert_from_row!(&row));
            }
            out
        });
        Ok(found)
    }

    /// Served certificates (every tenant's, or one tenant's) ending before
    /// `before`, soonest first.
    pub async fn certificates_ending(
        &self,
        tenant: Option<TenantId>,
        before: OffsetDateTime,
        limit: u32,
    ) -> StoreResult<Vec<CertificateRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {CERT_COLUMNS} FROM ssl_certificates
             WHERE status = 'ACTIVE' AND not_after < $1 AND ($2 IS NULL OR tenant_id = $2)
             ORDER BY not_after LIMIT $3"
        ));
        let found = on_pool!(self.pool, |p| {
            let mut out = Vec::new();
            for row in sqlx::query(sql)
                .bind(before)
                .bind(tenant.map(|t| t.as_uuid()))
                .bind(i64::from(limit))
                .fetch_all(p)
                .await?
            {
                out.push(cert_from_row!(&row));
            }
            out
        });
        Ok(found)
    }

    /// Live sites (every tenant's) with no served certificate and no
    /// issuance yet: those live before HTTPS existed.
    pub async fn sites_without_https(
        &self,
        limit: u32,
    ) -> StoreResult<Vec<(TenantId, ResourceId)>> {
        let found = on_pool!(self.pool, |p| {
            let mut out = Vec::new();
            for row in sqlx::query(
                "SELECT h.tenant_id, h.id FROM hosting_accounts h
                 WHERE h.status IN ('ACTIVE', 'SUSPENDED')
                   AND NOT EXISTS (SELECT 1 FROM ssl_certificates c
                                   WHERE c.hosting_account_id = h.id AND c.status = 'ACTIVE')
                   AND NOT EXISTS (SELECT 1 FROM tls_issuance i WHERE i.hosting_account_id = h.id)
                 ORDER BY h.id LIMIT $1",
            )
            .bind(i64::from(limit))
            .fetch_all(p)
            .await?
            {
                out.push((
                    TenantId::from_uuid(row.try_get("tenant_id")?),
                    ResourceId::from_uuid(row.try_get("id")?),
                ));
            }
            out
        });
        Ok(found)
    }

    /// Forgets a site's issuance (it was terminated).
    pub async fn delete_issuance(&self, account: ResourceId) -> StoreResult<()> {
        on_pool!(self.writer, |p| {
            sqlx::query("DELETE FROM tls_issuance WHERE hosting_account_id = $1")
                .bind(account.as_uuid())
                .execute(p)
                .await?;
        });
        Ok(())
    }

    /// How many served certificates end before `before` (every tenant's,
    /// or one tenant's).
    pub async fn count_certificates_ending(
        &self,
        tenant: Option<TenantId>,
        before: OffsetDateTime,
    ) -> StoreResult<i64> {
        let n = on_pool!(self.pool, |p| {
            sqlx::query(
                "SELECT COUNT(*) AS n FROM ssl_certificates
                 WHERE status = 'ACTIVE' AND not_after < $1 AND ($2 IS NULL OR tenant_id = $2)",
            )
            .bind(before)
            .bind(tenant.map(|t| t.as_uuid()))
            .fetch_one(p)
            .await?
            .try_get::<i64, _>("n")?
        });
        Ok(n)
    }

    pub async fn issuance(&self, account: ResourceId) -> StoreResult<Option<IssuanceRecord>> {
        let found = on_pool!(self.pool, |p| {
            match sqlx::query(ISSUANCE_SELECT_BY_ACCOUNT)
                .bind(account.as_uuid())
                .fetch_optional(p)
                .await?
            {
                Some(row) => Some(issuance_from_row!(&row)),
                None => None,
            }
        });
        Ok(found)
    }

    /// Every site's issuance in `state`.
    pub async fn issuances_in(&self, state: IssuanceState) -> StoreResult<Vec<IssuanceRecord>> {
        let found = on_pool!(self.pool, |p| {
            let mut out = Vec::new();
            for row in sqlx::query(ISSUANCE_SELECT_BY_STATE)
                .bind(state.as_str())
                .fetch_all(p)
                .await?
            {
                out.push(issuance_from_row!(&row));
            }
            out
        });
        Ok(found)
    }

    /// Writes where a site's issuance stands.
    pub async fn set_issuance(&self, r: &IssuanceRecord) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        tx.set_issuance(r).await?;
        tx.commit().await
    }

    pub async fn tls_settings(&self, tenant: TenantId) -> StoreResult<TlsSettingsRecord> {
        let found = on_pool!(self.pool, |p| {
            match sqlx::query(
                "SELECT acme_directory_url, acme_contact_email, hsts_max_age_secs
                 FROM tls_settings WHERE tenant_id = $1",
            )
            .bind(tenant.as_uuid())
            .fetch_optional(p)
            .await?
            {
                Some(row) => TlsSettingsRecord {
                    acme_directory_url: row.try_get("acme_directory_url")?,
                    acme_contact_email: row.try_get("acme_contact_email")?,
                    hsts_max_age_secs: row.try_get("hsts_max_age_secs")?,
                },
                None => TlsSettingsRecord::default(),
            }
        });
        Ok(found)
    }

    pub async fn acme_account(
        &self,
        tenant: TenantId,
        directory_url: &str,
    ) -> StoreResult<Option<AcmeAccountRecord>> {
        let found = on_pool!(self.pool, |p| {
            match sqlx::query(
                "SELECT account_url, key_sealed FROM acme_accounts
                 WHERE tenant_id = $1 AND directory_url = $2",
            )
            .bind(tenant.as_uuid())
            .bind(directory_url)
            .fetch_optional(p)
            .await?
            {
                Some(row) => Some(AcmeAccountRecord {
                    account_url: row.try_get("account_url")?,
                    key_sealed: row.try_get("key_sealed")?,
                }),
                None => None,
            }
        });
        Ok(found)
    }

    /// Records a tenant's account at a directory unless one is there
    /// already (two workers raced): the one kept is returned.
    pub async fn save_acme_account(
        &self,
        tenant: TenantId,
        directory_url: &str,
        account: &AcmeAccountRecord,
        now: OffsetDateTime,
    ) -> StoreResult<AcmeAccountRecord> {
        on_pool!(self.writer, |p| {
            sqlx::query(
                "INSERT INTO acme_accounts (tenant_id, directory_url, account_url, key_sealed,
                     created_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (tenant_id, directory_url) DO NOTHING",
            )
            .bind(tenant.as_uuid())
            .bind(directory_url)
            .bind(&account.account_url)
            .bind(&account.key_sealed)
            .bind(now)
            .execute(p)
            .await?;
        });
        self.acme_account(tenant, directory_url)
            .await?
            .ok_or_else(|| StoreError::Database(sqlx::Error::RowNotFound))
    }
}
