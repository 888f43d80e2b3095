#!/usr/bin/env bash
# The one test command (README, CI): installs what the tests need, starts a
# throwaway PostgreSQL, PowerDNS, a web node (sshd + nginx) and a mail node
# (Dovecot) on loopback, then runs cargo fmt --check, clippy with
# -D warnings, the whole test suite once on SQLite and once on PostgreSQL,
# and (on a full run) the OpenAPI contract check on both engines.
# Everything it starts stops when it exits.
#
#   bash scripts/test.sh             # everything
#   bash scripts/test.sh -E 'test(health)'   # extra arguments go to nextest
#
# Without cargo-nextest the suite runs under `cargo test`, which takes
# other arguments: test-name filters are translated, anything else is
# refused before anything starts (scripts/lib/test_args.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/services.sh
. scripts/lib/test_args.sh

bash scripts/lib/test_args_test.sh
if cargo nextest --version >/dev/null 2>&1; then
    HAVE_NEXTEST=1
else
    HAVE_NEXTEST=0
    libtest_args "$@" || exit 2
fi

# chromium and chromium-driver: the browser tests (W3C WebDriver; the
# WebAuthn one uses a virtual authenticator); prometheus: promtool, which checks
# the shipped alert rules.
ensure_provisioning_packages postgresql poppler-utils python3-dkim chromium chromium-driver prometheus
start_postgres
# The real services the provisioning drivers are tested against.
start_pdns
start_world_dns
start_web_node
start_pebble
start_mail_node
start_mail_relay
start_backup_node

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "promtool: the alert rules are valid and fire as their unit tests say"
promtool check rules deploy/prometheus/mpanel-alerts.yml
promtool test rules deploy/prometheus/mpanel-alerts.test.yml

# python_venv DIR REQUIREMENTS PYTHON: a venv with the pinned requirements,
# made again when the Python or the pins change.
python_venv() {
    local venv=$1 requirements=$2 py=$3 stamp
    stamp="$("$py" --version 2>&1) $(sha256sum "$requirements")"
    if [ "$(cat "$venv/stamp" 2>/dev/null)" != "$stamp" ]; then
        step "installing $requirements into $venv ($("$py" --version 2>&1))"
        rm -rf "$venv"
        # Debian's own python3 needs python3-venv for `-m venv`.
        "$py" -m venv "$venv" 2>/dev/null || {
            ensure_packages python3-venv
            rm -rf "$venv"
            "$py" -m venv "$venv"
        }
        "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
        echo "$stamp" > "$venv/stamp"
    fi
}

# Independent verifiers the tests run (the Standard Webhooks reference
# library checks mPanel's webhook signatures).
python_venv target/proof-venv scripts/proof-requirements.txt python3
export MPANEL_TEST_PROOF_PYTHON="$PWD/target/proof-venv/bin/python"

# axe_core VERSION: axe-core's axe.min.js (the browser tests run it on every
# page they visit) from npm into target/axe-core, fetched again only when
# the pin changes. npm is the one that comes with nodesource's Node.js
# (Debian's own npm package conflicts with that nodejs).
axe_core() {
    local version=$1 dir=target/axe-core
    if [ "$(cat "$dir/stamp" 2>/dev/null)" != "axe-core@$version" ] || [ ! -f "$dir/package/axe.min.js" ]; then
        command -v npm >/dev/null 2>&1 || {
            echo "npm is needed to fetch axe-core for the browser tests: install Node.js 20 from nodesource (not Debian's npm package, which conflicts with it)" >&2
            exit 1
        }
        step "fetching axe-core@$version into $dir"
        rm -rf "$dir"
        mkdir -p "$dir"
        (cd "$dir" && npm pack --silent "axe-core@$version" >/dev/null \
            && tar xzf "axe-core-$version.tgz" package/axe.min.js)
        echo "axe-core@$version" > "$dir/stamp"
    fi
    export MPANEL_TEST_AXE="$PWD/$dir/package/axe.min.js"
}
axe_core 4.14.1
# Where the browser tests write their screenshots (desktop and phone width).
mkdir -p target/screenshots
export MPANEL_TEST_SCREENSHOTS="$PWD/target/screenshots"

run_suite() {
    if [ "$HAVE_NEXTEST" -eq 1 ]; then
        cargo nextest run --workspace --locked --profile ci "$@"
    else
        cargo test --workspace --locked "${CARGO_TEST_ARGS[@]}" -- "${LIBTEST_ARGS[@]}"
    fi
}

step "tests on SQLite"
MPANEL_TEST_ENGINE=sqlite run_suite "$@"

step "tests on PostgreSQL"
MPANEL_TEST_ENGINE=postgres MPANEL_TEST_POSTGRES_URL="$POSTGRES_URL" run_suite "$@"

# A Python for the contract tools. CPython before 3.11.8 (3.12 before
# 3.12.2) can abort inside hypothesis with "AST constructor recursion depth
# mismatch" (CPython gh-106905), so a fixed one is taken when the machine
# has one, pyenv's included; python3 otherwise.
contract_python() {
    local candidates=(python3) version py
    if command -v pyenv >/dev/null 2>&1; then
        for version in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.[0-9]+\.[0-9]+$' | sort -t. -k2,2nr -k3,3nr); do
            candidates+=("$(PYENV_VERSION=$version pyenv which python3 2>/dev/null)")
        done
    fi
    for py in "${candidates[@]}"; do
        if [ -n "$py" ] && "$py" -c 'import sys; v = sys.version_info; sys.exit(0 if v >= (3, 12, 2) or (3, 11, 8) <= v < (3, 12) else 1)' 2>/dev/null; then
            echo "$py"
            return
        fi
    done
    echo python3
}

# The OpenAPI document as a contract (schemathesis, every check, as every
# role), on both engines; only on a full run, not a filtered one.
contract_check() {
    local venv=target/contract-venv
    python_venv "$venv" scripts/contract-requirements.txt "$(contract_python)"
    # The binary the suite just built (its tests run it); building it
    # alone would compile the workspace again without the test features.
    [ -x target/debug/mpanel ] || cargo build --locked -p mpanel
    step "API contract on SQLite"
    SCHEMATHESIS="$venv/bin/schemathesis" python3 scripts/api_contract.py \
        --binary target/debug/mpanel --engine sqlite
    step "API contract on PostgreSQL"
    SCHEMATHESIS="$venv/bin/schemathesis" python3 scripts/api_contract.py \
        --binary target/debug/mpanel --engine postgres --postgres-url "$POSTGRES_URL"
}

if [ "$#" -eq 0 ]; then
    contract_check
fi

step "all tests passed on SQLite and PostgreSQL"
