//! Tokens for the proof of control of an ordered domain (the rules are in
//! `mpanel_domain::orders::domain_control`; the check runs in the
//! provisioning job).

use mpanel_domain::orders::domain_control::{TOKEN_BYTES, token_from};

use crate::ServiceError;

/// A fresh token: 160 random bits.
pub fn new_token() -> Result<String, ServiceError> {
    let mut bytes = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| {
        ServiceError::internal_msg(format!("no randomness for a domain token: {e}"))
    })?;
    Ok(token_from(&bytes))
}
