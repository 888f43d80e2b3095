#!/usr/bin/env bash
# The one test command (README, CI): installs what the tests need, starts a
# throwaway PostgreSQL, PowerDNS, a web node (sshd + nginx) and a mail node
# (Dovecot) on loopback, then runs cargo fmt --check, clippy with
# -D warnings, and the whole test suite once on SQLite and once on
# PostgreSQL. Everything it starts stops when it exits.
#
#   bash scripts/test.sh             # everything
#   bash scripts/test.sh -E 'test(health)'   # extra arguments go to nextest
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/services.sh

ensure_provisioning_packages postgresql poppler-utils
start_postgres
# The real services the provisioning drivers are tested against.
start_pdns
start_world_dns
start_web_node
start_mail_node

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

run_suite() {
    if cargo nextest --version >/dev/null 2>&1; then
        cargo nextest run --workspace --locked --profile ci "$@"
    else
        cargo test --workspace --locked -- "$@"
    fi
}

step "tests on SQLite"
MPANEL_TEST_ENGINE=sqlite run_suite "$@"

step "tests on PostgreSQL"
MPANEL_TEST_ENGINE=postgres MPANEL_TEST_POSTGRES_URL="$POSTGRES_URL" run_suite "$@"

step "all tests passed on SQLite and PostgreSQL"
