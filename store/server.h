/*
 * server: cairn-store's client side. Accepts connections, splits their bytes
 * into frames, checks the handshake, decodes each request and sends it where it
 * belongs: serializable reads, status and members are answered at once from
 * local state; writes and linearizable reads go to the node (or are refused
 * with the leader's id when this member does not lead).
 *
 * A connection is reference counted: requests waiting on the node hold a
 * reference, so a client that disconnects while its write is in flight costs
 * nothing but a dropped answer. Answers are encoded straight into the
 * connection's output buffer; dirty connections are written once per loop
 * iteration. A client that stops reading has its reads paused once its unsent
 * output passes SERVER_OUT_HIGH, so its buffer cannot grow without bound.
 */
#ifndef CAIRN_STORE_SERVER_H
#define CAIRN_STORE_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "buf.h"
#include "config.h"
#include "mp.h"
#include "watch.h"

#define SERVER_OUT_HIGH (64u << 20)

struct node;
struct conn;

struct server {
	uv_loop_t *loop;
	uv_tcp_t listener;
	uv_check_t flush;
	struct node *node;
	const struct config *cfg;
	struct conn *conns;
	struct conn *dirty;
	struct watch_hub watch;
	int64_t watched_rev;        /* the revision watchers were last pumped to */
	const void *watched_mvcc;   /* and the keyspace (a restore replaces it) */
	unsigned open_handles;
	bool closing;
	void (*on_closed)(struct server *s);
};

/* Listens on cfg->listen_client. Returns 0 or a CAIRN_E* code with errbuf. */
int server_start(struct server *s, uv_loop_t *loop, struct node *node,
                 const struct config *cfg, char *errbuf, size_t errlen);

/* Closes the listener and every connection; cb fires when all are closed. */
void server_stop(struct server *s, void (*cb)(struct server *s));

/* Reference counting of connections held by waiting requests. */
void conn_get(struct conn *c);
void conn_put(struct conn *c);

/* Starts an answer frame in c's output and returns the writer to encode its
 * map into, or NULL if c is closed (the answer is then dropped). */
struct mp_writer *conn_answer_begin(struct conn *c);
/* Completes it; an answer over the frame limit or out of memory is replaced by
 * an error answer for request id. */
void conn_answer_end(struct conn *c, uint64_t id, unsigned op);
/* Answers request id with the header and the member list (ms). */
void conn_answer_members(struct conn *c, uint64_t id, unsigned op);

/* True once c is closed (answers to it are dropped). */
bool conn_closed(const struct conn *c);
/* Takes back the answer frame begun last (to send an error instead). */
void conn_drop_frame(struct conn *c);

/* Bytes of answers c has not yet written to the socket. */
size_t conn_unsent(const struct conn *c);

/* Sends an error answer (leader 0 = none). No-op if c is closed. */
void conn_error(struct conn *c, uint64_t id, unsigned op, int code,
                const char *msg, uint64_t leader);

#endif
