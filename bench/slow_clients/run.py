#!/usr/bin/env python3
"""Slow and idle clients against `mpanel serve` (issue 19, "Under faults").

Run by bench/slow_clients.sh. Standard library only; reuses the billing
benchmark's `Panel` (bench/billing/run.py: the binary's CLI and `serve`).

1. Setup: `mpanel migrate`, a tenant and a TENANT_ADMIN made with `mpanel
   admin`, `mpanel serve --no-workers` (SQLite), signed in once.
2. Reference: R requests, each on a new connection, of `GET /api/health`
   and of `GET /api/auth/me` (authenticated), nothing else going on.
3. Slowloris: SLOW connections (default 1,000) each send the start of a
   request's headers, one byte a second, never finishing them. While they
   trickle, the same R requests again, each on a new connection: every one
   must be answered 200; p50/p99 beside the reference.
4. Clients that never read: READERS connections (default 50) each ask for
   the OpenAPI document (hundreds of KB, more than the socket buffers
   hold) and never read a byte. Then the same R requests again.
5. The header read timeout (75 s, `HEADER_READ_TIMEOUT`): how many of the
   trickling connections the server has closed by the time limit.
"""

import argparse
import asyncio
import os
import resource
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "billing"))
import run as billing  # noqa: E402  (bench/billing/run.py)

from run import Panel, log, pct  # noqa: E402

TRICKLE = b"GET /api/health HTTP/1.1\r\nHost: bench\r\nX-Slow: " + b"a" * 4000


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def one_request(addr, path, token):
    """A request on a new connection: (status, seconds)."""
    host, port = addr.split(":")
    start = time.perf_counter()
    with socket.create_connection((host, int(port)), timeout=10) as s:
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: bench\r\n{auth}Connection: close\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    elapsed = time.perf_counter() - start
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else 0
    return status, elapsed


async def measure(addr, token, requests):
    """R requests of each path, one after another, each on a new connection,
    off the event loop (the trickling clients live on it)."""
    out = {}
    for label, path, tok in (("health", "/api/health", ""), ("auth/me", "/api/auth/me", token)):
        times, bad = [], 0
        for _ in range(requests):
            status, t = await asyncio.to_thread(one_request, addr, path, tok)
            times.append(t * 1000)
            bad += status != 200
        out[label] = (pct(times, 50), pct(times, 99), bad)
    return out


async def trickle(addr, stop, closed_by_server):
    host, port = addr.split(":")
    try:
        reader, writer = await asyncio.open_connection(host, int(port))
    except OSError:
        closed_by_server.append("refused")
        return
    try:
        for byte in TRICKLE:
            if stop.is_set():
                break
            writer.write(bytes([byte]))
            await writer.drain()
            try:
                # The server closing the connection shows as EOF here.
                data = await asyncio.wait_for(reader.read(1), timeout=1.0)
                # EOF, or an error answer before the close: either way the
                # server ended it.
                closed_by_server.append("closed" if data == b"" else "answered")
                return
            except asyncio.TimeoutError:
                pass
    except (ConnectionError, OSError):
        closed_by_server.append("reset")
    finally:
        writer.close()


async def never_read(addr, n):
    host, port = addr.split(":")
    writers = []
    for _ in range(n):
        _, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET /api/openapi.json HTTP/1.1\r\nHost: bench\r\n\r\n")
        await writer.drain()
        writers.append(writer)
    return writers


def show(label, figures, reference=None):
    for path, (p50, p99, bad) in figures.items():
        ref = ""
        if reference:
            r50, r99, _ = reference[path]
            ref = f"   (reference p50 {r50:6.2f} ms, p99 {r99:6.2f} ms)"
        log(f"  {label:<28} {path:<8} p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  non-200: {bad}{ref}")


async def bench(panel, token, args):
    addr = panel.addr
    reference = await measure(addr, token, args.requests)
    show("alone", reference)

    stop = asyncio.Event()
    closed = []
    started = time.monotonic()
    tasks = [asyncio.create_task(trickle(addr, stop, closed)) for _ in range(args.slow)]
    await asyncio.sleep(3)
    during = await measure(addr, token, args.requests)
    show(f"{args.slow} slowloris clients", during, reference)

    writers = await never_read(addr, args.readers)
    await asyncio.sleep(1)
    stuck = await measure(addr, token, args.requests)
    show(f"+ {args.readers} never reading", stuck, reference)
    for w in writers:
        w.close()

    wait = max(0.0, args.duration - (time.monotonic() - started))
    log(f"  waiting {wait:.0f} s more for the header read timeout (75 s) ...")
    await asyncio.sleep(wait)
    log(f"  slowloris connections closed by the server after {args.duration} s: "
        f"{len(closed)} of {args.slow}")
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    bad = sum(f[2] for f in list(during.values()) + list(stuck.values()))
    return bad == 0 and len(closed) == args.slow


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--slow", type=int, default=1000)
    ap.add_argument("--readers", type=int, default=50)
    ap.add_argument("--duration", type=int, default=85)
    args = ap.parse_args()
    limit = raise_fd_limit()
    log(f"open files allowed: {limit}")
    work = tempfile.mkdtemp(prefix="mpanel-slow-")
    panel = Panel(args.bin, f"sqlite://{work}/mpanel.db", work)
    panel.env["MPANEL_ACME_DIRECTORY_URL"] = "none"
    try:
        panel.cli("migrate")
        panel.cli("admin", "create-tenant", "--slug", billing.TENANT, "--name", "Acme",
                  "--timezone", billing.ZONE, "--currency", "EUR")
        panel.cli("admin", "create-user", "--tenant", billing.TENANT, "--email",
                  billing.ADMIN_EMAIL, "--role", "TENANT_ADMIN", "--password",
                  billing.ADMIN_PASSWORD)
        panel.serve()
        token = panel.login()
        ok = asyncio.run(bench(panel, token, args))
    finally:
        panel.stop()
    log("OK: every request answered, every slow connection cut off" if ok else "FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
