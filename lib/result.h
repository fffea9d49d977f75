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

#endif
