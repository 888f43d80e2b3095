//! The security center's rules: TOTP (RFC 6238), recovery codes and
//! tenant security policies.

pub mod base32;
pub mod policy;
pub mod totp;

pub use policy::{Cidr, MfaRequirement, SecurityPolicy};
