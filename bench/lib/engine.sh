# The benchmarks' one option: `--engine sqlite|postgres` (default sqlite),
# read into ENGINE. Usage: parse_engine bench/NAME.sh "$@"
parse_engine() {
    local script=$1
    shift
    ENGINE=sqlite
    while [ $# -gt 0 ]; do
        case $1 in
            --engine) ENGINE=${2:?--engine sqlite|postgres}; shift 2 ;;
            --engine=*) ENGINE=${1#--engine=}; shift ;;
            *) echo "usage: bash $script [--engine sqlite|postgres]" >&2; exit 2 ;;
        esac
    done
    case $ENGINE in sqlite|postgres) ;; *) echo "--engine: sqlite or postgres" >&2; exit 2 ;; esac
}
