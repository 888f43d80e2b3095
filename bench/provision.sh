#!/usr/bin/env bash
# Order-to-live latency on the real services: 50 signed paid orders posted to
# `mpanel serve` (one every 100 ms), each measured from the webhook's 201 to
# the moment all three customer checks pass — the zone answers on PowerDNS,
# nginx serves the site, the mailbox logs in on Dovecot — and printed beside
# the 5 s polling interval of the design this replaces. The setup (operator,
# servers, HOSTING product) is the provisioning tests' `Panel::start()`;
# bench/provision/run.py does the work. Needs root (the web and mail nodes
# create users and start sshd), like scripts/test.sh.
#
#   bash bench/provision.sh                     # SQLite (default)
#   bash bench/provision.sh --engine postgres   # a throwaway PostgreSQL
#   ORDERS=20 INTERVAL_MS=0 bash bench/provision.sh   # 20 orders, all at once
#   MPANEL_BIN=/tmp/old/mpanel bash bench/provision.sh # a binary built beforehand
#
# Results: docs/benchmarks.md, "Order to live".
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/services.sh

. bench/lib/engine.sh
parse_engine bench/provision.sh "$@"

ensure_provisioning_packages postgresql
DB_ARGS=()
if [ "$ENGINE" = postgres ]; then
    start_postgres
    psql -q "$POSTGRES_URL" -c 'CREATE DATABASE bench_provision' >/dev/null
    DB_ARGS=(--database-url "${POSTGRES_URL%/postgres}/bench_provision")
fi
start_pdns
start_web_node
start_mail_node

# MPANEL_BIN: a binary built beforehand (say, another commit's, for a
# before/after comparison on the same machine).
BIN=${MPANEL_BIN:-}
if [ -z "$BIN" ]; then
    step "building"
    cargo build --release -q -p mpanel
    BIN=target/release/mpanel
fi

step "order to live ($ENGINE)"
python3 bench/provision/run.py --bin "$BIN" --engine "$ENGINE" "${DB_ARGS[@]}" \
    --orders "${ORDERS:-50}" --interval-ms "${INTERVAL_MS:-100}"
