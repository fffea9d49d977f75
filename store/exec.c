/*
 * exec: requests against the MVCC keyspace (see exec.h).
 *
 * Answers are maps whose field count is patched in at the end (mp_open/
 * mp_close), so each operation writes only the fields it has. A transaction
 * first evaluates its compares, then checks the chosen branch (no key put twice,
 * every read revision readable) so it either applies whole or not at all, then
 * runs the branch inside one MVCC write group: one revision for all of it.
 */
#include "exec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "lease.h"
#include "log.h"
#include "mvcc.h"

/* Patches a map's count after its fields are written. */
struct answer {
	struct mp_writer *w;
	size_t at;
	uint32_t n;
};

static void answer_open(struct answer *a, struct mp_writer *w)
{
	a->w = w;
	a->at = mp_open(w, true);
	a->n = 0;
}

static struct mp_writer *field(struct answer *a, const char *k)
{
	mp_put_key(a->w, k);
	a->n++;
	return a->w;
}

static void answer_close(struct answer *a)
{
	mp_close(a->w, a->at, a->n);
}

void exec_put_header(struct mp_writer *w, const struct exec_hdr *h, int64_t rev)
{
	mp_put_map(w, 3);
	mp_put_key(w, "m");
	mp_put_uint(w, h->member_id);
	mp_put_key(w, "r");
	mp_put_int(w, rev);
	mp_put_key(w, "t");
	mp_put_uint(w, h->term);
}

/* Opens a top-level answer: id, op and header. */
static void answer_top(struct answer *a, struct mp_writer *w,
                       const struct proto_req *req, const struct exec_hdr *h,
                       int64_t rev)
{
	answer_open(a, w);
	mp_put_uint(field(a, "id"), req->id);
	mp_put_uint(field(a, "op"), req->op);
	exec_put_header(field(a, "h"), h, rev);
}

static void error_open(struct answer *a, struct mp_writer *w, uint64_t id,
                       unsigned op, int code, const char *msg)
{
	answer_open(a, w);
	mp_put_uint(field(a, "id"), id);
	mp_put_uint(field(a, "op"), op);
	mp_put_uint(field(a, "err"), (uint64_t)code);
	mp_put_str(field(a, "msg"), msg, strlen(msg));
}

void exec_error(struct mp_writer *w, uint64_t id, unsigned op, int code,
                const char *msg, uint64_t leader, const char *leader_addr)
{
	struct answer a;

	error_open(&a, w, id, op, code, msg);
	if (leader != 0)
		mp_put_uint(field(&a, "ldr"), leader);
	if (leader_addr != NULL)
		mp_put_str(field(&a, "la"), leader_addr, strlen(leader_addr));
	answer_close(&a);
}

void exec_error_crev(struct mp_writer *w, uint64_t id, unsigned op, int code,
                     const char *msg, int64_t crev)
{
	struct answer a;

	error_open(&a, w, id, op, code, msg);
	mp_put_int(field(&a, "crev"), crev);
	answer_close(&a);
}

void exec_out_of_memory(void)
{
	log_error("out of memory while applying a write: exiting so this member "
	          "does not diverge from the others (it recovers from its log)");
	exit(1);
}

/* ---- reads ---------------------------------------------------------------- */

struct kv_sink {
	struct mp_writer *w;
	uint32_t n;
	bool keys_only;
};

static void put_kv(const struct mvcc_kv *kv, void *arg)
{
	struct kv_sink *s = arg;

	if (s->w == NULL)
		return;
	proto_put_kv(s->w, kv->key, kv->key_len, s->keys_only ? NULL : kv->value,
	             kv->value_len, kv->create_rev, kv->mod_rev, kv->version,
	             kv->lease);
	s->n++;
}

static int range_check(struct mvcc *m, const struct proto_req *req,
                       char *msg, size_t len)
{
	if (req->revision != 0 && req->revision < mvcc_compact_rev(m)) {
		snprintf(msg, len, "revision %lld has been compacted (compact revision %lld)",
		         (long long)req->revision, (long long)mvcc_compact_rev(m));
		return CAIRN_ECOMPACTED;
	}
	if (req->revision > mvcc_rev(m)) {
		snprintf(msg, len, "revision %lld is in the future (current revision %lld)",
		         (long long)req->revision, (long long)mvcc_rev(m));
		return CAIRN_EFUTUREREV;
	}
	return 0;
}

/* Writes kvs, more and cnt of a range into an open answer. */
static void range_fields(struct mvcc *m, const struct proto_req *req,
                         struct answer *a)
{
	struct mvcc_range_opts opts = {req->revision, req->limit, req->count_only};
	struct mvcc_range_result res = {0, false, 0};
	struct kv_sink sink = {NULL, 0, req->keys_only};
	size_t at = 0;

	if (!req->count_only) {
		sink.w = field(a, "kvs");
		at = mp_open(sink.w, false);
	}
	/* range_check ran before: the revision is readable. */
	(void)mvcc_range(m, req->key, req->key_len, req->end, req->end_len, &opts,
	                 req->count_only ? NULL : put_kv, &sink, &res);
	if (!req->count_only)
		mp_close(sink.w, at, sink.n);
	mp_put_bool(field(a, "more"), res.more);
	mp_put_int(field(a, "cnt"), res.count);
}

void exec_read(struct mvcc *m, const struct proto_req *req,
               const struct exec_hdr *h, struct mp_writer *w)
{
	struct answer a;
	char msg[160];
	int rv = range_check(m, req, msg, sizeof msg);

	if (rv != 0) {
		exec_error_crev(w, req->id, req->op, rv, msg, mvcc_compact_rev(m));
		return;
	}
	answer_top(&a, w, req, h, mvcc_rev(m));
	range_fields(m, req, &a);
	answer_close(&a);
}

/* ---- writes --------------------------------------------------------------- */

static void put_fields(const struct exec_store *s, const struct proto_req *req,
                       struct answer *a)
{
	struct mvcc_kv prev;
	bool had = false;

	if (mvcc_put(s->m, req->key, req->key_len, req->value, req->value_len,
	             req->lease, &prev, &had) != 0)
		exec_out_of_memory();
	if (had && prev.lease != 0 && prev.lease != req->lease)
		lease_detach(s->leases, prev.lease, req->key, req->key_len);
	if (req->lease != 0 &&
	    lease_attach(s->leases, req->lease, req->key, req->key_len) != 0)
		exec_out_of_memory(); /* the lease exists: check_branch saw it */
	if (a == NULL || !req->prev_kv)
		return;
	mp_put_array(field(a, "pkvs"), had ? 1 : 0);
	if (had)
		put_kv(&prev, &(struct kv_sink){a->w, 0, false});
}

struct delete_sink {
	struct kv_sink kvs;
	struct leases *leases;
};

/* A pair about to be deleted: off its lease, into the answer if asked. */
static void deleted_kv(const struct mvcc_kv *kv, void *arg)
{
	struct delete_sink *d = arg;

	if (kv->lease != 0)
		lease_detach(d->leases, kv->lease, kv->key, kv->key_len);
	put_kv(kv, &d->kvs);
}

static void delete_fields(const struct exec_store *s,
                          const struct proto_req *req, struct answer *a)
{
	struct delete_sink sink = {{NULL, 0, false}, s->leases};
	int64_t deleted = 0;
	size_t at = 0;

	if (a != NULL && req->prev_kv) {
		sink.kvs.w = field(a, "pkvs");
		at = mp_open(sink.kvs.w, false);
	}
	if (mvcc_delete_range(s->m, req->key, req->key_len, req->end,
	                      req->end_len, deleted_kv, &sink, &deleted) != 0)
		exec_out_of_memory();
	if (sink.kvs.w != NULL)
		mp_close(sink.kvs.w, at, sink.kvs.n);
	if (a != NULL)
		mp_put_int(field(a, "del"), deleted);
}

static int compare_int(int64_t have, int64_t want)
{
	return have < want ? -1 : have > want;
}

static int compare_bytes(const uint8_t *a, size_t alen, const uint8_t *b,
                         size_t blen)
{
	size_t n = alen < blen ? alen : blen;
	int c = n ? memcmp(a, b, n) : 0;

	if (c != 0)
		return c < 0 ? -1 : 1;
	return compare_int((int64_t)alen, (int64_t)blen);
}

/* etcd's rules: a missing key has version, create and mod revision 0, and any
 * compare of its value is false. */
static bool compare_one(struct mvcc *m, const struct proto_compare *c)
{
	struct mvcc_kv kv;
	bool live = mvcc_get(m, c->key, c->key_len, 0, &kv);
	int r;

	if (!live)
		memset(&kv, 0, sizeof kv);
	switch (c->target) {
	case CAIRN_CMP_VALUE:
		if (!live)
			return false;
		r = compare_bytes(kv.value, kv.value_len, c->value, c->value_len);
		break;
	case CAIRN_CMP_VERSION:
		r = compare_int(kv.version, c->number);
		break;
	case CAIRN_CMP_CREATE:
		r = compare_int(kv.create_rev, c->number);
		break;
	default:
		r = compare_int(kv.mod_rev, c->number);
		break;
	}
	switch (c->result) {
	case CAIRN_CMP_EQUAL:
		return r == 0;
	case CAIRN_CMP_NOT_EQUAL:
		return r != 0;
	case CAIRN_CMP_LESS:
		return r < 0;
	default:
		return r > 0;
	}
}

static bool same_bytes(const uint8_t *a, size_t alen, const uint8_t *b,
                       size_t blen)
{
	return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

/* Refuses a branch that could not apply whole. */
static int check_branch(const struct exec_store *s, const struct proto_req *ops,
                        uint32_t n, char *msg, size_t len)
{
	uint32_t i;
	uint32_t j;
	int rv;

	for (i = 0; i < n; i++) {
		if (ops[i].op == PROTO_OP_RANGE) {
			rv = range_check(s->m, &ops[i], msg, len);
			if (rv != 0)
				return rv;
		}
		if (ops[i].op != PROTO_OP_PUT)
			continue;
		if (ops[i].lease != 0 && lease_find(s->leases, ops[i].lease) == NULL) {
			snprintf(msg, len, "lease %llx not found",
			         (unsigned long long)ops[i].lease);
			return CAIRN_ENOLEASE;
		}
		for (j = 0; j < i; j++) {
			if (ops[j].op == PROTO_OP_PUT &&
			    same_bytes(ops[i].key, ops[i].key_len, ops[j].key,
			               ops[j].key_len)) {
				snprintf(msg, len, "duplicate key given in txn request");
				return CAIRN_EDUPKEY;
			}
		}
	}
	return 0;
}

static void op_fields(const struct exec_store *s, const struct proto_req *op,
                      struct answer *a)
{
	switch (op->op) {
	case PROTO_OP_RANGE:
		if (a != NULL)
			range_fields(s->m, op, a);
		break;
	case PROTO_OP_PUT:
		put_fields(s, op, a);
		break;
	default:
		delete_fields(s, op, a);
		break;
	}
}

static void branch_fields(const struct exec_store *s, const struct proto_req *ops,
                          uint32_t n, struct answer *a)
{
	struct answer sub;
	uint32_t i;

	if (a != NULL)
		mp_put_array(field(a, "rs"), n);
	for (i = 0; i < n; i++) {
		if (a == NULL) {
			op_fields(s, &ops[i], NULL);
			continue;
		}
		answer_open(&sub, a->w);
		mp_put_uint(field(&sub, "op"), ops[i].op);
		op_fields(s, &ops[i], &sub);
		answer_close(&sub);
	}
}

static bool txn_succeeds(struct mvcc *m, const struct proto_req *req)
{
	uint32_t i;

	for (i = 0; i < req->n_cmp; i++)
		if (!compare_one(m, &req->cmp[i]))
			return false;
	return true;
}

/* Compaction changes no key and so moves no revision. */
static int compact(struct mvcc *m, const struct proto_req *req,
                   const struct exec_hdr *h, struct mp_writer *w)
{
	struct answer a;
	char msg[160];
	int rv = mvcc_compact(m, req->revision);

	if (rv != 0) {
		snprintf(msg, sizeof msg,
		         rv == CAIRN_ECOMPACTED
		             ? "revision %lld is at or below the compact revision %lld"
		             : "revision %lld is in the future (current revision %lld)",
		         (long long)req->revision,
		         (long long)(rv == CAIRN_ECOMPACTED ? mvcc_compact_rev(m)
		                                            : mvcc_rev(m)));
		if (w != NULL)
			exec_error_crev(w, req->id, req->op, rv, msg,
			                mvcc_compact_rev(m));
		return rv;
	}
	if (w != NULL) {
		answer_top(&a, w, req, h, mvcc_rev(m));
		answer_close(&a);
	}
	return 0;
}

/*
 * The answer's header revision is known only after the write group ends, but
 * the header goes first; the fields are built in a scratch buffer and appended
 * after the header.
 */
/* The id a grant asks for, or the one derived from its client and sequence
 * number (so a retry learns the same id); 0 lets the table pick. */
static int64_t granted_id(const struct proto_req *req)
{
	if (req->lease != 0 || req->client_id == 0)
		return req->lease;
	return lease_id_for(req->client_id, req->seq);
}

/* LEASE_GRANT: the revision does not move (no key changes). */
static int lease_grant_op(const struct exec_store *s, const struct proto_req *req,
                          const struct exec_hdr *h, struct mp_writer *w)
{
	struct lease *ls;
	struct answer a;
	char msg[96];
	int rv;

	if (req->ttl < 1 || req->ttl > LEASE_MAX_TTL || req->lease < 0) {
		snprintf(msg, sizeof msg, "a lease TTL is 1 to %lld seconds",
		         (long long)LEASE_MAX_TTL);
		rv = CAIRN_EINVAL;
		goto err;
	}
	rv = lease_grant(s->leases, granted_id(req), req->ttl, &ls);
	if (rv == CAIRN_ENOMEM)
		exec_out_of_memory();
	if (rv != 0) {
		snprintf(msg, sizeof msg, "lease %llx already exists",
		         (unsigned long long)req->lease);
		goto err;
	}
	if (w != NULL) {
		answer_top(&a, w, req, h, mvcc_rev(s->m));
		mp_put_int(field(&a, "l"), ls->id);
		mp_put_int(field(&a, "ttl"), ls->ttl);
		answer_close(&a);
	}
	return 0;
err:
	if (w != NULL)
		exec_error(w, req->id, req->op, rv, msg, 0, NULL);
	return rv;
}

/* LEASE_REVOKE: every attached key goes in one revision, then the lease. */
static int lease_revoke_op(const struct exec_store *s,
                           const struct proto_req *req,
                           const struct exec_hdr *h, struct mp_writer *w)
{
	struct lease *ls = lease_find(s->leases, req->lease);
	struct answer a;
	char msg[64];
	int64_t deleted;

	if (ls == NULL) {
		snprintf(msg, sizeof msg, "lease %llx not found",
		         (unsigned long long)req->lease);
		if (w != NULL)
			exec_error(w, req->id, req->op, CAIRN_ENOLEASE, msg, 0, NULL);
		return CAIRN_ENOLEASE;
	}
	mvcc_begin(s->m);
	/* Deleting detaches: the last key always sits at the end. */
	while (ls->n_keys > 0) {
		struct lease_key *k = &ls->keys[ls->n_keys - 1];
		if (mvcc_delete_range(s->m, k->p, k->len, NULL, 0, NULL, NULL,
		                      &deleted) != 0)
			exec_out_of_memory();
		free(k->p);
		ls->n_keys--;
	}
	lease_remove(s->leases, ls);
	if (w != NULL) {
		answer_top(&a, w, req, h, mvcc_end(s->m));
		answer_close(&a);
	} else {
		mvcc_end(s->m);
	}
	return 0;
}

int exec_write(const struct exec_store *s, const struct proto_req *req,
               const struct exec_hdr *h, struct mp_writer *w)
{
	struct buf scratch = BUF_INIT;
	struct mp_writer sw;
	struct answer body;
	struct answer *b = NULL;
	struct answer top;
	const struct proto_req *ops = req;
	uint32_t n = 1;
	bool ok = true;
	char msg[160];
	int64_t rev;
	int rv;

	switch (req->op) {
	case PROTO_OP_COMPACT:
		return compact(s->m, req, h, w);
	case PROTO_OP_LEASE_GRANT:
		return lease_grant_op(s, req, h, w);
	case PROTO_OP_LEASE_REVOKE:
		return lease_revoke_op(s, req, h, w);
	case PROTO_OP_TXN:
		ok = txn_succeeds(s->m, req);
		ops = ok ? req->succ : req->fail;
		n = ok ? req->n_succ : req->n_fail;
		break;
	default:
		break;
	}
	rv = check_branch(s, ops, n, msg, sizeof msg);
	if (rv != 0) {
		if (w != NULL)
			exec_error(w, req->id, req->op, rv, msg, 0, NULL);
		return rv;
	}
	if (w != NULL) {
		mp_writer_init(&sw, &scratch);
		answer_open(&body, &sw);
		b = &body;
	}
	mvcc_begin(s->m);
	if (req->op == PROTO_OP_TXN) {
		if (b != NULL)
			mp_put_bool(field(b, "ok"), ok);
		branch_fields(s, ops, n, b);
	} else {
		op_fields(s, req, b);
	}
	rev = mvcc_end(s->m);
	if (b != NULL) {
		answer_top(&top, w, req, h, rev);
		/* Splice the body's fields (skip its 5-byte map header). */
		mp_put_raw(w, scratch.data + 5, scratch.len - 5);
		top.n += body.n;
		answer_close(&top);
		if (sw.err != 0)
			w->err = sw.err;
	}
	buf_free(&scratch);
	return ok ? 0 : EXEC_TXN_FAILED;
}

void exec_duplicate(const struct proto_req *req, const struct exec_hdr *h,
                    int64_t rev, int outcome, struct mp_writer *w)
{
	struct answer a;
	char msg[160];

	if (outcome > 0) {
		snprintf(msg, sizeof msg, "this write was applied before and failed: %s",
		         cairn_strerror(outcome));
		exec_error(w, req->id, req->op, outcome, msg, 0, NULL);
		return;
	}
	answer_top(&a, w, req, h, rev);
	mp_put_bool(field(&a, "dup"), true);
	if (req->op == PROTO_OP_TXN)
		mp_put_bool(field(&a, "ok"), outcome == 0);
	if (req->op == PROTO_OP_LEASE_GRANT) {
		mp_put_int(field(&a, "l"), granted_id(req));
		mp_put_int(field(&a, "ttl"), req->ttl);
	}
	answer_close(&a);
}
