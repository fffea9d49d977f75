#!/usr/bin/env bash
# Users, roles and authentication: enabling needs root; permissions per
# operation (range, put, delete, txn, watch, lease revoke), the key named in
# each refusal; wrong passwords; expired tokens (--auth-token-ttl 2s) renewed
# transparently by a long-lived client; a role change taking effect at once;
# the auth state surviving a restart of every member and a snapshot install;
# auth disable.
. "$CAIRN_SRCDIR/tests/integration/lib.sh"

unset CAIRN_USER CAIRN_PASSWORD
AC="$BUILD/tests/integration/authclient"
root=(--user root:rootpw)
alice=(--user alice:alicepw)
bob=(--user bob:bobpw)
fails_with() { # fails_with PATTERN COMMAND...: COMMAND fails saying PATTERN
	local pat=$1 out
	shift
	if out=$("$@" 2>&1); then echo "succeeded: $out"; return 1; fi
	printf '%s\n' "$out" | grep -q -- "$pat" || { echo "said: $out"; return 1; }
}

cluster_start 3 --auth-token-ttl 2s --snapshot-count 64

ok "auth enable is refused without a root user" fails_with "user 'root'" ctl auth enable
ok "user add root" ctl user add root --new-user-password rootpw
ok "still refused while root lacks role root" fails_with "role 'root'" ctl auth enable
ok "grant role root to root" ctl user grant-role root root
ok "auth enable" ctl auth enable
is "auth status says so" "Authentication Status: true" "$(ctl auth status | head -n 1)"
ok "without a user, requests are refused" fails_with "authentication required" ctl get a
ok "a wrong password is refused" fails_with "wrong user name or password" ctl --user root:nope get a
ok "an unknown user is refused" fails_with "wrong user name or password" ctl --user mallory:x get a
ok "root can put" ctl "${root[@]}" put app/a 1
ok "root can put anywhere" ctl "${root[@]}" put other/x 1

# A reader of the prefix app/.
ok "role add reader" ctl "${root[@]}" role add reader
ok "grant read on the prefix app/" ctl "${root[@]}" role grant-permission reader read app/ --prefix
ok "user add alice (NAME:PASSWORD)" ctl "${root[@]}" user add alice:alicepw
ok "grant reader to alice" ctl "${root[@]}" user grant-role alice reader
is "role get shows the range" "[app/, app0)" "$(ctl "${root[@]}" role get reader | sed -n 3p | tr -d '\t')"
is "user get shows the role" "Roles: reader" "$(ctl "${root[@]}" user get alice | sed -n 2p)"
is "alice reads a key of the prefix" "1" "$(ctl "${alice[@]}" get app/a --print-value-only)"
ok "alice lists the prefix" ctl "${alice[@]}" get app/ --prefix
ok "alice may not put there, and the key is named" \
	fails_with 'permission denied: user alice may not write key "app/a"' ctl "${alice[@]}" put app/a 2
ok "alice may not delete there" fails_with 'permission denied' ctl "${alice[@]}" del app/a
ok "alice may not read other keys, and the key is named" \
	fails_with 'may not read key "other/x"' ctl "${alice[@]}" get other/x
ok "alice may not read past the prefix" fails_with 'keys >= "app/"' ctl "${alice[@]}" get app/ --from-key
ok "alice may not add users" fails_with "needs role root" ctl "${alice[@]}" user add eve:x
ok "alice may not compact" fails_with "needs role root" ctl "${alice[@]}" compact 1
ok "alice may not disable auth" fails_with "needs role root" ctl "${alice[@]}" auth disable

# A writer of logs/ that cannot read.
ctl "${root[@]}" role add writer >/dev/null
ok "grant write on logs/" ctl "${root[@]}" role grant-permission writer write logs/ --prefix
printf 'bobpw\n' | ctl "${root[@]}" user add bob >/dev/null
ctl "${root[@]}" user grant-role bob writer >/dev/null
ok "bob (password from stdin) writes logs/1" ctl "${bob[@]}" put logs/1 x
ok "bob may not read it" fails_with 'may not read key "logs/1"' ctl "${bob[@]}" get logs/1
ok "nor put with --prev-kv (needs read)" fails_with 'read and write' ctl "${bob[@]}" put --prev-kv logs/1 y
ok "bob deletes logs/1" ctl "${bob[@]}" del logs/1

# Transactions: compares and both branches are checked.
ok "a txn within alice's reads" sh -c "printf 'value(\"app/a\") = \"1\"\n\nget app/a\n\nget app/b\n' | '$CTL' --endpoints $CAIRN_ENDPOINTS --user alice:alicepw txn"
ok "a txn with a put in the branch not taken is refused" \
	fails_with 'may not write key "app/a"' sh -c "printf 'value(\"app/a\") = \"1\"\n\nget app/a\n\nput app/a 3\n' | '$CTL' --endpoints $CAIRN_ENDPOINTS --user alice:alicepw txn"
ok "a txn comparing a key out of bounds is refused" \
	fails_with 'may not read key "other/x"' sh -c "printf 'value(\"other/x\") = \"1\"\n\nget app/a\n\n\n' | '$CTL' --endpoints $CAIRN_ENDPOINTS --user alice:alicepw txn"
is "the refused txn changed nothing" "1" "$(ctl "${root[@]}" get app/a --print-value-only)"

# Watches: checked at creation.
ctl "${alice[@]}" watch app/ --prefix --max-events 1 --timeout 15s >"$TESTDIR/watch.out" 2>&1 &
wpid=$!
ALL_PIDS+=("$wpid")
sleep 1.5
ctl "${root[@]}" put app/w seen >/dev/null
wait "$wpid"
ok "alice watches the prefix" grep -q "app/w" "$TESTDIR/watch.out"
ok "a watch outside it is refused" fails_with 'may not read' ctl "${alice[@]}" watch other/ --prefix --timeout 5s

# Leases: any user grants; revoking needs write on every attached key.
id=$(ctl "${bob[@]}" lease grant 60 | sed -n 's/^lease \([0-9a-f]*\) granted.*/\1/p')
ok "bob grants a lease" test -n "$id"
ok "bob attaches logs/l" ctl "${bob[@]}" put --lease "$id" logs/l 1
ok "alice may not revoke it (no write on logs/l)" fails_with 'logs/l' ctl "${alice[@]}" lease revoke "$id"
ok "bob revokes it" ctl "${bob[@]}" lease revoke "$id"
is "the attached key is gone" "" "$(ctl "${root[@]}" get logs/l)"

# One long-lived client: its token expires (2 s) and is renewed without the
# caller noticing; a role change makes the token out of date at once.
mkfifo "$TESTDIR/ac.in"
CAIRN_TRACE=1 "$AC" "$CAIRN_ENDPOINTS" alice alicepw <"$TESTDIR/ac.in" >"$TESTDIR/ac.out" 2>"$TESTDIR/ac.err" &
acpid=$!
ALL_PIDS+=("$acpid")
exec 3>"$TESTDIR/ac.in"
ac() { # ac COMMAND: one command to the client, its answer line
	local n
	n=$(wc -l <"$TESTDIR/ac.out")
	echo "$1" >&3
	for _ in $(seq 1 150); do
		[ "$(wc -l <"$TESTDIR/ac.out")" -gt "$n" ] && break
		sleep 0.1
	done
	sed -n "$((n + 1))p" "$TESTDIR/ac.out"
}
is "the client reads as alice" "ok 1" "$(ac "get app/a")"
sleep 3
is "after the token expired, the next read still works" "ok 1" "$(ac "get app/a")"
ok "the store refused the expired token" grep -q "token expired" "$TESTDIR/ac.err"
ok "and the client authenticated again" grep -q "re-authenticating" "$TESTDIR/ac.err"
ok "revoke reader from alice" ctl "${root[@]}" user revoke-role alice reader
is "the same client is refused at once" "err 26" "$(ac "get app/a" | cut -d' ' -f1,2)"
ok "its token was out of date" grep -q "out of date" "$TESTDIR/ac.err"
ok "grant reader back" ctl "${root[@]}" user grant-role alice reader
is "and it reads again" "ok 1" "$(ac "get app/a")"
exec 3>&-
wait "$acpid"
ok "a client with a wrong password fails with the store's message" \
	sh -c "echo 'get app/a' | '$AC' $CAIRN_ENDPOINTS alice wrong | grep -q '^err 25 .*wrong user name or password'"

# The auth state survives a restart of every member.
for i in 1 2 3; do member_kill "$i" TERM; done
for i in 1 2 3; do member_start "$i" --auth-token-ttl 2s --snapshot-count 64; done
wait_leader 30
is "auth is still enabled after a restart" "Authentication Status: true" "$(ctl auth status | head -n 1)"
ok "anonymous requests are still refused" fails_with "authentication required" ctl get app/a
is "alice still reads" "1" "$(ctl "${alice[@]}" get app/a --print-value-only)"
ok "and still may not write" fails_with 'permission denied' ctl "${alice[@]}" put app/a 2

# ... and a snapshot install: a member with a lost disk comes back as a new
# member and catches up from a snapshot (as in cluster-catchup.sh).
follower=1
[ "$LEADER" = 1 ] && follower=2
member_kill "$follower" KILL
rm -rf "$DATA/data$follower"
ok "remove the member whose disk was lost" ctl "${root[@]}" member remove "$follower"
for i in $(seq 1 150); do ctl "${root[@]}" put "k/$i" "$i" >/dev/null; done
PPORT[4]=$(free_port)
TAKEN_PORTS="$TAKEN_PORTS${PPORT[4]} "
ok "add it back as member 4" ctl "${root[@]}" member add 4 --peer-urls "127.0.0.1:${PPORT[4]}"
member_join 4 --auth-token-ttl 2s --snapshot-count 64
ok "the new member catches up" wait_until 30 \
	sh -c "'$CTL' --endpoints $(member_endpoint 4) --user root:rootpw get k/150 --consistency s --print-value-only | grep -qx 150"
ok "by installing a snapshot" grep -q "restored snapshot" "$TESTDIR/m4.log"
ok "it authenticates alice from the restored state" \
	sh -c "'$CTL' --endpoints $(member_endpoint 4) --user alice:alicepw get app/a --consistency s --print-value-only | grep -qx 1"
ok "and refuses her out of bounds" \
	fails_with 'may not read key "other/x"' "$CTL" --endpoints "$(member_endpoint 4)" --user alice:alicepw get other/x --consistency s

# Auth disable by root only.
ok "root disables auth" ctl "${root[@]}" auth disable
ok "anonymous requests work again" ctl put after-auth 1
is "auth status says so" "Authentication Status: false" "$(ctl auth status | head -n 1)"
cluster_stop_checked >"$TESTDIR/stop.out"
is "members stop cleanly on SIGTERM, nothing leaked" "" "$(cat "$TESTDIR/stop.out")"
done_testing
