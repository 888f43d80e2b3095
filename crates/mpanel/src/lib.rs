//! The `mpanel` binary: command line, configuration and wiring.
#![forbid(unsafe_code)]

pub mod admin;
pub mod billing;
pub mod cli;
pub mod config;
pub mod config_tls;
pub mod db_backup;
pub mod hosting;
pub mod jobs;
pub mod logging;
pub mod pg_tools;
pub mod scheduled_backup;
pub mod secrets;
pub mod serve;
pub mod shutdown;
pub mod worker;
