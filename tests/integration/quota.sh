#!/usr/bin/env bash
# The keyspace quota: above it writes that add data fail with a clear "no
# space" error while reads, deletes and compaction go on, and the cluster
# leaves that state once space is freed.
. "$CAIRN_SRCDIR/tests/integration/lib.sh"

json_field() { sed -n "s/.*\"$1\":[[:space:]]*\([0-9]*\).*/\1/p" | head -n 1; }

cluster_start 3 --quota-bytes 40000 --auto-compaction-retention 0
value=$(printf '%01000d' 0)
full=0
for i in $(seq 1 100); do
	if ! out=$(ctl put "big/$i" "$value" 2>&1); then
		full=$i
		break
	fi
done
ok "writes fail once the quota is reached" test "$full" -gt 10
ok "the error says the quota is exceeded" sh -c "echo '$out' | grep -qi quota"
ok "reads still work" sh -c "'$CTL' --endpoints $CAIRN_ENDPOINTS get big/1 --print-value-only | grep -q 0"
out=$(printf 'value("big/1") = "x"\n\nput big/1 y\n\n\n' | ctl txn 2>&1)
ok "a transaction that may put is refused too" sh -c "echo '$out' | grep -qi quota"
ok "deletes still work" ctl del big/ --prefix
rev=$(ctl -o json get big/1 | json_field revision)
ok "compaction still works" ctl compact "$rev"
ok "writes work again once space is freed" ctl put after-quota yes
cluster_stop_checked >"$TESTDIR/stop.out"
is "members stop cleanly on SIGTERM, nothing leaked" "" "$(cat "$TESTDIR/stop.out")"
done_testing
