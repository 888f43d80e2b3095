//! Billing: settings, invoices and lines, payments, credit notes, credit
//! balances, and what Stripe told us.

mod credit;
mod dunning;
mod invoices;
mod payments;
mod run;
mod settings;
mod stripe;
mod usage;

pub use credit::{CreditBalance, CreditEntry};
pub use dunning::OpenInvoice;
pub use invoices::{InvoiceFilter, InvoiceLineRecord, InvoiceMoney, InvoiceRecord, IssueFields};
pub use payments::{CreditNoteRecord, PaymentRecord};
pub use run::{Advance, DueSubscription, PeriodClaim, UsageCharge, UsageTotal};
pub use settings::BillingSettingsRecord;
pub use stripe::{PaymentIntentRecord, SavedCard};
pub use usage::{NewUsage, UsageTarget};
