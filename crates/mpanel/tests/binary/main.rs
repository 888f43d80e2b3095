//! The `mpanel` binary as an operator runs it: configuration, subcommands,
//! start-up, logs and signals. Database tests use the engine the test run
//! selects (`MPANEL_TEST_ENGINE`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

mod support;

mod accounts;
mod backup_logins;
mod backups;
mod browser;
mod browser_pages;
mod browser_webauthn;
mod certificates;
mod cli;
mod cloudpods;
mod cloudpods_support;
mod console;
mod console_card;
mod db_backup;
mod disk_quota;
mod domain_control;
mod mail;
mod names;
mod node_health;
mod own_pdns;
mod provisioning;
mod provisioning_support;
mod secrets;
mod serve;
mod webhooks;
mod workers;
