#!/usr/bin/env bash
# Membership changes under load: grow a three-member cluster to five (each
# new member joins as a learner, catches up, then is promoted to voter) and
# shrink it back to three, with a client writing all along; no acknowledged
# write is lost, and a removed member finds out and stops by itself.
. "$CAIRN_SRCDIR/tests/integration/lib.sh"

cluster_start 3
WRITER_STOP="$TESTDIR/writer.stop"
(
	i=0
	while [ ! -e "$WRITER_STOP" ]; do
		i=$((i + 1))
		"$CTL" --endpoints "$CAIRN_ENDPOINTS" --command-timeout 10s put "w/$i" "v$i" \
			>/dev/null 2>&1 && echo "$i" >>"$TESTDIR/acked"
	done
) &
ALL_PIDS+=("$!")
writer=$!

for id in 4 5; do
	PPORT[$id]=$(free_port)
	TAKEN_PORTS="$TAKEN_PORTS${PPORT[$id]} "
	ok "add member $id as a learner" sh -c "'$CTL' --endpoints $CAIRN_ENDPOINTS member add $id \
		--peer-urls 127.0.0.1:${PPORT[$id]} >'$TESTDIR/add$id.out'"
	ok "member add says how to start it" grep -q -- "--join" "$TESTDIR/add$id.out"
	member_join "$id"
	ok "member $id catches up" wait_until 30 \
		sh -c "'$CTL' --endpoints $(member_endpoint "$id") get w/1 --consistency s --print-value-only | grep -qx v1"
	ok "promote member $id to voter" wait_until 30 ctl member promote "$id"
done
voters=$(ctl -o json member list | grep -o "\"isLearner\":false" | wc -l)
is "five voters" 5 "$voters"

for id in 5 4; do
	ok "remove member $id" ctl member remove "$id"
	ok "member $id is no longer listed" sh -c "! '$CTL' --endpoints $CAIRN_ENDPOINTS member list | grep -q '^0*$id,'"
	ok "removed member $id stops by itself" wait_until 20 sh -c "! kill -0 ${PIDS[$id]} 2>/dev/null"
	wait "${PIDS[$id]}" 2>/dev/null
	PIDS[$id]=""
	ok "and says why" grep -q "was removed from the cluster" "$TESTDIR/m$id.log"
done
voters=$(ctl -o json member list | grep -o "\"isLearner\":false" | wc -l)
is "three voters again" 3 "$voters"

touch "$WRITER_STOP"
wait "$writer"
n=$(wc -l <"$TESTDIR/acked")
ok "writes went on all along ($n acknowledged)" test "$n" -gt 20
missing=0
for i in $(cat "$TESTDIR/acked"); do
	[ "$(ctl get "w/$i" --print-value-only)" = "v$i" ] || missing=$((missing + 1))
done
is "every acknowledged write is there" 0 "$missing"
cluster_stop_checked >"$TESTDIR/stop.out"
is "members stop cleanly on SIGTERM, nothing leaked" "" "$(cat "$TESTDIR/stop.out")"
done_testing
