//! The API over real HTTP: a server on a free loopback port, on the engine
//! the test run selects (`MPANEL_TEST_ENGINE`); the test command runs this
//! suite on SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

mod support;

mod accounts;
mod api_tokens;
mod auth_flow;
mod backups;
mod billing;
mod billing_concurrency;
mod billing_numbers;
mod billing_stripe;
mod catalog;
mod certificates;
mod cloudpods;
mod console;
mod console_card;
mod console_lists;
mod cors;
mod customers;
mod dns_records;
mod docs;
mod email_templates;
mod errors;
mod health;
mod hosting_disk;
mod hosting_sftp;
mod inbox;
mod limits;
mod mailbox_quota;
mod matrix;
mod messages;
mod metrics;
mod notifications;
mod ops;
mod ops_overview;
mod orders;
mod orders_domain_control;
mod orders_known_address;
mod orders_names;
mod orders_paging;
mod orders_stripe;
mod request_id;
mod retention;
mod secrets_at_rest;
mod security_center;
mod security_headers;
mod servers;
mod shutdown;
mod step_up;
mod stripe_client;
use mpanel_stripe_fake as stripe_fake;
mod subscriptions;
mod tenancy;
mod tenants;
mod users;
mod webhook_cost;
mod webhooks;
