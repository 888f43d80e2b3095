#!/usr/bin/env bash
# The operations overview on a large database, per engine: GET
# /api/ops/platform-overview with 100,000 jobs, 10,000 subscriptions and
# 1,000 servers (and orders, invoices, payments, events, backups) seeded
# in bulk, as the SUPER_ADMIN (the platform) and a TENANT_ADMIN (its
# share), p50/p95/mean over R requests, beside the target (< 200 ms) and a
# reference measured in the same run: a trivial authenticated GET
# (/api/auth/me). bench/ops_overview/run.py does the work; its header says
# exactly what is seeded and measured.
#
#   bash bench/ops_overview.sh                      # SQLite
#   bash bench/ops_overview.sh --engine postgres    # a throwaway PostgreSQL
#   REQUESTS=200 bash bench/ops_overview.sh
#   PROFILE=dev bash bench/ops_overview.sh          # the debug build (no release build at hand)
#
# Results: docs/benchmarks.md, "Operations overview".
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/services.sh

. bench/lib/engine.sh
parse_engine bench/ops_overview.sh "$@"

DB_ARGS=()
if [ "$ENGINE" = postgres ]; then
    ensure_packages postgresql
    start_postgres
    psql -q "$POSTGRES_URL" -c 'DROP DATABASE IF EXISTS bench_ops' >/dev/null
    psql -q "$POSTGRES_URL" -c 'CREATE DATABASE bench_ops' >/dev/null
    DB_ARGS=(--database-url "${POSTGRES_URL%/postgres}/bench_ops")
fi

PROFILE=${PROFILE:-release}
step "building ($PROFILE)"
if [ "$PROFILE" = release ]; then
    cargo build --release -q -p mpanel
    BIN=target/release/mpanel
else
    cargo build -q -p mpanel
    BIN=target/debug/mpanel
fi

step "operations overview ($ENGINE)"
python3 bench/ops_overview/run.py --bin "$BIN" --engine "$ENGINE" "${DB_ARGS[@]}" \
    --requests "${REQUESTS:-50}"
