/*
 * reqgen: requests for the fuzz targets that decode them (see fuzz.h): a
 * builder that turns fuzzer bytes into request payloads reaching every field
 * of every op, the writers of streams for that builder (seeds), an encoder
 * of decoded requests, and the invariants of proto_decode_req().
 */
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "fuzz.h"
#include "mp.h"
#include "proto.h"

enum kind { K_UINT, K_INT, K_BOOL, K_BIN, K_STR, K_CMPS, K_OPS };

struct field {
	const char *name;
	enum kind kind;
};

static const struct field req_fields[REQ_F_COUNT] = {
    [REQ_F_ID] = {"id", K_UINT},   [REQ_F_OP] = {"op", K_UINT},
    [REQ_F_K] = {"k", K_BIN},      [REQ_F_E] = {"e", K_BIN},
    [REQ_F_V] = {"v", K_BIN},      [REQ_F_L] = {"l", K_INT},
    [REQ_F_REV] = {"rev", K_INT},  [REQ_F_LIM] = {"lim", K_INT},
    [REQ_F_PKV] = {"pkv", K_BOOL}, [REQ_F_SER] = {"ser", K_BOOL},
    [REQ_F_KO] = {"ko", K_BOOL},   [REQ_F_CO] = {"co", K_BOOL},
    [REQ_F_CID] = {"cid", K_UINT}, [REQ_F_SEQ] = {"seq", K_UINT},
    [REQ_F_ACK] = {"ack", K_UINT}, [REQ_F_VER] = {"ver", K_UINT},
    [REQ_F_TTL] = {"ttl", K_INT},  [REQ_F_KEYS] = {"keys", K_BOOL},
    [REQ_F_WID] = {"wid", K_UINT}, [REQ_F_NP] = {"np", K_BOOL},
    [REQ_F_ND] = {"nd", K_BOOL},   [REQ_F_PN] = {"pn", K_BOOL},
    [REQ_F_MID] = {"mid", K_UINT}, [REQ_F_PEER] = {"peer", K_STR},
    [REQ_F_CLI] = {"cli", K_STR},  [REQ_F_NAME] = {"name", K_STR},
    [REQ_F_CMP] = {"cmp", K_CMPS}, [REQ_F_S] = {"s", K_OPS},
    [REQ_F_F] = {"f", K_OPS},      [REQ_F_USER] = {"user", K_STR},
    [REQ_F_ROLE] = {"role", K_STR}, [REQ_F_PW] = {"pw", K_STR},
    [REQ_F_HASH] = {"hash", K_STR}, [REQ_F_TOK] = {"tok", K_BIN},
    [REQ_F_SEED] = {"seed", K_BIN}, [REQ_F_PERM] = {"perm", K_UINT},
    [REQ_F_UNKNOWN] = {"x", K_UINT},
};

static const struct field cmp_fields[REQ_C_COUNT] = {
    [REQ_C_K] = {"k", K_BIN},  [REQ_C_T] = {"t", K_UINT},
    [REQ_C_R] = {"r", K_UINT}, [REQ_C_V] = {"v", K_BIN},
    [REQ_C_N] = {"n", K_INT},  [REQ_C_UNKNOWN] = {"x", K_UINT},
};

#define RAW_BIT 0x80
#define WIDE 0xf0      /* a number byte from here on: 8 more bytes */
#define FILL 0xff      /* a length byte: a long run of one byte */
#define FILL_MAX 70000 /* just past PROTO_MAX_KEY */
#define MAX_FIELDS 16
#define MAX_ELEMS 5
#define MAX_DEPTH 2

/* ---- building ------------------------------------------------------------ */

static uint64_t gen_num(struct fuzz_in *in)
{
	uint8_t b = fuzz_u8(in);

	return b < WIDE ? b : fuzz_be(in, 8);
}

static void gen_bytes(struct fuzz_in *in, struct mp_writer *w, bool str)
{
	uint8_t b = fuzz_u8(in);
	const uint8_t *p;
	uint8_t *fill;
	size_t len;

	if (b == FILL) {
		len = fuzz_be(in, 3) % FILL_MAX;
		fill = malloc(len + 1);
		if (fill == NULL)
			abort();
		memset(fill, fuzz_u8(in), len);
		p = fill;
	} else {
		fill = NULL;
		p = fuzz_bytes(in, b, &len);
	}
	if (str)
		mp_put_str(w, p, len);
	else
		mp_put_bin(w, p, len);
	free(fill);
}

/* One msgpack object from the stream as it is, or a few malformed bytes. */
static void gen_raw(struct fuzz_in *in, struct mp_writer *w)
{
	struct mp_reader r;
	const uint8_t *p;
	size_t len;

	mp_reader_init(&r, in->p, in->n);
	if (mp_read_raw(&r, &p, &len)) {
		fuzz_bytes(in, len, &len);
	} else {
		len = fuzz_u8(in) % 8;
		p = fuzz_bytes(in, len, &len);
	}
	mp_put_raw(w, p, len);
}

static void gen_op(struct fuzz_in *in, struct mp_writer *w, unsigned depth);

static void gen_cmp(struct fuzz_in *in, struct mp_writer *w, unsigned depth);

static void gen_value(struct fuzz_in *in, struct mp_writer *w, enum kind kind,
                      unsigned depth)
{
	unsigned n;

	switch (kind) {
	case K_UINT:
		mp_put_uint(w, gen_num(in));
		break;
	case K_INT:
		mp_put_int(w, (int64_t)gen_num(in));
		break;
	case K_BOOL:
		mp_put_bool(w, fuzz_u8(in) & 1);
		break;
	case K_BIN:
	case K_STR:
		gen_bytes(in, w, kind == K_STR);
		break;
	case K_CMPS:
	case K_OPS:
		n = depth < MAX_DEPTH ? fuzz_u8(in) % MAX_ELEMS : 0;
		mp_put_array(w, n);
		while (n-- > 0) {
			if (kind == K_CMPS)
				gen_cmp(in, w, depth + 1);
			else
				gen_op(in, w, depth + 1);
		}
		break;
	}
}

/* n_fields fields of a map from table: a selector byte, then the value. */
static uint32_t gen_fields(struct fuzz_in *in, struct mp_writer *w,
                           const struct field *table, unsigned n_table,
                           unsigned depth)
{
	unsigned n = fuzz_u8(in) % MAX_FIELDS;
	unsigned i;
	uint8_t sel;

	for (i = 0; i < n; i++) {
		sel = fuzz_u8(in);
		mp_put_key(w, table[(sel & ~RAW_BIT) % n_table].name);
		if (sel & RAW_BIT)
			gen_raw(in, w);
		else
			gen_value(in, w, table[(sel & ~RAW_BIT) % n_table].kind,
			          depth);
	}
	return n;
}

static void gen_cmp(struct fuzz_in *in, struct mp_writer *w, unsigned depth)
{
	size_t at = mp_open(w, true);

	mp_close(w, at, gen_fields(in, w, cmp_fields, REQ_C_COUNT, depth));
}

static void gen_op(struct fuzz_in *in, struct mp_writer *w, unsigned depth)
{
	unsigned op = fuzz_u8(in) % (REQ_OP_NONE + 1);
	size_t at = mp_open(w, true);
	uint32_t n = 1;

	mp_put_key(w, "id");
	mp_put_uint(w, fuzz_u8(in));
	if (op != REQ_OP_NONE) {
		mp_put_key(w, "op");
		mp_put_uint(w, op);
		n++;
	}
	n += gen_fields(in, w, req_fields, REQ_F_COUNT, depth);
	mp_close(w, at, n);
}

void fuzz_build_req(struct fuzz_in *in, struct buf *out)
{
	struct mp_writer w;

	mp_writer_init(&w, out);
	gen_op(in, &w, 0);
	if (w.err != 0)
		abort();
}

/* ---- seeds: streams for the builder ---------------------------------------
 */

static void seed_byte(struct buf *s, uint8_t b)
{
	if (buf_append(s, &b, 1) != 0)
		abort();
}

static void seed_num(struct buf *s, uint64_t v)
{
	int i;

	if (v < WIDE) {
		seed_byte(s, (uint8_t)v);
		return;
	}
	seed_byte(s, WIDE);
	for (i = 7; i >= 0; i--)
		seed_byte(s, (uint8_t)(v >> (8 * i)));
}

void reqseed_op(struct buf *s, unsigned op, uint8_t id, uint8_t n_fields)
{
	seed_byte(s, (uint8_t)op);
	seed_byte(s, id);
	seed_byte(s, n_fields);
}

void reqseed_uint(struct buf *s, unsigned field, uint64_t v)
{
	seed_byte(s, (uint8_t)field);
	seed_num(s, v);
}

void reqseed_bool(struct buf *s, unsigned field, bool v)
{
	seed_byte(s, (uint8_t)field);
	seed_byte(s, v);
}

void reqseed_bin(struct buf *s, unsigned field, const char *p, size_t len)
{
	seed_byte(s, (uint8_t)field);
	if (len >= FILL)
		abort(); /* seeds hold short strings */
	seed_byte(s, (uint8_t)len);
	if (buf_append(s, p, len) != 0)
		abort();
}

void reqseed_array(struct buf *s, unsigned field, uint8_t n)
{
	seed_byte(s, (uint8_t)field);
	seed_byte(s, n);
}

void reqseed_cmp(struct buf *s, uint8_t n_fields)
{
	seed_byte(s, n_fields);
}

/* A typical request of each op, as a stream; keys "a" and "b". */
void reqseed_example(struct buf *s, unsigned op)
{
	switch (op) {
	case PROTO_OP_HELLO:
		reqseed_op(s, op, 1, 1);
		reqseed_uint(s, REQ_F_VER, PROTO_VERSION);
		break;
	case PROTO_OP_RANGE:
		reqseed_op(s, op, 2, 5);
		reqseed_str(s, REQ_F_K, "a");
		reqseed_str(s, REQ_F_E, "c");
		reqseed_uint(s, REQ_F_LIM, 2);
		reqseed_bool(s, REQ_F_SER, true);
		reqseed_bool(s, REQ_F_KO, true);
		break;
	case PROTO_OP_PUT:
		reqseed_op(s, op, 3, 6);
		reqseed_str(s, REQ_F_K, "a");
		reqseed_str(s, REQ_F_V, "value");
		reqseed_bool(s, REQ_F_PKV, true);
		reqseed_uint(s, REQ_F_CID, 7);
		reqseed_uint(s, REQ_F_SEQ, 1);
		reqseed_uint(s, REQ_F_ACK, 1);
		break;
	case PROTO_OP_DELETE:
		reqseed_op(s, op, 4, 3);
		reqseed_str(s, REQ_F_K, "\0");
		reqseed_str(s, REQ_F_E, "\0");
		reqseed_bool(s, REQ_F_PKV, true);
		break;
	case PROTO_OP_TXN:
		reqseed_op(s, op, 5, 3);
		reqseed_array(s, REQ_F_CMP, 2);
		reqseed_cmp(s, 4);
		reqseed_str(s, REQ_C_K, "a");
		reqseed_uint(s, REQ_C_T, CAIRN_CMP_VALUE);
		reqseed_uint(s, REQ_C_R, CAIRN_CMP_EQUAL);
		reqseed_str(s, REQ_C_V, "value");
		reqseed_cmp(s, 4);
		reqseed_str(s, REQ_C_K, "b");
		reqseed_uint(s, REQ_C_T, CAIRN_CMP_VERSION);
		reqseed_uint(s, REQ_C_R, CAIRN_CMP_LESS);
		reqseed_uint(s, REQ_C_N, 3);
		reqseed_array(s, REQ_F_S, 2);
		reqseed_op(s, PROTO_OP_PUT, 0, 3);
		reqseed_str(s, REQ_F_K, "b");
		reqseed_str(s, REQ_F_V, "x");
		reqseed_bool(s, REQ_F_PKV, true);
		reqseed_op(s, PROTO_OP_RANGE, 0, 2);
		reqseed_str(s, REQ_F_K, "a");
		reqseed_str(s, REQ_F_E, "\0");
		reqseed_array(s, REQ_F_F, 1);
		reqseed_op(s, PROTO_OP_DELETE, 0, 1);
		reqseed_str(s, REQ_F_K, "a");
		break;
	case PROTO_OP_PUBLISH:
		reqseed_op(s, op, 6, 3);
		reqseed_uint(s, REQ_F_MID, 2);
		reqseed_str(s, REQ_F_CLI, "127.0.0.1:7002");
		reqseed_str(s, REQ_F_NAME, "two");
		break;
	case PROTO_OP_WATCH:
		reqseed_op(s, op, 7, 6);
		reqseed_str(s, REQ_F_K, "a");
		reqseed_str(s, REQ_F_E, "b");
		reqseed_uint(s, REQ_F_REV, 2);
		reqseed_bool(s, REQ_F_PKV, true);
		reqseed_bool(s, REQ_F_ND, true);
		reqseed_bool(s, REQ_F_PN, true);
		break;
	case PROTO_OP_WATCH_CANCEL:
		reqseed_op(s, op, 8, 1);
		reqseed_uint(s, REQ_F_WID, 1);
		break;
	case PROTO_OP_COMPACT:
		reqseed_op(s, op, 9, 3);
		reqseed_uint(s, REQ_F_REV, 3);
		reqseed_uint(s, REQ_F_CID, 7);
		reqseed_uint(s, REQ_F_SEQ, 2);
		break;
	case PROTO_OP_LEASE_GRANT:
		reqseed_op(s, op, 10, 2);
		reqseed_uint(s, REQ_F_TTL, 60);
		reqseed_uint(s, REQ_F_L, 0x10);
		break;
	case PROTO_OP_LEASE_REVOKE:
	case PROTO_OP_LEASE_KEEPALIVE:
		reqseed_op(s, op, 11, 1);
		reqseed_uint(s, REQ_F_L, 0x10);
		break;
	case PROTO_OP_LEASE_TTL:
		reqseed_op(s, op, 12, 2);
		reqseed_uint(s, REQ_F_L, 0x10);
		reqseed_bool(s, REQ_F_KEYS, true);
		break;
	case PROTO_OP_MEMBER_ADD:
		reqseed_op(s, op, 13, 2);
		reqseed_uint(s, REQ_F_MID, 4);
		reqseed_str(s, REQ_F_PEER, "127.0.0.1:7004");
		break;
	case PROTO_OP_MEMBER_REMOVE:
	case PROTO_OP_MEMBER_PROMOTE:
		reqseed_op(s, op, 14, 1);
		reqseed_uint(s, REQ_F_MID, 4);
		break;
	case PROTO_OP_AUTHENTICATE:
	case PROTO_OP_USER_ADD:
	case PROTO_OP_USER_PASSWD:
		reqseed_op(s, op, 16, 3);
		reqseed_str(s, REQ_F_USER, "alice");
		reqseed_str(s, REQ_F_PW, "secret");
		reqseed_str(s, REQ_F_HASH, "$argon2id$v=19$m=65536,t=2,p=1$x$y");
		break;
	case PROTO_OP_USER_DELETE:
	case PROTO_OP_USER_GET:
	case PROTO_OP_USER_GRANT_ROLE:
	case PROTO_OP_USER_REVOKE_ROLE:
		reqseed_op(s, op, 17, 3);
		reqseed_str(s, REQ_F_USER, "alice");
		reqseed_str(s, REQ_F_ROLE, "reader");
		reqseed_str(s, REQ_F_TOK, "not a token");
		break;
	case PROTO_OP_ROLE_ADD:
	case PROTO_OP_ROLE_DELETE:
	case PROTO_OP_ROLE_GET:
	case PROTO_OP_ROLE_GRANT_PERMISSION:
	case PROTO_OP_ROLE_REVOKE_PERMISSION:
		reqseed_op(s, op, 18, 4);
		reqseed_str(s, REQ_F_ROLE, "reader");
		reqseed_uint(s, REQ_F_PERM, CAIRN_PERM_READWRITE);
		reqseed_str(s, REQ_F_K, "a/");
		reqseed_str(s, REQ_F_E, "a0");
		break;
	case PROTO_OP_AUTH_ENABLE:
		reqseed_op(s, op, 19, 2);
		reqseed_str(s, REQ_F_SEED, "0123456789abcdef0123456789abcdef");
		reqseed_uint(s, REQ_F_CID, 7);
		break;
	default: /* STATUS, MEMBERS, WATCH_PROGRESS, EVENTS, LEASE_LIST... */
		reqseed_op(s, op, 15, 0);
		break;
	}
}

/* ---- encoding a decoded request --------------------------------------------
 */

struct fields {
	struct mp_writer *w;
	uint32_t n;
};

static void f_key(struct fields *f, const char *k)
{
	mp_put_key(f->w, k);
	f->n++;
}

static void f_bin(struct fields *f, const char *k, const uint8_t *p,
                  uint32_t len)
{
	if (p == NULL)
		return;
	f_key(f, k);
	mp_put_bin(f->w, p, len);
}

static void f_uint(struct fields *f, const char *k, uint64_t v)
{
	if (v == 0)
		return;
	f_key(f, k);
	mp_put_uint(f->w, v);
}

static void f_int(struct fields *f, const char *k, int64_t v)
{
	if (v == 0)
		return;
	f_key(f, k);
	mp_put_int(f->w, v);
}

static void f_bool(struct fields *f, const char *k, bool v)
{
	if (!v)
		return;
	f_key(f, k);
	mp_put_bool(f->w, true);
}

static void encode_cmp(struct mp_writer *w, const struct proto_compare *c)
{
	struct fields f = {w, 0};
	size_t at = mp_open(w, true);

	f_bin(&f, "k", c->key, c->key_len);
	f_uint(&f, "t", c->target);
	f_uint(&f, "r", c->result);
	f_bin(&f, "v", c->value, c->value_len);
	f_int(&f, "n", c->number);
	mp_close(w, at, f.n);
}

static void encode_req(struct mp_writer *w, const struct proto_req *r);

static void encode_ops(struct fields *f, const char *k,
                       const struct proto_req *ops, uint32_t n)
{
	uint32_t i;

	if (n == 0)
		return;
	f_key(f, k);
	mp_put_array(f->w, n);
	for (i = 0; i < n; i++)
		encode_req(f->w, &ops[i]);
}

static void encode_req(struct mp_writer *w, const struct proto_req *r)
{
	struct fields f = {w, 2};
	size_t at = mp_open(w, true);
	uint32_t i;

	mp_put_key(w, "id");
	mp_put_uint(w, r->id);
	mp_put_key(w, "op");
	mp_put_uint(w, r->op);
	f_bin(&f, "k", r->key, r->key_len);
	f_bin(&f, "e", r->end, r->end_len);
	f_bin(&f, "v", r->value, r->value_len);
	f_int(&f, "l", r->lease);
	f_int(&f, "rev", r->revision);
	f_int(&f, "lim", r->limit);
	f_bool(&f, "pkv", r->prev_kv);
	f_bool(&f, "ser", r->serializable);
	f_bool(&f, "ko", r->keys_only);
	f_bool(&f, "co", r->count_only);
	f_uint(&f, "cid", r->client_id);
	f_uint(&f, "seq", r->seq);
	f_uint(&f, "ack", r->ack);
	f_uint(&f, "ver", r->version);
	f_int(&f, "ttl", r->ttl);
	f_bool(&f, "keys", r->with_keys);
	f_uint(&f, "wid", r->watch_id);
	f_bool(&f, "np", r->no_put);
	f_bool(&f, "nd", r->no_delete);
	f_bool(&f, "pn", r->progress_notify);
	f_uint(&f, "mid", r->member);
	f_bin(&f, "peer", r->peer, r->peer_len);
	f_bin(&f, "cli", r->addr, r->addr_len);
	f_bin(&f, "name", r->name, r->name_len);
	f_bin(&f, "user", r->user, r->user_len);
	f_bin(&f, "role", r->role, r->role_len);
	f_bin(&f, "pw", r->password, r->password_len);
	f_bin(&f, "hash", r->hash, r->hash_len);
	f_bin(&f, "tok", r->token, r->token_len);
	f_bin(&f, "seed", r->seed, r->seed_len);
	f_uint(&f, "perm", r->perm);
	if (r->n_cmp > 0) {
		f_key(&f, "cmp");
		mp_put_array(w, r->n_cmp);
		for (i = 0; i < r->n_cmp; i++)
			encode_cmp(w, &r->cmp[i]);
	}
	encode_ops(&f, "s", r->succ, r->n_succ);
	encode_ops(&f, "f", r->fail, r->n_fail);
	mp_close(w, at, f.n);
}

void fuzz_encode_req(struct buf *out, const struct proto_req *req)
{
	struct mp_writer w;

	mp_writer_init(&w, out);
	encode_req(&w, req);
	if (w.err != 0)
		abort();
}

/* ---- invariants ------------------------------------------------------------
 */

/* Both absent, or both present with the same bytes. */
static bool same(const uint8_t *a, uint32_t alen, const uint8_t *b,
                 uint32_t blen)
{
	if ((a == NULL) != (b == NULL) || alen != blen)
		return false;
	return alen == 0 || memcmp(a, b, alen) == 0;
}

static bool same_cmp(const struct proto_compare *a,
                     const struct proto_compare *b)
{
	return same(a->key, a->key_len, b->key, b->key_len) &&
	       a->target == b->target && a->result == b->result &&
	       same(a->value, a->value_len, b->value, b->value_len) &&
	       a->number == b->number;
}

static bool same_req(const struct proto_req *a, const struct proto_req *b)
{
	uint32_t i;

	if (a->id != b->id || a->op != b->op ||
	    !same(a->key, a->key_len, b->key, b->key_len) ||
	    !same(a->end, a->end_len, b->end, b->end_len) ||
	    !same(a->value, a->value_len, b->value, b->value_len) ||
	    a->lease != b->lease || a->revision != b->revision ||
	    a->limit != b->limit || a->prev_kv != b->prev_kv ||
	    a->serializable != b->serializable ||
	    a->keys_only != b->keys_only || a->count_only != b->count_only ||
	    a->client_id != b->client_id || a->seq != b->seq ||
	    a->ack != b->ack || a->version != b->version || a->ttl != b->ttl ||
	    a->with_keys != b->with_keys || a->watch_id != b->watch_id ||
	    a->no_put != b->no_put || a->no_delete != b->no_delete ||
	    a->progress_notify != b->progress_notify ||
	    a->member != b->member ||
	    !same(a->peer, a->peer_len, b->peer, b->peer_len) ||
	    !same(a->addr, a->addr_len, b->addr, b->addr_len) ||
	    !same(a->name, a->name_len, b->name, b->name_len) ||
	    !same(a->user, a->user_len, b->user, b->user_len) ||
	    !same(a->role, a->role_len, b->role, b->role_len) ||
	    !same(a->password, a->password_len, b->password,
	          b->password_len) ||
	    !same(a->hash, a->hash_len, b->hash, b->hash_len) ||
	    !same(a->token, a->token_len, b->token, b->token_len) ||
	    !same(a->seed, a->seed_len, b->seed, b->seed_len) ||
	    a->perm != b->perm || a->n_cmp != b->n_cmp || a->n_succ != b->n_succ ||
	    a->n_fail != b->n_fail)
		return false;
	for (i = 0; i < a->n_cmp; i++)
		if (!same_cmp(&a->cmp[i], &b->cmp[i]))
			return false;
	for (i = 0; i < a->n_succ; i++)
		if (!same_req(&a->succ[i], &b->succ[i]))
			return false;
	for (i = 0; i < a->n_fail; i++)
		if (!same_req(&a->fail[i], &b->fail[i]))
			return false;
	return true;
}

struct span {
	const uint8_t *p;
	size_t len;
};

static bool inside(const struct span *s, const uint8_t *p, size_t len)
{
	return p == NULL ? len == 0
	                 : p >= s->p && len <= s->len &&
	                       (size_t)(p - s->p) <= s->len - len;
}

static void check_cmp(const struct span *s, const struct proto_compare *c)
{
	FUZZ_CHECK(inside(s, c->key, c->key_len));
	FUZZ_CHECK(c->key_len <= PROTO_MAX_KEY);
	FUZZ_CHECK(inside(s, c->value, c->value_len));
	FUZZ_CHECK(c->target <= CAIRN_CMP_MOD);
	FUZZ_CHECK(c->result <= CAIRN_CMP_GREATER);
}

static void check_decoded(const struct span *s, const struct proto_req *r,
                          unsigned depth)
{
	uint32_t i;

	FUZZ_CHECK(r->op < PROTO_OP_MAX);
	FUZZ_CHECK(inside(s, r->key, r->key_len));
	FUZZ_CHECK(inside(s, r->end, r->end_len));
	FUZZ_CHECK(inside(s, r->value, r->value_len));
	FUZZ_CHECK(inside(s, r->peer, r->peer_len));
	FUZZ_CHECK(inside(s, r->addr, r->addr_len));
	FUZZ_CHECK(inside(s, r->name, r->name_len));
	FUZZ_CHECK(r->key_len <= PROTO_MAX_KEY && r->end_len <= PROTO_MAX_KEY);
	FUZZ_CHECK(r->peer_len < PROTO_MAX_ATTR &&
	           r->addr_len < PROTO_MAX_ATTR &&
	           r->name_len < PROTO_MAX_ATTR);
	FUZZ_CHECK(r->lease >= 0 && r->revision >= 0 && r->limit >= 0);
	FUZZ_CHECK(inside(s, r->user, r->user_len) &&
	           r->user_len <= PROTO_MAX_NAME);
	FUZZ_CHECK(inside(s, r->role, r->role_len) &&
	           r->role_len <= PROTO_MAX_NAME);
	FUZZ_CHECK(inside(s, r->password, r->password_len) &&
	           r->password_len <= PROTO_MAX_PASSWORD);
	FUZZ_CHECK(inside(s, r->hash, r->hash_len) &&
	           r->hash_len < PROTO_MAX_HASH);
	FUZZ_CHECK(inside(s, r->token, r->token_len) &&
	           r->token_len <= PROTO_MAX_TOKEN);
	FUZZ_CHECK(inside(s, r->seed, r->seed_len) &&
	           (r->seed == NULL || r->seed_len == PROTO_SEED_BYTES));
	FUZZ_CHECK(r->perm <= CAIRN_PERM_READWRITE);
	FUZZ_CHECK((r->cmp == NULL) == (r->n_cmp == 0));
	FUZZ_CHECK((r->succ == NULL) == (r->n_succ == 0));
	FUZZ_CHECK((r->fail == NULL) == (r->n_fail == 0));
	FUZZ_CHECK(r->n_cmp <= PROTO_MAX_TXN_OPS);
	FUZZ_CHECK(r->n_succ <= PROTO_MAX_TXN_OPS);
	FUZZ_CHECK(r->n_fail <= PROTO_MAX_TXN_OPS);
	if (depth > 0) {
		FUZZ_CHECK(r->op == PROTO_OP_RANGE || r->op == PROTO_OP_PUT ||
		           r->op == PROTO_OP_DELETE);
		FUZZ_CHECK(r->n_cmp == 0 && r->n_succ == 0 && r->n_fail == 0);
	}
	for (i = 0; i < r->n_cmp; i++)
		check_cmp(s, &r->cmp[i]);
	for (i = 0; i < r->n_succ; i++)
		check_decoded(s, &r->succ[i], depth + 1);
	for (i = 0; i < r->n_fail; i++)
		check_decoded(s, &r->fail[i], depth + 1);
}

/* Encoding the request and decoding that gives it back. */
static void check_round_trip(const struct proto_req *req)
{
	struct buf b = BUF_INIT;
	struct proto_req again;
	char err[200] = "";
	uint8_t *p;
	int rv;

	fuzz_encode_req(&b, req);
	p = fuzz_dup(b.data, b.len);
	rv = proto_decode_req(p, b.len, &again, err, sizeof err);
	FUZZ_CHECK(rv == 0);
	FUZZ_CHECK(same_req(req, &again));
	proto_req_free(&again);
	free(p);
	buf_free(&b);
}

static void check_req(const uint8_t *p, size_t len, int rv,
                      const struct proto_req *req, const char *errbuf)
{
	const struct span s = {p, len};
	struct proto_req empty;

	if (rv == 0) {
		check_decoded(&s, req, 0);
		check_round_trip(req);
		return;
	}
	FUZZ_CHECK(rv == CAIRN_EPROTO || rv == CAIRN_EINVAL ||
	           rv == CAIRN_ETOOMANYOPS);
	FUZZ_CHECK(errbuf[0] != '\0');
	/* Nothing to free, nothing but the id kept. */
	memset(&empty, 0, sizeof empty);
	empty.id = req->id;
	FUZZ_CHECK(memcmp(&empty, req, sizeof empty) == 0);
}

int fuzz_decode_req(const uint8_t *p, size_t len, struct proto_req *req)
{
	char err[200] = "";
	size_t before = fuzz_heap_bytes();
	int rv;

	rv = proto_decode_req(p, len, req, err, sizeof err);
	FUZZ_CHECK_HEAP(before, len);
	check_req(p, len, rv, req, err);
	return rv;
}
