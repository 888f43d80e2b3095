#!/usr/bin/env bash
# The billing engine at scale, per engine: `mpanel billing run` over N due
# monthly subscriptions (wall clock of the whole process, invoices/s), the
# no-op re-run, a floor measured in the same run (the database alone copying
# the N invoices and lines the run wrote, one INSERT ... SELECT each), the
# customers' messages a worker writes after the run (`notify.invoice_copies`),
# and usage ingestion over HTTP (POST /api/billing/usage/batch, batches of
# 5,000, several client threads), printed beside the targets (<= 20 s per
# 100,000 invoices; a million in <= 60 s on PostgreSQL and <= 90 s on
# SQLite; <= 500 MB peak RSS; <= 3 s no-op; >= 50,000 usage records/s on
# PostgreSQL)
# and Lago's published 10,000 events/s. bench/billing/run.py does the work
# and its header says exactly what is seeded and measured.
#
#   bash bench/billing.sh                      # SQLite, then a throwaway PostgreSQL
#   bash bench/billing.sh --engine postgres    # one engine
#   N=20000 USAGE_RECORDS=100000 bash bench/billing.sh   # quicker
#   CLIENTS=2 bash bench/billing.sh            # usage client threads (default 4)
#   N="100000 1000000" USAGE_RECORDS=0 bash bench/billing.sh   # a million, and
#       how the time grew from 100,000 (each size on a fresh database)
#
# To see where a run's time goes, keep its folder and log every statement
# with its time (sqlx at debug) in billing-run-first.log and serve.log:
#   python3 bench/billing/run.py --engine sqlite --keep --log-level info,sqlx=debug
#
# The throwaway PostgreSQL runs with fsync, synchronous_commit and
# full_page_writes off (scripts/lib/services.sh); SQLite is mPanel's own
# setting (WAL, synchronous=NORMAL).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/services.sh

ENGINES=(sqlite postgres)
while [ $# -gt 0 ]; do
    case $1 in
        --engine) ENGINES=("${2:?--engine sqlite|postgres}"); shift 2 ;;
        --engine=*) ENGINES=("${1#--engine=}"); shift ;;
        *) echo "usage: bash bench/billing.sh [--engine sqlite|postgres]" >&2; exit 2 ;;
    esac
done
for e in "${ENGINES[@]}"; do
    case $e in sqlite|postgres) ;; *) echo "--engine: sqlite or postgres" >&2; exit 2 ;; esac
done

# SQLite is reached through Python's sqlite3 module; psql comes with postgresql.
[[ " ${ENGINES[*]} " == *" postgres "* ]] && ensure_packages postgresql

step "building"
cargo build --release -q -p mpanel

OUT=$(mktemp)
CLEANUPS+=("rm -f $OUT")
# N may name several sizes ("100000 1000000"): each gets a fresh database,
# and the summary says how the run's time grew between them. USAGE_RECORDS=0
# skips the usage part.
SIZES=(${N:-100000})
ARGS=(--bin target/release/mpanel
    --usage-subscriptions "${USAGE_SUBSCRIPTIONS:-1000}" --usage-records "${USAGE_RECORDS:-500000}"
    --batch "${BATCH:-5000}" --clients "${CLIENTS:-4}")

for e in "${ENGINES[@]}"; do
    [ "$e" = postgres ] && start_postgres
    for n in "${SIZES[@]}"; do
        DB_ARGS=()
        if [ "$e" = postgres ]; then
            psql -q "$POSTGRES_URL" -c 'DROP DATABASE IF EXISTS bench_billing' >/dev/null
            psql -q "$POSTGRES_URL" -c 'CREATE DATABASE bench_billing' >/dev/null
            DB_ARGS=(--database-url "${POSTGRES_URL%/postgres}/bench_billing")
        fi
        step "billing ($e, $n)"
        python3 bench/billing/run.py --engine "$e" --subscriptions "$n" "${DB_ARGS[@]}" "${ARGS[@]}" \
            | tee -a "$OUT"
    done
done

step "summary"
python3 bench/billing/summary.py "$OUT"
