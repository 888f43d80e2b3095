//! The events a tenant's endpoints can subscribe to, and the states of an
//! endpoint and of one delivery.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An event type, by its wire name (`invoice.paid`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
pub enum EventType {
    #[serde(rename = "order.created")]
    OrderCreated,
    #[serde(rename = "invoice.issued")]
    InvoiceIssued,
    #[serde(rename = "invoice.paid")]
    InvoicePaid,
    #[serde(rename = "subscription.suspended")]
    SubscriptionSuspended,
    #[serde(rename = "subscription.restored")]
    SubscriptionRestored,
    #[serde(rename = "subscription.cancelled")]
    SubscriptionCancelled,
}

impl EventType {
    pub const ALL: [EventType; 6] = [
        Self::OrderCreated,
        Self::InvoiceIssued,
        Self::InvoicePaid,
        Self::SubscriptionSuspended,
        Self::SubscriptionRestored,
        Self::SubscriptionCancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::OrderCreated => "order.created",
            Self::InvoiceIssued => "invoice.issued",
            Self::InvoicePaid => "invoice.paid",
            Self::SubscriptionSuspended => "subscription.suspended",
            Self::SubscriptionRestored => "subscription.restored",
            Self::SubscriptionCancelled => "subscription.cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

/// An endpoint receives deliveries while ACTIVE; mPanel disables one that
/// has failed for [`super::DISABLE_AFTER`], staff can disable and enable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EndpointStatus {
    Active,
    Disabled,
}

/// PENDING until the receiver answers 2xx (SUCCEEDED) or mPanel gives up
/// after [`super::GIVE_UP_AFTER`] (FAILED); a redelivery makes it PENDING
/// again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeliveryStatus {
    Pending,
    Succeeded,
    Failed,
}

macro_rules! wire_str {
    ($t:ty { $($v:ident => $s:literal),* }) => {
        impl $t {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$v => $s),* }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some(Self::$v),)* _ => None }
            }
        }
    };
}

wire_str!(EndpointStatus { Active => "ACTIVE", Disabled => "DISABLED" });
wire_str!(DeliveryStatus { Pending => "PENDING", Succeeded => "SUCCEEDED", Failed => "FAILED" });

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_round_trip() {
        for e in EventType::ALL {
            assert_eq!(EventType::parse(e.as_str()), Some(e));
            assert_eq!(serde_json::to_value(e).unwrap(), e.as_str());
        }
        assert_eq!(EventType::parse("invoice.deleted"), None);
        assert_eq!(
            DeliveryStatus::parse("SUCCEEDED"),
            Some(DeliveryStatus::Succeeded)
        );
        assert_eq!(
            serde_json::to_value(EndpointStatus::Disabled).unwrap(),
            "DISABLED"
        );
    }
}
