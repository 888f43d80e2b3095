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
    # An `if`, not `[ … ] &&`: with no service started, the test's failure
    # would end the trap non-zero under `set -e`, and so the script (a run
    # that succeeded exited 1).
    if [ -n "$SERVICES_DIR" ]; then rm -rf "$SERVICES_DIR"; fi
}
trap cleanup_services EXIT
# A signal ends the script through `exit`, so the EXIT trap still stops
# everything (without these, SIGTERM would leave the services running).
trap 'exit 130' INT
trap 'exit 143' TERM

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

# ---------------------------------------------------------------------------
# Provisioning services: PowerDNS, the web node (sshd + nginx) and the mail
# node (Dovecot, reached over the same sshd). None of them installs anything:
# call ensure_provisioning_packages first. Facts and the commands the drivers
# use: docs/provisioning-harness.md.

# The Debian packages the provisioning services need (sudo: the mail node's
# SSH user reloads Dovecot, whose master runs as root, through one sudo rule).
PROVISIONING_PACKAGES=(pdns-server pdns-backend-sqlite3 sqlite3 openssh-server openssh-client
    nginx php-fpm dovecot-imapd dnsutils curl sudo restic pebble openssl)

# Every start_* function appends the names of the variables it exports here.
SERVICE_ENV_VARS=()

# ensure_provisioning_packages [PKG...]: ensure_packages for PROVISIONING_PACKAGES
# (and any extra PKG) with a policy-rc.d that forbids starting services, so the
# install leaves no system nginx/sshd/dovecot/pdns running.
ensure_provisioning_packages() {
    local policy=/usr/sbin/policy-rc.d created="" rc=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\n# written by mPanel scripts/lib/services.sh during a package install\nexit 101\n' \
            | as_root tee "$policy" >/dev/null
        as_root chmod 755 "$policy"
        created=1
    fi
    ensure_packages "${PROVISIONING_PACKAGES[@]}" "$@" || rc=$?
    [ -n "$created" ] && as_root rm -f "$policy"
    return "$rc"
}

# service_env: the exported service variables as `export K=V` lines.
service_env() {
    local name
    for name in "${SERVICE_ENV_VARS[@]}"; do printf 'export %s=%q\n' "$name" "${!name}"; done
}

_svc_need_root() {
    [ "$(id -u)" -eq 0 ] || { echo "$1 must run as root (it creates users and starts sshd)" >&2; return 1; }
}

_svc_random() { od -An -tx1 -N"${1:-16}" /dev/urandom | tr -d ' \n'; }

# Alive and not a zombie (a child we have not reaped yet).
_svc_alive() {
    local stat
    stat=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    [[ $stat != Z* ]]
}

# _svc_stop PID: SIGTERM, SIGKILL after 10 s, then reap it if it is our child.
_svc_stop() {
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 100; i++)); do
        _svc_alive "$pid" || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# _svc_wait NAME LOG PID CMD...: polls CMD every 0.1 s for up to 10 s; on
# timeout, or if PID exits first, prints LOG and fails.
_svc_wait() {
    local name=$1 log=$2 pid=$3 end=$((SECONDS + 10))
    shift 3
    while ((SECONDS < end)); do
        "$@" >/dev/null 2>&1 && return 0
        _svc_alive "$pid" || break
        sleep 0.1
    done
    echo "$name did not come up; $log:" >&2
    cat "$log" >&2 || true
    return 1
}

# _svc_banner PORT PREFIX: the TCP server on 127.0.0.1:PORT greets with PREFIX.
_svc_banner() {
    timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && IFS= read -r line <&3 && [[ $line == "$2"* ]]' _ "$@"
}

_svc_tcp_open() { timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1"; }

# _svc_user NAME HOME: a system user with its own group, a shell, and an
# unlocked password field ('*': no password, but sshd accepts its keys).
_svc_user() {
    local name=$1 home=$2
    if ! getent passwd "$name" >/dev/null; then
        useradd --system --user-group --home-dir "$home" --shell /bin/bash "$name"
    fi
    usermod -p '*' -s /bin/bash "$name"
    install -d -o "$name" -g "$name" -m 0750 "$home"
}

# _svc_pdns NAME: a PowerDNS authoritative server (gsqlite3) in its own
# folder on a free loopback port, with its HTTP API on another; sets
# _SVC_PDNS_API_URL, _SVC_PDNS_API_KEY and _SVC_PDNS_DNS_PORT. Packet and
# query caches are off so a change made through the API is answered at once.
_svc_pdns() {
    services_dir
    local name=$1 dir="$SERVICES_DIR/$1" dns_port api_port key schema pid
    mkdir -p "$dir"
    # The full schema (not the NN_to_MM_ upgrade files); the copy under
    # /usr/share/doc may be excluded from the install, so take one that exists.
    for schema in $(dpkg -L pdns-backend-sqlite3 | grep '/schema\.sqlite3\.sql$') ""; do
        [ -f "$schema" ] && break
    done
    [ -n "$schema" ] || { echo "pdns-backend-sqlite3's schema.sqlite3.sql not found" >&2; return 1; }
    sqlite3 "$dir/pdns.sqlite3" <"$schema"
    dns_port=$(free_port)
    api_port=$(free_port)
    key=$(_svc_random 16)
    cat >"$dir/pdns.conf" <<CONF
launch=gsqlite3
gsqlite3-database=$dir/pdns.sqlite3
local-address=127.0.0.1
local-port=$dns_port
api=yes
api-key=$key
webserver=yes
webserver-address=127.0.0.1
webserver-port=$api_port
webserver-allow-from=127.0.0.1
default-soa-content=ns1.example.net. hostmaster.@ 0 10800 3600 604800 3600
cache-ttl=0
query-cache-ttl=0
negquery-cache-ttl=0
security-poll-suffix=
CONF
    chmod 600 "$dir/pdns.conf"
    step "starting PowerDNS ($name) on 127.0.0.1:$dns_port (API on :$api_port)"
    pdns_server --config-dir="$dir" --guardian=no --daemon=no --disable-syslog \
        --socket-dir="$dir" --write-pid=no </dev/null >"$dir/pdns.log" 2>&1 &
    pid=$!
    CLEANUPS+=("_svc_stop $pid")
    _svc_wait "PowerDNS ($name)" "$dir/pdns.log" "$pid" \
        curl -sf -m 1 -H "X-API-Key: $key" "http://127.0.0.1:$api_port/api/v1/servers/localhost" || return 1
    _svc_wait "PowerDNS ($name)" "$dir/pdns.log" "$pid" _svc_tcp_open "$dns_port" || return 1
    _SVC_PDNS_API_URL="http://127.0.0.1:$api_port"
    _SVC_PDNS_API_KEY=$key
    _SVC_PDNS_DNS_PORT=$dns_port
}

# start_pdns: the PowerDNS mPanel provisions zones into; exports
# PDNS_API_URL, PDNS_API_KEY, PDNS_DNS_PORT.
start_pdns() {
    _svc_pdns pdns || return 1
    PDNS_API_URL=$_SVC_PDNS_API_URL
    PDNS_API_KEY=$_SVC_PDNS_API_KEY
    PDNS_DNS_PORT=$_SVC_PDNS_DNS_PORT
    export PDNS_API_URL PDNS_API_KEY PDNS_DNS_PORT
    SERVICE_ENV_VARS+=(PDNS_API_URL PDNS_API_KEY PDNS_DNS_PORT)
}

# start_world_dns: a second, separate PowerDNS that plays "the world's DNS"
# for the domain-control tests: the registry's delegations and the
# customer's own DNS provider (where the TXT challenge is published). mPanel
# never writes to it, so mPanel's own zones can never satisfy a proof; the
# panel under test uses it as its dns_verification_resolver. Exports
# WORLD_DNS_API_URL, WORLD_DNS_API_KEY, WORLD_DNS_PORT.
start_world_dns() {
    _svc_pdns world-dns || return 1
    WORLD_DNS_API_URL=$_SVC_PDNS_API_URL
    WORLD_DNS_API_KEY=$_SVC_PDNS_API_KEY
    WORLD_DNS_PORT=$_SVC_PDNS_DNS_PORT
    export WORLD_DNS_API_URL WORLD_DNS_API_KEY WORLD_DNS_PORT
    SERVICE_ENV_VARS+=(WORLD_DNS_API_URL WORLD_DNS_API_KEY WORLD_DNS_PORT)
}

# One sshd for both nodes (each node has its own user and key), started by the
# first node that needs it. Keys are read from $SERVICES_DIR/sshd/authorized_keys/USER
# (StrictModes no: that path is under /tmp, which StrictModes rejects).
_SVC_SSHD_PORT=""
# The group of hosting accounts' SFTP users (shared by harnesses side by side).
_SVC_SFTP_GROUP=mpanel-sftp
# The group of the backup node's per-tenant logins (made by its helper).
_SVC_BACKUP_GROUP=mpanel-backup-sftp
_svc_sshd() {
    [ -n "$_SVC_SSHD_PORT" ] && return 0
    services_dir
    local dir="$SERVICES_DIR/sshd" port pid
    install -d -m 0755 "$dir" "$dir/authorized_keys" "$dir/sftp_keys" "$dir/backup_keys" /run/sshd
    getent group "$_SVC_SFTP_GROUP" >/dev/null || groupadd "$_SVC_SFTP_GROUP"
    getent group "$_SVC_BACKUP_GROUP" >/dev/null || groupadd "$_SVC_BACKUP_GROUP"
    ssh-keygen -q -t ed25519 -N '' -C mpanel-harness-host -f "$dir/ssh_host_ed25519_key"
    port=$(free_port)
    cat >"$dir/sshd_config" <<CONF
Port $port
ListenAddress 127.0.0.1
HostKey $dir/ssh_host_ed25519_key
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys/%u
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PermitRootLogin no
X11Forwarding no
AllowAgentForwarding no
AllowTcpForwarding no
PrintMotd no
MaxStartups 200
MaxSessions 100
Subsystem sftp internal-sftp
# Hosting accounts (the web node's helper puts them in this group): SFTP
# only, chrooted to their root-owned home, keys written by the helper,
# passwords allowed.
Match Group $_SVC_SFTP_GROUP
    ChrootDirectory %h
    ForceCommand internal-sftp -u 0027
    AuthorizedKeysFile $dir/sftp_keys/%u
    PasswordAuthentication yes
    AllowTcpForwarding no
    PermitTunnel no
# The backup node's logins, one per tenant repository (its helper puts
# them in this group): SFTP only, chrooted to their root-owned home, the
# one key the helper wrote.
Match Group $_SVC_BACKUP_GROUP
    ChrootDirectory %h
    ForceCommand internal-sftp
    AuthorizedKeysFile $dir/backup_keys/%u
    PasswordAuthentication no
    DisableForwarding yes
    PermitTTY no
    PermitTunnel no
CONF
    printf '[127.0.0.1]:%s %s\n' "$port" "$(cut -d' ' -f1,2 "$dir/ssh_host_ed25519_key.pub")" >"$dir/known_hosts"
    step "starting sshd on 127.0.0.1:$port"
    /usr/sbin/sshd -D -f "$dir/sshd_config" -E "$dir/sshd.log" </dev/null >>"$dir/sshd.log" 2>&1 &
    pid=$!
    # Per-connection sshd processes are its children: stop them too.
    CLEANUPS+=("pkill -TERM -P $pid 2>/dev/null; _svc_stop $pid")
    _svc_wait sshd "$dir/sshd.log" "$pid" _svc_banner "$port" SSH-2.0- || return 1
    _SVC_SSHD_PORT=$port
}

# _svc_sudo_rule KIND USER COMMAND: lets USER run COMMAND as root, by a
# sudoers file checked with visudo and removed on exit (sudo ignores file
# names with a dot: the services folder's name has them replaced).
_svc_sudo_rule() {
    local file
    file="/etc/sudoers.d/mpanel-harness-$1$(basename "$SERVICES_DIR" | tr -c 'A-Za-z0-9\n' '-')"
    printf '%s ALL=(root) NOPASSWD: %s\n' "$2" "$3" >"$file.tmp"
    chmod 0440 "$file.tmp"
    visudo -qcf "$file.tmp" || { rm -f "$file.tmp"; return 1; }
    mv -f "$file.tmp" "$file"
    CLEANUPS+=("rm -f $file")
}

# _svc_ssh_key USER: a client key pair for USER, authorized on the harness sshd;
# prints the private key's path.
_svc_ssh_key() {
    local user=$1 dir="$SERVICES_DIR/sshd"
    rm -f "$dir/id_ed25519_$user" "$dir/id_ed25519_$user.pub"
    ssh-keygen -q -t ed25519 -N '' -C "mpanel-harness-$user" -f "$dir/id_ed25519_$user"
    install -m 0644 "$dir/id_ed25519_$user.pub" "$dir/authorized_keys/$user"
    echo "$dir/id_ed25519_$user"
}

# start_web_node: sshd + nginx + PHP-FPM on loopback. nginx runs as the SSH
# user mpanel-web (a non-root master on a high port, everything in its own
# folder), so that user tests and reloads it without sudo. Hosting accounts
# are Unix users made by the node helper (scripts/node/mpanel-web-helper),
# which mpanel-web runs through one sudo rule; their homes (SFTP chroots)
# are under /srv/<services folder name> (sshd refuses a chroot below /tmp);
# a root PHP-FPM master runs one pool per account from the helper's pool
# folder. Exports WEB_SSH_HOST, WEB_SSH_PORT, WEB_SSH_USER, WEB_SSH_KEY,
# WEB_SSH_KNOWN_HOSTS, WEB_HTTP_PORT, WEB_NGINX_CONF, WEB_SITES_DIR,
# WEB_ROOT_DIR, WEB_NGINX_TEST_CMD, WEB_NGINX_RELOAD_CMD, WEB_HELPER,
# WEB_PHP_SOCKET_DIR, WEB_PHP_POOL_DIR, WEB_ARCHIVE_DIR, WEB_SFTP_KEYS_DIR,
# WEB_SFTP_GROUP.
start_web_node() {
    _svc_need_root start_web_node || return 1
    services_dir
    local user=mpanel-web dir="$SERVICES_DIR/web" port https_port key pid nginx=(/usr/sbin/nginx -e) homes php fpm
    _svc_user "$user" /var/lib/mpanel-web
    _svc_sshd || return 1
    key=$(_svc_ssh_key "$user")
    install -d -o "$user" -g "$user" -m 0755 "$dir" "$dir/sites" "$dir/logs" "$dir/run" "$dir/tmp"
    port=$(free_port)
    https_port=$(free_port)
    # `-e`: the master does not try the packaged /var/log/nginx/error.log
    # (not writable by mpanel-web) before it reads the configuration.
    nginx+=("$dir/logs/error.log" -c "$dir/nginx.conf")
    cat >"$dir/nginx.conf" <<CONF
# mPanel test web node: a non-root nginx, all state under $dir.
daemon off;
worker_processes auto;
pid $dir/run/nginx.pid;
error_log $dir/logs/error.log;
events { worker_connections 1024; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    sendfile on;
    server_names_hash_bucket_size 128;
    access_log $dir/logs/access.log;
    client_body_temp_path $dir/tmp/client_body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    server {
        listen 127.0.0.1:$port default_server;
        server_name _;
        return 404;
    }
    # HTTPS for a name no site has a certificate for: no handshake, so
    # nobody is shown another site's certificate.
    server {
        listen 127.0.0.1:$https_port ssl default_server;
        ssl_reject_handshake on;
    }
    include $dir/sites/*.conf;
}
CONF
    chmod 0644 "$dir/nginx.conf"

    # Account homes: every component of an SFTP chroot must be root-owned
    # and not group/world-writable, which /tmp is not.
    homes="/srv/$(basename "$SERVICES_DIR")"
    install -d -m 0755 "$homes"
    # Accounts a test left behind go with the harness.
    CLEANUPS+=("_svc_web_accounts $homes")
    # What root runs or reads (the helper, its settings, PHP-FPM's own
    # files) lives outside $dir, which mpanel-web owns and could rearrange.
    local rootdir="$SERVICES_DIR/web-root"
    php="$rootdir/php"
    install -d -m 0755 "$rootdir" "$php" "$php/pools" "$php/run" "$rootdir/bin"
    fpm=$(ls /usr/sbin/php-fpm* 2>/dev/null | sort -V | tail -n 1)
    [ -x "$fpm" ] || { echo "php-fpm is not installed" >&2; return 1; }
    cat >"$php/php-fpm.conf" <<CONF
; mPanel test web node: a private PHP-FPM master (root, to switch pool users).
[global]
pid = $php/run/php-fpm.pid
error_log = $php/php-fpm.log
daemonize = no
include = $php/pools/*.conf
; PHP-FPM refuses to start without a pool: one that serves nobody.
[mpanel-harness-idle]
user = nobody
group = nogroup
listen = $php/run/idle.sock
pm = ondemand
pm.max_children = 1
CONF
    # The helper and its settings: root-owned, beside each other.
    install -m 0755 -o root -g root "$(dirname "${BASH_SOURCE[0]}")/../node/mpanel-web-helper" "$rootdir/bin/mpanel-web-helper"
    install -m 0755 -o root -g root "$(dirname "${BASH_SOURCE[0]}")/../node/mpanel-restic" "$rootdir/bin/mpanel-restic"
    cat >"$rootdir/bin/mpanel-web-helper.conf" <<CONF
HOME_BASE=$homes
NGINX_GROUP=$user
SFTP_GROUP=$_SVC_SFTP_GROUP
POOL_DIR=$php/pools
SOCKET_DIR=$php/run
PHP_FPM_BIN=$fpm
PHP_FPM_CONF=$php/php-fpm.conf
PHP_FPM_PIDFILE=$php/run/php-fpm.pid
PHP_FPM_LOG=$php/php-fpm.log
KEYS_DIR=$SERVICES_DIR/sshd/sftp_keys
ARCHIVE_DIR=$dir/archives
CONF
    chmod 0644 "$rootdir/bin/mpanel-web-helper.conf"
    _svc_sudo_rule web- "$user" "$rootdir/bin/mpanel-web-helper" || return 1

    step "starting PHP-FPM ($fpm, master as root)"
    "$fpm" -t -y "$php/php-fpm.conf" >"$php/php-fpm.out" 2>&1 || { cat "$php/php-fpm.out" >&2; return 1; }
    "$fpm" -F -y "$php/php-fpm.conf" </dev/null >"$php/php-fpm.out" 2>&1 &
    pid=$!
    CLEANUPS+=("_svc_stop $pid")
    _svc_wait php-fpm "$php/php-fpm.log" "$pid" test -S "$php/run/idle.sock" || return 1

    step "starting nginx (as $user) on 127.0.0.1:$port"
    setpriv --reuid="$user" --regid="$user" --init-groups --reset-env \
        "${nginx[@]}" </dev/null >"$dir/nginx.out" 2>&1 &
    pid=$!
    CLEANUPS+=("_svc_stop $pid")
    _svc_wait nginx "$dir/nginx.out" "$pid" curl -s -o /dev/null -m 1 "http://127.0.0.1:$port/" \
        || { cat "$dir/logs/error.log" >&2 || true; return 1; }
    WEB_SSH_HOST=127.0.0.1
    WEB_SSH_PORT=$_SVC_SSHD_PORT
    WEB_SSH_USER=$user
    WEB_SSH_KEY=$key
    WEB_SSH_KNOWN_HOSTS="$SERVICES_DIR/sshd/known_hosts"
    WEB_HTTP_PORT=$port
    # What sites' HTTPS vhosts listen on (the default server refuses
    # handshakes for names without a certificate).
    WEB_HTTPS_PORT=$https_port
    WEB_NGINX_CONF="$dir/nginx.conf"
    WEB_SITES_DIR="$dir/sites"
    WEB_ROOT_DIR=$homes
    WEB_NGINX_TEST_CMD="/usr/sbin/nginx -q -t -c $dir/nginx.conf"
    WEB_NGINX_RELOAD_CMD="/usr/sbin/nginx -s reload -c $dir/nginx.conf"
    WEB_HELPER="sudo -n $rootdir/bin/mpanel-web-helper"
    WEB_PHP_SOCKET_DIR="$php/run"
    WEB_PHP_POOL_DIR="$php/pools"
    WEB_ARCHIVE_DIR="$dir/archives"
    WEB_SFTP_KEYS_DIR="$SERVICES_DIR/sshd/sftp_keys"
    WEB_SFTP_GROUP=$_SVC_SFTP_GROUP
    export WEB_SSH_HOST WEB_SSH_PORT WEB_SSH_USER WEB_SSH_KEY WEB_SSH_KNOWN_HOSTS WEB_HTTP_PORT WEB_HTTPS_PORT \
        WEB_NGINX_CONF WEB_SITES_DIR WEB_ROOT_DIR WEB_NGINX_TEST_CMD WEB_NGINX_RELOAD_CMD \
        WEB_HELPER WEB_PHP_SOCKET_DIR WEB_PHP_POOL_DIR WEB_ARCHIVE_DIR WEB_SFTP_KEYS_DIR WEB_SFTP_GROUP
    SERVICE_ENV_VARS+=(WEB_SSH_HOST WEB_SSH_PORT WEB_SSH_USER WEB_SSH_KEY WEB_SSH_KNOWN_HOSTS
        WEB_HTTP_PORT WEB_HTTPS_PORT WEB_NGINX_CONF WEB_SITES_DIR WEB_ROOT_DIR WEB_NGINX_TEST_CMD WEB_NGINX_RELOAD_CMD
        WEB_HELPER WEB_PHP_SOCKET_DIR WEB_PHP_POOL_DIR WEB_ARCHIVE_DIR WEB_SFTP_KEYS_DIR WEB_SFTP_GROUP)
}

# start_pebble: Pebble, the ACME test CA (Debian's `pebble`), on loopback,
# after start_pdns and start_web_node: it validates HTTP-01 challenges at the
# web node's nginx (its httpPort is the node's HTTP port) and resolves names
# through mPanel's PowerDNS, so a site's name reaches the node only when its
# zone says so. Its own HTTPS listeners use a certificate from a private CA
# made here (Debian ships none): PEBBLE_CA_FILE, what mPanel trusts to reach
# the directory. Certificates live 90 days, as Let's Encrypt's. The root
# that signs sites' certificates is new at every start: tests fetch it from
# PEBBLE_MANAGEMENT_URL/roots/0. Exports PEBBLE_DIRECTORY_URL,
# PEBBLE_MANAGEMENT_URL, PEBBLE_CA_FILE.
start_pebble() {
    services_dir
    local dir="$SERVICES_DIR/pebble" port mport tport pid
    [ -n "${WEB_HTTP_PORT:-}" ] && [ -n "${PDNS_DNS_PORT:-}" ] \
        || { echo "start_pebble needs start_pdns and start_web_node first" >&2; return 1; }
    install -d -m 0755 "$dir"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=mPanel harness Pebble CA" \
        -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null || return 1
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$dir/key.pem" \
        -out "$dir/req.csr" 2>/dev/null || return 1
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$dir/ext.cnf"
    openssl x509 -req -in "$dir/req.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
        -days 3650 -extfile "$dir/ext.cnf" -out "$dir/cert.pem" 2>/dev/null || return 1
    port=$(free_port)
    mport=$(free_port)
    tport=$(free_port)
    cat >"$dir/pebble.json" <<CONF
{ "pebble": {
    "listenAddress": "127.0.0.1:$port",
    "managementListenAddress": "127.0.0.1:$mport",
    "certificate": "$dir/cert.pem", "privateKey": "$dir/key.pem",
    "httpPort": $WEB_HTTP_PORT, "tlsPort": $tport,
    "ocspResponderURL": "", "externalAccountBindingRequired": false,
    "certificateValidityPeriod": 7776000 } }
CONF
    step "starting Pebble (ACME) on 127.0.0.1:$port, validating at 127.0.0.1:$WEB_HTTP_PORT"
    PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 \
        pebble -config "$dir/pebble.json" -dnsserver "127.0.0.1:$PDNS_DNS_PORT" \
        </dev/null >"$dir/pebble.log" 2>&1 &
    pid=$!
    CLEANUPS+=("_svc_stop $pid")
    _svc_wait pebble "$dir/pebble.log" "$pid" \
        curl -sf -o /dev/null -m 1 --cacert "$dir/ca.pem" "https://127.0.0.1:$port/dir" || return 1
    PEBBLE_DIRECTORY_URL="https://127.0.0.1:$port/dir"
    PEBBLE_MANAGEMENT_URL="https://127.0.0.1:$mport"
    PEBBLE_CA_FILE="$dir/ca.pem"
    export PEBBLE_DIRECTORY_URL PEBBLE_MANAGEMENT_URL PEBBLE_CA_FILE
    SERVICE_ENV_VARS+=(PEBBLE_DIRECTORY_URL PEBBLE_MANAGEMENT_URL PEBBLE_CA_FILE)
}

# _svc_web_accounts HOMES: removes the hosting accounts whose home is under
# HOMES (users a test did not terminate), then HOMES.
_svc_web_accounts() {
    local homes=$1 name
    for name in $(getent passwd | awk -F: -v h="$homes/" 'index($6, h) == 1 { print $1 }'); do
        pkill -KILL -u "$name" 2>/dev/null || true
        userdel "$name" 2>/dev/null || true
        groupdel "$name" 2>/dev/null || true
    done
    rm -rf "$homes"
}

# start_mail_node: Dovecot (imap only, no TLS, plaintext logins allowed, no
# failed-login slowdown) on a free loopback port, reached over the harness
# sshd as mpanel-mail, the user that owns the maildirs and the passwd-file;
# its one root command, `doveadm -c CONF reload`, is allowed by a sudoers
# file removed on exit. Exports MAIL_IMAP_PORT, MAIL_DOVECOT_CONF,
# MAIL_PASSWD_FILE, MAIL_ROOT_DIR, MAIL_UID, MAIL_GID, MAIL_RELOAD_CMD,
# MAIL_SSH_HOST, MAIL_SSH_PORT, MAIL_SSH_USER, MAIL_SSH_KEY,
# MAIL_SSH_KNOWN_HOSTS.
start_mail_node() {
    _svc_need_root start_mail_node || return 1
    services_dir
    local user=mpanel-mail dir="$SERVICES_DIR/mail" port key pid uid gid
    _svc_user "$user" /var/lib/mpanel-mail
    uid=$(id -u "$user")
    gid=$(id -g "$user")
    _svc_sshd || return 1
    key=$(_svc_ssh_key "$user")
    install -d -m 0755 "$dir" "$dir/run" "$dir/state"
    # setgid: files the SSH user creates here belong to group dovecot, whose
    # auth process reads the passwd-file.
    install -d -o "$user" -g dovecot -m 2750 "$dir/auth"
    install -o "$user" -g dovecot -m 0640 /dev/null "$dir/auth/passwd"
    install -d -o "$user" -g "$user" -m 0750 "$dir/mailboxes"
    port=$(free_port)
    cat >"$dir/dovecot.conf" <<CONF
# mPanel test mail node: Dovecot with all state under $dir.
base_dir = $dir/run
state_dir = $dir/state
instance_name = $(basename "$SERVICES_DIR")
log_path = $dir/dovecot.log
auth_verbose = yes
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
first_valid_uid = $uid
last_valid_uid = $uid
first_valid_gid = $gid
last_valid_gid = $gid
mail_location = maildir:~/Maildir
passdb {
  driver = passwd-file
  args = scheme=ARGON2ID username_format=%u $dir/auth/passwd
}
userdb {
  driver = passwd-file
  args = username_format=%u $dir/auth/passwd
}
protocol imap {
  mail_max_userip_connections = 1000
}
# Dovecot's high-performance login mode: long-lived login processes, not
# a new one per connection (the bench's checks log in every 50 ms).
service imap-login {
  service_count = 0
  process_min_avail = 2
  inet_listener imap {
    address = 127.0.0.1
    port = $port
  }
  inet_listener imaps {
    port = 0
  }
}
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
# doveadm run by the SSH user reports its events here (else: an error line).
service stats {
  unix_listener stats-writer {
    mode = 0666
  }
}
CONF
    chmod 0644 "$dir/dovecot.conf"
    _svc_sudo_rule "" "$user" "/usr/bin/doveadm -c $dir/dovecot.conf reload" || return 1
    step "starting Dovecot on 127.0.0.1:$port"
    dovecot -F -c "$dir/dovecot.conf" </dev/null >"$dir/dovecot.out" 2>&1 &
    pid=$!
    CLEANUPS+=("_svc_stop $pid")
    _svc_wait Dovecot "$dir/dovecot.out" "$pid" _svc_banner "$port" '* OK' || { cat "$dir/dovecot.log" >&2 || true; return 1; }
    MAIL_IMAP_PORT=$port
    MAIL_DOVECOT_CONF="$dir/dovecot.conf"
    MAIL_PASSWD_FILE="$dir/auth/passwd"
    MAIL_ROOT_DIR="$dir/mailboxes"
    MAIL_UID=$uid
    MAIL_GID=$gid
    MAIL_RELOAD_CMD="sudo -n /usr/bin/doveadm -c $dir/dovecot.conf reload"
    MAIL_SSH_HOST=127.0.0.1
    MAIL_SSH_PORT=$_SVC_SSHD_PORT
    MAIL_SSH_USER=$user
    MAIL_SSH_KEY=$key
    MAIL_SSH_KNOWN_HOSTS="$SERVICES_DIR/sshd/known_hosts"
    export MAIL_IMAP_PORT MAIL_DOVECOT_CONF MAIL_PASSWD_FILE MAIL_ROOT_DIR MAIL_UID MAIL_GID MAIL_RELOAD_CMD \
        MAIL_SSH_HOST MAIL_SSH_PORT MAIL_SSH_USER MAIL_SSH_KEY MAIL_SSH_KNOWN_HOSTS
    SERVICE_ENV_VARS+=(MAIL_IMAP_PORT MAIL_DOVECOT_CONF MAIL_PASSWD_FILE MAIL_ROOT_DIR MAIL_UID MAIL_GID
        MAIL_RELOAD_CMD MAIL_SSH_HOST MAIL_SSH_PORT MAIL_SSH_USER MAIL_SSH_KEY MAIL_SSH_KNOWN_HOSTS)
}

# start_backup_node: the place restic repositories live, on the harness
# sshd. mPanel logs in as mpanel-backup, whose one sudo rule runs the
# backup helper (scripts/node/mpanel-backup-helper): it makes each tenant
# repository's own login, chrooted to /srv/<services folder name>-backups/
# USER (sshd refuses a chroot below /tmp) with the repository in repo/; the
# web and mail nodes run restic with that login's key. Exports
# BACKUP_SSH_HOST, BACKUP_SSH_PORT, BACKUP_SSH_USER, BACKUP_SSH_KEY,
# BACKUP_SSH_KNOWN_HOSTS, BACKUP_HELPER, BACKUP_REPO_ROOT (the logins'
# homes), BACKUP_KEYS_DIR (their authorized keys) and BACKUP_LEGACY_ROOT
# (where repositories were made before logins were per tenant).
start_backup_node() {
    _svc_need_root start_backup_node || return 1
    services_dir
    local user=mpanel-backup rootdir="$SERVICES_DIR/backup-root" base legacy key
    command -v restic >/dev/null || { echo "restic is not installed" >&2; return 1; }
    _svc_user "$user" /var/lib/mpanel-backup
    _svc_sshd || return 1
    key=$(_svc_ssh_key "$user")
    base="/srv/$(basename "$SERVICES_DIR")-backups"
    install -d -m 0755 "$base"
    # Logins a test left behind go with the harness.
    CLEANUPS+=("_svc_web_accounts $base")
    install -d -m 0755 "$rootdir" "$rootdir/bin"
    # Where repositories were made before logins were per tenant (the
    # helper's LEGACY_ROOT: it moves one found there into its login, on
    # the same filesystem as the logins' homes).
    legacy="$base-legacy"
    install -d -o "$user" -g "$user" -m 0700 "$legacy"
    CLEANUPS+=("rm -rf $legacy")
    install -m 0755 -o root -g root "$(dirname "${BASH_SOURCE[0]}")/../node/mpanel-backup-helper" \
        "$rootdir/bin/mpanel-backup-helper"
    cat >"$rootdir/bin/mpanel-backup-helper.conf" <<CONF
REPO_BASE=$base
LOGIN_GROUP=$_SVC_BACKUP_GROUP
KEYS_DIR=$SERVICES_DIR/sshd/backup_keys
LEGACY_ROOT=$legacy
CONF
    chmod 0644 "$rootdir/bin/mpanel-backup-helper.conf"
    _svc_sudo_rule backup- "$user" "$rootdir/bin/mpanel-backup-helper" || return 1
    step "backup node: SSH as $user on 127.0.0.1:$_SVC_SSHD_PORT, a login per tenant under $base"
    BACKUP_SSH_HOST=127.0.0.1
    BACKUP_SSH_PORT=$_SVC_SSHD_PORT
    BACKUP_SSH_USER=$user
    BACKUP_SSH_KEY=$key
    BACKUP_SSH_KNOWN_HOSTS="$SERVICES_DIR/sshd/known_hosts"
    BACKUP_HELPER="sudo -n $rootdir/bin/mpanel-backup-helper"
    BACKUP_REPO_ROOT=$base
    BACKUP_KEYS_DIR="$SERVICES_DIR/sshd/backup_keys"
    BACKUP_LEGACY_ROOT=$legacy
    export BACKUP_SSH_HOST BACKUP_SSH_PORT BACKUP_SSH_USER BACKUP_SSH_KEY BACKUP_SSH_KNOWN_HOSTS BACKUP_HELPER \
        BACKUP_REPO_ROOT BACKUP_KEYS_DIR BACKUP_LEGACY_ROOT
    SERVICE_ENV_VARS+=(BACKUP_SSH_HOST BACKUP_SSH_PORT BACKUP_SSH_USER BACKUP_SSH_KEY BACKUP_SSH_KNOWN_HOSTS
        BACKUP_HELPER BACKUP_REPO_ROOT BACKUP_KEYS_DIR BACKUP_LEGACY_ROOT)
}

# start_mail_relay: the real mail path for the e-mail mPanel sends. Postfix
# (its own instance: config, queue and log under $SERVICES_DIR) accepts SMTP
# on loopback for any recipient domain and hands every message by LMTP to a
# catch-all Dovecot, where any address logs in over IMAP with the password
# `inbox` and reads what it was sent. A second Dovecot, not the mail node's:
# the mail node's users are the mailboxes mPanel provisions, the recipients
# of mPanel's own mail are any customer's address. Exports SMTP_RELAY_PORT,
# INBOX_IMAP_PORT and INBOX_DIR.
start_mail_relay() {
    _svc_need_root start_mail_relay || return 1
    services_dir
    if ! dpkg-query -W -f='${Status}' postfix 2>/dev/null | grep -q 'install ok installed'; then
        # No /etc/postfix/main.cf, no system instance: ours has its own.
        echo "postfix postfix/main_mailer_type select No configuration" | as_root debconf-set-selections
    fi
    ensure_provisioning_packages postfix dovecot-lmtpd || return 1
    local dir="$SERVICES_DIR/relay" user=mpanel-inbox smtp lmtp imap pid uid gid
    _svc_user "$user" /var/lib/mpanel-inbox
    uid=$(id -u "$user")
    gid=$(id -g "$user")
    install -d -m 0755 "$dir" "$dir/etc" "$dir/spool" "$dir/log" "$dir/dovecot" "$dir/dovecot/run" "$dir/dovecot/state"
    install -d -o postfix -m 0700 "$dir/data"
    install -d -o "$user" -g "$user" -m 0750 "$dir/mail"
    smtp=$(free_port)
    lmtp=$(free_port)
    imap=$(free_port)
    cat >"$dir/etc/main.cf" <<CONF
# mPanel test mail relay: every domain is relayed to the catch-all Dovecot.
compatibility_level = 3.6
queue_directory = $dir/spool
data_directory = $dir/data
mail_owner = postfix
setgid_group = postdrop
myhostname = relay.mpanel.test
mydomain = mpanel.test
myorigin = \$mydomain
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relay_domains = static:ALL
relay_recipient_maps =
transport_maps = static:lmtp:inet:127.0.0.1:$lmtp
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
alias_maps =
alias_database =
maillog_file = $dir/log/postfix.log
maillog_file_prefixes = /var, /dev/stdout, $dir
smtputf8_enable = no
message_size_limit = 20480000
CONF
    cat >"$dir/etc/master.cf" <<CONF
127.0.0.1:$smtp inet n - n - - smtpd
pickup    unix  n  -  n  60  1  pickup
cleanup   unix  n  -  n  -   0  cleanup
qmgr      unix  n  -  n  300 1  qmgr
rewrite   unix  -  -  n  -   -  trivial-rewrite
bounce    unix  -  -  n  -   0  bounce
defer     unix  -  -  n  -   0  bounce
trace     unix  -  -  n  -   0  bounce
verify    unix  -  -  n  -   1  verify
flush     unix  n  -  n  1000? 0 flush
proxymap  unix  -  -  n  -   -  proxymap
proxywrite unix -  -  n  -   1  proxymap
smtp      unix  -  -  n  -   -  smtp
relay     unix  -  -  n  -   -  smtp
showq     unix  n  -  n  -   -  showq
error     unix  -  -  n  -   -  error
retry     unix  -  -  n  -   -  error
discard   unix  -  -  n  -   -  discard
lmtp      unix  -  -  n  -   -  lmtp
anvil     unix  -  -  n  -   1  anvil
scache    unix  -  -  n  -   1  scache
postlog   unix-dgram n - n - 1  postlogd
CONF
    cat >"$dir/dovecot/dovecot.conf" <<CONF
# mPanel test inbox: a catch-all Dovecot behind the relay.
base_dir = $dir/dovecot/run
state_dir = $dir/dovecot/state
instance_name = $(basename "$SERVICES_DIR")-inbox
log_path = $dir/dovecot/dovecot.log
protocols = imap lmtp
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
first_valid_uid = $uid
last_valid_uid = $uid
mail_location = maildir:~/Maildir
passdb {
  driver = static
  args = password=inbox
}
userdb {
  driver = static
  args = uid=$uid gid=$gid home=$dir/mail/%d/%n allow_all_users=yes
}
protocol imap {
  mail_max_userip_connections = 1000
}
# Like the mail node's: long-lived login processes, not one per
# connection (the tests poll this inbox with a new login each time).
service imap-login {
  service_count = 0
  process_min_avail = 2
  inet_listener imap {
    address = 127.0.0.1
    port = $imap
  }
  inet_listener imaps {
    port = 0
  }
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = $lmtp
  }
}
CONF
    chmod 0644 "$dir/dovecot/dovecot.conf"
    postfix -c "$dir/etc" check || return 1
    step "starting the mail relay: Postfix on 127.0.0.1:$smtp, inbox IMAP on 127.0.0.1:$imap"
    dovecot -F -c "$dir/dovecot/dovecot.conf" </dev/null >"$dir/dovecot/dovecot.out" 2>&1 &
    pid=$!
    CLEANUPS+=("_svc_stop $pid")
    _svc_wait "Dovecot (inbox)" "$dir/dovecot/dovecot.out" "$pid" _svc_banner "$imap" '* OK' \
        || { cat "$dir/dovecot/dovecot.log" >&2 || true; return 1; }
    # start-fg keeps the master in the foreground under a shell; stop it
    # through postfix itself (killing the shell would leave the master).
    postfix -c "$dir/etc" start-fg </dev/null >"$dir/log/postfix.out" 2>&1 &
    pid=$!
    CLEANUPS+=("postfix -c $dir/etc stop >/dev/null 2>&1; _svc_stop $pid")
    _svc_wait Postfix "$dir/log/postfix.out" "$pid" _svc_banner "$smtp" '220' \
        || { cat "$dir/log/postfix.log" >&2 || true; return 1; }
    SMTP_RELAY_PORT=$smtp
    INBOX_IMAP_PORT=$imap
    INBOX_DIR="$dir/mail"
    export SMTP_RELAY_PORT INBOX_IMAP_PORT INBOX_DIR
    SERVICE_ENV_VARS+=(SMTP_RELAY_PORT INBOX_IMAP_PORT INBOX_DIR)
}

# start_pve_fake: the Proxmox VE fake (crates/pve-fake) on a free loopback
# port, HTTPS with a certificate it makes at start. Exports PVE_FAKE_URL
# (https://127.0.0.1:PORT/api2/json), PVE_FAKE_FINGERPRINT (SHA-256, as
# PVE's ssl_fingerprint), PVE_FAKE_TOKEN_ID and PVE_FAKE_TOKEN_SECRET, read
# from the JSON line it prints. PVE_FAKE_TASK_MS and PVE_FAKE_AUTH_DELAY_MS
# (defaults 300 and 3000, as PVE's 401 delay) tune it. On stop it writes its
# state to $SERVICES_DIR/pve-fake/state.json.
start_pve_fake() {
    services_dir
    local dir="$SERVICES_DIR/pve-fake" bin pid line
    bin="${CARGO_TARGET_DIR:-target}/debug/mpanel-pve-fake"
    mkdir -p "$dir"
    step "building and starting the Proxmox VE fake"
    cargo build --locked -q -p mpanel-pve-fake || return 1
    "$bin" --port 0 --task-ms "${PVE_FAKE_TASK_MS:-300}" \
        --auth-delay-ms "${PVE_FAKE_AUTH_DELAY_MS:-3000}" \
        --state "$dir/state.json" --cert-pem "$dir/cert.pem" \
        </dev/null >"$dir/stdout" 2>"$dir/pve-fake.log" &
    pid=$!
    CLEANUPS+=("_svc_stop $pid")
    _svc_wait "Proxmox VE fake" "$dir/pve-fake.log" "$pid" grep -q '^{' "$dir/stdout" || return 1
    line=$(head -n 1 "$dir/stdout")
    read -r PVE_FAKE_URL PVE_FAKE_FINGERPRINT PVE_FAKE_TOKEN_ID PVE_FAKE_TOKEN_SECRET < <(
        python3 -c 'import json,sys; j=json.loads(sys.argv[1]); print(j["url"], j["fingerprint"], j["token_id"], j["token_secret"])' "$line"
    ) || return 1
    export PVE_FAKE_URL PVE_FAKE_FINGERPRINT PVE_FAKE_TOKEN_ID PVE_FAKE_TOKEN_SECRET
    SERVICE_ENV_VARS+=(PVE_FAKE_URL PVE_FAKE_FINGERPRINT PVE_FAKE_TOKEN_ID PVE_FAKE_TOKEN_SECRET)
}
