//! Outbound webhooks: what a tenant's endpoints are sent, how each delivery
//! is signed (Standard Webhooks), when a failed one is tried again, and
//! which addresses an endpoint may not point at.

pub mod address;
pub mod event;
pub mod schedule;
pub mod signing;

pub use address::{AddressClass, Cidr, UrlRuleError, check_url};
pub use event::{DeliveryStatus, EndpointStatus, EventType};
pub use schedule::{DISABLE_AFTER, GIVE_UP_AFTER, next_attempt};
pub use signing::{SignatureHeaders, WebhookSecret};
