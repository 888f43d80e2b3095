//! A fake Proxmox VE API server for testing the CloudPods driver, built
//! from the contract in `docs`/`shared/proxmox.md` (Proxmox's own sources
//! and the issues other panels hit): HTTPS with a self-signed certificate
//! and its `ssl_fingerprint`, API-token authentication, PVE's envelope and
//! status lines, worker tasks with UPIDs, config locks and flocks,
//! clone/config/resize/power/destroy, vzdump and restore. A small admin API
//! under `/__fake/` injects faults and dumps the state.
//!
//! [`serve`] starts it in-process (tests); the `mpanel-pve-fake` binary
//! starts it as a process and prints one JSON line with its URL,
//! fingerprint and token.

#![forbid(unsafe_code)]

mod auth;
mod backup;
mod cluster;
pub mod config;
mod envelope;
mod faults;
mod http;
mod params;
mod qemu;
mod router;
mod routes;
mod task_api;
mod tasks;
mod tls;
mod vm;
mod world;

use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use config::{Config, NodeSpec};
pub use tls::fingerprint;

/// A fake that is serving; it stops when this is dropped.
pub struct Running {
    /// `https://127.0.0.1:<port>/api2/json`
    pub url: String,
    /// SHA-256 of the certificate, `AB:CD:…` as PVE's `ssl_fingerprint`.
    pub fingerprint: String,
    pub token_id: String,
    pub token_secret: String,
    /// The self-signed certificate (DER and PEM), for clients that trust
    /// it as a root instead of pinning the fingerprint.
    pub cert_der: Vec<u8>,
    pub cert_pem: String,
    pub addr: SocketAddr,
    shared: Arc<world::Shared>,
    handle: JoinHandle<()>,
}

impl Running {
    /// The `Authorization` header value for the fake's token.
    pub fn authorization(&self) -> String {
        format!("PVEAPIToken={}={}", self.token_id, self.token_secret)
    }

    /// `https://127.0.0.1:<port>/__fake/<path>`.
    pub fn admin_url(&self, path: &str) -> String {
        format!(
            "https://{}/__fake/{}",
            self.addr,
            path.trim_start_matches('/')
        )
    }

    /// The line the binary prints at start.
    pub fn startup_line(&self) -> Value {
        json!({
            "url": self.url,
            "fingerprint": self.fingerprint,
            "token_id": self.token_id,
            "token_secret": self.token_secret,
        })
    }

    /// The same dump as `GET /__fake/state`.
    pub fn state(&self) -> Value {
        faults::state(&self.shared)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

/// Starts the fake on 127.0.0.1 (`config.port`, 0 for any free port).
pub async fn serve(config: Config) -> anyhow::Result<Running> {
    let cert = tls::make_certificate()?;
    let listener = TcpListener::bind(("127.0.0.1", config.port)).await?;
    let addr = listener.local_addr()?;
    let secret = uuid::Uuid::new_v4().to_string();
    let shared = world::Shared::new(config, secret.clone(), cert.fingerprint.clone());
    let acceptor = tokio_rustls::TlsAcceptor::from(cert.server.clone());
    let handle = tokio::spawn(http::accept_loop(listener, acceptor, shared.clone()));
    Ok(Running {
        url: format!("https://{addr}/api2/json"),
        fingerprint: cert.fingerprint,
        token_id: auth::TOKEN_ID.to_owned(),
        token_secret: secret,
        cert_der: cert.der,
        cert_pem: cert.pem,
        addr,
        shared,
        handle,
    })
}
