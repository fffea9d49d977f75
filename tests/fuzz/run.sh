#!/usr/bin/env bash
# run.sh: runs cairn's libFuzzer targets (tests/fuzz/targets), as a TAP test.
#
#   tests/fuzz/run.sh          make check: each target FUZZ_SECONDS_EACH
#                              seconds (default: a minute in all) from its
#                              seeds, on a fresh corpus
#   tests/fuzz/run.sh --long   make fuzz: each target FUZZ_SECONDS seconds
#                              (default 300), its corpus kept in
#                              BUILDDIR/tests/fuzz/run/corpus/NAME
#
# First builds the targets with tests/fuzz/build.sh (skipped, with the
# reason, when no clang can link libFuzzer). Then per target: replays its
# regression inputs (tests/fuzz/regress/NAME/*), writes its seeds (made by
# the target's own code) and fuzzes from them and tests/fuzz/corpus/NAME.
# One TAP line per target: runs, exec/s, coverage; or, on a crash, leak,
# timeout or broken invariant, "not ok" with the input's path, how to replay
# it and the sanitizer's report. Inputs that failed stay in
# BUILDDIR/tests/fuzz/run/crashes/NAME/.
#
# Environment: CAIRN_SRCDIR, CAIRN_BUILDDIR (set by make; default: this
# tree), FUZZ_TARGETS (some targets only), FUZZ_SECONDS_EACH, FUZZ_SECONDS,
# CAIRN_FUZZ_CC and CAIRN_WERROR (see build.sh).
set -u
long=no
[ "${1:-}" = --long ] && long=yes
src=${CAIRN_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${CAIRN_BUILDDIR:-$src}
out=$build/tests/fuzz
run=$out/run

if [ -n "${FUZZ_TARGETS:-}" ]; then
	targets=$FUZZ_TARGETS
else
	targets=$(sed -e 's/#.*//' "$src/tests/fuzz/targets")
fi
# shellcheck disable=SC2086
set -- $targets
n=$#

mkdir -p "$out"
"$src/tests/fuzz/build.sh" "$src" "$out" "$@" >"$out/build.log" 2>&1
rv=$?
if [ "$rv" -eq 77 ]; then
	echo "1..0 # SKIP $(tail -n 1 "$out/build.log")"
	exit 0
elif [ "$rv" -ne 0 ]; then
	echo "Bail out! the fuzz targets do not build ($out/build.log):"
	tail -n 30 "$out/build.log" | sed 's/^/# /'
	exit 1
fi

if [ "$long" = yes ]; then
	secs=${FUZZ_SECONDS:-300}
else
	secs=${FUZZ_SECONDS_EACH:-$((60 / n > 2 ? 60 / n : 2))}
fi

# The sanitizers' settings, whatever the caller's (the sanitizer build's
# ASAN_OPTIONS ask for abort_on_error, which libFuzzer handles itself).
export ASAN_OPTIONS=detect_leaks=1:quarantine_size_mb=64:symbolize=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:symbolize=1
export LSAN_OPTIONS=
if [ -z "${ASAN_SYMBOLIZER_PATH:-}" ]; then
	cc=$(sed -n '1s/ .*//p' "$out/obj/flags")
	for s in "$(command -v llvm-symbolizer)" \
		"$(dirname "$(readlink -f "$(command -v "$cc")")")/llvm-symbolizer"; do
		[ -x "$s" ] && { export ASAN_SYMBOLIZER_PATH=$s; break; }
	done
fi
# The limits: a per-input timeout (hangs), one allocation (lengths taken
# from the input unchecked), and the whole process.
flags="-max_len=4096 -timeout=10 -malloc_limit_mb=64 -rss_limit_mb=1024"

# report LOG: the failure's input and report as TAP diagnostics.
report() {
	local log=$1 input
	input=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
	[ -n "$input" ] && echo "# input: $input"
	[ -n "$input" ] && echo "# replay: $bin $input"
	echo "# log: $log"
	sed -n '/invariant broken\|runtime error\|^==[0-9]*==\|^INFO: Seed/,$p' "$log" |
		grep -v '^INFO: Loaded\|^NOTE: \|^  *Combine libFuzzer\|^MS: \|^0x\|^\\\|^[Bb]ase64: \|^artifact_prefix' |
		head -n 60 | sed 's/^/# /'
}

# stats LOG: "N runs, E exec/s, cov C, ft F" from libFuzzer's last lines.
stats() {
	sed -n 's/^#\([0-9]*\)[[:space:]]*DONE[[:space:]]*cov: \([0-9]*\) ft: \([0-9]*\) corp: \([^ ]*\) .*exec\/s: \([0-9]*\).*/\1 runs, \5 exec\/s, cov \2, ft \3, corpus \4/p' "$1" | tail -n 1
}

echo "1..$n"
i=0
failed=0
for t in "$@"; do
	i=$((i + 1))
	bin=$out/fuzz_$t
	log=$run/logs/$t.log
	mkdir -p "$run/logs" "$run/crashes/$t"
	rm -rf "$run/seeds/$t"
	mkdir -p "$run/seeds/$t"
	if ! CAIRN_FUZZ_SEEDS=$run/seeds/$t "$bin" >"$log" 2>&1; then
		echo "not ok $i - $t: writing its seeds failed"
		report "$log"
		failed=$((failed + 1))
		continue
	fi
	regress=$(ls -d "$src/tests/fuzz/regress/$t"/* 2>/dev/null)
	# shellcheck disable=SC2086
	if [ -n "$regress" ] && ! "$bin" $flags $regress >"$log" 2>&1; then
		echo "not ok $i - $t: a regression input fails again"
		report "$log"
		failed=$((failed + 1))
		continue
	fi
	if [ "$long" = yes ]; then
		corpus=$run/corpus/$t
	else
		corpus=$run/check/$t
		rm -rf "$corpus"
	fi
	mkdir -p "$corpus"
	seeds=$run/seeds/$t
	[ -d "$src/tests/fuzz/corpus/$t" ] && seeds="$seeds $src/tests/fuzz/corpus/$t"
	# shellcheck disable=SC2086
	if nice "$bin" $flags -max_total_time="$secs" \
		-artifact_prefix="$run/crashes/$t/" "$corpus" $seeds >"$log" 2>&1; then
		echo "ok $i - $t: $(stats "$log")"
	else
		echo "not ok $i - $t: failed after $(sed -n 's/^#\([0-9]*\).*/\1/p' "$log" | tail -n 1) runs"
		report "$log"
		failed=$((failed + 1))
	fi
done
[ "$failed" -eq 0 ]
