//! What every handler can reach.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use mpanel_domain::Clock;
use mpanel_services::billing::stripe::StripeClient;
use mpanel_services::identity::AccessTokens;
use mpanel_services::secret_box::SecretBox;
use mpanel_services::security::webauthn::Passkeys;
use mpanel_services::webhooks::WebhookPolicy;
use mpanel_store::Store;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub metrics: MetricsAccess,
    /// Signs and checks access tokens.
    pub tokens: AccessTokens,
    /// The WebAuthn relying party.
    pub passkeys: Passkeys,
    /// Stripe's API (a fake in tests).
    pub stripe: StripeClient,
    /// Seals server credentials (`secrets_key`), the same box the store
    /// carries for every other secret at rest; `mpanel serve` always sets it.
    pub secrets: Option<SecretBox>,
    /// The SMTP server and the platform's sender (readiness reports a
    /// missing `smtp_url`; the DKIM record names the sender's domain).
    pub mail: mpanel_services::notify::MailSettings,
    /// Where webhook endpoints may point (`webhook_allowed_networks`).
    pub webhooks: WebhookPolicy,
    /// Roots an uploaded certificate may chain to besides the public ones.
    pub upload_roots: mpanel_services::site_certificates::UploadRoots,
}

/// The metrics registry and who may read it.
#[derive(Clone)]
pub struct MetricsAccess {
    pub handle: PrometheusHandle,
    /// When set, readers must present it as a bearer token.
    pub token: Option<Arc<str>>,
    /// The database figures last rendered and when: read at most once per
    /// [`crate::routes::metrics::FIGURES_EVERY`], whoever scrapes.
    pub figures: Arc<tokio::sync::Mutex<Option<(std::time::Instant, String)>>>,
}
