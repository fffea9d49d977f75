/*
 * result: turns one answer payload from the store into a struct cairn_result.
 *
 * A result owns every byte it points to: keys, values, messages and strings are
 * copied out of the frame into a small arena (a chain of chunks) that hangs off
 * a hidden header in front of the struct, so cairn_result_free() releases the
 * whole tree, a transaction's nested responses included, in one walk. Keys and
 * values are followed by a NUL byte that their length does not count.
 *
 * Decoding reads the map once with the bounds-checked reader (mp.h); unknown
 * keys are skipped so a newer store may add fields. The routing fields of the
 * answer (id, err, ldr, la, HELLO's mid and ver) land in a struct result_env
 * that the client uses to decide between completing, redirecting and retrying.
 *
 * Results made by the client itself (timeouts, cancellation) come from
 * result_error(); when even that allocation fails it hands out a static
 * CAIRN_ENOMEM result that cairn_result_free() knows not to free.
 *
 * EVENTS frames (a watch's stream) are not answers: result_peek_op() tells
 * them apart, and result_decode_events() decodes one into a reusable arena
 * (struct result_arena) that the next frame overwrites, since the events are
 * only lent to the watch's callback.
 */
#ifndef CAIRN_RESULT_H
#define CAIRN_RESULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cairn.h"

/* The routing part of an answer. msg points into the decoded payload. */
struct result_env {
	uint64_t id;
	bool has_id;
	unsigned op;
	int err;          /* the answer's "err", 0 when absent */
	uint64_t leader;  /* "ldr": the leader the member knows, 0 if none */
	uint64_t member;  /* "mid" (HELLO) */
	uint64_t version; /* "ver" (HELLO) */
	const char *msg;  /* "msg", not NUL-terminated; NULL when absent */
	uint32_t msg_len;
	const char
	    *leader_addr; /* "la": the leader's client address, or NULL */
	uint32_t leader_addr_len;
	uint64_t watch_id; /* "wid" (WATCH) */
	int64_t revision;  /* "rev" (WATCH: the first revision it delivers) */
	bool reauth; /* "reauth": a new token may cure this CAIRN_EAUTH */
};

/*
 * Decodes payload into *out (a new result the caller frees) and fills *env.
 * The answer's err and msg become the result's err and errmsg. Returns 0, or
 * CAIRN_EPROTO (malformed; message in errbuf) or CAIRN_ENOMEM, with *out NULL;
 * env->has_id then tells whether the request id could still be read.
 */
int result_decode(const uint8_t *payload, size_t len, struct result_env *env,
                  struct cairn_result **out, char *errbuf, size_t errlen);

/* A result carrying only an error of the given op type, with a formatted
 * message. Never NULL (falls back to a static out-of-memory result). */
struct cairn_result *result_error(int type, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sets the op type of a result that has none (no-op on the static one). */
void result_set_type(struct cairn_result *res, int type);

/* The "op" of a payload's top-level map without decoding the rest (it is
 * the first or second key in practice); PROTO_OP_MAX when there is none or
 * the map is malformed before it. */
unsigned result_peek_op(const uint8_t *payload, size_t len);

/* Scratch memory for EVENTS frames: each decode reuses (and overwrites) it. */
struct result_arena;
struct result_arena *result_arena_new(void);
void result_arena_free(struct result_arena *a);

/*
 * One EVENTS frame. Exactly one of: events (n_events > 0, every event of
 * revision 'revision'), progress (everything up to header.revision was
 * delivered), cancel (the store ended the watch: err, msg, compact_revision),
 * or nothing at all (an empty frame, to be ignored). Pointers live in the
 * arena until its next decode.
 */
struct result_events {
	uint64_t watch_id;
	bool has_watch_id;
	struct cairn_header header;
	struct cairn_event *events;
	size_t n_events;
	int64_t revision; /* the events' revision (their kv's mod_revision) */
	bool more;        /* more frames of this revision follow */
	bool progress;
	bool cancel;
	int err;
	const char *msg; /* NUL-terminated; NULL when absent */
	int64_t compact_revision;
};

/* Decodes an EVENTS payload into *ev, its bytes copied into a (after
 * discarding what the previous frame left there). Returns 0, CAIRN_EPROTO
 * (message in errbuf; ev->has_watch_id says whether the watch is known) or
 * CAIRN_ENOMEM. */
int result_decode_events(const uint8_t *payload, size_t len,
                         struct result_arena *a, struct result_events *ev,
                         char *errbuf, size_t errlen);

#endif
