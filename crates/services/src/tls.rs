//! TLS for outgoing HTTPS (Stripe, later PowerDNS and Proxmox over TLS):
//! rustls with the *ring* provider, trusting the Mozilla roots bundled in
//! `webpki-roots`, so nothing depends on the host's certificate store.

use std::sync::Arc;

/// Installs ring as the process's rustls provider (once; later calls are
/// no-ops). Every `reqwest::Client` built after this can speak TLS.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A client configuration for HTTPS to public services.
pub fn client_config() -> Result<rustls::ClientConfig, rustls::Error> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth())
}
