/*
 * compactor: automatic compaction of the keyspace's history, decided by the
 * leader and applied through the log like any compaction.
 *
 * Two modes, as etcd's: "periodic" keeps at least the given duration of
 * history (the leader samples the revision at intervals and compacts to the
 * revision it saw that long ago); "revision" keeps the given number of
 * revisions (compacting once enough new ones gathered past that, so a busy
 * store does not compact on every write). A retention of 0 turns it off.
 */
#ifndef CAIRN_STORE_COMPACTOR_H
#define CAIRN_STORE_COMPACTOR_H

#include <stdint.h>
#include <uv.h>

struct node;

#define COMPACTOR_SAMPLES 64

enum compaction_mode { COMPACT_PERIODIC = 0, COMPACT_REVISION };

struct compactor {
	uv_timer_t timer;
	struct node *node;
	int mode;
	uint64_t retention; /* ms (periodic) or revisions (revision) */
	struct {
		uint64_t at;
		int64_t rev;
	} samples[COMPACTOR_SAMPLES];
	unsigned n_samples;
	unsigned next;
};

void compactor_start(struct compactor *c, uv_loop_t *loop, struct node *n,
                     int mode, uint64_t retention);
void compactor_stop(struct compactor *c, uv_close_cb cb);

#endif
