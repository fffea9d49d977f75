/*
 * fsm: libraft's state machine over the MVCC keyspace (see fsm.h).
 *
 * Happy path: apply() decodes a batch, and for each request checks the
 * at-most-once table, runs it through exec_write() and records it; the origin
 * member's hooks receive the answers. Snapshot (FSM version 2, taken on the
 * loop thread): the state is dumped and LZ4-compressed into one raft buffer
 * that snapshot_finalize() frees. Restore decompresses and validates into new
 * objects first and swaps them in only when everything checked out.
 *
 * Failure modes: a malformed entry (never produced by a correct leader) is
 * logged and skipped by every member alike; running out of memory while
 * applying would make this member diverge, so the process exits instead.
 */
#include "fsm.h"

#include <lz4frame.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "cairn.h"
#include "dedup.h"
#include "lease.h"
#include "log.h"
#include "mvcc.h"
#include "proto.h"

#define SNAPSHOT_FORMAT 2
#define SNAPSHOT_FORMAT_NO_AUTH 1

struct exec_hdr fsm_header(const struct fsm *f)
{
	struct exec_hdr h = {f->member_id, f->raft ? f->raft->current_term : 0};

	return h;
}

/* ---- entries -------------------------------------------------------------- */

void fsm_entry_begin(struct fsm_entry *e, struct buf *b, uint64_t origin,
                     uint64_t batch)
{
	mp_writer_init(&e->w, b);
	mp_put_array(&e->w, 3);
	mp_put_uint(&e->w, origin);
	mp_put_uint(&e->w, batch);
	e->at = mp_open(&e->w, false);
	e->n = 0;
}

void fsm_entry_add(struct fsm_entry *e, const uint8_t *payload, size_t len)
{
	mp_put_raw(&e->w, payload, len);
	e->n++;
}

/*
 * libraft 0.15 misreads, when it loads its log at start, entries whose length
 * is not a multiple of 8 ("read header: short read", or entries silently
 * mangled). Entries are padded with zero bytes after the msgpack object, which
 * apply() never reads.
 */
int fsm_entry_end(struct fsm_entry *e)
{
	static const uint8_t zeros[8];
	size_t pad = (8 - e->w.b->len % 8) % 8;

	mp_close(&e->w, e->at, e->n);
	mp_put_raw(&e->w, zeros, pad);
	return e->w.err;
}

/* ---- member attributes ---------------------------------------------------- */

const struct fsm_member *fsm_member(const struct fsm *f, uint64_t id)
{
	unsigned i;

	for (i = 0; i < f->n_members; i++)
		if (f->members[i].id == id)
			return &f->members[i];
	return NULL;
}

int fsm_encode_publish(struct buf *b, uint64_t id, const char *client,
                       const char *name)
{
	struct mp_writer w;

	mp_writer_init(&w, b);
	mp_put_map(&w, 4);
	mp_put_key(&w, "op");
	mp_put_uint(&w, PROTO_OP_PUBLISH);
	mp_put_key(&w, "mid");
	mp_put_uint(&w, id);
	mp_put_key(&w, "cli");
	mp_put_str(&w, client, strlen(client));
	mp_put_key(&w, "name");
	mp_put_str(&w, name, strlen(name));
	return w.err;
}

int fsm_encode_compact(struct buf *b, int64_t rev)
{
	struct mp_writer w;

	mp_writer_init(&w, b);
	mp_put_map(&w, 2);
	mp_put_key(&w, "op");
	mp_put_uint(&w, PROTO_OP_COMPACT);
	mp_put_key(&w, "rev");
	mp_put_int(&w, rev);
	return w.err;
}

static void set_member(struct fsm *f, uint64_t id, const uint8_t *client,
                       uint32_t client_len, const uint8_t *name,
                       uint32_t name_len)
{
	struct fsm_member *m = (struct fsm_member *)fsm_member(f, id);

	if (m == NULL) {
		if (f->n_members == FSM_MAX_MEMBERS) {
			log_warn("member table full: attributes of %llu dropped",
			         (unsigned long long)id);
			return;
		}
		m = &f->members[f->n_members++];
	}
	m->id = id;
	/* Lengths were checked against PROTO_MAX_ATTR by the decoder; an
	 * absent field is NULL with length 0, which memcpy may not take. */
	if (client_len > 0)
		memcpy(m->client, client, client_len);
	m->client[client_len] = '\0';
	if (name_len > 0)
		memcpy(m->name, name, name_len);
	m->name[name_len] = '\0';
}

/* ---- apply ---------------------------------------------------------------- */

/* An auth write: the revision does not move (no key changes). */
static int apply_auth(struct fsm *f, const struct proto_req *req,
                      const struct exec_hdr *h, struct mp_writer *w)
{
	char msg[400];
	int rv = auth_apply(f->auth, req, msg, sizeof msg);

	if (w == NULL)
		return rv;
	if (rv != 0) {
		exec_error(w, req->id, req->op, rv, msg, 0, NULL);
		return rv;
	}
	mp_put_map(w, 3);
	mp_put_key(w, "id");
	mp_put_uint(w, req->id);
	mp_put_key(w, "op");
	mp_put_uint(w, req->op);
	mp_put_key(w, "h");
	exec_put_header(w, h, mvcc_rev(f->mvcc));
	return 0;
}

static void apply_one(struct fsm *f, const uint8_t *p, size_t len,
                      struct mp_writer *w)
{
	struct exec_hdr h = fsm_header(f);
	struct proto_req req;
	char msg[160];
	int64_t rev;
	int outcome;
	int rv;

	rv = proto_decode_req(p, len, &req, msg, sizeof msg);
	if (rv == 0 && !proto_op_is_write(req.op)) {
		rv = CAIRN_EPROTO;
		snprintf(msg, sizeof msg, "not a write");
	}
	if (rv != 0) {
		if (w != NULL)
			exec_error(w, req.id, req.op, rv, msg, 0, NULL);
		proto_req_free(&req);
		return;
	}
	if (req.op == PROTO_OP_PUBLISH) {
		set_member(f, req.member, req.addr, req.addr_len, req.name,
		           req.name_len);
		proto_req_free(&req);
		return;
	}
	if (req.client_id != 0 &&
	    dedup_seen(f->dedup, req.client_id, req.seq, req.ack, &rev, &outcome)) {
		if (w != NULL)
			exec_duplicate(&req, &h, rev, outcome, w);
		proto_req_free(&req);
		return;
	}
	if (proto_op_is_auth(req.op))
		outcome = apply_auth(f, &req, &h, w);
	else
		outcome = exec_write(&(struct exec_store){f->mvcc, f->leases},
		                     &req, &h, w);
	if (req.client_id != 0 &&
	    dedup_record(f->dedup, req.client_id, req.seq, mvcc_rev(f->mvcc),
	                 outcome) != 0)
		exec_out_of_memory();
	proto_req_free(&req);
}

static int apply(struct raft_fsm *rf, const struct raft_buffer *buf,
                 void **result)
{
	struct fsm *f = rf->data;
	struct mp_reader r;
	struct mp_writer *w;
	uint64_t origin = 0;
	uint64_t batch = 0;
	uint32_t n = 0;
	uint32_t i;
	const uint8_t *p;
	size_t len;

	*result = NULL;
	f->applied++;
	f->log_bytes += buf->len;
	f->log_entries++;
	mp_reader_init(&r, buf->base, buf->len);
	if (!mp_read_array(&r, &n) || n != 3 || !mp_read_uint(&r, &origin) ||
	    !mp_read_uint(&r, &batch) || !mp_read_array(&r, &n)) {
		log_error("skipping a malformed log entry of %zu bytes", buf->len);
		return 0;
	}
	for (i = 0; i < n; i++) {
		if (!mp_read_raw(&r, &p, &len)) {
			log_error("log entry truncated after %u of %u requests", i, n);
			return 0;
		}
		w = NULL;
		if (origin == f->member_id && f->hooks.answer_begin != NULL)
			w = f->hooks.answer_begin(f->hooks.arg, batch, i);
		apply_one(f, p, len, w);
		if (w != NULL)
			f->hooks.answer_end(f->hooks.arg);
	}
	return 0;
}

/* ---- snapshots ------------------------------------------------------------ */

/* Format: [[id, client, name], ...] */
static int dump_members(const struct fsm *f, struct buf *out)
{
	struct mp_writer w;
	unsigned i;

	mp_writer_init(&w, out);
	mp_put_array(&w, f->n_members);
	for (i = 0; i < f->n_members; i++) {
		mp_put_array(&w, 3);
		mp_put_uint(&w, f->members[i].id);
		mp_put_str(&w, f->members[i].client, strlen(f->members[i].client));
		mp_put_str(&w, f->members[i].name, strlen(f->members[i].name));
	}
	return w.err;
}

/* Reads the member table into members and n; false if malformed. */
static bool load_members(struct mp_reader *r, struct fsm_member *members,
                         unsigned *n)
{
	const uint8_t *client;
	const uint8_t *name;
	uint32_t client_len;
	uint32_t name_len;
	uint32_t count;
	uint32_t k;
	uint32_t i;

	if (!mp_read_array(r, &count) || count > FSM_MAX_MEMBERS)
		return false;
	for (i = 0; i < count; i++) {
		struct fsm_member *m = &members[i];
		if (!mp_read_array(r, &k) || k != 3 || !mp_read_uint(r, &m->id) ||
		    !mp_read_bytes(r, &client, &client_len) ||
		    client_len >= PROTO_MAX_ATTR ||
		    !mp_read_bytes(r, &name, &name_len) || name_len >= PROTO_MAX_ATTR)
			return false;
		memcpy(m->client, client, client_len);
		m->client[client_len] = '\0';
		memcpy(m->name, name, name_len);
		m->name[name_len] = '\0';
	}
	*n = count;
	return true;
}

int fsm_encode_snapshot(struct fsm *f, uint8_t **out, size_t *len)
{
	LZ4F_preferences_t prefs;
	struct buf raw = BUF_INIT;
	struct mp_writer w;
	size_t cap;
	size_t n;
	uint8_t *z;
	int rv;

	mp_writer_init(&w, &raw);
	mp_put_array(&w, 6);
	mp_put_uint(&w, SNAPSHOT_FORMAT);
	rv = w.err;
	if (rv == 0)
		rv = mvcc_dump(f->mvcc, &raw);
	if (rv == 0)
		rv = dedup_dump(f->dedup, &raw);
	if (rv == 0)
		rv = dump_members(f, &raw);
	if (rv == 0)
		rv = leases_dump(f->leases, &raw);
	if (rv == 0)
		rv = auth_dump(f->auth, &raw);
	if (rv != 0)
		goto err;
	memset(&prefs, 0, sizeof prefs);
	prefs.frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled;
	prefs.frameInfo.blockChecksumFlag = LZ4F_blockChecksumEnabled;
	prefs.frameInfo.blockSizeID = LZ4F_max4MB;
	prefs.frameInfo.contentSize = raw.len;
	cap = LZ4F_compressFrameBound(raw.len, &prefs);
	z = raft_malloc(cap);
	if (z == NULL) {
		rv = CAIRN_ENOMEM;
		goto err;
	}
	n = LZ4F_compressFrame(z, cap, raw.data, raw.len, &prefs);
	if (LZ4F_isError(n)) {
		log_error("snapshot: compress: %s", LZ4F_getErrorName(n));
		raft_free(z);
		rv = CAIRN_EINTERNAL;
		goto err;
	}
	buf_free(&raw);
	*out = z;
	*len = n;
	return 0;
err:
	buf_free(&raw);
	return rv;
}

/* Decompresses a whole LZ4 frame, verifying its checksums. */
static int decompress(const uint8_t *p, size_t len, struct buf *out,
                      char *errbuf, size_t errlen)
{
	LZ4F_dctx *dctx;
	size_t in_left = len;
	size_t hint = 1;
	size_t src;
	size_t dst;
	int rv = 0;

	if (LZ4F_isError(LZ4F_createDecompressionContext(&dctx, LZ4F_VERSION)))
		return CAIRN_ENOMEM;
	while (in_left > 0 && hint != 0) {
		if (buf_reserve(out, 1u << 20) != 0) {
			rv = CAIRN_ENOMEM;
			break;
		}
		src = in_left;
		dst = out->cap - out->len;
		hint = LZ4F_decompress(dctx, out->data + out->len, &dst, p, &src, NULL);
		if (LZ4F_isError(hint)) {
			snprintf(errbuf, errlen, "snapshot: decompress: %s",
			         LZ4F_getErrorName(hint));
			rv = CAIRN_EPROTO;
			break;
		}
		out->len += dst;
		p += src;
		in_left -= src;
	}
	if (rv == 0 && (hint != 0 || in_left != 0)) {
		snprintf(errbuf, errlen, "snapshot: %s",
		         hint != 0 ? "truncated" : "trailing bytes after the frame");
		rv = CAIRN_EPROTO;
	}
	LZ4F_freeDecompressionContext(dctx);
	return rv;
}

int fsm_decode_snapshot(struct fsm *f, const uint8_t *p, size_t len,
                        char *errbuf, size_t errlen)
{
	struct buf raw = BUF_INIT;
	struct mp_reader r;
	struct fsm_member members[FSM_MAX_MEMBERS];
	unsigned n_members = 0;
	struct mvcc *m = NULL;
	struct dedup *d = NULL;
	struct leases *l = NULL;
	struct auth *a = NULL;
	uint64_t format;
	uint32_t n;
	int rv;

	rv = decompress(p, len, &raw, errbuf, errlen);
	if (rv != 0)
		goto out;
	mp_reader_init(&r, raw.data, raw.len);
	rv = CAIRN_EPROTO;
	if (!mp_read_array(&r, &n) || !mp_read_uint(&r, &format) ||
	    !((n == 6 && format == SNAPSHOT_FORMAT) ||
	      (n == 5 && format == SNAPSHOT_FORMAT_NO_AUTH))) {
		snprintf(errbuf, errlen, "snapshot: unknown format");
		goto out;
	}
	if (mvcc_load(&r, &m) != 0) {
		snprintf(errbuf, errlen, "snapshot: keyspace is corrupt");
		goto out;
	}
	if (dedup_load(&r, &d) != 0) {
		snprintf(errbuf, errlen, "snapshot: client table is corrupt");
		goto out;
	}
	if (!load_members(&r, members, &n_members)) {
		snprintf(errbuf, errlen, "snapshot: member table is corrupt");
		goto out;
	}
	if (leases_load(&r, m, &l) != 0 ||
	    (format == SNAPSHOT_FORMAT_NO_AUTH && mp_left(&r) != 0)) {
		snprintf(errbuf, errlen, "snapshot: lease table is corrupt");
		goto out;
	}
	if (format == SNAPSHOT_FORMAT_NO_AUTH)
		rv = auth_create(&a);
	else if (auth_load(&r, &a) != 0 || mp_left(&r) != 0)
		rv = CAIRN_EPROTO;
	else
		rv = 0;
	if (rv != 0) {
		snprintf(errbuf, errlen, "snapshot: auth state is corrupt");
		goto out;
	}
	rv = CAIRN_EPROTO;
	mvcc_destroy(f->mvcc);
	dedup_destroy(f->dedup);
	leases_destroy(f->leases);
	auth_destroy(f->auth);
	f->mvcc = m;
	f->dedup = d;
	f->leases = l;
	f->auth = a;
	l = NULL;
	a = NULL;
	memcpy(f->members, members, n_members * sizeof members[0]);
	f->n_members = n_members;
	m = NULL;
	d = NULL;
	rv = 0;
out:
	mvcc_destroy(m);
	dedup_destroy(d);
	leases_destroy(l);
	auth_destroy(a);
	buf_free(&raw);
	return rv;
}

static int snapshot(struct raft_fsm *rf, struct raft_buffer *bufs[],
                    unsigned *n_bufs)
{
	struct fsm *f = rf->data;
	uint8_t *p;
	size_t len;
	int rv;

	rv = fsm_encode_snapshot(f, &p, &len);
	if (rv != 0)
		return RAFT_NOMEM;
	*bufs = raft_malloc(sizeof **bufs);
	if (*bufs == NULL) {
		raft_free(p);
		return RAFT_NOMEM;
	}
	(*bufs)[0].base = p;
	(*bufs)[0].len = len;
	*n_bufs = 1;
	f->log_bytes = 0;
	f->log_entries = 0;
	f->snapshots++;
	log_debug("snapshot taken: %zu bytes, revision %lld", len,
	          (long long)mvcc_rev(f->mvcc));
	return 0;
}

static int snapshot_finalize(struct raft_fsm *rf, struct raft_buffer *bufs[],
                             unsigned *n_bufs)
{
	unsigned i;

	(void)rf;
	for (i = 0; i < *n_bufs; i++)
		raft_free((*bufs)[i].base);
	raft_free(*bufs);
	*bufs = NULL;
	*n_bufs = 0;
	return 0;
}

static int restore(struct raft_fsm *rf, struct raft_buffer *buf)
{
	struct fsm *f = rf->data;
	char msg[200] = "";
	int rv;

	rv = fsm_decode_snapshot(f, buf->base, buf->len, msg, sizeof msg);
	if (rv != 0) {
		log_error("cannot restore snapshot of %zu bytes: %s", buf->len, msg);
		return RAFT_CORRUPT;
	}
	raft_free(buf->base);
	log_info("restored snapshot: revision %lld, %llu keys",
	         (long long)mvcc_rev(f->mvcc),
	         (unsigned long long)mvcc_key_count(f->mvcc));
	return 0;
}

int fsm_init(struct fsm *f, uint64_t member_id, const struct fsm_hooks *hooks)
{
	int rv;

	memset(f, 0, sizeof *f);
	rv = mvcc_create(&f->mvcc);
	if (rv != 0)
		return rv;
	rv = dedup_create(&f->dedup);
	if (rv != 0)
		goto err_after_mvcc;
	rv = leases_create(&f->leases);
	if (rv != 0)
		goto err_after_dedup;
	rv = auth_create(&f->auth);
	if (rv != 0)
		goto err_after_leases;
	f->member_id = member_id;
	if (hooks != NULL)
		f->hooks = *hooks;
	f->raft_fsm.version = 2;
	f->raft_fsm.data = f;
	f->raft_fsm.apply = apply;
	f->raft_fsm.snapshot = snapshot;
	f->raft_fsm.snapshot_finalize = snapshot_finalize;
	f->raft_fsm.restore = restore;
	return 0;
err_after_leases:
	leases_destroy(f->leases);
err_after_dedup:
	dedup_destroy(f->dedup);
err_after_mvcc:
	mvcc_destroy(f->mvcc);
	return rv;
}

void fsm_close(struct fsm *f)
{
	mvcc_destroy(f->mvcc);
	dedup_destroy(f->dedup);
	leases_destroy(f->leases);
	auth_destroy(f->auth);
	f->auth = NULL;
	f->mvcc = NULL;
	f->dedup = NULL;
	f->leases = NULL;
}
