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
 *   READY --a user is set; or a token was refused as stale--> AUTH
 *   AUTH --token--> READY   AUTH --wrong credentials--> IDLE (all fail)
 *   AUTH --fail--> BACKOFF
 *   any --cairn_close()--> CLOSED
 *
 * Routing policy: writes, linearizable reads and the lease operations only the
 * leader can answer (keep-alive, time-to-live) need the leader. A member that
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
 * Secure channel (lib/channel.h): unless the client is insecure, every link
 * runs the secure handshake in HELLO state (the HELLO frame waits in the
 * output buffer until the channel is open) and each write seals the output
 * buffer as a few large frames. A member that does not share the client's
 * secret, or that speaks plaintext, fails every request and watch at once
 * with CAIRN_EAUTH (no other endpoint would do better); a forged or damaged
 * frame only fails the link, which is retried like a lost one.
 *
 * Users (cairn.h "Users and roles"): with a user set, a link that turns
 * READY authenticates first (AUTH: an AUTHENTICATE with id CLIENT_AUTH_ID,
 * nothing else sent until its answer) and every request and WATCH carries
 * the token. A request or WATCH refused with CAIRN_EAUTH and "reauth"
 * (expired, or users and roles changed) is sent again once: after a new
 * AUTHENTICATE if it went out with the current token (tok_gen), at once if
 * the token was renewed meanwhile.
 *
 * Watches ride on the same link but not in the window: a watch lives until
 * its final callback, across any number of links. Each has its own state
 * machine (checked and traced like the link's):
 *
 *   PENDING --WATCH sent on a READY link--> CREATING --answer--> ACTIVE
 *      ^                                      |   |                 |
 *      +------- link lost (resume) -----------+---|-----------------+
 *   CREATING --canceled before the answer--> ORPHAN (the answer, when it
 *      comes, is only used to send WATCH_CANCEL; freed then or with the link)
 *   PENDING/CREATING/ACTIVE --cancel, close, final error--> DONE
 *
 * Control frames of watches (WATCH, WATCH_CANCEL, WATCH_PROGRESS) carry ids
 * with CLIENT_WATCH_ID_BIT set, so their answers never touch the window: a
 * WATCH's id is the bit plus the watch's serial (one WATCH per watch per
 * link at most), the others' the bare bit (their answers are not needed).
 * EVENTS frames are routed by the store's watch id (per link).
 *
 * Resuming: a watch remembers the first revision it has not fully delivered
 * (next_rev) and, for a revision split over several frames, how many of its
 * events it delivered. On a new link the WATCH asks for next_rev and the
 * events of that revision already delivered are skipped, so the caller sees
 * neither a gap nor a duplicate. A watch that never got its first answer
 * fails after request_timeout_ms like a request; once created it is resumed
 * for as long as it takes. Watches need the link (a lost link is retried
 * while one lives) but keep no loop alive: the watch timer is unreferenced.
 * An idle link with watches is never taken for a hung one; only a WATCH or
 * WATCH_PROGRESS that stays unanswered for request_timeout_ms drops it.
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
#include "channel.h"
#include "frame.h"
#include "proto.h"
#include "secure.h"

#define CLIENT_MAX_ENDPOINTS 64
#define CLIENT_DIAL_TIMEOUT_MS 2000u
#define CLIENT_REQUEST_TIMEOUT_MS 10000u
#define CLIENT_BACKOFF_MIN_MS 50u
#define CLIENT_BACKOFF_MAX_MS 250u
#define CLIENT_WATCH_ID_BIT (UINT64_C(1) << 63)
#define CLIENT_AUTH_ID (UINT64_C(1) << 62) /* the link's AUTHENTICATE */

enum link_state {
	LINK_IDLE = 0,
	LINK_CONNECTING,
	LINK_HELLO,
	LINK_READY,
	LINK_AUTH,
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
	int64_t lease;    /* LEASE_GRANT: the id asked for (0: the store's */
	int64_t ttl;      /* pick) and the TTL, for a duplicate's answer */
	uint64_t tok_gen; /* the token generation it was last sent with */
	bool reauthed;    /* resent once after a stale-token refusal */
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
	struct channel ch; /* plaintext or secure: under fr, out and wbuf */
	struct buf out;  /* frames built since the last write */
	struct buf wbuf; /* frames being written */
	bool writing;
	bool dead;
	unsigned ep;
	uint64_t gen;
	uint64_t rx_frames; /* frames received so far */
};

enum watch_state {
	WATCH_PENDING = 0,
	WATCH_CREATING,
	WATCH_ACTIVE,
	WATCH_ORPHAN,
	WATCH_DONE,
	WATCH_NSTATES
};

/* One cairn_watch_start() until its final callback (and, as an ORPHAN, until
 * the store forgot it too). */
struct cairn_watch {
	struct cairn_client *c;
	struct cairn_watch *prev; /* the client's list of watches not DONE */
	struct cairn_watch *next;
	enum watch_state state;
	uint64_t
	    serial; /* request id of its WATCH: CLIENT_WATCH_ID_BIT | serial */
	uint64_t wid;      /* the store's id, on link generation 'gen' */
	uint64_t gen;      /* link generation of the last WATCH sent */
	uint64_t sent_at;  /* loop time of the last WATCH sent */
	uint64_t rx_mark;  /* the link's rx_frames then */
	uint64_t started;  /* loop time of cairn_watch_start() */
	uint64_t deadline; /* until the first answer: when to give up; then 0 */
	int last_err; /* the last retryable failure before the first answer */
	int64_t next_rev;   /* first revision not fully delivered; 0: "now" */
	int64_t part_rev;   /* a revision split over frames, partly delivered */
	uint64_t part_done; /* ... its events delivered to the callback */
	uint64_t part_seen; /* ... its events received on the current link */
	unsigned in_cb;     /* inside its callback: freeing waits */
	bool final_pending; /* DONE inside its callback: the final call waits */
	bool reauthed;      /* resent once after a stale-token refusal */
	uint64_t tok_gen;   /* the token generation of its last WATCH */
	int err;            /* the final callback's */
	int64_t compact_rev;
	char errmsg[256];
	cairn_watch_cb cb;
	void *arg;
	bool prev_kv;
	bool no_put;
	bool no_delete;
	bool progress_notify;
	size_t key_len;
	size_t end_len;
	uint8_t bytes[]; /* key then end */
};

/* Watches by a 64-bit key (the store's wid, or the serial of a pending
 * WATCH): open addressing with linear probing; w NULL marks a free slot. */
struct watch_slot {
	uint64_t key;
	struct cairn_watch *w;
};

struct watch_table {
	struct watch_slot *slot;
	size_t cap; /* a power of two, or 0 */
	size_t count;
};

struct cairn_client {
	uv_loop_t *loop;
	uv_loop_t own_loop; /* the sync client's private loop */
	bool sync;
	bool closing;
	bool trace;
	struct cairn_options opts; /* the secret's pointers cleared */
	bool secure;               /* else plaintext (insecure) */
	char *user;                /* NULL: no authentication */
	char *password;
	uint8_t token[PROTO_MAX_TOKEN];
	size_t token_len; /* 0: none (no user, or auth disabled) */
	uint64_t tok_gen; /* bumped by each token received */
	uint8_t key[SECURE_KEY_BYTES];
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
	/* watches */
	struct cairn_watch *watches; /* not DONE, in start order */
	struct cairn_watch *watches_tail;
	struct watch_table by_wid; /* ACTIVE on the current link */
	struct watch_table by_req; /* CREATING and ORPHAN on the current link */
	unsigned n_live;           /* PENDING, CREATING and ACTIVE ones */
	uint64_t next_serial;
	uv_timer_t watch_timer;       /* first answers' deadlines, hung links */
	struct result_arena *scratch; /* decoded EVENTS frames */
	bool progress_wanted;         /* a WATCH_PROGRESS waits for the link */
	uint64_t progress_gen;        /* link generation of the last one sent */
	uint64_t progress_sent_at;    /* ... when; 0 once anything came back */
	uint64_t progress_rx_mark;
	char errmsg[512];
};

#endif
