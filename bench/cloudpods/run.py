#!/usr/bin/env python3
"""mPanel's own overhead per CloudPod, beside the time its Proxmox tasks take.

Run by bench/cloudpods.sh. For each of two runs on a fresh database:

  realistic  the Proxmox VE fake's clones take a uniformly random 2-5 s
             (--clone-ms), its other tasks (resize, start) --task-ms
  reference  every task takes --ref-task-ms (10 ms), no clone jitter: the
             pod's order-to-ACTIVE is then almost all mPanel's own time

it starts the fake (crates/pve-fake, 4 nodes of 32 GiB so 100 one-GiB pods
fit) with a task log (one JSON line per ended task, start and end in ms),
starts `mpanel serve` the way the CloudPods tests do
(crates/mpanel/tests/binary/cloudpods_support.rs: bare panel, operator,
domain_control NONE, webhook secret, the fake as a CLOUD server, the MINI
plan as a product), posts N signed paid orders at once (from 8 client
threads), and waits until every pod is ACTIVE. Per pod:

  order->ACTIVE  from the client receiving the order's 201 to the pod's
                 `updated_at` once ACTIVE (set in the transaction that
                 activates it; same machine, same clock)
  in tasks       the sum of end-start of the pod's tasks in the fake's task
                 log: its clone (matched by the UPID mPanel recorded in the
                 pod's `cloudpod.clone` step), its resize and its start
                 (matched by VMID)
  overhead       order->ACTIVE - in tasks: everything mPanel does that is
                 not the cluster working (queueing, HTTP to the fake, the
                 database, noticing a task ended: tasks are polled every
                 200 ms, crates/provision/src/cloudpod/mod.rs TASK_POLL)

and, to tell what the overhead is made of, the pod's timeline from the
provisioning job (GET /api/ops/jobs/{id}: created, started, finished) and
each step's `updated_at` in provisioning_steps (read from the database after
the run).

Standard library only (psql for PostgreSQL).
"""

import argparse
import concurrent.futures
import datetime
import hashlib
import hmac
import json
import os
import re
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

SECRETS_KEY = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
ADMIN_PASSWORD = "a long bootstrap password"
OPERATOR_PASSWORD = "an operator's long password"
SSH_KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHQ3kKIv3dZ0kd6J3fF2m8s0Qxq2cXx4n0Q0yWw4pL8c "
           "jane@laptop")
NODES = ["pve1", "pve2", "pve3", "pve4"]
# The MINI seed plan: 1 vCPU, 1 GiB, 20 GB (the template's disk is 10 GB,
# so every pod's disk is grown: clone, config, resize, start).
PLAN = {"code": "MINI", "vcpus": 1, "memory_mb": 1024, "disk_gb": 20, "price": 999}
POST_THREADS = 8
POLL = 0.25  # the pods list, while waiting for ACTIVE
STEPS = ["cloudpod.place", "cloudpod.clone", "cloudpod.configure", "cloudpod.start"]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def epoch(text):
    """Seconds since the epoch from an RFC 3339 / SQL timestamp (any number
    of fractional digits, `Z` or an offset, `T` or a space)."""
    m = re.fullmatch(
        r"(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)(?:\.(\d+))?\s*(Z|[+-]\d\d(?::?\d\d)?)?", text.strip())
    if not m:
        raise ValueError(f"not a timestamp: {text!r}")
    day, clock, frac, zone = m.groups()
    zone = zone or "+00:00"
    if zone == "Z":
        zone = "+00:00"
    elif len(zone) == 3:
        zone += ":00"
    elif ":" not in zone:
        zone = zone[:3] + ":" + zone[3:]
    dt = datetime.datetime.fromisoformat(f"{day}T{clock}{zone}")
    return dt.timestamp() + (float("0." + frac) if frac else 0.0)


class Fake:
    """The Proxmox VE fake as a process: its startup line and task log."""

    def __init__(self, binary, workdir, task_ms, clone_ms):
        self.task_log = os.path.join(workdir, "tasks.jsonl")
        args = [binary, "--port", "0", "--nodes", ",".join(NODES), "--templates", "debian-12",
                "--task-ms", str(task_ms), "--auth-delay-ms", "3000", "--task-log", self.task_log]
        if clone_ms:
            args += ["--clone-ms", clone_ms]
        self.log = open(os.path.join(workdir, "pve-fake.log"), "wb")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self.log)
        line = self.proc.stdout.readline()
        if not line:
            sys.exit("the Proxmox VE fake exited before printing its startup line")
        self.info = json.loads(line)

    def server(self):
        """The CLOUD server body (as `Pve::server` in the tests)."""
        port = int(self.info["url"].split(":")[2].split("/")[0])
        return {"name": "pve-cluster", "role": "CLOUD", "address": "127.0.0.1", "port": port,
                "credentials": {"type": "API", "url": self.info["url"],
                                "key": f"{self.info['token_id']}={self.info['token_secret']}"},
                "settings": {
                    "fingerprint": self.info["fingerprint"],
                    "nodes": NODES,
                    "templates": {"debian-12": {n: 9000 + 100 * i for i, n in enumerate(NODES)}},
                    "storage": "local-lvm",
                    "bridge": "vmbr0",
                    "ipv4_pool": {"cidr": "203.0.113.0/24", "gateway": "203.0.113.1",
                                  "first": "203.0.113.10", "last": "203.0.113.250"},
                    "resolvers": ["1.1.1.1", "9.9.9.9"]},
                "capacity": 1000}

    def tasks(self):
        with open(self.task_log) as f:
            return [json.loads(l) for l in f if l.strip()]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Panel:
    """`mpanel serve` on a fresh database, set up as `Pods::start_with`."""

    def __init__(self, binary, database_url, workdir, concurrency):
        self.binary = binary
        self.db = database_url
        self.dir = workdir
        self.addr = f"127.0.0.1:{free_port()}"
        base = {k: v for k, v in os.environ.items() if not k.startswith("MPANEL_")}
        self.env = dict(base, MPANEL_DATABASE_URL=database_url, MPANEL_SECRETS_KEY=SECRETS_KEY)
        serve_env = dict(
            self.env,
            MPANEL_LISTEN=self.addr,
            MPANEL_BOOTSTRAP_TENANT="acme",
            MPANEL_BOOTSTRAP_ADMIN_EMAIL="admin@acme.test",
            MPANEL_BOOTSTRAP_ADMIN_PASSWORD=ADMIN_PASSWORD,
            MPANEL_RATE_LIMIT_PER_MINUTE="0",
            MPANEL_WORKER_CONCURRENCY=str(concurrency),
        )
        self.log_path = os.path.join(workdir, "serve.log")
        self.log = open(self.log_path, "wb")
        self.server = subprocess.Popen(
            [binary, "serve"], cwd=workdir, env=serve_env,
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        self.wait_listening()
        out = subprocess.run(
            [binary, "admin", "create-user", "--tenant", "acme", "--email", "ops@acme.test",
             "--role", "SUPER_ADMIN", "--password", OPERATOR_PASSWORD],
            cwd=workdir, env=self.env, capture_output=True, text=True)
        if out.returncode != 0:
            self.fail(f"admin create-user: {out.stderr}")
        self.admin = self.login("admin@acme.test", ADMIN_PASSWORD)
        self.operator = self.login("ops@acme.test", OPERATOR_PASSWORD)
        policy = self.expect(200, self.admin, "GET /api/security/policy")
        policy["domain_control"] = "NONE"
        self.expect(200, self.admin, "PUT /api/security/policy", policy)
        v = self.expect(200, self.admin, "POST /api/settings/webhook-secret/rotate")
        self.webhook_secret = v["webhook_secret"]

    def wait_listening(self):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                self.fail("mpanel serve exited")
            try:
                socket.create_connection(self.addr.split(":"), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        self.fail("mpanel serve did not listen within 60 s")

    def log_tail(self, n=40):
        with open(self.log_path, "rb") as f:
            return "\n".join(f.read().decode(errors="replace").splitlines()[-n:])

    def fail(self, what):
        self.stop()
        raise SystemExit(f"{what}\nserve's log:\n{self.log_tail()}")

    def stop(self):
        if self.server.poll() is None:
            self.server.send_signal(signal.SIGTERM)
            try:
                self.server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()

    def request(self, method, path, token="", body=None, headers=None, raw=None):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(f"http://{self.addr}{path}", data=data, method=method)
        if data is not None:
            req.add_header("content-type", "application/json")
        if token:
            req.add_header("authorization", f"Bearer {token}")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=60) as res:
                status, text = res.status, res.read().decode()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read().decode()
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def expect(self, status, token, route, body=None):
        method, path = route.split(" ", 1)
        got, v = self.request(method, path, token, body)
        if got != status:
            self.fail(f"{route}: {got} {v}")
        return v

    def login(self, email, password):
        body = {"email": email, "password": password, "tenant": "acme"}
        return self.expect(200, "", "POST /api/auth/login", body)["access_token"]

    def add_cluster_and_plan(self, fake):
        self.expect(201, self.operator, "POST /api/servers", fake.server())
        product = {"name": PLAN["code"], "slug": PLAN["code"].lower(), "category": "CLOUDPOD",
                   "billing_model": "RECURRING", "status": "ACTIVE", "visibility": "PUBLIC",
                   "base_currency": "EUR",
                   "provisioning_template": {"type": "CLOUD_POD", "plan": PLAN["code"],
                                             "vcpus": PLAN["vcpus"],
                                             "memory_mb": PLAN["memory_mb"],
                                             "disk_gb": PLAN["disk_gb"]}}
        self.product_id = self.expect(201, self.admin, "POST /api/billing/products", product)["id"]
        price = {"period": "MONTHLY", "currency": "EUR", "amount_minor": PLAN["price"]}
        self.expect(201, self.admin, f"POST /api/billing/products/{self.product_id}/prices", price)

    def post_order(self, n, label):
        """A signed paid order of the plan (`"<t>.<key>.<body>"`, as
        mpanel_domain::orders::signature); (sent, accepted, status, body)."""
        key = f"pi_bench_{label}_{n}"
        body = {"customer": {"email": f"pod{n}@example.org", "name": f"Customer {n}",
                             "country": "DE"},
                "items": [{"product_id": self.product_id, "period": "MONTHLY",
                           "options": {"hostname": f"pod{n}.example.org",
                                       "ssh_keys": [SSH_KEY]}}],
                "currency": "EUR",
                "payment": {"status": "PAID", "provider": "BANK_TRANSFER", "reference": key,
                            "amount_minor": PLAN["price"]}}
        raw = json.dumps(body).encode()
        t = int(time.time())
        mac = hmac.new(self.webhook_secret.encode(), f"{t}.{key}.".encode() + raw, hashlib.sha256)
        headers = {"x-mpanel-tenant": "acme", "x-mpanel-signature": f"t={t},v1={mac.hexdigest()}",
                   "idempotency-key": key}
        sent = time.time()
        status, v = self.request("POST", "/api/orders", raw=raw, headers=headers)
        return sent, time.time(), status, v

    def pods(self):
        return self.expect(200, self.admin, "GET /api/cloudpods?limit=200")["items"]


def step_times(engine, url):
    """(vmid, step) -> (done at, detail) from provisioning_steps."""
    at = "s.updated_at" if engine == "sqlite" else "extract(epoch from s.updated_at)"
    query = (f"SELECT p.vmid AS vmid, s.step AS step, {at} AS at, s.detail AS detail "
             "FROM provisioning_steps s JOIN cloud_pods p ON p.subscription_id = s.subscription_id")
    out = {}
    if engine == "sqlite":
        path = url.split("sqlite://", 1)[-1].split("?", 1)[0]
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = con.execute(query).fetchall()
        finally:
            con.close()
        for vmid, step, done, detail in rows:
            out[(vmid, step)] = (epoch(done), json.loads(detail) if detail else None)
    else:
        res = subprocess.run(["psql", "-X", "-At", url, "-c", f"SELECT json_agg(r) FROM ({query}) r"],
                             capture_output=True, text=True, check=True)
        for r in json.loads(res.stdout or "null") or []:
            out[(r["vmid"], r["step"])] = (float(r["at"]), r["detail"])
    return out


def run_once(args, label, task_ms, clone_ms, database_url):
    with tempfile.TemporaryDirectory(prefix=f"mpanel-bench-cloudpods-{label}.") as workdir:
        url = database_url or f"sqlite://{workdir}/mpanel.db"
        fake = Fake(os.path.abspath(args.fake_bin), workdir, task_ms, clone_ms)
        panel = None
        try:
            panel = Panel(os.path.abspath(args.bin), url, workdir, args.concurrency)
            panel.add_cluster_and_plan(fake)
            return measure(args, label, panel, fake, url, task_ms, clone_ms)
        finally:
            if panel:
                panel.stop()
            fake.stop()
            if args.keep:
                keep = os.path.join(args.keep, label)
                subprocess.run(["rm", "-rf", keep])
                subprocess.run(["cp", "-r", workdir, keep])


def measure(args, label, panel, fake, url, task_ms, clone_ms):
    print(f"[{label}] posting {args.pods} signed paid orders ({POST_THREADS} client threads)",
          flush=True)
    start = time.time()
    with concurrent.futures.ThreadPoolExecutor(max_workers=POST_THREADS) as pool:
        posted = list(pool.map(lambda n: panel.post_order(n, label), range(args.pods)))
    all_posted = time.time()
    for sent, accepted, status, v in posted:
        if status != 201:
            panel.fail(f"order: {status} {v}")
    orders = {v["order_id"]: (sent, accepted) for sent, accepted, _, v in posted}

    deadline = time.monotonic() + args.timeout
    while True:
        pods = panel.pods()
        active = [p for p in pods if p["status"] == "ACTIVE"]
        failed = [p for p in pods if p["status"] == "FAILED"]
        if failed:
            panel.fail(f"[{label}] {len(failed)} pods FAILED: {failed[0]}")
        if len(active) >= args.pods:
            break
        if time.monotonic() > deadline:
            panel.fail(f"[{label}] only {len(active)}/{args.pods} pods ACTIVE after "
                       f"{args.timeout:g} s")
        time.sleep(POLL)
    by_sub = {p["subscription_id"]: p for p in pods}
    wall = max(epoch(p["updated_at"]) for p in pods) - start

    steps = step_times(args.engine, url)
    tasks = fake.tasks()
    by_upid = {t["upid"]: t for t in tasks}
    by_vmid = {}
    for t in tasks:
        if t["type"] != "qmclone":
            by_vmid.setdefault(t["id"], []).append(t)

    rows = []
    for order_id, (sent, accepted) in orders.items():
        o = panel.expect(200, panel.admin, f"GET /api/orders/{order_id}")
        item = o["items"][0]
        pod = by_sub[item["subscription_id"]]
        job = panel.expect(200, panel.operator, f"GET /api/ops/jobs/{item['steps'][0]['job_id']}")
        vmid = pod["vmid"]
        clone = (steps.get((vmid, "cloudpod.clone")) or (0, None))[1] or {}
        own = [by_upid[clone["task"]]] if clone.get("task") in by_upid else []
        own += by_vmid.get(str(vmid), [])
        kinds = sorted(t["type"] for t in own)
        if "qmclone" not in kinds:
            panel.fail(f"[{label}] pod {vmid}: no clone task matched ({clone})")
        task_s = sum(t["end_ms"] - t["start_ms"] for t in own) / 1000
        active_at = epoch(pod["updated_at"])
        row = {"vmid": vmid, "kinds": kinds, "attempts": job["attempts"],
               "post": accepted - sent, "e2e": active_at - accepted, "tasks": task_s,
               "clone": sum(t["end_ms"] - t["start_ms"] for t in own if t["type"] == "qmclone") / 1000,
               "overhead": active_at - accepted - task_s,
               "queued": epoch(job["started_at"]) - accepted}
        # The pod's timeline: each step's end, less the tasks inside it.
        prev = epoch(job["started_at"])
        for step in STEPS:
            done = steps[(vmid, step)][0]
            inside = [t for t in own if prev * 1000 - 1 <= t["start_ms"] and t["end_ms"] <= done * 1000 + 1]
            row[step] = done - prev - sum(t["end_ms"] - t["start_ms"] for t in inside) / 1000
            prev = done
        row["activate"] = active_at - prev
        rows.append(row)
    # What serve logged as WARN/ERROR, by message (ids and times left out).
    warnings = {}
    with open(panel.log_path, errors="replace") as f:
        for l in f:
            m = re.search(r" (WARN|ERROR) (.*)", l)
            if not m or "smtp_url" in l:
                continue
            msg = re.sub(r"\b(job|attempt)=\S+ ", "", m.group(2))
            msg = re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}", "<id>", msg)[:200]
            warnings[msg] = warnings.get(msg, 0) + 1
    return {"label": label, "wall": wall, "posted": all_posted - start, "rows": rows,
            "warnings": warnings,
            "task_ms": task_ms, "clone_ms": clone_ms,
            "kinds": sorted({",".join(r["kinds"]) for r in rows})}


def pct(values, p):
    """Nearest-rank percentile."""
    s = sorted(values)
    return s[max(0, min(len(s) - 1, int(-(-p * len(s) // 100)) - 1))]


def report(args, runs):
    print()
    print(f"engine {args.engine}, {args.pods} pods ordered at once, worker concurrency "
          f"{args.concurrency}, {os.cpu_count()} CPUs")
    for r in runs:
        clone = f"clone {r['clone_ms']} ms, " if r["clone_ms"] else ""
        retried = sum(1 for x in r["rows"] if x["attempts"] > 1)
        print(f"  {r['label']}: {clone}other tasks {r['task_ms']} ms; tasks per pod: "
              f"{' | '.join(r['kinds'])}; jobs needing more than one attempt: {retried}")
    print()
    head = "| per pod (s) | " + " | ".join(f"{r['label']} p50 | p95 | mean" for r in runs) + " |"
    print(head)
    print("|" + " --- |" * (1 + 3 * len(runs)))

    def line(name, key, fmt="{:.2f}"):
        cells = []
        for r in runs:
            v = [x[key] for x in r["rows"]]
            cells += [fmt.format(pct(v, 50)), fmt.format(pct(v, 95)), fmt.format(statistics.mean(v))]
        print(f"| {name} | " + " | ".join(cells) + " |")

    def sub(name, key, keep):
        cells = []
        for r in runs:
            v = [x[key] for x in r["rows"] if keep(x)]
            cells += ([f"{pct(v, 50):.2f}", f"{pct(v, 95):.2f}", f"{statistics.mean(v):.2f}"]
                      if v else ["–"] * 3)
        print(f"| {name} | " + " | ".join(cells) + " |")

    line("order → ACTIVE", "e2e")
    line("in Proxmox tasks (clone+resize+start)", "tasks")
    line("… of which the clone", "clone")
    line("**mPanel overhead** (order → ACTIVE − tasks)", "overhead")
    line("· order 201 → job's last attempt started", "queued")
    for step in STEPS:
        line(f"· {step} (less its tasks)", step)
    line("· start done → pod ACTIVE (subscription.activate)", "activate")
    sub("overhead, pods whose job ran once", "overhead", lambda x: x["attempts"] == 1)
    sub("overhead, pods whose job was retried", "overhead", lambda x: x["attempts"] > 1)
    line("POST /api/orders (send → 201)", "post")
    print()
    for r in runs:
        attempts = {}
        for x in r["rows"]:
            attempts[x["attempts"]] = attempts.get(x["attempts"], 0) + 1
        shown = ", ".join(f"{n} pods {a}" for a, n in sorted(attempts.items()))
        print(f"{r['label']}: job attempts per pod: {shown}")
        for msg, n in sorted(r["warnings"].items(), key=lambda kv: -kv[1]):
            print(f"  serve logged {n}× {msg}")
    print()
    for r in runs:
        print(f"{r['label']}: all {args.pods} ACTIVE {r['wall']:.1f} s after the first order was "
              f"sent (orders posted in {r['posted']:.1f} s)")
    print(json.dumps({"engine": args.engine, "pods": args.pods, "concurrency": args.concurrency,
                      **{r["label"]: {
                          "wall_s": round(r["wall"], 2),
                          **{f"{k}_{s}": round(f(v), 3) for k in ("e2e", "tasks", "overhead")
                             for v in [[x[k] for x in r["rows"]]]
                             for s, f in (("p50", lambda v: pct(v, 50)),
                                          ("p95", lambda v: pct(v, 95)),
                                          ("mean", statistics.mean))}}
                         for r in runs}}))


def create_database(admin_url, name):
    subprocess.run(["psql", "-X", "-q", admin_url, "-c", f"DROP DATABASE IF EXISTS {name}"],
                   check=True, capture_output=True)
    subprocess.run(["psql", "-X", "-q", admin_url, "-c", f"CREATE DATABASE {name}"], check=True,
                   capture_output=True)
    return admin_url.rsplit("/", 1)[0] + "/" + name


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default="target/release/mpanel")
    ap.add_argument("--fake-bin", default="target/release/mpanel-pve-fake")
    ap.add_argument("--engine", default="sqlite", choices=["sqlite", "postgres"])
    ap.add_argument("--postgres-url", help="a server to create the runs' databases on")
    ap.add_argument("--pods", type=int, default=100)
    ap.add_argument("--concurrency", type=int, default=100, help="MPANEL_WORKER_CONCURRENCY")
    ap.add_argument("--clone-ms", default="2000-5000")
    ap.add_argument("--task-ms", type=int, default=300, help="resize, start, … (realistic run)")
    ap.add_argument("--ref-task-ms", type=int, default=10, help="every task (reference run)")
    ap.add_argument("--timeout", type=float, default=150, help="per run, seconds")
    ap.add_argument("--keep", help="copy each run's folder (logs, task log, SQLite) here")
    args = ap.parse_args()
    # A SIGTERM (bench/cloudpods.sh's trap) unwinds, so the finally blocks
    # stop mpanel serve and the fake.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.engine == "postgres" and not args.postgres_url:
        ap.error("--engine postgres needs --postgres-url")
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)

    runs = []
    for label, task_ms, clone_ms in (("realistic", args.task_ms, args.clone_ms),
                                     ("reference", args.ref_task_ms, None)):
        url = None
        if args.engine == "postgres":
            url = create_database(args.postgres_url, f"bench_cloudpods_{label}")
        runs.append(run_once(args, label, task_ms, clone_ms, url))
    report(args, runs)


if __name__ == "__main__":
    main()
