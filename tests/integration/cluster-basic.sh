#!/usr/bin/env bash
# Three real members: writes and reads through cairnctl, redirection from a
# follower, serializable reads on every member, transactions and ranges.
. "$CAIRN_SRCDIR/tests/integration/lib.sh"

cluster_start 3
ok "a leader is elected" test -n "$LEADER"

ok "put" ctl put greeting hello
is "get returns the value" "$(printf 'greeting\nhello')" "$(ctl get greeting)"
is "get --print-value-only" "hello" "$(ctl get greeting --print-value-only)"

for k in a b c d e; do ctl put "dir/$k" "v$k" >/dev/null; done
is "get --prefix lists keys in order" "dir/a dir/b dir/c dir/d dir/e" \
	"$(ctl get dir/ --prefix --keys-only | grep -v '^$' | tr '\n' ' ' | sed 's/ $//')"
is "get --prefix --count-only" "5" \
	"$(ctl -o json get dir/ --prefix --count-only | sed -n 's/.*"count":[[:space:]]*\([0-9]*\).*/\1/p')"
is "get --limit 2 returns two keys" "dir/a dir/b" \
	"$(ctl get dir/ --prefix --keys-only --limit 2 | grep -v '^$' | tr '\n' ' ' | sed 's/ $//')"
is "range [dir/b, dir/d)" "dir/b dir/c" \
	"$(ctl get dir/b dir/d --keys-only | grep -v '^$' | tr '\n' ' ' | sed 's/ $//')"

ctl put counter 1 >/dev/null
rev=$(ctl -o json get counter | sed -n 's/.*"mod_revision":[[:space:]]*\([0-9]*\).*/\1/p')
ctl put counter 2 >/dev/null
is "get --rev reads the past" "1" "$(ctl get counter --rev "$rev" --print-value-only)"
is "get reads the present" "2" "$(ctl get counter --print-value-only)"

is "del removes one key" "1" "$(ctl del dir/a)"
is "del --prefix removes the rest" "4" "$(ctl del dir/ --prefix)"
is "deleted keys are gone" "" "$(ctl get dir/ --prefix)"

out=$(printf 'value("counter") = "2"\n\nput counter 3\nput txn-ok yes\n\nput txn-ok no\n' | ctl txn)
is "txn takes the success branch" "SUCCESS" "$(echo "$out" | head -n 1)"
is "txn success ops applied" "yes" "$(ctl get txn-ok --print-value-only)"
out=$(printf 'value("counter") = "2"\n\nput txn-ok yes-again\n\nput txn-failed yes\n' | ctl txn)
is "txn takes the failure branch" "FAILURE" "$(echo "$out" | head -n 1)"
is "txn failure ops applied" "yes" "$(ctl get txn-failed --print-value-only)"

# A client that knows only a follower still writes (it follows the leader).
follower=1
[ "$LEADER" = 1 ] && follower=2
ok "write through a follower's endpoint" \
	"$CTL" --endpoints "$(member_endpoint $follower)" put via-follower yes
for i in 1 2 3; do
	ok "member $i serves a serializable read of it" wait_until 10 \
		sh -c "'$CTL' --endpoints $(member_endpoint "$i") get via-follower --consistency s --print-value-only | grep -qx yes"
done
ok "linearizable read through a follower's endpoint" \
	sh -c "'$CTL' --endpoints $(member_endpoint $follower) get via-follower --print-value-only | grep -qx yes"

ok "member list shows three members" \
	sh -c "ctl_out=\$('$CTL' --endpoints $CAIRN_ENDPOINTS member list) && [ \$(echo \"\$ctl_out\" | grep -c .) -ge 3 ]"
ok "endpoint status answers for every member" ctl endpoint status
cluster_stop_checked >"$TESTDIR/stop.out"
is "members stop cleanly on SIGTERM, nothing leaked" "" "$(cat "$TESTDIR/stop.out")"

done_testing
