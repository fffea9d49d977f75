# deps.sh: installs the Debian packages cairn needs, if any is missing.
# Sourced by demo.sh and test.sh. Idempotent: does nothing when all are there.

CAIRN_PACKAGES="build-essential autoconf automake libtool pkg-config \
libraft-dev libuv1-dev libmsgpack-dev liblz4-dev libsodium-dev procps \
clang libclang-rt-dev"

install_deps() {
	local missing="" p
	for p in $CAIRN_PACKAGES; do
		dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	echo "==> installing:$missing"
	local sudo=""
	if [ "$(id -u)" -ne 0 ]; then
		if command -v sudo >/dev/null; then
			sudo=sudo
		else
			echo "error: missing packages:$missing; run as root or install them" >&2
			return 1
		fi
	fi
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update -q >/dev/null
	# shellcheck disable=SC2086
	$sudo apt-get install -y -q $missing >/dev/null
}

# build DIR [configure flags]: an out-of-tree build of the source tree in DIR.
build() {
	local dir=$1 src
	shift
	src=$(pwd)
	[ -x configure ] || ./autogen.sh >/dev/null 2>&1
	if [ -f config.status ]; then
		echo "error: the source tree is configured in place; run 'make distclean' first" >&2
		return 1
	fi
	mkdir -p "$dir"
	(cd "$dir" && { [ -f Makefile ] || "$src/configure" -q "$@"; } && make -s -j"$(nproc)")
}
