//! Billing: invoices, payments, refunds, credit notes, the customer's
//! credit balance, Stripe, and the documents (PDF) customers receive.

pub mod autopay;
pub mod card_payment;
pub mod credit_notes;
pub mod documents;
pub mod dunning;
pub mod final_usage;
pub mod invoices;
pub mod lines;
pub mod movements;
pub mod payments;
pub mod pdf;
pub mod plan_change;
mod restore;
pub mod run;
mod run_invoices;
mod run_lanes;
pub mod scheduled;
pub mod service_actions;
pub mod settings;
pub mod staff_orders;
pub mod stripe;
mod stripe_attempts;
pub mod stripe_flow;
pub mod subscriptions;
pub mod usage;
