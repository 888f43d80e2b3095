//! `mpanel backup` and `mpanel restore` on the engine of the run: a backup
//! taken while 20 clients place orders is a point in time that a second
//! mPanel serves after a restore into a new database; a restore refuses a
//! database that is not empty (unless `--force`), a schema newer than the
//! binary and a backup of the other engine; the scheduled backup writes
//! into `backup_dir` and keeps `backup_keep`.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use serde_json::{Value, json};

use crate::provisioning_support::{ADMIN_PASSWORD, Panel, SECRETS_KEY};
use crate::support::*;

const CLIENTS: usize = 20;

/// One order a client saw committed: when it was sent and when it was
/// answered 201.
struct Placed {
    order_id: String,
    invoice_id: String,
    sent: Instant,
    at: Instant,
}

/// `mpanel ARGS` against `url` in `dir`: exit code, stdout, stderr.
fn mpanel_on(dir: &Path, url: &str, args: &[&str]) -> (i32, String, String) {
    let out = run(dir, args, &[("MPANEL_DATABASE_URL", url)]);
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    )
}

fn backup_to(dir: &Path, url: &str, file: &Path) -> Value {
    let (code, out, err) = mpanel_on(dir, url, &["backup", "--to", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap()
}

fn restore_from(dir: &Path, url: &str, file: &Path, force: bool) -> (i32, String, String) {
    let mut args = vec!["restore", "--from", file.to_str().unwrap()];
    if force {
        args.push("--force");
    }
    mpanel_on(dir, url, &args)
}

/// A client of one mPanel: a runtime and a bearer token.
struct Api {
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
    addr: String,
    token: String,
}

impl Api {
    fn login(addr: &str) -> Self {
        let mut api = Self {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            client: http_client(),
            addr: addr.to_owned(),
            token: String::new(),
        };
        let body =
            json!({"tenant": "acme", "email": "admin@acme.test", "password": ADMIN_PASSWORD});
        let (status, v) = api.call(reqwest::Method::POST, "/api/auth/login", Some(body));
        assert_eq!(status, 200, "{v}");
        api.token = v["access_token"].as_str().unwrap().to_owned();
        api
    }

    fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.rt.block_on(async {
            let mut req = self
                .client
                .request(method, format!("http://{}{path}", self.addr));
            if !self.token.is_empty() {
                req = req.bearer_auth(&self.token);
            }
            if let Some(body) = body {
                req = req.json(&body);
            }
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            let raw = res.text().await.unwrap();
            (
                status,
                serde_json::from_str(&raw).unwrap_or(Value::String(raw)),
            )
        })
    }

    /// Every item of a paginated list.
    fn all(&self, path: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = match &cursor {
                Some(c) => format!("{path}?limit=200&cursor={c}"),
                None => format!("{path}?limit=200"),
            };
            let (status, v) = self.call(reqwest::Method::GET, &page, None);
            assert_eq!(status, 200, "{page}: {v}");
            items.extend(v["items"].as_array().unwrap().iter().cloned());
            match v["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return items,
            }
        }
    }
}

/// A product orders can be placed for without any server; its id.
fn add_product(panel: &Panel) -> String {
    let product = json!({"name": "Widget", "slug": "widget", "category": "OTHER",
        "billing_model": "RECURRING", "status": "ACTIVE", "visibility": "PUBLIC",
        "base_currency": "EUR"});
    let v = panel.expect(
        201,
        &panel.admin,
        "POST /api/billing/products",
        Some(product),
    );
    let id = v["id"].as_str().unwrap().to_owned();
    let price = json!({"period": "MONTHLY", "currency": "EUR", "amount_minor": 700});
    let route = format!("POST /api/billing/products/{id}/prices");
    panel.expect(201, &panel.admin, &route, Some(price));
    id
}

/// Client `n` places signed orders until `stop`, recording each that
/// committed.
fn client(
    n: usize,
    addr: String,
    secret: String,
    product: String,
    stop: Arc<AtomicBool>,
    count: Arc<AtomicUsize>,
) -> Vec<Placed> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let http = http_client();
    let mut placed = Vec::new();
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let key = format!("client-{n}-order-{i}");
        let body = json!({
            "customer": {"email": format!("client{n}@example.org"), "name": format!("Client {n}"),
                "country": "DE"},
            "items": [{"product_id": product, "period": "MONTHLY"}],
            "currency": "EUR"});
        let raw = serde_json::to_vec(&body).unwrap();
        let signature = mpanel_domain::orders::signature::sign(
            &secret,
            time::OffsetDateTime::now_utc().unix_timestamp(),
            &mpanel_domain::orders::signature::order_payload(&key, &raw),
        );
        let sent = Instant::now();
        let (status, v) = rt.block_on(async {
            let res = http
                .post(format!("http://{addr}/api/orders"))
                .header("content-type", "application/json")
                .header("x-mpanel-tenant", "acme")
                .header("x-mpanel-signature", signature)
                .header("idempotency-key", &key)
                .body(raw)
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            (status, res.json::<Value>().await.unwrap())
        });
        assert_eq!(status, 201, "client {n}, order {i}: {v}");
        placed.push(Placed {
            order_id: v["order_id"].as_str().unwrap().to_owned(),
            invoice_id: v["invoice_id"].as_str().unwrap().to_owned(),
            sent,
            at: Instant::now(),
        });
        count.fetch_add(1, Ordering::Relaxed);
    }
    placed
}

fn wait_until(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_backup_taken_while_20_clients_order_restores_into_a_new_database_that_serves_them() {
    let panel = Panel::start_bare();
    let product = add_product(&panel);
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|n| {
            let (addr, secret, product) = (
                panel.addr.clone(),
                panel.webhook_secret().to_owned(),
                product.clone(),
            );
            let (stop, count) = (stop.clone(), count.clone());
            std::thread::spawn(move || client(n, addr, secret, product, stop, count))
        })
        .collect();
    wait_until("the clients' first orders", || {
        count.load(Ordering::Relaxed) >= 2 * CLIENTS
    });

    let file = panel.dir.path().join("mpanel.backup");
    let backup_started = Instant::now();
    let report = backup_to(panel.dir.path(), panel.database_url(), &file);
    let backup_finished = Instant::now();
    // The clients go on after the backup, as a serving mPanel's would:
    // each has at most one order in flight, so at least CLIENTS of these
    // were sent after the backup finished.
    let at_finish = count.load(Ordering::Relaxed);
    wait_until("orders after the backup", || {
        count.load(Ordering::Relaxed) >= at_finish + 2 * CLIENTS
    });
    stop.store(true, Ordering::Relaxed);
    let placed: Vec<Placed> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();

    let engine = TestDatabase::selected_engine().unwrap();
    assert_eq!(report["engine"], engine.as_str(), "{report}");
    assert_eq!(
        report["schema_version"],
        mpanel_store::latest_schema_version()
    );
    assert!(report["bytes"].as_u64().unwrap() > 0, "{report}");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the backup is the owner's only");
    // Orders were being written while the backup ran: each client always
    // has one in flight (how many also committed within the window is
    // printed; a fast SQLite copy leaves room for a few).
    let in_flight = placed
        .iter()
        .filter(|p| p.sent < backup_finished && p.at > backup_started)
        .count();
    assert!(
        in_flight >= CLIENTS / 2,
        "{in_flight} orders overlapped the backup"
    );
    let during = placed
        .iter()
        .filter(|p| p.at > backup_started && p.at < backup_finished)
        .count();
    let before: Vec<&Placed> = placed.iter().filter(|p| p.at < backup_started).collect();

    // Restored into a new, empty database, served by a second mPanel
    // with the same secrets_key.
    let restored_db = test_database();
    let (code, out, err) = restore_from(panel.dir.path(), restored_db.url(), &file, false);
    assert_eq!(code, 0, "{err}");
    let restored: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(restored["replaced"], false, "{restored}");
    assert_eq!(restored["schema_version"], report["schema_version"]);
    let second = Running::start(mpanel(
        panel.dir.path(),
        &["serve"],
        &[
            ("MPANEL_DATABASE_URL", restored_db.url()),
            ("MPANEL_LISTEN", "127.0.0.1:0"),
            ("MPANEL_SECRETS_KEY", SECRETS_KEY),
            ("MPANEL_RATE_LIMIT_PER_MINUTE", "0"),
        ],
    ));
    let addr = second.address();
    let (status, ready) = get(&addr, "/api/ready", None);
    assert_eq!(status, 200, "{ready}\n{}", second.log());
    let api = Api::login(&addr);
    let orders = api.all("/api/orders");
    let invoices = api.all("/api/billing/invoices");

    let placed_ids: HashMap<&str, &Placed> =
        placed.iter().map(|p| (p.order_id.as_str(), p)).collect();
    let restored_orders: HashSet<&str> = orders.iter().map(|o| o["id"].as_str().unwrap()).collect();
    let mut invoice_of: HashMap<&str, Vec<&str>> = HashMap::new();
    for invoice in &invoices {
        if let Some(order) = invoice["order_id"].as_str() {
            invoice_of
                .entry(order)
                .or_default()
                .push(invoice["id"].as_str().unwrap());
        }
    }
    for p in &before {
        assert!(
            restored_orders.contains(p.order_id.as_str()),
            "order {} committed before the backup started is missing",
            p.order_id
        );
    }
    for id in &restored_orders {
        let p = placed_ids
            .get(id)
            .unwrap_or_else(|| panic!("order {id} in the restore was never answered 201"));
        assert_eq!(
            invoice_of.get(id).map(Vec::as_slice),
            Some(&[p.invoice_id.as_str()][..]),
            "order {id} is restored with exactly its invoice"
        );
    }
    for order in invoice_of.keys() {
        assert!(
            restored_orders.contains(order),
            "an invoice without its order {order}"
        );
    }
    let after: Vec<&Placed> = placed.iter().filter(|p| p.sent > backup_finished).collect();
    assert!(
        after.len() >= CLIENTS,
        "{} orders sent after the backup",
        after.len()
    );
    for p in &after {
        assert!(
            !restored_orders.contains(p.order_id.as_str()),
            "order {} sent after the backup finished is in it",
            p.order_id
        );
    }
    // One of them, read on its own, and its invoice.
    let one = before[0];
    let (status, v) = api.call(
        reqwest::Method::GET,
        &format!("/api/orders/{}", one.order_id),
        None,
    );
    assert_eq!((status, v["total_minor"].as_i64()), (200, Some(700)), "{v}");
    let (status, v) = api.call(
        reqwest::Method::GET,
        &format!("/api/billing/invoices/{}", one.invoice_id),
        None,
    );
    assert_eq!((status, v["total_minor"].as_i64()), (200, Some(700)), "{v}");
    eprintln!(
        "{} orders placed by {CLIENTS} clients, {} before the backup, {in_flight} in flight \
         and {during} committed while it ran ({} ms), {} in the restore",
        placed.len(),
        before.len(),
        (backup_finished - backup_started).as_millis(),
        restored_orders.len()
    );
}

/// Adds a migration row from a release newer than this binary.
fn add_future_migration(url: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = mpanel_store::Store::connect(url, &mpanel_store::PoolSettings::default())
            .await
            .unwrap();
        let checksum = match store.engine() {
            Engine::Sqlite => "X'00'",
            Engine::Postgres => "'\\x00'::bytea",
        };
        store
            .execute_raw_for_tests(&format!(
                "INSERT INTO _sqlx_migrations (version, description, success, checksum, \
                 execution_time) VALUES (9999, 'from the future', TRUE, {checksum}, 0)"
            ))
            .await
            .unwrap();
        store.close().await;
    });
}

fn table_count(url: &str) -> i64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = mpanel_store::Store::connect(url, &mpanel_store::PoolSettings::default())
            .await
            .unwrap();
        let n = store.table_count().await.unwrap();
        store.close().await;
        n
    })
}

#[test]
fn a_restore_refuses_a_full_database_unless_forced_a_newer_schema_and_the_other_engine() {
    let db = test_database();
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = mpanel_on(dir.path(), db.url(), &["migrate"]);
    assert_eq!(code, 0, "{err}");
    let file = dir.path().join("one.backup");
    backup_to(dir.path(), db.url(), &file);

    // A second backup never overwrites the first.
    let (code, _, err) = mpanel_on(
        dir.path(),
        db.url(),
        &["backup", "--to", file.to_str().unwrap()],
    );
    assert_eq!(code, 1);
    assert!(err.contains("already exists"), "{err}");

    // The database it came from is not empty.
    let (code, _, err) = restore_from(dir.path(), db.url(), &file, false);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("is not empty"), "{err}");
    assert!(err.contains("--force"), "{err}");
    let (code, out, err) = restore_from(dir.path(), db.url(), &file, true);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["replaced"], true, "{v}");
    let (code, out, _) = mpanel_on(dir.path(), db.url(), &["migrate", "--status"]);
    assert_eq!(code, 0);
    assert!(out.contains("up to date"), "{out}");

    // A backup of a schema newer than this binary is refused, and the
    // empty database stays empty.
    add_future_migration(db.url());
    let newer = dir.path().join("newer.backup");
    let v = backup_to(dir.path(), db.url(), &newer);
    assert_eq!(v["schema_version"], 9999, "{v}");
    let empty = test_database();
    let (code, _, err) = restore_from(dir.path(), empty.url(), &newer, false);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("schema version is 9999, newer than this mPanel knows"),
        "{err}"
    );
    match empty.engine() {
        Engine::Sqlite => {
            let file = empty.url().strip_prefix("sqlite://").unwrap();
            assert!(!Path::new(file).exists(), "nothing is left behind");
        }
        Engine::Postgres => assert_eq!(table_count(empty.url()), 0),
    }

    // A backup goes back into a database of its own engine only (checked
    // before anything connects).
    let other = match db.engine() {
        Engine::Sqlite => "postgres://nobody@127.0.0.1:1/nothing".to_owned(),
        Engine::Postgres => format!("sqlite://{}/other.db", dir.path().display()),
    };
    let (code, _, err) = restore_from(dir.path(), &other, &file, false);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("restore a backup into a database of its own engine"),
        "{err}"
    );
    assert!(!dir.path().join("other.db").exists());
}

#[test]
fn the_scheduled_backup_writes_into_backup_dir_and_keeps_backup_keep() {
    let db = test_database();
    let dir = tempfile::tempdir().unwrap();
    let backups = tempfile::tempdir().unwrap();
    let ext = match db.engine() {
        Engine::Sqlite => "sqlite",
        Engine::Postgres => "pgdump",
    };
    for day in 1..=4 {
        let name = format!("mpanel-2020010{day}T021500Z.{ext}");
        std::fs::write(backups.path().join(name), b"old").unwrap();
    }
    std::fs::write(backups.path().join("notes.txt"), b"mine").unwrap();

    // A folder that does not exist stops the start, naming the key.
    let missing = backups.path().join("missing");
    let out = run(
        dir.path(),
        &["worker"],
        &[
            ("MPANEL_DATABASE_URL", db.url()),
            ("MPANEL_BACKUP_DIR", missing.to_str().unwrap()),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("invalid backup_dir (from environment variable MPANEL_BACKUP_DIR)")
            && err.contains("is not an existing folder"),
        "{err}"
    );

    let mut worker = Running::start(mpanel(
        dir.path(),
        &["worker"],
        &[
            ("MPANEL_DATABASE_URL", db.url()),
            ("MPANEL_BACKUP_DIR", backups.path().to_str().unwrap()),
            ("MPANEL_BACKUP_KEEP", "2"),
        ],
    ));
    worker.wait_for_line(|l| l.contains("platform backup written"));
    worker.signal("TERM");
    assert_eq!(worker.wait_exit(), 0);

    let mut names: Vec<String> = std::fs::read_dir(backups.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names.len(), 3, "{names:?}");
    assert_eq!(names[0], format!("mpanel-20200104T021500Z.{ext}"));
    let today = time::OffsetDateTime::now_utc().date();
    let stamp = format!(
        "mpanel-{:04}{:02}{:02}T",
        today.year(),
        u8::from(today.month()),
        today.day()
    );
    assert!(
        names[1].starts_with(&stamp) && names[1].ends_with(ext),
        "{names:?}"
    );
    assert_eq!(names[2], "notes.txt");
    // A real backup that restores.
    let restored = test_database();
    let (code, out, err) = restore_from(
        dir.path(),
        restored.url(),
        &backups.path().join(&names[1]),
        false,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"schema_version\""), "{out}");
}
