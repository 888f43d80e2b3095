//! Provisioning drivers behind small types, one module each: PowerDNS
//! zones and records over its HTTP API, certificates from an ACME CA
//! (`acme`, used by `certificates`), websites on a web node (nginx) over
//! SSH, mailboxes on a mail node (Dovecot) over SSH. Every action is
//! idempotent: it looks first and treats "already there and matching" as
//! success, so a retried job resumes instead of repeating.
#![forbid(unsafe_code)]

pub mod acme;
pub mod backup;
pub mod certificates;
pub mod cloudpod;
pub mod disk_usage;
pub mod dkim_publish;
pub mod dns;
pub mod domain_control;
pub mod error;
pub mod lifecycle;
pub mod mail;
pub mod node_health;
pub mod nodes;
pub mod proxmox;
pub mod records;
pub mod saga;
pub mod ssh;
pub mod web;

pub use error::{DriverError, Ensured};
