#!/usr/bin/env python3
"""GET /api/ops/platform-overview on a large database, on one engine.

Run by bench/ops_overview.sh. Standard library only; reuses the billing
benchmark's helpers (bench/billing/run.py: the database in bulk, the
binary's CLI, `serve`).

1. Setup. `mpanel migrate`; a tenant `acme` with a TENANT_ADMIN and a
   SUPER_ADMIN made with `mpanel admin`; `mpanel serve --no-workers` (no
   worker touches the seeded jobs); a RECURRING product through the API.
2. Seed, in bulk SQL (COPY on PostgreSQL, which is ANALYZEd afterwards;
   SQLite is not, as mPanel never runs ANALYZE): 1,000 servers (with
   health checks, a tenth failing), 10,000 customers with one
   subscription each (a mix of states) and one invoice each (a fifth
   overdue), 5,000 payments of the last two days, 100,000 jobs over 8
   kinds (60 % completed over the last 7 days, the rest pending, scheduled,
   running, retrying, dead or cancelled; half name the tenant), 3,000
   orders whose provisioning jobs ended in the last 2 days (a tenth dead),
   2,000 staff and customer users (a third with TOTP), 20,000 security
   events of the last 3 days, 5,000 backup targets and 35,000 backup runs
   of the last 7 days. A second tenant's rows are not needed: the platform
   query reads every row, the tenant's share is scoped by indexes.
3. Measure, with one keep-alive connection each, R requests (after 5
   warm-up ones): the overview as the SUPER_ADMIN (the platform: the
   heaviest), as the TENANT_ADMIN (its share), and the reference, a trivial
   authenticated GET (/api/auth/me) in the same run. p50, p95 and mean in ms,
   beside the target (< 200 ms).

Prints progress, a result table and one JSON line (`{"bench": "ops_overview", ...}`).
"""

import argparse
import datetime as dt
import http.client
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "billing"))
import run as billing  # noqa: E402  (bench/billing/run.py)

from run import Db, Panel, Uuid7, log, pct, ts  # noqa: E402

TARGET_MS = 200.0
OPS_EMAIL = "ops@acme.test"
KINDS = ["provision.subscription", "notify.email", "dns.zone.create", "hosting.account.suspend",
         "mail.account.create", "backup.run", "cloudpod.usage", "webhook.deliver"]


def seed(db, tenant, product, now, rng):
    ids = Uuid7(int((now.timestamp() - 30 * 86400) * 1000))
    t = ts(now - dt.timedelta(days=30))
    tid = tenant
    servers = []
    for i in range(1000):
        role = ["WEB", "MAIL", "DNS", "BACKUP", "CLOUD"][i % 5]
        failing = i % 10 == 0
        health = None if failing else json.dumps(
            {"load": {"1m": 0.5, "5m": 0.4, "15m": 0.3},
             "memory": {"total_bytes": 8 << 30, "available_bytes": 4 << 30, "used_bytes": 4 << 30},
             "disk": {"path": "/", "total_bytes": 100 << 30, "used_bytes": 40 << 30,
                      "available_bytes": 60 << 30}})
        servers.append((ids.next(), f"node-{i:04d}", role, f"10.0.{i // 250}.{i % 250}", 22, "v1:x",
                        "{}", 100, "ONLINE", ts(now - dt.timedelta(seconds=30)),
                        None if failing else 5, "cannot connect" if failing else None, health, t, t))
    db.bulk("servers", ["id", "name", "role", "address", "port", "credentials", "settings", "capacity",
                        "status", "last_check_at", "last_latency_ms", "last_error", "health",
                        "created_at", "updated_at"], servers)
    log("  servers: 1,000")

    customers, subs, invoices, payments = [], [], [], []
    states = ["ACTIVE"] * 7 + ["SUSPENDED", "CANCELLED", "PENDING_ACTIVATION"]
    for i in range(10_000):
        cid, sid, iid = ids.next(), ids.next(), ids.next()
        customers.append((cid, tid, f"c{i}@bench.example", f"Customer {i}", "DE", t, t))
        subs.append((sid, tid, cid, product, "MONTHLY", "EUR", 1500, states[i % 10], t, t))
        overdue = i % 5 == 0
        issued = now - dt.timedelta(days=20 if overdue else 3)
        status = "ISSUED" if overdue or i % 5 == 1 else "PAID"
        invoices.append((iid, tid, cid, status, f"B-{i}", "EUR", "EXCLUSIVE", 1500, 0, 1500,
                         0 if status != "PAID" else 1500, "[]", ts(issued),
                         ts(issued + dt.timedelta(days=14)), t, t))
        if i < 5000:
            payments.append((ids.next(), tid, iid, cid, "BANK_TRANSFER", f"ref-{i}", "EUR", 1500, 1500,
                             "SUCCESS", ts(now - dt.timedelta(minutes=rng.randrange(48 * 60))), t))
    db.bulk("customers", ["id", "tenant_id", "email", "name", "country", "created_at", "updated_at"],
            customers)
    db.bulk("subscriptions", ["id", "tenant_id", "customer_id", "product_id", "period", "currency",
                              "amount_minor", "status", "created_at", "updated_at"], subs)
    db.bulk("invoices", ["id", "tenant_id", "customer_id", "status", "number", "currency", "tax_mode",
                         "subtotal_minor", "tax_minor", "total_minor", "paid_minor", "notes",
                         "issued_at", "due_at", "created_at", "updated_at"], invoices)
    db.bulk("payments", ["id", "tenant_id", "invoice_id", "customer_id", "provider", "reference",
                         "currency", "amount_minor", "applied_minor", "status", "created_at",
                         "updated_at"], payments)
    log("  customers, subscriptions, invoices: 10,000 each; payments: 5,000")

    jobs, orders, items, steps = [], [], [], []
    payload_t = json.dumps({"tenant_id": str(tid)})
    for i in range(100_000):
        jid = ids.next()
        kind = KINDS[i % len(KINDS)]
        r = rng.random()
        finished = None
        if i < 3000:  # the orders' provisioning jobs, ended in the last 2 days
            kind = "provision.subscription"
            state = "dead" if i % 10 == 0 else "completed"
            finished = now - dt.timedelta(minutes=rng.randrange(2 * 24 * 60))
        elif r < 0.60:
            state, finished = "completed", now - dt.timedelta(minutes=rng.randrange(7 * 24 * 60))
        elif r < 0.75:
            state = "pending"
        elif r < 0.80:
            state = "running"
        elif r < 0.88:
            state = "failed"
        elif r < 0.95:
            state = "dead"
            finished = now - dt.timedelta(minutes=rng.randrange(7 * 24 * 60))
        else:
            state, finished = "cancelled", now - dt.timedelta(minutes=rng.randrange(7 * 24 * 60))
        # Pending jobs: some due (waiting), some later (scheduled).
        latest = 600 if state == "pending" else 1
        run_at = now + dt.timedelta(minutes=rng.randrange(-600, latest))
        created = (finished or now) - dt.timedelta(minutes=5)
        own = i % 2 == 0 or i < 3000
        jobs.append((jid, "default", kind, payload_t if own else "{}", state, 0, ts(run_at), 1 if state != "pending" else 0,
                     5, "step: it failed" if state in ("dead", "failed") else None, ts(created), ts(created),
                     ts(finished) if finished else None, tid if own else None))
        if i < 3000:
            oid, item = ids.next(), ids.next()
            ordered = finished - dt.timedelta(seconds=30 + rng.randrange(600))
            sub = subs[i][0]
            orders.append((oid, tid, subs[i][2], "PAID", "EUR", 1500, f"k{i}", ts(ordered), ts(ordered)))
            items.append((item, tid, oid, product, sub, "MONTHLY", 1500, 0, ts(ordered)))
            steps.append((ids.next(), tid, oid, item, "provision.subscription", jid, ts(ordered)))
    db.bulk("jobs", ["id", "queue", "kind", "payload", "state", "priority", "run_at", "attempts",
                     "max_attempts", "last_error", "created_at", "updated_at", "finished_at",
                     "tenant_id"], jobs)
    db.bulk("orders", ["id", "tenant_id", "customer_id", "status", "currency", "total_minor",
                       "idempotency_key", "created_at", "updated_at"], orders)
    db.bulk("order_items", ["id", "tenant_id", "order_id", "product_id", "subscription_id", "period",
                            "amount_minor", "setup_fee_minor", "created_at"], items)
    db.bulk("order_steps", ["id", "tenant_id", "order_id", "order_item_id", "step", "job_id",
                            "created_at"], steps)
    log("  jobs: 100,000; orders with provisioning: 3,000")

    users, totp = [], []
    for i in range(2000):
        uid = ids.next()
        role = "CUSTOMER" if i % 4 else "SUPPORT"
        users.append((uid, tid, f"u{i}@bench.example", role, "ACTIVE", t, t))
        if i % 3 == 0:
            totp.append((uid, tid, "v1:x", t, t))
    db.bulk("users", ["id", "tenant_id", "email", "role", "status", "created_at", "updated_at"], users)
    db.bulk("mfa_totp", ["user_id", "tenant_id", "secret", "confirmed_at", "created_at"], totp)
    events = []
    kinds = ["LOGIN_FAILED"] * 6 + ["LOGIN_SUCCEEDED", "LOGIN_THROTTLED", "LOGIN_LOCKED", "IP_BLOCKED"]
    for i in range(20_000):
        events.append((ids.next(), tid, kinds[i % len(kinds)], f"203.0.113.{i % 200}",
                       ts(now - dt.timedelta(minutes=rng.randrange(3 * 24 * 60)))))
    db.bulk("security_events", ["id", "tenant_id", "kind", "ip", "created_at"], events)
    log("  users: 2,000; security events: 20,000")

    targets, runs = [], []
    for i in range(5000):
        bid = ids.next()
        kind = "SITE" if i % 2 else "MAILBOX"
        last = now - dt.timedelta(hours=30 if i % 50 == 0 else rng.randrange(1, 24))
        targets.append((bid, tid, customers[i][0], kind, ids.next(), f"site{i}.example",
                        servers[i % 1000][0], "02:00", 7, 4, "ACTIVE", ts(now), ts(last), t, t))
        for d in range(7):
            start = now - dt.timedelta(days=d, minutes=rng.randrange(600))
            status = "FAILED" if rng.random() < 0.03 else "SUCCEEDED"
            runs.append((ids.next(), tid, bid, kind, "BACKUP", "SCHEDULED", status, ts(start),
                         ts(start + dt.timedelta(minutes=2))))
    db.bulk("backup_targets", ["id", "tenant_id", "customer_id", "kind", "account_id", "label", "node_id",
                               "run_at", "keep_daily", "keep_weekly", "state", "next_run_at",
                               "last_success_at", "created_at", "updated_at"], targets)
    db.bulk("backup_jobs", ["id", "tenant_id", "target_id", "kind", "operation", "trigger", "status",
                            "started_at", "finished_at"], runs)
    log("  backup targets: 5,000; backup runs: 35,000")
    if db.engine == "postgres":
        db.psql("ANALYZE")


def timed(addr, path, token, n, warmup=5):
    host, port = addr.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    headers = {"authorization": f"Bearer {token}"}
    times = []
    for i in range(warmup + n):
        start = time.perf_counter()
        conn.request("GET", path, headers=headers)
        res = conn.getresponse()
        body = res.read()
        took = (time.perf_counter() - start) * 1000
        if res.status != 200:
            sys.exit(f"GET {path}: {res.status} {body[:300]!r}")
        if i >= warmup:
            times.append(took)
    conn.close()
    return times, body


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--engine", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--database-url")
    ap.add_argument("--requests", type=int, default=50)
    ap.add_argument("--keep")
    args = ap.parse_args()
    work = args.keep or tempfile.mkdtemp(prefix="mpanel-bench-ops-")
    os.makedirs(work, exist_ok=True)
    url = args.database_url or f"sqlite://{work}/mpanel.db"
    db = Db(args.engine, url)
    panel = Panel(os.path.abspath(args.bin), url, work)
    try:
        panel.cli("migrate")
        panel.cli("admin", "create-tenant", "--slug", billing.TENANT, "--name", "Acme Hosting",
                  "--timezone", billing.ZONE, "--currency", "EUR")
        panel.cli("admin", "create-user", "--tenant", billing.TENANT, "--email", billing.ADMIN_EMAIL,
                  "--role", "TENANT_ADMIN", "--password", billing.ADMIN_PASSWORD)
        panel.cli("admin", "create-user", "--tenant", billing.TENANT, "--email", OPS_EMAIL,
                  "--role", "SUPER_ADMIN", "--password", billing.ADMIN_PASSWORD)
        panel.serve()
        admin = panel.login()
        ops = panel.expect(200, "", "POST /api/auth/login",
                           {"email": OPS_EMAIL, "password": billing.ADMIN_PASSWORD,
                            "tenant": billing.TENANT})["access_token"]
        plan = {"name": "Web Pro", "slug": "web-pro", "category": "HOSTING",
                "billing_model": "RECURRING", "status": "ACTIVE", "visibility": "PUBLIC",
                "base_currency": "EUR"}
        product = uuid.UUID(panel.expect(201, admin, "POST /api/billing/products", plan)["id"])
        tenant = uuid.UUID(panel.expect(200, admin, "GET /api/auth/me")["tenant_id"])
        log(f"seeding ({args.engine})")
        started = time.monotonic()
        seed(db, tenant, product, dt.datetime.now(dt.timezone.utc), random.Random(16))
        log(f"  seeded in {time.monotonic() - started:.1f} s")
        jobs = int(db.scalar("SELECT COUNT(*) FROM jobs"))
        subs = int(db.scalar("SELECT COUNT(*) FROM subscriptions"))
        servers = int(db.scalar("SELECT COUNT(*) FROM servers"))
        assert jobs >= 100_000 and subs >= 10_000 and servers >= 1000, (jobs, subs, servers)

        platform, body = timed(panel.addr, "/api/ops/platform-overview", ops, args.requests)
        o = json.loads(body)
        assert o["scope"] == "PLATFORM" and len(o["nodes"]) == 1000, o["scope"]
        share, body = timed(panel.addr, "/api/ops/platform-overview", admin, args.requests)
        assert json.loads(body)["scope"] == "TENANT"
        ref, _ = timed(panel.addr, "/api/auth/me", ops, args.requests)
        rows = [("overview, platform (SUPER_ADMIN)", platform),
                ("overview, tenant share (TENANT_ADMIN)", share),
                ("reference: GET /api/auth/me", ref)]
        log(f"\n{args.engine}: {jobs:,} jobs, {subs:,} subscriptions, {servers:,} servers, "
            f"{args.requests} requests each; target < {TARGET_MS:.0f} ms")
        log(f"{'':40} {'p50 ms':>8} {'p95 ms':>8} {'mean ms':>8}")
        result = {"bench": "ops_overview", "engine": args.engine, "jobs": jobs,
                  "subscriptions": subs, "servers": servers, "requests": args.requests,
                  "overview_bytes": len(body)}
        for (label, times), key in zip(rows, ["platform", "tenant", "reference"]):
            p50, p95, mean = pct(times, 50), pct(times, 95), statistics.mean(times)
            log(f"{label:40} {p50:8.1f} {p95:8.1f} {mean:8.1f}")
            result[key] = {"p50_ms": round(p50, 1), "p95_ms": round(p95, 1), "mean_ms": round(mean, 1)}
        result["under_target"] = result["platform"]["p95_ms"] < TARGET_MS
        print(json.dumps(result), flush=True)
    finally:
        panel.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
