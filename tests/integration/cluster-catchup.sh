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

# Its disk is lost: libraft would not let it catch up under the same id (the
# leader remembers how far its log went), so it is removed and comes back as a
# new member with an empty data directory, which catches up by snapshot.
member_kill "$follower" KILL
rm -rf "$DATA/data$follower"
ok "remove the member whose disk was lost" ctl member remove "$follower"
PPORT[4]=$(free_port)
TAKEN_PORTS="$TAKEN_PORTS${PPORT[4]} "
ok "add it back as member 4" ctl member add 4 --peer-urls "127.0.0.1:${PPORT[4]}"
member_join 4
ok "the new member catches up" wait_until 30 \
	sh -c "'$CTL' --endpoints $(member_endpoint 4) get after-catchup --consistency s --print-value-only | grep -qx yes"
ok "by installing a snapshot" grep -q "restored snapshot" "$TESTDIR/m4.log"
ok "and is promoted" wait_until 30 ctl member promote 4
is "it holds every key" 300 "$("$CTL" --endpoints "$(member_endpoint 4)" -o json get k/ --prefix --count-only --consistency s |
	sed -n 's/.*"count":[[:space:]]*\([0-9]*\).*/\1/p')"
cluster_stop_checked >"$TESTDIR/stop.out"
is "members stop cleanly on SIGTERM, nothing leaked" "" "$(cat "$TESTDIR/stop.out")"
done_testing
