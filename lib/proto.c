/*
 * proto: decoding of requests and the shared encoding helpers (see proto.h).
 *
 * Decoding walks the map once with the bounds-checked reader; unknown keys are
 * skipped so newer clients can add optional fields. Nested operations (a
 * transaction's branches) are decoded by the same function one level down;
 * a transaction inside a transaction is refused.
 */
#include "proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"

static const char *const op_names[PROTO_OP_MAX] = {
#define PROTO__OP_NAME(name, code, w) [code] = #name,
	PROTO_OPS(PROTO__OP_NAME)
#undef PROTO__OP_NAME
};

static const bool op_writes[PROTO_OP_MAX] = {
#define PROTO__OP_WRITE(name, code, w) [code] = w,
	PROTO_OPS(PROTO__OP_WRITE)
#undef PROTO__OP_WRITE
};

const char *proto_op_name(unsigned op)
{
	return op < PROTO_OP_MAX ? op_names[op] : NULL;
}

bool proto_op_is_write(unsigned op)
{
	return op < PROTO_OP_MAX && op_writes[op];
}

bool proto_op_is_auth(unsigned op)
{
	return op >= PROTO_OP_AUTHENTICATE && op <= PROTO_OP_AUTH_STATUS;
}

static bool read_compare(struct mp_dec *d, struct proto_compare *c)
{
	const char *k;
	uint32_t klen;
	uint32_t n;
	uint64_t u;

	if (!mp_read_map(&d->r, &n))
		return mp_dec_fail(d, CAIRN_EPROTO, "compare: expected a map");
	while (n-- > 0) {
		if (!mp_read_str(&d->r, &k, &klen))
			return mp_dec_fail(d, CAIRN_EPROTO, "compare: bad key");
		if (MP_KEY_IS(k, klen, "k")) {
			if (!mp_dec_bytes(d, "cmp.k", &c->key, &c->key_len,
			                PROTO_MAX_KEY))
				return false;
		} else if (MP_KEY_IS(k, klen, "t")) {
			if (!mp_dec_uint(d, "cmp.t", &u))
				return false;
			if (u > CAIRN_CMP_MOD)
				return mp_dec_fail(d, CAIRN_EINVAL,
				             "compare: unknown target %llu",
				             (unsigned long long)u);
			c->target = (uint8_t)u;
		} else if (MP_KEY_IS(k, klen, "r")) {
			if (!mp_dec_uint(d, "cmp.r", &u))
				return false;
			if (u > CAIRN_CMP_GREATER)
				return mp_dec_fail(d, CAIRN_EINVAL,
				             "compare: unknown result %llu",
				             (unsigned long long)u);
			c->result = (uint8_t)u;
		} else if (MP_KEY_IS(k, klen, "v")) {
			if (!mp_dec_bytes(d, "cmp.v", &c->value, &c->value_len,
			                PROTO_REQ_FRAME_MAX))
				return false;
		} else if (MP_KEY_IS(k, klen, "n")) {
			if (!mp_dec_int(d, "cmp.n", &c->number))
				return false;
		} else if (!mp_skip(&d->r)) {
			return mp_dec_fail(d, CAIRN_EPROTO, "compare: malformed value");
		}
	}
	return true;
}

static bool read_compares(struct mp_dec *d, struct proto_req *req)
{
	uint32_t n;
	uint32_t i;

	if (!mp_read_array(&d->r, &n))
		return mp_dec_fail(d, CAIRN_EPROTO, "field 'cmp': expected an array");
	if (n > PROTO_MAX_TXN_OPS)
		return mp_dec_fail(d, CAIRN_ETOOMANYOPS,
		             "transaction has %u compares, at most %u", n,
		             PROTO_MAX_TXN_OPS);
	if (req->cmp != NULL)
		return mp_dec_fail(d, CAIRN_EPROTO, "field 'cmp' given twice");
	if (n == 0)
		return true;
	req->cmp = calloc(n, sizeof *req->cmp);
	if (req->cmp == NULL)
		return mp_dec_fail(d, CAIRN_ENOMEM, "out of memory");
	req->n_cmp = n;
	for (i = 0; i < n; i++)
		if (!read_compare(d, &req->cmp[i]))
			return false;
	return true;
}

static bool read_op(struct mp_dec *d, struct proto_req *req, unsigned depth);

static bool read_branch(struct mp_dec *d, const char *field,
                        struct proto_req **ops, uint32_t *n_ops,
                        unsigned depth)
{
	uint32_t n;
	uint32_t i;

	if (depth > 0)
		return mp_dec_fail(d, CAIRN_EINVAL, "nested transactions are not supported");
	if (!mp_read_array(&d->r, &n))
		return mp_dec_fail(d, CAIRN_EPROTO, "field '%s': expected an array", field);
	if (n > PROTO_MAX_TXN_OPS)
		return mp_dec_fail(d, CAIRN_ETOOMANYOPS,
		             "transaction branch has %u operations, at most %u", n,
		             PROTO_MAX_TXN_OPS);
	if (*ops != NULL)
		return mp_dec_fail(d, CAIRN_EPROTO, "field '%s' given twice", field);
	if (n == 0)
		return true;
	*ops = calloc(n, sizeof **ops);
	if (*ops == NULL)
		return mp_dec_fail(d, CAIRN_ENOMEM, "out of memory");
	*n_ops = n;
	for (i = 0; i < n; i++) {
		if (!read_op(d, &(*ops)[i], depth + 1))
			return false;
		if ((*ops)[i].op != PROTO_OP_RANGE && (*ops)[i].op != PROTO_OP_PUT &&
		    (*ops)[i].op != PROTO_OP_DELETE)
			return mp_dec_fail(d, CAIRN_EINVAL,
			             "a transaction may only hold range, put and delete");
	}
	return true;
}

static bool read_seed(struct mp_dec *d, struct proto_req *req)
{
	if (!mp_dec_bytes(d, "seed", &req->seed, &req->seed_len,
	                  PROTO_SEED_BYTES))
		return false;
	if (req->seed_len != PROTO_SEED_BYTES)
		return mp_dec_fail(d, CAIRN_EINVAL, "field 'seed': %u bytes, not %u",
		                   req->seed_len, PROTO_SEED_BYTES);
	return true;
}

static bool read_perm(struct mp_dec *d, struct proto_req *req)
{
	if (!mp_dec_uint(d, "perm", &req->perm))
		return false;
	if (req->perm > CAIRN_PERM_READWRITE)
		return mp_dec_fail(d, CAIRN_EINVAL,
		                   "unknown permission type %llu",
		                   (unsigned long long)req->perm);
	return true;
}

/* One key of a request map; returns false with d->err set on failure. */
static bool read_field(struct mp_dec *d, struct proto_req *req, const char *k,
                       uint32_t klen, unsigned depth)
{
	uint64_t u;

	if (MP_KEY_IS(k, klen, "id"))
		return mp_dec_uint(d, "id", &req->id);
	if (MP_KEY_IS(k, klen, "op")) {
		if (!mp_dec_uint(d, "op", &u))
			return false;
		if (u >= PROTO_OP_MAX)
			return mp_dec_fail(d, CAIRN_EINVAL, "unknown operation %llu",
			             (unsigned long long)u);
		req->op = (unsigned)u;
		return true;
	}
	if (MP_KEY_IS(k, klen, "k"))
		return mp_dec_bytes(d, "k", &req->key, &req->key_len, PROTO_MAX_KEY);
	if (MP_KEY_IS(k, klen, "e"))
		return mp_dec_bytes(d, "e", &req->end, &req->end_len, PROTO_MAX_KEY);
	if (MP_KEY_IS(k, klen, "v"))
		return mp_dec_bytes(d, "v", &req->value, &req->value_len,
		                  PROTO_REQ_FRAME_MAX);
	if (MP_KEY_IS(k, klen, "l"))
		return mp_dec_int(d, "l", &req->lease);
	if (MP_KEY_IS(k, klen, "rev"))
		return mp_dec_int(d, "rev", &req->revision);
	if (MP_KEY_IS(k, klen, "lim"))
		return mp_dec_int(d, "lim", &req->limit);
	if (MP_KEY_IS(k, klen, "pkv"))
		return mp_dec_bool(d, "pkv", &req->prev_kv);
	if (MP_KEY_IS(k, klen, "ser"))
		return mp_dec_bool(d, "ser", &req->serializable);
	if (MP_KEY_IS(k, klen, "ko"))
		return mp_dec_bool(d, "ko", &req->keys_only);
	if (MP_KEY_IS(k, klen, "co"))
		return mp_dec_bool(d, "co", &req->count_only);
	if (MP_KEY_IS(k, klen, "cid"))
		return mp_dec_uint(d, "cid", &req->client_id);
	if (MP_KEY_IS(k, klen, "seq"))
		return mp_dec_uint(d, "seq", &req->seq);
	if (MP_KEY_IS(k, klen, "ack"))
		return mp_dec_uint(d, "ack", &req->ack);
	if (MP_KEY_IS(k, klen, "ver"))
		return mp_dec_uint(d, "ver", &req->version);
	if (MP_KEY_IS(k, klen, "ttl"))
		return mp_dec_int(d, "ttl", &req->ttl);
	if (MP_KEY_IS(k, klen, "keys"))
		return mp_dec_bool(d, "keys", &req->with_keys);
	if (MP_KEY_IS(k, klen, "wid"))
		return mp_dec_uint(d, "wid", &req->watch_id);
	if (MP_KEY_IS(k, klen, "np"))
		return mp_dec_bool(d, "np", &req->no_put);
	if (MP_KEY_IS(k, klen, "nd"))
		return mp_dec_bool(d, "nd", &req->no_delete);
	if (MP_KEY_IS(k, klen, "pn"))
		return mp_dec_bool(d, "pn", &req->progress_notify);
	if (MP_KEY_IS(k, klen, "mid"))
		return mp_dec_uint(d, "mid", &req->member);
	if (MP_KEY_IS(k, klen, "peer"))
		return mp_dec_bytes(d, "peer", &req->peer, &req->peer_len,
		                    PROTO_MAX_ATTR - 1);
	if (MP_KEY_IS(k, klen, "cli"))
		return mp_dec_bytes(d, "cli", &req->addr, &req->addr_len,
		                  PROTO_MAX_ATTR - 1);
	if (MP_KEY_IS(k, klen, "name"))
		return mp_dec_bytes(d, "name", &req->name, &req->name_len,
		                  PROTO_MAX_ATTR - 1);
	if (MP_KEY_IS(k, klen, "user"))
		return mp_dec_bytes(d, "user", &req->user, &req->user_len,
		                    PROTO_MAX_NAME);
	if (MP_KEY_IS(k, klen, "role"))
		return mp_dec_bytes(d, "role", &req->role, &req->role_len,
		                    PROTO_MAX_NAME);
	if (MP_KEY_IS(k, klen, "pw"))
		return mp_dec_bytes(d, "pw", &req->password, &req->password_len,
		                    PROTO_MAX_PASSWORD);
	if (MP_KEY_IS(k, klen, "hash"))
		return mp_dec_bytes(d, "hash", &req->hash, &req->hash_len,
		                    PROTO_MAX_HASH - 1);
	if (MP_KEY_IS(k, klen, "tok"))
		return mp_dec_bytes(d, "tok", &req->token, &req->token_len,
		                    PROTO_MAX_TOKEN);
	if (MP_KEY_IS(k, klen, "seed"))
		return read_seed(d, req);
	if (MP_KEY_IS(k, klen, "perm"))
		return read_perm(d, req);
	if (MP_KEY_IS(k, klen, "cmp"))
		return depth > 0 ? mp_dec_fail(d, CAIRN_EINVAL, "nested compares")
		                 : read_compares(d, req);
	if (MP_KEY_IS(k, klen, "s"))
		return read_branch(d, "s", &req->succ, &req->n_succ, depth);
	if (MP_KEY_IS(k, klen, "f"))
		return read_branch(d, "f", &req->fail, &req->n_fail, depth);
	if (!mp_skip(&d->r))
		return mp_dec_fail(d, CAIRN_EPROTO, "malformed value of an unknown field");
	return true;
}

static bool read_op(struct mp_dec *d, struct proto_req *req, unsigned depth)
{
	const char *k;
	uint32_t klen;
	uint32_t n;
	bool have_op = false;

	if (!mp_read_map(&d->r, &n))
		return mp_dec_fail(d, CAIRN_EPROTO, "expected a map");
	while (n-- > 0) {
		if (!mp_read_str(&d->r, &k, &klen))
			return mp_dec_fail(d, CAIRN_EPROTO, "map key is not a string");
		have_op |= MP_KEY_IS(k, klen, "op");
		if (!read_field(d, req, k, klen, depth))
			return false;
	}
	if (!have_op)
		return mp_dec_fail(d, CAIRN_EPROTO, "request has no 'op'");
	if (req->limit < 0 || req->revision < 0 || req->lease < 0)
		return mp_dec_fail(d, CAIRN_EINVAL,
		             "limit, revision and lease must not be negative");
	return true;
}

static void free_ops(struct proto_req *ops, uint32_t n)
{
	uint32_t i;

	for (i = 0; i < n; i++)
		proto_req_free(&ops[i]);
	free(ops);
}

void proto_req_free(struct proto_req *req)
{
	free(req->cmp);
	free_ops(req->succ, req->n_succ);
	free_ops(req->fail, req->n_fail);
	req->cmp = NULL;
	req->succ = NULL;
	req->fail = NULL;
	req->n_cmp = req->n_succ = req->n_fail = 0;
}

int proto_decode_req(const uint8_t *p, size_t len, struct proto_req *req,
                     char *errbuf, size_t errlen)
{
	struct mp_dec d;
	struct mp_reader probe;

	memset(req, 0, sizeof *req);
	mp_dec_init(&d, p, len, "field", errbuf, errlen);
	/* Walk the whole request once first, so nesting is limited from the
	 * request map down, exactly as when the entry holding it is applied. */
	probe = d.r;
	if (!mp_skip(&probe)) {
		/* Decode anyway, for the id and the most precise message. */
		read_op(&d, req, 0);
		mp_dec_fail(&d, CAIRN_EPROTO, "request nested more than %d levels deep",
		      MP_MAX_DEPTH);
	} else if (read_op(&d, req, 0) && mp_left(&d.r) != 0)
		mp_dec_fail(&d, CAIRN_EPROTO, "%zu trailing bytes after the request",
		      mp_left(&d.r));
	if (d.err != 0) {
		uint64_t id = req->id;
		proto_req_free(req);
		memset(req, 0, sizeof *req);
		req->id = id;
	}
	return d.err;
}

void proto_put_kv(struct mp_writer *w, const uint8_t *key, size_t key_len,
                  const uint8_t *value, size_t value_len, int64_t create_rev,
                  int64_t mod_rev, int64_t version, int64_t lease)
{
	mp_put_array(w, 6);
	mp_put_bin(w, key, key_len);
	if (value != NULL)
		mp_put_bin(w, value, value_len);
	else
		mp_put_nil(w);
	mp_put_int(w, create_rev);
	mp_put_int(w, mod_rev);
	mp_put_int(w, version);
	mp_put_int(w, lease);
}

size_t proto_frame_begin(struct buf *b)
{
	static const uint8_t zero[4];
	size_t off = b->len;

	/* An allocation failure here shows at proto_frame_end as a short frame. */
	(void)buf_append(b, zero, sizeof zero);
	return off;
}

int proto_frame_end(struct buf *b, size_t off, uint32_t max)
{
	size_t len;

	if (b->len < off + 4)
		return CAIRN_ENOMEM;
	len = b->len - off - 4;
	if (len > max) {
		b->len = off;
		return CAIRN_ETOOBIG;
	}
	proto_put_len(b->data + off, (uint32_t)len);
	return 0;
}

/* n decimal digits at *s, without a leading zero unless n is 1, as a value in
 * [0, max]; *s moves past them. */
static bool dec_part(const char **s, unsigned max, unsigned *v)
{
	const char *p = *s;
	unsigned x = 0;

	while (*p >= '0' && *p <= '9' && p - *s < 5)
		x = x * 10 + (unsigned)(*p++ - '0');
	if (p == *s || (p - *s > 1 && **s == '0') || x > max ||
	    (*p >= '0' && *p <= '9'))
		return false;
	*s = p;
	*v = x;
	return true;
}

bool proto_valid_address(const char *s)
{
	unsigned v;
	int i;

	for (i = 0; i < 4; i++)
		if (!dec_part(&s, 255, &v) || *s++ != (i < 3 ? '.' : ':'))
			return false;
	return dec_part(&s, 65535, &v) && v > 0 && *s == '\0';
}
