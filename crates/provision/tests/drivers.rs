//! The provisioning drivers against the real services `scripts/test.sh`
//! starts on loopback (see docs/provisioning-harness.md): one module per
//! driver. Run them under `bash scripts/test.sh`, which exports the
//! services' settings; without them the tests fail rather than skip.
#![allow(clippy::unwrap_used, clippy::expect_used)]

// A test crate's root looks for `tests/NAME.rs`: point at `tests/drivers/`.
#[path = "drivers/dns.rs"]
mod dns;
#[path = "drivers/mail.rs"]
mod mail;
#[path = "drivers/proxmox.rs"]
mod proxmox;
#[path = "drivers/web.rs"]
mod web;
#[path = "drivers/web_isolation.rs"]
mod web_isolation;
#[path = "drivers/web_locks.rs"]
mod web_locks;
#[path = "drivers/web_reload.rs"]
mod web_reload;
