#!/usr/bin/env bash
# Recovery from a lost quorum: two of three members are gone for good; the
# survivor, stopped and run once with --force-new-cluster confirm, comes back
# as a one-member cluster with all its data, and grows again with member add.
# The command refuses to run by accident.
. "$CAIRN_SRCDIR/tests/integration/lib.sh"

cluster_start 3
for i in $(seq 1 50); do ctl put "k/$i" "$i" >/dev/null; done
survivor=$LEADER
for i in 1 2 3; do
	[ "$i" = "$survivor" ] || member_kill "$i" KILL
done
ok "without a quorum writes fail" sh -c "! '$CTL' --endpoints $CAIRN_ENDPOINTS --command-timeout 2s put lost 1"
member_kill "$survivor" TERM

ok "--force-new-cluster needs the value confirm" sh -c "! '$STORE' --id $survivor \
	--data-dir '$DATA/data$survivor' --listen-peer 127.0.0.1:${PPORT[$survivor]} --force-new-cluster yes 2>/dev/null"
ok "--force-new-cluster refuses an empty data directory" sh -c "! '$STORE' --id $survivor \
	--data-dir '$TESTDIR/empty' --listen-peer 127.0.0.1:${PPORT[$survivor]} --force-new-cluster confirm 2>/dev/null"
ok "recover the survivor" "$STORE" --id "$survivor" --data-dir "$DATA/data$survivor" \
	--listen-peer "127.0.0.1:${PPORT[$survivor]}" --force-new-cluster confirm
member_start "$survivor"
export CAIRN_ENDPOINTS=$(member_endpoint "$survivor")
ok "the survivor leads alone" wait_until 20 ctl put after-recovery yes
is "with all its data" 50 "$(ctl -o json get k/ --prefix --count-only | sed -n 's/.*"count":[[:space:]]*\([0-9]*\).*/\1/p')"
is "a one-member cluster" 1 "$(ctl member list | grep -c .)"

PPORT[4]=$(free_port)
TAKEN_PORTS="$TAKEN_PORTS${PPORT[4]} "
ok "add a member back" ctl member add 4 --peer-urls "127.0.0.1:${PPORT[4]}"
member_join 4
ok "it catches up" wait_until 30 \
	sh -c "'$CTL' --endpoints $(member_endpoint 4) get k/50 --consistency s --print-value-only | grep -qx 50"
ok "and is promoted" wait_until 30 ctl member promote 4
ok "writes go on with two voters" ctl put two-members yes
cluster_stop_checked >"$TESTDIR/stop.out"
is "members stop cleanly on SIGTERM, nothing leaked" "" "$(cat "$TESTDIR/stop.out")"
done_testing
