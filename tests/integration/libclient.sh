#!/usr/bin/env bash
# The C client library (sync and async APIs) against three real members.
. "$CAIRN_SRCDIR/tests/integration/lib.sh"

cluster_start 3 >/dev/null || { echo "1..0 # SKIP cluster did not start"; exit 1; }
"$BUILD/tests/integration/libclient" "$CAIRN_ENDPOINTS"
rc=$?
[ $rc -eq 0 ] || dump_logs
exit $rc
