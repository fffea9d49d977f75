/*
 * server: client connections of cairn-store (see server.h).
 *
 * Lifecycle of a connection (each state allows only the moves listed):
 *   HANDSHAKE -> OPEN       the client's HELLO named our protocol version
 *   HANDSHAKE -> DRAINING   anything else came first (error answer sent)
 *   OPEN      -> DRAINING   a malformed or oversized frame (error answer sent)
 *   any       -> CLOSED     peer closed, read error, or DRAINING's output sent
 * In DRAINING nothing more is read; the output is written, then the handle is
 * closed. The memory goes when the handle is closed and no request waiting on
 * the node holds a reference.
 *
 * The byte path goes through a channel (lib/channel.h): the secure channel
 * unless the member runs with --insecure. Its handshake runs before HANDSHAKE
 * sees a frame; a client that fails it (another secret, a forged frame, a
 * plaintext client) is logged with the reason, told why when the socket takes
 * it at once, and closed (secure_refused below).
 */
#include "server.h"

#include <stdlib.h>
#include <string.h>

#include "authz.h"
#include "cairn.h"
#include "channel.h"
#include "exec.h"
#include "frame.h"
#include "log.h"
#include "member.h"
#include "mvcc.h"
#include "node.h"
#include "proto.h"

#define READ_CHUNK (64u << 10)

enum conn_state { CONN_HANDSHAKE, CONN_OPEN, CONN_DRAINING, CONN_CLOSED };

struct conn {
	uv_tcp_t tcp;
	uv_write_t wreq;
	struct server *srv;
	struct frame_reader in;
	struct channel ch;  /* plaintext or secure, under in and out */
	struct buf out;     /* answers not yet handed to the kernel */
	struct buf writing; /* the bytes of the write in progress */
	struct mp_writer w;
	size_t frame_at;
	enum conn_state state;
	unsigned refs;
	uint64_t next_wid;
	bool writing_active;
	bool reading;
	bool is_dirty;
	struct conn *next;       /* all connections */
	struct conn *prev;
	struct conn *next_dirty; /* connections with output to write */
};

static const char *const state_names[] = {"handshake", "open", "draining",
                                          "closed"};

/* The allowed moves, as in the comment at the top. */
static bool move_allowed(enum conn_state from, enum conn_state to)
{
	switch (to) {
	case CONN_OPEN:
		return from == CONN_HANDSHAKE;
	case CONN_DRAINING:
		return from == CONN_HANDSHAKE || from == CONN_OPEN;
	case CONN_CLOSED:
		return from != CONN_CLOSED;
	default:
		return false;
	}
}

static void conn_move(struct conn *c, enum conn_state to)
{
	if (!move_allowed(c->state, to)) {
		log_error("connection: illegal move %s -> %s", state_names[c->state],
		          state_names[to]);
		abort();
	}
	log_debug("connection %p: %s -> %s", (void *)c, state_names[c->state],
	          state_names[to]);
	c->state = to;
}

void conn_get(struct conn *c)
{
	c->refs++;
}

void conn_put(struct conn *c)
{
	if (--c->refs > 0)
		return;
	frame_reader_close(&c->in);
	channel_close(&c->ch);
	buf_free(&c->out);
	buf_free(&c->writing);
	free(c);
}

static void conn_closed_cb(uv_handle_t *h)
{
	struct conn *c = h->data;
	struct server *s = c->srv;

	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	watch_conn_closed(&s->watch, c);
	conn_put(c);
	if (--s->open_handles == 0 && s->closing && s->on_closed != NULL)
		s->on_closed(s);
}

static void conn_close(struct conn *c)
{
	if (c->state == CONN_CLOSED)
		return;
	conn_move(c, CONN_CLOSED);
	uv_close((uv_handle_t *)&c->tcp, conn_closed_cb);
}

static void mark_dirty(struct conn *c)
{
	if (c->is_dirty || c->state == CONN_CLOSED)
		return;
	c->is_dirty = true;
	conn_get(c); /* the dirty list holds the connection */
	c->next_dirty = c->srv->dirty;
	c->srv->dirty = c;
}

/* ---- writing -------------------------------------------------------------- */

static void start_write(struct conn *c);
static void alloc_cb(uv_handle_t *h, size_t size, uv_buf_t *b);
static void read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *b);

static void resume_reading(struct conn *c)
{
	if (c->reading || c->state != CONN_OPEN || c->out.len >= SERVER_OUT_HIGH)
		return;
	if (uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) == 0)
		c->reading = true;
}

static void write_cb(uv_write_t *req, int status)
{
	struct conn *c = req->data;

	c->writing_active = false;
	buf_reset(&c->writing);
	if (c->srv->watch.n_watchers > 0)
		watch_kick(&c->srv->watch); /* a lagging watcher may go on */
	if (c->state == CONN_CLOSED) {
		conn_put(c);
		return;
	}
	if (status != 0) {
		log_debug("write to client: %s", uv_strerror(status));
		conn_close(c);
	} else if (c->out.len > 0) {
		start_write(c);
	} else if (c->state == CONN_DRAINING) {
		conn_close(c);
	} else {
		resume_reading(c);
	}
	conn_put(c);
}

static void start_write(struct conn *c)
{
	uv_buf_t b;
	int rv;

	if (c->writing_active || c->state == CONN_CLOSED ||
	    (c->out.len == 0 && !channel_has_raw(&c->ch)))
		return;
	if (channel_wire(&c->ch, &c->out, &c->writing) != 0) {
		log_warn("client connection: out of memory sealing answers");
		conn_close(c);
		return;
	}
	if (c->writing.len == 0)
		return;
	b = uv_buf_init((char *)c->writing.data, (unsigned)c->writing.len);
	c->wreq.data = c;
	rv = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, write_cb);
	if (rv != 0) {
		log_debug("write to client: %s", uv_strerror(rv));
		buf_reset(&c->writing);
		conn_close(c);
		return;
	}
	c->writing_active = true;
	conn_get(c); /* the write request holds the connection */
}

bool conn_closed(const struct conn *c)
{
	return c->state == CONN_CLOSED;
}

void conn_drop_frame(struct conn *c)
{
	c->out.len = c->frame_at;
}

size_t conn_unsent(const struct conn *c)
{
	return c->out.len + c->writing.len;
}

static void flush_cb(uv_check_t *h)
{
	struct server *s = h->data;
	const struct mvcc *m = s->node->fsm.mvcc;
	struct conn *c;

	if (mvcc_rev(m) != s->watched_rev || (const void *)m != s->watched_mvcc) {
		s->watched_rev = mvcc_rev(m);
		s->watched_mvcc = m;
		watch_kick(&s->watch);
	}
	watch_pump(&s->watch);

	while ((c = s->dirty) != NULL) {
		s->dirty = c->next_dirty;
		c->is_dirty = false;
		start_write(c);
		if (!c->writing_active && c->state == CONN_DRAINING)
			conn_close(c);
		conn_put(c);
	}
}

/* ---- answers -------------------------------------------------------------- */

struct mp_writer *conn_answer_begin(struct conn *c)
{
	if (c->state == CONN_CLOSED)
		return NULL;
	c->frame_at = proto_frame_begin(&c->out);
	mp_writer_init(&c->w, &c->out);
	return &c->w;
}

void conn_answer_end(struct conn *c, uint64_t id, unsigned op)
{
	int rv = c->w.err;

	if (rv == 0)
		rv = proto_frame_end(&c->out, c->frame_at, PROTO_RESP_FRAME_MAX);
	if (rv != 0) {
		c->out.len = c->frame_at;
		conn_error(c, id, op, rv,
		           rv == CAIRN_ETOOBIG
		               ? "answer exceeds the 256 MiB frame limit; ask with a limit"
		               : "out of memory",
		           0);
		return;
	}
	mark_dirty(c);
	if (c->out.len >= SERVER_OUT_HIGH && c->reading) {
		uv_read_stop((uv_stream_t *)&c->tcp);
		c->reading = false;
	}
}

/* Where member id takes client requests, if it published that. */
static const char *leader_address(struct server *s, uint64_t id)
{
	const struct fsm_member *m;

	if (id == 0)
		return NULL;
	if (id == s->cfg->id)
		return s->cfg->listen_client;
	m = fsm_member(&s->node->fsm, id);
	return m != NULL && m->client[0] != '\0' ? m->client : NULL;
}

void conn_error(struct conn *c, uint64_t id, unsigned op, int code,
                const char *msg, uint64_t leader)
{
	struct mp_writer *w = conn_answer_begin(c);

	if (w == NULL)
		return;
	exec_error(w, id, op, code, msg, leader, leader_address(c->srv, leader));
	if (proto_frame_end(&c->out, c->frame_at, PROTO_RESP_FRAME_MAX) != 0 ||
	    w->err != 0) {
		c->out.len = c->frame_at;
		conn_close(c); /* cannot even say why: out of memory */
		return;
	}
	mark_dirty(c);
}

/* Sends an error and stops reading: the connection closes once it is sent. */
static void conn_fail(struct conn *c, uint64_t id, unsigned op, int code,
                      const char *msg)
{
	log_debug("client connection failed: %s", msg);
	conn_error(c, id, op, code, msg, 0);
	if (c->state == CONN_CLOSED)
		return;
	conn_move(c, CONN_DRAINING);
	if (c->reading) {
		uv_read_stop((uv_stream_t *)&c->tcp);
		c->reading = false;
	}
	mark_dirty(c);
}

/* ---- requests ------------------------------------------------------------- */

static void answer_hello(struct conn *c, const struct proto_req *req)
{
	struct server *s = c->srv;
	struct mp_writer *w;
	char msg[128];

	if (req->version != PROTO_VERSION) {
		snprintf(msg, sizeof msg,
		         "protocol version %llu not supported (this member speaks %d)",
		         (unsigned long long)req->version, PROTO_VERSION);
		conn_fail(c, req->id, req->op, CAIRN_EVERSION, msg);
		return;
	}
	if (c->state == CONN_HANDSHAKE)
		conn_move(c, CONN_OPEN);
	w = conn_answer_begin(c);
	mp_put_map(w, 6);
	mp_put_key(w, "id");
	mp_put_uint(w, req->id);
	mp_put_key(w, "op");
	mp_put_uint(w, req->op);
	mp_put_key(w, "ver");
	mp_put_uint(w, PROTO_VERSION);
	mp_put_key(w, "mid");
	mp_put_uint(w, s->cfg->id);
	mp_put_key(w, "ldr");
	mp_put_uint(w, node_leader(s->node));
	mp_put_key(w, "name");
	mp_put_str(w, s->cfg->name, strlen(s->cfg->name));
	conn_answer_end(c, req->id, req->op);
}

static void put_status(struct mp_writer *w, struct server *s)
{
	struct node *n = s->node;
	struct mvcc *m = n->fsm.mvcc;

	mp_put_map(w, 11);
	mp_put_key(w, "id");
	mp_put_uint(w, s->cfg->id);
	mp_put_key(w, "ldr");
	mp_put_uint(w, node_leader(n));
	mp_put_key(w, "term");
	mp_put_uint(w, n->raft.current_term);
	mp_put_key(w, "idx");
	mp_put_uint(w, raft_last_index(&n->raft));
	mp_put_key(w, "app");
	mp_put_uint(w, raft_last_applied(&n->raft));
	mp_put_key(w, "rev");
	mp_put_int(w, mvcc_rev(m));
	mp_put_key(w, "crev");
	mp_put_int(w, mvcc_compact_rev(m));
	mp_put_key(w, "keys");
	mp_put_uint(w, mvcc_key_count(m));
	mp_put_key(w, "size");
	mp_put_uint(w, mvcc_size_bytes(m));
	mp_put_key(w, "name");
	mp_put_str(w, s->cfg->name, strlen(s->cfg->name));
	mp_put_key(w, "ver");
	mp_put_str(w, CAIRN_VERSION, strlen(CAIRN_VERSION));
}

static void put_members(struct mp_writer *w, struct server *s)
{
	const struct raft_configuration *conf = &s->node->raft.configuration;
	uint64_t leader = node_leader(s->node);
	unsigned i;

	mp_put_array(w, conf->n);
	for (i = 0; i < conf->n; i++) {
		const struct raft_server *sv = &conf->servers[i];
		const char *client = leader_address(s, sv->id);
		const struct fsm_member *m = fsm_member(&s->node->fsm, sv->id);
		const char *name = sv->id == s->cfg->id ? s->cfg->name
		                   : m != NULL          ? m->name
		                                        : NULL;
		mp_put_map(w, 4 + (client != NULL) + (name != NULL));
		mp_put_key(w, "id");
		mp_put_uint(w, sv->id);
		mp_put_key(w, "peer");
		mp_put_str(w, sv->address, strlen(sv->address));
		mp_put_key(w, "voter");
		mp_put_bool(w, sv->role == RAFT_VOTER);
		mp_put_key(w, "ldr");
		mp_put_bool(w, sv->id == leader);
		if (client != NULL) {
			mp_put_key(w, "cli");
			mp_put_str(w, client, strlen(client));
		}
		if (name != NULL) {
			mp_put_key(w, "name");
			mp_put_str(w, name, strlen(name));
		}
	}
}

static void answer_info(struct conn *c, uint64_t id, unsigned op, bool status)
{
	struct server *s = c->srv;
	struct exec_hdr h = fsm_header(&s->node->fsm);
	struct mp_writer *w = conn_answer_begin(c);

	if (w == NULL)
		return;
	mp_put_map(w, 4);
	mp_put_key(w, "id");
	mp_put_uint(w, id);
	mp_put_key(w, "op");
	mp_put_uint(w, op);
	mp_put_key(w, "h");
	exec_put_header(w, &h, mvcc_rev(s->node->fsm.mvcc));
	if (status) {
		mp_put_key(w, "st");
		put_status(w, s);
	} else {
		mp_put_key(w, "ms");
		put_members(w, s);
	}
	conn_answer_end(c, id, op);
}

void conn_answer_members(struct conn *c, uint64_t id, unsigned op)
{
	answer_info(c, id, op, false);
}

/* The whole applied state, for a backup. Encoding runs on the loop: a few
 * tens of milliseconds per 100k keys. */
static void answer_snapshot(struct conn *c, const struct proto_req *req)
{
	struct node *n = c->srv->node;
	struct fsm *f = &n->fsm;
	struct exec_hdr h = fsm_header(f);
	struct mp_writer *w;
	uint8_t *snap;
	size_t len;

	if (n->leader && !n->ready) {
		/* A new leader may not have applied all that was committed. */
		conn_error(c, req->id, req->op, CAIRN_ENOLEADER,
		           "the leader is not ready yet; retry shortly", 0);
		return;
	}
	if (fsm_encode_snapshot(f, &snap, &len) != 0) {
		conn_error(c, req->id, req->op, CAIRN_ENOMEM,
		           "out of memory encoding the snapshot", 0);
		return;
	}
	w = conn_answer_begin(c);
	if (w != NULL) {
		mp_put_map(w, 5);
		mp_put_key(w, "id");
		mp_put_uint(w, req->id);
		mp_put_key(w, "op");
		mp_put_uint(w, req->op);
		mp_put_key(w, "h");
		exec_put_header(w, &h, mvcc_rev(f->mvcc));
		mp_put_key(w, "rev");
		mp_put_int(w, mvcc_rev(f->mvcc));
		mp_put_key(w, "snap");
		mp_put_bin(w, snap, len);
		conn_answer_end(c, req->id, req->op);
	}
	raft_free(snap);
}

static void not_leader(struct conn *c, const struct proto_req *req)
{
	uint64_t leader = node_leader(c->srv->node);

	if (leader == 0)
		conn_error(c, req->id, req->op, CAIRN_ENOLEADER,
		           "no leader elected yet; retry shortly", 0);
	else
		conn_error(c, req->id, req->op, CAIRN_ENOTLEADER,
		           "this member is not the leader", leader);
}

static bool has_put(const struct proto_req *ops, uint32_t n)
{
	uint32_t i;

	for (i = 0; i < n; i++)
		if (ops[i].op == PROTO_OP_PUT)
			return true;
	return false;
}

/*
 * The quota is checked by the leader before proposing, not when applying, so
 * that members configured with different quotas never apply a write
 * differently. It is soft: writes already in flight may pass it a little.
 * Deletes and compaction always pass, so space can be freed.
 */
static bool within_quota(struct conn *c, const struct proto_req *req)
{
	struct server *s = c->srv;
	uint64_t size = mvcc_size_bytes(s->node->fsm.mvcc);
	char msg[200];
	bool grows = req->op == PROTO_OP_PUT ||
	             (req->op == PROTO_OP_TXN && (has_put(req->succ, req->n_succ) ||
	                                          has_put(req->fail, req->n_fail)));

	if (!grows || s->cfg->quota_bytes == 0 || size < s->cfg->quota_bytes)
		return true;
	snprintf(msg, sizeof msg,
	         "keyspace is %llu bytes, over the quota of %llu: delete keys and "
	         "compact, then retry",
	         (unsigned long long)size, (unsigned long long)s->cfg->quota_bytes);
	conn_error(c, req->id, req->op, CAIRN_ENOSPACE, msg, 0);
	return false;
}

static void dispatch(struct conn *c, const struct proto_req *req,
                     const uint8_t *payload, uint32_t len)
{
	struct server *s = c->srv;
	struct exec_hdr h;
	bool leads = raft_state(&s->node->raft) == RAFT_LEADER;

	switch (req->op) {
	case PROTO_OP_HELLO:
		answer_hello(c, req);
		return;
	case PROTO_OP_STATUS:
	case PROTO_OP_MEMBERS:
		answer_info(c, req->id, req->op, req->op == PROTO_OP_STATUS);
		return;
	case PROTO_OP_RANGE:
		if (req->serializable) {
			h = fsm_header(&s->node->fsm);
			exec_read(s->node->fsm.mvcc, req, &h, conn_answer_begin(c));
			conn_answer_end(c, req->id, req->op);
		} else if (leads) {
			node_read(s->node, c, payload, len, req->id, req->op);
		} else {
			not_leader(c, req);
		}
		return;
	case PROTO_OP_PUBLISH:
	case PROTO_OP_EVENTS:
		conn_error(c, req->id, req->op, CAIRN_EINVAL,
		           "this operation is not for clients", 0);
		return;
	case PROTO_OP_WATCH:
		watch_create(&s->watch, c, ++c->next_wid, req);
		return;
	case PROTO_OP_LEASE_LIST:
		lessor_answer(&s->node->lessor, c, req);
		return;
	case PROTO_OP_SNAPSHOT:
		answer_snapshot(c, req);
		return;
	case PROTO_OP_MEMBER_ADD:
	case PROTO_OP_MEMBER_REMOVE:
	case PROTO_OP_MEMBER_PROMOTE:
		if (leads)
			member_change(s->node, c, req);
		else
			not_leader(c, req);
		return;
	case PROTO_OP_LEASE_KEEPALIVE:
	case PROTO_OP_LEASE_TTL:
		if (leads)
			lessor_answer(&s->node->lessor, c, req);
		else
			not_leader(c, req);
		return;
	case PROTO_OP_WATCH_CANCEL:
		watch_cancel(&s->watch, c, req);
		return;
	case PROTO_OP_WATCH_PROGRESS:
		watch_progress(&s->watch, c, req);
		return;
	case PROTO_OP_AUTHENTICATE:
		authz_authenticate(s, c, req);
		return;
	case PROTO_OP_USER_LIST:
	case PROTO_OP_USER_GET:
	case PROTO_OP_ROLE_LIST:
	case PROTO_OP_ROLE_GET:
	case PROTO_OP_AUTH_STATUS:
		authz_answer_read(s, c, req);
		return;
	case PROTO_OP_USER_ADD:
	case PROTO_OP_USER_PASSWD:
	case PROTO_OP_AUTH_ENABLE:
		if (leads)
			authz_propose(s, c, req);
		else
			not_leader(c, req);
		return;
	default:
		if (!leads)
			not_leader(c, req);
		else if (!within_quota(c, req))
			return;
		else
			node_propose(s->node, c, payload, len, req->id, req->op);
		return;
	}
}

static void handle_frame(struct conn *c, const uint8_t *payload, uint32_t len)
{
	struct proto_req req;
	char msg[200];
	int rv;

	rv = proto_decode_req(payload, len, &req, msg, sizeof msg);
	if (rv == CAIRN_EPROTO) {
		conn_fail(c, req.id, req.op, rv, msg);
		return;
	}
	if (c->state == CONN_HANDSHAKE && (rv != 0 || req.op != PROTO_OP_HELLO)) {
		proto_req_free(&req);
		conn_fail(c, req.id, req.op, CAIRN_EPROTO,
		          "the connection must open with a HELLO request");
		return;
	}
	if (rv != 0) {
		conn_error(c, req.id, req.op, rv, msg, 0);
		return;
	}
	if (authz_check(c->srv, c, &req))
		dispatch(c, &req, payload, len);
	proto_req_free(&req);
}

/* ---- reading -------------------------------------------------------------- */

static void alloc_cb(uv_handle_t *h, size_t size, uv_buf_t *b)
{
	struct conn *c = h->data;
	uint8_t *p;
	size_t len;

	(void)size;
	if (channel_space(&c->ch, &c->in, READ_CHUNK, &p, &len) != 0) {
		*b = uv_buf_init(NULL, 0); /* read_cb gets UV_ENOBUFS */
		return;
	}
	*b = uv_buf_init((char *)p, (unsigned)(len > UINT32_MAX ? UINT32_MAX : len));
}

static void read_eof(struct conn *c)
{
	bool opened = c->ch.sec != NULL && secure_open(c->ch.sec);
	const char *why = channel_eof(&c->ch);
	char peer[64];
	char msg[128];

	if (why != NULL) {
		channel_peer_name(&c->tcp, peer, sizeof peer);
		if (opened) /* not a mere port probe */
			log_info("client %s: %s", peer, why);
		else
			log_debug("client %s: %s", peer, why);
		conn_close(c);
		return;
	}
	if (frame_pending(&c->in) == 0) {
		conn_close(c);
		return;
	}
	snprintf(msg, sizeof msg, "connection closed inside a frame (%zu bytes of it received)",
	         frame_pending(&c->in));
	conn_fail(c, 0, 0, CAIRN_EPROTO, msg);
}

/* Tells a plaintext client, in its own protocol, why it is refused. */
static void refuse_plaintext(struct conn *c, const char *msg)
{
	struct buf b = BUF_INIT;
	struct mp_writer w;
	size_t at = proto_frame_begin(&b);
	uv_buf_t ub;

	mp_writer_init(&w, &b);
	exec_error(&w, 0, PROTO_OP_HELLO, CAIRN_EAUTH, msg, 0, NULL);
	if (w.err == 0 &&
	    proto_frame_end(&b, at, PROTO_RESP_FRAME_MAX) == 0) {
		ub = uv_buf_init((char *)b.data, (unsigned)b.len);
		(void)uv_try_write((uv_stream_t *)&c->tcp, &ub, 1);
	}
	buf_free(&b);
}

/* The secure channel failed: log why, tell the client if it can hear it,
 * close. */
static void secure_refused(struct conn *c)
{
	char peer[64];

	channel_peer_name(&c->tcp, peer, sizeof peer);
	if (secure_plaintext_peer(c->ch.sec)) {
		log_warn("client %s: refused: it speaks plaintext; this member "
		         "requires the secure channel",
		         peer);
		refuse_plaintext(c, "this member requires the secure channel: "
		                    "give the client the cluster secret "
		                    "(CAIRN_SECRET_FILE, cairnctl --secret-file)");
	} else {
		log_warn("client %s: %s", peer, channel_errmsg(&c->ch));
		channel_last_words(&c->ch, (uv_stream_t *)&c->tcp);
	}
	conn_close(c);
}

/* A client opened the secure channel with a member run with --insecure. */
static void insecure_refused(struct conn *c)
{
	char peer[64];

	channel_peer_name(&c->tcp, peer, sizeof peer);
	log_warn("client %s: refused: it opens the secure channel, but this "
	         "member runs with --insecure (plaintext)",
	         peer);
	refuse_plaintext(c, "this member runs with --insecure: it speaks "
	                    "plaintext only");
	conn_close(c);
}

static void read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
	struct conn *c = st->data;
	const uint8_t *payload;
	uint32_t len;
	int rv;

	(void)b;
	if (nread == UV_EOF) {
		read_eof(c);
		return;
	}
	if (nread < 0) {
		log_debug("read from client: %s", uv_strerror((int)nread));
		conn_close(c);
		return;
	}
	rv = channel_commit(&c->ch, &c->in, (size_t)nread);
	if (rv != 0) {
		secure_refused(c);
		return;
	}
	if (channel_has_raw(&c->ch))
		mark_dirty(c); /* the handshake's reply */
	if (c->ch.sec == NULL && c->state == CONN_HANDSHAKE &&
	    frame_pending(&c->in) >= 4 &&
	    memcmp(c->in.in.data + c->in.pos, SECURE_MAGIC, 4) == 0) {
		insecure_refused(c);
		return;
	}
	while (c->state == CONN_HANDSHAKE || c->state == CONN_OPEN) {
		rv = frame_next(&c->in, &payload, &len);
		if (rv == 0)
			break;
		if (rv != 1) { /* CAIRN_ETOOBIG */
			conn_fail(c, 0, 0, CAIRN_ETOOBIG,
			          "frame larger than the 4 MiB request limit");
			break;
		}
		handle_frame(c, payload, len);
	}
}

static void accept_cb(uv_stream_t *listener, int status)
{
	struct server *s = listener->data;
	struct conn *c;

	if (status != 0) {
		log_warn("accept: %s", uv_strerror(status));
		return;
	}
	c = calloc(1, sizeof *c);
	if (c == NULL) {
		log_error("accept: out of memory");
		return;
	}
	c->srv = s;
	c->refs = 1; /* the handle's */
	c->state = CONN_HANDSHAKE;
	frame_reader_init(&c->in, PROTO_REQ_FRAME_MAX);
	if (channel_init(&c->ch, s->cfg->insecure ? NULL : s->cfg->secret,
	                 true) != 0) {
		log_error("accept: out of memory");
		free(c);
		return;
	}
	uv_tcp_init(s->loop, &c->tcp);
	c->tcp.data = c;
	s->open_handles++;
	c->next = s->conns;
	if (s->conns != NULL)
		s->conns->prev = c;
	s->conns = c;
	if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
		conn_close(c);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	if (uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) != 0) {
		conn_close(c);
		return;
	}
	c->reading = true;
}

int server_start(struct server *s, uv_loop_t *loop, struct node *node,
                 const struct config *cfg, char *err, size_t len)
{
	struct sockaddr_in addr;
	char host[CONFIG_ADDR_LEN];
	char *colon;
	int rv;

	memset(s, 0, sizeof *s);
	s->loop = loop;
	s->node = node;
	s->cfg = cfg;
	snprintf(host, sizeof host, "%s", cfg->listen_client);
	colon = strrchr(host, ':');
	*colon = '\0'; /* config checked the form */
	rv = uv_ip4_addr(host, atoi(colon + 1), &addr);
	uv_tcp_init(loop, &s->listener);
	s->listener.data = s;
	s->open_handles = 1;
	if (rv == 0)
		rv = uv_tcp_bind(&s->listener, (const struct sockaddr *)&addr, 0);
	if (rv == 0)
		rv = uv_listen((uv_stream_t *)&s->listener, 1024, accept_cb);
	if (rv != 0) {
		snprintf(err, len, "cannot listen for clients on %s: %s",
		         cfg->listen_client, uv_strerror(rv));
		uv_close((uv_handle_t *)&s->listener, NULL);
		return CAIRN_EIO;
	}
	uv_check_init(loop, &s->flush);
	s->flush.data = s;
	uv_check_start(&s->flush, flush_cb);
	s->open_handles++;
	watch_hub_init(&s->watch, loop, &node->fsm, cfg->watch_progress_ms);
	s->open_handles++;
	return 0;
}

static void handle_closed(uv_handle_t *h)
{
	struct server *s = h->data;

	if (--s->open_handles == 0 && s->on_closed != NULL)
		s->on_closed(s);
}

void server_stop(struct server *s, void (*cb)(struct server *s))
{
	struct conn *c;

	s->closing = true;
	s->on_closed = cb;
	for (c = s->conns; c != NULL; c = c->next)
		conn_close(c);
	uv_close((uv_handle_t *)&s->listener, handle_closed);
	uv_close((uv_handle_t *)&s->flush, handle_closed);
	s->watch.progress.data = s;
	watch_hub_close(&s->watch, handle_closed);
}
