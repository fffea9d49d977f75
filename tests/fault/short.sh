#!/usr/bin/env bash
# The fault-injection suite's short mode, part of 'make check': three runs of
# tests/fault/run.sh of FAULT_SHORT_SECONDS (20) each, faults of at most
# FAULT_HOLD_MS (2500) so that each run sees several, two with fixed seeds
# (three members, then five with a membership change) and one with a fresh
# seed, printed so that a failure can be replayed. 'make check-fault' runs the
# long mode.
. "$CAIRN_SRCDIR/tests/integration/lib.sh"

export FAULT_HOLD_MS=${FAULT_HOLD_MS:-2500}
fresh=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')
echo "# fresh seed: $fresh"
for run in "3 1" "5 2" "3 $fresh"; do
	set -- $run
	out=$(bash "$CAIRN_SRCDIR/tests/fault/run.sh" --members "$1" \
		--seconds "${FAULT_SHORT_SECONDS:-20}" --seed "$2" 2>&1)
	rc=$?
	printf '%s\n' "$out" | grep -E '^# (operations|faults|FAILED|kept|replay)' |
		sed 's/^# //' | diag
	is "$1 members, seed $2: no fault breaks a guarantee (run.sh status)" 0 "$rc"
done
done_testing
