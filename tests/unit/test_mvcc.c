/*
 * test_mvcc: unit tests of store/mvcc.c, the multi-version keyspace.
 *
 * Hand-written cases pin down etcd's semantics (revisions, versions, range
 * rules, compaction, the change history); a randomized test replays
 * thousands of operations against a reference model that keeps a full copy
 * of the keyspace per revision and the list of changes; the decoder is fed
 * truncated and corrupted dumps. When the libc
 * allocator is in use (no AddressSanitizer) every allocation of the write,
 * dump and load paths is made to fail in turn, checking that CAIRN_ENOMEM
 * changes nothing and leaks nothing.
 *
 * MVCC_SEED=<n> in the environment replays the randomized tests with seed n.
 */
#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "cairn.h"
#include "mp.h"
#include "mvcc.h"
#include "test.h"

/* ---- allocation failure injection ------------------------------------- */

#include "fault.h"

/* ---- helpers ------------------------------------------------------------ */

#define S(s) (const uint8_t *)(s), strlen(s)
#define ZERO (const uint8_t *)"", 1 /* one 0x00 byte */

static uint64_t seed = 0x5eed5eedULL;

static uint64_t rnd(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static struct mvcc *store_new(void)
{
	struct mvcc *m;

	if (mvcc_create(&m) != 0)
		abort();
	return m;
}

static int64_t put1(struct mvcc *m, const char *k, const char *v)
{
	mvcc_begin(m);
	if (mvcc_put(m, S(k), S(v), 0, NULL, NULL) != 0)
		abort();
	return mvcc_end(m);
}

static int64_t del1(struct mvcc *m, const char *k, const char *end,
                    size_t end_len)
{
	int64_t n;

	mvcc_begin(m);
	if (mvcc_delete_range(m, S(k), (const uint8_t *)end, end_len, NULL,
	                      NULL, &n) != 0)
		abort();
	return mvcc_end(m);
}

static int64_t del_all(struct mvcc *m)
{
	int64_t n;

	mvcc_begin(m);
	if (mvcc_delete_range(m, ZERO, ZERO, NULL, NULL, &n) != 0)
		abort();
	return mvcc_end(m);
}

static bool get_is(struct mvcc *m, const char *k, int64_t rev, const char *v)
{
	struct mvcc_kv kv;

	if (!mvcc_get(m, S(k), rev, &kv))
		return v == NULL;
	return v != NULL && kv.value_len == strlen(v) &&
	       memcmp(kv.value, v, kv.value_len) == 0;
}

/* A copy of what range callbacks passed, for small results. */
#define MAX_SEEN 64
struct seen_kv {
	uint8_t key[16];
	size_t key_len;
	uint8_t value[32];
	size_t value_len;
	int64_t create_rev;
	int64_t mod_rev;
	int64_t version;
	int64_t lease;
};

struct seen {
	struct seen_kv kv[MAX_SEEN];
	size_t n;
	bool overflow;
};

/* Copies kv into c; false if it does not fit. */
static bool copy_kv(struct seen_kv *c, const struct mvcc_kv *kv)
{
	if (kv->key_len > sizeof(c->key) || kv->value_len > sizeof(c->value))
		return false;
	if (kv->key_len > 0)
		memcpy(c->key, kv->key, kv->key_len);
	c->key_len = kv->key_len;
	if (kv->value_len > 0)
		memcpy(c->value, kv->value, kv->value_len);
	c->value_len = kv->value_len;
	c->create_rev = kv->create_rev;
	c->mod_rev = kv->mod_rev;
	c->version = kv->version;
	c->lease = kv->lease;
	return true;
}

static void seen_cb(const struct mvcc_kv *kv, void *arg)
{
	struct seen *s = arg;

	if (s->n == MAX_SEEN || !copy_kv(&s->kv[s->n], kv)) {
		s->overflow = true;
		return;
	}
	s->n++;
}

static int range(struct mvcc *m, const char *k, size_t k_len, const char *end,
                 size_t end_len, int64_t rev, int64_t limit, bool count_only,
                 struct seen *s, struct mvcc_range_result *res)
{
	struct mvcc_range_opts o = {rev, limit, count_only};

	memset(s, 0, sizeof(*s));
	return mvcc_range(m, (const uint8_t *)k, k_len, (const uint8_t *)end,
	                  end_len, &o, seen_cb, s, res);
}

/* Whether the keys seen are exactly the space-separated list want. */
static bool seen_keys(const struct seen *s, const char *want)
{
	char buf[256] = "";
	size_t i;

	for (i = 0; i < s->n; i++) {
		if (i > 0)
			strcat(buf, " ");
		strncat(buf, (const char *)s->kv[i].key, s->kv[i].key_len);
	}
	return !s->overflow && strcmp(buf, want) == 0;
}

/* A byte string with its length (keys may hold 0x00). */
struct bytes {
	const char *s;
	size_t len;
};

/* A hash of everything a full range at rev shows, to compare two stores. */
struct digest {
	uint64_t h;
	int64_t n;
};

static void mix(struct digest *d, const void *p, size_t len)
{
	const uint8_t *b = p;
	size_t i;

	for (i = 0; i < len; i++)
		d->h = (d->h ^ b[i]) * 0x100000001b3ULL;
}

static void digest_cb(const struct mvcc_kv *kv, void *arg)
{
	struct digest *d = arg;

	mix(d, &kv->key_len, sizeof(kv->key_len));
	mix(d, kv->key, kv->key_len);
	mix(d, &kv->value_len, sizeof(kv->value_len));
	mix(d, kv->value, kv->value_len);
	mix(d, &kv->create_rev, sizeof(kv->create_rev));
	mix(d, &kv->mod_rev, sizeof(kv->mod_rev));
	mix(d, &kv->version, sizeof(kv->version));
	mix(d, &kv->lease, sizeof(kv->lease));
	d->n++;
}

static int digest_at(struct mvcc *m, int64_t rev, struct digest *d)
{
	struct mvcc_range_opts o = {rev, 0, false};
	struct mvcc_range_result res;

	d->h = 0xcbf29ce484222325ULL;
	d->n = 0;
	return mvcc_range(m, ZERO, ZERO, &o, digest_cb, d, &res);
}

static bool digest_change_cb(const struct mvcc_change *ch, void *arg)
{
	struct digest *d = arg;
	bool null = ch->kv.value == NULL;
	int64_t n = d->n;

	mix(d, &ch->rev, sizeof(ch->rev));
	mix(d, &ch->sub, sizeof(ch->sub));
	mix(d, &ch->is_delete, sizeof(ch->is_delete));
	mix(d, &null, sizeof(null));
	digest_cb(&ch->kv, d);
	mix(d, &ch->has_prev, sizeof(ch->has_prev));
	if (ch->has_prev)
		digest_cb(&ch->prev, d);
	d->n = n + 1; /* counts changes, not pairs */
	return true;
}

/* A hash of the changes in [from, to] of [key, end). */
static int digest_changes(struct mvcc *m, int64_t from, int64_t to,
                          const struct bytes *key, const struct bytes *end,
                          struct digest *d)
{
	d->h = 0xcbf29ce484222325ULL;
	d->n = 0;
	return mvcc_changes(m, from, to, (const uint8_t *)key->s, key->len,
	                    (const uint8_t *)end->s, end->len, digest_change_cb,
	                    d);
}

static const struct bytes all_keys = {"\0", 1};

/* Two stores show the same thing at every kept revision. */
static int same_stores(struct mvcc *a, struct mvcc *b)
{
	struct digest da;
	struct digest db;
	int64_t rev;

	CHECK_EQ_INT(mvcc_rev(a), mvcc_rev(b));
	CHECK_EQ_INT(mvcc_compact_rev(a), mvcc_compact_rev(b));
	CHECK_EQ_INT(mvcc_key_count(a), mvcc_key_count(b));
	CHECK_EQ_INT(mvcc_size_bytes(a), mvcc_size_bytes(b));
	for (rev = mvcc_compact_rev(a); rev <= mvcc_rev(a); rev++) {
		if (rev == 0)
			continue;
		CHECK_EQ_INT(digest_at(a, rev, &da), 0);
		CHECK_EQ_INT(digest_at(b, rev, &db), 0);
		CHECK_EQ_INT(da.n, db.n);
		CHECK(da.h == db.h);
	}
	/* And the same change history, all of it that is kept. */
	rev = mvcc_compact_rev(a) + 1;
	CHECK_EQ_INT(digest_changes(a, rev, INT64_MAX, &all_keys, &all_keys, &da),
	             0);
	CHECK_EQ_INT(digest_changes(b, rev, INT64_MAX, &all_keys, &all_keys, &db),
	             0);
	CHECK_EQ_INT(da.n, db.n);
	CHECK(da.h == db.h);
	return 0;
}

static int dump(struct mvcc *m, struct buf *b)
{
	buf_reset(b);
	return mvcc_dump(m, b);
}

static int load(const struct buf *b, size_t len, struct mvcc **out)
{
	struct mp_reader r;

	mp_reader_init(&r, b->data, len);
	return mvcc_load(&r, out);
}

/* Fills m with n_groups random groups over n_keys keys, compacting once. */
static void fill_random(struct mvcc *m, uint64_t *x, int n_groups, int n_keys,
                        size_t max_value)
{
	uint8_t value[512];
	char key[16];
	int g;
	int i;

	for (g = 0; g < n_groups; g++) {
		int ops = 1 + (int)(rnd(x) % 3);

		mvcc_begin(m);
		for (i = 0; i < ops; i++) {
			size_t len = rnd(x) % (max_value + 1);
			int64_t n;

			snprintf(key, sizeof(key), "k%03d", (int)(rnd(x) % n_keys));
			memset(value, (int)rnd(x), len);
			if (rnd(x) % 4 == 0)
				mvcc_delete_range(m, S(key), NULL, 0, NULL, NULL, &n);
			else
				mvcc_put(m, S(key), value, len, (int64_t)(rnd(x) % 3),
				         NULL, NULL);
		}
		mvcc_end(m);
		if (g == n_groups / 2)
			mvcc_compact(m, mvcc_rev(m) - 10);
	}
}

/* ---- semantics ------------------------------------------------------------ */

TEST(create_empty)
{
	struct mvcc *m = store_new();
	struct seen s;
	struct mvcc_range_result res;

	CHECK_EQ_INT(mvcc_rev(m), 1);
	CHECK_EQ_INT(mvcc_compact_rev(m), 0);
	CHECK_EQ_INT(mvcc_key_count(m), 0);
	CHECK_EQ_INT(mvcc_size_bytes(m), 0);
	CHECK(!mvcc_get(m, S("a"), 0, NULL));
	CHECK_EQ_INT(range(m, "\0", 1, "\0", 1, 0, 0, false, &s, &res), 0);
	CHECK_EQ_INT(res.count, 0);
	CHECK_EQ_INT(res.rev, 1);
	mvcc_destroy(m);
	mvcc_destroy(NULL);
	return 0;
}

TEST(put_get)
{
	struct mvcc *m = store_new();
	struct mvcc_kv kv;
	struct mvcc_kv prev;
	bool had = true;

	mvcc_begin(m);
	CHECK_EQ_INT(mvcc_put(m, S("foo"), S("bar"), 7, &prev, &had), 0);
	CHECK(!had);
	CHECK_EQ_INT(mvcc_end(m), 2);
	CHECK(mvcc_get(m, S("foo"), 0, &kv));
	CHECK_MEM(kv.key, kv.key_len, "foo", 3);
	CHECK_MEM(kv.value, kv.value_len, "bar", 3);
	CHECK_EQ_INT(kv.create_rev, 2);
	CHECK_EQ_INT(kv.mod_rev, 2);
	CHECK_EQ_INT(kv.version, 1);
	CHECK_EQ_INT(kv.lease, 7);
	CHECK(!mvcc_get(m, S("fo"), 0, &kv));
	CHECK(!mvcc_get(m, S("fooo"), 0, &kv));

	mvcc_begin(m);
	CHECK_EQ_INT(mvcc_put(m, S("foo"), S(""), 0, &prev, &had), 0);
	CHECK(had);
	CHECK_MEM(prev.value, prev.value_len, "bar", 3);
	CHECK_EQ_INT(prev.mod_rev, 2);
	CHECK_EQ_INT(prev.lease, 7);
	CHECK_EQ_INT(mvcc_end(m), 3);
	CHECK(mvcc_get(m, S("foo"), 0, &kv));
	CHECK_EQ_INT(kv.value_len, 0);
	CHECK(kv.value != NULL);
	CHECK_EQ_INT(kv.create_rev, 2);
	CHECK_EQ_INT(kv.mod_rev, 3);
	CHECK_EQ_INT(kv.version, 2);
	CHECK_EQ_INT(kv.lease, 0);
	CHECK_EQ_INT(mvcc_key_count(m), 1);

	/* Binary keys and values, the empty key. */
	CHECK_EQ_INT(put1(m, "", "empty key"), 4);
	mvcc_begin(m);
	CHECK_EQ_INT(mvcc_put(m, (const uint8_t *)"\0\xff", 2,
	                      (const uint8_t *)"\0\0\1", 3, 0, NULL, NULL), 0);
	mvcc_end(m);
	CHECK(mvcc_get(m, (const uint8_t *)"\0\xff", 2, 0, &kv));
	CHECK_MEM(kv.value, kv.value_len, "\0\0\1", 3);
	CHECK(get_is(m, "", 0, "empty key"));
	CHECK_EQ_INT(mvcc_key_count(m), 3);
	mvcc_destroy(m);
	return 0;
}

TEST(delete_recreate)
{
	struct mvcc *m = store_new();
	struct seen s;
	struct mvcc_kv kv;
	int64_t n = -1;

	put1(m, "a", "1");
	put1(m, "a", "2");
	mvcc_begin(m);
	CHECK_EQ_INT(mvcc_delete_range(m, S("a"), NULL, 0, seen_cb,
	                               memset(&s, 0, sizeof(s)), &n), 0);
	CHECK_EQ_INT(mvcc_end(m), 4);
	CHECK_EQ_INT(n, 1);
	CHECK(seen_keys(&s, "a"));
	CHECK_MEM(s.kv[0].value, s.kv[0].value_len, "2", 1);
	CHECK_EQ_INT(s.kv[0].version, 2);
	CHECK(!mvcc_get(m, S("a"), 0, NULL));
	CHECK_EQ_INT(mvcc_key_count(m), 0);

	/* Deleting what is not there changes nothing. */
	mvcc_begin(m);
	CHECK_EQ_INT(mvcc_delete_range(m, S("a"), NULL, 0, NULL, NULL, &n), 0);
	CHECK_EQ_INT(n, 0);
	CHECK_EQ_INT(mvcc_end(m), 4);

	CHECK_EQ_INT(put1(m, "a", "3"), 5);
	CHECK(mvcc_get(m, S("a"), 0, &kv));
	CHECK_EQ_INT(kv.create_rev, 5);
	CHECK_EQ_INT(kv.version, 1);
	CHECK_EQ_INT(mvcc_key_count(m), 1);
	mvcc_destroy(m);
	return 0;
}

TEST(txn_group)
{
	struct mvcc *m = store_new();
	struct mvcc_range_result res;
	struct seen s;
	struct mvcc_kv kv;
	int64_t n;

	put1(m, "x", "0");
	mvcc_begin(m);
	/* Before any change a read sees the last revision. */
	CHECK_EQ_INT(range(m, "\0", 1, "\0", 1, 0, 0, false, &s, &res), 0);
	CHECK_EQ_INT(res.rev, 2);
	CHECK_EQ_INT(range(m, "x", 1, NULL, 0, 3, 0, false, &s, &res),
	             CAIRN_EFUTUREREV);
	CHECK_EQ_INT(mvcc_put(m, S("a"), S("1"), 0, NULL, NULL), 0);
	CHECK_EQ_INT(mvcc_put(m, S("b"), S("1"), 0, NULL, NULL), 0);
	CHECK_EQ_INT(mvcc_put(m, S("a"), S("2"), 0, NULL, NULL), 0);
	CHECK_EQ_INT(mvcc_rev(m), 2);
	CHECK(mvcc_get(m, S("a"), 0, &kv));
	CHECK_MEM(kv.value, kv.value_len, "2", 1);
	CHECK_EQ_INT(kv.mod_rev, 3);
	CHECK_EQ_INT(kv.create_rev, 3);
	CHECK_EQ_INT(kv.version, 2);
	CHECK(!mvcc_get(m, S("a"), 2, &kv));
	CHECK_EQ_INT(range(m, "\0", 1, "\0", 1, 0, 0, false, &s, &res), 0);
	CHECK_EQ_INT(res.rev, 3);
	CHECK(seen_keys(&s, "a b x"));
	CHECK_EQ_INT(range(m, "\0", 1, "\0", 1, 3, 0, false, &s, &res), 0);
	CHECK_EQ_INT(res.count, 3);
	CHECK_EQ_INT(mvcc_delete_range(m, S("a"), S("c"), NULL, NULL, &n), 0);
	CHECK_EQ_INT(n, 2);
	CHECK_EQ_INT(mvcc_key_count(m), 1);
	CHECK_EQ_INT(mvcc_put(m, S("a"), S("3"), 0, NULL, NULL), 0);
	CHECK_EQ_INT(mvcc_end(m), 3);
	CHECK(mvcc_get(m, S("a"), 0, &kv));
	CHECK_MEM(kv.value, kv.value_len, "3", 1);
	CHECK_EQ_INT(kv.version, 1);
	CHECK_EQ_INT(kv.create_rev, 3);
	CHECK(!mvcc_get(m, S("b"), 0, NULL));
	CHECK_EQ_INT(mvcc_key_count(m), 2);

	/* An empty group and one whose delete found nothing keep the revision. */
	mvcc_begin(m);
	CHECK_EQ_INT(mvcc_end(m), 3);
	mvcc_begin(m);
	CHECK_EQ_INT(mvcc_delete_range(m, S("q"), S("w"), NULL, NULL, &n), 0);
	CHECK_EQ_INT(mvcc_end(m), 3);
	mvcc_destroy(m);
	return 0;
}

TEST(range_rules)
{
	struct mvcc *m = store_new();
	struct mvcc_range_result res;
	struct seen s;

	put1(m, "c", "3");
	put1(m, "a", "1");
	put1(m, "d", "4");
	put1(m, "b", "2");
	put1(m, "", "0");
	put1(m, "ab", "x");
	CHECK_EQ_INT(range(m, "b", 1, NULL, 0, 0, 0, false, &s, &res), 0);
	CHECK(seen_keys(&s, "b"));
	CHECK_MEM(s.kv[0].value, s.kv[0].value_len, "2", 1);
	CHECK_EQ_INT(range(m, "bb", 2, NULL, 0, 0, 0, false, &s, &res), 0);
	CHECK_EQ_INT(res.count, 0);
	CHECK_EQ_INT(range(m, "b", 1, "d", 1, 0, 0, false, &s, &res), 0);
	CHECK(seen_keys(&s, "b c"));
	CHECK_EQ_INT(range(m, "a", 1, "b", 1, 0, 0, false, &s, &res), 0);
	CHECK(seen_keys(&s, "a ab"));
	CHECK_EQ_INT(range(m, "b", 1, "\0", 1, 0, 0, false, &s, &res), 0);
	CHECK(seen_keys(&s, "b c d"));
	CHECK_EQ_INT(range(m, "\0", 1, "\0", 1, 0, 0, false, &s, &res), 0);
	CHECK(seen_keys(&s, " a ab b c d"));
	CHECK_EQ_INT(res.count, 6);
	CHECK(!res.more);
	CHECK_EQ_INT(range(m, "", 0, "\0", 1, 0, 0, false, &s, &res), 0);
	CHECK_EQ_INT(res.count, 6);
	/* end <= key: empty. */
	CHECK_EQ_INT(range(m, "c", 1, "b", 1, 0, 0, false, &s, &res), 0);
	CHECK_EQ_INT(res.count, 0);
	CHECK_EQ_INT(s.n, 0);
	CHECK_EQ_INT(range(m, "b", 1, "b", 1, 0, 0, false, &s, &res), 0);
	CHECK_EQ_INT(res.count, 0);
	CHECK_EQ_INT(range(m, "e", 1, "\0", 1, 0, 0, false, &s, &res), 0);
	CHECK_EQ_INT(res.count, 0);
	/* Limits count everything, call back up to the limit. */
	CHECK_EQ_INT(range(m, "a", 1, "\0", 1, 0, 2, false, &s, &res), 0);
	CHECK(seen_keys(&s, "a ab"));
	CHECK_EQ_INT(res.count, 5);
	CHECK(res.more);
	CHECK_EQ_INT(range(m, "a", 1, "\0", 1, 0, 5, false, &s, &res), 0);
	CHECK_EQ_INT(s.n, 5);
	CHECK(!res.more);
	CHECK_EQ_INT(range(m, "a", 1, "\0", 1, 0, 6, false, &s, &res), 0);
	CHECK(!res.more);
	CHECK_EQ_INT(range(m, "a", 1, "\0", 1, 0, 4, true, &s, &res), 0);
	CHECK_EQ_INT(s.n, 0);
	CHECK_EQ_INT(res.count, 5);
	CHECK(res.more);
	CHECK_EQ_INT(range(m, "a", 1, "z", 1, 0, 0, true, &s, &res), 0);
	CHECK_EQ_INT(s.n, 0);
	CHECK_EQ_INT(res.count, 5);
	/* Deleted keys are skipped. */
	del1(m, "ab", NULL, 0);
	CHECK_EQ_INT(range(m, "a", 1, "\0", 1, 0, 2, false, &s, &res), 0);
	CHECK(seen_keys(&s, "a b"));
	CHECK_EQ_INT(res.count, 4);
	/* A NULL callback or options are allowed. */
	CHECK_EQ_INT(mvcc_range(m, S("a"), S("c"), NULL, NULL, NULL, &res), 0);
	CHECK_EQ_INT(res.count, 2);
	mvcc_destroy(m);
	return 0;
}

TEST(delete_range_rules)
{
	struct mvcc *m = store_new();
	struct seen s;
	int64_t n;

	put1(m, "a", "1");
	put1(m, "b", "2");
	put1(m, "c", "3");
	put1(m, "d", "4");
	mvcc_begin(m);
	CHECK_EQ_INT(mvcc_delete_range(m, S("d"), S("b"), NULL, NULL, &n), 0);
	CHECK_EQ_INT(n, 0);
	memset(&s, 0, sizeof(s));
	CHECK_EQ_INT(mvcc_delete_range(m, S("b"), S("d"), seen_cb, &s, &n), 0);
	CHECK_EQ_INT(n, 2);
	CHECK(seen_keys(&s, "b c"));
	CHECK_EQ_INT(mvcc_end(m), 6);
	mvcc_begin(m);
	memset(&s, 0, sizeof(s));
	CHECK_EQ_INT(mvcc_delete_range(m, ZERO, ZERO, seen_cb, &s, &n), 0);
	CHECK(seen_keys(&s, "a d"));
	CHECK_EQ_INT(mvcc_end(m), 7);
	CHECK_EQ_INT(mvcc_key_count(m), 0);
	CHECK(get_is(m, "c", 5, "3"));
	mvcc_destroy(m);
	return 0;
}

TEST(old_revisions)
{
	struct mvcc *m = store_new();
	struct mvcc_range_result res;
	struct mvcc_kv kv;
	struct seen s;

	put1(m, "a", "1"); /* 2 */
	put1(m, "b", "1"); /* 3 */
	put1(m, "a", "2"); /* 4 */
	del1(m, "a", NULL, 0); /* 5 */
	put1(m, "a", "3"); /* 6 */
	CHECK(get_is(m, "a", 1, NULL));
	CHECK(get_is(m, "a", 2, "1"));
	CHECK(get_is(m, "a", 3, "1"));
	CHECK(get_is(m, "a", 4, "2"));
	CHECK(get_is(m, "a", 5, NULL));
	CHECK(get_is(m, "a", 6, "3"));
	CHECK(mvcc_get(m, S("a"), 4, &kv));
	CHECK_EQ_INT(kv.version, 2);
	CHECK_EQ_INT(kv.create_rev, 2);
	CHECK_EQ_INT(kv.mod_rev, 4);
	CHECK(mvcc_get(m, S("a"), 6, &kv));
	CHECK_EQ_INT(kv.version, 1);
	CHECK_EQ_INT(kv.create_rev, 6);
	CHECK_EQ_INT(range(m, "\0", 1, "\0", 1, 5, 0, false, &s, &res), 0);
	CHECK(seen_keys(&s, "b"));
	CHECK_EQ_INT(res.rev, 5);
	CHECK_EQ_INT(range(m, "\0", 1, "\0", 1, 2, 0, false, &s, &res), 0);
	CHECK(seen_keys(&s, "a"));
	CHECK_EQ_INT(range(m, "\0", 1, "\0", 1, 1, 0, false, &s, &res), 0);
	CHECK_EQ_INT(res.count, 0);
	mvcc_destroy(m);
	return 0;
}

TEST(future_rev)
{
	struct mvcc *m = store_new();
	struct mvcc_range_result res;
	struct seen s;

	put1(m, "a", "1");
	CHECK_EQ_INT(range(m, "a", 1, NULL, 0, 3, 0, false, &s, &res),
	             CAIRN_EFUTUREREV);
	CHECK_EQ_INT(s.n, 0);
	CHECK(!mvcc_get(m, S("a"), 3, NULL));
	CHECK_EQ_INT(mvcc_compact(m, 3), CAIRN_EFUTUREREV);
	CHECK_EQ_INT(range(m, "a", 1, NULL, 0, 2, 0, false, &s, &res), 0);
	CHECK_EQ_INT(res.count, 1);
	mvcc_destroy(m);
	return 0;
}

TEST(compaction)
{
	struct mvcc *m = store_new();
	struct mvcc_range_result res;
	struct buf b = BUF_INIT;
	struct seen s;
	uint64_t size;
	size_t len;

	put1(m, "a", "1"); /* 2 */
	put1(m, "a", "2"); /* 3 */
	del1(m, "a", NULL, 0); /* 4 */
	put1(m, "a", "3"); /* 5 */
	put1(m, "b", "1"); /* 6 */
	del1(m, "b", NULL, 0); /* 7 */
	put1(m, "c", "1"); /* 8 */
	CHECK_EQ_INT(mvcc_compact(m, 0), CAIRN_ECOMPACTED);
	size = mvcc_size_bytes(m);
	CHECK_EQ_INT(dump(m, &b), 0);
	len = b.len;
	CHECK_EQ_INT(mvcc_compact(m, 3), 0);
	CHECK_EQ_INT(mvcc_compact_rev(m), 3);
	CHECK(mvcc_size_bytes(m) < size);
	CHECK_EQ_INT(range(m, "a", 1, NULL, 0, 2, 0, false, &s, &res),
	             CAIRN_ECOMPACTED);
	CHECK(!mvcc_get(m, S("a"), 2, NULL));
	CHECK(get_is(m, "a", 3, "2"));
	CHECK(get_is(m, "a", 4, NULL));
	CHECK(get_is(m, "a", 5, "3"));
	CHECK_EQ_INT(mvcc_compact(m, 3), CAIRN_ECOMPACTED);
	CHECK_EQ_INT(mvcc_compact(m, 2), CAIRN_ECOMPACTED);
	CHECK_EQ_INT(mvcc_compact(m, 9), CAIRN_EFUTUREREV);
	CHECK_EQ_INT(dump(m, &b), 0);
	CHECK(b.len < len);

	/* Compacting past a deletion drops the key and the tombstone. */
	size = mvcc_size_bytes(m);
	CHECK_EQ_INT(mvcc_compact(m, 7), 0);
	CHECK(mvcc_size_bytes(m) < size);
	CHECK(get_is(m, "a", 7, "3"));
	CHECK(get_is(m, "b", 7, NULL));
	CHECK(get_is(m, "c", 8, "1"));
	CHECK_EQ_INT(range(m, "\0", 1, "\0", 1, 7, 0, false, &s, &res), 0);
	CHECK(seen_keys(&s, "a"));
	CHECK_EQ_INT(range(m, "\0", 1, "\0", 1, 6, 0, false, &s, &res),
	             CAIRN_ECOMPACTED);
	/* Up to the current revision: only what is live is left. */
	CHECK_EQ_INT(mvcc_compact(m, 8), 0);
	CHECK_EQ_INT(range(m, "\0", 1, "\0", 1, 8, 0, false, &s, &res), 0);
	CHECK(seen_keys(&s, "a c"));
	CHECK_EQ_INT(mvcc_key_count(m), 2);
	del_all(m);
	CHECK_EQ_INT(mvcc_compact(m, 9), 0);
	CHECK_EQ_INT(mvcc_size_bytes(m), 0);
	/* The store keeps working after everything was dropped. */
	CHECK_EQ_INT(put1(m, "z", "1"), 10);
	CHECK(get_is(m, "z", 0, "1"));
	buf_free(&b);
	mvcc_destroy(m);
	return 0;
}

TEST(size_bytes)
{
	struct mvcc *m = store_new();
	char value[1000];
	uint64_t s0;
	uint64_t s1;

	memset(value, 'v', sizeof(value));
	value[sizeof(value) - 1] = 0;
	put1(m, "key", value);
	s0 = mvcc_size_bytes(m);
	CHECK(s0 >= 3 + 999);
	CHECK(s0 < 3 + 999 + 256);
	put1(m, "key", value);
	s1 = mvcc_size_bytes(m);
	CHECK(s1 - s0 >= 999);
	CHECK(s1 - s0 < 999 + 128);
	del1(m, "key", NULL, 0);
	CHECK(mvcc_size_bytes(m) > s1);
	CHECK_EQ_INT(mvcc_compact(m, mvcc_rev(m)), 0);
	CHECK_EQ_INT(mvcc_size_bytes(m), 0);
	mvcc_destroy(m);
	return 0;
}

/* Many keys: the skip list keeps order and finds every key. */
TEST(many_keys)
{
	struct mvcc *m = store_new();
	struct mvcc_range_result res;
	struct digest d;
	char key[16];
	uint64_t x = seed;
	int i;

	mvcc_begin(m);
	for (i = 0; i < 5000; i++) {
		snprintf(key, sizeof(key), "%08x", (unsigned)(rnd(&x) % 100000));
		CHECK_EQ_INT(mvcc_put(m, S(key), S(key), 0, NULL, NULL), 0);
	}
	CHECK_EQ_INT(mvcc_end(m), 2);
	x = seed;
	for (i = 0; i < 5000; i++) {
		snprintf(key, sizeof(key), "%08x", (unsigned)(rnd(&x) % 100000));
		CHECK(get_is(m, key, 0, key));
	}
	CHECK_EQ_INT(digest_at(m, 0, &d), 0);
	CHECK_EQ_INT(d.n, (int64_t)mvcc_key_count(m));
	CHECK_EQ_INT(mvcc_range(m, S("00004000"), S("00008000"), NULL, NULL,
	                        NULL, &res), 0);
	CHECK(res.count > 0 && res.count < d.n);
	mvcc_destroy(m);
	return 0;
}

/* ---- the change history ------------------------------------------------------ */

static void pick_span(uint64_t *x, struct bytes *key, struct bytes *end);

/* A copy of what a changes callback passed. */
struct seen_change {
	int64_t rev;
	int64_t sub;
	bool is_delete;
	bool value_null;
	bool has_prev;
	struct seen_kv kv;
	struct seen_kv prev;
};

struct seen_changes {
	struct seen_change c[MAX_SEEN];
	size_t n;
	size_t stop_after; /* 0: take them all */
	bool overflow;
};

static bool changes_cb(const struct mvcc_change *ch, void *arg)
{
	struct seen_changes *s = arg;
	struct seen_change *c;

	if (s->n == MAX_SEEN) {
		s->overflow = true;
		return false;
	}
	c = &s->c[s->n++];
	memset(c, 0, sizeof(*c));
	c->rev = ch->rev;
	c->sub = ch->sub;
	c->is_delete = ch->is_delete;
	c->value_null = ch->kv.value == NULL;
	c->has_prev = ch->has_prev;
	if (!copy_kv(&c->kv, &ch->kv) ||
	    (ch->has_prev && !copy_kv(&c->prev, &ch->prev)))
		s->overflow = true;
	return s->stop_after == 0 || s->n < s->stop_after;
}

static int changes(struct mvcc *m, int64_t from, int64_t to, const char *k,
                   size_t k_len, const char *end, size_t end_len,
                   size_t stop_after, struct seen_changes *s)
{
	memset(s, 0, sizeof(*s));
	s->stop_after = stop_after;
	return mvcc_changes(m, from, to, (const uint8_t *)k, k_len,
	                    (const uint8_t *)end, end_len, changes_cb, s);
}

/* Whether change i is (rev, sub) to key: a put of value or, value NULL, a
 * deletion; prev is the value before (NULL: the key was not live). */
static bool change_is(const struct seen_changes *s, size_t i, int64_t rev,
                      int64_t sub, const char *key, const char *value,
                      const char *prev)
{
	const struct seen_change *c = &s->c[i];

	if (s->overflow || i >= s->n || c->rev != rev || c->sub != sub ||
	    c->kv.key_len != strlen(key) ||
	    memcmp(c->kv.key, key, c->kv.key_len) != 0 ||
	    c->is_delete != (value == NULL) || c->has_prev != (prev != NULL))
		return false;
	if (value == NULL) {
		/* A deletion: the key, its revision, nothing else. */
		if (!c->value_null || c->kv.value_len != 0 ||
		    c->kv.mod_rev != rev || c->kv.create_rev != 0 ||
		    c->kv.version != 0 || c->kv.lease != 0)
			return false;
	} else if (c->value_null || c->kv.mod_rev != rev ||
	           c->kv.value_len != strlen(value) ||
	           memcmp(c->kv.value, value, c->kv.value_len) != 0) {
		return false;
	}
	return prev == NULL ||
	       (c->prev.key_len == c->kv.key_len &&
	        memcmp(c->prev.key, key, c->prev.key_len) == 0 &&
	        c->prev.value_len == strlen(prev) &&
	        memcmp(c->prev.value, prev, c->prev.value_len) == 0);
}

/*
 * The history used by the tests below:
 *   2: put a=1   3: put b=1   4: put c=1 (lease 7), a=2, a=3
 *   5: delete [a, c) (a, then b)   6: put a=4 (re-created)
 */
static struct mvcc *history_store(void)
{
	struct mvcc *m = store_new();
	int64_t n;

	put1(m, "a", "1");
	put1(m, "b", "1");
	mvcc_begin(m);
	if (mvcc_put(m, S("c"), S("1"), 7, NULL, NULL) != 0 ||
	    mvcc_put(m, S("a"), S("2"), 0, NULL, NULL) != 0 ||
	    mvcc_put(m, S("a"), S("3"), 0, NULL, NULL) != 0)
		abort();
	mvcc_end(m);
	mvcc_begin(m);
	if (mvcc_delete_range(m, S("a"), S("c"), NULL, NULL, &n) != 0 || n != 2)
		abort();
	mvcc_end(m);
	put1(m, "a", "4");
	return m;
}

TEST(changes_basic)
{
	struct mvcc *m = history_store();
	struct seen_changes s;
	const struct seen_change *c;

	CHECK_EQ_INT(mvcc_rev(m), 6);
	CHECK_EQ_INT(changes(m, 1, INT64_MAX, "\0", 1, "\0", 1, 0, &s), 0);
	CHECK_EQ_INT(s.n, 8);
	CHECK(change_is(&s, 0, 2, 0, "a", "1", NULL));
	CHECK(change_is(&s, 1, 3, 0, "b", "1", NULL));
	CHECK(change_is(&s, 2, 4, 0, "c", "1", NULL));
	CHECK(change_is(&s, 3, 4, 1, "a", "2", "1"));
	CHECK(change_is(&s, 4, 4, 2, "a", "3", "2"));
	CHECK(change_is(&s, 5, 5, 0, "a", NULL, "3"));
	CHECK(change_is(&s, 6, 5, 1, "b", NULL, "1"));
	CHECK(change_is(&s, 7, 6, 0, "a", "4", NULL));
	/* Every field of the pairs, as a read at the time saw them. */
	c = &s.c[2];
	CHECK_EQ_INT(c->kv.lease, 7);
	CHECK_EQ_INT(c->kv.create_rev, 4);
	CHECK_EQ_INT(c->kv.version, 1);
	c = &s.c[4];
	CHECK_EQ_INT(c->kv.create_rev, 2);
	CHECK_EQ_INT(c->kv.version, 3);
	CHECK_EQ_INT(c->prev.create_rev, 2);
	CHECK_EQ_INT(c->prev.mod_rev, 4);
	CHECK_EQ_INT(c->prev.version, 2);
	c = &s.c[5];
	CHECK_EQ_INT(c->prev.mod_rev, 4);
	CHECK_EQ_INT(c->prev.version, 3);
	c = &s.c[7];
	CHECK_EQ_INT(c->kv.create_rev, 6);
	CHECK_EQ_INT(c->kv.version, 1);
	/* to above the current revision is the current revision. */
	CHECK_EQ_INT(changes(m, 1, 6, "\0", 1, "\0", 1, 0, &s), 0);
	CHECK_EQ_INT(s.n, 8);
	mvcc_destroy(m);
	return 0;
}

TEST(changes_ranges)
{
	struct mvcc *m = history_store();
	struct seen_changes s;

	/* One key. */
	CHECK_EQ_INT(changes(m, 1, 100, "a", 1, NULL, 0, 0, &s), 0);
	CHECK_EQ_INT(s.n, 5);
	CHECK(change_is(&s, 0, 2, 0, "a", "1", NULL));
	CHECK(change_is(&s, 1, 4, 1, "a", "2", "1"));
	CHECK(change_is(&s, 2, 4, 2, "a", "3", "2"));
	CHECK(change_is(&s, 3, 5, 0, "a", NULL, "3"));
	CHECK(change_is(&s, 4, 6, 0, "a", "4", NULL));
	CHECK_EQ_INT(changes(m, 1, 100, "ab", 2, NULL, 0, 0, &s), 0);
	CHECK_EQ_INT(s.n, 0);
	/* [key, end), and from a key on. */
	CHECK_EQ_INT(changes(m, 1, 100, "b", 1, "d", 1, 0, &s), 0);
	CHECK_EQ_INT(s.n, 3);
	CHECK(change_is(&s, 0, 3, 0, "b", "1", NULL));
	CHECK(change_is(&s, 1, 4, 0, "c", "1", NULL));
	CHECK(change_is(&s, 2, 5, 1, "b", NULL, "1"));
	CHECK_EQ_INT(changes(m, 1, 100, "a", 1, "c", 1, 0, &s), 0);
	CHECK_EQ_INT(s.n, 7);
	CHECK_EQ_INT(changes(m, 1, 100, "b", 1, "\0", 1, 0, &s), 0);
	CHECK_EQ_INT(s.n, 3);
	CHECK_EQ_INT(changes(m, 1, 100, "c", 1, "\0", 1, 0, &s), 0);
	CHECK_EQ_INT(s.n, 1);
	CHECK_EQ_INT(changes(m, 1, 100, "", 0, "\0", 1, 0, &s), 0);
	CHECK_EQ_INT(s.n, 8);
	/* Empty ranges. */
	CHECK_EQ_INT(changes(m, 1, 100, "c", 1, "b", 1, 0, &s), 0);
	CHECK_EQ_INT(s.n, 0);
	CHECK_EQ_INT(changes(m, 1, 100, "b", 1, "b", 1, 0, &s), 0);
	CHECK_EQ_INT(s.n, 0);
	CHECK_EQ_INT(changes(m, 1, 100, "d", 1, "\0", 1, 0, &s), 0);
	CHECK_EQ_INT(s.n, 0);
	/* Revision bounds. */
	CHECK_EQ_INT(changes(m, 4, 4, "\0", 1, "\0", 1, 0, &s), 0);
	CHECK_EQ_INT(s.n, 3);
	CHECK(change_is(&s, 0, 4, 0, "c", "1", NULL));
	CHECK(change_is(&s, 2, 4, 2, "a", "3", "2"));
	CHECK_EQ_INT(changes(m, 4, 5, "a", 1, NULL, 0, 0, &s), 0);
	CHECK_EQ_INT(s.n, 3);
	CHECK(change_is(&s, 2, 5, 0, "a", NULL, "3"));
	CHECK_EQ_INT(changes(m, 3, 3, "\0", 1, "\0", 1, 0, &s), 0);
	CHECK_EQ_INT(s.n, 1);
	CHECK_EQ_INT(changes(m, 5, 3, "\0", 1, "\0", 1, 0, &s), 0);
	CHECK_EQ_INT(s.n, 0);
	CHECK_EQ_INT(changes(m, 6, INT64_MAX, "\0", 1, "\0", 1, 0, &s), 0);
	CHECK_EQ_INT(s.n, 1);
	CHECK(change_is(&s, 0, 6, 0, "a", "4", NULL));
	/* The callback stops the walk. */
	CHECK_EQ_INT(changes(m, 1, 100, "\0", 1, "\0", 1, 2, &s), 0);
	CHECK_EQ_INT(s.n, 2);
	CHECK(change_is(&s, 1, 3, 0, "b", "1", NULL));
	CHECK_EQ_INT(changes(m, 4, 100, "a", 1, NULL, 0, 1, &s), 0);
	CHECK_EQ_INT(s.n, 1);
	CHECK(change_is(&s, 0, 4, 1, "a", "2", "1"));
	mvcc_destroy(m);
	return 0;
}

TEST(changes_errors)
{
	struct mvcc *m = store_new();
	struct seen_changes s;

	/* A new store is at revision 1 with no changes. */
	CHECK_EQ_INT(changes(m, 1, 100, "\0", 1, "\0", 1, 0, &s), 0);
	CHECK_EQ_INT(s.n, 0);
	CHECK_EQ_INT(changes(m, 2, 100, "\0", 1, "\0", 1, 0, &s), 0);
	CHECK_EQ_INT(changes(m, 3, 100, "\0", 1, "\0", 1, 0, &s),
	             CAIRN_EFUTUREREV);
	CHECK_EQ_INT(changes(m, 0, 100, "\0", 1, "\0", 1, 0, &s),
	             CAIRN_ECOMPACTED);
	mvcc_destroy(m);

	m = history_store();
	CHECK_EQ_INT(changes(m, 0, 100, "\0", 1, "\0", 1, 0, &s),
	             CAIRN_ECOMPACTED);
	CHECK_EQ_INT(changes(m, -3, 100, "\0", 1, "\0", 1, 0, &s),
	             CAIRN_ECOMPACTED);
	CHECK_EQ_INT(changes(m, 7, 100, "\0", 1, "\0", 1, 0, &s), 0);
	CHECK_EQ_INT(s.n, 0);
	CHECK_EQ_INT(changes(m, 8, 100, "\0", 1, "\0", 1, 0, &s),
	             CAIRN_EFUTUREREV);
	CHECK_EQ_INT(changes(m, INT64_MAX, INT64_MAX, "\0", 1, "\0", 1, 0, &s),
	             CAIRN_EFUTUREREV);
	CHECK_EQ_INT(s.n, 0);
	CHECK_EQ_INT(mvcc_compact(m, 4), 0);
	CHECK_EQ_INT(changes(m, 4, 100, "\0", 1, "\0", 1, 0, &s),
	             CAIRN_ECOMPACTED);
	CHECK_EQ_INT(s.n, 0);
	CHECK_EQ_INT(changes(m, 1, 100, "\0", 1, "\0", 1, 0, &s),
	             CAIRN_ECOMPACTED);
	mvcc_destroy(m);
	return 0;
}

/* Compaction drops the history up to its revision, and what is left keeps
 * its previous pairs, also of keys it is about to free. */
TEST(changes_compaction)
{
	struct mvcc *m = history_store();
	struct seen_changes s;
	uint64_t size;
	int64_t n;

	CHECK_EQ_INT(mvcc_compact(m, 4), 0);
	CHECK_EQ_INT(changes(m, 5, 100, "\0", 1, "\0", 1, 0, &s), 0);
	CHECK_EQ_INT(s.n, 3);
	CHECK(change_is(&s, 0, 5, 0, "a", NULL, "3"));
	CHECK(change_is(&s, 1, 5, 1, "b", NULL, "1"));
	CHECK(change_is(&s, 2, 6, 0, "a", "4", NULL));
	CHECK_EQ_INT(s.c[0].prev.version, 3);
	/* b goes entirely: its deletion is at 5. */
	CHECK_EQ_INT(mvcc_compact(m, 5), 0);
	CHECK_EQ_INT(changes(m, 6, 100, "\0", 1, "\0", 1, 0, &s), 0);
	CHECK_EQ_INT(s.n, 1);
	CHECK(change_is(&s, 0, 6, 0, "a", "4", NULL));
	CHECK_EQ_INT(changes(m, 6, 100, "b", 1, NULL, 0, 0, &s), 0);
	CHECK_EQ_INT(s.n, 0);

	/* One key changed three times in a group, then deleted and compacted
	 * away: its changes stay until the compaction passes them. */
	mvcc_begin(m);
	CHECK_EQ_INT(mvcc_put(m, S("d"), S("1"), 0, NULL, NULL), 0);
	CHECK_EQ_INT(mvcc_put(m, S("d"), S("2"), 0, NULL, NULL), 0);
	CHECK_EQ_INT(mvcc_delete_range(m, S("d"), NULL, 0, NULL, NULL, &n), 0);
	CHECK_EQ_INT(mvcc_end(m), 7);
	put1(m, "e", "1"); /* 8 */
	CHECK_EQ_INT(mvcc_compact(m, 6), 0);
	CHECK_EQ_INT(changes(m, 7, 100, "\0", 1, "\0", 1, 0, &s), 0);
	CHECK_EQ_INT(s.n, 4);
	CHECK(change_is(&s, 0, 7, 0, "d", "1", NULL));
	CHECK(change_is(&s, 1, 7, 1, "d", "2", "1"));
	CHECK(change_is(&s, 2, 7, 2, "d", NULL, "2"));
	CHECK(change_is(&s, 3, 8, 0, "e", "1", NULL));
	size = mvcc_size_bytes(m);
	CHECK_EQ_INT(mvcc_compact(m, 7), 0);
	CHECK(mvcc_size_bytes(m) < size);
	CHECK_EQ_INT(changes(m, 8, 100, "\0", 1, "\0", 1, 0, &s), 0);
	CHECK_EQ_INT(s.n, 1);
	CHECK(change_is(&s, 0, 8, 0, "e", "1", NULL));
	/* Up to the head: nothing left, nothing held. */
	del_all(m); /* 9 */
	CHECK_EQ_INT(mvcc_compact(m, 9), 0);
	CHECK_EQ_INT(changes(m, 10, 100, "\0", 1, "\0", 1, 0, &s), 0);
	CHECK_EQ_INT(s.n, 0);
	CHECK_EQ_INT(mvcc_size_bytes(m), 0);
	CHECK_EQ_INT(put1(m, "f", "1"), 10);
	CHECK_EQ_INT(changes(m, 10, 100, "\0", 1, "\0", 1, 0, &s), 0);
	CHECK(change_is(&s, 0, 10, 0, "f", "1", NULL));
	mvcc_destroy(m);
	return 0;
}

/* Many changes, many compactions: the history stays in order and complete. */
TEST(changes_long)
{
	struct mvcc *m = store_new();
	struct digest d;
	char key[16];
	int64_t rev;
	int i;

	for (i = 0; i < 20000; i++) {
		snprintf(key, sizeof(key), "k%04d", i % 1000);
		put1(m, key, key);
		if (i % 1500 == 1499)
			CHECK_EQ_INT(mvcc_compact(m, mvcc_rev(m) - 1000 + i % 7), 0);
	}
	rev = mvcc_compact_rev(m);
	CHECK_EQ_INT(digest_changes(m, rev + 1, INT64_MAX, &all_keys, &all_keys,
	                            &d), 0);
	CHECK_EQ_INT(d.n, mvcc_rev(m) - rev);
	{
		const struct bytes one = {"k0042", 5};
		const struct bytes none = {"", 0};

		CHECK_EQ_INT(digest_changes(m, rev + 1, INT64_MAX, &one, &none,
		                            &d), 0);
		CHECK(d.n >= 1 && d.n <= (mvcc_rev(m) - rev) / 1000 + 1);
	}
	mvcc_destroy(m);
	return 0;
}

/* A loaded store answers every history question as the one dumped. */
TEST(changes_dump_load)
{
	struct mvcc *m = history_store();
	struct mvcc *m2;
	struct buf b = BUF_INIT;
	struct seen_changes s;
	struct seen_changes s2;
	struct digest d;
	struct digest d2;
	uint64_t x = seed;
	int64_t from;
	int i;

	CHECK_EQ_INT(mvcc_compact(m, 4), 0);
	CHECK_EQ_INT(dump(m, &b), 0);
	CHECK_EQ_INT(load(&b, b.len, &m2), 0);
	CHECK_EQ_INT(changes(m, 5, 100, "\0", 1, "\0", 1, 0, &s), 0);
	CHECK_EQ_INT(changes(m2, 5, 100, "\0", 1, "\0", 1, 0, &s2), 0);
	CHECK_EQ_INT(s2.n, 3);
	CHECK(memcmp(&s, &s2, sizeof(s)) == 0);
	CHECK_EQ_INT(changes(m2, 4, 100, "\0", 1, "\0", 1, 0, &s2),
	             CAIRN_ECOMPACTED);
	CHECK_EQ_INT(changes(m2, 8, 100, "\0", 1, "\0", 1, 0, &s2),
	             CAIRN_EFUTUREREV);
	mvcc_destroy(m2);
	mvcc_destroy(m);

	/* A long random history, every window and some ranges. */
	m = store_new();
	fill_random(m, &x, 600, 30, 40);
	CHECK(mvcc_compact_rev(m) > 0);
	CHECK_EQ_INT(dump(m, &b), 0);
	CHECK_EQ_INT(load(&b, b.len, &m2), 0);
	CHECK(same_stores(m, m2) == 0);
	for (from = mvcc_compact_rev(m) + 1; from <= mvcc_rev(m) + 1; from++) {
		struct bytes key;
		struct bytes end;
		int64_t to = from + (int64_t)(rnd(&x) % 20) - 2;

		pick_span(&x, &key, &end);
		CHECK_EQ_INT(digest_changes(m, from, to, &key, &end, &d), 0);
		CHECK_EQ_INT(digest_changes(m2, from, to, &key, &end, &d2), 0);
		CHECK_EQ_INT(d.n, d2.n);
		CHECK(d.h == d2.h);
	}
	/* Both go on the same way, and compact the same way. */
	for (i = 0; i < 3; i++) {
		uint64_t y = x;

		fill_random(m, &x, 100, 30, 40);
		fill_random(m2, &y, 100, 30, 40);
		CHECK(same_stores(m, m2) == 0);
	}
	mvcc_destroy(m2);
	buf_free(&b);
	mvcc_destroy(m);
	return 0;
}

/* ---- dump and load ---------------------------------------------------------- */

TEST(dump_load_roundtrip)
{
	struct mvcc *m = store_new();
	struct mvcc *m2;
	struct buf b = BUF_INIT;
	struct buf b2 = BUF_INIT;
	uint64_t x = seed;
	uint64_t y;

	/* The empty store. */
	CHECK_EQ_INT(dump(m, &b), 0);
	CHECK_EQ_INT(load(&b, b.len, &m2), 0);
	CHECK(same_stores(m, m2) == 0);
	mvcc_destroy(m2);

	fill_random(m, &x, 400, 40, 300);
	CHECK(mvcc_compact_rev(m) > 0);
	CHECK_EQ_INT(dump(m, &b), 0);
	if (sizeof(void *) == 8) /* the dump fits the room it reserves */
		CHECK(b.len <= mvcc_size_bytes(m) + 32);
	CHECK_EQ_INT(load(&b, b.len, &m2), 0);
	CHECK(same_stores(m, m2) == 0);
	CHECK_EQ_INT(dump(m2, &b2), 0);
	CHECK_MEM(b.data, b.len, b2.data, b2.len);
	/* Both go on the same way. */
	y = x;
	fill_random(m, &x, 200, 40, 300);
	fill_random(m2, &y, 200, 40, 300);
	CHECK(same_stores(m, m2) == 0);
	mvcc_destroy(m2);
	/* A dump appends; a reader stops after one object. */
	buf_reset(&b);
	CHECK_EQ_INT(buf_append(&b, "\x01", 1), 0);
	CHECK_EQ_INT(mvcc_dump(m, &b), 0);
	{
		struct mp_reader r;
		uint64_t one;

		mp_reader_init(&r, b.data, b.len);
		CHECK(mp_read_uint(&r, &one) && one == 1);
		CHECK_EQ_INT(mvcc_load(&r, &m2), 0);
		CHECK_EQ_INT(mp_left(&r), 0);
	}
	CHECK(same_stores(m, m2) == 0);
	mvcc_destroy(m2);
	buf_free(&b);
	buf_free(&b2);
	mvcc_destroy(m);
	return 0;
}

/* Loads the bytes; on success checks the store is usable and counts it. */
static int load_any(const uint8_t *p, size_t len, int *loaded)
{
	struct mp_reader r;
	struct mvcc *m = (struct mvcc *)&r;
	struct buf b = BUF_INIT;
	struct digest d;
	int64_t rev;
	int rv;

	mp_reader_init(&r, p, len);
	rv = mvcc_load(&r, &m);
	if (rv != 0) {
		CHECK_EQ_INT(rv, CAIRN_EPROTO);
		CHECK(m == NULL);
		return 0;
	}
	(*loaded)++;
	for (rev = mvcc_compact_rev(m); rev <= mvcc_rev(m); rev++) {
		if (rev > mvcc_compact_rev(m) + 20 && rev < mvcc_rev(m) - 20)
			rev = mvcc_rev(m) - 20; /* a corrupted rev may be huge */
		CHECK_EQ_INT(digest_at(m, rev > 0 ? rev : 1, &d), 0);
	}
	put1(m, "k001", "x");
	del_all(m);
	CHECK_EQ_INT(mvcc_compact(m, mvcc_rev(m)), 0);
	CHECK_EQ_INT(dump(m, &b), 0);
	buf_free(&b);
	mvcc_destroy(m);
	return 0;
}

TEST(load_truncated)
{
	struct mvcc *m = store_new();
	struct mvcc *m2;
	struct buf b = BUF_INIT;
	uint64_t x = seed;
	size_t len;

	fill_random(m, &x, 60, 10, 20);
	CHECK_EQ_INT(dump(m, &b), 0);
	for (len = 0; len < b.len; len++) {
		m2 = m;
		CHECK_EQ_INT(load(&b, len, &m2), CAIRN_EPROTO);
		CHECK(m2 == NULL);
	}
	CHECK_EQ_INT(load(&b, b.len, &m2), 0);
	mvcc_destroy(m2);
	buf_free(&b);
	mvcc_destroy(m);
	return 0;
}

TEST(load_corrupted)
{
	struct mvcc *m = store_new();
	struct buf b = BUF_INIT;
	uint8_t *copy;
	uint64_t x = seed;
	int loaded = 0;
	int i;
	int j;

	fill_random(m, &x, 60, 10, 20);
	CHECK_EQ_INT(dump(m, &b), 0);
	copy = malloc(b.len);
	CHECK(copy != NULL);
	for (i = 0; i < 20000; i++) {
		int flips = 1 + (int)(rnd(&x) % 3);

		memcpy(copy, b.data, b.len);
		for (j = 0; j < flips; j++) {
			size_t at = rnd(&x) % b.len;

			if (rnd(&x) % 2)
				copy[at] ^= (uint8_t)(1u << (rnd(&x) % 8));
			else
				copy[at] = (uint8_t)rnd(&x);
		}
		CHECK(load_any(copy, b.len, &loaded) == 0);
	}
	printf("# %d of 20000 corrupted dumps still loaded\n", loaded);
	free(copy);
	buf_free(&b);
	mvcc_destroy(m);
	return 0;
}

/* Writes a dump by hand: n versions of each key, from a compact table. */
struct fake_ver {
	int64_t mod_rev, sub, create_rev, version, lease;
	const char *value; /* NULL: tombstone */
};

struct fake_key {
	const char *key;
	struct fake_ver v[3];
	int n;
};

static void fake_dump(struct buf *b, int64_t format, int64_t rev,
                      int64_t compact_rev, const struct fake_key *keys,
                      int n)
{
	struct mp_writer w;
	int i;
	int j;

	buf_reset(b);
	mp_writer_init(&w, b);
	mp_put_array(&w, 4);
	mp_put_int(&w, format);
	mp_put_int(&w, rev);
	mp_put_int(&w, compact_rev);
	mp_put_array(&w, (uint32_t)n);
	for (i = 0; i < n; i++) {
		mp_put_array(&w, 2);
		mp_put_bin(&w, keys[i].key, strlen(keys[i].key));
		mp_put_array(&w, (uint32_t)keys[i].n);
		for (j = 0; j < keys[i].n; j++) {
			const struct fake_ver *v = &keys[i].v[j];

			mp_put_array(&w, 6);
			mp_put_int(&w, v->mod_rev);
			mp_put_int(&w, v->sub);
			mp_put_int(&w, v->create_rev);
			mp_put_int(&w, v->version);
			mp_put_int(&w, v->lease);
			if (v->value == NULL)
				mp_put_nil(&w);
			else
				mp_put_bin(&w, v->value, strlen(v->value));
		}
	}
}

static int fake_load(int64_t format, int64_t rev, int64_t compact_rev,
                     const struct fake_key *keys, int n)
{
	struct buf b = BUF_INIT;
	struct mvcc *m = NULL;
	int rv;

	fake_dump(&b, format, rev, compact_rev, keys, n);
	rv = load(&b, b.len, &m);
	if (rv != 0 && m != NULL)
		rv = -1;
	mvcc_destroy(m);
	buf_free(&b);
	return rv;
}

#define LIVE(mod, sub, create, ver, val) {mod, sub, create, ver, 0, val}
#define TOMB(mod, sub) {mod, sub, 0, 0, 0, NULL}

TEST(load_invalid)
{
	const struct fake_key good[] = {
		{"a", {LIVE(2, 0, 2, 1, "x"), TOMB(3, 0), LIVE(3, 1, 3, 1, "y")}, 3},
		{"b", {LIVE(4, 0, 4, 1, "x"), LIVE(5, 0, 4, 2, "z")}, 2},
	};
	struct fake_key k[2];

#define BAD(...) CHECK_EQ_INT(fake_load(__VA_ARGS__), CAIRN_EPROTO)
	CHECK_EQ_INT(fake_load(1, 5, 0, good, 2), 0);
	CHECK_EQ_INT(fake_load(1, 5, 2, good, 2), 0);
	CHECK_EQ_INT(fake_load(1, 1, 0, good, 0), 0);
	BAD(2, 5, 0, good, 2);  /* format version */
	BAD(1, 4, 0, good, 2);  /* a version above rev */
	BAD(1, 5, 6, good, 2);  /* compact_rev above rev */
	BAD(1, 0, 0, good, 0);  /* rev below 1 */
	BAD(1, 5, -1, good, 2); /* negative compact rev */
	BAD(1, 5, 3, good, 2);  /* "a" keeps a version compaction drops */
	memcpy(k, good, sizeof(k));
	k[0].key = "b";
	BAD(1, 5, 0, k, 2); /* duplicate key */
	k[0].key = "c";
	BAD(1, 5, 0, k, 2); /* keys out of order */
	memcpy(k, good, sizeof(k));
	k[1].n = 0;
	BAD(1, 5, 0, k, 2); /* no versions */
	memcpy(k, good, sizeof(k));
	k[0].v[2].sub = 0;
	BAD(1, 5, 0, k, 2); /* versions not increasing */
	memcpy(k, good, sizeof(k));
	k[1].v[1].mod_rev = 4;
	BAD(1, 5, 0, k, 2); /* same (mod_rev, sub) */
	memcpy(k, good, sizeof(k));
	k[1].v[1].version = 3;
	BAD(1, 5, 0, k, 2); /* version skips */
	memcpy(k, good, sizeof(k));
	k[1].v[1].create_rev = 5;
	BAD(1, 5, 0, k, 2); /* create_rev changes */
	memcpy(k, good, sizeof(k));
	k[0].v[2].version = 2;
	BAD(1, 5, 0, k, 2); /* re-creation is not version 1 */
	memcpy(k, good, sizeof(k));
	k[0].v[0] = (struct fake_ver)TOMB(2, 0);
	BAD(1, 5, 0, k, 2); /* starts with a tombstone */
	memcpy(k, good, sizeof(k));
	k[0].v[1].lease = 1;
	BAD(1, 5, 0, k, 2); /* tombstone with a lease */
	memcpy(k, good, sizeof(k));
	k[0].v[0].create_rev = 1;
	BAD(1, 5, 0, k, 2); /* create_rev below 2 */
	memcpy(k, good, sizeof(k));
	k[1].n = 1;
	k[1].v[0].create_rev = 3;
	BAD(1, 5, 0, k, 2); /* version 1 not created at its mod_rev */
	memcpy(k, good, sizeof(k));
	k[1].v[0].mod_rev = 1;
	k[1].v[0].create_rev = 1;
	BAD(1, 5, 0, k, 2); /* revision 1 holds no change */
	memcpy(k, good, sizeof(k));
	k[1].v[0].sub = -1;
	BAD(1, 5, 0, k, 2); /* negative sub */
	memcpy(k, good, sizeof(k));
	k[1].n = 1;
	k[1].v[0].version = INT64_MAX;
	k[1].v[0].create_rev = 2;
	BAD(1, 5, 0, k, 2); /* a version that would overflow */
	BAD(1, INT64_MAX, 0, good, 2); /* a revision that would overflow */
	/* The history: each revision above the compact one is a run of
	 * changes with subs 0, 1, ... */
	BAD(1, 6, 0, good, 2); /* revision 6 holds no change */
	BAD(1, 6, 4, good, 2); /* likewise after compaction */
	memcpy(k, good, sizeof(k));
	k[1].v[0].sub = 1;
	BAD(1, 5, 0, k, 2); /* a sub skipped */
	BAD(1, 5, 2, k, 2);
	memcpy(k, good, sizeof(k));
	k[0].v[2].sub = 2;
	BAD(1, 5, 0, k, 2); /* a sub skipped after the first */
	{
		const struct fake_key twice[] = {
			{"a", {LIVE(2, 0, 2, 1, "x")}, 1},
			{"b", {LIVE(2, 0, 2, 1, "y")}, 1},
		};
		const struct fake_key late[] = {
			{"a", {LIVE(3, 1, 3, 1, "y")}, 1},
			{"b", {LIVE(4, 0, 4, 1, "x"), LIVE(5, 0, 4, 2, "z")}, 2},
		};

		BAD(1, 2, 0, twice, 2); /* a sub given twice */
		BAD(1, 2, 1, twice, 2);
		/* Compaction may have dropped changes at or below its
		 * revision, but no others. */
		CHECK_EQ_INT(fake_load(1, 5, 3, late, 2), 0);
		BAD(1, 5, 2, late, 2);
		CHECK_EQ_INT(fake_load(1, 5, 4, late, 2), 0);
	}
#undef BAD
	{
		/* Not an array of 4, trailing garbage inside, wrong types. */
		static const char *const docs[] = {
			"\x93\x01\x05\x00",         "\x95\x01\x05\x00\x90\x00",
			"\x94\xa1x\x05\x00\x90",    "\x94\x01\x05\x00\x91\x00",
			"\x94\x01\x05\x00\x91\x91\xc4\x00", "\xc0",
		};
		static const size_t lens[] = {4, 6, 6, 6, 8, 1};
		size_t i;

		for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
			struct mvcc *m;
			struct mp_reader r;

			mp_reader_init(&r, docs[i], lens[i]);
			CHECK_EQ_INT(mvcc_load(&r, &m), CAIRN_EPROTO);
		}
	}
	return 0;
}

/* ---- allocation failures ---------------------------------------------------- */

#ifndef NO_FAULTS
enum fault_op { F_CREATE, F_PUT_NEW, F_PUT_OLD, F_DELETE, F_COMPACT, F_DUMP,
                F_LOAD, F_OPS };

/* m compacted while reallocs failed is the same as one compacted without. */
static int same_compaction(struct mvcc *m)
{
	struct mvcc *ref = store_new();
	uint64_t x = seed;
	int rv;

	fill_random(ref, &x, 30, 8, 20);
	CHECK_EQ_INT(mvcc_compact(ref, mvcc_rev(ref)), 0);
	rv = same_stores(m, ref);
	mvcc_destroy(ref);
	return rv;
}

/* Op j of a sequence: mostly puts of new keys, every tenth a delete of all. */
static int seq_op(struct mvcc *m, int j)
{
	char key[16];
	int64_t n;
	int rv;

	mvcc_begin(m);
	if (j % 10 == 9) {
		rv = mvcc_delete_range(m, ZERO, ZERO, NULL, NULL, &n);
	} else {
		snprintf(key, sizeof(key), "s%03d", j);
		rv = mvcc_put(m, S(key), S("v"), 0, NULL, NULL);
	}
	mvcc_end(m);
	return rv;
}

/*
 * 200 ops in a row on a new store with allocation number n failing. They
 * cross growths of the history both in deletes (the store starts with room
 * for 16 changes: 9 puts, then the delete of those 9 keys outgrows it; so do
 * the deletes at ops 19 and 39) and in puts (the 129th and 257th changes).
 * The op that fails must leave the store as the ones before it made it,
 * history included.
 */
static int fault_seq(long n, bool *done)
{
	struct mvcc *m = store_new();
	struct mvcc *ref = store_new();
	int rv = 0;
	int ok;
	int j;

	fault_countdown = n;
	for (j = 0; j < 200 && rv == 0; j++)
		rv = seq_op(m, j);
	*done = fault_countdown >= 0;
	fault_countdown = -1;
	if (rv != 0)
		CHECK_EQ_INT(rv, CAIRN_ENOMEM);
	ok = rv != 0 ? j - 1 : j;
	for (j = 0; j < ok; j++)
		CHECK_EQ_INT(seq_op(ref, j), 0);
	CHECK(same_stores(m, ref) == 0);
	mvcc_destroy(ref);
	mvcc_destroy(m);
	return 0;
}

/* Runs op once with allocation number n failing. *done when nothing failed. */
static int fault_once(enum fault_op op, long n, bool *done)
{
	struct mvcc *m = store_new();
	struct mvcc *m2 = NULL;
	struct buf before = BUF_INIT;
	struct buf after = BUF_INIT;
	uint64_t x = seed;
	long live;
	int64_t deleted;
	int rv = 0;

	fill_random(m, &x, 30, 8, 20);
	CHECK_EQ_INT(dump(m, &before), 0);
	live = fault_live;
	fault_countdown = n;
	switch (op) {
	case F_CREATE:
		rv = mvcc_create(&m2);
		break;
	case F_PUT_NEW:
	case F_PUT_OLD:
		mvcc_begin(m);
		rv = mvcc_put(m, S(op == F_PUT_NEW ? "new" : "k001"), S("v"), 0,
		              NULL, NULL);
		mvcc_end(m);
		break;
	case F_DELETE:
		mvcc_begin(m);
		rv = mvcc_delete_range(m, ZERO, ZERO, NULL, NULL, &deleted);
		mvcc_end(m);
		break;
	case F_COMPACT:
		rv = mvcc_compact(m, mvcc_rev(m));
		break;
	case F_DUMP:
		rv = mvcc_dump(m, &after);
		break;
	default:
		rv = load(&before, before.len, &m2);
		break;
	}
	*done = fault_countdown >= 0;
	fault_countdown = -1;
	if (rv != 0) {
		CHECK_EQ_INT(rv, CAIRN_ENOMEM);
		CHECK(m2 == NULL);
		/* A failed dump may leave room allocated in its buf. */
		if (op != F_DUMP)
			CHECK_EQ_INT(fault_live, live);
		CHECK_EQ_INT(after.len, 0);
		CHECK_EQ_INT(dump(m, &after), 0);
		CHECK_MEM(before.data, before.len, after.data, after.len);
	} else if (op == F_LOAD) {
		CHECK(same_stores(m, m2) == 0);
	} else if (op == F_COMPACT) {
		CHECK(same_compaction(m) == 0);
	}
	mvcc_destroy(m2);
	mvcc_destroy(m);
	buf_free(&before);
	buf_free(&after);
	return 0;
}

TEST(enomem)
{
	long live = fault_live;
	int op;
	long n;
	bool done;

	for (op = 0; op < F_OPS; op++) {
		done = false;
		for (n = 0; !done; n++)
			CHECK(fault_once((enum fault_op)op, n, &done) == 0);
		if (op == F_CREATE && n == 1) {
			/* Valgrind, for one, puts its own allocator first. */
			printf("# skipped: the allocator could not be replaced\n");
			return 0;
		}
		printf("# fault op %d: %ld allocations\n", op, n - 1);
	}
	done = false;
	for (n = 0; !done; n++)
		CHECK(fault_seq(n, &done) == 0);
	printf("# fault sequence: %ld allocations\n", n - 1);
	CHECK_EQ_INT(fault_live, live);
	return 0;
}
#else
TEST(enomem)
{
	printf("# skipped: allocation failure injection needs libc malloc\n");
	return 0;
}
#endif

/* ---- randomized model test ---------------------------------------------- */

/*
 * The model: the state of a small fixed key alphabet at every revision, in
 * plain arrays, with etcd's rules written out directly, and the list of every
 * change ever made (with the pair before it). Every read and every history
 * walk the store answers is compared with it.
 */
#define NK 12
#define VMAX 16
#define MODEL_OPS 20000

static const struct bytes alphabet[NK] = {
	{"", 0},    {"\0", 1}, {"\0\0", 2}, {"a", 1}, {"a\0", 2},   {"ab", 2},
	{"abc", 3}, {"b", 1},  {"ba", 2},   {"c", 1}, {"\xff", 1}, {"\xff\xff", 2},
};

/* Range bounds that are not keys. */
static const struct bytes others[] = {
	{"aa", 2}, {"a\x01", 2}, {"bb", 2}, {"zz", 2}, {"\x01", 1}, {"\xff\0", 2},
};

struct mentry {
	bool live;
	uint8_t len;
	uint8_t val[VMAX];
	int64_t create, mod, version, lease;
};

struct mstate {
	struct mentry e[NK];
};

/* One change: key alphabet[key] put as e, or deleted; prev if it was live. */
struct mchange {
	int64_t rev;
	int64_t sub;
	int key;
	bool is_delete;
	bool has_prev;
	struct mentry e;
	struct mentry prev;
};

struct model {
	struct mstate *revs; /* revs[r]: the keyspace at revision r */
	int64_t rev;
	int64_t compact;
	struct mstate cur; /* with the open group's changes */
	bool in_group;
	bool changed;
	struct mchange *ch; /* every change, in (rev, sub) order */
	size_t nch;
	size_t ch_cap;
	int64_t sub; /* changes so far in the open group */
};

static int bcmp_(const struct bytes *a, const uint8_t *b, size_t blen)
{
	size_t n = a->len < blen ? a->len : blen;
	int c = n ? memcmp(a->s, b, n) : 0;

	if (c != 0)
		return c;
	return a->len < blen ? -1 : a->len > blen;
}

/* etcd's rule, spelled out independently of the store's. */
static bool in_span(const struct bytes *k, const struct bytes *key,
                    const struct bytes *end)
{
	const uint8_t *kb = (const uint8_t *)key->s;
	const uint8_t *eb = (const uint8_t *)end->s;

	if (end->len == 0)
		return bcmp_(k, kb, key->len) == 0;
	if (end->len == 1 && eb[0] == 0)
		return (key->len == 1 && kb[0] == 0) || bcmp_(k, kb, key->len) >= 0;
	return bcmp_(k, kb, key->len) >= 0 && bcmp_(k, eb, end->len) < 0;
}

static const struct bytes *pick_bound(uint64_t *x)
{
	uint64_t r = rnd(x) % 10;

	if (r < 7)
		return &alphabet[rnd(x) % NK];
	return &others[rnd(x) % (sizeof(others) / sizeof(others[0]))];
}

static void pick_span(uint64_t *x, struct bytes *key, struct bytes *end)
{
	static const struct bytes none = {"", 0};
	static const struct bytes zero = {"\0", 1};
	uint64_t r = rnd(x) % 10;

	*key = *pick_bound(x);
	if (r < 3) {
		*end = none;
	} else if (r < 5) {
		*end = zero;
	} else if (r < 6) {
		*key = zero;
		*end = zero;
	} else {
		*end = *pick_bound(x);
	}
}

static bool kv_is(const struct mvcc_kv *kv, int i, const struct mentry *e)
{
	return kv->key_len == alphabet[i].len &&
	       memcmp(kv->key, alphabet[i].s, kv->key_len) == 0 &&
	       kv->value_len == e->len && memcmp(kv->value, e->val, e->len) == 0 &&
	       kv->create_rev == e->create && kv->mod_rev == e->mod &&
	       kv->version == e->version && kv->lease == e->lease;
}

static bool seen_is(const struct seen_kv *s, int i, const struct mentry *e)
{
	struct mvcc_kv kv = {s->key,        s->key_len,  s->value,   s->value_len,
	                     s->create_rev, s->mod_rev, s->version, s->lease};

	return kv_is(&kv, i, e);
}

/* The model's answer to which state a read at want sees. */
static int model_state(struct model *md, int64_t want,
                       const struct mstate **st, int64_t *rev)
{
	int64_t head = md->in_group && md->changed ? md->rev + 1 : md->rev;

	*rev = want > 0 ? want : head;
	if (*rev > head)
		return CAIRN_EFUTUREREV;
	if (*rev < md->compact)
		return CAIRN_ECOMPACTED;
	*st = *rev == md->rev + 1 ? &md->cur : &md->revs[*rev];
	return 0;
}

static int64_t model_live(const struct mstate *st)
{
	int64_t n = 0;
	int i;

	for (i = 0; i < NK; i++)
		n += st->e[i].live;
	return n;
}

static void model_begin(struct mvcc *m, struct model *md)
{
	mvcc_begin(m);
	md->in_group = true;
	md->changed = false;
	md->sub = 0;
	md->cur = md->revs[md->rev];
}

/* Records a change of key i made in the open group: e as it is after, prev
 * as it was before (NULL: not live). */
static int model_record(struct model *md, int i, const struct mentry *e,
                        const struct mentry *prev)
{
	struct mchange *c;

	if (md->nch == md->ch_cap) {
		size_t cap = md->ch_cap ? md->ch_cap * 2 : 1024;

		c = realloc(md->ch, cap * sizeof(c[0]));
		CHECK(c != NULL);
		md->ch = c;
		md->ch_cap = cap;
	}
	c = &md->ch[md->nch++];
	memset(c, 0, sizeof(*c));
	c->rev = md->rev + 1;
	c->sub = md->sub++;
	c->key = i;
	c->is_delete = !e->live;
	if (e->live)
		c->e = *e;
	c->has_prev = prev != NULL;
	if (prev != NULL)
		c->prev = *prev;
	return 0;
}

static int model_end(struct mvcc *m, struct model *md)
{
	if (md->changed) {
		md->rev++;
		md->revs[md->rev] = md->cur;
	}
	md->in_group = false;
	CHECK_EQ_INT(mvcc_end(m), md->rev);
	CHECK_EQ_INT(mvcc_rev(m), md->rev);
	CHECK_EQ_INT(mvcc_key_count(m), model_live(&md->cur));
	return 0;
}

static int op_put(struct mvcc *m, struct model *md, uint64_t *x)
{
	int i = (int)(rnd(x) % NK);
	struct mentry *e = &md->cur.e[i];
	struct mentry before = *e;
	uint8_t val[VMAX];
	size_t len = rnd(x) % (VMAX + 1);
	int64_t lease = rnd(x) % 4 == 0 ? (int64_t)(rnd(x) % 100) : 0;
	struct mvcc_kv prev;
	bool had;
	size_t j;

	for (j = 0; j < len; j++)
		val[j] = (uint8_t)(rnd(x) % 4);
	CHECK_EQ_INT(mvcc_put(m, (const uint8_t *)alphabet[i].s, alphabet[i].len,
	                      val, len, lease, &prev, &had), 0);
	CHECK_EQ_INT(had, e->live);
	if (had)
		CHECK(kv_is(&prev, i, e));
	if (!e->live) {
		e->live = true;
		e->create = md->rev + 1;
		e->version = 0;
	}
	e->version++;
	e->mod = md->rev + 1;
	e->lease = lease;
	e->len = (uint8_t)len;
	memcpy(e->val, val, len);
	md->changed = true;
	return model_record(md, i, e, before.live ? &before : NULL);
}

static int op_delete(struct mvcc *m, struct model *md, uint64_t *x)
{
	struct bytes key;
	struct bytes end;
	struct seen s;
	int64_t n = -1;
	size_t got = 0;
	int i;

	pick_span(x, &key, &end);
	memset(&s, 0, sizeof(s));
	CHECK_EQ_INT(mvcc_delete_range(m, (const uint8_t *)key.s, key.len,
	                               (const uint8_t *)end.s, end.len, seen_cb,
	                               &s, &n), 0);
	CHECK_EQ_INT(n, (int64_t)s.n);
	for (i = 0; i < NK; i++) {
		struct mentry *e = &md->cur.e[i];
		struct mentry before = *e;

		if (!e->live || !in_span(&alphabet[i], &key, &end))
			continue;
		CHECK(got < s.n);
		CHECK(seen_is(&s.kv[got++], i, e));
		e->live = false;
		md->changed = true;
		CHECK(model_record(md, i, e, &before) == 0);
	}
	CHECK_EQ_INT(got, s.n);
	return 0;
}

static int64_t pick_rev(struct model *md, uint64_t *x)
{
	int64_t lo = md->compact > 3 ? md->compact - 2 : 1;
	int64_t hi = md->rev + 2;

	if (rnd(x) % 3 == 0)
		return 0;
	/* Mostly recent revisions, sometimes anywhere in the history. */
	if (rnd(x) % 2 && hi - lo > 20)
		lo = hi - 20;
	return lo + (int64_t)(rnd(x) % (uint64_t)(hi - lo + 1));
}

static int op_range(struct mvcc *m, struct model *md, uint64_t *x)
{
	struct bytes key;
	struct bytes end;
	struct seen s;
	struct mvcc_range_result res;
	const struct mstate *st;
	int64_t want = md->in_group && rnd(x) % 2 ? 0 : pick_rev(md, x);
	int64_t limit = rnd(x) % 3 == 0 ? (int64_t)(rnd(x) % 5) : 0;
	bool count_only = rnd(x) % 8 == 0;
	int64_t rev;
	int64_t count = 0;
	int rv;
	int i;

	pick_span(x, &key, &end);
	rv = model_state(md, want, &st, &rev);
	CHECK_EQ_INT(range(m, key.s, key.len, end.s, end.len, want, limit,
	                   count_only, &s, &res), rv);
	if (rv != 0)
		return 0;
	CHECK_EQ_INT(res.rev, rev);
	for (i = 0; i < NK; i++) {
		if (!st->e[i].live || !in_span(&alphabet[i], &key, &end))
			continue;
		count++;
		if (count_only || (limit > 0 && count > limit))
			continue;
		CHECK((size_t)count <= s.n);
		CHECK(seen_is(&s.kv[count - 1], i, &st->e[i]));
	}
	CHECK_EQ_INT(res.count, count);
	CHECK_EQ_INT(s.n, count_only ? 0 : limit > 0 && limit < count ? limit : count);
	CHECK_EQ_INT(res.more, limit > 0 && count > limit);
	return 0;
}

static int op_get(struct mvcc *m, struct model *md, uint64_t *x)
{
	int i = (int)(rnd(x) % NK);
	int64_t want = pick_rev(md, x);
	const struct mstate *st;
	struct mvcc_kv kv;
	int64_t rev;
	bool live;

	live = model_state(md, want, &st, &rev) == 0 && st->e[i].live;
	CHECK_EQ_INT(mvcc_get(m, (const uint8_t *)alphabet[i].s, alphabet[i].len,
	                      want, &kv), live);
	if (live)
		CHECK(kv_is(&kv, i, &st->e[i]));
	return 0;
}

static int op_compact(struct mvcc *m, struct model *md, uint64_t *x)
{
	/* Mostly well behind the head, so that history stays to be read. */
	uint64_t span = (uint64_t)(md->rev - md->compact) / 4 + 2;
	int64_t rev = md->compact + (int64_t)(rnd(x) % span);
	uint64_t size = mvcc_size_bytes(m);
	int want = 0;

	if (rnd(x) % 8 == 0)
		rev = md->compact - (int64_t)(rnd(x) % 2);
	if (rev <= md->compact)
		want = CAIRN_ECOMPACTED;
	else if (rev > md->rev)
		want = CAIRN_EFUTUREREV;
	CHECK_EQ_INT(mvcc_compact(m, rev), want);
	if (want == 0)
		md->compact = rev;
	CHECK(mvcc_size_bytes(m) <= size);
	CHECK_EQ_INT(mvcc_compact_rev(m), md->compact);
	return 0;
}

/* Whether the store's change ch is the model's c. */
static bool change_same(const struct mvcc_change *ch, const struct mchange *c)
{
	const struct bytes *k = &alphabet[c->key];
	const struct mvcc_kv *kv = &ch->kv;

	if (ch->rev != c->rev || ch->sub != c->sub ||
	    ch->is_delete != c->is_delete || ch->has_prev != c->has_prev)
		return false;
	if (c->has_prev && !kv_is(&ch->prev, c->key, &c->prev))
		return false;
	if (!c->is_delete)
		return kv_is(kv, c->key, &c->e);
	return kv->key_len == k->len &&
	       (k->len == 0 || memcmp(kv->key, k->s, k->len) == 0) &&
	       kv->value == NULL && kv->value_len == 0 && kv->create_rev == 0 &&
	       kv->mod_rev == c->rev && kv->version == 0 && kv->lease == 0;
}

/* A walk of the model's changes alongside mvcc_changes(). */
struct mwalk {
	const struct model *md;
	size_t at; /* the next model change to look at */
	int64_t to;
	struct bytes key;
	struct bytes end;
	size_t stop_after; /* 0: all */
	size_t calls;
	bool bad;
};

/* Moves w->at to the next model change the walk must report, if any. */
static bool mwalk_next(struct mwalk *w)
{
	for (; w->at < w->md->nch; w->at++) {
		const struct mchange *c = &w->md->ch[w->at];

		if (c->rev > w->to)
			return false;
		if (in_span(&alphabet[c->key], &w->key, &w->end))
			return true;
	}
	return false;
}

static bool mwalk_cb(const struct mvcc_change *ch, void *arg)
{
	struct mwalk *w = arg;

	if (!mwalk_next(w) || !change_same(ch, &w->md->ch[w->at])) {
		w->bad = true;
		return false;
	}
	w->at++;
	w->calls++;
	return w->stop_after == 0 || w->calls < w->stop_after;
}

/* The first model change at or after rev. */
static size_t model_first(const struct model *md, int64_t rev)
{
	size_t lo = 0;
	size_t hi = md->nch;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (md->ch[mid].rev < rev)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The store's changes in [from, to] of the span are exactly the model's. */
static int check_changes(struct mvcc *m, const struct model *md, int64_t from,
                         int64_t to, const struct bytes *key,
                         const struct bytes *end, size_t stop_after)
{
	struct mwalk w = {md, 0, to, *key, *end, stop_after, 0, false};
	int want = 0;

	if (from <= md->compact)
		want = CAIRN_ECOMPACTED;
	else if (from > md->rev + 1)
		want = CAIRN_EFUTUREREV;
	else
		w.at = model_first(md, from);
	CHECK_EQ_INT(mvcc_changes(m, from, to, (const uint8_t *)key->s,
	                          key->len, (const uint8_t *)end->s, end->len,
	                          mwalk_cb, &w), want);
	CHECK(!w.bad);
	if (want != 0)
		CHECK_EQ_INT(w.calls, 0);
	else if (stop_after == 0 || w.calls < stop_after)
		CHECK(!mwalk_next(&w)); /* nothing left out */
	return 0;
}

static int op_changes(struct mvcc *m, struct model *md, uint64_t *x)
{
	int64_t lo = md->compact > 1 ? md->compact - 1 : 0;
	int64_t hi = md->rev + 2;
	int64_t from;
	int64_t to;
	size_t stop_after = rnd(x) % 4 == 0 ? 1 + rnd(x) % 5 : 0;
	struct bytes key;
	struct bytes end;

	/* Mostly what a watcher catching up asks, sometimes anything. */
	if (rnd(x) % 2 && hi - lo > 30)
		lo = hi - 30;
	from = lo + (int64_t)(rnd(x) % (uint64_t)(hi - lo + 1));
	if (rnd(x) % 4 == 0)
		to = INT64_MAX;
	else
		to = from - 2 + (int64_t)(rnd(x) % 40);
	pick_span(x, &key, &end);
	return check_changes(m, md, from, to, &key, &end, stop_after);
}

/* The whole kept history, and the first revision that is not kept. */
static int check_all_changes(struct mvcc *m, const struct model *md)
{
	CHECK(check_changes(m, md, md->compact + 1, INT64_MAX, &all_keys,
	                    &all_keys, 0) == 0);
	return check_changes(m, md, md->compact, INT64_MAX, &all_keys,
	                     &all_keys, 0);
}

/* Replaces the store with what a dump of it loads into. */
static int reload(struct mvcc **m)
{
	struct buf b = BUF_INIT;
	struct mvcc *m2;

	CHECK_EQ_INT(dump(*m, &b), 0);
	CHECK_EQ_INT(load(&b, b.len, &m2), 0);
	CHECK(same_stores(*m, m2) == 0);
	mvcc_destroy(*m);
	*m = m2;
	buf_free(&b);
	return 0;
}

static int model_group(struct mvcc *m, struct model *md, uint64_t *x)
{
	int n = 1 + (int)(rnd(x) % 5);
	int i;

	model_begin(m, md);
	for (i = 0; i < n; i++) {
		uint64_t r = rnd(x) % 10;

		if (r < 4)
			CHECK(op_put(m, md, x) == 0);
		else if (r < 6)
			CHECK(op_delete(m, md, x) == 0);
		else if (r < 8)
			CHECK(op_range(m, md, x) == 0);
		else
			CHECK(op_get(m, md, x) == 0);
	}
	return model_end(m, md);
}

static int model_step(struct mvcc **m, struct model *md, uint64_t *x, int i)
{
	uint64_t r = rnd(x) % 100;

	if (r < 30) {
		model_begin(*m, md);
		CHECK(op_put(*m, md, x) == 0);
		return model_end(*m, md);
	}
	if (r < 38) {
		model_begin(*m, md);
		CHECK(op_delete(*m, md, x) == 0);
		return model_end(*m, md);
	}
	if (r < 55)
		return model_group(*m, md, x);
	if (r < 72)
		return op_range(*m, md, x);
	if (r < 80)
		return op_changes(*m, md, x);
	if (r < 97)
		return op_get(*m, md, x);
	if (r < 99 || i % 2)
		CHECK(op_compact(*m, md, x) == 0);
	else
		CHECK(reload(m) == 0);
	return check_all_changes(*m, md);
}

static int model_run(struct mvcc *m, struct model *md, uint64_t *x)
{
	int64_t rev;
	int i;

	for (i = 0; i < MODEL_OPS; i++) {
		if (model_step(&m, md, x, i) != 0) {
			printf("# failed at op %d\n", i);
			mvcc_destroy(m);
			return 1;
		}
	}
	/* At the end, every kept revision, whole keyspace. */
	for (rev = md->compact > 0 ? md->compact : 1; rev <= md->rev; rev++) {
		struct mvcc_range_result res;
		struct seen s;
		int k;
		size_t j = 0;

		CHECK_EQ_INT(range(m, "\0", 1, "\0", 1, rev, 0, false, &s, &res), 0);
		for (k = 0; k < NK; k++)
			if (md->revs[rev].e[k].live)
				CHECK(j < s.n && seen_is(&s.kv[j++], k, &md->revs[rev].e[k]));
		CHECK_EQ_INT(j, s.n);
	}
	CHECK(check_all_changes(m, md) == 0);
	CHECK(reload(&m) == 0);
	CHECK(check_all_changes(m, md) == 0);
	mvcc_destroy(m);
	return 0;
}

TEST(model_random)
{
	struct model md;
	uint64_t x = seed;
	int i;
	int rv;

	for (i = 1; i < NK; i++)
		CHECK(bcmp_(&alphabet[i - 1], (const uint8_t *)alphabet[i].s,
		            alphabet[i].len) < 0);
	memset(&md, 0, sizeof(md));
	md.revs = calloc(MODEL_OPS + 2, sizeof(md.revs[0]));
	CHECK(md.revs != NULL);
	md.rev = 1;
	rv = model_run(store_new(), &md, &x);
	printf("# model: %d ops, revision %" PRId64 ", compacted at %" PRId64
	       ", %zu changes\n", MODEL_OPS, md.rev, md.compact, md.nch);
	free(md.ch);
	free(md.revs);
	return rv;
}

int main(void)
{
	static const struct test_case tests[] = {
		T(create_empty),     T(put_get),
		T(delete_recreate),  T(txn_group),
		T(range_rules),      T(delete_range_rules),
		T(old_revisions),    T(future_rev),
		T(compaction),       T(size_bytes),
		T(many_keys),        T(changes_basic),
		T(changes_ranges),   T(changes_errors),
		T(changes_compaction), T(changes_long),
		T(changes_dump_load), T(dump_load_roundtrip),
		T(load_truncated),   T(load_corrupted),
		T(load_invalid),     T(enomem),
		T(model_random),
	};
	const char *env = getenv("MVCC_SEED");

	if (env != NULL && *env != 0)
		seed = strtoull(env, NULL, 0);
	if (seed == 0)
		seed = 1; /* xorshift's one fixed point */
	printf("# seed %" PRIu64 " (set MVCC_SEED to replay)\n", seed);
	/* test_run() rather than RUN_TESTS(), whose ({ }) -Wpedantic refuses. */
	return test_run(tests, sizeof(tests) / sizeof(tests[0]));
}
