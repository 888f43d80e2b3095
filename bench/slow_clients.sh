#!/usr/bin/env bash
# Slow and idle clients (issue 19, "Under faults"): 1,000 connections that
# send their request headers one byte a second, then 50 that ask for a large
# answer and never read it, while ordinary requests (each on a new
# connection) are timed beside the same requests made alone; then how many
# of the slow connections the header read timeout (75 s) cut off.
# bench/slow_clients/run.py does the work; its header says what is measured.
# Takes about 90 s after the build.
#
#   bash bench/slow_clients.sh
#   PROFILE=dev bash bench/slow_clients.sh          # the debug build
#   SLOW=2000 READERS=100 bash bench/slow_clients.sh
#
# Results: docs/benchmarks.md, "Slow and idle clients".
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/services.sh

PROFILE=${PROFILE:-release}
TARGET=${CARGO_TARGET_DIR:-target}
step "building ($PROFILE)"
if [ "$PROFILE" = release ]; then
    cargo build --release -q -p mpanel
    BIN=$(realpath "$TARGET/release/mpanel")
else
    cargo build -q -p mpanel
    BIN=$(realpath "$TARGET/debug/mpanel")
fi

step "slow and idle clients (SQLite)"
python3 bench/slow_clients/run.py --bin "$BIN" --requests "${REQUESTS:-200}" \
    --slow "${SLOW:-1000}" --readers "${READERS:-50}"
