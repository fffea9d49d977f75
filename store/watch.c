/*
 * watch: watchers, pumped from the keyspace's change history (see watch.h).
 */
#include "watch.h"

#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "exec.h"
#include "fsm.h"
#include "log.h"
#include "mvcc.h"
#include "server.h"

struct watcher {
	struct watcher *next;
	struct watcher *prev;
	struct conn *conn; /* holds a reference */
	uint64_t wid;
	uint8_t *key;
	uint8_t *end;
	uint32_t key_len;
	uint32_t end_len;
	bool prev_kv;
	bool no_put;
	bool no_delete;
	bool progress_notify;
	int64_t next_rev;     /* the first revision not yet delivered */
	uint64_t last_sent;   /* loop time (ms) of the last frame */
};

/* ---- frames --------------------------------------------------------------- */

/* An EVENTS frame being filled for one revision. */
struct frame {
	struct watcher *w;
	struct mp_writer *out;
	size_t events_at; /* where the event array's count is patched */
	uint32_t n_events;
	int64_t rev;
	size_t start;    /* output length when the frame began */
	bool open;
};

static struct mp_writer *frame_head(struct watcher *w, int64_t rev,
                                    struct exec_hdr *h, unsigned n_fields)
{
	struct mp_writer *out = conn_answer_begin(w->conn);

	if (out == NULL)
		return NULL;
	mp_put_map(out, n_fields);
	mp_put_key(out, "id");
	mp_put_uint(out, 0);
	mp_put_key(out, "op");
	mp_put_uint(out, PROTO_OP_EVENTS);
	mp_put_key(out, "wid");
	mp_put_uint(out, w->wid);
	mp_put_key(out, "h");
	exec_put_header(out, h, rev);
	return out;
}

static void frame_open(struct frame *f, struct watch_hub *hub, int64_t rev)
{
	struct exec_hdr h = fsm_header(hub->fsm);

	f->out = frame_head(f->w, rev, &h, 6);
	f->rev = rev;
	f->n_events = 0;
	f->open = f->out != NULL;
	if (!f->open)
		return;
	f->start = f->out->b->len;
	mp_put_key(f->out, "ev");
	f->events_at = mp_open(f->out, false);
}

static void frame_close(struct frame *f, bool more)
{
	if (!f->open)
		return;
	mp_close(f->out, f->events_at, f->n_events);
	mp_put_key(f->out, "more");
	mp_put_bool(f->out, more);
	conn_answer_end(f->w->conn, 0, PROTO_OP_EVENTS);
	f->open = false;
}

static void put_event(struct frame *f, const struct mvcc_change *ch)
{
	struct mp_writer *out = f->out;
	const struct mvcc_kv *kv = &ch->kv;
	const struct mvcc_kv *p = &ch->prev;

	mp_put_array(out, 3);
	mp_put_uint(out, ch->is_delete ? CAIRN_EVENT_DELETE : CAIRN_EVENT_PUT);
	proto_put_kv(out, kv->key, kv->key_len, ch->is_delete ? NULL : kv->value,
	             kv->value_len, kv->create_rev, kv->mod_rev, kv->version,
	             kv->lease);
	if (f->w->prev_kv && ch->has_prev)
		proto_put_kv(out, p->key, p->key_len, p->value, p->value_len,
		             p->create_rev, p->mod_rev, p->version, p->lease);
	else
		mp_put_nil(out);
	f->n_events++;
}

/* ---- pumping -------------------------------------------------------------- */

struct pump {
	struct watch_hub *hub;
	struct frame frame;
	int64_t done_rev; /* every revision up to this one is delivered */
	bool stopped;
};

static bool congested(const struct watcher *w)
{
	return conn_unsent(w->conn) >= WATCH_OUT_HIGH;
}

static bool on_change(const struct mvcc_change *ch, void *arg)
{
	struct pump *p = arg;
	struct frame *f = &p->frame;

	if (f->open && ch->rev != f->rev) {
		frame_close(f, false);
		p->done_rev = ch->rev - 1;
		if (congested(f->w)) {
			p->stopped = true; /* resume from ch->rev when drained */
			return false;
		}
	}
	if ((ch->is_delete && f->w->no_delete) || (!ch->is_delete && f->w->no_put))
		return true;
	if (f->open && f->out->b->len - f->start > WATCH_FRAME_MAX)
		frame_close(f, true); /* a huge revision: split it */
	if (!f->open)
		frame_open(f, p->hub, ch->rev);
	if (!f->open) {
		p->stopped = true; /* the connection is gone */
		return false;
	}
	put_event(f, ch);
	return true;
}

static void end_watcher(struct watch_hub *h, struct watcher *w, int code,
                        const char *msg);

static void pump_one(struct watch_hub *h, struct watcher *w, uint64_t now)
{
	struct mvcc *m = h->fsm->mvcc;
	int64_t cur = mvcc_rev(m);
	struct pump p = {h, {w, NULL, 0, 0, 0, 0, false}, cur, false};
	int rv;

	if (w->next_rev > cur || congested(w))
		return;
	rv = mvcc_changes(m, w->next_rev, cur, w->key, w->key_len, w->end,
	                  w->end_len, on_change, &p);
	if (rv == CAIRN_ECOMPACTED) {
		end_watcher(h, w, rv, "the history this watch needs was compacted");
		return;
	}
	if (p.frame.open) {
		frame_close(&p.frame, false);
		w->last_sent = now;
	}
	if (p.stopped)
		w->last_sent = now;
	w->next_rev = (p.stopped ? p.done_rev : cur) + 1;
}

void watch_pump(struct watch_hub *h)
{
	struct watcher *w;
	struct watcher *next;
	uint64_t now;

	if (!h->pump_needed || h->watchers == NULL)
		return;
	h->pump_needed = false;
	now = uv_now(h->progress.loop);
	for (w = h->watchers; w != NULL; w = next) {
		next = w->next; /* pump_one may end w, and only w */
		pump_one(h, w, now);
	}
}

/* ---- lifecycle ------------------------------------------------------------ */

static void unlink_watcher(struct watch_hub *h, struct watcher *w)
{
	if (w->prev != NULL)
		w->prev->next = w->next;
	else
		h->watchers = w->next;
	if (w->next != NULL)
		w->next->prev = w->prev;
	h->n_watchers--;
}

static void free_watcher(struct watch_hub *h, struct watcher *w)
{
	unlink_watcher(h, w);
	conn_put(w->conn);
	free(w->key);
	free(w->end);
	free(w);
}

/* Tells the client the watch is over, with why, and frees it. */
static void end_watcher(struct watch_hub *h, struct watcher *w, int code,
                        const char *msg)
{
	struct exec_hdr hdr = fsm_header(h->fsm);
	int64_t crev = mvcc_compact_rev(h->fsm->mvcc);
	struct mp_writer *out;

	out = frame_head(w, mvcc_rev(h->fsm->mvcc), &hdr, 8);
	if (out != NULL) {
		mp_put_key(out, "cancel");
		mp_put_bool(out, true);
		mp_put_key(out, "err");
		mp_put_uint(out, (uint64_t)code);
		mp_put_key(out, "msg");
		mp_put_str(out, msg, strlen(msg));
		mp_put_key(out, "crev");
		mp_put_int(out, crev);
		conn_answer_end(w->conn, 0, PROTO_OP_EVENTS);
	}
	log_debug("watch %llu ended: %s", (unsigned long long)w->wid, msg);
	free_watcher(h, w);
}

static struct watcher *find(struct watch_hub *h, struct conn *c, uint64_t wid)
{
	struct watcher *w;

	for (w = h->watchers; w != NULL; w = w->next)
		if (w->conn == c && w->wid == wid)
			return w;
	return NULL;
}

static uint8_t *dup_bytes(const uint8_t *p, uint32_t len)
{
	uint8_t *q = malloc(len ? len : 1);

	if (q != NULL && len > 0)
		memcpy(q, p, len);
	return q;
}

/* Opens an answer to req: a map of 3 + extra fields, id, op and header
 * written. NULL if c is closed. */
static struct mp_writer *answer_head(struct watch_hub *h, struct conn *c,
                                     const struct proto_req *req,
                                     unsigned extra)
{
	struct exec_hdr hdr = fsm_header(h->fsm);
	struct mp_writer *out = conn_answer_begin(c);

	if (out == NULL)
		return NULL;
	mp_put_map(out, 3 + extra);
	mp_put_key(out, "id");
	mp_put_uint(out, req->id);
	mp_put_key(out, "op");
	mp_put_uint(out, req->op);
	mp_put_key(out, "h");
	exec_put_header(out, &hdr, mvcc_rev(h->fsm->mvcc));
	return out;
}

static void answer_created(struct watch_hub *h, struct conn *c,
                           const struct proto_req *req, struct watcher *w)
{
	struct mp_writer *out = answer_head(h, c, req, 2);

	if (out == NULL)
		return;
	mp_put_key(out, "wid");
	mp_put_uint(out, w->wid);
	mp_put_key(out, "rev");
	mp_put_int(out, w->next_rev);
	conn_answer_end(c, req->id, req->op);
}

void watch_create(struct watch_hub *h, struct conn *c, uint64_t wid,
                  const struct proto_req *req)
{
	struct mvcc *m = h->fsm->mvcc;
	struct mp_writer *out;
	struct watcher *w;
	char msg[160];

	if (req->revision != 0 && req->revision <= mvcc_compact_rev(m)) {
		snprintf(msg, sizeof msg,
		         "revision %lld has been compacted (compact revision %lld)",
		         (long long)req->revision, (long long)mvcc_compact_rev(m));
		out = conn_answer_begin(c);
		if (out == NULL)
			return; /* the connection is closing */
		exec_error_crev(out, req->id, req->op, CAIRN_ECOMPACTED, msg,
		                mvcc_compact_rev(m));
		conn_answer_end(c, req->id, req->op);
		return;
	}
	w = calloc(1, sizeof *w);
	if (w == NULL || (w->key = dup_bytes(req->key, req->key_len)) == NULL ||
	    (w->end = dup_bytes(req->end, req->end_len)) == NULL) {
		if (w != NULL)
			free(w->key);
		free(w);
		conn_error(c, req->id, req->op, CAIRN_ENOMEM, "out of memory", 0);
		return;
	}
	w->key_len = req->key_len;
	w->end_len = req->end_len;
	w->conn = c;
	conn_get(c);
	w->wid = wid;
	w->prev_kv = req->prev_kv;
	w->no_put = req->no_put;
	w->no_delete = req->no_delete;
	w->progress_notify = req->progress_notify;
	w->next_rev = req->revision != 0 ? req->revision : mvcc_rev(m) + 1;
	w->last_sent = uv_now(h->progress.loop);
	w->next = h->watchers;
	if (h->watchers != NULL)
		h->watchers->prev = w;
	h->watchers = w;
	h->n_watchers++;
	answer_created(h, c, req, w);
	watch_kick(h);
}

static void answer_plain(struct watch_hub *h, struct conn *c,
                         const struct proto_req *req)
{
	if (answer_head(h, c, req, 0) != NULL)
		conn_answer_end(c, req->id, req->op);
}

void watch_cancel(struct watch_hub *h, struct conn *c,
                  const struct proto_req *req)
{
	struct watcher *w = find(h, c, req->watch_id);

	if (w == NULL) {
		conn_error(c, req->id, req->op, CAIRN_EINVAL,
		           "no such watch on this connection", 0);
		return;
	}
	free_watcher(h, w);
	answer_plain(h, c, req);
}

static void send_progress(struct watch_hub *h, struct watcher *w, uint64_t now)
{
	struct exec_hdr hdr = fsm_header(h->fsm);
	struct mp_writer *out;

	out = frame_head(w, w->next_rev - 1, &hdr, 5);
	if (out == NULL)
		return;
	mp_put_key(out, "prog");
	mp_put_bool(out, true);
	conn_answer_end(w->conn, 0, PROTO_OP_EVENTS);
	w->last_sent = now;
}

void watch_progress(struct watch_hub *h, struct conn *c,
                    const struct proto_req *req)
{
	int64_t cur = mvcc_rev(h->fsm->mvcc);
	uint64_t now = uv_now(h->progress.loop);
	struct watcher *w;

	answer_plain(h, c, req);
	for (w = h->watchers; w != NULL; w = w->next)
		if (w->conn == c && w->next_rev > cur)
			send_progress(h, w, now);
}

void watch_conn_closed(struct watch_hub *h, struct conn *c)
{
	struct watcher *w;
	struct watcher *next;

	for (w = h->watchers; w != NULL; w = next) {
		next = w->next;
		if (w->conn == c)
			free_watcher(h, w);
	}
}

/* Idle caught-up watchers that asked for it hear the current revision. */
static void progress_cb(uv_timer_t *t)
{
	struct watch_hub *h = t->data;
	int64_t cur = mvcc_rev(h->fsm->mvcc);
	uint64_t now = uv_now(t->loop);
	struct watcher *w;

	for (w = h->watchers; w != NULL; w = w->next)
		if (w->progress_notify && w->next_rev > cur &&
		    now - w->last_sent >= h->progress_ms)
			send_progress(h, w, now);
}

void watch_hub_init(struct watch_hub *h, uv_loop_t *loop, struct fsm *fsm,
                    unsigned progress_ms)
{
	memset(h, 0, sizeof *h);
	h->fsm = fsm;
	h->progress_ms = progress_ms;
	uv_timer_init(loop, &h->progress);
	h->progress.data = h;
	uv_timer_start(&h->progress, progress_cb, progress_ms, progress_ms);
	uv_unref((uv_handle_t *)&h->progress);
}

void watch_hub_close(struct watch_hub *h, uv_close_cb cb)
{
	while (h->watchers != NULL)
		free_watcher(h, h->watchers);
	uv_close((uv_handle_t *)&h->progress, cb);
}
