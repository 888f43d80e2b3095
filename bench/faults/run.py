#!/usr/bin/env python3
"""mPanel under faults (issue 19, "Under faults"): one scenario per run.

Run by bench/faults.sh, which builds (or takes MPANEL_BIN), starts a
throwaway PostgreSQL where needed and mounts the small tmpfs of
`disk-full`. Standard library only. Every scenario ends with a PASS/FAIL
list of its checks and its key figures, then one JSON line.

Setup (every scenario, fresh database): `mpanel migrate`, `mpanel admin
create-tenant` (acme, Europe/Berlin, EUR), `mpanel admin create-user` (a
SUPER_ADMIN), `mpanel serve` on a fixed loopback port; over the API:
billing settings (seller in DE, 19 % VAT, exclusive), a product "Support"
(category OTHER, no provisioning template: nothing to provision, so no
web, mail or DNS node is needed; its paid order still writes its invoice,
payment, subscription, audit rows, e-mail and webhook jobs), a MONTHLY
EUR 15.00 price, a rotated order-webhook secret.

The workload of `kill9` and `two-nodes` (Workload below):
- orders: ORDER_THREADS client threads each place ORDERS_PER_THREAD signed
  paid orders (POST /api/orders, `X-Mpanel-Signature` over
  "<t>.<Idempotency-Key>.<body>" as the marketing site signs, a unique
  Idempotency-Key, a new customer e-mail, a BANK_TRANSFER payment of the
  order's total);
- payments: PAY_THREADS threads, each with its own customer and
  INVOICES_PER_THREAD issued invoices of EUR 119.00 (100.00 + 19 % VAT),
  each paid by three MANUAL payments of EUR 50.00 (no provider reference,
  so only the Idempotency-Key can stop a duplicate): 50 + 50 + 19 applied,
  31 of the third to the customer's credit.
- A request that gets no answer (connection refused or reset, timeout),
  a 502/503/504, or a 409 `request_in_flight` (the key is still held by a
  request the killed process was running) is retried with the same key
  and the same body every RETRY_S until it is answered; any other answer
  is final.

Checks after the run, over the API (and a read-only SQL count where the
API cannot tell): every order and payment exists exactly once, invoice
totals and credit balances add up, invoice numbers have no gap, every job
due has finished (none RUNNING, PENDING/FAILED due, or DEAD).
"""

import argparse
import atexit
import concurrent.futures
import hashlib
import hmac
import http.client as httpc
import itertools
import json
import os
import re
import shlex
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid

SECRETS_KEY = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
TENANT = "acme"
OPS_EMAIL = "ops@acme.test"  # SUPER_ADMIN: the jobs
OPS_PASSWORD = "an operator's long password"
ADMIN_EMAIL = "admin@acme.test"  # TENANT_ADMIN: everything else
ADMIN_PASSWORD = "a long tenant admin password"
PRICE_MINOR = 1500
INVOICE_NET = "100.00"
PAYMENTS = (5000, 5000, 5000)  # per payment invoice of 11,900
RETRY_S = 0.25
OP_DEADLINE_S = 240.0
PROBLEM = "application/problem+json"
RETRYABLE = (0, 502, 503, 504)


def log(*a):
    print(*a, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def pct(values, p):
    s = sorted(values)
    if not s:
        return float("nan")
    return s[max(0, min(len(s) - 1, int(-(-p * len(s) // 100)) - 1))]


# --- HTTP ----------------------------------------------------------------------

class Answer:
    """One HTTP exchange: status 0 means no answer (refused, reset, timeout)."""

    def __init__(self, status, ctype="", body=None, error=""):
        self.status, self.ctype, self.body, self.error = status, ctype, body, error

    @property
    def code(self):
        return self.body.get("code") if isinstance(self.body, dict) else None

    def __repr__(self):
        if self.status == 0:
            return f"<no answer: {self.error}>"
        return f"<{self.status} {self.ctype} {str(self.body)[:200]}>"


def http(addr, method, path, token="", body=None, raw=None, headers=None, timeout=20):
    host, port = addr.rsplit(":", 1)
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    h = {"connection": "close"}
    if data is not None:
        h["content-type"] = "application/json"
    if token:
        h["authorization"] = f"Bearer {token}"
    h.update(headers or {})
    conn = httpc.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request(method, path, body=data, headers=h)
        res = conn.getresponse()
        text = res.read().decode(errors="replace")
        ctype = res.getheader("content-type", "")
    except (OSError, httpc.HTTPException) as e:
        return Answer(0, error=f"{type(e).__name__}: {e}")
    finally:
        conn.close()
    try:
        parsed = json.loads(text) if text else None
    except ValueError:
        parsed = text
    return Answer(res.status, ctype, parsed)


# --- processes -------------------------------------------------------------------

NODES = []


@atexit.register
def _stop_nodes():
    """Whatever happens, no mpanel process of this run outlives it."""
    for n in NODES:
        n.kill9()


class Node:
    """One mpanel process: `serve` (on a fixed address, kept across
    restarts) or `worker`."""

    def __init__(self, binary, env, workdir, name, args, addr=None):
        self.binary, self.env, self.dir, self.name, self.args = binary, env, workdir, name, args
        self.addr = addr
        self.proc = None
        self.log_path = os.path.join(workdir, f"{name}.log")
        NODES.append(self)

    def start(self):
        env = dict(self.env)
        if self.addr:
            env["MPANEL_LISTEN"] = self.addr
        log_file = open(self.log_path, "ab")
        self.proc = subprocess.Popen([self.binary, *self.args], cwd=self.dir, env=env,
                                     stdin=subprocess.DEVNULL, stdout=log_file,
                                     stderr=subprocess.STDOUT)
        log_file.close()
        if self.addr:
            self.wait_serving()
        return self

    def wait_serving(self, limit=60):
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.name} exited:\n{self.log_tail()}")
            if http(self.addr, "GET", "/api/health", timeout=2).status == 200:
                return
            time.sleep(0.05)
        raise SystemExit(f"{self.name} did not serve within {limit} s:\n{self.log_tail()}")

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill9()

    def log_tail(self, n=30):
        try:
            with open(self.log_path, "rb") as f:
                return "\n".join(f.read().decode(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


class Db:
    """Read-only SQL where the API cannot tell."""

    def __init__(self, url):
        self.url = url
        self.sqlite = url.startswith("sqlite:")
        if self.sqlite:
            self.path = re.sub(r"^sqlite:(//)?", "", url).split("?", 1)[0]

    def scalar(self, sql):
        if self.sqlite:
            conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)
            try:
                return conn.execute(sql).fetchone()[0]
            finally:
                conn.close()
        out = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", self.url, "-c", sql],
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"psql: {sql}\n{out.stderr}")
        v = out.stdout.strip()
        return int(v) if v.lstrip("-").isdigit() else v


class Panel:
    """A fresh database with the tenant, the operator and the product; the
    serve nodes are added by the scenario."""

    def __init__(self, binary, db_url, workdir):
        self.binary, self.dir, self.db_url = binary, workdir, db_url
        base = {k: v for k, v in os.environ.items() if not k.startswith("MPANEL_")}
        self.env = dict(base, MPANEL_DATABASE_URL=db_url, MPANEL_SECRETS_KEY=SECRETS_KEY,
                        MPANEL_RATE_LIMIT_PER_MINUTE="0")
        self.db = Db(db_url)
        self.nodes = []
        for args in (["migrate"],
                     ["admin", "create-tenant", "--slug", TENANT, "--name", "Acme Hosting",
                      "--timezone", "Europe/Berlin", "--currency", "EUR"],
                     ["admin", "create-user", "--tenant", TENANT, "--email", OPS_EMAIL,
                      "--role", "SUPER_ADMIN", "--password", OPS_PASSWORD],
                     ["admin", "create-user", "--tenant", TENANT, "--email", ADMIN_EMAIL,
                      "--role", "TENANT_ADMIN", "--password", ADMIN_PASSWORD]):
            out = subprocess.run([binary, *args], cwd=workdir, env=self.env, capture_output=True, text=True)
            if out.returncode != 0:
                raise SystemExit(f"mpanel {' '.join(args)}: {out.stderr}")

    def node(self, name, args, addr=None):
        n = Node(self.binary, self.env, self.dir, name, args, addr)
        self.nodes.append(n)
        return n

    def serve(self, name="serve", workers=True, addr=None):
        args = ["serve"] if workers else ["serve", "--no-workers"]
        return self.node(name, args, addr or f"127.0.0.1:{free_port()}").start()

    def stop_all(self):
        for n in self.nodes:
            n.stop()

    def expect(self, addr, status, route, body=None, token=None):
        method, path = route.split(" ", 1)
        a = http(addr, method, path, self.token if token is None else token, body)
        if a.status != status:
            raise SystemExit(f"{route}: expected {status}, got {a}")
        return a.body

    def setup(self, addr):
        self.ops_token = self.expect(addr, 200, "POST /api/auth/login",
                                     {"email": OPS_EMAIL, "password": OPS_PASSWORD, "tenant": TENANT},
                                     token="")["access_token"]
        self.token = self.expect(addr, 200, "POST /api/auth/login",
                                 {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "tenant": TENANT},
                                 token="")["access_token"]
        self.expect(addr, 200, "PUT /api/billing/settings", {
            "legal_name": "Acme Hosting GmbH", "address_lines": ["Hauptstr. 1", "10115 Berlin"],
            "country": "DE", "tax_id": "DE123456789", "tax_mode": "EXCLUSIVE",
            "tax_rates": {"DE": "0.19"}, "payment_terms_days": 14})
        product = {"name": "Support", "slug": "support", "category": "OTHER",
                   "billing_model": "RECURRING", "status": "ACTIVE", "visibility": "PUBLIC",
                   "base_currency": "EUR"}
        self.product_id = self.expect(addr, 201, "POST /api/billing/products", product)["id"]
        self.expect(addr, 201, f"POST /api/billing/products/{self.product_id}/prices",
                    {"period": "MONTHLY", "currency": "EUR", "amount_minor": PRICE_MINOR})
        self.webhook_secret = self.expect(addr, 200, "POST /api/settings/webhook-secret/rotate")["webhook_secret"]
        # The order's total, tax included, as the site would show it: a
        # probe with a wrong amount is refused and says it (nothing is kept).
        a = self.post_order(addr, "probe-0", self.order_body("probe@example.org", "probe", 1))
        m = re.search(r"order total of (\d+)", json.dumps(a.body))
        if a.status != 422 or not m:
            raise SystemExit(f"order probe: {a}")
        self.order_total = int(m.group(1))

    def order_body(self, email, reference, amount):
        return {"customer": {"email": email, "name": "Jane Doe", "country": "DE"},
                "items": [{"product_id": self.product_id, "period": "MONTHLY"}],
                "currency": "EUR",
                "payment": {"status": "PAID", "provider": "BANK_TRANSFER", "reference": reference,
                            "amount_minor": amount}}

    def post_order(self, addr, key, body):
        raw = json.dumps(body).encode()
        t = int(time.time())
        mac = hmac.new(self.webhook_secret.encode(), f"{t}.{key}.".encode() + raw, hashlib.sha256)
        headers = {"x-mpanel-tenant": TENANT, "x-mpanel-signature": f"t={t},v1={mac.hexdigest()}",
                   "idempotency-key": key}
        return http(addr, "POST", "/api/orders", raw=raw, headers=headers)

    def pages(self, addr, path, token=None):
        items, cursor = [], None
        sep = "&" if "?" in path else "?"
        while True:
            q = f"{path}{sep}limit=200" + (f"&cursor={cursor}" if cursor else "")
            page = self.expect(addr, 200, f"GET {q}", token=token)
            items += page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return items


# --- results ---------------------------------------------------------------------

class Report:
    def __init__(self, scenario, engine):
        self.scenario, self.engine = scenario, engine
        self.checks, self.figures = [], {}

    def check(self, name, ok, detail=""):
        self.checks.append((name, bool(ok), detail))
        log(f"  {'PASS' if ok else 'FAIL'}  {name}" + (f"  ({detail})" if detail else ""))

    def figure(self, name, value):
        self.figures[name] = value

    def print(self):
        log("")
        log(f"== {self.scenario} ({self.engine}) ==")
        for name, ok, detail in self.checks:
            log(f"{'PASS' if ok else 'FAIL'}  {name}" + (f"  ({detail})" if detail else ""))
        for k, v in self.figures.items():
            log(f"      {k}: {v}")
        passed = sum(ok for _, ok, _ in self.checks)
        log(f"{passed}/{len(self.checks)} checks passed")
        log(json.dumps({"bench": "faults", "scenario": self.scenario, "engine": self.engine,
                        "passed": passed, "checks": len(self.checks),
                        "failed": [n for n, ok, _ in self.checks if not ok], **self.figures}))
        return passed == len(self.checks)


# --- the order and payment workload ---------------------------------------------

class Picker:
    """Round-robin over the serve nodes; after no answer, the next one."""

    def __init__(self, addrs):
        self.addrs = list(addrs)
        self.n = itertools.count()
        self.lock = threading.Lock()

    def next(self):
        with self.lock:
            return self.addrs[next(self.n) % len(self.addrs)]


class Op:
    def __init__(self, kind, key, send):
        self.kind, self.key, self.send = kind, key, send
        self.attempts, self.seen, self.final = 0, {}, None
        self.first_sent = self.answered = None


class Workload:
    def __init__(self, panel, tag, args):
        self.panel, self.tag, self.args = panel, tag, args
        self.ops = []
        self.invoices = {}  # invoice id -> customer id
        self.customers = []

    def prepare(self, addr):
        """One customer per payment thread, with its issued invoices."""
        p = self.panel
        for t in range(self.args.pay_threads):
            c = p.expect(addr, 201, "POST /api/customers",
                         {"email": f"payer-{self.tag}-{t}@example.org", "name": f"Payer {t}",
                          "country": "DE", "send_invitation": False})
            self.customers.append(c["id"])
            for i in range(self.args.invoices_per_thread):
                draft = p.expect(addr, 201, "POST /api/billing/invoices", {
                    "customer_id": c["id"], "currency": "EUR",
                    "lines": [{"kind": "ITEM", "description": f"Consulting {self.tag}-{t}-{i}",
                               "quantity": "1", "unit_price": INVOICE_NET}]})
                inv = p.expect(addr, 200, f"POST /api/billing/invoices/{draft['id']}/issue")
                self.invoices[inv["id"]] = c["id"]
        invoices = list(self.invoices)
        per = self.args.invoices_per_thread
        self.order_lanes = []
        for t in range(self.args.order_threads):
            lane = []
            for i in range(self.args.orders_per_thread):
                key = f"ord-{self.tag}-{t}-{i}"
                body = p.order_body(f"buyer-{self.tag}-{t}-{i}@example.org", f"bt-{self.tag}-{t}-{i}",
                                    p.order_total)
                lane.append(Op("order", key, lambda a, k=key, b=body: p.post_order(a, k, b)))
            self.order_lanes.append(lane)
        self.pay_lanes = []
        for t in range(self.args.pay_threads):
            lane = []
            for inv in invoices[t * per:(t + 1) * per]:
                for j, amount in enumerate(PAYMENTS):
                    key = f"pay-{self.tag}-{inv}-{j}"
                    body = {"amount_minor": amount, "provider": "MANUAL"}
                    lane.append(Op("payment", key, lambda a, k=key, b=body, i=inv: http(
                        a, "POST", f"/api/billing/invoices/{i}/pay", p.token, b,
                        headers={"idempotency-key": k})))
                    lane[-1].invoice = inv
            self.pay_lanes.append(lane)
        self.ops = [op for lane in self.order_lanes + self.pay_lanes for op in lane]

    def run_op(self, op, picker):
        op.first_sent = time.monotonic()
        while True:
            addr = picker.next()
            op.attempts += 1
            a = op.send(addr)
            op.seen[a.status] = op.seen.get(a.status, 0) + 1
            retry = a.status in RETRYABLE or (a.status == 409 and a.code == "request_in_flight")
            if not retry:
                op.final, op.answered = a, time.monotonic()
                return
            if time.monotonic() - op.first_sent > OP_DEADLINE_S:
                op.final, op.answered = a, time.monotonic()
                return
            time.sleep(RETRY_S)

    def run(self, picker, fault=None, fault_after=3.0):
        """All lanes at once; `fault()` is called `fault_after` s in."""
        self.started = time.monotonic()
        lanes = self.order_lanes + self.pay_lanes

        def lane_run(lane):
            for op in lane:
                self.run_op(op, picker)

        with concurrent.futures.ThreadPoolExecutor(max_workers=len(lanes)) as pool:
            futs = [pool.submit(lane_run, lane) for lane in lanes]
            if fault:
                time.sleep(fault_after)
                self.fault_at = time.monotonic()
                fault()
            for f in futs:
                f.result()
        self.wall = time.monotonic() - self.started

    def summary(self, report, prefix=""):
        retried = [op for op in self.ops if op.attempts > 1]
        in_flight = [op for op in self.ops if op.seen.get(409)]
        report.figure(f"{prefix}requests", f"{len(self.ops)} ({sum(o.kind == 'order' for o in self.ops)} orders, "
                                           f"{sum(o.kind == 'payment' for o in self.ops)} payments) in {self.wall:.1f} s")
        statuses = {}
        for op in self.ops:
            for s, n in op.seen.items():
                statuses[s] = statuses.get(s, 0) + n
        report.figure(f"{prefix}answers seen (0 = no answer)", dict(sorted(statuses.items())))
        if retried:
            waits = [op.answered - op.first_sent for op in retried]
            report.figure(f"{prefix}requests retried", f"{len(retried)}; answered after: "
                          f"p50 {pct(waits, 50):.1f} s, max {max(waits):.1f} s; "
                          f"{len(in_flight)} met 409 request_in_flight")
        bad = [op for op in self.ops if op.final is None or op.final.status != 201]
        report.check(f"{prefix}every request answered 201 in the end", not bad,
                     f"{len(bad)} not: " + "; ".join(f"{o.key}: {o.final}" for o in bad[:3]) if bad else
                     f"{len(self.ops)} requests")


def verify_workloads(panel, addr, report, workloads, prefix=""):
    """Exactly once, totals, credit, numbering: over the API, plus SQL counts."""
    p = panel
    orders_api = p.pages(addr, "/api/orders")
    invoices = {i["id"]: i for i in p.pages(addr, "/api/billing/invoices")}
    order_ops = [op for w in workloads for op in w.ops if op.kind == "order"]
    pay_ops = [op for w in workloads for op in w.ops if op.kind == "payment"]

    # Orders: one per key, each answered id present once, each invoice paid.
    answered = [op.final.body["order_id"] for op in order_ops if op.final and op.final.status == 201]
    keys = [op.key for op in order_ops]
    key_list = ",".join("'" + k + "'" for k in keys)
    in_db = p.db.scalar(f"SELECT count(*) FROM orders WHERE idempotency_key IN ({key_list})")
    distinct = p.db.scalar(f"SELECT count(DISTINCT idempotency_key) FROM orders WHERE idempotency_key IN ({key_list})")
    api_ids = [o["id"] for o in orders_api]
    report.check(f"{prefix}every order exists exactly once",
                 len(set(answered)) == len(keys) and in_db == len(keys) and distinct == len(keys)
                 and set(answered) <= set(api_ids) and len(api_ids) == len(set(api_ids)),
                 f"{len(keys)} keys, {len(set(answered))} order ids answered, {in_db} rows for the keys "
                 f"({distinct} distinct keys), {len(api_ids)} orders listed")
    order_invoices = [op.final.body["invoice_id"] for op in order_ops if op.final and op.final.status == 201]
    unpaid = [i for i in order_invoices
              if invoices.get(i, {}).get("status") != "PAID"
              or invoices[i]["paid_minor"] != invoices[i]["total_minor"]
              or invoices[i]["total_minor"] != p.order_total]
    report.check(f"{prefix}every order's invoice PAID once, for its total", not unpaid,
                 f"{len(order_invoices)} invoices of {p.order_total} minor" +
                 (f"; wrong: {[invoices.get(i) for i in unpaid[:2]]}" if unpaid else ""))

    # Payments: each invoice has exactly its three, each answered id once.
    pay_ids = [op.final.body["payment_id"] for op in pay_ops if op.final and op.final.status == 201]
    wrong, seen_ids, credit_expected = [], [], {}
    per_invoice = {}
    for w in workloads:
        for inv, cust in w.invoices.items():
            per_invoice[inv] = cust
    for inv, cust in per_invoice.items():
        mv = p.expect(addr, 200, f"GET /api/billing/invoices/{inv}/payments")
        pays = mv.get("payments", [])
        seen_ids += [x["id"] for x in pays]
        amounts = sorted(x["amount_minor"] for x in pays)
        applied = sum(x["applied_minor"] for x in pays)
        view = invoices.get(inv) or p.expect(addr, 200, f"GET /api/billing/invoices/{inv}")
        total = view["total_minor"]
        credit_expected[cust] = credit_expected.get(cust, 0) + sum(amounts) - applied
        ok = (amounts == sorted(PAYMENTS) and applied == total == view["paid_minor"]
              and view["status"] == "PAID" and view["amount_due_minor"] == 0
              and total == view["subtotal_minor"] + view["tax_minor"])
        if not ok:
            wrong.append((inv, amounts, applied, view["status"], view["paid_minor"], total))
    payments_db = p.db.scalar("SELECT count(*) FROM payments WHERE provider = 'MANUAL'")
    report.check(f"{prefix}every payment exists exactly once",
                 len(set(pay_ids)) == len(pay_ops) and sorted(set(pay_ids)) == sorted(set(seen_ids))
                 and len(seen_ids) == len(pay_ops) and payments_db == len(pay_ops),
                 f"{len(pay_ops)} payment requests, {len(set(pay_ids))} ids answered, {len(seen_ids)} listed "
                 f"on their invoices, {payments_db} MANUAL payments in the database")
    report.check(f"{prefix}invoice totals add up (3 payments, paid = total = net + tax, due 0)", not wrong,
                 f"{len(per_invoice)} invoices" + (f"; wrong: {wrong[:3]}" if wrong else ""))

    # Credit: the API's balance is the sum of the overpayments; the ledger
    # adds up to every balance (SQL: the API shows no ledger).
    bad_credit, bad_view = [], []
    for cust, expected in credit_expected.items():
        cr = p.expect(addr, 200, f"GET /api/billing/customers/{cust}/credit")
        bal = sum(b["balance_minor"] for b in cr["balances"] if b["currency"] == "EUR")
        if bal != expected:
            bad_credit.append((cust, expected, bal))
        # The customer view names no balance (credit is per currency).
        cv = p.expect(addr, 200, f"GET /api/customers/{cust}")
        if "credit_balance_minor" in cv:
            bad_view.append((cust, expected, cv.get("credit_balance_minor")))
    ledger_off = p.db.scalar(
        "SELECT count(*) FROM (SELECT customer_id, currency, sum(delta_minor) AS s FROM credit_ledger "
        "GROUP BY customer_id, currency) l JOIN customer_credit c "
        "ON c.customer_id = l.customer_id AND c.currency = l.currency WHERE l.s <> c.balance_minor")
    report.check(f"{prefix}credit balances add up (overpayments = balance = ledger)", not bad_credit and ledger_off == 0,
                 f"{len(credit_expected)} customers, {sum(credit_expected.values())} minor in all; "
                 f"{ledger_off} balances off their ledger" + (f"; wrong: {bad_credit[:3]}" if bad_credit else ""))
    report.check(f"{prefix}GET /api/customers/{{id}} shows no stale single credit balance", not bad_view,
                 f"{len(bad_view)} of {len(credit_expected)} differ, e.g. (customer, expected, shown) {bad_view[:1]}")
    numbering(report, invoices, prefix)
    return {"orders": len(keys), "order_invoices_paid": len(order_invoices) - len(unpaid),
            "payments": len(seen_ids), "credit_minor": sum(credit_expected.values()),
            "invoices_issued": sum(1 for i in invoices.values() if i["number"]),
            "sum_total_minor": sum(i["total_minor"] for i in invoices.values()),
            "sum_paid_minor": sum(i["paid_minor"] for i in invoices.values())}


def numbering(report, invoices, prefix=""):
    numbers = sorted(i["number"] for i in invoices.values() if i["number"])
    seqs = sorted(int(n.rsplit("-", 1)[1]) for n in numbers)
    years = {n.rsplit("-", 2)[1] for n in numbers}
    report.check(f"{prefix}invoice numbers have no gap and no duplicate",
                 seqs == list(range(1, len(seqs) + 1)) and len(years) <= 1,
                 f"{len(seqs)} issued, {numbers[0] if numbers else '-'} … {numbers[-1] if numbers else '-'}")


def jobs_settle(panel, addr, report, grace, prefix=""):
    """Waits up to `grace` s until no job is RUNNING or due (PENDING/FAILED
    with run_at in the past); DEAD ones fail the check."""
    start = time.monotonic()
    while True:
        now = time.time()
        left = {}
        for state in ("RUNNING", "PENDING", "FAILED"):
            for j in panel.pages(addr, f"/api/ops/jobs?state={state}", panel.ops_token):
                due = time.mktime(time.strptime(j["run_at"][:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone <= now
                if state == "RUNNING" or due:
                    left[state] = left.get(state, []) + [j]
        if not left or time.monotonic() - start > grace:
            break
        time.sleep(1)
    waited = time.monotonic() - start
    dead = panel.pages(addr, "/api/ops/jobs?state=DEAD", panel.ops_token)
    done = panel.pages(addr, "/api/ops/jobs?state=COMPLETED", panel.ops_token)
    kinds = {}
    for j in done:
        kinds[j["kind"]] = kinds.get(j["kind"], 0) + 1
    report.check(f"{prefix}every job due finished (none running, due, or dead)", not left and not dead,
                 f"after {waited:.0f} s: {len(done)} COMPLETED {kinds}; left: "
                 f"{ {k: len(v) for k, v in left.items()} }; DEAD {len(dead)}"
                 + (f" e.g. {left[next(iter(left))][0]['kind']} {left[next(iter(left))][0].get('last_error')}"
                    if left else "")
                 + (f" e.g. {dead[0]['kind']}: {dead[0].get('last_error')}" if dead else ""))
    report.figure(f"{prefix}jobs settled after", f"{waited:.0f} s")


# --- scenarios ----------------------------------------------------------------------

def scenario_kill9(args, workdir):
    report = Report("kill9", args.engine)
    panel = Panel(args.bin, args.database_url, workdir)
    node = panel.serve("serve")
    panel.setup(node.addr)
    log(f"[kill9/{args.engine}] preparing {args.pay_threads * args.invoices_per_thread} invoices")
    w = Workload(panel, "k", args)
    w.prepare(node.addr)
    picker = Picker([node.addr])
    times = {}

    def fault():
        log(f"[kill9/{args.engine}] kill -9 serve (pid {node.proc.pid}) {args.fault_after:g} s in")
        done = sum(1 for op in w.ops if op.final is not None)
        node.kill9()
        times["killed"] = time.monotonic()
        report.figure("answered before the kill", f"{done} of {len(w.ops)}")
        node.start()
        times["restarted"] = time.monotonic()
        log(f"[kill9/{args.engine}] serving again after {times['restarted'] - times['killed']:.2f} s (same port)")

    log(f"[kill9/{args.engine}] {args.order_threads} order threads, {args.pay_threads} payment threads")
    w.run(picker, fault, args.fault_after)
    report.figure("restart to serving", f"{times['restarted'] - times['killed']:.2f} s")
    w.summary(report)
    verify_workloads(panel, node.addr, report, [w])
    jobs_settle(panel, node.addr, report, args.grace)
    panel.stop_all()
    return report


def scenario_two_nodes(args, workdir):
    report = Report("two-nodes", "postgres")
    # One node, the reference: the same workload on a database of its own.
    one = Panel(args.bin, args.database_url, os.path.join(workdir, "one"))
    node = one.serve("one")
    one.setup(node.addr)
    w1 = Workload(one, "n", args)
    w1.prepare(node.addr)
    log("[two-nodes] reference: one serve node (workers in-process)")
    w1.run(Picker([node.addr]))
    w1.summary(report, "one node: ")
    f1 = verify_workloads(one, node.addr, report, [w1], "one node: ")
    one.stop_all()

    two = Panel(args.bin, args.second_database_url, os.path.join(workdir, "two"))
    a = two.serve("serve-a", workers=False)
    b = two.serve("serve-b", workers=False)
    worker = two.node("worker", ["worker"]).start()
    two.setup(a.addr)
    w2 = Workload(two, "n", args)
    w2.prepare(a.addr)
    log(f"[two-nodes] two serve --no-workers ({a.addr}, {b.addr}) + one worker (pid {worker.proc.pid}), round-robin")
    w2.run(Picker([a.addr, b.addr]))
    w2.summary(report, "two nodes: ")
    f2 = verify_workloads(two, b.addr, report, [w2], "two nodes: ")
    report.check("two nodes give the same end results as one", f1 == f2, f"one {f1}; two {f2}")
    report.figure("end results", f2)

    w3 = Workload(two, "m", args)
    w3.prepare(a.addr)
    log(f"[two-nodes] again, and kill -9 serve-a {args.fault_after:g} s in")

    def fault():
        a.kill9()
        report.figure("killed serve-a after", f"{sum(1 for op in w3.ops if op.final is not None)} of "
                      f"{len(w3.ops)} answered")

    w3.run(Picker([a.addr, b.addr]), fault, args.fault_after)
    w3.summary(report, "one node killed: ")
    verify_workloads(two, b.addr, report, [w2, w3], "one node killed: ")
    jobs_settle(two, b.addr, report, args.grace)
    two.stop_all()
    return report


def pg_ctl(pgdata, action):
    """pg_ctl as the cluster's owner, with the options it was started with."""
    with open(os.path.join(pgdata, "postmaster.opts")) as f:
        argv = shlex.split(f.read())
    bindir = os.path.dirname(argv[0])
    opts = []
    rest = argv[1:]
    i = 0
    while i < len(rest):
        if rest[i] == "-D":
            i += 2
            continue
        opts.append(rest[i])
        i += 1
    cmd = [os.path.join(bindir, "pg_ctl"), "-D", pgdata, "-w", "-t", "60"]
    if action == "stop":
        cmd += ["-m", "fast", "stop"]
    else:
        cmd += ["-l", os.path.join(os.path.dirname(pgdata), "server.log"),
                "-o", " ".join(shlex.quote(o) for o in opts), "start"]
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"pg_ctl {action}: {out.stdout}{out.stderr}")
    return opts


def scenario_pg_restart(args, workdir):
    report = Report("pg-restart", "postgres")
    panel = Panel(args.bin, args.database_url, workdir)
    node = panel.serve("serve")
    panel.setup(node.addr)
    addr = node.addr
    c = panel.expect(addr, 201, "POST /api/customers",
                     {"email": "reader@example.org", "name": "Reader", "country": "DE", "send_invitation": False})
    draft = panel.expect(addr, 201, "POST /api/billing/invoices", {
        "customer_id": c["id"], "currency": "EUR",
        "lines": [{"kind": "ITEM", "description": "x", "quantity": "1", "unit_price": "10.00"}]})
    invoice = draft["id"]

    stop = threading.Event()
    events = []  # (t_sent, t_done, kind, Answer)
    created = []  # (id, email) of writes answered 201
    lock = threading.Lock()

    def reader(t):
        for i in itertools.count():
            if stop.is_set():
                return
            path = "/api/auth/me" if i % 2 else f"/api/billing/invoices/{invoice}"
            t0 = time.monotonic()
            a = http(addr, "GET", path, panel.token, timeout=40)
            with lock:
                events.append((t0, time.monotonic(), "read", a))

    def writer(t):
        for i in itertools.count():
            if stop.is_set():
                return
            email = f"w-{t}-{i}@example.org"
            t0 = time.monotonic()
            a = http(addr, "POST", "/api/customers", panel.token,
                     {"email": email, "name": f"Writer {t} {i}", "country": "DE", "send_invitation": False},
                     timeout=40)
            with lock:
                events.append((t0, time.monotonic(), "write", a))
                if a.status == 201:
                    created.append((a.body["id"], email))

    ready = []  # (t, status)

    def prober():
        while not stop.is_set():
            t0 = time.monotonic()
            a = http(addr, "GET", "/api/ready", timeout=10)
            ready.append((t0, time.monotonic(), a))
            time.sleep(0.1)

    threads = [threading.Thread(target=reader, args=(t,)) for t in range(args.threads // 2)]
    threads += [threading.Thread(target=writer, args=(t,)) for t in range(args.threads - args.threads // 2)]
    threads.append(threading.Thread(target=prober))
    for th in threads:
        th.start()
    log(f"[pg-restart] {args.threads} threads (half reads, half writes) for {args.fault_after:g} s, "
        f"then PostgreSQL stopped (-m fast) for {args.outage:g} s and started")
    time.sleep(args.fault_after)
    t_stop = time.monotonic()
    pg_ctl(args.pgdata, "stop")
    t_down = time.monotonic()
    time.sleep(args.outage)
    t_start = time.monotonic()
    pg_ctl(args.pgdata, "start")
    t_up = time.monotonic()
    log(f"[pg-restart] stop took {t_down - t_stop:.2f} s, start {t_up - t_start:.2f} s; load continues")
    # Recovery: the first request sent after PostgreSQL is back that
    # succeeds, for reads, writes and /api/ready.
    deadline = t_up + 60
    while time.monotonic() < deadline:
        with lock:
            ok_w = [e for e in events if e[2] == "write" and e[0] >= t_up and 200 <= e[3].status < 300]
            ok_r = [e for e in events if e[2] == "read" and e[0] >= t_up and 200 <= e[3].status < 300]
        ok_ready = [r for r in ready if r[0] >= t_up and r[2].status == 200]
        if ok_w and ok_r and ok_ready:
            break
        time.sleep(0.1)
    time.sleep(3)
    stop.set()
    for th in threads:
        th.join()

    def first_ok(kind):
        xs = [e[1] for e in events if e[2] == kind and e[0] >= t_up and 200 <= e[3].status < 300]
        return min(xs) - t_up if xs else None

    rec = {"read": first_ok("read"), "write": first_ok("write")}
    rr = [r[1] for r in ready if r[0] >= t_up and r[2].status == 200]
    rec["ready"] = min(rr) - t_up if rr else None
    # Requests that overlapped the outage (sent before PostgreSQL was back
    # and answered after the stop began).
    affected = [e for e in events if e[1] >= t_stop and e[0] <= t_up]
    failed = [e for e in events if not 200 <= e[3].status < 300]
    by = {}
    for e in failed:
        k = (e[3].status, e[3].code or e[3].error[:40], e[3].ctype.split(";")[0])
        by[k] = by.get(k, 0) + 1
    report.figure("requests", f"{len(events)} ({sum(1 for e in events if e[2] == 'write')} writes), "
                  f"{len(affected)} overlapping the outage, {len(failed)} not 2xx")
    report.figure("failures by (status, code, content type)", {str(k): v for k, v in by.items()})
    report.figure("outage", f"stop {t_down - t_stop:.2f} s + down {args.outage:g} s + start {t_up - t_start:.2f} s")
    report.figure("recovery after PostgreSQL is back (first 2xx sent after)",
                  ", ".join(f"{k} {v:.2f} s" if v is not None else f"{k} never" for k, v in rec.items()))
    n500 = sum(1 for e in failed if e[3].status >= 500 and e[3].status != 503)
    dropped = sum(1 for e in failed if e[3].status == 0)
    not_problem = sum(1 for e in failed if e[3].status != 0 and not e[3].ctype.startswith(PROBLEM))
    report.check("requests during the outage fail with 503 only (no 500, no other 5xx)", n500 == 0,
                 f"{sum(1 for e in failed if e[3].status == 503)} × 503, {n500} other 5xx")
    report.check("no connection dropped or timed out", dropped == 0, f"{dropped} without an answer")
    report.check("every failure has an application/problem+json body", not_problem == 0,
                 f"{not_problem} without")
    other = sum(1 for e in failed if 0 < e[3].status < 500)
    report.check("no 4xx caused by the outage", other == 0, f"{other} 4xx")
    # Probes sent while it was down and answered before it was started
    # again (a probe waits up to 2 s for the database).
    during = [r for r in ready if r[0] >= t_down and r[1] <= t_start]
    report.check("/api/ready answers 503 while PostgreSQL is away",
                 during and all(r[2].status == 503 and r[2].ctype.startswith(PROBLEM) for r in during),
                 f"{len(during)} probes: {sorted({(r[2].status, r[2].code) for r in during})}")
    report.figure("/api/ready probes sent while down (answer after s)",
                  [(r[2].status, round(r[1] - r[0], 2)) for r in ready if t_down <= r[0] < t_start])
    report.check("serves again without a restart within 10 s of PostgreSQL being back",
                 all(v is not None and v < 10 for v in rec.values()) and node.proc.poll() is None,
                 ", ".join(f"{k} {v:.2f} s" if v is not None else f"{k} never" for k, v in rec.items()))
    missing = []
    for cid, email in created:
        a = http(addr, "GET", f"/api/customers/{cid}", panel.token)
        if a.status != 200 or a.body.get("email") != email:
            missing.append((cid, a.status))
    count = panel.db.scalar("SELECT count(*) FROM customers WHERE email LIKE 'w-%@example.org'")
    report.check("every write answered 2xx is there afterwards", not missing and count >= len(created),
                 f"{len(created)} customers created with a 2xx, {len(missing)} missing, {count} rows in the database")
    panel.stop_all()
    return report


def scenario_disk_full(args, workdir):
    report = Report("disk-full", "sqlite")
    mount = args.mount
    db_path = os.path.join(mount, "mpanel.db")
    panel = Panel(args.bin, f"sqlite://{db_path}", workdir)
    node = panel.serve("serve")
    addr = node.addr
    panel.setup(addr)
    c = panel.expect(addr, 201, "POST /api/customers",
                     {"email": "first@example.org", "name": "First", "country": "DE", "send_invitation": False})
    st = os.statvfs(mount)
    free = st.f_bavail * st.f_frsize
    filler = os.path.join(mount, "filler")
    size = max(0, free - args.headroom_kb * 1024)
    with open(filler, "wb") as f:
        f.write(b"\0" * size)
    log(f"[disk-full] tmpfs {mount}: {st.f_blocks * st.f_frsize // 1024} KiB; database "
        f"{os.path.getsize(db_path) // 1024} KiB; filler {size // 1024} KiB leaves {args.headroom_kb} KiB")
    created, fails = [c["id"]], []
    t0 = time.monotonic()
    consecutive = 0
    for i in itertools.count():
        a = http(addr, "POST", "/api/customers", panel.token,
                 {"email": f"fill-{i}@example.org", "name": "N" * 200, "company": "C" * 200,
                  "country": "DE", "send_invitation": False})
        if a.status == 201:
            created.append(a.body["id"])
            consecutive = 0
        else:
            fails.append(a)
            consecutive += 1
        if consecutive >= 20 or time.monotonic() - t0 > 120:
            break
    st = os.statvfs(mount)
    log(f"[disk-full] {len(created) - 1} customers written, then {consecutive} writes in a row refused; "
        f"{st.f_bavail * st.f_frsize // 1024} KiB free")
    kinds = {}
    for a in fails:
        k = f"{a.status} {a.code} {a.ctype.split(';')[0]}"
        kinds[k] = kinds.get(k, 0) + 1
    report.figure("writes refused while full (status code content-type)", kinds)
    if fails:
        report.figure("one refusal", fails[-1].body)
    report.check("the disk filled (writes refused)", consecutive >= 20, f"{len(created) - 1} written first")
    report.check("refused writes answer a problem (4xx/5xx, problem+json, not 500 internal)",
                 fails and all(a.status >= 400 and a.ctype.startswith(PROBLEM) and a.status != 500 for a in fails),
                 ", ".join(kinds))
    reads = {
        "GET /api/auth/me": http(addr, "GET", "/api/auth/me", panel.token),
        "GET /api/customers/{id}": http(addr, "GET", f"/api/customers/{created[-1]}", panel.token),
        "GET /api/customers?limit=50": http(addr, "GET", "/api/customers?limit=50", panel.token),
        "GET /api/billing/invoices": http(addr, "GET", "/api/billing/invoices", panel.token),
        "GET /api/ready": http(addr, "GET", "/api/ready"),
    }
    report.check("reads still work while full", all(a.status == 200 for a in reads.values()),
                 ", ".join(f"{k} {a.status}" for k, a in reads.items()))
    login = http(addr, "POST", "/api/auth/login", "", {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "tenant": TENANT})
    report.figure("login while full (writes a session)", f"{login.status} {login.code or ''}")
    os.remove(filler)
    t_freed = time.monotonic()
    again = None
    for i in itertools.count():
        a = http(addr, "POST", "/api/customers", panel.token,
                 {"email": f"after-{i}@example.org", "name": "After", "country": "DE", "send_invitation": False})
        if a.status == 201:
            again = time.monotonic() - t_freed
            created.append(a.body["id"])
            break
        if time.monotonic() - t_freed > 30:
            break
        time.sleep(0.1)
    report.check("writes succeed again once space is freed, without a restart",
                 again is not None and node.proc.poll() is None,
                 f"first 201 {again:.2f} s after the filler was deleted" if again is not None else f"still {a}")
    report.figure("writes work again after freeing", f"{again:.2f} s" if again is not None else "never")
    more = [http(addr, "POST", "/api/customers", panel.token,
                 {"email": f"more-{i}@example.org", "name": "More", "country": "DE", "send_invitation": False})
            for i in range(20)]
    report.check("and keep succeeding (20 more writes)", all(a.status == 201 for a in more),
                 f"{sum(a.status == 201 for a in more)} of 20")
    created += [a.body["id"] for a in more if a.status == 201]
    missing = [cid for cid in created if http(addr, "GET", f"/api/customers/{cid}", panel.token).status != 200]
    report.check("every write answered 201 is there", not missing, f"{len(created)} created, {len(missing)} missing")
    login = http(addr, "POST", "/api/auth/login", "", {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "tenant": TENANT})
    report.check("login works again", login.status == 200, f"{login.status}")
    panel.stop_all()
    conn = sqlite3.connect(db_path)
    try:
        integrity = conn.execute("PRAGMA integrity_check").fetchall()
        fk = conn.execute("PRAGMA foreign_key_check").fetchall()
    finally:
        conn.close()
    report.check("PRAGMA integrity_check says ok (after serve stopped)", integrity == [("ok",)], str(integrity[:3]))
    report.check("PRAGMA foreign_key_check finds nothing", not fk, str(fk[:3]))
    return report


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("scenario", choices=["kill9", "pg-restart", "disk-full", "two-nodes"])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--engine", default="sqlite", choices=["sqlite", "postgres"])
    ap.add_argument("--database-url", help="default: a SQLite file in the work folder")
    ap.add_argument("--second-database-url", help="two-nodes: the two-node run's database")
    ap.add_argument("--pgdata", help="pg-restart: the throwaway cluster's data folder")
    ap.add_argument("--mount", help="disk-full: the small tmpfs the database goes on")
    ap.add_argument("--headroom-kb", type=int, default=1024, help="disk-full: free space left by the filler")
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--order-threads", type=int, default=16)
    ap.add_argument("--orders-per-thread", type=int, default=60)
    ap.add_argument("--pay-threads", type=int, default=16)
    ap.add_argument("--invoices-per-thread", type=int, default=12)
    ap.add_argument("--threads", type=int, default=16, help="pg-restart: client threads")
    ap.add_argument("--fault-after", type=float, default=3.0, help="seconds of load before the fault")
    ap.add_argument("--outage", type=float, default=5.0, help="pg-restart: seconds PostgreSQL stays down")
    ap.add_argument("--grace", type=float, default=120.0, help="seconds jobs get to finish afterwards")
    args = ap.parse_args()
    args.bin = os.path.abspath(args.bin)
    os.makedirs(args.workdir, exist_ok=True)
    if args.database_url is None:
        args.database_url = f"sqlite://{os.path.join(args.workdir, 'mpanel.db')}"
    for sub in ("one", "two"):
        os.makedirs(os.path.join(args.workdir, sub), exist_ok=True)
    run = {"kill9": scenario_kill9, "pg-restart": scenario_pg_restart,
           "disk-full": scenario_disk_full, "two-nodes": scenario_two_nodes}[args.scenario]
    report = run(args, args.workdir)
    sys.exit(0 if report.print() else 1)


if __name__ == "__main__":
    main()
