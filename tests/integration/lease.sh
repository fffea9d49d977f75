#!/usr/bin/env bash
# Leases: grant, attach, keep-alive, time-to-live, list, revoke (all attached
# keys in one revision), expiry decided by the leader and applied through the
# log, and a lease surviving a leader change without its TTL cut short.
. "$CAIRN_SRCDIR/tests/integration/lib.sh"

json_field() { sed -n "s/.*\"$1\":[[:space:]]*\([0-9]*\).*/\1/p" | head -n 1; }
lease_id() { ctl lease grant "$1" | sed -n 's/^lease \([0-9a-f]*\) granted.*/\1/p'; }
on_all() { # on_all KEY: the key's value on every live member (serializable)
	local i
	for i in $(seq 1 "$N_MEMBERS"); do
		[ -n "${PIDS[$i]:-}" ] || continue
		"$CTL" --endpoints "$(member_endpoint "$i")" get "$1" --consistency s --print-value-only
	done | tr '\n' ' '
}

cluster_start 3
id=$(lease_id 30)
ok "grant a lease" test -n "$id"
ok "put with the lease" ctl put --lease "$id" leased/a 1
ok "put another key with it" ctl put --lease "$id" leased/b 2
ok "time-to-live lists the attached keys" \
	sh -c "'$CTL' --endpoints $CAIRN_ENDPOINTS lease timetolive $id --keys | grep -q 'leased/a'"
ok "keep-alive once" sh -c "'$CTL' --endpoints $CAIRN_ENDPOINTS lease keep-alive --once $id | grep -q 'keepalived'"
ok "the lease is listed" sh -c "'$CTL' --endpoints $CAIRN_ENDPOINTS lease list | grep -q $id"
ok "a put with an unknown lease fails" sh -c "! '$CTL' --endpoints $CAIRN_ENDPOINTS put --lease 7777777 x 1"
ok "and says the lease is not found" \
	sh -c "'$CTL' --endpoints $CAIRN_ENDPOINTS put --lease 7777777 x 1 2>&1 | grep -qi 'not found'"
ctl put moved 1 --lease "$id" >/dev/null
ok "a key moved off the lease" ctl put moved 2
rev0=$(ctl -o json get leased/a | json_field revision)
ok "revoke" ctl lease revoke "$id"
is "the attached keys are gone" "" "$(ctl get leased/ --prefix)"
is "the moved key stays" "2" "$(ctl get moved --print-value-only)"
rev1=$(ctl -o json get moved | json_field revision)
is "revoke deleted both keys in one revision" "$((rev0 + 1))" "$rev1"
for t in $(seq 1 50); do [ -z "$(on_all leased/a | tr -d ' ')" ] && break; sleep 0.1; done
is "every member deleted them" "" "$(on_all leased/a | tr -d ' ')"

# Expiry through the log.
id=$(lease_id 2)
ctl put --lease "$id" expiring yes >/dev/null
is "the key is there before expiry" "yes" "$(ctl get expiring --print-value-only)"
ok "the key goes when the lease expires" wait_until 10 sh -c "[ -z \"\$('$CTL' --endpoints $CAIRN_ENDPOINTS get expiring)\" ]"
ok "on every member" wait_until 5 sh -c "for e in \$(echo $CAIRN_ENDPOINTS | tr , ' '); do [ -z \"\$('$CTL' --endpoints \$e get expiring --consistency s)\" ] || exit 1; done"
ok "the expired lease is no longer listed" sh -c "! '$CTL' --endpoints $CAIRN_ENDPOINTS lease list | grep -q $id"

# A leader change renews leases: the TTL is not cut short.
id=$(lease_id 6)
ctl put --lease "$id" survivor yes >/dev/null
sleep 3
old=$LEADER
member_kill "$old" KILL
wait_leader 20
ok "the key outlives the old leader" sh -c "'$CTL' --endpoints $CAIRN_ENDPOINTS get survivor --print-value-only | grep -qx yes"
left=$(ctl -o json lease timetolive "$id" | json_field TTL)
ok "the new leader renewed the lease to its full TTL ($left s left)" test "${left:-0}" -ge 4
ok "keep-alive works on the new leader" ctl lease keep-alive --once "$id"
ok "without keep-alives it expires" wait_until 20 sh -c "[ -z \"\$('$CTL' --endpoints $CAIRN_ENDPOINTS get survivor)\" ]"
cluster_stop_checked >"$TESTDIR/stop.out"
is "members stop cleanly on SIGTERM, nothing leaked" "" "$(cat "$TESTDIR/stop.out")"
done_testing
