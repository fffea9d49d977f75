#!/usr/bin/env bash
# disk-full.sh: a member's disk fills up while the workload runs.
#
# Two cases, a follower's disk then the leader's. The member must fail
# loudly (exit 1 with a log line naming the failed disk write, never a
# signal or a sanitizer report) while the others keep serving; given space
# again and restarted on the same data directory, it must start and catch
# up, and the history (tests/fault/cairn-fault-load) must pass
# tests/fault/cairn-check, the members agreeing on one keyspace.
#
# The full disk, whichever mechanism the machine allows (tried, and said):
#   tmpfs   each member's data directory is on its own 64 MiB tmpfs (libraft
#           preallocates three 16 MiB segments); the fault is a filler that
#           keeps taking every free block, as a runaway writer would: the next
#           segment cannot be preallocated (ENOSPC). Heal: the filler stops and
#           its files go.
#   rlimit  without CAP_SYS_ADMIN: the member's RLIMIT_FSIZE drops to 1 MiB
#           (prlimit on the running process; a limit set at start would stop
#           the member at its first 16 MiB segment, before any workload),
#           so the next segment fails with EFBIG (cairn-store ignores
#           SIGXFSZ). Heal: the member restarts without the limit.
# DISKFULL_MECH=rlimit forces the second.
#
# --snapshot-count 16 makes snapshots (each closes a segment, so a new one
# is needed) come every second or so at the workload's rate.
CAIRN_SRCDIR=${CAIRN_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
FAULT_RUN_LIB=1 . "$CAIRN_SRCDIR/tests/fault/run.sh"

LOAD_SECONDS=${DISKFULL_SECONDS:-12}
MOUNTS=()
FILLER_PID=""

disk_cleanup() {
	local m
	[ -z "$FILLER_PID" ] || { kill "$FILLER_PID" 2>/dev/null; wait "$FILLER_PID" 2>/dev/null; }
	cleanup_members
	for m in "${MOUNTS[@]}"; do umount "$m" 2>/dev/null || umount -l "$m"; done
	cleanup
}
# lib.sh's cleanup kills the processes; the mounts must go before the
# directory is removed, and only once nothing holds them.
cleanup_members() {
	local pid
	for pid in "${ALL_PIDS[@]}"; do kill -9 "$pid" 2>/dev/null; done
	for pid in "${ALL_PIDS[@]}"; do wait "$pid" 2>/dev/null; done
}
trap disk_cleanup EXIT

choose_mechanism() {
	local probe="$TESTDIR/probe"
	MECH=${DISKFULL_MECH:-}
	if [ -z "$MECH" ]; then
		mkdir -p "$probe"
		if mount -t tmpfs -o size=1m tmpfs "$probe" 2>/dev/null; then
			umount "$probe"
			MECH=tmpfs
		else
			MECH=rlimit
		fi
	fi
	if [ "$MECH" = rlimit ] && ! command -v prlimit >/dev/null; then
		echo "Bail out! no tmpfs mount allowed and no prlimit (util-linux)"
		exit 1
	fi
	echo "# mechanism: $MECH"
}

# Each member's data directory on its own small tmpfs (tmpfs mechanism).
mount_disks() {
	local i
	for i in 1 2 3; do
		mkdir -p "$DATA/data$i"
		mount -t tmpfs -o size=64m,mode=0700 tmpfs "$DATA/data$i" ||
			{ echo "Bail out! cannot mount a tmpfs on $DATA/data$i"; exit 1; }
		MOUNTS+=("$DATA/data$i")
	done
}

# fill_disk I: member I's file system fills up and stays full.
fill_disk() {
	local i=$1
	if [ "$MECH" = tmpfs ]; then
		(
			n=0
			while :; do
				dd if=/dev/zero of="$DATA/data$i/filler$n" bs=64k 2>/dev/null
				n=$((n + 1))
				sleep 0.02
			done
		) &
		FILLER_PID=$!
	else
		prlimit --pid "${PIDS[$i]}" --fsize=1048576
	fi
}

# free_disk I: the space comes back (the member is down by then).
free_disk() {
	local i=$1
	if [ "$MECH" = tmpfs ]; then
		kill "$FILLER_PID"
		wait "$FILLER_PID" 2>/dev/null
		FILLER_PID=""
		rm -f "$DATA/data$i"/filler*
	fi # rlimit: a restarted member has no limit
}

member_answers() {
	"$CTL" --endpoints "$(member_endpoint "$1")" --dial-timeout 500ms \
		--command-timeout 1s endpoint status >/dev/null 2>&1
}

# Waits for member I to exit; checks that it did so loudly (exit 1, the
# disk-write line, no signal, no sanitizer report).
expect_loud_exit() {
	local i=$1 what=$2 rc
	if ! wait_until 20 sh -c "! kill -0 ${PIDS[$i]} 2>/dev/null" >/dev/null 2>&1; then
		is "$what: member $i exits when its disk is full" exited running
		return
	fi
	wait "${PIDS[$i]}"
	rc=$?
	PIDS[$i]=""
	log "$what: member $i exited with status $rc"
	is "$what: member $i exits with status 1 (not a signal)" 1 "$rc"
	ok "$what: member $i says why (disk write failed)" \
		grep -q 'disk write of the raft log.*failed' "$TESTDIR/m$i.log"
	ok "$what: no sanitizer report from member $i" \
		sh -c "! grep -q -E 'Sanitizer|runtime error' '$TESTDIR/m$i.log'"
}

run_case() {
	local kind=$1 victim load_rc rc i
	HIST="$TESTDIR/$kind-history.txt"
	SCHED="$TESTDIR/$kind-schedule.txt"
	: >"$SCHED"
	cluster_init 3
	[ "$MECH" = tmpfs ] && mount_disks
	for i in 1 2 3; do member_start "$i" "${STORE_FLAGS[@]}"; done
	wait_leader 20 || { fail "$kind: no leader"; dump_logs; return; }
	VOTERS="1 2 3"
	if [ "$kind" = leader ]; then victim=$LEADER; else victim=$(others "$LEADER" | head -n 1); fi
	"$LOAD_BIN" --endpoints "$CAIRN_ENDPOINTS" --clients 8 --keys 6 \
		--seconds "$LOAD_SECONDS" --seed "$SEED" --watchers 2 --rate 150 \
		--op-timeout 5000 --out "$HIST" >"$TESTDIR/$kind-load.log" 2>&1 &
	LOAD_PID=$!
	ALL_PIDS+=("$LOAD_PID")
	sleep 2
	log "$kind: fault disk-full member=$victim (leader $LEADER) by $MECH"
	fill_disk "$victim"
	expect_loud_exit "$victim" "$kind"
	ok "$kind: the other members elect a leader and serve a linearizable read" \
		wait_until 15 ctl --command-timeout 2s get /f/k0
	free_disk "$victim"
	member_start "$victim" "${STORE_FLAGS[@]}"
	log "$kind: heal: member $victim restarted with space on its data directory"
	ok "$kind: member $victim starts again on its data directory" \
		wait_until 15 member_answers "$victim"
	wait "$LOAD_PID"
	load_rc=$?
	diag <"$TESTDIR/$kind-load.log"
	is "$kind: the workload verified every member (load.log)" 0 "$load_rc"
	local before=$N_FAILED
	[ "$load_rc" = 0 ] && members_agree
	is "$kind: the members agree (history, keyspace, revision)" "$before" "$N_FAILED"
	N_FAILED=$before
	"$CHECK_BIN" "$HIST" >"$TESTDIR/$kind-check.log" 2>&1
	rc=$?
	diag <"$TESTDIR/$kind-check.log"
	is "$kind: cairn-check finds the history right" 0 "$rc"
	cluster_stop_checked >"$TESTDIR/stop.out"
	ok "$kind: every member stops cleanly" test ! -s "$TESTDIR/stop.out"
	for i in "${MOUNTS[@]}"; do umount "$i"; done
	MOUNTS=()
}

for tool in "$LOAD_BIN" "$CHECK_BIN" "$STORE" "$CTL"; do
	[ -x "$tool" ] || { echo "Bail out! $tool is not built"; exit 1; }
done
STORE_FLAGS=(--auto-compaction-retention 0 --snapshot-count 16)
T_START=$SECONDS
choose_mechanism
run_case follower
run_case leader
echo "# disk-full: $((SECONDS - T_START)) s, mechanism $MECH"
done_testing
