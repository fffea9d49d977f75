# lib.sh: the harness of cairn's integration tests (sourced by each test).
#
# Starts real cairn-store processes on loopback with free ports and private
# data directories, talks to them with the real cairnctl, and prints TAP.
# Every process started is recorded by PID and stopped on exit, whether the
# test passed, failed or was interrupted. On failure the members' logs are
# printed as TAP comments.
#
# Security: each cluster gets one cluster secret file, written by
# cairn-store --generate-secret and given to every member
# (--cluster-secret-file) and to every client (CAIRN_SECRET_FILE, exported).
# With CAIRN_TEST_INSECURE=1 the members run with --insecure and the
# clients with CAIRN_INSECURE=1 instead: the plaintext variant.
#
#   . "$CAIRN_SRCDIR/tests/integration/lib.sh"
#   cluster_start 3
#   ok "put works" ctl put a 1
#   ...
#   done_testing

set -u

BUILD=${CAIRN_BUILDDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
STORE="$BUILD/store/cairn-store"
CTL="$BUILD/cli/cairnctl"
TESTDIR=$(mktemp -d "${TMPDIR:-/tmp}/cairn-test.XXXXXX")
N_TESTS=0
N_FAILED=0
PIDS=()      # by member index (1-based)
ALL_PIDS=()  # everything ever started, for cleanup
N_MEMBERS=0

cleanup() {
	local pid
	for pid in "${ALL_PIDS[@]}"; do
		kill -9 "$pid" 2>/dev/null
	done
	for pid in "${ALL_PIDS[@]}"; do
		wait "$pid" 2>/dev/null
	done
	if [ "$N_FAILED" -gt 0 ] || [ "${KEEP_TESTDIR:-0}" = 1 ]; then
		echo "# logs and data kept in $TESTDIR"
	else
		rm -rf "$TESTDIR"
	fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

diag() {
	local line
	while IFS= read -r line; do
		printf '# %s\n' "$line"
	done
}

# ok DESCRIPTION COMMAND...: one TAP test that passes when COMMAND succeeds.
ok() {
	local desc=$1 out
	shift
	N_TESTS=$((N_TESTS + 1))
	if out=$("$@" 2>&1); then
		echo "ok $N_TESTS - $desc"
	else
		N_FAILED=$((N_FAILED + 1))
		echo "not ok $N_TESTS - $desc"
		printf '%s\n' "$out" | tail -n 20 | diag
		dump_logs
	fi
}

# is DESCRIPTION EXPECTED ACTUAL
is() {
	N_TESTS=$((N_TESTS + 1))
	if [ "$2" = "$3" ]; then
		echo "ok $N_TESTS - $1"
	else
		N_FAILED=$((N_FAILED + 1))
		echo "not ok $N_TESTS - $1"
		printf 'expected: %s\n     got: %s\n' "$2" "$3" | diag
		dump_logs
	fi
}

dump_logs() {
	local i
	for i in $(seq 1 "$N_MEMBERS"); do
		echo "--- member $i log (last 15 lines) ---" | diag
		tail -n 15 "$TESTDIR/m$i.log" 2>/dev/null | diag
	done
}

done_testing() {
	echo "1..$N_TESTS"
	[ "$N_FAILED" -eq 0 ]
	exit $?
}

# Listening ports come from below the kernel's ephemeral range, so that no
# outgoing connection (a peer link, a client) can hold a port a member is about
# to bind; taken ports are never handed out twice in one test.
read -r EPHEMERAL_LOW _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || EPHEMERAL_LOW=32768
PORT_LOW=10000
PORT_HIGH=$((EPHEMERAL_LOW > 12000 ? EPHEMERAL_LOW : 32768))
TAKEN_PORTS=" "

# A port nobody listens on now (checked by trying to connect to it).
free_port() {
	local p
	while :; do
		p=$((PORT_LOW + RANDOM % (PORT_HIGH - PORT_LOW)))
		case $TAKEN_PORTS in *" $p "*) continue ;; esac
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
}

# take_port: sets PORT to a free port and marks it taken.
take_port() {
	PORT=$(free_port)
	TAKEN_PORTS="$TAKEN_PORTS$PORT "
}

# cluster_init N: chooses ports and the --initial-cluster of N members.
# With PEER_PROXY=1, each member also gets a port XPORT[i] that the cluster
# configuration names as its peer address, while the member binds PPORT[i]:
# a fault proxy listening on one forwards to the other.
cluster_init() {
	local i
	N_MEMBERS=$1
	CLUSTER_GEN=$((${CLUSTER_GEN:-0} + 1))
	DATA="$TESTDIR/cluster$CLUSTER_GEN" # a new cluster gets new data directories
	mkdir -p "$DATA"
	INITIAL=""
	ENDPOINTS=""
	for i in $(seq 1 "$N_MEMBERS"); do
		CPORT[$i]=$(free_port)
		TAKEN_PORTS="$TAKEN_PORTS${CPORT[$i]} "
		PPORT[$i]=$(free_port)
		TAKEN_PORTS="$TAKEN_PORTS${PPORT[$i]} "
		XPORT[$i]=${PPORT[$i]}
		if [ "${PEER_PROXY:-0}" = 1 ]; then
			XPORT[$i]=$(free_port)
			TAKEN_PORTS="$TAKEN_PORTS${XPORT[$i]} "
		fi
		INITIAL="${INITIAL:+$INITIAL,}$i=127.0.0.1:${XPORT[$i]}"
		ENDPOINTS="${ENDPOINTS:+$ENDPOINTS,}127.0.0.1:${CPORT[$i]}"
	done
	export CAIRN_ENDPOINTS=$ENDPOINTS
	cluster_secret
}

# cluster_secret: a new secret for the cluster in $DATA (or plaintext);
# sets SECURITY, the members' flags, and the clients' environment.
cluster_secret() {
	if [ "${CAIRN_TEST_INSECURE:-0}" = 1 ]; then
		SECURITY=(--insecure)
		export CAIRN_INSECURE=1
		unset CAIRN_SECRET_FILE CAIRN_SECRET
		return
	fi
	SECRET="$DATA/cluster.secret"
	"$STORE" --generate-secret "$SECRET" >/dev/null || {
		echo "Bail out! cannot write the cluster secret $SECRET"
		exit 1
	}
	SECURITY=(--cluster-secret-file "$SECRET")
	export CAIRN_SECRET_FILE=$SECRET
	unset CAIRN_INSECURE CAIRN_SECRET
}

# member_start I [extra flags]: starts member I (again) with its data dir.
member_start() {
	local i=$1
	shift
	"$STORE" --id "$i" --data-dir "$DATA/data$i" \
		--listen-client "127.0.0.1:${CPORT[$i]}" \
		--listen-peer "127.0.0.1:${PPORT[$i]}" \
		--initial-cluster "$INITIAL" \
		--election-timeout "${ELECTION_MS:-400}" --heartbeat-interval 40 \
		"${SECURITY[@]}" "$@" >>"$TESTDIR/m$i.log" 2>&1 &
	PIDS[$i]=$!
	ALL_PIDS+=("$!")
}

# member_join I [extra flags]: starts a new member I with --join (it was
# added with 'cairnctl member add'), on a new client port unless CPORT[I] is
# set, counted in N_MEMBERS for logs/stops. The same call restarts it.
member_join() {
	local i=$1
	shift
	if [ -z "${CPORT[$i]:-}" ]; then
		CPORT[$i]=$(free_port)
		TAKEN_PORTS="$TAKEN_PORTS${CPORT[$i]} "
	fi
	[ "$i" -gt "$N_MEMBERS" ] && N_MEMBERS=$i
	"$STORE" --id "$i" --data-dir "$DATA/data$i" --join \
		--listen-client "127.0.0.1:${CPORT[$i]}" \
		--listen-peer "127.0.0.1:${PPORT[$i]}" \
		--election-timeout "${ELECTION_MS:-400}" --heartbeat-interval 40 \
		"${SECURITY[@]}" "$@" >>"$TESTDIR/m$i.log" 2>&1 &
	PIDS[$i]=$!
	ALL_PIDS+=("$!")
}

member_kill() { # member_kill I [SIGNAL]
	local i=$1 sig=${2:-KILL}
	kill "-$sig" "${PIDS[$i]}" 2>/dev/null
	wait "${PIDS[$i]}" 2>/dev/null
	PIDS[$i]=""
}

member_endpoint() { echo "127.0.0.1:${CPORT[$1]}"; }

# cluster_stop_checked: stops every live member with SIGTERM and prints nothing
# (call it directly, not through ok: members are children of this shell) when
# each exits with status 0 (under the sanitizers a leak makes it non-zero) and
# no log holds a sanitizer report.
cluster_stop_checked() {
	local i rc bad=""
	for i in $(seq 1 "$N_MEMBERS"); do
		[ -n "${PIDS[$i]:-}" ] || continue
		kill -TERM "${PIDS[$i]}" 2>/dev/null
		wait "${PIDS[$i]}"
		rc=$?
		PIDS[$i]=""
		[ "$rc" -eq 0 ] || bad="$bad member $i exited with status $rc;"
		if grep -q -E 'Sanitizer|runtime error' "$TESTDIR/m$i.log"; then
			bad="$bad member $i's log has a sanitizer report;"
		fi
	done
	[ -z "$bad" ] || { echo "$bad"; return 1; }
}

cluster_start() { # cluster_start N [extra flags]
	local n=$1 i
	shift
	cluster_init "$n"
	for i in $(seq 1 "$n"); do
		member_start "$i" "$@"
	done
	if ! wait_leader; then
		dump_logs
		echo "Bail out! the cluster elected no leader"
		N_FAILED=$((N_FAILED + 1))
		exit 1
	fi
}

ctl() { "$CTL" --endpoints "$CAIRN_ENDPOINTS" "$@"; }

# The member id of the leader according to member I's status, or nothing.
leader_of() {
	"$CTL" --endpoints "$(member_endpoint "$1")" -o json endpoint status 2>/dev/null |
		sed -n 's/.*"leader":[[:space:]]*\([0-9]*\).*/\1/p' | head -n 1
}

# wait_leader [TIMEOUT_S]: until some live member reports a leader that is live;
# sets LEADER, so call it directly, not in a subshell (not through ok).
wait_leader() {
	local deadline=$((SECONDS + ${1:-20})) i l
	while [ $SECONDS -lt $deadline ]; do
		for i in $(seq 1 "$N_MEMBERS"); do
			[ -n "${PIDS[$i]:-}" ] || continue
			l=$(leader_of "$i")
			if [ -n "$l" ] && [ "$l" != 0 ] && [ -n "${PIDS[$l]:-}" ]; then
				LEADER=$l
				return 0
			fi
		done
		sleep 0.1
	done
	echo "no leader within ${1:-20}s" >&2
	return 1
}

# wait_until TIMEOUT_S COMMAND...: retries COMMAND until it succeeds.
wait_until() {
	local deadline=$((SECONDS + $1))
	shift
	while [ $SECONDS -lt $deadline ]; do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	"$@"
}
