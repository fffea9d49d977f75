#!/usr/bin/env bash
# demo.sh: installs what is missing (Debian 12, as root), builds cairn, starts a
# three-member cluster on loopback in a temporary directory and shows it at
# work: writes, reads, a transaction, the leader killed with SIGKILL and the
# cluster carrying on, the old leader back and caught up. Stops everything it
# started when done (or interrupted).
set -eu
cd "$(dirname "$0")/.."
. scripts/deps.sh

install_deps
echo "==> building (build/)"
build build

STORE=$PWD/build/store/cairn-store
CTL=$PWD/build/cli/cairnctl
DIR=$(mktemp -d "${TMPDIR:-/tmp}/cairn-demo.XXXXXX")
declare -a PIDS

stop_all() {
	local pid
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	rm -rf "$DIR"
}
trap stop_all EXIT

# Ports below the kernel's ephemeral range, which outgoing connections use.
read -r EPHEMERAL_LOW _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || EPHEMERAL_LOW=32768
PORT_LOW=10000
PORT_HIGH=$((EPHEMERAL_LOW > 12000 ? EPHEMERAL_LOW : 32768))

free_port() {
	local p
	while :; do
		p=$((PORT_LOW + RANDOM % (PORT_HIGH - PORT_LOW)))
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
	done
}

INITIAL=""
ENDPOINTS=""
for i in 1 2 3; do
	CPORT[$i]=$(free_port)
	PPORT[$i]=$(free_port)
	INITIAL="${INITIAL:+$INITIAL,}$i=127.0.0.1:${PPORT[$i]}"
	ENDPOINTS="${ENDPOINTS:+$ENDPOINTS,}127.0.0.1:${CPORT[$i]}"
done
export CAIRN_ENDPOINTS=$ENDPOINTS
# Member 1, listed first, creates the cluster secret; the others and the
# client use its file.
SECRET=$DIR/data1/cluster.secret
export CAIRN_SECRET_FILE=$SECRET

start() {
	"$STORE" --id "$1" --data-dir "$DIR/data$1" \
		--listen-client "127.0.0.1:${CPORT[$1]}" \
		--listen-peer "127.0.0.1:${PPORT[$1]}" \
		--initial-cluster "$INITIAL" \
		--cluster-secret-file "$SECRET" >>"$DIR/member$1.log" 2>&1 &
	PIDS[$1]=$!
}

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
run() {
	printf '$'
	printf ' %q' "$@"
	printf '\n'
	"$@"
}

leader() {
	"$CTL" -o json endpoint status 2>/dev/null |
		sed -n 's/.*"leader":[[:space:]]*\([0-9]*\).*/\1/p' | grep -v '^0$' | head -n 1
}

wait_leader() {
	local i
	for i in $(seq 1 100); do
		L=$(leader)
		[ -n "$L" ] && [ -n "${PIDS[$L]:-}" ] && return 0
		sleep 0.1
	done
	echo "no leader elected; logs in $DIR" >&2
	exit 1
}

step "starting three members on loopback (data in $DIR)"
echo "initial cluster: $INITIAL"
start 1
for i in $(seq 1 100); do [ -s "$SECRET" ] && break; sleep 0.05; done
grep "cluster secret" "$DIR/member1.log" | sed 's/^[^ ]* [^ ]* *//'
for i in 2 3; do start "$i"; done
wait_leader
run "$CTL" -o table endpoint status

step "writes and reads (member $L leads)"
run "$CTL" put /demo/greeting "hello, cairn"
for i in 1 2 3; do "$CTL" put "/demo/item/$i" "value $i" >/dev/null; done
run "$CTL" get /demo/ --prefix
step "a transaction: compare-and-swap on the greeting"
TXN='value("/demo/greeting") = "hello, cairn"

put /demo/greeting "hello again"
get /demo/greeting

get /demo/greeting
'
printf '$ %s txn <<EOF\n%sEOF\n' "$CTL" "$TXN"
printf '%s' "$TXN" | "$CTL" txn

step "killing the leader (member $L) with SIGKILL"
OLD=$L
kill -9 "${PIDS[$OLD]}"
wait "${PIDS[$OLD]}" 2>/dev/null || true
PIDS[$OLD]=""
T0=$(date +%s%N)
until "$CTL" --command-timeout 5s put /demo/after-failover yes >/dev/null 2>&1; do sleep 0.05; done
T1=$(date +%s%N)
wait_leader
echo "member $L leads now; the first write after the kill succeeded $(( (T1 - T0) / 1000000 )) ms after it"
run "$CTL" get /demo/ --prefix --keys-only

step "restarting member $OLD: it catches up from the others"
start "$OLD"
for i in $(seq 1 100); do
	v=$("$CTL" --endpoints "127.0.0.1:${CPORT[$OLD]}" get /demo/after-failover \
		--consistency s --print-value-only 2>/dev/null || true)
	[ "$v" = yes ] && break
	sleep 0.1
done
run "$CTL" -o table endpoint status
run "$CTL" -o table member list

step "done: stopping the cluster"
