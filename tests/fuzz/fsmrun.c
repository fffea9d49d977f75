/* fsmrun: requests run against an in-memory state machine (see fuzz.h). */
#include <raft.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "dedup.h"
#include "exec.h"
#include "fsm.h"
#include "fuzz.h"
#include "lease.h"
#include "mvcc.h"
#include "result.h"

#define MEMBER_ID 1

static struct mp_writer *answer_begin(void *arg, uint64_t batch, uint32_t index)
{
	struct fuzz_fsm *s = arg;

	(void)batch;
	(void)index;
	buf_reset(&s->answer);
	mp_writer_init(&s->w, &s->answer);
	return &s->w;
}

/* Every answer is one the client takes (an empty one is no answer: a
 * PUBLISH has none). */
static void check_answer(const struct buf *answer)
{
	struct cairn_result *res;
	struct result_env env;
	char err[256] = "";
	uint8_t *p;

	if (answer->len == 0)
		return;
	p = fuzz_dup(answer->data, answer->len);
	FUZZ_CHECK(result_decode(p, answer->len, &env, &res, err, sizeof err) ==
	           0);
	FUZZ_CHECK(env.has_id);
	cairn_result_free(res);
	free(p);
}

static void answer_end(void *arg)
{
	struct fuzz_fsm *s = arg;

	FUZZ_CHECK(s->w.err == 0);
	check_answer(&s->answer);
	s->answered = true;
}

void fuzz_fsm_init(struct fuzz_fsm *s)
{
	struct fsm_hooks hooks = {s, answer_begin, answer_end};
	struct buf empty = BUF_INIT;

	s->fsm = malloc(sizeof *s->fsm);
	if (s->fsm == NULL || fsm_init(s->fsm, MEMBER_ID, &hooks) != 0)
		abort();
	s->answer = empty;
	s->answered = false;
	s->batch = 0;
}

void fuzz_fsm_close(struct fuzz_fsm *s)
{
	fsm_close(s->fsm);
	free(s->fsm);
	buf_free(&s->answer);
}

void fuzz_fsm_apply(struct fuzz_fsm *s, const uint8_t *entry, size_t len)
{
	struct raft_buffer rb;
	void *result = NULL;

	/* An exact-size copy, so a read past the entry trips ASan. */
	rb.base = fuzz_dup(entry, len);
	rb.len = len;
	FUZZ_CHECK(s->fsm->raft_fsm.apply(&s->fsm->raft_fsm, &rb, &result) ==
	           0);
	FUZZ_CHECK(result == NULL);
	free(rb.base);
}

/* Whether p is one whole msgpack object, as a log entry holds requests. */
static bool one_object(const uint8_t *p, size_t len)
{
	struct mp_reader r;

	mp_reader_init(&r, p, len);
	return mp_skip(&r) && mp_left(&r) == 0;
}

bool fuzz_fsm_run(struct fuzz_fsm *s, const uint8_t *p, size_t len)
{
	struct exec_hdr h = fsm_header(s->fsm);
	struct fsm_entry e;
	struct proto_req req;
	struct buf entry = BUF_INIT;
	char err[200];
	int rv;

	s->answered = false;
	rv = proto_decode_req(p, len, &req, err, sizeof err);
	if (rv == 0 && req.op == PROTO_OP_RANGE) {
		buf_reset(&s->answer);
		mp_writer_init(&s->w, &s->answer);
		exec_read(s->fsm->mvcc, &req, &h, &s->w);
		answer_end(s);
	}
	proto_req_free(&req);
	if (s->answered || !one_object(p, len))
		return s->answered;
	/* Proposed; or, for what the server would not propose, as a hostile
	 * leader could put it in the log. */
	s->batch++;
	fsm_entry_begin(&e, &entry, MEMBER_ID, s->batch);
	fsm_entry_add(&e, p, len);
	if (fsm_entry_end(&e) != 0)
		abort();
	fuzz_fsm_apply(s, entry.data, entry.len);
	buf_free(&entry);
	FUZZ_CHECK(s->answered);
	return true;
}

bool fuzz_fsm_run_stream(struct fuzz_fsm *s, const struct buf *stream)
{
	struct fuzz_in in = {stream->data, stream->len};
	struct buf req = BUF_INIT;
	bool answered;

	fuzz_build_req(&in, &req);
	answered = fuzz_fsm_run(s, req.data, req.len);
	buf_free(&req);
	return answered;
}

static void put(struct fuzz_fsm *s, const char *key, const char *value,
                uint64_t lease)
{
	struct buf b = BUF_INIT;

	reqseed_op(&b, PROTO_OP_PUT, 1, lease != 0 ? 3 : 2);
	reqseed_bin(&b, REQ_F_K, key, strlen(key));
	reqseed_bin(&b, REQ_F_V, value, strlen(value));
	if (lease != 0)
		reqseed_uint(&b, REQ_F_L, lease);
	fuzz_fsm_run_stream(s, &b);
	buf_free(&b);
}

static void run_example(struct fuzz_fsm *s, unsigned op)
{
	struct buf b = BUF_INIT;

	reqseed_example(&b, op);
	fuzz_fsm_run_stream(s, &b);
	buf_free(&b);
}

void fuzz_fsm_populate(struct fuzz_fsm *s)
{
	struct buf b = BUF_INIT;

	put(s, "a", "1", 0);
	put(s, "b", "2", 0);
	put(s, "c", "3", 0);
	run_example(s, PROTO_OP_PUT);     /* a again, client 7 */
	run_example(s, PROTO_OP_COMPACT); /* at 3, client 7 */
	run_example(s, PROTO_OP_TXN);
	run_example(s, PROTO_OP_PUBLISH);
	run_example(s, PROTO_OP_LEASE_GRANT); /* lease 0x10 */
	put(s, "d", "leased", 0x10);
	put(s, "e", "leased", 0x10);
	reqseed_op(&b, PROTO_OP_LEASE_GRANT, 1, 1);
	reqseed_uint(&b, REQ_F_TTL, 5);
	fuzz_fsm_run_stream(s, &b);
	buf_reset(&b);
	reqseed_op(&b, PROTO_OP_DELETE, 1, 1);
	reqseed_str(&b, REQ_F_K, "c");
	fuzz_fsm_run_stream(s, &b);
	buf_free(&b);
}

/* ---- invariants of a state
 * --------------------------------------------------- */

struct walk {
	int64_t last;
	uint64_t n;
	int64_t from;
	int64_t to;
};

static bool change_cb(const struct mvcc_change *ch, void *arg)
{
	struct walk *w = arg;

	FUZZ_CHECK(ch->rev >= w->last && ch->rev >= w->from &&
	           ch->rev <= w->to);
	w->last = ch->rev;
	w->n++;
	return true;
}

static void check_keyspace(struct mvcc *m)
{
	static const uint8_t zero[1] = {0};
	struct mvcc_range_opts opts = {0, 0, true};
	struct mvcc_range_result res;
	struct walk w = {0, 0, mvcc_compact_rev(m) + 1, mvcc_rev(m)};

	FUZZ_CHECK(mvcc_range(m, zero, 1, zero, 1, &opts, NULL, NULL, &res) ==
	           0);
	FUZZ_CHECK(res.count >= 0 && (uint64_t)res.count == mvcc_key_count(m));
	FUZZ_CHECK(mvcc_changes(m, w.from, w.to, zero, 1, zero, 1, change_cb,
	                        &w) == 0);
}

static void check_restore(struct fsm *f)
{
	struct fsm g;
	char err[200] = "";
	uint8_t *snap;
	uint8_t *again;
	size_t len;
	size_t again_len;
	int rv;

	FUZZ_CHECK(fsm_encode_snapshot(f, &snap, &len) == 0);
	FUZZ_CHECK(fsm_init(&g, 2, NULL) == 0);
	rv = fsm_decode_snapshot(&g, snap, len, err, sizeof err);
	if (rv != 0)
		fprintf(stderr, "restore refused its own snapshot: %s\n", err);
	FUZZ_CHECK(rv == 0);
	FUZZ_CHECK(mvcc_rev(g.mvcc) == mvcc_rev(f->mvcc));
	FUZZ_CHECK(mvcc_compact_rev(g.mvcc) == mvcc_compact_rev(f->mvcc));
	FUZZ_CHECK(mvcc_key_count(g.mvcc) == mvcc_key_count(f->mvcc));
	FUZZ_CHECK(mvcc_size_bytes(g.mvcc) == mvcc_size_bytes(f->mvcc));
	FUZZ_CHECK(dedup_clients(g.dedup) == dedup_clients(f->dedup));
	FUZZ_CHECK(leases_count(g.leases) == leases_count(f->leases));
	FUZZ_CHECK(g.n_members == f->n_members);
	FUZZ_CHECK(fsm_encode_snapshot(&g, &again, &again_len) == 0);
	FUZZ_CHECK(again_len == len && memcmp(again, snap, len) == 0);
	raft_free(snap);
	raft_free(again);
	fsm_close(&g);
}

void fuzz_fsm_check(struct fsm *f)
{
	check_keyspace(f->mvcc);
	check_restore(f);
}
