//! Billing: invoices, payments, refunds, credit notes, the customer's
//! credit balance, Stripe, and the documents (PDF) customers receive.

pub mod credit_notes;
pub mod documents;
pub mod invoices;
pub mod lines;
pub mod payments;
pub mod pdf;
pub mod settings;
pub mod stripe;
pub mod stripe_flow;
