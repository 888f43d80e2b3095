//! Routes by feature.

pub mod fallback;
pub mod health;
pub mod metrics;
