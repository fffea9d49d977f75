#!/usr/bin/env bash
# cairn-bench against three real members: every workload with a load of a
# few requests, its text report (etcd's sections) and its one-line JSON; what
# the key flags write (key size, value size, key space, sequential keys, the
# puts of a transaction, one lease per client); watch fan-out counts; --rate
# pacing; --endpoints over $CAIRN_ENDPOINTS; usage errors with exit code 2;
# requests that fail (nothing listens) with exit code 1.
. "$CAIRN_SRCDIR/tests/integration/lib.sh"

BENCH="$BUILD/bench/cairn-bench"
BENCH_LIMIT=${BENCH_LIMIT:-60} # seconds a run may take before it is killed
declare -A BENCH_PID

# bench_bg NAME ARGS...: cairn-bench ARGS in the background, stdout to
# $TESTDIR/NAME.out, stderr to NAME.err; recorded so cleanup stops it.
bench_bg() {
	local name=$1
	shift
	"$BENCH" "$@" >"$TESTDIR/$name.out" 2>"$TESTDIR/$name.err" &
	BENCH_PID[$name]=$!
	ALL_PIDS+=("$!")
}

# bench_wait NAME: waits for run NAME, killing it after BENCH_LIMIT seconds;
# its exit status goes to NAME.rc (124 when it was killed).
bench_wait() {
	local name=$1 pid=${BENCH_PID[$1]} deadline=$((SECONDS + BENCH_LIMIT)) rc
	while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do
		sleep 0.02
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -9 "$pid"
		wait "$pid" 2>/dev/null
		rc=124
	else
		wait "$pid"
		rc=$?
	fi
	echo "$rc" >"$TESTDIR/$name.rc"
}

bench() { # bench NAME ARGS...: one run, to its end
	bench_bg "$@"
	bench_wait "$1"
}

# exited NAME RC: run NAME exited with status RC; else says how it ended.
exited() {
	local rc
	rc=$(cat "$TESTDIR/$1.rc")
	[ "$rc" = "$2" ] && return 0
	echo "exit status $rc, expected $2 (124: killed after ${BENCH_LIMIT}s)"
	echo "--- stderr:"
	tail -n 5 "$TESTDIR/$1.err"
	echo "--- stdout:"
	tail -n 5 "$TESTDIR/$1.out"
	return 1
}

# has FILE STRING...: each STRING is in FILE, or with a leading ! is not.
has() {
	local f=$1 s bad=""
	shift
	for s in "$@"; do
		case $s in
		!*) ! grep -qF -- "${s#!}" "$f" || bad="$bad [${s#!}] present;" ;;
		*) grep -qF -- "$s" "$f" || bad="$bad [$s] missing;" ;;
		esac
	done
	[ -z "$bad" ] && return 0
	echo "$f:$bad"
	head -n 40 "$f"
	return 1
}

# text_report NAME UNIT [STRING...]: run NAME printed etcd's text report with
# rate UNIT, no error line, and the STRINGs (see has).
text_report() {
	local name=$1 unit=$2
	shift 2
	has "$TESTDIR/$name.out" "Summary:" "  Total:	" "  Slowest:	" \
		"  Fastest:	" "  Average:	" "  Stddev:	" "  $unit:	" \
		"Response time histogram:" "Latency distribution:" "  10% in " \
		"  50% in " "  99% in " "  99.9% in " "Generator CPU:	" \
		"of one core)" "!errors; first:" "$@"
}

# json_report NAME WORKLOAD REQUESTS [STRING...]: run NAME printed one JSON
# line for WORKLOAD with REQUESTS requests, no error, and the STRINGs.
json_report() {
	local name=$1 workload=$2 requests=$3 lines
	shift 3
	lines=$(wc -l <"$TESTDIR/$name.out")
	[ "$lines" -eq 1 ] || { echo "$lines lines of output, expected 1"; return 1; }
	has "$TESTDIR/$name.out" "{\"workload\":\"$workload\"," \
		"\"requests\":$requests," "\"errors\":0," '"percentiles_ms":{"10":' \
		'"50":' '"99.9":' '"slowest_ms":' '"rate":' '!"first_error"' "$@"
}

json_num() { # json_num NAME FIELD: a number of run NAME's JSON line
	sed -n "s/.*\"$2\":\([0-9.]*\).*/\1/p" "$TESTDIR/$1.out"
}

# events NAME: the watch events run NAME counted (extra_rate is events per
# second of the run, so events = extra_rate * seconds, rounded).
events() {
	awk -v r="$(json_num "$1" extra_rate)" -v s="$(json_num "$1" seconds)" \
		'BEGIN { printf "%d\n", r * s + 0.5 }'
}

at_least() { # at_least NAME FIELD MIN
	awk -v v="$(json_num "$1" "$2")" -v m="$3" 'BEGIN { exit !(v != "" && v >= m) }' ||
		{ echo "$2 is $(json_num "$1" "$2"), expected at least $3"; return 1; }
}

# keys_of_len N: how many keys of N bytes the store holds.
keys_of_len() {
	ctl get "" --prefix --keys-only | awk -v n="$1" 'length($0) == n' | wc -l
}

# leases: how many leases the leader knows (a follower may not have applied
# the latest grant yet).
leases() {
	"$CTL" --endpoints "$(member_endpoint "$LEADER")" lease list |
		sed -n 's/^found \([0-9]*\) leases.*/\1/p'
}
leases_are() { [ "$(leases)" = "$1" ]; }

# ---- requests that fail: nothing listens (each takes libcairn's 10 s request
# timeout, so they run in the background; plaintext, since no secret exists
# yet) --
DEAD=$(free_port)
TAKEN_PORTS="$TAKEN_PORTS$DEAD "
bench_bg dead-json --json --insecure --endpoints "127.0.0.1:$DEAD" --clients 2 put --total 2
bench_bg dead-text --insecure --endpoints "127.0.0.1:$DEAD" --clients 2 put --total 2
bench_bg dead-lease --insecure --endpoints "127.0.0.1:$DEAD" lease-keepalive --total 2
bench_bg dead-watch --insecure --endpoints "127.0.0.1:$DEAD" watch-latency --total 2 --watchers 2
bench_bg dead-leader --insecure --endpoints "127.0.0.1:$DEAD" --target-leader put --total 2

# ---- usage errors: exit 2 and say what is wrong, before any request --------
# usage_error DESCRIPTION MESSAGE ARGS...
usage_error() {
	local desc=$1 msg=$2
	shift 2
	bench usage "$@"
	ok "$desc exits 2" exited usage 2
	ok "$desc says so" has "$TESTDIR/usage.err" "cairn-bench: " "$msg"
}
NOWHERE=(--endpoints "127.0.0.1:$DEAD") # a usage error must not get as far

bench help --help
ok "--help exits 0" exited help 0
ok "--help lists every workload" has "$TESTDIR/help.out" "put  " "range KEY [END]" \
	"txn-put  " "watch  " "watch-latency  " "lease-keepalive  " "--target-leader"
usage_error "an unknown command" "unknown command 'frobnicate'" "${NOWHERE[@]}" frobnicate
usage_error "an unknown option" "unrecognized option '--bogus'" "${NOWHERE[@]}" put --bogus
usage_error "range without KEY" "range: give KEY [END]" "${NOWHERE[@]}" range
usage_error "range with three arguments" "range: give KEY [END]" "${NOWHERE[@]}" range a b c
usage_error "put with an argument" "put: unexpected argument 'x'" "${NOWHERE[@]}" put x
usage_error "--total 0" "--total: '0' is not a number from 1 to" "${NOWHERE[@]}" put --total 0
usage_error "--key-size 256" "--key-size: '256' is not a number from 1 to 255" \
	"${NOWHERE[@]}" put --key-size 256
usage_error "--consistency x" "--consistency: 'l' or 's'" "${NOWHERE[@]}" range k --consistency x
usage_error "txn-put with fewer keys than puts per transaction" \
	"--key-space-size must be at least --txn-ops" \
	"${NOWHERE[@]}" txn-put --txn-ops 4 --key-space-size 2
ok "a usage error prints no report" has "$TESTDIR/usage.out" "!Summary"

# ---- every workload, text and JSON ----------------------------------------
cluster_start 3

bench put put --total 2
ok "put exits 0" exited put 0
ok "put prints the report" text_report put Requests/sec "!Events/sec" "!Until every watcher"
bench put-json --json put --total 2
ok "put --json exits 0" exited put-json 0
ok "put --json prints one JSON line" json_report put-json put 2 '!"extra_rate"'

ok "write a key to read" ctl put bench-range some-value
bench range range bench-range --total 2
ok "range exits 0" exited range 0
ok "range prints the report" text_report range Requests/sec
bench range-s --json range bench-range --total 2 --consistency s
ok "range --consistency s exits 0" exited range-s 0
ok "range --consistency s prints one JSON line" json_report range-s range 2
bench range-end --json range bench-a bench-z --total 2
ok "range KEY END exits 0" exited range-end 0
ok "range KEY END prints one JSON line" json_report range-end range 2

bench txn txn-put --txn-ops 4 --total 2
ok "txn-put exits 0" exited txn 0
ok "txn-put reports transactions per second" text_report txn Txns/sec "!Requests/sec"
bench txn-json --json txn-put --txn-ops 4 --total 2 --key-size 14
ok "txn-put --json exits 0" exited txn-json 0
ok "txn-put --json prints one JSON line" json_report txn-json txn-put 2 '"rate_unit":"Txns/sec"'
is "two transactions of four puts wrote eight keys" 8 "$(keys_of_len 14)"

bench watch watch --watchers 2 --total 2
ok "watch exits 0" exited watch 0
ok "watch prints the report with events per second" text_report watch Requests/sec "  Events/sec:	"
bench watch-json --conns 2 --json watch --streams 2 --watch-per-stream 3 --put-total 2
ok "watch --json exits 0" exited watch-json 0
ok "watch --json prints one JSON line" json_report watch-json watch 2 '"extra_unit":"Events/sec"'
is "2 streams of 3 watchers had every one of 2 puts" 12 "$(events watch-json)"

bench latency watch-latency --total 2 --watchers 2
ok "watch-latency exits 0" exited latency 0
ok "watch-latency prints both distributions" text_report latency Requests/sec \
	"  Events/sec:	" "Until every watcher had the event:"
bench latency-json --json watch-latency --total 2 --watchers 2
ok "watch-latency --json exits 0" exited latency-json 0
ok "watch-latency --json prints one JSON line" json_report latency-json watch-latency 2 \
	'"all_watchers_percentiles_ms":{"10":'
is "2 watchers had each of 2 puts" 4 "$(events latency-json)"

bench lease lease-keepalive --total 2
ok "lease-keepalive exits 0" exited lease 0
ok "lease-keepalive prints the report" text_report lease Requests/sec
before=$(leases)
bench lease-json --json --clients 2 lease-keepalive --total 4
ok "lease-keepalive --json exits 0" exited lease-json 0
ok "lease-keepalive --json counts the keep-alives, not the grants" \
	json_report lease-json lease-keepalive 4
ok "each client granted one lease" wait_until 5 leases_are $((before + 2))

# ---- what the key flags write ---------------------------------------------
bench one-key --json put --total 3 --key-size 12
ok "put without a key space exits 0" exited one-key 0
is "put writes one key by default" 1 "$(keys_of_len 12)"
bench seq --json put --total 2 --sequential-keys --key-size 10 --val-size 5
ok "put --sequential-keys exits 0" exited seq 0
is "--sequential-keys writes --total keys" 2 "$(keys_of_len 10)"
is "keys are zero-padded numbers from 0" "vvvvv" \
	"$(ctl get 0000000001 --print-value-only)"
bench space --json put --total 5 --sequential-keys --key-space-size 3 --key-size 13
ok "put --key-space-size exits 0" exited space 0
is "--key-space-size bounds the keys written" 3 "$(keys_of_len 13)"

# ---- global options ---------------------------------------------------------
bench leader --json --target-leader put --total 2
ok "--target-leader exits 0" exited leader 0
ok "--target-leader prints one JSON line" json_report leader put 2
bench many --json --conns 2 --clients 4 put --total 8
ok "--conns 2 --clients 4 exits 0" exited many 0
ok "--conns 2 --clients 4 does every request" json_report many put 8
# The first two requests go at once, then one per 1/rate: 4 take >= 20 ms.
bench rate --json put --rate 100 --total 4
ok "put --rate 100 exits 0" exited rate 0
ok "put --rate 100 prints one JSON line" json_report rate put 4
ok "--rate paces the requests" at_least rate seconds 0.02
bench put-rate --json watch-latency --total 3 --watchers 2 --put-rate 50
ok "watch-latency --put-rate exits 0" exited put-rate 0
ok "--put-rate paces the puts" at_least put-rate seconds 0.02
LIVE=$CAIRN_ENDPOINTS
CAIRN_ENDPOINTS="127.0.0.1:$DEAD"
bench endpoints --json --endpoints "$LIVE" put --total 2
CAIRN_ENDPOINTS=$LIVE
ok "--endpoints wins over \$CAIRN_ENDPOINTS" exited endpoints 0

# ---- the runs against nothing ------------------------------------------------
bench_wait dead-json
ok "failed requests exit 1" exited dead-json 1
ok "and count as errors in the JSON line" has "$TESTDIR/dead-json.out" \
	'"workload":"put"' '"requests":2,' '"errors":2,' "\"first_error\":\"" "127.0.0.1:$DEAD"
bench_wait dead-text
ok "failed requests exit 1 (text)" exited dead-text 1
ok "the text report ends with the errors" has "$TESTDIR/dead-text.out" \
	"Summary:" "Latency distribution:" "2 errors; first: " "127.0.0.1:$DEAD"
bench_wait dead-lease
ok "lease-keepalive whose grant fails exits 1" exited dead-lease 1
ok "and says the grant failed" has "$TESTDIR/dead-lease.err" "cairn-bench: lease grant failed: "
bench_wait dead-watch
ok "watch-latency that cannot start its watchers exits 1" exited dead-watch 1
ok "and says why" has "$TESTDIR/dead-watch.err" "cairn-bench: " "127.0.0.1:$DEAD"
bench_wait dead-leader
ok "--target-leader without a cluster exits 1" exited dead-leader 1
ok "and says why" has "$TESTDIR/dead-leader.err" "cairn-bench: --target-leader: "

cluster_stop_checked >"$TESTDIR/stop.out"
is "members stop cleanly on SIGTERM, nothing leaked" "" "$(cat "$TESTDIR/stop.out")"
done_testing
