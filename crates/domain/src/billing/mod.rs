//! Billing rules: money rounding, tax, invoice lines and totals, invoice
//! states and numbers. Pure: amounts are integer minor units, unit prices
//! and rates are decimals, and every line is rounded once.

pub mod calendar;
pub mod compute;
pub mod dunning;
pub mod invoice;
pub mod money;
pub mod payment;
pub mod proration;
pub mod stripe;
pub mod subscription;
pub mod tax;
pub mod usage;
