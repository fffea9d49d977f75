/*
 * mvcc: the multi-version keyspace that is cairn-store's replicated state.
 *
 * Same meaning as etcd v3. Keys and values are byte strings. One cluster
 * revision (starting at 1 for the empty store, as etcd) is bumped once by every
 * write that changes something; a transaction's changes all share that one
 * revision and are told apart by a sub-revision (0, 1, ... in the order they
 * were made). Each live key has create_revision, mod_revision, version (1 at
 * creation, +1 per put, reset by deletion) and a lease id (0 = none).
 *
 * Every version of every key is kept, deletions as tombstones, until
 * mvcc_compact() drops what no read at or above the compact revision can see.
 * Reads at an older revision see the keyspace as it was then.
 *
 * Keys live in an ordered index (a skip list) so a range costs O(log n + k) for
 * k keys visited, never a scan of the whole keyspace.
 *
 * Single-threaded: every call on the thread that owns the store (the loop).
 * All pointers returned in struct mvcc_kv are borrowed from the store and stay
 * valid only until the next write, compaction or restore.
 *
 * Writes are grouped: mvcc_begin(), any number of mvcc_put()/mvcc_delete_range(),
 * then mvcc_end(). If anything changed, the revision moves by exactly one.
 * Reads made between begin and end (mvcc_range with rev 0) see the changes made
 * so far in the group (as etcd's txn does).
 */
#ifndef CAIRN_STORE_MVCC_H
#define CAIRN_STORE_MVCC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mvcc;
struct buf;
struct mp_reader;

struct mvcc_kv {
	const uint8_t *key;
	size_t key_len;
	const uint8_t *value;
	size_t value_len;
	int64_t create_rev;
	int64_t mod_rev;
	int64_t version;
	int64_t lease;
};

/* Creates an empty store at revision 1. Returns 0 or CAIRN_ENOMEM. */
int mvcc_create(struct mvcc **out);
void mvcc_destroy(struct mvcc *m);

/* The current revision (the revision of the last change; 1 when empty). Inside
 * a write group: the revision before the group, until mvcc_end(). */
int64_t mvcc_rev(const struct mvcc *m);
/* The compact revision (0 if never compacted). */
int64_t mvcc_compact_rev(const struct mvcc *m);
/* Live keys at the current revision. */
uint64_t mvcc_key_count(const struct mvcc *m);
/* Bytes held: keys, values and per-version overhead of all kept versions,
 * plus the change history (an entry, 24 bytes on 64-bit hosts, per change
 * above the compact revision). */
uint64_t mvcc_size_bytes(const struct mvcc *m);

/* Starts a write group at revision mvcc_rev()+1. Groups do not nest. */
void mvcc_begin(struct mvcc *m);

/*
 * Puts key=value with lease (0 = none). If prev is not NULL and the key was
 * live, *prev is filled with the previous pair and *had_prev set true.
 * The key and value bytes are copied. Returns 0 or CAIRN_ENOMEM.
 */
int mvcc_put(struct mvcc *m, const uint8_t *key, size_t key_len,
             const uint8_t *value, size_t value_len, int64_t lease,
             struct mvcc_kv *prev, bool *had_prev);

/* Called once per deleted pair, with the pair as it was before deletion. */
typedef void (*mvcc_kv_cb)(const struct mvcc_kv *kv, void *arg);

/*
 * Deletes every live key in the range (etcd range rules, see mvcc_range). Each
 * deleted pair is passed to cb (may be NULL) before the next one is deleted.
 * *deleted gets how many. Returns 0 or CAIRN_ENOMEM.
 */
int mvcc_delete_range(struct mvcc *m, const uint8_t *key, size_t key_len,
                      const uint8_t *end, size_t end_len, mvcc_kv_cb cb,
                      void *arg, int64_t *deleted);

/* Ends the write group; returns the revision after it (bumped once if any put
 * or effective delete happened, unchanged otherwise). */
int64_t mvcc_end(struct mvcc *m);

struct mvcc_range_opts {
	int64_t rev;   /* 0 (or below): the current revision (including an open group) */
	int64_t limit; /* 0: no limit */
	bool count_only; /* cb is not called; only count is computed */
};

struct mvcc_range_result {
	int64_t count; /* live keys in the range at rev, all of them, not just limit */
	bool more;     /* more keys than limit were in the range */
	int64_t rev;   /* the revision read at */
};

/*
 * Visits the live keys of the range at opts->rev in key order, calling cb for
 * each (up to limit). Range rules: end_len == 0: the single key; end is one
 * 0x00 byte: every key >= key; key is one 0x00 byte and end one 0x00 byte: all
 * keys; otherwise [key, end). Returns 0, CAIRN_ECOMPACTED (rev below the compact
 * revision), or CAIRN_EFUTUREREV (rev above the current revision).
 * opts may be NULL (defaults); res may not.
 */
int mvcc_range(struct mvcc *m, const uint8_t *key, size_t key_len,
               const uint8_t *end, size_t end_len,
               const struct mvcc_range_opts *opts, mvcc_kv_cb cb, void *arg,
               struct mvcc_range_result *res);

/* Looks one key up at rev (0: current). Returns true and fills *kv if live. */
bool mvcc_get(struct mvcc *m, const uint8_t *key, size_t key_len, int64_t rev,
              struct mvcc_kv *kv);

/*
 * Compacts: after it, reads below rev fail with CAIRN_ECOMPACTED, and only the
 * versions visible at rev or later are kept (a key deleted at or before rev
 * and not re-created goes entirely). Returns 0, CAIRN_ECOMPACTED (rev at or
 * below the current compact revision) or CAIRN_EFUTUREREV. Not inside a write
 * group.
 */
int mvcc_compact(struct mvcc *m, int64_t rev);

/*
 * The change history, for watches. Every put and every deletion made by a
 * write group is a change at (rev, sub). A change to a key that is later
 * compacted away stays visible until the compaction passes its revision.
 */
struct mvcc_change {
	int64_t rev;
	int64_t sub;
	bool is_delete;
	/* PUT: the pair as put. DELETE: key, mod_rev = rev, all else 0/NULL. */
	struct mvcc_kv kv;
	/* The key's version just before this change, if it was live. */
	bool has_prev;
	struct mvcc_kv prev;
};

/* Called per change; return false to stop the walk. */
typedef bool (*mvcc_change_cb)(const struct mvcc_change *ch, void *arg);

/*
 * Visits, in (rev, sub) order, the changes with from <= rev <= to made to keys
 * in the range (same rules as mvcc_range). Costs O(log C) to find 'from' in
 * the history plus O(1) per change of any key in [from, to] (filtered by range)
 * plus O(log v) per change reported. Returns 0, CAIRN_ECOMPACTED when from is
 * at or below the compact revision (those changes are gone), or
 * CAIRN_EFUTUREREV when from is above the current revision + 1. to above the
 * current revision means the current revision. Must not be called inside a
 * write group.
 */
int mvcc_changes(struct mvcc *m, int64_t from, int64_t to, const uint8_t *key,
                 size_t key_len, const uint8_t *end, size_t end_len,
                 mvcc_change_cb cb, void *arg);

/*
 * Serializes the whole store (revision, compact revision, every kept version of
 * every key) as MessagePack appended to out. Returns 0 or CAIRN_ENOMEM (out
 * then left as it was). Not inside a write group. The format is described
 * above mvcc_dump() in mvcc.c.
 */
int mvcc_dump(struct mvcc *m, struct buf *out);

/*
 * Builds a new store from what mvcc_dump() wrote, reading one object from r.
 * Validates everything (types, sizes, key order, revision order, and that
 * every revision above the compact one holds its changes with subs 0, 1, ...);
 * the change history is rebuilt from the versions, so mvcc_changes() answers
 * as the dumped store did. On malformed input returns CAIRN_EPROTO and *out
 * is NULL (CAIRN_ENOMEM likewise).
 */
int mvcc_load(struct mp_reader *r, struct mvcc **out);

#endif
