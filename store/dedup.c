/*
 * dedup: per-client table of applied write sequence numbers (see dedup.h).
 *
 * Clients are found through a chained hash table keyed by client id and kept
 * on a list ordered by their last write, so the client that wrote least
 * recently is evicted first when DEDUP_MAX_CLIENTS is exceeded. Each client's
 * applied sequence numbers sit in a sorted array; writes mostly arrive in
 * order, so recording one is usually an append.
 */
#include "dedup.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cairn.h"
#include "mp.h"

struct applied {
	uint64_t seq;
	int64_t rev;
	int32_t outcome;
};

struct client {
	uint64_t cid;
	struct client *next_hash;
	struct client *prev_lru;
	struct client *next_lru;
	struct applied *done;
	uint32_t n;
	uint32_t cap;
};

struct dedup {
	struct client **buckets;
	uint32_t n_buckets; /* a power of two */
	uint32_t n_clients;
	struct client *lru_head; /* least recent */
	struct client *lru_tail; /* most recent */
};

static uint32_t bucket_of(const struct dedup *d, uint64_t cid)
{
	cid ^= cid >> 33;
	cid *= 0xff51afd7ed558ccdULL;
	cid ^= cid >> 33;
	return (uint32_t)cid & (d->n_buckets - 1);
}

int dedup_create(struct dedup **out)
{
	struct dedup *d = calloc(1, sizeof *d);

	if (d == NULL)
		return CAIRN_ENOMEM;
	d->n_buckets = 64;
	d->buckets = calloc(d->n_buckets, sizeof *d->buckets);
	if (d->buckets == NULL) {
		free(d);
		return CAIRN_ENOMEM;
	}
	*out = d;
	return 0;
}

void dedup_destroy(struct dedup *d)
{
	struct client *c;
	struct client *next;

	if (d == NULL)
		return;
	for (c = d->lru_head; c != NULL; c = next) {
		next = c->next_lru;
		free(c->done);
		free(c);
	}
	free(d->buckets);
	free(d);
}

static struct client *find(const struct dedup *d, uint64_t cid)
{
	struct client *c;

	for (c = d->buckets[bucket_of(d, cid)]; c != NULL; c = c->next_hash)
		if (c->cid == cid)
			return c;
	return NULL;
}

static void lru_unlink(struct dedup *d, struct client *c)
{
	if (c->prev_lru != NULL)
		c->prev_lru->next_lru = c->next_lru;
	else
		d->lru_head = c->next_lru;
	if (c->next_lru != NULL)
		c->next_lru->prev_lru = c->prev_lru;
	else
		d->lru_tail = c->prev_lru;
	c->prev_lru = c->next_lru = NULL;
}

static void lru_push(struct dedup *d, struct client *c)
{
	c->prev_lru = d->lru_tail;
	c->next_lru = NULL;
	if (d->lru_tail != NULL)
		d->lru_tail->next_lru = c;
	else
		d->lru_head = c;
	d->lru_tail = c;
}

static void remove_client(struct dedup *d, struct client *c)
{
	struct client **pp = &d->buckets[bucket_of(d, c->cid)];

	while (*pp != c)
		pp = &(*pp)->next_hash;
	*pp = c->next_hash;
	lru_unlink(d, c);
	d->n_clients--;
	free(c->done);
	free(c);
}

static void rehash(struct dedup *d)
{
	uint32_t n = d->n_buckets * 2;
	struct client **b = calloc(n, sizeof *b);
	struct client *c;
	uint32_t i;

	if (b == NULL)
		return; /* keep the smaller table; lookups stay correct */
	free(d->buckets);
	d->buckets = b;
	d->n_buckets = n;
	for (c = d->lru_head; c != NULL; c = c->next_lru) {
		i = bucket_of(d, c->cid);
		c->next_hash = b[i];
		b[i] = c;
	}
}

static struct client *add_client(struct dedup *d, uint64_t cid)
{
	struct client *c = calloc(1, sizeof *c);
	uint32_t i;

	if (c == NULL)
		return NULL;
	c->cid = cid;
	if (d->n_clients >= DEDUP_MAX_CLIENTS)
		remove_client(d, d->lru_head);
	if (d->n_clients >= d->n_buckets)
		rehash(d);
	i = bucket_of(d, cid);
	c->next_hash = d->buckets[i];
	d->buckets[i] = c;
	lru_push(d, c);
	d->n_clients++;
	return c;
}

/* Drops the sequence numbers below ack: the client has their answers. */
static void prune(struct client *c, uint64_t ack)
{
	uint32_t k = 0;

	while (k < c->n && c->done[k].seq < ack)
		k++;
	if (k == 0)
		return;
	memmove(c->done, c->done + k, (c->n - k) * sizeof *c->done);
	c->n -= k;
}

/* Index of the first entry with seq >= s. */
static uint32_t lower_bound(const struct client *c, uint64_t s)
{
	uint32_t lo = 0;
	uint32_t hi = c->n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (c->done[mid].seq < s)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

bool dedup_seen(struct dedup *d, uint64_t cid, uint64_t seq, uint64_t ack,
                int64_t *rev, int *outcome)
{
	struct client *c = find(d, cid);
	uint32_t i;

	if (c == NULL)
		return false;
	prune(c, ack);
	if (seq < ack) {
		/* Acknowledged already, so applied: a stray copy of an old write. */
		*rev = 0;
		*outcome = 0;
		return true;
	}
	i = lower_bound(c, seq);
	if (i == c->n || c->done[i].seq != seq)
		return false;
	*rev = c->done[i].rev;
	*outcome = c->done[i].outcome;
	return true;
}

static int insert(struct client *c, uint64_t seq, int64_t rev, int outcome)
{
	uint32_t i;

	if (c->n == DEDUP_MAX_PENDING) {
		memmove(c->done, c->done + 1, (c->n - 1) * sizeof *c->done);
		c->n--;
	}
	if (c->n == c->cap) {
		uint32_t cap = c->cap ? c->cap * 2 : 4;
		struct applied *p = realloc(c->done, cap * sizeof *p);
		if (p == NULL)
			return CAIRN_ENOMEM;
		c->done = p;
		c->cap = cap;
	}
	i = lower_bound(c, seq);
	memmove(c->done + i + 1, c->done + i, (c->n - i) * sizeof *c->done);
	c->done[i].seq = seq;
	c->done[i].rev = rev;
	c->done[i].outcome = outcome;
	c->n++;
	return 0;
}

int dedup_record(struct dedup *d, uint64_t cid, uint64_t seq, int64_t rev,
                 int outcome)
{
	struct client *c = find(d, cid);

	if (c == NULL) {
		c = add_client(d, cid);
		if (c == NULL)
			return CAIRN_ENOMEM;
	} else {
		lru_unlink(d, c);
		lru_push(d, c);
	}
	return insert(c, seq, rev, outcome);
}

uint32_t dedup_clients(const struct dedup *d)
{
	return d->n_clients;
}

/* Format: [[cid, [seq, rev, outcome, seq, rev, outcome, ...]], ...] least
 * recent first. */
int dedup_dump(const struct dedup *d, struct buf *out)
{
	struct mp_writer w;
	struct client *c;
	uint32_t i;

	mp_writer_init(&w, out);
	mp_put_array(&w, d->n_clients);
	for (c = d->lru_head; c != NULL; c = c->next_lru) {
		mp_put_array(&w, 2);
		mp_put_uint(&w, c->cid);
		mp_put_array(&w, c->n * 3);
		for (i = 0; i < c->n; i++) {
			mp_put_uint(&w, c->done[i].seq);
			mp_put_int(&w, c->done[i].rev);
			mp_put_int(&w, c->done[i].outcome);
		}
	}
	return w.err;
}

static int load_client(struct dedup *d, struct mp_reader *r)
{
	struct client *c;
	uint64_t cid;
	uint32_t n;
	uint32_t k;
	struct applied a;
	int64_t outcome;

	if (!mp_read_array(r, &n) || n != 2 || !mp_read_uint(r, &cid) ||
	    !mp_read_array(r, &n) || n % 3 != 0 || n / 3 > DEDUP_MAX_PENDING ||
	    find(d, cid) != NULL)
		return CAIRN_EPROTO;
	c = add_client(d, cid);
	if (c == NULL)
		return CAIRN_ENOMEM;
	for (k = 0; k < n / 3; k++) {
		if (!mp_read_uint(r, &a.seq) || !mp_read_int(r, &a.rev) ||
		    !mp_read_int(r, &outcome) || outcome < INT32_MIN ||
		    outcome > INT32_MAX)
			return CAIRN_EPROTO;
		a.outcome = (int32_t)outcome;
		if (k > 0 && a.seq <= c->done[c->n - 1].seq)
			return CAIRN_EPROTO;
		if (insert(c, a.seq, a.rev, a.outcome) != 0)
			return CAIRN_ENOMEM;
	}
	return 0;
}

int dedup_load(struct mp_reader *r, struct dedup **out)
{
	struct dedup *d;
	uint32_t n;
	uint32_t i;
	int rv;

	*out = NULL;
	if (!mp_read_array(r, &n) || n > DEDUP_MAX_CLIENTS)
		return CAIRN_EPROTO;
	rv = dedup_create(&d);
	if (rv != 0)
		return rv;
	for (i = 0; i < n; i++) {
		rv = load_client(d, r);
		if (rv != 0) {
			dedup_destroy(d);
			return rv;
		}
	}
	*out = d;
	return 0;
}
