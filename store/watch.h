/*
 * watch: the watch streams a member serves from its applied state.
 *
 * How it works: a watcher is nothing but a key range, its filters and the
 * next revision it has to deliver. It never holds events of its own. Whenever
 * the keyspace moves on or a slow client's output drains, the hub "pumps"
 * each watcher that is behind: it walks the keyspace's change history from the
 * watcher's next revision to the current one (mvcc_changes) and encodes the
 * matching changes straight into the connection's output, one EVENTS frame
 * per revision (split into several, flagged 'more', past WATCH_FRAME_MAX).
 * Live events and catching up from history are the same path, so the order is
 * the history's order: by revision, none twice, none skipped.
 *
 * A slow consumer: pumping stops at a revision boundary as soon as the
 * connection holds WATCH_OUT_HIGH bytes not yet written; the watcher resumes
 * from where it stopped once they are written. So the server never holds
 * more than about WATCH_OUT_HIGH + WATCH_FRAME_MAX per connection for
 * watches, however far behind a client is. If compaction removes the history
 * a lagging watcher still needs, the watcher is ended with CAIRN_ECOMPACTED
 * and the compact revision.
 *
 * All calls on the loop thread.
 */
#ifndef CAIRN_STORE_WATCH_H
#define CAIRN_STORE_WATCH_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "proto.h"

#define WATCH_OUT_HIGH (4u << 20)
#define WATCH_FRAME_MAX (1u << 20)

struct conn;
struct fsm;
struct watcher;

struct watch_hub {
	struct fsm *fsm;
	struct watcher *watchers; /* all of them, a list */
	uv_timer_t progress;
	unsigned progress_ms;
	bool pump_needed;
	uint64_t n_watchers;
};

/* Starts the hub (its progress timer ticks every progress_ms). */
void watch_hub_init(struct watch_hub *h, uv_loop_t *loop, struct fsm *fsm,
                    unsigned progress_ms);
/* Frees every watcher and closes the timer (cb NULL: fire and forget). */
void watch_hub_close(struct watch_hub *h, uv_close_cb cb);

/* WATCH: creates a watcher on c and answers req. */
void watch_create(struct watch_hub *h, struct conn *c, uint64_t wid,
                  const struct proto_req *req);
/* WATCH_CANCEL: ends the watcher req->watch_id of c and answers req. */
void watch_cancel(struct watch_hub *h, struct conn *c,
                  const struct proto_req *req);
/* WATCH_PROGRESS: answers req; every caught-up watcher of c sends progress. */
void watch_progress(struct watch_hub *h, struct conn *c,
                    const struct proto_req *req);
/* Drops every watcher of c (it is closing). */
void watch_conn_closed(struct watch_hub *h, struct conn *c);

/* Marks that watchers may be behind: the keyspace moved on, or output
 * drained. The next watch_pump() delivers. */
static inline void watch_kick(struct watch_hub *h)
{
	h->pump_needed = true;
}
/* Brings every watcher that can take more up to the current revision. */
void watch_pump(struct watch_hub *h);

#endif
