#!/usr/bin/env python3
"""Order-to-live latency of mPanel's provisioning on the real services.

Run by bench/provision.sh, which starts PowerDNS, the web node (sshd +
nginx) and the mail node (Dovecot) and exports their variables. This script
starts `mpanel serve` the way the provisioning tests' `Panel::start()` does
(crates/mpanel/tests/binary/provisioning_support.rs): same bootstrap, same
operator, same three servers, same HOSTING product (dns_zone, 1 mailbox);
then posts signed paid orders at a steady pace and, per order, measures from
the webhook's 201 to the moment all three customer checks pass:

  dns   an A query for the domain to PowerDNS answers 127.0.0.1
  web   GET / on nginx with Host: <domain> answers 200 containing the domain
  mail  IMAP LOGIN postmaster@<domain> answers `a1 OK` (tried once Dovecot's
        userdb knows the mailbox, one login at a time)

Standard library only.
"""

import argparse
import concurrent.futures
import hashlib
import hmac
import json
import os
import random
import signal
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

SECRETS_KEY = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
ADMIN_PASSWORD = "a long bootstrap password"
OPERATOR_PASSWORD = "an operator's long password"
MAIL_PASSWORD = "correct horse battery"
POLL = 0.05  # each pending order's checks, every 50 ms
OLD_POLL_INTERVAL = 5.0  # the design this replaces: workers polled every 5 s


def env(name):
    value = os.environ.get(name)
    if value is None:
        sys.exit(f"{name} is not set: run this through bench/provision.sh")
    return value


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def host_key(known_hosts_var):
    """`ssh-ed25519 AAAA…` from a `[host]:port ssh-ed25519 AAAA…` line."""
    with open(env(known_hosts_var)) as f:
        line = next(l for l in f if "ssh-ed25519" in l)
    return " ".join(line.split()[1:3])


def ssh_credentials(user_var, key_var):
    with open(env(key_var)) as f:
        return {"type": "SSH", "user": env(user_var), "private_key": f.read()}


class Panel:
    """`mpanel serve` on a fresh database with everything an order needs."""

    def __init__(self, binary, database_url, workdir):
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
            MPANEL_WORKER_CONCURRENCY=os.environ.get("WORKER_CONCURRENCY", "4"),
            # No ACME CA is reachable from here: HTTPS off, so no tls.issue
            # job competes with the orders (it is not part of order-to-live).
            MPANEL_ACME_DIRECTORY_URL="none",
        )
        self.log_path = os.path.join(workdir, "serve.log")
        self.log = open(self.log_path, "wb")
        self.server = subprocess.Popen(
            [binary, "serve"], cwd=workdir, env=serve_env,
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        self.wait_listening()
        # The platform operator, in the tenant serve bootstrapped.
        out = subprocess.run(
            [binary, "admin", "create-user", "--tenant", "acme", "--email", "ops@acme.test",
             "--role", "SUPER_ADMIN", "--password", OPERATOR_PASSWORD],
            cwd=workdir, env=self.env, capture_output=True, text=True)
        if out.returncode != 0:
            self.fail(f"admin create-user: {out.stderr}")
        self.admin = self.login("admin@acme.test", ADMIN_PASSWORD)
        self.operator = self.login("ops@acme.test", OPERATOR_PASSWORD)
        self.add_servers()
        self.add_product()
        # As the provisioning tests' Panel::start(): the tenant provisions
        # names at once (the bench's .test names have no one to prove
        # control to; proving it is not part of order-to-live).
        policy = self.expect(200, self.admin, "GET /api/security/policy")
        policy["domain_control"] = "NONE"
        self.expect(200, self.admin, "PUT /api/security/policy", policy)

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
        sys.exit(f"{what}\nserve's log:\n{self.log_tail()}")

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
            with urllib.request.urlopen(req, timeout=30) as res:
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

    def add_servers(self):
        pdns_port = int(env("PDNS_API_URL").rsplit(":", 1)[1])
        dns = {"name": "dns-1", "role": "DNS", "address": "127.0.0.1", "port": pdns_port,
               "credentials": {"type": "API", "url": env("PDNS_API_URL"), "key": env("PDNS_API_KEY")},
               "settings": {"server_id": "localhost", "nameservers": ["ns1.example.net."]},
               "capacity": 10000}
        web = {"name": "web-1", "role": "WEB", "address": env("WEB_SSH_HOST"),
               "port": int(env("WEB_SSH_PORT")),
               "credentials": ssh_credentials("WEB_SSH_USER", "WEB_SSH_KEY"),
               "settings": {"host_key": host_key("WEB_SSH_KNOWN_HOSTS"), "public_ipv4": "127.0.0.1",
                            "nginx_conf": env("WEB_NGINX_CONF"), "sites_dir": env("WEB_SITES_DIR"),
                            "root_dir": env("WEB_ROOT_DIR"), "helper": env("WEB_HELPER"),
                            "php_socket_dir": env("WEB_PHP_SOCKET_DIR"),
                            "tls_listen": f"127.0.0.1:{env('WEB_HTTPS_PORT')}",
                            "listen": f"127.0.0.1:{env('WEB_HTTP_PORT')}"},
               "capacity": 1000}
        mail = {"name": "mail-1", "role": "MAIL", "address": env("MAIL_SSH_HOST"),
                "port": int(env("MAIL_SSH_PORT")),
                "credentials": ssh_credentials("MAIL_SSH_USER", "MAIL_SSH_KEY"),
                "settings": {"host_key": host_key("MAIL_SSH_KNOWN_HOSTS"),
                             "passwd_file": env("MAIL_PASSWD_FILE"), "root_dir": env("MAIL_ROOT_DIR"),
                             "uid": int(env("MAIL_UID")), "gid": int(env("MAIL_GID")),
                             "reload_cmd": env("MAIL_RELOAD_CMD"), "mail_host": "mail.example.net"},
                "capacity": 1000}
        for server in (dns, web, mail):
            self.expect(201, self.operator, "POST /api/servers", server)

    def add_product(self):
        product = {"name": "Web Pro", "slug": "web-pro", "category": "HOSTING",
                   "billing_model": "RECURRING", "status": "ACTIVE", "visibility": "PUBLIC",
                   "base_currency": "EUR",
                   "provisioning_template": {"type": "HOSTING", "dns_zone": True, "mailboxes": 1}}
        self.product_id = self.expect(201, self.admin, "POST /api/billing/products", product)["id"]
        price = {"period": "MONTHLY", "currency": "EUR", "amount_minor": 1500}
        self.expect(201, self.admin, f"POST /api/billing/products/{self.product_id}/prices", price)
        v = self.expect(200, self.admin, "POST /api/settings/webhook-secret/rotate")
        self.webhook_secret = v["webhook_secret"]

    def order_body(self, domain, reference):
        return {"customer": {"email": "jane@example.org", "name": "Jane", "country": "DE"},
                "items": [{"product_id": self.product_id, "period": "MONTHLY", "domain": domain,
                           "options": {"mailbox_password": MAIL_PASSWORD}}],
                "currency": "EUR",
                "payment": {"status": "PAID", "provider": "BANK_TRANSFER", "reference": reference,
                            "amount_minor": 1500}}

    def post_order(self, domain):
        """Signed as the marketing site signs; (status, body)."""
        reference = "pi_" + domain.replace(".", "_").replace("-", "_")
        raw = json.dumps(self.order_body(domain, reference)).encode()
        t = int(time.time())
        mac = hmac.new(self.webhook_secret.encode(), f"{t}.{reference}.".encode() + raw,
                       hashlib.sha256)
        headers = {"x-mpanel-tenant": "acme", "x-mpanel-signature": f"t={t},v1={mac.hexdigest()}",
                   "idempotency-key": reference}
        return self.request("POST", "/api/orders", raw=raw, headers=headers)


# --- the customer's checks ------------------------------------------------

def dns_a(domain, port):
    """The A records PowerDNS answers for `domain` (what `dig +short A` prints),
    over UDP in-process: 50 orders polled every 50 ms with a `dig` process each
    would spend the two cores on process start-ups."""
    qid = random.randrange(65536)
    qname = b"".join(bytes([len(p)]) + p.encode() for p in domain.rstrip(".").split(".")) + b"\0"
    query = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + qname + struct.pack(">HH", 1, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        s.sendto(query, ("127.0.0.1", port))
        data, _ = s.recvfrom(4096)
    rid, _flags, qd, an, _ns, _ar = struct.unpack(">HHHHHH", data[:12])
    if rid != qid:
        return []
    pos = 12
    for _ in range(qd):
        pos = skip_name(data, pos) + 4
    found = []
    for _ in range(an):
        pos = skip_name(data, pos)
        rtype, _rclass, _ttl, rdlen = struct.unpack(">HHIH", data[pos:pos + 10])
        pos += 10
        if rtype == 1 and rdlen == 4:
            found.append(socket.inet_ntoa(data[pos:pos + 4]))
        pos += rdlen
    return found


def skip_name(data, pos):
    while True:
        n = data[pos]
        if n == 0:
            return pos + 1
        if n & 0xC0 == 0xC0:
            return pos + 2
        pos += n + 1


def dig(domain, port):
    out = subprocess.run(["dig", "@127.0.0.1", "-p", str(port), "+short", "+time=2", "+tries=1",
                          "A", domain], capture_output=True, text=True)
    return out.stdout.strip()


def http_live(domain, port):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s.sendall(f"GET / HTTP/1.1\r\nHost: {domain}\r\nConnection: close\r\n\r\n".encode())
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        s.close()
    text = b"".join(chunks).decode(errors="replace")
    return text.startswith("HTTP/1.1 200") and domain in text.split("\r\n\r\n", 1)[-1]


def imap_login(domain, port):
    """Greeting, `a1 LOGIN`, the tagged answer: True on `a1 OK` (a `* BYE`
    greeting, as during a Dovecot reload, is a retry)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        f = s.makefile("rb")
        if not f.readline().startswith(b"* OK"):
            return False
        s.sendall(f'a1 LOGIN "postmaster@{domain}" "{MAIL_PASSWORD}"\r\n'.encode())
        while True:
            line = f.readline()
            if not line:
                return False
            if line.startswith(b"a1 "):
                try:
                    s.sendall(b"a2 LOGOUT\r\n")
                except OSError:
                    pass
                return line.startswith(b"a1 OK")


def userdb_knows(domain, path):
    """Asks Dovecot's auth process, on its `auth-userdb` socket (the
    auth-master protocol `doveadm user` speaks), whether postmaster@<domain>
    exists: a lookup in the passwd-file, no password verified."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(path)
        s.sendall(f"VERSION\t1\t0\nUSER\t1\tpostmaster@{domain}\tservice=imap\n".encode())
        f = s.makefile("rb")
        while True:
            line = f.readline()
            if not line:
                return False
            if line.startswith((b"USER\t1\t", b"NOTFOUND\t1", b"FAIL\t1")):
                return line.startswith(b"USER\t1\t")


def watch(domain, accepted, timeout, ports):
    """Each check on its own from `accepted` (monotonic) on, so a slow one
    never delays another's answer; the seconds after `accepted` at which
    each first passed. DNS and web are polled every 50 ms. A refused IMAP
    login is answered only on Dovecot's next 500 ms tick (its auth process
    flushes failures on a timer, even with auth_failure_delay = 0), and each
    login verifies the password (Argon2, 19 MiB): logins started every 50 ms
    while one was being verified made the bench's own checks a fifth of the
    machine's CPU. So Dovecot's userdb is asked every 50 ms first (no
    password verified), and once it knows the mailbox a login is tried,
    one at a time, every 50 ms until one answers `a1 OK`."""
    passed = {}
    lock = threading.Lock()
    deadline = accepted + timeout

    def record(name):
        with lock:
            passed.setdefault(name, time.monotonic() - accepted)

    def attempt(name, check):
        try:
            ok = check()
        except OSError:
            ok = False
        if ok:
            record(name)
        return ok

    def poll(name, check):
        while name not in passed and time.monotonic() < deadline:
            if not attempt(name, check):
                time.sleep(POLL)

    def mail():
        known = False
        while "mail" not in passed and time.monotonic() < deadline:
            try:
                known = known or userdb_knows(domain, ports["userdb"])
            except OSError:
                known = False
            if not (known and attempt("mail", lambda: imap_login(domain, ports["mail"]))):
                time.sleep(POLL)

    pollers = [threading.Thread(target=poll, args=("dns", lambda: "127.0.0.1" in dns_a(domain, ports["dns"]))),
               threading.Thread(target=poll, args=("web", lambda: http_live(domain, ports["web"]))),
               threading.Thread(target=mail)]
    for t in pollers:
        t.start()
    for t in pollers:
        t.join()
    with lock:
        result = dict(passed)
    return result, len(result) == 3


def pct(values, p):
    """Nearest-rank percentile."""
    s = sorted(values)
    return s[max(0, min(len(s) - 1, int(-(-p * len(s) // 100)) - 1))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default="target/release/mpanel")
    ap.add_argument("--database-url", help="default: a SQLite file in a temporary folder")
    ap.add_argument("--engine", default="sqlite", help="label for the report")
    ap.add_argument("--orders", type=int, default=50)
    ap.add_argument("--interval-ms", type=float, default=100,
                    help="one order every this many ms (0: all at once)")
    ap.add_argument("--timeout", type=float, default=180, help="per order, seconds")
    args = ap.parse_args()

    ports = {"dns": int(env("PDNS_DNS_PORT")), "web": int(env("WEB_HTTP_PORT")),
             "mail": int(env("MAIL_IMAP_PORT")),
             "userdb": os.path.join(os.path.dirname(env("MAIL_DOVECOT_CONF")), "run", "auth-userdb")}
    binary = os.path.abspath(args.bin)
    with tempfile.TemporaryDirectory(prefix="mpanel-bench-provision.") as workdir:
        url = args.database_url or f"sqlite://{workdir}/mpanel.db"
        print(f"starting mpanel serve ({args.engine}) and setting up the tenant", flush=True)
        panel = Panel(binary, url, workdir)
        try:
            run(panel, args, ports)
        finally:
            panel.stop()
            if os.environ.get("SERVE_LOG"):  # where to keep serve's log
                shutil.copyfile(panel.log_path, os.environ["SERVE_LOG"])


def run(panel, args, ports):
    stamp = int(time.time()) % 1_000_000
    domains = [f"bench-{stamp}-{i}.test" for i in range(args.orders)]
    # The mail check needs Dovecot's userdb socket: without it every order
    # would wait out its timeout.
    try:
        if userdb_knows(domains[0], ports["userdb"]):
            sys.exit(f"Dovecot's userdb already knows postmaster@{domains[0]}")
    except OSError as e:
        sys.exit(f"Dovecot's userdb socket {ports['userdb']}: {e}")
    pace = "all at once" if args.interval_ms <= 0 else f"one every {args.interval_ms:g} ms"
    print(f"posting {args.orders} signed paid orders, {pace}; polling each order's checks "
          f"every {POLL * 1000:.0f} ms", flush=True)
    results = {}
    post_ms = []
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=args.orders)
    futures = {}
    start = time.monotonic()
    for i, domain in enumerate(domains):
        if args.interval_ms > 0:
            target = start + i * args.interval_ms / 1000
            delay = target - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        sent = time.monotonic()
        status, body = panel.post_order(domain)
        accepted = time.monotonic()
        if status != 201:
            panel.fail(f"order {domain}: {status} {body}")
        post_ms.append((accepted - sent) * 1000)
        futures[domain] = pool.submit(watch, domain, accepted, args.timeout, ports)
    posted = time.monotonic() - start
    for domain, fut in futures.items():
        results[domain] = fut.result()
    pool.shutdown()
    wall = time.monotonic() - start

    live = {d: max(p.values()) * 1000 for d, (p, ok) in results.items() if ok}
    failed = [d for d, (_, ok) in results.items() if not ok]
    for d in failed:
        print(f"NOT LIVE within {args.timeout:g} s: {d}; passed: {results[d][0]}", file=sys.stderr)
    if failed:
        print(f"serve's log:\n{panel.log_tail()}", file=sys.stderr)
    # The in-process DNS check against dig, once per domain, now that all are live.
    mismatched = [d for d in live if dig(d, ports["dns"]) != "127.0.0.1"]
    if mismatched:
        print(f"dig does not print 127.0.0.1 for {mismatched}", file=sys.stderr)

    print()
    print(f"engine {args.engine}, {len(live)}/{args.orders} orders live, {pace}, "
          f"all done {wall:.1f} s after the first was posted")
    print(f"webhook POST (send → 201): p50 {pct(post_ms, 50):.0f} ms, "
          f"p99 {pct(post_ms, 99):.0f} ms; all {args.orders} posted in {posted:.1f} s "
          f"(sequential: a slow 201 delays the next order)")
    if live:
        v = list(live.values())
        print()
        print("| order-to-live (201 → dns+web+mail pass) | orders | p50 ms | p90 ms | p99 ms | max ms |")
        print("| --- | --- | --- | --- | --- | --- |")
        print(f"| mPanel ({args.engine}) | {len(v)} | {pct(v, 50):.0f} | {pct(v, 90):.0f} "
              f"| {pct(v, 99):.0f} | {max(v):.0f} |")
        for name in ("dns", "web", "mail"):
            c = [results[d][0][name] * 1000 for d in live]
            print(f"| … {name} check first passes | {len(c)} | {pct(c, 50):.0f} | {pct(c, 90):.0f} "
                  f"| {pct(c, 99):.0f} | {max(c):.0f} |")
        print()
        print(f"design replaced: {OLD_POLL_INTERVAL:g} s polling interval → a job waits "
              f"{OLD_POLL_INTERVAL / 2:g} s on average (up to {OLD_POLL_INTERVAL:g} s) before any "
              f"work starts,")
        print(f"so its order-to-live is ≥ {OLD_POLL_INTERVAL / 2:g} s on average; "
              f"mPanel here: p50 {pct(v, 50) / 1000:.2f} s, p99 {pct(v, 99) / 1000:.2f} s "
              f"(not measurable in the same run: the old system is gone)")
        print(json.dumps({"engine": args.engine, "orders": args.orders, "live": len(v),
                          "interval_ms": args.interval_ms, "p50_ms": round(pct(v, 50)),
                          "p90_ms": round(pct(v, 90)), "p99_ms": round(pct(v, 99)),
                          "max_ms": round(max(v)), "wall_s": round(wall, 1)}))
    if failed or mismatched or not live:
        sys.exit(1)


if __name__ == "__main__":
    main()
