//! Tax: per-tenant rates by customer country, exclusive or inclusive
//! prices, and EU B2B reverse charge.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::money::to_minor;
use crate::catalog::Currency;

/// EU member states (ISO 3166-1 alpha-2; Greece is `GR` here, `EL` in VAT ids).
pub const EU: &[&str] = &[
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IT",
    "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
];

/// Whether prices include tax.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaxMode {
    /// Tax is added on top of the price.
    Exclusive,
    /// The price already contains the tax.
    Inclusive,
}

/// The tax treatment of one sale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Treatment {
    /// Charge `rate` (e.g. 0.19).
    Rate(Decimal),
    /// EU B2B across borders: no tax charged, the customer accounts for it.
    ReverseCharge,
    /// No rate configured for the country: no tax.
    None,
}

/// The note an invoice under reverse charge must carry.
pub const REVERSE_CHARGE_NOTE: &str =
    "Reverse charge: VAT to be accounted for by the recipient (Art. 196 Directive 2006/112/EC).";

/// How a sale from `seller_country` to a customer in `customer_country`
/// (with or without a tax id) is taxed, given the tenant's rate for the
/// customer's country.
pub fn treatment(
    seller_country: &str,
    customer_country: &str,
    customer_tax_id: Option<&str>,
    rate: Option<Decimal>,
) -> Treatment {
    let business = customer_tax_id.is_some_and(|t| !t.trim().is_empty());
    if business
        && EU.contains(&seller_country)
        && EU.contains(&customer_country)
        && seller_country != customer_country
    {
        return Treatment::ReverseCharge;
    }
    match rate {
        Some(r) if r > Decimal::ZERO => Treatment::Rate(r),
        _ => Treatment::None,
    }
}

/// A line's net and tax in minor units, each rounded once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    pub net_minor: i64,
    pub tax_minor: i64,
}

/// Splits a line `amount_minor` (already rounded) into net and tax.
/// Exclusive: the amount is net and tax is added. Inclusive: the amount is
/// gross and the tax is taken out of it.
pub fn split(amount_minor: i64, rate: Decimal, mode: TaxMode, currency: Currency) -> Option<Split> {
    let amount = super::money::from_minor(amount_minor, currency);
    match mode {
        TaxMode::Exclusive => Some(Split {
            net_minor: amount_minor,
            tax_minor: to_minor(amount.checked_mul(rate)?, currency)?,
        }),
        TaxMode::Inclusive => {
            let net = amount.checked_div(Decimal::ONE + rate)?;
            let net_minor = to_minor(net, currency)?;
            Some(Split {
                net_minor,
                tax_minor: amount_minor - net_minor,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::str::FromStr;

    #[test]
    fn reverse_charge_is_for_eu_businesses_in_another_member_state() {
        let rate = Decimal::from_str("0.19").unwrap();
        let r = Some(rate);
        assert_eq!(
            treatment("DE", "FR", Some("FR123"), r),
            Treatment::ReverseCharge
        );
        assert_eq!(
            treatment("DE", "DE", Some("DE123"), r),
            Treatment::Rate(rate)
        );
        assert_eq!(treatment("DE", "FR", None, r), Treatment::Rate(rate));
        assert_eq!(treatment("DE", "US", Some("US1"), None), Treatment::None);
    }

    #[test]
    fn worked_examples() {
        let eur = Currency::parse("EUR").unwrap();
        let rate = Decimal::from_str("0.19").unwrap();
        assert_eq!(
            split(1000, rate, TaxMode::Exclusive, eur),
            Some(Split {
                net_minor: 1000,
                tax_minor: 190
            })
        );
        // 11.90 gross at 19 %: 10.00 net, 1.90 tax.
        assert_eq!(
            split(1190, rate, TaxMode::Inclusive, eur),
            Some(Split {
                net_minor: 1000,
                tax_minor: 190
            })
        );
        // 0.05 at 19 % exclusive: 0.0095 rounds to 0.01.
        assert_eq!(
            split(5, rate, TaxMode::Exclusive, eur),
            Some(Split {
                net_minor: 5,
                tax_minor: 1
            })
        );
    }

    proptest! {
        /// Inclusive and exclusive agree within one minor unit per line.
        #[test]
        fn inclusive_and_exclusive_round_trip_within_one_minor_unit(net in 0i64..10_000_000, bp in 0u32..3000) {
            let eur = Currency::parse("EUR").unwrap();
            let rate = Decimal::new(i64::from(bp), 4);
            let ex = split(net, rate, TaxMode::Exclusive, eur).unwrap();
            let gross = ex.net_minor + ex.tax_minor;
            let inc = split(gross, rate, TaxMode::Inclusive, eur).unwrap();
            prop_assert_eq!(inc.net_minor + inc.tax_minor, gross);
            prop_assert!((inc.net_minor - net).abs() <= 1, "net {} vs {}", inc.net_minor, net);
        }
    }
}
