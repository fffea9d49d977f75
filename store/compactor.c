/* compactor: automatic compaction (see compactor.h). */
#include "compactor.h"

#include <string.h>

#include "buf.h"
#include "fsm.h"
#include "log.h"
#include "mvcc.h"
#include "node.h"

static void propose(struct compactor *c, int64_t rev)
{
	struct buf b = BUF_INIT;

	if (fsm_encode_compact(&b, rev) == 0) {
		log_info("auto compaction: compacting the history below revision %lld",
		         (long long)rev);
		node_propose_internal(c->node, b.data, b.len, "auto compaction");
	}
	buf_free(&b);
}

/* Periodic: the newest sample at least 'retention' old gives the revision. */
static int64_t periodic_target(struct compactor *c, uint64_t now, int64_t cur)
{
	int64_t target = 0;
	unsigned i;

	c->samples[c->next].at = now;
	c->samples[c->next].rev = cur;
	c->next = (c->next + 1) % COMPACTOR_SAMPLES;
	if (c->n_samples < COMPACTOR_SAMPLES)
		c->n_samples++;
	for (i = 0; i < c->n_samples; i++)
		if (now - c->samples[i].at >= c->retention &&
		    c->samples[i].rev > target)
			target = c->samples[i].rev;
	return target;
}

static void tick(uv_timer_t *t)
{
	struct compactor *c = t->data;
	struct node *n = c->node;
	struct mvcc *m = n->fsm.mvcc;
	int64_t cur = mvcc_rev(m);
	int64_t target;

	if (c->mode == COMPACT_PERIODIC) {
		target = periodic_target(c, uv_now(t->loop), cur);
	} else {
		/* Wait for a tenth of the retention beyond it, then catch up. */
		target = cur - (int64_t)c->retention;
		if (target - mvcc_compact_rev(m) < (int64_t)(c->retention / 10 + 1))
			target = 0;
	}
	if (!n->ready || target <= mvcc_compact_rev(m))
		return;
	propose(c, target);
}

void compactor_start(struct compactor *c, uv_loop_t *loop, struct node *n,
                     int mode, uint64_t retention)
{
	uint64_t every;

	memset(c, 0, sizeof *c);
	c->node = n;
	c->mode = mode;
	c->retention = retention;
	uv_timer_init(loop, &c->timer);
	c->timer.data = c;
	if (retention == 0)
		return;
	/* Periodic: samples cover the retention twice over; revision: 1 s. */
	every = mode == COMPACT_PERIODIC ? retention * 2 / COMPACTOR_SAMPLES : 1000;
	if (every < 100)
		every = 100;
	uv_timer_start(&c->timer, tick, every, every);
	uv_unref((uv_handle_t *)&c->timer);
}

void compactor_stop(struct compactor *c, uv_close_cb cb)
{
	uv_close((uv_handle_t *)&c->timer, cb);
}
