# Shared by scripts/test.sh: what its extra arguments mean to `cargo test`
# when cargo-nextest is not installed. They are written for nextest; the
# standard test runner takes other options, so only what has the same
# meaning there is translated, and everything else is refused with a
# message instead of being passed on to fail obscurely (or, worse, to run
# a different set of tests).
#
#   -E 'test(NAME)', -E 'test(~NAME)'   NAME as a name filter (contains)
#   -E 'test(=NAME)'                    NAME with --exact
#   -E 'test(a) | test(b)'              both filters (either matches)
#   NAME                                NAME as a name filter
#   --no-fail-fast                      passed to cargo
#
# libtest_args ARG...: sets CARGO_TEST_ARGS (for cargo, before `--`) and
# LIBTEST_ARGS (for the test binaries, after it), or prints why not on
# stderr and returns 2.

libtest_refuse() {
    printf 'scripts/test.sh: without cargo-nextest, %s is not understood.\n' "$1" >&2
    printf "  Without it only test-name filters work: -E 'test(NAME)', -E 'test(=NAME)',\n" >&2
    printf "  -E 'test(a) | test(b)', a plain NAME, and --no-fail-fast.\n" >&2
    printf '  Install it for the rest: cargo install cargo-nextest --locked\n' >&2
    return 2
}

# libtest_filter_expr EXPR: appends EXPR's name filters to LIBTEST_ARGS.
libtest_filter_expr() {
    local expr="$1" term matcher name
    local IFS='|'
    # shellcheck disable=SC2086 # split on '|' on purpose
    set -- $expr
    unset IFS
    for term in "$@"; do
        if [[ ! "$term" =~ ^[[:space:]]*test\(([=~]?)([^][()|&!\ /#=~][^][()|&!\ ]*)\)[[:space:]]*$ ]]; then
            libtest_refuse "the filter expression '$expr'"
            return 2
        fi
        matcher="${BASH_REMATCH[1]}"
        name="${BASH_REMATCH[2]}"
        if [ "$matcher" = "=" ]; then LIBTEST_EXACT=1; else LIBTEST_CONTAINS=1; fi
        LIBTEST_ARGS+=("$name")
    done
}

libtest_args() {
    CARGO_TEST_ARGS=()
    LIBTEST_ARGS=()
    LIBTEST_EXACT=0
    LIBTEST_CONTAINS=0
    while [ "$#" -gt 0 ]; do
        case "$1" in
        -E | --filter-expr | --filterset)
            [ "$#" -ge 2 ] || { libtest_refuse "$1 without an expression"; return 2; }
            libtest_filter_expr "$2" || return 2
            shift 2
            ;;
        -E=* | --filter-expr=* | --filterset=*)
            libtest_filter_expr "${1#*=}" || return 2
            shift
            ;;
        --no-fail-fast)
            CARGO_TEST_ARGS+=("$1")
            shift
            ;;
        -*)
            libtest_refuse "the option '$1'"
            return 2
            ;;
        *)
            LIBTEST_ARGS+=("$1")
            LIBTEST_CONTAINS=1
            shift
            ;;
        esac
    done
    # libtest's --exact holds for every filter: it cannot mix the two.
    if [ "$LIBTEST_EXACT" -eq 1 ]; then
        if [ "$LIBTEST_CONTAINS" -eq 1 ]; then
            libtest_refuse "test(=NAME) beside contains filters"
            return 2
        fi
        LIBTEST_ARGS=(--exact "${LIBTEST_ARGS[@]}")
    fi
}
