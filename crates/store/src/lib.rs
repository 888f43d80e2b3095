//! mPanel's store: one interface over SQLite (the embedded default) and
//! PostgreSQL (the production engine).
//!
//! Both engines sit behind [`Store`] and [`Tx`]. SQL text is shared wherever
//! the two agree (`$1` placeholders, `RETURNING`, `ON CONFLICT`), and is
//! written once: the `on_pool!`/`on_tx!` macros expand one body for each
//! engine. Where the engines differ (locking, notifications), a method
//! matches on the engine explicitly.
#![forbid(unsafe_code)]

#[macro_use]
mod dispatch;
pub mod audit;
pub mod backups;
pub mod billing;
pub mod catalog;
pub mod certificates;
pub mod cloudpod_backups;
pub mod cloudpods;
mod connect;
pub mod customer_notes;
pub mod disk_usage;
pub mod domain_verifications;
pub mod email_templates;
mod error;
mod idempotency;
pub mod identity;
mod job_indexes;
mod job_keys;
#[cfg(test)]
mod job_plans;
pub mod jobs;
mod migrations;
pub mod name_claims;
pub mod notify;
mod numbering;
pub mod ops_activity;
pub mod ops_overview;
pub mod orders;
pub mod platform_backup;
pub mod provisioning;
pub mod retention;
pub mod sealing;
pub mod secret_box;
pub mod servers;
pub mod subscriptions;
pub mod tenants;
#[cfg(feature = "testing")]
pub mod testing;
mod tx;
pub mod webhooks;

pub use audit::{ActorType, AuditEntry, AuditFilter, AuditRecord};
pub use connect::{Engine, PoolSettings, Store};
pub use error::StoreError;
pub use identity::users::{NewUser, UserRecord, UserStatus};
pub use migrations::{
    AppliedNow, MigrationInfo, MigrationStatus, known_migrations, latest_schema_version,
};
pub use tenants::TenantRecord;
pub use tx::Tx;

pub type StoreResult<T> = Result<T, StoreError>;

/// A `LIKE … ESCAPE '\'` pattern matching text that contains `s`
/// (compare `lower(column) LIKE lower(pattern)`, so one function folds
/// both sides): `%`, `_` and `\` in `s` are characters, not wildcards.
pub fn contains_pattern(s: &str) -> String {
    let escaped = s
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}
