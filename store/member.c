/* member: membership changes through libraft (see member.h). */
#include "member.h"

#include <raft.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "config.h"
#include "log.h"
#include "node.h"
#include "server.h"

struct change {
	struct raft_change req;
	struct node *node;
	struct conn *conn; /* holds a reference */
	uint64_t id;
	unsigned op;
	uint64_t member;
	bool assign_next; /* MEMBER_ADD: the spare still has to become standby */
};

static int raft_to_cairn(int rv, uint64_t member, char *msg, size_t len)
{
	switch (rv) {
	case RAFT_CANTCHANGE:
		snprintf(msg, len, "another membership change is in progress");
		return CAIRN_EBUSY;
	case RAFT_NOTFOUND:
	case RAFT_BADID:
		snprintf(msg, len, "member %llu is not in the cluster",
		         (unsigned long long)member);
		return CAIRN_ENOMEMBER;
	case RAFT_DUPLICATEID:
	case RAFT_DUPLICATEADDRESS:
		snprintf(msg, len, "member %llu or its peer address is already in "
		         "the cluster", (unsigned long long)member);
		return CAIRN_EINVAL;
	case RAFT_BADROLE:
		snprintf(msg, len, "member %llu already has that role",
		         (unsigned long long)member);
		return CAIRN_EINVAL;
	case RAFT_NOTLEADER:
	case RAFT_LEADERSHIPLOST:
		snprintf(msg, len, "leadership lost during the change; check "
		         "'member list' before retrying");
		return CAIRN_EINDETERMINATE;
	default:
		snprintf(msg, len, "membership change failed: %s", raft_strerror(rv));
		return CAIRN_EINTERNAL;
	}
}

static void finish(struct change *ch, int rv)
{
	char msg[160];
	int code;

	if (rv == 0) {
		log_info("membership change for member %llu committed",
		         (unsigned long long)ch->member);
		conn_answer_members(ch->conn, ch->id, ch->op);
	} else {
		code = raft_to_cairn(rv, ch->member, msg, sizeof msg);
		log_warn("membership change for member %llu: %s",
		         (unsigned long long)ch->member, msg);
		conn_error(ch->conn, ch->id, ch->op, code, msg, 0);
	}
	conn_put(ch->conn);
	free(ch);
}

static void change_cb(struct raft_change *req, int status)
{
	struct change *ch = req->data;
	int rv;

	if (status == 0 && ch->assign_next) {
		ch->assign_next = false;
		rv = raft_assign(&ch->node->raft, &ch->req, ch->member, RAFT_STANDBY,
		                 change_cb);
		if (rv == 0)
			return;
		status = rv;
	}
	finish(ch, status);
}

static bool valid_peer(const struct proto_req *req, char *peer, size_t cap)
{
	unsigned a, b, c, d, port;
	char tail;

	if (req->peer_len == 0 || req->peer_len >= cap)
		return false;
	memcpy(peer, req->peer, req->peer_len);
	peer[req->peer_len] = '\0';
	return sscanf(peer, "%u.%u.%u.%u:%u%c", &a, &b, &c, &d, &port, &tail) == 5 &&
	       a < 256 && b < 256 && c < 256 && d < 256 && port > 0 && port < 65536;
}

void member_change(struct node *n, struct conn *c, const struct proto_req *req)
{
	struct change *ch;
	char peer[CONFIG_ADDR_LEN];
	char msg[160];
	int rv;

	if (req->member == 0) {
		conn_error(c, req->id, req->op, CAIRN_EINVAL,
		           "a member id is a positive integer", 0);
		return;
	}
	if (req->op == PROTO_OP_MEMBER_ADD && !valid_peer(req, peer, sizeof peer)) {
		conn_error(c, req->id, req->op, CAIRN_EINVAL,
		           "member add needs a peer address like 10.0.0.4:2380", 0);
		return;
	}
	ch = calloc(1, sizeof *ch);
	if (ch == NULL) {
		conn_error(c, req->id, req->op, CAIRN_ENOMEM, "out of memory", 0);
		return;
	}
	ch->req.data = ch;
	ch->node = n;
	ch->conn = c;
	ch->id = req->id;
	ch->op = req->op;
	ch->member = req->member;
	conn_get(c);
	switch (req->op) {
	case PROTO_OP_MEMBER_ADD:
		ch->assign_next = true;
		rv = raft_add(&n->raft, &ch->req, req->member, peer, change_cb);
		break;
	case PROTO_OP_MEMBER_PROMOTE:
		rv = raft_assign(&n->raft, &ch->req, req->member, RAFT_VOTER,
		                 change_cb);
		break;
	default:
		rv = raft_remove(&n->raft, &ch->req, req->member, change_cb);
		break;
	}
	if (rv == RAFT_NOTLEADER) { /* nothing was proposed: redirect */
		conn_error(c, req->id, req->op, CAIRN_ENOTLEADER,
		           "this member is no longer the leader", node_leader(n));
	} else if (rv != 0) {
		int code = raft_to_cairn(rv, req->member, msg, sizeof msg);
		conn_error(c, req->id, req->op, code, msg, 0);
	}
	if (rv != 0) {
		conn_put(c);
		free(ch);
	}
}
