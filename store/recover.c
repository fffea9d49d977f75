/*
 * recover: recovery from a lost quorum, as etcd's --force-new-cluster.
 *
 * When a majority of the members is gone for good, the rest can never elect
 * a leader. The way out (libraft's raft_recover, Raft dissertation §4.2.4's
 * caveat about reconfiguring without a quorum) is to append, directly to one
 * surviving member's log, a configuration that holds only that member. It
 * then leads alone with all its data, and new members are added back with
 * 'cairnctl member add'. Writes the lost majority had acknowledged but this
 * member had not received are lost: pick the survivor with the highest
 * revision (cairnctl endpoint status). It runs once and exits; the member is
 * then started as usual.
 */
#include "recover.h"

#include <errno.h>
#include <raft.h>
#include <raft/uv.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>

#include "cairn.h"
#include "fsm.h"
#include "log.h"

struct recovery {
	uv_loop_t loop;
	struct raft_uv_transport transport;
	struct raft_io io;
	struct raft raft;
	struct fsm fsm;
	bool closed;
};

static bool holds_state(const char *dir)
{
	char path[1100];
	struct stat st;

	snprintf(path, sizeof path, "%s/metadata1", dir);
	if (stat(path, &st) == 0)
		return true;
	snprintf(path, sizeof path, "%s/metadata2", dir);
	return stat(path, &st) == 0;
}

static void raft_closed(struct raft *r)
{
	struct recovery *rc = r->data;

	rc->closed = true;
}


static int force(struct recovery *rc, const struct config *cfg)
{
	struct raft_configuration conf;
	int rv;

	raft_configuration_init(&conf);
	rv = raft_configuration_add(&conf, cfg->id, config_own_peer(cfg), RAFT_VOTER);
	if (rv == 0)
		rv = raft_recover(&rc->raft, &conf);
	raft_configuration_close(&conf);
	return rv;
}

int recover_cluster(const struct config *cfg, char *err, size_t errlen)
{
	static struct recovery rc;
	int rv;

	if (!holds_state(cfg->data_dir)) {
		snprintf(err, errlen, "%s holds no Raft state: nothing to recover",
		         cfg->data_dir);
		return CAIRN_EINVAL;
	}
	memset(&rc, 0, sizeof rc);
	uv_loop_init(&rc.loop);
	if (fsm_init(&rc.fsm, cfg->id, NULL) != 0 ||
	    raft_uv_tcp_init(&rc.transport, &rc.loop) != 0 ||
	    raft_uv_init(&rc.io, &rc.loop, cfg->data_dir, &rc.transport) != 0 ||
	    raft_init(&rc.raft, &rc.io, &rc.fsm.raft_fsm, cfg->id,
	              config_own_peer(cfg)) != 0) {
		snprintf(err, errlen, "cannot open %s: %s", cfg->data_dir,
		         rc.io.errmsg);
		return CAIRN_EIO; /* exiting: the process frees the rest */
	}
	rv = force(&rc, cfg);
	if (rv != 0)
		snprintf(err, errlen, "forcing the new configuration: %s (%s)",
		         raft_strerror(rv), raft_errmsg(&rc.raft));
	rc.raft.data = &rc;
	raft_close(&rc.raft, raft_closed);
	while (!rc.closed)
		uv_run(&rc.loop, UV_RUN_ONCE);
	raft_uv_close(&rc.io);
	raft_uv_tcp_close(&rc.transport);
	uv_run(&rc.loop, UV_RUN_DEFAULT);
	uv_loop_close(&rc.loop);
	fsm_close(&rc.fsm);
	if (rv == 0)
		log_info("%s now holds a one-member cluster of member %llu (peer "
		         "address %s): start it as usual, then add members back with "
		         "'cairnctl member add'",
		         cfg->data_dir, (unsigned long long)cfg->id, config_own_peer(cfg));
	return rv == 0 ? 0 : CAIRN_EIO;
}
