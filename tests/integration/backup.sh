#!/usr/bin/env bash
# Backup and restore round trip: a backup saved from a live cluster, restored
# into the data directories of a new three-member cluster, gives the same
# keyspace at the same revision; corrupt or truncated backups, and restoring
# over existing state, are refused.
. "$CAIRN_SRCDIR/tests/integration/lib.sh"

json_field() { sed -n "s/.*\"$1\":[[:space:]]*\([0-9]*\).*/\1/p" | head -n 1; }

cluster_start 3 --auto-compaction-retention 0
for i in $(seq 1 200); do ctl put "k/$i" "value $i" >/dev/null; done
ctl del k/1 k/5 >/dev/null
for i in $(seq 1 20); do ctl put "k/1$i" "changed $i" >/dev/null; done
ctl compact "$(ctl -o json get k/110 | json_field revision)" >/dev/null
before=$(ctl get '' --from-key)
rev=$(ctl -o json get k/110 | json_field revision)
ok "snapshot save" ctl snapshot save "$TESTDIR/backup.db"
ok "snapshot status reads it" sh -c "'$CTL' snapshot status '$TESTDIR/backup.db' | grep -q $rev"
cluster_stop_checked >"$TESTDIR/stop.out"

cluster_init 3
for i in 1 2 3; do
	ok "restore member $i" "$STORE" --id "$i" --data-dir "$DATA/data$i" \
		--initial-cluster "$INITIAL" --restore-from "$TESTDIR/backup.db"
done
for i in 1 2 3; do member_start "$i"; done
wait_leader 30
is "the restored cluster elects a leader" 0 $?
is "the restored keyspace equals the source" "$before" "$(ctl get '' --from-key)"
is "at the same revision" "$rev" "$(ctl -o json get k/110 | json_field revision)"
ok "the compaction came along" sh -c "! '$CTL' --endpoints $CAIRN_ENDPOINTS get k/2 --rev 2"
ok "the restored cluster takes writes" ctl put after-restore yes
is "from the next revision" "$((rev + 1))" "$(ctl -o json get after-restore | json_field mod_revision)"
ok "restoring over existing state is refused" sh -c "! '$STORE' --id 1 --data-dir '$DATA/data1' \
	--initial-cluster '$INITIAL' --restore-from '$TESTDIR/backup.db' 2>'$TESTDIR/over.err'"
ok "... saying why" grep -q "already holds Raft state" "$TESTDIR/over.err"
cp "$TESTDIR/backup.db" "$TESTDIR/bad.db"
printf 'X' | dd of="$TESTDIR/bad.db" bs=1 seek=100 conv=notrunc 2>/dev/null
ok "a corrupt backup is refused" sh -c "! '$STORE' --id 1 --data-dir '$TESTDIR/new1' \
	--initial-cluster 1=127.0.0.1:1 --restore-from '$TESTDIR/bad.db' 2>'$TESTDIR/bad.err'"
ok "... as corrupt" grep -q "checksum mismatch" "$TESTDIR/bad.err"
head -c 200 "$TESTDIR/backup.db" >"$TESTDIR/short.db"
ok "a truncated backup is refused" sh -c "! '$STORE' --id 1 --data-dir '$TESTDIR/new2' \
	--initial-cluster 1=127.0.0.1:1 --restore-from '$TESTDIR/short.db' 2>'$TESTDIR/short.err'"
ok "... as truncated" grep -q truncated "$TESTDIR/short.err"
cluster_stop_checked >"$TESTDIR/stop.out"
is "members stop cleanly on SIGTERM, nothing leaked" "" "$(cat "$TESTDIR/stop.out")"
done_testing
