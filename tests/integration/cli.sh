#!/usr/bin/env bash
# Command-line behaviour of cairn-store and cairnctl: help, version, usage
# errors with exit code 2, clear errors with exit code 1, the config file.
. "$CAIRN_SRCDIR/tests/integration/lib.sh"

exit_code() { "$@" >/dev/null 2>&1; echo $?; }

ok "cairn-store --help" sh -c "'$STORE' --help | grep -q -- --initial-cluster"
ok "cairn-store --version" sh -c "'$STORE' --version | grep -q '^cairn-store '"
is "cairn-store unknown flag exits 2" 2 "$(exit_code "$STORE" --bogus)"
is "cairn-store without --id exits 2" 2 "$(exit_code "$STORE")"
is "cairn-store bad address exits 2" 2 "$(exit_code "$STORE" --id 1 --listen-client nowhere)"
ok "cairn-store bad address message names the flag" \
	sh -c "'$STORE' --id 1 --listen-client nowhere 2>&1 | grep -q -- --listen-client"
is "cairn-store bad timeouts exit 2" 2 \
	"$(exit_code "$STORE" --id 1 --election-timeout 100 --heartbeat-interval 80)"
is "cairn-store --initial-cluster without itself exits 2" 2 \
	"$(exit_code "$STORE" --id 4 --initial-cluster 1=127.0.0.1:7001)"

ok "cairnctl --help" sh -c "'$CTL' --help | grep -q put"
ok "cairnctl --version" sh -c "'$CTL' --version | grep -q cairn"
is "cairnctl unknown command exits 2" 2 "$(exit_code "$CTL" frobnicate)"
is "cairnctl put without a value and no stdin exits 2" 2 "$(exit_code "$CTL" put </dev/null)"
is "cairnctl unknown flag exits 2" 2 "$(exit_code "$CTL" get --bogus x)"
port=$(free_port)
is "cairnctl against nothing exits 1" 1 \
	"$(exit_code "$CTL" --endpoints "127.0.0.1:$port" --command-timeout 1s get x)"
ok "cairnctl bad endpoint says why" \
	sh -c "'$CTL' --endpoints 'not-an-endpoint' get x 2>&1 | grep -qi error"

# A member configured from a file.
cluster_init 1
cat >"$TESTDIR/member.conf" <<CONF
# a config file
id = 1
data-dir = $TESTDIR/conf-data
listen-client = 127.0.0.1:${CPORT[1]}
listen-peer = 127.0.0.1:${PPORT[1]}
log-level = debug
CONF
if [ "${CAIRN_TEST_INSECURE:-0}" = 1 ]; then
	echo "insecure = true" >>"$TESTDIR/member.conf"
else
	echo "cluster-secret-file = $SECRET" >>"$TESTDIR/member.conf"
fi
"$STORE" --config "$TESTDIR/member.conf" >"$TESTDIR/m1.log" 2>&1 &
PIDS[1]=$!
ALL_PIDS+=("$!")
ok "a member started from a config file serves" wait_until 10 ctl put from-config yes
ok "the config file's log level applies" grep -q debug "$TESTDIR/m1.log"
printf 'id = 1\nbogus = 3\n' >"$TESTDIR/bad.conf"
is "a config file with an unknown name exits 2" 2 "$(exit_code "$STORE" --config "$TESTDIR/bad.conf")"
ok "its error names the line" sh -c "'$STORE' --config '$TESTDIR/bad.conf' 2>&1 | grep -q 'bad.conf:2'"
ok "a second member on the same peer port" sh -c "! '$STORE' --id 2 --data-dir '$TESTDIR/other' \
	--listen-client 127.0.0.1:$(free_port) --listen-peer 127.0.0.1:${PPORT[1]} >'$TESTDIR/other.log' 2>&1"
ok "says the peer port is in use" grep -q "cannot listen for peers on 127.0.0.1:${PPORT[1]}: Address already in use" "$TESTDIR/other.log"
member_kill 1 TERM
ok "SIGTERM stops a member cleanly" grep -q stopped "$TESTDIR/m1.log"
done_testing
