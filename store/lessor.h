/*
 * lessor: the leader's side of leases. It times them, proposes a revoke for
 * each one that expires, and answers keep-alives and TTL questions, which
 * need the clock only the leader keeps (see lease.h for why a leader change
 * renews every lease). Followers answer those with "not the leader".
 */
#ifndef CAIRN_STORE_LESSOR_H
#define CAIRN_STORE_LESSOR_H

#include <stdbool.h>
#include <uv.h>

#include "proto.h"

#define LESSOR_TICK_MS 100

struct node;
struct conn;

struct lessor {
	uv_timer_t timer;
	struct node *node;
	bool leading; /* the leases were renewed for this term of leadership */
};

void lessor_start(struct lessor *l, uv_loop_t *loop, struct node *n);
void lessor_stop(struct lessor *l, uv_close_cb cb);

/* Answers LEASE_KEEPALIVE, LEASE_TTL or LEASE_LIST on c. */
void lessor_answer(struct lessor *l, struct conn *c, const struct proto_req *req);

#endif
