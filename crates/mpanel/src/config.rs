//! Configuration: built-in defaults < `mpanel.toml` (or `--config` /
//! `MPANEL_CONFIG`) < `MPANEL_*` environment variables.
//!
//! A bad value stops start-up with a message naming the key and where the
//! value came from. Secrets (the database URL's password, the metrics token)
//! never appear in `Debug` output or logs.

use mpanel_services::webhooks::WebhookPolicy;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::{Figment, Metadata};
use mpanel_api::{HttpSettings, RateLimit};
use mpanel_store::{Engine, PoolSettings};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize};

/// The file read when neither `--config` nor `MPANEL_CONFIG` names one.
pub const DEFAULT_FILE: &str = "mpanel.toml";

/// Every key, as written in `mpanel.toml`; the environment variable is
/// `MPANEL_` + the key in capitals.
pub const KEYS: &[&str] = &[
    "database_url",
    "database_max_connections",
    "listen",
    "log_format",
    "log_level",
    "cors_allowed_origins",
    "rate_limit_per_minute",
    "rate_limit_burst",
    "trust_forwarded_for",
    "body_limit_bytes",
    "request_timeout_secs",
    "shutdown_grace_secs",
    "hsts",
    "metrics_token",
    "jwt_secret",
    "bootstrap_tenant",
    "bootstrap_admin_email",
    "bootstrap_admin_password",
    "worker_concurrency",
    "job_batch_size",
    "job_lease_secs",
    "job_retention_days",
    "diagnostics_log",
    "webauthn_rp_id",
    "webauthn_origin",
    "stripe_api_base",
    "secrets_key",
    "dns_verification_resolver",
    "dns_verification_interval_secs",
    "dns_verification_authority_port",
    "smtp_url",
    "mail_from",
    "portal_url",
    "webhook_allowed_networks",
    "backup_dir",
    "backup_keep",
    "acme_directory_url",
    "acme_ca_file",
    "tls_upload_roots_file",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// The values as read, before checks. Not `Debug`: it holds secrets.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(deserialize_with = "scalar_string")]
    database_url: String,
    /// Unset: [`default_max_connections`] for the engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    database_max_connections: Option<u32>,
    listen: SocketAddr,
    log_format: LogFormat,
    #[serde(deserialize_with = "scalar_string")]
    log_level: String,
    #[serde(deserialize_with = "string_list")]
    cors_allowed_origins: Vec<String>,
    rate_limit_per_minute: u32,
    rate_limit_burst: u32,
    trust_forwarded_for: bool,
    body_limit_bytes: usize,
    request_timeout_secs: u64,
    shutdown_grace_secs: u64,
    hsts: bool,
    #[serde(
        default,
        deserialize_with = "optional_scalar_string",
        skip_serializing_if = "Option::is_none"
    )]
    metrics_token: Option<String>,
    #[serde(
        default,
        deserialize_with = "optional_scalar_string",
        skip_serializing_if = "Option::is_none"
    )]
    jwt_secret: Option<String>,
    #[serde(deserialize_with = "scalar_string")]
    bootstrap_tenant: String,
    #[serde(
        default,
        deserialize_with = "optional_scalar_string",
        skip_serializing_if = "Option::is_none"
    )]
    bootstrap_admin_email: Option<String>,
    #[serde(
        default,
        deserialize_with = "optional_scalar_string",
        skip_serializing_if = "Option::is_none"
    )]
    bootstrap_admin_password: Option<String>,
    worker_concurrency: usize,
    job_batch_size: Option<u32>,
    job_lease_secs: u64,
    job_retention_days: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    diagnostics_log: Option<PathBuf>,
    #[serde(deserialize_with = "scalar_string")]
    webauthn_rp_id: String,
    #[serde(deserialize_with = "scalar_string")]
    webauthn_origin: String,
    #[serde(deserialize_with = "scalar_string")]
    stripe_api_base: String,
    #[serde(
        default,
        deserialize_with = "optional_scalar_string",
        skip_serializing_if = "Option::is_none"
    )]
    secrets_key: Option<String>,
    dns_verification_resolver: SocketAddr,
    dns_verification_interval_secs: u64,
    /// Comma-separated networks (CIDR) webhook endpoints may use although
    /// they are loopback, private or link-local.
    #[serde(
        default,
        deserialize_with = "optional_scalar_string",
        skip_serializing_if = "Option::is_none"
    )]
    webhook_allowed_networks: Option<String>,
    dns_verification_authority_port: u16,
    /// Where e-mail is sent; a secret (it may hold a password).
    #[serde(
        default,
        deserialize_with = "optional_scalar_string",
        skip_serializing_if = "Option::is_none"
    )]
    smtp_url: Option<String>,
    #[serde(deserialize_with = "scalar_string")]
    mail_from: String,
    /// Where invitation and reset links lead; default `webauthn_origin`.
    #[serde(
        default,
        deserialize_with = "optional_scalar_string",
        skip_serializing_if = "Option::is_none"
    )]
    portal_url: Option<String>,
    /// Where the daily platform backup goes (unset: none is made).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    backup_dir: Option<PathBuf>,
    /// How many scheduled backups `backup_dir` keeps.
    backup_keep: usize,
    /// Where sites' certificates come from (`none`: nowhere by default).
    #[serde(deserialize_with = "scalar_string")]
    acme_directory_url: String,
    /// PEM certificates trusted to reach the ACME server (a private CA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    acme_ca_file: Option<PathBuf>,
    /// PEM roots an uploaded certificate's chain may lead to, besides the
    /// public ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tls_upload_roots_file: Option<PathBuf>,
}

impl Default for Raw {
    fn default() -> Self {
        Self {
            database_url: "sqlite://./data/mpanel.db".into(),
            database_max_connections: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 2271)),
            log_format: LogFormat::Text,
            log_level: "info".into(),
            cors_allowed_origins: Vec::new(),
            rate_limit_per_minute: 1200,
            rate_limit_burst: 100,
            trust_forwarded_for: false,
            body_limit_bytes: 1024 * 1024,
            request_timeout_secs: 30,
            shutdown_grace_secs: 20,
            hsts: false,
            metrics_token: None,
            jwt_secret: None,
            bootstrap_tenant: "default".into(),
            bootstrap_admin_email: None,
            bootstrap_admin_password: None,
            worker_concurrency: 3,
            job_batch_size: None,
            job_lease_secs: 30,
            job_retention_days: 7,
            diagnostics_log: None,
            webauthn_rp_id: "localhost".into(),
            webauthn_origin: "http://localhost:2271".into(),
            stripe_api_base: "https://api.stripe.com".into(),
            secrets_key: None,
            dns_verification_resolver: SocketAddr::from(([1, 1, 1, 1], 53)),
            dns_verification_interval_secs: 300,
            dns_verification_authority_port: 53,
            smtp_url: None,
            mail_from: mpanel_services::notify::settings::DEFAULT_SENDER.into(),
            webhook_allowed_networks: None,
            portal_url: None,
            backup_dir: None,
            backup_keep: 7,
            acme_directory_url: mpanel_domain::tls::LETS_ENCRYPT.into(),
            acme_ca_file: None,
            tls_upload_roots_file: None,
        }
    }
}

/// The checked configuration.
pub struct Config {
    pub database_url: SecretString,
    pub engine: Engine,
    pub pool: PoolSettings,
    pub listen: SocketAddr,
    pub log_format: LogFormat,
    pub log_level: String,
    pub http: HttpSettings,
    pub shutdown_grace: Duration,
    /// The access-token signing key; `None`: one kept in the database.
    pub jwt_secret: Option<SecretString>,
    /// The first tenant and admin to create on an empty database.
    pub bootstrap: Option<Bootstrap>,
    pub jobs: JobSettings,
    /// WebAuthn relying party: its id (the panel's domain) and origin.
    pub webauthn_rp_id: String,
    pub webauthn_origin: String,
    /// Where Stripe's API is (changed only to test against a fake).
    pub stripe_api_base: String,
    /// Seals secrets at rest. Required to start: `None` here means not
    /// configured, which only embedded SQLite accepts (a key is generated
    /// beside the database; see [`crate::secrets::resolve`]).
    pub secrets_key: Option<mpanel_services::secret_box::SecretBox>,
    /// Where webhook endpoints may point.
    pub webhooks: WebhookPolicy,
    /// Roots an uploaded certificate's chain may lead to, besides the public ones.
    pub upload_roots: mpanel_services::site_certificates::UploadRoots,
    /// The file that was read, if any.
    pub file: Option<PathBuf>,
}

/// How this process works the job queue.
#[derive(Debug, Clone)]
pub struct JobSettings {
    pub concurrency: usize,
    pub batch_size: u32,
    pub lease: Duration,
    pub retention: Duration,
    /// When set, the `diagnostics.probe` job kind is registered and logs
    /// each run to this file (for operators checking a deployment).
    pub diagnostics_log: Option<PathBuf>,
    /// Opens server credentials for the provisioning jobs (the store's box
    /// when not configured).
    pub secrets_key: Option<mpanel_services::secret_box::SecretBox>,
    /// Where auto-pay jobs reach Stripe.
    pub stripe_api_base: String,
    /// Where provisioning looks up customers' proofs of domain control,
    /// and how often a job waiting for one looks again.
    pub domain_control: mpanel_provision::domain_control::ControlSettings,
    /// The SMTP server (`smtp_url`, credentials redacted in `Debug`) and
    /// the platform's sender.
    pub mail: mpanel_services::notify::MailSettings,
    /// Where webhook deliveries may go.
    pub webhooks: WebhookPolicy,
    /// The daily backup of mPanel's own database, when `backup_dir` is set.
    pub platform_backup: Option<crate::scheduled_backup::PlatformBackup>,
    /// Where sites' certificates come from.
    pub acme: mpanel_provision::certificates::AcmeSettings,
}

/// Bootstrap settings (only when an admin e-mail address is configured).
pub struct Bootstrap {
    pub tenant: String,
    pub admin_email: String,
    pub admin_password: Option<SecretString>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field(
                "database_url",
                &redact_url(self.database_url.expose_secret()),
            )
            .field("pool", &self.pool)
            .field("listen", &self.listen)
            .field("log_format", &self.log_format)
            .field("log_level", &self.log_level)
            .field("http", &self.http)
            .field("shutdown_grace", &self.shutdown_grace)
            .field(
                "jwt_secret",
                &self.jwt_secret.as_ref().map(|_| "[redacted]"),
            )
            .field(
                "bootstrap",
                &self.bootstrap.as_ref().map(|b| (&b.tenant, &b.admin_email)),
            )
            .field("jobs", &self.jobs)
            .field("file", &self.file)
            .finish()
    }
}

impl Config {
    /// The database URL with any password replaced, for logs.
    pub fn database_url_redacted(&self) -> String {
        redact_url(self.database_url.expose_secret())
    }
}

/// A configuration error, already phrased for the operator.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Loads the configuration. `file` is the `--config` path; without one,
/// `MPANEL_CONFIG`, then `./mpanel.toml` if present.
pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
    let (file, required) = match file {
        Some(path) => (Some(path.to_path_buf()), true),
        None => match std::env::var_os("MPANEL_CONFIG") {
            Some(path) => (Some(PathBuf::from(path)), true),
            None => {
                let default = PathBuf::from(DEFAULT_FILE);
                (default.exists().then_some(default), false)
            }
        },
    };
    if let Some(path) = file.as_ref().filter(|_| required)
        && !path.is_file()
    {
        return Err(ConfigError(format!(
            "configuration file {} does not exist",
            path.display()
        )));
    }
    let mut figment = Figment::from(Serialized::defaults(Raw::default()));
    if let Some(path) = &file {
        figment = figment.merge(Toml::file_exact(path));
    }
    figment = figment.merge(
        Env::prefixed("MPANEL_")
            .filter(|key| KEYS.contains(&key.as_str().to_ascii_lowercase().as_str())),
    );
    let raw: Raw = figment
        .extract()
        .map_err(|err| describe_figment_error(&err))?;
    check(raw, file, &figment)
}

fn check(raw: Raw, file: Option<PathBuf>, figment: &Figment) -> Result<Config, ConfigError> {
    let bad =
        |key: &str, why: &str| ConfigError(format!("invalid {}: {why}", origin(figment, key)));
    // In the order the keys are listed, so the first bad one is reported.
    let engine = check_server(&raw, &bad)?;
    check_bootstrap(&raw, &bad)?;
    check_jobs(&raw, &bad)?;
    let secrets_key = check_integrations(&raw, &bad)?;
    let portal_url = raw.portal_url.as_deref().unwrap_or(&raw.webauthn_origin);
    let mail = mpanel_services::notify::MailSettings::new(raw.smtp_url.as_deref(), &raw.mail_from)
        .and_then(|m| m.with_portal_url(portal_url))
        .map_err(|(key, why)| bad(key, &why))?;
    let webhooks = check_webhooks(&raw, &bad)?;
    let platform_backup = check_backup(&raw, engine, &bad)?;
    let tls = crate::config_tls::check(
        &raw.acme_directory_url,
        raw.acme_ca_file.as_deref(),
        raw.tls_upload_roots_file.as_deref(),
        &bad,
    )?;
    let mut jobs = job_settings(&raw, secrets_key.clone(), mail, webhooks.clone());
    jobs.platform_backup = platform_backup;
    jobs.acme = tls.acme;
    let bootstrap = raw.bootstrap_admin_email.map(|email| Bootstrap {
        tenant: raw.bootstrap_tenant,
        admin_email: email,
        admin_password: raw.bootstrap_admin_password.map(SecretString::from),
    });
    let rate_limit = (raw.rate_limit_per_minute > 0).then_some(RateLimit {
        per_minute: raw.rate_limit_per_minute,
        burst: raw.rate_limit_burst,
    });
    Ok(Config {
        database_url: SecretString::from(raw.database_url),
        engine,
        pool: PoolSettings {
            max_connections: raw
                .database_max_connections
                .unwrap_or_else(|| default_max_connections(engine)),
            ..PoolSettings::default()
        },
        listen: raw.listen,
        log_format: raw.log_format,
        log_level: raw.log_level,
        http: HttpSettings {
            cors_allowed_origins: raw.cors_allowed_origins,
            rate_limit,
            trust_forwarded_for: raw.trust_forwarded_for,
            body_limit_bytes: raw.body_limit_bytes,
            request_timeout: Duration::from_secs(raw.request_timeout_secs),
            hsts: raw.hsts,
            metrics_token: raw.metrics_token,
        },
        shutdown_grace: Duration::from_secs(raw.shutdown_grace_secs),
        jwt_secret: raw.jwt_secret.map(SecretString::from),
        bootstrap,
        jobs,
        webauthn_rp_id: raw.webauthn_rp_id,
        webauthn_origin: raw.webauthn_origin,
        stripe_api_base: raw.stripe_api_base,
        secrets_key,
        webhooks,
        upload_roots: tls.upload_roots,
        file,
    })
}

/// The pool size when `database_max_connections` is not set: 10 on
/// PostgreSQL; on SQLite, whose reads run on this machine's cores (each
/// connection a thread of its own), twice the cores, from 2 to 10. More
/// read threads than that only switch between themselves and take CPU
/// from the one write connection: on 2 cores, 4 rather than 10 read
/// connections gave writers 75 % more orders a second under a read flood,
/// and reads lost nothing (docs/benchmarks.md, "Under load").
fn default_max_connections(engine: Engine) -> u32 {
    match engine {
        Engine::Postgres => 10,
        Engine::Sqlite => {
            let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
            u32::try_from(cores.saturating_mul(2))
                .unwrap_or(u32::MAX)
                .clamp(2, 10)
        }
    }
}

/// The database, logging and HTTP keys; answers the database engine.
fn check_server(
    raw: &Raw,
    bad: &impl Fn(&str, &str) -> ConfigError,
) -> Result<Engine, ConfigError> {
    let engine = Engine::from_url(&raw.database_url).map_err(|_| {
        bad(
            "database_url",
            "must start with sqlite: (e.g. sqlite://./data/mpanel.db) or postgres://",
        )
    })?;
    if raw.database_max_connections == Some(0) {
        return Err(bad("database_max_connections", "must be at least 1"));
    }
    if let Err(err) = tracing_subscriber::EnvFilter::try_new(&raw.log_level) {
        return Err(bad(
            "log_level",
            &format!("{err} (use e.g. info, debug, or mpanel=debug,sqlx=warn)"),
        ));
    }
    for origin_value in &raw.cors_allowed_origins {
        if !is_origin(origin_value) {
            return Err(bad(
                "cors_allowed_origins",
                &format!("{origin_value:?} is not an origin like https://panel.example.com"),
            ));
        }
    }
    if raw.body_limit_bytes == 0 {
        return Err(bad("body_limit_bytes", "must be at least 1"));
    }
    if raw.request_timeout_secs == 0 {
        return Err(bad("request_timeout_secs", "must be at least 1"));
    }
    if raw.rate_limit_per_minute > 0 && raw.rate_limit_burst == 0 {
        return Err(bad(
            "rate_limit_burst",
            "must be at least 1 while rate_limit_per_minute is set",
        ));
    }
    if raw.metrics_token.as_ref().is_some_and(|t| t.len() < 16) {
        return Err(bad("metrics_token", "must be at least 16 characters"));
    }
    if raw.jwt_secret.as_ref().is_some_and(|s| s.len() < 32) {
        return Err(bad("jwt_secret", "must be at least 32 characters"));
    }
    Ok(engine)
}

/// The first admin's tenant and password, when one is to be made.
fn check_bootstrap(raw: &Raw, bad: &impl Fn(&str, &str) -> ConfigError) -> Result<(), ConfigError> {
    if raw.bootstrap_admin_email.is_some()
        && mpanel_domain::TenantSlug::parse(&raw.bootstrap_tenant).is_err()
    {
        return Err(bad(
            "bootstrap_tenant",
            "must be a slug: a-z, 0-9 and '-', 2 to 63 characters",
        ));
    }
    if let Some(pw) = &raw.bootstrap_admin_password
        && let Err(why) = mpanel_domain::identity::password::check_new_password(pw)
    {
        return Err(bad("bootstrap_admin_password", &why));
    }
    Ok(())
}

/// The workers' and the domain-control checker's keys.
fn check_jobs(raw: &Raw, bad: &impl Fn(&str, &str) -> ConfigError) -> Result<(), ConfigError> {
    if raw.worker_concurrency == 0 || raw.worker_concurrency > 1024 {
        return Err(bad("worker_concurrency", "must be 1 to 1024"));
    }
    if raw.job_batch_size.is_some_and(|b| b == 0 || b > 1000) {
        return Err(bad("job_batch_size", "must be 1 to 1000"));
    }
    if raw.job_lease_secs < 2 {
        return Err(bad("job_lease_secs", "must be at least 2"));
    }
    if raw.dns_verification_authority_port == 0 {
        return Err(bad("dns_verification_authority_port", "must be 1 to 65535"));
    }
    if !(1..=86_400).contains(&raw.dns_verification_interval_secs) {
        return Err(bad(
            "dns_verification_interval_secs",
            "must be 1 to 86400 (a day)",
        ));
    }
    Ok(())
}

/// The secrets key, Stripe's API base and the WebAuthn party, each built
/// once here so a bad one stops the start; answers the secrets box.
fn check_integrations(
    raw: &Raw,
    bad: &impl Fn(&str, &str) -> ConfigError,
) -> Result<Option<mpanel_services::secret_box::SecretBox>, ConfigError> {
    let secrets_key = match &raw.secrets_key {
        None => None,
        Some(key) => Some(
            mpanel_services::secret_box::SecretBox::from_base64(key)
                .map_err(|m| bad("secrets_key", &m))?,
        ),
    };
    if let Err(err) = mpanel_services::billing::stripe::StripeClient::new(&raw.stripe_api_base) {
        return Err(bad("stripe_api_base", &err.to_string()));
    }
    if let Err(err) = mpanel_services::security::webauthn::Passkeys::new(
        &raw.webauthn_rp_id,
        &raw.webauthn_origin,
    ) {
        return Err(bad(
            "webauthn_origin",
            &format!("{err} (the origin must be a URL on the webauthn_rp_id domain)"),
        ));
    }
    Ok(secrets_key)
}

fn check_webhooks(
    raw: &Raw,
    bad: &impl Fn(&str, &str) -> ConfigError,
) -> Result<WebhookPolicy, ConfigError> {
    let allowed_networks = raw
        .webhook_allowed_networks
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(|n| {
            n.parse()
                .map_err(|m: String| bad("webhook_allowed_networks", &m))
        })
        .collect::<Result<_, _>>()?;
    Ok(WebhookPolicy { allowed_networks })
}

/// `backup_dir` must be a folder this process can write in; checked at
/// start, so a wrong one is not first noticed at the night's backup.
fn check_backup(
    raw: &Raw,
    engine: Engine,
    bad: &impl Fn(&str, &str) -> ConfigError,
) -> Result<Option<crate::scheduled_backup::PlatformBackup>, ConfigError> {
    if !(1..=1000).contains(&raw.backup_keep) {
        return Err(bad("backup_keep", "must be 1 to 1000"));
    }
    let Some(dir) = &raw.backup_dir else {
        return Ok(None);
    };
    if !dir.is_dir() {
        return Err(bad(
            "backup_dir",
            &format!("{} is not an existing folder", dir.display()),
        ));
    }
    let probe = dir.join(format!(".mpanel-write-check-{}", std::process::id()));
    let writable = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map(drop);
    let _ = std::fs::remove_file(&probe);
    if let Err(err) = writable {
        return Err(bad(
            "backup_dir",
            &format!("cannot write in {}: {err}", dir.display()),
        ));
    }
    Ok(Some(crate::scheduled_backup::PlatformBackup {
        dir: dir.clone(),
        keep: raw.backup_keep,
        database_url: SecretString::from(raw.database_url.clone()),
        engine,
    }))
}

fn job_settings(
    raw: &Raw,
    secrets_key: Option<mpanel_services::secret_box::SecretBox>,
    mail: mpanel_services::notify::MailSettings,
    webhooks: WebhookPolicy,
) -> JobSettings {
    JobSettings {
        webhooks,
        concurrency: raw.worker_concurrency,
        batch_size: raw
            .job_batch_size
            .unwrap_or(u32::try_from(raw.worker_concurrency).unwrap_or(1)),
        lease: Duration::from_secs(raw.job_lease_secs),
        retention: Duration::from_secs(raw.job_retention_days.saturating_mul(86_400)),
        diagnostics_log: raw.diagnostics_log.clone(),
        secrets_key,
        stripe_api_base: raw.stripe_api_base.clone(),
        domain_control: mpanel_provision::domain_control::ControlSettings {
            resolver: raw.dns_verification_resolver,
            authority_port: raw.dns_verification_authority_port,
            recheck: time::Duration::seconds(
                i64::try_from(raw.dns_verification_interval_secs).unwrap_or(300),
            ),
        },
        mail,
        platform_backup: None,
        acme: Default::default(),
    }
}

/// `key` and where its value came from, e.g.
/// `listen (from environment variable MPANEL_LISTEN)`.
fn origin(figment: &Figment, key: &str) -> String {
    match figment.find_metadata(key) {
        Some(meta) => format!("{key} (from {})", describe_source(meta, key)),
        None => key.to_owned(),
    }
}

fn describe_source(meta: &Metadata, key: &str) -> String {
    match &meta.source {
        Some(figment::Source::File(path)) => format!("{}", path.display()),
        _ if meta.name.contains("environment") => {
            format!("environment variable MPANEL_{}", key.to_ascii_uppercase())
        }
        _ => "built-in default".to_owned(),
    }
}

fn describe_figment_error(err: &figment::Error) -> ConfigError {
    let key = err.path.join(".");
    if let figment::error::Kind::UnknownField(field, _) = &err.kind {
        let source = err.metadata.as_ref().map_or_else(
            || "the configuration".to_owned(),
            |meta| describe_source(meta, field),
        );
        return ConfigError(format!(
            "unknown key {field:?} in {source}; known keys: {}",
            KEYS.join(", ")
        ));
    }
    let what = err.kind.to_string();
    let source = err
        .metadata
        .as_ref()
        .map(|meta| describe_source(meta, &key));
    ConfigError(match (key.is_empty(), source) {
        (false, Some(source)) => format!("invalid {key} (from {source}): {what}"),
        (false, None) => format!("invalid {key}: {what}"),
        (true, Some(source)) => format!("invalid configuration in {source}: {what}"),
        (true, None) => format!("invalid configuration: {what}"),
    })
}

fn is_origin(value: &str) -> bool {
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"));
    rest.is_some_and(|host| {
        !host.is_empty()
            && !host.contains('/')
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
    })
}

/// `postgres://user:secret@host/db?password=x` → `postgres://user:***@host/db?password=***`.
pub fn redact_url(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let base = match base.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            match authority.rsplit_once('@') {
                Some((userinfo, host)) => {
                    let user = userinfo.split(':').next().unwrap_or("");
                    let masked = if userinfo.contains(':') { ":***" } else { "" };
                    format!("{scheme}://{user}{masked}@{host}{path}")
                }
                None => base.to_owned(),
            }
        }
        None => base.to_owned(),
    };
    match query {
        None => base,
        Some(query) => {
            let pairs: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{base}?{}", pairs.join("&"))
        }
    }
}

/// Environment values arrive typed (`12345` is a number); a string field
/// takes any scalar as its text.
fn scalar_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        S(String),
        I(i64),
        U(u64),
        F(f64),
        B(bool),
    }
    Ok(match Scalar::deserialize(d)? {
        Scalar::S(s) => s,
        Scalar::I(n) => n.to_string(),
        Scalar::U(n) => n.to_string(),
        Scalar::F(n) => n.to_string(),
        Scalar::B(b) => b.to_string(),
    })
}

fn optional_scalar_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = scalar_string(d)?;
    Ok((!s.is_empty()).then_some(s))
}

/// A list, from a TOML array or a comma-separated string.
fn string_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum List {
        One(String),
        Many(Vec<String>),
    }
    Ok(match List::deserialize(d)? {
        List::One(s) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        List::Many(v) => v,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://mp:s3cret@db.internal:5432/mpanel"),
            "postgres://mp:***@db.internal:5432/mpanel"
        );
        assert_eq!(
            redact_url("postgres://mp@db/mpanel?password=s3cret&sslmode=require"),
            "postgres://mp@db/mpanel?password=***&sslmode=require"
        );
        assert_eq!(
            redact_url("sqlite://./data/mpanel.db"),
            "sqlite://./data/mpanel.db"
        );
    }

    fn checked(raw: Raw) -> Config {
        let figment = Figment::from(Serialized::defaults(Raw::default()));
        check(raw, None, &figment).unwrap()
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let config = checked(Raw::default());
        assert_eq!(config.listen.to_string(), "127.0.0.1:2271");
        assert_eq!(
            config.database_url.expose_secret(),
            "sqlite://./data/mpanel.db"
        );
        assert_eq!(config.engine, Engine::Sqlite);
        assert_eq!(config.log_format, LogFormat::Text);
        assert_eq!(config.http.body_limit_bytes, 1024 * 1024);
        assert_eq!(config.http.request_timeout, Duration::from_secs(30));
        assert!(config.http.cors_allowed_origins.is_empty());
    }

    #[test]
    fn the_pool_size_defaults_by_engine_and_a_set_one_is_kept() {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let sqlite = checked(Raw::default());
        assert_eq!(
            sqlite.pool.max_connections as usize,
            (cores * 2).clamp(2, 10)
        );
        let postgres = checked(Raw {
            database_url: "postgres://mp@db/mpanel".into(),
            ..Raw::default()
        });
        assert_eq!(postgres.pool.max_connections, 10);
        let set = checked(Raw {
            database_max_connections: Some(7),
            ..Raw::default()
        });
        assert_eq!(set.pool.max_connections, 7);
    }

    #[test]
    fn debug_output_hides_secrets() {
        let config = checked(Raw {
            database_url: "postgres://mp:s3cret-pw@db/mpanel".into(),
            metrics_token: Some("token-0123456789abcdef".into()),
            jwt_secret: Some("jwt-secret-0123456789abcdef0123456789".into()),
            bootstrap_admin_email: Some("admin@example.com".into()),
            bootstrap_admin_password: Some("bootstrap-pw-0123".into()),
            ..Raw::default()
        });
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cret-pw"), "{shown}");
        assert!(!shown.contains("token-0123456789abcdef"), "{shown}");
        assert!(!shown.contains("jwt-secret-0123456789abcdef"), "{shown}");
        assert!(!shown.contains("bootstrap-pw-0123"), "{shown}");
        assert!(shown.contains("postgres://mp:***@db/mpanel"), "{shown}");
    }

    #[test]
    fn smtp_credentials_are_redacted_and_mail_is_optional() {
        let config = checked(Raw {
            smtp_url: Some("smtps://mailer:smtp-s3cret@mail.example.com:465".into()),
            mail_from: "Host <billing@example.com>".into(),
            ..Raw::default()
        });
        let shown = format!("{config:?}");
        assert!(!shown.contains("smtp-s3cret"), "{shown}");
        assert!(
            shown.contains("smtps://mailer:***@mail.example.com:465"),
            "{shown}"
        );
        assert!(config.jobs.mail.smtp_configured());
        assert!(!checked(Raw::default()).jobs.mail.smtp_configured());
    }

    #[test]
    fn a_bad_smtp_url_or_sender_stops_the_start() {
        let figment = Figment::from(Serialized::defaults(Raw::default()));
        for (raw, key) in [
            (
                Raw {
                    smtp_url: Some("http://mail.example.com".into()),
                    ..Raw::default()
                },
                "smtp_url",
            ),
            (
                Raw {
                    mail_from: "not an address".into(),
                    ..Raw::default()
                },
                "mail_from",
            ),
        ] {
            let err = check(raw, None, &figment).err().unwrap();
            assert!(err.0.starts_with(&format!("invalid {key}")), "{}", err.0);
        }
    }

    #[test]
    fn backup_dir_must_be_a_writable_folder() {
        let figment = Figment::from(Serialized::defaults(Raw::default()));
        let dir = tempfile::tempdir().unwrap();
        let config = checked(Raw {
            backup_dir: Some(dir.path().to_path_buf()),
            ..Raw::default()
        });
        let backup = config.jobs.platform_backup.unwrap();
        assert_eq!((backup.dir.as_path(), backup.keep), (dir.path(), 7));
        assert!(checked(Raw::default()).jobs.platform_backup.is_none());
        let missing = dir.path().join("nope");
        let err = check(
            Raw {
                backup_dir: Some(missing),
                ..Raw::default()
            },
            None,
            &figment,
        )
        .err()
        .unwrap();
        assert!(err.0.starts_with("invalid backup_dir"), "{}", err.0);
        assert!(err.0.contains("is not an existing folder"), "{}", err.0);
        let err = check(
            Raw {
                backup_keep: 0,
                ..Raw::default()
            },
            None,
            &figment,
        )
        .err()
        .unwrap();
        assert!(err.0.starts_with("invalid backup_keep"), "{}", err.0);
    }

    #[test]
    fn origins_are_scheme_and_host_only() {
        assert!(is_origin("https://panel.example.com"));
        assert!(is_origin("http://localhost:5173"));
        assert!(!is_origin("panel.example.com"));
        assert!(!is_origin("https://panel.example.com/"));
        assert!(!is_origin("*"));
    }
}
