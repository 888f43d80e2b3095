//! Reloading nginx so that a change is served when the script goes on.
//!
//! `nginx -s reload` only signals the master and returns; the master then
//! reads the configuration again, starts new workers and tells the old
//! ones to stop taking requests, which took about 125 ms on an idle test
//! node. Until then the old workers answer with the old configuration: a
//! site reported made was not served yet, and a certificate authority
//! asking for a new site's challenge at once got the old default server's
//! 404.
//!
//! So a script marks a reload pending (`<sites_dir>/.mpanel-reload-pending`)
//! before and after it changes a file, and then, under the reload's own
//! lock (`.mpanel-reload.lock`, taken after the node's lock or with it,
//! never before it), takes the mark aside, notes the master's workers,
//! signals and waits until none of them serves (gone, or "shutting
//! down"), up to 10 s. With the reloads one at a time, the workers noted
//! are the newest, so their going means a reload that began after the
//! signal, and read every file marked before it. Changes made while one
//! reload runs share the next. The mark taken aside goes only once nginx
//! serves, so a failed or cut-off wait is made again by the next script.
//! With no master it can find (no pid file, or not nginx's) the wait is
//! skipped, as before.

/// Shell functions (they need `$nginx`, `$nconf` and `$sites`, and start
/// no process but `sleep` and nginx's signal): `reload_pending` answers
/// non-zero, the reason on standard error, when the reload's lock stayed
/// taken, the signal failed or nginx did not take the configuration in
/// time. Run it in `$(…)`: its lock goes with the subshell.
pub(super) fn nginx_reload_lines() -> &'static str {
    r#"pending="$sites/.mpanel-reload-pending"
nginx_workers() {
  before=; pidf=/run/nginx.pid
  while read -r key value rest; do
    if [ "$key" = pid ]; then pidf=${value%;}; break; fi
  done <"$nconf"
  master=; { read -r master <"$pidf"; } 2>/dev/null
  case "$master" in ''|*[!0-9]*) return 0;; esac
  title=; { IFS= read -r title <"/proc/$master/cmdline"; } 2>/dev/null
  case "$title" in 'nginx: master process'*) ;; *) return 0;; esac
  kids=; { read -r kids <"/proc/$master/task/$master/children"; } 2>/dev/null
  serving $kids; before=$still
}
serving() {
  still=
  for w in "$@"; do
    title=; { IFS= read -r title <"/proc/$w/cmdline"; } 2>/dev/null
    case "$title" in *'shutting down'*) ;; *'worker process'*) still="$still $w";; esac
  done
}
uptime_s() { read -r up rest </proc/uptime; up=${up%.*}; }
nginx_wait() {
  uptime_s; until_s=$((up + 10))
  while [ -n "$before" ]; do
    serving $before; before=$still
    [ -z "$before" ] && return 0
    uptime_s
    if [ "$up" -ge "$until_s" ]; then echo 'nginx did not take the new configuration within 10 s' >&2; return 1; fi
    sleep 0.02
  done
}
reload_pending() {
  exec 8>>"$sites/.mpanel-reload.lock" || return 1
  flock -w 8 8 || { echo "the web node's reload lock stayed taken" >&2; return 1; }
  [ -e "$pending" ] || [ -e "$pending.taken" ] || return 0
  mv -f "$pending" "$pending.taken" 2>/dev/null
  nginx_workers
  "$nginx" -s reload -c "$nconf" || return 1
  nginx_wait || return 1
  rm -f "$pending.taken"
}
"#
}
