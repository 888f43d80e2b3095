//! Orders from the marketing site: webhook signatures, domain names and
//! the proof that a customer controls the domain they ordered.

pub mod domain_control;
pub mod domain_name;
pub mod name_claims;
pub mod signature;
