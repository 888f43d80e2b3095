//! What the provisioning tests share: the real services `scripts/test.sh`
//! starts (read from its environment), an `mpanel serve` with an operator,
//! a tenant admin, the three servers and a hosting product, and the checks a
//! customer would make (a DNS query, an HTTP request, an IMAP login).

use std::collections::HashMap;
use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::{Value, json};

use crate::support::*;

/// How long provisioning and each check may take.
pub const TIMEOUT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(100);
pub const MAIL_PASSWORD: &str = "correct horse battery";
pub const ADMIN_PASSWORD: &str = "a long bootstrap password";
pub const OPERATOR_PASSWORD: &str = "an operator's long password";

const VARS: &str = "PDNS_API_URL PDNS_API_KEY PDNS_DNS_PORT WEB_SSH_HOST WEB_SSH_PORT \
    WEB_SSH_USER WEB_SSH_KEY WEB_SSH_KNOWN_HOSTS WEB_HTTP_PORT WEB_NGINX_CONF WEB_SITES_DIR \
    WEB_ROOT_DIR WEB_HELPER WEB_PHP_SOCKET_DIR WEB_HTTPS_PORT \
    PEBBLE_DIRECTORY_URL PEBBLE_MANAGEMENT_URL PEBBLE_CA_FILE MAIL_IMAP_PORT MAIL_PASSWD_FILE MAIL_ROOT_DIR MAIL_UID MAIL_GID MAIL_RELOAD_CMD \
    MAIL_SSH_HOST MAIL_SSH_PORT MAIL_SSH_USER MAIL_SSH_KEY MAIL_SSH_KNOWN_HOSTS \
    WORLD_DNS_API_URL WORLD_DNS_API_KEY WORLD_DNS_PORT \
    BACKUP_SSH_HOST BACKUP_SSH_PORT BACKUP_SSH_USER BACKUP_SSH_KEY BACKUP_SSH_KNOWN_HOSTS BACKUP_HELPER BACKUP_REPO_ROOT \
    BACKUP_KEYS_DIR BACKUP_LEGACY_ROOT";
pub const SECRETS_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// The harness's variables; a missing one fails the test with how to run it.
pub struct Services(HashMap<&'static str, String>);

impl Services {
    pub fn from_env() -> Self {
        let found: HashMap<_, _> = VARS
            .split_whitespace()
            .filter_map(|k| std::env::var(k).ok().map(|v| (k, v)))
            .collect();
        let missing: Vec<_> = VARS
            .split_whitespace()
            .filter(|k| !found.contains_key(k))
            .collect();
        assert!(
            missing.is_empty(),
            "the provisioning tests need the real services: run them under \
             `bash scripts/test.sh` (or source the exports `bash scripts/services.sh` \
             prints); missing {missing:?}"
        );
        Self(found)
    }

    pub fn var(&self, key: &str) -> &str {
        &self.0[key]
    }

    pub fn number(&self, key: &str) -> u64 {
        self.var(key).parse().unwrap()
    }

    /// `ssh-ed25519 AAAA…` from a `[host]:port ssh-ed25519 AAAA…` line.
    pub fn host_key(&self, known_hosts_var: &str) -> String {
        let text = std::fs::read_to_string(self.var(known_hosts_var)).unwrap();
        let line = text.lines().find(|l| l.contains("ssh-ed25519")).unwrap();
        line.split_whitespace()
            .skip(1)
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    }

    pub fn ssh_credentials(&self, user_var: &str, key_file: &str) -> Value {
        json!({"type": "SSH", "user": self.var(user_var),
               "private_key": std::fs::read_to_string(key_file).unwrap()})
    }
}

/// A domain no other test (or earlier run on the same harness) uses.
pub fn unique_domain() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let stamp = time::OffsetDateTime::now_utc().unix_timestamp() % 1_000_000;
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!("example-{}-{n}-{stamp}.test", std::process::id())
}

/// Polls `check` every 100 ms until it gives `Ok`, for at most [`TIMEOUT`];
/// panics with `what` and the last `Err`.
pub fn eventually<T>(what: &str, mut check: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        match check() {
            Ok(v) => return v,
            Err(last) if Instant::now() >= deadline => panic!("{what}: timed out; last: {last}"),
            Err(_) => std::thread::sleep(POLL),
        }
    }
}

/// `mpanel serve` on a fresh database with everything an order needs.
pub struct Panel {
    pub svc: Services,
    pub addr: String,
    pub admin: String,
    pub operator: String,
    pub web_server_id: String,
    pub product_id: String,
    pub dir: tempfile::TempDir,
    webhook_secret: String,
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
    server: Running,
    db: TestDatabase,
}

impl Panel {
    /// A panel whose tenant provisions names at once (`domain_control:
    /// NONE`): the tests' made-up `*.test` names cannot be proven in the
    /// world's DNS, and what these tests check is what comes after.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// [`Panel::start`] with more settings (`MPANEL_…` variables).
    pub fn start_with(env: &[(&str, &str)]) -> Self {
        let panel = Self::booted_with_servers(env);
        panel.set_domain_control("NONE");
        panel
    }

    /// A panel with the default policy: a domain goes live only once its
    /// control is proven in the world's DNS (the harness's second PowerDNS,
    /// looked at every second).
    pub fn start_requiring_domain_control() -> Self {
        Self::booted_with_servers(&[])
    }

    fn booted_with_servers(env: &[(&str, &str)]) -> Self {
        let svc = Services::from_env();
        let world = format!("127.0.0.1:{}", svc.var("WORLD_DNS_PORT"));
        let port = svc.var("WORLD_DNS_PORT").to_owned();
        let mut vars = vec![
            ("MPANEL_DNS_VERIFICATION_RESOLVER", world.as_str()),
            ("MPANEL_DNS_VERIFICATION_INTERVAL_SECS", "1"),
            ("MPANEL_DNS_VERIFICATION_AUTHORITY_PORT", port.as_str()),
        ];
        vars.extend_from_slice(env);
        let mut panel = Self::boot(svc, &vars);
        panel.add_servers();
        panel.add_product();
        panel
    }

    /// A panel with no servers nor products, needing none of the
    /// harness's services (the CloudPods tests bring their own Proxmox).
    pub fn start_bare() -> Self {
        Self::start_bare_with(&[])
    }

    /// A bare panel with more settings (`MPANEL_…` variables).
    pub fn start_bare_with(env: &[(&str, &str)]) -> Self {
        let mut panel = Self::boot(Services(HashMap::new()), env);
        panel.set_domain_control("NONE");
        panel.rotate_webhook_secret();
        panel
    }

    fn boot(svc: Services, env: &[(&str, &str)]) -> Self {
        let db = test_database();
        let dir = tempfile::tempdir().unwrap();
        let mut vars = vec![
            ("MPANEL_DATABASE_URL", db.url()),
            ("MPANEL_LISTEN", "127.0.0.1:0"),
            ("MPANEL_SECRETS_KEY", SECRETS_KEY),
            ("MPANEL_BOOTSTRAP_TENANT", "acme"),
            ("MPANEL_BOOTSTRAP_ADMIN_EMAIL", "admin@acme.test"),
            ("MPANEL_BOOTSTRAP_ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("MPANEL_RATE_LIMIT_PER_MINUTE", "0"),
            // Sites get certificates only in the tests that start Pebble's.
            ("MPANEL_ACME_DIRECTORY_URL", "none"),
        ];
        vars.extend_from_slice(env);
        let server = Running::start(mpanel(dir.path(), &["serve"], &vars));
        let addr = server.address();
        // The platform operator, in the tenant serve bootstrapped.
        let mut args: Vec<_> = "admin create-user --tenant acme --email ops@acme.test \
            --role SUPER_ADMIN --password"
            .split_whitespace()
            .collect();
        args.push(OPERATOR_PASSWORD);
        let out = run(dir.path(), &args, &[("MPANEL_DATABASE_URL", db.url())]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let mut panel = Self {
            svc,
            addr,
            admin: String::new(),
            operator: String::new(),
            web_server_id: String::new(),
            product_id: String::new(),
            dir,
            webhook_secret: String::new(),
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            client: http_client(),
            server,
            db,
        };
        panel.admin = panel.login("admin@acme.test", ADMIN_PASSWORD);
        panel.operator = panel.login("ops@acme.test", OPERATOR_PASSWORD);
        panel
    }

    /// Sets the tenant's `domain_control` policy (the admin has just
    /// signed in, so the step-up the change needs is fresh).
    pub fn set_domain_control(&self, value: &str) {
        let mut policy = self.expect(200, &self.admin, "GET /api/security/policy", None);
        policy["domain_control"] = json!(value);
        let v = self.expect(200, &self.admin, "PUT /api/security/policy", Some(policy));
        assert_eq!(v["domain_control"], value, "{v}");
    }

    /// The secret signed orders are signed with.
    pub fn webhook_secret(&self) -> &str {
        &self.webhook_secret
    }

    /// The database serve uses.
    pub fn database_url(&self) -> &str {
        self.db.url()
    }

    /// Runs `f` on this panel's runtime.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    fn login(&self, email: &str, password: &str) -> String {
        let body = json!({"email": email, "password": password, "tenant": "acme"});
        let v = self.expect(200, "", "POST /api/auth/login", Some(body));
        v["access_token"].as_str().unwrap().to_owned()
    }

    fn add_servers(&mut self) {
        let s = &self.svc;
        let pdns_port: u16 = s
            .var("PDNS_API_URL")
            .rsplit(':')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let dns = json!({"name": "dns-1", "role": "DNS", "address": "127.0.0.1", "port": pdns_port,
            "credentials": {"type": "API", "url": s.var("PDNS_API_URL"), "key": s.var("PDNS_API_KEY")},
            "settings": {"server_id": "localhost", "nameservers": ["ns1.example.net."]},
            "capacity": 10000});
        let web = json!({"name": "web-1", "role": "WEB", "address": s.var("WEB_SSH_HOST"),
            "port": s.number("WEB_SSH_PORT"),
            "credentials": s.ssh_credentials("WEB_SSH_USER", s.var("WEB_SSH_KEY")),
            "settings": {"host_key": s.host_key("WEB_SSH_KNOWN_HOSTS"), "public_ipv4": "127.0.0.1",
                "nginx_conf": s.var("WEB_NGINX_CONF"), "sites_dir": s.var("WEB_SITES_DIR"),
                "root_dir": s.var("WEB_ROOT_DIR"), "helper": s.var("WEB_HELPER"),
                "php_socket_dir": s.var("WEB_PHP_SOCKET_DIR"),
                "tls_listen": format!("127.0.0.1:{}", s.var("WEB_HTTPS_PORT")),
                "listen": format!("127.0.0.1:{}", s.var("WEB_HTTP_PORT"))},
            "capacity": 1000});
        let mail = json!({"name": "mail-1", "role": "MAIL", "address": s.var("MAIL_SSH_HOST"),
            "port": s.number("MAIL_SSH_PORT"),
            "credentials": s.ssh_credentials("MAIL_SSH_USER", s.var("MAIL_SSH_KEY")),
            "settings": {"host_key": s.host_key("MAIL_SSH_KNOWN_HOSTS"),
                "passwd_file": s.var("MAIL_PASSWD_FILE"), "root_dir": s.var("MAIL_ROOT_DIR"),
                "uid": s.number("MAIL_UID"), "gid": s.number("MAIL_GID"),
                "reload_cmd": s.var("MAIL_RELOAD_CMD"), "mail_host": "mail.example.net"},
            "capacity": 1000});
        let mut ids = Vec::new();
        for server in [dns, web, mail] {
            let v = self.expect(201, &self.operator, "POST /api/servers", Some(server));
            ids.push(v["id"].as_str().unwrap().to_owned());
        }
        self.web_server_id = ids.swap_remove(1);
    }

    fn add_product(&mut self) {
        let product = json!({"name": "Web Pro", "slug": "web-pro", "category": "HOSTING",
            "billing_model": "RECURRING", "status": "ACTIVE", "visibility": "PUBLIC",
            "base_currency": "EUR",
            "provisioning_template": {"type": "HOSTING", "dns_zone": true, "mailboxes": 1}});
        let v = self.expect(
            201,
            &self.admin,
            "POST /api/billing/products",
            Some(product),
        );
        self.product_id = v["id"].as_str().unwrap().to_owned();
        let price = json!({"period": "MONTHLY", "currency": "EUR", "amount_minor": 1500});
        let route = format!("POST /api/billing/products/{}/prices", self.product_id);
        self.expect(201, &self.admin, &route, Some(price));
        self.rotate_webhook_secret();
    }

    /// A new webhook secret, which signed orders are signed with.
    fn rotate_webhook_secret(&mut self) {
        let rotate = "POST /api/settings/webhook-secret/rotate";
        let v = self.expect(200, &self.admin, rotate, None);
        self.webhook_secret = v["webhook_secret"].as_str().unwrap().to_owned();
    }

    /// `mpanel billing run --as-of AT` against this panel's database: the
    /// JSON report.
    pub fn billing_run(&self, at: time::OffsetDateTime) -> Value {
        self.billing_run_with(at, &[])
    }

    /// The same with more arguments (`--dry-run`).
    pub fn billing_run_with(&self, at: time::OffsetDateTime, more: &[&str]) -> Value {
        let at = at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        let mut args = vec!["billing", "run", "--as-of", &at];
        args.extend_from_slice(more);
        let out = run(
            self.dir.path(),
            &args,
            &[("MPANEL_DATABASE_URL", self.db.url())],
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// `mpanel hosting disk-usage --as-of AT` against this panel's
    /// database and nodes: the JSON report.
    pub fn disk_usage_run(&self, at: time::OffsetDateTime) -> Value {
        self.report_as_of(&["hosting", "disk-usage"], at)
    }

    /// `mpanel backups run --as-of AT` against this panel's database: the
    /// JSON report.
    pub fn backups_run(&self, at: time::OffsetDateTime) -> Value {
        self.report_as_of(&["backups", "run"], at)
    }

    /// `mpanel <command> --as-of AT` against this panel's database: the
    /// JSON report it prints.
    fn report_as_of(&self, command: &[&str], at: time::OffsetDateTime) -> Value {
        let at = at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        let mut args = command.to_vec();
        args.extend(["--as-of", &at]);
        let out = run(
            self.dir.path(),
            &args,
            &[
                ("MPANEL_DATABASE_URL", self.db.url()),
                ("MPANEL_SECRETS_KEY", SECRETS_KEY),
            ],
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// `mpanel cloudpods <what>` against this panel's database: the report.
    pub fn cloudpods_run(&self, what: &str) -> Value {
        let out = run(
            self.dir.path(),
            &["cloudpods", what],
            &[
                ("MPANEL_DATABASE_URL", self.db.url()),
                ("MPANEL_SECRETS_KEY", SECRETS_KEY),
            ],
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// `mpanel servers check` against this panel's database: the report.
    pub fn servers_check(&self) -> Value {
        let out = run(
            self.dir.path(),
            &["servers", "check"],
            &[
                ("MPANEL_DATABASE_URL", self.db.url()),
                ("MPANEL_SECRETS_KEY", SECRETS_KEY),
            ],
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// A further hosting product with `template`, priced as the first; its id.
    pub fn add_hosting_product(&self, slug: &str, template: Value) -> String {
        let product = json!({"name": slug, "slug": slug, "category": "HOSTING",
            "billing_model": "RECURRING", "status": "ACTIVE", "visibility": "PUBLIC",
            "base_currency": "EUR", "provisioning_template": template});
        let v = self.expect(
            201,
            &self.admin,
            "POST /api/billing/products",
            Some(product),
        );
        let id = v["id"].as_str().unwrap().to_owned();
        let price = json!({"period": "MONTHLY", "currency": "EUR", "amount_minor": 1500});
        let route = format!("POST /api/billing/products/{id}/prices");
        self.expect(201, &self.admin, &route, Some(price));
        id
    }

    /// `route` ("METHOD /path") with a bearer token (none when empty):
    /// status and JSON body (a string when the body is not JSON).
    pub fn call(&self, token: &str, route: &str, body: Option<Value>) -> (u16, Value) {
        let (method, path) = route.split_once(' ').unwrap();
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let url = format!("http://{}{path}", self.addr);
        let mut req = self.client.request(method, url);
        if !token.is_empty() {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        self.send(req)
    }

    /// [`Panel::call`] that must answer `status`.
    pub fn expect(&self, status: u16, token: &str, route: &str, body: Option<Value>) -> Value {
        let (got, v) = self.call(token, route, body);
        let log = self.log_tail();
        assert_eq!(got, status, "{route}: {v}\nserve's log:\n{log}");
        v
    }

    fn send(&self, req: reqwest::RequestBuilder) -> (u16, Value) {
        self.try_send(req).unwrap()
    }

    fn try_send(&self, req: reqwest::RequestBuilder) -> Result<(u16, Value), reqwest::Error> {
        self.rt.block_on(async {
            let res = req.send().await?;
            let status = res.status().as_u16();
            let raw = res.text().await?;
            let body = serde_json::from_str(&raw).unwrap_or(Value::String(raw));
            Ok((status, body))
        })
    }

    fn log_tail(&self) -> String {
        let log = self.server.log();
        let lines: Vec<_> = log.lines().rev().take(40).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    pub fn order_body(&self, domain: &str, reference: &str) -> Value {
        json!({"customer": {"email": "jane@example.org", "name": "Jane", "country": "DE"},
            "items": [{"product_id": self.product_id, "period": "MONTHLY", "domain": domain}],
            "currency": "EUR",
            "payment": {"status": "PAID", "provider": "BANK_TRANSFER", "reference": reference,
                "amount_minor": 1500}})
    }

    /// Posts `body` as the marketing site does: signed, with `key`.
    pub fn post_order(&self, body: &Value, key: &str) -> (u16, Value) {
        let raw = serde_json::to_vec(body).unwrap();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let signature = mpanel_domain::orders::signature::sign(
            &self.webhook_secret,
            now,
            &mpanel_domain::orders::signature::order_payload(key, &raw),
        );
        let req = self
            .client
            .post(format!("http://{}/api/orders", self.addr))
            .header("content-type", "application/json")
            .header("x-mpanel-tenant", "acme")
            .header("x-mpanel-signature", signature)
            .header("idempotency-key", key)
            .body(raw);
        self.send(req)
    }

    /// A paid order for `domain`; its id.
    pub fn paid_order(&self, domain: &str) -> String {
        self.paid_order_of(&self.product_id, domain)
    }

    /// A paid order of `product` for `domain`; its id.
    pub fn paid_order_of(&self, product: &str, domain: &str) -> String {
        let reference = format!("pi_{}", domain.replace(['.', '-'], "_"));
        let mut body = self.order_body(domain, &reference);
        body["items"][0]["product_id"] = json!(product);
        let (status, v) = self.post_order(&body, &reference);
        assert_eq!(status, 201, "{v}");
        v["order_id"].as_str().unwrap().to_owned()
    }

    /// Waits until every step of the order's first item is `state`
    /// (COMPLETED), or any is (DEAD); fails on a DEAD step otherwise.
    pub fn wait_steps(&self, order_id: &str, state: &str) -> Value {
        let route = format!("GET /api/orders/{order_id}");
        eventually(&format!("order steps {state}"), || {
            let order = self.expect(200, &self.admin, &route, None);
            let steps = order["items"][0]["steps"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let is = |s: &Value, st: &str| s["state"] == st;
            if state != "DEAD" && steps.iter().any(|s| is(s, "DEAD")) {
                panic!("a step is DEAD: {order:#}");
            }
            let done = if state == "DEAD" {
                steps.iter().any(|s| is(s, state))
            } else {
                !steps.is_empty() && steps.iter().all(|s| is(s, state))
            };
            if done {
                Ok(order)
            } else {
                Err(format!("{order:#}"))
            }
        })
    }

    /// Waits until job `id` is COMPLETED; fails on DEAD.
    pub fn wait_job(&self, id: &str) -> Value {
        let route = format!("GET /api/ops/jobs/{id}");
        eventually(&format!("job {id} COMPLETED"), || {
            let job = self.expect(200, &self.operator, &route, None);
            assert_ne!(job["state"], "DEAD", "{job:#}");
            if job["state"] == "COMPLETED" {
                Ok(job)
            } else {
                Err(format!("{job:#}"))
            }
        })
    }

    /// The one item of `GET path` whose `field` is `value`.
    pub fn find(&self, path: &str, field: &str, value: &str) -> Value {
        let list = self.expect(200, &self.admin, &format!("GET {path}"), None);
        let items = list["items"].as_array().unwrap_or_else(|| panic!("{list}"));
        let found: Vec<_> = items.iter().filter(|i| i[field] == value).collect();
        assert_eq!(found.len(), 1, "one {field} {value} in {list:#}");
        found[0].clone()
    }

    /// Enqueues a copy of job `id` (same kind, queue and payload) straight
    /// into the database, as a duplicate delivery would; the copy's id.
    pub fn enqueue_copy(&self, id: &str) -> String {
        let route = format!("GET /api/ops/jobs/{id}");
        let job = self.expect(200, &self.operator, &route, None);
        self.rt.block_on(async {
            let settings = mpanel_store::PoolSettings::default();
            let store = mpanel_store::Store::connect(self.db.url(), &settings)
                .await
                .unwrap();
            let now = time::OffsetDateTime::now_utc();
            let copy = mpanel_store::jobs::NewJob {
                queue: job["queue"].as_str().unwrap().into(),
                kind: job["kind"].as_str().unwrap().into(),
                payload: job["payload"].clone(),
                priority: 0,
                run_at: now,
                max_attempts: 3,
                unique_key: None,
            };
            store.enqueue(&copy, now).await.unwrap().0.to_string()
        })
    }

    /// `dig +short A domain` against the harness's PowerDNS.
    pub fn dig(&self, domain: &str) -> String {
        let port = self.svc.var("PDNS_DNS_PORT");
        let mut dig = Command::new("dig");
        dig.args(["@127.0.0.1", "-p", port, "+short", "+time=2", "+tries=1"]);
        let out = dig.args(["A", domain]).output().unwrap();
        text(&out.stdout).trim().to_owned()
    }

    /// The zone as PowerDNS's API shows it: status and body.
    pub fn pdns_zone(&self, domain: &str) -> (u16, Value) {
        let api = self.svc.var("PDNS_API_URL");
        let url = format!("{api}/api/v1/servers/localhost/zones/{domain}.");
        let key = self.svc.var("PDNS_API_KEY");
        self.send(self.client.get(url).header("x-api-key", key))
    }

    /// `GET /` on the web node with `Host: domain`, on a new connection
    /// (a reload retires the old workers): status and body.
    pub fn http(&self, domain: &str) -> Result<(u16, String), String> {
        self.http_at(domain, "/")
    }

    /// `GET path` on the web node for `domain`: status and body.
    pub fn http_at(&self, domain: &str, path: &str) -> Result<(u16, String), String> {
        let url = format!("http://127.0.0.1:{}{path}", self.svc.var("WEB_HTTP_PORT"));
        let req = self.client.get(url).header("host", domain);
        match self.try_send(req.header("connection", "close")) {
            Ok((status, Value::String(body))) => Ok((status, body)),
            Ok((status, json)) => Ok((status, json.to_string())),
            Err(e) => Err(format!("{e:?}")),
        }
    }

    /// `GET /` on the web node's plain HTTP for `domain`, redirects not
    /// followed: the status and the `Location`.
    pub fn http_redirect(&self, domain: &str) -> (u16, String) {
        let url = format!("http://127.0.0.1:{}/", self.svc.var("WEB_HTTP_PORT"));
        let out = Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-m",
                "5",
                "-w",
                "%{http_code} %{redirect_url}",
            ])
            .args(["-H", &format!("Host: {domain}"), &url])
            .output()
            .unwrap();
        let out = text(&out.stdout);
        let (status, location) = out.split_once(' ').unwrap_or((out.as_str(), ""));
        (status.parse().unwrap_or(0), location.to_owned())
    }

    /// Changes the public IPv4 the web server's sites' zones point at.
    pub fn set_web_public_ipv4(&self, ip: &str) {
        let route = format!("GET /api/servers/{}", self.web_server_id);
        let server = self.expect(200, &self.operator, &route, None);
        let mut settings = server["settings"].clone();
        settings["public_ipv4"] = json!(ip);
        let route = format!("PATCH /api/servers/{}", self.web_server_id);
        let body = json!({"settings": settings});
        self.expect(200, &self.operator, &route, Some(body));
    }

    /// Waits until `GET /` for `domain` answers as `ok` says.
    pub fn wait_http(&self, what: &str, domain: &str, ok: impl Fn(u16, &str) -> bool) {
        eventually(what, || match self.http(domain)? {
            (status, body) if ok(status, &body) => Ok(()),
            (status, body) => Err(format!("{status}: {body}")),
        });
    }

    /// Waits until an SFTP login of the hosting account `id` with
    /// `password` succeeds (`accepted`) or is refused.
    pub fn wait_sftp(&self, id: &str, password: &str, accepted: bool) {
        let user = mpanel_provision::web::account_user(id.parse().unwrap());
        eventually(
            &format!("SFTP login of {user}: {accepted}"),
            || match self.sftp(id, password, "ls /web\n")? {
                (ok, _) if ok == accepted => Ok(()),
                (_, text) => Err(text),
            },
        );
    }

    /// Runs the batch `commands` in an SFTP session of the hosting account
    /// `id` logged in with `password`: whether it succeeded, and its output.
    pub fn sftp(&self, id: &str, password: &str, commands: &str) -> Result<(bool, String), String> {
        let user = mpanel_provision::web::account_user(id.parse().unwrap());
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("password");
        std::fs::write(&secret, format!("{password}\n")).unwrap();
        let askpass = dir.path().join("askpass.sh");
        std::fs::write(&askpass, format!("#!/bin/sh\ncat '{}'\n", secret.display())).unwrap();
        std::fs::set_permissions(
            &askpass,
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        let mut child = std::process::Command::new("sftp")
            .args(["-P", self.svc.var("WEB_SSH_PORT")])
            .arg("-o")
            .arg(format!(
                "UserKnownHostsFile={}",
                self.svc.var("WEB_SSH_KNOWN_HOSTS")
            ))
            .args([
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "PubkeyAuthentication=no",
            ])
            .args([
                "-o",
                "PreferredAuthentications=password",
                "-o",
                "NumberOfPasswordPrompts=1",
            ])
            .arg(format!("{user}@{}", self.svc.var("WEB_SSH_HOST")))
            .env("SSH_ASKPASS", &askpass)
            .env("SSH_ASKPASS_REQUIRE", "force")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(commands.as_bytes())
            .map_err(|e| e.to_string())?;
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok((out.status.success(), text))
    }

    /// Waits until an IMAP LOGIN answers `a1 OK` (`accepted`) or `a1 NO`.
    pub fn wait_imap(&self, user: &str, accepted: bool) {
        let want = if accepted { "a1 OK" } else { "a1 NO" };
        let port = self.svc.var("MAIL_IMAP_PORT");
        eventually(&format!("IMAP login of {user}: {want}"), || {
            let answer = imap_login(port, user, MAIL_PASSWORD).map_err(|e| e.to_string())?;
            if answer.starts_with(want) {
                Ok(())
            } else {
                Err(answer)
            }
        });
    }
}

/// Greeting, `a1 LOGIN`, and the tagged answer (or the greeting if it is
/// not `* OK`).
fn imap_login(port: &str, user: &str, password: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(format!("127.0.0.1:{port}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    if !line.starts_with("* OK") {
        return Ok(line);
    }
    write!(stream, "a1 LOGIN \"{user}\" \"{password}\"\r\n")?;
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok("connection closed".into());
        }
        if line.starts_with("a1 ") {
            let _ = write!(stream, "a2 LOGOUT\r\n");
            return Ok(line.trim_end().to_owned());
        }
    }
}
