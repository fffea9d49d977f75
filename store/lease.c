/*
 * lease: the lease table (see lease.h). Leases sit in a chained hash table
 * by id; each keeps its attached keys in a sorted array (a lease usually has
 * a handful: a node's heartbeat, a leader lock), so attach and detach are a
 * binary search and a move.
 */
#include "lease.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cairn.h"
#include "mp.h"
#include "mvcc.h"

struct leases {
	struct lease **buckets;
	uint32_t n_buckets; /* a power of two */
	uint32_t n;
	int64_t next_id;
};

static uint32_t slot(const struct leases *l, int64_t id)
{
	uint64_t x = (uint64_t)id * 0x9e3779b97f4a7c15ULL;

	return (uint32_t)(x >> 32) & (l->n_buckets - 1);
}

int leases_create(struct leases **out)
{
	struct leases *l = calloc(1, sizeof *l);

	if (l == NULL)
		return CAIRN_ENOMEM;
	l->n_buckets = 64;
	l->buckets = calloc(l->n_buckets, sizeof *l->buckets);
	if (l->buckets == NULL) {
		free(l);
		return CAIRN_ENOMEM;
	}
	l->next_id = 1;
	*out = l;
	return 0;
}

static void free_lease(struct lease *ls)
{
	uint32_t i;

	for (i = 0; i < ls->n_keys; i++)
		free(ls->keys[i].p);
	free(ls->keys);
	free(ls);
}

void leases_destroy(struct leases *l)
{
	struct lease *ls;
	struct lease *next;
	uint32_t i;

	if (l == NULL)
		return;
	for (i = 0; i < l->n_buckets; i++) {
		for (ls = l->buckets[i]; ls != NULL; ls = next) {
			next = ls->next;
			free_lease(ls);
		}
	}
	free(l->buckets);
	free(l);
}

struct lease *lease_find(struct leases *l, int64_t id)
{
	struct lease *ls;

	for (ls = l->buckets[slot(l, id)]; ls != NULL; ls = ls->next)
		if (ls->id == id)
			return ls;
	return NULL;
}

static void grow(struct leases *l)
{
	uint32_t n = l->n_buckets * 2;
	struct lease **b = calloc(n, sizeof *b);
	struct lease *ls;
	struct lease *next;
	uint32_t i;
	uint32_t k;

	if (b == NULL)
		return; /* a fuller table still works */
	for (i = 0; i < l->n_buckets; i++) {
		for (ls = l->buckets[i]; ls != NULL; ls = next) {
			next = ls->next;
			k = (uint32_t)(((uint64_t)ls->id * 0x9e3779b97f4a7c15ULL) >> 32) &
			    (n - 1);
			ls->next = b[k];
			b[k] = ls;
		}
	}
	free(l->buckets);
	l->buckets = b;
	l->n_buckets = n;
}

int64_t lease_id_for(uint64_t cid, uint64_t seq)
{
	uint64_t x = cid ^ (seq * 0x9e3779b97f4a7c15ULL);

	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	x &= INT64_MAX;
	return x != 0 ? (int64_t)x : 1;
}

int lease_grant(struct leases *l, int64_t id, int64_t ttl, struct lease **out)
{
	struct lease *ls;
	uint32_t k;

	if (id == 0) {
		while (lease_find(l, l->next_id) != NULL)
			l->next_id++;
		id = l->next_id++;
	} else if (lease_find(l, id) != NULL) {
		return CAIRN_ELEASEEXISTS;
	}
	ls = calloc(1, sizeof *ls);
	if (ls == NULL)
		return CAIRN_ENOMEM;
	ls->id = id;
	ls->ttl = ttl;
	if (l->n >= l->n_buckets)
		grow(l);
	k = slot(l, id);
	ls->next = l->buckets[k];
	l->buckets[k] = ls;
	l->n++;
	*out = ls;
	return 0;
}

void lease_remove(struct leases *l, struct lease *ls)
{
	struct lease **pp = &l->buckets[slot(l, ls->id)];

	while (*pp != ls)
		pp = &(*pp)->next;
	*pp = ls->next;
	l->n--;
	free_lease(ls);
}

static int key_cmp(const struct lease_key *k, const uint8_t *p, size_t len)
{
	size_t n = k->len < len ? k->len : len;
	int c = n ? memcmp(k->p, p, n) : 0;

	if (c != 0)
		return c;
	return k->len < len ? -1 : k->len > len;
}

/* Index of the first key >= (p, len). */
static uint32_t lower_bound(const struct lease *ls, const uint8_t *p, size_t len)
{
	uint32_t lo = 0;
	uint32_t hi = ls->n_keys;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (key_cmp(&ls->keys[mid], p, len) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int lease_attach(struct leases *l, int64_t id, const uint8_t *key, size_t len)
{
	struct lease *ls = lease_find(l, id);
	uint32_t i;
	uint8_t *copy;

	if (ls == NULL)
		return CAIRN_ENOLEASE;
	i = lower_bound(ls, key, len);
	if (i < ls->n_keys && key_cmp(&ls->keys[i], key, len) == 0)
		return 0;
	if (ls->n_keys == ls->cap) {
		uint32_t cap = ls->cap ? ls->cap * 2 : 2;
		struct lease_key *k = realloc(ls->keys, cap * sizeof *k);
		if (k == NULL)
			return CAIRN_ENOMEM;
		ls->keys = k;
		ls->cap = cap;
	}
	copy = malloc(len ? len : 1);
	if (copy == NULL)
		return CAIRN_ENOMEM;
	if (len > 0)
		memcpy(copy, key, len);
	memmove(&ls->keys[i + 1], &ls->keys[i], (ls->n_keys - i) * sizeof *ls->keys);
	ls->keys[i].p = copy;
	ls->keys[i].len = len;
	ls->n_keys++;
	return 0;
}

void lease_detach(struct leases *l, int64_t id, const uint8_t *key, size_t len)
{
	struct lease *ls = lease_find(l, id);
	uint32_t i;

	if (ls == NULL)
		return;
	i = lower_bound(ls, key, len);
	if (i == ls->n_keys || key_cmp(&ls->keys[i], key, len) != 0)
		return;
	free(ls->keys[i].p);
	memmove(&ls->keys[i], &ls->keys[i + 1],
	        (ls->n_keys - i - 1) * sizeof *ls->keys);
	ls->n_keys--;
}

void leases_foreach(struct leases *l, void (*cb)(struct lease *ls, void *arg),
                    void *arg)
{
	struct lease *ls;
	uint32_t i;

	for (i = 0; i < l->n_buckets; i++)
		for (ls = l->buckets[i]; ls != NULL; ls = ls->next)
			cb(ls, arg);
}

uint32_t leases_count(const struct leases *l)
{
	return l->n;
}

static void dump_one(struct lease *ls, void *arg)
{
	struct mp_writer *w = arg;

	mp_put_array(w, 2);
	mp_put_int(w, ls->id);
	mp_put_int(w, ls->ttl);
}

int leases_dump(struct leases *l, struct buf *out)
{
	struct mp_writer w;

	mp_writer_init(&w, out);
	mp_put_array(&w, 2);
	mp_put_int(&w, l->next_id);
	mp_put_array(&w, l->n);
	leases_foreach(l, dump_one, &w);
	return w.err;
}

struct rebuild {
	struct leases *l;
	int err;
};

static void attach_kv(const struct mvcc_kv *kv, void *arg)
{
	struct rebuild *rb = arg;
	int rv;

	if (kv->lease == 0 || rb->err != 0)
		return;
	rv = lease_attach(rb->l, kv->lease, kv->key, kv->key_len);
	if (rv != 0)
		rb->err = rv == CAIRN_ENOLEASE ? CAIRN_EPROTO : rv;
}

int leases_load(struct mp_reader *r, struct mvcc *m, struct leases **out)
{
	static const uint8_t zero = 0;
	struct mvcc_range_opts all = {0, 0, false};
	struct mvcc_range_result res;
	struct rebuild rb = {NULL, 0};
	struct lease *ls;
	uint32_t n;
	uint32_t k;
	int64_t id;
	int64_t ttl;
	int rv;

	*out = NULL;
	rv = leases_create(&rb.l);
	if (rv != 0)
		return rv;
	rv = CAIRN_EPROTO;
	if (!mp_read_array(r, &n) || n != 2 || !mp_read_int(r, &rb.l->next_id) ||
	    rb.l->next_id < 1 || !mp_read_array(r, &n))
		goto err;
	while (n-- > 0) {
		if (!mp_read_array(r, &k) || k != 2 || !mp_read_int(r, &id) ||
		    !mp_read_int(r, &ttl) || id <= 0 || ttl < 1 || ttl > LEASE_MAX_TTL)
			goto err;
		rv = lease_grant(rb.l, id, ttl, &ls);
		if (rv != 0)
			goto err_rv;
	}
	mvcc_range(m, &zero, 1, &zero, 1, &all, attach_kv, &rb, &res);
	rv = rb.err;
	if (rv != 0)
		goto err_rv;
	*out = rb.l;
	return 0;
err:
	rv = CAIRN_EPROTO;
err_rv:
	leases_destroy(rb.l);
	return rv == CAIRN_ELEASEEXISTS ? CAIRN_EPROTO : rv;
}
