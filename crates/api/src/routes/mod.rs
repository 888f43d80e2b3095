//! Routes by feature.

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
pub mod my_hosting;
pub mod ops;
pub mod orders;
pub mod public_catalog;
pub mod security;
pub mod security_center;
pub mod servers;
pub mod settings;
pub mod stripe;
pub mod subscriptions;
pub mod users;
