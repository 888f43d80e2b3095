//! mPanel's use cases. Each takes the store, a clock and the acting party,
//! applies the domain rules, and makes its change, audit row included, in
//! one transaction: it all commits or none of it does.
#![forbid(unsafe_code)]

pub mod actor;
pub mod api_schema;
pub mod audit;
pub mod backups;
pub mod billing;
pub mod catalog;
pub mod certificates;
pub mod cloudpods;
pub mod context;
pub mod crypt;
pub mod customer_notes;
pub mod customers;
pub mod domain_control;
pub mod error;
pub mod hosting;
pub mod hosting_disk;
pub mod hosting_sftp;
pub mod idempotency;
pub mod identity;
pub mod jobs;
pub mod notify;
pub mod ops_overview;
pub mod orders;
mod payment_claims;
pub mod platform_tenants;
pub use mpanel_store::secret_box;
pub mod sealed;
pub mod security;
pub mod servers;
pub mod site_certificates;
pub mod ssh_key;
pub mod tenants;
pub mod tls;
pub mod webhooks;

pub use actor::Actor;
pub use context::Context;
pub use error::ServiceError;
