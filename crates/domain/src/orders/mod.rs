//! Orders from the marketing site: webhook signatures, domain names and
//! the proof that a customer controls the domain they ordered.

pub mod domain_control;
pub mod domain_name;
pub mod name_claims;
pub mod signature;

use crate::catalog::upper_enum;

upper_enum!(
    /// Where an order stands: placed unpaid, or paid (by the site's
    /// payment, or later through its invoice).
    OrderStatus { PendingPayment => "PENDING_PAYMENT", Paid => "PAID" }
);

impl OrderStatus {
    /// An order's status from whether its invoice is paid.
    pub fn from_paid(paid: bool) -> Self {
        if paid {
            Self::Paid
        } else {
            Self::PendingPayment
        }
    }

    /// Only an unpaid order becomes paid; nothing leaves `PAID`.
    pub fn can_become(self, next: OrderStatus) -> bool {
        self == Self::PendingPayment && next == Self::Paid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_order_is_paid_once() {
        assert!(OrderStatus::PendingPayment.can_become(OrderStatus::Paid));
        assert!(!OrderStatus::Paid.can_become(OrderStatus::PendingPayment));
        assert!(!OrderStatus::Paid.can_become(OrderStatus::Paid));
        assert_eq!(OrderStatus::from_paid(false).as_str(), "PENDING_PAYMENT");
        assert_eq!("PAID".parse::<OrderStatus>(), Ok(OrderStatus::Paid));
    }
}
