#!/usr/bin/env bash
# mPanel under load (issue 19, "Under load"), per engine: DURATION s (60)
# at CONNS connections (256) with wrk (Debian's) on the main paths at once
# (authenticated reads, the public catalog, signed orders, usage batches,
# logins at their rate limit): statuses, 5xx, socket errors, p50/p99 per
# path; then an authenticated GET of an invoice by id against a bare axum +
# sqlx handler on the same database (bench/bare_invoice), 16 connections,
# COMPARE s (20) each; and the RSS of `mpanel serve` idle after start and
# at the end of the load. bench/load/run.py does the work; its header says
# exactly what is seeded and measured.
#
#   bash bench/load.sh                              # SQLite
#   bash bench/load.sh --engine postgres            # a throwaway PostgreSQL
#   DURATION=5 CONNS=32 COMPARE=5 bash bench/load.sh   # a short run
#   SOAK=600 bash bench/load.sh                     # instead: a 2-minute warm-up
#                                                   # (SOAK_WARMUP=120) then 10 minutes
#                                                   # at 16 connections, RSS every 30 s
#   KEEP=/tmp/load bash bench/load.sh               # keep the folder (serve.log, the database)
#   ONLY=orders,usage bash bench/load.sh            # only those paths (while developing)
#   SERVE_POOL=4 SERVE_LOG_LEVEL=warn bash bench/load.sh  # serve's pool size, log level
#   MPANEL_BIN=path/to/mpanel BARE_BIN=path/to/bare-invoice bash bench/load.sh
#
# Results: docs/benchmarks.md, "Under load".
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/services.sh

. bench/lib/engine.sh
parse_engine bench/load.sh "$@"

ensure_packages wrk

DB_ARGS=()
if [ "$ENGINE" = postgres ]; then
    ensure_packages postgresql
    start_postgres
    psql -q "$POSTGRES_URL" -c 'DROP DATABASE IF EXISTS bench_load' >/dev/null
    psql -q "$POSTGRES_URL" -c 'CREATE DATABASE bench_load' >/dev/null
    DB_ARGS=(--database-url "${POSTGRES_URL%/postgres}/bench_load")
fi

TARGET=${CARGO_TARGET_DIR:-target}
if [ -n "${MPANEL_BIN:-}" ]; then
    BIN=$MPANEL_BIN
else
    step "building mpanel (release)"
    cargo build --release -q -p mpanel
    BIN=$TARGET/release/mpanel
fi
if [ -n "${BARE_BIN:-}" ]; then
    BARE=$BARE_BIN
else
    step "building bare-invoice (release)"
    cargo build --release -q -p mpanel-bench-bare-invoice
    BARE=$TARGET/release/bare-invoice
fi

SOAK_ARGS=()
[ -n "${SOAK:-}" ] && SOAK_ARGS=(--soak "$SOAK" --soak-conns "${SOAK_CONNS:-16}" --soak-warmup "${SOAK_WARMUP:-120}")
step "load ($ENGINE)"
python3 bench/load/run.py --bin "$BIN" --bare "$BARE" --engine "$ENGINE" "${DB_ARGS[@]}" \
    --duration "${DURATION:-60}" --conns "${CONNS:-256}" --compare "${COMPARE:-20}" \
    --login-rate "${LOGIN_RATE:-40}" ${KEEP:+--keep "$KEEP"} "${SOAK_ARGS[@]}"
