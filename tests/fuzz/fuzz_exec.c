/*
 * fuzz_exec: requests decoded and then executed against a fresh in-memory
 * state machine, so that a request which decodes but is hostile can neither
 * crash the executor (store/exec.c) nor leave the state inconsistent.
 *
 * Input: a mode byte. Even: up to MAX_REQUESTS requests built from the rest
 * by reqgen.c, each decoded (with fuzz_decode_req's checks) and run as the
 * store runs it (fsmrun.c: RANGE through exec_read, the rest as a log entry
 * through the state machine's apply and exec_write). Odd: the rest is one
 * log entry, raw, for apply's own decoding.
 *
 * Checks: every answer is one the client decodes (fsmrun.c), for the id and
 * op asked; a RANGE answer holds exactly the keys of etcd's range rules, in
 * order, as many as its limit lets through; a WATCH's walk of the history
 * (as store/watch.c pumps it) gives its range's changes in order or the
 * right error; at the end, fuzz_fsm_check(): the state restores from its
 * own snapshot to the same state, and its key count and history are sound.
 */
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "fsm.h"
#include "fuzz.h"
#include "mvcc.h"
#include "result.h"

#define MAX_REQUESTS 24

/* etcd's range rules (mvcc.h), written out plainly. */
static int cmp_keys(const uint8_t *a, size_t alen, const uint8_t *b,
                    size_t blen)
{
	size_t n = alen < blen ? alen : blen;
	int c = n > 0 ? memcmp(a, b, n) : 0;

	return c != 0 ? c : (alen > blen) - (alen < blen);
}

static bool is_zero(const uint8_t *p, size_t len)
{
	return len == 1 && p[0] == 0;
}

static bool in_range(const struct proto_req *req, const uint8_t *key,
                     size_t len)
{
	if (req->end_len == 0)
		return cmp_keys(key, len, req->key, req->key_len) == 0;
	if (is_zero(req->end, req->end_len))
		return is_zero(req->key, req->key_len) ||
		       cmp_keys(key, len, req->key, req->key_len) >= 0;
	return cmp_keys(key, len, req->key, req->key_len) >= 0 &&
	       cmp_keys(key, len, req->end, req->end_len) < 0;
}

/* A RANGE answer holds the keys of the range, in order, as many as the
 * limit lets through. */
static void check_range(const struct proto_req *req,
                        const struct cairn_result *res)
{
	size_t want;
	size_t i;

	if (res->err != 0)
		return;
	FUZZ_CHECK(res->count >= 0);
	FUZZ_CHECK(res->more == (req->limit > 0 && res->count > req->limit));
	want = req->count_only                             ? 0
	       : req->limit > 0 && res->count > req->limit ? (size_t)req->limit
	                                                   : (size_t)res->count;
	FUZZ_CHECK(res->n_kvs == want);
	for (i = 0; i < res->n_kvs; i++) {
		const struct cairn_kv *kv = &res->kvs[i];
		FUZZ_CHECK(in_range(req, kv->key, kv->key_len));
		FUZZ_CHECK(i == 0 || cmp_keys(res->kvs[i - 1].key,
		                              res->kvs[i - 1].key_len, kv->key,
		                              kv->key_len) < 0);
		FUZZ_CHECK(req->keys_only == (kv->value == NULL));
		FUZZ_CHECK(kv->create_revision <= kv->mod_revision &&
		           kv->version >= 1);
	}
}

/* The answer is the client's to decode, for the id and op asked. */
static void check_answer(const struct fuzz_fsm *s, const struct proto_req *req,
                         int rv)
{
	struct cairn_result *res;
	struct result_env env;
	char err[256];

	if (s->answer.len == 0) { /* PUBLISH is not answered */
		FUZZ_CHECK(rv == 0 && req->op == PROTO_OP_PUBLISH);
		return;
	}
	FUZZ_CHECK(result_decode(s->answer.data, s->answer.len, &env, &res, err,
	                         sizeof err) == 0);
	FUZZ_CHECK(env.id == req->id);
	FUZZ_CHECK(rv != 0 || env.op == req->op);
	if (rv == 0 && req->op == PROTO_OP_RANGE)
		check_range(req, res);
	cairn_result_free(res);
}

struct watch_walk {
	const struct proto_req *req;
	int64_t from;
	int64_t to;
	int64_t rev;
	int64_t sub;
};

static bool watch_cb(const struct mvcc_change *ch, void *arg)
{
	struct watch_walk *w = arg;

	FUZZ_CHECK(ch->rev >= w->from && ch->rev <= w->to);
	FUZZ_CHECK(ch->rev > w->rev || (ch->rev == w->rev && ch->sub > w->sub));
	FUZZ_CHECK(in_range(w->req, ch->kv.key, ch->kv.key_len));
	FUZZ_CHECK(ch->kv.mod_rev == ch->rev);
	w->rev = ch->rev;
	w->sub = ch->sub;
	return true;
}

/* What a WATCH asks of the history (store/watch.c's pump): the changes of
 * its range from its revision on, each once, in order. */
static void check_watch(struct mvcc *m, const struct proto_req *req)
{
	int64_t cur = mvcc_rev(m);
	struct watch_walk w = {
	    req, req->revision != 0 ? req->revision : cur + 1, cur, 0, -1};
	int rv;

	rv = mvcc_changes(m, w.from, w.to, req->key, req->key_len, req->end,
	                  req->end_len, watch_cb, &w);
	if (w.from <= mvcc_compact_rev(m))
		FUZZ_CHECK(rv == CAIRN_ECOMPACTED);
	else if (w.from > cur + 1)
		FUZZ_CHECK(rv == CAIRN_EFUTUREREV);
	else
		FUZZ_CHECK(rv == 0);
}

static void run_requests(struct fuzz_fsm *s, struct fuzz_in *in)
{
	struct buf b = BUF_INIT;
	struct proto_req req;
	uint8_t *p;
	unsigned i;
	int rv;

	for (i = 0; i < MAX_REQUESTS && in->n > 0; i++) {
		buf_reset(&b);
		fuzz_build_req(in, &b);
		p = fuzz_dup(b.data, b.len);
		rv = fuzz_decode_req(p, b.len, &req);
		if (fuzz_fsm_run(s, p, b.len))
			check_answer(s, &req, rv);
		if (rv == 0 && req.op == PROTO_OP_WATCH)
			check_watch(s->fsm->mvcc, &req);
		proto_req_free(&req);
		free(p);
	}
	buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	struct fuzz_fsm s;

	fuzz_fsm_init(&s);
	if (fuzz_u8(&in) & 1)
		fuzz_fsm_apply(&s, in.p, in.n);
	else
		run_requests(&s, &in);
	fuzz_fsm_check(s.fsm);
	fuzz_fsm_close(&s);
	return 0;
}

void fuzz_seeds(void)
{
	static const unsigned ops[] = {
	    PROTO_OP_PUT,         PROTO_OP_RANGE,   PROTO_OP_TXN,
	    PROTO_OP_LEASE_GRANT, PROTO_OP_PUT,     PROTO_OP_DELETE,
	    PROTO_OP_COMPACT,     PROTO_OP_PUBLISH, PROTO_OP_LEASE_REVOKE,
	    PROTO_OP_RANGE,
	};
	struct buf s = BUF_INIT;
	struct buf entry = BUF_INIT;
	struct buf req = BUF_INIT;
	struct fsm_entry e;
	struct fuzz_in in;
	size_t i;
	unsigned op;

	/* Each op on its own, then a session of several. */
	for (op = 0; op < PROTO_OP_MAX; op++) {
		buf_reset(&s);
		reqseed_example(&s, op);
		fuzz_emit_mode(0, s.data, s.len);
	}
	buf_reset(&s);
	for (i = 0; i < sizeof ops / sizeof ops[0]; i++)
		reqseed_example(&s, ops[i]);
	fuzz_emit_mode(0, s.data, s.len);

	/* The same session as one log entry. */
	fsm_entry_begin(&e, &entry, 1, 1);
	in.p = s.data;
	in.n = s.len;
	while (in.n > 0) {
		buf_reset(&req);
		fuzz_build_req(&in, &req);
		fsm_entry_add(&e, req.data, req.len);
	}
	if (fsm_entry_end(&e) != 0)
		abort();
	fuzz_emit_mode(1, entry.data, entry.len);
	buf_free(&s);
	buf_free(&entry);
	buf_free(&req);
}
