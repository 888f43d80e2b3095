//! A tenant's billing settings (a JSON document the services crate owns)
//! and its Stripe keys, which are never returned by the API.

use mpanel_domain::TenantId;
use serde_json::Value;
use sqlx::Row;
use sqlx::types::Json;
use time::OffsetDateTime;

use crate::{Store, StoreResult, Tx};

#[derive(Clone, PartialEq)]
pub struct BillingSettingsRecord {
    pub settings: Value,
    pub stripe_secret_key: Option<String>,
    pub stripe_webhook_secret: Option<String>,
    pub updated_at: OffsetDateTime,
}

/// The keys never reach a log through `{:?}`.
impl std::fmt::Debug for BillingSettingsRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BillingSettingsRecord")
            .field("settings", &self.settings)
            .field(
                "stripe_secret_key",
                &self.stripe_secret_key.as_ref().map(|_| "[redacted]"),
            )
            .field(
                "stripe_webhook_secret",
                &self.stripe_webhook_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

const SELECT: &str = "SELECT settings, stripe_secret_key, stripe_webhook_secret, updated_at \
     FROM billing_settings WHERE tenant_id = $1";

macro_rules! settings_from_row {
    ($row:expr) => {{
        let row = $row;
        let settings: Json<Value> = row.try_get("settings")?;
        BillingSettingsRecord {
            settings: settings.0,
            stripe_secret_key: row.try_get("stripe_secret_key")?,
            stripe_webhook_secret: row.try_get("stripe_webhook_secret")?,
            updated_at: row.try_get("updated_at")?,
        }
    }};
}

impl Store {
    pub async fn billing_settings(
        &self,
        tenant: TenantId,
    ) -> StoreResult<Option<BillingSettingsRecord>> {
        let found = on_pool!(self.pool, |p| {
            match sqlx::query(SELECT)
                .bind(tenant.as_uuid())
                .fetch_optional(p)
                .await?
            {
                Some(row) => Some(settings_from_row!(&row)),
                None => None,
            }
        });
        Ok(found)
    }
}

impl Tx {
    pub async fn billing_settings(
        &mut self,
        tenant: TenantId,
    ) -> StoreResult<Option<BillingSettingsRecord>> {
        let found = on_tx!(self, |conn| {
            match sqlx::query(SELECT)
                .bind(tenant.as_uuid())
                .fetch_optional(conn)
                .await?
            {
                Some(row) => Some(settings_from_row!(&row)),
                None => None,
            }
        });
        Ok(found)
    }

    pub async fn save_billing_settings(
        &mut self,
        tenant: TenantId,
        record: &BillingSettingsRecord,
    ) -> StoreResult<()> {
        on_tx!(self, |conn| {
            sqlx::query(
                "INSERT INTO billing_settings (tenant_id, settings, stripe_secret_key, stripe_webhook_secret, updated_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (tenant_id) DO UPDATE SET settings = excluded.settings,
                    stripe_secret_key = excluded.stripe_secret_key,
                    stripe_webhook_secret = excluded.stripe_webhook_secret,
                    updated_at = excluded.updated_at",
            )
            .bind(tenant.as_uuid())
            .bind(Json(&record.settings))
            .bind(&record.stripe_secret_key)
            .bind(&record.stripe_webhook_secret)
            .bind(record.updated_at)
            .execute(conn)
            .await?;
        });
        Ok(())
    }
}
