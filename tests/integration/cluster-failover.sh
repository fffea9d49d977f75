#!/usr/bin/env bash
# The leader is killed with SIGKILL: a new one is elected, writes go on, and
# the old leader, restarted, catches up.
. "$CAIRN_SRCDIR/tests/integration/lib.sh"

cluster_start 3
for i in $(seq 1 20); do ctl put "before/$i" "$i" >/dev/null || echo "put before/$i failed"; done
old=$LEADER
member_kill "$old" KILL
wait_leader 20
is "a new leader is elected" 0 $?
ok "the new leader is another member" test "$LEADER" != "$old"
failed=0
for i in $(seq 1 20); do ctl put "after/$i" "$i" >/dev/null || failed=$((failed + 1)); done
is "writes after the failover succeed" 0 "$failed"
is "writes before the failover are there" 20 \
	"$(ctl get before/ --prefix --count-only -o json | sed -n 's/.*"count":[[:space:]]*\([0-9]*\).*/\1/p')"
member_start "$old"
ok "the old leader catches up" wait_until 20 \
	sh -c "'$CTL' --endpoints $(member_endpoint "$old") get after/20 --consistency s --print-value-only | grep -qx 20"
rev=$(ctl -o json get after/20 | sed -n 's/.*"revision":[[:space:]]*\([0-9]*\).*/\1/p' | head -n 1)
for i in 1 2 3; do
	ok "member $i holds all 40 keys" wait_until 10 \
		sh -c "[ \"\$('$CTL' --endpoints $(member_endpoint "$i") -o json get '' --from-key --count-only --consistency s | sed -n 's/.*\"count\":[[:space:]]*\([0-9]*\).*/\1/p')\" = 40 ]"
done
cluster_stop_checked >"$TESTDIR/stop.out"
is "members stop cleanly on SIGTERM, nothing leaked" "" "$(cat "$TESTDIR/stop.out")"
done_testing
