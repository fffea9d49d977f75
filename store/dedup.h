/*
 * dedup: the at-most-once table of client writes (Raft dissertation §6.3).
 *
 * Each write carries (client id, sequence number, ack), ack being the lowest
 * sequence number the client still waits on. The table keeps, per client, the
 * sequence numbers applied at or above ack and the revision each was applied
 * at, so a retry of one of them is recognized and answered with that revision
 * instead of being applied twice. Sequence numbers below ack were acknowledged
 * to the client, which never sends them again, and are forgotten.
 *
 * It is part of the replicated state: every member applies the same writes in
 * the same order and so holds the same table; it is in every snapshot. Both
 * bounds (clients kept, sequence numbers per client) evict deterministically:
 * the least recently writing client first, the lowest sequence number first.
 */
#ifndef CAIRN_STORE_DEDUP_H
#define CAIRN_STORE_DEDUP_H

#include <stdbool.h>
#include <stdint.h>

struct buf;
struct mp_reader;
struct dedup;

#define DEDUP_MAX_CLIENTS 65536
#define DEDUP_MAX_PENDING 4096

int dedup_create(struct dedup **out);
void dedup_destroy(struct dedup *d);

/*
 * Looks (cid, seq) up after dropping what ack acknowledges. Returns true for a
 * duplicate, with the revision it was applied at (0 if that was forgotten) and
 * its outcome as exec_write() returned it (0 if forgotten).
 */
bool dedup_seen(struct dedup *d, uint64_t cid, uint64_t seq, uint64_t ack,
                int64_t *rev, int *outcome);

/* Records (cid, seq) as applied at rev with outcome. Returns 0 or
 * CAIRN_ENOMEM. */
int dedup_record(struct dedup *d, uint64_t cid, uint64_t seq, int64_t rev,
                 int outcome);

uint32_t dedup_clients(const struct dedup *d);

/* Snapshot encoding: one msgpack object appended to out / read from r.
 * dedup_load returns CAIRN_EPROTO on malformed input (nothing leaked). */
int dedup_dump(const struct dedup *d, struct buf *out);
int dedup_load(struct mp_reader *r, struct dedup **out);

#endif
