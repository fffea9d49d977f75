/*
 * node: the one module that talks to libraft. It owns the raft instance, its
 * libuv disk and network backends, and the state machine, and offers the
 * server three things: propose a write (group-committed), wait for a read to
 * be linearizable, and tell who leads.
 *
 * Group commit: writes that arrive while NODE_MAX_INFLIGHT entries are in
 * flight wait in the next batch; at the end of each loop iteration (a check
 * handle) the batch, if any, becomes one raft entry. Linearizable reads wait
 * for the next entry proposed after they arrived (a write batch, or a barrier
 * if none is coming) to be applied: that confirms this member still led when
 * the read arrived, and many reads share one confirmation (Raft dissertation
 * §6.4, with the log standing in for a heartbeat round).
 *
 * libraft 0.15 specifics (LIBRAFT.md): pre-vote is on; a barrier is proposed as
 * soon as this member becomes leader and reads are held until it applies; the
 * state is polled by a timer since there is no state-change callback; a member
 * whose raft turns unavailable (a disk I/O error) exits loudly.
 */
#ifndef CAIRN_STORE_NODE_H
#define CAIRN_STORE_NODE_H

#include <raft.h>
#include <raft/uv.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "buf.h"
#include "compactor.h"
#include "config.h"
#include "fsm.h"
#include "lessor.h"

#define NODE_MAX_INFLIGHT 4

struct conn;

/* A client request waiting on the node: who to answer and the request bytes
 * (copied), decoded again when its turn comes. */
struct waiter {
	struct conn *conn; /* holds a reference */
	uint8_t *payload;
	uint32_t len;
	uint64_t id;
	unsigned op;
};

struct waitq {
	struct waiter *items;
	uint32_t n;
	uint32_t cap;
};

struct proposal;

struct node {
	uv_loop_t *loop;
	const struct config *cfg;
	struct raft raft;
	struct raft_io io;
	struct raft_uv_transport transport;
	struct fsm fsm;
	uv_timer_t poll;
	uv_check_t flush;
	struct compactor compactor;
	struct lessor lessor;
	bool leader;    /* as of the last poll */
	bool ready;     /* leader and its first barrier applied */
	bool closing;
	bool checking_removal;   /* a member_check_removed() is running */
	uint64_t leaderless_since; /* loop time; 0 while a leader is known */
	uint64_t last_removal_check;
	/* group commit */
	struct buf batch_buf;
	struct fsm_entry batch;
	struct waitq batch_waiters;
	uint64_t next_batch;
	unsigned inflight;
	bool commit_notice; /* a write committed since the last append went out */
	int notice_fd;      /* timerfd that sends the commit notice; -1: none */
	uv_poll_t notice;
	bool notice_armed;
	uint64_t committed_at;   /* uv_hrtime() of the last write commit; 0: scored */
	unsigned quick;          /* how often commits were followed quickly */
	uint64_t seen_snapshots; /* fsm.snapshots as of the last poll */
	uint64_t trim_at;        /* loop time to return freed memory; 0: none */
	uint64_t seen_applied;   /* fsm.applied as of the last poll */
	uint64_t busy_at;        /* loop time it last changed */
	bool idle_snapshot;      /* one was asked for since then */
	struct proposal *proposals; /* in flight, a list */
	/* reads waiting for the next proposal */
	struct waitq reads;
	/* answering from apply */
	struct proposal *answering;
	uint32_t answering_index;
	struct mp_writer answer_w;
	struct buf *answer_buf;
	size_t answer_frame;
	void (*on_closed)(struct node *n);
};

/* Sets up raft (bootstrapping a new data directory from cfg's initial
 * cluster) and starts it. Returns 0, or a CAIRN_E* code with a message in
 * errbuf. */
int node_start(struct node *n, uv_loop_t *loop, const struct config *cfg,
               char *errbuf, size_t errlen);

/* Stops raft and closes every handle; cb fires when all are closed. Waiters
 * get CAIRN_ESHUTDOWN. */
void node_stop(struct node *n, void (*cb)(struct node *n));

/* The leader's member id as this member knows it, 0 when none. */
uint64_t node_leader(const struct node *n);

/* Queues a decoded write for the next entry (the caller checked that this
 * member leads). payload is copied. */
void node_propose(struct node *n, struct conn *c, const uint8_t *payload,
                  uint32_t len, uint64_t id, unsigned op);

/* Proposes one request (an encoded map) that no client waits for, such as a
 * compaction; what names it in the log if it fails. Returns 0 or an error. */
int node_propose_internal(struct node *n, const uint8_t *payload, size_t len,
                          const char *what);

/* Queues a linearizable read (the caller checked that this member leads). */
void node_read(struct node *n, struct conn *c, const uint8_t *payload,
               uint32_t len, uint64_t id, unsigned op);

#endif
