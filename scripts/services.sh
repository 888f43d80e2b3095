#!/usr/bin/env bash
# Dev helper: installs the provisioning packages, starts PowerDNS, the web node
# (sshd + nginx), the mail node (Dovecot) and the mail relay (Postfix + a
# catch-all Dovecot) on loopback in a temporary folder,
# prints their settings as `export K=V` lines (also written to env.sh in that
# folder), and keeps them running until Ctrl-C or SIGTERM, which stops them all.
#
#   bash scripts/services.sh      # as root; see docs/provisioning-harness.md
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/services.sh

# A signal ends the script through `exit`, so the EXIT trap stops everything.
trap 'exit 130' INT
trap 'exit 143' TERM

ensure_provisioning_packages
start_pdns
start_world_dns
start_web_node
start_pebble
start_mail_node
start_mail_relay
start_backup_node

service_env >"$SERVICES_DIR/env.sh"
step "running; Ctrl-C or SIGTERM stops everything (the lines below are also in $SERVICES_DIR/env.sh)"
cat "$SERVICES_DIR/env.sh"

sleep infinity &
CLEANUPS+=("kill $! 2>/dev/null")
wait $!
