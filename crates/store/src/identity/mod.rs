//! Identity tables: users, sessions and refresh tokens, API tokens,
//! security events, login throttling, signing keys.

pub mod account_links;
pub mod api_tokens;
pub mod second_factors;
pub mod security_events;
pub mod sessions;
pub mod signing_keys;
pub mod throttle;
pub mod users;
