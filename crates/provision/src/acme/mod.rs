//! An ACME client (RFC 8555) for certificates validated over HTTP-01, as
//! Let's Encrypt issues them. The caller keeps the account key (PKCS#8,
//! sealed) and drives the steps, each of which can be a job step:
//!
//! 1. [`AcmeClient::connect`] reads the CA's directory;
//! 2. [`AcmeClient::account`] registers (or finds) the account of an
//!    [`AccountKey`] and gives its URL, kept with the key;
//! 3. [`AcmeClient::order`] places an order and lists the [`Http01`]
//!    challenges, whose key authorizations the caller publishes on the
//!    web node at `/.well-known/acme-challenge/<token>`;
//! 4. [`AcmeClient::complete`] has the CA validate, finalizes with the
//!    caller's CSR and returns the PEM chain;
//! 5. [`AcmeClient::revoke`] revokes a certificate no longer used.
//!
//! `jws.rs` holds the key and the signatures (ES256, built here on *ring*),
//! `client.rs` the transport and nonces, `order.rs` the order flow and its
//! polling, `error.rs` the errors with messages for customers.

mod client;
mod error;
mod jws;
mod order;

pub use client::{Account, AcmeClient};
pub use error::AcmeError;
pub use jws::AccountKey;
pub use order::{Http01, NewOrder};
