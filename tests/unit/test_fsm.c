/*
 * test_fsm: unit tests of store/fsm.c, the replicated state machine.
 *
 * Most tests run three members under libraft's deterministic fixture
 * (raft_fixture: in-memory I/O and network, simulated time), each with its
 * own struct fsm. Entries are built the way the server builds them
 * (fsm_entry_begin/add/end over request payloads encoded with mp_writer),
 * proposed with raft_apply on the leader, and the fixture is stepped until
 * they are applied. Then every member must hold the same state (the
 * snapshot bytes of each are compared) and the origin member's hooks must
 * have received well-formed answers. Leader changes, a minority partition and
 * a catch-up through InstallSnapshot are driven the same way.
 *
 * The snapshot codec is also tested on its own: round trips, and corrupted
 * or truncated snapshots, which must be refused with a message and leave the
 * target's state untouched. All randomness uses fixed seeds.
 */
#include <lz4frame.h>
#include <raft.h>
#include <raft/fixture.h>
#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "cairn.h"
#include "dedup.h"
#include "fsm.h"
#include "log.h"
#include "mp.h"
#include "mvcc.h"
#include "proto.h"
#include "test.h"


/* ---- members: an fsm plus the answers its hooks received ----------------- */

#define MAX_ANSWERS 256

struct answer {
	uint64_t batch;
	uint32_t index;
	uint8_t *data;
	size_t len;
};

struct member {
	struct fsm fsm;
	struct buf cur; /* the answer being written */
	struct mp_writer w;
	uint64_t batch;
	uint32_t index;
	bool open;
	struct answer ans[MAX_ANSWERS];
	size_t n_ans;
	unsigned hook_errors; /* begin/end out of order, or a writer error */
	unsigned dropped;     /* answers beyond MAX_ANSWERS, not kept */
};

static struct mp_writer *hook_begin(void *arg, uint64_t batch, uint32_t index)
{
	struct member *m = arg;

	if (m->open)
		m->hook_errors++;
	m->open = true;
	buf_reset(&m->cur);
	mp_writer_init(&m->w, &m->cur);
	m->batch = batch;
	m->index = index;
	return &m->w;
}

static void hook_end(void *arg)
{
	struct member *m = arg;
	struct answer *a;

	if (!m->open || m->w.err != 0) {
		m->hook_errors++;
		return;
	}
	m->open = false;
	if (m->n_ans == MAX_ANSWERS) {
		m->dropped++;
		return;
	}
	a = &m->ans[m->n_ans++];
	a->batch = m->batch;
	a->index = m->index;
	a->len = m->cur.len;
	a->data = malloc(a->len ? a->len : 1);
	if (a->data == NULL)
		abort();
	memcpy(a->data, m->cur.data, a->len);
}

static int member_init(struct member *m, uint64_t id)
{
	struct fsm_hooks h = {m, hook_begin, hook_end};

	memset(m, 0, sizeof *m);
	return fsm_init(&m->fsm, id, &h);
}

static void member_close(struct member *m)
{
	size_t i;

	for (i = 0; i < m->n_ans; i++)
		free(m->ans[i].data);
	m->n_ans = 0;
	buf_free(&m->cur);
	fsm_close(&m->fsm);
}

static const struct answer *find_answer(const struct member *m, uint64_t batch,
                                        uint32_t index)
{
	size_t i;

	for (i = 0; i < m->n_ans; i++)
		if (m->ans[i].batch == batch && m->ans[i].index == index)
			return &m->ans[i];
	return NULL;
}

/* ---- decoding answers ---------------------------------------------------- */

struct sub_answer {
	uint64_t op;
	int64_t del;
	uint32_t n_kvs;
	uint32_t n_pkvs;
	int64_t cnt;
	const uint8_t *value; /* of the first kv */
	uint32_t value_len;
};

struct parsed {
	uint64_t id;
	uint64_t op;
	uint64_t err;
	char msg[160];
	bool has_h;
	uint64_t member;
	int64_t rev;
	uint64_t term;
	bool dup;
	bool has_ok;
	bool ok;
	bool has_del;
	int64_t del;
	uint32_t n_pkvs;
	uint32_t n_rs;
	struct sub_answer rs[8];
};

static bool read_key(struct mp_reader *r, const char **k, uint32_t *len)
{
	return mp_read_str(r, k, len);
}

/* Reads a kv array; keeps the first one's value. */
static bool read_kvs(struct mp_reader *r, uint32_t *n, const uint8_t **value,
                     uint32_t *value_len)
{
	uint32_t i;
	uint32_t f;
	const uint8_t *key;
	uint32_t key_len;

	if (!mp_read_array(r, n))
		return false;
	for (i = 0; i < *n; i++) {
		if (!mp_read_array(r, &f) || f != 6 ||
		    !mp_read_bytes(r, &key, &key_len))
			return false;
		if (i == 0 && value != NULL && mp_peek(r) != MP_NIL) {
			if (!mp_read_bytes(r, value, value_len))
				return false;
		} else if (!mp_skip(r)) {
			return false;
		}
		for (f = 0; f < 4; f++)
			if (!mp_skip(r))
				return false;
	}
	return true;
}

static bool parse_sub(struct mp_reader *r, struct sub_answer *s)
{
	const char *k;
	uint32_t klen;
	uint32_t n;
	bool b;

	memset(s, 0, sizeof *s);
	if (!mp_read_map(r, &n))
		return false;
	while (n-- > 0) {
		if (!read_key(r, &k, &klen))
			return false;
		if (MP_KEY_IS(k, klen, "op")) {
			if (!mp_read_uint(r, &s->op))
				return false;
		} else if (MP_KEY_IS(k, klen, "del")) {
			if (!mp_read_int(r, &s->del))
				return false;
		} else if (MP_KEY_IS(k, klen, "cnt")) {
			if (!mp_read_int(r, &s->cnt))
				return false;
		} else if (MP_KEY_IS(k, klen, "more")) {
			if (!mp_read_bool(r, &b))
				return false;
		} else if (MP_KEY_IS(k, klen, "kvs")) {
			if (!read_kvs(r, &s->n_kvs, &s->value, &s->value_len))
				return false;
		} else if (MP_KEY_IS(k, klen, "pkvs")) {
			if (!read_kvs(r, &s->n_pkvs, NULL, NULL))
				return false;
		} else {
			return false; /* nothing else belongs in a sub-answer */
		}
	}
	return true;
}

static bool parse_header(struct mp_reader *r, struct parsed *p)
{
	const char *k;
	uint32_t klen;
	uint32_t n;

	if (!mp_read_map(r, &n) || n != 3)
		return false;
	while (n-- > 0) {
		if (!read_key(r, &k, &klen))
			return false;
		if (MP_KEY_IS(k, klen, "m")) {
			if (!mp_read_uint(r, &p->member))
				return false;
		} else if (MP_KEY_IS(k, klen, "r")) {
			if (!mp_read_int(r, &p->rev))
				return false;
		} else if (MP_KEY_IS(k, klen, "t")) {
			if (!mp_read_uint(r, &p->term))
				return false;
		} else {
			return false;
		}
	}
	p->has_h = true;
	return true;
}

static bool parse_field(struct mp_reader *r, struct parsed *p, const char *k,
                        uint32_t klen)
{
	const char *s;
	uint32_t n;
	uint32_t i;

	if (MP_KEY_IS(k, klen, "id"))
		return mp_read_uint(r, &p->id);
	if (MP_KEY_IS(k, klen, "op"))
		return mp_read_uint(r, &p->op);
	if (MP_KEY_IS(k, klen, "err"))
		return mp_read_uint(r, &p->err);
	if (MP_KEY_IS(k, klen, "msg")) {
		if (!mp_read_str(r, &s, &n) || n >= sizeof p->msg)
			return false;
		memcpy(p->msg, s, n);
		p->msg[n] = 0;
		return true;
	}
	if (MP_KEY_IS(k, klen, "h"))
		return parse_header(r, p);
	if (MP_KEY_IS(k, klen, "dup"))
		return mp_read_bool(r, &p->dup);
	if (MP_KEY_IS(k, klen, "ok"))
		return (p->has_ok = true) && mp_read_bool(r, &p->ok);
	if (MP_KEY_IS(k, klen, "del"))
		return (p->has_del = true) && mp_read_int(r, &p->del);
	if (MP_KEY_IS(k, klen, "pkvs"))
		return read_kvs(r, &p->n_pkvs, NULL, NULL);
	if (MP_KEY_IS(k, klen, "rs")) {
		if (!mp_read_array(r, &p->n_rs) || p->n_rs > 8)
			return false;
		for (i = 0; i < p->n_rs; i++)
			if (!parse_sub(r, &p->rs[i]))
				return false;
		return true;
	}
	return false; /* an unexpected field */
}

/* Decodes a whole answer; false if anything is malformed or left over. */
static bool parse_answer(const struct answer *a, struct parsed *p)
{
	struct mp_reader r;
	const char *k;
	uint32_t klen;
	uint32_t n;

	memset(p, 0, sizeof *p);
	if (a == NULL)
		return false;
	mp_reader_init(&r, a->data, a->len);
	if (!mp_read_map(&r, &n))
		return false;
	while (n-- > 0) {
		if (!read_key(&r, &k, &klen) || !parse_field(&r, p, k, klen))
			return false;
	}
	return mp_ok(&r) && mp_left(&r) == 0;
}

/* ---- building requests --------------------------------------------------- */

struct client_ids {
	uint64_t cid;
	uint64_t seq;
	uint64_t ack;
};

static void put_ids(struct mp_writer *w, const struct client_ids *c)
{
	mp_put_key(w, "cid");
	mp_put_uint(w, c->cid);
	mp_put_key(w, "seq");
	mp_put_uint(w, c->seq);
	mp_put_key(w, "ack");
	mp_put_uint(w, c->ack);
}

static void req_put(struct buf *b, uint64_t id, const char *k, const char *v,
                    const struct client_ids *c)
{
	struct mp_writer w;

	buf_reset(b);
	mp_writer_init(&w, b);
	mp_put_map(&w, c ? 8 : 5);
	mp_put_key(&w, "id");
	mp_put_uint(&w, id);
	mp_put_key(&w, "op");
	mp_put_uint(&w, PROTO_OP_PUT);
	mp_put_key(&w, "k");
	mp_put_bin(&w, k, strlen(k));
	mp_put_key(&w, "v");
	mp_put_bin(&w, v, strlen(v));
	mp_put_key(&w, "pkv");
	mp_put_bool(&w, true);
	if (c)
		put_ids(&w, c);
}

static void req_delete(struct buf *b, uint64_t id, const char *k,
                       const char *end, const struct client_ids *c)
{
	struct mp_writer w;

	buf_reset(b);
	mp_writer_init(&w, b);
	mp_put_map(&w, (c ? 7 : 4) + (end ? 1 : 0));
	mp_put_key(&w, "id");
	mp_put_uint(&w, id);
	mp_put_key(&w, "op");
	mp_put_uint(&w, PROTO_OP_DELETE);
	mp_put_key(&w, "k");
	mp_put_bin(&w, k, strlen(k));
	if (end) {
		mp_put_key(&w, "e");
		mp_put_bin(&w, end, strlen(end));
	}
	mp_put_key(&w, "pkv");
	mp_put_bool(&w, true);
	if (c)
		put_ids(&w, c);
}

static void op_put(struct mp_writer *w, const char *k, const char *v)
{
	mp_put_map(w, 3);
	mp_put_key(w, "op");
	mp_put_uint(w, PROTO_OP_PUT);
	mp_put_key(w, "k");
	mp_put_bin(w, k, strlen(k));
	mp_put_key(w, "v");
	mp_put_bin(w, v, strlen(v));
}

static void op_get(struct mp_writer *w, const char *k)
{
	mp_put_map(w, 2);
	mp_put_key(w, "op");
	mp_put_uint(w, PROTO_OP_RANGE);
	mp_put_key(w, "k");
	mp_put_bin(w, k, strlen(k));
}

static void op_delete(struct mp_writer *w, const char *k)
{
	mp_put_map(w, 3);
	mp_put_key(w, "op");
	mp_put_uint(w, PROTO_OP_DELETE);
	mp_put_key(w, "k");
	mp_put_bin(w, k, strlen(k));
	mp_put_key(w, "pkv");
	mp_put_bool(w, true);
}

/*
 * A TXN: if value(k) == v then {put k=then_v; get k} else {delete k}.
 * dup_key makes the success branch put k twice (refused with EDUPKEY).
 */
static void req_txn(struct buf *b, uint64_t id, const char *k, const char *v,
                    const char *then_v, bool dup_key,
                    const struct client_ids *c)
{
	struct mp_writer w;

	buf_reset(b);
	mp_writer_init(&w, b);
	mp_put_map(&w, c ? 8 : 5);
	mp_put_key(&w, "id");
	mp_put_uint(&w, id);
	mp_put_key(&w, "op");
	mp_put_uint(&w, PROTO_OP_TXN);
	mp_put_key(&w, "cmp");
	mp_put_array(&w, 1);
	mp_put_map(&w, 4);
	mp_put_key(&w, "k");
	mp_put_bin(&w, k, strlen(k));
	mp_put_key(&w, "t");
	mp_put_uint(&w, CAIRN_CMP_VALUE);
	mp_put_key(&w, "r");
	mp_put_uint(&w, CAIRN_CMP_EQUAL);
	mp_put_key(&w, "v");
	mp_put_bin(&w, v, strlen(v));
	mp_put_key(&w, "s");
	mp_put_array(&w, dup_key ? 3 : 2);
	op_put(&w, k, then_v);
	if (dup_key)
		op_put(&w, k, "again");
	op_get(&w, k);
	mp_put_key(&w, "f");
	mp_put_array(&w, 1);
	op_delete(&w, k);
	if (c)
		put_ids(&w, c);
}

/* A request that decodes but is not a write. */
static void req_range(struct buf *b, uint64_t id, const char *k)
{
	struct mp_writer w;

	buf_reset(b);
	mp_writer_init(&w, b);
	mp_put_map(&w, 3);
	mp_put_key(&w, "id");
	mp_put_uint(&w, id);
	mp_put_key(&w, "op");
	mp_put_uint(&w, PROTO_OP_RANGE);
	mp_put_key(&w, "k");
	mp_put_bin(&w, k, strlen(k));
}

/* Builds an entry's bytes from request payloads. */
static int make_entry(struct buf *e, uint64_t origin, uint64_t batch,
                      const struct buf *reqs, unsigned n)
{
	struct fsm_entry en;
	unsigned i;

	buf_reset(e);
	fsm_entry_begin(&en, e, origin, batch);
	for (i = 0; i < n; i++)
		fsm_entry_add(&en, reqs[i].data, reqs[i].len);
	return fsm_entry_end(&en);
}

/* Applies an entry straight through the raft_fsm interface. */
static int apply_direct(struct fsm *f, const struct buf *e)
{
	struct raft_buffer rb;
	void *result = (void *)1;
	int rv;

	rb.base = e->data;
	rb.len = e->len;
	rv = f->raft_fsm.apply(&f->raft_fsm, &rb, &result);
	return rv != 0 || result != NULL ? -1 : 0;
}

/* ---- comparing state ----------------------------------------------------- */

static int snapshot_of(struct fsm *f, struct buf *out)
{
	uint8_t *p;
	size_t len;
	int rv = fsm_encode_snapshot(f, &p, &len);

	if (rv != 0)
		return rv;
	buf_reset(out);
	rv = buf_append(out, p, len);
	raft_free(p);
	return rv;
}

static bool same_state(struct fsm *a, struct fsm *b)
{
	struct buf x = BUF_INIT;
	struct buf y = BUF_INIT;
	bool same = snapshot_of(a, &x) == 0 && snapshot_of(b, &y) == 0 &&
	            x.len == y.len && memcmp(x.data, y.data, x.len) == 0;

	buf_free(&x);
	buf_free(&y);
	return same && mvcc_rev(a->mvcc) == mvcc_rev(b->mvcc) &&
	       mvcc_key_count(a->mvcc) == mvcc_key_count(b->mvcc);
}

/* The live keys and values as one string "k=v;k=v;...". */
struct walk {
	char s[4096];
	size_t len;
};

static void walk_kv(const struct mvcc_kv *kv, void *arg)
{
	struct walk *w = arg;
	int n = snprintf(w->s + w->len, sizeof w->s - w->len, "%.*s=%.*s;",
	                 (int)kv->key_len, (const char *)kv->key,
	                 (int)kv->value_len, (const char *)kv->value);

	if (n > 0 && (size_t)n < sizeof w->s - w->len)
		w->len += (size_t)n;
}

static const char *contents(struct fsm *f, struct walk *w)
{
	struct mvcc_range_opts opts = {0, 0, false};
	struct mvcc_range_result res;

	w->len = 0;
	w->s[0] = 0;
	if (mvcc_range(f->mvcc, (const uint8_t *)"\0", 1, (const uint8_t *)"\0",
	               1, &opts, walk_kv, w, &res) != 0)
		return "(range failed)";
	return w->s;
}

static bool has_value(struct fsm *f, const char *k, const char *v)
{
	struct mvcc_kv kv;

	if (!mvcc_get(f->mvcc, (const uint8_t *)k, strlen(k), 0, &kv))
		return v == NULL;
	return v != NULL && kv.value_len == strlen(v) &&
	       memcmp(kv.value, v, kv.value_len) == 0;
}

/* ---- the cluster --------------------------------------------------------- */

#define N 3

struct pending {
	struct raft_apply req;
	bool done;
	int status;
};

struct cluster {
	struct raft_fixture f;
	struct member m[N];
	unsigned n;
	bool isolated[N]; /* cut off: not waited for */
};

static void apply_cb(struct raft_apply *req, int status, void *result)
{
	struct pending *p = req->data;

	(void)result;
	p->done = true;
	p->status = status;
}

/* Three members, bootstrapped and started, nobody elected yet. */
static struct cluster *cluster_new(unsigned threshold, unsigned trailing)
{
	struct raft_configuration conf;
	struct cluster *c = calloc(1, sizeof *c);
	unsigned i;

	if (c == NULL)
		abort();
	memset(&c->f, 0, sizeof c->f); /* 0.15 does not reset its count */
	if (raft_fixture_initialize(&c->f) != 0)
		abort();
	c->n = N;
	for (i = 0; i < N; i++) {
		if (member_init(&c->m[i], i + 1) != 0 ||
		    raft_fixture_grow(&c->f, &c->m[i].fsm.raft_fsm) != 0)
			abort();
		c->m[i].fsm.raft = raft_fixture_get(&c->f, i);
		if (threshold != 0) {
			raft_set_snapshot_threshold(raft_fixture_get(&c->f, i),
			                            threshold);
			raft_set_snapshot_trailing(raft_fixture_get(&c->f, i),
			                           trailing);
		}
	}
	if (raft_fixture_configuration(&c->f, N, &conf) != 0)
		abort();
	if (raft_fixture_bootstrap(&c->f, &conf) != 0)
		abort();
	raft_configuration_close(&conf);
	if (raft_fixture_start(&c->f) != 0)
		abort();
	return c;
}

static void cluster_free(struct cluster *c)
{
	unsigned i;

	raft_fixture_close(&c->f);
	for (i = 0; i < c->n; i++)
		member_close(&c->m[i]);
	free(c);
}

/* Proposes one entry of n requests on member i (origin: its id). */
static int propose(struct cluster *c, unsigned i, uint64_t batch,
                   const struct buf *reqs, unsigned n, struct pending *pd,
                   raft_index *index)
{
	struct raft *r = raft_fixture_get(&c->f, i);
	struct buf e = BUF_INIT;
	struct raft_buffer rb;
	int rv;

	if (make_entry(&e, i + 1, batch, reqs, n) != 0)
		return -1;
	rb.len = e.len;
	rb.base = raft_malloc(e.len);
	if (rb.base == NULL)
		abort();
	memcpy(rb.base, e.data, e.len);
	buf_free(&e);
	memset(pd, 0, sizeof *pd);
	pd->req.data = pd;
	rv = raft_apply(r, &pd->req, &rb, 1, apply_cb);
	if (rv != 0) {
		raft_free(rb.base);
		return rv;
	}
	*index = raft_last_index(r);
	return 0;
}

/* Steps until every live member applied index. */
static bool wait_applied(struct cluster *c, raft_index index)
{
	unsigned i;

	for (i = 0; i < c->n; i++) {
		if (!raft_fixture_alive(&c->f, i) || c->isolated[i])
			continue;
		if (!raft_fixture_step_until_applied(&c->f, i, index, 20000))
			return false;
	}
	return true;
}

/* Proposes on the leader and waits for all live members to apply it. */
static int run(struct cluster *c, uint64_t batch, const struct buf *reqs,
               unsigned n)
{
	unsigned leader = raft_fixture_leader_index(&c->f);
	struct pending pd;
	raft_index index;

	CHECK(leader < c->n);
	CHECK_EQ_INT(propose(c, leader, batch, reqs, n, &pd, &index), 0);
	CHECK(wait_applied(c, index));
	/* The callback fires once the leader applied it. */
	CHECK(raft_fixture_step_until_applied(&c->f, leader, index, 1000));
	CHECK(pd.done);
	CHECK_EQ_INT(pd.status, 0);
	return 0;
}

static bool all_same(struct cluster *c)
{
	unsigned i;

	for (i = 1; i < c->n; i++)
		if (!same_state(&c->m[0].fsm, &c->m[i].fsm))
			return false;
	return true;
}

/* ---- tests --------------------------------------------------------------- */

TEST(apply_replicates_and_answers)
{
	struct cluster *c = cluster_new(0, 0);
	struct client_ids ids1 = {1, 1, 1};
	struct client_ids ids2 = {1, 2, 1};
	struct buf reqs[3] = {BUF_INIT, BUF_INIT, BUF_INIT};
	struct parsed p;
	struct walk wk;
	unsigned i;
	uint64_t term;

	raft_fixture_elect(&c->f, 0);
	CHECK_EQ_INT(raft_fixture_leader_index(&c->f), 0);
	term = raft_fixture_get(&c->f, 0)->current_term;

	req_put(&reqs[0], 100, "a", "1", &ids1);
	req_put(&reqs[1], 101, "b", "2", &ids2);
	req_delete(&reqs[2], 102, "a", NULL, NULL);
	CHECK(run(c, 7, reqs, 3) == 0);

	for (i = 0; i < N; i++) {
		struct fsm *f = &c->m[i].fsm;
		CHECK_EQ_INT(mvcc_rev(f->mvcc), 4); /* 1 + three writes */
		CHECK_EQ_INT(mvcc_key_count(f->mvcc), 1);
		CHECK(has_value(f, "b", "2"));
		CHECK(has_value(f, "a", NULL));
		CHECK(strcmp(contents(f, &wk), "b=2;") == 0);
		CHECK_EQ_INT(dedup_clients(f->dedup), 1);
		CHECK_EQ_INT(c->m[i].hook_errors, 0);
	}
	CHECK(all_same(c));
	CHECK_EQ_INT(c->m[0].fsm.applied, c->m[1].fsm.applied);
	CHECK_EQ_INT(c->m[0].fsm.applied, c->m[2].fsm.applied);

	/* Only the origin answers, once per request. */
	CHECK_EQ_INT(c->m[0].n_ans, 3);
	CHECK_EQ_INT(c->m[1].n_ans, 0);
	CHECK_EQ_INT(c->m[2].n_ans, 0);
	for (i = 0; i < 3; i++) {
		CHECK(parse_answer(find_answer(&c->m[0], 7, i), &p));
		CHECK_EQ_INT(p.id, 100 + i);
		CHECK_EQ_INT(p.err, 0);
		CHECK(p.has_h);
		CHECK_EQ_INT(p.member, 1);
		CHECK_EQ_INT(p.rev, 2 + i);
		CHECK_EQ_INT(p.term, term);
		CHECK(!p.dup);
	}
	CHECK(parse_answer(find_answer(&c->m[0], 7, 0), &p));
	CHECK_EQ_INT(p.op, PROTO_OP_PUT);
	CHECK_EQ_INT(p.n_pkvs, 0); /* "a" did not exist */
	CHECK(parse_answer(find_answer(&c->m[0], 7, 2), &p));
	CHECK_EQ_INT(p.op, PROTO_OP_DELETE);
	CHECK(p.has_del);
	CHECK_EQ_INT(p.del, 1);
	CHECK_EQ_INT(p.n_pkvs, 1);

	for (i = 0; i < 3; i++)
		buf_free(&reqs[i]);
	cluster_free(c);
	return 0;
}

TEST(txn_branches_and_errors)
{
	struct cluster *c = cluster_new(0, 0);
	struct buf reqs[4] = {BUF_INIT, BUF_INIT, BUF_INIT, BUF_INIT};
	struct parsed p;
	int64_t rev;
	unsigned i;

	raft_fixture_elect(&c->f, 0);
	req_put(&reqs[0], 1, "x", "1", NULL);
	CHECK(run(c, 1, reqs, 1) == 0);
	CHECK_EQ_INT(mvcc_rev(c->m[0].fsm.mvcc), 2);

	/* The compare holds: put x=2 and read it, in one revision. */
	req_txn(&reqs[0], 2, "x", "1", "2", false, NULL);
	/* Now it does not: the failure branch deletes x. */
	req_txn(&reqs[1], 3, "x", "1", "3", false, NULL);
	CHECK(run(c, 2, reqs, 2) == 0);

	CHECK(parse_answer(find_answer(&c->m[0], 2, 0), &p));
	CHECK_EQ_INT(p.id, 2);
	CHECK_EQ_INT(p.op, PROTO_OP_TXN);
	CHECK_EQ_INT(p.err, 0);
	CHECK(p.has_ok && p.ok);
	CHECK_EQ_INT(p.rev, 3);
	CHECK_EQ_INT(p.n_rs, 2);
	CHECK_EQ_INT(p.rs[0].op, PROTO_OP_PUT);
	CHECK_EQ_INT(p.rs[1].op, PROTO_OP_RANGE);
	CHECK_EQ_INT(p.rs[1].n_kvs, 1);
	CHECK_MEM(p.rs[1].value, p.rs[1].value_len, "2", 1);

	CHECK(parse_answer(find_answer(&c->m[0], 2, 1), &p));
	CHECK_EQ_INT(p.id, 3);
	CHECK(p.has_ok && !p.ok);
	CHECK_EQ_INT(p.rev, 4);
	CHECK_EQ_INT(p.n_rs, 1);
	CHECK_EQ_INT(p.rs[0].op, PROTO_OP_DELETE);
	CHECK_EQ_INT(p.rs[0].del, 1);
	CHECK_EQ_INT(p.rs[0].n_pkvs, 1);

	for (i = 0; i < N; i++) {
		CHECK_EQ_INT(mvcc_rev(c->m[i].fsm.mvcc), 4);
		CHECK(has_value(&c->m[i].fsm, "x", NULL));
	}

	/* Requests that cannot apply get error answers and change nothing:
	 * a branch that puts a key twice, a read, and a payload that is not
	 * a request; a good one after them still applies. */
	rev = mvcc_rev(c->m[0].fsm.mvcc);
	req_put(&reqs[0], 9, "x", "9", NULL);
	CHECK(run(c, 3, reqs, 1) == 0);
	req_txn(&reqs[0], 10, "x", "9", "10", true, NULL);
	req_range(&reqs[1], 11, "x");
	buf_reset(&reqs[2]);
	buf_append(&reqs[2], "\x81\xa2id\x0c", 5); /* {id: 12}: no op */
	req_put(&reqs[3], 13, "y", "13", NULL);
	CHECK(run(c, 4, reqs, 4) == 0);

	CHECK(parse_answer(find_answer(&c->m[0], 4, 0), &p));
	CHECK_EQ_INT(p.id, 10);
	CHECK_EQ_INT(p.err, CAIRN_EDUPKEY);
	CHECK(!p.has_h);
	CHECK(parse_answer(find_answer(&c->m[0], 4, 1), &p));
	CHECK_EQ_INT(p.id, 11);
	CHECK_EQ_INT(p.err, CAIRN_EPROTO);
	CHECK(parse_answer(find_answer(&c->m[0], 4, 2), &p));
	CHECK_EQ_INT(p.id, 12);
	CHECK_EQ_INT(p.err, CAIRN_EPROTO);
	CHECK(p.msg[0] != 0);
	CHECK(parse_answer(find_answer(&c->m[0], 4, 3), &p));
	CHECK_EQ_INT(p.err, 0);
	CHECK_EQ_INT(p.rev, rev + 2);
	for (i = 0; i < N; i++) {
		CHECK_EQ_INT(mvcc_rev(c->m[i].fsm.mvcc), rev + 2);
		CHECK(has_value(&c->m[i].fsm, "x", "9"));
		CHECK(has_value(&c->m[i].fsm, "y", "13"));
	}
	CHECK(all_same(c));
	for (i = 0; i < 4; i++)
		buf_free(&reqs[i]);
	cluster_free(c);
	return 0;
}

TEST(duplicates_apply_once)
{
	struct cluster *c = cluster_new(0, 0);
	struct buf reqs[2] = {BUF_INIT, BUF_INIT};
	struct buf before = BUF_INIT;
	struct buf after = BUF_INIT;
	struct client_ids ids = {5, 1, 1};
	struct parsed p;
	unsigned i;

	raft_fixture_elect(&c->f, 0);
	req_put(&reqs[0], 1, "k", "v1", &ids);
	CHECK(run(c, 1, reqs, 1) == 0);
	CHECK(parse_answer(find_answer(&c->m[0], 1, 0), &p));
	CHECK_EQ_INT(p.rev, 2);
	CHECK(!p.dup);
	CHECK_EQ_INT(snapshot_of(&c->m[1].fsm, &before), 0);

	/* The same request again, in its own entry: nothing changes. */
	CHECK(run(c, 2, reqs, 1) == 0);
	CHECK(parse_answer(find_answer(&c->m[0], 2, 0), &p));
	CHECK_EQ_INT(p.id, 1);
	CHECK(p.dup);
	CHECK_EQ_INT(p.rev, 2); /* the revision it was applied at */
	CHECK_EQ_INT(p.err, 0);
	for (i = 0; i < N; i++) {
		CHECK_EQ_INT(snapshot_of(&c->m[i].fsm, &after), 0);
		CHECK_MEM(after.data, after.len, before.data, before.len);
	}

	/* A retry that differs (it should not, but) is still the same write. */
	req_put(&reqs[0], 2, "k", "v2", &ids);
	req_put(&reqs[1], 3, "k", "v2", &ids); /* twice in one entry */
	CHECK(run(c, 3, reqs, 2) == 0);
	for (i = 0; i < 2; i++) {
		CHECK(parse_answer(find_answer(&c->m[0], 3, i), &p));
		CHECK(p.dup);
		CHECK_EQ_INT(p.rev, 2);
	}
	for (i = 0; i < N; i++)
		CHECK(has_value(&c->m[i].fsm, "k", "v1"));

	/* The next sequence number applies, and a duplicate of it inside the
	 * same entry does not. */
	ids.seq = 2;
	req_put(&reqs[0], 4, "k", "v3", &ids);
	req_put(&reqs[1], 5, "k", "v4", &ids);
	CHECK(run(c, 4, reqs, 2) == 0);
	CHECK(parse_answer(find_answer(&c->m[0], 4, 0), &p));
	CHECK(!p.dup);
	CHECK_EQ_INT(p.rev, 3);
	CHECK(parse_answer(find_answer(&c->m[0], 4, 1), &p));
	CHECK(p.dup);
	CHECK_EQ_INT(p.rev, 3);
	for (i = 0; i < N; i++) {
		CHECK(has_value(&c->m[i].fsm, "k", "v3"));
		CHECK_EQ_INT(mvcc_rev(c->m[i].fsm.mvcc), 3);
	}

	/* A stray copy below ack: acknowledged, so applied, so not again. */
	ids.seq = 1;
	ids.ack = 3;
	req_put(&reqs[0], 6, "k", "stray", &ids);
	CHECK(run(c, 5, reqs, 1) == 0);
	CHECK(parse_answer(find_answer(&c->m[0], 5, 0), &p));
	CHECK(p.dup);
	for (i = 0; i < N; i++) {
		CHECK(has_value(&c->m[i].fsm, "k", "v3"));
		CHECK_EQ_INT(mvcc_rev(c->m[i].fsm.mvcc), 3);
	}

	/* A transaction's outcome is remembered with it. */
	ids.cid = 6;
	ids.seq = 1;
	ids.ack = 1;
	req_txn(&reqs[0], 7, "k", "nope", "x", false,
	        &ids); /* fails: deletes k */
	CHECK(run(c, 6, reqs, 1) == 0);
	CHECK(run(c, 7, reqs, 1) == 0);
	CHECK(parse_answer(find_answer(&c->m[0], 6, 0), &p));
	CHECK(!p.dup && p.has_ok && !p.ok);
	CHECK_EQ_INT(p.rev, 4);
	CHECK(parse_answer(find_answer(&c->m[0], 7, 0), &p));
	CHECK(p.dup && p.has_ok && !p.ok);
	CHECK_EQ_INT(p.rev, 4);
	for (i = 0; i < N; i++) {
		CHECK(has_value(&c->m[i].fsm, "k", NULL));
		CHECK_EQ_INT(mvcc_rev(c->m[i].fsm.mvcc), 4);
		CHECK_EQ_INT(dedup_clients(c->m[i].fsm.dedup), 2);
	}
	CHECK(all_same(c));
	buf_free(&reqs[0]);
	buf_free(&reqs[1]);
	buf_free(&before);
	buf_free(&after);
	cluster_free(c);
	return 0;
}

/* Puts keys prefix0..prefix(n-1) = prefix in one entry. */
static int put_many(struct cluster *c, uint64_t batch, const char *prefix,
                    unsigned n, uint64_t cid, uint64_t *seq)
{
	struct buf reqs[8];
	unsigned i;
	int rv;

	memset(reqs, 0, sizeof reqs); /* all BUF_INIT */
	for (i = 0; i < n; i++) {
		char k[32];
		struct client_ids ids = {cid, *seq, *seq};
		snprintf(k, sizeof k, "%s%u", prefix, i);
		(*seq)++;
		req_put(&reqs[i], batch * 100 + i, k, prefix, &ids);
	}
	rv = run(c, batch, reqs, n);
	for (i = 0; i < n; i++)
		buf_free(&reqs[i]);
	return rv;
}

TEST(leader_changes_converge)
{
	struct cluster *c = cluster_new(0, 0);
	uint64_t seq = 1;
	unsigned leader;
	unsigned i;
	struct walk wk;
	struct walk w0;

	raft_fixture_elect(&c->f, 0);
	CHECK(put_many(c, 1, "a", 5, 42, &seq) == 0);

	/* Depose the leader, elect another, keep writing. */
	raft_fixture_depose(&c->f);
	raft_fixture_elect(&c->f, 1);
	CHECK_EQ_INT(raft_fixture_leader_index(&c->f), 1);
	CHECK(put_many(c, 2, "b", 5, 42, &seq) == 0);
	CHECK_EQ_INT(c->m[1].n_ans, 5); /* the new leader answered those */

	/* Kill that one: the others elect a third. */
	raft_fixture_kill(&c->f, 1);
	CHECK(raft_fixture_step_until_has_no_leader(&c->f, 20000));
	CHECK(raft_fixture_step_until_has_leader(&c->f, 20000));
	leader = raft_fixture_leader_index(&c->f);
	CHECK(leader == 0 || leader == 2);
	CHECK(put_many(c, 3, "c", 5, 42, &seq) == 0);
	CHECK(put_many(c, 4, "d", 3, 43, &seq) == 0);

	/* The dead member missed them; once back it catches up. */
	CHECK(has_value(&c->m[1].fsm, "c0", NULL));
	raft_fixture_revive(&c->f, 1);
	CHECK(put_many(c, 5, "e", 2, 42, &seq) == 0);
	CHECK(all_same(c));
	contents(&c->m[0].fsm, &w0);
	for (i = 0; i < N; i++) {
		CHECK(strcmp(contents(&c->m[i].fsm, &wk), w0.s) == 0);
		CHECK_EQ_INT(mvcc_key_count(c->m[i].fsm.mvcc), 20);
		CHECK_EQ_INT(mvcc_rev(c->m[i].fsm.mvcc), 21);
		CHECK(has_value(&c->m[i].fsm, "a4", "a"));
		CHECK(has_value(&c->m[i].fsm, "e1", "e"));
		CHECK_EQ_INT(c->m[i].hook_errors, 0);
	}
	cluster_free(c);
	return 0;
}

TEST(minority_leader_writes_are_lost_not_applied)
{
	struct cluster *c = cluster_new(0, 0);
	struct buf req = BUF_INIT;
	struct pending lost;
	raft_index index;
	uint64_t seq = 1;
	unsigned leader;
	unsigned i;
	unsigned j;

	raft_fixture_elect(&c->f, 0);
	CHECK(put_many(c, 1, "a", 2, 9, &seq) == 0);

	/* Cut member 0 off both ways, then hand it a write. */
	for (i = 1; i < N; i++) {
		raft_fixture_saturate(&c->f, 0, i);
		raft_fixture_saturate(&c->f, i, 0);
	}
	c->isolated[0] = true;
	req_put(&req, 500, "lost", "x", NULL);
	CHECK_EQ_INT(propose(c, 0, 50, &req, 1, &lost, &index), 0);

	/* It steps down; the majority elects a leader and goes on. */
	CHECK(raft_fixture_step_until_state_is(&c->f, 0, RAFT_FOLLOWER, 20000));
	CHECK(raft_fixture_step_until_has_leader(&c->f, 20000));
	leader = raft_fixture_leader_index(&c->f);
	CHECK(leader == 1 || leader == 2);
	CHECK(put_many(c, 2, "b", 3, 9, &seq) == 0);
	CHECK(lost.done);
	CHECK(lost.status != 0);

	/* Heal: member 0 drops its uncommitted entry and converges. */
	for (i = 1; i < N; i++) {
		raft_fixture_desaturate(&c->f, 0, i);
		raft_fixture_desaturate(&c->f, i, 0);
	}
	c->isolated[0] = false;
	CHECK(put_many(c, 3, "c", 1, 9, &seq) == 0);
	CHECK(all_same(c));
	for (i = 0; i < N; i++) {
		CHECK(has_value(&c->m[i].fsm, "lost", NULL));
		CHECK(has_value(&c->m[i].fsm, "b2", "b"));
		CHECK_EQ_INT(mvcc_key_count(c->m[i].fsm.mvcc), 6);
		/* Nobody answered the lost write. */
		for (j = 0; j < c->m[i].n_ans; j++)
			CHECK(c->m[i].ans[j].batch != 50);
	}
	buf_free(&req);
	cluster_free(c);
	return 0;
}

TEST(catch_up_through_snapshot_install)
{
	struct cluster *c = cluster_new(4, 2);
	uint64_t seq = 1;
	unsigned b;
	unsigned i;
	struct walk wk;
	struct walk w0;

	raft_fixture_elect(&c->f, 0);
	CHECK(put_many(c, 1, "a", 2, 77, &seq) == 0);
	raft_fixture_kill(&c->f, 2);
	for (b = 2; b < 40; b++) {
		char prefix[8];
		snprintf(prefix, sizeof prefix, "p%u_", b);
		CHECK(put_many(c, b, prefix, 1 + b % 3, 77 + b % 2, &seq) == 0);
	}
	/* The leader's log was compacted past what member 2 has. */
	CHECK(raft_fixture_get(&c->f, 0)->log.snapshot.last_index >
	      raft_last_applied(raft_fixture_get(&c->f, 2)));
	CHECK(has_value(&c->m[2].fsm, "p2_0", NULL));

	raft_fixture_revive(&c->f, 2);
	CHECK(put_many(c, 40, "z", 1, 77, &seq) == 0);
	CHECK(raft_fixture_n_recv(&c->f, 2, RAFT_IO_INSTALL_SNAPSHOT) > 0);
	CHECK(all_same(c));
	contents(&c->m[0].fsm, &w0);
	for (i = 0; i < N; i++) {
		CHECK(strcmp(contents(&c->m[i].fsm, &wk), w0.s) == 0);
		CHECK(has_value(&c->m[i].fsm, "p39_0", "p39_"));
		CHECK(has_value(&c->m[i].fsm, "z0", "z"));
		CHECK_EQ_INT(dedup_clients(c->m[i].fsm.dedup), 2);
	}

	/* The restored member keeps applying (and deduplicating) like the
	 * others: a retry of the last write is a duplicate everywhere. */
	seq--;
	CHECK(put_many(c, 41, "z", 1, 77, &seq) == 0);
	{
		struct parsed p;
		unsigned l = raft_fixture_leader_index(&c->f);
		CHECK(parse_answer(find_answer(&c->m[l], 41, 0), &p));
		CHECK(p.dup);
	}
	CHECK(all_same(c));
	cluster_free(c);
	return 0;
}

/* ---- the snapshot codec on its own --------------------------------------- */

/* Fills f with some history: puts, overwrites, deletes, a txn, dedup rows. */
static int build_state(struct fsm *f, uint64_t origin, unsigned rounds)
{
	struct buf reqs[4] = {BUF_INIT, BUF_INIT, BUF_INIT, BUF_INIT};
	struct buf e = BUF_INIT;
	unsigned r;
	unsigned i;

	for (r = 0; r < rounds; r++) {
		char k[16];
		char v[16];
		struct client_ids ids = {10 + r % 4, r + 1, r + 1};

		snprintf(k, sizeof k, "key%u", r % 7);
		snprintf(v, sizeof v, "val%u", r);
		req_put(&reqs[0], r, k, v, &ids);
		req_put(&reqs[1], r, "same", v, NULL);
		req_txn(&reqs[2], r, "same", v, "txn", false, NULL);
		snprintf(k, sizeof k, "key%u", (r + 3) % 7);
		req_delete(&reqs[3], r, k, NULL, NULL);
		CHECK_EQ_INT(make_entry(&e, origin, r, reqs, 4), 0);
		CHECK_EQ_INT(apply_direct(f, &e), 0);
	}
	for (i = 0; i < 4; i++)
		buf_free(&reqs[i]);
	buf_free(&e);
	return 0;
}

TEST(snapshot_round_trip)
{
	struct member a;
	struct member b;
	struct buf sa = BUF_INIT;
	struct buf sb = BUF_INIT;
	struct walk wa;
	struct walk wb;
	char err[200] = "";

	CHECK_EQ_INT(member_init(&a, 1), 0);
	CHECK_EQ_INT(member_init(&b, 2), 0);
	CHECK(build_state(&a.fsm, 1, 50) == 0);
	CHECK(build_state(&b.fsm, 2, 3) == 0); /* something to replace */
	CHECK(!same_state(&a.fsm, &b.fsm));
	CHECK_EQ_INT(a.n_ans, 200); /* member 1 was the origin */

	CHECK_EQ_INT(snapshot_of(&a.fsm, &sa), 0);
	CHECK_EQ_INT(
	    fsm_decode_snapshot(&b.fsm, sa.data, sa.len, err, sizeof err), 0);
	CHECK(same_state(&a.fsm, &b.fsm));
	CHECK_EQ_INT(snapshot_of(&b.fsm, &sb), 0);
	CHECK_MEM(sb.data, sb.len, sa.data, sa.len);
	CHECK(strcmp(contents(&a.fsm, &wa), contents(&b.fsm, &wb)) == 0);
	CHECK_EQ_INT(dedup_clients(b.fsm.dedup), 4);

	/* Both go on alike: the same entry gives the same state. */
	CHECK(build_state(&a.fsm, 3, 5) == 0);
	CHECK(build_state(&b.fsm, 3, 5) == 0);
	CHECK(same_state(&a.fsm, &b.fsm));

	/* An empty state round-trips too. */
	member_close(&b);
	CHECK_EQ_INT(member_init(&b, 2), 0);
	CHECK_EQ_INT(snapshot_of(&b.fsm, &sb), 0);
	CHECK_EQ_INT(
	    fsm_decode_snapshot(&a.fsm, sb.data, sb.len, err, sizeof err), 0);
	CHECK(same_state(&a.fsm, &b.fsm));
	CHECK_EQ_INT(mvcc_rev(a.fsm.mvcc), 1);

	member_close(&a);
	member_close(&b);
	buf_free(&sa);
	buf_free(&sb);
	return 0;
}

/* Tries to restore bad bytes into f: must fail, say why, change nothing. */
static int expect_refused(struct fsm *f, const struct buf *want,
                          const uint8_t *p, size_t len)
{
	struct buf now = BUF_INIT;
	char err[200] = "";
	struct mvcc *m = f->mvcc;
	uint8_t *q = malloc(len ? len : 1); /* exact size, for ASan */
	int rv;

	if (q == NULL)
		abort();
	if (len)
		memcpy(q, p, len);
	rv = fsm_decode_snapshot(f, q, len, err, sizeof err);
	free(q);
	CHECK(rv != 0);
	CHECK(err[0] != 0);
	CHECK(strncmp(err, "snapshot", 8) == 0);
	CHECK(f->mvcc == m);
	CHECK_EQ_INT(snapshot_of(f, &now), 0);
	CHECK_MEM(now.data, now.len, want->data, want->len);
	buf_free(&now);
	return 0;
}

TEST(corrupt_snapshots_are_refused)
{
	struct member a;
	struct member t;
	struct buf snap = BUF_INIT;
	struct buf target = BUF_INIT;
	struct buf bad = BUF_INIT;
	size_t i;

	CHECK_EQ_INT(member_init(&a, 1), 0);
	CHECK_EQ_INT(member_init(&t, 2), 0);
	CHECK(build_state(&a.fsm, 1, 30) == 0);
	CHECK(build_state(&t.fsm, 1, 4) == 0);
	CHECK_EQ_INT(snapshot_of(&a.fsm, &snap), 0);
	CHECK_EQ_INT(snapshot_of(&t.fsm, &target), 0);

	/* Truncated at every length. */
	for (i = 0; i < snap.len; i++)
		if (expect_refused(&t.fsm, &target, snap.data, i) != 0) {
			printf("# truncated to %zu of %zu bytes\n", i,
			       snap.len);
			return 1;
		}
	/* Every byte flipped, one at a time, two ways. */
	buf_reset(&bad);
	buf_append(&bad, snap.data, snap.len);
	for (i = 0; i < snap.len; i++) {
		unsigned k;
		for (k = 0; k < 2; k++) {
			bad.data[i] ^= k ? 0xff : 0x01;
			if (expect_refused(&t.fsm, &target, bad.data,
			                   bad.len) != 0) {
				printf("# byte %zu of %zu flipped\n", i,
				       snap.len);
				return 1;
			}
			bad.data[i] = snap.data[i];
		}
	}
	/* Trailing bytes, and two snapshots back to back. */
	buf_append(&bad, "x", 1);
	CHECK(expect_refused(&t.fsm, &target, bad.data, bad.len) == 0);
	bad.len = snap.len;
	buf_append(&bad, snap.data, snap.len);
	CHECK(expect_refused(&t.fsm, &target, bad.data, bad.len) == 0);
	/* Not LZ4 at all. */
	CHECK(expect_refused(&t.fsm, &target, (const uint8_t *)"hello", 5) ==
	      0);

	member_close(&a);
	member_close(&t);
	buf_free(&snap);
	buf_free(&target);
	buf_free(&bad);
	return 0;
}

/* LZ4-frames raw bytes the way fsm.c does, checksums included. */
static int compress(const uint8_t *raw, size_t len, struct buf *out)
{
	LZ4F_preferences_t prefs;
	size_t cap;
	size_t n;

	memset(&prefs, 0, sizeof prefs);
	prefs.frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled;
	prefs.frameInfo.blockChecksumFlag = LZ4F_blockChecksumEnabled;
	prefs.frameInfo.contentSize = len;
	cap = LZ4F_compressFrameBound(len, &prefs);
	buf_reset(out);
	if (buf_reserve(out, cap) != 0)
		return -1;
	n = LZ4F_compressFrame(out->data, cap, raw, len, &prefs);
	if (LZ4F_isError(n))
		return -1;
	out->len = n;
	return 0;
}

static int decompress(const struct buf *in, struct buf *out)
{
	LZ4F_dctx *dctx;
	size_t src = in->len;
	size_t dst;
	size_t hint;

	if (LZ4F_isError(LZ4F_createDecompressionContext(&dctx, LZ4F_VERSION)))
		return -1;
	buf_reset(out);
	buf_reserve(out, 1u << 20);
	dst = out->cap;
	hint = LZ4F_decompress(dctx, out->data, &dst, in->data, &src, NULL);
	LZ4F_freeDecompressionContext(dctx);
	if (LZ4F_isError(hint) || hint != 0 || src != in->len)
		return -1;
	out->len = dst;
	return 0;
}

/* Well-framed snapshots whose MessagePack content is wrong. */
TEST(corrupt_snapshot_contents_are_refused)
{
	struct member a;
	struct member t;
	struct buf snap = BUF_INIT;
	struct buf raw = BUF_INIT;
	struct buf bad = BUF_INIT;
	struct buf z = BUF_INIT;
	struct buf target = BUF_INIT;
	struct mp_writer w;
	unsigned iter;
	unsigned taken = 0;
	size_t i;

	CHECK_EQ_INT(member_init(&a, 1), 0);
	CHECK_EQ_INT(member_init(&t, 2), 0);
	CHECK(build_state(&a.fsm, 1, 12) == 0);
	CHECK(build_state(&t.fsm, 1, 2) == 0);
	CHECK_EQ_INT(snapshot_of(&a.fsm, &snap), 0);
	CHECK_EQ_INT(snapshot_of(&t.fsm, &target), 0);
	CHECK_EQ_INT(decompress(&snap, &raw), 0);

	/* Recompressing the plaintext gives a snapshot that restores. */
	CHECK_EQ_INT(compress(raw.data, raw.len, &z), 0);
	{
		struct member u;
		char err[200];
		CHECK_EQ_INT(member_init(&u, 3), 0);
		CHECK_EQ_INT(
		    fsm_decode_snapshot(&u.fsm, z.data, z.len, err, sizeof err),
		    0);
		CHECK(same_state(&u.fsm, &a.fsm));
		member_close(&u);
	}

	/* Every strict prefix of the plaintext, properly framed. */
	for (i = 0; i < raw.len; i++) {
		CHECK_EQ_INT(compress(raw.data, i, &z), 0);
		if (expect_refused(&t.fsm, &target, z.data, z.len) != 0) {
			printf("# plaintext cut at %zu of %zu\n", i, raw.len);
			return 1;
		}
	}
	/* An object after the member table. */
	buf_reset(&bad);
	buf_append(&bad, raw.data, raw.len);
	mp_writer_init(&w, &bad);
	mp_put_nil(&w);
	CHECK_EQ_INT(compress(bad.data, bad.len, &z), 0);
	CHECK(expect_refused(&t.fsm, &target, z.data, z.len) == 0);
	/* Another format number (the second byte: [6, format, ...]). */
	CHECK_EQ_INT(raw.data[0], 0x96);
	CHECK_EQ_INT(raw.data[1], 2);
	buf_reset(&bad);
	buf_append(&bad, raw.data, raw.len);
	bad.data[1] = 3;
	CHECK_EQ_INT(compress(bad.data, bad.len, &z), 0);
	CHECK(expect_refused(&t.fsm, &target, z.data, z.len) == 0);
	/* Format 1 (no auth state, the 6 bytes of an empty one at the end:
	 * [false, 0, nil, [], []]) still restores; format 2 without it does
	 * not, nor format 1 with it. */
	CHECK(raw.len > 6 &&
	      memcmp(raw.data + raw.len - 6, "\x95\xc2\x00\xc0\x90\x90", 6) == 0);
	buf_reset(&bad);
	buf_append(&bad, raw.data, raw.len - 6);
	bad.data[0] = 0x95;
	bad.data[1] = 1;
	CHECK_EQ_INT(compress(bad.data, bad.len, &z), 0);
	{
		struct member u;
		char err[200];
		CHECK_EQ_INT(member_init(&u, 3), 0);
		CHECK_EQ_INT(
		    fsm_decode_snapshot(&u.fsm, z.data, z.len, err, sizeof err),
		    0);
		CHECK(same_state(&u.fsm, &a.fsm));
		member_close(&u);
	}
	bad.data[1] = 2;
	CHECK_EQ_INT(compress(bad.data, bad.len, &z), 0);
	CHECK(expect_refused(&t.fsm, &target, z.data, z.len) == 0);
	buf_reset(&bad);
	buf_append(&bad, raw.data, raw.len);
	bad.data[1] = 1;
	CHECK_EQ_INT(compress(bad.data, bad.len, &z), 0);
	CHECK(expect_refused(&t.fsm, &target, z.data, z.len) == 0);

	/* Random mutations of the plaintext: refused with the state kept, or
	 * taken whole (a mutated value is still a valid store). */
	rng_seed(31337);
	for (iter = 0; iter < 3000; iter++) {
		unsigned k;
		struct member u;
		char err[200] = "";
		int rv;

		buf_reset(&bad);
		buf_append(&bad, raw.data, raw.len);
		for (k = 0; k < 1 + rng_below(3); k++)
			bad.data[rng_below(bad.len)] = (uint8_t)rng();
		CHECK_EQ_INT(compress(bad.data, bad.len, &z), 0);
		CHECK_EQ_INT(member_init(&u, 3), 0);
		CHECK(build_state(&u.fsm, 1, 2) == 0);
		rv =
		    fsm_decode_snapshot(&u.fsm, z.data, z.len, err, sizeof err);
		if (rv == 0) {
			struct buf again = BUF_INIT;
			taken++;
			/* What was taken can be saved again. */
			CHECK_EQ_INT(snapshot_of(&u.fsm, &again), 0);
			buf_free(&again);
		} else {
			struct buf now = BUF_INIT;
			CHECK(err[0] != 0);
			CHECK_EQ_INT(snapshot_of(&u.fsm, &now), 0);
			CHECK_MEM(now.data, now.len, target.data, target.len);
			buf_free(&now);
		}
		member_close(&u);
	}
	printf("# %u of 3000 mutated snapshots were still valid\n", taken);

	member_close(&a);
	member_close(&t);
	buf_free(&snap);
	buf_free(&raw);
	buf_free(&bad);
	buf_free(&z);
	buf_free(&target);
	return 0;
}

/* Malformed entries (no correct leader makes them) are skipped alike by
 * every member, and apply never returns non-zero. */
TEST(malformed_entries_are_skipped)
{
	struct member a;
	struct member b;
	struct buf reqs[3] = {BUF_INIT, BUF_INIT, BUF_INIT};
	struct buf e = BUF_INIT;
	struct buf cut = BUF_INIT;
	unsigned iter;
	size_t i;
	int saved = log_level;

	log_level = -1; /* the skips are logged: keep the output short */
	CHECK_EQ_INT(member_init(&a, 1), 0);
	CHECK_EQ_INT(member_init(&b, 2), 0);
	req_put(&reqs[0], 1, "a", "1", NULL);
	req_put(&reqs[1], 2, "b", "2", NULL);
	req_delete(&reqs[2], 3, "a", NULL, NULL);
	CHECK_EQ_INT(make_entry(&e, 1, 1, reqs, 3), 0);

	/* Cut at every length: the requests before the cut apply, on both
	 * members alike; the origin answers exactly those. */
	for (i = 0; i < e.len; i++) {
		buf_reset(&cut);
		buf_append(&cut, e.data, i);
		CHECK_EQ_INT(apply_direct(&a.fsm, &cut), 0);
		CHECK_EQ_INT(apply_direct(&b.fsm, &cut), 0);
		CHECK(same_state(&a.fsm, &b.fsm));
		CHECK_EQ_INT(a.hook_errors, 0);
	}
	/* Random bytes and mutated entries. */
	rng_seed(555);
	for (iter = 0; iter < 3000; iter++) {
		buf_reset(&cut);
		buf_append(&cut, e.data, e.len);
		for (i = 0; i < 1 + rng_below(4); i++)
			cut.data[rng_below(cut.len)] = (uint8_t)rng();
		cut.len = rng_below(2) ? cut.len : rng_below(cut.len + 1);
		CHECK_EQ_INT(apply_direct(&a.fsm, &cut), 0);
		CHECK_EQ_INT(apply_direct(&b.fsm, &cut), 0);
		CHECK(same_state(&a.fsm, &b.fsm));
		CHECK_EQ_INT(a.hook_errors, 0);
	}
	log_level = saved;
	CHECK(a.n_ans > 0);
	for (i = 0; i < 3; i++)
		buf_free(&reqs[i]);
	buf_free(&e);
	buf_free(&cut);
	member_close(&a);
	member_close(&b);
	return 0;
}

int main(void)
{
	log_level = LOG_WARN; /* restores log at info level */
	static const struct test_case tests[] = {
	    T(apply_replicates_and_answers),
	    T(txn_branches_and_errors),
	    T(duplicates_apply_once),
	    T(leader_changes_converge),
	    T(minority_leader_writes_are_lost_not_applied),
	    T(catch_up_through_snapshot_install),
	    T(snapshot_round_trip),
	    T(corrupt_snapshots_are_refused),
	    T(corrupt_snapshot_contents_are_refused),
	    T(malformed_entries_are_skipped),
	};

	/* Not RUN_TESTS(): -Wpedantic refuses its ({ }). */
	return test_run(tests, sizeof tests / sizeof tests[0]);
}
