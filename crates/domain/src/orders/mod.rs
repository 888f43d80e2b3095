//! Orders from the marketing site: webhook signatures and domain names.

pub mod domain_name;
pub mod signature;
