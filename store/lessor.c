/* lessor: lease timing and keep-alives on the leader (see lessor.h). */
#include "lessor.h"

#include <stdio.h>
#include <string.h>

#include "cairn.h"
#include "exec.h"
#include "fsm.h"
#include "lease.h"
#include "log.h"
#include "mvcc.h"
#include "node.h"
#include "server.h"

struct tick {
	struct lessor *l;
	uint64_t now;
	bool renew;
};

static void propose_revoke(struct lessor *l, struct lease *ls)
{
	struct buf b = BUF_INIT;
	struct mp_writer w;

	mp_writer_init(&w, &b);
	mp_put_map(&w, 2);
	mp_put_key(&w, "op");
	mp_put_uint(&w, PROTO_OP_LEASE_REVOKE);
	mp_put_key(&w, "l");
	mp_put_int(&w, ls->id);
	if (w.err == 0 &&
	    node_propose_internal(l->node, b.data, b.len, "lease expiry") == 0) {
		ls->revoking = true;
		log_debug("lease %llx expired: revoking", (unsigned long long)ls->id);
	}
	buf_free(&b);
}

static void time_one(struct lease *ls, void *arg)
{
	struct tick *t = arg;

	if (t->renew) {
		ls->deadline = 0;
		ls->revoking = false;
	}
	if (ls->deadline == 0)
		ls->deadline = t->now + (uint64_t)ls->ttl * 1000;
	else if (ls->deadline <= t->now && !ls->revoking)
		propose_revoke(t->l, ls);
}

static void tick_cb(uv_timer_t *timer)
{
	struct lessor *l = timer->data;
	struct node *n = l->node;
	struct tick t = {l, uv_now(timer->loop), false};

	if (!n->ready) {
		l->leading = false;
		return;
	}
	if (!l->leading) {
		t.renew = true; /* new leadership: every lease gets its full TTL */
		l->leading = true;
	}
	leases_foreach(n->fsm.leases, time_one, &t);
}

void lessor_start(struct lessor *l, uv_loop_t *loop, struct node *n)
{
	memset(l, 0, sizeof *l);
	l->node = n;
	uv_timer_init(loop, &l->timer);
	l->timer.data = l;
	uv_timer_start(&l->timer, tick_cb, LESSOR_TICK_MS, LESSOR_TICK_MS);
	uv_unref((uv_handle_t *)&l->timer);
}

void lessor_stop(struct lessor *l, uv_close_cb cb)
{
	uv_close((uv_handle_t *)&l->timer, cb);
}

/* Seconds left, rounded up; the full TTL if not timed yet. */
static int64_t remaining(const struct lease *ls, uint64_t now)
{
	if (ls->deadline == 0)
		return ls->ttl;
	if (ls->deadline <= now)
		return 0;
	return (int64_t)((ls->deadline - now + 999) / 1000);
}

static void put_lease_fields(struct mp_writer *w, const struct lease *ls,
                             const struct proto_req *req, uint64_t now)
{
	uint32_t i;

	mp_put_key(w, "l");
	mp_put_int(w, ls->id);
	mp_put_key(w, "ttl");
	mp_put_int(w, remaining(ls, now));
	if (req->op != PROTO_OP_LEASE_TTL)
		return;
	mp_put_key(w, "gttl");
	mp_put_int(w, ls->ttl);
	mp_put_key(w, "keys");
	mp_put_array(w, req->with_keys ? ls->n_keys : 0);
	for (i = 0; req->with_keys && i < ls->n_keys; i++)
		mp_put_bin(w, ls->keys[i].p, ls->keys[i].len);
}

static void put_id(struct lease *ls, void *arg)
{
	mp_put_int(arg, ls->id);
}

static void answer_list(struct node *n, struct conn *c,
                        const struct proto_req *req, struct mp_writer *w)
{
	struct exec_hdr h = fsm_header(&n->fsm);

	mp_put_map(w, 4);
	mp_put_key(w, "id");
	mp_put_uint(w, req->id);
	mp_put_key(w, "op");
	mp_put_uint(w, req->op);
	mp_put_key(w, "h");
	exec_put_header(w, &h, mvcc_rev(n->fsm.mvcc));
	mp_put_key(w, "ls");
	mp_put_array(w, leases_count(n->fsm.leases));
	leases_foreach(n->fsm.leases, put_id, w);
	conn_answer_end(c, req->id, req->op);
}

void lessor_answer(struct lessor *l, struct conn *c, const struct proto_req *req)
{
	struct node *n = l->node;
	uint64_t now = uv_now(l->timer.loop);
	struct exec_hdr h = fsm_header(&n->fsm);
	struct lease *ls;
	struct mp_writer *w;
	char msg[64];

	if (req->op == PROTO_OP_LEASE_LIST) {
		w = conn_answer_begin(c);
		if (w != NULL)
			answer_list(n, c, req, w);
		return;
	}
	if (!n->ready) {
		conn_error(c, req->id, req->op, CAIRN_ENOLEADER,
		           "the leader is not ready yet; retry shortly", 0);
		return;
	}
	ls = lease_find(n->fsm.leases, req->lease);
	if (ls == NULL || ls->revoking) {
		snprintf(msg, sizeof msg, "lease %llx not found",
		         (unsigned long long)req->lease);
		conn_error(c, req->id, req->op, CAIRN_ENOLEASE, msg, 0);
		return;
	}
	if (req->op == PROTO_OP_LEASE_KEEPALIVE)
		ls->deadline = now + (uint64_t)ls->ttl * 1000;
	w = conn_answer_begin(c);
	if (w == NULL)
		return;
	mp_put_map(w, req->op == PROTO_OP_LEASE_TTL ? 7 : 5);
	mp_put_key(w, "id");
	mp_put_uint(w, req->id);
	mp_put_key(w, "op");
	mp_put_uint(w, req->op);
	mp_put_key(w, "h");
	exec_put_header(w, &h, mvcc_rev(n->fsm.mvcc));
	put_lease_fields(w, ls, req, now);
	conn_answer_end(c, req->id, req->op);
}
