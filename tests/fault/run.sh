#!/usr/bin/env bash
# run.sh: one run of the fault-injection suite.
#
#   tests/fault/run.sh [--members 3|5] [--seconds S] [--seed N]
#
# Starts cairn-faultproxy and a cluster whose peer traffic all goes through it
# (the configuration names the proxy's ports, the members bind others), runs
# cairn-fault-load against the cluster for S seconds and, meanwhile, a random
# fault schedule drawn from the seed (RANDOM=$seed): kill -9 of the leader, a
# follower, a majority or everyone (restarted with their data after a
# pause), SIGSTOP of the leader or a follower, partitions made of proxy rules
# (majority/minority, isolated leader, bridge, one-way cuts), delayed,
# throttled or blackholed links and, with five members, a follower removed
# and added back as a new member (at half time, and at random). Every fault and heal goes to schedule.txt.
# Then: heal everything, restart what is down, let the load program verify,
# check that the members agree and run cairn-check on the history.
#
# The timing of a run is not reproducible, only its schedule of choices: a
# seed replays the same kinds of faults in the same order.
#
# Exit status 0 when everything held. On a failure the run's folder (history,
# schedule, logs, seed, data) is kept and its path printed with the command
# that replays the seed. Every process it starts is stopped by PID, also on
# failure or interruption (lib.sh's trap).
#
# Environment: CAIRN_BUILDDIR, CAIRN_SRCDIR as for the integration tests;
# FAULT_CLIENTS (8), FAULT_KEYS (6), FAULT_RATE (operations/s, 100),
# FAULT_WATCHERS (2), FAULT_OP_TIMEOUT (ms, 5000), FAULT_HOLD_MS (longest
# fault, 5000).
CAIRN_SRCDIR=${CAIRN_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$CAIRN_SRCDIR/tests/integration/lib.sh"

MEMBERS_N=3
RUN_SECONDS=60
SEED=
while [ $# -gt 0 ]; do
	case $1 in
	--members) MEMBERS_N=$2; shift 2 ;;
	--seconds) RUN_SECONDS=$2; shift 2 ;;
	--seed) SEED=$2; shift 2 ;;
	*) echo "usage: run.sh [--members 3|5] [--seconds S] [--seed N]" >&2; exit 2 ;;
	esac
done
[ -n "$SEED" ] || SEED=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')

PROXY_BIN="$BUILD/tests/fault/cairn-faultproxy"
LOAD_BIN="$BUILD/tests/fault/cairn-fault-load"
CHECK_BIN="$BUILD/tests/fault/cairn-check"
HIST="$TESTDIR/history.txt"
SCHED="$TESTDIR/schedule.txt"
STORE_FLAGS=(--auto-compaction-retention 0)
HOLD_MS=${FAULT_HOLD_MS:-5000}
REPLAY="FAULT_SEED=$SEED FAULT_MEMBERS=$MEMBERS_N FAULT_SECONDS=$RUN_SECONDS make check-fault"
MAX_CHANGES=8
PROXY_PID=""

fail() {
	N_FAILED=$((N_FAILED + 1))
	echo "# FAILED: $*"
	echo "$(stamp) FAILED $*" >>"$SCHED"
}

# ---- the schedule log --------------------------------------------------------

T0=$(date +%s%N)
stamp() {
	local now
	now=$(date +%s%N)
	printf '%s +%d.%03ds' "$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)" \
		$(((now - T0) / 1000000000)) $(((now - T0) / 1000000 % 1000))
}

# log WHAT...: one line of the schedule, also shown as a TAP comment.
log() {
	echo "$(stamp) $*" >>"$SCHED"
	echo "# $*"
}

# ---- randomness: only ever drawn in this shell (never in a $(...)) -----------

rnd() { R=$((RANDOM % $1)); }          # R in 0..N-1
pick() { rnd $#; shift "$R"; R=$1; }   # R: one of the arguments
nap_ms() { sleep "$(($1 / 1000)).$(printf '%03d' $(($1 % 1000)))"; }
# hold: a fault's duration in ms (HOLD), short ones included, capped by the end
hold() {
	rnd 4
	if [ "$R" = 0 ]; then rnd 400; HOLD=$((100 + R)); else rnd "$HOLD_MS"; HOLD=$((500 + R)); fi
	local left=$(((END - SECONDS) * 1000))
	[ "$HOLD" -le "$left" ] || HOLD=$((left > 100 ? left : 100))
}

# ---- the fault proxy ---------------------------------------------------------

# proxy_send CMD...: one control command; fails unless the proxy says ok.
proxy_send() {
	local reply=""
	exec 8<>"/dev/tcp/127.0.0.1/$PROXY_CTL" || return 1
	echo "$*" >&8
	read -r reply <&8
	if [ "${1:-}" = status ]; then echo "$reply"; read -r reply <&8; fi
	exec 8>&-
	[ "$reply" = ok ] || { echo "# proxy: $*: ${reply:-no answer}"; return 1; }
}

# proxy CMD...: the same, and a command that fails fails the run (a fault
# that was not applied would make the schedule lie).
proxy() {
	proxy_send "$@" || fail "proxy command '$*' failed"
}

proxy_start() {
	local i routes=()
	take_port
	PROXY_CTL=$PORT
	for i in $(seq 1 "$N_MEMBERS"); do
		routes+=(--route "$i=127.0.0.1:${XPORT[$i]},127.0.0.1:${PPORT[$i]}")
	done
	"$PROXY_BIN" --control "127.0.0.1:$PROXY_CTL" "${routes[@]}" \
		>>"$TESTDIR/proxy.log" 2>&1 &
	PROXY_PID=$!
	ALL_PIDS+=("$PROXY_PID")
	if ! wait_until 10 proxy_send status >/dev/null; then
		fail "cairn-faultproxy did not start (see proxy.log)"
		exit 1
	fi
}

# cut_both "A..." "B...": no traffic between the two groups, either way.
cut_both() {
	local a b
	for a in $1; do
		for b in $2; do
			proxy cut "$a" "$b"
			proxy cut "$b" "$a"
		done
	done
}

# ---- members -----------------------------------------------------------------

VOTERS=""      # the members' ids, as the cluster has them now
declare -A STOPPED JOINED
is_up() { [ -n "${PIDS[$1]:-}" ]; }
up_members() { local i; for i in $VOTERS; do is_up "$i" && echo "$i"; done; }

# The leader according to the members that answer (each asked alone, 1 s).
current_leader() {
	local i l
	for i in $VOTERS; do
		is_up "$i" && [ -z "${STOPPED[$i]:-}" ] || continue
		l=$("$CTL" --endpoints "$(member_endpoint "$i")" --dial-timeout 500ms \
			--command-timeout 1s -o json endpoint status 2>/dev/null |
			sed -n 's/.*"leader":[[:space:]]*\([0-9]*\).*/\1/p' | head -n 1)
		if [ -n "$l" ] && [ "$l" != 0 ] && is_up "$l"; then
			echo "$l"
			return
		fi
	done
}

# leader_or_any: LEADER, or a random running member when none is known.
leader_or_any() {
	LEADER=$(current_leader)
	if [ -z "$LEADER" ]; then
		pick $(up_members)
		LEADER=$R
		log "note no leader known: taking member $LEADER"
	fi
}

restart_member() {
	local i=$1
	if [ -n "${JOINED[$i]:-}" ]; then
		member_join "$i" "${STORE_FLAGS[@]}"
	else
		member_start "$i" "${STORE_FLAGS[@]}"
	fi
}

kill_members() {
	local i
	for i in "$@"; do
		member_kill "$i" KILL
		unset "STOPPED[$i]"
	done
}

restart_members() {
	local i
	for i in "$@"; do is_up "$i" || restart_member "$i"; done
}

# A member that exited without being told to is a finding: note its status,
# then start it again so that the run goes on. Without the proxy the run
# means nothing more: the schedule ends.
check_crashes() {
	local i rc
	if [ -n "$PROXY_PID" ] && ! kill -0 "$PROXY_PID" 2>/dev/null; then
		wait "$PROXY_PID"
		fail "cairn-faultproxy exited with status $? during the run (see proxy.log)"
		PROXY_PID=""
		END=$SECONDS
	fi
	for i in $VOTERS; do
		is_up "$i" || continue
		kill -0 "${PIDS[$i]}" 2>/dev/null && continue
		wait "${PIDS[$i]}"
		rc=$?
		PIDS[$i]=""
		fail "member $i exited by itself with status $rc (see m$i.log)"
		restart_member "$i"
	done
}

others() { local i; for i in $VOTERS; do [ "$i" = "$1" ] || echo "$i"; done; }

# shuffle IDS...: SHUF, the ids in random order.
shuffle() {
	local a=("$@") i j t
	for ((i = ${#a[@]} - 1; i > 0; i--)); do
		rnd $((i + 1)); j=$R
		t=${a[$i]}; a[$i]=${a[$j]}; a[$j]=$t
	done
	SHUF="${a[*]}"
}

# ---- faults: each applies, holds, heals and logs both ------------------------

fault_kill() { # kill-leader | kill-follower | kill-majority | kill-all
	local kind=$1 victims
	leader_or_any
	case $kind in
	kill-leader) victims=$LEADER ;;
	kill-follower) pick $(others "$LEADER"); victims=$R ;;
	kill-majority)
		shuffle $VOTERS
		victims=$(echo "$SHUF" | cut -d' ' -f1-$((MEMBERS_N / 2 + 1)))
		;;
	kill-all) victims=$VOTERS ;;
	esac
	hold
	log "fault $kind members=${victims// /,} leader=$LEADER down=${HOLD}ms"
	kill_members $victims
	nap_ms "$HOLD"
	restart_members $victims
	log "heal $kind restarted=${victims// /,}"
}

fault_pause() { # pause-leader | pause-follower
	local kind=$1 victim pid
	leader_or_any
	if [ "$kind" = pause-leader ]; then victim=$LEADER; else pick $(others "$LEADER"); victim=$R; fi
	is_up "$victim" || return 0
	pid=${PIDS[$victim]}
	hold
	log "fault $kind member=$victim paused=${HOLD}ms"
	kill -STOP "$pid"
	STOPPED[$victim]=1
	nap_ms "$HOLD"
	kill -CONT "$pid" 2>/dev/null
	unset "STOPPED[$victim]"
	log "heal $kind member=$victim"
}

# The partitions: rules set, held, then 'heal all'.
fault_partition() {
	local kind=$1 a b g1 g2 dir what
	leader_or_any
	case $kind in
	partition-halves)
		shuffle $VOTERS
		a=$(echo "$SHUF" | cut -d' ' -f1-$((MEMBERS_N / 2 + 1)))
		b=$(echo "$SHUF" | cut -d' ' -f$((MEMBERS_N / 2 + 2))-)
		what="majority=${a// /,} minority=${b// /,}"
		;;
	isolate-leader)
		a=$LEADER b=$(others "$LEADER" | tr '\n' ' ')
		what="isolated=$LEADER"
		;;
	bridge)
		shuffle $VOTERS
		set -- $SHUF
		a=$1
		shift
		g1=${*:1:$(($# / 2))}
		g2=${*:$(($# / 2 + 1))}
		what="bridge=$a sides=${g1// /,}/${g2// /,}"
		;;
	one-way)
		b=$(others "$LEADER" | tr '\n' ' ')
		rnd 2
		dir=$R
		what="leader=$LEADER $([ "$dir" = 0 ] && echo "cannot-send" || echo "cannot-hear")"
		;;
	esac
	hold
	log "fault $kind $what for=${HOLD}ms"
	case $kind in
	partition-halves | isolate-leader) cut_both "$a" "$b" ;;
	bridge) cut_both "$g1" "$g2" ;;
	one-way)
		for g1 in $b; do
			if [ "$dir" = 0 ]; then proxy cut "$LEADER" "$g1"; else proxy cut "$g1" "$LEADER"; fi
		done
		;;
	esac
	nap_ms "$HOLD"
	proxy heal all
	log "heal $kind"
}

fault_link() { # delay | slow | blackhole
	local kind=$1 from='*' to='*' arg=""
	leader_or_any
	case $kind in
	delay) rnd 380; arg=$((20 + R)); rnd 2; [ "$R" = 0 ] && from=$LEADER ;;
	slow) rnd 200000; arg=$((4000 + R)) ;;
	blackhole) rnd 2; if [ "$R" = 0 ]; then from=$LEADER; else to=$LEADER; fi ;;
	esac
	hold
	log "fault $kind from=$from to=$to ${arg:+arg=$arg }for=${HOLD}ms"
	proxy "$kind" "$from" "$to" $arg
	nap_ms "$HOLD"
	proxy heal all
	log "heal $kind"
}

# member_state ID: voter, learner, absent, or unknown when no member answers.
member_state() {
	local out entry
	out=$(ctl --command-timeout 3s -o json member list 2>/dev/null) || { echo unknown; return; }
	entry=$(printf '%s' "$out" | grep -o "{\"ID\":$1,[^}]*}")
	case $entry in
	"") echo absent ;;
	*'"isLearner":false'*) echo voter ;;
	*) echo learner ;;
	esac
}

# member_change ID STATE SECONDS ARGS...: 'cairnctl member ARGS' until the
# member list shows ID in STATE. A change whose answer was lost may or may
# not have been made, so the list decides, never the answer.
member_change() {
	local id=$1 want=$2 deadline=$((SECONDS + $3))
	shift 3
	while [ $SECONDS -lt $deadline ]; do
		[ "$(member_state "$id")" = "$want" ] && return 0
		ctl --command-timeout 5s member "$@" >/dev/null 2>&1
		sleep 0.5
	done
	[ "$(member_state "$id")" = "$want" ]
}

# A follower leaves the cluster and comes back as a new member (new id, empty
# data directory, a new peer port behind a new proxy route, the old client
# port), as tests/integration/membership.sh does by hand.
NEXT_ID=$((MEMBERS_N + 1))
fault_membership() {
	local old new k rc
	leader_or_any
	[ "$NEXT_ID" -le $((MEMBERS_N + MAX_CHANGES)) ] || return 0
	pick $(others "$LEADER")
	old=$R new=$NEXT_ID
	NEXT_ID=$((NEXT_ID + 1))
	log "fault member-replace remove=$old add=$new"
	if ! member_change "$old" absent 30 remove "$old"; then
		fail "member remove $old did not complete"
		return
	fi
	VOTERS=$(echo $(others "$old"))
	if wait_until 20 sh -c "! kill -0 ${PIDS[$old]} 2>/dev/null"; then
		wait "${PIDS[$old]}"
		rc=$?
		[ "$rc" = 0 ] || fail "removed member $old stopped with status $rc"
		! grep -q -E 'Sanitizer|runtime error' "$TESTDIR/m$old.log" ||
			fail "removed member $old's log has a sanitizer report"
	else
		fail "removed member $old did not stop by itself: killed"
		kill -9 "${PIDS[$old]}" 2>/dev/null
		wait "${PIDS[$old]}" 2>/dev/null
	fi
	PIDS[$old]=""
	k=$((new - MEMBERS_N))
	XPORT[$new]=${SPARE_X[$k]} PPORT[$new]=${SPARE_P[$k]} CPORT[$new]=${CPORT[$old]}
	proxy_send route "$new" "127.0.0.1:${XPORT[$new]}" "127.0.0.1:${PPORT[$new]}" ||
		{ fail "proxy route $new"; return; }
	if ! member_change "$new" learner 30 add "$new" --peer-urls "127.0.0.1:${XPORT[$new]}"; then
		fail "member add $new did not complete"
		return
	fi
	JOINED[$new]=1
	member_join "$new" "${STORE_FLAGS[@]}"
	VOTERS="$VOTERS $new"
	if ! member_change "$new" voter 60 promote "$new"; then
		fail "member $new was never promoted"
		return
	fi
	log "heal member-replace member=$new voter"
}

# ---- the run -----------------------------------------------------------------

run_schedule() {
	local kinds=(kill-leader kill-leader kill-follower kill-majority kill-all
		pause-leader pause-leader pause-follower
		partition-halves partition-halves isolate-leader isolate-leader
		bridge one-way one-way delay delay slow blackhole)
	local half=$((SECONDS + RUN_SECONDS / 2)) replaced=0
	[ "$MEMBERS_N" -ge 5 ] && kinds+=(member-replace)
	while [ $SECONDS -lt $END ]; do
		pick "${kinds[@]}"
		# With five members, one replacement at half time at least.
		if [ "$MEMBERS_N" -ge 5 ] && [ $replaced = 0 ] && [ $SECONDS -ge $half ]; then
			R=member-replace
		fi
		[ "$R" = member-replace ] && replaced=1
		case $R in
		kill-*) fault_kill "$R" ;;
		pause-*) fault_pause "$R" ;;
		delay | slow | blackhole) fault_link "$R" ;;
		member-replace) fault_membership ;;
		*) fault_partition "$R" ;;
		esac
		check_crashes
		rnd 2500
		[ $SECONDS -lt $END ] && nap_ms $((500 + R))
	done
}

heal_everything() {
	local i
	[ -z "$PROXY_PID" ] || proxy heal all
	for i in "${!STOPPED[@]}"; do
		kill -CONT "${PIDS[$i]}" 2>/dev/null
		unset "STOPPED[$i]"
	done
	check_crashes
	restart_members $VOTERS
	log "end: everything healed and running"
}

# The members agree: same history, same keyspace, same final revision.
members_agree() {
	local m first=""
	for m in $(awk '$1 == "final" { print $2 }' "$HIST"); do
		awk -v m="$m" '($1 == "ref" || $1 == "kv" || $1 == "final") && $2 == m { $2 = ""; print }' \
			"$HIST" >"$TESTDIR/member$m.txt"
		if [ -z "$first" ]; then
			first=$m
		elif ! cmp -s "$TESTDIR/member$first.txt" "$TESTDIR/member$m.txt"; then
			fail "members $first and $m differ (history, keyspace or revision): diff $TESTDIR/member$first.txt $TESTDIR/member$m.txt"
		fi
	done
	[ -n "$first" ] || fail "the history holds no member's final state"
}

stop_all() {
	local rc
	cluster_stop_checked >"$TESTDIR/stop.out" # not in $(...): members are our children
	[ -s "$TESTDIR/stop.out" ] && fail "$(cat "$TESTDIR/stop.out")"
	if [ -n "$PROXY_PID" ]; then
		kill -TERM "$PROXY_PID" 2>/dev/null
		wait "$PROXY_PID"
		rc=$?
		[ "$rc" = 0 ] || fail "cairn-faultproxy exited with status $rc"
	fi
	if grep -q -E 'Sanitizer|runtime error' "$TESTDIR/proxy.log" "$TESTDIR/load.log"; then
		fail "a sanitizer report in proxy.log or load.log"
	fi
}

report() {
	local kinds
	kinds=$(awk '$3 == "fault" { n[$4]++ } END { for (k in n) printf "%s=%d ", k, n[k] }' "$SCHED")
	echo "# operations: $(sed -n 's/^# \(put\|get\|cas\|del\): /\1 /p' "$HIST" 2>/dev/null |
		tr '\n' ';')"
	echo "# faults: $kinds"
}

main() {
	local load_rc rc
	for tool in "$PROXY_BIN" "$LOAD_BIN" "$STORE" "$CTL"; do
		[ -x "$tool" ] || { echo "Bail out! $tool is not built"; exit 1; }
	done
	printf 'seed %s\nmembers %s\nseconds %s\nreplay with: %s\n' \
		"$SEED" "$MEMBERS_N" "$RUN_SECONDS" "$REPLAY" >"$TESTDIR/seed"
	: >"$SCHED"
	echo "# fault run: seed $SEED, $MEMBERS_N members, ${RUN_SECONDS}s, in $TESTDIR"
	PEER_PROXY=1 cluster_init "$MEMBERS_N"
	for k in $(seq 1 "$MAX_CHANGES"); do
		take_port; SPARE_X[$k]=$PORT
		take_port; SPARE_P[$k]=$PORT
	done
	proxy_start
	VOTERS=$(echo $(seq 1 "$MEMBERS_N"))
	for i in $VOTERS; do member_start "$i" "${STORE_FLAGS[@]}"; done
	if ! wait_leader 30; then
		fail "the cluster elected no leader"
		dump_logs
		exit 1
	fi
	"$LOAD_BIN" --endpoints "$CAIRN_ENDPOINTS" --clients "${FAULT_CLIENTS:-8}" \
		--keys "${FAULT_KEYS:-6}" --seconds "$RUN_SECONDS" --seed "$SEED" \
		--watchers "${FAULT_WATCHERS:-2}" --rate "${FAULT_RATE:-100}" \
		--op-timeout "${FAULT_OP_TIMEOUT:-5000}" --out "$HIST" \
		>"$TESTDIR/load.log" 2>&1 &
	LOAD_PID=$!
	ALL_PIDS+=("$LOAD_PID")
	RANDOM=$SEED
	END=$((SECONDS + RUN_SECONDS))
	log "start seed=$SEED members=$MEMBERS_N seconds=$RUN_SECONDS leader=$LEADER"
	run_schedule
	heal_everything
	wait "$LOAD_PID"
	load_rc=$?
	cat "$TESTDIR/load.log" | diag
	[ "$load_rc" = 0 ] || fail "cairn-fault-load could not verify (status $load_rc): see load.log"
	[ "$load_rc" = 0 ] && members_agree
	if [ -x "$CHECK_BIN" ]; then
		"$CHECK_BIN" "$HIST" >"$TESTDIR/check.log" 2>&1
		rc=$?
		tail -n 20 "$TESTDIR/check.log" | diag
		[ "$rc" = 0 ] || fail "cairn-check found the history wrong (status $rc): see check.log"
	else
		fail "cairn-check is not built ($CHECK_BIN): the history was NOT checked"
	fi
	stop_all
	report
	if [ "$N_FAILED" -gt 0 ]; then
		echo "# kept: $TESTDIR (history.txt, schedule.txt, m*.log, proxy.log, load.log, seed)"
		echo "# replay with: $REPLAY"
		exit 1
	fi
	echo "# passed: seed $SEED, $MEMBERS_N members"
}

# tests/fault/disk-full.sh sources this file for its pieces (FAULT_RUN_LIB=1).
[ "${FAULT_RUN_LIB:-0}" = 1 ] || { main; exit $?; }
