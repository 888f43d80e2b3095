#!/usr/bin/env python3
"""The web console's pages on a tenant with 10,000 invoices, on one engine.

Run by bench/console.sh. Standard library only; reuses the billing
benchmark's helpers (bench/billing/run.py: the database in bulk, the
binary's CLI, `serve`), as the operations overview benchmark does.

1. Setup. `mpanel migrate`; a tenant `acme` (Europe/Berlin, EUR) and a
   TENANT_ADMIN made with `mpanel admin`; `mpanel serve --no-workers` (no
   worker touches the seeded jobs or marks invoices); through the API:
   billing settings (seller in DE, VAT 19 %, 14 days to pay) and the
   RECURRING product "Web Pro" (EUR 15.00 a month, EUR 5.00 setup).
2. Seed, in bulk SQL (one transaction per table; COPY on PostgreSQL, which
   is ANALYZEd afterwards; SQLite is not, as mPanel never runs ANALYZE), the
   rows the app writes for a hosting business with 20 orders a day, going
   back as far as it takes to reach 9,999 invoices (about 160 days, 3,300
   customers):
   - per order: the customer and its portal user (70 % have set a
     password, a sixth of those with TOTP), the order with its item and
     subscription, and the order's invoice (the first month and the setup
     fee: two lines; 80 % paid within 30 minutes). Once that invoice is
     paid: the provisioning step and its `provision.subscription` job (3 %
     of the last 7 days' dead; completed jobs older than the 7 days of job
     retention are gone, as the workers prune them) and, unless it died,
     the hosting account on one of 3 web servers;
   - then one invoice a month, issued at the period's local midnight by
     the billing run (one line, `subscription_periods` claimed), like the
     engine writes them. Each invoice is paid (80 % within 10 days, 12 %
     within 10 to 40, with a payment row: bank transfer or manual), or
     left unpaid (ISSUED; OVERDUE once 14 days have passed, as the daily
     job records it, and the subscription and account suspended), or 4 %
     of renewals VOID. Invoices are written as drafts, their lines added,
     then issued with their numbers in one UPDATE (the triggers refuse
     lines on an issued invoice), numbered INV-YYYY-NNNNNN in issue order
     with `document_sequences` advanced to match;
   - 4 support staff (2 with TOTP), 300 background jobs of 8 kinds (70 %
     completed over 7 days, the rest queued, running, retrying, dead or
     cancelled) and 400 security events of the last 3 days.
   Not written: the audit, domain and webhook rows the same actions add
   (neither page reads them).
   Then the 10,000th invoice is made by the app itself through the API
   (draft, issue, bank transfer) for a seeded customer, and its rows
   (invoice, line, payment) are compared with a seeded renewal of the same
   customer: the same columns set, the same amounts, texts and snapshots.
3. Measure, on one keep-alive connection per page, R requests after 5
   warm-up ones, as the TENANT_ADMIN signed in through `POST
   /api/auth/login` with the console's cookie (`mp_access`) and `Accept:
   text/html`: the dashboard (`/`), the invoices (`/invoices`, first page of
   50), the paid ones (`/invoices?status=PAID`), and page 10 of the
   invoices (reached through each page's "Next page" link); and the
   reference, `GET /api/auth/me` with a bearer token, in the same run. The
   client time (the server's plus loopback). Every answer must be 200,
   HTML, with the page's heading, and a list page 50 invoices (the paid one
   50 paid). A token older than 10 minutes is replaced by signing in again
   between requests (access tokens live 15). p50, p95 and mean in ms,
   beside the target (p95 < 50 ms).

With `--seed ops` (`SEED=ops bash bench/console.sh`), step 2 is the
operations overview benchmark's seed instead (bench/ops_overview/run.py:
1,000 servers all used by the tenant, 100,000 jobs, 10,000 customers,
subscriptions and invoices (no lines), 20,000 security events, 35,000
backup runs): the dashboard reads that same overview, so this is its heavy
case, a platform's volume in one tenant.

Prints progress, a result table and one JSON line (`{"bench": "console", ...}`).
"""

import argparse
import datetime as dt
import html
import importlib.util
import http.client
import json
import os
import random
import re
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
import zoneinfo

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "billing"))
import run as billing  # noqa: E402  (bench/billing/run.py)

from run import Db, Panel, add_months, local_midnight, log, pct, ts  # noqa: E402

TARGET_MS = 50.0
INVOICES = 10_000  # the last one made through the API
ORDERS_PER_DAY = 20
PLAN, SETUP = 1500, 500  # Web Pro a month, its setup fee (EUR cents)
TERMS = dt.timedelta(days=14)
RETENTION = dt.timedelta(days=7)  # completed jobs are pruned after
LATER_PAGE = 10
KINDS = ["notify.email", "webhook.deliver", "dns.zone.create", "hosting.account.suspend",
         "mail.account.create", "backup.run", "invoice.remind", "disk.measure"]


def vat(minor):
    return minor * 19 // 100  # exact for the amounts used


class Ids:
    """UUIDv7s as `Uuid::now_v7()` mints them at a given instant."""

    def __init__(self, rng):
        self.rng = rng

    def at(self, t):
        b = bytearray(int(t.timestamp() * 1000).to_bytes(6, "big") + self.rng.randbytes(10))
        b[6] = 0x70 | (b[6] & 0x0F)
        b[8] = 0x80 | (b[8] & 0x3F)
        return uuid.UUID(bytes=bytes(b))


def js(value, sort=False):
    """JSON as serde_json writes it (compact; a `json!` object's keys sorted)."""
    return json.dumps(value, separators=(",", ":"), sort_keys=sort)


def ops_seed():
    """bench/ops_overview/run.py's seed (both runners are named run.py)."""
    path = os.path.join(os.path.dirname(__file__), "..", "ops_overview", "run.py")
    spec = importlib.util.spec_from_file_location("ops_overview_run", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.seed


def execute(db, sql):
    if db.engine == "sqlite":
        c = db.sqlite()
        c.executescript(sql)
        c.close()
    else:
        db.psql(sql)


def seed(db, tenant, product, password_hash, now, rng):
    zone = zoneinfo.ZoneInfo(billing.ZONE)
    ids = Ids(rng)
    T = {name: [] for name in ["users", "mfa_totp", "customers", "subscriptions", "orders",
                               "order_items", "invoices", "invoice_lines", "payments",
                               "subscription_periods", "order_steps", "jobs", "servers",
                               "hosting_accounts", "security_events"]}
    seller = js({"name": "Acme Hosting GmbH", "address_lines": ["Hauptstr. 1", "10115 Berlin"],
                 "country": "DE", "tax_id": "DE123456789"}, sort=True)
    t0 = ts(now - dt.timedelta(days=400))
    health = js({"load": {"1m": 0.5, "5m": 0.4, "15m": 0.3},
                 "memory": {"total_bytes": 8 << 30, "available_bytes": 4 << 30, "used_bytes": 4 << 30},
                 "disk": {"path": "/", "total_bytes": 100 << 30, "used_bytes": 40 << 30,
                          "available_bytes": 60 << 30}})
    servers = [ids.at(now - dt.timedelta(days=400)) for _ in range(3)]
    for n, sid in enumerate(servers):
        T["servers"].append((sid, f"web-{n + 1}", "WEB", f"10.0.0.{n + 1}", 22, "v1:x", "{}", 2000, "ONLINE",
                             ts(now - dt.timedelta(seconds=30)), 4, None, health, t0, t0))
    invoices = []  # [id, issued_at, final status], numbered in issue order at the end
    job_ = lambda jid, kind, payload, state, at, finished, error=None: T["jobs"].append(  # noqa: E731
        (jid, "default" if kind != "provision.subscription" else "provisioning", kind, payload, state, 0,
         ts(at), 0 if state == "pending" else 1, 10, error, ts(at), ts(finished or at),
         ts(finished) if finished else None, tenant))

    def invoice(customer, snapshot, sub, issued, lines, order=None, renewal=False):
        """One issued invoice with its lines, its fate and its payment; the status."""
        iid = ids.at(issued)
        net = sum(m for _, m in lines)
        tax = sum(vat(m) for _, m in lines)
        r = rng.random()
        void = renewal and r < 0.04 and issued + dt.timedelta(days=1) < now
        soon = dt.timedelta(minutes=rng.uniform(1, 30)) if order else dt.timedelta(days=rng.uniform(0, 10))
        delay = (None if void else soon if r < 0.80
                 else dt.timedelta(days=rng.uniform(10, 40)) if r < 0.92 else None)
        paid_at = issued + delay if delay and issued + delay < now else None
        status = ("VOID" if void else "PAID" if paid_at else "OVERDUE" if issued + TERMS < now else "ISSUED")
        t = ts(paid_at or (issued + dt.timedelta(days=1) if void else issued))
        T["invoices"].append((iid, tenant, customer, order, "DRAFT", None, "EUR", "EXCLUSIVE", net, tax,
                              net + tax, net + tax if paid_at else 0, 0, 0, snapshot, seller, "[]", False,
                              ts(issued), ts(issued + TERMS), ts(paid_at) if paid_at else None,
                              t if void else None, ts(issued), t))
        for pos, (text, minor) in enumerate(lines):
            T["invoice_lines"].append((ids.at(issued), tenant, iid, pos, "ITEM", "SUBSCRIPTION", text, "1",
                                       f"{minor / 100:.2f}", minor, "0.19", minor, vat(minor), sub))
        if paid_at:
            bank = rng.random() < 0.7
            T["payments"].append((ids.at(paid_at), tenant, iid, customer, "BANK_TRANSFER" if bank else "MANUAL",
                                  f"SEPA-{len(T['payments']) + 1:06d}" if bank else None, "EUR", net + tax,
                                  net + tax, 0, "SUCCESS", None, ts(paid_at), ts(paid_at)))
        invoices.append([iid, issued, status])
        return iid, status, paid_at

    j = 0
    while len(invoices) < INVOICES - 1:
        ordered = now - dt.timedelta(days=j / ORDERS_PER_DAY, minutes=rng.randrange(1, 60))
        j += 1
        at = ts(ordered)
        uid, cid, sid, oid, item = (ids.at(ordered) for _ in range(5))
        email, name, domain = f"c{j}@bench.example", f"Customer {j}", f"site{j}.example"
        active = rng.random() < 0.7
        T["users"].append((uid, tenant, email, name, "CUSTOMER", "ACTIVE" if active else "INVITED",
                           password_hash if active else None, at if active else None, at, at))
        if active and rng.random() < 1 / 6:
            T["mfa_totp"].append((uid, tenant, "v1:x", at, at))
        T["customers"].append((cid, tenant, email, name, None, "DE", None, None, 0, uid, at, at))
        snapshot = js({"name": name, "company": None, "email": email, "country": "DE",
                       "tax_id": None, "address": None}, sort=True)
        # The order's invoice: the first month and the setup fee.
        _, status, paid_at = invoice(cid, snapshot, sid, ordered,
                                     [(f"Web Pro (MONTHLY), {domain}", PLAN), ("Setup fee: Web Pro", SETUP)],
                                     order=oid)
        T["orders"].append((oid, tenant, cid, "PAID" if paid_at else "PENDING_PAYMENT", "EUR", PLAN + SETUP,
                            None, f"order-{j}", at, ts(paid_at) if paid_at else at))
        T["order_items"].append((item, tenant, oid, product, sid, "MONTHLY", domain, None, PLAN, SETUP, at))
        anchor = ordered.astimezone(zone).date()
        starts = [local_midnight(anchor, zone)]
        live = False
        if paid_at:
            jid = ids.at(paid_at)
            finished = paid_at + dt.timedelta(seconds=rng.randrange(40, 300))
            dead = rng.random() < 0.03 and finished > now - RETENTION  # older ones were retried
            T["order_steps"].append((ids.at(paid_at), tenant, oid, item, "hosting.account.create", jid,
                                     ts(paid_at)))
            payload = js({"subscription_id": str(sid), "template": {"type": "HOSTING", "dns_zone": False,
                          "mailboxes": 0, "disk_quota_mb": None}, "domain": domain,
                          "mailbox_password_hash": None, "tenant_id": str(tenant)})
            if dead or finished > now - RETENTION:
                job_(jid, "provision.subscription", payload, "dead" if dead else "completed", paid_at,
                     finished, "hosting.account.create: the web server did not answer" if dead else None)
            live = not dead
        overdue = status == "OVERDUE"
        # Renewals: the billing run, at each later period's local midnight.
        while live:
            start = local_midnight(add_months(anchor, len(starts)), zone)
            if start >= now or len(invoices) >= INVOICES - 1:
                break
            k = len(starts)
            starts.append(start)
            end = local_midnight(add_months(anchor, k + 1), zone)
            span = f"{start.astimezone(zone).date()} to {end.astimezone(zone).date()}"
            issued = start + dt.timedelta(seconds=rng.randrange(60, 900))
            iid, status, _ = invoice(cid, snapshot, sid, issued, [(f"Web Pro ({span})", PLAN)], renewal=True)
            T["subscription_periods"].append((sid, k, tenant, ts(start), ts(end), iid, ts(issued)))
            overdue = overdue or status == "OVERDUE"
        state = "SUSPENDED" if live and overdue else "ACTIVE" if live else "PENDING_ACTIVATION"
        nxt = local_midnight(add_months(anchor, len(starts)), zone)
        T["subscriptions"].append((sid, tenant, cid, product, "MONTHLY", "EUR", PLAN, state, None, at,
                                   ts(paid_at) if paid_at else at, ts(starts[0]), len(starts), ts(nxt),
                                   ts(starts[-1]), ts(nxt), None, True, False, None,
                                   "DUNNING" if state == "SUSPENDED" else None, "[]"))
        if live:
            T["hosting_accounts"].append((ids.at(paid_at), tenant, cid, sid, servers[j % 3], domain,
                                          "SUSPENDED" if overdue else "ACTIVE", None, None, ts(finished),
                                          ts(finished)))
    log(f"  {j:,} customers and orders, {len(invoices):,} invoices")

    for i in range(4):
        uid = ids.at(now - dt.timedelta(days=300))
        T["users"].append((uid, tenant, f"staff{i}@acme.test", f"Staff {i}", "SUPPORT", "ACTIVE",
                           password_hash, t0, t0, t0))
        if i % 2 == 0:
            T["mfa_totp"].append((uid, tenant, "v1:x", t0, t0))
    for i in range(300):
        r = rng.random()
        finished = now - dt.timedelta(minutes=rng.randrange(7 * 24 * 60))
        state = ("completed" if r < 0.70 else "pending" if r < 0.85 else "running" if r < 0.88
                 else "failed" if r < 0.93 else "dead" if r < 0.97 else "cancelled")
        done = state in ("completed", "dead", "cancelled")
        at = finished - dt.timedelta(minutes=2) if done else now + dt.timedelta(minutes=rng.randrange(-30, 300))
        job_(ids.at(at), KINDS[i % len(KINDS)], js({"tenant_id": str(tenant)}), state, at,
             finished if done else None, "step: it failed" if state in ("failed", "dead") else None)
    kinds = ["LOGIN_FAILED"] * 6 + ["LOGIN_SUCCEEDED"] * 3 + ["LOGIN_THROTTLED"]
    for i in range(400):
        at = now - dt.timedelta(minutes=rng.randrange(3 * 24 * 60))
        T["security_events"].append((ids.at(at), tenant, None, kinds[i % len(kinds)], f"203.0.113.{i % 50}",
                                     None, ts(at)))

    # Numbers in issue order, per year of the tenant's calendar.
    last = {}
    for inv in sorted(invoices, key=lambda v: v[1]):
        year = inv[1].astimezone(zone).year
        last[year] = last.get(year, 0) + 1
        inv.append(f"INV-{year}-{last[year]:06d}")
    columns = {
        "users": "id tenant_id email display_name role status password_hash password_changed_at created_at "
                 "updated_at",
        "mfa_totp": "user_id tenant_id secret confirmed_at created_at",
        "customers": "id tenant_id email name company country tax_id address credit_balance_minor portal_user_id "
                     "created_at updated_at",
        "subscriptions": "id tenant_id customer_id product_id period currency amount_minor status external_ref "
                         "created_at updated_at anchor_at next_period next_bill_at current_period_start "
                         "current_period_end trial_end auto_renew cancel_at_period_end cancelled_at "
                         "suspend_reason addons",
        "orders": "id tenant_id customer_id status currency total_minor payment idempotency_key created_at "
                  "updated_at",
        "order_items": "id tenant_id order_id product_id subscription_id period domain options amount_minor "
                       "setup_fee_minor created_at",
        "invoices": "id tenant_id customer_id order_id status number currency tax_mode subtotal_minor tax_minor "
                    "total_minor paid_minor credited_minor refunded_minor customer_snapshot seller_snapshot "
                    "notes disputed issued_at due_at paid_at voided_at created_at updated_at",
        "invoice_lines": "id tenant_id invoice_id position kind source description quantity unit_price "
                         "amount_minor tax_rate net_minor tax_minor subscription_id",
        "payments": "id tenant_id invoice_id customer_id provider reference currency amount_minor applied_minor "
                    "refunded_minor status failure created_at updated_at",
        "subscription_periods": "subscription_id period_index tenant_id period_start period_end invoice_id "
                                "created_at",
        "order_steps": "id tenant_id order_id order_item_id step job_id created_at",
        "jobs": "id queue kind payload state priority run_at attempts max_attempts last_error created_at "
                "updated_at finished_at tenant_id",
        "servers": "id name role address port credentials settings capacity status last_check_at "
                   "last_latency_ms last_error health created_at updated_at",
        "hosting_accounts": "id tenant_id customer_id subscription_id server_id domain status disk_quota_mb "
                            "php_version created_at updated_at",
        "security_events": "id tenant_id user_id kind ip detail created_at",
    }
    for table, rows in T.items():
        db.bulk(table, columns[table].split(), rows)
        if table == "invoice_lines":  # issue the drafts, now that they have their lines
            idtype = "BLOB" if db.engine == "sqlite" else "uuid"
            execute(db, f"CREATE TABLE bench_issue (id {idtype} PRIMARY KEY, status TEXT, number TEXT)")
            db.bulk("bench_issue", ["id", "status", "number"], [(i, s, n) for i, _, s, n in invoices])
            execute(db, "UPDATE invoices SET status = (SELECT status FROM bench_issue b WHERE b.id = invoices.id),"
                        " number = (SELECT number FROM bench_issue b WHERE b.id = invoices.id)"
                        " WHERE id IN (SELECT id FROM bench_issue); DROP TABLE bench_issue;")
    db.bulk("document_sequences", ["tenant_id", "kind", "year", "last_value"],
            [(tenant, "INV", y, n) for y, n in last.items()])
    log("  " + ", ".join(f"{t} {len(r):,}" for t, r in T.items()))
    if db.engine == "postgres":
        db.psql("ANALYZE")


# --- the seed against the app's own rows ------------------------------------------

def row(db, table, where):
    """One row as {column: value}, alike on both engines (ids as text, JSON parsed)."""
    if db.engine == "postgres":
        return json.loads(db.psql(f"SELECT row_to_json(t) FROM {table} t WHERE {where}"))
    c = db.sqlite()
    c.row_factory = sqlite3.Row
    r = c.execute(f"SELECT * FROM {table} WHERE {where}").fetchone()
    c.close()
    plain = lambda v: (str(uuid.UUID(bytes=v)) if isinstance(v, bytes) and len(v) == 16  # noqa: E731
                       else json.loads(v) if isinstance(v, str) and v.startswith(("[", "{")) else v)
    return {k: plain(r[k]) for k in r.keys()}


def compare_with_app(db, panel, token):
    """The app issues one invoice, paid by bank transfer, for the customer
    of the newest such seeded renewal; its rows must look like that one's."""
    seeded = row(db, "invoices", "order_id IS NULL AND status = 'PAID' AND id IN (SELECT invoice_id "
                                 "FROM payments WHERE provider = 'BANK_TRANSFER') ORDER BY id DESC LIMIT 1")
    line = row(db, "invoice_lines", f"invoice_id = {db.id_literal(uuid.UUID(seeded['id']))}")
    body = {"customer_id": seeded["customer_id"],
            "lines": [{"kind": "ITEM", "source": "SUBSCRIPTION", "description": line["description"],
                       "quantity": "1", "unit_price": "15.00", "subscription_id": line["subscription_id"]}]}
    made = panel.expect(201, token, "POST /api/billing/invoices", body)["id"]
    panel.expect(200, token, f"POST /api/billing/invoices/{made}/issue")
    panel.expect(201, token, f"POST /api/billing/invoices/{made}/pay",
                 {"amount_minor": seeded["total_minor"], "provider": "BANK_TRANSFER", "reference": "SEPA-app"})
    made, seeded = uuid.UUID(made), uuid.UUID(seeded["id"])
    same = {"invoices": ["status", "currency", "tax_mode", "subtotal_minor", "tax_minor", "total_minor",
                         "paid_minor", "credited_minor", "refunded_minor", "customer_snapshot", "seller_snapshot",
                         "notes", "disputed", "customer_id", "tenant_id"],
            "invoice_lines": ["position", "kind", "source", "description", "quantity", "unit_price",
                              "amount_minor", "tax_rate", "net_minor", "tax_minor", "subscription_id"],
            "payments": ["provider", "currency", "amount_minor", "applied_minor", "refunded_minor", "status",
                         "failure", "customer_id"]}
    for table, cols in same.items():
        key = "id" if table == "invoices" else "invoice_id"
        app = row(db, table, f"{key} = {db.id_literal(made)}")
        ours = row(db, table, f"{key} = {db.id_literal(seeded)}")
        diff = [c for c in app if (app[c] is None) != (ours[c] is None) or (c in cols and app[c] != ours[c])]
        if diff:
            sys.exit(f"the seeded {table} differ from the app's in {diff}:\napp:  {app}\nseed: {ours}")
    log(f"  the app's own invoice {made} matches the seeded {seeded} (invoice, line, payment)")


# --- measuring ---------------------------------------------------------------------

class Session:
    """A TENANT_ADMIN's access token, replaced when 10 minutes old."""

    def __init__(self, panel):
        self.panel, self.born = panel, 0.0

    def token(self):
        if time.monotonic() - self.born > 600:
            self.value, self.born = self.panel.login(), time.monotonic()
        return self.value

    def page(self):
        return {"cookie": f"mp_access={self.token()}", "accept": "text/html"}

    def api(self):
        return {"authorization": f"Bearer {self.token()}"}


def rows(body):
    return body.count(b'<td><a href="/invoices/')


def connect(addr):
    host, port = addr.split(":")
    return http.client.HTTPConnection(host, int(port), timeout=60)


def timed(addr, path, headers, check, n, warmup=5):
    conn = connect(addr)
    times = []
    for i in range(warmup + n):
        h = headers()  # outside the clock (a sign-in when due)
        start = time.perf_counter()
        conn.request("GET", path, headers=h)
        res = conn.getresponse()
        body = res.read()
        took = (time.perf_counter() - start) * 1000
        if res.status != 200:
            sys.exit(f"GET {path}: {res.status} {res.getheader('location')} {body[:300]!r}")
        problem = check(res.getheader("content-type") or "", body)
        if problem:
            sys.exit(f"GET {path}: {problem}")
        if i >= warmup:
            times.append(took)
    conn.close()
    return times, len(body)


def html_page(heading, count=None, badge=None):
    def check(ctype, body):
        if not ctype.startswith("text/html") or f"<h1>{heading}".encode() not in body:
            return f"not the {heading} page ({ctype}): {body[:200]!r}"
        if count is not None and rows(body) != count:
            return f"{rows(body)} invoices, not {count}"
        if badge and body.count(badge) != count:
            return f"{body.count(badge)} marked {badge!r}, not {count}"
        return None
    return check


def later_page(addr, session, pages):
    """The address of page `pages` of /invoices, through the "Next page" links."""
    path = "/invoices"
    for _ in range(pages - 1):
        conn = connect(addr)
        conn.request("GET", path, headers=session.page())
        body = conn.getresponse().read().decode()
        conn.close()
        found = re.search(r'<a class="button secondary" href="([^"]+)">Next page</a>', body)
        if not found:
            sys.exit(f"GET {path}: no Next page link")
        path = html.unescape(found.group(1))
    return path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--engine", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--database-url")
    ap.add_argument("--requests", type=int, default=100)
    ap.add_argument("--log-level", help="MPANEL_LOG_LEVEL for serve (e.g. info,sqlx::query=debug); log kept")
    ap.add_argument("--seed", choices=["console", "ops"], default="console")
    ap.add_argument("--keep")
    args = ap.parse_args()
    work = args.keep or tempfile.mkdtemp(prefix="mpanel-bench-console-")
    os.makedirs(work, exist_ok=True)
    url = args.database_url or f"sqlite://{work}/mpanel.db"
    db = Db(args.engine, url)
    panel = Panel(os.path.abspath(args.bin), url, work)
    panel.log_level = args.log_level
    try:
        panel.cli("migrate")
        panel.cli("admin", "create-tenant", "--slug", billing.TENANT, "--name", "Acme Hosting",
                  "--timezone", billing.ZONE, "--currency", "EUR")
        panel.cli("admin", "create-user", "--tenant", billing.TENANT, "--email", billing.ADMIN_EMAIL,
                  "--role", "TENANT_ADMIN", "--password", billing.ADMIN_PASSWORD)
        panel.serve()
        admin = panel.login()
        settings = {"legal_name": "Acme Hosting GmbH", "address_lines": ["Hauptstr. 1", "10115 Berlin"],
                    "country": "DE", "tax_id": "DE123456789", "tax_mode": "EXCLUSIVE",
                    "tax_rates": {"DE": "0.19"}, "payment_terms_days": 14}
        panel.expect(200, admin, "PUT /api/billing/settings", settings)
        plan = {"name": "Web Pro", "slug": "web-pro", "category": "HOSTING",
                "billing_model": "RECURRING", "status": "ACTIVE", "visibility": "PUBLIC",
                "base_currency": "EUR"}
        product = panel.expect(201, admin, "POST /api/billing/products", plan)["id"]
        panel.expect(201, admin, f"POST /api/billing/products/{product}/prices",
                     {"period": "MONTHLY", "currency": "EUR", "amount_minor": PLAN, "setup_fee_minor": SETUP})
        tenant = uuid.UUID(panel.expect(200, admin, "GET /api/auth/me")["tenant_id"])
        password_hash = db.scalar(f"SELECT password_hash FROM users WHERE email = '{billing.ADMIN_EMAIL}'")
        log(f"seeding ({args.engine}, {args.seed})")
        started = time.monotonic()
        now = dt.datetime.now(dt.timezone.utc)
        if args.seed == "ops":
            ops_seed()(db, tenant, uuid.UUID(product), now, random.Random(16))
        else:
            seed(db, tenant, uuid.UUID(product), password_hash, now, random.Random(10_000))
            compare_with_app(db, panel, admin)
        log(f"  seeded in {time.monotonic() - started:.1f} s")
        invoices = int(db.scalar("SELECT COUNT(*) FROM invoices"))
        assert invoices == INVOICES, invoices

        session = Session(panel)
        later = later_page(panel.addr, session, LATER_PAGE)
        pages = [("dashboard: GET /", "/", html_page("Dashboard")),
                 ("invoices: GET /invoices", "/invoices", html_page("Invoices", 50)),
                 ("paid: GET /invoices?status=PAID", "/invoices?status=PAID",
                  html_page("Invoices", 50, b'<span class="badge ok">paid</span>')),
                 (f"invoices, page {LATER_PAGE} (Next page)", later, html_page("Invoices", 50))]
        results = []
        for label, path, check in pages:
            times, size = timed(panel.addr, path, session.page, check, args.requests)
            results.append((label, times, size))
        me = lambda ctype, body: None if b'"tenant_id"' in body else f"not the caller: {body[:200]!r}"  # noqa: E731
        ref, size = timed(panel.addr, "/api/auth/me", session.api, me, args.requests)
        results.append(("reference: GET /api/auth/me", ref, size))

        log(f"\n{args.engine}, {args.seed} seed: {invoices:,} invoices, {args.requests} requests each; "
            f"target p95 < {TARGET_MS:.0f} ms")
        log(f"{'':40} {'p50 ms':>8} {'p95 ms':>8} {'mean ms':>8} {'bytes':>8}")
        out = {"bench": "console", "engine": args.engine, "seed": args.seed, "invoices": invoices,
               "requests": args.requests, "pages": {}}
        for label, times, size in results:
            p50, p95, mean = pct(times, 50), pct(times, 95), statistics.mean(times)
            log(f"{label:40} {p50:8.1f} {p95:8.1f} {mean:8.1f} {size:8}")
            out["pages"][label] = {"p50_ms": round(p50, 1), "p95_ms": round(p95, 1),
                                   "mean_ms": round(mean, 1), "bytes": size}
        out["under_target"] = all(v["p95_ms"] < TARGET_MS for k, v in out["pages"].items()
                                  if not k.startswith("reference"))
        log(f"later page: {later}")
        print(json.dumps(out), flush=True)
    finally:
        panel.stop()
        if args.log_level:
            log(f"serve's log: {panel.log_path}")
        if not args.keep and not args.log_level:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
