/*
 * mvcc: the multi-version keyspace of cairn-store, with etcd v3's meaning
 * (see mvcc.h for the contract).
 *
 * How it works. Keys live in a skip list (Pugh 1990; p = 1/4, at most
 * MAX_LEVEL levels, levels drawn from a deterministic xorshift generator so
 * runs are reproducible). Each node holds its key bytes once, in the same
 * allocation as its forward pointers, and an array of the key's versions,
 * oldest first, ordered by (mod_rev, sub). A deletion appends a tombstone
 * version. A read at revision R finds the node, then binary-searches the
 * newest version with mod_rev <= R: the key is live at R if that version
 * exists and is not a tombstone. A range seeks its first key in O(log n) and
 * walks level 0, so it costs O(log n + k).
 *
 * Value bytes are allocated separately (one allocation per version holding a
 * non-empty value); a new version never frees an older one's value, so
 * pointers handed out stay valid until compaction drops that version.
 *
 * Writes are all-or-nothing: every allocation a write needs is made before
 * the keyspace is touched, so CAIRN_ENOMEM leaves the store as it was.
 *
 * Compaction at C keeps, per key, the newest version with mod_rev <= C (what
 * a read at C sees) and everything newer. If that kept version is a tombstone
 * it is dropped as well: a read at or after C that finds no version sees the
 * key absent, just as one that finds the tombstone. A key left with no
 * versions is unlinked. This is one pass over the keyspace.
 *
 * The change history (for watches) is a log in (rev, sub) order of small
 * entries {node, rev, sub}, one per version ever appended, so a put costs one
 * more store into an array that doubles when full. The versions stay in their
 * nodes: a walk binary-searches the version an entry names in its node, and
 * the change's previous pair is simply the version before it. Why entries
 * never dangle: compaction at C drops only versions with mod_rev <= C and
 * frees only nodes left with none, while the history drops every entry with
 * rev <= C; so each entry left names a kept version of a linked node. The
 * version before it is kept too: it is either above C or the one a read at C
 * sees (dropped only if a tombstone, which is no previous pair). The history
 * lives in hist[hist_start, hist_end): compaction advances hist_start and
 * moves the rest down only once the dropped prefix outgrows it, so trimming
 * costs O(1) amortized per entry. mvcc_load() rebuilds it from the versions
 * (see load_history()).
 *
 * Failure modes: CAIRN_ENOMEM on allocation failure (also for a key or value
 * of 4 GiB or more, which the 32-bit lengths cannot hold); CAIRN_ECOMPACTED
 * and CAIRN_EFUTUREREV for reads and compactions outside the kept history;
 * CAIRN_EPROTO from mvcc_load() for anything malformed.
 */
#include "mvcc.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cairn.h"
#include "mp.h"

#define MAX_LEVEL 24
#define TOMBSTONE UINT32_MAX /* value_len of a deletion */
#define FORMAT_VERSION 1
#define DUMP_HEADER_MAX 32 /* array, format, rev, compact_rev, key array */
#define RNG_SEED UINT64_C(0x9e3779b97f4a7c15)
/* Revisions and versions above this are refused by mvcc_load(), so that the
 * +1 of a later write can never overflow. */
#define MAX_COUNTER (INT64_C(1) << 62)

struct ver {
	int64_t mod_rev;
	int64_t create_rev; /* 0 in a tombstone */
	int64_t version;    /* 0 in a tombstone */
	int64_t lease;      /* 0 in a tombstone */
	uint8_t *value;     /* NULL when empty or a tombstone */
	uint32_t value_len; /* TOMBSTONE for a deletion */
	uint32_t sub;
};

/* One entry of the change history: the version (rev, sub) of node n. 24 bytes
 * on 64-bit hosts. */
struct hent {
	struct node *n;
	int64_t rev;
	uint32_t sub;
};

struct node {
	struct ver *vers; /* oldest first; never empty while linked */
	uint32_t nver;
	uint32_t cap;
	uint32_t key_len;
	uint8_t level;
	struct node *next[]; /* level pointers, then the key bytes */
};

struct mvcc {
	struct node *head; /* MAX_LEVEL pointers, no key, no versions */
	int level;         /* levels in use, at least 1 */
	uint64_t rng;
	int64_t rev;
	int64_t compact_rev;
	int64_t group_rev; /* the revision the open group writes at */
	uint32_t sub;      /* changes made so far in the open group */
	bool in_group;
	uint64_t nodes; /* keys with kept versions, live or not */
	uint64_t live;  /* keys live at the newest revision */
	uint64_t size;  /* see mvcc_size_bytes() */
	struct hent *hist; /* the history: entries [hist_start, hist_end) */
	size_t hist_start; /* entries before it were compacted away */
	size_t hist_end;
	size_t hist_cap; /* at least HIST_MIN: the array is never NULL */
};

/* The size_bytes estimate of what a key and a version cost besides bytes. */
#define NODE_OVERHEAD (sizeof(struct node) + sizeof(struct node *))
#define VER_OVERHEAD sizeof(struct ver)
#define HENT_OVERHEAD sizeof(struct hent)
/* The history's smallest room, allocated with the store, so that growing it
 * later is a realloc() that never changes the count of blocks held. */
#define HIST_MIN 16

/* What a key argument pair selects, decoded once from etcd's rules. */
enum span_kind { SPAN_EMPTY, SPAN_ONE, SPAN_FROM, SPAN_ALL, SPAN_BELOW };

struct span {
	enum span_kind kind;
	const uint8_t *key;
	size_t key_len;
	const uint8_t *end; /* SPAN_BELOW: the first key not included */
	size_t end_len;
};

/* ---- the skip list -------------------------------------------------------- */

static uint8_t *node_key(const struct node *n)
{
	return (uint8_t *)(n->next + n->level);
}

static int cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	size_t min = alen < blen ? alen : blen;
	int c = min ? memcmp(a, b, min) : 0;

	if (c != 0)
		return c;
	return alen < blen ? -1 : alen > blen;
}

static int node_cmp(const struct node *n, const uint8_t *key, size_t len)
{
	return cmp(node_key(n), n->key_len, key, len);
}

static int random_level(struct mvcc *m)
{
	uint64_t x = m->rng;
	int level = 1;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	m->rng = x;
	while (level < MAX_LEVEL && (x & 3) == 0) {
		level++;
		x >>= 2;
	}
	return level;
}

/* The first node with a key >= key, or NULL. Fills update (if given) with the
 * last node before it at every level. */
static struct node *seek(const struct mvcc *m, const uint8_t *key, size_t len,
                         struct node **update)
{
	struct node *x = m->head;
	int i;

	for (i = m->level - 1; i >= 0; i--) {
		while (x->next[i] != NULL && node_cmp(x->next[i], key, len) < 0)
			x = x->next[i];
		if (update != NULL)
			update[i] = x;
	}
	return x->next[0];
}

/* A node for key with room for cap versions, not linked. */
static struct node *node_new(const uint8_t *key, size_t len, int level,
                             uint32_t cap)
{
	struct node *n;

	n = malloc(sizeof(*n) + (size_t)level * sizeof(n->next[0]) + len);
	if (n == NULL)
		goto err;
	n->vers = malloc((size_t)cap * sizeof(n->vers[0]));
	if (n->vers == NULL)
		goto err_after_node;
	n->nver = 0;
	n->cap = cap;
	n->key_len = (uint32_t)len;
	n->level = (uint8_t)level;
	memset(n->next, 0, (size_t)level * sizeof(n->next[0]));
	if (len > 0)
		memcpy(node_key(n), key, len);
	return n;

err_after_node:
	free(n);
err:
	return NULL;
}

static void drop_versions(struct mvcc *m, struct node *n, uint32_t count)
{
	uint32_t i;

	for (i = 0; i < count; i++) {
		struct ver *v = &n->vers[i];

		free(v->value);
		m->size -= VER_OVERHEAD;
		if (v->value_len != TOMBSTONE)
			m->size -= v->value_len;
	}
	memmove(n->vers, n->vers + count, (n->nver - count) * sizeof(n->vers[0]));
	n->nver -= count;
}

static void node_free(struct mvcc *m, struct node *n)
{
	drop_versions(m, n, n->nver);
	m->size -= n->key_len + NODE_OVERHEAD;
	m->nodes--;
	free(n->vers);
	free(n);
}

/* Links n after the nodes in update (as filled by seek()). */
static void link_node(struct mvcc *m, struct node *n, struct node **update)
{
	int i;

	for (i = m->level; i < n->level; i++)
		update[i] = m->head;
	if (n->level > m->level)
		m->level = n->level;
	for (i = 0; i < n->level; i++) {
		n->next[i] = update[i]->next[i];
		update[i]->next[i] = n;
	}
	m->nodes++;
	m->size += n->key_len + NODE_OVERHEAD;
}

static void unlink_node(struct mvcc *m, struct node *n, struct node **update)
{
	int i;

	for (i = 0; i < n->level; i++)
		update[i]->next[i] = n->next[i];
	while (m->level > 1 && m->head->next[m->level - 1] == NULL)
		m->level--;
}

/* ---- versions -------------------------------------------------------------- */

static bool is_tombstone(const struct ver *v)
{
	return v->value_len == TOMBSTONE;
}

/* How many versions have mod_rev <= rev (binary search). */
static uint32_t count_upto(const struct node *n, int64_t rev)
{
	uint32_t lo = 0;
	uint32_t hi = n->nver;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (n->vers[mid].mod_rev <= rev)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The version a read at rev sees, or NULL if the key is not live then. */
static const struct ver *visible(const struct node *n, int64_t rev)
{
	uint32_t i = count_upto(n, rev);

	if (i == 0 || is_tombstone(&n->vers[i - 1]))
		return NULL;
	return &n->vers[i - 1];
}

static const struct ver *latest_live(const struct node *n)
{
	const struct ver *v = &n->vers[n->nver - 1];

	return is_tombstone(v) ? NULL : v;
}

static void fill_kv(const struct node *n, const struct ver *v,
                    struct mvcc_kv *kv)
{
	kv->key = node_key(n);
	kv->key_len = n->key_len;
	kv->value = v->value != NULL ? v->value : (const uint8_t *)"";
	kv->value_len = v->value_len;
	kv->create_rev = v->create_rev;
	kv->mod_rev = v->mod_rev;
	kv->version = v->version;
	kv->lease = v->lease;
}

/* Makes room for one more version. */
static int reserve_ver(struct node *n)
{
	struct ver *vers;
	uint32_t cap;

	if (n->nver < n->cap)
		return 0;
	if (n->cap > UINT32_MAX / 2)
		return CAIRN_ENOMEM;
	cap = n->cap * 2;
	vers = realloc(n->vers, (size_t)cap * sizeof(vers[0]));
	if (vers == NULL)
		return CAIRN_ENOMEM;
	n->vers = vers;
	n->cap = cap;
	return 0;
}

/* Makes room for k more history entries (doubling, so appends are amortized
 * O(1)). Only the room changes: on failure nothing does. */
static int reserve_hist(struct mvcc *m, size_t k)
{
	struct hent *hist;
	size_t cap;

	if (k <= m->hist_cap - m->hist_end)
		return 0;
	if (k > SIZE_MAX / sizeof(hist[0]) - m->hist_end)
		return CAIRN_ENOMEM;
	cap = m->hist_cap <= SIZE_MAX / sizeof(hist[0]) / 2 ? m->hist_cap * 2 : 0;
	if (cap < m->hist_end + k)
		cap = m->hist_end + k;
	hist = realloc(m->hist, cap * sizeof(hist[0]));
	if (hist == NULL)
		return CAIRN_ENOMEM;
	m->hist = hist;
	m->hist_cap = cap;
	return 0;
}

/* Appends a version at the open group's revision, and its history entry;
 * room for both was reserved. */
static struct ver *append_ver(struct mvcc *m, struct node *n)
{
	struct ver *v = &n->vers[n->nver++];
	struct hent *h = &m->hist[m->hist_end++];

	assert(n->nver <= n->cap);
	assert(m->hist_end <= m->hist_cap);
	v->mod_rev = m->group_rev;
	v->sub = m->sub++;
	h->n = n;
	h->rev = v->mod_rev;
	h->sub = v->sub;
	m->size += VER_OVERHEAD + HENT_OVERHEAD;
	return v;
}

static void append_put(struct mvcc *m, struct node *n, uint8_t *value,
                       size_t value_len, int64_t lease)
{
	const struct ver *last = n->nver > 0 ? latest_live(n) : NULL;
	int64_t create_rev = last != NULL ? last->create_rev : m->group_rev;
	int64_t version = last != NULL ? last->version + 1 : 1;
	struct ver *v;

	if (last == NULL)
		m->live++;
	v = append_ver(m, n);
	v->create_rev = create_rev;
	v->version = version;
	v->lease = lease;
	v->value = value;
	v->value_len = (uint32_t)value_len;
	m->size += value_len;
}

static void append_tombstone(struct mvcc *m, struct node *n)
{
	struct ver *v = append_ver(m, n);

	v->create_rev = 0;
	v->version = 0;
	v->lease = 0;
	v->value = NULL;
	v->value_len = TOMBSTONE;
	m->live--;
}

/* ---- the store ------------------------------------------------------------- */

int mvcc_create(struct mvcc **out)
{
	struct mvcc *m;

	*out = NULL;
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		goto err;
	m->head = node_new(NULL, 0, MAX_LEVEL, 1);
	if (m->head == NULL)
		goto err_after_alloc;
	m->hist = malloc(HIST_MIN * sizeof(m->hist[0]));
	if (m->hist == NULL)
		goto err_after_head;
	m->hist_cap = HIST_MIN;
	m->level = 1;
	m->rng = RNG_SEED;
	m->rev = 1;
	*out = m;
	return 0;

err_after_head:
	free(m->head->vers);
	free(m->head);
err_after_alloc:
	free(m);
err:
	return CAIRN_ENOMEM;
}

void mvcc_destroy(struct mvcc *m)
{
	struct node *n;
	struct node *next;

	if (m == NULL)
		return;
	for (n = m->head->next[0]; n != NULL; n = next) {
		next = n->next[0];
		node_free(m, n);
	}
	free(m->hist);
	free(m->head->vers);
	free(m->head);
	free(m);
}

int64_t mvcc_rev(const struct mvcc *m)
{
	return m->rev;
}

int64_t mvcc_compact_rev(const struct mvcc *m)
{
	return m->compact_rev;
}

uint64_t mvcc_key_count(const struct mvcc *m)
{
	return m->live;
}

uint64_t mvcc_size_bytes(const struct mvcc *m)
{
	return m->size;
}

/* The revision a read with rev 0 sees: the open group's once it changed
 * something (etcd's storeTxnWrite.Range), else the last one. */
static int64_t read_head(const struct mvcc *m)
{
	return m->in_group && m->sub > 0 ? m->group_rev : m->rev;
}

/* Resolves a requested read revision (<= 0: the newest) into *rev. */
static int read_rev(const struct mvcc *m, int64_t want, int64_t *rev)
{
	int64_t head = read_head(m);

	*rev = want > 0 ? want : head;
	if (*rev > head)
		return CAIRN_EFUTUREREV;
	if (*rev < m->compact_rev)
		return CAIRN_ECOMPACTED;
	return 0;
}

/* ---- writes ------------------------------------------------------------- */

void mvcc_begin(struct mvcc *m)
{
	assert(!m->in_group);
	m->in_group = true;
	m->group_rev = m->rev + 1;
	m->sub = 0;
}

int64_t mvcc_end(struct mvcc *m)
{
	assert(m->in_group);
	if (m->in_group && m->sub > 0)
		m->rev = m->group_rev;
	m->in_group = false;
	m->sub = 0;
	return m->rev;
}

static void report_prev(const struct node *n, struct mvcc_kv *prev,
                        bool *had_prev)
{
	const struct ver *last = n != NULL ? latest_live(n) : NULL;

	if (had_prev != NULL)
		*had_prev = last != NULL;
	if (prev != NULL && last != NULL)
		fill_kv(n, last, prev);
}

/* The node for key with room for one more version, created and linked if
 * needed. NULL on allocation failure, with nothing changed. */
static struct node *node_for_put(struct mvcc *m, const uint8_t *key,
                                 size_t key_len)
{
	struct node *update[MAX_LEVEL];
	struct node *n = seek(m, key, key_len, update);

	if (n != NULL && node_cmp(n, key, key_len) == 0)
		return reserve_ver(n) == 0 ? n : NULL;
	n = node_new(key, key_len, random_level(m), 1);
	if (n != NULL)
		link_node(m, n, update);
	return n;
}

int mvcc_put(struct mvcc *m, const uint8_t *key, size_t key_len,
             const uint8_t *value, size_t value_len, int64_t lease,
             struct mvcc_kv *prev, bool *had_prev)
{
	uint8_t *copy = NULL;
	struct node *n;

	assert(m->in_group);
	if (key_len > UINT32_MAX || value_len >= TOMBSTONE)
		goto err;
	if (reserve_hist(m, 1) != 0)
		goto err; /* only room was added */
	if (value_len > 0) {
		copy = malloc(value_len);
		if (copy == NULL)
			goto err;
		memcpy(copy, value, value_len);
	}
	n = node_for_put(m, key, key_len);
	if (n == NULL)
		goto err_after_copy;
	report_prev(n->nver > 0 ? n : NULL, prev, had_prev);
	append_put(m, n, copy, value_len, lease);
	return 0;

err_after_copy:
	free(copy);
err:
	return CAIRN_ENOMEM;
}

static void span_init(struct span *s, const uint8_t *key, size_t key_len,
                      const uint8_t *end, size_t end_len)
{
	bool end_zero = end_len == 1 && end[0] == 0;

	s->key = key;
	s->key_len = key_len;
	s->end = end;
	s->end_len = end_len;
	if (end_len == 0)
		s->kind = SPAN_ONE;
	else if (end_zero && key_len == 1 && key[0] == 0)
		s->kind = SPAN_ALL;
	else if (end_zero)
		s->kind = SPAN_FROM;
	else if (cmp(end, end_len, key, key_len) <= 0)
		s->kind = SPAN_EMPTY;
	else
		s->kind = SPAN_BELOW;
}

static struct node *span_first(const struct mvcc *m, const struct span *s)
{
	switch (s->kind) {
	case SPAN_EMPTY:
		return NULL;
	case SPAN_ALL:
		return m->head->next[0];
	default:
		return seek(m, s->key, s->key_len, NULL);
	}
}

/* Whether n, at or after the span's first node, is still inside it. */
static bool span_has(const struct span *s, const struct node *n)
{
	switch (s->kind) {
	case SPAN_ONE:
		return node_cmp(n, s->key, s->key_len) == 0;
	case SPAN_BELOW:
		return node_cmp(n, s->end, s->end_len) < 0;
	default:
		return true;
	}
}

#define SPAN_FOREACH(m, s, n)                                                \
	for ((n) = span_first((m), (s)); (n) != NULL && span_has((s), (n));  \
	     (n) = (n)->next[0])

/* First pass of a delete: room for a tombstone in every live key of s, and
 * for as many history entries. */
static int reserve_span(struct mvcc *m, const struct span *s)
{
	struct node *n;
	size_t count = 0;

	SPAN_FOREACH(m, s, n)
	{
		if (latest_live(n) == NULL)
			continue;
		if (reserve_ver(n) != 0)
			return CAIRN_ENOMEM;
		count++;
	}
	return reserve_hist(m, count);
}

int mvcc_delete_range(struct mvcc *m, const uint8_t *key, size_t key_len,
                      const uint8_t *end, size_t end_len, mvcc_kv_cb cb,
                      void *arg, int64_t *deleted)
{
	struct span s;
	struct node *n;
	struct mvcc_kv kv;
	int64_t count = 0;
	int rv;

	assert(m->in_group);
	span_init(&s, key, key_len, end, end_len);
	rv = reserve_span(m, &s);
	if (rv != 0)
		return rv;
	SPAN_FOREACH(m, &s, n)
	{
		const struct ver *last = latest_live(n);

		if (last == NULL)
			continue;
		if (cb != NULL) {
			fill_kv(n, last, &kv);
			cb(&kv, arg);
		}
		append_tombstone(m, n);
		count++;
	}
	if (deleted != NULL)
		*deleted = count;
	return 0;
}

/* ---- reads ------------------------------------------------------------- */

int mvcc_range(struct mvcc *m, const uint8_t *key, size_t key_len,
               const uint8_t *end, size_t end_len,
               const struct mvcc_range_opts *opts, mvcc_kv_cb cb, void *arg,
               struct mvcc_range_result *res)
{
	static const struct mvcc_range_opts defaults = {0, 0, false};
	struct span s;
	struct node *n;
	struct mvcc_kv kv;
	int64_t rev;
	int64_t count = 0;
	int rv;

	if (opts == NULL)
		opts = &defaults;
	rv = read_rev(m, opts->rev, &rev);
	res->count = 0;
	res->more = false;
	res->rev = rev;
	if (rv != 0)
		return rv;
	span_init(&s, key, key_len, end, end_len);
	SPAN_FOREACH(m, &s, n)
	{
		const struct ver *v = visible(n, rev);

		if (v == NULL)
			continue;
		count++;
		if (opts->count_only || cb == NULL)
			continue;
		if (opts->limit <= 0 || count <= opts->limit) {
			fill_kv(n, v, &kv);
			cb(&kv, arg);
		}
	}
	res->count = count;
	res->more = opts->limit > 0 && count > opts->limit;
	return 0;
}

bool mvcc_get(struct mvcc *m, const uint8_t *key, size_t key_len, int64_t rev,
              struct mvcc_kv *kv)
{
	const struct ver *v;
	struct node *n;
	int64_t at;

	if (read_rev(m, rev, &at) != 0)
		return false;
	n = seek(m, key, key_len, NULL);
	if (n == NULL || node_cmp(n, key, key_len) != 0)
		return false;
	v = visible(n, at);
	if (v == NULL)
		return false;
	if (kv != NULL)
		fill_kv(n, v, kv);
	return true;
}

/* ---- the change history --------------------------------------------------- */

/* The first history entry with rev >= rev (hist_end if none). */
static size_t hist_seek(const struct mvcc *m, int64_t rev)
{
	size_t lo = m->hist_start;
	size_t hi = m->hist_end;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (m->hist[mid].rev < rev)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Whether n is in s (anywhere: span_has() only looks past span_first()). */
static bool span_contains(const struct span *s, const struct node *n)
{
	switch (s->kind) {
	case SPAN_EMPTY:
		return false;
	case SPAN_ALL:
		return true;
	case SPAN_ONE:
		return node_cmp(n, s->key, s->key_len) == 0;
	case SPAN_FROM:
		return node_cmp(n, s->key, s->key_len) >= 0;
	default:
		return node_cmp(n, s->key, s->key_len) >= 0 &&
		       node_cmp(n, s->end, s->end_len) < 0;
	}
}

/* The index of version (rev, sub) of n, which must be kept. */
static uint32_t find_ver(const struct node *n, int64_t rev, uint32_t sub)
{
	uint32_t lo = 0;
	uint32_t hi = n->nver;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		const struct ver *v = &n->vers[mid];

		if (v->mod_rev < rev || (v->mod_rev == rev && v->sub < sub))
			lo = mid + 1;
		else
			hi = mid;
	}
	assert(lo < n->nver && n->vers[lo].mod_rev == rev &&
	       n->vers[lo].sub == sub);
	return lo;
}

static void fill_change(const struct hent *h, struct mvcc_change *ch)
{
	const struct node *n = h->n;
	uint32_t i = find_ver(n, h->rev, h->sub);
	const struct ver *v = &n->vers[i];

	memset(ch, 0, sizeof(*ch));
	ch->rev = h->rev;
	ch->sub = h->sub;
	ch->is_delete = is_tombstone(v);
	if (ch->is_delete) {
		ch->kv.key = node_key(n);
		ch->kv.key_len = n->key_len;
		ch->kv.mod_rev = h->rev;
	} else {
		fill_kv(n, v, &ch->kv);
	}
	ch->has_prev = i > 0 && !is_tombstone(&n->vers[i - 1]);
	if (ch->has_prev)
		fill_kv(n, &n->vers[i - 1], &ch->prev);
}

int mvcc_changes(struct mvcc *m, int64_t from, int64_t to, const uint8_t *key,
                 size_t key_len, const uint8_t *end, size_t end_len,
                 mvcc_change_cb cb, void *arg)
{
	struct mvcc_change ch;
	struct span s;
	size_t i;

	assert(!m->in_group);
	if (from <= m->compact_rev)
		return CAIRN_ECOMPACTED;
	if (from > m->rev + 1)
		return CAIRN_EFUTUREREV;
	span_init(&s, key, key_len, end, end_len);
	if (s.kind == SPAN_EMPTY)
		return 0;
	/* No entry is above m->rev outside a group: to needs no clamping. */
	for (i = hist_seek(m, from); i < m->hist_end && m->hist[i].rev <= to;
	     i++) {
		if (!span_contains(&s, m->hist[i].n))
			continue;
		fill_change(&m->hist[i], &ch);
		if (!cb(&ch, arg))
			break;
	}
	return 0;
}

/* ---- compaction ------------------------------------------------------- */

/* Drops the history entries at or below rev. The rest moves down only once
 * the dropped prefix is longer than it (each entry dropped pays for at most
 * one moved), then unused room is given back. */
static void compact_hist(struct mvcc *m, int64_t rev)
{
	size_t start = hist_seek(m, rev + 1);
	size_t left = m->hist_end - start;
	struct hent *hist;
	size_t cap;

	m->size -= (start - m->hist_start) * HENT_OVERHEAD;
	m->hist_start = start;
	if (start <= left)
		return;
	memmove(m->hist, m->hist + start, left * sizeof(m->hist[0]));
	m->hist_start = 0;
	m->hist_end = left;
	if (m->hist_cap / 4 <= left || m->hist_cap <= HIST_MIN)
		return;
	cap = left * 2 > HIST_MIN ? left * 2 : HIST_MIN;
	hist = realloc(m->hist, cap * sizeof(hist[0]));
	if (hist == NULL)
		return; /* keeping the larger array is harmless */
	m->hist = hist;
	m->hist_cap = cap;
}

/* Gives back version array room that compaction left unused. */
static void shrink_vers(struct node *n)
{
	struct ver *vers;

	if (n->nver == 0 || n->cap / 2 < n->nver)
		return;
	vers = realloc(n->vers, n->nver * sizeof(vers[0]));
	if (vers == NULL)
		return; /* keeping the larger array is harmless */
	n->vers = vers;
	n->cap = n->nver;
}

/* Drops the versions of n no read at or after rev can see. */
static void compact_node(struct mvcc *m, struct node *n, int64_t rev)
{
	uint32_t upto = count_upto(n, rev);
	uint32_t drop;

	if (upto == 0)
		return;
	drop = upto - 1;
	if (is_tombstone(&n->vers[upto - 1]))
		drop = upto;
	if (drop == 0)
		return;
	drop_versions(m, n, drop);
	shrink_vers(n);
}

int mvcc_compact(struct mvcc *m, int64_t rev)
{
	struct node *update[MAX_LEVEL];
	struct node *n;
	struct node *next;
	int i;

	if (rev <= m->compact_rev)
		return CAIRN_ECOMPACTED;
	if (rev > m->rev)
		return CAIRN_EFUTUREREV;
	for (i = 0; i < MAX_LEVEL; i++)
		update[i] = m->head;
	for (n = m->head->next[0]; n != NULL; n = next) {
		next = n->next[0];
		compact_node(m, n, rev);
		if (n->nver > 0) {
			for (i = 0; i < n->level; i++)
				update[i] = n;
			continue;
		}
		unlink_node(m, n, update);
		node_free(m, n);
	}
	compact_hist(m, rev);
	m->compact_rev = rev;
	return 0;
}

/* ---- dump ------------------------------------------------------------------ */

static void dump_ver(struct mp_writer *w, const struct ver *v)
{
	mp_put_array(w, 6);
	mp_put_int(w, v->mod_rev);
	mp_put_uint(w, v->sub);
	mp_put_int(w, v->create_rev);
	mp_put_int(w, v->version);
	mp_put_int(w, v->lease);
	if (is_tombstone(v))
		mp_put_nil(w);
	else
		mp_put_bin(w, v->value, v->value_len);
}

static void dump_node(struct mp_writer *w, const struct node *n)
{
	uint32_t i;

	mp_put_array(w, 2);
	mp_put_bin(w, node_key(n), n->key_len);
	mp_put_array(w, n->nver);
	for (i = 0; i < n->nver; i++)
		dump_ver(w, &n->vers[i]);
}

/*
 * The format (MessagePack), keys in order, versions oldest first:
 *   [1, rev, compact_rev,
 *    [[key:bin, [[mod_rev, sub, create_rev, version, lease, value:bin|nil],
 *                ...]], ...]]
 * A nil value is a tombstone (whose create_rev, version and lease are 0).
 * Not to be called inside a write group.
 */
int mvcc_dump(struct mvcc *m, struct buf *out)
{
	struct mp_writer w;
	const struct node *n;
	size_t len0 = out->len;

	assert(!m->in_group);
	if (m->nodes > UINT32_MAX)
		return CAIRN_ENOMEM;
	/* On 64-bit hosts size_bytes counts more per key (32) and per version
	 * (48) than their encoding can take (11, 47), so one allocation holds
	 * the whole dump: no copies as it grows, and the slack's pages are
	 * never touched. Elsewhere the buf simply grows. */
	if (buf_reserve(out, m->size + DUMP_HEADER_MAX) != 0)
		return CAIRN_ENOMEM;
	mp_writer_init(&w, out);
	mp_put_array(&w, 4);
	mp_put_uint(&w, FORMAT_VERSION);
	mp_put_int(&w, m->rev);
	mp_put_int(&w, m->compact_rev);
	mp_put_array(&w, (uint32_t)m->nodes);
	for (n = m->head->next[0]; n != NULL; n = n->next[0])
		dump_node(&w, n);
	if (w.err != 0)
		out->len = len0;
	return w.err;
}

/* ---- load ------------------------------------------------------------------ */

struct loader {
	struct mp_reader *r;
	struct mvcc *m;
	struct node *tail[MAX_LEVEL]; /* the last node at each level */
	size_t nhist; /* versions above the compact revision */
};

static int load_header(struct loader *l, uint32_t *nkeys)
{
	struct mp_reader *r = l->r;
	uint32_t n;
	uint64_t format;
	int64_t rev;
	int64_t compact_rev;

	if (!mp_read_array(r, &n) || n != 4 || !mp_read_uint(r, &format) ||
	    !mp_read_int(r, &rev) || !mp_read_int(r, &compact_rev) ||
	    !mp_read_array(r, nkeys))
		return CAIRN_EPROTO;
	if (format != FORMAT_VERSION || rev < 1 || rev > MAX_COUNTER ||
	    compact_rev < 0 || compact_rev > rev)
		return CAIRN_EPROTO;
	l->m->rev = rev;
	l->m->compact_rev = compact_rev;
	return 0;
}

/* Checks v's fields alone (prev is the version before it, NULL for none). */
static bool ver_valid(const struct mvcc *m, const struct ver *prev,
                      const struct ver *v)
{
	if (v->mod_rev < 2 || v->mod_rev > m->rev)
		return false;
	if (prev != NULL && (v->mod_rev < prev->mod_rev ||
	                     (v->mod_rev == prev->mod_rev && v->sub <= prev->sub)))
		return false;
	if (is_tombstone(v))
		return prev != NULL && !is_tombstone(prev) && v->create_rev == 0 &&
		       v->version == 0 && v->lease == 0;
	if (v->create_rev < 2 || v->create_rev > v->mod_rev || v->version < 1 ||
	    v->version > MAX_COUNTER)
		return false;
	if (v->version == 1 && v->create_rev != v->mod_rev)
		return false;
	if (prev != NULL && is_tombstone(prev))
		return v->version == 1;
	if (prev != NULL)
		return v->version == prev->version + 1 &&
		       v->create_rev == prev->create_rev;
	return true;
}

/* Reads one version into v (value not yet copied: v->value points into the
 * input until load_ver() copies it). */
static int read_ver(struct mp_reader *r, struct ver *v, const uint8_t **value)
{
	uint32_t n;
	uint64_t sub;
	uint32_t len = 0;

	*value = NULL;
	if (!mp_read_array(r, &n) || n != 6 || !mp_read_int(r, &v->mod_rev) ||
	    !mp_read_uint(r, &sub) || !mp_read_int(r, &v->create_rev) ||
	    !mp_read_int(r, &v->version) || !mp_read_int(r, &v->lease))
		return CAIRN_EPROTO;
	if (sub >= UINT32_MAX)
		return CAIRN_EPROTO;
	v->sub = (uint32_t)sub;
	if (mp_peek(r) == MP_NIL) {
		mp_read_nil(r);
		len = TOMBSTONE;
	} else if (!mp_read_bytes(r, value, &len) || len >= TOMBSTONE) {
		return CAIRN_EPROTO;
	}
	v->value = NULL;
	v->value_len = len;
	return 0;
}

/* Reads, checks and appends the next version of n. */
static int load_ver(struct loader *l, struct node *n)
{
	const struct ver *prev = n->nver > 0 ? &n->vers[n->nver - 1] : NULL;
	struct ver *v = &n->vers[n->nver];
	const uint8_t *value;
	int rv;

	rv = read_ver(l->r, v, &value);
	if (rv != 0)
		return rv;
	if (!ver_valid(l->m, prev, v))
		return CAIRN_EPROTO;
	/* The oldest kept version is the one visible at the compact revision;
	 * compaction drops anything older. */
	if (prev != NULL && v->mod_rev <= l->m->compact_rev)
		return CAIRN_EPROTO;
	if (value != NULL && v->value_len > 0) {
		v->value = malloc(v->value_len);
		if (v->value == NULL)
			return CAIRN_ENOMEM;
		memcpy(v->value, value, v->value_len);
	}
	n->nver++;
	l->m->size += VER_OVERHEAD + (is_tombstone(v) ? 0 : v->value_len);
	if (v->mod_rev > l->m->compact_rev)
		l->nhist++;
	return 0;
}

/* Appends n after the last node loaded. */
static void append_node(struct loader *l, struct node *n)
{
	int i;

	for (i = 0; i < n->level; i++) {
		l->tail[i]->next[i] = n;
		l->tail[i] = n;
	}
	if (n->level > l->m->level)
		l->m->level = n->level;
	l->m->nodes++;
	l->m->size += n->key_len + NODE_OVERHEAD;
}

static int load_key(struct loader *l)
{
	const struct node *last = l->tail[0];
	const uint8_t *key;
	struct node *n;
	uint32_t len;
	uint32_t nver;
	uint32_t i;
	int rv;

	if (!mp_read_array(l->r, &nver) || nver != 2 ||
	    !mp_read_bytes(l->r, &key, &len) || !mp_read_array(l->r, &nver))
		return CAIRN_EPROTO;
	if (nver == 0 || (last != l->m->head && node_cmp(last, key, len) >= 0))
		return CAIRN_EPROTO;
	n = node_new(key, len, random_level(l->m), nver);
	if (n == NULL)
		return CAIRN_ENOMEM;
	append_node(l, n); /* from here on mvcc_destroy() frees it */
	for (i = 0; i < nver; i++) {
		rv = load_ver(l, n);
		if (rv != 0)
			return rv;
	}
	if (latest_live(n) != NULL)
		l->m->live++;
	return 0;
}

/* Counts the versions above base per revision: slot[rev - base - 1]. */
static void count_revs(const struct mvcc *m, int64_t base, size_t *slot)
{
	const struct node *n;
	uint32_t i;

	for (n = m->head->next[0]; n != NULL; n = n->next[0])
		for (i = 0; i < n->nver; i++)
			if (n->vers[i].mod_rev > base)
				slot[n->vers[i].mod_rev - base - 1]++;
}

/* Puts each version above base into its history slot: slot[r] + sub. */
static int place_revs(struct mvcc *m, int64_t base, const size_t *slot)
{
	struct node *n;
	uint32_t i;

	for (n = m->head->next[0]; n != NULL; n = n->next[0]) {
		for (i = 0; i < n->nver; i++) {
			const struct ver *v = &n->vers[i];
			size_t r = (size_t)(v->mod_rev - base - 1);
			struct hent *h;

			if (v->mod_rev <= base)
				continue;
			if (v->sub >= slot[r + 1] - slot[r])
				return CAIRN_EPROTO; /* a sub skipped */
			h = &m->hist[slot[r] + v->sub];
			if (h->n != NULL)
				return CAIRN_EPROTO; /* a sub twice */
			h->n = n;
			h->rev = v->mod_rev;
			h->sub = v->sub;
		}
	}
	return 0;
}

/*
 * Rebuilds the history from the loaded versions in O(versions), no sort.
 * Every change above the compact revision is kept, so each revision in
 * (base, rev] (base: the compact revision, or 1, which holds no change) is a
 * run of changes with subs 0, 1, ..., k-1 in the dump. Counting them per
 * revision gives each its slot; a dump that does not have that shape (a
 * revision without changes, a sub skipped or given twice) is refused.
 */
static int load_history(struct loader *l)
{
	struct mvcc *m = l->m;
	int64_t base = m->compact_rev > 1 ? m->compact_rev : 1;
	size_t nrev = (size_t)(m->rev - base);
	size_t *slot;
	size_t at = 0;
	size_t r;
	int rv = CAIRN_EPROTO;

	if ((uint64_t)(m->rev - base) > l->nhist)
		return CAIRN_EPROTO; /* a revision without changes */
	if (l->nhist == 0)
		return 0;
	if (reserve_hist(m, l->nhist) != 0)
		return CAIRN_ENOMEM;
	slot = calloc(nrev + 1, sizeof(slot[0]));
	if (slot == NULL)
		return CAIRN_ENOMEM;
	count_revs(m, base, slot);
	for (r = 0; r < nrev; r++) {
		size_t k = slot[r];

		if (k == 0)
			goto out;
		slot[r] = at;
		at += k;
	}
	slot[nrev] = at;
	memset(m->hist, 0, at * sizeof(m->hist[0]));
	rv = place_revs(m, base, slot);
	if (rv != 0)
		goto out;
	m->hist_end = at;
	m->size += at * HENT_OVERHEAD;
out:
	free(slot);
	return rv;
}

int mvcc_load(struct mp_reader *r, struct mvcc **out)
{
	struct loader l;
	uint32_t nkeys;
	uint32_t i;
	int rv;
	int j;

	*out = NULL;
	rv = mvcc_create(&l.m);
	if (rv != 0)
		goto err;
	l.r = r;
	l.nhist = 0;
	for (j = 0; j < MAX_LEVEL; j++)
		l.tail[j] = l.m->head;
	rv = load_header(&l, &nkeys);
	for (i = 0; rv == 0 && i < nkeys; i++)
		rv = load_key(&l);
	if (rv == 0)
		rv = load_history(&l);
	if (rv != 0)
		goto err_after_create;
	*out = l.m;
	return 0;

err_after_create:
	mvcc_destroy(l.m);
err:
	if (rv == CAIRN_EPROTO)
		r->err = true;
	return rv;
}
