#!/usr/bin/env bash
# The secure channel end to end: the first member creates the cluster secret
# (mode 0600) and the others refuse to start without a copy (or its text in
# CAIRN_SECRET); clients and members with another secret are refused with a
# clear error on both sides while the cluster keeps working; tampered,
# replayed, reordered and cut frames end the connection and are logged, and
# so do peers that stop mid-handshake; plaintext clients and peers are
# refused by a secure member, and the reverse; --insecure, the only way to
# plaintext, is allowed on any address but warned about off loopback.
. "$CAIRN_SRCDIR/tests/integration/lib.sh"

RAW="$BUILD/tests/integration/rawframe"
if [ "${CAIRN_TEST_INSECURE:-0}" = 1 ]; then
	echo "1..0 # SKIP the secure channel's tests need it on"
	exit 0
fi

mode_of() { stat -c %a "$1"; }
has() { printf '%s\n' "$1" | grep -q -- "$2"; } # has TEXT PATTERN

# ---- the first member creates the secret ------------------------------------
cluster_init 1
unset CAIRN_SECRET_FILE
SECURITY=()
member_start 1
secret="$DATA/data1/cluster.secret"
ok "the first member creates DATA_DIR/cluster.secret" wait_until 10 test -s "$secret"
is "with mode 0600" 600 "$(mode_of "$secret")"
ok "and logs where it is and who needs it" wait_until 10 \
	grep -q "created the cluster secret $secret (fingerprint [0-9a-f]*): copy it" "$TESTDIR/m1.log"
ok "a client with that file works" wait_until 10 \
	env CAIRN_SECRET_FILE="$secret" "$CTL" --endpoints "$(member_endpoint 1)" put first yes
ok "so does --secret-file" \
	"$CTL" --secret-file "$secret" --endpoints "$(member_endpoint 1)" get first
out=$("$CTL" --endpoints "$(member_endpoint 1)" get first 2>&1)
is "a client without a secret exits 1" 1 $?
ok "... saying how to give one" has "$out" "no cluster secret: set CAIRN_SECRET_FILE"
cp "$secret" "$TESTDIR/wide.secret"
chmod 644 "$TESTDIR/wide.secret"
out=$("$CTL" --secret-file "$TESTDIR/wide.secret" --endpoints "$(member_endpoint 1)" get first 2>&1)
ok "a secret file others may read is refused" has "$out" "has mode 0644"
member_kill 1 TERM
mv "$secret" "$TESTDIR/saved.secret"
ok "a restart without the secret file is refused" \
	sh -c "! '$STORE' --id 1 --data-dir '$DATA/data1' --listen-client 127.0.0.1:${CPORT[1]} \
		--listen-peer 127.0.0.1:${PPORT[1]} 2>'$TESTDIR/restart.err'"
ok "... saying where the file belongs" grep -q "cluster secret file $secret does not exist" "$TESTDIR/restart.err"
export CAIRN_SECRET
CAIRN_SECRET=$(cat "$TESTDIR/saved.secret")
member_start 1
unset CAIRN_SECRET
ok "a member given the secret's text in CAIRN_SECRET starts" wait_until 10 \
	env CAIRN_SECRET_FILE="$TESTDIR/saved.secret" "$CTL" --endpoints "$(member_endpoint 1)" get first
ok "... and says where its secret comes from" grep -q "cluster secret from CAIRN_SECRET" "$TESTDIR/m1.log"
member_kill 1 TERM
ok "a joining member without it is refused" \
	sh -c "! '$STORE' --id 7 --data-dir '$TESTDIR/join7' --join 2>'$TESTDIR/join.err'"
ok "... too" grep -q "does not exist" "$TESTDIR/join.err"
ok "so is a member of a new cluster that is not listed first" \
	sh -c "! '$STORE' --id 2 --data-dir '$TESTDIR/new2' \
		--initial-cluster 1=127.0.0.1:1,2=127.0.0.1:2 2>'$TESTDIR/second.err'"
ok "... (only the first member creates it)" grep -q "does not exist" "$TESTDIR/second.err"
ok "--generate-secret writes a new file, mode 0600" \
	"$STORE" --generate-secret "$TESTDIR/gen.secret"
is "... mode 0600" 600 "$(mode_of "$TESTDIR/gen.secret")"
ok "... and never overwrites one" sh -c "! '$STORE' --generate-secret '$TESTDIR/gen.secret' 2>/dev/null"

# ---- a secure cluster ---------------------------------------------------------
cluster_start 3
ok "a three-member cluster forms over the secure peer transport" ctl put k v
"$STORE" --generate-secret "$TESTDIR/other.secret" >/dev/null
ep=$(member_endpoint 1)

out=$("$CTL" --secret-file "$TESTDIR/other.secret" --endpoints "$ep" --command-timeout 20s get k 2>&1)
is "a client with another secret exits 1" 1 $?
ok "... at once, saying the secrets differ" has "$out" "does not know the cluster secret"
ok "the member logs the refused client" \
	grep -q "client 127.0.0.1:[0-9]*: secure channel: handshake: the peer does not know the cluster secret" "$TESTDIR/m1.log"
out=$("$CTL" --insecure --endpoints "$ep" get k 2>&1)
is "a plaintext client exits 1" 1 $?
ok "... told the member requires the secure channel" has "$out" "requires the secure channel"
ok "the member logs it" grep -q "refused: it speaks plaintext" "$TESTDIR/m1.log"

for c in wrong-secret plaintext-hello tamper replay reorder truncate-frame; do
	ok "raw client: $c" "$RAW" "$ep" "$c"
done
ok "the member logs the tampered frame" \
	grep -q "frame 1: authentication failed (tampered, replayed or reordered)" "$TESTDIR/m1.log"
ok "... the replayed one" grep -q "frame 2: authentication failed" "$TESTDIR/m1.log"
ok "... and the cut one" grep -q "frame 2: the connection closed inside it .*truncated" "$TESTDIR/m1.log"
ok "the cluster still serves" ctl put after-raw yes

# A raw peer: plaintext preamble and identity, as an --insecure member sends.
plain_peer() {
	exec 3<>"/dev/tcp/127.0.0.1/${PPORT[1]}" || return 1
	printf 'CRNP\001\000\000\000\011\000\000\000\000\000\000\000\000\001\011\000\000\000\000\000\000\000\016\000127.0.0.1:9999' >&3
	sleep 0.3
	exec 3<&-
}
plain_peer
ok "a plaintext peer is refused and logged" wait_until 5 \
	grep -q "member 9).*speaks plaintext (runs with --insecure); this member requires the secure channel" "$TESTDIR/m1.log"
exec 3<>"/dev/tcp/127.0.0.1/${PPORT[1]}" && printf 'GET / HTTP/1.0\r\n\r\n' >&3 && sleep 0.3
exec 3<&-
ok "a non-peer on the peer port is refused and logged" wait_until 5 \
	grep -q "not a cairn peer" "$TESTDIR/m1.log"

# Peers that stop mid-handshake: one closes after its preamble and part of
# its HELLO, one says nothing after its preamble (the handshake times out).
exec 3<>"/dev/tcp/127.0.0.1/${PPORT[1]}" && printf 'CRNP\001\000\000\000\010\000\000\000\000\000\000\000CRNS\001abc' >&3 && sleep 0.3
exec 3<&-
ok "a peer that closes mid-handshake is logged" wait_until 5 \
	grep -q "member 8): secure channel: handshake: the peer closed the connection during the handshake" "$TESTDIR/m1.log"
(
	exec 3<>"/dev/tcp/127.0.0.1/${PPORT[1]}" &&
		printf 'CRNP\001\000\000\000\007\000\000\000\000\000\000\000' >&3 &&
		exec sleep 7
) &
ALL_PIDS+=("$!")

# A member with another secret cannot join.
PPORT[4]=$(free_port)
TAKEN_PORTS="$TAKEN_PORTS${PPORT[4]} "
ok "member add 4" ctl member add 4 --peer-urls "127.0.0.1:${PPORT[4]}"
member_join 4 --cluster-secret-file "$TESTDIR/other.secret"
ok "the member with another secret logs why it is cut off" wait_until 15 \
	grep -q "peer.*does not know the cluster secret" "$TESTDIR/m4.log"
ok "the cluster logs it too" wait_until 15 grep -q \
	"peer 4 at 127.0.0.1:${PPORT[4]}: secure channel: handshake: the peer does not know the cluster secret" \
	"$TESTDIR/m1.log" "$TESTDIR/m2.log" "$TESTDIR/m3.log"
ok "the cluster keeps working" ctl put while-bad-member yes
ok "the member never receives the data" sh -c "! '$CTL' --secret-file '$TESTDIR/other.secret' \
	--endpoints $(member_endpoint 4) --command-timeout 2s get k --consistency s --print-value-only | grep -q v"
ok "remove it" ctl member remove 4
member_kill 4 KILL
ok "writes go on" ctl put after-bad-member yes
ok "a peer silent after its preamble is dropped after 5 s" wait_until 10 \
	grep -q "member 7): no handshake within 5000 ms (in state handshake)" "$TESTDIR/m1.log"
cluster_stop_checked >"$TESTDIR/stop.out"
is "members stop cleanly on SIGTERM, nothing leaked" "" "$(cat "$TESTDIR/stop.out")"

# ---- plaintext only with --insecure ---------------------------------------------
cluster_init 1
member_start 1 --listen-client "0.0.0.0:${CPORT[1]}"
ep="127.0.0.1:${CPORT[1]}"
ok "a secure member on 0.0.0.0 serves secure clients" wait_until 10 \
	"$CTL" --endpoints "$ep" put k v
ok "but never plaintext ones" sh -c "! '$CTL' --insecure --endpoints $ep get k"
member_kill 1 TERM
rm -rf "$DATA/data1"
member_start 1 --listen-client "0.0.0.0:${CPORT[1]}" --insecure
ok "--insecure on 0.0.0.0 starts" wait_until 10 \
	"$CTL" --insecure --endpoints "$ep" put k v
ok "... warning that anyone can read and change every key" \
	grep -q -- "--insecure on 0.0.0.0:${CPORT[1]}: anyone who can reach it" "$TESTDIR/m1.log"
out=$("$CTL" --endpoints "$ep" get k 2>&1)
ok "a secure client is told the member runs --insecure" \
	has "$out" "answered in plaintext: it runs with --insecure"
ok "the member logs it" grep -q "opens the secure channel, but this member runs with --insecure" "$TESTDIR/m1.log"
cluster_stop_checked >"$TESTDIR/stop.out"
is "the member stops cleanly" "" "$(cat "$TESTDIR/stop.out")"
done_testing
