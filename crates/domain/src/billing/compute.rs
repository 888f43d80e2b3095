//! An invoice's amounts from its lines: each line rounded once to minor
//! units, its tax split off (or added) once, and the totals summed from the
//! rounded lines, never re-rounded.

use rust_decimal::Decimal;

use super::invoice::{LineInput, LineKind, line_amount};
use super::tax::{Split, TaxMode, Treatment, split};
use crate::catalog::Currency;

/// One line's amounts in minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ComputedLine {
    /// quantity × unit price, rounded once (net when exclusive, gross when
    /// inclusive).
    pub amount_minor: i64,
    pub net_minor: i64,
    pub tax_minor: i64,
    /// The rate applied (0 under reverse charge, for TAX lines, or without
    /// a configured rate).
    pub tax_rate: Decimal,
}

/// An invoice's lines and totals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Computed {
    pub lines: Vec<ComputedLine>,
    pub subtotal_minor: i64,
    pub tax_minor: i64,
    pub total_minor: i64,
}

/// Why a line cannot be priced: its index and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub index: usize,
    pub field: &'static str,
    pub message: String,
}

/// At most this many lines on one invoice.
pub const MAX_LINES: usize = 500;

fn line_error(index: usize, field: &'static str, message: impl Into<String>) -> LineError {
    LineError {
        index,
        field,
        message: message.into(),
    }
}

/// Line `i`'s amount in minor units, once its description, quantity and
/// sign suit its kind.
fn check_line(i: usize, line: &LineInput, currency: Currency) -> Result<i64, LineError> {
    let description = line.description.trim();
    if description.is_empty() || description.chars().count() > 500 {
        return Err(line_error(i, "description", "must be 1 to 500 characters"));
    }
    if description.chars().any(char::is_control) {
        return Err(line_error(
            i,
            "description",
            "must not contain control characters",
        ));
    }
    if line.quantity <= Decimal::ZERO {
        return Err(line_error(i, "quantity", "must be greater than zero"));
    }
    let amount = line_amount(line, currency)
        .filter(|a| a.unsigned_abs() <= 1_000_000_000_000_000)
        .ok_or_else(|| line_error(i, "unit_price", "the line amount is too large"))?;
    match line.kind {
        LineKind::Item if amount < 0 => {
            return Err(line_error(
                i,
                "unit_price",
                "an ITEM cannot be negative; use a DISCOUNT or ADJUSTMENT line",
            ));
        }
        LineKind::Discount if amount > 0 => {
            return Err(line_error(
                i,
                "unit_price",
                "a DISCOUNT is negative (it reduces the invoice)",
            ));
        }
        _ => {}
    }
    Ok(amount)
}

/// Prices `lines` in `currency` under `treatment` and `mode`.
pub fn compute(
    lines: &[LineInput],
    currency: Currency,
    treatment: &Treatment,
    mode: TaxMode,
) -> Result<Computed, LineError> {
    if lines.len() > MAX_LINES {
        return Err(line_error(
            MAX_LINES,
            "lines",
            format!("an invoice has at most {MAX_LINES} lines"),
        ));
    }
    let rate = match treatment {
        Treatment::Rate(r) => *r,
        Treatment::ReverseCharge | Treatment::None => Decimal::ZERO,
    };
    let mut computed = Vec::with_capacity(lines.len());
    let (mut subtotal, mut tax) = (0i64, 0i64);
    for (i, line) in lines.iter().enumerate() {
        let amount = check_line(i, line, currency)?;
        let (line_rate, parts) = if line.kind == LineKind::Tax {
            (
                Decimal::ZERO,
                Split {
                    net_minor: 0,
                    tax_minor: amount,
                },
            )
        } else {
            let parts = split(amount, rate, mode, currency)
                .ok_or_else(|| line_error(i, "unit_price", "the line amount is too large"))?;
            (rate, parts)
        };
        subtotal += parts.net_minor;
        tax += parts.tax_minor;
        computed.push(ComputedLine {
            amount_minor: amount,
            net_minor: parts.net_minor,
            tax_minor: parts.tax_minor,
            tax_rate: line_rate,
        });
    }
    let total = subtotal + tax;
    if total < 0 {
        return Err(line_error(
            0,
            "lines",
            "the invoice total cannot be negative; issue a credit note instead",
        ));
    }
    Ok(Computed {
        lines: computed,
        subtotal_minor: subtotal,
        tax_minor: tax,
        total_minor: total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::invoice::LineKind;
    use proptest::prelude::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn line(kind: LineKind, q: &str, p: &str) -> LineInput {
        LineInput {
            kind,
            description: "x".into(),
            quantity: d(q),
            unit_price: d(p),
        }
    }

    #[test]
    fn worked_example_exclusive_with_a_discount() {
        let eur = Currency::parse("EUR").unwrap();
        let lines = [
            line(LineKind::Item, "3", "9.99"),
            line(LineKind::Discount, "1", "-5.00"),
        ];
        let c = compute(&lines, eur, &Treatment::Rate(d("0.19")), TaxMode::Exclusive).unwrap();
        // 29.97 → tax 5.6943 → 5.69; -5.00 → tax -0.95.
        assert_eq!(c.lines[0].tax_minor, 569);
        assert_eq!(c.lines[1].tax_minor, -95);
        assert_eq!(
            (c.subtotal_minor, c.tax_minor, c.total_minor),
            (2497, 474, 2971)
        );
    }

    #[test]
    fn inclusive_totals_are_the_entered_prices_and_zero_and_three_decimals_work() {
        let jpy = Currency::parse("JPY").unwrap();
        let c = compute(
            &[line(LineKind::Item, "1", "1100")],
            jpy,
            &Treatment::Rate(d("0.10")),
            TaxMode::Inclusive,
        )
        .unwrap();
        assert_eq!(
            (c.subtotal_minor, c.tax_minor, c.total_minor),
            (1000, 100, 1100)
        );
        let kwd = Currency::parse("KWD").unwrap();
        let c = compute(
            &[line(LineKind::Item, "2", "1.2345")],
            kwd,
            &Treatment::ReverseCharge,
            TaxMode::Exclusive,
        )
        .unwrap();
        assert_eq!(
            (c.subtotal_minor, c.tax_minor, c.total_minor),
            (2469, 0, 2469)
        );
    }

    #[test]
    fn bad_lines_name_their_index_and_field() {
        let eur = Currency::parse("EUR").unwrap();
        let err = compute(
            &[
                line(LineKind::Item, "1", "1"),
                line(LineKind::Item, "1", "-1"),
            ],
            eur,
            &Treatment::None,
            TaxMode::Exclusive,
        )
        .unwrap_err();
        assert_eq!((err.index, err.field), (1, "unit_price"));
        let err = compute(
            &[line(LineKind::Discount, "1", "-2")],
            eur,
            &Treatment::None,
            TaxMode::Exclusive,
        )
        .unwrap_err();
        assert_eq!(err.field, "lines");
        let err = compute(
            &[line(LineKind::Item, "0", "2")],
            eur,
            &Treatment::None,
            TaxMode::Exclusive,
        )
        .unwrap_err();
        assert_eq!(err.field, "quantity");
    }

    proptest! {
        /// For any lines, rate and mode: the total is the sum of the rounded
        /// lines' net and tax, and each line's net + tax is its amount
        /// (inclusive) or its amount plus its tax (exclusive).
        #[test]
        fn totals_are_sums_of_rounded_lines(
            lines in prop::collection::vec((1i64..50, 0i64..500_000, 0u8..3), 1..40),
            bp in 0u32..2700,
            inclusive in any::<bool>(),
            currency in prop::sample::select(vec!["EUR", "JPY", "KWD"]),
        ) {
            let currency = Currency::parse(currency).unwrap();
            let mode = if inclusive { TaxMode::Inclusive } else { TaxMode::Exclusive };
            let input: Vec<LineInput> = lines
                .iter()
                .map(|(q, p, k)| LineInput {
                    kind: if *k == 2 { LineKind::Adjustment } else { LineKind::Item },
                    description: "line".into(),
                    quantity: Decimal::from(*q),
                    unit_price: Decimal::new(*p, 3),
                })
                .collect();
            let c = compute(&input, currency, &Treatment::Rate(Decimal::new(i64::from(bp), 4)), mode).unwrap();
            let net: i64 = c.lines.iter().map(|l| l.net_minor).sum();
            let tax: i64 = c.lines.iter().map(|l| l.tax_minor).sum();
            prop_assert_eq!(c.subtotal_minor, net);
            prop_assert_eq!(c.tax_minor, tax);
            prop_assert_eq!(c.total_minor, net + tax);
            for l in &c.lines {
                match mode {
                    TaxMode::Inclusive => prop_assert_eq!(l.net_minor + l.tax_minor, l.amount_minor),
                    TaxMode::Exclusive => prop_assert_eq!(l.net_minor, l.amount_minor),
                }
            }
        }
    }
}
