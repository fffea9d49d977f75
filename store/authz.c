/*
 * authz: tokens, permission checks and the auth operations that start on
 * the member (see authz.h).
 *
 * Happy path of a request while auth is enabled: its token's signature,
 * expiry and auth revision are checked (no log round trip), its user looked
 * up in the applied state, then every key range it touches is matched
 * against the user's roles (auth_allowed). Failure modes: no token, or a
 * token that is malformed, expired, out of date or of a deleted user, is
 * CAIRN_EAUTH (with "reauth" when authenticating again may help); a range
 * the roles do not cover is CAIRN_EPERM naming the user, the operation and
 * the key.
 */
#include "authz.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "cairn.h"
#include "exec.h"
#include "lease.h"
#include "log.h"
#include "mvcc.h"
#include "node.h"
#include "server.h"

#define MSG_MAX 512

static void answer_error(struct conn *c, const struct proto_req *req, int code,
                         const char *msg, bool reauth)
{
	struct mp_writer *w = conn_answer_begin(c);

	if (w == NULL)
		return;
	mp_put_map(w, reauth ? 5 : 4);
	mp_put_key(w, "id");
	mp_put_uint(w, req->id);
	mp_put_key(w, "op");
	mp_put_uint(w, req->op);
	mp_put_key(w, "err");
	mp_put_uint(w, (uint64_t)code);
	mp_put_key(w, "msg");
	mp_put_str(w, msg, strlen(msg));
	if (reauth) {
		mp_put_key(w, "reauth");
		mp_put_bool(w, true);
	}
	conn_answer_end(c, req->id, req->op);
}

static struct auth *state(struct server *s)
{
	return s->node->fsm.auth;
}

/* ---- permissions ----------------------------------------------------------
 */

static bool needs_no_token(unsigned op)
{
	switch (op) {
	case PROTO_OP_HELLO:
	case PROTO_OP_STATUS:
	case PROTO_OP_MEMBERS:
	case PROTO_OP_AUTHENTICATE:
	case PROTO_OP_AUTH_STATUS:
	case PROTO_OP_WATCH_CANCEL:
	case PROTO_OP_WATCH_PROGRESS:
	case PROTO_OP_PUBLISH: /* refused by the server anyway */
	case PROTO_OP_EVENTS:
		return true;
	default:
		return false;
	}
}

static bool root_only(unsigned op)
{
	return op == PROTO_OP_COMPACT || op == PROTO_OP_SNAPSHOT ||
	       op == PROTO_OP_MEMBER_ADD || op == PROTO_OP_MEMBER_REMOVE ||
	       op == PROTO_OP_MEMBER_PROMOTE || proto_op_is_auth(op);
}

static const char *op_word(unsigned op)
{
	switch (op) {
	case PROTO_OP_RANGE:
		return "range";
	case PROTO_OP_PUT:
		return "put";
	case PROTO_OP_DELETE:
		return "delete";
	case PROTO_OP_TXN:
		return "txn";
	case PROTO_OP_WATCH:
		return "watch";
	case PROTO_OP_LEASE_REVOKE:
		return "lease revoke";
	default:
		return "request";
	}
}

/* "key \"a\"" or "range [\"a\", \"b\")" (end "\0": "keys >= \"a\""). */
static void describe_range(const uint8_t *key, size_t key_len,
                           const uint8_t *end, size_t end_len, char *out,
                           size_t len)
{
	char k[200];
	char e[200];

	auth_printable(key, key_len, k, sizeof k);
	if (end_len == 0) {
		snprintf(out, len, "key \"%s\"", k);
	} else if (end_len == 1 && end[0] == 0) {
		snprintf(out, len, "keys >= \"%s\"", k);
	} else {
		auth_printable(end, end_len, e, sizeof e);
		snprintf(out, len, "range [\"%s\", \"%s\")", k, e);
	}
}

struct who {
	const struct auth *a;
	const struct auth_user *u;
	unsigned op; /* the request's, for the message */
	char msg[MSG_MAX];
};

/* One range needing mask; false with the message written when denied. */
static bool may(struct who *w, unsigned mask, const uint8_t *key,
                size_t key_len, const uint8_t *end, size_t end_len)
{
	char what[440];

	if (auth_allowed(w->a, w->u, mask, key, key_len, end, end_len))
		return true;
	describe_range(key, key_len, end, end_len, what, sizeof what);
	snprintf(w->msg, sizeof w->msg,
	         "permission denied: user %s may not %s %s (%s)", w->u->name,
	         mask == (AUTH_READ | AUTH_WRITE) ? "read and write"
	         : mask == AUTH_WRITE             ? "write"
	                                          : "read",
	         what, op_word(w->op));
	return false;
}

static bool may_op(struct who *w, const struct proto_req *op)
{
	unsigned mask = op->op == PROTO_OP_RANGE ? AUTH_READ : AUTH_WRITE;

	if (op->op != PROTO_OP_RANGE && op->prev_kv)
		mask |= AUTH_READ;
	return may(w, mask, op->key, op->key_len, op->end, op->end_len);
}

static bool may_txn(struct who *w, const struct proto_req *req)
{
	uint32_t i;

	for (i = 0; i < req->n_cmp; i++)
		if (!may(w, AUTH_READ, req->cmp[i].key, req->cmp[i].key_len,
		         NULL, 0))
			return false;
	for (i = 0; i < req->n_succ; i++)
		if (!may_op(w, &req->succ[i]))
			return false;
	for (i = 0; i < req->n_fail; i++)
		if (!may_op(w, &req->fail[i]))
			return false;
	return true;
}

static bool may_revoke(struct who *w, struct server *s,
                       const struct proto_req *req)
{
	struct lease *ls = lease_find(s->node->fsm.leases, req->lease);
	uint32_t i;

	for (i = 0; ls != NULL && i < ls->n_keys; i++)
		if (!may(w, AUTH_WRITE, ls->keys[i].p, ls->keys[i].len, NULL,
		         0))
			return false;
	return true;
}

static bool permitted(struct who *w, struct server *s,
                      const struct proto_req *req)
{
	switch (req->op) {
	case PROTO_OP_RANGE:
	case PROTO_OP_WATCH:
		return may(w, AUTH_READ, req->key, req->key_len, req->end,
		           req->end_len);
	case PROTO_OP_PUT:
	case PROTO_OP_DELETE:
		return may_op(w, req);
	case PROTO_OP_TXN:
		return may_txn(w, req);
	case PROTO_OP_LEASE_REVOKE:
		return may_revoke(w, s, req);
	case PROTO_OP_LEASE_GRANT:
	case PROTO_OP_LEASE_KEEPALIVE:
	case PROTO_OP_LEASE_TTL:
	case PROTO_OP_LEASE_LIST:
		return true;
	default:
		break;
	}
	if (root_only(req->op) && !auth_is_root(w->u)) {
		snprintf(
		    w->msg, sizeof w->msg,
		    "permission denied: user %s may not %s: it needs role root",
		    w->u->name, proto_op_name(req->op));
		return false;
	}
	return true;
}

/* The token's user, or NULL with the error answer sent. */
static const struct auth_user *identify(struct server *s, struct conn *c,
                                        const struct proto_req *req)
{
	const struct auth *a = state(s);
	char user[PROTO_MAX_NAME + 1];
	const struct auth_user *u;
	char msg[MSG_MAX];
	enum auth_token_status st;

	if (req->token_len == 0) {
		answer_error(c, req, CAIRN_EAUTH,
		             "authentication required: auth is enabled; give a "
		             "user name and password (cairnctl --user)",
		             false);
		return NULL;
	}
	st = auth_token_verify(a->pk, req->token, req->token_len,
	                       (int64_t)time(NULL), a->revision, user);
	if (st != AUTH_TOKEN_OK) {
		answer_error(c, req, CAIRN_EAUTH,
		             st == AUTH_TOKEN_EXPIRED
		                 ? "authentication failed: the token expired"
		             : st == AUTH_TOKEN_OLD
		                 ? "authentication failed: the token is out of "
		                   "date (users or roles changed)"
		                 : "authentication failed: invalid token",
		             true);
		return NULL;
	}
	u = auth_user(a, (const uint8_t *)user, strlen(user));
	if (u == NULL) {
		snprintf(msg, sizeof msg,
		         "authentication failed: user %s no longer exists",
		         user);
		answer_error(c, req, CAIRN_EAUTH, msg, true);
	}
	return u;
}

bool authz_check(struct server *s, struct conn *c, const struct proto_req *req)
{
	struct who w;

	if (!state(s)->enabled || needs_no_token(req->op))
		return true;
	w.a = state(s);
	w.op = req->op;
	w.msg[0] = '\0';
	w.u = identify(s, c, req);
	if (w.u == NULL)
		return false;
	if (permitted(&w, s, req))
		return true;
	log_debug("%s", w.msg);
	answer_error(c, req, CAIRN_EPERM, w.msg, false);
	return false;
}

/* ---- password work off the loop ------------------------------------------ */

struct pw_job {
	uv_work_t work;
	struct server *s;
	struct conn *c;
	uint64_t id;
	unsigned op;
	uint64_t cid, seq, ack;
	char user[PROTO_MAX_NAME + 1];
	char password[PROTO_MAX_PASSWORD + 1];
	char hash[crypto_pwhash_STRBYTES];
	uint64_t revision; /* AUTHENTICATE: the auth revision it started at */
	bool ok;
};

static struct pw_job *job_new(struct server *s, struct conn *c,
                              const struct proto_req *req)
{
	struct pw_job *j = calloc(1, sizeof *j);

	if (j == NULL)
		return NULL;
	j->s = s;
	j->c = c;
	j->id = req->id;
	j->op = req->op;
	j->cid = req->client_id;
	j->seq = req->seq;
	j->ack = req->ack;
	memcpy(j->user, req->user, req->user_len);
	if (req->password_len > 0)
		memcpy(j->password, req->password, req->password_len);
	j->work.data = j;
	conn_get(c);
	return j;
}

static void job_free(struct pw_job *j)
{
	conn_put(j->c);
	sodium_memzero(j->password, sizeof j->password);
	free(j);
}

static void hash_work(uv_work_t *w)
{
	struct pw_job *j = w->data;

	j->ok = crypto_pwhash_str(j->hash, j->password, strlen(j->password),
	                          crypto_pwhash_OPSLIMIT_INTERACTIVE,
	                          crypto_pwhash_MEMLIMIT_INTERACTIVE) == 0;
}

static void verify_work(uv_work_t *w)
{
	struct pw_job *j = w->data;

	j->ok = crypto_pwhash_str_verify(j->hash, j->password,
	                                 strlen(j->password)) == 0;
}

static int queue(struct pw_job *j, uv_work_cb work, uv_after_work_cb after)
{
	int rv = uv_queue_work(j->s->loop, &j->work, work, after);

	if (rv != 0) {
		struct proto_req req = {.id = j->id, .op = j->op};
		answer_error(j->c, &req, CAIRN_EINTERNAL,
		             "cannot queue the password work", false);
		job_free(j);
	}
	return rv;
}

/* The request as the log holds it: {id, op, cid, seq, ack, user, hash} or,
 * for AUTH_ENABLE, {id, op, cid, seq, ack, seed}. */
static int encode_write(struct buf *b, uint64_t id, unsigned op, uint64_t cid,
                        uint64_t seq, uint64_t ack, const char *user,
                        const char *hash, const uint8_t *seed)
{
	struct mp_writer w;

	mp_writer_init(&w, b);
	mp_put_map(&w, seed != NULL ? 6 : 7);
	mp_put_key(&w, "id");
	mp_put_uint(&w, id);
	mp_put_key(&w, "op");
	mp_put_uint(&w, op);
	mp_put_key(&w, "cid");
	mp_put_uint(&w, cid);
	mp_put_key(&w, "seq");
	mp_put_uint(&w, seq);
	mp_put_key(&w, "ack");
	mp_put_uint(&w, ack);
	if (seed != NULL) {
		mp_put_key(&w, "seed");
		mp_put_bin(&w, seed, PROTO_SEED_BYTES);
	} else {
		mp_put_key(&w, "user");
		mp_put_str(&w, user, strlen(user));
		mp_put_key(&w, "hash");
		mp_put_str(&w, hash, strlen(hash));
	}
	return w.err;
}

static void propose_built(struct server *s, struct conn *c, uint64_t id,
                          unsigned op, struct buf *b)
{
	if (raft_state(&s->node->raft) != RAFT_LEADER) {
		conn_error(c, id, op, CAIRN_ENOTLEADER,
		           "this member is not the leader",
		           node_leader(s->node));
		return;
	}
	node_propose(s->node, c, b->data, (uint32_t)b->len, id, op);
}

static void hashed(uv_work_t *w, int status)
{
	struct pw_job *j = w->data;
	struct buf b = BUF_INIT;

	if (status != 0 || j->s->closing || conn_closed(j->c))
		goto out;
	if (!j->ok) {
		conn_error(j->c, j->id, j->op, CAIRN_ENOMEM,
		           "out of memory hashing the password", 0);
		goto out;
	}
	if (encode_write(&b, j->id, j->op, j->cid, j->seq, j->ack, j->user,
	                 j->hash, NULL) != 0)
		conn_error(j->c, j->id, j->op, CAIRN_ENOMEM, "out of memory",
		           0);
	else
		propose_built(j->s, j->c, j->id, j->op, &b);
out:
	buf_free(&b);
	job_free(j);
}

void authz_propose(struct server *s, struct conn *c,
                   const struct proto_req *req)
{
	uint8_t seed[PROTO_SEED_BYTES];
	struct buf b = BUF_INIT;
	struct pw_job *j;

	if (req->op == PROTO_OP_AUTH_ENABLE) {
		randombytes_buf(seed, sizeof seed);
		if (encode_write(&b, req->id, req->op, req->client_id, req->seq,
		                 req->ack, NULL, NULL, seed) != 0)
			conn_error(c, req->id, req->op, CAIRN_ENOMEM,
			           "out of memory", 0);
		else
			propose_built(s, c, req->id, req->op, &b);
		sodium_memzero(seed, sizeof seed);
		buf_free(&b);
		return;
	}
	if (req->password_len == 0) {
		conn_error(c, req->id, req->op, CAIRN_EINVAL,
		           "a user needs a password", 0);
		return;
	}
	j = job_new(s, c, req);
	if (j == NULL) {
		conn_error(c, req->id, req->op, CAIRN_ENOMEM, "out of memory",
		           0);
		return;
	}
	queue(j, hash_work, hashed);
}

/* ---- AUTHENTICATE ---------------------------------------------------------
 */

static void answer_token(struct server *s, struct pw_job *j)
{
	const struct auth *a = state(s);
	struct exec_hdr h = fsm_header(&s->node->fsm);
	uint8_t tok[AUTH_TOKEN_MAX];
	size_t len = 0;
	int64_t ttl = s->cfg->auth_token_ttl_s;
	struct mp_writer *w;

	if (a->enabled)
		len = auth_token_sign(a->sk, j->user, j->revision,
		                      (int64_t)time(NULL) + ttl, tok);
	w = conn_answer_begin(j->c);
	if (w == NULL)
		return;
	mp_put_map(w, len > 0 ? 5 : 3);
	mp_put_key(w, "id");
	mp_put_uint(w, j->id);
	mp_put_key(w, "op");
	mp_put_uint(w, j->op);
	mp_put_key(w, "h");
	exec_put_header(w, &h, mvcc_rev(s->node->fsm.mvcc));
	if (len > 0) {
		mp_put_key(w, "tok");
		mp_put_bin(w, tok, len);
		mp_put_key(w, "ttl");
		mp_put_int(w, ttl);
	}
	conn_answer_end(j->c, j->id, j->op);
}

static void verified(uv_work_t *w, int status)
{
	struct pw_job *j = w->data;
	struct proto_req req = {.id = j->id, .op = j->op};

	if (status != 0 || j->s->closing)
		goto out;
	if (!j->ok) {
		log_info("authentication of user %s failed: wrong password",
		         j->user);
		answer_error(
		    j->c, &req, CAIRN_EAUTH,
		    "authentication failed: wrong user name or password",
		    false);
		goto out;
	}
	answer_token(j->s, j);
out:
	job_free(j);
}

void authz_authenticate(struct server *s, struct conn *c,
                        const struct proto_req *req)
{
	const struct auth *a = state(s);
	const struct auth_user *u = auth_user(a, req->user, req->user_len);
	struct pw_job *j;

	if (!a->enabled) { /* nothing to check: an answer without a token */
		struct pw_job nj = {.c = c, .id = req->id, .op = req->op};
		answer_token(s, &nj);
		return;
	}
	if (u == NULL) {
		log_info("authentication failed: no user named as asked");
		answer_error(
		    c, req, CAIRN_EAUTH,
		    "authentication failed: wrong user name or password",
		    false);
		return;
	}
	j = job_new(s, c, req);
	if (j == NULL) {
		conn_error(c, req->id, req->op, CAIRN_ENOMEM, "out of memory",
		           0);
		return;
	}
	j->revision = a->revision;
	snprintf(j->hash, sizeof j->hash, "%s", u->hash);
	queue(j, verify_work, verified);
}

/* ---- reads ----------------------------------------------------------------
 */

void authz_answer_read(struct server *s, struct conn *c,
                       const struct proto_req *req)
{
	struct exec_hdr h = fsm_header(&s->node->fsm);
	struct mp_writer *w = conn_answer_begin(c);
	char msg[MSG_MAX];
	size_t at;
	int code;
	int n;

	if (w == NULL)
		return;
	at = mp_open(w, true);
	mp_put_key(w, "id");
	mp_put_uint(w, req->id);
	mp_put_key(w, "op");
	mp_put_uint(w, req->op);
	mp_put_key(w, "h");
	exec_put_header(w, &h, mvcc_rev(s->node->fsm.mvcc));
	n = auth_read_fields(state(s), req, w, &code, msg, sizeof msg);
	if (n < 0) {
		conn_drop_frame(c);
		conn_error(c, req->id, req->op, code, msg, 0);
		return;
	}
	mp_close(w, at, (uint32_t)n + 3);
	conn_answer_end(c, req->id, req->op);
}
