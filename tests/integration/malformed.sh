#!/usr/bin/env bash
# Malformed, hostile, oversized and truncated frames are answered with an error
# and the connection closed, while the member keeps serving everyone else.
. "$CAIRN_SRCDIR/tests/integration/lib.sh"

RAW="$BUILD/tests/integration/rawframe"
cluster_start 3
ep=$(member_endpoint "$LEADER")
for c in hello status bad-version no-hello oversize garbage hostile-array \
	hostile-map hostile-str truncated empty-frame; do
	ok "case $c answered as expected" "$RAW" "$ep" "$c"
	ok "member still serves after $c" ctl put "after-$c" ok
done
pid=${PIDS[$LEADER]}
ok "the member process is alive" kill -0 "$pid"
rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
ok "the member's RSS stays small after hostile lengths ($rss kB)" test "$rss" -lt 200000
cluster_stop_checked >"$TESTDIR/stop.out"
is "members stop cleanly on SIGTERM, nothing leaked" "" "$(cat "$TESTDIR/stop.out")"
done_testing
