#!/usr/bin/env python3
"""The OpenAPI document as a contract: runs schemathesis against a real
`mpanel serve` (a fresh database of the given engine, one tenant, one user
per role) with every check it has, once per role, and fails on any failure.

    python3 scripts/api_contract.py --binary target/debug/mpanel --engine sqlite
    python3 scripts/api_contract.py --binary target/debug/mpanel --engine postgres \
        --postgres-url "$POSTGRES_URL"

Environment: SCHEMATHESIS (the executable; default `schemathesis`),
CONTRACT_MAX_EXAMPLES (per operation and phase; default 8).
"""

import argparse
import base64
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

# One role's run takes about a minute; a hang must not run into CI's limit.
RUN_TIMEOUT = 600
CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "schemathesis.toml")
ROLES = ["SUPER_ADMIN", "TENANT_ADMIN", "BILLING", "SUPPORT", "CUSTOMER"]
PASSWORD = "contract-check-password-1"
TENANT = "acme"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fresh_database(engine, postgres_url, folder):
    if engine == "sqlite":
        return f"sqlite://{folder}/mpanel.db"
    name = "contract_" + secrets.token_hex(6)
    subprocess.run(["psql", postgres_url, "-qc", f"CREATE DATABASE {name}"], check=True)
    base, _, _ = postgres_url.rpartition("/")
    return f"{base}/{name}"


def call(url, body=None, token=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=10) as res:
        return json.loads(res.read() or b"null")


SCOPES = ["READ", "WRITE", "ADMIN", "BILLING", "PROVISIONING", "SECURITY"]


def api_token(base, role):
    """An API token with every scope the role may hold: a session would not
    survive the checker (it calls logout and revoke-all like any client)."""
    session = call(f"{base}/api/auth/login", {
        "tenant": TENANT, "email": f"{role.lower()}@acme.test", "password": PASSWORD,
    })["access_token"]
    allowed = []
    for scope in SCOPES:
        call(f"{base}/api/auth/reauthenticate", {"password": PASSWORD}, session)
        try:
            call(f"{base}/api/security/tokens", {"name": scope, "scopes": [scope]}, session)
            allowed.append(scope)
        except urllib.error.HTTPError as e:
            if e.code != 403:
                raise
    call(f"{base}/api/auth/reauthenticate", {"password": PASSWORD}, session)
    return call(f"{base}/api/security/tokens",
                {"name": "contract", "scopes": allowed}, session)["token"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--engine", choices=["sqlite", "postgres"], required=True)
    ap.add_argument("--postgres-url")
    ap.add_argument("--roles", default=",".join(ROLES))
    args = ap.parse_args()
    st = os.environ.get("SCHEMATHESIS", "schemathesis")
    examples = os.environ.get("CONTRACT_MAX_EXAMPLES", "8")
    folder = tempfile.mkdtemp(prefix="mpanel-contract-")
    port = free_port()
    env = dict(os.environ)
    env.update({
        "MPANEL_DATABASE_URL": fresh_database(args.engine, args.postgres_url, folder),
        "MPANEL_LISTEN": f"127.0.0.1:{port}",
        "MPANEL_SECRETS_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "MPANEL_JWT_SECRET": secrets.token_hex(32),
        # The checker sends thousands of requests from one address.
        "MPANEL_RATE_LIMIT_PER_MINUTE": "1000000",
        "MPANEL_RATE_LIMIT_BURST": "100000",
        "MPANEL_LOG_LEVEL": "warn",
    })
    run = lambda *a: subprocess.run([args.binary, *a], env=env, check=True,
                                    stdout=subprocess.DEVNULL)
    run("migrate")
    run("admin", "create-tenant", "--slug", TENANT, "--name", "Acme")
    for role in ROLES:
        run("admin", "create-user", "--tenant", TENANT, "--email",
            f"{role.lower()}@acme.test", "--role", role, "--password", PASSWORD)
    log = open(os.path.join(folder, "serve.log"), "w")
    server = subprocess.Popen([args.binary, "serve"], env=env, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    failed = []
    try:
        for _ in range(200):
            try:
                call(f"{base}/api/health")
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        # Every token before any run: the checker's failed logins would
        # otherwise trip the login throttle for the next role's sign-in.
        tokens = {role: api_token(base, role) for role in args.roles.split(",")}
        for role, token in tokens.items():
            print(f"==> schemathesis as {role} ({args.engine})", flush=True)
            try:
                code = subprocess.run([
                    st, "--config-file", CONFIG, "run", f"{base}/api/openapi.json", "--checks", "all",
                    "--max-examples", examples, "--workers", "2",
                    "--header", f"Authorization: Bearer {token}",
                    "--no-color", "--suppress-health-check", "all",
                    "--seed", "1",
                ], timeout=RUN_TIMEOUT).returncode
            except subprocess.TimeoutExpired:
                print(f"schemathesis as {role} ran over {RUN_TIMEOUT} s", flush=True)
                code = 1
            if code != 0:
                failed.append(role)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(folder, ignore_errors=True)
    if failed:
        print(f"the API broke its OpenAPI contract as: {', '.join(failed)}", file=sys.stderr)
        return 1
    print(f"the API kept its OpenAPI contract as every role ({args.engine})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
