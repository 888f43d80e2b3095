#!/usr/bin/env bash
# mPanel's own overhead per CloudPod: 100 signed paid orders of the MINI plan
# posted at once to `mpanel serve`, provisioned through the Proxmox VE fake
# (crates/pve-fake) with realistic task durations (clones a uniformly random
# 2-5 s, resize and start 300 ms), until every pod is ACTIVE. Per pod it
# prints order->ACTIVE, the time its Proxmox tasks ran (from the fake's task
# log, in ms) and the difference, mPanel's overhead (p50/p95/mean), split by
# step; beside it, measured in the same run, the reference: the same 100
# pods with every task taking 10 ms, whose order->ACTIVE is almost all
# overhead. bench/cloudpods/run.py does the work; its header says exactly
# what is measured.
#
#   bash bench/cloudpods.sh                      # SQLite
#   bash bench/cloudpods.sh --engine postgres    # a throwaway PostgreSQL
#   PODS=20 CONCURRENCY=8 bash bench/cloudpods.sh
#   CLONE_MS=2000-5000 TASK_MS=300 REF_TASK_MS=10 bash bench/cloudpods.sh
#   KEEP=/tmp/pods bash bench/cloudpods.sh       # keep logs, task logs, SQLite
#
# Everything listens on 127.0.0.1 and is stopped on exit.
# Results: docs/benchmarks.md, "CloudPods: mPanel's overhead per pod".
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/services.sh

. bench/lib/engine.sh
parse_engine bench/cloudpods.sh "$@"

DB_ARGS=()
if [ "$ENGINE" = postgres ]; then
    ensure_packages postgresql
    start_postgres
    DB_ARGS=(--postgres-url "$POSTGRES_URL")
fi

step "building"
cargo build --release -q -p mpanel -p mpanel-pve-fake

KEEP_ARGS=()
[ -n "${KEEP:-}" ] && KEEP_ARGS=(--keep "$KEEP")

step "${PODS:-100} CloudPods at once ($ENGINE)"
python3 bench/cloudpods/run.py --bin target/release/mpanel \
    --fake-bin target/release/mpanel-pve-fake --engine "$ENGINE" "${DB_ARGS[@]}" \
    --pods "${PODS:-100}" --concurrency "${CONCURRENCY:-100}" \
    --clone-ms "${CLONE_MS:-2000-5000}" --task-ms "${TASK_MS:-300}" \
    --ref-task-ms "${REF_TASK_MS:-10}" "${KEEP_ARGS[@]}"
