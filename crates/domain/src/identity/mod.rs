//! Identity and access rules: roles, the permission matrix, API token
//! scopes, password policy, login throttling and refresh-token rotation.

pub mod account_link;
pub mod api_token;
pub mod password;
pub mod permission;
pub mod refresh;
pub mod role;
pub mod throttle;

pub use permission::{Access, Permission, Scope, ScopeSet};
pub use role::Role;
