//! Routes by feature.

pub mod api_tokens;
pub mod audit;
pub mod auth;
pub mod catalog;
pub mod customers;
pub mod dns;
pub mod fallback;
pub mod health;
pub mod hosting;
pub mod hosting_sftp;
pub mod invoices;
pub mod metrics;
pub mod mfa;
pub mod my_hosting;
pub mod ops;
pub mod orders;
pub mod public_catalog;
pub mod security_events;
pub mod security_policy;
pub mod security_profile;
pub mod servers;
pub mod sessions;
pub mod settings;
pub mod stripe;
pub mod subscriptions;
pub mod users;
