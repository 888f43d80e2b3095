#!/usr/bin/env python3
"""mPanel under load (issue 19, "Under load"), on one engine.

Run by bench/load.sh. Standard library only, plus wrk (Debian's) driven by
bench/load/load.lua, and the bare reference bench/bare_invoice. Reuses the
billing benchmark's helpers (bench/billing/run.py: the binary's CLI, the
API client).

1. Setup. `mpanel migrate`; a tenant `acme` (Europe/Berlin, EUR) and a
   TENANT_ADMIN made with `mpanel admin`; `mpanel serve` (with its workers,
   as deployed) with the default rate limit (1,200 requests a minute per
   client address, burst 100) and `trust_forwarded_for` on: the load comes
   from one host, so each request names a client in X-Forwarded-For, as a
   load balancer in front would (4,096 addresses in turn per path), except
   the logins, which all come from one address. RSS (VmRSS in
   /proc/PID/status) 3 s after it listens: "idle". Then through the API:
   billing settings (DE, VAT 19 %), the RECURRING product "Web Pro" (EUR
   15.00 a month) and the USAGE_BASED "Bandwidth", the order webhook's
   secret, 20 customers each with a "Bandwidth" subscription, and 60
   issued invoices (two lines each).
2. Load: DURATION s (60) at CONNS connections (256), one wrk process per
   path (-t1), all at once, each with its share of the connections:
   - GET /api/auth/me, GET /api/billing/invoices/{id} (one of the 60, in
     turn), GET /api/billing/invoices (a page of 50): the admin's bearer
     token;
   - GET /api/public/products?tenant=acme&currency=EUR: no credentials;
   - POST /api/orders: a paid (bank transfer) order of "Web Pro" by a new
     customer, signed as the marketing site signs (HMAC-SHA256 of
     "<t>.<Idempotency-Key>.<body>" with the webhook secret), each with its
     own key, written beforehand (more than the run can send; a wrap-around
     would be answered as a replay, and is counted);
   - POST /api/billing/usage/batch: 100 records, each key unique;
   - POST /api/auth/login with the right password of 16 staff users (made
     with `mpanel admin create-user`, in turn), from one address, an eighth
     of the connections (2 to 16), each waiting so that LOGIN_RATE a second
     (40) would be offered in all if answers took no time: above the rate
     limit's 20 a second once its burst of 100 is spent, so 429s are
     expected (the limit working, not failures). Each login hashes (argon2,
     19 MiB, ~50 ms of a core), so under full load the answers' own time
     brings the offered rate down (the table says what it was).
   Per path: requests/s, statuses, socket errors (connect, read, write,
   timeout after 10 s), p50 and p99 latency as wrk measures them (from
   sending to the whole answer). Every answer must be the path's success
   status (429 allowed on the logins only); 5xx and socket errors are
   counted and printed with serve's log lines. RSS sampled every second:
   the peak and the value when the load ends.
3. Comparison, 5 s after the load, on the same database: GET
   /api/billing/invoices/{id} (one invoice, authenticated, through every
   middleware; the answer includes its lines) against the bare handler
   (bench/bare_invoice: axum + sqlx, the same row by primary key, the same
   columns, no auth) at 16 connections, COMPARE s (20) each, mPanel first,
   with the same wrk. Requests/s of both, the ratio (target >= 70 %), and
   mPanel's p99 (target < 10 ms on PostgreSQL).
With --soak S (SOAK=600 bash bench/load.sh): instead of 2 and 3, a
warm-up of W seconds (--soak-warmup, SOAK_WARMUP, 120) then S seconds, of
every path at 16 connections in all (segments of at most 60 s, fresh
signed orders each), RSS every 30 s. The growth (target < 10 %) is from
the sample at the warm-up's end to the last: in the first minute the
bounded caches fill (SQLite's page caches, one 19 MiB block per password
hashing thread, the allocator's arenas), which is a level reached, not
growth. The growth from the first sample (30 s) is printed too.

Prints progress, a Markdown table and one JSON line (`{"bench": "load", ...}`).
"""

import argparse
import hashlib
import hmac
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "billing"))
import run as billing  # noqa: E402  (bench/billing/run.py)

from run import Panel, log  # noqa: E402

LUA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "load.lua")
IDLE_TARGET_MB, LOAD_TARGET_MB, SOAK_GROWTH_TARGET = 40, 200, 10.0
RATIO_TARGET, P99_TARGET_MS = 70.0, 10.0
CUSTOMERS, INVOICES, USAGE_BATCH = 20, 60, 100
WRK_TIMEOUT = "10s"
ORDERS_PER_SECOND_MAX = 400  # more signed orders than any run here placed
# Path name → (method, share of the connections, success statuses).
PATHS = {
    "GET /api/auth/me": 4,
    "GET /api/billing/invoices/{id}": 4,
    "GET /api/billing/invoices (page of 50)": 4,
    "GET /api/public/products": 4,
    "POST /api/orders (signed)": 3,
    "POST /api/billing/usage/batch (100)": 3,
}
OK = {"POST /api/orders (signed)": {201}, "POST /api/billing/usage/batch (100)": {202},
      "POST /api/auth/login (rate limited)": {200, 429}}
LOGIN = "POST /api/auth/login (rate limited)"
LOGIN_USERS_N = 16
# The logins are spread over this many staff users (an account allows 5
# attempts in flight before it locks: more than that at once is refused
# as "too many failed logins", so one account would be throttled, not
# rate limited).
LOGIN_USERS = [f"staff{i}@acme.test" for i in range(LOGIN_USERS_N)]
# ONLY=orders,usage: only the paths whose name contains one of these (to
# look at one path alone while developing).
ONLY = [o for o in os.environ.get("ONLY", "").split(",") if o]
# SERVE_LOG_LEVEL=warn: serve's log_level (default: serve's own, info,
# which logs a line per request).
SERVE_LOG_LEVEL = os.environ.get("SERVE_LOG_LEVEL", "")
# SERVE_POOL=4: serve's database_max_connections (default: serve's own).
SERVE_POOL = os.environ.get("SERVE_POOL", "")


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class LoadPanel(Panel):
    """`mpanel serve` as deployed: workers on, the default rate limit,
    behind a load balancer that sets X-Forwarded-For."""

    def serve(self):
        self.addr = f"127.0.0.1:{billing.free_port()}"
        self.log_path = os.path.join(self.dir, "serve.log")
        self.log = open(self.log_path, "wb")
        env = dict(self.env, MPANEL_LISTEN=self.addr, MPANEL_TRUST_FORWARDED_FOR="true",
                   **({"MPANEL_LOG_LEVEL": SERVE_LOG_LEVEL} if SERVE_LOG_LEVEL else {}),
                   **({"MPANEL_DATABASE_MAX_CONNECTIONS": SERVE_POOL} if SERVE_POOL else {}))
        self.server = subprocess.Popen([self.binary, "serve"], cwd=self.dir, env=env,
                                       stdin=subprocess.DEVNULL, stdout=self.log,
                                       stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                self.fail("mpanel serve exited")
            try:
                socket.create_connection(self.addr.split(":"), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        self.fail("mpanel serve did not listen within 60 s")

    def request(self, method, path, token="", body=None):
        """As the billing benchmark's, from a client address of its own each
        time (the setup's requests would pass the rate limit from one)."""
        self.calls = getattr(self, "calls", 0) + 1
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"http://{self.addr}{path}", data=data, method=method)
        req.add_header("x-forwarded-for", f"10.250.{self.calls // 256 % 256}.{self.calls % 256}")
        if data is not None:
            req.add_header("content-type", "application/json")
        if token:
            req.add_header("authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=60) as res:
                status, text = res.status, res.read().decode()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read().decode()
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text


def raw(method, path, host, headers, body=b""):
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if method != "GET":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Scenario:
    """Everything the load needs, made through the API."""

    def __init__(self, panel):
        self.panel = panel
        self.admin = panel.login()
        p = panel
        settings = {"legal_name": "Acme Hosting GmbH", "address_lines": ["Hauptstr. 1", "10115 Berlin"],
                    "country": "DE", "tax_id": "DE123456789", "tax_mode": "EXCLUSIVE",
                    "tax_rates": {"DE": "0.19"}, "payment_terms_days": 14}
        p.expect(200, self.admin, "PUT /api/billing/settings", settings)
        plan = {"name": "Web Pro", "slug": "web-pro", "category": "HOSTING", "billing_model": "RECURRING",
                "status": "ACTIVE", "visibility": "PUBLIC", "base_currency": "EUR"}
        self.product = p.expect(201, self.admin, "POST /api/billing/products", plan)["id"]
        p.expect(201, self.admin, f"POST /api/billing/products/{self.product}/prices",
                 {"period": "MONTHLY", "currency": "EUR", "amount_minor": billing.PLAN_MINOR})
        metered = {"name": "Bandwidth", "slug": "bandwidth", "category": "OTHER",
                   "billing_model": "USAGE_BASED", "status": "ACTIVE", "visibility": "PUBLIC",
                   "base_currency": "EUR", "usage": {"metric": "bandwidth_gb", "unit_price": "0.01"}}
        metered_id = p.expect(201, self.admin, "POST /api/billing/products", metered)["id"]
        p.expect(201, self.admin, f"POST /api/billing/products/{metered_id}/prices",
                 {"period": "MONTHLY", "currency": "EUR", "amount_minor": 0})
        self.secret = p.expect(200, self.admin, "POST /api/settings/webhook-secret/rotate")["webhook_secret"]
        self.customers, self.subs, self.invoices = [], [], []
        for i in range(CUSTOMERS):
            c = p.expect(201, self.admin, "POST /api/customers",
                         {"email": f"c{i}@load.example", "name": f"Customer {i}", "country": "DE",
                          "send_invitation": False})
            self.customers.append(c["id"])
            s = p.expect(201, self.admin, "POST /api/billing/subscriptions",
                         {"customer_id": c["id"], "product_id": metered_id, "period": "MONTHLY",
                          "currency": "EUR"})
            self.subs.append(s["id"])
        for i in range(INVOICES):
            body = {"customer_id": self.customers[i % CUSTOMERS],
                    "lines": [{"kind": "ITEM", "source": "MANUAL", "description": f"Consulting, job {i}",
                               "quantity": "2", "unit_price": "45.00"},
                              {"kind": "ITEM", "source": "MANUAL", "description": "Domain example.org",
                               "quantity": "1", "unit_price": "12.00"}]}
            made = p.expect(201, self.admin, "POST /api/billing/invoices", body)["id"]
            p.expect(200, self.admin, f"POST /api/billing/invoices/{made}/issue")
            self.invoices.append(made)
        time.sleep(1.1)  # usage may not predate its subscription (whole seconds)
        self.run_tag = uuid.uuid4().hex[:8]
        self.segment = 0

    def token(self):
        return self.panel.login()

    def files(self, work, duration, order_conns):
        """Request files for one segment: {path name: (file, mode)}."""
        self.segment += 1
        host, tag = self.panel.addr, f"{self.run_tag}s{self.segment}"
        token = self.token()
        auth = {"Authorization": f"Bearer {token}", "X-Forwarded-For": "@@IP@@"}
        out = {}

        def write(name, data, mode):
            path = os.path.join(work, f"req-{len(out)}.bin")
            with open(path, "wb") as f:
                f.write(data)
            out[name] = (path, mode)

        write("GET /api/auth/me", raw("GET", "/api/auth/me", host, auth), "template")
        # One invoice per request, in turn: a list of templates would do, but
        # the ids are few, so a list of finished requests is simpler.
        reqs = [raw("GET", f"/api/billing/invoices/{iid}", host,
                    dict(auth, **{"X-Forwarded-For": f"10.9.{k // 256}.{k % 256}"}))
                for k in range(4096) for iid in [self.invoices[k % len(self.invoices)]]]
        write("GET /api/billing/invoices/{id}", b"\0".join(reqs), "list")
        write("GET /api/billing/invoices (page of 50)",
              raw("GET", "/api/billing/invoices?limit=50", host, auth), "template")
        write("GET /api/public/products",
              raw("GET", "/api/public/products?tenant=acme&currency=EUR", host, {"X-Forwarded-For": "@@IP@@"}),
              "template")
        write("POST /api/orders (signed)", b"\0".join(self.orders(tag, max(2000, ORDERS_PER_SECOND_MAX * duration))),
              "list")
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        records = [{"subscription_id": self.subs[j % len(self.subs)], "metric": "bandwidth_gb",
                    "quantity": 1 + j % 7, "occurred_at": now, "idempotency_key": f"{tag}-@@N@@-{j}"}
                   for j in range(USAGE_BATCH)]
        body = json.dumps({"records": records}, separators=(",", ":")).encode()
        length = len(body.replace(b"@@N@@", b"0" * 10))
        usage = raw("POST", "/api/billing/usage/batch", host,
                    dict(auth, **{"Content-Type": "application/json"}), body)
        usage = usage.replace(f"Content-Length: {len(body)}".encode(), f"Content-Length: {length}".encode())
        write("POST /api/billing/usage/batch (100)", usage, "template")
        logins = [raw("POST", "/api/auth/login", host, {"Content-Type": "application/json"},
                      json.dumps({"email": email, "password": billing.ADMIN_PASSWORD,
                                  "tenant": billing.TENANT}).encode()) for email in LOGIN_USERS]
        write(LOGIN, b"\0".join(logins), "list")
        return out

    def orders(self, tag, n):
        """n signed paid orders, each by a new customer with its own key."""
        t = int(time.time())
        host = self.panel.addr
        out = []
        for i in range(n):
            key = f"load-{tag}-{i}"
            body = json.dumps({"customer": {"email": f"o{tag}-{i}@load.example", "name": f"Order {i}",
                                            "country": "DE"},
                               "items": [{"product_id": self.product, "period": "MONTHLY",
                                          "domain": f"o{tag}-{i}.load.example"}],
                               "currency": "EUR",
                               "payment": {"status": "PAID", "provider": "BANK_TRANSFER",
                                           "reference": key, "amount_minor": 1785}},
                              separators=(",", ":")).encode()
            mac = hmac.new(self.secret.encode(), f"{t}.{key}.".encode() + body, hashlib.sha256).hexdigest()
            out.append(raw("POST", "/api/orders", host,
                           {"Content-Type": "application/json", "X-Mpanel-Tenant": billing.TENANT,
                            "X-Mpanel-Signature": f"t={t},v1={mac}", "Idempotency-Key": key,
                            "X-Forwarded-For": f"10.{200 + i // 65536 % 50}.{i // 256 % 256}.{i % 256}"},
                           body))
        return out


def wrk(url, conns, duration, file, mode, delay_ms=0):
    cmd = ["wrk", "-t1", f"-c{conns}", f"-d{duration}s", f"--timeout={WRK_TIMEOUT}", "-s", LUA, url,
           "--", file, mode, str(delay_ms)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wrk_result(proc, name):
    out, err = proc.communicate()
    for line in out.splitlines()[::-1]:
        if line.startswith("{"):
            return json.loads(line)
    sys.exit(f"wrk for {name} printed no result:\n{out}\n{err}")


def shares(conns):
    """Connections per path: an eighth for the logins (2 to 16), the rest
    by weight."""
    logins = max(2, min(16, conns // 8))
    rest = max(len(PATHS), conns - logins)
    total = sum(PATHS.values())
    out = {name: max(1, rest * w // total) for name, w in PATHS.items()}
    first = next(iter(out))
    out[first] += rest - sum(out.values())
    out[LOGIN] = logins
    return out


def run_load(panel, sc, work, duration, conns, login_rate):
    """All paths at once for `duration` s; {name: wrk result}, RSS samples."""
    split = shares(conns)
    files = sc.files(work, duration, split["POST /api/orders (signed)"])
    url = f"http://{panel.addr}"
    delay = int(split[LOGIN] * 1000 / login_rate)
    procs = {name: wrk(url, split[name], duration, *files[name],
                       delay_ms=delay if name == LOGIN else 0) for name in split
             if not ONLY or any(o in name for o in ONLY)}
    samples = []
    while any(p.poll() is None for p in procs.values()):
        samples.append(rss_kb(panel.server.pid))
        time.sleep(1)
    samples.append(rss_kb(panel.server.pid))
    results = {name: dict(wrk_result(p, name), conns=split[name]) for name, p in procs.items()}
    return results, samples


def failures(name, r):
    """(5xx, unexpected other statuses, socket errors)."""
    ok = OK.get(name, {200})
    st = {int(k): v for k, v in r["statuses"].items()}
    five = sum(v for k, v in st.items() if k >= 500)
    other = sum(v for k, v in st.items() if k < 500 and k not in ok)
    return five, other, sum(r["errors"].values())


def table(results, duration):
    rows = ["| path | conns | requests/s | statuses | 5xx | socket errors | p50 ms | p99 ms |",
            "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |"]
    for name, r in results.items():
        five, _, errs = failures(name, r)
        st = ", ".join(f"{k}: {v:,}" for k, v in sorted(r["statuses"].items()))
        rps = r["requests"] / (r["duration_us"] / 1e6)
        extra = f" ({r['replayed']:,} replayed)" if r["replayed"] else ""
        rows.append(f"| {name} | {r['conns']} | {rps:,.0f} | {st}{extra} | {five} | {errs} | "
                    f"{r['latency_us']['p50'] / 1000:.2f} | {r['latency_us']['p99'] / 1000:.2f} |")
    return "\n".join(rows)


def server_errors(panel, n=12):
    """serve's log lines at WARN or ERROR: counts by kind, the ERRORs and
    the last few WARNs."""
    with open(panel.log_path, "rb") as f:
        lines = f.read().decode(errors="replace").splitlines()
    errors = [line for line in lines if " ERROR " in line or "panicked" in line]
    warns = [line for line in lines if " WARN " in line]
    kinds = {}
    for line in errors + warns:
        level = "ERROR" if line in errors else "WARN"
        what = line.split(": ", 2)[-1].split(" db.statement=")[0].split(" acquired_after")[0]
        what = what.split(" summary=")[0][:120]
        kinds[(level, what)] = kinds.get((level, what), 0) + 1
    return kinds, errors[:n] + warns[-n:]


def serve_log_hint(panel):
    return f"all in {panel.log_path} with --keep DIR" if "mpanel-bench-load-" in panel.log_path \
        else f"all in {panel.log_path}"


def compare(panel, sc, work, bare_bin, db_url, duration):
    """mPanel's GET invoice against the bare handler, 16 connections each."""
    port = billing.free_port()
    bare_log = open(os.path.join(work, "bare.log"), "wb")
    bare = subprocess.Popen([bare_bin, db_url, str(port)], stdin=subprocess.DEVNULL, stdout=bare_log,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            if bare.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"bare-invoice did not start: {open(os.path.join(work, 'bare.log')).read()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        time.sleep(5)  # the load's last answers, and the workers' jobs it left, settle
        iid = sc.invoices[0]
        status, body = panel.request("GET", f"/api/billing/invoices/{iid}", sc.token())
        bare_status, bare_body = http_get(port, f"/invoices/{iid}")
        if status != 200 or bare_status != 200 or json.loads(bare_body)["total_minor"] != body["total_minor"]:
            sys.exit(f"the two answers differ: {status} {body}\n{bare_status} {bare_body}")
        token = sc.token()
        mp_file = os.path.join(work, "cmp-mpanel.bin")
        with open(mp_file, "wb") as f:
            f.write(raw("GET", f"/api/billing/invoices/{iid}", panel.addr,
                        {"Authorization": f"Bearer {token}", "X-Forwarded-For": "@@IP@@"}))
        bare_file = os.path.join(work, "cmp-bare.bin")
        with open(bare_file, "wb") as f:
            f.write(raw("GET", f"/invoices/{iid}", f"127.0.0.1:{port}", {}))
        mp = wrk_result(wrk(f"http://{panel.addr}", 16, duration, mp_file, "template"), "mPanel")
        br = wrk_result(wrk(f"http://127.0.0.1:{port}", 16, duration, bare_file, "template"), "bare")
        return mp, br, len(body_bytes(body)), len(bare_body)
    finally:
        bare.send_signal(signal.SIGTERM)
        try:
            bare.wait(timeout=10)
        except subprocess.TimeoutExpired:
            bare.kill()


def body_bytes(v):
    return json.dumps(v, separators=(",", ":")).encode()


def http_get(port, path):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path)
    res = conn.getresponse()
    data = res.read()
    conn.close()
    return res.status, data


def soak(panel, sc, work, seconds, conns, login_rate):
    """Every path at `conns` connections for `seconds` (warm-up included),
    RSS every 30 s."""
    samples, stop = [], threading.Event()
    started = time.monotonic()

    def sampler():
        while not stop.wait(30):
            samples.append((round(time.monotonic() - started), rss_kb(panel.server.pid)))
            log(f"  {samples[-1][0]:>5} s: RSS {samples[-1][1] / 1024:.1f} MB")

    t = threading.Thread(target=sampler, daemon=True)
    t.start()
    totals = {}
    while time.monotonic() - started < seconds:
        left = int(seconds - (time.monotonic() - started))
        if left < 5:
            break
        results, _ = run_load(panel, sc, work, min(60, left), conns, login_rate)
        for name, r in results.items():
            tot = totals.setdefault(name, {"requests": 0, "five": 0, "other": 0, "errors": 0})
            five, other, errs = failures(name, r)
            tot["requests"] += r["requests"]
            tot["five"] += five
            tot["other"] += other
            tot["errors"] += errs
    # Past the end by a little, so the sample due at the end is taken.
    while time.monotonic() - started < seconds + 2:
        time.sleep(0.5)
    stop.set()
    t.join()
    return samples, totals


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--bare", required=True)
    ap.add_argument("--engine", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--database-url")
    ap.add_argument("--duration", type=int, default=60)
    ap.add_argument("--conns", type=int, default=256)
    ap.add_argument("--compare", type=int, default=20, help="seconds per side of the comparison")
    ap.add_argument("--login-rate", type=float, default=40.0)
    ap.add_argument("--soak", type=int, default=0, help="seconds of soak instead of load + comparison")
    ap.add_argument("--soak-conns", type=int, default=16)
    ap.add_argument("--soak-warmup", type=int, default=120,
                    help="seconds of the soak before its RSS baseline (a multiple of 30)")
    ap.add_argument("--keep")
    args = ap.parse_args()
    work = args.keep or tempfile.mkdtemp(prefix="mpanel-bench-load-")
    os.makedirs(work, exist_ok=True)
    url = args.database_url or f"sqlite://{work}/mpanel.db"
    panel = LoadPanel(os.path.abspath(args.bin), url, work)
    out = {"bench": "load", "engine": args.engine}
    try:
        panel.cli("migrate")
        panel.cli("admin", "create-tenant", "--slug", billing.TENANT, "--name", "Acme Hosting",
                  "--timezone", billing.ZONE, "--currency", "EUR")
        panel.cli("admin", "create-user", "--tenant", billing.TENANT, "--email", billing.ADMIN_EMAIL,
                  "--role", "TENANT_ADMIN", "--password", billing.ADMIN_PASSWORD)
        for email in LOGIN_USERS:
            panel.cli("admin", "create-user", "--tenant", billing.TENANT, "--email", email,
                      "--role", "SUPPORT", "--password", billing.ADMIN_PASSWORD)
        panel.serve()
        time.sleep(3)
        idle = rss_kb(panel.server.pid)
        log(f"mpanel serve idle after start: RSS {idle / 1024:.1f} MB (target < {IDLE_TARGET_MB} MB)")
        out["idle_rss_mb"] = round(idle / 1024, 1)
        log("setting up through the API")
        sc = Scenario(panel)
        ready = rss_kb(panel.server.pid)
        log(f"after the setup: RSS {ready / 1024:.1f} MB")
        out["setup_rss_mb"] = round(ready / 1024, 1)

        if args.soak:
            warmup = args.soak_warmup
            if warmup < 0:
                sys.exit("--soak-warmup must be 0 or more seconds")
            log(f"soak: {warmup} s warm-up + {args.soak} s at {args.soak_conns} connections, "
                "RSS every 30 s")
            samples, totals = soak(panel, sc, work, warmup + args.soak, args.soak_conns,
                                   args.login_rate)
            after = [s for s in samples if s[0] >= warmup]
            if len(after) < 2:
                sys.exit("soak too short for two samples (30 s apart) after the warm-up")
            first, base, last = samples[0][1], after[0][1], samples[-1][1]
            if not first or not base:
                sys.exit(f"serve was gone when sampled: {samples}")
            growth = (last - base) * 100 / base
            from_first = (last - first) * 100 / first
            log(f"\n{args.engine}, soak {warmup} s warm-up + {args.soak} s at "
                f"{args.soak_conns} connections\n")
            log("| RSS | MB |\n| --- | ---: |")
            log(f"| idle after start | {idle / 1024:.1f} |")
            log(f"| first sample ({samples[0][0]} s) | {first / 1024:.1f} |")
            log(f"| end of the warm-up ({after[0][0]} s) | {base / 1024:.1f} |")
            log(f"| last sample ({samples[-1][0]} s) | {last / 1024:.1f} |")
            log(f"| growth after the warm-up | {growth:+.1f} % (target < {SOAK_GROWTH_TARGET:.0f} %) |")
            log(f"| growth from the first sample | {from_first:+.1f} % |")
            log("\n| path | requests | 5xx | other unexpected | socket errors |\n| --- | ---: | ---: | ---: | ---: |")
            for name, t in totals.items():
                log(f"| {name} | {t['requests']:,} | {t['five']} | {t['other']} | {t['errors']} |")
            kinds, _ = server_errors(panel)
            for (level, what), count in sorted(kinds.items(), key=lambda kv: -kv[1]):
                log(f"  serve's log: {count:>6} {level} {what}")
            out.update(soak_s=args.soak, soak_warmup_s=warmup, soak_conns=args.soak_conns,
                       rss_samples_mb=[[s, round(kb / 1024, 1)] for s, kb in samples],
                       growth_pct=round(growth, 1), growth_from_first_pct=round(from_first, 1),
                soak_totals=totals, growth_under_target=growth < SOAK_GROWTH_TARGET)
        else:
            log(f"load: {args.duration} s at {args.conns} connections, one wrk per path")
            results, samples = run_load(panel, sc, work, args.duration, args.conns, args.login_rate)
            end_rss, peak = samples[-1], max(samples)
            log(f"\n{args.engine}: {args.duration} s at {args.conns} connections "
                f"(wrk -t1 per path, timeout {WRK_TIMEOUT})\n")
            log(table(results, args.duration))
            bad = {n: failures(n, r) for n, r in results.items()}
            five = sum(b[0] for b in bad.values())
            other = sum(b[1] for b in bad.values())
            errs = sum(b[2] for b in bad.values())
            log(f"\n5xx: {five}, other unexpected statuses: {other}, socket errors: {errs}")
            for name, r in results.items():
                for code, body in sorted(r["samples"].items()):
                    log(f"  {name}, first {code}: {body}")
            kinds, lines = server_errors(panel)
            if kinds:
                log("serve's log, WARN and ERROR lines by kind:")
                for (level, what), count in sorted(kinds.items(), key=lambda kv: -kv[1]):
                    log(f"  {count:>6} {level} {what}")
                log(f"the first ERRORs and last WARNs ({serve_log_hint(panel)}):")
                for line in lines:
                    log("  " + line[:300])
            log("\ncomparison: GET one invoice by id, 16 connections, "
                f"{args.compare} s each")
            mp, br, mp_bytes, br_bytes = compare(panel, sc, work, os.path.abspath(args.bare), url, args.compare)
            mp_rps = mp["requests"] / (mp["duration_us"] / 1e6)
            br_rps = br["requests"] / (br["duration_us"] / 1e6)
            ratio = mp_rps * 100 / br_rps
            mp_p99 = mp["latency_us"]["p99"] / 1000
            log("\n| GET one invoice, 16 connections | requests/s | p50 ms | p99 ms | answer bytes | errors |")
            log("| --- | ---: | ---: | ---: | ---: | ---: |")
            for label, r, rps, size in [("mPanel `GET /api/billing/invoices/{id}`", mp, mp_rps, mp_bytes),
                                        ("bare axum + sqlx (bench/bare_invoice)", br, br_rps, br_bytes)]:
                nok = sum(v for k, v in r["statuses"].items() if k != "200") + sum(r["errors"].values())
                log(f"| {label} | {rps:,.0f} | {r['latency_us']['p50'] / 1000:.2f} | "
                    f"{r['latency_us']['p99'] / 1000:.2f} | {size} | {nok} |")
            log(f"| mPanel / bare | {ratio:.0f} % (target ≥ {RATIO_TARGET:.0f} %) | | "
                f"p99 {mp_p99:.2f} ms (target < {P99_TARGET_MS:.0f} ms on PostgreSQL) | | |")
            log("\n| RSS of mpanel serve | MB | target |\n| --- | ---: | ---: |")
            log(f"| idle after start | {idle / 1024:.1f} | < {IDLE_TARGET_MB} |")
            log(f"| peak during the load | {peak / 1024:.1f} | |")
            log(f"| at the end of the load | {end_rss / 1024:.1f} | < {LOAD_TARGET_MB} |")
            out.update(duration_s=args.duration, conns=args.conns, paths={
                n: {"conns": r["conns"], "requests": r["requests"],
                    "rps": round(r["requests"] / (r["duration_us"] / 1e6), 1), "statuses": r["statuses"],
                    "replayed": r["replayed"], "errors": r["errors"],
                    "p50_ms": r["latency_us"]["p50"] / 1000, "p99_ms": r["latency_us"]["p99"] / 1000}
                for n, r in results.items()}, five_xx=five, other_unexpected=other, socket_errors=errs,
                end_rss_mb=round(end_rss / 1024, 1), peak_rss_mb=round(peak / 1024, 1),
                rss_every_second_mb=[round(kb / 1024) for kb in samples],
                compare={"mpanel_rps": round(mp_rps), "bare_rps": round(br_rps), "ratio_pct": round(ratio, 1),
                         "mpanel_p99_ms": mp_p99, "bare_p99_ms": br["latency_us"]["p99"] / 1000})
        out["idle_under_target"] = idle / 1024 < IDLE_TARGET_MB
        print(json.dumps(out), flush=True)
    finally:
        panel.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
