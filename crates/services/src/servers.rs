//! The server inventory (SUPER_ADMIN): servers with their role, address,
//! capacity and status; credentials sealed with the configured
//! `secrets_key` and never shown again; a periodic reachability check.

use std::time::{Duration, Instant};

use mpanel_domain::cloudpods::ClusterSettings;
use mpanel_domain::provisioning::{ServerRole, ServerStatus};
use mpanel_domain::{Clock, ServerId, TenantId};
use mpanel_store::servers::ServerRecord;
use mpanel_store::{Store, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::actor::Change;
use crate::secret_box::SecretBox;
use crate::{Actor, Context, ServiceError};

/// How mPanel reaches a server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE", deny_unknown_fields)]
pub enum Credentials {
    /// An SSH user and its private key (OpenSSH format).
    Ssh {
        #[schema(pattern = "^[A-Za-z0-9._-]{1,32}$")]
        user: String,
        #[schema(pattern = "PRIVATE KEY-----")]
        private_key: String,
    },
    /// An HTTP API and its key (PowerDNS, Proxmox VE).
    Api { url: String, key: String },
}

impl Credentials {
    fn check(&self) -> Result<(), ServiceError> {
        match self {
            Self::Ssh { user, private_key } => {
                if user.is_empty()
                    || user.len() > 32
                    || !user
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                {
                    return Err(ServiceError::invalid(
                        "credentials.user",
                        "must be a Unix user name",
                    ));
                }
                if !private_key.contains("PRIVATE KEY-----") {
                    return Err(ServiceError::invalid(
                        "credentials.private_key",
                        "must be a private key in OpenSSH or PEM format",
                    ));
                }
            }
            Self::Api { url, key } => {
                let parsed = url::Url::parse(url).map_err(|_| {
                    ServiceError::invalid("credentials.url", "must be an http(s) URL")
                })?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(ServiceError::invalid(
                        "credentials.url",
                        "must be an http(s) URL",
                    ));
                }
                if key.is_empty() {
                    return Err(ServiceError::invalid(
                        "credentials.key",
                        "must not be empty",
                    ));
                }
            }
        }
        Ok(())
    }

    /// What may be shown: the kind and the user or URL, never the secret.
    fn summary(&self) -> Value {
        match self {
            Self::Ssh { user, .. } => json!({"type": "SSH", "user": user}),
            Self::Api { url, .. } => json!({"type": "API", "url": url}),
        }
    }
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewServer {
    #[schema(pattern = "\\S", max_length = 100)]
    pub name: String,
    pub role: ServerRole,
    /// A host name or an IP address.
    #[schema(pattern = "^[A-Za-z0-9.:\\[\\]-]{1,253}$")]
    pub address: String,
    pub port: Option<u16>,
    pub credentials: Credentials,
    /// Role-specific, not secret: e.g. a web node's `public_ipv4`,
    /// `nginx_conf`, `sites_dir`, `root_dir`, `listen`, `helper`,
    /// `php_socket_dir`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub settings: Option<Value>,
    #[schema(minimum = 0, maximum = 1_000_000)]
    pub capacity: i64,
    pub status: Option<ServerStatus>,
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerPatch {
    #[schema(pattern = "\\S", max_length = 100)]
    pub name: Option<String>,
    #[schema(pattern = "^[A-Za-z0-9.:\\[\\]-]{1,253}$")]
    pub address: Option<String>,
    pub port: Option<u16>,
    pub credentials: Option<Credentials>,
    #[schema(value_type = Option<Object>)]
    pub settings: Option<Value>,
    #[schema(minimum = 0, maximum = 1_000_000)]
    pub capacity: Option<i64>,
    pub status: Option<ServerStatus>,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct ServerView {
    pub id: ServerId,
    pub name: String,
    pub role: ServerRole,
    pub address: String,
    pub port: i32,
    /// `{type, user}` or `{type, url}`: the secret is never returned.
    /// `{"type": "UNREADABLE"}` when the stored credentials cannot be
    /// opened (sealed with another `secrets_key`): send them again with
    /// PATCH.
    pub credentials: Value,
    pub settings: Value,
    pub capacity: i64,
    pub status: ServerStatus,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_check_at: Option<OffsetDateTime>,
    pub last_latency_ms: Option<i64>,
    pub last_error: Option<String>,
    /// What the last check read beyond reachability: for a `CLOUD` server
    /// each node's `{node, online, cpu, maxcpu, mem, maxmem, disk,
    /// maxdisk}` as `GET /nodes` reported it.
    #[schema(value_type = Option<Object>)]
    pub health: Option<Value>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

fn secrets(secrets: Option<&SecretBox>) -> Result<&SecretBox, ServiceError> {
    secrets.ok_or_else(|| {
        ServiceError::Conflict(
            "no secrets_key is configured: set MPANEL_SECRETS_KEY (32 bytes, base64) to store server credentials".into(),
        )
    })
}

pub fn open_credentials(sb: &SecretBox, s: &ServerRecord) -> Result<Credentials, ServiceError> {
    let raw = sb.open(&s.credentials, s.id.to_string().as_bytes())?;
    serde_json::from_slice(&raw).map_err(|e| ServiceError::internal("server credentials", e))
}

fn seal(sb: &SecretBox, id: ServerId, c: &Credentials) -> Result<String, ServiceError> {
    let raw = serde_json::to_vec(c)
        .map_err(|e| ServiceError::internal("cannot serialize server credentials", e))?;
    Ok(sb.seal(&raw, id.to_string().as_bytes())?)
}

/// The credentials' summary for a view, or `{"type": "UNREADABLE"}` when
/// the stored ones cannot be opened (sealed with another `secrets_key`, or
/// changed outside mPanel): the server is still listed, so it can be
/// found and given its credentials again.
fn summary_of(sb: &SecretBox, s: &ServerRecord) -> Value {
    match open_credentials(sb, s) {
        Ok(c) => c.summary(),
        Err(e) => {
            tracing::warn!(server = %s.id, error = %e, "a server's stored credentials cannot be opened");
            json!({"type": "UNREADABLE"})
        }
    }
}

fn view(s: ServerRecord, credentials: Value) -> ServerView {
    ServerView {
        id: s.id,
        name: s.name,
        role: s.role,
        address: s.address,
        port: s.port,
        credentials,
        settings: s.settings,
        capacity: s.capacity,
        status: s.status,
        last_check_at: s.last_check_at,
        last_latency_ms: s.last_latency_ms,
        last_error: s.last_error,
        health: s.health,
        created_at: s.created_at,
    }
}

/// What a role needs: a `CLOUD` server (a Proxmox VE cluster) an HTTPS
/// API, a token `USER@REALM!TOKENID=SECRET` and its settings
/// ([`ClusterSettings`]: the fingerprint to pin, nodes, templates,
/// storage, bridge, IPv4 pool, resolvers).
fn check_role(
    role: ServerRole,
    address: &str,
    c: &Credentials,
    settings: &Value,
) -> Result<(), ServiceError> {
    if role == ServerRole::Backup {
        return check_backup(address, c, settings);
    }
    if role != ServerRole::Cloud {
        return Ok(());
    }
    let Credentials::Api { url, key } = c else {
        return Err(ServiceError::invalid(
            "credentials",
            "a CLOUD server takes API credentials: the Proxmox VE API URL and token",
        ));
    };
    if !url.starts_with("https://") {
        return Err(ServiceError::invalid(
            "credentials.url",
            "must be the cluster's https:// API URL (its certificate is pinned)",
        ));
    }
    if !mpanel_domain::cloudpods::valid_api_token(key) {
        return Err(ServiceError::invalid(
            "credentials.key",
            "must be a Proxmox VE API token: USER@REALM!TOKENID=SECRET",
        ));
    }
    ClusterSettings::from_value(settings)
        .map(drop)
        .map_err(|(field, why)| ServiceError::invalid(field, why))
}

/// The backup helper's command when a `BACKUP` server's settings name none.
pub const BACKUP_HELPER_DEFAULT: &str = "sudo -n /usr/local/sbin/mpanel-backup-helper";

/// A `BACKUP` server: mPanel's SSH login there (it runs the helper that
/// makes each tenant's own chrooted SFTP login; nodes get only that
/// tenant's key), `host_key` to pin and optionally `helper`, the helper's
/// command.
fn check_backup(address: &str, c: &Credentials, settings: &Value) -> Result<(), ServiceError> {
    if address.contains(':') {
        return Err(ServiceError::invalid(
            "address",
            "a BACKUP server is reached by a host name or an IPv4 address (restic's SFTP login takes no IPv6 literal)",
        ));
    }
    if !matches!(c, Credentials::Ssh { .. }) {
        return Err(ServiceError::invalid(
            "credentials",
            "a BACKUP server takes SSH credentials (mPanel's login there and its key)",
        ));
    }
    let text = |key: &str| settings.get(key).and_then(Value::as_str).unwrap_or("");
    let host_key = text("host_key");
    let mut parts = host_key.split_whitespace();
    let key_ok = matches!(
        parts.next(),
        Some(
            "ssh-ed25519"
                | "ssh-rsa"
                | "ecdsa-sha2-nistp256"
                | "ecdsa-sha2-nistp384"
                | "ecdsa-sha2-nistp521"
        )
    ) && parts.next().is_some_and(|b| {
        !b.is_empty()
            && b.chars()
                .all(|c| c.is_ascii_alphanumeric() || "+/=".contains(c))
    });
    if !key_ok {
        return Err(ServiceError::invalid(
            "settings.host_key",
            "must be the server's SSH host key: `ssh-ed25519 AAAA…`",
        ));
    }
    // The helper that makes each tenant's login (see `backups::login`):
    // the command mPanel's login there runs, by default `sudo -n
    // /usr/local/sbin/mpanel-backup-helper`.
    let helper = settings
        .get("helper")
        .map_or(Some(BACKUP_HELPER_DEFAULT), Value::as_str)
        .unwrap_or("");
    let helper_ok = helper.len() <= 400
        && helper
            .split_whitespace()
            .last()
            .is_some_and(|p| p.starts_with('/'))
        && helper
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || " /._-".contains(c));
    if !helper_ok {
        return Err(ServiceError::invalid(
            "settings.helper",
            "must be the command that runs the backup helper, its path absolute: `sudo -n /usr/local/sbin/mpanel-backup-helper`",
        ));
    }
    Ok(())
}

fn check_fields(
    name: &str,
    address: &str,
    capacity: i64,
    settings: &Value,
) -> Result<(), ServiceError> {
    if name.trim().is_empty() || name.chars().count() > 100 {
        return Err(ServiceError::invalid("name", "must be 1 to 100 characters"));
    }
    let host_ok = !address.is_empty()
        && address.len() <= 253
        && address
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c));
    if !host_ok {
        return Err(ServiceError::invalid(
            "address",
            "must be a host name or an IP address",
        ));
    }
    if !(0..=1_000_000).contains(&capacity) {
        return Err(ServiceError::invalid(
            "capacity",
            "must be 0 to 1,000,000 accounts",
        ));
    }
    if !settings.is_object() {
        return Err(ServiceError::invalid("settings", "must be a JSON object"));
    }
    Ok(())
}

fn default_port(role: ServerRole, c: &Credentials) -> u16 {
    match (role, c) {
        (_, Credentials::Ssh { .. }) => 22,
        (ServerRole::Dns, Credentials::Api { .. }) => 8081,
        (ServerRole::Cloud, Credentials::Api { .. }) => 8006,
        _ => 443,
    }
}

fn conflict(e: StoreError) -> ServiceError {
    match e {
        StoreError::Conflict(_) => ServiceError::Conflict("a server with this name exists".into()),
        other => other.into(),
    }
}

pub async fn create(
    cx: &Context,
    sb: Option<&SecretBox>,
    input: NewServer,
) -> Result<ServerView, ServiceError> {
    let store = &cx.store;
    let actor = &cx.actor;
    let tenant = cx.tenant_id();
    let sb = secrets(sb)?;
    let settings = input.settings.unwrap_or_else(|| json!({}));
    check_fields(&input.name, &input.address, input.capacity, &settings)?;
    input.credentials.check()?;
    check_role(input.role, &input.address, &input.credentials, &settings)?;
    let now = cx.now();
    let id = ServerId::new();
    let record = ServerRecord {
        id,
        name: input.name.trim().to_owned(),
        role: input.role,
        address: input.address.clone(),
        port: i32::from(
            input
                .port
                .unwrap_or_else(|| default_port(input.role, &input.credentials)),
        ),
        credentials: seal(sb, id, &input.credentials)?,
        settings,
        capacity: input.capacity,
        status: input.status.unwrap_or(ServerStatus::Online),
        last_check_at: None,
        last_latency_ms: None,
        last_error: None,
        health: None,
        created_at: now,
        updated_at: now,
    };
    store.insert_server(&record).await.map_err(conflict)?;
    audit(
        store,
        actor,
        tenant,
        "server.create",
        &record,
        input.credentials.summary(),
        now,
    )
    .await?;
    Ok(view(record, input.credentials.summary()))
}

async fn audit(
    store: &Store,
    actor: &Actor,
    tenant: TenantId,
    action: &'static str,
    s: &ServerRecord,
    credentials: Value,
    now: OffsetDateTime,
) -> Result<(), ServiceError> {
    let mut tx = store.begin().await?;
    tx.record_audit(&actor.platform_audit(Change {
        tenant,
        action,
        target_type: "server",
        target_id: s.id.to_string(),
        before: None,
        after: Some(
            json!({"name": s.name, "role": s.role, "address": s.address, "port": s.port,
            "capacity": s.capacity, "status": s.status, "credentials": credentials}),
        ),
        at: now,
    }))
    .await?;
    tx.commit().await?;
    Ok(())
}

pub async fn update(
    cx: &Context,
    sb: Option<&SecretBox>,
    id: ServerId,
    patch: ServerPatch,
) -> Result<ServerView, ServiceError> {
    let store = &cx.store;
    let actor = &cx.actor;
    let tenant = cx.tenant_id();
    let sb = secrets(sb)?;
    let mut s = store
        .server(id)
        .await?
        .ok_or_else(ServiceError::missing("server"))?;
    // New credentials replace the stored ones even when those cannot be
    // opened any more. Without new ones, the address and settings (checked
    // against them) change only when they open; the name, capacity and
    // status (taking the server out of service) change either way.
    let touches_role = patch.address.is_some() || patch.settings.is_some();
    let credentials = match patch.credentials {
        Some(c) => {
            c.check()?;
            s.credentials = seal(sb, id, &c)?;
            Some(c)
        }
        None => match open_credentials(sb, &s) {
            Ok(c) => Some(c),
            Err(_) if !touches_role => None,
            Err(_) => {
                return Err(ServiceError::Refused {
                    field: "credentials",
                    reason: "credentials_unreadable",
                    message: "the stored credentials cannot be opened (sealed with another secrets_key?): send them again".into(),
                });
            }
        },
    };
    if let Some(v) = patch.name {
        s.name = v.trim().to_owned();
    }
    if let Some(v) = patch.address {
        s.address = v;
    }
    if let Some(v) = patch.port {
        s.port = i32::from(v);
    }
    if let Some(v) = patch.settings {
        s.settings = v;
    }
    if let Some(v) = patch.capacity {
        s.capacity = v;
    }
    if let Some(v) = patch.status {
        s.status = v;
    }
    check_fields(&s.name, &s.address, s.capacity, &s.settings)?;
    if let Some(c) = &credentials {
        check_role(s.role, &s.address, c, &s.settings)?;
    }
    let now = cx.now();
    s.updated_at = now;
    store
        .update_server(&s)
        .await
        .map_err(conflict)?
        .then_some(())
        .ok_or_else(ServiceError::missing("server"))?;
    let summary = credentials.map_or_else(|| json!({"type": "UNREADABLE"}), |c| c.summary());
    audit(
        store,
        actor,
        tenant,
        "server.update",
        &s,
        summary.clone(),
        now,
    )
    .await?;
    Ok(view(s, summary))
}

pub async fn get(
    cx: &Context,
    sb: Option<&SecretBox>,
    id: ServerId,
) -> Result<ServerView, ServiceError> {
    let store = &cx.store;
    let sb = secrets(sb)?;
    let s = store
        .server(id)
        .await?
        .ok_or_else(ServiceError::missing("server"))?;
    let summary = summary_of(sb, &s);
    Ok(view(s, summary))
}

pub async fn list(
    cx: &Context,
    sb: Option<&SecretBox>,
    role: Option<ServerRole>,
) -> Result<Vec<ServerView>, ServiceError> {
    let store = &cx.store;
    let sb = secrets(sb)?;
    let servers = store.list_servers(role).await?;
    Ok(servers
        .into_iter()
        .map(|s| {
            let summary = summary_of(sb, &s);
            view(s, summary)
        })
        .collect())
}

/// The periodic health check without SSH: can a TCP connection be opened
/// to each server's address and port, and how long did it take.
/// A `CLOUD` server is checked through its API instead, and an SSH node
/// (WEB, MAIL, BACKUP) over SSH, reading its load, memory and disk (the
/// provisioning crate does both).
pub async fn check_all(store: &Store, clock: &dyn Clock) -> Result<usize, ServiceError> {
    let servers: Vec<_> = store
        .list_servers(None)
        .await?
        .into_iter()
        .filter(|s| s.role != ServerRole::Cloud)
        .collect();
    for s in &servers {
        check_tcp(store, clock, s).await?;
    }
    Ok(servers.len())
}

/// Checks that a TCP connection to `s` opens within 5 s, and records it.
pub async fn check_tcp(
    store: &Store,
    clock: &dyn Clock,
    s: &ServerRecord,
) -> Result<(), ServiceError> {
    let started = Instant::now();
    let target = format!("{}:{}", s.address.trim_matches(['[', ']']), s.port);
    let outcome = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect(target.as_str()),
    )
    .await;
    let (latency, error) = match outcome {
        Ok(Ok(_)) => (
            Some(i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX)),
            None,
        ),
        Ok(Err(e)) => (None, Some(format!("cannot connect to {target}: {e}"))),
        Err(_) => (None, Some(format!("no answer from {target} within 5 s"))),
    };
    store
        .record_server_check(s.id, clock.now(), latency, error.as_deref(), None)
        .await?;
    Ok(())
}
