//! The one-time pass that seals secrets stored in clear text by releases
//! from before sealing. SQL cannot encrypt, so it runs in Rust at start-up,
//! after the migrations: every value that does not start with the sealed
//! prefix (`v1:`) is sealed in place, bound to its row, one transaction per
//! table. It is idempotent (a sealed value is left alone) and safe with
//! several nodes starting at once (each update only replaces the clear
//! value it read).
//!
//! Recovery codes stored as unkeyed hashes cannot be re-keyed (the codes
//! themselves are not stored), so they are deleted and a
//! `RECOVERY_CODES_INVALIDATED` security event tells each user.

use mpanel_domain::{TenantId, UserId};
use sqlx::Row;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::identity::security_events::SecurityEvent;
use crate::secret_box::{SecretBox, is_sealed, kind};
use crate::{Store, StoreError, StoreResult, Tx};

/// What the pass changed (counts only, never values).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SealReport {
    pub stripe_secret_keys: u64,
    pub stripe_webhook_secrets: u64,
    pub order_webhook_secrets: u64,
    pub totp_seeds: u64,
    pub signing_keys: u64,
    /// Users whose unkeyed recovery codes were invalidated.
    pub recovery_code_users: u64,
}

impl SealReport {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// The length of an unkeyed (SHA-256) recovery-code hash; keyed ones are
/// longer (they carry a scheme prefix).
const UNKEYED_HASH_LEN: i64 = 32;

/// A signing key stored in clear is exactly this long (random bytes); a
/// sealed one is the longer text `v1:…`.
fn signing_key_is_sealed(stored: &[u8]) -> bool {
    stored.len() != 32 && std::str::from_utf8(stored).is_ok_and(is_sealed)
}

/// Whether a stored signing key is sealed (see the module docs).
pub fn is_sealed_signing_key(stored: &[u8]) -> bool {
    signing_key_is_sealed(stored)
}

fn sealing_failed(e: crate::secret_box::SealError) -> StoreError {
    StoreError::InvalidConfig(format!("cannot seal a stored secret: {e}"))
}

impl Store {
    /// Seals every clear-text secret left by an older release; see the
    /// module docs. Needs the box ([`Store::with_secrets`]).
    pub async fn seal_clear_secrets(&self, now: OffsetDateTime) -> StoreResult<SealReport> {
        let sb = self.secrets().cloned().ok_or_else(|| {
            StoreError::InvalidConfig("no secrets_key: secrets at rest cannot be sealed".into())
        })?;
        let mut report = SealReport::default();

        let mut tx = self.begin().await?;
        let (keys, hooks) = seal_billing_settings(&mut tx, &sb).await?;
        tx.commit().await?;
        report.stripe_secret_keys = keys;
        report.stripe_webhook_secrets = hooks;

        let mut tx = self.begin().await?;
        report.order_webhook_secrets = seal_column(&mut tx, &sb, &ORDER_WEBHOOK_SECRETS).await?;
        tx.commit().await?;

        let mut tx = self.begin().await?;
        report.totp_seeds = seal_column(&mut tx, &sb, &TOTP_SEEDS).await?;
        tx.commit().await?;

        let mut tx = self.begin().await?;
        report.signing_keys = seal_signing_keys(&mut tx, &sb).await?;
        tx.commit().await?;

        let mut tx = self.begin().await?;
        report.recovery_code_users = invalidate_unkeyed_recovery_codes(&mut tx, now).await?;
        tx.commit().await?;
        Ok(report)
    }
}

async fn seal_billing_settings(tx: &mut Tx, sb: &SecretBox) -> StoreResult<(u64, u64)> {
    let rows = on_tx!(tx, |conn| {
        let mut out: Vec<(Uuid, Option<String>, Option<String>)> = Vec::new();
        for row in sqlx::query(
            "SELECT tenant_id, stripe_secret_key, stripe_webhook_secret FROM billing_settings
             WHERE stripe_secret_key NOT LIKE 'v1:%' OR stripe_webhook_secret NOT LIKE 'v1:%'",
        )
        .fetch_all(&mut *conn)
        .await?
        {
            out.push((
                row.try_get("tenant_id")?,
                row.try_get("stripe_secret_key")?,
                row.try_get("stripe_webhook_secret")?,
            ));
        }
        out
    });
    let (mut keys, mut hooks) = (0, 0);
    for (tenant, key, hook) in rows {
        let row = tenant.to_string();
        for (column, value, k, count) in [
            ("stripe_secret_key", key, kind::STRIPE_SECRET_KEY, &mut keys),
            (
                "stripe_webhook_secret",
                hook,
                kind::STRIPE_WEBHOOK_SECRET,
                &mut hooks,
            ),
        ] {
            let Some(clear) = value.filter(|v| !is_sealed(v)) else {
                continue;
            };
            let sealed = sb.seal_str(&clear, k, &row).map_err(sealing_failed)?;
            let sql = sqlx::AssertSqlSafe(format!(
                "UPDATE billing_settings SET {column} = $2 WHERE tenant_id = $1 AND {column} = $3"
            ));
            let n = on_tx!(tx, |conn| {
                sqlx::query(sql)
                    .bind(tenant)
                    .bind(&sealed)
                    .bind(&clear)
                    .execute(conn)
                    .await?
                    .rows_affected()
            });
            *count += n;
        }
    }
    Ok((keys, hooks))
}

/// A secret column sealed bound to its row's tenant and key: the rows
/// still in clear, and how to replace one (only if it is still the value
/// read, so a concurrent start cannot seal twice).
struct SealedColumn {
    /// Selects `row_key`, `tenant_id` and `secret` of the rows in clear.
    select: &'static str,
    /// `$1` the row key, `$2` the sealed value, `$3` the clear one.
    update: &'static str,
    kind: &'static str,
}

const ORDER_WEBHOOK_SECRETS: SealedColumn = SealedColumn {
    select: "SELECT id AS row_key, tenant_id, secret FROM webhook_secrets WHERE secret NOT LIKE 'v1:%'",
    update: "UPDATE webhook_secrets SET secret = $2 WHERE id = $1 AND secret = $3",
    kind: kind::ORDER_WEBHOOK_SECRET,
};

const TOTP_SEEDS: SealedColumn = SealedColumn {
    select: "SELECT user_id AS row_key, tenant_id, secret FROM mfa_totp WHERE secret NOT LIKE 'v1:%'",
    update: "UPDATE mfa_totp SET secret = $2 WHERE user_id = $1 AND secret = $3",
    kind: kind::TOTP_SEED,
};

async fn seal_column(tx: &mut Tx, sb: &SecretBox, column: &SealedColumn) -> StoreResult<u64> {
    let rows = on_tx!(tx, |conn| {
        let mut out: Vec<(Uuid, Uuid, String)> = Vec::new();
        for row in sqlx::query(column.select).fetch_all(&mut *conn).await? {
            out.push((
                row.try_get("row_key")?,
                row.try_get("tenant_id")?,
                row.try_get("secret")?,
            ));
        }
        out
    });
    let mut count = 0;
    for (key, tenant, clear) in rows {
        let sealed = sb
            .seal_str(&clear, column.kind, &kind::tenant_row(tenant, key))
            .map_err(sealing_failed)?;
        count += on_tx!(tx, |conn| {
            sqlx::query(column.update)
                .bind(key)
                .bind(&sealed)
                .bind(&clear)
                .execute(conn)
                .await?
                .rows_affected()
        });
    }
    Ok(count)
}

async fn seal_signing_keys(tx: &mut Tx, sb: &SecretBox) -> StoreResult<u64> {
    let rows = on_tx!(tx, |conn| {
        let mut out: Vec<(String, Vec<u8>)> = Vec::new();
        for row in sqlx::query("SELECT name, secret FROM signing_keys")
            .fetch_all(&mut *conn)
            .await?
        {
            out.push((row.try_get("name")?, row.try_get("secret")?));
        }
        out
    });
    let mut count = 0;
    for (name, clear) in rows {
        if signing_key_is_sealed(&clear) {
            continue;
        }
        let sealed = sb
            .seal(
                &clear,
                &crate::secret_box::binding(kind::SIGNING_KEY, &name),
            )
            .map_err(sealing_failed)?;
        count += on_tx!(tx, |conn| {
            sqlx::query("UPDATE signing_keys SET secret = $2 WHERE name = $1 AND secret = $3")
                .bind(&name)
                .bind(sealed.as_bytes())
                .bind(&clear)
                .execute(conn)
                .await?
                .rows_affected()
        });
    }
    Ok(count)
}

async fn invalidate_unkeyed_recovery_codes(tx: &mut Tx, now: OffsetDateTime) -> StoreResult<u64> {
    let users = on_tx!(tx, |conn| {
        let mut out: Vec<(Uuid, Uuid)> = Vec::new();
        for row in sqlx::query(
            "SELECT DISTINCT tenant_id, user_id FROM mfa_recovery_codes
             WHERE length(code_hash) = $1 AND used_at IS NULL",
        )
        .bind(UNKEYED_HASH_LEN)
        .fetch_all(&mut *conn)
        .await?
        {
            out.push((row.try_get("tenant_id")?, row.try_get("user_id")?));
        }
        sqlx::query("DELETE FROM mfa_recovery_codes WHERE length(code_hash) = $1")
            .bind(UNKEYED_HASH_LEN)
            .execute(&mut *conn)
            .await?;
        out
    });
    for (tenant, user) in &users {
        tx.record_security_event(&SecurityEvent {
            tenant_id: Some(TenantId::from_uuid(*tenant)),
            user_id: Some(UserId::from_uuid(*user)),
            kind: "RECOVERY_CODES_INVALIDATED",
            ip: None,
            detail: Some(serde_json::json!({
                "reason": "recovery codes are now keyed hashes; create new ones by enrolling TOTP again"
            })),
            at: now,
        })
        .await?;
    }
    Ok(u64::try_from(users.len()).unwrap_or(u64::MAX))
}
