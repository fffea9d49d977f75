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
 * when the close comes from inside a callback. Each test that opens a loop
 * closes it and checks that no handle was left behind. Keys live under a
 * prefix unique to the run.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "cairn.h"
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
	struct cairn_options o = {1000, 10000, no_redirect};
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
	struct cairn_options o = {200, 600, false};
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

TEST(misuse_is_refused)
{
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
