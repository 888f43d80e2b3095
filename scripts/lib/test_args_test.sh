#!/usr/bin/env bash
# Checks scripts/lib/test_args.sh: what scripts/test.sh hands `cargo test`
# when cargo-nextest is missing. Run: bash scripts/lib/test_args_test.sh
set -euo pipefail
cd "$(dirname "$0")"
. ./test_args.sh

failures=0
# expect "CARGO ARGS" "LIBTEST ARGS" ARG...: the translation of ARG...
expect() {
    local cargo="$1" libtest="$2"
    shift 2
    if ! libtest_args "$@" 2>/dev/null; then
        echo "FAIL: $* was refused" >&2
        failures=$((failures + 1))
        return
    fi
    if [ "${CARGO_TEST_ARGS[*]}" != "$cargo" ] || [ "${LIBTEST_ARGS[*]}" != "$libtest" ]; then
        echo "FAIL: $* gave cargo '${CARGO_TEST_ARGS[*]}' tests '${LIBTEST_ARGS[*]}'" >&2
        failures=$((failures + 1))
    fi
}
# refuse ARG...: refused with status 2 and a message naming cargo-nextest.
refuse() {
    local status=0 message
    message=$(libtest_args "$@" 2>&1) || status=$?
    if [ "$status" -ne 2 ] || [[ "$message" != *cargo-nextest* ]]; then
        echo "FAIL: $* was not refused clearly (status $status: $message)" >&2
        failures=$((failures + 1))
    fi
}

expect "" ""
expect "" "health" -E 'test(health)'
expect "" "health" -E 'test(~health)'
expect "" "health" --filter-expr='test(health)'
expect "" "--exact orders::a_key_still_in_flight_is_a_409" -E 'test(=orders::a_key_still_in_flight_is_a_409)'
expect "" "orders billing" -E 'test(orders) | test(billing)'
expect "" "orders billing" -E 'test(orders)' billing
expect "" "--exact a b" -E 'test(=a)' -E 'test(=b)'
expect "--no-fail-fast" "ready" --no-fail-fast -E 'test(ready)'
refuse -E 'package(mpanel-api)'
refuse -E 'test(/regex/)'
refuse -E 'test(a) & test(b)'
refuse -E 'not test(a)'
refuse -E 'test(=a) | test(b)'
refuse -E 'test(a)' -E 'test(=b)'
refuse -E
refuse --profile ci
refuse -j 4

if [ "$failures" -ne 0 ]; then
    echo "$failures test_args check(s) failed" >&2
    exit 1
fi
echo "test_args: all checks passed"
