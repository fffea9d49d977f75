/*
 * fsm: the replicated state machine handed to libraft: the MVCC keyspace plus
 * the at-most-once table, fed by log entries, saved and restored as snapshots.
 *
 * A log entry is one batch of client writes (group commit), encoded as
 *   [origin member id, batch number, [request map, request map, ...]]
 * where each request map is the client's request exactly as it arrived. Every
 * member applies every request in order; the member that proposed the batch
 * (origin) also encodes the answers, through the hooks, for the clients waiting
 * on it. Applying never fails (libraft stalls on a non-zero return): a request
 * that cannot be applied gets an error answer, the same on every member.
 *
 * Besides the keyspace, the state holds each member's published attributes
 * (client address and name; a new leader publishes its own through the log),
 * so any member can tell a client where the leader takes requests.
 *
 * A snapshot is [format 2, keyspace, dedup table, member attributes, leases,
 * auth state] in MessagePack, compressed as one LZ4 frame with block and
 * content checksums. Restore checks all of it and
 * refuses (logging why) anything corrupt, leaving the current state untouched.
 * Format 1 (the same without the auth state) still restores, with auth off
 * and no users or roles.
 *
 * All calls on the loop thread.
 */
#ifndef CAIRN_STORE_FSM_H
#define CAIRN_STORE_FSM_H

#include <raft.h>
#include <stdint.h>

#include "buf.h"
#include "exec.h"
#include "mp.h"
#include "proto.h"

struct mvcc;
struct dedup;
struct leases;
struct auth;

struct fsm_hooks {
	void *arg;
	/* A writer for the answer to request index of batch, or NULL when no
	 * client waits for it here. */
	struct mp_writer *(*answer_begin)(void *arg, uint64_t batch, uint32_t index);
	/* The answer begun last is complete. */
	void (*answer_end)(void *arg);
};

#define FSM_MAX_MEMBERS 64

struct fsm_member {
	uint64_t id;
	char client[PROTO_MAX_ATTR];
	char name[PROTO_MAX_ATTR];
};

struct fsm {
	struct raft_fsm raft_fsm; /* handed to raft_init(); data points here */
	struct mvcc *mvcc;
	struct dedup *dedup;
	struct leases *leases;
	struct auth *auth; /* users, roles, permissions (auth.h) */
	uint64_t member_id;
	const struct raft *raft; /* for the term in answer headers; may be NULL */
	struct fsm_hooks hooks;
	uint64_t applied; /* entries applied since start, for status and tests */
	uint64_t log_bytes;   /* bytes of entries applied since the last snapshot */
	uint64_t log_entries; /* and their number */
	uint64_t snapshots;   /* snapshots taken since start */
	struct fsm_member members[FSM_MAX_MEMBERS];
	unsigned n_members;
};

/* Sets up an empty state machine. Returns 0 or CAIRN_ENOMEM. */
int fsm_init(struct fsm *f, uint64_t member_id, const struct fsm_hooks *hooks);
void fsm_close(struct fsm *f);

/* The published attributes of member id, or NULL. */
const struct fsm_member *fsm_member(const struct fsm *f, uint64_t id);

/* Appends to b the request that publishes a member's attributes. */
int fsm_encode_publish(struct buf *b, uint64_t id, const char *client,
                       const char *name);

/* Appends to b the request that compacts the history below rev. */
int fsm_encode_compact(struct buf *b, int64_t rev);

/* The header of answers made now. */
struct exec_hdr fsm_header(const struct fsm *f);

/* Building an entry: begin, add each request payload, end. The entry's bytes
 * are b's contents, padded to a multiple of 8 bytes (a libraft 0.15 need). */
struct fsm_entry {
	struct mp_writer w;
	size_t at;
	uint32_t n;
};
void fsm_entry_begin(struct fsm_entry *e, struct buf *b, uint64_t origin,
                     uint64_t batch);
void fsm_entry_add(struct fsm_entry *e, const uint8_t *payload, size_t len);
/* Returns 0 or CAIRN_ENOMEM. */
int fsm_entry_end(struct fsm_entry *e);

/* Snapshot bytes of the current state (for tests and backups): a buffer
 * allocated with malloc, and the decoding side. */
int fsm_encode_snapshot(struct fsm *f, uint8_t **out, size_t *len);
/* Replaces the state with the snapshot's; on failure the state is unchanged
 * and errbuf says what is wrong. */
int fsm_decode_snapshot(struct fsm *f, const uint8_t *p, size_t len,
                        char *errbuf, size_t errlen);

#endif
