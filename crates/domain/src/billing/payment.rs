//! Payments and credit notes: who paid how, and what a credit note does
//! with the money it gives back.

use crate::catalog::upper_enum;

upper_enum!(
    /// How money arrived. `CREDIT` is the customer's own credit balance,
    /// applied automatically when an invoice is issued.
    PaymentProvider {
        Manual => "MANUAL", BankTransfer => "BANK_TRANSFER", Stripe => "STRIPE", Credit => "CREDIT",
    }
);

upper_enum!(
    /// Where a payment stands.
    PaymentStatus {
        Pending => "PENDING", Success => "SUCCESS", Failed => "FAILED", Refunded => "REFUNDED",
        PartiallyRefunded => "PARTIALLY_REFUNDED",
    }
);

upper_enum!(
    /// What a credit note does: lower what is still owed, give paid money
    /// back, or keep paid money as the customer's credit.
    CreditDisposition { ReduceBalance => "REDUCE_BALANCE", Refund => "REFUND", Credit => "CREDIT" }
);

/// A payment's status once `refunded` of its `applied` amount went back.
pub fn refund_status(applied_minor: i64, refunded_minor: i64) -> PaymentStatus {
    if refunded_minor <= 0 {
        PaymentStatus::Success
    } else if refunded_minor >= applied_minor {
        PaymentStatus::Refunded
    } else {
        PaymentStatus::PartiallyRefunded
    }
}
