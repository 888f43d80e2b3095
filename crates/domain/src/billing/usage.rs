//! Rating metered usage: a period's usage total into invoice lines.
//!
//! Per unit (`USAGE_BASED`): one line, every unit at `unit_price`. Tiered
//! (`USAGE_TIERED`), with tier `up_to` the inclusive upper bound of the units
//! in that tier: graduated pricing gives one line per tier that holds units,
//! each at its tier's price; volume pricing gives one line with all units at
//! the price of the tier the total falls in. A missing `tier_mode` means
//! graduated, and units above a closed last tier are priced at the last tier.

use rust_decimal::Decimal;

use crate::catalog::UsagePricing;
use crate::catalog::product::{Tier, TierMode};

/// One invoice line a usage total rates to (major-unit decimal unit price).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RatedLine {
    pub description: String,
    pub quantity: Decimal,
    pub unit_price: Decimal,
}

/// The lines `quantity` units of `pricing.metric` cost: per unit
/// (`USAGE_BASED`: `unit_price` set, one line), graduated tiers (one line
/// per tier that holds units, each at its tier price), volume tiers (all
/// units at the price of the tier the total falls in; one line). Zero or
/// negative quantity → no lines.
pub fn rate(pricing: &UsagePricing, quantity: i64) -> Vec<RatedLine> {
    let Ok(q) = u64::try_from(quantity) else {
        return Vec::new();
    };
    if q == 0 {
        return Vec::new();
    }
    let metric: String = pricing.metric.chars().take(64).collect();
    let line = |units: u64, unit_price: Decimal, note: String| RatedLine {
        description: format!("{metric}: {q}{note}"),
        quantity: Decimal::from(units),
        unit_price,
    };
    if let Some(price) = pricing.unit_price {
        return vec![line(q, price, String::new())];
    }
    let Some(last) = pricing.tiers.len().checked_sub(1) else {
        return Vec::new();
    };
    let upper = |i: usize, t: &Tier| {
        if i == last {
            u64::MAX
        } else {
            t.up_to.unwrap_or(u64::MAX)
        }
    };
    match pricing.tier_mode.unwrap_or(TierMode::Graduated) {
        TierMode::Graduated => {
            let mut lines = Vec::new();
            let mut below = 0u64; // units in earlier tiers
            for (i, tier) in pricing.tiers.iter().enumerate() {
                if q <= below {
                    break;
                }
                let top = upper(i, tier).min(q);
                if top <= below {
                    continue; // a malformed tier that does not rise
                }
                let range = if top == below + 1 {
                    top.to_string()
                } else {
                    format!("{}–{top}", below + 1)
                };
                lines.push(line(
                    top - below,
                    tier.unit_price,
                    format!(" ({range} at tier {})", i + 1),
                ));
                below = top;
            }
            lines
        }
        TierMode::Volume => {
            let (i, tier) = pricing
                .tiers
                .iter()
                .enumerate()
                .find(|(i, t)| q <= upper(*i, t))
                .unwrap_or((last, &pricing.tiers[last]));
            vec![line(
                q,
                tier.unit_price,
                format!(" (all at tier {})", i + 1),
            )]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn tiered(mode: TierMode) -> UsagePricing {
        UsagePricing {
            metric: "bandwidth_gb".into(),
            unit_price: None,
            tiers: vec![
                Tier {
                    up_to: Some(100),
                    unit_price: d("0.02"),
                },
                Tier {
                    up_to: None,
                    unit_price: d("0.015"),
                },
            ],
            tier_mode: Some(mode),
        }
    }

    fn l(description: &str, quantity: i64, price: &str) -> RatedLine {
        RatedLine {
            description: description.into(),
            quantity: Decimal::from(quantity),
            unit_price: d(price),
        }
    }

    #[test]
    fn per_unit() {
        let p = UsagePricing {
            metric: "cpu_hours".into(),
            unit_price: Some(d("0.0125")),
            tiers: vec![],
            tier_mode: None,
        };
        assert_eq!(rate(&p, 40), [l("cpu_hours: 40", 40, "0.0125")]);
        assert!(rate(&p, 0).is_empty());
        assert!(rate(&p, -5).is_empty());
    }

    #[test]
    fn graduated() {
        let p = tiered(TierMode::Graduated);
        assert_eq!(
            rate(&p, 150),
            [
                l("bandwidth_gb: 150 (1–100 at tier 1)", 100, "0.02"),
                l("bandwidth_gb: 150 (101–150 at tier 2)", 50, "0.015"),
            ]
        );
        assert_eq!(
            rate(&p, 100),
            [l("bandwidth_gb: 100 (1–100 at tier 1)", 100, "0.02")]
        );
        assert_eq!(
            rate(&p, 101),
            [
                l("bandwidth_gb: 101 (1–100 at tier 1)", 100, "0.02"),
                l("bandwidth_gb: 101 (101 at tier 2)", 1, "0.015"),
            ]
        );
        assert_eq!(rate(&p, 1), [l("bandwidth_gb: 1 (1 at tier 1)", 1, "0.02")]);
        assert!(rate(&p, 0).is_empty());
        assert!(rate(&p, -1).is_empty());
    }

    #[test]
    fn volume() {
        let p = tiered(TierMode::Volume);
        assert_eq!(
            rate(&p, 100),
            [l("bandwidth_gb: 100 (all at tier 1)", 100, "0.02")]
        );
        assert_eq!(
            rate(&p, 101),
            [l("bandwidth_gb: 101 (all at tier 2)", 101, "0.015")]
        );
        assert!(rate(&p, 0).is_empty());
    }

    #[test]
    fn closed_last_tier_extends_and_descriptions_stay_short() {
        let mut p = tiered(TierMode::Graduated);
        p.tiers[1].up_to = Some(200);
        p.metric = "m".repeat(500);
        let lines = rate(&p, 300);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1].quantity, Decimal::from(200));
        assert!(lines.iter().all(|l| l.description.chars().count() <= 200));
        p.tier_mode = Some(TierMode::Volume);
        assert_eq!(rate(&p, 300)[0].unit_price, d("0.015"));
        p.tiers.clear();
        assert!(rate(&p, 300).is_empty());
    }
}
