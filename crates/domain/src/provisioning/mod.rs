//! Provisioning rules: the servers mPanel places accounts on, and where a
//! new account goes.

pub mod server;

pub use server::{ServerRole, ServerStatus, place};
