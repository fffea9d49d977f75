#!/usr/bin/env bash
# Every acknowledged write survives SIGKILL of all members at once.
. "$CAIRN_SRCDIR/tests/integration/lib.sh"

cluster_start 3
acked=0
for i in $(seq 1 100); do
	ctl put "k/$i" "value-$i" >/dev/null && acked=$((acked + 1))
done
is "all 100 writes acknowledged" 100 "$acked"
rev_before=$(ctl -o json get k/100 | sed -n 's/.*"revision":[[:space:]]*\([0-9]*\).*/\1/p' | head -n 1)
for i in 1 2 3; do member_kill "$i" KILL; done
for i in 1 2 3; do member_start "$i"; done
wait_leader 30
is "a leader is elected after the restart" 0 $?
missing=0
for i in $(seq 1 100); do
	v=$(ctl get "k/$i" --print-value-only)
	[ "$v" = "value-$i" ] || missing=$((missing + 1))
done
is "every acknowledged write is present" 0 "$missing"
rev_after=$(ctl -o json get k/100 | sed -n 's/.*"revision":[[:space:]]*\([0-9]*\).*/\1/p' | head -n 1)
is "the revision survived" "$rev_before" "$rev_after"
ok "writes work after the restart" ctl put after-restart yes
done_testing
