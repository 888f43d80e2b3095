//! Invoice lines as the API takes them: decimals as strings (or whole
//! numbers), never floats, and every field named when it is wrong.

use mpanel_domain::SubscriptionId;
use mpanel_domain::billing::invoice::{LineInput, LineKind, LineSource};
use mpanel_store::billing::InvoiceLineRecord;
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::ServiceError;

/// `"12.50"` or `3`; a JSON fraction (`12.5`) is refused so that no float
/// ever carries money.
pub fn decimal<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) => s
            .trim()
            .parse::<Decimal>()
            .map_err(|_| serde::de::Error::custom(format!("{s:?} is not a decimal number"))),
        Value::Number(n) if n.is_i64() => Ok(Decimal::from(n.as_i64().unwrap_or_default())),
        _ => Err(serde::de::Error::custom(
            "write decimals as strings, e.g. \"12.50\"",
        )),
    }
}

/// One line: quantity × unit price, both decimals written as strings.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LineIn {
    pub kind: LineKind,
    pub source: Option<LineSource>,
    #[schema(min_length = 1, max_length = 500)]
    pub description: String,
    #[serde(deserialize_with = "decimal")]
    #[schema(value_type = String, pattern = "^-?[0-9]{1,9}(\\.[0-9]{1,4})?$", example = "1")]
    pub quantity: Decimal,
    /// In major units; discounts are negative.
    #[serde(deserialize_with = "decimal")]
    #[schema(value_type = String, pattern = "^-?[0-9]{1,9}(\\.[0-9]{1,4})?$", example = "12.50")]
    pub unit_price: Decimal,
    pub subscription_id: Option<SubscriptionId>,
}

impl LineIn {
    pub fn input(&self) -> LineInput {
        LineInput {
            kind: self.kind,
            description: self.description.trim().to_owned(),
            quantity: self.quantity,
            unit_price: self.unit_price,
        }
    }

    pub fn source(&self) -> LineSource {
        self.source.unwrap_or(LineSource::Manual)
    }
}

/// A stored line back as input (to price it again at issue).
pub fn from_record(r: &InvoiceLineRecord) -> Result<LineIn, ServiceError> {
    let bad = |what: &str| ServiceError::internal_msg(format!("stored line {}: bad {what}", r.id));
    Ok(LineIn {
        kind: r.kind.parse().map_err(|_| bad("kind"))?,
        source: Some(r.source.parse().map_err(|_| bad("source"))?),
        description: r.description.clone(),
        quantity: r.quantity.parse().map_err(|_| bad("quantity"))?,
        unit_price: r.unit_price.parse().map_err(|_| bad("unit price"))?,
        subscription_id: r.subscription_id,
    })
}
