#!/usr/bin/env bash
# build.sh: builds cairn's libFuzzer targets with clang, whatever compiler
# the main build uses.
#
#   tests/fuzz/build.sh SRCDIR OUTDIR [TARGET...]
#
# Compiles the library sources (lib/, store/ but main.c, cli/txnparse.c)
# with AddressSanitizer, UndefinedBehaviorSanitizer and libFuzzer's coverage
# into OUTDIR/obj/libfuzz.a, then links OUTDIR/fuzz_NAME for every target of
# tests/fuzz/targets (or the ones named). Objects are rebuilt only when their
# source or a header they include changed (clang -MMD), or the flags did.
#
# Exits 77 (the automake code for "skipped") with the reason on stderr when
# no clang can link a libFuzzer program; 1 on a compile error.
#
# Environment: CAIRN_FUZZ_CC (the clang to use; else clang, clang-19 ...
# clang-14 from PATH), CAIRN_WERROR=yes (warnings are errors), FUZZ_JOBS
# (parallel compiles, default: the number of CPUs).
set -u
src=${1:?usage: build.sh SRCDIR OUTDIR [TARGET...]}
out=${2:?usage: build.sh SRCDIR OUTDIR [TARGET...]}
shift 2
src=$(cd "$src" && pwd) || exit 1

skip() {
	echo "$*" >&2
	exit 77
}

find_clang() {
	local c
	for c in ${CAIRN_FUZZ_CC:-} clang clang-19 clang-18 clang-17 clang-16 \
		clang-15 clang-14; do
		command -v "$c" >/dev/null 2>&1 && { echo "$c"; return 0; }
	done
	return 1
}

cc=$(find_clang) || skip "no clang found (apt-get install clang libclang-rt-dev)"
mkdir -p "$out/obj" || exit 1
probe=$out/obj/probe
printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
	'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);' \
	'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { return d && n; }' \
	>"$probe.c"
if ! "$cc" -fsanitize=fuzzer,address,undefined "$probe.c" -o "$probe" \
	>"$probe.log" 2>&1; then
	skip "$cc cannot link a libFuzzer program (libclang-rt-dev missing?): $(tail -n 1 "$probe.log")"
fi
rm -f "$probe" "$probe.c" "$probe.log"

pkgs=(raft libuv msgpack liblz4 libsodium)
deps_cflags=$(pkg-config --cflags "${pkgs[@]}") || exit 1
deps_libs=$(pkg-config --libs "${pkgs[@]}") || exit 1

# The warnings of configure.ac, so the fuzz code is held to the same bar.
warn="-Wall -Wextra -Wpedantic -Wformat=2 -Wshadow -Wstrict-prototypes \
-Wmissing-prototypes -Wpointer-arith -Wcast-align -Wwrite-strings -Wvla \
-Wimplicit-fallthrough -Wnull-dereference -Wundef -Wno-unused-parameter"
[ "${CAIRN_WERROR:-no}" = yes ] && warn="$warn -Werror"
sanitize="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
cflags="-std=gnu11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer $sanitize \
$warn -I$src/lib/include -I$src/lib -I$src/store -I$src/cli \
-I$src/tests/fuzz $deps_cflags"

# Flags changed (another clang, -Werror...): start over.
if [ "$(cat "$out/obj/flags" 2>/dev/null)" != "$cc $cflags" ]; then
	rm -rf "$out/obj"
	mkdir -p "$out/obj" || exit 1
	echo "$cc $cflags" >"$out/obj/flags"
fi

# stale OBJ: the object is missing or older than a file it was built from.
stale() {
	local o=$1 d
	[ -f "$o" ] && [ -f "${o%.o}.d" ] || return 0
	# shellcheck disable=SC2013 # a .d file is words: target, then deps
	for d in $(sed -e 's/^[^:]*://' -e 's/\\$//' "${o%.o}.d"); do
		[ "$d" -nt "$o" ] && return 0
	done
	return 1
}

# compile SRC OBJ EXTRA-FLAGS
compile() {
	echo "  CC(fuzz) ${1#"$src"/}"
	# shellcheck disable=SC2086
	nice "$cc" $cflags $3 -MMD -MF "${2%.o}.d" -c "$1" -o "$2"
}

# The library: instrumented for coverage, without libFuzzer's main.
lib_srcs=$(cd "$src" && for s in lib/*.c store/*.c cli/txnparse.c; do
	[ "$s" = store/main.c ] || echo "$s"
done)
if [ $# -gt 0 ]; then
	targets="$*"
else
	targets=$(sed -e 's/#.*//' "$src/tests/fuzz/targets")
fi
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}
running=0
failed=0
relink=no
todo() {
	compile "$@" &
	running=$((running + 1))
	if [ "$running" -ge "$jobs" ]; then
		wait -n || failed=1
		running=$((running - 1))
	fi
}
for s in $lib_srcs; do
	o=$out/obj/lib/${s%.c}.o
	mkdir -p "$(dirname "$o")"
	stale "$o" || continue
	relink=yes
	todo "$src/$s" "$o" "-fsanitize=fuzzer-no-link"
done
for s in fuzz reqgen fsmrun $(for t in $targets; do echo "fuzz_$t"; done); do
	o=$out/obj/$s.o
	stale "$o" || continue
	todo "$src/tests/fuzz/$s.c" "$o" "-fsanitize=fuzzer-no-link"
done
while [ "$running" -gt 0 ]; do
	wait -n || failed=1
	running=$((running - 1))
done
[ "$failed" -eq 0 ] || exit 1

lib=$out/obj/libfuzz.a
# A source added or removed changes the archive too.
if [ "$(cat "$out/obj/sources" 2>/dev/null)" != "$lib_srcs" ]; then
	relink=yes
	echo "$lib_srcs" >"$out/obj/sources"
fi
if [ "$relink" = yes ] || [ ! -f "$lib" ]; then
	rm -f "$lib"
	# shellcheck disable=SC2046
	ar rcs "$lib" $(for s in $lib_srcs; do echo "$out/obj/lib/${s%.c}.o"; done) ||
		exit 1
fi
for t in $targets; do
	bin=$out/fuzz_$t
	objs="$out/obj/fuzz_$t.o $out/obj/fuzz.o $out/obj/reqgen.o $out/obj/fsmrun.o"
	up=no
	for o in $objs $lib; do
		[ "$o" -nt "$bin" ] && up=yes
	done
	[ -x "$bin" ] && [ "$up" = no ] && continue
	echo "  CCLD(fuzz) fuzz_$t"
	# shellcheck disable=SC2086
	nice "$cc" -fsanitize=fuzzer $sanitize $objs "$lib" $deps_libs -lm \
		-o "$bin" || exit 1
done
