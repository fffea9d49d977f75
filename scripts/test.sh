#!/usr/bin/env bash
# test.sh: installs what is missing (Debian 12, as root), builds cairn with
# warnings as errors, runs every test, then builds again with AddressSanitizer
# and UndefinedBehaviorSanitizer and runs every test there too. Ends with the
# line "N passed, N failed" and a non-zero exit status on any failure.
#
#   scripts/test.sh            both builds
#   SANITIZE=0 scripts/test.sh the normal build only
set -u
cd "$(dirname "$0")/.."
. scripts/deps.sh

install_deps || exit 1
passed=0
failed=0

# run_suite DIR FLAGS...: builds in DIR and runs make check, adding up counts.
run_suite() {
	local dir=$1 log
	shift
	echo "==> build in $dir ($*)"
	if ! build "$dir" "$@"; then
		echo "build in $dir failed"
		failed=$((failed + 1))
		return
	fi
	echo "==> make check in $dir"
	log=$dir/check.out
	(cd "$dir" && make -j"$(nproc)" check) >"$log" 2>&1
	grep -E '^(PASS|FAIL|ERROR|XPASS|SKIP):' "$log" | grep -v '^PASS' || true
	sed -n '/^# TOTAL/,/^# ERROR/p' "$log"
	local p f e x
	p=$(sed -n 's/^# PASS: *\([0-9]*\)/\1/p' "$log" | tail -n 1)
	f=$(sed -n 's/^# FAIL: *\([0-9]*\)/\1/p' "$log" | tail -n 1)
	e=$(sed -n 's/^# ERROR: *\([0-9]*\)/\1/p' "$log" | tail -n 1)
	x=$(sed -n 's/^# XPASS: *\([0-9]*\)/\1/p' "$log" | tail -n 1)
	if [ -z "$p" ]; then
		echo "make check in $dir did not finish:"
		tail -n 30 "$log"
		failed=$((failed + 1))
		return
	fi
	passed=$((passed + p))
	failed=$((failed + ${f:-0} + ${e:-0} + ${x:-0}))
	if [ "$((${f:-0} + ${e:-0} + ${x:-0}))" -gt 0 ]; then
		grep -l -r -E '^(not ok|Bail out)' --include='*.log' "$dir/tests" |
			while read -r l; do
				echo "---- $l"
				tail -n 60 "$l"
			done
	fi
}

run_suite build --enable-werror
if [ "${SANITIZE:-1}" = 1 ]; then
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		run_suite build-sanitize --enable-werror --enable-debug --enable-sanitize
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
