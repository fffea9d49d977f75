/*
 * node: libraft, group commit and read confirmation (see node.h).
 *
 * Happy path of a write: the server calls node_propose(), which appends the
 * request's bytes to the open batch; the check handle, at the end of the loop
 * iteration, turns the batch into one raft entry (raft_apply) unless
 * NODE_MAX_INFLIGHT entries are already in flight. When the entry is applied,
 * fsm calls answer_begin/answer_end for each request, which write the answers
 * straight into the waiting connections' output buffers; then the raft_apply
 * callback serves the linearizable reads that rode on the entry.
 *
 * Failure modes: if raft_apply fails, or its callback reports an error, every
 * request of the batch gets an error answer: RAFT_LEADERSHIPLOST becomes
 * CAIRN_EINDETERMINATE (the entry may still commit; the client retries with
 * the same sequence number and the at-most-once table sorts it out), a lost
 * leadership before proposing becomes CAIRN_ENOTLEADER with the new leader.
 */
#include "node.h"

#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "cairn.h"
#include "diskguard.h"
#include "log.h"
#include "member.h"
#include "mvcc.h"
#include "server.h"
#include "transport.h"

#define POLL_MS 10

struct proposal {
	struct raft_apply apply;
	struct raft_barrier barrier;
	struct node *node;
	uint64_t batch;
	struct waitq writes;
	uint32_t answered;
	struct waitq reads;
	struct proposal *next;
};

/* ---- wait queues ---------------------------------------------------------- */

static int waitq_push(struct waitq *q, struct conn *c, const uint8_t *payload,
                      uint32_t len, uint64_t id, unsigned op)
{
	struct waiter *w;

	if (q->n == q->cap) {
		uint32_t cap = q->cap ? q->cap * 2 : 16;
		struct waiter *items = realloc(q->items, cap * sizeof *items);
		if (items == NULL)
			return CAIRN_ENOMEM;
		q->items = items;
		q->cap = cap;
	}
	w = &q->items[q->n];
	w->payload = malloc(len ? len : 1);
	if (w->payload == NULL)
		return CAIRN_ENOMEM;
	memcpy(w->payload, payload, len);
	w->len = len;
	w->id = id;
	w->op = op;
	w->conn = c;
	conn_get(c);
	q->n++;
	return 0;
}

/* Answers every waiter from index 'from' with an error, then empties q. */
static void waitq_fail(struct waitq *q, uint32_t from, int code,
                       const char *msg, uint64_t leader)
{
	uint32_t i;

	for (i = 0; i < q->n; i++) {
		if (i >= from)
			conn_error(q->items[i].conn, q->items[i].id, q->items[i].op,
			           code, msg, leader);
		conn_put(q->items[i].conn);
		free(q->items[i].payload);
	}
	q->n = 0;
}

static void waitq_free(struct waitq *q)
{
	free(q->items);
	q->items = NULL;
	q->n = q->cap = 0;
}

/* Moves the contents of src to dst (which must be empty). */
static void waitq_move(struct waitq *dst, struct waitq *src)
{
	struct waitq tmp = *dst;

	*dst = *src;
	*src = tmp;
}

/* ---- answering from apply ------------------------------------------------- */

static struct proposal *find_proposal(struct node *n, uint64_t batch)
{
	struct proposal *p;

	for (p = n->proposals; p != NULL; p = p->next)
		if (p->batch == batch)
			return p;
	return NULL;
}

static struct mp_writer *answer_begin(void *arg, uint64_t batch, uint32_t index)
{
	struct node *n = arg;
	struct proposal *p = find_proposal(n, batch);

	if (p == NULL || index >= p->writes.n)
		return NULL;
	p->answered = index + 1;
	n->answering = p;
	n->answering_index = index;
	return conn_answer_begin(p->writes.items[index].conn);
}

static void answer_end(void *arg)
{
	struct node *n = arg;
	struct waiter *w = &n->answering->writes.items[n->answering_index];

	conn_answer_end(w->conn, w->id, w->op);
}

/* ---- reads ---------------------------------------------------------------- */

static void serve_reads(struct node *n, struct waitq *q)
{
	struct exec_hdr h = fsm_header(&n->fsm);
	struct proto_req req;
	struct mp_writer *w;
	char msg[160];
	uint32_t i;
	int rv;

	for (i = 0; i < q->n; i++) {
		struct waiter *wt = &q->items[i];
		rv = proto_decode_req(wt->payload, wt->len, &req, msg, sizeof msg);
		w = rv == 0 ? conn_answer_begin(wt->conn) : NULL;
		if (w != NULL) {
			exec_read(n->fsm.mvcc, &req, &h, w);
			conn_answer_end(wt->conn, wt->id, wt->op);
		}
		proto_req_free(&req);
		conn_put(wt->conn);
		free(wt->payload);
	}
	q->n = 0;
}

/* ---- proposals ------------------------------------------------------------ */

static void unlink_proposal(struct node *n, struct proposal *p)
{
	struct proposal **pp = &n->proposals;

	while (*pp != p)
		pp = &(*pp)->next;
	*pp = p->next;
}

static int raft_to_cairn(int status, const char **msg)
{
	switch (status) {
	case RAFT_LEADERSHIPLOST:
		*msg = "leadership lost while the request was in flight; "
		       "it may or may not have been applied";
		return CAIRN_EINDETERMINATE;
	case RAFT_NOTLEADER:
		*msg = "this member is not the leader";
		return CAIRN_ENOTLEADER;
	case RAFT_SHUTDOWN:
		*msg = "member is shutting down";
		return CAIRN_ESHUTDOWN;
	case RAFT_NOMEM:
		*msg = "out of memory";
		return CAIRN_ENOMEM;
	default:
		*msg = raft_strerror(status);
		return CAIRN_EINTERNAL;
	}
}

static void notice_committed(struct node *n);

static void proposal_done(struct proposal *p, int status)
{
	struct node *n = p->node;
	const char *msg;
	int code;

	unlink_proposal(n, p);
	if (p->writes.n > 0)
		n->inflight--;
	if (status == 0 && p->writes.n > 0)
		notice_committed(n);
	if (status == 0) {
		waitq_fail(&p->writes, p->writes.n, 0, NULL, 0); /* drop refs */
		serve_reads(n, &p->reads);
	} else {
		code = raft_to_cairn(status, &msg);
		waitq_fail(&p->writes, p->answered, code, msg, node_leader(n));
		/* A read is never applied: it is safe to redirect it. */
		waitq_fail(&p->reads, 0,
		           code == CAIRN_EINDETERMINATE ? CAIRN_ENOTLEADER : code,
		           msg, node_leader(n));
	}
	waitq_free(&p->writes);
	waitq_free(&p->reads);
	free(p);
}

static void apply_cb(struct raft_apply *req, int status, void *result)
{
	(void)result;
	proposal_done(req->data, status);
}

struct internal {
	struct raft_apply req;
	struct node *node;
	char what[32];
};

static void internal_cb(struct raft_apply *req, int status, void *result)
{
	struct internal *in = (struct internal *)req;

	(void)result;
	if (status != 0)
		log_warn("%s: %s", in->what, raft_strerror(status));
	else
		notice_committed(in->node);
	free(in);
}

int node_propose_internal(struct node *n, const uint8_t *payload, size_t len,
                          const char *what)
{
	struct internal *in = malloc(sizeof *in);
	struct raft_buffer rb;
	struct fsm_entry e;
	struct buf b = BUF_INIT;
	int rv = CAIRN_ENOMEM;

	if (in == NULL)
		goto out;
	in->node = n;
	snprintf(in->what, sizeof in->what, "%s", what);
	fsm_entry_begin(&e, &b, n->cfg->id, 0);
	fsm_entry_add(&e, payload, len);
	if (fsm_entry_end(&e) != 0)
		goto out;
	rb.len = b.len;
	rb.base = raft_malloc(rb.len);
	if (rb.base == NULL)
		goto out;
	memcpy(rb.base, b.data, b.len);
	rv = raft_apply(&n->raft, &in->req, &rb, 1, internal_cb);
	if (rv != 0) {
		raft_free(rb.base);
		rv = CAIRN_ENOTLEADER;
		goto out;
	}
	in = NULL;
out:
	if (rv != 0)
		log_warn("%s: could not propose", what);
	free(in);
	buf_free(&b);
	return rv;
}

/* A new leader makes its client address known to every member through the
 * log, so followers can send clients to it. */
static void publish(struct node *n)
{
	const struct fsm_member *m = fsm_member(&n->fsm, n->cfg->id);
	struct buf one = BUF_INIT;

	if (m != NULL && strcmp(m->client, n->cfg->listen_client) == 0 &&
	    strcmp(m->name, n->cfg->name) == 0)
		return;
	if (fsm_encode_publish(&one, n->cfg->id, n->cfg->listen_client,
	                       n->cfg->name) == 0)
		node_propose_internal(n, one.data, one.len,
		                      "publishing this member's address");
	buf_free(&one);
}

static void barrier_cb(struct raft_barrier *req, int status)
{
	struct proposal *p = req->data;

	struct node *n = p->node;

	if (status == 0 && !n->ready) {
		n->ready = true;
		log_info("leader ready: revision %lld",
		         (long long)mvcc_rev(n->fsm.mvcc));
		publish(n);
	}
	proposal_done(p, status);
}

static struct proposal *new_proposal(struct node *n)
{
	struct proposal *p = calloc(1, sizeof *p);

	if (p == NULL)
		return NULL;
	p->node = n;
	p->apply.data = p;
	p->barrier.data = p;
	waitq_move(&p->reads, &n->reads);
	p->next = n->proposals;
	n->proposals = p;
	return p;
}

static void propose_barrier(struct node *n)
{
	struct proposal *p = new_proposal(n);
	const char *msg;
	int rv;

	if (p == NULL) {
		waitq_fail(&n->reads, 0, CAIRN_ENOMEM, "out of memory", 0);
		return;
	}
	rv = raft_barrier(&n->raft, &p->barrier, barrier_cb);
	if (rv != 0) {
		int code = raft_to_cairn(rv, &msg);
		waitq_fail(&p->reads, 0, code, msg, node_leader(n));
		unlink_proposal(n, p);
		waitq_free(&p->reads);
		free(p);
	}
}

static void open_batch(struct node *n)
{
	buf_reset(&n->batch_buf);
	fsm_entry_begin(&n->batch, &n->batch_buf, n->cfg->id, ++n->next_batch);
}

static void propose_batch(struct node *n)
{
	struct proposal *p = new_proposal(n);
	struct raft_buffer rb;
	const char *msg = "out of memory";
	int code = CAIRN_ENOMEM;
	int rv;

	if (p == NULL || fsm_entry_end(&n->batch) != 0)
		goto err;
	p->batch = n->next_batch;
	waitq_move(&p->writes, &n->batch_waiters);
	rb.len = n->batch_buf.len;
	rb.base = raft_malloc(rb.len);
	if (rb.base == NULL)
		goto err;
	memcpy(rb.base, n->batch_buf.data, rb.len);
	rv = raft_apply(&n->raft, &p->apply, &rb, 1, apply_cb);
	if (rv != 0) {
		raft_free(rb.base);
		code = raft_to_cairn(rv, &msg);
		goto err;
	}
	n->inflight++;
	open_batch(n);
	return;
err:
	waitq_fail(&n->batch_waiters, 0, code, msg, node_leader(n));
	if (p != NULL) {
		waitq_fail(&p->writes, 0, code, msg, node_leader(n));
		waitq_fail(&p->reads, 0, code, msg, node_leader(n));
		unlink_proposal(n, p);
		waitq_free(&p->writes);
		waitq_free(&p->reads);
		free(p);
	}
	open_batch(n);
}

/*
 * Followers learn that an entry committed only from the leader's next
 * AppendEntries, and libraft 0.15 sends none for a commit alone: when the
 * leader goes idle, its followers (and the watchers they serve) would wait
 * for the next heartbeat, tens of milliseconds. So when a write committed and
 * nothing else goes out, the leader appends a barrier: its AppendEntries
 * carries the new commit index. Under load the next batch does that and no
 * barrier is added.
 *
 * A client that writes one request after another sends its next write a few
 * tens of microseconds after each acknowledgement; a barrier sent at once
 * would make that write queue behind the barrier's disk write. So the leader
 * scores how its recent commits were followed: when new proposals came
 * quickly (within NODE_QUICK_US), it waits NODE_NOTICE_US for one before
 * sending the barrier; otherwise it sends it at once. libuv timers count
 * milliseconds, hence a timerfd.
 */
#define NODE_NOTICE_US 200
#define NODE_QUICK_US 300
#define NODE_QUICK_MAX 4

static void notice_committed(struct node *n)
{
	n->commit_notice = true;
	n->committed_at = uv_hrtime();
}

/* The notice itself: a barrier, unless this member no longer leads or
 * something is in flight already (its message carries the commit index). */
static void send_notice(struct node *n)
{
	if (n->ready && n->proposals == NULL &&
	    raft_state(&n->raft) == RAFT_LEADER)
		propose_barrier(n);
	n->commit_notice = false;
}

static void notice_arm(struct node *n, bool on)
{
	struct itimerspec its;

	if (n->notice_fd < 0)
		return;
	memset(&its, 0, sizeof its);
	its.it_value.tv_nsec = on ? NODE_NOTICE_US * 1000 : 0;
	timerfd_settime(n->notice_fd, 0, &its, NULL);
}

static void notice_cb(uv_poll_t *h, int status, int events)
{
	struct node *n = h->data;
	uint64_t expired;

	(void)status;
	(void)events;
	if (read(n->notice_fd, &expired, sizeof expired) < 0)
		return;
	if (n->commit_notice)
		send_notice(n);
	n->notice_armed = false;
}

static void notice_closed(uv_handle_t *h)
{
	struct node *n = h->data;

	close(n->notice_fd);
	n->notice_fd = -1;
}

static void notice_init(struct node *n)
{
	n->notice_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (n->notice_fd < 0 || uv_poll_init(n->loop, &n->notice, n->notice_fd) != 0) {
		log_warn("commit notices off (timerfd: %s): followers' watchers "
		         "may wait for the next heartbeat", strerror(errno));
		if (n->notice_fd >= 0)
			close(n->notice_fd);
		n->notice_fd = -1;
		return;
	}
	n->notice.data = n;
	uv_poll_start(&n->notice, UV_READABLE, notice_cb);
}

/* Whether the commits of late were followed quickly by new proposals. */
static void notice_score(struct node *n)
{
	if (n->committed_at == 0)
		return;
	if (uv_hrtime() - n->committed_at < NODE_QUICK_US * 1000ull) {
		if (n->quick < NODE_QUICK_MAX)
			n->quick++;
	} else if (n->quick > 0) {
		n->quick--;
	}
	n->committed_at = 0;
}

/* Sent with the next append, at once, or by the timer if none goes out soon. */
static void notice_update(struct node *n, bool proposed)
{
	if (proposed) {
		notice_score(n);
		if (n->notice_armed)
			notice_arm(n, false);
		n->commit_notice = false;
	} else if (n->commit_notice && !n->notice_armed) {
		if (n->quick >= NODE_QUICK_MAX / 2 && n->notice_fd >= 0) {
			notice_arm(n, true);
		} else {
			send_notice(n);
		}
	}
	n->notice_armed = n->commit_notice;
}

/* End of a loop iteration: hand the open batch and waiting reads to raft. */
static void flush_cb(uv_check_t *h)
{
	struct node *n = h->data;

	if (n->batch_waiters.n == 0 && n->reads.n == 0) {
		notice_update(n, false);
		return;
	}
	if (raft_state(&n->raft) != RAFT_LEADER) {
		uint64_t leader = node_leader(n);
		waitq_fail(&n->batch_waiters, 0, CAIRN_ENOTLEADER,
		           "this member is no longer the leader", leader);
		waitq_fail(&n->reads, 0, CAIRN_ENOTLEADER,
		           "this member is no longer the leader", leader);
		open_batch(n);
		return;
	}
	if (n->batch_waiters.n > 0) {
		if (n->inflight < NODE_MAX_INFLIGHT) {
			propose_batch(n);
			notice_update(n, true);
		}
		return; /* reads ride on this batch or the next */
	}
	propose_barrier(n);
	notice_update(n, true);
}

void node_propose(struct node *n, struct conn *c, const uint8_t *payload,
                  uint32_t len, uint64_t id, unsigned op)
{
	if (waitq_push(&n->batch_waiters, c, payload, len, id, op) != 0) {
		conn_error(c, id, op, CAIRN_ENOMEM, "out of memory", 0);
		return;
	}
	fsm_entry_add(&n->batch, payload, len);
}

void node_read(struct node *n, struct conn *c, const uint8_t *payload,
               uint32_t len, uint64_t id, unsigned op)
{
	if (waitq_push(&n->reads, c, payload, len, id, op) != 0)
		conn_error(c, id, op, CAIRN_ENOMEM, "out of memory", 0);
}

uint64_t node_leader(const struct node *n)
{
	raft_id id = 0;
	const char *addr = NULL;

	raft_leader((struct raft *)&n->raft, &id, &addr);
	return id;
}

/* ---- state polling -------------------------------------------------------- */

/*
 * Whether this member was removed is never judged from its own configuration:
 * a member that just installed a snapshot holds the configuration of that
 * snapshot, which may predate its own addition. It asks a member that has a
 * leader instead (member_check_removed).
 */
/* A member that hears from no leader for a while may have been removed
 * (the leader stops talking to a removed member): ask around. */
static void watch_for_removal(struct node *n)
{
	uint64_t now = uv_now(n->loop);
	uint64_t patience = 5 * (uint64_t)n->cfg->election_timeout_ms;

	if (node_leader(n) != 0 || n->raft.configuration.n == 0) {
		n->leaderless_since = 0;
		return;
	}
	if (n->leaderless_since == 0)
		n->leaderless_since = now;
	if (patience < 3000)
		patience = 3000;
	if (now - n->leaderless_since < patience ||
	    now - n->last_removal_check < patience)
		return;
	n->last_removal_check = now;
	member_check_removed(n);
}

/*
 * libraft 0.15 counts entries, not bytes, and holds every entry since the
 * last snapshot (and the trailing ones after it) in memory. One batched entry
 * can carry hundreds of writes, so a count alone lets the log grow to hundreds
 * of megabytes. Two more triggers bound it:
 * - once the entries applied since the last snapshot hold --snapshot-bytes,
 *   the threshold drops so that the next apply takes a snapshot;
 * - once the member has applied nothing for NODE_IDLE_MS and holds more than
 *   NODE_IDLE_SNAPSHOT_BYTES of log, it takes one too, so a store at rest
 *   does not keep its log in memory. libraft decides after applying an
 *   entry, so the leader appends a barrier for every member to apply.
 * Snapshots stall the loop (encoding, and closing a log segment), which is
 * why a busy member does not take them more often than --snapshot-bytes says.
 * The trailing entries kept after a snapshot are sized to a quarter of
 * --snapshot-bytes. Memory the log gave back is returned to the system once
 * the snapshot is written and the log truncated.
 */
#define NODE_IDLE_MS 1000
#define NODE_IDLE_SNAPSHOT_BYTES (1u << 20)

static void size_trailing(struct node *n)
{
	const struct fsm *f = &n->fsm;
	uint64_t trailing;

	if (f->log_entries == 0)
		return;
	trailing = n->cfg->snapshot_bytes / 4 / (f->log_bytes / f->log_entries + 1);
	if (trailing < 64)
		trailing = 64;
	if (trailing > n->cfg->snapshot_trailing)
		trailing = n->cfg->snapshot_trailing;
	if (trailing != n->raft.snapshot.trailing)
		raft_set_snapshot_trailing(&n->raft, (unsigned)trailing);
}

static void snapshot_when_idle(struct node *n, uint64_t now)
{
	const struct fsm *f = &n->fsm;

	if (f->applied != n->seen_applied) {
		n->seen_applied = f->applied;
		n->busy_at = now;
		n->idle_snapshot = false;
		return;
	}
	if (n->idle_snapshot || now - n->busy_at < NODE_IDLE_MS ||
	    f->log_bytes < NODE_IDLE_SNAPSHOT_BYTES)
		return;
	n->idle_snapshot = true;
	raft_set_snapshot_threshold(&n->raft, 1);
	if (n->ready && raft_state(&n->raft) == RAFT_LEADER)
		propose_barrier(n);
}

static void snapshot_by_size(struct node *n)
{
	const struct fsm *f = &n->fsm;
	uint64_t now = uv_now(n->loop);

	if (f->snapshots != n->seen_snapshots) {
		n->seen_snapshots = f->snapshots;
		raft_set_snapshot_threshold(&n->raft, n->cfg->snapshot_threshold);
		n->trim_at = now + 500;
	}
	size_trailing(n);
	if (f->log_bytes >= n->cfg->snapshot_bytes)
		raft_set_snapshot_threshold(&n->raft, 1);
	snapshot_when_idle(n, now);
	if (n->trim_at != 0 && now >= n->trim_at) {
		n->trim_at = 0;
		malloc_trim(0);
	}
}

static void poll_cb(uv_timer_t *t)
{
	struct node *n = t->data;
	int state = raft_state(&n->raft);
	bool leader = state == RAFT_LEADER;

	if (state == RAFT_UNAVAILABLE && !n->closing) {
		log_error("raft stopped (%s); this usually means a disk I/O error "
		          "in %s: exiting rather than serving from a broken log",
		          raft_errmsg(&n->raft), n->cfg->data_dir);
		exit(1);
	}
	watch_for_removal(n);
	snapshot_by_size(n);
	if (leader && !n->leader) {
		log_info("became leader in term %llu",
		         (unsigned long long)n->raft.current_term);
		n->ready = false;
		propose_barrier(n);
	} else if (!leader && n->leader) {
		log_info("no longer leader (term %llu, leader %llu)",
		         (unsigned long long)n->raft.current_term,
		         (unsigned long long)node_leader(n));
		n->ready = false;
	}
	n->leader = leader;
}

/* ---- start and stop ------------------------------------------------------- */

static int make_dir(const char *path, char *err, size_t len)
{
	if (mkdir(path, 0700) != 0 && errno != EEXIST) {
		snprintf(err, len, "cannot create data directory %s: %s", path,
		         strerror(errno));
		return CAIRN_EIO;
	}
	return 0;
}

static int bootstrap(struct node *n, char *err, size_t len)
{
	struct raft_configuration conf;
	unsigned i;
	int rv;

	raft_configuration_init(&conf);
	for (i = 0; i < n->cfg->n_members; i++) {
		rv = raft_configuration_add(&conf, n->cfg->members[i].id,
		                            n->cfg->members[i].peer, RAFT_VOTER);
		if (rv != 0)
			goto out;
	}
	rv = raft_bootstrap(&n->raft, &conf);
	if (rv == RAFT_CANTBOOTSTRAP) {
		log_info("data directory %s holds state: --initial-cluster ignored",
		         n->cfg->data_dir);
		rv = 0;
	} else if (rv == 0) {
		log_info("bootstrapped a new cluster of %u members", n->cfg->n_members);
	}
out:
	if (rv != 0)
		snprintf(err, len, "bootstrap: %s", raft_strerror(rv));
	raft_configuration_close(&conf);
	return rv == 0 ? 0 : CAIRN_EIO;
}


static void configure_raft(struct node *n)
{
	const struct config *cfg = n->cfg;

	raft_set_election_timeout(&n->raft, cfg->election_timeout_ms);
	raft_set_heartbeat_timeout(&n->raft, cfg->heartbeat_ms);
	raft_set_snapshot_threshold(&n->raft, cfg->snapshot_threshold);
	raft_set_snapshot_trailing(&n->raft, cfg->snapshot_trailing);
	raft_set_pre_vote(&n->raft, true);
	raft_uv_set_segment_size(&n->io, 16u << 20);
}

/* libraft reports a peer port it cannot bind as a bare I/O error; try the
 * bind first so the user hears what is wrong. */
static int check_peer_port(const char *addr, char *err, size_t len)
{
	struct sockaddr_in sa;
	char host[CONFIG_ADDR_LEN];
	char *colon;
	int one = 1;
	int fd;
	int rv = 0;

	snprintf(host, sizeof host, "%s", addr);
	colon = strrchr(host, ':');
	if (colon == NULL)
		return 0;
	*colon = '\0';
	if (uv_ip4_addr(host, atoi(colon + 1), &sa) != 0)
		return 0;
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return 0;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		snprintf(err, len, "cannot listen for peers on %s: %s", addr,
		         strerror(errno));
		rv = CAIRN_EIO;
	}
	close(fd);
	return rv;
}

static int start_raft(struct node *n, char *err, size_t len)
{
	const struct config *cfg = n->cfg;
	int rv;

	rv = check_peer_port(cfg->listen_peer, err, len);
	if (rv != 0)
		return rv;
	/* Peers talk through the secure channel (store/transport.c). */
	rv = transport_init(&n->transport, n->loop, cfg->listen_peer,
	                    cfg->insecure ? NULL : cfg->secret);
	if (rv != 0) {
		snprintf(err, len, "peer transport: %s", raft_strerror(rv));
		return CAIRN_EIO;
	}
	rv = raft_uv_init(&n->io, n->loop, cfg->data_dir, &n->transport);
	if (rv != 0) {
		snprintf(err, len, "raft storage in %s: %s", cfg->data_dir,
		         n->io.errmsg);
		goto err_after_transport;
	}
	diskguard_wrap(&n->io, cfg->data_dir);
	rv = raft_init(&n->raft, &n->io, &n->fsm.raft_fsm, cfg->id, config_own_peer(cfg));
	if (rv != 0) {
		snprintf(err, len, "raft: %s", raft_errmsg(&n->raft));
		goto err_after_io;
	}
	n->fsm.raft = &n->raft;
	configure_raft(n);
	if (!cfg->join) {
		rv = bootstrap(n, err, len);
		if (rv != 0)
			return rv; /* raft is initialized: node_stop() releases it */
	} else {
		log_info("joining: waiting for the leader to send the cluster's state");
	}
	rv = raft_start(&n->raft);
	if (rv != 0) {
		const char *why = raft_errmsg(&n->raft);
		snprintf(err, len, "raft start: %s%s%s", raft_strerror(rv),
		         why[0] != '\0' ? ": " : "", why);
		if (rv == RAFT_IOERR)
			snprintf(err + strlen(err), len - strlen(err),
			         " (if the file system of %s refuses O_DIRECT, use "
			         "ext4, xfs, btrfs or tmpfs)",
			         cfg->data_dir);
		return CAIRN_EIO;
	}
	return 0;
err_after_io:
	raft_uv_close(&n->io);
err_after_transport:
	transport_free(&n->transport);
	return CAIRN_EIO;
}

int node_start(struct node *n, uv_loop_t *loop, const struct config *cfg,
               char *err, size_t len)
{
	struct fsm_hooks hooks = {n, answer_begin, answer_end};
	int rv;

	memset(n, 0, sizeof *n);
	n->loop = loop;
	n->notice_fd = -1;
	n->cfg = cfg;
	rv = make_dir(cfg->data_dir, err, len);
	if (rv != 0)
		return rv;
	rv = fsm_init(&n->fsm, cfg->id, &hooks);
	if (rv != 0) {
		snprintf(err, len, "out of memory");
		return rv;
	}
	open_batch(n);
	uv_timer_init(loop, &n->poll);
	uv_check_init(loop, &n->flush);
	notice_init(n);
	n->poll.data = n;
	n->flush.data = n;
	rv = start_raft(n, err, len);
	if (rv != 0)
		return rv;
	uv_timer_start(&n->poll, poll_cb, POLL_MS, POLL_MS);
	uv_check_start(&n->flush, flush_cb);
	compactor_start(&n->compactor, loop, n, cfg->compaction_mode,
	                cfg->compaction_retention);
	lessor_start(&n->lessor, loop, n);
	return 0;
}

static void handle_closed(uv_handle_t *h)
{
	struct node *n = h->data;

	/* The check handle closes last (see raft_closed). */
	raft_uv_close(&n->io);
	transport_free(&n->transport);
	fsm_close(&n->fsm);
	buf_free(&n->batch_buf);
	waitq_free(&n->batch_waiters);
	waitq_free(&n->reads);
	if (n->on_closed != NULL)
		n->on_closed(n);
}

static void raft_closed(struct raft *r)
{
	struct node *n = r->data;

	uv_close((uv_handle_t *)&n->poll, NULL);
	if (n->notice_fd >= 0)
		uv_close((uv_handle_t *)&n->notice, notice_closed);
	compactor_stop(&n->compactor, NULL);
	lessor_stop(&n->lessor, NULL);
	uv_close((uv_handle_t *)&n->flush, handle_closed);
}

void node_stop(struct node *n, void (*cb)(struct node *n))
{
	n->closing = true;
	n->on_closed = cb;
	uv_timer_stop(&n->poll);
	uv_check_stop(&n->flush);
	waitq_fail(&n->batch_waiters, 0, CAIRN_ESHUTDOWN,
	           "member is shutting down", 0);
	waitq_fail(&n->reads, 0, CAIRN_ESHUTDOWN, "member is shutting down", 0);
	n->raft.data = n;
	raft_close(&n->raft, raft_closed);
}
