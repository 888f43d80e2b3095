//! Billing: settings, invoices and lines, payments, credit notes, credit
//! balances, and what Stripe told us.

mod credit;
mod invoices;
mod payments;
mod settings;
mod stripe;

pub use credit::{CreditBalance, CreditEntry};
pub use invoices::{InvoiceFilter, InvoiceLineRecord, InvoiceMoney, InvoiceRecord, IssueFields};
pub use payments::{CreditNoteRecord, PaymentRecord};
pub use settings::BillingSettingsRecord;
pub use stripe::PaymentIntentRecord;
