//! Orders from the marketing site: webhook signatures and domain names.

pub mod domain_name;
pub mod name_claims;
pub mod signature;
