#!/usr/bin/env bash
# mPanel's job queue against graphile-worker, in one run, on one throwaway
# PostgreSQL (and mPanel on SQLite too). Prints every measurement as a JSON
# line, then a summary with the ratios and targets.
#
#   bash bench/queue.sh            # N=100000 backlog jobs
#   N=20000 bash bench/queue.sh    # quicker
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/services.sh

N=${N:-100000}
ensure_packages postgresql
command -v node >/dev/null || ensure_packages nodejs npm
start_postgres
psql -q "$POSTGRES_URL" -c 'CREATE DATABASE bench' >/dev/null
DB="${POSTGRES_URL%/postgres}/bench"

step "building"
# QUEUE_BIN=path: another build of bench-queue (an earlier commit's, for a
# before and after on the same machine).
if [ -n "${QUEUE_BIN:-}" ]; then
    MP=$QUEUE_BIN
else
    cargo build --release --locked -q -p mpanel-bench-queue
    MP=target/release/bench-queue
fi
(cd bench/graphile && npm ci --no-audit --no-fund --silent)
GW="node bench/graphile/run.mjs"
OUT=$(mktemp)
SQLITE_DIR=$(mktemp -d)
CLEANUPS+=("rm -rf $OUT $SQLITE_DIR")

run() { echo "+ $*" >&2; "$@" | tee -a "$OUT"; }

step "backlog: $N jobs enqueued, then drained"
run $GW --db "$DB" --mode backlog --n "$N" --config default
run $GW --db "$DB" --mode backlog --n "$N" --config fast
run $MP --db "$DB" --mode backlog --n "$N" --rounds 3

step "live: 16 clients, one job per transaction"
run $GW --db "$DB" --mode live --clients 16 --per-client 200 --interval-ms 20 --config default
run $GW --db "$DB" --mode live --clients 16 --per-client 200 --interval-ms 20 --config fast
run $GW --db "$DB" --mode live --clients 16 --per-client 500 --interval-ms 0 --config fast
run $MP --db "$DB" --mode live --clients 16 --per-client 200 --interval-ms 20
run $MP --db "$DB" --mode live --clients 16 --per-client 500 --interval-ms 0

step "mPanel on SQLite"
run $MP --db "sqlite://$SQLITE_DIR/bench.db" --mode backlog --n "$N" --rounds 3
run $MP --db "sqlite://$SQLITE_DIR/bench.db" --mode live --clients 16 --per-client 200 --interval-ms 20
run $MP --db "sqlite://$SQLITE_DIR/bench.db" --mode live --clients 16 --per-client 500 --interval-ms 0

step "summary"
python3 bench/summarise.py "$OUT" "N=$N bash bench/queue.sh"
