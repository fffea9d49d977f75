/*
 * fuzz_result: the client's decoding of the store's answers (lib/result.c),
 * a decoder exposed to whatever the member it dialed sends: result_decode()
 * for answers, result_decode_events() for a watch's EVENTS frames (through
 * one reused arena, as the client's watch loop does), result_peek_op().
 *
 * Checks: an accepted answer's every string and byte array is readable up to
 * its length and NUL-terminated there (keys, values, messages, status and
 * member strings, the snapshot), an error has a message and a success none,
 * a transaction's responses are one level deep; an accepted EVENTS frame is
 * at most one of events, progress and cancel, its events all of one positive
 * revision and of a known type; a refusal says why and hands out nothing;
 * neither decoder keeps more than FUZZ_BYTES_PER_INPUT_BYTE per byte.
 */
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "exec.h"
#include "fsm.h"
#include "fuzz.h"
#include "mp.h"
#include "proto.h"
#include "result.h"

static volatile uint8_t sink;

/* len bytes readable, then a NUL. */
static void check_bytes(const uint8_t *p, size_t len)
{
	size_t i;

	FUZZ_CHECK(p != NULL);
	for (i = 0; i < len; i++)
		sink = p[i];
	FUZZ_CHECK(p[len] == '\0');
}

static void check_str(const char *s)
{
	if (s != NULL)
		check_bytes((const uint8_t *)s, strlen(s));
}

static void check_kv(const struct cairn_kv *kv)
{
	check_bytes(kv->key, kv->key_len);
	if (kv->value != NULL)
		check_bytes(kv->value, kv->value_len);
	else
		FUZZ_CHECK(kv->value_len == 0);
}

static void check_kvs(const struct cairn_kv *kvs, size_t n)
{
	size_t i;

	FUZZ_CHECK((kvs == NULL) == (n == 0));
	for (i = 0; i < n; i++)
		check_kv(&kvs[i]);
}

static void check_result(const struct cairn_result *r, unsigned depth)
{
	size_t i;

	FUZZ_CHECK(r->type >= 0 && r->type < PROTO_OP_MAX);
	FUZZ_CHECK(r->err >= 0 && r->err <= CAIRN_ERROR_MAX);
	FUZZ_CHECK((r->err != 0) == (r->errmsg != NULL));
	check_str(r->errmsg);
	check_kvs(r->kvs, r->n_kvs);
	check_kvs(r->prev_kvs, r->n_prev_kvs);
	FUZZ_CHECK(depth == 0 || r->n_responses == 0);
	FUZZ_CHECK((r->responses == NULL) == (r->n_responses == 0));
	for (i = 0; i < r->n_responses; i++)
		check_result(&r->responses[i], depth + 1);
	check_str(r->status.name);
	check_str(r->status.version);
	FUZZ_CHECK((r->members == NULL) == (r->n_members == 0));
	for (i = 0; i < r->n_members; i++) {
		FUZZ_CHECK(r->members[i].peer_address != NULL);
		check_str(r->members[i].peer_address);
		check_str(r->members[i].client_address);
		check_str(r->members[i].name);
	}
	FUZZ_CHECK((r->leases == NULL) == (r->n_leases == 0));
	for (i = 0; i < r->n_leases; i++)
		sink = (uint8_t)r->leases[i];
	if (r->snapshot != NULL)
		check_bytes(r->snapshot, r->snapshot_len);
}

static void decode_answer(const uint8_t *p, size_t len)
{
	struct cairn_result *res = (struct cairn_result *)1;
	struct result_env env;
	char err[256] = "";
	size_t before = fuzz_heap_bytes();
	int rv;

	rv = result_decode(p, len, &env, &res, err, sizeof err);
	FUZZ_CHECK_HEAP(before, len);
	if (rv != 0) {
		FUZZ_CHECK(res == NULL);
		FUZZ_CHECK(rv == CAIRN_ENOMEM || err[0] != '\0');
		return;
	}
	FUZZ_CHECK(env.op == (unsigned)res->type);
	FUZZ_CHECK(env.msg == NULL ||
	           (env.msg >= (const char *)p &&
	            env.msg + env.msg_len <= (const char *)p + len));
	check_result(res, 0);
	cairn_result_free(res);
}

static void check_events(const struct result_events *ev)
{
	size_t i;

	FUZZ_CHECK(ev->has_watch_id);
	FUZZ_CHECK((ev->n_events > 0) + ev->progress + ev->cancel <= 1);
	FUZZ_CHECK(!ev->cancel || ev->err != 0);
	FUZZ_CHECK(ev->err >= 0 && ev->err <= CAIRN_ERROR_MAX);
	check_str(ev->msg);
	FUZZ_CHECK((ev->events == NULL) == (ev->n_events == 0));
	for (i = 0; i < ev->n_events; i++) {
		const struct cairn_event *e = &ev->events[i];
		FUZZ_CHECK(e->type == CAIRN_EVENT_PUT ||
		           e->type == CAIRN_EVENT_DELETE);
		FUZZ_CHECK(e->kv.mod_revision == ev->revision &&
		           ev->revision > 0);
		check_kv(&e->kv);
		if (e->has_prev_kv)
			check_kv(&e->prev_kv);
	}
}

static void decode_events(struct result_arena *a, const uint8_t *p, size_t len)
{
	struct result_events ev;
	char err[256] = "";
	size_t before = fuzz_heap_bytes();
	int rv;

	rv = result_decode_events(p, len, a, &ev, err, sizeof err);
	/* The arena keeps a chunk across frames: at most what it ever held. */
	FUZZ_CHECK_HEAP(before, len);
	if (rv == 0)
		check_events(&ev);
	else
		FUZZ_CHECK(rv == CAIRN_ENOMEM || err[0] != '\0');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct result_arena *a = result_arena_new();
	unsigned op = result_peek_op(data, size);

	FUZZ_CHECK(a != NULL);
	FUZZ_CHECK(op <= PROTO_OP_MAX);
	decode_answer(data, size);
	/* Twice through the same arena, then a frame that is half of it. */
	decode_events(a, data, size);
	decode_events(a, data, size);
	decode_events(a, data + size / 2, size - size / 2);
	result_arena_free(a);
	return 0;
}

/* ---- seeds: answers as the store writes them --------------------------------
 */

static void emit_run(struct fuzz_fsm *s, struct buf *stream)
{
	if (fuzz_fsm_run_stream(s, stream) && s->answer.len > 0)
		fuzz_emit(s->answer.data, s->answer.len);
	buf_reset(stream);
}

static void emit_writer(struct buf *b)
{
	fuzz_emit(b->data, b->len);
	buf_reset(b);
}

static void seed_info(struct buf *b)
{
	struct exec_hdr h = {1, 2};
	struct mp_writer w;

	mp_writer_init(&w, b);
	mp_put_map(&w, 4);
	mp_put_key(&w, "id");
	mp_put_uint(&w, 3);
	mp_put_key(&w, "op");
	mp_put_uint(&w, PROTO_OP_STATUS);
	mp_put_key(&w, "h");
	exec_put_header(&w, &h, 9);
	mp_put_key(&w, "st");
	mp_put_map(&w, 4);
	mp_put_key(&w, "id");
	mp_put_uint(&w, 1);
	mp_put_key(&w, "rev");
	mp_put_int(&w, 9);
	mp_put_key(&w, "name");
	mp_put_str(&w, "one", 3);
	mp_put_key(&w, "ver");
	mp_put_str(&w, CAIRN_VERSION, strlen(CAIRN_VERSION));
	emit_writer(b);

	mp_writer_init(&w, b);
	mp_put_map(&w, 4);
	mp_put_key(&w, "id");
	mp_put_uint(&w, 4);
	mp_put_key(&w, "op");
	mp_put_uint(&w, PROTO_OP_MEMBERS);
	mp_put_key(&w, "h");
	exec_put_header(&w, &h, 9);
	mp_put_key(&w, "ms");
	mp_put_array(&w, 2);
	mp_put_map(&w, 6);
	mp_put_key(&w, "id");
	mp_put_uint(&w, 1);
	mp_put_key(&w, "peer");
	mp_put_str(&w, "127.0.0.1:7001", 14);
	mp_put_key(&w, "voter");
	mp_put_bool(&w, true);
	mp_put_key(&w, "ldr");
	mp_put_bool(&w, true);
	mp_put_key(&w, "cli");
	mp_put_str(&w, "127.0.0.1:2379", 14);
	mp_put_key(&w, "name");
	mp_put_str(&w, "one", 3);
	mp_put_map(&w, 2);
	mp_put_key(&w, "id");
	mp_put_uint(&w, 2);
	mp_put_key(&w, "peer");
	mp_put_str(&w, "127.0.0.1:7002", 14);
	emit_writer(b);
}

static void seed_lease_answers(struct buf *b)
{
	struct exec_hdr h = {1, 2};
	struct mp_writer w;

	mp_writer_init(&w, b);
	mp_put_map(&w, 7);
	mp_put_key(&w, "id");
	mp_put_uint(&w, 5);
	mp_put_key(&w, "op");
	mp_put_uint(&w, PROTO_OP_LEASE_TTL);
	mp_put_key(&w, "h");
	exec_put_header(&w, &h, 9);
	mp_put_key(&w, "l");
	mp_put_int(&w, 0x10);
	mp_put_key(&w, "ttl");
	mp_put_int(&w, 30);
	mp_put_key(&w, "gttl");
	mp_put_int(&w, 60);
	mp_put_key(&w, "keys");
	mp_put_array(&w, 2);
	mp_put_bin(&w, "d", 1);
	mp_put_bin(&w, "e", 1);
	emit_writer(b);

	mp_writer_init(&w, b);
	mp_put_map(&w, 4);
	mp_put_key(&w, "id");
	mp_put_uint(&w, 6);
	mp_put_key(&w, "op");
	mp_put_uint(&w, PROTO_OP_LEASE_LIST);
	mp_put_key(&w, "h");
	exec_put_header(&w, &h, 9);
	mp_put_key(&w, "ls");
	mp_put_array(&w, 2);
	mp_put_int(&w, 0x10);
	mp_put_int(&w, 0x11);
	emit_writer(b);
}

static void seed_events(struct buf *b)
{
	struct exec_hdr h = {1, 2};
	struct mp_writer w;

	mp_writer_init(&w, b);
	mp_put_map(&w, 6);
	mp_put_key(&w, "id");
	mp_put_uint(&w, 0);
	mp_put_key(&w, "op");
	mp_put_uint(&w, PROTO_OP_EVENTS);
	mp_put_key(&w, "wid");
	mp_put_uint(&w, 1);
	mp_put_key(&w, "h");
	exec_put_header(&w, &h, 9);
	mp_put_key(&w, "ev");
	mp_put_array(&w, 2);
	mp_put_array(&w, 3);
	mp_put_uint(&w, CAIRN_EVENT_PUT);
	proto_put_kv(&w, (const uint8_t *)"a", 1, (const uint8_t *)"v", 1, 2, 9,
	             3, 0);
	proto_put_kv(&w, (const uint8_t *)"a", 1, (const uint8_t *)"u", 1, 2, 8,
	             2, 0);
	mp_put_array(&w, 3);
	mp_put_uint(&w, CAIRN_EVENT_DELETE);
	proto_put_kv(&w, (const uint8_t *)"b", 1, NULL, 0, 0, 9, 0, 0);
	mp_put_nil(&w);
	mp_put_key(&w, "more");
	mp_put_bool(&w, false);
	emit_writer(b);

	mp_writer_init(&w, b);
	mp_put_map(&w, 6);
	mp_put_key(&w, "op");
	mp_put_uint(&w, PROTO_OP_EVENTS);
	mp_put_key(&w, "wid");
	mp_put_uint(&w, 1);
	mp_put_key(&w, "cancel");
	mp_put_bool(&w, true);
	mp_put_key(&w, "err");
	mp_put_uint(&w, CAIRN_ECOMPACTED);
	mp_put_key(&w, "msg");
	mp_put_str(&w, "compacted", 9);
	mp_put_key(&w, "crev");
	mp_put_int(&w, 5);
	emit_writer(b);
}

void fuzz_seeds(void)
{
	static const unsigned ops[] = {
	    PROTO_OP_PUT,     PROTO_OP_RANGE,       PROTO_OP_TXN,
	    PROTO_OP_DELETE,  PROTO_OP_LEASE_GRANT, PROTO_OP_LEASE_REVOKE,
	    PROTO_OP_COMPACT, PROTO_OP_COMPACT,     PROTO_OP_HELLO,
	};
	struct buf b = BUF_INIT;
	struct fuzz_fsm s;
	size_t i;

	fuzz_fsm_init(&s);
	fuzz_fsm_populate(&s);
	for (i = 0; i < sizeof ops / sizeof ops[0]; i++) {
		reqseed_example(&b, ops[i]);
		emit_run(&s, &b);
	}
	reqseed_example(&b, PROTO_OP_PUT); /* a retry: dup */
	emit_run(&s, &b);
	reqseed_op(&b, PROTO_OP_RANGE, 9, 3);
	reqseed_str(&b, REQ_F_K, "\0");
	reqseed_str(&b, REQ_F_E, "\0");
	reqseed_bool(&b, REQ_F_PKV, true);
	emit_run(&s, &b);
	fuzz_fsm_close(&s);
	seed_info(&b);
	seed_lease_answers(&b);
	seed_events(&b);
	buf_free(&b);
}
