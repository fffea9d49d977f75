#!/usr/bin/env bash
# A watcher that stops reading during a write flood: the member serving it
# must not buffer the flood for it (its memory stays within a few MB of a
# member without that watcher), and once the watcher reads again it gets
# every event, in order, none twice.
. "$CAIRN_SRCDIR/tests/integration/lib.sh"

# Under AddressSanitizer freed memory sits in a quarantine (256 MB by
# default) instead of being reused, which would count against the member that
# serves the watch; keep the quarantine small so RSS means what it says.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=4"
RAW="$BUILD/tests/integration/rawframe"
BENCH="$BUILD/bench/cairn-bench"
N=50000
# No snapshot during the flood: a member that snapshots (and returns its log's
# memory) a moment before another would show a difference that has nothing to
# do with the watcher; the comparison is made while the flood runs.
cluster_start 3 --auto-compaction-retention 0 --snapshot-bytes 4294967296
watched=1
other=2
[ "$LEADER" = 1 ] && watched=3
[ "$LEADER" = 2 ] && other=3
[ "$watched" = "$other" ] && other=1
# cairn-bench's sequential keys are zero-padded numbers: all start with "000".
"$RAW" "$(member_endpoint "$watched")" slow-watch 000 6000 $N >"$TESTDIR/watch.out" 2>&1 &
wpid=$!
ALL_PIDS+=("$wpid")
sleep 0.5
"$BENCH" --conns 4 --clients 64 put --total $N --sequential-keys --val-size 1024 \
	>"$TESTDIR/bench.out" 2>&1 &
bpid=$!
ALL_PIDS+=("$bpid")
max_diff=0
while kill -0 "$bpid" 2>/dev/null; do
	a=$(awk '/VmRSS/ {print $2}' "/proc/${PIDS[$watched]}/status")
	b=$(awk '/VmRSS/ {print $2}' "/proc/${PIDS[$other]}/status")
	d=$((a - b))
	[ "$d" -gt "$max_diff" ] && max_diff=$d
	sleep 0.2
	[ -s "$TESTDIR/watch.out" ] && break
done
wait "$bpid"
is "the write flood succeeded" 0 $?
wait "$wpid"
is "the slow watcher got every event in order, none twice" 0 $?
diag <"$TESTDIR/watch.out"
ok "the watched member held at most 24 MB more than another ($max_diff kB)" test "$max_diff" -lt 24576

# Compaction racing a lagging watch: the watcher stops reading, writes go on,
# the history it still needs is compacted away: the watch must end with the
# compacted error rather than skip what it missed.
"$RAW" "$(member_endpoint "$watched")" slow-watch 000 8000 0 >"$TESTDIR/watch2.out" 2>&1 &
wpid=$!
ALL_PIDS+=("$wpid")
sleep 0.5
"$BENCH" --conns 4 --clients 64 put --total 12000 --sequential-keys --val-size 1024 \
	>"$TESTDIR/bench2.out" 2>&1
rev=$(ctl -o json get 00000001 | sed -n 's/.*"revision":[[:space:]]*\([0-9]*\).*/\1/p' | head -n 1)
ok "compact while the watcher lags" ctl compact "$rev"
wait "$wpid"
is "the lagging watch ends as compacted, skipping nothing" 0 $?
diag <"$TESTDIR/watch2.out"
cluster_stop_checked >"$TESTDIR/stop.out"
is "members stop cleanly on SIGTERM, nothing leaked" "" "$(cat "$TESTDIR/stop.out")"
done_testing
