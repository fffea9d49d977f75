/*
 * diskguard: exit on a failed write of the Raft log.
 *
 * libraft 0.15 does not turn a failed append into RAFT_UNAVAILABLE: a
 * follower whose disk is full (a segment cannot be preallocated) keeps
 * running, answers heartbeats and never persists another entry, silently;
 * a leader whose own write fails does not step down (LIBRAFT.md). Neither is
 * seen by poll_cb in node.c. So every append goes through a shim request
 * whose callback looks at the status first: on an error the member logs it
 * and exits with status 1, as for any disk error, rather than go on with a
 * log that no longer matches what it acknowledged to the leader. Restarted
 * with space again, it loads its log (the failed entries were never
 * acknowledged) and catches up.
 *
 * raft_uv calls the callback once for every append it accepted; an append it
 * refused at once (non-zero return) has no callback and frees the shim here.
 */
#include "diskguard.h"

#include <stdlib.h>

#include "log.h"

struct shim {
	struct raft_io_append req; /* given to raft_uv */
	struct raft_io_append *orig; /* raft's request */
	raft_io_append_cb cb;
};

static const char *guard_dir;
static struct raft_io *guard_io;
static int (*uv_append)(struct raft_io *io, struct raft_io_append *req,
                        const struct raft_entry entries[], unsigned n,
                        raft_io_append_cb cb);

static void shim_cb(struct raft_io_append *req, int status)
{
	struct shim *s = req->data;
	struct raft_io_append *orig = s->orig;
	raft_io_append_cb cb = s->cb;

	free(s);
	if (status != 0) {
		log_error("disk write of the raft log in %s failed (%s, raft "
		          "error %d): exiting; free space (or raise the file size "
		          "limit) and restart the member",
		          guard_dir, guard_io->errmsg[0] != '\0' ? guard_io->errmsg
		                                                  : raft_strerror(status),
		          status);
		exit(1);
	}
	cb(orig, status);
}

static int guarded_append(struct raft_io *io, struct raft_io_append *req,
                          const struct raft_entry entries[], unsigned n,
                          raft_io_append_cb cb)
{
	struct shim *s = malloc(sizeof *s);
	int rv;

	if (s == NULL)
		return RAFT_NOMEM;
	s->req.data = s;
	s->orig = req;
	s->cb = cb;
	req->cb = cb;
	rv = uv_append(io, &s->req, entries, n, shim_cb);
	if (rv != 0)
		free(s);
	return rv;
}

void diskguard_wrap(struct raft_io *io, const char *dir)
{
	guard_dir = dir;
	guard_io = io;
	uv_append = io->append;
	io->append = guarded_append;
}
