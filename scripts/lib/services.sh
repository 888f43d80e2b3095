# Shared by the project's scripts: install Debian packages on demand and
# start throwaway services on loopback in a temporary folder. Source it;
# every service started here is stopped by the EXIT trap.

step() { printf '\n==> %s\n' "$*"; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# ensure_packages PKG...: installs the Debian packages that are missing.
ensure_packages() {
    local missing=() pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' \
            || missing+=("$pkg")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    step "installing ${missing[*]}"
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# A free TCP port on 127.0.0.1.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

SERVICES_DIR=""
CLEANUPS=()
cleanup_services() {
    local i
    for ((i=${#CLEANUPS[@]}-1; i>=0; i--)); do eval "${CLEANUPS[$i]}" || true; done
    [ -n "$SERVICES_DIR" ] && rm -rf "$SERVICES_DIR"
}
trap cleanup_services EXIT

services_dir() {
    if [ -z "$SERVICES_DIR" ]; then
        SERVICES_DIR=$(mktemp -d /tmp/mpanel-services.XXXXXX)
        # Services that drop privileges must be able to enter it.
        chmod 755 "$SERVICES_DIR"
    fi
}

# start_postgres: a fresh cluster on a free loopback port; sets POSTGRES_URL.
# PostgreSQL refuses to run as root, so as root it runs as `postgres`.
start_postgres() {
    services_dir
    local bin dir port run=()
    bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    dir="$SERVICES_DIR/postgres"
    port=$(free_port)
    mkdir -p "$dir"
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres: "$dir"
        run=(runuser -u postgres --)
    fi
    step "starting PostgreSQL on 127.0.0.1:$port"
    "${run[@]}" "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log"; return 1; }
    "${run[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
        start >/dev/null || { cat "$dir/server.log"; return 1; }
    CLEANUPS+=("${run[*]} $bin/pg_ctl -D $dir/data -m immediate stop >/dev/null 2>&1")
    POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
    export POSTGRES_URL
}
