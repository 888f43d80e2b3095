#!/usr/bin/env bash
# mPanel under faults (issue 19, "Under faults"), one scenario per run:
#
#   bash bench/faults.sh kill9 [--engine sqlite|postgres]
#       kill -9 of `mpanel serve` while 16 threads place signed orders and 16
#       record payments with Idempotency-Key; restart on the same database and
#       port; every unanswered request retried with the same key and body;
#       then every order and payment exists once, totals, credit and
#       numbering add up, every job finishes.
#   bash bench/faults.sh pg-restart
#       PostgreSQL stopped (-m fast) for 5 s and started again under 16
#       threads of reads and writes: failures are 503 problem+json,
#       /api/ready says 503, mPanel recovers by itself (time printed), no
#       2xx write is lost.
#   bash bench/faults.sh disk-full            (root: mounts a tmpfs)
#       SQLite on a 32 MiB tmpfs filled by writes: the refusal's status and
#       code, reads while full, writes again once space is freed,
#       PRAGMA integrity_check.
#   bash bench/faults.sh two-nodes
#       two `serve --no-workers` + one `worker` on one PostgreSQL behind a
#       round-robin client: the same end results as one node; then one serve
#       node killed mid-run, the client fails over, nothing is lost.
#
# MPANEL_BIN=/path/to/mpanel uses that binary instead of building one.
# KEEP=/tmp/faults keeps the work folder (logs, SQLite files) in a new
# folder under it.
# bench/faults/run.py does the work; its header says what is measured.
# Results: docs/benchmarks.md, "Under faults".
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/services.sh

SCENARIO=${1:-}
shift || true
case $SCENARIO in
    kill9) . bench/lib/engine.sh; parse_engine "bench/faults.sh kill9" "$@" ;;
    pg-restart|two-nodes) ENGINE=postgres; [ $# -eq 0 ] || { echo "$SCENARIO takes no option" >&2; exit 2; } ;;
    disk-full) ENGINE=sqlite; [ $# -eq 0 ] || { echo "disk-full takes no option" >&2; exit 2; } ;;
    *) echo "usage: bash bench/faults.sh kill9|pg-restart|disk-full|two-nodes [--engine sqlite|postgres]" >&2
       exit 2 ;;
esac

if [ -n "${MPANEL_BIN:-}" ]; then
    BIN=$(realpath "$MPANEL_BIN")
else
    step "building (release)"
    cargo build --release -q -p mpanel
    BIN=$(realpath "${CARGO_TARGET_DIR:-target}/release/mpanel")
fi

services_dir
if [ -n "${KEEP:-}" ]; then
    mkdir -p "$KEEP"
    WORK=$(mktemp -d "$KEEP/$SCENARIO-$ENGINE.XXXXXX")
else
    WORK="$SERVICES_DIR/work"
    mkdir -p "$WORK"
fi
ARGS=(--bin "$BIN" --engine "$ENGINE" --workdir "$WORK")

if [ "$ENGINE" = postgres ]; then
    ensure_packages postgresql
    start_postgres
    ARGS+=(--database-url "$POSTGRES_URL" --pgdata "$SERVICES_DIR/postgres/data")
    if [ "$SCENARIO" = two-nodes ]; then
        psql -X -q "$POSTGRES_URL" -c "CREATE DATABASE faults_two" >/dev/null
        ARGS+=(--second-database-url "${POSTGRES_URL%/*}/faults_two")
    fi
fi

if [ "$SCENARIO" = disk-full ]; then
    [ "$(id -u)" -eq 0 ] || { echo "disk-full mounts a tmpfs: run it as root" >&2; exit 2; }
    MOUNT="$SERVICES_DIR/tmpfs"
    mkdir -p "$MOUNT"
    mount -t tmpfs -o "size=${TMPFS_SIZE:-32m}" tmpfs "$MOUNT"
    # Before the folder is removed (cleanups run last-in first-out).
    CLEANUPS+=("umount $MOUNT || umount -l $MOUNT")
    ARGS+=(--mount "$MOUNT")
fi

[ -n "${ORDERS_PER_THREAD:-}" ] && ARGS+=(--orders-per-thread "$ORDERS_PER_THREAD")
[ -n "${INVOICES_PER_THREAD:-}" ] && ARGS+=(--invoices-per-thread "$INVOICES_PER_THREAD")
[ -n "${FAULT_AFTER:-}" ] && ARGS+=(--fault-after "$FAULT_AFTER")
[ -n "${OUTAGE:-}" ] && ARGS+=(--outage "$OUTAGE")

step "faults: $SCENARIO ($ENGINE)"
python3 bench/faults/run.py "$SCENARIO" "${ARGS[@]}"
