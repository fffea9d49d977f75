#!/usr/bin/env bash
# cairnctl watch and compact against three real members: events as they
# happen and replayed from history, in etcdctl's simple and JSON output;
# progress notifications; SIGTERM, --max-events and --timeout; compaction and
# a watch below it failing as compacted; and a watcher whose member is killed
# going on from another one without a gap or a duplicate.
. "$CAIRN_SRCDIR/tests/integration/lib.sh"

cluster_start 3 --watch-progress-interval 200 >/dev/null ||
	{ echo "1..0 # SKIP cluster did not start"; exit 1; }

exit_code() { "$@" >/dev/null 2>&1; echo $?; }

# The revision of a fresh write (the store's current revision after it).
rev_now() {
	ctl -o json put watch-probe x |
		sed -n 's/.*"revision":[[:space:]]*\([0-9]*\).*/\1/p'
}

# watch_bg NAME ARGS...: cairnctl ARGS in the background, stdout to
# $TESTDIR/NAME.out, stderr to NAME.err, exit status to NAME.rc; BG_PID is
# cairnctl's process id.
watch_bg() {
	local name=$1
	shift
	( "$CTL" "$@" >"$TESTDIR/$name.out" 2>"$TESTDIR/$name.err" &
	  echo $! >"$TESTDIR/$name.pid"
	  wait $!
	  echo $? >"$TESTDIR/$name.rc" ) &
	ALL_PIDS+=("$!")
	while [ ! -s "$TESTDIR/$name.pid" ]; do sleep 0.01; done
	BG_PID=$(cat "$TESTDIR/$name.pid")
	ALL_PIDS+=("$BG_PID")
}

lines() { wc -l <"$TESTDIR/$1.out"; }
has_lines() { [ "$(lines "$1")" -ge "$2" ]; }
finished() { [ -s "$TESTDIR/$1.rc" ]; }

# ---- events as they happen, simple and JSON output --------------------------

start=$(( $(rev_now) + 1 ))
watch_bg simple --endpoints "$CAIRN_ENDPOINTS" watch w/ --prefix \
	--rev "$start" --max-events 4 --timeout 20s
watch_bg json --endpoints "$CAIRN_ENDPOINTS" -o json watch w/ --prefix \
	--prev-kv --rev "$start" --max-events 4 --timeout 20s
ctl put w/a 1 >/dev/null
ctl put w/a 2 >/dev/null
ctl put other 0 >/dev/null
ctl del w/a >/dev/null
ctl put w/b 3 >/dev/null
ok "the simple watcher stops after --max-events" wait_until 20 finished simple
ok "the JSON watcher stops after --max-events" wait_until 20 finished json
is "--max-events exits 0" 0 "$(cat "$TESTDIR/simple.rc")"
expected=$(printf 'PUT\nw/a\n1\nPUT\nw/a\n2\nDELETE\nw/a\n\nPUT\nw/b\n3')
is "simple output: type, key, value per event" "$expected" \
	"$(cat "$TESTDIR/simple.out")"
is "JSON output: one line per revision" 4 "$(lines json)"
ok "JSON: a put with its previous pair" grep -q \
	'"type":"PUT","kv":{"key":"w/a","create_revision":[0-9]*,"mod_revision":[0-9]*,"version":2,"value":"2"},"prev_kv":{"key":"w/a".*"value":"1"}' \
	"$TESTDIR/json.out"
ok "JSON: a deletion with the deleted pair" grep -q \
	'"type":"DELETE","kv":{"key":"w/a","create_revision":0.*"prev_kv":{"key":"w/a".*"value":"2"}' \
	"$TESTDIR/json.out"
is "JSON: revisions are the writes'" \
	"$start $((start + 1)) $((start + 3)) $((start + 4))" \
	"$(sed -n 's/^{"revision":\([0-9]*\),.*/\1/p' "$TESTDIR/json.out" | tr '\n' ' ' | sed 's/ $//')"

# ---- history ----------------------------------------------------------------

is "--rev replays history" "$expected" \
	"$(ctl watch w/ --prefix --rev "$start" --max-events 4 --timeout 10s)"
is "--no-delete and --rev" "w/a w/a w/b" \
	"$(ctl -o json watch w/ --prefix --no-delete --rev "$start" --max-events 3 --timeout 10s |
		sed -n 's/.*"kv":{"key":"\([^"]*\)".*/\1/p' | tr '\n' ' ' | sed 's/ $//')"
is "--no-put and --rev" "DELETE" \
	"$(ctl watch w/ --prefix --no-put --rev "$start" --max-events 1 --timeout 10s | head -n 1)"

# ---- progress, signals, timeouts, usage ------------------------------------

watch_bg progress -o json watch quiet/ --prefix --progress-notify
ok "--progress-notify prints progress while idle" wait_until 20 \
	grep -q '^{"progress":true,"revision":[0-9]*}$' "$TESTDIR/progress.out"
kill -TERM "$BG_PID"
ok "SIGTERM ends the watch" wait_until 10 finished progress
is "... with exit status 0" 0 "$(cat "$TESTDIR/progress.rc")"
is "--timeout before --max-events exits 1" 1 \
	"$(exit_code ctl watch quiet/ --prefix --max-events 1 --timeout 300ms)"
is "--timeout alone exits 0" 0 "$(exit_code ctl watch quiet/ --prefix --timeout 300ms)"
is "watch --no-put --no-delete is a usage error" 2 \
	"$(exit_code ctl watch x --no-put --no-delete)"
is "watch --rev -1 is a usage error" 2 "$(exit_code ctl watch x --rev -1)"
is "compact 0 is a usage error" 2 "$(exit_code ctl compact 0)"
port=$(free_port)
is "watch against nothing exits 1" 1 \
	"$(exit_code "$CTL" --endpoints "127.0.0.1:$port" --command-timeout 500ms watch x)"

# ---- compaction -------------------------------------------------------------

# Every member has applied the compaction to $1.
compacted_everywhere() {
	[ "$(ctl -o json endpoint status | grep -o '"compactRevision":[0-9]*' |
		awk -F: -v r="$1" '$2 >= r' | wc -l)" -eq 3 ]
}

crev=$((start + 3))
is "compact prints the revision" "compacted revision $crev" "$(ctl compact "$crev" --physical)"
ok "every member applies the compaction" wait_until 20 compacted_everywhere "$crev"
out=$(ctl watch w/ --prefix --rev "$start" --timeout 10s 2>&1)
is "a watch below the compact revision exits 1" 1 "$(exit_code ctl watch w/ --prefix --rev "$start" --timeout 10s)"
ok "... saying it was compacted" sh -c "printf '%s' \"\$1\" | grep -q compact" _ "$out"
is "a watch just above it still replays" "w/b" \
	"$(ctl -o json watch w/ --prefix --rev $((crev + 1)) --max-events 1 --timeout 10s |
		sed -n 's/.*"kv":{"key":"\([^"]*\)".*/\1/p')"
is "compacting below the compact revision exits 1" 1 "$(exit_code ctl compact "$start")"

# ---- the member a watcher is connected to dies --------------------------------

# Member X (the leader, so that an election happens too) comes first in the
# watcher's endpoints, so the watcher is connected to it. Numbered writes
# before and after X is killed must each reach the watcher exactly once, in
# order.
x=$LEADER
eps=$(member_endpoint "$x")
for i in 1 2 3; do
	[ "$i" = "$x" ] || eps="$eps,$(member_endpoint "$i")"
done
start=$(( $(rev_now) + 1 ))
CAIRN_TRACE=1 watch_bg failover --endpoints "$eps" -o json watch f/ --prefix \
	--rev "$start" --max-events 40 --timeout 60s
for i in $(seq -w 1 20); do ctl put "f/$i" "$i" >/dev/null || echo "put f/$i failed"; done
ok "the watcher sees the first 20 writes" wait_until 20 has_lines failover 20
member_kill "$x" KILL
wait_leader 20 || echo "no new leader"
failed=0
for i in $(seq -w 21 40); do ctl put "f/$i" "$i" >/dev/null || failed=$((failed + 1)); done
is "writes after the kill succeed" 0 "$failed"
ok "the watcher sees all 40 and stops" wait_until 30 finished failover
is "... exit status 0" 0 "$(cat "$TESTDIR/failover.rc" 2>/dev/null)"
is "each write exactly once, in order" "$(seq -w 1 40 | sed 's|^|f/|' | tr '\n' ' ')" \
	"$(sed -n 's/.*"kv":{"key":"\([^"]*\)".*/\1/p' "$TESTDIR/failover.out" | tr '\n' ' ')"
is "one revision after the other" "$(seq "$start" $((start + 39)) | tr '\n' ' ')" \
	"$(sed -n 's/^{"revision":\([0-9]*\),.*/\1/p' "$TESTDIR/failover.out" | tr '\n' ' ')"
ok "the watch really moved to another member" \
	grep -q 'watch 1 active -> pending' "$TESTDIR/failover.err"

cluster_stop_checked >"$TESTDIR/stop.out"
is "members stop cleanly on SIGTERM, nothing leaked" "" "$(cat "$TESTDIR/stop.out")"
done_testing
