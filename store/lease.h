/*
 * lease: the lease table.
 *
 * Replicated part (changed only by applying log entries, in every snapshot):
 * each lease's id and granted TTL, and the keys attached to it (derived from
 * the keyspace, where every version records its lease, so a snapshot stores
 * only ids and TTLs and the key lists are rebuilt on restore).
 *
 * Leader part (never replicated): each lease's deadline in loop time. Only
 * the leader times leases. A deadline of 0 means "not timed yet": the leader
 * starts the clock at the full TTL when it first looks at the lease, which is
 * right after the lease is granted and, for every lease, right after this
 * member becomes leader. So a leader change renews every lease to its full
 * TTL: remaining TTLs are never cut short, at the cost of a lease outliving
 * its TTL by up to one TTL plus the election time when the leader dies.
 * Expiry is a revoke proposed by the leader and applied through the log, so
 * every member deletes the same keys at the same revision.
 */
#ifndef CAIRN_STORE_LEASE_H
#define CAIRN_STORE_LEASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;
struct mp_reader;
struct mvcc;

#define LEASE_MAX_TTL (1ll << 31) /* seconds */

struct lease_key {
	uint8_t *p;
	size_t len;
};

struct lease {
	int64_t id;
	int64_t ttl;        /* granted, seconds */
	uint64_t deadline;  /* leader only: loop time in ms, 0 = not timed yet */
	bool revoking;      /* leader only: an expiry revoke is in flight */
	struct lease_key *keys; /* sorted */
	uint32_t n_keys;
	uint32_t cap;
	struct lease *next; /* hash chain */
};

struct leases;

int leases_create(struct leases **out);
void leases_destroy(struct leases *l);

struct lease *lease_find(struct leases *l, int64_t id);
/* Grants a lease (id 0: the table picks the next free id, deterministically).
 * Returns 0, CAIRN_ELEASEEXISTS or CAIRN_ENOMEM. */
int lease_grant(struct leases *l, int64_t id, int64_t ttl, struct lease **out);
/* The id a grant from client cid with sequence number seq gets when it names
 * none: derived from the request, so every member, and the answer to a retry
 * of it, arrive at the same id. Never 0. */
int64_t lease_id_for(uint64_t cid, uint64_t seq);

/* Forgets a lease (its keys must have been deleted by the caller). */
void lease_remove(struct leases *l, struct lease *ls);

/* Key bookkeeping as puts and deletes attach and detach keys. */
int lease_attach(struct leases *l, int64_t id, const uint8_t *key, size_t len);
void lease_detach(struct leases *l, int64_t id, const uint8_t *key, size_t len);

/* Visits every lease (order unspecified); cb may not add or remove leases. */
void leases_foreach(struct leases *l, void (*cb)(struct lease *ls, void *arg),
                    void *arg);
uint32_t leases_count(const struct leases *l);

/* Snapshot: [next id, [[id, ttl], ...]]; load rebuilds the key lists from
 * the keyspace m and refuses (CAIRN_EPROTO) a key whose lease is unknown. */
int leases_dump(struct leases *l, struct buf *out);
int leases_load(struct mp_reader *r, struct mvcc *m, struct leases **out);

#endif
