#!/usr/bin/env bash
# The web console's pages on a tenant with 10,000 invoices, per engine: the
# dashboard (GET /), the first page of the invoices, the paid ones and
# page 10 (through the "Next page" links), as a TENANT_ADMIN signed in
# with the console's cookie; p50/p95/mean over R requests, beside the
# target (p95 < 50 ms) and a reference measured in the same run: a trivial
# authenticated GET (/api/auth/me). bench/console/run.py does the work; its
# header says exactly what is seeded and measured.
#
#   bash bench/console.sh                           # SQLite
#   bash bench/console.sh --engine postgres         # a throwaway PostgreSQL
#   REQUESTS=200 bash bench/console.sh
#   PROFILE=dev bash bench/console.sh               # the debug build (no release build at hand)
#   SEED=ops bash bench/console.sh                  # on the operations overview's database instead
#   LOG_LEVEL=info,sqlx::query=debug bash bench/console.sh  # keep serve's log (each SQL statement, timed)
#
# Results: docs/benchmarks.md, "Console".
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/services.sh

. bench/lib/engine.sh
parse_engine bench/console.sh "$@"

DB_ARGS=()
if [ "$ENGINE" = postgres ]; then
    ensure_packages postgresql
    start_postgres
    psql -q "$POSTGRES_URL" -c 'DROP DATABASE IF EXISTS bench_console' >/dev/null
    psql -q "$POSTGRES_URL" -c 'CREATE DATABASE bench_console' >/dev/null
    DB_ARGS=(--database-url "${POSTGRES_URL%/postgres}/bench_console")
fi

PROFILE=${PROFILE:-release}
TARGET=${CARGO_TARGET_DIR:-target}
step "building ($PROFILE)"
if [ "$PROFILE" = release ]; then
    cargo build --release -q -p mpanel
    BIN=$TARGET/release/mpanel
else
    cargo build -q -p mpanel
    BIN=$TARGET/debug/mpanel
fi

step "console ($ENGINE)"
python3 bench/console/run.py --bin "$BIN" --engine "$ENGINE" "${DB_ARGS[@]}" \
    --requests "${REQUESTS:-100}" --seed "${SEED:-console}" ${LOG_LEVEL:+--log-level "$LOG_LEVEL"}
