//! Rounding to minor units: half away from zero, once per line.

use rust_decimal::{Decimal, RoundingStrategy};

use crate::catalog::Currency;

/// `value` (major units) in the currency's minor units, rounded half away
/// from zero. `None` if it does not fit an `i64`.
pub fn to_minor(value: Decimal, currency: Currency) -> Option<i64> {
    let scale = Decimal::from(10i64.checked_pow(u32::from(currency.exponent()))?);
    let minor = value
        .checked_mul(scale)?
        .round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero);
    i64::try_from(minor).ok()
}

/// Minor units back to a decimal amount in major units.
pub fn from_minor(minor: i64, currency: Currency) -> Decimal {
    Decimal::new(minor, u32::from(currency.exponent()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn rounding_is_half_away_from_zero_in_each_currencys_units() {
        let eur = Currency::parse("EUR").unwrap();
        let jpy = Currency::parse("JPY").unwrap();
        let kwd = Currency::parse("KWD").unwrap();
        assert_eq!(to_minor(d("10.005"), eur), Some(1001));
        assert_eq!(to_minor(d("10.004"), eur), Some(1000));
        assert_eq!(to_minor(d("-10.005"), eur), Some(-1001));
        assert_eq!(to_minor(d("99.5"), jpy), Some(100));
        assert_eq!(to_minor(d("1.2345"), kwd), Some(1235));
        assert_eq!(from_minor(1235, kwd), d("1.235"));
        assert_eq!(to_minor(Decimal::MAX, eur), None);
    }
}
