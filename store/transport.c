/*
 * transport: Raft's peer connections through the secure channel (see
 * transport.h for the wire format and the contract).
 *
 * Each connection, outbound or inbound, is a struct pconn with an explicit
 * lifecycle (checked on every move):
 *
 *   outbound  DIALING --tcp connected--> HANDSHAKE --open--> RELAY
 *             DIALING --tcp connected, plaintext--> SENDING --written--> (tcp
 *                                                   handed to raft) CLOSING
 *   inbound   PREAMBLE --16 bytes--> HANDSHAKE --open--> IDENT --identity-->
 *             RELAY;  plaintext: PREAMBLE --> IDENT --identity--> (tcp handed
 *             to raft) CLOSING
 *   any       --failure, timeout, transport closing, EOF--> CLOSING
 *
 * In RELAY the pconn owns the TCP handle and its end of a socketpair; raft
 * owns the other end. Two directions, each with an accumulating buffer and
 * one write in flight: what raft writes is read into plain_out and sealed as
 * a whole when the previous network write completes (so a burst of small
 * messages becomes a few crypto frames); what the network brings is opened
 * into plain_in and written to raft's pipe likewise. A side is not read
 * while more than TRANSPORT_RELAY_HIGH bytes wait for the other.
 *
 * Failure modes: a wrong secret, a forged or cut frame, a bad preamble or
 * identity, a timeout, an I/O error or EOF on either side closes the whole
 * pconn; an outbound one not yet handed to raft fires raft's connect
 * callback with RAFT_NOCONNECTION (RAFT_CANCELED when the transport closes)
 * once its handles are closed. Raft sees a relayed connection end as EOF on
 * its stream and reconnects as it would over TCP.
 */
#include "transport.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buf.h"
#include "cairn.h"
#include "channel.h"
#include "log.h"
#include "secure.h"

#define READ_CHUNK (64u << 10)
#define ADDR_MAX 255
#define IDENT_HDR 12 /* 0x00, version, id (8), address length (2) */
#define NOTES 32

enum pc_state {
	PC_DIALING = 0,
	PC_SENDING,
	PC_PREAMBLE,
	PC_HANDSHAKE,
	PC_IDENT,
	PC_RELAY,
	PC_CLOSING,
	PC_NSTATES
};

struct transport;

struct pconn {
	struct transport *tr;
	struct pconn *prev;
	struct pconn *next;
	enum pc_state state;
	bool outbound;
	bool secure;
	struct raft_uv_connect *req; /* outbound, until its callback fired */
	raft_id peer_id; /* outbound: the target; inbound: the preamble's */
	char address[ADDR_MAX + 1]; /* outbound: the target; inbound: its own */
	char where[64];             /* the TCP peer, for messages */
	int status;                 /* for the connect callback */
	unsigned handles;           /* open handles */
	uv_tcp_t *tcp;              /* raft_malloc'd; NULL once raft has it */
	uv_pipe_t *raft_end;        /* raft_malloc'd; NULL once raft has it */
	uv_timer_t timer;
	uv_pipe_t pipe; /* the relay's end of the socketpair */
	bool pipe_open;
	uv_connect_t connect;
	uv_write_t net_write;
	uv_write_t local_write;
	bool net_writing;
	bool local_writing;
	bool net_reading;
	bool local_reading;
	struct secure sec;
	uint8_t pre[TRANSPORT_PREAMBLE_BYTES];
	size_t pre_got;
	uint8_t ident[IDENT_HDR + ADDR_MAX]; /* plaintext inbound */
	size_t ident_got;
	size_t ident_need;
	struct buf net_out;   /* ready for the network: raw or sealed */
	struct buf net_wr;    /* ... being written */
	struct buf plain_out; /* from raft, to seal */
	struct buf plain_in;  /* opened, for raft */
	struct buf local_wr;  /* ... being written to raft's pipe */
};

/* A log line per peer and TRANSPORT_LOG_EVERY_MS at most. */
struct note {
	uint64_t key;
	uint64_t at;
	unsigned quiet;
};

struct transport {
	struct raft_uv_transport *t;
	uv_loop_t *loop;
	raft_id id;
	char address[ADDR_MAX + 1];
	char bind[64];
	bool secure;
	uint8_t key[SECURE_KEY_BYTES];
	uv_tcp_t listener;
	bool listener_open;
	raft_uv_accept_cb accept_cb;
	struct pconn *conns;
	bool closing;
	raft_uv_transport_close_cb close_cb;
	struct note notes[NOTES];
};

/* ---- helpers ------------------------------------------------------------- */

static void put64(uint8_t *p, uint64_t v)
{
	int i;

	for (i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;
	int i;

	for (i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static int parse_addr(const char *s, struct sockaddr_in *sa)
{
	char host[64];
	char *colon;

	if (strlen(s) >= sizeof host)
		return -1;
	strcpy(host, s);
	colon = strrchr(host, ':');
	if (colon == NULL)
		return -1;
	*colon = '\0';
	return uv_ip4_addr(host, atoi(colon + 1), sa);
}

/* Logs at most once per TRANSPORT_LOG_EVERY_MS for one key. */
static void note(struct transport *tr, uint64_t key, int level, const char *fmt,
                 ...) __attribute__((format(printf, 4, 5)));

static void note(struct transport *tr, uint64_t key, int level, const char *fmt,
                 ...)
{
	uint64_t now = uv_now(tr->loop);
	struct note *n = &tr->notes[0];
	char line[512];
	va_list ap;
	size_t i;

	if (level > log_level)
		return;
	for (i = 0; i < NOTES; i++) {
		if (tr->notes[i].key == key) {
			n = &tr->notes[i];
			break;
		}
		if (tr->notes[i].at < n->at)
			n = &tr->notes[i]; /* the oldest, if key is new */
	}
	if (n->key == key && n->at != 0 &&
	    now - n->at < TRANSPORT_LOG_EVERY_MS) {
		n->quiet++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (n->key == key && n->quiet > 0)
		log_msg(level, "%s (and %u more times since)", line, n->quiet);
	else
		log_msg(level, "%s", line);
	n->key = key;
	n->at = now != 0 ? now : 1;
	n->quiet = 0;
}

/* ---- the pconn state machine --------------------------------------------- */

static const char *const pc_names[PC_NSTATES] = {
    [PC_DIALING] = "dialing",   [PC_SENDING] = "sending",
    [PC_PREAMBLE] = "preamble", [PC_HANDSHAKE] = "handshake",
    [PC_IDENT] = "ident",       [PC_RELAY] = "relay",
    [PC_CLOSING] = "closing",
};

#define B(s) (1u << (s))
static const unsigned pc_next[PC_NSTATES] = {
    [PC_DIALING] = B(PC_HANDSHAKE) | B(PC_SENDING) | B(PC_CLOSING),
    [PC_SENDING] = B(PC_CLOSING),
    [PC_PREAMBLE] = B(PC_HANDSHAKE) | B(PC_IDENT) | B(PC_CLOSING),
    [PC_HANDSHAKE] = B(PC_IDENT) | B(PC_RELAY) | B(PC_CLOSING),
    [PC_IDENT] = B(PC_RELAY) | B(PC_CLOSING),
    [PC_RELAY] = B(PC_CLOSING),
    [PC_CLOSING] = 0,
};
#undef B

static void pc_move(struct pconn *p, enum pc_state to)
{
	if (!(pc_next[p->state] & (1u << to))) {
		log_error("peer connection: illegal move %s -> %s",
		          pc_names[p->state], pc_names[to]);
		abort();
	}
	log_debug("peer connection %p (%s, member %llu): %s -> %s", (void *)p,
	          p->where, (unsigned long long)p->peer_id, pc_names[p->state],
	          pc_names[to]);
	p->state = to;
}

/* ---- closing ------------------------------------------------------------- */

static void tr_maybe_closed(struct transport *tr)
{
	raft_uv_transport_close_cb cb = tr->close_cb;

	if (!tr->closing || tr->listener_open || tr->conns != NULL ||
	    cb == NULL)
		return;
	tr->close_cb = NULL;
	cb(tr->t);
}

/* Every handle is closed: the connect callback (if still owed), then free. */
static void pconn_done(struct pconn *p)
{
	struct transport *tr = p->tr;
	struct raft_uv_connect *req = p->req;

	if (p->prev != NULL)
		p->prev->next = p->next;
	else
		tr->conns = p->next;
	if (p->next != NULL)
		p->next->prev = p->prev;
	if (p->secure)
		secure_close(&p->sec);
	buf_free(&p->net_out);
	buf_free(&p->net_wr);
	buf_free(&p->plain_out);
	buf_free(&p->plain_in);
	buf_free(&p->local_wr);
	free(p);
	if (req != NULL)
		req->cb(req, NULL,
		        tr->closing ? RAFT_CANCELED : RAFT_NOCONNECTION);
	tr_maybe_closed(tr);
}

static void handle_closed(struct pconn *p)
{
	if (--p->handles == 0)
		pconn_done(p);
}

static void on_closed(uv_handle_t *h)
{
	handle_closed(h->data);
}

/* The TCP and raft-end handles are raft_malloc'd (raft frees those it owns
 * with raft_free): ours go the same way. Their data is the pconn. */
static void on_heap_closed(uv_handle_t *h)
{
	struct pconn *p = h->data;

	raft_free(h);
	handle_closed(p);
}

/* Closes every handle the pconn still owns; pconn_done follows. */
static void pconn_close(struct pconn *p)
{
	if (p->state == PC_CLOSING)
		return;
	pc_move(p, PC_CLOSING);
	uv_close((uv_handle_t *)&p->timer, on_closed);
	if (p->tcp != NULL)
		uv_close((uv_handle_t *)p->tcp, on_heap_closed);
	if (p->pipe_open)
		uv_close((uv_handle_t *)&p->pipe, on_closed);
	if (p->raft_end != NULL)
		uv_close((uv_handle_t *)p->raft_end, on_heap_closed);
}

static const char *who(const struct pconn *p, char *buf, size_t len)
{
	if (p->outbound)
		snprintf(buf, len, "peer %llu at %.64s",
		         (unsigned long long)p->peer_id, p->address);
	else if (p->pre_got == TRANSPORT_PREAMBLE_BYTES)
		snprintf(buf, len, "peer connection from %s (member %llu)",
		         p->where, (unsigned long long)p->peer_id);
	else
		snprintf(buf, len, "peer connection from %s", p->where);
	return buf;
}

static void pconn_fail(struct pconn *p, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Logs why (rate-limited per peer), sends what the peer should hear if the
 * socket takes it at once, and closes. */
static void pconn_fail(struct pconn *p, int level, const char *fmt, ...)
{
	char what[400];
	char name[128];
	va_list ap;
	uv_buf_t b;

	if (p->state == PC_CLOSING)
		return;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	note(p->tr, p->peer_id << 1 | p->outbound, level, "%s: %s",
	     who(p, name, sizeof name), what);
	if (p->tcp != NULL && p->net_out.len > 0 && !p->net_writing) {
		b = uv_buf_init((char *)p->net_out.data,
		                (unsigned)p->net_out.len);
		(void)uv_try_write((uv_stream_t *)p->tcp, &b, 1);
	}
	pconn_close(p);
}

/* ---- writing ------------------------------------------------------------- */

static void flush_net(struct pconn *p);
static void flush_local(struct pconn *p);
static void hand_over_tcp(struct pconn *p);
static void on_local_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b);
static void alloc_local(uv_handle_t *h, size_t size, uv_buf_t *b);
static void on_net_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b);
static void alloc_net(uv_handle_t *h, size_t size, uv_buf_t *b);

static bool local_full(const struct pconn *p)
{
	return p->plain_out.len + p->net_out.len >= TRANSPORT_RELAY_HIGH;
}

static bool net_full(const struct pconn *p)
{
	return p->plain_in.len >= TRANSPORT_RELAY_HIGH;
}

static void on_net_written(uv_write_t *w, int status)
{
	struct pconn *p = w->data;

	p->net_writing = false;
	buf_reset(&p->net_wr);
	if (p->state == PC_CLOSING)
		return;
	if (status != 0) {
		pconn_fail(p, LOG_INFO, "write: %s", uv_strerror(status));
		return;
	}
	if (p->state == PC_SENDING && p->net_out.len == 0) {
		hand_over_tcp(p);
		return;
	}
	flush_net(p);
	if (p->state == PC_RELAY && !p->local_reading && !local_full(p) &&
	    uv_read_start((uv_stream_t *)&p->pipe, alloc_local,
	                  on_local_read) == 0)
		p->local_reading = true;
}

/* Seals what raft wrote (once the channel can) and writes everything ready,
 * unless a write is in flight. */
static void flush_net(struct pconn *p)
{
	uv_buf_t b;
	struct buf tmp;
	int rv;

	if (p->net_writing || p->state == PC_CLOSING)
		return;
	if (p->plain_out.len > 0 && secure_can_seal(&p->sec)) {
		rv = secure_seal(&p->sec, p->plain_out.data, p->plain_out.len,
		                 &p->net_out);
		if (rv != 0) {
			pconn_fail(p, LOG_WARN, "out of memory");
			return;
		}
		buf_reset(&p->plain_out);
	}
	if (p->net_out.len == 0)
		return;
	tmp = p->net_wr;
	p->net_wr = p->net_out;
	p->net_out = tmp;
	b = uv_buf_init((char *)p->net_wr.data, (unsigned)p->net_wr.len);
	rv = uv_write(&p->net_write, (uv_stream_t *)p->tcp, &b, 1,
	              on_net_written);
	if (rv != 0) {
		pconn_fail(p, LOG_INFO, "write: %s", uv_strerror(rv));
		return;
	}
	p->net_writing = true;
}

static void on_local_written(uv_write_t *w, int status)
{
	struct pconn *p = w->data;

	p->local_writing = false;
	buf_reset(&p->local_wr);
	if (p->state == PC_CLOSING)
		return;
	if (status != 0) {
		log_debug("peer %llu: raft's end of the relay: %s",
		          (unsigned long long)p->peer_id, uv_strerror(status));
		pconn_close(p);
		return;
	}
	flush_local(p);
	if (!p->net_reading && !net_full(p) &&
	    uv_read_start((uv_stream_t *)p->tcp, alloc_net, on_net_read) == 0)
		p->net_reading = true;
}

/* Writes what the network brought to raft's pipe, unless a write is in
 * flight. */
static void flush_local(struct pconn *p)
{
	struct buf tmp;
	uv_buf_t b;
	int rv;

	if (p->local_writing || p->plain_in.len == 0 || p->state != PC_RELAY)
		return;
	tmp = p->local_wr;
	p->local_wr = p->plain_in;
	p->plain_in = tmp;
	b = uv_buf_init((char *)p->local_wr.data, (unsigned)p->local_wr.len);
	rv = uv_write(&p->local_write, (uv_stream_t *)&p->pipe, &b, 1,
	              on_local_written);
	if (rv != 0) {
		pconn_close(p);
		return;
	}
	p->local_writing = true;
}

/* ---- the relay ----------------------------------------------------------- */

static void alloc_local(uv_handle_t *h, size_t size, uv_buf_t *b)
{
	struct pconn *p = h->data;

	(void)size;
	if (buf_reserve(&p->plain_out, READ_CHUNK) != 0) {
		*b = uv_buf_init(NULL, 0);
		return;
	}
	*b = uv_buf_init((char *)p->plain_out.data + p->plain_out.len,
	                 (unsigned)(p->plain_out.cap - p->plain_out.len));
}

static void on_local_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct pconn *p = s->data;

	(void)b;
	if (p->state == PC_CLOSING || n == 0)
		return;
	if (n < 0) { /* raft closed its end */
		log_debug("peer %llu: raft closed its end of the relay (%s)",
		          (unsigned long long)p->peer_id, uv_strerror((int)n));
		pconn_close(p);
		return;
	}
	p->plain_out.len += (size_t)n;
	flush_net(p);
	if (p->state == PC_RELAY && local_full(p)) {
		uv_read_stop((uv_stream_t *)&p->pipe);
		p->local_reading = false;
	}
}

/* A socketpair: one end for the relay, one for raft (in p->raft_end).
 * Returns 0 or -1 with p failed. */
static int start_relay(struct pconn *p)
{
	uv_loop_t *loop = p->tr->loop;
	int fds[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
		pconn_fail(p, LOG_WARN, "socketpair: %s", strerror(errno));
		return -1;
	}
	p->raft_end = raft_malloc(sizeof *p->raft_end);
	if (p->raft_end == NULL) {
		close(fds[0]);
		close(fds[1]);
		pconn_fail(p, LOG_WARN, "out of memory");
		return -1;
	}
	uv_pipe_init(loop, &p->pipe, 0);
	uv_pipe_init(loop, p->raft_end, 0);
	p->pipe.data = p;
	p->raft_end->data = p;
	p->pipe_open = true;
	p->handles += 2;
	if (uv_pipe_open(&p->pipe, fds[0]) != 0) {
		close(fds[0]);
		close(fds[1]);
		pconn_fail(p, LOG_WARN, "cannot open the relay's socketpair");
		return -1;
	}
	if (uv_pipe_open(p->raft_end, fds[1]) != 0) {
		close(fds[1]);
		pconn_fail(p, LOG_WARN, "cannot open the relay's socketpair");
		return -1;
	}
	if (uv_read_start((uv_stream_t *)&p->pipe, alloc_local,
	                  on_local_read) != 0) {
		pconn_fail(p, LOG_WARN, "cannot read the relay's socketpair");
		return -1;
	}
	p->local_reading = true;
	uv_timer_stop(&p->timer);
	pc_move(p, PC_RELAY);
	return 0;
}

/* Raft owns the end of the socketpair from now on. */
static uv_stream_t *give_raft_end(struct pconn *p)
{
	uv_stream_t *s = (uv_stream_t *)p->raft_end;

	p->raft_end = NULL;
	p->handles--;
	return s;
}

/* ---- outbound ------------------------------------------------------------ */

static int put_ident(struct transport *tr, struct buf *out)
{
	uint8_t hdr[IDENT_HDR];
	size_t len = strlen(tr->address);

	hdr[0] = 0;
	hdr[1] = TRANSPORT_VERSION;
	put64(hdr + 2, tr->id);
	hdr[10] = (uint8_t)len;
	hdr[11] = (uint8_t)(len >> 8);
	if (buf_append(out, hdr, sizeof hdr) != 0 ||
	    buf_append(out, tr->address, len) != 0)
		return CAIRN_ENOMEM;
	return 0;
}

static void put_preamble(struct transport *tr, uint8_t *p)
{
	memcpy(p, TRANSPORT_MAGIC, 4);
	p[4] = TRANSPORT_VERSION;
	p[5] = p[6] = p[7] = 0;
	put64(p + 8, tr->id);
}

/* Plaintext: the preamble and identity are written; raft takes the TCP
 * connection itself. */
static void hand_over_tcp(struct pconn *p)
{
	struct raft_uv_connect *req = p->req;
	uv_stream_t *s = (uv_stream_t *)p->tcp;

	p->tcp = NULL;
	p->handles--;
	if (p->outbound) {
		p->req = NULL;
		pconn_close(p);
		req->cb(req, s, 0);
	} else {
		raft_id id = p->peer_id;
		char address[ADDR_MAX + 1];
		struct transport *tr = p->tr;
		memcpy(address, p->address, sizeof address);
		uv_read_stop(s);
		pconn_close(p);
		tr->accept_cb(tr->t, id, address, s);
	}
}

/* Outbound, secure: the channel is open; send who we are and hand raft its
 * end of the relay. */
static void outbound_open(struct pconn *p)
{
	struct raft_uv_connect *req = p->req;
	struct buf ident = BUF_INIT;
	int rv;

	rv = put_ident(p->tr, &ident);
	if (rv == 0)
		rv = secure_seal(&p->sec, ident.data, ident.len, &p->net_out);
	buf_free(&ident);
	if (rv != 0) {
		pconn_fail(p, LOG_WARN, "out of memory");
		return;
	}
	flush_net(p);
	if (p->state == PC_CLOSING || start_relay(p) != 0)
		return;
	p->req = NULL;
	req->cb(req, give_raft_end(p), 0);
	flush_local(p);
}

static void on_connected(uv_connect_t *c, int status)
{
	struct pconn *p = c->data;
	struct transport *tr = p->tr;
	uint8_t pre[TRANSPORT_PREAMBLE_BYTES];
	int rv = 0;

	if (p->state == PC_CLOSING)
		return; /* canceled */
	if (status != 0) {
		pconn_fail(p, LOG_DEBUG, "connect: %s", uv_strerror(status));
		return;
	}
	uv_tcp_nodelay(p->tcp, 1);
	put_preamble(tr, pre);
	if (buf_append(&p->net_out, pre, sizeof pre) != 0)
		rv = CAIRN_ENOMEM;
	if (rv == 0 && p->secure) {
		rv = secure_start(&p->sec, &p->net_out);
		if (rv == 0 && uv_read_start((uv_stream_t *)p->tcp, alloc_net,
		                             on_net_read) != 0)
			rv = CAIRN_EIO;
		p->net_reading = rv == 0;
		pc_move(p, PC_HANDSHAKE);
	} else if (rv == 0) {
		rv = put_ident(tr, &p->net_out);
		pc_move(p, PC_SENDING);
	}
	if (rv != 0) {
		pconn_fail(p, LOG_WARN, "cannot start the handshake");
		return;
	}
	flush_net(p);
}

/* ---- inbound ------------------------------------------------------------- */

/* Inbound: the identity is complete at ident (IDENT_HDR + address bytes).
 * Returns 0 or -1 with p failed. */
static int check_ident(struct pconn *p, const uint8_t *ident, size_t len)
{
	raft_id id = get64(ident + 2);
	size_t alen = len - IDENT_HDR;

	if (ident[1] != TRANSPORT_VERSION) {
		pconn_fail(p, LOG_WARN,
		           "identity of version %u, this member %u", ident[1],
		           TRANSPORT_VERSION);
		return -1;
	}
	if (id != p->peer_id) {
		pconn_fail(
		    p, LOG_WARN,
		    "the preamble says member %llu but the authenticated "
		    "identity is member %llu: refused",
		    (unsigned long long)p->peer_id, (unsigned long long)id);
		return -1;
	}
	if (alen == 0 || memchr(ident + IDENT_HDR, 0, alen) != NULL) {
		pconn_fail(p, LOG_WARN, "malformed address in its identity");
		return -1;
	}
	memcpy(p->address, ident + IDENT_HDR, alen);
	p->address[alen] = '\0';
	return 0;
}

static size_t ident_size(const uint8_t *hdr)
{
	return IDENT_HDR + (size_t)(hdr[10] | hdr[11] << 8);
}

/* Inbound, secure: the identity is at the start of plain_in (maybe with
 * raft's first bytes behind it). */
static void inbound_ident(struct pconn *p)
{
	struct transport *tr = p->tr;
	size_t need;

	if (p->plain_in.len < IDENT_HDR)
		return;
	need = ident_size(p->plain_in.data);
	if (need > IDENT_HDR + ADDR_MAX || p->plain_in.data[0] != 0) {
		pconn_fail(p, LOG_WARN, "malformed identity");
		return;
	}
	if (p->plain_in.len < need ||
	    check_ident(p, p->plain_in.data, need) != 0)
		return;
	memmove(p->plain_in.data, p->plain_in.data + need,
	        p->plain_in.len - need);
	p->plain_in.len -= need;
	if (tr->closing || start_relay(p) != 0)
		return;
	tr->accept_cb(tr->t, p->peer_id, p->address, give_raft_end(p));
	flush_local(p);
}

/* The 16 cleartext bytes are in. Returns 0 or -1 with p failed. */
static int inbound_preamble(struct pconn *p)
{
	struct transport *tr = p->tr;
	uint32_t version = (uint32_t)p->pre[4] | (uint32_t)p->pre[5] << 8 |
	                   (uint32_t)p->pre[6] << 16 |
	                   (uint32_t)p->pre[7] << 24;

	if (memcmp(p->pre, TRANSPORT_MAGIC, 4) != 0) {
		p->pre_got = 0; /* its id means nothing */
		pconn_fail(p, LOG_WARN,
		           "not a cairn peer (it does not open with the peer "
		           "preamble; a client on the peer port?)");
		return -1;
	}
	if (version != TRANSPORT_VERSION) {
		pconn_fail(p, LOG_WARN,
		           "speaks peer protocol version %u, this member %u",
		           version, TRANSPORT_VERSION);
		return -1;
	}
	p->peer_id = get64(p->pre + 8);
	if (!tr->secure) {
		p->ident_need = IDENT_HDR;
		pc_move(p, PC_IDENT);
		return 0;
	}
	pc_move(p, PC_HANDSHAKE);
	return 0;
}

/* Plaintext inbound: identity bytes read so far. */
static void inbound_plain_ident(struct pconn *p)
{
	static const uint8_t zero = 0;

	if (p->ident_got < p->ident_need)
		return;
	if (p->ident_need == IDENT_HDR) {
		if (memcmp(p->ident, SECURE_MAGIC, 4) == 0) {
			/* one zero byte: its handshake reports plaintext */
			uv_buf_t b = uv_buf_init((char *)&zero, 1);
			(void)uv_try_write((uv_stream_t *)p->tcp, &b, 1);
			pconn_fail(
			    p, LOG_WARN,
			    "it opens the secure channel, but this member "
			    "runs with --insecure (plaintext)");
			return;
		}
		p->ident_need = ident_size(p->ident);
		if (p->ident[0] != 0 || p->ident_need > sizeof p->ident) {
			pconn_fail(p, LOG_WARN, "malformed identity");
			return;
		}
		if (p->ident_got < p->ident_need)
			return;
	}
	if (check_ident(p, p->ident, p->ident_need) == 0 && !p->tr->closing)
		hand_over_tcp(p);
}

/* ---- reading from the network -------------------------------------------- */

static void alloc_net(uv_handle_t *h, size_t size, uv_buf_t *b)
{
	struct pconn *p = h->data;
	uint8_t *room;
	size_t len;

	(void)size;
	*b = uv_buf_init(NULL, 0);
	switch (p->state) {
	case PC_PREAMBLE:
		*b = uv_buf_init((char *)p->pre + p->pre_got,
		                 (unsigned)(sizeof p->pre - p->pre_got));
		return;
	case PC_IDENT:
		if (!p->secure) {
			*b = uv_buf_init(
			    (char *)p->ident + p->ident_got,
			    (unsigned)(p->ident_need - p->ident_got));
			return;
		}
		__attribute__((fallthrough)); /* secure: the channel reads */
	case PC_HANDSHAKE:
	case PC_RELAY:
		if (secure_space(&p->sec, READ_CHUNK, &room, &len) == 0)
			*b = uv_buf_init((char *)room, (unsigned)len);
		return;
	default:
		return;
	}
}

/* End of file or an error from the network. */
static void net_ended(struct pconn *p, ssize_t n)
{
	const char *why = NULL;
	bool opened = p->secure && secure_open(&p->sec);

	if (n == UV_EOF && p->secure && p->state != PC_PREAMBLE)
		why = secure_eof(&p->sec);
	if ((p->state == PC_RELAY && why == NULL) ||
	    (p->state == PC_PREAMBLE && p->pre_got == 0)) { /* or a probe */
		log_debug("%s: connection closed (%s)", p->where,
		          uv_strerror((int)n));
		pconn_close(p);
		return;
	}
	pconn_fail(p, opened ? LOG_INFO : LOG_WARN, "%s",
	           why != NULL ? why : uv_strerror((int)n));
}

/* Secure states: bytes arrived in the channel. */
static void net_secure(struct pconn *p, size_t n)
{
	int rv = secure_commit(&p->sec, n, &p->net_out, &p->plain_in);

	if (rv != 0) {
		if (secure_plaintext_peer(&p->sec))
			pconn_fail(
			    p, LOG_WARN,
			    "it speaks plaintext (runs with --insecure); "
			    "this member requires the secure channel");
		else
			pconn_fail(p, LOG_WARN, "%s", secure_errmsg(&p->sec));
		return;
	}
	flush_net(p);
	if (p->state == PC_CLOSING || !secure_open(&p->sec))
		return;
	if (p->state == PC_HANDSHAKE && p->outbound) {
		outbound_open(p);
		return;
	}
	if (p->state == PC_HANDSHAKE)
		pc_move(p, PC_IDENT);
	if (p->state == PC_IDENT) {
		inbound_ident(p);
		return;
	}
	flush_local(p);
	if (net_full(p)) {
		uv_read_stop((uv_stream_t *)p->tcp);
		p->net_reading = false;
	}
}

static void on_net_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct pconn *p = s->data;

	(void)b;
	if (p->state == PC_CLOSING || n == 0)
		return;
	if (n < 0) {
		net_ended(p, n);
		return;
	}
	switch (p->state) {
	case PC_PREAMBLE:
		p->pre_got += (size_t)n;
		if (p->pre_got == sizeof p->pre)
			(void)inbound_preamble(p);
		return;
	case PC_IDENT:
		if (!p->secure) {
			p->ident_got += (size_t)n;
			inbound_plain_ident(p);
			return;
		}
		net_secure(p, (size_t)n);
		return;
	default:
		net_secure(p, (size_t)n);
		return;
	}
}

/* ---- connections --------------------------------------------------------- */

static void on_timeout(uv_timer_t *t)
{
	struct pconn *p = t->data;

	pconn_fail(p, LOG_WARN, "no handshake within %u ms (in state %s)",
	           TRANSPORT_HANDSHAKE_MS, pc_names[p->state]);
}

/* A new pconn with its timer and TCP handle set up, in the list. */
static struct pconn *pconn_new(struct transport *tr, bool outbound)
{
	struct pconn *p = calloc(1, sizeof *p);

	if (p == NULL)
		return NULL;
	p->tcp = raft_malloc(sizeof *p->tcp);
	if (p->tcp == NULL) {
		free(p);
		return NULL;
	}
	if (tr->secure &&
	    secure_init(&p->sec, outbound ? SECURE_CLIENT : SECURE_SERVER,
	                tr->key) != 0) {
		raft_free(p->tcp);
		free(p);
		return NULL;
	}
	p->tr = tr;
	p->outbound = outbound;
	p->secure = tr->secure;
	p->state = outbound ? PC_DIALING : PC_PREAMBLE;
	snprintf(p->where, sizeof p->where, "?");
	uv_timer_init(tr->loop, &p->timer);
	uv_tcp_init(tr->loop, p->tcp);
	p->timer.data = p;
	p->tcp->data = p;
	p->connect.data = p;
	p->net_write.data = p;
	p->local_write.data = p;
	p->handles = 2;
	p->next = tr->conns;
	if (tr->conns != NULL)
		tr->conns->prev = p;
	tr->conns = p;
	uv_timer_start(&p->timer, on_timeout, TRANSPORT_HANDSHAKE_MS, 0);
	return p;
}

static void on_incoming(uv_stream_t *l, int status)
{
	struct transport *tr = l->data;
	struct pconn *p;

	if (status != 0) {
		log_warn("accepting a peer connection: %s",
		         uv_strerror(status));
		return;
	}
	if (tr->closing)
		return;
	p = pconn_new(tr, false);
	if (p == NULL) {
		log_error("accepting a peer connection: out of memory");
		return;
	}
	if (uv_accept(l, (uv_stream_t *)p->tcp) != 0) {
		pconn_close(p);
		return;
	}
	channel_peer_name(p->tcp, p->where, sizeof p->where);
	uv_tcp_nodelay(p->tcp, 1);
	if (uv_read_start((uv_stream_t *)p->tcp, alloc_net, on_net_read) != 0) {
		pconn_close(p);
		return;
	}
	p->net_reading = true;
}

/* ---- the raft_uv_transport interface ------------------------------------- */

static int tr_init(struct raft_uv_transport *t, raft_id id, const char *address)
{
	struct transport *tr = t->impl;

	if (strlen(address) > ADDR_MAX) {
		snprintf(t->errmsg, sizeof t->errmsg, "address too long");
		return RAFT_NAMETOOLONG;
	}
	tr->id = id;
	strcpy(tr->address, address);
	return 0;
}

static int tr_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
	struct transport *tr = t->impl;
	struct sockaddr_in sa;
	const char *bind = tr->bind[0] != '\0' ? tr->bind : tr->address;
	int rv;

	tr->accept_cb = cb;
	if (parse_addr(bind, &sa) != 0) {
		snprintf(t->errmsg, sizeof t->errmsg, "bad peer address %.64s",
		         bind);
		return RAFT_INVALID;
	}
	uv_tcp_init(tr->loop, &tr->listener);
	tr->listener.data = tr;
	tr->listener_open = true;
	rv = uv_tcp_bind(&tr->listener, (const struct sockaddr *)&sa, 0);
	if (rv == 0)
		rv = uv_listen((uv_stream_t *)&tr->listener, 128, on_incoming);
	if (rv != 0) {
		snprintf(t->errmsg, sizeof t->errmsg,
		         "cannot listen for peers on %.64s: %s", bind,
		         uv_strerror(rv));
		return RAFT_IOERR;
	}
	return 0;
}

static int tr_connect(struct raft_uv_transport *t, struct raft_uv_connect *req,
                      raft_id id, const char *address, raft_uv_connect_cb cb)
{
	struct transport *tr = t->impl;
	struct sockaddr_in sa;
	struct pconn *p;

	if (strlen(address) > ADDR_MAX || parse_addr(address, &sa) != 0)
		return RAFT_NOCONNECTION;
	p = pconn_new(tr, true);
	if (p == NULL)
		return RAFT_NOMEM;
	p->peer_id = id;
	strcpy(p->address, address);
	snprintf(p->where, sizeof p->where, "%s", address);
	if (uv_tcp_connect(&p->connect, p->tcp, (const struct sockaddr *)&sa,
	                   on_connected) != 0) {
		pconn_close(p); /* no callback: req is not set */
		return RAFT_NOCONNECTION;
	}
	req->cb = cb;
	p->req = req;
	return 0;
}

static void on_listener_closed(uv_handle_t *h)
{
	struct transport *tr = h->data;

	tr->listener_open = false;
	tr_maybe_closed(tr);
}

static void tr_close(struct raft_uv_transport *t, raft_uv_transport_close_cb cb)
{
	struct transport *tr = t->impl;
	struct pconn *p;

	tr->closing = true;
	tr->close_cb = cb;
	if (tr->listener_open)
		uv_close((uv_handle_t *)&tr->listener, on_listener_closed);
	for (p = tr->conns; p != NULL; p = p->next)
		pconn_close(p);
	tr_maybe_closed(tr);
}

int transport_init(struct raft_uv_transport *t, uv_loop_t *loop,
                   const char *bind_address, const uint8_t *key)
{
	struct transport *tr = calloc(1, sizeof *tr);
	void *data = t->data;

	memset(t, 0, sizeof *t);
	t->data = data; /* raft_uv_init sets it too */
	if (tr == NULL)
		return RAFT_NOMEM;
	tr->t = t;
	tr->loop = loop;
	tr->secure = key != NULL;
	if (key != NULL)
		memcpy(tr->key, key, sizeof tr->key);
	snprintf(tr->bind, sizeof tr->bind, "%s",
	         bind_address != NULL ? bind_address : "");
	t->impl = tr;
	t->init = tr_init;
	t->listen = tr_listen;
	t->connect = tr_connect;
	t->close = tr_close;
	return 0;
}

void transport_free(struct raft_uv_transport *t)
{
	struct transport *tr = t->impl;

	if (tr == NULL)
		return;
	sodium_memzero(tr->key, sizeof tr->key);
	free(tr);
	t->impl = NULL;
}
