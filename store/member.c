/* member: membership changes through libraft (see member.h). */
#include "member.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <raft.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "cairn.h"
#include "config.h"
#include "frame.h"
#include "fsm.h"
#include "log.h"
#include "node.h"
#include "secure_fd.h"
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
	if (req->peer_len == 0 || req->peer_len >= cap)
		return false;
	memcpy(peer, req->peer, req->peer_len);
	peer[req->peer_len] = '\0';
	return proto_valid_address(peer);
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

/* ---- learning of one's removal --------------------------------------------- */

struct removal_check {
	uv_work_t work;
	struct node *node;
	uint64_t self;
	char addrs[FSM_MAX_MEMBERS][PROTO_MAX_ATTR];
	unsigned n;
	bool removed;
	char who[PROTO_MAX_ATTR];
	bool secure; /* the members' client port speaks the secure channel */
	uint8_t key[SECURE_KEY_BYTES];
};

static bool send_request(struct secure_fd *sf, uint64_t id, unsigned op)
{
	struct buf b = BUF_INIT;
	struct mp_writer w;
	size_t at = proto_frame_begin(&b);
	bool ok;

	mp_writer_init(&w, &b);
	mp_put_map(&w, op == PROTO_OP_HELLO ? 3 : 2);
	mp_put_key(&w, "id");
	mp_put_uint(&w, id);
	mp_put_key(&w, "op");
	mp_put_uint(&w, op);
	if (op == PROTO_OP_HELLO) {
		mp_put_key(&w, "ver");
		mp_put_uint(&w, PROTO_VERSION);
	}
	ok = w.err == 0 && proto_frame_end(&b, at, PROTO_REQ_FRAME_MAX) == 0 &&
	     secure_fd_send(sf, b.data, b.len) == 0;
	buf_free(&b);
	return ok;
}

/* An "ms" list: 1 if self is in it, 0 if not, -1 if it is malformed (then
 * it says nothing: a list cut short must not read as "removed"). */
static int read_members(struct mp_reader *r, uint64_t self)
{
	const char *k;
	uint32_t klen;
	uint32_t n;
	uint32_t f;
	uint64_t id;
	int listed = 0;

	if (!mp_read_array(r, &n))
		return -1;
	while (n-- > 0) {
		if (!mp_read_map(r, &f))
			return -1;
		while (f-- > 0) {
			if (!mp_read_str(r, &k, &klen))
				return -1;
			if (MP_KEY_IS(k, klen, "id")) {
				if (!mp_read_uint(r, &id))
					return -1;
				listed |= id == self;
			} else if (!mp_skip(r)) {
				return -1;
			}
		}
	}
	return listed;
}

void member_read_answer(const uint8_t *p, uint32_t len, uint64_t self,
                        uint64_t *leader, int *listed)
{
	struct mp_reader r;
	const char *k;
	uint32_t klen;
	uint32_t n;
	int in_list;

	mp_reader_init(&r, p, len);
	if (!mp_read_map(&r, &n))
		return;
	while (n-- > 0 && mp_read_str(&r, &k, &klen)) {
		if (MP_KEY_IS(k, klen, "ldr")) {
			mp_read_uint(&r, leader);
		} else if (MP_KEY_IS(k, klen, "ms")) {
			in_list = read_members(&r, self);
			if (in_list < 0)
				return;
			*listed = in_list;
		} else {
			mp_skip(&r);
		}
	}
}

/* One member asked with blocking I/O (a worker thread, 1 s timeouts), over
 * the secure channel unless the cluster runs plaintext. Returns true when it
 * has a leader and answered the member list. */
static bool ask(const struct removal_check *rc, const char *addr,
                bool *removed)
{
	struct secure_fd sf;
	uint64_t self = rc->self;
	struct timeval tv = {1, 0};
	struct sockaddr_in sa;
	struct frame_reader fr;
	const uint8_t *payload;
	char host[PROTO_MAX_ATTR];
	char *colon;
	uint64_t leader = 0;
	int listed = -1;
	uint32_t len;
	uint8_t *p;
	size_t room;
	ssize_t k;
	int fd;

	snprintf(host, sizeof host, "%s", addr);
	colon = strrchr(host, ':');
	if (colon == NULL)
		return false;
	*colon = '\0';
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return false;
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return false;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	frame_reader_init(&fr, PROTO_RESP_FRAME_MAX);
	memset(&sf, 0, sizeof sf);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
	    secure_fd_open(&sf, fd, rc->secure ? rc->key : NULL) == 0 &&
	    send_request(&sf, 1, PROTO_OP_HELLO) &&
	    send_request(&sf, 2, PROTO_OP_MEMBERS)) {
		while (listed < 0 && frame_space(&fr, 65536, &p, &room) == 0 &&
		       (k = secure_fd_recv(&sf, p, room)) > 0) {
			frame_commit(&fr, (size_t)k);
			while (frame_next(&fr, &payload, &len) == 1)
				member_read_answer(payload, len, self, &leader,
				                   &listed);
		}
	}
	if (sf.err[0] != '\0')
		log_debug("asking %s whether this member was removed: %s", addr,
		          sf.err);
	secure_fd_close(&sf);
	frame_reader_close(&fr);
	close(fd);
	if (leader == 0 || listed < 0)
		return false;
	*removed = listed == 0;
	return true;
}

static void check_work(uv_work_t *w)
{
	struct removal_check *rc = w->data;
	unsigned i;

	for (i = 0; i < rc->n; i++) {
		if (ask(rc, rc->addrs[i], &rc->removed)) {
			snprintf(rc->who, sizeof rc->who, "%s", rc->addrs[i]);
			return;
		}
	}
}

static void check_done(uv_work_t *w, int status)
{
	struct removal_check *rc = w->data;
	struct node *n = rc->node;

	n->checking_removal = false;
	if (status == 0 && rc->removed && !n->closing) {
		log_error("this member (id %llu) was removed from the cluster (the "
		          "member at %s no longer lists it): stopping",
		          (unsigned long long)rc->self, rc->who);
		n->closing = true;
		uv_kill(uv_os_getpid(), SIGTERM);
	}
	sodium_memzero(rc->key, sizeof rc->key);
	free(rc);
}

void member_check_removed(struct node *n)
{
	struct removal_check *rc;
	unsigned i;

	if (n->checking_removal || n->fsm.n_members == 0)
		return;
	rc = calloc(1, sizeof *rc);
	if (rc == NULL)
		return;
	rc->node = n;
	rc->self = n->cfg->id;
	rc->secure = !n->cfg->insecure;
	memcpy(rc->key, n->cfg->secret, sizeof rc->key);
	for (i = 0; i < n->fsm.n_members; i++) {
		if (n->fsm.members[i].id == rc->self ||
		    n->fsm.members[i].client[0] == '\0')
			continue;
		memcpy(rc->addrs[rc->n++], n->fsm.members[i].client, PROTO_MAX_ATTR);
	}
	rc->work.data = rc;
	if (rc->n == 0 || uv_queue_work(n->loop, &rc->work, check_work,
	                                check_done) != 0) {
		sodium_memzero(rc->key, sizeof rc->key);
		free(rc);
		return;
	}
	n->checking_removal = true;
}
