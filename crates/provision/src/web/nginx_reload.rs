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
//! under the node's lock before it changes its files, lets that lock go
//! once they are tested, and then runs `reload_pending`: under the
//! reload's own lock (`.mpanel-reload.lock`) and, again, the node's lock
//! (so nginx never reads a change another script has not tested yet), it
//! takes the mark aside, notes the master's children, signals, and keeps
//! the node's lock until a worker that was not among them serves (the
//! master has read the configuration, every marked change in it). It then
//! waits, without the node's lock, until none of the workers that served
//! before does (gone or "shutting down"). Changes made while one reload
//! runs share the next. The mark taken aside goes only once nginx serves,
//! so a failed or cut-off reload is made again by the next script, which
//! then reloads twice (a reload given up on may still be under way, and
//! may have read the files before the latest change). Each wait gives up
//! after 15 s. Nothing is waited for when the master cannot be seen (no
//! pid file, not nginx's, its children unreadable). A reload from outside
//! mPanel (an operator's) belongs under both locks, waited for:
//! `flock <sites_dir>/.mpanel-reload.lock flock <sites_dir>/.mpanel.lock
//! sh -c 'nginx -s reload && sleep 5'`.

/// Shell functions (they need `$nginx`, `$nconf` and `$sites`, and start
/// no process but `sleep` and nginx's signals). Call `reload_pending` in
/// `$(…)` without holding the node's lock (fd 9): it takes it itself,
/// after the reload's (fd 8), and both go with the subshell. It answers
/// non-zero, the reason on standard error, when a lock stayed taken, the
/// signal failed or nginx did not take the configuration in time.
pub(super) fn nginx_reload_lines() -> &'static str {
    r#"pending="$sites/.mpanel-reload-pending"
nginx_workers() {
  before=; known=; master=; pidf=/run/nginx.pid
  while read -r key value rest; do
    if [ "$key" = pid ]; then pidf=${value%;}; break; fi
  done <"$nconf"
  { read -r master <"$pidf"; } 2>/dev/null
  case "$master" in ''|*[!0-9]*) master=; return 0;; esac
  title=; { IFS= read -r title <"/proc/$master/cmdline"; } 2>/dev/null
  case "$title" in 'nginx: master process'*) ;; *) master=; return 0;; esac
  children; before=$still; known=" $kids"
}
children() {
  kids=; { read -r kids <"/proc/$master/task/$master/children"; } 2>/dev/null
  serving $kids
}
serving() {
  still=
  for w in "$@"; do
    title=; { IFS= read -r title <"/proc/$w/cmdline"; } 2>/dev/null
    case "$title" in *'shutting down'*) ;; *'worker process'*) still="$still $w";; esac
  done
}
uptime_s() { read -r up rest </proc/uptime; up=${up%.*}; }
nginx_read() {
  uptime_s; until_s=$((up + 15))
  while [ -n "$before" ]; do
    children
    for w in $still; do case "$known " in *" $w "*) ;; *) return 0;; esac; done
    uptime_s
    if [ "$up" -ge "$until_s" ]; then echo "nginx did not take the new configuration within 15 s (see nginx's error log)" >&2; return 1; fi
    sleep 0.02 8>&- 9>&-
  done
}
nginx_served() {
  uptime_s; until_s=$((up + 15))
  while [ -n "$before" ]; do
    serving $before; before=$still
    [ -z "$before" ] && return 0
    uptime_s
    if [ "$up" -ge "$until_s" ]; then echo 'the old nginx workers still served after 15 s' >&2; return 1; fi
    sleep 0.02 8>&-
  done
}
reload_pending() {
  command exec 8>>"$sites/.mpanel-reload.lock" || return 1
  flock -w 15 8 || { echo "the web node's reload lock stayed taken" >&2; return 1; }
  [ -e "$pending" ] || [ -e "$pending.taken" ] || return 0
  command exec 9>>"$sites/.mpanel.lock" || return 1
  flock -w 20 9 || { echo "the web node's lock stayed taken" >&2; return 1; }
  rounds=1; [ -e "$pending.taken" ] && rounds=2
  mv -f "$pending" "$pending.taken" 2>/dev/null
  while [ "$rounds" -gt 0 ]; do
    nginx_workers
    "$nginx" -s reload -c "$nconf" 8>&- 9>&- || return 1
    nginx_read || return 1
    rounds=$((rounds - 1))
  done
  exec 9>&-
  nginx_served || return 1
  rm -f "$pending.taken"
}
"#
}
