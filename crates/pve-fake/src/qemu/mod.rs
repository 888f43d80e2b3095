//! /nodes/{node}/qemu/{vmid}/…: clone, config, resize, power, status,
//! metrics and destroy.

pub mod clone;
pub mod config;
pub mod delete;
pub mod power;
pub mod resize;
pub mod status;

use crate::envelope::ApiError;
use crate::params::Params;

/// The checked `vmid` (the schema bounds it to 100..999999999).
pub fn vmid(p: &Params) -> u32 {
    p.int("vmid")
        .and_then(|v| u32::try_from(v).ok())
        .unwrap_or(0)
}

/// `skiplock` is root@pam only; the caller is an API token.
pub fn refuse_skiplock(p: &Params) -> Result<(), ApiError> {
    if p.has("skiplock") {
        return Err(ApiError::param(
            "skiplock",
            "Only root may use this option.",
        ));
    }
    Ok(())
}
