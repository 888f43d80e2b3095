//! A tenant's billing settings: who issues the invoices (legal name,
//! address, country, tax id), how tax is charged (inclusive or exclusive,
//! a rate per customer country), payment terms, and the Stripe keys (write
//! only: the API says whether they are set, never what they are).

use std::collections::BTreeMap;

use mpanel_domain::TenantId;
use mpanel_domain::billing::dunning::DunningPolicy;
use mpanel_domain::billing::tax::{TaxMode, Treatment, treatment};
use mpanel_store::billing::BillingSettingsRecord;
use mpanel_store::secret_box::kind;
use mpanel_store::{Store, Tx};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::ServiceError;
use crate::context::{Audited, Context};

/// The settings as stored (and returned).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct BillingSettings {
    /// The name on invoices; the tenant's name when empty.
    pub legal_name: Option<String>,
    /// At most 6 lines of up to 200 characters.
    #[schema(max_items = 6)]
    pub address_lines: Vec<String>,
    /// ISO 3166-1 alpha-2 of the seller (decides EU reverse charge).
    #[schema(schema_with = crate::api_schema::country_code_or_null)]
    pub country: Option<String>,
    pub tax_id: Option<String>,
    pub tax_mode: TaxMode,
    /// Rate per customer country, e.g. `{"DE": "0.19"}`.
    #[serde(with = "rates")]
    #[schema(schema_with = rates::schema)]
    pub tax_rates: BTreeMap<String, Decimal>,
    /// Days from issue to due date.
    #[schema(maximum = 365)]
    pub payment_terms_days: u32,
    /// The billing run and dunning.
    pub automation: Automation,
    /// Stripe's publishable key (`pk_…`, public by design): the
    /// console's card payment page gives it to Stripe.js. Card payments
    /// are offered to customers once it and the secret key are set.
    pub stripe_publishable_key: Option<String>,
}

/// When the daily billing run happens, how far it catches up after
/// downtime, and the dunning policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Automation {
    /// The local time (tenant time zone, `HH:MM`) of the daily run.
    #[schema(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    pub run_at: String,
    /// A subscription with more missed periods than this is reported and
    /// left for an operator, never billed in a loop.
    #[schema(minimum = 1, maximum = 10000)]
    pub max_catch_up_periods: u32,
    pub dunning: DunningPolicy,
    /// When a saved card is declined, try again after these many days
    /// (counted from the previous try).
    #[schema(value_type = Vec<u16>)]
    pub autopay_retry_days: Vec<u32>,
}

impl Default for Automation {
    fn default() -> Self {
        Self {
            run_at: "02:00".into(),
            max_catch_up_periods: 100,
            dunning: DunningPolicy::default(),
            autopay_retry_days: vec![1, 3, 5],
        }
    }
}

impl Automation {
    /// The run time as (hour, minute).
    pub fn run_time(&self) -> Option<(u8, u8)> {
        let (h, m) = self.run_at.split_once(':')?;
        let (h, m) = (h.parse::<u8>().ok()?, m.parse::<u8>().ok()?);
        (h < 24 && m < 60 && self.run_at.len() == 5).then_some((h, m))
    }

    fn check(&self) -> Result<(), ServiceError> {
        if self.run_time().is_none() {
            return Err(ServiceError::invalid(
                "automation.run_at",
                "a local time written HH:MM, e.g. \"02:00\"",
            ));
        }
        if !(1..=10_000).contains(&self.max_catch_up_periods) {
            return Err(ServiceError::invalid(
                "automation.max_catch_up_periods",
                "must be 1 to 10000",
            ));
        }
        self.dunning.check().map_err(|(field, message)| {
            ServiceError::invalid(format!("automation.dunning.{field}"), message)
        })
    }
}

impl Default for BillingSettings {
    fn default() -> Self {
        Self {
            legal_name: None,
            address_lines: Vec::new(),
            country: None,
            tax_id: None,
            tax_mode: TaxMode::Exclusive,
            tax_rates: BTreeMap::new(),
            payment_terms_days: 14,
            automation: Automation::default(),
            stripe_publishable_key: None,
        }
    }
}

/// Rates travel as strings ("0.19"), never as floats.
mod rates {
    use std::collections::BTreeMap;

    use rust_decimal::Decimal;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        rates: &BTreeMap<String, Decimal>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_map(rates.iter().map(|(k, v)| (k, v.to_string())))
    }

    /// `{"DE": "0.19"}`: ISO country codes to decimal fractions below 1.
    pub fn schema() -> utoipa::openapi::schema::Object {
        use utoipa::openapi::schema::{Object, Type};
        let rate = Object::builder()
            .schema_type(Type::String)
            .pattern(Some("^0(\\.[0-9]{1,6})?$"));
        let country = Object::builder()
            .schema_type(Type::String)
            .pattern(Some("^[A-Z]{2}$"));
        Object::builder()
            .schema_type(Type::Object)
            .property_names(Some(country))
            .additional_properties(Some(rate))
            .build()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<String, Decimal>, D::Error> {
        let raw = BTreeMap::<String, String>::deserialize(d)?;
        raw.into_iter()
            .map(|(k, v)| {
                v.parse::<Decimal>()
                    .map(|r| (k, r))
                    .map_err(|_| serde::de::Error::custom(format!("rate {v:?} is not a decimal")))
            })
            .collect()
    }
}

impl BillingSettings {
    fn check(&self) -> Result<(), ServiceError> {
        let country_ok = |c: &str| c.len() == 2 && c.chars().all(|ch| ch.is_ascii_uppercase());
        if let Some(c) = &self.country
            && mpanel_domain::contact::country(c).is_err()
        {
            return Err(ServiceError::invalid(
                "country",
                "must be an ISO 3166-1 alpha-2 code such as DE",
            ));
        }
        for (country, rate) in &self.tax_rates {
            if !country_ok(country) {
                return Err(ServiceError::invalid(
                    format!("tax_rates.{country}"),
                    "keys are ISO 3166-1 alpha-2 codes such as DE",
                ));
            }
            if *rate < Decimal::ZERO || *rate >= Decimal::ONE {
                return Err(ServiceError::invalid(
                    format!("tax_rates.{country}"),
                    "a rate is a decimal fraction from 0 to below 1, e.g. \"0.19\"",
                ));
            }
        }
        self.automation.check()?;
        if self.payment_terms_days > 365 {
            return Err(ServiceError::invalid(
                "payment_terms_days",
                "must be 0 to 365 days",
            ));
        }
        if let Some(key) = &self.stripe_publishable_key
            && (!key.starts_with("pk_") || key.len() > 255)
        {
            return Err(ServiceError::invalid(
                "stripe_publishable_key",
                "a Stripe publishable key starts with pk_ (the secret key, sk_, goes in stripe_secret_key)",
            ));
        }
        if self.address_lines.len() > 6 || self.address_lines.iter().any(|l| l.len() > 200) {
            return Err(ServiceError::invalid(
                "address_lines",
                "at most 6 lines of 200 characters",
            ));
        }
        Ok(())
    }

    /// How a sale to this customer is taxed.
    pub fn treatment_for(
        &self,
        customer_country: &str,
        customer_tax_id: Option<&str>,
    ) -> Treatment {
        treatment(
            self.country.as_deref().unwrap_or(""),
            customer_country,
            customer_tax_id,
            self.tax_rates.get(customer_country).copied(),
        )
    }
}

/// The settings and whether Stripe is set up. The Stripe keys are held
/// sealed (`v1:…`, bound to the tenant); [`LoadedSettings::open_stripe_secret_key`]
/// and [`LoadedSettings::open_stripe_webhook_secret`] open them where used.
#[derive(Clone, PartialEq)]
pub struct LoadedSettings {
    pub settings: BillingSettings,
    /// Sealed.
    pub stripe_secret_key: Option<String>,
    /// Sealed.
    pub stripe_webhook_secret: Option<String>,
    tenant: Option<TenantId>,
}

impl LoadedSettings {
    /// The Stripe secret key in clear, for a call to Stripe.
    pub fn open_stripe_secret_key(&self, store: &Store) -> Result<Option<String>, ServiceError> {
        self.open(
            store,
            self.stripe_secret_key.as_deref(),
            kind::STRIPE_SECRET_KEY,
        )
    }

    /// The Stripe webhook signing secret in clear, for a signature check.
    pub fn open_stripe_webhook_secret(
        &self,
        store: &Store,
    ) -> Result<Option<String>, ServiceError> {
        self.open(
            store,
            self.stripe_webhook_secret.as_deref(),
            kind::STRIPE_WEBHOOK_SECRET,
        )
    }

    fn open(
        &self,
        store: &Store,
        sealed: Option<&str>,
        what: &str,
    ) -> Result<Option<String>, ServiceError> {
        let (Some(sealed), Some(tenant)) = (sealed, self.tenant) else {
            return Ok(None);
        };
        let clear = crate::sealed::secret_box(store)?
            .open_str(sealed, what, &tenant.to_string())
            .inspect_err(|err| {
                tracing::warn!(%tenant, %err, "the stored {what} does not open; it is not used");
            })?;
        Ok(Some(clear))
    }
}

/// The keys never reach a log through `{:?}`.
impl std::fmt::Debug for LoadedSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedSettings")
            .field("settings", &self.settings)
            .field("stripe_secret_key_set", &self.stripe_secret_key.is_some())
            .field(
                "stripe_webhook_secret_set",
                &self.stripe_webhook_secret.is_some(),
            )
            .finish()
    }
}

impl std::fmt::Debug for SettingsUpdate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SettingsUpdate")
            .field("settings", &self.settings)
            .field(
                "stripe_secret_key",
                &self.stripe_secret_key.as_ref().map(|_| "[redacted]"),
            )
            .field(
                "stripe_webhook_secret",
                &self.stripe_webhook_secret.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

fn decode(
    tenant: TenantId,
    record: Option<BillingSettingsRecord>,
) -> Result<LoadedSettings, ServiceError> {
    match record {
        None => Ok(LoadedSettings {
            settings: BillingSettings::default(),
            stripe_secret_key: None,
            stripe_webhook_secret: None,
            tenant: Some(tenant),
        }),
        Some(r) => Ok(LoadedSettings {
            settings: serde_json::from_value(r.settings)
                .map_err(|e| ServiceError::internal("billing settings", e))?,
            stripe_secret_key: r.stripe_secret_key,
            stripe_webhook_secret: r.stripe_webhook_secret,
            tenant: Some(tenant),
        }),
    }
}

/// The caller's tenant's settings (`GET /api/billing/settings`).
pub async fn get(cx: &Context) -> Result<LoadedSettings, ServiceError> {
    load(&cx.store, cx.tenant_id()).await
}

/// A tenant's settings, for the billing run, autopay and the Stripe
/// webhook, which act without a caller.
pub(crate) async fn load(store: &Store, tenant: TenantId) -> Result<LoadedSettings, ServiceError> {
    decode(tenant, store.billing_settings(tenant).await?)
}

pub(crate) async fn load_in(tx: &mut Tx, tenant: TenantId) -> Result<LoadedSettings, ServiceError> {
    decode(tenant, tx.billing_settings(tenant).await?)
}

/// A change to the settings; Stripe keys are only replaced when given
/// (an empty string removes one).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsUpdate {
    #[serde(flatten)]
    pub settings: BillingSettings,
    pub stripe_secret_key: Option<String>,
    pub stripe_webhook_secret: Option<String>,
}

/// The settings' schema with more properties (see [`crate::api_schema`]).
pub fn settings_schema_with(
    extra: Vec<crate::api_schema::Extra>,
) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::PartialSchema;
    crate::api_schema::object_with(BillingSettings::schema(), extra)
}

impl utoipa::PartialSchema for SettingsUpdate {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        let key = |name: &'static str, what: &str| crate::api_schema::Extra {
            name,
            schema: ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some(format!(
                    "{what}; replaced only when given, an empty string removes it (write-only)"
                )))
                .into(),
            required: false,
        };
        settings_schema_with(vec![
            key("stripe_secret_key", "The Stripe secret key"),
            key("stripe_webhook_secret", "The Stripe webhook signing secret"),
        ])
    }
}

impl utoipa::ToSchema for SettingsUpdate {
    fn schemas(
        out: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        <BillingSettings as utoipa::ToSchema>::schemas(out);
    }
}

/// Who may change the Stripe keys (where the tenant's money goes): a
/// tenant admin who entered the password within the last few minutes.
/// Other settings need only the billing permission.
fn check_key_change(
    who: &crate::identity::Principal,
    update: &SettingsUpdate,
    now: time::OffsetDateTime,
) -> Result<(), ServiceError> {
    if update.stripe_secret_key.is_none() && update.stripe_webhook_secret.is_none() {
        return Ok(());
    }
    if !matches!(
        who.role(),
        mpanel_domain::identity::Role::TenantAdmin | mpanel_domain::identity::Role::SuperAdmin
    ) {
        return Err(ServiceError::Forbidden(
            "only a tenant admin may change the Stripe keys".into(),
        ));
    }
    crate::identity::step_up::require_recent(who, now)
}

/// A Stripe key or secret that is set (not cleared with "") has the
/// prefix Stripe gives its kind: a key pasted into the wrong field is
/// refused before it is sealed.
fn check_stripe_formats(update: &SettingsUpdate) -> Result<(), ServiceError> {
    if let Some(key) = &update.stripe_secret_key
        && !key.is_empty()
        && !(key.starts_with("sk_") || key.starts_with("rk_"))
    {
        return Err(ServiceError::invalid(
            "stripe_secret_key",
            "a Stripe secret key starts with sk_ (or rk_ for a restricted key)",
        ));
    }
    if let Some(secret) = &update.stripe_webhook_secret
        && !secret.is_empty()
        && !secret.starts_with("whsec_")
    {
        return Err(ServiceError::invalid(
            "stripe_webhook_secret",
            "a Stripe webhook signing secret starts with whsec_",
        ));
    }
    let live = |key: &str| key.split('_').nth(1) == Some("live");
    if let (Some(secret), Some(public)) = (
        update
            .stripe_secret_key
            .as_deref()
            .filter(|k| !k.is_empty()),
        update.settings.stripe_publishable_key.as_deref(),
    ) && live(secret) != live(public)
    {
        return Err(ServiceError::invalid(
            "stripe_publishable_key",
            "the publishable key and the secret key are one a test key, the other a live key",
        ));
    }
    Ok(())
}

/// The settings as the audit log shows them: the keys only as set or not.
fn summary(s: &LoadedSettings) -> serde_json::Value {
    json!({
        "settings": serde_json::to_value(&s.settings).unwrap_or_default(),
        "stripe_secret_key_set": s.stripe_secret_key.is_some(),
        "stripe_webhook_secret_set": s.stripe_webhook_secret.is_some(),
    })
}

/// Replaces the settings as `who` asks; the Stripe keys only as
/// [`check_key_change`] allows.
pub async fn update(cx: &Context, update: SettingsUpdate) -> Result<LoadedSettings, ServiceError> {
    check_key_change(&cx.principal, &update, cx.now())?;
    let tenant = cx.tenant_id();
    update.settings.check()?;
    check_stripe_formats(&update)?;
    let now = cx.now();
    // Sealed before the transaction, bound to this tenant and column.
    let sb = crate::sealed::secret_box(&cx.store)?;
    let row = tenant.to_string();
    let seal = |new: Option<String>, what: &str| -> Result<Option<String>, ServiceError> {
        Ok(match new {
            Some(v) if v.is_empty() => Some(String::new()),
            Some(v) => Some(sb.seal_str(&v, what, &row)?),
            None => None,
        })
    };
    let new_key = seal(update.stripe_secret_key, kind::STRIPE_SECRET_KEY)?;
    let new_hook = seal(update.stripe_webhook_secret, kind::STRIPE_WEBHOOK_SECRET)?;
    let mut tx = cx.store.begin().await?;
    let before = load_in(&mut tx, tenant).await?;
    let pick = |new: Option<String>, old: Option<String>| match new {
        Some(v) if v.is_empty() => None,
        Some(v) => Some(v),
        None => old,
    };
    let after = LoadedSettings {
        settings: update.settings,
        stripe_secret_key: pick(new_key, before.stripe_secret_key.clone()),
        stripe_webhook_secret: pick(new_hook, before.stripe_webhook_secret.clone()),
        tenant: Some(tenant),
    };
    let settings = serde_json::to_value(&after.settings)
        .map_err(|e| ServiceError::internal("cannot serialize billing settings", e))?;
    tx.save_billing_settings(
        tenant,
        &BillingSettingsRecord {
            settings: settings.clone(),
            stripe_secret_key: after.stripe_secret_key.clone(),
            stripe_webhook_secret: after.stripe_webhook_secret.clone(),
            updated_at: now,
        },
    )
    .await?;
    tx.record_audit(&cx.audit(Audited {
        action: "billing.settings.update",
        target_type: "tenant",
        target_id: tenant.to_string(),
        before: Some(summary(&before)),
        after: Some(summary(&after)),
        at: now,
    }))
    .await?;
    tx.commit().await?;
    Ok(after)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stripe_keys_never_show_in_debug_output() {
        let loaded = LoadedSettings {
            settings: BillingSettings::default(),
            stripe_secret_key: Some("sk_live_secret".into()),
            stripe_webhook_secret: Some("whsec_secret".into()),
            tenant: None,
        };
        let shown = format!("{loaded:?}");
        assert!(
            !shown.contains("sk_live_secret") && !shown.contains("whsec_secret"),
            "{shown}"
        );
        let record = BillingSettingsRecord {
            settings: serde_json::json!({}),
            stripe_secret_key: Some("sk_live_secret".into()),
            stripe_webhook_secret: None,
            updated_at: time::OffsetDateTime::UNIX_EPOCH,
        };
        assert!(!format!("{record:?}").contains("sk_live_secret"));
    }
}
