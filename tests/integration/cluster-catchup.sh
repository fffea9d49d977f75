#!/usr/bin/env bash
# A follower is killed, the others write past it (past several snapshots, so
# it has to catch up by snapshot install), then it is restarted and catches up.
. "$CAIRN_SRCDIR/tests/integration/lib.sh"

cluster_start 3 --snapshot-count 64
follower=1
[ "$LEADER" = 1 ] && follower=2
member_kill "$follower" KILL
failed=0
for i in $(seq 1 300); do ctl put "k/$i" "$i" >/dev/null || failed=$((failed + 1)); done
is "300 writes with one member down" 0 "$failed"
member_start "$follower" --snapshot-count 64
ok "the restarted follower catches up" wait_until 30 \
	sh -c "'$CTL' --endpoints $(member_endpoint "$follower") get k/300 --consistency s --print-value-only | grep -qx 300"
count=$("$CTL" --endpoints "$(member_endpoint "$follower")" -o json get k/ --prefix --count-only --consistency s |
	sed -n 's/.*"count":[[:space:]]*\([0-9]*\).*/\1/p')
is "it holds every key" 300 "$count"
ok "writes go on after it is back" ctl put after-catchup yes
ok "it sees them" wait_until 10 \
	sh -c "'$CTL' --endpoints $(member_endpoint "$follower") get after-catchup --consistency s --print-value-only | grep -qx yes"
cluster_stop_checked >"$TESTDIR/stop.out"
is "members stop cleanly on SIGTERM, nothing leaked" "" "$(cat "$TESTDIR/stop.out")"
done_testing
