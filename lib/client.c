/*
 * client: libcairn's client, async core on a libuv loop with a sync shell.
 *
 * The happy path: cairn_submit() validates and encodes the operation once
 * (everything but id, op, cid, seq and ack, which are written per send), puts
 * it in the window and, when the link is READY, appends its frame to the
 * link's output buffer; a prepare handle writes the buffer once per loop
 * iteration. Answers are matched by id, decoded into a cairn_result and handed
 * to the callback. The sync API runs the same core on a private loop until the
 * call's callback fired.
 *
 * Failure modes (the policy is described in client.h): a routing error or a
 * lost link closes the link; the window's requests stay and are resent on the
 * next link. A request's deadline timer completes it with the last retryable
 * error. cairn_close() cancels what is left with CAIRN_ECANCELED.
 * Membership changes (MEMBER_ADD, _REMOVE, _PROMOTE) go to the leader like
 * linearizable reads but are never resent once they went out: a change on a
 * lost link fails with CAIRN_EINDETERMINATE (from the deadline timer), and
 * of the store's answers only ENOTLEADER and ENOLEADER are retried.
 *
 * Reentrancy: user callbacks may submit or close. Nothing is freed while a
 * callback runs: the client and its connections are released in libuv close
 * callbacks, and every loop that calls back checks 'dead'/'closing' after.
 */
#include "client.h"

#include <assert.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mp.h"
#include "proto.h"
#include "result.h"
#include "secret.h"

#define READ_CHUNK (64u << 10)
/* id, op, cid, seq, ack and the map header, generously. */
#define FRAME_OVERHEAD 128u

static void trace_msg(const struct cairn_client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define TRACE(c, ...)                                                          \
	do {                                                                   \
		if ((c)->trace)                                                \
			trace_msg((c), __VA_ARGS__);                           \
	} while (0)

static void trace_msg(const struct cairn_client *c, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	fprintf(stderr, "cairn client %016" PRIx64 ": %s\n", c->cid, line);
}

static int set_err(struct cairn_client *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records the message of a failed call; returns code. */
static int set_err(struct cairn_client *c, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->errmsg, sizeof c->errmsg, fmt, ap);
	va_end(ap);
	return code;
}

/* ---- the link state machine ---------------------------------------------- */

static const char *const link_names[LINK_NSTATES] = {
    [LINK_IDLE] = "idle",       [LINK_CONNECTING] = "connecting",
    [LINK_HELLO] = "hello",     [LINK_READY] = "ready",     [LINK_AUTH] = "auth",
    [LINK_BACKOFF] = "backoff", [LINK_CLOSED] = "closed",
};

#define B(s) (1u << (s))
static const unsigned link_next[LINK_NSTATES] = {
    [LINK_IDLE] = B(LINK_CONNECTING) | B(LINK_CLOSED),
    [LINK_CONNECTING] =
        B(LINK_HELLO) | B(LINK_BACKOFF) | B(LINK_IDLE) | B(LINK_CLOSED),
    [LINK_HELLO] = B(LINK_READY) | B(LINK_CONNECTING) | B(LINK_BACKOFF) |
                   B(LINK_IDLE) | B(LINK_CLOSED),
    [LINK_READY] = B(LINK_AUTH) | B(LINK_CONNECTING) | B(LINK_BACKOFF) |
                   B(LINK_IDLE) | B(LINK_CLOSED),
    [LINK_AUTH] = B(LINK_READY) | B(LINK_CONNECTING) | B(LINK_BACKOFF) |
                  B(LINK_IDLE) | B(LINK_CLOSED),
    [LINK_BACKOFF] = B(LINK_CONNECTING) | B(LINK_IDLE) | B(LINK_CLOSED),
    [LINK_CLOSED] = 0,
};
#undef B

static void link_move(struct cairn_client *c, enum link_state to)
{
	if (!(link_next[c->state] & (1u << to))) {
		fprintf(stderr, "libcairn: illegal connection move %s -> %s\n",
		        link_names[c->state], link_names[to]);
		abort();
	}
	TRACE(c, "link %s -> %s (endpoint %s)", link_names[c->state],
	      link_names[to], c->eps[c->ep].name);
	c->state = to;
}

/* ---- endpoints ----------------------------------------------------------- */

static bool parse_port(const char *s, size_t len, int *port)
{
	size_t i;
	long v = 0;

	if (len == 0 || len > 5)
		return false;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*port = (int)v;
	return v >= 1 && v <= 65535;
}

/* Splits "host:port" or "[v6]:port"; host is copied into host (NUL-ended). */
static bool split_host_port(const char *s, size_t len, char *host,
                            size_t hostlen, bool *v6, int *port)
{
	const char *end = s + len;
	const char *h = s;
	const char *colon;
	size_t hlen;

	*v6 = len > 0 && s[0] == '[';
	if (*v6) {
		const char *close = memchr(s, ']', len);
		if (close == NULL || close + 1 >= end || close[1] != ':')
			return false;
		h = s + 1;
		hlen = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = memchr(s, ':', len);
		if (colon == NULL ||
		    memchr(colon + 1, ':', (size_t)(end - colon - 1)))
			return false; /* IPv6 needs brackets */
		hlen = (size_t)(colon - s);
	}
	if (hlen == 0 || hlen >= hostlen)
		return false;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	return parse_port(colon + 1, (size_t)(end - colon - 1), port);
}

static int parse_endpoint(const char *s, size_t len, struct endpoint *ep,
                          char *err, size_t errlen)
{
	char host[64];
	bool v6;
	int port;
	int rv;

	if (len > 7 && memcmp(s, "http://", 7) == 0) {
		s += 7;
		len -= 7;
	}
	if (len == 0 || len >= sizeof ep->name) {
		snprintf(err, errlen, "endpoint '%.*s': %s", (int)len, s,
		         len == 0 ? "empty" : "too long");
		return CAIRN_EINVAL;
	}
	memcpy(ep->name, s, len);
	ep->name[len] = '\0';
	if (!split_host_port(s, len, host, sizeof host, &v6, &port)) {
		snprintf(
		    err, errlen,
		    "endpoint '%s': expected host:port with a port in 1-65535",
		    ep->name);
		return CAIRN_EINVAL;
	}
	if (!v6 && strcmp(host, "localhost") == 0)
		strcpy(host, "127.0.0.1");
	if (v6)
		rv = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ep->addr);
	else
		rv = uv_ip4_addr(host, port, (struct sockaddr_in *)&ep->addr);
	if (rv != 0) {
		snprintf(
		    err, errlen,
		    "endpoint '%s': host must be an IPv4 address, [IPv6] or "
		    "localhost",
		    ep->name);
		return CAIRN_EINVAL;
	}
	return 0;
}

static const char *trim(const char *s, const char *end, size_t *len)
{
	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	*len = (size_t)(end - s);
	return s;
}

static int parse_endpoints(struct cairn_client *c, const char *list, char *err,
                           size_t errlen)
{
	const char *p = list;
	const char *comma;
	const char *s;
	size_t len;
	unsigned n = 1;
	int rv;

	if (list == NULL || *list == '\0') {
		snprintf(err, errlen, "no endpoints given");
		return CAIRN_EINVAL;
	}
	for (s = list; *s; s++)
		n += *s == ',';
	if (n > CLIENT_MAX_ENDPOINTS) {
		snprintf(err, errlen, "%u endpoints given, at most %u", n,
		         CLIENT_MAX_ENDPOINTS);
		return CAIRN_EINVAL;
	}
	c->eps = calloc(n, sizeof *c->eps);
	if (c->eps == NULL) {
		snprintf(err, errlen, "out of memory");
		return CAIRN_ENOMEM;
	}
	for (c->n_eps = 0; c->n_eps < n; c->n_eps++, p = comma + 1) {
		comma = strchr(p, ',');
		if (comma == NULL)
			comma = p + strlen(p);
		s = trim(p, comma, &len);
		rv = parse_endpoint(s, len, &c->eps[c->n_eps], err, errlen);
		if (rv != 0)
			return rv;
	}
	return 0;
}

static int endpoint_of(const struct cairn_client *c, uint64_t member_id)
{
	unsigned i;

	for (i = 0; member_id != 0 && i < c->n_eps; i++)
		if (c->eps[i].member_id == member_id)
			return (int)i;
	return -1;
}

/* Where to go after the current endpoint: the leader's if known, else the
 * next one whose member could be the leader. */
static unsigned next_endpoint(const struct cairn_client *c)
{
	int leader = endpoint_of(c, c->leader_id);
	unsigned i;
	unsigned e;

	if (c->opts.no_redirect)
		return 0;
	if (leader >= 0)
		return (unsigned)leader;
	for (i = 1; i <= c->n_eps; i++) {
		e = (c->ep + i) % c->n_eps;
		if (c->leader_id == 0 || c->eps[e].member_id == 0)
			return e;
	}
	return (c->ep + 1) % c->n_eps;
}

/* ---- the request window -------------------------------------------------- */

static int win_grow(struct req_window *w)
{
	size_t cap = w->cap ? w->cap * 2 : 64;
	struct req **slot = calloc(cap, sizeof *slot);
	size_t i;

	if (slot == NULL)
		return CAIRN_ENOMEM;
	for (i = 0; i < w->count; i++)
		slot[i] = w->slot[(w->head + i) & (w->cap - 1)];
	free(w->slot);
	w->slot = slot;
	w->cap = cap;
	w->head = 0;
	return 0;
}

/* Adds r and gives it the next id. */
static int win_push(struct req_window *w, struct req *r)
{
	if (w->count == w->cap && win_grow(w) != 0)
		return CAIRN_ENOMEM;
	r->id = w->base + w->count;
	w->slot[(w->head + w->count) & (w->cap - 1)] = r;
	w->count++;
	return 0;
}

/* The i-th slot from the oldest; may be NULL (answered). */
static struct req *win_at(const struct req_window *w, size_t i)
{
	return w->slot[(w->head + i) & (w->cap - 1)];
}

static struct req *win_get(const struct req_window *w, uint64_t id)
{
	if (id < w->base || id - w->base >= w->count)
		return NULL;
	return win_at(w, (size_t)(id - w->base));
}

static struct req *win_head(const struct req_window *w)
{
	return w->count > 0 ? win_at(w, 0) : NULL;
}

static void win_remove(struct req_window *w, uint64_t id)
{
	w->slot[(w->head + (size_t)(id - w->base)) & (w->cap - 1)] = NULL;
	while (w->count > 0 && w->slot[w->head] == NULL) {
		w->head = (w->head + 1) & (w->cap - 1);
		w->base++;
		w->count--;
	}
}

/* ---- checking and encoding operations ------------------------------------ */

/* Writes fields, or only counts them when w is NULL, so the count in a map
 * header can never disagree with what follows. */
struct fields {
	struct mp_writer *w;
	uint32_t n;
};

static void f_bin(struct fields *f, const char *k, const void *p, size_t len)
{
	f->n++;
	if (f->w != NULL) {
		mp_put_key(f->w, k);
		mp_put_bin(f->w, p, len);
	}
}

static void f_int(struct fields *f, const char *k, int64_t v)
{
	f->n++;
	if (f->w != NULL) {
		mp_put_key(f->w, k);
		mp_put_int(f->w, v);
	}
}

static void f_uint(struct fields *f, const char *k, uint64_t v)
{
	f->n++;
	if (f->w != NULL) {
		mp_put_key(f->w, k);
		mp_put_uint(f->w, v);
	}
}

static void f_str(struct fields *f, const char *k, const char *s)
{
	f->n++;
	if (f->w != NULL) {
		mp_put_key(f->w, k);
		mp_put_str(f->w, s, strlen(s));
	}
}

static void f_true(struct fields *f, const char *k)
{
	f->n++;
	if (f->w != NULL) {
		mp_put_key(f->w, k);
		mp_put_bool(f->w, true);
	}
}

static void put_txn(struct fields *f, const struct cairn_txn *t);

static bool is_lease_op(int type)
{
	return type >= CAIRN_OP_LEASE_GRANT && type <= CAIRN_OP_LEASE_LIST;
}

/* Membership changes: the leader answers once the change is committed. They
 * are not writes (no cid/seq: the store keeps no at-most-once record of
 * them), so they are never resent once they went out (see change_lost). */
static bool is_member_change(int type)
{
	return type == CAIRN_OP_MEMBER_ADD || type == CAIRN_OP_MEMBER_REMOVE ||
	       type == CAIRN_OP_MEMBER_PROMOTE;
}

/* GRANT {ttl, l: wanted id, absent for 0}; REVOKE, KEEPALIVE {l}; TTL {l,
 * keys}; LIST {}. */
static void put_lease_fields(struct fields *f, const struct cairn_op *op)
{
	if (op->type == CAIRN_OP_LEASE_LIST)
		return;
	if (op->type == CAIRN_OP_LEASE_GRANT)
		f_int(f, "ttl", op->ttl);
	if (op->type != CAIRN_OP_LEASE_GRANT || op->lease != 0)
		f_int(f, "l", op->lease);
	if (op->type == CAIRN_OP_LEASE_TTL && op->keys)
		f_true(f, "keys");
}

static bool is_auth_op(int type)
{
	return type >= CAIRN_OP_AUTHENTICATE && type <= CAIRN_OP_AUTH_STATUS;
}

static bool auth_op_has_role(int t);

/* Users, roles and auth: {user, pw, role, perm, k, e} as the op needs. */
static void put_auth_fields(struct fields *f, const struct cairn_op *op)
{
	int t = op->type;

	if (t >= CAIRN_OP_AUTHENTICATE && t <= CAIRN_OP_USER_REVOKE_ROLE &&
	    t != CAIRN_OP_USER_LIST)
		f_str(f, "user", op->user);
	if (t == CAIRN_OP_AUTHENTICATE || t == CAIRN_OP_USER_ADD ||
	    t == CAIRN_OP_USER_PASSWD)
		f_str(f, "pw", op->password);
	if (auth_op_has_role(t))
		f_str(f, "role", op->role);
	if (t == CAIRN_OP_ROLE_GRANT_PERMISSION)
		f_uint(f, "perm", (uint64_t)op->perm);
	if (t == CAIRN_OP_ROLE_GRANT_PERMISSION ||
	    t == CAIRN_OP_ROLE_REVOKE_PERMISSION) {
		f_bin(f, "k", op->key, op->key_len);
		if (op->end_len > 0)
			f_bin(f, "e", op->end, op->end_len);
	}
}

/* The fields of op besides id and op (and cid, seq, ack). */
static void put_fields(struct fields *f, const struct cairn_op *op)
{
	if (is_auth_op(op->type)) {
		put_auth_fields(f, op);
		return;
	}
	if (op->type == CAIRN_OP_TXN) {
		put_txn(f, op->txn);
		return;
	}
	if (op->type == CAIRN_OP_STATUS || op->type == CAIRN_OP_MEMBERS)
		return;
	if (is_lease_op(op->type)) {
		put_lease_fields(f, op);
		return;
	}
	if (op->type == CAIRN_OP_COMPACT) {
		f_int(f, "rev", op->revision);
		return;
	}
	if (is_member_change(op->type)) { /* {mid[, peer]} */
		f_uint(f, "mid", op->member_id);
		if (op->type == CAIRN_OP_MEMBER_ADD)
			f_str(f, "peer", op->peer_address);
		return;
	}
	f_bin(f, "k", op->key, op->key_len);
	if (op->end_len > 0)
		f_bin(f, "e", op->end, op->end_len);
	if (op->type == CAIRN_OP_PUT) {
		f_bin(f, "v", op->value, op->value_len);
		if (op->lease != 0)
			f_int(f, "l", op->lease);
	}
	if (op->prev_kv && op->type != CAIRN_OP_RANGE)
		f_true(f, "pkv");
	if (op->type != CAIRN_OP_RANGE)
		return;
	if (op->revision != 0)
		f_int(f, "rev", op->revision);
	if (op->limit != 0)
		f_int(f, "lim", op->limit);
	if (op->serializable)
		f_true(f, "ser");
	if (op->keys_only)
		f_true(f, "ko");
	if (op->count_only)
		f_true(f, "co");
}

/* A nested map: {op, fields...}. */
static void put_branch_op(struct mp_writer *w, const struct cairn_op *op)
{
	struct fields count = {NULL, 0};
	struct fields f = {w, 0};

	put_fields(&count, op);
	mp_put_map(w, count.n + 1);
	mp_put_key(w, "op");
	mp_put_uint(w, (uint64_t)op->type);
	put_fields(&f, op);
}

static void put_compare(struct mp_writer *w, const struct cairn_compare *cmp)
{
	mp_put_map(w, 4);
	mp_put_key(w, "k");
	mp_put_bin(w, cmp->key, cmp->key_len);
	mp_put_key(w, "t");
	mp_put_uint(w, (uint64_t)cmp->target);
	mp_put_key(w, "r");
	mp_put_uint(w, (uint64_t)cmp->result);
	if (cmp->target == CAIRN_CMP_VALUE) {
		mp_put_key(w, "v");
		mp_put_bin(w, cmp->value, cmp->value_len);
	} else {
		mp_put_key(w, "n");
		mp_put_int(w, cmp->number);
	}
}

static void put_branch(struct mp_writer *w, const char *k,
                       const struct cairn_op *ops, size_t n)
{
	size_t i;

	mp_put_key(w, k);
	mp_put_array(w, (uint32_t)n);
	for (i = 0; i < n; i++)
		put_branch_op(w, &ops[i]);
}

static void put_txn(struct fields *f, const struct cairn_txn *t)
{
	size_t i;

	f->n += 3;
	if (f->w == NULL)
		return;
	mp_put_key(f->w, "cmp");
	mp_put_array(f->w, (uint32_t)t->n_compare);
	for (i = 0; i < t->n_compare; i++)
		put_compare(f->w, &t->compare[i]);
	put_branch(f->w, "s", t->success, t->n_success);
	put_branch(f->w, "f", t->failure, t->n_failure);
}

static bool bytes_ok(const void *p, size_t len)
{
	return p != NULL || len == 0;
}

/* where names a transaction's operation in messages; "" at the top level. */
static int check_kv_op(struct cairn_client *c, const struct cairn_op *op,
                       const char *where)
{
	const char *sep = *where ? ": " : "";

	if (!bytes_ok(op->key, op->key_len) ||
	    !bytes_ok(op->end, op->end_len) ||
	    !bytes_ok(op->value, op->value_len))
		return set_err(c, CAIRN_EINVAL,
		               "%s%sNULL pointer with a length", where, sep);
	if (op->key_len == 0)
		return set_err(c, CAIRN_EINVAL, "%s%sthe key is empty", where,
		               sep);
	if (op->key_len > PROTO_MAX_KEY || op->end_len > PROTO_MAX_KEY)
		return set_err(
		    c, CAIRN_EINVAL, "%s%skey of %zu bytes, at most %u", where,
		    sep, op->key_len > op->end_len ? op->key_len : op->end_len,
		    PROTO_MAX_KEY);
	if (op->limit < 0 || op->revision < 0 || op->lease < 0)
		return set_err(
		    c, CAIRN_EINVAL,
		    "%s%slimit, revision and lease must not be negative", where,
		    sep);
	return 0;
}

static int check_branch(struct cairn_client *c, const struct cairn_op *ops,
                        size_t n, const char *name)
{
	char where[48];
	size_t i;
	int rv;

	if (n > PROTO_MAX_TXN_OPS)
		return set_err(c, CAIRN_ETOOMANYOPS,
		               "%zu %s operations, at most %u", n, name,
		               PROTO_MAX_TXN_OPS);
	if (n > 0 && ops == NULL)
		return set_err(c, CAIRN_EINVAL, "NULL %s branch", name);
	for (i = 0; i < n; i++) {
		snprintf(where, sizeof where, "%s operation %zu", name, i + 1);
		if (ops[i].type != CAIRN_OP_RANGE &&
		    ops[i].type != CAIRN_OP_PUT &&
		    ops[i].type != CAIRN_OP_DELETE)
			return set_err(
			    c, CAIRN_EINVAL,
			    "%s: only range, put and delete are allowed",
			    where);
		rv = check_kv_op(c, &ops[i], where);
		if (rv != 0)
			return rv;
	}
	return 0;
}

static int check_compare(struct cairn_client *c,
                         const struct cairn_compare *cmp, size_t i)
{
	if (!bytes_ok(cmp->key, cmp->key_len) || cmp->key_len == 0 ||
	    cmp->key_len > PROTO_MAX_KEY)
		return set_err(c, CAIRN_EINVAL, "compare %zu: bad key", i + 1);
	if (cmp->target < CAIRN_CMP_VALUE || cmp->target > CAIRN_CMP_MOD ||
	    cmp->result < CAIRN_CMP_EQUAL || cmp->result > CAIRN_CMP_GREATER)
		return set_err(c, CAIRN_EINVAL,
		               "compare %zu: unknown target or result", i + 1);
	if (cmp->target == CAIRN_CMP_VALUE &&
	    !bytes_ok(cmp->value, cmp->value_len))
		return set_err(c, CAIRN_EINVAL, "compare %zu: NULL value",
		               i + 1);
	return 0;
}

static int check_txn(struct cairn_client *c, const struct cairn_txn *t)
{
	size_t i;
	int rv;

	if (t == NULL)
		return set_err(c, CAIRN_EINVAL, "no transaction given");
	if (t->n_compare > PROTO_MAX_TXN_OPS)
		return set_err(c, CAIRN_ETOOMANYOPS, "%zu compares, at most %u",
		               t->n_compare, PROTO_MAX_TXN_OPS);
	if (t->n_compare > 0 && t->compare == NULL)
		return set_err(c, CAIRN_EINVAL, "NULL compares");
	for (i = 0; i < t->n_compare; i++) {
		rv = check_compare(c, &t->compare[i], i);
		if (rv != 0)
			return rv;
	}
	rv = check_branch(c, t->success, t->n_success, "success");
	if (rv == 0)
		rv = check_branch(c, t->failure, t->n_failure, "failure");
	return rv;
}

static int check_lease_op(struct cairn_client *c, const struct cairn_op *op)
{
	static const char *const names[] = {"grant", "revoke", "keep-alive",
	                                    "time-to-live", "list"};
	const char *name = names[op->type - CAIRN_OP_LEASE_GRANT];

	switch (op->type) {
	case CAIRN_OP_LEASE_GRANT:
		if (op->ttl < 1)
			return set_err(c, CAIRN_EINVAL,
			               "lease grant: the TTL must be at least "
			               "1 second, not %" PRId64,
			               op->ttl);
		if (op->lease < 0)
			return set_err(c, CAIRN_EINVAL,
			               "lease grant: the lease id must not be "
			               "negative (0 lets the store pick one)");
		return 0;
	case CAIRN_OP_LEASE_LIST:
		return 0;
	default:
		if (op->lease <= 0)
			return set_err(
			    c, CAIRN_EINVAL,
			    "lease %s: the lease id must be positive", name);
		return 0;
	}
}



static int check_member_op(struct cairn_client *c, const struct cairn_op *op)
{
	static const char *const names[] = {"add", "remove", "promote"};
	const char *name = names[op->type - CAIRN_OP_MEMBER_ADD];

	if (op->member_id == 0)
		return set_err(c, CAIRN_EINVAL,
		               "member %s: the member id must be positive",
		               name);
	if (op->type != CAIRN_OP_MEMBER_ADD)
		return 0;
	if (op->peer_address == NULL || op->peer_address[0] == '\0')
		return set_err(c, CAIRN_EINVAL,
		               "member add: no peer address given (IP:PORT)");
	if (strlen(op->peer_address) >= PROTO_MAX_ATTR ||
	    !proto_valid_address(op->peer_address))
		return set_err(c, CAIRN_EINVAL,
		               "member add: peer address '%.*s' is not an "
		               "IPv4 address and port like 10.0.0.4:2380",
		               PROTO_MAX_ATTR, op->peer_address);
	return 0;
}

static int check_name(struct cairn_client *c, const char *what,
                      const char *s, size_t max)
{
	if (s == NULL || *s == '\0')
		return set_err(c, CAIRN_EINVAL, "no %s given", what);
	if (strlen(s) > max)
		return set_err(c, CAIRN_EINVAL, "the %s is longer than %zu bytes",
		               what, max);
	return 0;
}

static bool auth_op_has_role(int t)
{
	return t == CAIRN_OP_USER_GRANT_ROLE || t == CAIRN_OP_USER_REVOKE_ROLE ||
	       (t >= CAIRN_OP_ROLE_ADD && t <= CAIRN_OP_ROLE_REVOKE_PERMISSION &&
	        t != CAIRN_OP_ROLE_LIST);
}

static int check_auth_op(struct cairn_client *c, const struct cairn_op *op)
{
	int rv = 0;
	int t = op->type;

	if (t >= CAIRN_OP_AUTHENTICATE && t <= CAIRN_OP_USER_REVOKE_ROLE &&
	    t != CAIRN_OP_USER_LIST)
		rv = check_name(c, "user name", op->user, PROTO_MAX_NAME);
	if (rv == 0 && (t == CAIRN_OP_AUTHENTICATE || t == CAIRN_OP_USER_ADD ||
	                t == CAIRN_OP_USER_PASSWD))
		rv = check_name(c, "password", op->password, PROTO_MAX_PASSWORD);
	if (rv == 0 && auth_op_has_role(t))
		rv = check_name(c, "role name", op->role, PROTO_MAX_NAME);
	if (rv == 0 && t == CAIRN_OP_ROLE_GRANT_PERMISSION &&
	    (op->perm < CAIRN_PERM_READ || op->perm > CAIRN_PERM_READWRITE))
		rv = set_err(c, CAIRN_EINVAL, "unknown permission type %d",
		             op->perm);
	if (rv == 0 && (t == CAIRN_OP_ROLE_GRANT_PERMISSION ||
	                t == CAIRN_OP_ROLE_REVOKE_PERMISSION))
		rv = check_kv_op(c, op, "permission");
	return rv;
}

static int check_op(struct cairn_client *c, const struct cairn_op *op)
{
	if (op != NULL && is_auth_op(op->type))
		return check_auth_op(c, op);
	if (op == NULL)
		return set_err(c, CAIRN_EINVAL, "no operation given");
	switch (op->type) {
	case CAIRN_OP_RANGE:
	case CAIRN_OP_PUT:
	case CAIRN_OP_DELETE:
		return check_kv_op(c, op, "");
	case CAIRN_OP_TXN:
		return check_txn(c, op->txn);
	case CAIRN_OP_STATUS:
	case CAIRN_OP_MEMBERS:
	case CAIRN_OP_SNAPSHOT:
		return 0;
	case CAIRN_OP_COMPACT:
		if (op->revision < 1)
			return set_err(
			    c, CAIRN_EINVAL,
			    "compact: the revision must be at least 1");
		return 0;
	case CAIRN_OP_LEASE_GRANT:
	case CAIRN_OP_LEASE_REVOKE:
	case CAIRN_OP_LEASE_KEEPALIVE:
	case CAIRN_OP_LEASE_TTL:
	case CAIRN_OP_LEASE_LIST:
		return check_lease_op(c, op);
	case CAIRN_OP_MEMBER_ADD:
	case CAIRN_OP_MEMBER_REMOVE:
	case CAIRN_OP_MEMBER_PROMOTE:
		return check_member_op(c, op);
	default:
		return set_err(c, CAIRN_EINVAL, "unknown operation type %d",
		               op->type);
	}
}

static void req_free(struct req *r)
{
	buf_free(&r->body);
	free(r);
}

/* A request holding op's encoded fields. */
static int req_new(struct cairn_client *c, const struct cairn_op *op,
                   struct req **out)
{
	struct mp_writer w;
	struct fields f = {&w, 0};
	struct req *r = calloc(1, sizeof *r);

	if (r == NULL)
		return set_err(c, CAIRN_ENOMEM, "out of memory");
	mp_writer_init(&w, &r->body);
	put_fields(&f, op);
	if (w.err != 0) {
		req_free(r);
		return set_err(c, CAIRN_ENOMEM, "out of memory");
	}
	if (r->body.len > PROTO_REQ_FRAME_MAX - FRAME_OVERHEAD) {
		set_err(c, CAIRN_ETOOBIG, "request of %zu bytes, at most %u",
		        r->body.len, PROTO_REQ_FRAME_MAX - FRAME_OVERHEAD);
		req_free(r);
		return CAIRN_ETOOBIG;
	}
	r->n_fields = f.n;
	r->type = op->type;
	r->write = proto_op_is_write((unsigned)op->type);
	/* The leader alone times leases: keep-alive and TTL are its own. A
	 * backup comes from the leader, which has applied every acknowledged
	 * write. Only the leader changes the membership. */
	r->leader = r->write ||
	            (op->type == CAIRN_OP_RANGE && !op->serializable) ||
	            op->type == CAIRN_OP_LEASE_KEEPALIVE ||
	            op->type == CAIRN_OP_LEASE_TTL ||
	            op->type == CAIRN_OP_SNAPSHOT || is_member_change(op->type) ||
	            (is_auth_op(op->type) && op->type != CAIRN_OP_AUTHENTICATE);
	if (op->type == CAIRN_OP_LEASE_GRANT) {
		r->lease = op->lease;
		r->ttl = op->ttl;
	}
	*out = r;
	return 0;
}

/* The lowest sequence number still waited on (the next one if none). */
static uint64_t current_ack(struct cairn_client *c)
{
	size_t i;
	struct req *r;

	if (!c->ack_dirty)
		return c->ack;
	c->ack = c->next_seq;
	for (i = 0; i < c->win.count; i++) {
		r = win_at(&c->win, i);
		if (r != NULL && r->write) {
			c->ack = r->seq;
			break;
		}
	}
	c->ack_dirty = false;
	return c->ack;
}

/* Appends r's frame to the link's output. */
static int frame_req(struct cairn_client *c, struct buf *out, struct req *r)
{
	size_t off = proto_frame_begin(out);
	struct mp_writer w;

	mp_writer_init(&w, out);
	mp_put_map(&w, r->n_fields + (r->write ? 5 : 2) + (c->token_len > 0));
	mp_put_key(&w, "id");
	mp_put_uint(&w, r->id);
	if (c->token_len > 0) {
		mp_put_key(&w, "tok");
		mp_put_bin(&w, c->token, c->token_len);
	}
	mp_put_key(&w, "op");
	mp_put_uint(&w, (uint64_t)r->type);
	if (r->write) {
		mp_put_key(&w, "cid");
		mp_put_uint(&w, c->cid);
		mp_put_key(&w, "seq");
		mp_put_uint(&w, r->seq);
		mp_put_key(&w, "ack");
		mp_put_uint(&w, current_ack(c));
	}
	mp_put_raw(&w, r->body.data, r->body.len);
	if (w.err != 0) {
		out->len = off;
		return w.err;
	}
	return proto_frame_end(out, off, PROTO_REQ_FRAME_MAX);
}

static int frame_hello(struct cairn_client *c, struct buf *out)
{
	size_t off = proto_frame_begin(out);
	struct mp_writer w;

	mp_writer_init(&w, out);
	mp_put_map(&w, 4);
	mp_put_key(&w, "id");
	mp_put_uint(&w, 0);
	mp_put_key(&w, "op");
	mp_put_uint(&w, PROTO_OP_HELLO);
	mp_put_key(&w, "ver");
	mp_put_uint(&w, PROTO_VERSION);
	mp_put_key(&w, "cid");
	mp_put_uint(&w, c->cid);
	if (w.err != 0) {
		out->len = off;
		return w.err;
	}
	return proto_frame_end(out, off, PROTO_REQ_FRAME_MAX);
}

/* ---- completing requests ------------------------------------------------- */

static void handle_released(struct cairn_client *c);

/* Takes r out of the window and fires its callback with res (handed over). */
static void complete(struct cairn_client *c, struct req *r,
                     struct cairn_result *res)
{
	win_remove(&c->win, r->id);
	if (r->write && r->seq == c->ack)
		c->ack_dirty = true;
	if (c->win.count == 0)
		uv_timer_stop(&c->deadline_timer);
	if (res->type == 0)
		result_set_type(res, r->type);
	TRACE(c, "request %" PRIu64 " done: %s", r->id,
	      cairn_strerror(res->err));
	r->cb(c, res, r->arg);
	req_free(r);
}

static void complete_err(struct cairn_client *c, struct req *r, int err,
                         const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void complete_err(struct cairn_client *c, struct req *r, int err,
                         const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	complete(c, r, result_error(r->type, err, "%s", msg));
}

/* Fails every request in the window, oldest first, but none submitted by the
 * callbacks meanwhile (a callback that resubmits cannot make this spin). */
static void fail_all(struct cairn_client *c, int err, const char *msg)
{
	uint64_t end = c->win.base + c->win.count;
	struct req *r;

	while ((r = win_head(&c->win)) != NULL && r->id < end)
		complete_err(c, r, err, "%s", msg);
}

/* What failed, for the timeout message: endpoints failing since t. */
static void failures_since(const struct cairn_client *c, uint64_t t, char *out,
                           size_t len)
{
	size_t used = 0;
	unsigned i;
	int n;

	out[0] = '\0';
	for (i = 0; i < c->n_eps && used < len; i++) {
		if (c->eps[i].failed_at == 0 || c->eps[i].failed_at < t)
			continue;
		n = snprintf(out + used, len - used, "%s%s: %s",
		             used ? "; " : "", c->eps[i].name, c->eps[i].why);
		if (n < 0)
			break;
		used += (size_t)n;
	}
}

/*
 * A membership change that went out on a link which is gone, unanswered:
 * whether the leader got it is unknown. It is never resent (the store keeps
 * no at-most-once record of it: a change applied twice fails confusingly,
 * and a remove resent after a re-add would undo it); on_deadline fails it.
 * A change refused with ENOTLEADER or ENOLEADER counts as unsent again.
 */
static bool change_lost(const struct cairn_client *c, const struct req *r)
{
	return is_member_change(r->type) && r->gen != 0 &&
	       (c->conn == NULL || r->gen != c->conn->gen);
}

static void expire(struct cairn_client *c, struct req *r)
{
	bool sent = is_member_change(r->type) && r->gen != 0;
	char why[1024];

	failures_since(c, r->submitted, why, sizeof why);
	if (why[0] == '\0')
		snprintf(why, sizeof why, "waiting for %s", c->eps[c->ep].name);
	complete_err(c, r, r->last_err ? r->last_err : CAIRN_ETIMEDOUT,
	             "timed out after %u ms (%s)%s", c->opts.request_timeout_ms,
	             why,
	             sent ? "; the membership change may still be made: check "
	                    "the member list before retrying"
	                  : "");
}

/* Fails the membership changes lost with a link (see change_lost). */
static void fail_lost_changes(struct cairn_client *c)
{
	char why[1024];
	struct req *r;
	size_t i;

	for (;;) {
		for (i = 0, r = NULL; i < c->win.count; i++) {
			r = win_at(&c->win, i);
			if (r != NULL && change_lost(c, r))
				break;
			r = NULL;
		}
		if (r == NULL)
			return;
		failures_since(c, r->submitted, why, sizeof why);
		complete_err(c, r, CAIRN_EINDETERMINATE,
		             "the connection was lost before the answer%s%s%s; "
		             "the membership change may or may not be made: "
		             "check the member list before retrying",
		             why[0] ? " (" : "", why, why[0] ? ")" : "");
		if (c->closing)
			return;
	}
}

static void on_deadline(uv_timer_t *t);

/* Arms the timer for the oldest request. Deadlines grow with ids (one timeout
 * per client), so the oldest is always the first due. */
static void arm_deadline(struct cairn_client *c)
{
	struct req *head = win_head(&c->win);
	uint64_t now = uv_now(c->loop);

	if (head == NULL || uv_is_active((uv_handle_t *)&c->deadline_timer))
		return;
	uv_timer_start(&c->deadline_timer, on_deadline,
	               head->deadline > now ? head->deadline - now : 0, 0);
}

static void link_fail(struct cairn_client *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Nothing came back on the link since r went out on it. */
static bool link_silent(const struct cairn_client *c, const struct req *r)
{
	return (c->state == LINK_READY || c->state == LINK_AUTH) &&
	       c->conn != NULL && r->gen == c->conn->gen && c->conn->rx_frames == r->rx_mark;
}

static void on_deadline(uv_timer_t *t)
{
	struct cairn_client *c = t->data;
	uint64_t now = uv_now(c->loop);
	bool silent = false;
	struct req *r;

	fail_lost_changes(c);
	if (c->closing)
		return;
	while ((r = win_head(&c->win)) != NULL && r->deadline <= now) {
		silent |= link_silent(c, r);
		expire(c, r);
		if (c->closing)
			return;
	}
	if (silent && (c->state == LINK_READY || c->state == LINK_AUTH))
		link_fail(c, CAIRN_ETIMEDOUT, "no answer within %u ms",
		          c->opts.request_timeout_ms);
	arm_deadline(c);
}

/* ---- the link ------------------------------------------------------------ */

static void on_conn_closed(uv_handle_t *h)
{
	struct conn *conn = h->data;
	struct cairn_client *c = conn->c;

	frame_reader_close(&conn->fr);
	channel_close(&conn->ch);
	buf_free(&conn->out);
	buf_free(&conn->wbuf);
	free(conn);
	handle_released(c);
}

static void watches_unlink(struct cairn_client *c);

/* Closes the current connection, if any; its requests stay in the window and
 * count as unsent from now on (the next link has another generation); its
 * watches wait for the next link. */
static void link_drop(struct cairn_client *c)
{
	struct conn *conn = c->conn;
	struct req *r;
	size_t i;

	uv_timer_stop(&c->link_timer);
	if (conn == NULL)
		return;
	c->conn = NULL;
	conn->dead = true;
	uv_close((uv_handle_t *)&conn->tcp, on_conn_closed);
	watches_unlink(c);
	/* Membership changes in flight fail from the deadline timer, where
	 * calling back is safe. */
	for (i = 0; i < c->win.count; i++) {
		r = win_at(&c->win, i);
		if (r != NULL && r->gen == conn->gen &&
		    is_member_change(r->type)) {
			uv_timer_start(&c->deadline_timer, on_deadline, 0, 0);
			break;
		}
	}
}

/* Something needs a link: a request in the window or a live watch. */
static bool link_wanted(const struct cairn_client *c)
{
	return c->win.count > 0 || c->n_live > 0;
}

static uint64_t next_rand(struct cairn_client *c)
{
	c->rand ^= c->rand << 13;
	c->rand ^= c->rand >> 7;
	c->rand ^= c->rand << 17;
	return c->rand;
}

/* The next backoff, with up to 25% jitter so clients do not march in step. */
static unsigned backoff_delay(struct cairn_client *c)
{
	unsigned d = c->backoff_ms;

	c->backoff_ms = d * 3 / 2 > CLIENT_BACKOFF_MAX_MS
	                    ? CLIENT_BACKOFF_MAX_MS
	                    : d * 3 / 2;
	return d + (unsigned)(next_rand(c) % (d / 4 + 1));
}

static void link_connect(struct cairn_client *c, unsigned ep);
static void on_link_timer(uv_timer_t *t);

/* After the link was dropped: connect to ep now (if at_once and hops are
 * left), after a backoff, or not at all when nothing waits. */
static void link_retry(struct cairn_client *c, bool at_once, unsigned ep)
{
	if (!link_wanted(c)) {
		link_move(c, LINK_IDLE);
		return;
	}
	if (at_once && c->hops < c->n_eps) {
		c->hops++;
		link_connect(c, ep);
		return;
	}
	c->hops = 0;
	link_move(c, LINK_BACKOFF);
	uv_timer_start(&c->link_timer, on_link_timer, backoff_delay(c), 0);
}

static void note_failure(struct cairn_client *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Remembers why the current endpoint failed, for the requests' final error. */
static void note_failure(struct cairn_client *c, int code, const char *fmt, ...)
{
	struct endpoint *ep = &c->eps[c->ep];
	struct cairn_watch *w;
	struct req *r;
	va_list ap;
	size_t i;

	va_start(ap, fmt);
	vsnprintf(ep->why, sizeof ep->why, fmt, ap);
	va_end(ap);
	ep->failed_at = uv_now(c->loop);
	c->ep_failed = true;
	TRACE(c, "%s: %s", ep->name, ep->why);
	for (i = 0; i < c->win.count && code != CAIRN_EINDETERMINATE; i++) {
		r = win_at(&c->win, i);
		if (r != NULL)
			r->last_err = code;
	}
	for (w = c->watches; w != NULL; w = w->next)
		if (w->deadline != 0 && code != CAIRN_EINDETERMINATE)
			w->last_err = code;
}

/* The link (or the attempt) failed: drop it and retry after a backoff. */
static void link_fail(struct cairn_client *c, int code, const char *fmt, ...)
{
	struct endpoint *ep = &c->eps[c->ep];
	char why[sizeof ep->why];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	note_failure(c, code, "%s", why);
	if (ep->member_id != 0 && ep->member_id == c->leader_id)
		c->leader_id = 0;
	link_drop(c);
	link_retry(c, false, 0);
}

static void watches_end_all(struct cairn_client *c, int err, const char *msg);

/* The member and this client do not share a secret (or it speaks
 * plaintext): no request can succeed, so all fail now. */
static void link_refused(struct cairn_client *c, const char *why)
{
	char msg[400];

	snprintf(msg, sizeof msg, "%s: %s", c->eps[c->ep].name, why);
	note_failure(c, CAIRN_EAUTH, "%s", why);
	link_drop(c);
	link_move(c, LINK_IDLE);
	fail_all(c, CAIRN_EAUTH, msg);
	watches_end_all(c, CAIRN_EAUTH, msg);
}

/* The secure channel failed: tell the member why if the socket takes it at
 * once, then refuse (a wrong secret) or retry (a damaged stream). */
static void channel_failed(struct cairn_client *c, struct conn *conn, int rv)
{
	char why[sizeof conn->c->eps[0].why];

	snprintf(why, sizeof why, "%s", channel_errmsg(&conn->ch));
	channel_last_words(&conn->ch, (uv_stream_t *)&conn->tcp);
	if (rv == CAIRN_EAUTH)
		link_refused(c, why);
	else
		link_fail(c, rv, "%s", why);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	struct conn *conn = h->data;
	uint8_t *p;
	size_t len;

	(void)suggested;
	if (channel_space(&conn->ch, &conn->fr, READ_CHUNK, &p, &len) != 0) {
		b->base = NULL; /* on_read gets UV_ENOBUFS */
		b->len = 0;
		return;
	}
	b->base = (char *)p;
	b->len = len;
}

static void on_frame(struct conn *conn, const uint8_t *p, uint32_t len);
static void conn_flush(struct conn *conn);

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
	struct conn *conn = s->data;
	struct cairn_client *c = conn->c;
	const uint8_t *p;
	uint32_t len;
	int rv = 0;

	(void)b;
	if (conn->dead)
		return;
	if (nread < 0) {
		const char *why = nread == UV_EOF ? channel_eof(&conn->ch) : NULL;
		if (c->state == LINK_READY && !link_wanted(c) && why == NULL) {
			link_drop(c); /* an idle link closed: not a failure */
			link_move(c, LINK_IDLE);
		} else if (nread == UV_EOF) {
			link_fail(c, CAIRN_ECONN,
			          "connection closed by the member%s%s",
			          why != NULL ? ": " : "", why != NULL ? why : "");
		} else {
			link_fail(c, CAIRN_ECONN, "read: %s",
			          uv_strerror((int)nread));
		}
		return;
	}
	rv = channel_commit(&conn->ch, &conn->fr, (size_t)nread);
	if (rv != 0) {
		channel_failed(c, conn, rv);
		return;
	}
	if (channel_has_raw(&conn->ch))
		conn_flush(conn); /* the handshake's FINISH, the HELLO frame */
	while (!conn->dead && (rv = frame_next(&conn->fr, &p, &len)) == 1)
		on_frame(conn, p, len);
	if (!conn->dead && rv != 0 && rv != 1)
		link_fail(c, CAIRN_EPROTO, "answer frame larger than %u bytes",
		          PROTO_RESP_FRAME_MAX);
}

static void on_write(uv_write_t *req, int status)
{
	struct conn *conn = req->data;

	conn->writing = false;
	if (conn->dead)
		return;
	buf_reset(&conn->wbuf);
	if (status < 0) {
		link_fail(conn->c, CAIRN_ECONN, "write: %s",
		          uv_strerror(status));
		return;
	}
	conn_flush(conn);
}

/* Writes what was built since the last write, if no write is in progress. */
static void conn_flush(struct conn *conn)
{
	uv_buf_t b;
	int rv;

	if (conn->writing || (conn->out.len == 0 && !channel_has_raw(&conn->ch)))
		return;
	if (channel_wire(&conn->ch, &conn->out, &conn->wbuf) != 0) {
		link_fail(conn->c, CAIRN_ENOMEM, "out of memory");
		return;
	}
	if (conn->wbuf.len == 0)
		return; /* frames wait for the secure channel to open */
	b.base = (char *)conn->wbuf.data;
	b.len = conn->wbuf.len;
	rv = uv_write(&conn->write, (uv_stream_t *)&conn->tcp, &b, 1, on_write);
	if (rv != 0) {
		link_fail(conn->c, CAIRN_ECONN, "write: %s", uv_strerror(rv));
		return;
	}
	conn->writing = true;
}

static void on_flush(uv_prepare_t *p)
{
	struct cairn_client *c = p->data;

	uv_prepare_stop(p);
	if (c->conn != NULL && (c->state == LINK_READY ||
	                        c->state == LINK_HELLO || c->state == LINK_AUTH))
		conn_flush(c->conn);
}

/* Frames are written once per loop iteration, before the loop blocks. */
static void schedule_flush(struct cairn_client *c)
{
	if (!uv_is_active((uv_handle_t *)&c->flush))
		uv_prepare_start(&c->flush, on_flush);
}

static int send_req(struct cairn_client *c, struct req *r)
{
	int rv = frame_req(c, &c->conn->out, r);

	if (rv == 0) {
		r->gen = c->conn->gen;
		r->rx_mark = c->conn->rx_frames;
		r->tok_gen = c->tok_gen;
	}
	return rv;
}

/* Sends every request of the window not yet sent on this link. */
static void send_all(struct cairn_client *c)
{
	struct req *r;
	size_t i;

	for (i = 0; i < c->win.count; i++) {
		r = win_at(&c->win, i);
		if (r != NULL && r->gen != c->conn->gen &&
		    !change_lost(c, r) && send_req(c, r) != 0) {
			link_fail(c, CAIRN_ENOMEM, "out of memory");
			return;
		}
	}
	schedule_flush(c);
}

static void on_connect(uv_connect_t *req, int status)
{
	struct conn *conn = req->data;
	struct cairn_client *c = conn->c;
	int rv;

	if (conn->dead)
		return;
	if (status < 0) {
		link_fail(c, CAIRN_ECONN, "connect: %s", uv_strerror(status));
		return;
	}
	rv = uv_read_start((uv_stream_t *)&conn->tcp, on_alloc, on_read);
	if (rv == 0 && (channel_start(&conn->ch) != 0 ||
	                frame_hello(c, &conn->out) != 0))
		rv = UV_ENOMEM;
	if (rv != 0) {
		link_fail(c, CAIRN_ECONN, "%s", uv_strerror(rv));
		return;
	}
	link_move(c, LINK_HELLO);
	conn_flush(conn);
}

/* Opens a link to endpoint ep; its HELLO goes out once connected. */
static void link_connect(struct cairn_client *c, unsigned ep)
{
	struct conn *conn = calloc(1, sizeof *conn);
	const struct sockaddr *addr = (const struct sockaddr *)&c->eps[ep].addr;
	int rv;

	c->ep = ep;
	link_move(c, LINK_CONNECTING);
	if (conn == NULL) {
		link_fail(c, CAIRN_ENOMEM, "out of memory");
		return;
	}
	if (channel_init(&conn->ch, c->secure ? c->key : NULL, false) != 0) {
		free(conn);
		link_fail(c, CAIRN_ENOMEM, "out of memory");
		return;
	}
	rv = uv_tcp_init(c->loop, &conn->tcp);
	if (rv != 0) {
		channel_close(&conn->ch);
		free(conn);
		link_fail(c, CAIRN_ECONN, "socket: %s", uv_strerror(rv));
		return;
	}
	conn->c = c;
	conn->ep = ep;
	conn->gen = ++c->gen;
	conn->tcp.data = conn;
	conn->connect.data = conn;
	conn->write.data = conn;
	frame_reader_init(&conn->fr, PROTO_RESP_FRAME_MAX);
	c->handles++;
	c->conn = conn;
	/* The deadline timer keeps the loop alive while requests wait; an idle
	 * link must not keep the caller's uv_run() from returning. */
	uv_unref((uv_handle_t *)&conn->tcp);
	uv_tcp_nodelay(&conn->tcp, 1);
	rv = uv_tcp_connect(&conn->connect, &conn->tcp, addr, on_connect);
	if (rv != 0) {
		link_fail(c, CAIRN_ECONN, "connect: %s", uv_strerror(rv));
		return;
	}
	uv_timer_start(&c->link_timer, on_link_timer, c->opts.dial_timeout_ms,
	               0);
}

static void on_link_timer(uv_timer_t *t)
{
	struct cairn_client *c = t->data;

	if (c->state == LINK_BACKOFF) {
		if (!link_wanted(c))
			link_move(c, LINK_IDLE);
		else
			link_connect(c, next_endpoint(c));
	} else if (c->state == LINK_CONNECTING || c->state == LINK_HELLO) {
		link_fail(c, CAIRN_ECONN,
		          "no answer within the dial timeout (%u ms)",
		          c->opts.dial_timeout_ms);
	}
}

/* ---- answers ------------------------------------------------------------- */

/* The member answered for real: the cluster works, forget the backoff. */
static void answered(struct cairn_client *c)
{
	c->hops = 0;
	c->backoff_ms = CLIENT_BACKOFF_MIN_MS;
	c->ep_failed = false;
}

/* True when a request needs the leader and the leader is another endpoint we
 * know, so the link should move before sending anything. */
static bool leader_elsewhere(const struct cairn_client *c)
{
	int e = endpoint_of(c, c->leader_id);
	struct req *r;
	size_t i;

	if (c->opts.no_redirect || e < 0 || (unsigned)e == c->ep ||
	    c->hops >= c->n_eps)
		return false;
	for (i = 0; i < c->win.count; i++) {
		r = win_at(&c->win, i);
		if (r != NULL && r->leader)
			return true;
	}
	return false;
}

static void watches_end_all(struct cairn_client *c, int err, const char *msg);

static void version_mismatch(struct cairn_client *c,
                             const struct result_env *env)
{
	char msg[400];

	snprintf(msg, sizeof msg,
	         "%s speaks protocol version %" PRIu64 ", this client %u%s%.*s",
	         c->eps[c->ep].name, env->version, PROTO_VERSION,
	         env->msg ? ": " : "", env->msg ? (int)env->msg_len : 0,
	         env->msg ? env->msg : "");
	note_failure(c, CAIRN_EVERSION, "%s", msg);
	link_drop(c);
	link_move(c, LINK_IDLE);
	fail_all(c, CAIRN_EVERSION, msg);
	watches_end_all(c, CAIRN_EVERSION, msg);
}

static void watches_send_all(struct cairn_client *c);
static void auth_start(struct cairn_client *c);

static void on_hello(struct cairn_client *c, int rv,
                     const struct result_env *env, const char *err)
{
	struct endpoint *ep = &c->eps[c->ep];

	if (rv != 0) {
		link_fail(c, CAIRN_EPROTO, "bad HELLO answer: %s", err);
		return;
	}
	if (env->err == CAIRN_EVERSION ||
	    (env->err == 0 && env->version != PROTO_VERSION)) {
		version_mismatch(c, env);
		return;
	}
	if (env->err == CAIRN_EAUTH) { /* it wants the secure channel */
		char why[sizeof ep->why];
		snprintf(why, sizeof why, "HELLO refused: %.*s",
		         env->msg ? (int)env->msg_len : 0,
		         env->msg ? env->msg : "");
		link_refused(c, why);
		return;
	}
	if (env->err != 0) {
		link_fail(c, env->err, "HELLO refused: %.*s",
		          env->msg ? (int)env->msg_len : 0,
		          env->msg ? env->msg : "");
		return;
	}
	uv_timer_stop(&c->link_timer);
	ep->member_id = env->member;
	if (env->leader != 0)
		c->leader_id = env->leader;
	link_move(c, LINK_READY);
	TRACE(c, "%s is member %016" PRIx64 ", leader %016" PRIx64, ep->name,
	      env->member, env->leader);
	if (leader_elsewhere(c)) {
		link_drop(c);
		link_retry(c, true, (unsigned)endpoint_of(c, c->leader_id));
		return;
	}
	if (c->user != NULL) {
		auth_start(c);
		return;
	}
	send_all(c);
	watches_send_all(c);
}

/* ---- authentication ------------------------------------------------------ */

static int frame_auth(struct cairn_client *c, struct buf *out)
{
	size_t off = proto_frame_begin(out);
	struct mp_writer w;

	mp_writer_init(&w, out);
	mp_put_map(&w, 4);
	mp_put_key(&w, "id");
	mp_put_uint(&w, CLIENT_AUTH_ID);
	mp_put_key(&w, "op");
	mp_put_uint(&w, PROTO_OP_AUTHENTICATE);
	mp_put_key(&w, "user");
	mp_put_str(&w, c->user, strlen(c->user));
	mp_put_key(&w, "pw");
	mp_put_str(&w, c->password, strlen(c->password));
	if (w.err != 0) {
		out->len = off;
		return w.err;
	}
	return proto_frame_end(out, off, PROTO_REQ_FRAME_MAX);
}

/* A READY link authenticates; requests wait for the token. */
static void auth_start(struct cairn_client *c)
{
	TRACE(c, "authenticating as %s", c->user);
	c->token_len = 0;
	if (frame_auth(c, &c->conn->out) != 0) {
		link_fail(c, CAIRN_ENOMEM, "out of memory");
		return;
	}
	link_move(c, LINK_AUTH);
	schedule_flush(c);
}

static void on_auth(struct cairn_client *c, int rv,
                    const struct result_env *env,
                    const struct cairn_result *res, const char *err)
{
	char msg[600];

	if (rv != 0) {
		link_fail(c, CAIRN_EPROTO, "bad AUTHENTICATE answer: %s", err);
		return;
	}
	if (env->err == CAIRN_EAUTH) { /* wrong credentials: all fail */
		snprintf(msg, sizeof msg, "user %s: %.*s", c->user,
		         env->msg ? (int)env->msg_len : 0,
		         env->msg ? env->msg : "");
		note_failure(c, CAIRN_EAUTH, "%s", msg);
		link_drop(c);
		link_move(c, LINK_IDLE);
		fail_all(c, CAIRN_EAUTH, msg);
		watches_end_all(c, CAIRN_EAUTH, msg);
		return;
	}
	if (env->err != 0) {
		link_fail(c, env->err, "authentication: %.*s",
		          env->msg ? (int)env->msg_len : 0,
		          env->msg ? env->msg : "");
		return;
	}
	if (res->token_len > sizeof c->token) {
		link_fail(c, CAIRN_EPROTO, "token of %zu bytes, at most %zu",
		          res->token_len, sizeof c->token);
		return;
	}
	if (res->token_len > 0)
		memcpy(c->token, res->token, res->token_len);
	c->token_len = res->token_len;
	c->tok_gen++;
	TRACE(c, "authenticated as %s (%s)", c->user,
	      c->token_len ? "token" : "auth is disabled");
	link_move(c, LINK_READY);
	send_all(c);
	watches_send_all(c);
}

/* A refusal that a new token may cure: true when r is sent again. */
static bool stale_token(struct cairn_client *c, const struct result_env *env,
                        bool *reauthed, uint64_t tok_gen)
{
	if (env->err != CAIRN_EAUTH || !env->reauth || *reauthed ||
	    c->user == NULL)
		return false;
	*reauthed = true;
	TRACE(c, "token refused (%.*s): re-authenticating",
	      env->msg ? (int)env->msg_len : 0, env->msg ? env->msg : "");
	if (c->state == LINK_READY && tok_gen == c->tok_gen)
		auth_start(c);
	return true;
}

static int submit(struct cairn_client *c, const struct cairn_op *op,
                  cairn_cb cb, void *arg);

/* A member's client address as an endpoint, unless it is one already. */
static void add_endpoint(struct cairn_client *c, const char *addr, size_t len,
                         uint64_t id)
{
	struct endpoint ep;
	struct endpoint *eps;
	char err[160];
	unsigned i;

	memset(&ep, 0, sizeof ep);
	if (parse_endpoint(addr, len, &ep, err, sizeof err) != 0)
		return;
	for (i = 0; i < c->n_eps; i++) {
		if (memcmp(&c->eps[i].addr, &ep.addr, sizeof ep.addr) == 0) {
			c->eps[i].member_id = id;
			return;
		}
	}
	if (c->n_eps == CLIENT_MAX_ENDPOINTS)
		return;
	eps = realloc(c->eps, (c->n_eps + 1) * sizeof *eps);
	if (eps == NULL)
		return;
	ep.member_id = id;
	eps[c->n_eps++] = ep;
	c->eps = eps;
	TRACE(c, "member %016" PRIx64 " serves clients on %s", id, ep.name);
}

/* The answer to the MEMBERS request of discover(): new endpoints, then on to
 * the leader (or, still unknown, to the next endpoint). */
static void on_discovered(cairn_client *c, struct cairn_result *res, void *arg)
{
	int leader;
	size_t i;

	(void)arg;
	c->discovering = false;
	for (i = 0; res->err == 0 && i < res->n_members; i++)
		if (res->members[i].client_address != NULL &&
		    endpoint_of(c, res->members[i].id) < 0)
			add_endpoint(c, res->members[i].client_address,
			             strlen(res->members[i].client_address),
			             res->members[i].id);
	cairn_result_free(res);
	if (c->closing || c->state != LINK_READY)
		return; /* the link moved on meanwhile */
	leader = endpoint_of(c, c->leader_id);
	if (leader == (int)c->ep)
		return;
	link_drop(c);
	link_retry(c, true, leader >= 0 ? (unsigned)leader : next_endpoint(c));
}

/* Asks the current member for the cluster's members, to find the leader's
 * client address. True if the request went out. */
static bool discover(struct cairn_client *c)
{
	struct cairn_op op = {.type = CAIRN_OP_MEMBERS};
	char keep[sizeof c->errmsg];

	if (c->discovering || c->discovered_for == c->leader_id ||
	    c->state != LINK_READY)
		return c->discovering;
	memcpy(keep, c->errmsg, sizeof keep); /* not the caller's failure */
	if (submit(c, &op, on_discovered, NULL) != 0) {
		memcpy(c->errmsg, keep, sizeof keep);
		return false;
	}
	c->discovering = true;
	c->discovered_for = c->leader_id;
	return true;
}

/* ENOTLEADER: go to the leader (learning its address from "la" when it is
 * not among the endpoints), or look for it. */
static void redirect(struct cairn_client *c, const struct result_env *env)
{
	int target = endpoint_of(c, env->leader);

	if (target < 0 && env->leader != 0 && env->leader_addr != NULL &&
	    !c->opts.no_redirect) {
		add_endpoint(c, env->leader_addr, env->leader_addr_len,
		             env->leader);
		target = endpoint_of(c, env->leader);
	}
	if (env->leader == 0 || target == (int)c->ep) {
		link_fail(c, CAIRN_ENOTLEADER,
		          "not the leader, and no leader known");
		return;
	}
	note_failure(c, CAIRN_ENOTLEADER,
	             "not the leader (the leader is member %016" PRIx64 "%s)",
	             env->leader,
	             target < 0 ? ", not among the endpoints" : "");
	c->leader_id = env->leader;
	if (target < 0 && discover(c))
		return; /* the request is resent once the link moves */
	link_drop(c);
	link_retry(c, true, next_endpoint(c));
}

static bool retryable(const struct cairn_client *c, int err)
{
	switch (err) {
	case CAIRN_ENOTLEADER:
		return !c->opts.no_redirect;
	case CAIRN_ENOLEADER:
	case CAIRN_ESHUTDOWN:
	case CAIRN_EINDETERMINATE:
		return true;
	default:
		return false;
	}
}

/* A membership change is retried only when the member refused it without
 * starting it; an EINDETERMINATE (leadership lost during the change) or an
 * ESHUTDOWN is the caller's to sort out. */
static bool retryable_req(const struct cairn_client *c, const struct req *r,
                          int err)
{
	if (is_member_change(r->type) && err != CAIRN_ENOTLEADER &&
	    err != CAIRN_ENOLEADER)
		return false;
	return retryable(c, err);
}

static void retry(struct cairn_client *c, struct req *r,
                  const struct result_env *env)
{
	if (is_member_change(r->type))
		r->gen = 0; /* refused: sent again to the leader */
	if (env->err == CAIRN_ENOTLEADER) {
		redirect(c, env);
		return;
	}
	if (env->err == CAIRN_EINDETERMINATE)
		r->last_err =
		    CAIRN_EINDETERMINATE; /* resent with the same seq */
	if (env->err == CAIRN_ENOLEADER)
		c->leader_id = 0;
	link_fail(c, env->err, "%.*s", env->msg ? (int)env->msg_len : 0,
	          env->msg ? env->msg : cairn_strerror(env->err));
}

/*
 * The store answers a retried LEASE_GRANT it had applied before with "dup"
 * and the lease's id and TTL (an id it picked is derived from the client id
 * and sequence number, so the retry learns the same one). Should an answer
 * lack them, the id comes from the request when the caller chose it; else
 * the grant is reported as indeterminate rather than as a lease 0.
 */
static struct cairn_result *grant_answer(const struct req *r,
                                         struct cairn_result *res)
{
	if (r->type != CAIRN_OP_LEASE_GRANT || res->err != 0 ||
	    !res->duplicate || res->lease != 0)
		return res;
	if (r->lease != 0) {
		res->lease = r->lease;
		if (res->ttl == 0)
			res->ttl = r->ttl;
		return res;
	}
	cairn_result_free(res);
	return result_error(r->type, CAIRN_EINDETERMINATE,
	                    "lease grant: a retry found the lease granted "
	                    "before, but the store's answer does not say its "
	                    "id (it expires after %" PRId64 " s)",
	                    r->ttl);
}

static void on_answer(struct cairn_client *c, const struct result_env *env,
                      struct cairn_result *res)
{
	struct req *r = env->has_id ? win_get(&c->win, env->id) : NULL;

	if (r == NULL) { /* timed out meanwhile, or not ours */
		cairn_result_free(res);
		return;
	}
	if (retryable_req(c, r, env->err)) {
		cairn_result_free(res);
		retry(c, r, env);
		return;
	}
	if (stale_token(c, env, &r->reauthed, r->tok_gen)) {
		cairn_result_free(res);
		r->gen = 0;
		if (c->state == LINK_READY && send_req(c, r) == 0)
			schedule_flush(c); /* the token was renewed meanwhile */
		return;
	}
	answered(c);
	complete(c, r, grant_answer(r, res));
}

static void on_bad_answer(struct cairn_client *c, int rv,
                          const struct result_env *env, const char *err)
{
	struct req *r = env->has_id ? win_get(&c->win, env->id) : NULL;
	const char *why = rv == CAIRN_ENOMEM ? "out of memory" : err;

	if (r != NULL)
		complete_err(c, r, rv, "malformed answer from %s: %s",
		             c->eps[c->ep].name, why);
	else
		link_fail(c, CAIRN_EPROTO, "malformed answer: %s", why);
}

static void on_events(struct cairn_client *c, const uint8_t *p, uint32_t len);
static void on_watch_answer(struct cairn_client *c,
                            const struct result_env *env,
                            struct cairn_result *res);

static void on_frame(struct conn *conn, const uint8_t *p, uint32_t len)
{
	struct cairn_client *c = conn->c;
	struct result_env env;
	struct cairn_result *res;
	char err[256] = "";
	int rv;

	conn->rx_frames++;
	if ((c->state == LINK_READY || c->state == LINK_AUTH) &&
	    result_peek_op(p, len) == PROTO_OP_EVENTS) {
		on_events(c, p, len);
		return;
	}
	rv = result_decode(p, len, &env, &res, err, sizeof err);
	if (c->state == LINK_HELLO) {
		on_hello(c, rv, &env, err);
		cairn_result_free(res);
	} else if (c->state == LINK_AUTH &&
	           (rv != 0 || (env.has_id && env.id == CLIENT_AUTH_ID))) {
		on_auth(c, rv, &env, res, err);
		cairn_result_free(res);
	} else if (rv != 0) {
		on_bad_answer(c, rv, &env, err);
	} else if (env.has_id && (env.id & CLIENT_WATCH_ID_BIT) != 0) {
		on_watch_answer(c, &env, res);
	} else {
		on_answer(c, &env, res);
	}
}

/* ---- watches ------------------------------------------------------------- */

static const char *const watch_names[WATCH_NSTATES] = {
    [WATCH_PENDING] = "pending", [WATCH_CREATING] = "creating",
    [WATCH_ACTIVE] = "active",   [WATCH_ORPHAN] = "orphan",
    [WATCH_DONE] = "done",
};

#define B(s) (1u << (s))
static const unsigned watch_next[WATCH_NSTATES] = {
    [WATCH_PENDING] = B(WATCH_CREATING) | B(WATCH_DONE),
    [WATCH_CREATING] =
        B(WATCH_ACTIVE) | B(WATCH_PENDING) | B(WATCH_ORPHAN) | B(WATCH_DONE),
    [WATCH_ACTIVE] = B(WATCH_PENDING) | B(WATCH_DONE),
    [WATCH_ORPHAN] = B(WATCH_DONE),
    [WATCH_DONE] = 0,
};
#undef B

/* Live watches are those the caller still hears from; they need a link. */
static bool watch_live(enum watch_state s)
{
	return s == WATCH_PENDING || s == WATCH_CREATING || s == WATCH_ACTIVE;
}

static void watch_move(struct cairn_client *c, struct cairn_watch *w,
                       enum watch_state to)
{
	if (!(watch_next[w->state] & (1u << to))) {
		fprintf(stderr, "libcairn: illegal watch move %s -> %s\n",
		        watch_names[w->state], watch_names[to]);
		abort();
	}
	TRACE(c, "watch %" PRIu64 " %s -> %s (next revision %" PRId64 ")",
	      w->serial, watch_names[w->state], watch_names[to], w->next_rev);
	c->n_live -= watch_live(w->state);
	c->n_live += watch_live(to);
	w->state = to;
}

/* -- watches by key: open addressing, linear probing, backward-shift
 * deletion (no tombstones). */

static size_t wt_hash(uint64_t k)
{
	k ^= k >> 33;
	k *= UINT64_C(0xff51afd7ed558ccd);
	k ^= k >> 33;
	return (size_t)k;
}

/* The slot holding key, or SIZE_MAX. */
static size_t wt_find(const struct watch_table *t, uint64_t key)
{
	size_t mask = t->cap - 1;
	size_t i;

	if (t->cap == 0)
		return SIZE_MAX;
	for (i = wt_hash(key) & mask; t->slot[i].w != NULL; i = (i + 1) & mask)
		if (t->slot[i].key == key)
			return i;
	return SIZE_MAX;
}

static struct cairn_watch *wt_get(const struct watch_table *t, uint64_t key)
{
	size_t i = wt_find(t, key);

	return i == SIZE_MAX ? NULL : t->slot[i].w;
}

static void wt_insert(struct watch_slot *slot, size_t cap, uint64_t key,
                      struct cairn_watch *w)
{
	size_t i = wt_hash(key) & (cap - 1);

	while (slot[i].w != NULL && slot[i].key != key)
		i = (i + 1) & (cap - 1);
	slot[i].key = key;
	slot[i].w = w;
}

static int wt_grow(struct watch_table *t)
{
	size_t cap = t->cap ? t->cap * 2 : 16;
	struct watch_slot *slot = calloc(cap, sizeof *slot);
	size_t i;

	if (slot == NULL)
		return CAIRN_ENOMEM;
	for (i = 0; i < t->cap; i++)
		if (t->slot[i].w != NULL)
			wt_insert(slot, cap, t->slot[i].key, t->slot[i].w);
	free(t->slot);
	t->slot = slot;
	t->cap = cap;
	return 0;
}

/* Adds (or replaces) key; at most 3/4 full. */
static int wt_put(struct watch_table *t, uint64_t key, struct cairn_watch *w)
{
	if ((t->count + 1) * 4 > t->cap * 3 && wt_grow(t) != 0)
		return CAIRN_ENOMEM;
	if (wt_get(t, key) == NULL)
		t->count++;
	wt_insert(t->slot, t->cap, key, w);
	return 0;
}

static void wt_del(struct watch_table *t, uint64_t key)
{
	size_t mask = t->cap - 1;
	size_t i = wt_find(t, key);
	size_t j;
	size_t home;

	if (i == SIZE_MAX)
		return;
	/* Pull back each later entry of the run whose home is not in (i, j]. */
	for (j = (i + 1) & mask; t->slot[j].w != NULL; j = (j + 1) & mask) {
		home = wt_hash(t->slot[j].key) & mask;
		if (i < j ? (home <= i || home > j) : (home <= i && home > j)) {
			t->slot[i] = t->slot[j];
			i = j;
		}
	}
	t->slot[i].w = NULL;
	t->count--;
}

static void wt_clear(struct watch_table *t)
{
	if (t->cap > 0)
		memset(t->slot, 0, t->cap * sizeof *t->slot);
	t->count = 0;
}

/* -- lifecycle */

static void watch_list_remove(struct cairn_client *c, struct cairn_watch *w)
{
	if (w->prev != NULL)
		w->prev->next = w->next;
	else
		c->watches = w->next;
	if (w->next != NULL)
		w->next->prev = w->prev;
	else
		c->watches_tail = w->prev;
	w->prev = w->next = NULL;
}

static void watch_list_append(struct cairn_client *c, struct cairn_watch *w)
{
	w->prev = c->watches_tail;
	w->next = NULL;
	if (c->watches_tail != NULL)
		c->watches_tail->next = w;
	else
		c->watches = w;
	c->watches_tail = w;
}

static void fire_final(struct cairn_client *c, struct cairn_watch *w)
{
	struct cairn_watch_update u;

	memset(&u, 0, sizeof u);
	u.err = w->err;
	u.errmsg = w->errmsg;
	u.compact_revision = w->compact_rev;
	u.revision = w->next_rev > 0 ? w->next_rev - 1 : 0;
	TRACE(c, "watch %" PRIu64 " ends: %s", w->serial, w->errmsg);
	w->in_cb++;
	w->cb(c, w, &u, w->arg);
	w->in_cb--;
}

/* After a callback of w returned: the final call if it waits, then the
 * memory once w is DONE and nothing runs inside its callback. */
static void watch_after_cb(struct cairn_client *c, struct cairn_watch *w)
{
	if (w->in_cb > 0)
		return;
	if (w->final_pending) {
		w->final_pending = false;
		fire_final(c, w);
	}
	if (w->state == WATCH_DONE && w->in_cb == 0)
		free(w);
}

/* Out of the list and the tables for good. */
static void watch_release(struct cairn_client *c, struct cairn_watch *w)
{
	if (w->state == WATCH_ACTIVE)
		wt_del(&c->by_wid, w->wid);
	if (w->state == WATCH_CREATING || w->state == WATCH_ORPHAN)
		wt_del(&c->by_req, w->serial);
	watch_list_remove(c, w);
	watch_move(c, w, WATCH_DONE);
	watch_after_cb(c, w);
}

static void watch_end(struct cairn_client *c, struct cairn_watch *w, int err,
                      int64_t compact_rev, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static unsigned first_endpoint(const struct cairn_client *c);

/*
 * The caller hears the end of w (now, or when its running callback returns).
 * A watch whose WATCH is still unanswered stays as an ORPHAN, so the store's
 * watch can be canceled once its id is known.
 */
static void watch_end(struct cairn_client *c, struct cairn_watch *w, int err,
                      int64_t compact_rev, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(w->errmsg, sizeof w->errmsg, fmt, ap);
	va_end(ap);
	w->err = err;
	w->compact_rev = compact_rev;
	w->final_pending = true;
	if (w->state == WATCH_CREATING) {
		watch_move(c, w, WATCH_ORPHAN);
		watch_after_cb(c, w);
	} else {
		watch_release(c, w);
	}
}

/* Ends every live watch, oldest first (callbacks cannot start new ones when
 * the client is closing; otherwise new ones are not ended). */
static void watches_end_all(struct cairn_client *c, int err, const char *msg)
{
	uint64_t last = c->next_serial;
	struct cairn_watch *w;

	for (;;) {
		for (w = c->watches; w != NULL; w = w->next)
			if (watch_live(w->state) && w->serial <= last)
				break;
		if (w == NULL)
			return;
		watch_end(c, w, err, 0, "%s", msg);
	}
}

/* -- frames */

/* The WATCH fields besides id and op, or their count when f->w is NULL. */
static void watch_fields(struct fields *f, const struct cairn_watch *w)
{
	f_bin(f, "k", w->bytes, w->key_len);
	if (w->end_len > 0)
		f_bin(f, "e", w->bytes + w->key_len, w->end_len);
	if (w->next_rev > 0)
		f_int(f, "rev", w->next_rev);
	if (w->prev_kv)
		f_true(f, "pkv");
	if (w->no_put)
		f_true(f, "np");
	if (w->no_delete)
		f_true(f, "nd");
	if (w->progress_notify)
		f_true(f, "pn");
}

/* A watch control frame: WATCH for w (id: the bit and its serial), or,
 * with w NULL, WATCH_CANCEL (with wid) or WATCH_PROGRESS (id: the bit). */
static int frame_watch(struct buf *out, unsigned op,
                       const struct cairn_watch *w, uint64_t wid,
                       const uint8_t *tok, size_t tok_len)
{
	size_t off = proto_frame_begin(out);
	struct fields count = {NULL, 2 + (tok_len > 0)};
	struct mp_writer mw;
	struct fields f = {&mw, 0};

	if (w != NULL)
		watch_fields(&count, w);
	else if (op == PROTO_OP_WATCH_CANCEL)
		count.n++;
	mp_writer_init(&mw, out);
	mp_put_map(&mw, count.n);
	mp_put_key(&mw, "id");
	mp_put_uint(&mw, CLIENT_WATCH_ID_BIT | (w != NULL ? w->serial : 0));
	mp_put_key(&mw, "op");
	mp_put_uint(&mw, op);
	if (tok_len > 0) {
		mp_put_key(&mw, "tok");
		mp_put_bin(&mw, tok, tok_len);
	}
	if (w != NULL)
		watch_fields(&f, w);
	else if (op == PROTO_OP_WATCH_CANCEL) {
		mp_put_key(&mw, "wid");
		mp_put_uint(&mw, wid);
	}
	if (mw.err != 0) {
		out->len = off;
		return mw.err;
	}
	return proto_frame_end(out, off, PROTO_REQ_FRAME_MAX);
}

/* -- timing: a first answer's deadline, and a link silent while a WATCH or a
 * WATCH_PROGRESS waits on it */

static void on_watch_timer(uv_timer_t *t);

/* w's WATCH went out on the current link and nothing came back since. */
static bool watch_waiting(const struct cairn_client *c,
                          const struct cairn_watch *w)
{
	return w->state == WATCH_CREATING && c->conn != NULL &&
	       w->gen == c->conn->gen && c->conn->rx_frames == w->rx_mark;
}

static bool progress_waiting(const struct cairn_client *c)
{
	return c->progress_sent_at != 0 && c->conn != NULL &&
	       c->progress_gen == c->conn->gen &&
	       c->conn->rx_frames == c->progress_rx_mark;
}

static void arm_watch_timer(struct cairn_client *c)
{
	uint64_t timeout = c->opts.request_timeout_ms;
	uint64_t now = uv_now(c->loop);
	uint64_t due = UINT64_MAX;
	struct cairn_watch *w;

	if (c->closing)
		return;
	for (w = c->watches; w != NULL; w = w->next) {
		if (w->deadline != 0 && w->deadline < due &&
		    (w->state == WATCH_PENDING || w->state == WATCH_CREATING))
			due = w->deadline;
		if (watch_waiting(c, w) && w->sent_at + timeout < due)
			due = w->sent_at + timeout;
	}
	if (progress_waiting(c) && c->progress_sent_at + timeout < due)
		due = c->progress_sent_at + timeout;
	if (due == UINT64_MAX)
		uv_timer_stop(&c->watch_timer);
	else
		uv_timer_start(&c->watch_timer, on_watch_timer,
		               due > now ? due - now : 0, 0);
}

/* The first watch still without its first answer past its deadline. */
static struct cairn_watch *watch_overdue(const struct cairn_client *c,
                                         uint64_t now)
{
	struct cairn_watch *w;

	for (w = c->watches; w != NULL; w = w->next)
		if (w->deadline != 0 && w->deadline <= now &&
		    (w->state == WATCH_PENDING || w->state == WATCH_CREATING))
			return w;
	return NULL;
}

static void watch_expire(struct cairn_client *c, struct cairn_watch *w)
{
	char why[1024];

	failures_since(c, w->started, why, sizeof why);
	if (why[0] == '\0')
		snprintf(why, sizeof why, "waiting for %s", c->eps[c->ep].name);
	watch_end(c, w, w->last_err ? w->last_err : CAIRN_ETIMEDOUT, 0,
	          "watch not created within %u ms (%.200s)",
	          c->opts.request_timeout_ms, why);
}

/* A WATCH or WATCH_PROGRESS unanswered for a whole request timeout. */
static bool watch_link_hung(const struct cairn_client *c, uint64_t now)
{
	uint64_t timeout = c->opts.request_timeout_ms;
	const struct cairn_watch *w;

	if (progress_waiting(c) && c->progress_sent_at + timeout <= now)
		return true;
	for (w = c->watches; w != NULL; w = w->next)
		if (watch_waiting(c, w) && w->sent_at + timeout <= now)
			return true;
	return false;
}

static void on_watch_timer(uv_timer_t *t)
{
	struct cairn_client *c = t->data;
	uint64_t now = uv_now(c->loop);
	struct cairn_watch *w;

	while ((w = watch_overdue(c, now)) != NULL) {
		watch_expire(c, w);
		if (c->closing)
			return;
	}
	if (c->state == LINK_READY && watch_link_hung(c, now))
		link_fail(c, CAIRN_ETIMEDOUT, "no answer within %u ms",
		          c->opts.request_timeout_ms);
	arm_watch_timer(c);
}

/* -- on the link */

static int watch_send(struct cairn_client *c, struct cairn_watch *w)
{
	struct conn *conn = c->conn;
	int rv = wt_put(&c->by_req, w->serial, w);

	if (rv == 0) {
		rv = frame_watch(&conn->out, PROTO_OP_WATCH, w, 0, c->token,
		                 c->token_len);
		if (rv != 0)
			wt_del(&c->by_req, w->serial);
	}
	if (rv != 0)
		return rv;
	w->gen = conn->gen;
	w->tok_gen = c->tok_gen;
	w->sent_at = uv_now(c->loop);
	w->rx_mark = conn->rx_frames;
	w->part_seen = 0;
	watch_move(c, w, WATCH_CREATING);
	return 0;
}

static int progress_send(struct cairn_client *c)
{
	int rv = frame_watch(&c->conn->out, PROTO_OP_WATCH_PROGRESS, NULL, 0,
	                     NULL, 0);

	if (rv != 0)
		return rv;
	c->progress_wanted = false;
	c->progress_gen = c->conn->gen;
	c->progress_sent_at = uv_now(c->loop);
	c->progress_rx_mark = c->conn->rx_frames;
	return 0;
}

/* A READY link: every PENDING watch goes out, then a waiting progress
 * request (after the WATCHes, so it reaches the watches they create). */
static void watches_send_all(struct cairn_client *c)
{
	struct cairn_watch *w;
	int rv = 0;

	if (c->state != LINK_READY || c->conn == NULL)
		return;
	for (w = c->watches; w != NULL && rv == 0; w = w->next)
		if (w->state == WATCH_PENDING)
			rv = watch_send(c, w);
	if (rv == 0 && c->progress_wanted)
		rv = progress_send(c);
	if (rv != 0) {
		link_fail(c, CAIRN_ENOMEM, "out of memory");
		return;
	}
	schedule_flush(c);
	arm_watch_timer(c);
}

/* The link is gone: watches on it wait for the next one, orphans are done
 * (the store dropped their watches with the connection). */
static void watches_unlink(struct cairn_client *c)
{
	struct cairn_watch *w;
	struct cairn_watch *next;

	wt_clear(&c->by_wid);
	wt_clear(&c->by_req);
	c->progress_sent_at = 0;
	for (w = c->watches; w != NULL; w = next) {
		next = w->next;
		w->part_seen = 0;
		if (w->state == WATCH_CREATING || w->state == WATCH_ACTIVE)
			watch_move(c, w, WATCH_PENDING);
		else if (w->state == WATCH_ORPHAN)
			watch_release(c, w);
	}
	arm_watch_timer(c);
}

/* A WATCH_CANCEL whose answer nobody waits for. */
static void send_and_forget(struct cairn_client *c, unsigned op, uint64_t wid)
{
	if (c->state != LINK_READY || c->conn == NULL)
		return; /* the store forgets the watch with the connection */
	if (frame_watch(&c->conn->out, op, NULL, wid, NULL, 0) != 0) {
		link_fail(c, CAIRN_ENOMEM, "out of memory");
		return;
	}
	schedule_flush(c);
}

/* -- answers and events */

/* Errors after which the watch is tried again on another member. */
static bool watch_retryable(int err)
{
	return err == CAIRN_ESHUTDOWN || err == CAIRN_ENOLEADER ||
	       err == CAIRN_ENOTLEADER || err == CAIRN_EINDETERMINATE;
}

static void watch_created(struct cairn_client *c, struct cairn_watch *w,
                          const struct result_env *env,
                          const struct cairn_result *res)
{
	if (wt_put(&c->by_wid, env->watch_id, w) != 0) {
		link_fail(c, CAIRN_ENOMEM, "out of memory");
		return;
	}
	w->wid = env->watch_id;
	if (w->next_rev == 0) /* "now" becomes a revision: resumes ask it */
		w->next_rev = env->revision > 0 ? env->revision
		                                : res->header.revision + 1;
	w->deadline = 0;
	w->last_err = 0;
	watch_move(c, w, WATCH_ACTIVE);
	answered(c);
}

/* The answer to a WATCH (or, ignored, to a WATCH_CANCEL/WATCH_PROGRESS). */
static void on_watch_answer(struct cairn_client *c,
                            const struct result_env *env,
                            struct cairn_result *res)
{
	uint64_t serial = env->id & ~CLIENT_WATCH_ID_BIT;
	struct cairn_watch *w = serial ? wt_get(&c->by_req, serial) : NULL;

	if (w == NULL) {
		cairn_result_free(res);
		return;
	}
	wt_del(&c->by_req, serial);
	if (w->state == WATCH_ORPHAN) {
		watch_release(c, w);
		if (env->err == 0)
			send_and_forget(c, PROTO_OP_WATCH_CANCEL,
			                env->watch_id);
	} else if (env->err == 0) {
		watch_created(c, w, env, res);
	} else {
		watch_move(c, w, WATCH_PENDING); /* answered: off this link */
		if (stale_token(c, env, &w->reauthed, w->tok_gen))
			watches_send_all(c); /* at once if the token is new */
		else if (watch_retryable(env->err))
			link_fail(c, env->err, "watch refused: %s",
			          res->errmsg);
		else
			watch_end(c, w, env->err,
			          env->err == CAIRN_ECOMPACTED
			              ? res->compact_revision
			              : 0,
			          "%s", res->errmsg);
	}
	cairn_result_free(res);
	arm_watch_timer(c);
}

/* Calls w back with u; w stays valid across the call. */
static void watch_call(struct cairn_client *c, struct cairn_watch *w,
                       const struct cairn_watch_update *u)
{
	w->in_cb++;
	w->cb(c, w, u, w->arg);
	w->in_cb--;
	watch_after_cb(c, w);
}

/*
 * Events of one revision R. How it works: next_rev only moves past R once
 * the frame without 'more' came; meanwhile part_done counts R's events the
 * caller got. A new link asks for R again, and its first part_done events of
 * R (counted by part_seen, whatever their split into frames) are dropped.
 */
static void watch_events(struct cairn_client *c, struct cairn_watch *w,
                         const struct result_events *ev)
{
	struct cairn_watch_update u;
	int64_t r = ev->revision;
	uint64_t n = ev->n_events;
	uint64_t skip = 0;

	if (r < w->next_rev)
		return; /* delivered before (the store resent it) */
	if (r != w->part_rev) {
		w->part_rev = r;
		w->part_done = 0;
		w->part_seen = 0;
	}
	if (w->part_done > w->part_seen)
		skip = w->part_done - w->part_seen < n
		           ? w->part_done - w->part_seen
		           : n;
	w->part_seen += n;
	w->next_rev = r;
	if (ev->more) {
		w->part_done += n - skip;
	} else {
		w->next_rev = r + 1;
		w->part_rev = 0;
		w->part_done = w->part_seen = 0;
	}
	if (skip == n)
		return;
	memset(&u, 0, sizeof u);
	u.revision = r;
	u.events = ev->events + skip;
	u.n_events = (size_t)(n - skip);
	u.more = ev->more;
	watch_call(c, w, &u);
}

static void watch_progressed(struct cairn_client *c, struct cairn_watch *w,
                             const struct result_events *ev)
{
	struct cairn_watch_update u;
	int64_t r = ev->header.revision;

	if (w->part_rev == 0 && r >= w->next_rev)
		w->next_rev = r + 1;
	memset(&u, 0, sizeof u);
	u.progress = true;
	u.revision = w->next_rev - 1 > r ? w->next_rev - 1 : r;
	watch_call(c, w, &u);
}

/* The store ended the watch: resumed elsewhere when the member is going away
 * or lost its way, otherwise the end for the caller. */
static void watch_canceled_by_store(struct cairn_client *c,
                                    struct cairn_watch *w,
                                    const struct result_events *ev)
{
	const char *msg = ev->msg != NULL ? ev->msg : cairn_strerror(ev->err);

	if (watch_retryable(ev->err)) {
		link_fail(c, ev->err, "watch ended by the member: %s", msg);
		return;
	}
	watch_end(c, w, ev->err,
	          ev->err == CAIRN_ECOMPACTED ? ev->compact_revision : 0, "%s",
	          msg);
}

static void on_events(struct cairn_client *c, const uint8_t *p, uint32_t len)
{
	struct result_events ev;
	struct cairn_watch *w;
	char err[256] = "";
	int rv;

	rv = result_decode_events(p, len, c->scratch, &ev, err, sizeof err);
	w = ev.has_watch_id ? wt_get(&c->by_wid, ev.watch_id) : NULL;
	if (rv == CAIRN_EPROTO && w != NULL) {
		watch_end(c, w, rv, 0, "malformed events from %s: %s",
		          c->eps[c->ep].name, err);
		send_and_forget(c, PROTO_OP_WATCH_CANCEL, ev.watch_id);
	} else if (rv != 0) { /* resumed, so nothing is lost */
		link_fail(c, rv, "events: %s",
		          rv == CAIRN_ENOMEM ? "out of memory" : err);
	} else if (w == NULL) {
		return; /* canceled meanwhile */
	} else if (ev.cancel) {
		watch_canceled_by_store(c, w, &ev);
	} else if (ev.progress) {
		watch_progressed(c, w, &ev);
	} else if (ev.n_events > 0) {
		watch_events(c, w, &ev);
	}
}

/* -- the API */

static int watch_check(struct cairn_client *c, const struct cairn_watch_opts *o,
                       cairn_watch_cb cb)
{
	if (c->sync)
		return set_err(c, CAIRN_EINVAL,
		               "watches need a client from cairn_open_async");
	if (o == NULL || cb == NULL)
		return set_err(c, CAIRN_EINVAL,
		               "cairn_watch_start: no %s given",
		               o == NULL ? "options" : "callback");
	if (c->closing)
		return set_err(c, CAIRN_ECANCELED, "the client is closing");
	if (!bytes_ok(o->key, o->key_len) || !bytes_ok(o->end, o->end_len))
		return set_err(c, CAIRN_EINVAL,
		               "watch: NULL pointer with a length");
	if (o->key_len == 0)
		return set_err(c, CAIRN_EINVAL, "watch: the key is empty");
	if (o->key_len > PROTO_MAX_KEY || o->end_len > PROTO_MAX_KEY)
		return set_err(
		    c, CAIRN_EINVAL, "watch: key of %zu bytes, at most %u",
		    o->key_len > o->end_len ? o->key_len : o->end_len,
		    PROTO_MAX_KEY);
	if (o->start_revision < 0)
		return set_err(
		    c, CAIRN_EINVAL,
		    "watch: the start revision must not be negative");
	if (o->no_put && o->no_delete)
		return set_err(
		    c, CAIRN_EINVAL,
		    "watch: no_put and no_delete leave nothing to watch");
	return 0;
}

static struct cairn_watch *watch_new(struct cairn_client *c,
                                     const struct cairn_watch_opts *o,
                                     cairn_watch_cb cb, void *arg)
{
	struct cairn_watch *w = calloc(1, sizeof *w + o->key_len + o->end_len);

	if (w == NULL)
		return NULL;
	w->c = c;
	w->state = WATCH_PENDING;
	w->serial = ++c->next_serial;
	w->cb = cb;
	w->arg = arg;
	w->key_len = o->key_len;
	w->end_len = o->end_len;
	memcpy(w->bytes, o->key, o->key_len);
	if (o->end_len > 0)
		memcpy(w->bytes + o->key_len, o->end, o->end_len);
	w->next_rev = o->start_revision;
	w->prev_kv = o->prev_kv;
	w->no_put = o->no_put;
	w->no_delete = o->no_delete;
	w->progress_notify = o->progress_notify;
	uv_update_time(c->loop);
	w->started = uv_now(c->loop);
	w->deadline = w->started + c->opts.request_timeout_ms;
	return w;
}

int cairn_watch_start(cairn_client *c, const struct cairn_watch_opts *opts,
                      cairn_watch_cb cb, void *arg, cairn_watch **out)
{
	struct cairn_watch *w;
	int rv;

	if (out != NULL)
		*out = NULL;
	if (c == NULL)
		return CAIRN_EINVAL;
	rv = watch_check(c, opts, cb);
	if (rv != 0)
		return rv;
	w = watch_new(c, opts, cb, arg);
	if (w == NULL)
		return set_err(c, CAIRN_ENOMEM, "out of memory");
	watch_list_append(c, w);
	c->n_live++;
	TRACE(c, "watch %" PRIu64 " started from revision %" PRId64, w->serial,
	      w->next_rev);
	if (out != NULL)
		*out = w;
	if (c->state == LINK_IDLE)
		link_connect(c, first_endpoint(c));
	else if (c->state == LINK_READY)
		watches_send_all(c);
	arm_watch_timer(c);
	return 0;
}

void cairn_watch_cancel(cairn_watch *w)
{
	struct cairn_client *c;
	uint64_t wid;
	bool active;

	if (w == NULL || !watch_live(w->state))
		return; /* ended already: from inside its callback, a no-op */
	c = w->c;
	wid = w->wid;
	active = w->state == WATCH_ACTIVE;
	watch_end(c, w, CAIRN_ECANCELED, 0, "canceled");
	/* w may be gone now */
	if (active)
		send_and_forget(c, PROTO_OP_WATCH_CANCEL, wid);
}

int cairn_watch_progress(cairn_client *c)
{
	if (c == NULL)
		return CAIRN_EINVAL;
	if (c->sync)
		return set_err(c, CAIRN_EINVAL,
		               "watches need a client from cairn_open_async");
	if (c->closing)
		return set_err(c, CAIRN_ECANCELED, "the client is closing");
	if (c->state != LINK_READY || c->conn == NULL) {
		c->progress_wanted = c->n_live > 0; /* sent with the watches */
		return 0;
	}
	if (progress_send(c) != 0)
		return set_err(c, CAIRN_ENOMEM, "out of memory");
	schedule_flush(c);
	arm_watch_timer(c);
	return 0;
}

/* ---- the client ---------------------------------------------------------- */

static void client_free(struct cairn_client *c)
{
	sodium_memzero(c->key, sizeof c->key);
	sodium_memzero(c->token, sizeof c->token);
	if (c->password != NULL)
		sodium_memzero(c->password, strlen(c->password));
	free(c->user);
	free(c->password);
	free(c->by_wid.slot);
	free(c->by_req.slot);
	result_arena_free(c->scratch);
	free(c->win.slot);
	free(c->eps);
	free(c);
}

/* An async client goes away with its last handle. */
static void handle_released(struct cairn_client *c)
{
	assert(c->handles > 0);
	c->handles--;
	if (c->handles == 0 && c->closing && !c->sync)
		client_free(c);
}

static void on_handle_closed(uv_handle_t *h)
{
	handle_released(h->data);
}

#define CLIENT_HANDLES 4

/* Closes the first n of the client's own handles (all when open). */
static void close_handles(struct cairn_client *c, unsigned n)
{
	uv_handle_t *h[CLIENT_HANDLES] = {
	    (uv_handle_t *)&c->link_timer, (uv_handle_t *)&c->deadline_timer,
	    (uv_handle_t *)&c->flush, (uv_handle_t *)&c->watch_timer};
	unsigned i;

	for (i = 0; i < n && i < CLIENT_HANDLES; i++)
		uv_close(h[i], on_handle_closed);
}

static int init_handles(struct cairn_client *c)
{
	int rv;

	rv = uv_timer_init(c->loop, &c->link_timer);
	if (rv != 0)
		return rv;
	c->handles++;
	rv = uv_timer_init(c->loop, &c->deadline_timer);
	if (rv != 0)
		return rv;
	c->handles++;
	rv = uv_prepare_init(c->loop, &c->flush);
	if (rv != 0)
		return rv;
	c->handles++;
	rv = uv_timer_init(c->loop, &c->watch_timer);
	if (rv != 0)
		return rv;
	c->handles++;
	c->link_timer.data = c;
	c->deadline_timer.data = c;
	c->flush.data = c;
	c->watch_timer.data = c;
	uv_unref((uv_handle_t *)&c->link_timer);
	uv_unref((uv_handle_t *)&c->flush);
	uv_unref(
	    (uv_handle_t *)&c->watch_timer); /* watches keep no loop alive */
	return 0;
}

static int new_client_id(struct cairn_client *c)
{
	if (sodium_init() < 0)
		return CAIRN_EINTERNAL;
	do
		randombytes_buf(&c->cid, sizeof c->cid);
	while (c->cid == 0);
	c->rand = c->cid;
	return 0;
}

static bool env_set(const char *name)
{
	const char *v = getenv(name);

	return v != NULL && *v != '\0';
}

/* The cluster secret from the options or the environment (see cairn.h). */
static int load_secret(struct cairn_client *c, const struct cairn_options *o,
                       char *err, size_t len)
{
	char inner[400];
	const char *from;
	int rv;

	c->secure = true;
	if (o != NULL && o->secret != NULL) {
		from = "the secret option";
		rv = secret_parse(o->secret, c->key, inner, sizeof inner);
	} else if (o != NULL && o->secret_file != NULL) {
		from = NULL;
		rv = secret_load_file(o->secret_file, c->key, inner, sizeof inner);
	} else if (o != NULL && o->insecure) {
		c->secure = false;
		return 0;
	} else if (env_set("CAIRN_SECRET")) {
		from = "CAIRN_SECRET";
		rv = secret_parse(getenv("CAIRN_SECRET"), c->key, inner,
		                  sizeof inner);
	} else if (env_set("CAIRN_SECRET_FILE")) {
		from = "CAIRN_SECRET_FILE";
		rv = secret_load_file(getenv("CAIRN_SECRET_FILE"), c->key, inner,
		                      sizeof inner);
	} else if (env_set("CAIRN_INSECURE") &&
	           strcmp(getenv("CAIRN_INSECURE"), "0") != 0) {
		c->secure = false;
		return 0;
	} else {
		snprintf(err, len,
		         "no cluster secret: set CAIRN_SECRET_FILE to a copy of "
		         "the store's DATA_DIR/cluster.secret (cairnctl "
		         "--secret-file), or use insecure (--insecure) for a "
		         "store run with --insecure");
		return CAIRN_EAUTH;
	}
	if (rv != 0)
		snprintf(err, len, "%s%s%s", from ? from : "", from ? ": " : "",
		         inner);
	return rv;
}

/* The user and password from the options or the environment; 0 or
 * CAIRN_ENOMEM, CAIRN_EINVAL with a message. */
static int load_user(struct cairn_client *c, const struct cairn_options *o,
                     char *err, size_t len)
{
	const char *user = o != NULL ? o->user : NULL;
	const char *pw = o != NULL ? o->password : NULL;

	if (user == NULL && env_set("CAIRN_USER")) {
		user = getenv("CAIRN_USER");
		pw = getenv("CAIRN_PASSWORD");
	}
	if (user == NULL || *user == '\0')
		return 0;
	if (strlen(user) > PROTO_MAX_NAME ||
	    (pw != NULL && strlen(pw) > PROTO_MAX_PASSWORD)) {
		snprintf(err, len, "the user name or password is too long");
		return CAIRN_EINVAL;
	}
	c->user = strdup(user);
	c->password = strdup(pw != NULL ? pw : "");
	if (c->user == NULL || c->password == NULL) {
		snprintf(err, len, "out of memory");
		return CAIRN_ENOMEM;
	}
	return 0;
}

static void set_options(struct cairn_client *c, const struct cairn_options *o)
{
	const char *trace = getenv("CAIRN_TRACE");

	if (o != NULL)
		c->opts = *o;
	c->opts.secret = NULL; /* borrowed: read by load_secret, not kept */
	c->opts.secret_file = NULL;
	c->opts.user = NULL; /* copied by load_user */
	c->opts.password = NULL;
	if (c->opts.dial_timeout_ms == 0)
		c->opts.dial_timeout_ms = CLIENT_DIAL_TIMEOUT_MS;
	if (c->opts.request_timeout_ms == 0)
		c->opts.request_timeout_ms = CLIENT_REQUEST_TIMEOUT_MS;
	c->trace = trace != NULL && *trace != '\0';
	c->state = LINK_IDLE;
	c->next_seq = 1;
	c->ack = 1;
	c->win.base = 1; /* id 0 is the HELLO's */
	c->backoff_ms = CLIENT_BACKOFF_MIN_MS;
}

/* Handles that could not all be set up: close those that were. */
static void abandon(struct cairn_client *c)
{
	c->closing = true;
	close_handles(c, c->handles);
	if (c->sync) {
		uv_run(c->loop, UV_RUN_DEFAULT);
		uv_loop_close(c->loop);
		client_free(c);
	} else if (c->handles == 0) {
		client_free(c);
	}
}

static int client_new(struct cairn_client **out, uv_loop_t *loop,
                      const char *endpoints, const struct cairn_options *opts,
                      char *errbuf, size_t errlen)
{
	char err[512] = "out of memory";
	struct cairn_client *c = calloc(1, sizeof *c);
	int rv = CAIRN_ENOMEM;

	if (c == NULL)
		goto err;
	rv = parse_endpoints(c, endpoints, err, sizeof err);
	if (rv != 0)
		goto err_after_alloc;
	set_options(c, opts);
	rv = load_secret(c, opts, err, sizeof err);
	if (rv == 0)
		rv = load_user(c, opts, err, sizeof err);
	if (rv != 0)
		goto err_after_alloc;
	rv = new_client_id(c);
	if (rv != 0) {
		snprintf(err, sizeof err, "libsodium failed to initialize");
		goto err_after_alloc;
	}
	c->sync = loop == NULL;
	c->loop = c->sync ? &c->own_loop : loop;
	if (c->sync && (rv = uv_loop_init(c->loop)) != 0) {
		snprintf(err, sizeof err, "uv_loop_init: %s", uv_strerror(rv));
		rv = CAIRN_EINTERNAL;
		goto err_after_alloc;
	}
	rv = init_handles(c);
	if (rv != 0) {
		snprintf(err, sizeof err, "libuv: %s", uv_strerror(rv));
		rv = CAIRN_EINTERNAL;
		goto err_after_loop;
	}
	if (!c->sync && (c->scratch = result_arena_new()) == NULL) {
		rv = CAIRN_ENOMEM;
		goto err_after_loop;
	}
	*out = c;
	return 0;

err_after_loop:
	abandon(c); /* frees c */
	goto err;
err_after_alloc:
	client_free(c);
err:
	if (errbuf != NULL && errlen > 0)
		snprintf(errbuf, errlen, "%s", err);
	return rv;
}

int cairn_open(cairn_client **out, const char *endpoints,
               const struct cairn_options *opts, char *errbuf,
               size_t errbuf_len)
{
	if (out == NULL)
		return CAIRN_EINVAL;
	*out = NULL;
	return client_new(out, NULL, endpoints, opts, errbuf, errbuf_len);
}

int cairn_open_async(cairn_client **out, struct uv_loop_s *loop,
                     const char *endpoints, const struct cairn_options *opts,
                     char *errbuf, size_t errbuf_len)
{
	if (out == NULL)
		return CAIRN_EINVAL;
	*out = NULL;
	if (loop == NULL) {
		if (errbuf != NULL && errbuf_len > 0)
			snprintf(errbuf, errbuf_len, "no loop given");
		return CAIRN_EINVAL;
	}
	return client_new(out, loop, endpoints, opts, errbuf, errbuf_len);
}

void cairn_close(cairn_client *c)
{
	if (c == NULL || c->closing)
		return;
	c->closing = true;
	link_drop(c);
	link_move(c, LINK_CLOSED);
	fail_all(c, CAIRN_ECANCELED, "canceled: the client was closed");
	watches_end_all(c, CAIRN_ECANCELED, "canceled: the client was closed");
	close_handles(c, CLIENT_HANDLES);
	if (!c->sync)
		return; /* freed by the last close callback */
	uv_run(c->loop, UV_RUN_DEFAULT);
	uv_loop_close(c->loop);
	client_free(c);
}

const char *cairn_errmsg(const cairn_client *c)
{
	if (c == NULL)
		return "no client";
	return c->errmsg[0] != '\0' ? c->errmsg : "no error";
}

static unsigned first_endpoint(const struct cairn_client *c)
{
	int leader = endpoint_of(c, c->leader_id);

	if (c->opts.no_redirect)
		return 0;
	if (c->ep_failed)
		return next_endpoint(c);
	return leader >= 0 ? (unsigned)leader : c->ep;
}

/* Gets a new request going according to the link's state. */
static void kick(struct cairn_client *c, struct req *r)
{
	switch (c->state) {
	case LINK_IDLE:
		link_connect(c, first_endpoint(c));
		break;
	case LINK_READY:
		if (send_req(c, r) != 0)
			link_fail(c, CAIRN_ENOMEM, "out of memory");
		else
			schedule_flush(c);
		break;
	default:
		break; /* sent when the link is ready */
	}
}

static int submit(struct cairn_client *c, const struct cairn_op *op,
                  cairn_cb cb, void *arg)
{
	struct req *r = NULL;
	int rv;

	if (c->closing)
		return set_err(c, CAIRN_ECANCELED, "the client is closing");
	rv = check_op(c, op);
	if (rv == 0)
		rv = req_new(c, op, &r);
	if (rv != 0)
		return rv;
	if (win_push(&c->win, r) != 0) {
		req_free(r);
		return set_err(c, CAIRN_ENOMEM, "out of memory");
	}
	r->cb = cb;
	r->arg = arg;
	if (r->write)
		r->seq = c->next_seq++;
	uv_update_time(c->loop);
	r->submitted = uv_now(c->loop);
	r->deadline = r->submitted + c->opts.request_timeout_ms;
	arm_deadline(c);
	kick(c, r);
	return 0;
}

int cairn_submit(cairn_client *c, const struct cairn_op *op, cairn_cb cb,
                 void *arg)
{
	if (c == NULL)
		return CAIRN_EINVAL;
	if (c->sync)
		return set_err(
		    c, CAIRN_EINVAL,
		    "cairn_submit needs a client from cairn_open_async");
	if (cb == NULL)
		return set_err(c, CAIRN_EINVAL,
		               "cairn_submit: no callback given");
	return submit(c, op, cb, arg);
}

struct sync_call {
	bool done;
	struct cairn_result *res;
};

static void on_sync_done(cairn_client *c, struct cairn_result *res, void *arg)
{
	struct sync_call *call = arg;

	(void)c;
	call->done = true;
	call->res = res;
}

int cairn_do(cairn_client *c, const struct cairn_op *op,
             struct cairn_result **out)
{
	struct sync_call call = {false, NULL};
	int rv;

	if (out != NULL)
		*out = NULL;
	if (c == NULL)
		return CAIRN_EINVAL;
	if (!c->sync)
		return set_err(c, CAIRN_EINVAL,
		               "cairn_do needs a client from cairn_open");
	if (out == NULL)
		return set_err(c, CAIRN_EINVAL,
		               "cairn_do: no place for the result");
	rv = submit(c, op, on_sync_done, &call);
	if (rv != 0)
		return rv;
	while (!call.done)
		if (uv_run(c->loop, UV_RUN_ONCE) == 0 && !call.done)
			fail_all(c, CAIRN_EINTERNAL,
			         "internal error: request stalled");
	rv = call.res->err;
	if (rv != 0) {
		set_err(c, rv, "%s", call.res->errmsg);
		cairn_result_free(call.res);
		return rv;
	}
	*out = call.res;
	return 0;
}

int cairn_put(cairn_client *c, const void *key, size_t key_len,
              const void *value, size_t value_len, struct cairn_result **out)
{
	struct cairn_op op = {.type = CAIRN_OP_PUT,
	                      .key = key,
	                      .key_len = key_len,
	                      .value = value,
	                      .value_len = value_len};

	return cairn_do(c, &op, out);
}

int cairn_get(cairn_client *c, const void *key, size_t key_len,
              struct cairn_result **out)
{
	struct cairn_op op = {
	    .type = CAIRN_OP_RANGE, .key = key, .key_len = key_len};

	return cairn_do(c, &op, out);
}

int cairn_delete(cairn_client *c, const void *key, size_t key_len,
                 struct cairn_result **out)
{
	struct cairn_op op = {
	    .type = CAIRN_OP_DELETE, .key = key, .key_len = key_len};

	return cairn_do(c, &op, out);
}

size_t cairn_prefix_end(const void *key, size_t key_len, uint8_t *end)
{
	const uint8_t *k = key;
	size_t n = key_len;

	while (n > 0 && k[n - 1] == 0xff)
		n--;
	if (n == 0) {
		end[0] = 0;
		return 1;
	}
	memmove(end, k, n);
	end[n - 1]++;
	return n;
}
