/*
 * member: membership changes, made by the leader through libraft's
 * configuration changes (Raft dissertation chapter 4, one server at a time).
 *
 * Add: the new member enters as a spare, then becomes a standby (a learner:
 * it receives the log, or a snapshot, but does not vote), so a fresh member
 * never counts toward a quorum before it holds the data. Promote: libraft
 * catches the learner up in rounds, then makes it a voter. Remove: the
 * member leaves the configuration. The leader stops replicating to it at
 * once, so a removed member usually never sees the entry that removed it;
 * instead, once it has heard from no leader for a while, it asks the members
 * whose client addresses it knows (member_check_removed) and stops when one
 * that has a leader lists it no more. Pre-vote keeps it from disrupting the
 * others meanwhile. Each change is answered once it is committed.
 */
#ifndef CAIRN_STORE_MEMBER_H
#define CAIRN_STORE_MEMBER_H

#include <stdint.h>

#include "proto.h"

struct node;
struct conn;

/* Starts the change req asks for (MEMBER_ADD, _REMOVE, _PROMOTE); the caller
 * checked that this member leads. c is answered when it is done. */
void member_change(struct node *n, struct conn *c, const struct proto_req *req);

/* Asks, off the loop thread, whether this member is still in the cluster;
 * stops the process (SIGTERM) if a member that has a leader says it is not.
 * At most one check at a time. */
void member_check_removed(struct node *n);

/* From one answer map another member sent (HELLO or MEMBERS): sets *leader
 * to its "ldr" and *listed to whether self is in its "ms" list (1 or 0),
 * leaving each alone when absent. The bytes come from the network: a
 * malformed map is read as far as it goes, and a malformed list says
 * nothing (*listed is left alone). Any thread. */
void member_read_answer(const uint8_t *p, uint32_t len, uint64_t self,
                        uint64_t *leader, int *listed);

#endif
