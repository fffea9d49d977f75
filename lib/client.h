/*
 * client: the internals of libcairn's client (the contract is in cairn.h).
 *
 * One client keeps at most one connection, the "link", to the member it talks
 * to. Requests live in a window ordered by id (= submit order) until their
 * callback fires; a request is "sent" when it went out on the current link, so
 * a new link resends every request still in the window, writes with the same
 * sequence number (the store applies each (cid, seq) once).
 *
 * The link is an explicit state machine (client.c checks every move against a
 * table and traces it when CAIRN_TRACE is set in the environment):
 *
 *   IDLE --submit--> CONNECTING --connected--> HELLO --answer--> READY
 *     ^                  |                       |                 |
 *     |                  +-- fail/dial timeout --+-- fail/error ---+--> BACKOFF
 *     +---- nothing left to send (after a failure or the backoff) ----+    |
 *                        ^---------------- backoff timer -------------------+
 *   HELLO/READY --leader is elsewhere--> CONNECTING (to the leader, at once)
 *   any --cairn_close()--> CLOSED
 *
 * Routing policy: writes and linearizable reads need the leader. A member that
 * is not the leader answers ENOTLEADER with the leader's id; the client maps
 * member ids to endpoints from their HELLO answers and goes straight to the
 * leader's endpoint, or to the next endpoint whose member it does not know
 * yet. When the leader is none of the endpoints, its client address comes
 * from the answer ("la") or else from a MEMBERS request ("cli" of each
 * member), and becomes a new endpoint. Immediate hops are limited to one round
 * of the endpoint list; beyond that, and after ENOLEADER, ESHUTDOWN,
 * EINDETERMINATE, a lost connection or a dial timeout, the client waits a short
 * growing backoff (50 ms, x1.5, at most 500 ms, with jitter) and tries the next
 * endpoint. A request fails when its request_timeout_ms runs out: with the last
 * retryable error it met (or CAIRN_ETIMEDOUT) and a message naming the
 * endpoints that failed meanwhile. A link that stayed silent for a whole
 * request timeout (a hung member, a partition) is dropped then, so the next
 * attempt can go elsewhere. Domain errors from the store are final.
 *
 * Writes are coalesced: frames are built into the link's output buffer and a
 * libuv prepare handle writes them once per loop iteration.
 *
 * Threads: everything runs on the client's loop thread.
 */
#ifndef CAIRN_CLIENT_H
#define CAIRN_CLIENT_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "buf.h"
#include "cairn.h"
#include "frame.h"

#define CLIENT_MAX_ENDPOINTS 64
#define CLIENT_DIAL_TIMEOUT_MS 2000u
#define CLIENT_REQUEST_TIMEOUT_MS 10000u
#define CLIENT_BACKOFF_MIN_MS 50u
#define CLIENT_BACKOFF_MAX_MS 500u

enum link_state {
	LINK_IDLE = 0,
	LINK_CONNECTING,
	LINK_HELLO,
	LINK_READY,
	LINK_BACKOFF,
	LINK_CLOSED,
	LINK_NSTATES
};

struct endpoint {
	char name[96]; /* "host:port" as given, for messages */
	struct sockaddr_storage addr;
	uint64_t member_id; /* from its HELLO answer; 0 until known */
	uint64_t failed_at; /* loop time of its last failure; 0: none */
	char why[160];      /* what that failure was */
};

/* One submitted operation, from cairn_submit() until its callback. */
struct req {
	uint64_t id;
	int type;
	bool write;  /* goes through the Raft log: has a seq */
	bool leader; /* must be served by the leader */
	uint64_t seq;
	uint64_t submitted; /* loop time */
	uint64_t deadline;
	int last_err;     /* the last retryable failure it met */
	uint64_t gen;     /* link generation it was last sent on */
	uint64_t rx_mark; /* the link's rx_frames when it was sent */
	struct buf body;  /* encoded fields after id, op, cid, seq, ack */
	uint32_t n_fields;
	cairn_cb cb;
	void *arg;
};

/* Requests by id: a ring indexed by id - base. Ids are handed out in order and
 * mostly answered in order, so the ring stays as small as what is in flight. */
struct req_window {
	struct req **slot;
	size_t cap; /* a power of two */
	size_t head;
	size_t
	    count; /* ids base .. base+count-1; the head slot is never NULL */
	uint64_t base;
};

/* One TCP connection. Freed in its close callback; 'dead' once closing. */
struct conn {
	uv_tcp_t tcp;
	uv_connect_t connect;
	uv_write_t write;
	struct cairn_client *c;
	struct frame_reader fr;
	struct buf out;  /* frames built since the last write */
	struct buf wbuf; /* frames being written */
	bool writing;
	bool dead;
	unsigned ep;
	uint64_t gen;
	uint64_t rx_frames; /* frames received so far */
};

struct cairn_client {
	uv_loop_t *loop;
	uv_loop_t own_loop; /* the sync client's private loop */
	bool sync;
	bool closing;
	bool trace;
	struct cairn_options opts;
	struct endpoint *eps;
	unsigned n_eps;
	unsigned ep;    /* endpoint of the current or last link */
	bool ep_failed; /* ... and it failed since the last answer */
	enum link_state state;
	struct conn *conn;
	uint64_t gen;
	uint64_t leader_id;      /* 0: unknown */
	bool discovering;        /* an internal MEMBERS request is out */
	uint64_t discovered_for; /* the leader id it was asked for */
	unsigned hops; /* immediate redirects since the last answer/backoff */
	unsigned backoff_ms;
	uint64_t rand;             /* jitter state */
	uv_timer_t link_timer;     /* dial timeout or backoff */
	uv_timer_t deadline_timer; /* the oldest request's deadline */
	uv_prepare_t flush;        /* writes the frames built this iteration */
	unsigned handles;          /* open handles, connections included */
	uint64_t cid;
	uint64_t next_seq;
	uint64_t ack;
	bool ack_dirty;
	struct req_window win;
	char errmsg[512];
};

#endif
