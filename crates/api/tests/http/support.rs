//! A real server per test, with a few routes of the test's own behind the
//! same layers as every API route.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use mpanel_api::{ApiJson, AppState, HttpSettings, MetricsAccess, Problem};
use mpanel_domain::ManualClock;
use mpanel_services::identity::AccessTokens;
use mpanel_services::webhooks::WebhookPolicy;
use mpanel_store::testing::TestDatabase;
use mpanel_store::{PoolSettings, Store};
use serde_json::Value;
use time::macros::datetime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub store: Store,
    /// The server's clock: tests move it instead of sleeping.
    pub clock: Arc<ManualClock>,
    /// The Stripe this server talks to.
    pub stripe: crate::stripe_fake::StripeFake,
    /// Notified each time `/test/hold` starts serving a request.
    pub held: Arc<Notify>,
    shutdown: Option<oneshot::Sender<()>>,
    pub server: JoinHandle<std::io::Result<()>>,
    /// Webhook secrets of the tenants made by `tenant`, by slug.
    secrets: std::sync::Mutex<std::collections::HashMap<String, String>>,
    _db: TestDatabase,
}

/// The `secrets_key` every test server seals with.
pub const TEST_SECRETS_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// The platform's sender in tests.
pub const MAIL_FROM: &str = "mPanel <noreply@mpanel.test>";

/// Settings with the rate limit off, so tests do not trip over it.
pub fn settings() -> HttpSettings {
    HttpSettings {
        rate_limit: None,
        ..HttpSettings::default()
    }
}

impl TestApp {
    pub async fn start() -> Self {
        Self::start_with(settings(), Duration::from_secs(5)).await
    }

    pub async fn start_with(settings: HttpSettings, grace: Duration) -> Self {
        let db = TestDatabase::create().await.unwrap();
        let secrets =
            mpanel_services::secret_box::SecretBox::from_base64(TEST_SECRETS_KEY).unwrap();
        let store = Store::connect(db.url(), &PoolSettings::default())
            .await
            .unwrap()
            .with_secrets(secrets.clone());
        store.migrate().await.unwrap();
        let clock = Arc::new(ManualClock::at(datetime!(2026-11-21 09:00 UTC)));
        let stripe = crate::stripe_fake::start().await;
        let state = AppState {
            stripe: mpanel_services::billing::stripe::StripeClient::new(&stripe.base_url())
                .unwrap(),
            secrets: Some(secrets),
            mail: mpanel_services::notify::MailSettings::new(None, MAIL_FROM).unwrap(),
            store: store.clone(),
            clock: clock.clone(),
            tokens: AccessTokens::new(&[42u8; 32]).unwrap(),
            passkeys: mpanel_services::security::webauthn::Passkeys::new("localhost", ORIGIN)
                .unwrap(),
            metrics: MetricsAccess {
                handle: mpanel_api::telemetry::metrics_handle().unwrap(),
                token: settings.metrics_token.as_deref().map(Arc::from),
                figures: Default::default(),
            },
            // The receivers tests start listen on loopback.
            webhooks: WebhookPolicy {
                allowed_networks: vec!["127.0.0.0/8".parse().unwrap()],
            },
            upload_roots: Default::default(),
        };
        let held = Arc::new(Notify::new());
        let app = mpanel_api::app_with(state, &settings, test_routes(held.clone()));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(mpanel_api::serve(
            listener,
            app,
            async move {
                let _ = rx.await;
            },
            grace,
        ));
        Self {
            addr,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            store,
            clock,
            stripe,
            held,
            shutdown: Some(tx),
            server,
            secrets: Default::default(),
            _db: db,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// Asks the server to shut down gracefully.
    pub fn shut_down(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    /// Sends raw bytes on a new connection and returns everything the
    /// server answers until it closes the connection.
    pub async fn raw(&self, request: &[u8]) -> String {
        let mut stream = TcpStream::connect(self.addr).await.unwrap();
        stream.write_all(request).await.unwrap();
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out)).await;
        String::from_utf8_lossy(&out).into_owned()
    }
}

#[derive(Debug, serde::Deserialize, serde::Serialize)]
struct Order {
    quantity: u32,
}

fn test_routes(held: Arc<Notify>) -> Router<AppState> {
    Router::new()
        .route(
            "/test/echo",
            post(|ApiJson(v): ApiJson<Value>| async move { axum::Json(v) }),
        )
        .route(
            "/test/order",
            post(|ApiJson(o): ApiJson<Order>| async move { axum::Json(o) }),
        )
        .route(
            "/test/boom",
            get(|| async {
                Problem::internal(&std::io::Error::other(
                    "connection to db.internal:5432 refused for user billing_admin",
                ))
            }),
        )
        .route(
            "/test/panic",
            get(|| async {
                if std::hint::black_box(true) {
                    panic!("secret panic detail");
                }
                ""
            }),
        )
        .route(
            "/test/sleep",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "late"
            }),
        )
        .route(
            "/test/hold",
            post(move |body: axum::body::Bytes| async move { body }).layer(
                axum::middleware::from_fn(move |req, next: axum::middleware::Next| {
                    let held = held.clone();
                    async move {
                        held.notify_one();
                        next.run(req).await
                    }
                }),
            ),
        )
        .route("/test/metrics-probe", get(|| async { "probe" }))
}

/// The problem+json body of a response, after checking its content type.
pub async fn problem(res: reqwest::Response) -> Value {
    let content_type = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(content_type.as_deref(), Some("application/problem+json"));
    res.json().await.unwrap()
}

/// Splits a raw HTTP response into status line, headers (lowercased) and body.
pub fn parse_raw(raw: &str) -> (u16, String, String) {
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_owned())
}

/// A tenant and a signed-in user of it.
#[derive(Clone)]
pub struct Account {
    pub tenant_id: mpanel_domain::TenantId,
    pub user_id: mpanel_domain::UserId,
    pub access_token: String,
    pub refresh_token: String,
    pub session_id: String,
}

pub const PASSWORD: &str = "correct horse battery staple";

/// The origin the test server's WebAuthn relying party expects.
pub const ORIGIN: &str = "http://localhost:2271";

impl TestApp {
    /// Creates a tenant (once per slug) through the service, as the CLI does.
    pub async fn tenant(&self, slug: &str) -> mpanel_domain::TenantId {
        if let Some(t) = self.store.tenant_by_slug(slug).await.unwrap() {
            return t.id;
        }
        let created = mpanel_services::tenants::create_tenant(
            &self.store,
            self.clock.as_ref(),
            &mpanel_services::Actor::cli("test"),
            &mpanel_services::tenants::CreateTenant {
                slug: slug.into(),
                name: slug.into(),
                timezone: "UTC".into(),
                default_currency: "EUR".into(),
                profile: Default::default(),
            },
        )
        .await
        .unwrap();
        self.secrets
            .lock()
            .unwrap()
            .insert(slug.to_owned(), created.webhook_secret);
        created.tenant.id
    }

    /// The webhook secret `tenant` made for `slug`.
    pub fn webhook_secret(&self, slug: &str) -> String {
        self.secrets.lock().unwrap()[slug].clone()
    }

    /// Posts an order as the marketing site would: signed with `secret` at
    /// the server's clock, with `key` as its Idempotency-Key.
    pub async fn post_order(
        &self,
        slug: &str,
        secret: &str,
        key: &str,
        body: &Value,
    ) -> reqwest::Response {
        let raw = serde_json::to_vec(body).unwrap();
        let signature = mpanel_domain::orders::signature::sign(
            secret,
            self.clock_now().unix_timestamp(),
            &mpanel_domain::orders::signature::order_payload(key, &raw),
        );
        self.client
            .post(self.url("/api/orders"))
            .header("content-type", "application/json")
            .header("x-mpanel-tenant", slug)
            .header("x-mpanel-signature", signature)
            .header("idempotency-key", key)
            .body(raw)
            .send()
            .await
            .unwrap()
    }

    /// Creates a user with `role` in tenant `slug`.
    pub async fn user(
        &self,
        slug: &str,
        email: &str,
        role: mpanel_domain::identity::Role,
    ) -> mpanel_domain::UserId {
        let tenant = self.tenant(slug).await;
        mpanel_services::identity::users::create_in(
            &self.store,
            self.clock.as_ref(),
            &mpanel_services::Actor::cli("test"),
            tenant,
            None,
            &mpanel_services::identity::users::CreateUser {
                email: email.into(),
                display_name: String::new(),
                role,
                password: Some(PASSWORD.into()),
            },
        )
        .await
        .unwrap()
        .id
    }

    /// Logs in over HTTP and returns the raw response.
    pub async fn login_raw(&self, tenant: &str, email: &str, password: &str) -> reqwest::Response {
        self.client
            .post(self.url("/api/auth/login"))
            .json(&serde_json::json!({"tenant": tenant, "email": email, "password": password}))
            .send()
            .await
            .unwrap()
    }

    /// Creates a user with `role` and logs them in.
    pub async fn account(
        &self,
        slug: &str,
        email: &str,
        role: mpanel_domain::identity::Role,
    ) -> Account {
        let user_id = self.user(slug, email, role).await;
        self.sign_in(slug, email, user_id).await
    }

    /// Logs an existing user in again (a second session).
    pub async fn sign_in(
        &self,
        slug: &str,
        email: &str,
        user_id: mpanel_domain::UserId,
    ) -> Account {
        let res = self.login_raw(slug, email, PASSWORD).await;
        assert_eq!(res.status(), 200, "login of {email}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["token_type"], "Bearer");
        Account {
            tenant_id: self.tenant(slug).await,
            user_id,
            access_token: body["access_token"].as_str().unwrap().into(),
            refresh_token: body["refresh_token"].as_str().unwrap().into(),
            session_id: body["session_id"].as_str().unwrap().into(),
        }
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut req = self.client.request(method, self.url(path));
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        req.send().await.unwrap()
    }

    pub async fn get_as(&self, bearer: &str, path: &str) -> reqwest::Response {
        self.call(reqwest::Method::GET, path, Some(bearer), None)
            .await
    }

    pub async fn post_as(&self, bearer: &str, path: &str, body: Value) -> reqwest::Response {
        self.call(reqwest::Method::POST, path, Some(bearer), Some(body))
            .await
    }

    /// Creates an API token for `bearer`'s user and returns `(token, id)`.
    pub async fn api_token(&self, bearer: &str, scopes: &[&str]) -> (String, String) {
        let res = self
            .post_as(
                bearer,
                "/api/security/tokens",
                serde_json::json!({"name": "t", "scopes": scopes}),
            )
            .await;
        assert_eq!(res.status(), 201);
        let body: Value = res.json().await.unwrap();
        (
            body["token"].as_str().unwrap().into(),
            body["id"].as_str().unwrap().into(),
        )
    }

    /// An API token of `account`'s user made now (by the test clock),
    /// written straight to the store: for tests whose clock moves further
    /// than a session or a token lives, which make a fresh one as they go.
    pub async fn fixture_api_token(&self, account: &Account, scopes: &[&str]) -> String {
        use mpanel_domain::identity::api_token::{self, DISPLAY_CHARS, hash_secret};
        let token = api_token::format(&[7u8; 32].map(|b| b ^ rand_byte()));
        let record = mpanel_store::identity::api_tokens::ApiTokenRecord {
            id: mpanel_domain::ApiTokenId::new(),
            tenant_id: account.tenant_id,
            user_id: account.user_id,
            name: "long-lived".into(),
            token_start: token.chars().take(DISPLAY_CHARS).collect(),
            scopes: mpanel_domain::identity::ScopeSet::new(
                scopes.iter().map(|s| s.parse().unwrap()),
            ),
            created_at: self.clock_now(),
            expires_at: None,
            last_used_at: None,
            revoked_at: None,
        };
        let mut tx = self.store.begin().await.unwrap();
        tx.insert_api_token(&record, &hash_secret(&token))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        token
    }

    /// The kinds of the tenant's security events, oldest first.
    pub async fn security_events(&self, tenant: mpanel_domain::TenantId) -> Vec<String> {
        let mut kinds: Vec<String> = self
            .store
            .security_events(tenant, 1000)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        kinds.reverse();
        kinds
    }
}

impl TestApp {
    pub fn clock_now(&self) -> time::OffsetDateTime {
        use mpanel_domain::Clock;
        self.clock.now()
    }

    /// An online web server of the platform's inventory (never reached:
    /// for tests that only need resources to sit on one).
    pub async fn web_server(&self, name: &str) -> mpanel_domain::ServerId {
        let now = self.clock_now();
        let server = mpanel_store::servers::ServerRecord {
            id: mpanel_domain::ServerId::new(),
            name: name.into(),
            role: mpanel_domain::provisioning::ServerRole::Web,
            address: "127.0.0.1".into(),
            port: 22,
            credentials: "v1:sealed".into(),
            settings: serde_json::json!({}),
            capacity: 10,
            status: mpanel_domain::provisioning::ServerStatus::Online,
            last_check_at: None,
            last_latency_ms: None,
            last_error: None,
            health: None,
            created_at: now,
            updated_at: now,
        };
        self.store.insert_server(&server).await.unwrap();
        server.id
    }
}

/// A byte that differs between calls (test tokens only).
fn rand_byte() -> u8 {
    static N: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(1);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    (uuid::Uuid::now_v7().as_bytes()[15]).wrapping_add(n)
}
