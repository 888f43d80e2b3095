//! Reloading nginx so that a change is served when the script goes on.
//!
//! `nginx -s reload` only signals the master and returns; the master then
//! reads the configuration again, starts new workers and tells the old
//! ones to stop taking requests, which took about 125 ms on an idle test
//! node. Until then the old workers answer with the old configuration: a
//! site reported made was not served yet, and a certificate authority
//! asking for a new site's challenge at once got the old default server's
//! 404. The script's `nginx_reload` therefore waits until every worker
//! that served before it has stopped (gone, or "shutting down"), up to
//! 10 s; with no master it can find (no pid file, or not nginx's) it
//! waits for nothing, as before.

/// Shell functions (they need `$nginx` and `$nconf`, and start no process
/// but `sleep`): `nginx_workers` sets `$before` to the workers serving
/// now, `nginx_wait` waits until none of them does, and `nginx_reload`
/// does both around the signal. They answer non-zero when the signal
/// failed or nginx did not take the configuration in time (the message on
/// standard error).
pub(super) fn nginx_reload_lines() -> &'static str {
    r#"nginx_workers() {
  before=; pidf=/run/nginx.pid
  while read -r key value rest; do
    if [ "$key" = pid ]; then pidf=${value%;}; break; fi
  done <"$nconf"
  master=; read -r master <"$pidf" 2>/dev/null
  case "$master" in ''|*[!0-9]*) return 0;; esac
  title=; IFS= read -r title <"/proc/$master/cmdline" 2>/dev/null
  case "$title" in 'nginx: master process'*) ;; *) return 0;; esac
  kids=; read -r kids <"/proc/$master/task/$master/children" 2>/dev/null
  serving $kids; before=$still
}
serving() {
  still=
  for w in "$@"; do
    title=; IFS= read -r title <"/proc/$w/cmdline" 2>/dev/null
    case "$title" in *'shutting down'*) ;; *'worker process'*) still="$still $w";; esac
  done
}
nginx_wait() {
  tries=0
  while [ -n "$before" ]; do
    serving $before; before=$still
    [ -z "$before" ] && return 0
    tries=$((tries + 1))
    if [ "$tries" -gt 500 ]; then echo 'nginx did not take the new configuration within 10 s' >&2; return 1; fi
    sleep 0.02
  done
}
nginx_reload() { nginx_workers; "$nginx" -s reload -c "$nconf" && nginx_wait; }
"#
}
