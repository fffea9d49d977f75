/*
 * result: decoding of the store's answers into struct cairn_result (result.h).
 *
 * The happy path: result_decode() allocates a box (hidden header + result),
 * walks the answer map once, and copies every byte string into the box's arena
 * as it goes. Arrays (kvs, members, a transaction's responses, a lease's keys,
 * lease ids) are sized from their msgpack count, which the reader has already
 * checked against the bytes left, so a hostile count cannot ask for more
 * memory than a small multiple of the frame. Any malformed field stops the
 * walk with CAIRN_EPROTO and a message naming the field; the box is then
 * released whole.
 *
 * EVENTS frames go through the same field readers into a box that is never
 * handed out (struct result_arena): each frame first empties it, keeping its
 * largest chunk, so a steady stream of events allocates nothing.
 */
#include "result.h"

#include <stdalign.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mp.h"
#include "proto.h"

#define CHUNK_MIN 4096u
#define CHUNK_MAX (1u << 20)
#define ARENA_ALIGN alignof(max_align_t)
/* The smallest encoded kv: fixarray, empty bin, nil, four fixints. */
#define KV_MIN_BYTES 7u

struct chunk {
	struct chunk *next;
	size_t used;
	size_t cap;
	max_align_t data[];
};

/* A result and the arena holding everything it points to. */
struct box {
	struct chunk *chunks;
	size_t next_cap;
	bool is_static;
	struct cairn_result res;
};

static struct box oom_box = {
    .is_static = true,
    .res = {.err = CAIRN_ENOMEM, .errmsg = "out of memory"},
};

static struct box *box_of(struct cairn_result *res)
{
	return (struct box *)(void *)((char *)res - offsetof(struct box, res));
}

static struct box *box_new(void)
{
	struct box *b = calloc(1, sizeof *b);

	if (b != NULL)
		b->next_cap = CHUNK_MIN;
	return b;
}

static void box_free(struct box *b)
{
	struct chunk *ch;

	if (b == NULL || b->is_static)
		return;
	while ((ch = b->chunks) != NULL) {
		b->chunks = ch->next;
		free(ch);
	}
	free(b);
}

void cairn_result_free(struct cairn_result *res)
{
	if (res != NULL)
		box_free(box_of(res));
}

/* A new chunk of at least need bytes. Big ones go behind the current chunk so
 * the room left in it stays in use. */
static struct chunk *chunk_new(struct box *b, size_t need)
{
	size_t cap = need > b->next_cap ? need : b->next_cap;
	struct chunk *ch;

	if (cap > SIZE_MAX - sizeof *ch)
		return NULL;
	ch = malloc(sizeof *ch + cap);
	if (ch == NULL)
		return NULL;
	ch->used = 0;
	ch->cap = cap;
	if (b->chunks != NULL && need > b->next_cap) {
		ch->next = b->chunks->next;
		b->chunks->next = ch;
		return ch;
	}
	ch->next = b->chunks;
	b->chunks = ch;
	if (b->next_cap < CHUNK_MAX)
		b->next_cap *= 2;
	return ch;
}

static void *arena_alloc(struct box *b, size_t size)
{
	struct chunk *ch = b->chunks;
	size_t need;
	void *p;

	if (size > SIZE_MAX - ARENA_ALIGN)
		return NULL;
	need = (size + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1);
	if (ch == NULL || ch->cap - ch->used < need) {
		ch = chunk_new(b, need);
		if (ch == NULL)
			return NULL;
	}
	p = (char *)ch->data + ch->used;
	ch->used += need;
	return p;
}

/* Zeroed room for n elements of size bytes each. */
static void *arena_array(struct box *b, size_t n, size_t size)
{
	void *p;

	if (n == 0)
		return NULL;
	if (n > SIZE_MAX / size)
		return NULL;
	p = arena_alloc(b, n * size);
	if (p != NULL)
		memset(p, 0, n * size);
	return p;
}

/* A copy of len bytes followed by a NUL; never NULL unless out of memory. */
static char *arena_dup(struct box *b, const void *p, size_t len)
{
	char *q;

	if (len == SIZE_MAX)
		return NULL;
	q = arena_alloc(b, len + 1);
	if (q == NULL)
		return NULL;
	if (len > 0)
		memcpy(q, p, len);
	q[len] = '\0';
	return q;
}

/* ---- decoding ------------------------------------------------------------ */

struct dec {
	struct mp_dec m;
	struct box *box;
};

static bool nomem(struct dec *d)
{
	return mp_dec_fail(&d->m, CAIRN_ENOMEM,
	                   "out of memory decoding an answer");
}

/* Bytes copied into the arena (NUL-terminated). */
static bool get_bytes(struct dec *d, const char *field, const uint8_t **out,
                      size_t *out_len)
{
	const uint8_t *p;
	uint32_t len;
	char *q;

	if (!mp_read_bytes(&d->m.r, &p, &len))
		return mp_dec_fail(&d->m, CAIRN_EPROTO,
		                   "answer field '%s': expected bytes", field);
	q = arena_dup(d->box, p, len);
	if (q == NULL)
		return nomem(d);
	*out = (const uint8_t *)q;
	if (out_len != NULL)
		*out_len = len;
	return true;
}

static bool get_str(struct dec *d, const char *field, const char **out)
{
	const uint8_t *p;

	if (!get_bytes(d, field, &p, NULL))
		return false;
	*out = (const char *)p;
	return true;
}

/* A kv: [key, value|nil, create_rev, mod_rev, version, lease, ...more]. */
static bool get_kv(struct dec *d, struct cairn_kv *kv)
{
	uint32_t n;

	if (!mp_read_array(&d->m.r, &n) || n < 6)
		return mp_dec_fail(
		    &d->m, CAIRN_EPROTO,
		    "answer kv: expected an array of at least 6");
	if (!get_bytes(d, "kv.key", &kv->key, &kv->key_len))
		return false;
	if (mp_peek(&d->m.r) == MP_NIL) {
		mp_read_nil(&d->m.r);
		kv->value = NULL;
		kv->value_len = 0;
	} else if (!get_bytes(d, "kv.value", &kv->value, &kv->value_len)) {
		return false;
	}
	if (!mp_dec_int(&d->m, "kv.create_rev", &kv->create_revision) ||
	    !mp_dec_int(&d->m, "kv.mod_rev", &kv->mod_revision) ||
	    !mp_dec_int(&d->m, "kv.version", &kv->version) ||
	    !mp_dec_int(&d->m, "kv.lease", &kv->lease))
		return false;
	for (n -= 6; n > 0; n--)
		if (!mp_skip(&d->m.r))
			return mp_dec_fail(&d->m, CAIRN_EPROTO,
			                   "answer kv: malformed");
	return true;
}

static bool get_kvs(struct dec *d, const char *field, struct cairn_kv **kvs,
                    size_t *n_kvs)
{
	uint32_t n;
	uint32_t i;

	if (!mp_read_array(&d->m.r, &n))
		return mp_dec_fail(&d->m, CAIRN_EPROTO,
		                   "answer field '%s': expected an array",
		                   field);
	if ((size_t)n * KV_MIN_BYTES > mp_left(&d->m.r))
		return mp_dec_fail(
		    &d->m, CAIRN_EPROTO,
		    "answer field '%s': %u kvs cannot fit in the frame", field,
		    n);
	*kvs = arena_array(d->box, n, sizeof **kvs);
	if (n > 0 && *kvs == NULL)
		return nomem(d);
	*n_kvs = n;
	for (i = 0; i < n; i++)
		if (!get_kv(d, &(*kvs)[i]))
			return false;
	return true;
}

/* Reads the next key of a map. */
static bool get_key(struct dec *d, const char *where, const char **k,
                    uint32_t *klen)
{
	if (!mp_read_str(&d->m.r, k, klen))
		return mp_dec_fail(&d->m, CAIRN_EPROTO,
		                   "answer %s: map key is not a string", where);
	return true;
}

/* Skips a field this version does not know; false if it is malformed. */
static bool skip_field(struct dec *d, const char *where)
{
	if (!mp_skip(&d->m.r))
		return mp_dec_fail(&d->m, CAIRN_EPROTO,
		                   "answer %s: malformed value", where);
	return true;
}

static bool get_header(struct dec *d, struct cairn_header *h)
{
	const char *k;
	uint32_t klen;
	uint32_t n;
	bool ok = true;

	if (!mp_read_map(&d->m.r, &n))
		return mp_dec_fail(&d->m, CAIRN_EPROTO,
		                   "answer field 'h': expected a map");
	while (ok && n-- > 0) {
		if (!get_key(d, "header", &k, &klen))
			return false;
		if (MP_KEY_IS(k, klen, "m"))
			ok = mp_dec_uint(&d->m, "h.m", &h->member_id);
		else if (MP_KEY_IS(k, klen, "r"))
			ok = mp_dec_int(&d->m, "h.r", &h->revision);
		else if (MP_KEY_IS(k, klen, "t"))
			ok = mp_dec_uint(&d->m, "h.t", &h->raft_term);
		else
			ok = skip_field(d, "header");
	}
	return ok;
}

static bool status_field(struct dec *d, struct cairn_status *st, const char *k,
                         uint32_t klen)
{
	if (MP_KEY_IS(k, klen, "id"))
		return mp_dec_uint(&d->m, "st.id", &st->member_id);
	if (MP_KEY_IS(k, klen, "ldr"))
		return mp_dec_uint(&d->m, "st.ldr", &st->leader_id);
	if (MP_KEY_IS(k, klen, "term"))
		return mp_dec_uint(&d->m, "st.term", &st->raft_term);
	if (MP_KEY_IS(k, klen, "idx"))
		return mp_dec_uint(&d->m, "st.idx", &st->raft_index);
	if (MP_KEY_IS(k, klen, "app"))
		return mp_dec_uint(&d->m, "st.app", &st->raft_applied);
	if (MP_KEY_IS(k, klen, "rev"))
		return mp_dec_int(&d->m, "st.rev", &st->revision);
	if (MP_KEY_IS(k, klen, "crev"))
		return mp_dec_int(&d->m, "st.crev", &st->compact_revision);
	if (MP_KEY_IS(k, klen, "keys"))
		return mp_dec_uint(&d->m, "st.keys", &st->keys);
	if (MP_KEY_IS(k, klen, "size"))
		return mp_dec_uint(&d->m, "st.size", &st->db_size);
	if (MP_KEY_IS(k, klen, "name"))
		return get_str(d, "st.name", &st->name);
	if (MP_KEY_IS(k, klen, "ver"))
		return get_str(d, "st.ver", &st->version);
	return skip_field(d, "status");
}

static bool get_status(struct dec *d, struct cairn_status *st)
{
	const char *k;
	uint32_t klen;
	uint32_t n;

	if (!mp_read_map(&d->m.r, &n))
		return mp_dec_fail(&d->m, CAIRN_EPROTO,
		                   "answer field 'st': expected a map");
	while (n-- > 0) {
		if (!get_key(d, "status", &k, &klen))
			return false;
		if (mp_peek(&d->m.r) == MP_NIL)
			mp_read_nil(&d->m.r);
		else if (!status_field(d, st, k, klen))
			return false;
	}
	return true;
}

static bool member_field(struct dec *d, struct cairn_member *m, const char *k,
                         uint32_t klen)
{
	if (MP_KEY_IS(k, klen, "id"))
		return mp_dec_uint(&d->m, "ms.id", &m->id);
	if (MP_KEY_IS(k, klen, "peer"))
		return get_str(d, "ms.peer", &m->peer_address);
	if (MP_KEY_IS(k, klen, "cli"))
		return get_str(d, "ms.cli", &m->client_address);
	if (MP_KEY_IS(k, klen, "name"))
		return get_str(d, "ms.name", &m->name);
	if (MP_KEY_IS(k, klen, "voter"))
		return mp_dec_bool(&d->m, "ms.voter", &m->voter);
	if (MP_KEY_IS(k, klen, "ldr"))
		return mp_dec_bool(&d->m, "ms.ldr", &m->leader);
	return skip_field(d, "member");
}

static bool get_member(struct dec *d, struct cairn_member *m)
{
	const char *k;
	uint32_t klen;
	uint32_t n;

	if (!mp_read_map(&d->m.r, &n))
		return mp_dec_fail(&d->m, CAIRN_EPROTO,
		                   "answer member: expected a map");
	while (n-- > 0) {
		if (!get_key(d, "member", &k, &klen))
			return false;
		if (mp_peek(&d->m.r) == MP_NIL)
			mp_read_nil(&d->m.r);
		else if (!member_field(d, m, k, klen))
			return false;
	}
	if (m->peer_address == NULL)
		m->peer_address = "";
	return true;
}

static bool get_members(struct dec *d, struct cairn_result *res)
{
	uint32_t n;
	uint32_t i;

	if (!mp_read_array(&d->m.r, &n))
		return mp_dec_fail(&d->m, CAIRN_EPROTO,
		                   "answer field 'ms': expected an array");
	res->members = arena_array(d->box, n, sizeof *res->members);
	if (n > 0 && res->members == NULL)
		return nomem(d);
	res->n_members = n;
	for (i = 0; i < n; i++)
		if (!get_member(d, &res->members[i]))
			return false;
	return true;
}

/* "keys" (LEASE_TTL): the attached keys as kvs holding only a key. */
static bool get_lease_keys(struct dec *d, struct cairn_result *res)
{
	uint32_t n;
	uint32_t i;

	if (!mp_read_array(&d->m.r, &n))
		return mp_dec_fail(&d->m, CAIRN_EPROTO,
		                   "answer field 'keys': expected an array");
	if (n > mp_left(&d->m.r))
		return mp_dec_fail(
		    &d->m, CAIRN_EPROTO,
		    "answer field 'keys': %u keys cannot fit in the frame", n);
	res->kvs = arena_array(d->box, n, sizeof *res->kvs);
	if (n > 0 && res->kvs == NULL)
		return nomem(d);
	res->n_kvs = n;
	for (i = 0; i < n; i++)
		if (!get_bytes(d, "keys", &res->kvs[i].key,
		               &res->kvs[i].key_len))
			return false;
	return true;
}

/* "ls" (LEASE_LIST): the lease ids. */
static bool get_lease_ids(struct dec *d, struct cairn_result *res)
{
	uint32_t n;
	uint32_t i;

	if (!mp_read_array(&d->m.r, &n))
		return mp_dec_fail(&d->m, CAIRN_EPROTO,
		                   "answer field 'ls': expected an array");
	if (n > mp_left(&d->m.r))
		return mp_dec_fail(
		    &d->m, CAIRN_EPROTO,
		    "answer field 'ls': %u ids cannot fit in the frame", n);
	res->leases = arena_array(d->box, n, sizeof *res->leases);
	if (n > 0 && res->leases == NULL)
		return nomem(d);
	res->n_leases = n;
	for (i = 0; i < n; i++)
		if (!mp_dec_int(&d->m, "ls", &res->leases[i]))
			return false;
	return true;
}

/* The fields of lease answers. Returns 1 if k was one, 0 if not, -1 on a
 * malformed value. */
static int lease_field(struct dec *d, struct cairn_result *res, const char *k,
                       uint32_t klen)
{
	bool ok;

	if (MP_KEY_IS(k, klen, "l"))
		ok = mp_dec_int(&d->m, "l", &res->lease);
	else if (MP_KEY_IS(k, klen, "ttl"))
		ok = mp_dec_int(&d->m, "ttl", &res->ttl);
	else if (MP_KEY_IS(k, klen, "gttl"))
		ok = mp_dec_int(&d->m, "gttl", &res->granted_ttl);
	else if (MP_KEY_IS(k, klen, "keys"))
		ok = get_lease_keys(d, res);
	else if (MP_KEY_IS(k, klen, "ls"))
		ok = get_lease_ids(d, res);
	else
		return 0;
	return ok ? 1 : -1;
}

/* "names" (USER_LIST, ROLE_LIST, USER_GET): strings. */
static bool get_names(struct dec *d, struct cairn_result *res)
{
	uint32_t n;
	uint32_t i;

	if (!mp_read_array(&d->m.r, &n))
		return mp_dec_fail(&d->m, CAIRN_EPROTO,
		                   "answer field 'names': expected an array");
	if (n > mp_left(&d->m.r))
		return mp_dec_fail(
		    &d->m, CAIRN_EPROTO,
		    "answer field 'names': %u names cannot fit in the frame", n);
	res->names = arena_array(d->box, n, sizeof *res->names);
	if (n > 0 && res->names == NULL)
		return nomem(d);
	res->n_names = n;
	for (i = 0; i < n; i++)
		if (!get_str(d, "names", &res->names[i]))
			return false;
	return true;
}

/* "perms" (ROLE_GET): [[type, key, end], ...]. */
static bool get_perms(struct dec *d, struct cairn_result *res)
{
	uint32_t n;
	uint32_t k;
	uint32_t i;
	uint64_t type;

	if (!mp_read_array(&d->m.r, &n))
		return mp_dec_fail(&d->m, CAIRN_EPROTO,
		                   "answer field 'perms': expected an array");
	if (n > mp_left(&d->m.r))
		return mp_dec_fail(
		    &d->m, CAIRN_EPROTO,
		    "answer field 'perms': %u cannot fit in the frame", n);
	res->perms = arena_array(d->box, n, sizeof *res->perms);
	if (n > 0 && res->perms == NULL)
		return nomem(d);
	res->n_perms = n;
	for (i = 0; i < n; i++) {
		struct cairn_permission *p = &res->perms[i];
		if (!mp_read_array(&d->m.r, &k) || k != 3 ||
		    !mp_dec_uint(&d->m, "perms.type", &type) ||
		    type > CAIRN_PERM_READWRITE)
			return mp_dec_fail(&d->m, CAIRN_EPROTO,
			                   "answer field 'perms': malformed");
		p->type = (int)type;
		if (!get_bytes(d, "perms.key", &p->key, &p->key_len) ||
		    !get_bytes(d, "perms.end", &p->end, &p->end_len))
			return false;
	}
	return true;
}

/* The fields of auth answers: 1 if k was one, 0 if not, -1 if malformed. */
static int auth_field(struct dec *d, struct cairn_result *res, const char *k,
                      uint32_t klen)
{
	bool ok;

	if (MP_KEY_IS(k, klen, "tok"))
		ok = get_bytes(d, "tok", &res->token, &res->token_len);
	else if (MP_KEY_IS(k, klen, "names"))
		ok = get_names(d, res);
	else if (MP_KEY_IS(k, klen, "perms"))
		ok = get_perms(d, res);
	else if (MP_KEY_IS(k, klen, "en"))
		ok = mp_dec_bool(&d->m, "en", &res->auth_enabled);
	else if (MP_KEY_IS(k, klen, "arev"))
		ok = mp_dec_uint(&d->m, "arev", &res->auth_revision);
	else
		return 0;
	return ok ? 1 : -1;
}

static bool get_body(struct dec *d, struct cairn_result *res,
                     struct result_env *env, unsigned depth);

/* "rs": one nested answer per operation of the branch that ran. */
static bool get_responses(struct dec *d, struct cairn_result *res,
                          unsigned depth)
{
	uint32_t n;
	uint32_t i;

	if (depth > 0)
		return mp_dec_fail(&d->m, CAIRN_EPROTO,
		                   "answer: nested transaction answer");
	if (!mp_read_array(&d->m.r, &n))
		return mp_dec_fail(&d->m, CAIRN_EPROTO,
		                   "answer field 'rs': expected an array");
	/* An empty map is one byte and a response some 300: only the
	 * protocol's limit keeps a hostile count from costing 300 times the
	 * frame. */
	if (n > PROTO_MAX_TXN_OPS)
		return mp_dec_fail(&d->m, CAIRN_EPROTO,
		                   "answer field 'rs': %u responses, at most %u",
		                   n, PROTO_MAX_TXN_OPS);
	res->responses = arena_array(d->box, n, sizeof *res->responses);
	if (n > 0 && res->responses == NULL)
		return nomem(d);
	res->n_responses = n;
	for (i = 0; i < n; i++)
		if (!get_body(d, &res->responses[i], NULL, depth + 1))
			return false;
	return true;
}

/* Routing fields; only at the top level. Returns 1 if k was one, 0 if not,
 * -1 on a malformed value. */
static int env_field(struct dec *d, struct result_env *env, const char *k,
                     uint32_t klen)
{
	uint64_t u;
	const uint8_t *p;
	bool ok;

	if (MP_KEY_IS(k, klen, "id")) {
		ok = mp_dec_uint(&d->m, "id", &env->id);
		env->has_id = ok;
	} else if (MP_KEY_IS(k, klen, "err")) {
		ok = mp_dec_uint(&d->m, "err", &u);
		env->err = u > CAIRN_ERROR_MAX ? CAIRN_ERROR_MAX : (int)u;
	} else if (MP_KEY_IS(k, klen, "msg")) {
		ok = mp_read_bytes(&d->m.r, &p, &env->msg_len) ||
		     mp_dec_fail(&d->m, CAIRN_EPROTO,
		                 "answer field 'msg': expected a string");
		env->msg = ok ? (const char *)p : NULL;
	} else if (MP_KEY_IS(k, klen, "la")) {
		ok = mp_read_bytes(&d->m.r, &p, &env->leader_addr_len) ||
		     mp_dec_fail(&d->m, CAIRN_EPROTO,
		                 "answer field 'la': expected a string");
		env->leader_addr = ok ? (const char *)p : NULL;
	} else if (MP_KEY_IS(k, klen, "ldr")) {
		ok = mp_dec_uint(&d->m, "ldr", &env->leader);
	} else if (MP_KEY_IS(k, klen, "mid")) {
		ok = mp_dec_uint(&d->m, "mid", &env->member);
	} else if (MP_KEY_IS(k, klen, "ver")) {
		ok = mp_dec_uint(&d->m, "ver", &env->version);
	} else if (MP_KEY_IS(k, klen, "wid")) {
		ok = mp_dec_uint(&d->m, "wid", &env->watch_id);
	} else if (MP_KEY_IS(k, klen, "rev")) {
		ok = mp_dec_int(&d->m, "rev", &env->revision);
	} else if (MP_KEY_IS(k, klen, "reauth")) {
		ok = mp_dec_bool(&d->m, "reauth", &env->reauth);
	} else {
		return 0;
	}
	return ok ? 1 : -1;
}

static bool body_field(struct dec *d, struct cairn_result *res, const char *k,
                       uint32_t klen, unsigned depth)
{
	uint64_t u;

	if (MP_KEY_IS(k, klen, "op")) {
		if (!mp_dec_uint(&d->m, "op", &u))
			return false;
		res->type = u < PROTO_OP_MAX ? (int)u : 0;
		return true;
	}
	if (MP_KEY_IS(k, klen, "h"))
		return get_header(d, &res->header);
	if (MP_KEY_IS(k, klen, "kvs"))
		return get_kvs(d, "kvs", &res->kvs, &res->n_kvs);
	if (MP_KEY_IS(k, klen, "more"))
		return mp_dec_bool(&d->m, "more", &res->more);
	if (MP_KEY_IS(k, klen, "cnt"))
		return mp_dec_int(&d->m, "cnt", &res->count);
	if (MP_KEY_IS(k, klen, "pkvs"))
		return get_kvs(d, "pkvs", &res->prev_kvs, &res->n_prev_kvs);
	if (MP_KEY_IS(k, klen, "del"))
		return mp_dec_int(&d->m, "del", &res->deleted);
	if (MP_KEY_IS(k, klen, "ok"))
		return mp_dec_bool(&d->m, "ok", &res->succeeded);
	if (MP_KEY_IS(k, klen, "dup"))
		return mp_dec_bool(&d->m, "dup", &res->duplicate);
	if (MP_KEY_IS(k, klen, "rs"))
		return get_responses(d, res, depth);
	if (MP_KEY_IS(k, klen, "st"))
		return get_status(d, &res->status);
	if (MP_KEY_IS(k, klen, "ms"))
		return get_members(d, res);
	if (MP_KEY_IS(k, klen, "crev"))
		return mp_dec_int(&d->m, "crev", &res->compact_revision);
	if (MP_KEY_IS(k, klen, "snap"))
		return get_bytes(d, "snap", &res->snapshot, &res->snapshot_len);
	switch (lease_field(d, res, k, klen)) {
	case 1:
		return true;
	case 0:
		break;
	default:
		return false;
	}
	switch (auth_field(d, res, k, klen)) {
	case 1:
		return true;
	case 0:
		return skip_field(d, "map");
	default:
		return false;
	}
}

static bool get_body(struct dec *d, struct cairn_result *res,
                     struct result_env *env, unsigned depth)
{
	const char *k;
	uint32_t klen;
	uint32_t n;
	int rv;

	if (!mp_read_map(&d->m.r, &n))
		return mp_dec_fail(&d->m, CAIRN_EPROTO,
		                   "answer: expected a map");
	while (n-- > 0) {
		if (!get_key(d, "map", &k, &klen))
			return false;
		if (mp_peek(&d->m.r) == MP_NIL) { /* nil reads as absent */
			mp_read_nil(&d->m.r);
			continue;
		}
		rv = env != NULL ? env_field(d, env, k, klen) : 0;
		if (rv < 0)
			return false;
		if (rv == 0 && !body_field(d, res, k, klen, depth))
			return false;
	}
	return true;
}

/* After the walk: error text, and the top header for nested answers. */
static int finish(struct dec *d, struct cairn_result *res,
                  const struct result_env *env)
{
	size_t i;

	res->err = env->err;
	if (res->err != 0 && env->msg != NULL && env->msg_len > 0) {
		res->errmsg = arena_dup(d->box, env->msg, env->msg_len);
		if (res->errmsg == NULL)
			return CAIRN_ENOMEM;
	} else if (res->err != 0) {
		res->errmsg = cairn_strerror(res->err);
	}
	for (i = 0; i < res->n_responses; i++)
		if (res->responses[i].header.member_id == 0)
			res->responses[i].header = res->header;
	return 0;
}

int result_decode(const uint8_t *payload, size_t len, struct result_env *env,
                  struct cairn_result **out, char *errbuf, size_t errlen)
{
	struct dec d;

	memset(env, 0, sizeof *env);
	*out = NULL;
	mp_dec_init(&d.m, payload, len, "answer field", errbuf, errlen);
	d.box = box_new();
	if (d.box == NULL)
		return CAIRN_ENOMEM;
	if (get_body(&d, &d.box->res, env, 0) && mp_left(&d.m.r) != 0)
		mp_dec_fail(&d.m, CAIRN_EPROTO, "answer: %zu trailing bytes",
		            mp_left(&d.m.r));
	env->op = (unsigned)d.box->res.type;
	if (d.m.err == 0)
		d.m.err = finish(&d, &d.box->res, env);
	if (d.m.err != 0) {
		box_free(d.box);
		return d.m.err;
	}
	*out = &d.box->res;
	return 0;
}

struct cairn_result *result_error(int type, int err, const char *fmt, ...)
{
	struct box *b = box_new();
	va_list ap;
	char *msg;
	int n;

	if (b == NULL)
		return &oom_box.res;
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	msg = n >= 0 ? arena_alloc(b, (size_t)n + 1) : NULL;
	if (msg == NULL) {
		box_free(b);
		return &oom_box.res;
	}
	va_start(ap, fmt);
	vsnprintf(msg, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->res.type = type;
	b->res.err = err;
	b->res.errmsg = msg;
	return &b->res;
}

void result_set_type(struct cairn_result *res, int type)
{
	if (!box_of(res)->is_static)
		res->type = type;
}

/* ---- EVENTS frames ------------------------------------------------------- */

/* [type, kv, prev kv|nil]: at least a fixarray, a fixint, a kv and a nil. */
#define EVENT_MIN_BYTES (KV_MIN_BYTES + 3u)
/* A chunk kept across frames at most this big; bigger ones are released. */
#define ARENA_KEEP_MAX (4u * CHUNK_MAX)

struct result_arena {
	struct box box;
};

struct result_arena *result_arena_new(void)
{
	struct result_arena *a = calloc(1, sizeof *a);

	if (a != NULL)
		a->box.next_cap = CHUNK_MIN;
	return a;
}

static void free_chunks(struct chunk *ch)
{
	struct chunk *next;

	for (; ch != NULL; ch = next) {
		next = ch->next;
		free(ch);
	}
}

void result_arena_free(struct result_arena *a)
{
	if (a == NULL)
		return;
	free_chunks(a->box.chunks);
	free(a);
}

/* Empties the arena, keeping its largest chunk (unless huge) for reuse. */
static void arena_reset(struct box *b)
{
	struct chunk *keep = NULL;
	struct chunk **pp;
	struct chunk *ch;

	for (ch = b->chunks; ch != NULL; ch = ch->next)
		if (ch->cap <= ARENA_KEEP_MAX &&
		    (keep == NULL || ch->cap > keep->cap))
			keep = ch;
	for (pp = &b->chunks; *pp != NULL;) {
		ch = *pp;
		if (ch == keep) {
			pp = &ch->next;
			continue;
		}
		*pp = ch->next;
		free(ch);
	}
	if (keep != NULL)
		keep->used = 0;
}

/* [type, kv, prev|nil, ...more]. */
static bool get_event(struct dec *d, struct cairn_event *e)
{
	uint64_t type;
	uint32_t n;

	if (!mp_read_array(&d->m.r, &n) || n < 3)
		return mp_dec_fail(&d->m, CAIRN_EPROTO,
		                   "event: expected an array of at least 3");
	if (!mp_dec_uint(&d->m, "event type", &type))
		return false;
	if (type != CAIRN_EVENT_PUT && type != CAIRN_EVENT_DELETE)
		return mp_dec_fail(&d->m, CAIRN_EPROTO,
		                   "event: unknown type %llu",
		                   (unsigned long long)type);
	e->type = (int)type;
	if (!get_kv(d, &e->kv))
		return false;
	if (mp_peek(&d->m.r) == MP_NIL) {
		mp_read_nil(&d->m.r);
	} else {
		if (!get_kv(d, &e->prev_kv))
			return false;
		e->has_prev_kv = true;
	}
	for (n -= 3; n > 0; n--)
		if (!mp_skip(&d->m.r))
			return mp_dec_fail(&d->m, CAIRN_EPROTO,
			                   "event: malformed");
	return true;
}

/* "ev": the events of one revision, which becomes ev->revision. */
static bool get_events(struct dec *d, struct result_events *ev)
{
	uint32_t n;
	uint32_t i;

	if (!mp_read_array(&d->m.r, &n))
		return mp_dec_fail(&d->m, CAIRN_EPROTO,
		                   "answer field 'ev': expected an array");
	if ((size_t)n * EVENT_MIN_BYTES > mp_left(&d->m.r))
		return mp_dec_fail(&d->m, CAIRN_EPROTO,
		                   "answer field 'ev': %u events cannot fit in "
		                   "the frame",
		                   n);
	ev->events = arena_array(d->box, n, sizeof *ev->events);
	if (n > 0 && ev->events == NULL)
		return nomem(d);
	ev->n_events = n;
	for (i = 0; i < n; i++) {
		if (!get_event(d, &ev->events[i]))
			return false;
		if (i > 0 && ev->events[i].kv.mod_revision != ev->revision)
			return mp_dec_fail(
			    &d->m, CAIRN_EPROTO,
			    "answer field 'ev': events of "
			    "revisions %lld and %lld in one frame",
			    (long long)ev->revision,
			    (long long)ev->events[i].kv.mod_revision);
		ev->revision = ev->events[i].kv.mod_revision;
	}
	return true;
}

static bool events_field(struct dec *d, struct result_events *ev, const char *k,
                         uint32_t klen)
{
	uint64_t u;

	if (MP_KEY_IS(k, klen, "wid")) {
		ev->has_watch_id = mp_dec_uint(&d->m, "wid", &ev->watch_id);
		return ev->has_watch_id;
	}
	if (MP_KEY_IS(k, klen, "h"))
		return get_header(d, &ev->header);
	if (MP_KEY_IS(k, klen, "ev"))
		return get_events(d, ev);
	if (MP_KEY_IS(k, klen, "more"))
		return mp_dec_bool(&d->m, "more", &ev->more);
	if (MP_KEY_IS(k, klen, "prog"))
		return mp_dec_bool(&d->m, "prog", &ev->progress);
	if (MP_KEY_IS(k, klen, "cancel"))
		return mp_dec_bool(&d->m, "cancel", &ev->cancel);
	if (MP_KEY_IS(k, klen, "msg"))
		return get_str(d, "msg", &ev->msg);
	if (MP_KEY_IS(k, klen, "crev"))
		return mp_dec_int(&d->m, "crev", &ev->compact_revision);
	if (MP_KEY_IS(k, klen, "err")) {
		if (!mp_dec_uint(&d->m, "err", &u))
			return false;
		ev->err = u > CAIRN_ERROR_MAX ? CAIRN_ERROR_MAX : (int)u;
		return true;
	}
	return skip_field(d, "events"); /* id, op and what is new */
}

/* What a frame says must be one thing; an ended watch always has a reason. */
static bool events_check(struct dec *d, struct result_events *ev)
{
	if (!ev->has_watch_id)
		return mp_dec_fail(&d->m, CAIRN_EPROTO,
		                   "events: no watch id ('wid')");
	if ((ev->n_events > 0) + ev->progress + ev->cancel > 1)
		return mp_dec_fail(&d->m, CAIRN_EPROTO,
		                   "events: a frame with more than one of "
		                   "events, progress and cancel");
	if (ev->cancel && ev->err == 0)
		ev->err = CAIRN_EINTERNAL;
	if (ev->n_events > 0 && ev->revision <= 0)
		return mp_dec_fail(&d->m, CAIRN_EPROTO, "events: revision %lld",
		                   (long long)ev->revision);
	return true;
}

int result_decode_events(const uint8_t *payload, size_t len,
                         struct result_arena *a, struct result_events *ev,
                         char *errbuf, size_t errlen)
{
	struct dec d;
	const char *k;
	uint32_t klen;
	uint32_t n;
	bool ok;

	memset(ev, 0, sizeof *ev);
	arena_reset(&a->box);
	mp_dec_init(&d.m, payload, len, "answer field", errbuf, errlen);
	d.box = &a->box;
	ok = mp_read_map(&d.m.r, &n) ||
	     mp_dec_fail(&d.m, CAIRN_EPROTO, "events: expected a map");
	while (ok && n-- > 0) {
		ok = get_key(&d, "events", &k, &klen);
		if (ok && mp_peek(&d.m.r) == MP_NIL)
			ok = mp_read_nil(&d.m.r);
		else if (ok)
			ok = events_field(&d, ev, k, klen);
	}
	if (ok && mp_left(&d.m.r) != 0)
		ok = mp_dec_fail(&d.m, CAIRN_EPROTO,
		                 "events: %zu trailing bytes", mp_left(&d.m.r));
	if (ok)
		ok = events_check(&d, ev);
	return ok ? 0 : d.m.err;
}

unsigned result_peek_op(const uint8_t *payload, size_t len)
{
	struct mp_reader r;
	const char *k;
	uint32_t klen;
	uint32_t n;
	uint64_t op;

	mp_reader_init(&r, payload, len);
	if (!mp_read_map(&r, &n))
		return PROTO_OP_MAX;
	while (n-- > 0) {
		if (!mp_read_str(&r, &k, &klen))
			return PROTO_OP_MAX;
		if (MP_KEY_IS(k, klen, "op"))
			return mp_read_uint(&r, &op) && op < PROTO_OP_MAX
			           ? (unsigned)op
			           : PROTO_OP_MAX;
		if (!mp_skip(&r))
			return PROTO_OP_MAX;
	}
	return PROTO_OP_MAX;
}
