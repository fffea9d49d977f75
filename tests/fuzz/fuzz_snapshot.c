/*
 * fuzz_snapshot: the state machine's snapshot restore (fsm_decode_snapshot:
 * an LZ4 frame with checksums, holding [format, keyspace, client table,
 * member attributes, leases] in msgpack), as a snapshot installed from a
 * leader or read from disk reaches it.
 *
 * Input: a mode byte. Even: the rest is the LZ4 frame. Odd: the rest is the
 * msgpack inside, which the harness compresses into a valid frame, so the
 * fuzzer's mutations reach the loaders (mvcc_load, dedup_load, leases_load)
 * past the checksums.
 *
 * The target state machine holds a little of everything first. A refused
 * snapshot must leave it exactly as it was (same snapshot bytes) and say
 * why. An accepted one must pass fuzz_fsm_check(), and then take writes
 * through the log (put, delete everything, revoke every lease, compact)
 * that touch what was loaded, and pass it again.
 */
#include <lz4frame.h>
#include <raft.h>
#include <stdlib.h>
#include <string.h>

#include "fsm.h"
#include "fuzz.h"
#include "lease.h"
#include "mvcc.h"

static uint8_t *compress(const uint8_t *p, size_t len, size_t *out_len)
{
	LZ4F_preferences_t prefs;
	size_t cap;
	uint8_t *z;

	memset(&prefs, 0, sizeof prefs);
	prefs.frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled;
	prefs.frameInfo.blockChecksumFlag = LZ4F_blockChecksumEnabled;
	prefs.frameInfo.contentSize = len;
	cap = LZ4F_compressFrameBound(len, &prefs);
	z = malloc(cap);
	if (z == NULL)
		abort();
	*out_len = LZ4F_compressFrame(z, cap, p, len, &prefs);
	if (LZ4F_isError(*out_len))
		abort();
	return z;
}

static void snapshot_of(struct fsm *f, uint8_t **p, size_t *len)
{
	FUZZ_CHECK(fsm_encode_snapshot(f, p, len) == 0);
}

static void collect(struct lease *ls, void *arg)
{
	struct buf *ids = arg;

	if (buf_append(ids, &ls->id, sizeof ls->id) != 0)
		abort();
}

/* Writes through the log that walk what was loaded. */
static void exercise(struct fuzz_fsm *s)
{
	struct buf ids = BUF_INIT;
	struct buf b = BUF_INIT;
	int64_t id;
	size_t i;

	reqseed_example(&b, PROTO_OP_PUT);
	fuzz_fsm_run_stream(s, &b);
	buf_reset(&b);
	reqseed_example(&b, PROTO_OP_DELETE); /* every key, prev_kv */
	fuzz_fsm_run_stream(s, &b);
	leases_foreach(s->fsm->leases, collect, &ids);
	for (i = 0; i + sizeof id <= ids.len; i += sizeof id) {
		memcpy(&id, ids.data + i, sizeof id);
		buf_reset(&b);
		reqseed_op(&b, PROTO_OP_LEASE_REVOKE, 1, 1);
		reqseed_uint(&b, REQ_F_L, (uint64_t)id);
		fuzz_fsm_run_stream(s, &b);
	}
	FUZZ_CHECK(leases_count(s->fsm->leases) == 0);
	buf_reset(&b);
	reqseed_op(&b, PROTO_OP_COMPACT, 1, 1);
	reqseed_uint(&b, REQ_F_REV, (uint64_t)mvcc_rev(s->fsm->mvcc));
	fuzz_fsm_run_stream(s, &b);
	buf_free(&ids);
	buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_fsm s;
	char err[200] = "";
	uint8_t *before;
	uint8_t *after;
	uint8_t *frame;
	size_t before_len;
	size_t after_len;
	size_t len;

	if (size == 0)
		return 0;
	if (data[0] & 1)
		frame = compress(data + 1, size - 1, &len);
	else
		frame = fuzz_dup(data + 1, len = size - 1);
	fuzz_fsm_init(&s);
	fuzz_fsm_populate(&s);
	snapshot_of(s.fsm, &before, &before_len);
	if (fsm_decode_snapshot(s.fsm, frame, len, err, sizeof err) != 0) {
		FUZZ_CHECK(err[0] != '\0');
		snapshot_of(s.fsm, &after, &after_len);
		FUZZ_CHECK(after_len == before_len &&
		           memcmp(after, before, after_len) == 0);
		raft_free(after);
	} else {
		fuzz_fsm_check(s.fsm);
		exercise(&s);
		fuzz_fsm_check(s.fsm);
	}
	raft_free(before);
	free(frame);
	fuzz_fsm_close(&s);
	return 0;
}

/* The msgpack inside a snapshot frame. */
static void decompress(const uint8_t *p, size_t len, struct buf *out)
{
	LZ4F_dctx *dctx;
	size_t src;
	size_t dst;
	size_t hint = 1;

	if (LZ4F_isError(LZ4F_createDecompressionContext(&dctx, LZ4F_VERSION)))
		abort();
	while (len > 0 && hint != 0) {
		if (buf_reserve(out, 1u << 16) != 0)
			abort();
		src = len;
		dst = out->cap - out->len;
		hint = LZ4F_decompress(dctx, out->data + out->len, &dst, p,
		                       &src, NULL);
		if (LZ4F_isError(hint))
			abort();
		out->len += dst;
		p += src;
		len -= src;
	}
	LZ4F_freeDecompressionContext(dctx);
}

static void emit_state(struct fsm *f)
{
	struct buf raw = BUF_INIT;
	uint8_t *snap;
	size_t len;

	snapshot_of(f, &snap, &len);
	fuzz_emit_mode(0, snap, len);
	decompress(snap, len, &raw);
	fuzz_emit_mode(1, raw.data, raw.len);
	raft_free(snap);
	buf_free(&raw);
}

void fuzz_seeds(void)
{
	struct fuzz_fsm s;

	fuzz_fsm_init(&s);
	emit_state(s.fsm); /* empty */
	fuzz_fsm_populate(&s);
	emit_state(s.fsm);
	fuzz_fsm_close(&s);
}
