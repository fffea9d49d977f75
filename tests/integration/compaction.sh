#!/usr/bin/env bash
# Compaction through the log: reads below the compact revision are refused
# with the compact revision, every member compacts at the same point, and the
# automatic compactor (revision mode) keeps the history bounded.
. "$CAIRN_SRCDIR/tests/integration/lib.sh"

json_field() { sed -n "s/.*\"$1\":[[:space:]]*\([0-9]*\).*/\1/p" | head -n 1; }

cluster_start 3 --auto-compaction-retention 0
for i in 1 2 3 4 5; do ctl put k "v$i" >/dev/null; done
rev=$(ctl -o json get k | json_field mod_revision)
old=$((rev - 3))
is "an old revision is readable before compaction" "v2" "$(ctl get k --rev "$old" --print-value-only)"
ok "compact" sh -c "'$CTL' --endpoints $CAIRN_ENDPOINTS compact $((rev - 2)) | grep -q 'compacted revision $((rev - 2))'"
ok "a read below the compact revision fails" sh -c "! '$CTL' --endpoints $CAIRN_ENDPOINTS get k --rev $old"
ok "and says it was compacted" sh -c "'$CTL' --endpoints $CAIRN_ENDPOINTS get k --rev $old 2>&1 | grep -qi compacted"
is "a read at the compact revision works" "v3" "$(ctl get k --rev $((rev - 2)) --print-value-only)"
is "the latest value is intact" "v5" "$(ctl get k --print-value-only)"
for i in 1 2 3; do
	is "member $i compacted at the same revision" "$((rev - 2))" \
		"$("$CTL" --endpoints "$(member_endpoint "$i")" -o json endpoint status | json_field compactRevision)"
done
ok "compacting again at or below the compact revision fails" sh -c "! '$CTL' --endpoints $CAIRN_ENDPOINTS compact $((rev - 3))"
ok "compacting a future revision fails" sh -c "! '$CTL' --endpoints $CAIRN_ENDPOINTS compact $((rev + 100))"

# The compaction survives a restart of every member (it is in the log).
for i in 1 2 3; do member_kill "$i" KILL; done
for i in 1 2 3; do member_start "$i" --auto-compaction-retention 0; done
wait_leader 30
ok "after a restart the read below is still refused" sh -c "! '$CTL' --endpoints $CAIRN_ENDPOINTS get k --rev $old"
is "after a restart the value is intact" "v5" "$(ctl get k --print-value-only)"
cluster_stop_checked >"$TESTDIR/stop.out"
is "members stop cleanly on SIGTERM, nothing leaked" "" "$(cat "$TESTDIR/stop.out")"

# Automatic compaction keeping 20 revisions.
cluster_start 3 --auto-compaction-mode revision --auto-compaction-retention 20
for i in $(seq 1 60); do ctl put "auto/$i" "$i" >/dev/null; done
crev_ok() {
	local crev rev
	crev=$(ctl -o json endpoint status | json_field compactRevision)
	rev=$(ctl -o json get auto/60 | json_field revision)
	[ -n "$crev" ] && [ "$crev" -ge $((rev - 40)) ] && [ "$crev" -le $((rev - 20)) ]
}
ok "automatic compaction keeps about 20 revisions" wait_until 15 crev_ok
is "the latest values are intact" 60 "$(ctl -o json get auto/ --prefix --count-only | json_field count)"
cluster_stop_checked >"$TESTDIR/stop.out"
is "members stop cleanly on SIGTERM, nothing leaked" "" "$(cat "$TESTDIR/stop.out")"
done_testing
