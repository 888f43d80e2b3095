//! Usage ingestion: `{metric, quantity, occurred_at, idempotency_key}`
//! records for metered subscriptions, one at a time or in batches of up to
//! 5,000 (a batch fits the default 1 MiB body limit). A batch is checked
//! whole first: one bad record refuses it all (naming the record) and
//! stores nothing. A key seen before for the same
//! subscription is skipped, so a retried batch counts once.

use std::collections::HashMap;

use mpanel_domain::billing::subscription::SubscriptionStatus;
use mpanel_domain::catalog::UsagePricing;
use mpanel_domain::{SubscriptionId, TenantId};
use mpanel_store::Tx;
use mpanel_store::billing::NewUsage;
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;

use crate::actor::Change;
use crate::{Context, ServiceError};

/// At most this many records per batch.
pub const MAX_BATCH: usize = 5_000;

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UsageInput {
    /// The product's metric, e.g. `bandwidth_gb`.
    #[schema(pattern = "^[a-z0-9_]{1,64}$")]
    pub metric: String,
    #[schema(minimum = 0)]
    pub quantity: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    /// The sender's id of this record: a repeat is counted once.
    #[schema(pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]{1,200}$")]
    pub idempotency_key: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchRecord {
    pub subscription_id: SubscriptionId,
    #[serde(flatten)]
    pub usage: UsageInput,
}

/// A usage record and its subscription, as one flat object.
impl utoipa::PartialSchema for BatchRecord {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::api_schema::object_with(
            UsageInput::schema(),
            vec![crate::api_schema::Extra {
                name: "subscription_id",
                schema: utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .format(Some(utoipa::openapi::schema::SchemaFormat::KnownFormat(
                        utoipa::openapi::schema::KnownFormat::Uuid,
                    )))
                    .into(),
                required: true,
            }],
        )
    }
}

impl utoipa::ToSchema for BatchRecord {}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchInput {
    #[schema(min_items = 1, max_items = 5000)]
    pub records: Vec<BatchRecord>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Ingested {
    /// New records stored.
    pub accepted: u64,
    /// Records whose key had been seen (ignored).
    pub duplicates: u64,
}

/// `POST /api/billing/subscriptions/:id/usage`.
pub async fn record(
    cx: &Context,
    subscription: SubscriptionId,
    input: UsageInput,
) -> Result<Ingested, ServiceError> {
    let records = vec![BatchRecord {
        subscription_id: subscription,
        usage: input,
    }];
    ingest(cx, &records, "").await
}

/// `POST /api/billing/usage/batch`.
pub async fn record_batch(cx: &Context, input: BatchInput) -> Result<Ingested, ServiceError> {
    if input.records.is_empty() || input.records.len() > MAX_BATCH {
        return Err(ServiceError::invalid(
            "records",
            format!("1 to {MAX_BATCH} records per batch"),
        ));
    }
    ingest(cx, &input.records, "records").await
}

fn field(prefix: &str, index: usize, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}[{index}].{name}")
    }
}

async fn ingest(
    cx: &Context,
    records: &[BatchRecord],
    prefix: &str,
) -> Result<Ingested, ServiceError> {
    let store = &cx.store;
    let tenant = cx.tenant_id();
    let actor = &cx.actor;
    let now = cx.now();
    check_records(records, prefix, now)?;
    let mut ids: Vec<SubscriptionId> = records.iter().map(|r| r.subscription_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut tx = store.begin().await?;
    check_targets(&mut tx, tenant, &ids, records, prefix).await?;
    let rows: Vec<NewUsage> = records
        .iter()
        .map(|r| NewUsage {
            subscription: r.subscription_id,
            metric: r.usage.metric.clone(),
            quantity: r.usage.quantity,
            occurred_at: r.usage.occurred_at,
            idempotency_key: r.usage.idempotency_key.clone(),
        })
        .collect();
    let accepted = tx.insert_usage(tenant, &rows, now).await?;
    // One audit row per request: a row per record would halve ingestion.
    tx.record_audit(&actor.audit(Change {
        tenant,
        action: "usage.record",
        target_type: "subscription",
        target_id: if ids.len() == 1 {
            ids[0].to_string()
        } else {
            format!("{} subscriptions", ids.len())
        },
        before: None,
        after: Some(json!({"records": rows.len(), "accepted": accepted})),
        at: now,
    }))
    .await?;
    tx.commit().await?;
    Ok(Ingested {
        accepted,
        duplicates: rows.len() as u64 - accepted,
    })
}

/// Each record on its own: a quantity, a key, a moment not (much) ahead
/// of the clock. Nothing is read yet.
fn check_records(
    records: &[BatchRecord],
    prefix: &str,
    now: OffsetDateTime,
) -> Result<(), ServiceError> {
    // A few minutes of clock skew between the meter and us is allowed.
    let latest = now + time::Duration::minutes(5);
    for (i, r) in records.iter().enumerate() {
        let u = &r.usage;
        if u.quantity < 0 {
            return Err(ServiceError::invalid(
                field(prefix, i, "quantity"),
                "must not be negative",
            ));
        }
        if u.idempotency_key.is_empty()
            || u.idempotency_key.len() > 200
            || u.idempotency_key.chars().any(char::is_control)
        {
            return Err(ServiceError::invalid(
                field(prefix, i, "idempotency_key"),
                "1 to 200 characters, no control characters",
            ));
        }
        if u.occurred_at > latest {
            return Err(ServiceError::invalid(
                field(prefix, i, "occurred_at"),
                "is in the future",
            ));
        }
    }
    Ok(())
}

/// Every record's subscription is the tenant's, usage-billed on the
/// record's metric and still live (read in `tx`, one query for all).
async fn check_targets(
    tx: &mut Tx,
    tenant: TenantId,
    ids: &[SubscriptionId],
    records: &[BatchRecord],
    prefix: &str,
) -> Result<(), ServiceError> {
    let targets: HashMap<SubscriptionId, (String, Option<UsagePricing>)> = tx
        .usage_targets(tenant, ids)
        .await?
        .into_iter()
        .map(|t| {
            let pricing = t.usage.and_then(|u| serde_json::from_value(u).ok());
            (t.subscription, (t.status, pricing))
        })
        .collect();
    for (i, r) in records.iter().enumerate() {
        let Some((status, pricing)) = targets.get(&r.subscription_id) else {
            if prefix.is_empty() {
                return Err(ServiceError::NotFound("no such subscription".into()));
            }
            return Err(ServiceError::invalid(
                field(prefix, i, "subscription_id"),
                "no such subscription",
            ));
        };
        let Some(pricing) = pricing else {
            return Err(ServiceError::invalid(
                field(prefix, i, "subscription_id"),
                "the subscription's product is not usage-billed",
            ));
        };
        if pricing.metric != r.usage.metric {
            return Err(ServiceError::invalid(
                field(prefix, i, "metric"),
                format!("this subscription meters {:?}", pricing.metric),
            ));
        }
        let terminal = status
            .parse::<SubscriptionStatus>()
            .map(SubscriptionStatus::is_terminal)
            .unwrap_or(true);
        if terminal {
            return Err(ServiceError::Conflict(format!(
                "subscription {} is {status}: it records no more usage",
                r.subscription_id
            )));
        }
    }
    Ok(())
}
