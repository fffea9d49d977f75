/*
 * cairn-faultproxy: a TCP proxy between the members of a cairn cluster that
 * injects network faults on command, for the fault-injection suite
 * (tests/fault/run.sh).
 *
 *   cairn-faultproxy --control IP:PORT --route ID=LISTEN,TARGET [--route ...]
 *
 * Each member's peer address in the cluster configuration (--initial-cluster,
 * or the address given to 'cairnctl member add') is a LISTEN address of this
 * proxy, and the member itself binds its --listen-peer, the route's TARGET.
 * The happy path of a connection: accept it on the route of member TO, read
 * libraft's handshake preamble to learn which member (FROM) dialled, connect
 * to TARGET, then copy bytes both ways, every chunk through the link rule of
 * the directed pair (FROM, TO). libraft sends each direction's messages on
 * the sender's own connection, so the rule of (FROM, TO) governs what FROM
 * says to TO; it is applied to both byte directions of such a connection.
 *
 * Rules (set over the control port, see below): none (heal), cut (close the
 * pair's connections and close new ones as soon as their preamble names FROM),
 * blackhole (keep connections, drop every byte), delay MS (each chunk is
 * delivered MS ms after it was read, in order) and slow BYTES_PER_SEC (each
 * chunk is delivered when a link of that rate would have finished sending
 * it). A rule change applies to the chunks still queued too: they are timed
 * again as if the new rule had held when they were read (a heal delivers
 * them at once, a blackhole drops them).
 *
 * Failure modes: a target that refuses or a connection that breaks closes the
 * whole pair of connections, as a broken network path would; bytes a side
 * sent before its end of file are still delivered (after their delay) before
 * the pair closes. A preamble we cannot parse closes the connection.
 * Memory is bounded: a side whose queued bytes (waiting or being written)
 * pass PAUSE_HIGH stops being read until they fall under PAUSE_LOW.
 *
 * Control: a text protocol on the control port, one command per line, one
 * reply line, "ok" or "error: WHY" (status sends one line of rules first):
 *   cut FROM TO | blackhole FROM TO | delay FROM TO MS | slow FROM TO BPS
 *   heal FROM TO | heal all | status | route ID LISTEN TARGET
 * FROM is a member id, TO a member id with a route, either may be '*' (every
 * member, also one that shows up later). Of the commands that cover a pair,
 * the latest decides: after "cut 1 *" and "heal 1 3", 1 reaches 3 only.
 * "route" adds a route at run time (a member added to the cluster).
 *
 * SIGTERM or SIGINT closes every handle, frees everything and exits 0.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <uv.h>

#define MAX_ROUTES 64
#define MAX_RULES 4096
#define READ_SIZE (64u << 10)
#define PAUSE_HIGH (4u << 20)
#define PAUSE_LOW (1u << 20)
#define PREAMBLE_MAX 4096u /* bytes read before the preamble must be whole */
#define CTL_LINE_MAX 512u
#define ADDR_LEN 64u
#define NS_PER_MS UINT64_C(1000000)
#define NS_PER_S UINT64_C(1000000000)

/* ---- logging ------------------------------------------------------------- */

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* One line on stderr, stamped like cairn-store's log lines and the harness's
 * schedule, so the three can be read side by side. */
static void say(const char *fmt, ...)
{
	struct timespec ts;
	struct tm tm;
	char stamp[32];
	va_list ap;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ldZ faultproxy: ", stamp, ts.tv_nsec / 1000000);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- the handshake preamble ---------------------------------------------- */

/*
 * Which member opened a peer connection, from the first bytes it sent. Two
 * transports are known; the proxy forwards their bytes untouched:
 * - cairn's own (store/transport.c), secure or plaintext: 16 cleartext
 *   bytes, "CRNP", uint32 version 1 and uint64 sender id, little-endian;
 * - libraft 0.15's TCP transport (src/uv_tcp_connect.c, encodeHandshake):
 *   little-endian uint64 protocol version (1), uint64 server id, uint64
 *   length of the address field, then the sender's address, NUL-terminated
 *   and padded to a multiple of 8 bytes.
 *
 * Returns the length of the preamble (> 0) and sets *from; 0 when more bytes
 * are needed; -1 when the bytes are no preamble this proxy knows.
 */
static uint64_t get_le(const uint8_t *b, unsigned n)
{
	uint64_t v = 0;
	unsigned j;

	for (j = 0; j < n; j++)
		v |= (uint64_t)b[j] << (8 * j);
	return v;
}

static ssize_t preamble_cairn(const uint8_t *b, size_t len, uint64_t *from)
{
	if (len < 16)
		return 0;
	if (get_le(b + 4, 4) != 1 || get_le(b + 8, 8) == 0)
		return -1;
	*from = get_le(b + 8, 8);
	return 16;
}

static ssize_t preamble_parse(const uint8_t *b, size_t len, uint64_t *from)
{
	uint64_t field[3];
	unsigned i;

	if (len >= 4 && memcmp(b, "CRNP", 4) == 0)
		return preamble_cairn(b, len, from);
	if (len < sizeof field)
		return 0;
	for (i = 0; i < 3; i++)
		field[i] = get_le(b + i * 8, 8);
	if (field[0] != 1 || field[1] == 0 || field[2] == 0 ||
	    field[2] % 8 != 0 || field[2] > PREAMBLE_MAX - sizeof field)
		return -1;
	if (len < sizeof field + field[2])
		return 0;
	*from = field[1];
	return (ssize_t)(sizeof field + field[2]);
}

/* ---- rules --------------------------------------------------------------- */

enum rule_kind {
	RULE_NONE = 0,
	RULE_CUT,
	RULE_BLACKHOLE,
	RULE_DELAY,
	RULE_SLOW
};

static const char *const rule_names[] = {
    [RULE_NONE] = "none",           [RULE_CUT] = "cut",
    [RULE_BLACKHOLE] = "blackhole", [RULE_DELAY] = "delay",
    [RULE_SLOW] = "slow",
};

/* What one command set for FROM -> TO; 0 stands for '*'. */
struct rule {
	uint64_t from;
	uint64_t to;
	enum rule_kind kind;
	uint64_t param; /* DELAY: ms; SLOW: bytes per second */
	uint64_t seq;   /* the command's order: the latest matching rule wins */
};

/* ---- the proxy's objects ------------------------------------------------- */

struct proxy;
struct pipe;

/* One chunk of bytes read from one side, queued for the other. */
struct chunk {
	uv_write_t req;
	struct half *half;
	struct chunk *next;
	uint64_t read_at; /* uv_hrtime() when it was read */
	uint64_t due;     /* uv_hrtime() at which to write it */
	size_t len;
	char data[];
};

/* One byte direction of a pipe: read from src, written to dst. */
struct half {
	struct pipe *pipe;
	uv_stream_t *src;
	uv_stream_t *dst;
	struct chunk *head; /* waiting for their due time, in read order */
	struct chunk *tail;
	size_t queued; /* bytes waiting or being written */
	unsigned writing;
	uint64_t next_free; /* SLOW: when the throttled link is free again */
	uv_timer_t timer;   /* wakes dispatch for the head's due time */
	bool paused;        /* reading src stopped: too much queued */
	bool eof;           /* src ended: close the pipe once drained */
};

/*
 * A pipe's lifecycle (checked on every move, see pipe_move):
 *
 *   PREAMBLE --preamble read, FROM may talk--> CONNECTING --connected--> OPEN
 *      |                                           |                      |
 *      +-- bad preamble, cut, EOF, error ----------+----------------------+
 *                                                  v
 *                                            CLOSING --handles closed--> freed
 */
enum pipe_state {
	PIPE_PREAMBLE = 0,
	PIPE_CONNECTING,
	PIPE_OPEN,
	PIPE_CLOSING,
	PIPE_NSTATES
};

static const char *const pipe_names[PIPE_NSTATES] = {
    [PIPE_PREAMBLE] = "preamble",
    [PIPE_CONNECTING] = "connecting",
    [PIPE_OPEN] = "open",
    [PIPE_CLOSING] = "closing",
};

#define B(s) (1u << (s))
static const unsigned pipe_next[PIPE_NSTATES] = {
    [PIPE_PREAMBLE] = B(PIPE_CONNECTING) | B(PIPE_CLOSING),
    [PIPE_CONNECTING] = B(PIPE_OPEN) | B(PIPE_CLOSING),
    [PIPE_OPEN] = B(PIPE_CLOSING),
    [PIPE_CLOSING] = 0,
};
#undef B

/* An accepted connection (in) and the one it opened to the target (out). */
struct pipe {
	struct proxy *p;
	struct pipe *prev;
	struct pipe *next;
	uint64_t serial;
	enum pipe_state state;
	uint64_t from; /* 0 until the preamble is read */
	uint64_t to;
	const struct sockaddr_in *target;
	uv_tcp_t in;
	uv_tcp_t out;
	uv_connect_t connect;
	struct half fwd;  /* in -> out: what FROM says to TO */
	struct half back; /* out -> in */
	unsigned open_handles;
	size_t pre_len;
	uint8_t pre[PREAMBLE_MAX]; /* last: pipe_new does not clear it */
};

struct route {
	struct proxy *p;
	uint64_t id;
	char listen[ADDR_LEN];
	char target[ADDR_LEN];
	struct sockaddr_in target_sa;
	uv_tcp_t server;
};

/* A connection on the control port. */
struct ctl {
	struct proxy *p;
	struct ctl *prev;
	struct ctl *next;
	uv_tcp_t tcp;
	char line[CTL_LINE_MAX];
	size_t len;
	bool closing;
};

struct ctl_reply {
	uv_write_t req;
	size_t len;
	char text[];
};

struct proxy {
	uv_loop_t loop;
	uv_tcp_t control;
	uv_signal_t sigterm;
	uv_signal_t sigint;
	struct route *routes[MAX_ROUTES];
	unsigned n_routes;
	struct rule rules[MAX_RULES];
	unsigned n_rules;
	uint64_t rule_seq;
	struct pipe *pipes;
	struct ctl *ctls;
	uint64_t serial;
	bool stopping;
	char control_addr[ADDR_LEN];
	char rbuf[READ_SIZE]; /* every read lands here first (one thread) */
};

/* ---- addresses and routes ------------------------------------------------ */

static int parse_addr(const char *s, struct sockaddr_in *sa)
{
	char host[ADDR_LEN];
	const char *colon = strrchr(s, ':');
	char *end;
	long port;

	if (colon == NULL || (size_t)(colon - s) >= sizeof host)
		return -1;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno != 0 || *end != '\0' || port < 1 || port > 65535)
		return -1;
	return uv_ip4_addr(host, (int)port, sa) == 0 ? 0 : -1;
}

static struct route *route_find(struct proxy *p, uint64_t id)
{
	unsigned i;

	for (i = 0; i < p->n_routes; i++)
		if (p->routes[i]->id == id)
			return p->routes[i];
	return NULL;
}

/* ---- rules --------------------------------------------------------------- */

static bool matches(uint64_t pattern, uint64_t id)
{
	return pattern == 0 || pattern == id;
}

/* The rule of the pair (from, to): the latest command that covers it. */
static struct rule rule_of(struct proxy *p, uint64_t from, uint64_t to)
{
	struct rule best = {from, to, RULE_NONE, 0, 0};
	unsigned i;

	for (i = 0; i < p->n_rules; i++)
		if (matches(p->rules[i].from, from) &&
		    matches(p->rules[i].to, to) && p->rules[i].seq > best.seq)
			best = p->rules[i];
	return best;
}

/* Whether a rule decides for some pair that (from, to) covers. */
static bool overlapped(const struct proxy *p, uint64_t from, uint64_t to)
{
	unsigned i;

	for (i = 0; i < p->n_rules; i++)
		if ((from == 0 || matches(p->rules[i].from, from)) &&
		    (to == 0 || matches(p->rules[i].to, to)))
			return true;
	return false;
}

/*
 * Records a command for FROM -> TO (0: '*'). The rules it covers are dropped
 * first (they can no longer decide anything), so there is at most one rule
 * per (from, to) pattern. A heal that nothing older covers needs no rule.
 */
static int rule_add(struct proxy *p, uint64_t from, uint64_t to,
                    enum rule_kind kind, uint64_t param)
{
	unsigned i = 0;

	while (i < p->n_rules) {
		if (matches(from, p->rules[i].from) &&
		    matches(to, p->rules[i].to))
			p->rules[i] = p->rules[--p->n_rules];
		else
			i++;
	}
	if (kind == RULE_NONE && !overlapped(p, from, to))
		return 0; /* nothing else decides for these pairs */
	if (p->n_rules == MAX_RULES)
		return -1;
	p->rules[p->n_rules++] =
	    (struct rule){from, to, kind, param, ++p->rule_seq};
	return 0;
}

/* ---- pipes: lifecycle ---------------------------------------------------- */

static void pipe_move(struct pipe *pp, enum pipe_state to)
{
	if (!(pipe_next[pp->state] & (1u << to))) {
		say("illegal pipe move %s -> %s", pipe_names[pp->state],
		    pipe_names[to]);
		abort();
	}
	pp->state = to;
}

static void half_free_queue(struct half *h)
{
	struct chunk *c;

	while ((c = h->head) != NULL) {
		h->head = c->next;
		h->queued -= c->len;
		free(c);
	}
	h->tail = NULL;
}

/* Every handle of a pipe has one of its halves as data. */
static void pipe_handle_closed(uv_handle_t *handle)
{
	struct half *h = handle->data;
	struct pipe *pp = h->pipe;

	if (--pp->open_handles > 0)
		return;
	if (pp->prev != NULL)
		pp->prev->next = pp->next;
	else
		pp->p->pipes = pp->next;
	if (pp->next != NULL)
		pp->next->prev = pp->prev;
	free(pp);
}

/* Closes both connections (pending writes complete with UV_ECANCELED before
 * the handles' close callbacks) and drops what was queued. */
static void pipe_close(struct pipe *pp, const char *why)
{
	if (pp->state == PIPE_CLOSING)
		return;
	if (pp->from != 0)
		say("%" PRIu64 "->%" PRIu64 " #%" PRIu64 " closed: %s",
		    pp->from, pp->to, pp->serial, why);
	pipe_move(pp, PIPE_CLOSING);
	half_free_queue(&pp->fwd);
	half_free_queue(&pp->back);
	uv_close((uv_handle_t *)&pp->in, pipe_handle_closed);
	uv_close((uv_handle_t *)&pp->out, pipe_handle_closed);
	uv_close((uv_handle_t *)&pp->fwd.timer, pipe_handle_closed);
	uv_close((uv_handle_t *)&pp->back.timer, pipe_handle_closed);
}

/* ---- pipes: moving bytes ------------------------------------------------- */

static void half_dispatch(struct half *h);

static void half_maybe_resume(struct half *h);

static void on_written(uv_write_t *req, int status)
{
	struct chunk *c = req->data;
	struct half *h = c->half;
	struct pipe *pp = h->pipe;

	h->queued -= c->len;
	h->writing--;
	free(c);
	if (pp->state == PIPE_CLOSING)
		return;
	if (status < 0) {
		pipe_close(pp, uv_strerror(status));
		return;
	}
	half_maybe_resume(h);
	if (h->eof && h->head == NULL && h->writing == 0)
		pipe_close(pp, "end of file");
}

static void on_due(uv_timer_t *t)
{
	half_dispatch(t->data);
}

/* Writes every chunk whose time has come, in order; arms the timer for the
 * next one. Nothing goes out before the pipe is OPEN. */
static void half_dispatch(struct half *h)
{
	struct pipe *pp = h->pipe;
	uint64_t now = uv_hrtime();
	struct chunk *c;
	uv_buf_t buf;
	int rv;

	if (pp->state != PIPE_OPEN)
		return;
	while ((c = h->head) != NULL && c->due <= now) {
		h->head = c->next;
		if (h->head == NULL)
			h->tail = NULL;
		buf = uv_buf_init(c->data, (unsigned)c->len);
		c->req.data = c;
		rv = uv_write(&c->req, h->dst, &buf, 1, on_written);
		if (rv != 0) {
			h->queued -= c->len;
			free(c);
			pipe_close(pp, uv_strerror(rv));
			return;
		}
		h->writing++;
	}
	if (c != NULL)
		uv_timer_start(&h->timer, on_due,
		               (c->due - now + NS_PER_MS - 1) / NS_PER_MS, 0);
}

/* When a chunk read now must be written, under rule r. */
static uint64_t chunk_due(struct half *h, const struct rule *r, size_t len,
                          uint64_t now)
{
	uint64_t start;

	switch (r->kind) {
	case RULE_DELAY:
		return now + r->param * NS_PER_MS;
	case RULE_SLOW:
		start = h->next_free > now ? h->next_free : now;
		h->next_free = start + (uint64_t)len * NS_PER_S / r->param;
		return h->next_free;
	default:
		return now;
	}
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

/* Queues n bytes read from h->src, as the pair's rule says. */
static void half_ingest(struct half *h, const char *data, size_t n)
{
	struct pipe *pp = h->pipe;
	struct rule r = rule_of(pp->p, pp->from, pp->to);
	struct chunk *c;

	if (r.kind == RULE_BLACKHOLE)
		return;
	if (r.kind == RULE_CUT) {
		pipe_close(pp, "cut");
		return;
	}
	c = malloc(sizeof *c + n);
	if (c == NULL) {
		pipe_close(pp, "out of memory");
		return;
	}
	memcpy(c->data, data, n);
	c->len = n;
	c->half = h;
	c->next = NULL;
	c->read_at = uv_hrtime();
	c->due = chunk_due(h, &r, n, c->read_at);
	if (h->tail != NULL)
		h->tail->next = c;
	else
		h->head = c;
	h->tail = c;
	h->queued += n;
	if (h->queued > PAUSE_HIGH && !h->paused) {
		uv_read_stop(h->src);
		h->paused = true;
	}
	half_dispatch(h);
}

/* Times the queued chunks again under the pair's current rule. */
static void half_retime(struct half *h)
{
	struct pipe *pp = h->pipe;
	struct rule r = rule_of(pp->p, pp->from, pp->to);
	uint64_t now = uv_hrtime();
	struct chunk *c;

	if (r.kind == RULE_BLACKHOLE) {
		half_free_queue(h);
		half_maybe_resume(h);
		return;
	}
	h->next_free = now;
	for (c = h->head; c != NULL; c = c->next)
		c->due = chunk_due(h, &r, c->len,
		                   r.kind == RULE_SLOW ? now : c->read_at);
	half_dispatch(h);
}

static void half_maybe_resume(struct half *h)
{
	if (!h->paused || h->queued >= PAUSE_LOW || h->eof)
		return;
	h->paused = false;
	if (uv_read_start(h->src, on_alloc, on_read) != 0)
		pipe_close(h->pipe, "cannot read again");
}

/* ---- pipes: reading ------------------------------------------------------ */

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
	struct half *h = handle->data;
	struct pipe *pp = h->pipe;

	(void)suggested;
	if (pp->state == PIPE_PREAMBLE) {
		buf->base = (char *)pp->pre + pp->pre_len;
		buf->len = PREAMBLE_MAX - pp->pre_len;
		return;
	}
	buf->base = pp->p->rbuf;
	buf->len = READ_SIZE;
}

static void on_connected(uv_connect_t *req, int status);

/* The preamble is whole: decide whether FROM may talk to TO, and dial. */
static void pipe_preamble_done(struct pipe *pp, uint64_t from)
{
	struct rule r;
	int rv;

	pp->from = from;
	r = rule_of(pp->p, from, pp->to);
	if (r.kind == RULE_CUT) {
		pipe_close(pp, "cut");
		return;
	}
	pipe_move(pp, PIPE_CONNECTING);
	say("%" PRIu64 "->%" PRIu64 " #%" PRIu64 " accepted (rule %s)", from,
	    pp->to, pp->serial, rule_names[r.kind]);
	pp->connect.data = pp;
	rv = uv_tcp_connect(&pp->connect, &pp->out,
	                    (const struct sockaddr *)pp->target, on_connected);
	if (rv != 0) {
		pipe_close(pp, uv_strerror(rv));
		return;
	}
	half_ingest(&pp->fwd, (const char *)pp->pre, pp->pre_len);
}

static void pipe_read_preamble(struct pipe *pp, size_t n)
{
	uint64_t from = 0;
	ssize_t len;

	pp->pre_len += n;
	len = preamble_parse(pp->pre, pp->pre_len, &from);
	if (len < 0) {
		say("->%" PRIu64 " #%" PRIu64
		    ": not a peer preamble; closed",
		    pp->to, pp->serial);
		pipe_close(pp, "bad preamble");
	} else if (len > 0) {
		pipe_preamble_done(pp, from);
	} else if (pp->pre_len == PREAMBLE_MAX) {
		pipe_close(pp, "preamble too long");
	}
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct half *h = s->data;
	struct pipe *pp = h->pipe;

	if (pp->state == PIPE_CLOSING || n == 0)
		return;
	if (n < 0) {
		if (n != UV_EOF) {
			pipe_close(pp, uv_strerror((int)n));
			return;
		}
		h->eof = true;
		uv_read_stop(s);
		if (pp->state != PIPE_OPEN ||
		    (h->head == NULL && h->writing == 0))
			pipe_close(pp, "end of file");
		return;
	}
	if (pp->state == PIPE_PREAMBLE)
		pipe_read_preamble(pp, (size_t)n);
	else
		half_ingest(h, buf->base, (size_t)n);
}

static void on_connected(uv_connect_t *req, int status)
{
	struct pipe *pp = req->data;

	if (pp->state == PIPE_CLOSING)
		return;
	if (status < 0) {
		pipe_close(pp, uv_strerror(status));
		return;
	}
	pipe_move(pp, PIPE_OPEN);
	uv_tcp_nodelay(&pp->out, 1);
	if (uv_read_start((uv_stream_t *)&pp->out, on_alloc, on_read) != 0) {
		pipe_close(pp, "cannot read the target");
		return;
	}
	half_dispatch(&pp->fwd);
}

/* ---- pipes: accepting ---------------------------------------------------- */

static void half_init(struct pipe *pp, struct half *h, uv_tcp_t *src,
                      uv_tcp_t *dst)
{
	memset(h, 0, sizeof *h);
	h->pipe = pp;
	h->src = (uv_stream_t *)src;
	h->dst = (uv_stream_t *)dst;
	src->data = h;
	uv_timer_init(&pp->p->loop, &h->timer);
	h->timer.data = h;
}

static struct pipe *pipe_new(struct route *rt)
{
	struct proxy *p = rt->p;
	struct pipe *pp = malloc(sizeof *pp);

	if (pp == NULL)
		return NULL;
	memset(pp, 0, offsetof(struct pipe, pre));
	pp->p = p;
	pp->serial = ++p->serial;
	pp->state = PIPE_PREAMBLE;
	pp->to = rt->id;
	pp->target = &rt->target_sa;
	uv_tcp_init(&p->loop, &pp->in);
	uv_tcp_init(&p->loop, &pp->out);
	half_init(pp, &pp->fwd, &pp->in, &pp->out);
	half_init(pp, &pp->back, &pp->out, &pp->in);
	pp->open_handles = 4;
	pp->next = p->pipes;
	if (p->pipes != NULL)
		p->pipes->prev = pp;
	p->pipes = pp;
	return pp;
}

static void on_accept(uv_stream_t *server, int status)
{
	struct route *rt = server->data;
	struct pipe *pp;

	if (status < 0) {
		say("route %" PRIu64 ": accept: %s", rt->id,
		    uv_strerror(status));
		return;
	}
	pp = pipe_new(rt);
	if (pp == NULL) {
		say("route %" PRIu64 ": out of memory", rt->id);
		return;
	}
	if (uv_accept(server, (uv_stream_t *)&pp->in) != 0 ||
	    uv_read_start((uv_stream_t *)&pp->in, on_alloc, on_read) != 0) {
		pipe_close(pp, "accept failed");
		return;
	}
	uv_tcp_nodelay(&pp->in, 1);
}

/* ---- control: applying commands ------------------------------------------ */

/* Closes the open connections of the pairs a cut now covers. */
static void cut_pipes(struct proxy *p, uint64_t from, uint64_t to)
{
	struct pipe *pp;

	for (pp = p->pipes; pp != NULL; pp = pp->next) /* closing frees later */
		if (pp->state != PIPE_CLOSING && pp->state != PIPE_PREAMBLE &&
		    matches(from, pp->from) && matches(to, pp->to))
			pipe_close(pp, "cut");
}

/* After a rule change: what is queued follows the new rules. */
static void retime_pipes(struct proxy *p)
{
	struct pipe *pp;

	for (pp = p->pipes; pp != NULL; pp = pp->next) {
		if (pp->state != PIPE_OPEN && pp->state != PIPE_CONNECTING)
			continue;
		half_retime(&pp->fwd);
		half_retime(&pp->back);
	}
}

/* Parses a member argument: '*' (*id = 0) or an id, which for a TO must have
 * a route. */
static int parse_member(struct proxy *p, const char *s, bool to, uint64_t *id,
                        char *err, size_t len)
{
	char *end;

	if (strcmp(s, "*") == 0) {
		*id = 0;
		return 0;
	}
	errno = 0;
	*id = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || *id == 0 || s[0] == '-') {
		snprintf(err, len, "'%s' is not a member id or '*'", s);
		return -1;
	}
	if (to && route_find(p, *id) == NULL) {
		snprintf(err, len, "no route for member %" PRIu64, *id);
		return -1;
	}
	return 0;
}

static int parse_number(const char *s, uint64_t *v, char *err, size_t len)
{
	char *end;

	errno = 0;
	*v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || *v == 0 || s[0] == '-') {
		snprintf(err, len, "'%s' is not a positive number", s);
		return -1;
	}
	return 0;
}

static int route_add(struct proxy *p, uint64_t id, const char *listen,
                     const char *target, char *err, size_t len);

static void id_text(uint64_t id, char *out, size_t len)
{
	if (id == 0)
		snprintf(out, len, "*");
	else
		snprintf(out, len, "%" PRIu64, id);
}

/* "status": the rules, one line, in no particular order:
 * "rules: 1>* cut, 1>3 none, 2>1 delay 100", or "rules: none". */
static void status_line(struct proxy *p, char *out, size_t len)
{
	char from[24], to[24];
	size_t used;
	unsigned i;
	struct rule *r;

	used =
	    (size_t)snprintf(out, len, "rules:%s", p->n_rules ? "" : " none");
	for (i = 0; i < p->n_rules && used < len; i++) {
		r = &p->rules[i];
		id_text(r->from, from, sizeof from);
		id_text(r->to, to, sizeof to);
		used += (size_t)snprintf(out + used, len - used, "%s %s>%s %s",
		                         i ? "," : "", from, to,
		                         rule_names[r->kind]);
		if (used < len &&
		    (r->kind == RULE_DELAY || r->kind == RULE_SLOW))
			used += (size_t)snprintf(out + used, len - used,
			                         " %" PRIu64, r->param);
	}
}

struct command {
	const char *name;
	enum rule_kind kind;
	int argc; /* arguments after the name */
};

static const struct command commands[] = {
    {"cut", RULE_CUT, 2},     {"blackhole", RULE_BLACKHOLE, 2},
    {"delay", RULE_DELAY, 3}, {"slow", RULE_SLOW, 3},
    {"heal", RULE_NONE, 2},
};

/* Runs one rule command; argv[0] is its name. */
static int run_rule(struct proxy *p, const struct command *cmd, char **argv,
                    int argc, char *err, size_t len)
{
	uint64_t from, to, param = 0;

	if (cmd->kind == RULE_NONE && argc == 2 &&
	    strcmp(argv[1], "all") == 0) {
		p->n_rules = 0;
		retime_pipes(p);
		return 0;
	}
	if (argc != cmd->argc + 1) {
		snprintf(err, len, "%s takes %d arguments", cmd->name,
		         cmd->argc);
		return -1;
	}
	if (parse_member(p, argv[1], false, &from, err, len) != 0 ||
	    parse_member(p, argv[2], true, &to, err, len) != 0)
		return -1;
	if (cmd->argc == 3 && parse_number(argv[3], &param, err, len) != 0)
		return -1;
	if (rule_add(p, from, to, cmd->kind, param) != 0) {
		snprintf(err, len, "more than %d rules", MAX_RULES);
		return -1;
	}
	if (cmd->kind == RULE_CUT)
		cut_pipes(p, from, to);
	retime_pipes(p);
	return 0;
}

/* "route ID LISTEN TARGET" */
static int run_route(struct proxy *p, char **argv, int argc, char *err,
                     size_t len)
{
	uint64_t id;

	if (argc != 4) {
		snprintf(err, len, "route takes ID LISTEN TARGET");
		return -1;
	}
	if (parse_number(argv[1], &id, err, len) != 0)
		return -1;
	return route_add(p, id, argv[2], argv[3], err, len);
}

/* Runs one command line; the reply (without its newline) goes to out. */
static void run_command(struct proxy *p, char *line, char *out, size_t len)
{
	char *argv[8];
	char err[256];
	int argc = 0;
	char *save = NULL;
	char *tok;
	size_t i;
	int rv = -1;

	for (tok = strtok_r(line, " \t\r", &save); tok != NULL && argc < 8;
	     tok = strtok_r(NULL, " \t\r", &save))
		argv[argc++] = tok;
	snprintf(err, sizeof err, "unknown command");
	if (argc == 0) {
		snprintf(err, sizeof err, "empty command");
	} else if (strcmp(argv[0], "status") == 0 && argc == 1) {
		status_line(p, out, len - 4);
		strcat(out, "\nok");
		return;
	} else if (strcmp(argv[0], "route") == 0) {
		rv = run_route(p, argv, argc, err, sizeof err);
	} else {
		for (i = 0; i < sizeof commands / sizeof commands[0]; i++)
			if (strcmp(argv[0], commands[i].name) == 0)
				rv = run_rule(p, &commands[i], argv, argc, err,
				              sizeof err);
	}
	if (rv == 0)
		snprintf(out, len, "ok");
	else
		snprintf(out, len, "error: %s", err);
}

/* ---- control: the connections -------------------------------------------- */

static void ctl_closed(uv_handle_t *h)
{
	struct ctl *c = h->data;

	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		c->p->ctls = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	free(c);
}

static void ctl_close(struct ctl *c)
{
	if (c->closing)
		return;
	c->closing = true;
	uv_close((uv_handle_t *)&c->tcp, ctl_closed);
}

static void ctl_written(uv_write_t *req, int status)
{
	(void)status;
	free(req->data);
}

static void ctl_reply(struct ctl *c, const char *text)
{
	size_t n = strlen(text);
	struct ctl_reply *r = malloc(sizeof *r + n + 1);
	uv_buf_t buf;

	if (r == NULL) {
		ctl_close(c);
		return;
	}
	memcpy(r->text, text, n);
	r->text[n] = '\n';
	r->len = n + 1;
	r->req.data = r;
	buf = uv_buf_init(r->text, (unsigned)r->len);
	if (uv_write(&r->req, (uv_stream_t *)&c->tcp, &buf, 1, ctl_written) !=
	    0) {
		free(r);
		ctl_close(c);
	}
}

static void ctl_line(struct ctl *c)
{
	char copy[CTL_LINE_MAX];
	char reply[8192];

	memcpy(copy, c->line, c->len + 1);
	run_command(c->p, c->line, reply, sizeof reply);
	say("control: %s -> %s", copy, reply);
	ctl_reply(c, reply);
}

static void ctl_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct ctl *c = h->data;

	(void)suggested;
	buf->base = c->p->rbuf;
	buf->len = READ_SIZE;
}

static void ctl_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct ctl *c = s->data;
	ssize_t i;

	if (n < 0) {
		ctl_close(c);
		return;
	}
	for (i = 0; i < n && !c->closing; i++) {
		if (buf->base[i] != '\n') {
			if (c->len + 1 >= CTL_LINE_MAX) {
				ctl_reply(c, "error: line too long");
				ctl_close(c);
				return;
			}
			c->line[c->len++] = buf->base[i];
			continue;
		}
		c->line[c->len] = '\0';
		ctl_line(c);
		c->len = 0;
	}
}

static void on_control(uv_stream_t *server, int status)
{
	struct proxy *p = server->data;
	struct ctl *c;

	if (status < 0)
		return;
	c = calloc(1, sizeof *c);
	if (c == NULL)
		return;
	c->p = p;
	uv_tcp_init(&p->loop, &c->tcp);
	c->tcp.data = c;
	c->next = p->ctls;
	if (p->ctls != NULL)
		p->ctls->prev = c;
	p->ctls = c;
	if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 ||
	    uv_read_start((uv_stream_t *)&c->tcp, ctl_alloc, ctl_read) != 0)
		ctl_close(c);
}

/* ---- setup and shutdown -------------------------------------------------- */

static int listen_on(struct proxy *p, uv_tcp_t *tcp, const char *addr,
                     uv_connection_cb cb, void *data, char *err, size_t len)
{
	struct sockaddr_in sa;
	int rv;

	uv_tcp_init(&p->loop, tcp); /* the caller closes it on failure */
	tcp->data = data;
	if (parse_addr(addr, &sa) != 0) {
		snprintf(err, len, "'%s' is not IPv4:PORT", addr);
		return -1;
	}
	rv = uv_tcp_bind(tcp, (const struct sockaddr *)&sa, 0);
	if (rv == 0)
		rv = uv_listen((uv_stream_t *)tcp, 128, cb);
	if (rv != 0) {
		snprintf(err, len, "cannot listen on %s: %s", addr,
		         uv_strerror(rv));
		return -1;
	}
	return 0;
}

static void route_closed(uv_handle_t *h)
{
	free(h->data);
}

/* Adds a route listening on listen for member id, forwarding to target. */
static int route_add(struct proxy *p, uint64_t id, const char *listen,
                     const char *target, char *err, size_t len)
{
	struct route *rt;

	if (route_find(p, id) != NULL) {
		snprintf(err, len, "member %" PRIu64 " has a route already",
		         id);
		return -1;
	}
	if (p->n_routes == MAX_ROUTES) {
		snprintf(err, len, "at most %d routes", MAX_ROUTES);
		return -1;
	}
	rt = calloc(1, sizeof *rt);
	if (rt == NULL) {
		snprintf(err, len, "out of memory");
		return -1;
	}
	rt->p = p;
	rt->id = id;
	snprintf(rt->listen, sizeof rt->listen, "%s", listen);
	snprintf(rt->target, sizeof rt->target, "%s", target);
	if (parse_addr(target, &rt->target_sa) != 0) {
		snprintf(err, len, "'%s' is not IPv4:PORT", target);
		free(rt);
		return -1;
	}
	if (listen_on(p, &rt->server, listen, on_accept, rt, err, len) != 0) {
		uv_close((uv_handle_t *)&rt->server, route_closed);
		return -1;
	}
	p->routes[p->n_routes++] = rt;
	say("route %" PRIu64 ": %s -> %s", id, listen, target);
	return 0;
}

/* --route ID=LISTEN,TARGET */
static int route_arg(struct proxy *p, const char *arg, char *err, size_t len)
{
	char copy[3 * ADDR_LEN];
	char *eq, *comma;
	uint64_t id;

	snprintf(copy, sizeof copy, "%s", arg);
	eq = strchr(copy, '=');
	comma = eq != NULL ? strchr(eq, ',') : NULL;
	if (comma == NULL) {
		snprintf(err, len, "--route '%s': expected ID=LISTEN,TARGET",
		         arg);
		return -1;
	}
	*eq = '\0';
	*comma = '\0';
	if (parse_number(copy, &id, err, len) != 0)
		return -1;
	return route_add(p, id, eq + 1, comma + 1, err, len);
}

static void on_signal(uv_signal_t *s, int signum)
{
	struct proxy *p = s->data;
	struct pipe *pp;
	struct ctl *c;
	unsigned i;

	if (p->stopping)
		return;
	say("received %s: stopping", signum == SIGTERM ? "SIGTERM" : "SIGINT");
	p->stopping = true;
	for (pp = p->pipes; pp != NULL; pp = pp->next)
		pipe_close(pp, "stopping");
	for (c = p->ctls; c != NULL; c = c->next)
		ctl_close(c);
	for (i = 0; i < p->n_routes; i++)
		uv_close((uv_handle_t *)&p->routes[i]->server, route_closed);
	p->n_routes = 0;
	uv_close((uv_handle_t *)&p->control, NULL);
	uv_close((uv_handle_t *)&p->sigterm, NULL);
	uv_close((uv_handle_t *)&p->sigint, NULL);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: cairn-faultproxy --control IP:PORT "
	           "--route ID=LISTEN,TARGET [--route ...]\n");
}

static int parse_args(struct proxy *p, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"control", required_argument, NULL, 'c'},
	    {"route", required_argument, NULL, 'r'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *control = NULL;
	char err[256];
	int ch;

	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			control = optarg;
			break;
		case 'r':
			if (route_arg(p, optarg, err, sizeof err) != 0) {
				fprintf(stderr, "cairn-faultproxy: %s\n", err);
				return 1;
			}
			break;
		case 'h':
			usage(stdout);
			return -1;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (control == NULL || optind != argc) {
		usage(stderr);
		return 2;
	}
	snprintf(p->control_addr, sizeof p->control_addr, "%s", control);
	if (listen_on(p, &p->control, control, on_control, p, err,
	              sizeof err) != 0) {
		fprintf(stderr, "cairn-faultproxy: control: %s\n", err);
		return 1;
	}
	return 0;
}

/* Closes what a failed start left open (route servers and the control
 * listener), so that the loop closes cleanly. */
static void close_on_failure(uv_handle_t *h, void *p)
{
	if (!uv_is_closing(h))
		uv_close(h, h->data != p ? route_closed : NULL);
}

int main(int argc, char **argv)
{
	struct proxy *p = calloc(1, sizeof *p);
	int rv;

	if (p == NULL)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	uv_loop_init(&p->loop);
	rv = parse_args(p, argc, argv);
	if (rv == 0) {
		uv_signal_init(&p->loop, &p->sigterm);
		uv_signal_init(&p->loop, &p->sigint);
		p->sigterm.data = p->sigint.data = p;
		uv_signal_start(&p->sigterm, on_signal, SIGTERM);
		uv_signal_start(&p->sigint, on_signal, SIGINT);
		say("control on %s, %u routes: ready", p->control_addr,
		    p->n_routes);
		uv_run(&p->loop, UV_RUN_DEFAULT);
	} else {
		uv_walk(&p->loop, close_on_failure, p);
		uv_run(&p->loop, UV_RUN_DEFAULT);
	}
	if (uv_loop_close(&p->loop) != 0) {
		say("handles left open at exit");
		rv = 1;
	}
	free(p);
	return rv < 0 ? 0 : rv;
}
