#!/usr/bin/env bash
# The plaintext variant: a cluster run with --insecure (clients with
# CAIRN_INSECURE=1) writes, reads, fails over, grows by a member that joins
# and is promoted (the peer transport without a relay), passes the client
# library's tests and the malformed-frame cases, and refuses a client that
# opens the secure channel. Any integration test runs this way with
# CAIRN_TEST_INSECURE=1 in the environment.
export CAIRN_TEST_INSECURE=1
. "$CAIRN_SRCDIR/tests/integration/lib.sh"

RAW="$BUILD/tests/integration/rawframe"
cluster_start 3
ok "members say they run plaintext" grep -q -- "--insecure: clients and peers talk plaintext" "$TESTDIR/m1.log"
ok "put" ctl put k v
is "get" v "$(ctl get k --print-value-only)"

old=$LEADER
member_kill "$old" KILL
wait_leader 20
is "a new leader after the old one is killed" 0 $?
ok "writes go on" ctl put after-failover yes
member_start "$old"
ok "the old leader catches up" wait_until 20 \
	sh -c "'$CTL' --endpoints $(member_endpoint "$old") get after-failover --consistency s --print-value-only | grep -qx yes"

ok "the client library's tests pass in plaintext" \
	"$BUILD/tests/integration/libclient" "$CAIRN_ENDPOINTS"

PPORT[4]=$(free_port)
TAKEN_PORTS="$TAKEN_PORTS${PPORT[4]} "
ok "member add 4" ctl member add 4 --peer-urls "127.0.0.1:${PPORT[4]}"
member_join 4
ok "member 4 catches up" wait_until 30 \
	sh -c "'$CTL' --endpoints $(member_endpoint 4) get k --consistency s --print-value-only | grep -qx v"
ok "and is promoted" wait_until 30 ctl member promote 4

ep=$(member_endpoint "$LEADER")
for c in hello status bad-version oversize garbage truncated; do
	ok "malformed case $c" "$RAW" "$ep" "$c"
done
"$STORE" --generate-secret "$TESTDIR/any.secret" >/dev/null
out=$(env -u CAIRN_INSECURE "$CTL" --secret-file "$TESTDIR/any.secret" --endpoints "$ep" get k 2>&1)
ok "a secure client is told the member runs --insecure" \
	sh -c 'printf "%s\n" "$1" | grep -q "answered in plaintext: it runs with --insecure"' _ "$out"
ok "writes still work" ctl put last yes
cluster_stop_checked >"$TESTDIR/stop.out"
is "members stop cleanly on SIGTERM, nothing leaked" "" "$(cat "$TESTDIR/stop.out")"
done_testing
