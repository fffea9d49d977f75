/*
 * libclient: the C client library against a real running cluster.
 *
 *   libclient HOST:PORT,HOST:PORT,HOST:PORT
 *
 * Run by tests/integration/libclient.sh, which starts three members. Covers
 * the sync calls (put, get, delete, ranges with prefix, limit, revision,
 * keys_only, count_only, transactions both ways, status and members), routing
 * (a follower or a dead endpoint listed first), the async API (1000 pipelined
 * puts on a uv loop, then every one read back), and the async contract on
 * close: every pending callback fires exactly once with CAIRN_ECANCELED, also
 * when the close comes from inside a callback. Watches: a prefix from a
 * revision on (puts, deletes, a transaction's events together, prev_kv),
 * history replayed then live, the no_put/no_delete filters, cancel (also
 * from the watch's own callback) and close ending each watch exactly once,
 * progress requests, a revision split over frames ('more'), compaction and
 * ECOMPACTED with the compact revision, an unreachable endpoint; and, against
 * a scripted fake member, a watch resumed on a new connection in the middle
 * of a split revision without a gap or a duplicate. Leases: grant (ids the
 * store picks and ids the caller gives, ELEASEEXISTS), keys attached by put,
 * time-to-live with the keys, keep-alive (sync, async, from a follower
 * listed first), list on any member, revoke deleting the keys in one
 * revision, ENOLEASE afterwards, a 2 s lease expiring by itself, and the
 * store's duplicate answer to a retried grant. (That a watch survives
 * the loss of a real member is in watch.sh, which can kill one.) Each test
 * that opens a loop closes it and checks that no handle was left behind. Keys
 * live under a prefix unique to the run.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "cairn.h"
#include "frame.h"
#include "proto.h"
#include "test.h"

static const char *endpoints;
static char prefix[64];

/* "<prefix>/<name>" in a static buffer per slot. */
static const char *key(const char *name)
{
	static char bufs[8][256];
	static unsigned slot;
	char *b = bufs[slot++ % 8];

	snprintf(b, 256, "%s/%s", prefix, name);
	return b;
}

static cairn_client *open_sync(const char *eps, bool no_redirect)
{
	struct cairn_options o = {.dial_timeout_ms = 1000,
	                         .request_timeout_ms = 10000,
	                         .no_redirect = no_redirect};
	cairn_client *c = NULL;
	char err[256];

	if (cairn_open(&c, eps, &o, err, sizeof err) != 0)
		printf("# cairn_open(%s): %s\n", eps, err);
	return c;
}

static int put(cairn_client *c, const char *k, const char *v)
{
	struct cairn_result *r = NULL;
	int rv = cairn_put(c, k, strlen(k), v, strlen(v), &r);

	if (rv != 0)
		printf("# put %s: %s\n", k, cairn_errmsg(c));
	cairn_result_free(r);
	return rv;
}

static int do_op(cairn_client *c, const struct cairn_op *op,
                 struct cairn_result **r)
{
	int rv = cairn_do(c, op, r);

	if (rv != 0)
		printf("# op %d: %s: %s\n", op->type, cairn_strerror(rv),
		       cairn_errmsg(c));
	return rv;
}

#define CHECK_KV(kv, k, v)                                                     \
	do {                                                                   \
		CHECK_MEM((kv)->key, (kv)->key_len, (k), strlen(k));           \
		CHECK((kv)->value != NULL);                                    \
		CHECK_MEM((kv)->value, (kv)->value_len, (v), strlen(v));       \
	} while (0)

/* ---- without a cluster --------------------------------------------------- */

TEST(open_rejects_bad_endpoints)
{
	static const char *const bad[] = {
	    "",         "nohost",  "1.2.3.4:0",    "1.2.3.4:99999",
	    "1.2.3.4:", ":80",     "a.b.c.d:80",   "127.0.0.1:80,,127.0.0.1:81",
	    "::1:80",   "[::1:80", "127.0.0.1:8x",
	};
	cairn_client *c = (cairn_client *)&c;
	char err[256];
	size_t i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err[0] = '\0';
		CHECK_EQ_INT(cairn_open(&c, bad[i], NULL, err, sizeof err),
		             CAIRN_EINVAL);
		CHECK(c == NULL);
		CHECK(err[0] != '\0');
	}
	CHECK_EQ_INT(cairn_open(&c, NULL, NULL, NULL, 0), CAIRN_EINVAL);
	CHECK_EQ_INT(cairn_open(&c,
	                        "localhost:2379, [::1]:2379 ,http://10.0.0.1:1",
	                        NULL, err, sizeof err),
	             0);
	cairn_close(c);
	return 0;
}

TEST(prefix_end)
{
	uint8_t end[8];

	CHECK_EQ_INT(cairn_prefix_end("a", 1, end), 1);
	CHECK_MEM(end, 1, "b", 1);
	CHECK_EQ_INT(cairn_prefix_end("a\xff\xff", 3, end), 1);
	CHECK_MEM(end, 1, "b", 1);
	CHECK_EQ_INT(cairn_prefix_end("ab", 2, end), 2);
	CHECK_MEM(end, 2, "ac", 2);
	CHECK_EQ_INT(cairn_prefix_end("\xff\xff", 2, end), 1);
	CHECK_MEM(end, 1, "\0", 1);
	CHECK_EQ_INT(cairn_prefix_end("", 0, end), 1);
	CHECK_MEM(end, 1, "\0", 1);
	return 0;
}

TEST(unreachable_endpoint_times_out_with_a_reason)
{
	struct cairn_options o = {.dial_timeout_ms = 200,
	                         .request_timeout_ms = 600};
	struct cairn_result *r = (struct cairn_result *)&o;
	cairn_client *c = NULL;
	uint64_t t0 = uv_hrtime();
	int rv;

	CHECK_EQ_INT(cairn_open(&c, "127.0.0.1:1", &o, NULL, 0), 0);
	rv = cairn_get(c, "k", 1, &r);
	CHECK(rv == CAIRN_ECONN || rv == CAIRN_ETIMEDOUT);
	CHECK(r == NULL);
	CHECK(strstr(cairn_errmsg(c), "127.0.0.1:1") != NULL);
	CHECK((uv_hrtime() - t0) / 1000000 < 3000);
	cairn_close(c);
	return 0;
}

static void on_never(cairn_client *c, cairn_watch *w,
                     const struct cairn_watch_update *u, void *arg)
{
	(void)c;
	(void)w;
	(void)u;
	(void)arg;
	abort();
}

TEST(misuse_is_refused)
{
	struct cairn_watch_opts wo = {.key = "k", .key_len = 1};
	cairn_watch *w = (cairn_watch *)&wo;
	struct cairn_op op = {.type = CAIRN_OP_RANGE, .key = "k", .key_len = 1};
	struct cairn_result *r;
	cairn_client *c = NULL;
	uv_loop_t loop;

	CHECK_EQ_INT(cairn_open(&c, "127.0.0.1:1", NULL, NULL, 0), 0);
	CHECK_EQ_INT(cairn_submit(c, &op, NULL, NULL), CAIRN_EINVAL);
	op.key_len = 0;
	CHECK_EQ_INT(cairn_do(c, &op, &r), CAIRN_EINVAL);
	CHECK(r == NULL);
	CHECK(strstr(cairn_errmsg(c), "empty") != NULL);
	op.key_len = 1;
	op.type = 99;
	CHECK_EQ_INT(cairn_do(c, &op, &r), CAIRN_EINVAL);
	op.type = CAIRN_OP_TXN;
	CHECK_EQ_INT(cairn_do(c, &op, &r), CAIRN_EINVAL);
	CHECK_EQ_INT(cairn_watch_start(c, &wo, on_never, NULL, &w),
	             CAIRN_EINVAL);
	CHECK(w == NULL);
	CHECK(strstr(cairn_errmsg(c), "cairn_open_async") != NULL);
	CHECK_EQ_INT(cairn_watch_progress(c), CAIRN_EINVAL);
	cairn_close(c);
	CHECK_EQ_INT(uv_loop_init(&loop), 0);
	CHECK_EQ_INT(cairn_open_async(&c, &loop, "127.0.0.1:1", NULL, NULL, 0),
	             0);
	CHECK_EQ_INT(cairn_do(c, &op, &r), CAIRN_EINVAL);
	cairn_close(c);
	uv_run(&loop, UV_RUN_DEFAULT);
	CHECK_EQ_INT(uv_loop_close(&loop), 0);
	return 0;
}

/* ---- sync ---------------------------------------------------------------- */

TEST(sync_put_get_delete)
{
	cairn_client *c = open_sync(endpoints, false);
	struct cairn_op op = {.type = CAIRN_OP_PUT};
	struct cairn_result *r = NULL;
	const char *k = key("single");

	CHECK(c != NULL);
	CHECK_EQ_INT(cairn_put(c, k, strlen(k), "v1", 2, &r), 0);
	CHECK(r->header.revision > 1 && r->header.member_id != 0);
	CHECK_EQ_INT(r->type, CAIRN_OP_PUT);
	cairn_result_free(r);
	CHECK_EQ_INT(cairn_get(c, k, strlen(k), &r), 0);
	CHECK_EQ_INT(r->n_kvs, 1);
	CHECK_KV(&r->kvs[0], k, "v1");
	CHECK_EQ_INT(r->kvs[0].version, 1);
	CHECK_EQ_INT(r->kvs[0].create_revision, r->kvs[0].mod_revision);
	cairn_result_free(r);

	op.key = k;
	op.key_len = strlen(k);
	op.value = "v2";
	op.value_len = 2;
	op.prev_kv = true;
	CHECK_EQ_INT(do_op(c, &op, &r), 0);
	CHECK_EQ_INT(r->n_prev_kvs, 1);
	CHECK_KV(&r->prev_kvs[0], k, "v1");
	cairn_result_free(r);
	CHECK_EQ_INT(cairn_get(c, k, strlen(k), &r), 0);
	CHECK_EQ_INT(r->kvs[0].version, 2);
	CHECK(r->kvs[0].mod_revision > r->kvs[0].create_revision);
	cairn_result_free(r);

	CHECK_EQ_INT(cairn_delete(c, k, strlen(k), &r), 0);
	CHECK_EQ_INT(r->deleted, 1);
	cairn_result_free(r);
	CHECK_EQ_INT(cairn_get(c, k, strlen(k), &r), 0);
	CHECK_EQ_INT(r->n_kvs, 0);
	CHECK_EQ_INT(r->count, 0);
	cairn_result_free(r);
	CHECK_EQ_INT(cairn_delete(c, k, strlen(k), &r), 0);
	CHECK_EQ_INT(r->deleted, 0);
	cairn_result_free(r);
	cairn_close(c);
	return 0;
}

static int range(cairn_client *c, struct cairn_op *op, struct cairn_result **r)
{
	op->type = CAIRN_OP_RANGE;
	return do_op(c, op, r);
}

TEST(sync_ranges)
{
	static const char *const names[] = {"r/a", "r/b", "r/c", "r/d", "r/e"};
	cairn_client *c = open_sync(endpoints, false);
	struct cairn_op op = {.type = CAIRN_OP_RANGE};
	struct cairn_result *r = NULL;
	const char *p = key("r/");
	uint8_t end[256];
	int64_t rev_a;
	size_t i;

	CHECK(c != NULL);
	for (i = 0; i < 5; i++)
		CHECK_EQ_INT(put(c, key(names[i]), names[i]), 0);
	op.key = p;
	op.key_len = strlen(p);
	op.end = end;
	op.end_len = cairn_prefix_end(p, strlen(p), end);
	CHECK_EQ_INT(range(c, &op, &r), 0);
	CHECK_EQ_INT(r->n_kvs, 5);
	CHECK_EQ_INT(r->count, 5);
	CHECK(!r->more);
	for (i = 0; i < 5; i++)
		CHECK_KV(&r->kvs[i], key(names[i]), names[i]);
	rev_a = r->kvs[0].mod_revision;
	cairn_result_free(r);

	op.limit = 2;
	CHECK_EQ_INT(range(c, &op, &r), 0);
	CHECK_EQ_INT(r->n_kvs, 2);
	CHECK(r->more);
	CHECK_EQ_INT(r->count, 5);
	CHECK_KV(&r->kvs[1], key("r/b"), "r/b");
	cairn_result_free(r);

	op.limit = 0;
	op.keys_only = true;
	CHECK_EQ_INT(range(c, &op, &r), 0);
	CHECK_EQ_INT(r->n_kvs, 5);
	CHECK(r->kvs[3].value == NULL);
	CHECK_MEM(r->kvs[3].key, r->kvs[3].key_len, key("r/d"),
	          strlen(key("r/d")));
	cairn_result_free(r);

	op.keys_only = false;
	op.count_only = true;
	CHECK_EQ_INT(range(c, &op, &r), 0);
	CHECK_EQ_INT(r->n_kvs, 0);
	CHECK_EQ_INT(r->count, 5);
	cairn_result_free(r);

	op.count_only = false;
	op.key = key("r/b");
	op.key_len = strlen(op.key);
	op.end = key("r/d");
	op.end_len = strlen(op.end);
	CHECK_EQ_INT(range(c, &op, &r), 0);
	CHECK_EQ_INT(r->n_kvs, 2);
	CHECK_KV(&r->kvs[0], key("r/b"), "r/b");
	CHECK_KV(&r->kvs[1], key("r/c"), "r/c");
	cairn_result_free(r);

	/* The past: r/a rewritten, then read at its first revision. */
	CHECK_EQ_INT(put(c, key("r/a"), "new"), 0);
	op.key = key("r/a");
	op.key_len = strlen(op.key);
	op.end = NULL;
	op.end_len = 0;
	op.revision = rev_a;
	CHECK_EQ_INT(range(c, &op, &r), 0);
	CHECK_EQ_INT(r->n_kvs, 1);
	CHECK_KV(&r->kvs[0], key("r/a"), "r/a");
	cairn_result_free(r);
	op.revision = 0;
	op.serializable = true;
	CHECK_EQ_INT(range(c, &op, &r), 0);
	CHECK_EQ_INT(r->n_kvs, 1); /* the member answering may lag: any value */
	cairn_result_free(r);

	op.serializable = false;
	op.revision = INT64_MAX / 2;
	r = (struct cairn_result *)&op;
	CHECK_EQ_INT(cairn_do(c, &op, &r), CAIRN_EFUTUREREV);
	CHECK(r == NULL);
	CHECK(cairn_errmsg(c)[0] != '\0');
	cairn_close(c);
	return 0;
}

static int txn(cairn_client *c, const char *expect, bool *succeeded,
               struct cairn_result **r)
{
	const char *k = key("txn");
	struct cairn_compare cmp = {.key = k,
	                            .key_len = strlen(k),
	                            .target = CAIRN_CMP_VALUE,
	                            .result = CAIRN_CMP_EQUAL,
	                            .value = expect,
	                            .value_len = strlen(expect)};
	struct cairn_op succ[2] = {
	    {.type = CAIRN_OP_PUT,
	     .key = k,
	     .key_len = strlen(k),
	     .value = "2",
	     .value_len = 1},
	    {.type = CAIRN_OP_RANGE, .key = k, .key_len = strlen(k)},
	};
	struct cairn_op fail = {.type = CAIRN_OP_PUT,
	                        .key = key("txn-failed"),
	                        .key_len = strlen(key("txn-failed")),
	                        .value = "yes",
	                        .value_len = 3};
	struct cairn_txn t = {&cmp, 1, succ, 2, &fail, 1};
	struct cairn_op op = {.type = CAIRN_OP_TXN, .txn = &t};
	int rv = do_op(c, &op, r);

	if (rv == 0)
		*succeeded = (*r)->succeeded;
	return rv;
}

TEST(sync_txn_both_branches)
{
	cairn_client *c = open_sync(endpoints, false);
	struct cairn_result *r = NULL;
	bool ok;

	CHECK(c != NULL);
	CHECK_EQ_INT(put(c, key("txn"), "1"), 0);
	CHECK_EQ_INT(txn(c, "1", &ok, &r), 0);
	CHECK(ok);
	CHECK_EQ_INT(r->type, CAIRN_OP_TXN);
	CHECK_EQ_INT(r->n_responses, 2);
	CHECK_EQ_INT(r->responses[0].type, CAIRN_OP_PUT);
	CHECK_EQ_INT(r->responses[1].type, CAIRN_OP_RANGE);
	CHECK_EQ_INT(r->responses[1].n_kvs, 1);
	CHECK_KV(&r->responses[1].kvs[0], key("txn"),
	         "2"); /* sees its own put */
	cairn_result_free(r);

	CHECK_EQ_INT(txn(c, "1", &ok, &r), 0); /* the value is 2 now */
	CHECK(!ok);
	CHECK_EQ_INT(r->n_responses, 1);
	CHECK_EQ_INT(r->responses[0].type, CAIRN_OP_PUT);
	cairn_result_free(r);
	CHECK_EQ_INT(
	    cairn_get(c, key("txn-failed"), strlen(key("txn-failed")), &r), 0);
	CHECK_EQ_INT(r->n_kvs, 1);
	CHECK_KV(&r->kvs[0], key("txn-failed"), "yes");
	cairn_result_free(r);
	cairn_close(c);
	return 0;
}

TEST(sync_txn_limits_are_checked)
{
	static struct cairn_op ops[PROTO_MAX_TXN_OPS + 1];
	cairn_client *c = open_sync(endpoints, false);
	struct cairn_txn t = {NULL, 0, ops, PROTO_MAX_TXN_OPS + 1, NULL, 0};
	struct cairn_op op = {.type = CAIRN_OP_TXN, .txn = &t};
	struct cairn_result *r;
	size_t i;

	CHECK(c != NULL);
	for (i = 0; i <= PROTO_MAX_TXN_OPS; i++) {
		ops[i].type = CAIRN_OP_RANGE;
		ops[i].key = "k";
		ops[i].key_len = 1;
	}
	CHECK_EQ_INT(cairn_do(c, &op, &r), CAIRN_ETOOMANYOPS);
	t.n_success = 1;
	ops[0].type = CAIRN_OP_TXN;
	CHECK_EQ_INT(cairn_do(c, &op, &r), CAIRN_EINVAL);
	cairn_close(c);
	return 0;
}

/* STATUS with no_redirect on each endpoint: distinct members that agree on
 * one leader, which MEMBERS also names. */
static int statuses(char eps[][64], int n, uint64_t *ids, uint64_t *leader)
{
	struct cairn_op op = {.type = CAIRN_OP_STATUS};
	struct cairn_result *r;
	int i;

	*leader = 0;
	for (i = 0; i < n; i++) {
		cairn_client *c = open_sync(eps[i], true);
		CHECK(c != NULL);
		CHECK_EQ_INT(do_op(c, &op, &r), 0);
		ids[i] = r->status.member_id;
		CHECK(ids[i] != 0 && r->header.member_id == ids[i]);
		CHECK(r->status.leader_id != 0);
		CHECK(*leader == 0 || *leader == r->status.leader_id);
		CHECK(r->status.version != NULL && r->status.name != NULL);
		*leader = r->status.leader_id;
		cairn_result_free(r);
		cairn_close(c);
	}
	return 0;
}

static int split(char eps[][64], int max)
{
	const char *p = endpoints;
	int n = 0;
	size_t len;

	while (n < max && *p) {
		len = strcspn(p, ",");
		snprintf(eps[n++], 64, "%.*s", (int)len, p);
		p += len + (p[len] == ',');
	}
	return n;
}

TEST(status_members_and_redirects)
{
	struct cairn_op op = {.type = CAIRN_OP_MEMBERS};
	struct cairn_result *r;
	char eps[8][64];
	char list[600];
	uint64_t ids[8];
	uint64_t leader;
	int n = split(eps, 8);
	int leaders = 0;
	int follower = -1;
	cairn_client *c;
	size_t i;

	CHECK(n >= 2);
	CHECK_EQ_INT(statuses(eps, n, ids, &leader), 0);
	c = open_sync(endpoints, false);
	CHECK(c != NULL);
	CHECK_EQ_INT(do_op(c, &op, &r), 0);
	CHECK_EQ_INT(r->n_members, (size_t)n);
	for (i = 0; i < r->n_members; i++) {
		leaders += r->members[i].leader;
		CHECK(!r->members[i].leader || r->members[i].id == leader);
		CHECK(r->members[i].peer_address[0] != '\0');
	}
	CHECK_EQ_INT(leaders, 1);
	cairn_result_free(r);
	cairn_close(c);

	/* A dead endpoint, then a follower, then the rest: writes still land.
	 */
	for (i = 0; i < (size_t)n; i++)
		if (ids[i] != leader)
			follower = (int)i;
	CHECK(follower >= 0);
	snprintf(list, sizeof list, "127.0.0.1:1,%s,%s", eps[follower],
	         endpoints);
	c = open_sync(list, false);
	CHECK(c != NULL);
	CHECK_EQ_INT(put(c, key("redirected"), "yes"), 0);
	CHECK_EQ_INT(
	    cairn_get(c, key("redirected"), strlen(key("redirected")), &r), 0);
	CHECK_EQ_INT(r->header.member_id, leader);
	cairn_result_free(r);
	cairn_close(c);

	/* no_redirect to a follower: a linearizable read is refused there. */
	c = open_sync(eps[follower], true);
	CHECK(c != NULL);
	CHECK_EQ_INT(
	    cairn_get(c, key("redirected"), strlen(key("redirected")), &r),
	    CAIRN_ENOTLEADER);
	cairn_close(c);
	return 0;
}

/* ---- async --------------------------------------------------------------- */

#define N_ASYNC 1000

struct counter {
	int calls[N_ASYNC];
	int errors;
	int canceled;
	int done;
	int close_at; /* close the client from the callback of this many */
};

struct slot {
	struct counter *k;
	int i;
};

static void on_done(cairn_client *c, struct cairn_result *res, void *arg)
{
	struct slot *s = arg;

	s->k->calls[s->i]++;
	if (res->err == CAIRN_ECANCELED)
		s->k->canceled++;
	else if (res->err != 0) {
		if (s->k->errors++ == 0)
			printf("# async request %d: %s: %s\n", s->i,
			       cairn_strerror(res->err), res->errmsg);
	}
	cairn_result_free(res);
	if (++s->k->done == s->k->close_at)
		cairn_close(c);
}

static int submit_puts(cairn_client *c, struct slot *slots, struct counter *k,
                       const char *dir)
{
	char kbuf[128];
	char vbuf[32];
	int i;

	for (i = 0; i < N_ASYNC; i++) {
		struct cairn_op op = {.type = CAIRN_OP_PUT};
		snprintf(kbuf, sizeof kbuf, "%s/%s/%04d", prefix, dir, i);
		snprintf(vbuf, sizeof vbuf, "value-%d", i);
		op.key = kbuf;
		op.key_len = strlen(kbuf);
		op.value = vbuf;
		op.value_len = strlen(vbuf);
		slots[i].k = k;
		slots[i].i = i;
		CHECK_EQ_INT(cairn_submit(c, &op, on_done, &slots[i]), 0);
	}
	return 0;
}

TEST(async_1000_pipelined_puts)
{
	static struct counter k;
	static struct slot slots[N_ASYNC];
	struct cairn_op op = {.type = CAIRN_OP_RANGE};
	uint8_t end[128];
	struct cairn_result *r;
	cairn_client *c = NULL;
	char kbuf[128];
	char vbuf[32];
	uv_loop_t loop;
	int i;

	CHECK_EQ_INT(uv_loop_init(&loop), 0);
	CHECK_EQ_INT(cairn_open_async(&c, &loop, endpoints, NULL, NULL, 0), 0);
	CHECK_EQ_INT(submit_puts(c, slots, &k, "async"), 0);
	/* Returns once every callback ran: an idle client keeps no loop alive.
	 */
	CHECK_EQ_INT(uv_run(&loop, UV_RUN_DEFAULT), 0);
	CHECK_EQ_INT(k.done, N_ASYNC);
	CHECK_EQ_INT(k.errors, 0);
	for (i = 0; i < N_ASYNC; i++)
		CHECK_EQ_INT(k.calls[i], 1);
	cairn_close(c);
	uv_run(&loop, UV_RUN_DEFAULT);
	CHECK_EQ_INT(uv_loop_close(&loop), 0);

	c = open_sync(endpoints, false);
	CHECK(c != NULL);
	snprintf(kbuf, sizeof kbuf, "%s/async/", prefix);
	op.key = kbuf;
	op.key_len = strlen(kbuf);
	op.end = end;
	op.end_len = cairn_prefix_end(kbuf, strlen(kbuf), end);
	CHECK_EQ_INT(do_op(c, &op, &r), 0);
	CHECK_EQ_INT(r->n_kvs, N_ASYNC);
	for (i = 0; i < N_ASYNC; i++) {
		snprintf(kbuf, sizeof kbuf, "%s/async/%04d", prefix, i);
		snprintf(vbuf, sizeof vbuf, "value-%d", i);
		CHECK_KV(&r->kvs[i], kbuf, vbuf);
		CHECK_EQ_INT(r->kvs[i].version, 1);
	}
	cairn_result_free(r);
	cairn_close(c);
	return 0;
}

TEST(async_close_cancels_pending_once)
{
	static struct counter k;
	static struct slot slots[N_ASYNC];
	cairn_client *c = NULL;
	uv_loop_t loop;
	int i;

	CHECK_EQ_INT(uv_loop_init(&loop), 0);
	CHECK_EQ_INT(cairn_open_async(&c, &loop, endpoints, NULL, NULL, 0), 0);
	CHECK_EQ_INT(submit_puts(c, slots, &k, "canceled"), 0);
	cairn_close(c); /* before the loop ever ran: all still pending */
	CHECK_EQ_INT(k.done, N_ASYNC);
	CHECK_EQ_INT(k.canceled, N_ASYNC);
	for (i = 0; i < N_ASYNC; i++)
		CHECK_EQ_INT(k.calls[i], 1);
	uv_run(&loop, UV_RUN_DEFAULT);
	CHECK_EQ_INT(uv_loop_close(&loop), 0);
	for (i = 0; i < N_ASYNC; i++)
		CHECK_EQ_INT(k.calls[i], 1);
	return 0;
}

TEST(async_close_from_a_callback)
{
	static struct counter k;
	static struct slot slots[N_ASYNC];
	cairn_client *c = NULL;
	uv_loop_t loop;
	int i;

	k.close_at = 10;
	CHECK_EQ_INT(uv_loop_init(&loop), 0);
	CHECK_EQ_INT(cairn_open_async(&c, &loop, endpoints, NULL, NULL, 0), 0);
	CHECK_EQ_INT(submit_puts(c, slots, &k, "closed-midway"), 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	CHECK_EQ_INT(uv_loop_close(&loop), 0);
	CHECK_EQ_INT(k.done, N_ASYNC);
	CHECK_EQ_INT(k.errors, 0);
	CHECK(k.canceled > 0 && k.canceled <= N_ASYNC - 10);
	for (i = 0; i < N_ASYNC; i++)
		CHECK_EQ_INT(k.calls[i], 1);
	return 0;
}

TEST(async_submit_errors_never_call_back)
{
	static struct counter k;
	struct slot s = {&k, 0};
	struct cairn_op op = {.type = CAIRN_OP_PUT, .key = "", .key_len = 0};
	cairn_client *c = NULL;
	uv_loop_t loop;

	CHECK_EQ_INT(uv_loop_init(&loop), 0);
	CHECK_EQ_INT(cairn_open_async(&c, &loop, endpoints, NULL, NULL, 0), 0);
	CHECK_EQ_INT(cairn_submit(c, &op, on_done, &s), CAIRN_EINVAL);
	CHECK_EQ_INT(cairn_submit(c, NULL, on_done, &s), CAIRN_EINVAL);
	cairn_close(c);
	uv_run(&loop, UV_RUN_DEFAULT);
	CHECK_EQ_INT(uv_loop_close(&loop), 0);
	CHECK_EQ_INT(k.done, 0);
	return 0;
}

/* ---- watches ------------------------------------------------------------- */

#define MAX_EV 512

/* What one watch's callback saw. */
struct wrec {
	size_t n_events;
	size_t n_updates;
	size_t n_more; /* updates with more set */
	size_t n_progress;
	size_t n_final;
	size_t after_final; /* calls after the final one: must stay 0 */
	size_t bad_rev;     /* events whose revision is not the update's */
	int64_t last_progress;
	int64_t rev[MAX_EV];
	int type[MAX_EV];
	char key[MAX_EV][96];
	char val[MAX_EV][32];
	bool has_prev[MAX_EV];
	char prev[MAX_EV][32];
	int final_err;
	int64_t final_crev;
	char final_msg[256];
	size_t cancel_at; /* cancel (twice) from the callback at this count */
	size_t starts_refused; /* cairn_watch_start refused inside the final */
};

static void copy_bytes(char *dst, size_t cap, const uint8_t *p, size_t len)
{
	snprintf(dst, cap, "%.*s", (int)(len < cap ? len : cap - 1),
	         p ? (const char *)p : "");
}

static void record_event(struct wrec *r, const struct cairn_event *e,
                         int64_t rev)
{
	size_t i = r->n_events++;

	if (e->kv.mod_revision != rev)
		r->bad_rev++;
	if (i >= MAX_EV)
		return;
	r->rev[i] = e->kv.mod_revision;
	r->type[i] = e->type;
	copy_bytes(r->key[i], sizeof r->key[i], e->kv.key, e->kv.key_len);
	copy_bytes(r->val[i], sizeof r->val[i], e->kv.value, e->kv.value_len);
	r->has_prev[i] = e->has_prev_kv;
	if (e->has_prev_kv)
		copy_bytes(r->prev[i], sizeof r->prev[i], e->prev_kv.value,
		           e->prev_kv.value_len);
}

static void on_final(cairn_client *c, struct wrec *r,
                     const struct cairn_watch_update *u)
{
	struct cairn_watch_opts o = {.key = "x", .key_len = 1};
	cairn_watch *w2 = NULL;

	r->n_final++;
	r->final_err = u->err;
	r->final_crev = u->compact_revision;
	snprintf(r->final_msg, sizeof r->final_msg, "%s",
	         u->errmsg ? u->errmsg : "(none)");
	if (u->err == CAIRN_ECANCELED &&
	    cairn_watch_start(c, &o, (cairn_watch_cb)NULL, NULL, &w2) != 0)
		r->starts_refused++; /* no callback: refused, nothing leaks */
}

static void on_wupdate(cairn_client *c, cairn_watch *w,
                       const struct cairn_watch_update *u, void *arg)
{
	struct wrec *r = arg;
	size_t i;

	if (r->n_final > 0)
		r->after_final++;
	if (u->err != 0) {
		on_final(c, r, u);
		return;
	}
	if (u->progress) {
		r->n_progress++;
		r->last_progress = u->revision;
		return;
	}
	r->n_updates++;
	r->n_more += u->more;
	for (i = 0; i < u->n_events; i++)
		record_event(r, &u->events[i], u->revision);
	if (r->cancel_at > 0 && r->n_events >= r->cancel_at) {
		cairn_watch_cancel(w); /* the final call waits for the return */
		cairn_watch_cancel(w); /* and a second cancel changes nothing */
	}
}

static void on_wait_timer(uv_timer_t *t)
{
	*(bool *)t->data = true;
}

/* Runs loop until *counter reaches want or ms pass (the watch handles keep
 * no loop alive, so a timer does). 0 when reached. */
static int loop_until(uv_loop_t *loop, const size_t *counter, size_t want,
                      unsigned ms)
{
	uv_timer_t t;
	bool expired = false;

	uv_timer_init(loop, &t);
	t.data = &expired;
	uv_timer_start(&t, on_wait_timer, ms, 0);
	while (*counter < want && !expired)
		uv_run(loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(loop, UV_RUN_NOWAIT);
	return *counter >= want ? 0 : -1;
}

static int run_until(uv_loop_t *loop, const size_t *counter, size_t want,
                     unsigned ms)
{
	if (loop_until(loop, counter, want, ms) == 0)
		return 0;
	printf("# waited %u ms for %zu, got %zu\n", ms, want, *counter);
	return -1;
}

/* Lets the loop run for ms (to see that nothing more comes). */
static void run_for(uv_loop_t *loop, unsigned ms)
{
	size_t never = 0;

	loop_until(loop, &never, 1, ms);
}

static cairn_client *open_async(uv_loop_t *loop, const char *eps)
{
	cairn_client *c = NULL;
	char err[256];

	if (uv_loop_init(loop) != 0)
		return NULL;
	if (cairn_open_async(&c, loop, eps, NULL, err, sizeof err) != 0)
		printf("# cairn_open_async(%s): %s\n", eps, err);
	return c;
}

/* Closes c and checks that the loop holds nothing more. */
static int close_async(uv_loop_t *loop, cairn_client *c)
{
	cairn_close(c);
	uv_run(loop, UV_RUN_DEFAULT);
	CHECK_EQ_INT(uv_loop_close(loop), 0);
	return 0;
}

/* Puts k=v; returns the revision (0 on failure). */
static int64_t put_rev(cairn_client *c, const char *k, const char *v)
{
	struct cairn_result *r = NULL;
	int64_t rev = 0;

	if (cairn_put(c, k, strlen(k), v, strlen(v), &r) == 0)
		rev = r->header.revision;
	else
		printf("# put %s: %s\n", k, cairn_errmsg(c));
	cairn_result_free(r);
	return rev;
}

static int64_t del_rev(cairn_client *c, const char *k)
{
	struct cairn_result *r = NULL;
	int64_t rev = 0;

	if (cairn_delete(c, k, strlen(k), &r) == 0)
		rev = r->header.revision;
	cairn_result_free(r);
	return rev;
}

/* Watch options for the keys under "<prefix>/<dir>". */
static struct cairn_watch_opts prefix_opts(const char *dir, uint8_t *end,
                                           int64_t from)
{
	const char *p = key(dir);
	struct cairn_watch_opts o = {.key = p, .key_len = strlen(p)};

	o.end = end;
	o.end_len = cairn_prefix_end(p, strlen(p), end);
	o.start_revision = from;
	return o;
}

#define CHECK_EVENT(r, i, t, k, v, rv)                                         \
	do {                                                                   \
		CHECK_EQ_INT((r)->type[i], (t));                               \
		CHECK(strcmp((r)->key[i], key(k)) == 0);                       \
		CHECK(strcmp((r)->val[i], (v)) == 0);                          \
		CHECK_EQ_INT((r)->rev[i], (rv));                               \
	} while (0)

TEST(watch_prefix_sees_puts_deletes_and_txns_in_order)
{
	static struct wrec r;
	cairn_client *s = open_sync(endpoints, false);
	struct cairn_op txn_ops[2] = {
	    {.type = CAIRN_OP_PUT, .value = "b", .value_len = 1},
	    {.type = CAIRN_OP_PUT, .value = "c", .value_len = 1}};
	struct cairn_txn t = {NULL, 0, txn_ops, 2, NULL, 0};
	struct cairn_op op = {.type = CAIRN_OP_TXN, .txn = &t};
	struct cairn_result *res;
	struct cairn_watch_opts o;
	uint8_t end[128];
	int64_t rev[5];
	cairn_watch *w = NULL;
	cairn_client *c;
	uv_loop_t loop;

	CHECK(s != NULL);
	rev[0] = put_rev(s, key("w1/seed"), "before");
	CHECK(rev[0] > 0);
	c = open_async(&loop, endpoints);
	CHECK(c != NULL);
	o = prefix_opts("w1/", end, rev[0] + 1);
	o.prev_kv = true;
	CHECK_EQ_INT(cairn_watch_start(c, &o, on_wupdate, &r, &w), 0);
	CHECK(w != NULL);
	rev[1] = put_rev(s, key("w1/a"), "1");
	rev[2] = put_rev(s, key("w1/a"), "2");
	rev[3] = del_rev(s, key("w1/a"));
	CHECK(put_rev(s, key("w1-outside"), "x") > 0);
	txn_ops[0].key = key("w1/b");
	txn_ops[0].key_len = strlen(txn_ops[0].key);
	txn_ops[1].key = key("w1/c");
	txn_ops[1].key_len = strlen(txn_ops[1].key);
	CHECK_EQ_INT(do_op(s, &op, &res), 0);
	rev[4] = res->header.revision;
	cairn_result_free(res);
	CHECK_EQ_INT(run_until(&loop, &r.n_events, 5, 10000), 0);
	CHECK_EVENT(&r, 0, CAIRN_EVENT_PUT, "w1/a", "1", rev[1]);
	CHECK(!r.has_prev[0]);
	CHECK_EVENT(&r, 1, CAIRN_EVENT_PUT, "w1/a", "2", rev[2]);
	CHECK(r.has_prev[1] && strcmp(r.prev[1], "1") == 0);
	CHECK_EVENT(&r, 2, CAIRN_EVENT_DELETE, "w1/a", "", rev[3]);
	CHECK(r.has_prev[2] && strcmp(r.prev[2], "2") == 0);
	CHECK_EVENT(&r, 3, CAIRN_EVENT_PUT, "w1/b", "b", rev[4]);
	CHECK_EVENT(&r, 4, CAIRN_EVENT_PUT, "w1/c", "c", rev[4]);
	CHECK_EQ_INT(r.n_updates, 4); /* the transaction's two together */
	CHECK_EQ_INT(r.bad_rev, 0);
	/* Nothing else comes; a cancel ends it with one call. */
	run_for(&loop, 200);
	CHECK_EQ_INT(r.n_events, 5);
	cairn_watch_cancel(w);
	CHECK_EQ_INT(r.n_final, 1);
	CHECK_EQ_INT(r.final_err, CAIRN_ECANCELED);
	CHECK(put_rev(s, key("w1/d"), "late") > 0);
	run_for(&loop, 200);
	CHECK_EQ_INT(r.n_events, 5);
	CHECK_EQ_INT(r.after_final, 0);
	cairn_close(s);
	return close_async(&loop, c);
}

TEST(watch_from_an_old_revision_replays_then_goes_live)
{
	static struct wrec r;
	cairn_client *s = open_sync(endpoints, false);
	struct cairn_watch_opts o;
	uint8_t end[128];
	int64_t rev[4];
	cairn_client *c;
	uv_loop_t loop;
	size_t i;

	CHECK(s != NULL);
	rev[0] = put_rev(s, key("w2/a"), "1");
	rev[1] = put_rev(s, key("w2/b"), "2");
	rev[2] = del_rev(s, key("w2/a"));
	CHECK(rev[0] > 0 && rev[1] > rev[0] && rev[2] > rev[1]);
	c = open_async(&loop, endpoints);
	CHECK(c != NULL);
	o = prefix_opts("w2/", end, rev[0]);
	CHECK_EQ_INT(cairn_watch_start(c, &o, on_wupdate, &r, NULL), 0);
	CHECK_EQ_INT(run_until(&loop, &r.n_events, 3, 10000), 0);
	rev[3] = put_rev(s, key("w2/c"), "3");
	CHECK_EQ_INT(run_until(&loop, &r.n_events, 4, 10000), 0);
	for (i = 0; i < 4; i++)
		CHECK_EQ_INT(r.rev[i], rev[i]);
	CHECK_EVENT(&r, 2, CAIRN_EVENT_DELETE, "w2/a", "", rev[2]);
	CHECK_EVENT(&r, 3, CAIRN_EVENT_PUT, "w2/c", "3", rev[3]);
	CHECK_EQ_INT(r.n_final, 0);
	cairn_close(s);
	CHECK_EQ_INT(close_async(&loop, c), 0);
	CHECK_EQ_INT(r.n_final, 1); /* cairn_close ended it */
	CHECK_EQ_INT(r.final_err, CAIRN_ECANCELED);
	return 0;
}

TEST(watch_filters_no_put_and_no_delete)
{
	static struct wrec only_del;
	static struct wrec only_put;
	cairn_client *s = open_sync(endpoints, false);
	struct cairn_watch_opts o;
	uint8_t end[128];
	int64_t from;
	cairn_client *c;
	uv_loop_t loop;

	CHECK(s != NULL);
	from = put_rev(s, key("w3-start"), "x") + 1;
	CHECK(from > 1);
	CHECK(put_rev(s, key("w3/a"), "1") > 0);
	CHECK(del_rev(s, key("w3/a")) > 0);
	CHECK(put_rev(s, key("w3/b"), "2") > 0);
	c = open_async(&loop, endpoints);
	CHECK(c != NULL);
	o = prefix_opts("w3/", end, from);
	o.no_put = true;
	CHECK_EQ_INT(cairn_watch_start(c, &o, on_wupdate, &only_del, NULL), 0);
	o.no_put = false;
	o.no_delete = true;
	CHECK_EQ_INT(cairn_watch_start(c, &o, on_wupdate, &only_put, NULL), 0);
	CHECK_EQ_INT(run_until(&loop, &only_put.n_events, 2, 10000), 0);
	CHECK_EQ_INT(run_until(&loop, &only_del.n_events, 1, 10000), 0);
	run_for(&loop, 200);
	CHECK_EQ_INT(only_del.n_events, 1);
	CHECK_EQ_INT(only_del.type[0], CAIRN_EVENT_DELETE);
	CHECK_EQ_INT(only_put.n_events, 2);
	CHECK_EVENT(&only_put, 0, CAIRN_EVENT_PUT, "w3/a", "1",
	            only_put.rev[0]);
	CHECK_EVENT(&only_put, 1, CAIRN_EVENT_PUT, "w3/b", "2",
	            only_put.rev[1]);
	o.no_put = true; /* both: nothing to watch */
	CHECK_EQ_INT(cairn_watch_start(c, &o, on_wupdate, &only_put, NULL),
	             CAIRN_EINVAL);
	cairn_close(s);
	return close_async(&loop, c);
}

TEST(watch_cancel_from_its_callback_fires_once)
{
	static struct wrec r;
	cairn_client *s = open_sync(endpoints, false);
	struct cairn_watch_opts o;
	uint8_t end[128];
	int64_t from;
	cairn_client *c;
	uv_loop_t loop;

	CHECK(s != NULL);
	from = put_rev(s, key("w4/a"), "1");
	CHECK(put_rev(s, key("w4/b"), "2") > 0);
	CHECK(put_rev(s, key("w4/c"), "3") > 0);
	c = open_async(&loop, endpoints);
	CHECK(c != NULL);
	r.cancel_at = 2;
	o = prefix_opts("w4/", end, from);
	CHECK_EQ_INT(cairn_watch_start(c, &o, on_wupdate, &r, NULL), 0);
	CHECK_EQ_INT(run_until(&loop, &r.n_final, 1, 10000), 0);
	run_for(&loop, 200);
	CHECK_EQ_INT(r.n_events, 2);
	CHECK_EQ_INT(r.n_final, 1);
	CHECK_EQ_INT(r.final_err, CAIRN_ECANCELED);
	CHECK_EQ_INT(r.after_final, 0);
	CHECK_EQ_INT(r.starts_refused, 1); /* no callback given */
	cairn_close(s);
	return close_async(&loop, c);
}

TEST(close_ends_every_watch_once)
{
	static struct wrec r[3];
	struct cairn_watch_opts o;
	uint8_t end[128];
	cairn_client *c;
	uv_loop_t loop;
	int i;

	c = open_async(&loop, endpoints);
	CHECK(c != NULL);
	o = prefix_opts("w5/", end, 0);
	for (i = 0; i < 2; i++)
		CHECK_EQ_INT(cairn_watch_start(c, &o, on_wupdate, &r[i], NULL),
		             0);
	CHECK_EQ_INT(cairn_watch_progress(c), 0); /* sent after the WATCHes */
	CHECK_EQ_INT(run_until(&loop, &r[1].n_progress, 1, 10000), 0);
	/* Live watches keep no loop alive: this returns. */
	CHECK_EQ_INT(uv_run(&loop, UV_RUN_DEFAULT), 0);
	/* One more, still unanswered when the client closes. */
	CHECK_EQ_INT(cairn_watch_start(c, &o, on_wupdate, &r[2], NULL), 0);
	cairn_close(c);
	for (i = 0; i < 3; i++) {
		CHECK_EQ_INT(r[i].n_final, 1);
		CHECK_EQ_INT(r[i].final_err, CAIRN_ECANCELED);
		CHECK_EQ_INT(r[i].starts_refused, 1);
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	CHECK_EQ_INT(uv_loop_close(&loop), 0);
	for (i = 0; i < 3; i++)
		CHECK_EQ_INT(r[i].after_final, 0);
	return 0;
}

TEST(watch_progress_request_reports_the_revision)
{
	static struct wrec r;
	cairn_client *s = open_sync(endpoints, false);
	struct cairn_watch_opts o;
	uint8_t end[128];
	int64_t rev;
	cairn_client *c;
	uv_loop_t loop;

	CHECK(s != NULL);
	rev = put_rev(s, key("w6/a"), "1");
	c = open_async(&loop, endpoints);
	CHECK(c != NULL);
	o = prefix_opts("w6/", end, rev);
	CHECK_EQ_INT(cairn_watch_start(c, &o, on_wupdate, &r, NULL), 0);
	CHECK_EQ_INT(run_until(&loop, &r.n_events, 1, 10000), 0);
	CHECK_EQ_INT(cairn_watch_progress(c), 0);
	CHECK_EQ_INT(run_until(&loop, &r.n_progress, 1, 10000), 0);
	CHECK(r.last_progress >= rev);
	CHECK_EQ_INT(r.n_events, 1);
	cairn_close(s);
	return close_async(&loop, c);
}

/* A revision of 100 events of 20 KiB each passes the store's frame limit: it
 * comes in several updates, all but the last with 'more'. */
TEST(watch_splits_a_huge_revision_with_more)
{
	static struct wrec r;
	static struct cairn_op ops[100];
	static char keys[100][96];
	static char value[20 << 10];
	cairn_client *s = open_sync(endpoints, false);
	struct cairn_txn t = {NULL, 0, ops, 100, NULL, 0};
	struct cairn_op op = {.type = CAIRN_OP_TXN, .txn = &t};
	struct cairn_result *res;
	struct cairn_watch_opts o;
	uint8_t end[128];
	int64_t rev;
	cairn_client *c;
	uv_loop_t loop;
	int i;

	CHECK(s != NULL);
	memset(value, 'v', sizeof value);
	for (i = 0; i < 100; i++) {
		snprintf(keys[i], sizeof keys[i], "%s/w8/%03d", prefix, i);
		ops[i].type = CAIRN_OP_PUT;
		ops[i].key = keys[i];
		ops[i].key_len = strlen(keys[i]);
		ops[i].value = value;
		ops[i].value_len = sizeof value;
	}
	CHECK_EQ_INT(do_op(s, &op, &res), 0);
	rev = res->header.revision;
	cairn_result_free(res);
	c = open_async(&loop, endpoints);
	CHECK(c != NULL);
	o = prefix_opts("w8/", end, rev);
	CHECK_EQ_INT(cairn_watch_start(c, &o, on_wupdate, &r, NULL), 0);
	CHECK_EQ_INT(run_until(&loop, &r.n_events, 100, 10000), 0);
	CHECK(r.n_updates > 1);
	CHECK_EQ_INT(r.n_more, r.n_updates - 1);
	for (i = 0; i < 100; i++) {
		CHECK_EQ_INT(r.rev[i], rev);
		CHECK(strcmp(r.key[i], keys[i]) == 0);
	}
	cairn_close(s);
	return close_async(&loop, c);
}

static void on_compacted(cairn_client *c, struct cairn_result *res, void *arg)
{
	(void)c;
	*(struct cairn_result **)arg = res;
}

/* Each endpoint's member has applied the compaction to rev. */
static int wait_compacted(int64_t rev)
{
	struct cairn_op op = {.type = CAIRN_OP_STATUS};
	struct cairn_result *r;
	char eps[8][64];
	int n = split(eps, 8);
	int i;
	int tries;

	for (i = 0; i < n; i++) {
		cairn_client *c = open_sync(eps[i], true);
		CHECK(c != NULL);
		for (tries = 0; tries < 100; tries++) {
			CHECK_EQ_INT(do_op(c, &op, &r), 0);
			if (r->status.compact_revision >= rev)
				tries = 1000;
			cairn_result_free(r);
			if (tries < 1000)
				usleep(50000);
		}
		cairn_close(c);
		CHECK(tries > 1000);
	}
	return 0;
}

TEST(compaction_then_watch_below_it_fails_with_the_compact_revision)
{
	static struct wrec below;
	static struct wrec above;
	cairn_client *s = open_sync(endpoints, false);
	struct cairn_op op = {.type = CAIRN_OP_COMPACT};
	struct cairn_result *res = NULL;
	struct cairn_watch_opts o;
	uint8_t end[128];
	int64_t rev[3];
	cairn_client *c;
	uv_loop_t loop;

	CHECK(s != NULL);
	rev[0] = put_rev(s, key("w7/a"), "1");
	rev[1] = put_rev(s, key("w7/a"), "2");
	rev[2] = put_rev(s, key("w7/a"), "3");
	op.revision = rev[1];
	CHECK_EQ_INT(do_op(s, &op, &res), 0);
	CHECK_EQ_INT(res->type, CAIRN_OP_COMPACT);
	cairn_result_free(res);
	op.revision = 0;
	CHECK_EQ_INT(cairn_do(s, &op, &res), CAIRN_EINVAL);
	CHECK_EQ_INT(wait_compacted(rev[1]), 0);

	c = open_async(&loop, endpoints);
	CHECK(c != NULL);
	/* Compacting below the compact revision again: ECOMPACTED with it. */
	op.revision = rev[0];
	res = NULL;
	CHECK_EQ_INT(cairn_submit(c, &op, on_compacted, &res), 0);
	while (res == NULL)
		uv_run(&loop, UV_RUN_ONCE);
	CHECK_EQ_INT(res->err, CAIRN_ECOMPACTED);
	CHECK_EQ_INT(res->compact_revision, rev[1]);
	cairn_result_free(res);

	o = prefix_opts("w7/", end, rev[0]);
	CHECK_EQ_INT(cairn_watch_start(c, &o, on_wupdate, &below, NULL), 0);
	o.start_revision = rev[1] + 1;
	CHECK_EQ_INT(cairn_watch_start(c, &o, on_wupdate, &above, NULL), 0);
	CHECK_EQ_INT(run_until(&loop, &below.n_final, 1, 10000), 0);
	CHECK_EQ_INT(below.final_err, CAIRN_ECOMPACTED);
	CHECK_EQ_INT(below.final_crev, rev[1]);
	CHECK_EQ_INT(below.n_events, 0);
	CHECK(strstr(below.final_msg, "compact") != NULL);
	CHECK_EQ_INT(run_until(&loop, &above.n_events, 1, 10000), 0);
	CHECK_EVENT(&above, 0, CAIRN_EVENT_PUT, "w7/a", "3", rev[2]);
	cairn_close(s);
	CHECK_EQ_INT(close_async(&loop, c), 0);
	CHECK_EQ_INT(below.n_final, 1);
	CHECK_EQ_INT(below.after_final, 0);
	return 0;
}

TEST(watch_on_an_unreachable_endpoint_fails_with_a_reason)
{
	static struct wrec r;
	struct cairn_options opts = {.dial_timeout_ms = 200,
	                            .request_timeout_ms = 600};
	struct cairn_watch_opts o = {.key = "k", .key_len = 1};
	cairn_client *c = NULL;
	uv_loop_t loop;

	CHECK_EQ_INT(uv_loop_init(&loop), 0);
	CHECK_EQ_INT(cairn_open_async(&c, &loop, "127.0.0.1:1", &opts, NULL, 0),
	             0);
	CHECK_EQ_INT(cairn_watch_start(c, &o, on_wupdate, &r, NULL), 0);
	CHECK_EQ_INT(run_until(&loop, &r.n_final, 1, 5000), 0);
	CHECK(r.final_err == CAIRN_ECONN || r.final_err == CAIRN_ETIMEDOUT);
	CHECK(strstr(r.final_msg, "127.0.0.1:1") != NULL);
	run_for(&loop, 100);
	CHECK_EQ_INT(r.after_final, 0);
	return close_async(&loop, c);
}

/* ---- leases -------------------------------------------------------------- */

/* A lease operation on id (GRANT: ttl too); the answer in *r. */
static int lease_do(cairn_client *c, int type, int64_t id, int64_t ttl,
                    struct cairn_result **r)
{
	struct cairn_op op = {.type = type, .lease = id, .ttl = ttl};

	return cairn_do(c, &op, r);
}

/* Grants a lease (id 0: the store picks); returns its id, 0 on failure. */
static int64_t grant(cairn_client *c, int64_t ttl, int64_t id)
{
	struct cairn_result *r = NULL;
	int64_t got = 0;

	if (lease_do(c, CAIRN_OP_LEASE_GRANT, id, ttl, &r) != 0)
		printf("# lease grant: %s\n", cairn_errmsg(c));
	else if (r->type == CAIRN_OP_LEASE_GRANT && r->ttl == ttl)
		got = r->lease;
	cairn_result_free(r);
	return got;
}

/* Puts k=v attached to lease; returns 0 or the error, the revision in
 * *rev (if given). */
static int put_leased(cairn_client *c, const char *k, const char *v,
                      int64_t lease, int64_t *rev)
{
	struct cairn_op op = {.type = CAIRN_OP_PUT,
	                      .key = k,
	                      .key_len = strlen(k),
	                      .value = v,
	                      .value_len = strlen(v),
	                      .lease = lease};
	struct cairn_result *r = NULL;
	int rv = cairn_do(c, &op, &r);

	if (rv == 0 && rev != NULL)
		*rev = r->header.revision;
	cairn_result_free(r);
	return rv;
}

static bool lease_listed(const struct cairn_result *r, int64_t id)
{
	size_t i;

	for (i = 0; i < r->n_leases; i++)
		if (r->leases[i] == id)
			return true;
	return false;
}

/* A lease id of this run's own, far above those the store picks. */
static int64_t own_lease_id(void)
{
	return (INT64_C(1) << 40) |
	       (int64_t)((((uint64_t)getpid() << 20) ^ uv_hrtime()) &
	                 ((UINT64_C(1) << 40) - 1));
}

TEST(lease_ops_are_checked_before_sending)
{
	cairn_client *c = open_sync("127.0.0.1:1", false);
	struct cairn_result *r = (struct cairn_result *)&c;

	CHECK(c != NULL);
	CHECK_EQ_INT(lease_do(c, CAIRN_OP_LEASE_GRANT, 0, 0, &r), CAIRN_EINVAL);
	CHECK(r == NULL);
	CHECK(strstr(cairn_errmsg(c), "TTL") != NULL);
	CHECK_EQ_INT(lease_do(c, CAIRN_OP_LEASE_GRANT, -1, 5, &r),
	             CAIRN_EINVAL);
	CHECK_EQ_INT(lease_do(c, CAIRN_OP_LEASE_REVOKE, 0, 0, &r),
	             CAIRN_EINVAL);
	CHECK_EQ_INT(lease_do(c, CAIRN_OP_LEASE_KEEPALIVE, -3, 0, &r),
	             CAIRN_EINVAL);
	CHECK_EQ_INT(lease_do(c, CAIRN_OP_LEASE_TTL, 0, 0, &r), CAIRN_EINVAL);
	CHECK(strstr(cairn_errmsg(c), "positive") != NULL);
	cairn_close(c);
	return 0;
}

TEST(lease_grant_attach_ttl_keepalive_list)
{
	cairn_client *c = open_sync(endpoints, false);
	struct cairn_op op = {.type = CAIRN_OP_LEASE_TTL};
	int64_t mine = own_lease_id();
	struct cairn_result *r = NULL;
	int64_t picked;

	CHECK(c != NULL);
	picked = grant(c, 30, 0);
	CHECK(picked > 0);
	CHECK(picked != mine);
	CHECK_EQ_INT(grant(c, 20, mine), mine);
	CHECK_EQ_INT(lease_do(c, CAIRN_OP_LEASE_GRANT, mine, 5, &r),
	             CAIRN_ELEASEEXISTS);
	CHECK(r == NULL);
	CHECK(strstr(cairn_errmsg(c), "exists") != NULL);

	CHECK_EQ_INT(put_leased(c, key("lease/b"), "2", picked, NULL), 0);
	CHECK_EQ_INT(put_leased(c, key("lease/a"), "1", picked, NULL), 0);
	CHECK_EQ_INT(cairn_get(c, key("lease/a"), strlen(key("lease/a")), &r),
	             0);
	CHECK_EQ_INT(r->kvs[0].lease, picked);
	cairn_result_free(r);

	op.lease = picked;
	op.keys = true;
	CHECK_EQ_INT(do_op(c, &op, &r), 0);
	CHECK_EQ_INT(r->type, CAIRN_OP_LEASE_TTL);
	CHECK_EQ_INT(r->lease, picked);
	CHECK_EQ_INT(r->granted_ttl, 30);
	CHECK(r->ttl > 0 && r->ttl <= 30);
	CHECK_EQ_INT(r->n_kvs, 2); /* in key order */
	CHECK_MEM(r->kvs[0].key, r->kvs[0].key_len, key("lease/a"),
	          strlen(key("lease/a")));
	CHECK_MEM(r->kvs[1].key, r->kvs[1].key_len, key("lease/b"),
	          strlen(key("lease/b")));
	CHECK(r->kvs[0].value == NULL);
	cairn_result_free(r);
	op.keys = false;
	op.lease = mine;
	CHECK_EQ_INT(do_op(c, &op, &r), 0);
	CHECK_EQ_INT(r->granted_ttl, 20);
	CHECK_EQ_INT(r->n_kvs, 0);
	cairn_result_free(r);

	CHECK_EQ_INT(lease_do(c, CAIRN_OP_LEASE_KEEPALIVE, picked, 0, &r), 0);
	CHECK_EQ_INT(r->type, CAIRN_OP_LEASE_KEEPALIVE);
	CHECK_EQ_INT(r->lease, picked);
	CHECK_EQ_INT(r->ttl, 30);
	cairn_result_free(r);

	CHECK_EQ_INT(lease_do(c, CAIRN_OP_LEASE_LIST, 0, 0, &r), 0);
	CHECK_EQ_INT(r->type, CAIRN_OP_LEASE_LIST);
	CHECK(lease_listed(r, picked) && lease_listed(r, mine));
	cairn_result_free(r);
	CHECK_EQ_INT(lease_do(c, CAIRN_OP_LEASE_REVOKE, picked, 0, &r), 0);
	cairn_result_free(r);
	CHECK_EQ_INT(lease_do(c, CAIRN_OP_LEASE_REVOKE, mine, 0, &r), 0);
	cairn_result_free(r);
	cairn_close(c);
	return 0;
}

TEST(lease_revoke_deletes_its_keys_in_one_revision)
{
	cairn_client *c = open_sync(endpoints, false);
	struct cairn_result *r = NULL;
	const char *moved = key("revoke/moved");
	int64_t id;
	int64_t rev;

	CHECK(c != NULL);
	id = grant(c, 60, 0);
	CHECK(id > 0);
	CHECK_EQ_INT(put_leased(c, key("revoke/a"), "1", id, NULL), 0);
	CHECK_EQ_INT(put_leased(c, key("revoke/b"), "2", id, NULL), 0);
	CHECK_EQ_INT(put_leased(c, moved, "3", id, NULL), 0);
	/* off the lease again: stays */
	CHECK_EQ_INT(put_leased(c, moved, "4", 0, &rev), 0);
	CHECK_EQ_INT(lease_do(c, CAIRN_OP_LEASE_REVOKE, id, 0, &r), 0);
	CHECK_EQ_INT(r->type, CAIRN_OP_LEASE_REVOKE);
	CHECK_EQ_INT(r->header.revision, rev + 1);
	cairn_result_free(r);
	CHECK_EQ_INT(cairn_get(c, key("revoke/a"), strlen(key("revoke/a")), &r),
	             0);
	CHECK_EQ_INT(r->n_kvs, 0);
	CHECK_EQ_INT(r->header.revision, rev + 1);
	cairn_result_free(r);
	CHECK_EQ_INT(cairn_get(c, key("revoke/b"), strlen(key("revoke/b")), &r),
	             0);
	CHECK_EQ_INT(r->n_kvs, 0);
	cairn_result_free(r);
	CHECK_EQ_INT(cairn_get(c, moved, strlen(moved), &r), 0);
	CHECK_EQ_INT(r->n_kvs, 1);
	CHECK_KV(&r->kvs[0], moved, "4");
	CHECK_EQ_INT(r->kvs[0].lease, 0);
	cairn_result_free(r);

	/* The lease is gone for every operation that names it. */
	r = (struct cairn_result *)&c;
	CHECK_EQ_INT(lease_do(c, CAIRN_OP_LEASE_KEEPALIVE, id, 0, &r),
	             CAIRN_ENOLEASE);
	CHECK(r == NULL);
	CHECK(strstr(cairn_errmsg(c), "not found") != NULL);
	CHECK_EQ_INT(lease_do(c, CAIRN_OP_LEASE_TTL, id, 0, &r),
	             CAIRN_ENOLEASE);
	CHECK_EQ_INT(lease_do(c, CAIRN_OP_LEASE_REVOKE, id, 0, &r),
	             CAIRN_ENOLEASE);
	CHECK_EQ_INT(put_leased(c, key("revoke/c"), "5", id, NULL),
	             CAIRN_ENOLEASE);
	CHECK(strstr(cairn_errmsg(c), "not found") != NULL);
	CHECK_EQ_INT(
	    put_leased(c, key("revoke/c"), "5", own_lease_id() + 1, NULL),
	    CAIRN_ENOLEASE);
	CHECK_EQ_INT(cairn_get(c, key("revoke/c"), strlen(key("revoke/c")), &r),
	             0);
	CHECK_EQ_INT(r->n_kvs, 0);
	cairn_result_free(r);
	CHECK_EQ_INT(lease_do(c, CAIRN_OP_LEASE_LIST, 0, 0, &r), 0);
	CHECK(!lease_listed(r, id));
	cairn_result_free(r);
	cairn_close(c);
	return 0;
}

TEST(lease_keepalive_follows_the_leader_list_does_not)
{
	char eps[8][64];
	char list[600];
	uint64_t ids[8];
	uint64_t leader;
	int n = split(eps, 8);
	int follower = -1;
	struct cairn_result *r = NULL;
	cairn_client *c = open_sync(endpoints, false);
	int64_t id;
	int i;
	int tries;

	CHECK(c != NULL);
	CHECK_EQ_INT(statuses(eps, n, ids, &leader), 0);
	for (i = 0; i < n; i++)
		if (ids[i] != leader)
			follower = i;
	CHECK(follower >= 0);
	id = grant(c, 30, 0);
	CHECK(id > 0);
	cairn_close(c);

	snprintf(list, sizeof list, "%s,%s", eps[follower], endpoints);
	c = open_sync(list, false);
	CHECK(c != NULL);
	CHECK_EQ_INT(lease_do(c, CAIRN_OP_LEASE_KEEPALIVE, id, 0, &r), 0);
	CHECK_EQ_INT(r->header.member_id, leader);
	cairn_result_free(r);
	cairn_close(c);

	c = open_sync(eps[follower], true);
	CHECK(c != NULL);
	CHECK_EQ_INT(lease_do(c, CAIRN_OP_LEASE_TTL, id, 0, &r),
	             CAIRN_ENOTLEADER);
	for (tries = 0; tries < 40; tries++) { /* until it applied the grant */
		CHECK_EQ_INT(lease_do(c, CAIRN_OP_LEASE_LIST, 0, 0, &r), 0);
		CHECK_EQ_INT(r->header.member_id, ids[follower]);
		if (lease_listed(r, id))
			tries = 1000;
		cairn_result_free(r);
		if (tries < 1000)
			usleep(50000);
	}
	CHECK(tries > 1000);
	cairn_close(c);

	c = open_sync(endpoints, false);
	CHECK(c != NULL);
	CHECK_EQ_INT(lease_do(c, CAIRN_OP_LEASE_REVOKE, id, 0, &r), 0);
	cairn_result_free(r);
	cairn_close(c);
	return 0;
}

TEST(a_short_lease_expires_with_its_keys)
{
	cairn_client *c = open_sync(endpoints, false);
	const char *k = key("expiring");
	struct cairn_result *r = NULL;
	uint64_t t0 = uv_hrtime();
	bool gone = false;
	int64_t id;
	int i;

	CHECK(c != NULL);
	id = grant(c, 2, 0);
	CHECK(id > 0);
	CHECK_EQ_INT(put_leased(c, k, "soon gone", id, NULL), 0);
	for (i = 0; i < 100 && !gone; i++) {
		CHECK_EQ_INT(cairn_get(c, k, strlen(k), &r), 0);
		gone = r->n_kvs == 0;
		cairn_result_free(r);
		if (!gone)
			usleep(100000);
	}
	CHECK(gone);
	CHECK((uv_hrtime() - t0) / 1000000 >= 1500); /* not before its TTL */
	CHECK_EQ_INT(lease_do(c, CAIRN_OP_LEASE_TTL, id, 0, &r),
	             CAIRN_ENOLEASE);
	CHECK_EQ_INT(lease_do(c, CAIRN_OP_LEASE_KEEPALIVE, id, 0, &r),
	             CAIRN_ENOLEASE);
	cairn_close(c);
	return 0;
}

static void on_result(cairn_client *c, struct cairn_result *res, void *arg)
{
	(void)c;
	*(struct cairn_result **)arg = res;
}

/* Submits op on the async client and runs the loop until its answer. */
static struct cairn_result *await(uv_loop_t *loop, cairn_client *c,
                                  const struct cairn_op *op)
{
	struct cairn_result *res = NULL;

	if (cairn_submit(c, op, on_result, &res) != 0) {
		printf("# submit: %s\n", cairn_errmsg(c));
		return NULL;
	}
	while (res == NULL)
		uv_run(loop, UV_RUN_ONCE);
	return res;
}

TEST(async_lease_keepalive)
{
	struct cairn_op op = {.type = CAIRN_OP_LEASE_GRANT, .ttl = 10};
	struct cairn_result *res;
	cairn_client *c;
	uv_loop_t loop;
	int64_t id;

	c = open_async(&loop, endpoints);
	CHECK(c != NULL);
	res = await(&loop, c, &op);
	CHECK(res != NULL);
	CHECK_EQ_INT(res->err, 0);
	CHECK_EQ_INT(res->type, CAIRN_OP_LEASE_GRANT);
	CHECK_EQ_INT(res->ttl, 10);
	id = res->lease;
	CHECK(id > 0);
	cairn_result_free(res);

	op.type = CAIRN_OP_LEASE_KEEPALIVE;
	op.lease = id;
	op.ttl = 0;
	res = await(&loop, c, &op);
	CHECK(res != NULL);
	CHECK_EQ_INT(res->err, 0);
	CHECK_EQ_INT(res->type, CAIRN_OP_LEASE_KEEPALIVE);
	CHECK_EQ_INT(res->lease, id);
	CHECK_EQ_INT(res->ttl, 10);
	cairn_result_free(res);

	op.type = CAIRN_OP_LEASE_REVOKE;
	res = await(&loop, c, &op);
	CHECK(res != NULL);
	CHECK_EQ_INT(res->err, 0);
	cairn_result_free(res);
	op.type = CAIRN_OP_LEASE_KEEPALIVE;
	res = await(&loop, c, &op);
	CHECK(res != NULL);
	CHECK_EQ_INT(res->err, CAIRN_ENOLEASE);
	CHECK(res->errmsg != NULL && strstr(res->errmsg, "not found") != NULL);
	cairn_result_free(res);

	op.lease = 0; /* refused at submit: no callback */
	res = NULL;
	CHECK_EQ_INT(cairn_submit(c, &op, on_result, &res), CAIRN_EINVAL);
	run_for(&loop, 50);
	CHECK(res == NULL);
	return close_async(&loop, c);
}

/* ---- a scripted member: resuming in the middle of a split revision ------- */

/*
 * What a real member cannot be made to do on cue: it answers HELLO and
 * WATCH, sends a revision split over frames and drops the connection in the
 * middle of it; on the client's second connection it sends an old revision
 * again, the split revision again (split differently), one more revision, a
 * progress notification, and ends the watch as compacted.
 */
struct fake {
	uv_tcp_t server;
	int port;
	int n_conns;
	int64_t watch_rev[8]; /* the rev of each WATCH received */
	int n_watches;
};

struct fake_conn {
	uv_tcp_t tcp;
	struct frame_reader fr;
	struct fake *f;
	int n;
};

struct fake_write {
	uv_write_t req;
	uint8_t *data;
	bool close_after;
};

static void fake_conn_closed(uv_handle_t *h)
{
	struct fake_conn *fc = h->data;

	frame_reader_close(&fc->fr);
	free(fc);
}

static void fake_written(uv_write_t *req, int status)
{
	struct fake_write *fw = req->data;

	(void)status;
	if (fw->close_after && !uv_is_closing((uv_handle_t *)req->handle))
		uv_close((uv_handle_t *)req->handle, fake_conn_closed);
	free(fw->data);
	free(fw);
}

static void fake_send(struct fake_conn *fc, struct buf *b, bool close_after)
{
	struct fake_write *fw = calloc(1, sizeof *fw);
	uv_buf_t ub;
	size_t len;

	fw->data = buf_steal(b, &len);
	fw->close_after = close_after;
	fw->req.data = fw;
	ub = uv_buf_init((char *)fw->data, (unsigned)len);
	uv_write(&fw->req, (uv_stream_t *)&fc->tcp, &ub, 1, fake_written);
}

static void fake_head(struct mp_writer *w, unsigned n, uint64_t id, unsigned op,
                      int64_t rev)
{
	mp_put_map(w, n);
	mp_put_key(w, "id");
	mp_put_uint(w, id);
	mp_put_key(w, "op");
	mp_put_uint(w, op);
	mp_put_key(w, "h");
	mp_put_map(w, 3);
	mp_put_key(w, "m");
	mp_put_uint(w, 7);
	mp_put_key(w, "r");
	mp_put_int(w, rev);
	mp_put_key(w, "t");
	mp_put_uint(w, 1);
}

/* An EVENTS frame of revision rev: puts of "fake/<v>" = v for each v. */
static void fake_events(struct buf *b, int64_t rev, const char *const *vals,
                        int n, bool more)
{
	size_t off = proto_frame_begin(b);
	struct mp_writer w;
	char k[32];
	int i;

	mp_writer_init(&w, b);
	fake_head(&w, 6, 0, PROTO_OP_EVENTS, rev);
	mp_put_key(&w, "wid");
	mp_put_uint(&w, 5);
	mp_put_key(&w, "ev");
	mp_put_array(&w, (uint32_t)n);
	for (i = 0; i < n; i++) {
		snprintf(k, sizeof k, "fake/%s", vals[i]);
		mp_put_array(&w, 3);
		mp_put_uint(&w, CAIRN_EVENT_PUT);
		proto_put_kv(&w, (const uint8_t *)k, strlen(k),
		             (const uint8_t *)vals[i], strlen(vals[i]), rev,
		             rev, 1, 0);
		mp_put_nil(&w);
	}
	mp_put_key(&w, "more");
	mp_put_bool(&w, more);
	proto_frame_end(b, off, PROTO_RESP_FRAME_MAX);
}

/* A progress (crev < 0) or cancel (ECOMPACTED at crev) frame. */
static void fake_notice(struct buf *b, int64_t rev, int64_t crev)
{
	size_t off = proto_frame_begin(b);
	struct mp_writer w;

	mp_writer_init(&w, b);
	fake_head(&w, crev < 0 ? 5 : 8, 0, PROTO_OP_EVENTS, rev);
	mp_put_key(&w, "wid");
	mp_put_uint(&w, 5);
	if (crev < 0) {
		mp_put_key(&w, "prog");
		mp_put_bool(&w, true);
	} else {
		mp_put_key(&w, "cancel");
		mp_put_bool(&w, true);
		mp_put_key(&w, "err");
		mp_put_uint(&w, CAIRN_ECOMPACTED);
		mp_put_key(&w, "msg");
		mp_put_str(&w, "compacted", 9);
		mp_put_key(&w, "crev");
		mp_put_int(&w, crev);
	}
	proto_frame_end(b, off, PROTO_RESP_FRAME_MAX);
}

static void fake_watch(struct fake_conn *fc, const struct proto_req *req,
                       struct buf *b)
{
	static const char *const v10[] = {"10"};
	static const char *const v11[] = {"e0", "e1", "e2", "e3", "e4"};
	static const char *const v12[] = {"12"};
	size_t off = proto_frame_begin(b);
	struct mp_writer w;

	if (fc->f->n_watches < 8)
		fc->f->watch_rev[fc->f->n_watches++] = req->revision;
	mp_writer_init(&w, b);
	fake_head(&w, 5, req->id, req->op, 20);
	mp_put_key(&w, "wid");
	mp_put_uint(&w, 5);
	mp_put_key(&w, "rev");
	mp_put_int(&w, req->revision);
	proto_frame_end(b, off, PROTO_RESP_FRAME_MAX);
	if (fc->n == 1) {
		fake_events(b, 10, v10, 1, false);
		fake_events(b, 11, v11, 2, true);
		fake_events(b, 11, v11 + 2, 1, true);
		fake_send(fc, b, true); /* gone in the middle of revision 11 */
		return;
	}
	fake_events(b, 10, v10, 1, false); /* delivered already */
	fake_events(b, 11, v11, 1, true);
	fake_events(b, 11, v11 + 1, 3, true);
	fake_events(b, 11, v11 + 4, 1, false);
	fake_events(b, 12, v12, 1, false);
	fake_notice(b, 12, -1);
	fake_notice(b, 12, 5);
	fake_send(fc, b, false);
}

static void fake_request(struct fake_conn *fc, const struct proto_req *req)
{
	struct buf b = BUF_INIT;
	size_t off;
	struct mp_writer w;

	if (req->op == PROTO_OP_WATCH) {
		fake_watch(fc, req, &b);
		return;
	}
	off = proto_frame_begin(&b);
	mp_writer_init(&w, &b);
	if (req->op == PROTO_OP_HELLO) {
		mp_put_map(&w, 5);
		mp_put_key(&w, "id");
		mp_put_uint(&w, req->id);
		mp_put_key(&w, "op");
		mp_put_uint(&w, req->op);
		mp_put_key(&w, "ver");
		mp_put_uint(&w, PROTO_VERSION);
		mp_put_key(&w, "mid");
		mp_put_uint(&w, 7);
		mp_put_key(&w, "ldr");
		mp_put_uint(&w, 7);
	} else if (req->op == PROTO_OP_LEASE_GRANT) {
		/* what the store answers a retried grant it applied before */
		fake_head(&w, 4, req->id, req->op, 20);
		mp_put_key(&w, "dup");
		mp_put_bool(&w, true);
	} else {
		fake_head(&w, 3, req->id, req->op, 20);
	}
	proto_frame_end(&b, off, PROTO_RESP_FRAME_MAX);
	fake_send(fc, &b, false);
}

static void fake_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	struct fake_conn *fc = h->data;
	uint8_t *p;
	size_t len;

	(void)suggested;
	if (frame_space(&fc->fr, 65536, &p, &len) != 0)
		len = 0;
	*b = uv_buf_init((char *)p, (unsigned)len);
}

static void fake_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct fake_conn *fc = s->data;
	struct proto_req req;
	const uint8_t *p;
	uint32_t len;
	char err[128];

	(void)b;
	if (n < 0) {
		if (!uv_is_closing((uv_handle_t *)s))
			uv_close((uv_handle_t *)s, fake_conn_closed);
		return;
	}
	frame_commit(&fc->fr, (size_t)n);
	while (frame_next(&fc->fr, &p, &len) == 1) {
		if (proto_decode_req(p, len, &req, err, sizeof err) != 0)
			continue;
		fake_request(fc, &req);
		proto_req_free(&req);
	}
}

static void fake_accept(uv_stream_t *server, int status)
{
	struct fake *f = server->data;
	struct fake_conn *fc;

	if (status != 0)
		return;
	fc = calloc(1, sizeof *fc);
	fc->f = f;
	fc->n = ++f->n_conns;
	frame_reader_init(&fc->fr, PROTO_REQ_FRAME_MAX);
	uv_tcp_init(server->loop, &fc->tcp);
	fc->tcp.data = fc;
	if (uv_accept(server, (uv_stream_t *)&fc->tcp) == 0)
		uv_read_start((uv_stream_t *)&fc->tcp, fake_alloc, fake_read);
}

/* ---- the cluster secret --------------------------------------------------- */

/* The cluster runs the secure channel (lib.sh without CAIRN_TEST_INSECURE). */
static bool cluster_secure(void)
{
	const char *v = getenv("CAIRN_SECRET_FILE");

	return v != NULL && *v != '\0';
}

/* Runs f with the secret variables of the environment removed. */
static int without_env_secret(int (*f)(void))
{
	static const char *const names[] = {"CAIRN_SECRET_FILE", "CAIRN_SECRET",
	                                    "CAIRN_INSECURE"};
	char *saved[3];
	size_t i;
	int rv;

	for (i = 0; i < 3; i++) {
		const char *v = getenv(names[i]);
		saved[i] = v != NULL ? strdup(v) : NULL;
		unsetenv(names[i]);
	}
	rv = f();
	for (i = 0; i < 3; i++) {
		if (saved[i] != NULL)
			setenv(names[i], saved[i], 1);
		free(saved[i]);
	}
	return rv;
}

static int open_without_secret(void)
{
	cairn_client *c = (cairn_client *)&c;
	char err[256] = "";

	CHECK_EQ_INT(cairn_open(&c, "127.0.0.1:1", NULL, err, sizeof err),
	             CAIRN_EAUTH);
	CHECK(c == NULL);
	CHECK(strstr(err, "CAIRN_SECRET_FILE") != NULL);
	return 0;
}

TEST(open_without_a_secret_is_refused)
{
	struct cairn_options o = {.secret_file = "/nonexistent/cluster.secret"};
	cairn_client *c = NULL;
	char err[256] = "";

	CHECK_EQ_INT(without_env_secret(open_without_secret), 0);
	CHECK_EQ_INT(cairn_open(&c, "127.0.0.1:1", &o, err, sizeof err),
	             CAIRN_EAUTH);
	CHECK(strstr(err, "/nonexistent/cluster.secret") != NULL);
	o.secret_file = NULL;
	o.secret = "not a secret";
	CHECK_EQ_INT(cairn_open(&c, "127.0.0.1:1", &o, err, sizeof err),
	             CAIRN_EAUTH);
	CHECK(strstr(err, "not a cairn cluster secret") != NULL);
	return 0;
}

/* Another secret: every request fails at once (not after the timeout) and
 * says why. */
TEST(a_wrong_secret_fails_at_once_saying_why)
{
	struct cairn_options o = {
	    .request_timeout_ms = 20000,
	    .secret = "cairn-secret-1:"
	              "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="};
	struct cairn_result *r = NULL;
	cairn_client *c = NULL;
	uint64_t t0 = uv_hrtime();

	if (!cluster_secure()) {
		printf("# skipped: the cluster runs --insecure\n");
		return 0;
	}
	CHECK_EQ_INT(cairn_open(&c, endpoints, &o, NULL, 0), 0);
	CHECK_EQ_INT(cairn_get(c, "k", 1, &r), CAIRN_EAUTH);
	CHECK(r == NULL);
	CHECK(strstr(cairn_errmsg(c), "does not know the cluster secret") !=
	      NULL);
	CHECK((uv_hrtime() - t0) / 1000000 < 5000);
	cairn_close(c);
	return 0;
}

TEST(a_plaintext_client_is_refused_saying_why)
{
	struct cairn_options o = {.insecure = true};
	struct cairn_result *r = NULL;
	cairn_client *c = NULL;

	if (!cluster_secure()) {
		printf("# skipped: the cluster runs --insecure\n");
		return 0;
	}
	CHECK_EQ_INT(cairn_open(&c, endpoints, &o, NULL, 0), 0);
	CHECK_EQ_INT(cairn_get(c, "k", 1, &r), CAIRN_EAUTH);
	CHECK(strstr(cairn_errmsg(c), "requires the secure channel") != NULL);
	cairn_close(c);
	return 0;
}

/* The secret's text in the options, instead of the file. */
TEST(the_secret_as_text)
{
	struct cairn_options o = {0};
	struct cairn_result *r = NULL;
	cairn_client *c = NULL;
	char text[128] = "";
	FILE *f;

	if (!cluster_secure()) {
		printf("# skipped: the cluster runs --insecure\n");
		return 0;
	}
	f = fopen(getenv("CAIRN_SECRET_FILE"), "r");
	CHECK(f != NULL);
	CHECK(fgets(text, sizeof text, f) != NULL);
	fclose(f);
	o.secret = text;
	CHECK_EQ_INT(cairn_open(&c, endpoints, &o, NULL, 0), 0);
	memset(text, 0, sizeof text); /* copied at open */
	CHECK_EQ_INT(cairn_put(c, key("as-text"), strlen(key("as-text")), "1",
	                       1, &r),
	             0);
	cairn_result_free(r);
	cairn_close(c);
	return 0;
}

/* The fake store speaks plaintext. */
static const struct cairn_options fake_opts = {.insecure = true};

static int fake_start(uv_loop_t *loop, struct fake *f)
{
	struct sockaddr_storage ss;
	struct sockaddr_in a;
	int len = sizeof ss;

	uv_ip4_addr("127.0.0.1", 0, &a);
	CHECK_EQ_INT(uv_tcp_init(loop, &f->server), 0);
	f->server.data = f;
	CHECK_EQ_INT(uv_tcp_bind(&f->server, (struct sockaddr *)&a, 0), 0);
	CHECK_EQ_INT(uv_listen((uv_stream_t *)&f->server, 8, fake_accept), 0);
	CHECK_EQ_INT(
	    uv_tcp_getsockname(&f->server, (struct sockaddr *)&ss, &len), 0);
	f->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return 0;
}

static void close_any(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, h->type == UV_TCP && h->data != NULL && h != arg
		                ? fake_conn_closed
		                : NULL);
}

TEST(resume_in_a_split_revision_has_no_gap_and_no_duplicate)
{
	static const char *const want[] = {"10", "e0", "e1", "e2",
	                                   "e3", "e4", "12"};
	static struct wrec r;
	static struct fake f;
	struct cairn_watch_opts o = {.key = "fake/",
	                             .key_len = 5,
	                             .end = "fake0",
	                             .end_len = 5,
	                             .start_revision = 10};
	cairn_client *c = NULL;
	char ep[32];
	uv_loop_t loop;
	size_t i;

	CHECK_EQ_INT(uv_loop_init(&loop), 0);
	CHECK_EQ_INT(fake_start(&loop, &f), 0);
	snprintf(ep, sizeof ep, "127.0.0.1:%d", f.port);
	CHECK_EQ_INT(cairn_open_async(&c, &loop, ep, &fake_opts, NULL, 0), 0);
	CHECK_EQ_INT(cairn_watch_start(c, &o, on_wupdate, &r, NULL), 0);
	CHECK_EQ_INT(run_until(&loop, &r.n_final, 1, 5000), 0);
	CHECK_EQ_INT(f.n_conns, 2);
	CHECK_EQ_INT(f.n_watches, 2);
	CHECK_EQ_INT(f.watch_rev[0], 10);
	CHECK_EQ_INT(f.watch_rev[1], 11); /* the revision it was in */
	CHECK_EQ_INT(r.n_events, 7);
	for (i = 0; i < 7; i++)
		CHECK(strcmp(r.val[i], want[i]) == 0);
	CHECK_EQ_INT(r.rev[6], 12);
	CHECK_EQ_INT(r.n_more, 3); /* e0+e1, e2, then e3 on the new link */
	CHECK_EQ_INT(r.n_progress, 1);
	CHECK_EQ_INT(r.last_progress, 12);
	CHECK_EQ_INT(r.final_err, CAIRN_ECOMPACTED);
	CHECK_EQ_INT(r.final_crev, 5);
	CHECK_EQ_INT(r.bad_rev, 0);
	cairn_close(c);
	uv_walk(&loop, close_any, &f.server);
	uv_run(&loop, UV_RUN_DEFAULT);
	CHECK_EQ_INT(uv_loop_close(&loop), 0);
	return 0;
}

/* The store answers a retried grant it applied before with only "dup": the
 * id and TTL come from the request when the caller chose the id; a lost
 * store-picked id is reported, not passed off as lease 0. */
TEST(a_retried_grant_answered_as_a_duplicate)
{
	static struct fake f;
	struct cairn_op op = {
	    .type = CAIRN_OP_LEASE_GRANT, .lease = 0x77, .ttl = 9};
	struct cairn_result *res;
	cairn_client *c = NULL;
	char ep[32];
	uv_loop_t loop;

	CHECK_EQ_INT(uv_loop_init(&loop), 0);
	CHECK_EQ_INT(fake_start(&loop, &f), 0);
	snprintf(ep, sizeof ep, "127.0.0.1:%d", f.port);
	CHECK_EQ_INT(cairn_open_async(&c, &loop, ep, &fake_opts, NULL, 0), 0);
	res = await(&loop, c, &op);
	CHECK(res != NULL);
	CHECK_EQ_INT(res->err, 0);
	CHECK(res->duplicate);
	CHECK_EQ_INT(res->lease, 0x77);
	CHECK_EQ_INT(res->ttl, 9);
	cairn_result_free(res);
	op.lease = 0;
	res = await(&loop, c, &op);
	CHECK(res != NULL);
	CHECK_EQ_INT(res->err, CAIRN_EINDETERMINATE);
	CHECK(strstr(res->errmsg, "does not say its id") != NULL);
	CHECK_EQ_INT(res->type, CAIRN_OP_LEASE_GRANT);
	cairn_result_free(res);
	cairn_close(c);
	uv_walk(&loop, close_any, &f.server);
	uv_run(&loop, UV_RUN_DEFAULT);
	CHECK_EQ_INT(uv_loop_close(&loop), 0);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct test_case tests[] = {
	    T(open_rejects_bad_endpoints),
	    T(prefix_end),
	    T(unreachable_endpoint_times_out_with_a_reason),
	    T(misuse_is_refused),
	    T(sync_put_get_delete),
	    T(sync_ranges),
	    T(sync_txn_both_branches),
	    T(sync_txn_limits_are_checked),
	    T(status_members_and_redirects),
	    T(async_1000_pipelined_puts),
	    T(async_close_cancels_pending_once),
	    T(async_close_from_a_callback),
	    T(async_submit_errors_never_call_back),
	    T(resume_in_a_split_revision_has_no_gap_and_no_duplicate),
	    T(watch_on_an_unreachable_endpoint_fails_with_a_reason),
	    T(watch_prefix_sees_puts_deletes_and_txns_in_order),
	    T(watch_from_an_old_revision_replays_then_goes_live),
	    T(watch_filters_no_put_and_no_delete),
	    T(watch_cancel_from_its_callback_fires_once),
	    T(close_ends_every_watch_once),
	    T(watch_progress_request_reports_the_revision),
	    T(watch_splits_a_huge_revision_with_more),
	    T(lease_ops_are_checked_before_sending),
	    T(lease_grant_attach_ttl_keepalive_list),
	    T(lease_revoke_deletes_its_keys_in_one_revision),
	    T(lease_keepalive_follows_the_leader_list_does_not),
	    T(a_short_lease_expires_with_its_keys),
	    T(async_lease_keepalive),
	    T(a_retried_grant_answered_as_a_duplicate),
	    T(open_without_a_secret_is_refused),
	    T(a_wrong_secret_fails_at_once_saying_why),
	    T(a_plaintext_client_is_refused_saying_why),
	    T(the_secret_as_text),
	    /* last: it compacts away the history the tests above read */
	    T(compaction_then_watch_below_it_fails_with_the_compact_revision),
	};

	if (argc < 2) {
		printf("1..0 # SKIP usage: libclient HOST:PORT,...\n");
		return 0;
	}
	endpoints = argv[1];
	snprintf(prefix, sizeof prefix, "libclient-%ld-%llu", (long)getpid(),
	         (unsigned long long)uv_hrtime());
	/* test_run() rather than RUN_TESTS(), whose ({ }) -Wpedantic refuses.
	 */
	return test_run(tests, sizeof tests / sizeof tests[0]);
}
