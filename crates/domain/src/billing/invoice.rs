//! Invoices: lines and their totals, the states an invoice moves through,
//! and its number.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::money::to_minor;
use crate::catalog::Currency;
use crate::catalog::upper_enum;

upper_enum!(
    /// Where an invoice stands.
    InvoiceStatus {
        Draft => "DRAFT", Issued => "ISSUED", PartiallyPaid => "PARTIALLY_PAID", Paid => "PAID",
        Overdue => "OVERDUE", Void => "VOID",
    }
);

upper_enum!(
    /// What a line is.
    LineKind { Item => "ITEM", Discount => "DISCOUNT", Tax => "TAX", Adjustment => "ADJUSTMENT" }
);

upper_enum!(
    /// Where a line came from.
    LineSource { Manual => "MANUAL", Subscription => "SUBSCRIPTION", Usage => "USAGE", Adjustment => "ADJUSTMENT" }
);

impl InvoiceStatus {
    /// The states this one may move to.
    pub fn next(self) -> &'static [InvoiceStatus] {
        use InvoiceStatus::*;
        match self {
            Draft => &[Issued, Void],
            Issued => &[PartiallyPaid, Paid, Overdue, Void],
            PartiallyPaid => &[Paid, Overdue],
            Overdue => &[PartiallyPaid, Paid, Void],
            Paid | Void => &[],
        }
    }

    /// `Ok` if `self → to` is allowed, else the allowed targets.
    pub fn check_transition(self, to: InvoiceStatus) -> Result<(), Vec<&'static str>> {
        if self.next().contains(&to) {
            Ok(())
        } else {
            Err(self.next().iter().map(|s| s.as_str()).collect())
        }
    }
}

/// Where an invoice's money stands, in minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Balance {
    pub total_minor: i64,
    /// Applied payments.
    pub paid_minor: i64,
    /// Credit notes: what is no longer owed.
    pub credited_minor: i64,
    /// Paid money given back (refunded, or moved to the customer's credit).
    pub refunded_minor: i64,
}

impl Balance {
    /// What the customer owes after credit notes.
    pub fn owed(&self) -> i64 {
        self.total_minor - self.credited_minor
    }

    /// What the customer paid and kept paid.
    pub fn received(&self) -> i64 {
        self.paid_minor - self.refunded_minor
    }

    /// What is still to pay.
    pub fn due(&self) -> i64 {
        self.owed() - self.received()
    }

    /// Splits a payment of `amount` into what pays this invoice and the
    /// excess that goes to the customer's credit.
    pub fn apply(&self, amount: i64) -> (i64, i64) {
        let applied = amount.min(self.due().max(0));
        (applied, amount - applied)
    }

    /// The status an open invoice takes once this balance holds.
    pub fn settled_status(&self, current: InvoiceStatus) -> InvoiceStatus {
        if self.due() <= 0 {
            InvoiceStatus::Paid
        } else if self.paid_minor > 0 && current != InvoiceStatus::Overdue {
            InvoiceStatus::PartiallyPaid
        } else {
            current
        }
    }
}

/// The status a reader sees: an open invoice past its due date is
/// `OVERDUE` even before the periodic job has recorded it.
pub fn effective_status(
    stored: InvoiceStatus,
    due_at: Option<time::OffsetDateTime>,
    now: time::OffsetDateTime,
) -> InvoiceStatus {
    match (stored, due_at) {
        (InvoiceStatus::Issued | InvoiceStatus::PartiallyPaid, Some(due)) if due < now => {
            InvoiceStatus::Overdue
        }
        _ => stored,
    }
}

/// A line as entered: quantity × unit price (decimals allowed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineInput {
    pub kind: LineKind,
    pub description: String,
    pub quantity: Decimal,
    /// In major units; discounts are negative lines.
    pub unit_price: Decimal,
}

/// The line's amount in minor units, rounded once (half away from zero).
pub fn line_amount(line: &LineInput, currency: Currency) -> Option<i64> {
    to_minor(line.quantity.checked_mul(line.unit_price)?, currency)
}

/// The invoice total: the sum of the rounded lines (never re-rounded).
pub fn total(amounts: &[i64]) -> Option<i64> {
    amounts.iter().try_fold(0i64, |acc, a| acc.checked_add(*a))
}

/// `INV-2026-000042`: the prefix, the tenant-time-zone year, six digits.
pub fn number(prefix: &str, year: i32, sequence: u64) -> String {
    format!("{prefix}-{year}-{sequence:06}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::str::FromStr;

    #[test]
    fn only_listed_transitions_are_allowed() {
        assert!(
            InvoiceStatus::Draft
                .check_transition(InvoiceStatus::Issued)
                .is_ok()
        );
        assert_eq!(
            InvoiceStatus::Paid
                .check_transition(InvoiceStatus::Void)
                .unwrap_err(),
            Vec::<&str>::new()
        );
        assert_eq!(
            InvoiceStatus::Draft
                .check_transition(InvoiceStatus::Paid)
                .unwrap_err(),
            vec!["ISSUED", "VOID"]
        );
        assert!(
            InvoiceStatus::PartiallyPaid
                .check_transition(InvoiceStatus::Void)
                .is_err(),
            "money received: no void"
        );
        assert_eq!(number("INV", 2026, 42), "INV-2026-000042");
        assert_eq!(number("CN", 2027, 1_000_000), "CN-2027-1000000");
    }

    #[test]
    fn lines_round_once_and_totals_add_rounded_lines() {
        let eur = Currency::parse("EUR").unwrap();
        let line = |q: &str, p: &str| LineInput {
            kind: LineKind::Item,
            description: "x".into(),
            quantity: Decimal::from_str(q).unwrap(),
            unit_price: Decimal::from_str(p).unwrap(),
        };
        // 3 × 0.333 = 0.999 → 1.00; three such lines total 3.00, not 2.997 → 3.00 by luck.
        let amounts: Vec<i64> = (0..3)
            .map(|_| line_amount(&line("3", "0.333"), eur).unwrap())
            .collect();
        assert_eq!(amounts, vec![100, 100, 100]);
        assert_eq!(total(&amounts), Some(300));
        assert_eq!(line_amount(&line("1", "-5.005"), eur), Some(-501));
    }

    #[test]
    fn payments_fill_what_is_due_and_the_rest_is_credit() {
        let b = Balance {
            total_minor: 1000,
            paid_minor: 300,
            credited_minor: 100,
            refunded_minor: 0,
        };
        assert_eq!(b.due(), 600);
        assert_eq!(b.apply(250), (250, 0));
        assert_eq!(b.apply(700), (600, 100));
        assert_eq!(
            b.settled_status(InvoiceStatus::Issued),
            InvoiceStatus::PartiallyPaid
        );
        let paid = Balance {
            paid_minor: 900,
            ..b
        };
        assert_eq!(
            paid.settled_status(InvoiceStatus::Overdue),
            InvoiceStatus::Paid
        );
    }

    proptest! {
        /// The total is exactly the sum of the rounded lines, for any lines.
        #[test]
        fn the_total_is_the_sum_of_the_lines(lines in prop::collection::vec((1i64..1000, -100_000i64..1_000_000), 1..30)) {
            let eur = Currency::parse("EUR").unwrap();
            let amounts: Vec<i64> = lines
                .iter()
                .map(|(q, p)| line_amount(&LineInput {
                    kind: LineKind::Item,
                    description: String::new(),
                    quantity: Decimal::from(*q),
                    unit_price: Decimal::new(*p, 3),
                }, eur).unwrap())
                .collect();
            let sum: i64 = amounts.iter().sum();
            prop_assert_eq!(total(&amounts), Some(sum));
            for ((q, p), a) in lines.iter().zip(&amounts) {
                let exact = Decimal::from(*q) * Decimal::new(*p, 3) * Decimal::from(100);
                prop_assert!((exact - Decimal::from(*a)).abs() <= Decimal::new(5, 1), "each line within half a cent");
            }
        }
    }
}
