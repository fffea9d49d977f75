/*
 * restore: builds a member's data directory from a backup, as etcdutl
 * snapshot restore does; run once on every member of the new cluster, with
 * the same backup and the same --initial-cluster, before starting them.
 *
 * Happy path: read and check the backup file (header hash), decode its
 * payload into a scratch state machine (every check a snapshot install
 * makes) and encode it again without the old cluster's member addresses,
 * then open the empty data directory with libraft's own disk backend
 * and store the payload as a Raft snapshot at index 1, term 1, holding the
 * initial cluster as its configuration. cairn-store then starts from that
 * snapshot as from any other.
 *
 * Failure modes: a data directory that already holds Raft state is refused
 * (restoring over a member would fork its history); a corrupt backup is
 * refused before anything is written.
 */
#include "restore.h"

#include <errno.h>
#include <raft.h>
#include <raft/uv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>

#include "backup.h"
#include "cairn.h"
#include "fsm.h"
#include "log.h"
#include "mvcc.h"

struct restore {
	uv_loop_t loop;
	struct raft_uv_transport transport;
	struct raft_io io;
	struct raft_io_snapshot_put put;
	int status;
	bool done;
};

static int read_file(const char *path, uint8_t **out, size_t *len, char *err,
                     size_t errlen)
{
	struct stat st;
	uint8_t *p;
	FILE *f = fopen(path, "rb");

	if (f == NULL || fstat(fileno(f), &st) != 0) {
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		if (f != NULL)
			fclose(f);
		return CAIRN_EIO;
	}
	p = malloc(st.st_size > 0 ? (size_t)st.st_size : 1);
	if (p == NULL || fread(p, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
		snprintf(err, errlen, "cannot read %s", path);
		free(p);
		fclose(f);
		return CAIRN_EIO;
	}
	fclose(f);
	*out = p;
	*len = (size_t)st.st_size;
	return 0;
}

/*
 * Decodes the payload as a snapshot install would, to refuse a bad one now,
 * and encodes it again without the source cluster's member addresses: they
 * belong to other machines, and the new members publish their own.
 */
static int rebuild(const uint8_t *payload, size_t len, uint64_t id,
                   uint8_t **out, size_t *out_len, char *err, size_t errlen)
{
	struct fsm f;
	char why[200] = "";
	int rv;

	rv = fsm_init(&f, id, NULL);
	if (rv != 0) {
		snprintf(err, errlen, "out of memory");
		return rv;
	}
	rv = fsm_decode_snapshot(&f, payload, len, why, sizeof why);
	if (rv != 0) {
		snprintf(err, errlen, "the backup's contents are corrupt: %s", why);
		goto out;
	}
	log_info("backup holds revision %lld, %llu keys",
	         (long long)mvcc_rev(f.mvcc),
	         (unsigned long long)mvcc_key_count(f.mvcc));
	f.n_members = 0;
	rv = fsm_encode_snapshot(&f, out, out_len);
	if (rv != 0)
		snprintf(err, errlen, "out of memory");
out:
	fsm_close(&f);
	return rv;
}

static void put_cb(struct raft_io_snapshot_put *req, int status)
{
	struct restore *r = req->data;

	r->status = status;
	r->done = true;
}

static void io_closed(struct raft_io *io)
{
	struct restore *r = io->data;

	r->done = true;
}

static int build_configuration(const struct config *cfg,
                               struct raft_configuration *conf)
{
	unsigned i;
	int rv;

	raft_configuration_init(conf);
	for (i = 0; i < cfg->n_members; i++) {
		rv = raft_configuration_add(conf, cfg->members[i].id,
		                            cfg->members[i].peer, RAFT_VOTER);
		if (rv != 0)
			return rv;
	}
	return 0;
}

/* Refuses a directory with any Raft state; leaves io loaded and empty. */
static int check_empty(struct restore *r, const struct config *cfg, char *err,
                       size_t errlen)
{
	struct raft_snapshot *snap = NULL;
	struct raft_entry *entries = NULL;
	raft_index start;
	raft_term term;
	raft_id vote;
	size_t n = 0;
	int rv;

	rv = r->io.load(&r->io, &term, &vote, &snap, &start, &entries, &n);
	if (rv != 0) {
		snprintf(err, errlen, "cannot read %s: %s", cfg->data_dir, r->io.errmsg);
		return CAIRN_EIO;
	}
	if (term != 0 || snap != NULL || n != 0) {
		snprintf(err, errlen,
		         "%s already holds Raft state: restore only into a new, empty "
		         "data directory", cfg->data_dir);
		return CAIRN_EINVAL;
	}
	raft_free(entries);
	return 0;
}

static int write_snapshot(struct restore *r, const struct config *cfg,
                          const uint8_t *payload, size_t len, char *err,
                          size_t errlen)
{
	struct raft_snapshot snap;
	struct raft_buffer buf;
	int rv;

	memset(&snap, 0, sizeof snap);
	rv = build_configuration(cfg, &snap.configuration);
	if (rv == 0)
		rv = r->io.set_term(&r->io, 1);
	if (rv != 0)
		goto out;
	buf.len = len;
	buf.base = raft_malloc(len);
	if (buf.base == NULL) {
		rv = RAFT_NOMEM;
		goto out;
	}
	memcpy(buf.base, payload, len);
	snap.index = 1;
	snap.term = 1;
	snap.configuration_index = 1;
	snap.bufs = &buf;
	snap.n_bufs = 1;
	r->put.data = r;
	rv = r->io.snapshot_put(&r->io, 0, &r->put, &snap, put_cb);
	if (rv == 0) {
		while (!r->done)
			uv_run(&r->loop, UV_RUN_ONCE);
		rv = r->status;
	}
	raft_free(buf.base);
out:
	raft_configuration_close(&snap.configuration);
	if (rv != 0)
		snprintf(err, errlen, "writing the snapshot into %s: %s",
		         cfg->data_dir, raft_strerror(rv));
	return rv != 0 ? CAIRN_EIO : 0;
}


static int restore_into(const struct config *cfg, const uint8_t *payload,
                        size_t len, char *err, size_t errlen)
{
	static struct restore r;
	const char *addr = config_own_peer(cfg);
	int rv;

	memset(&r, 0, sizeof r);
	if (mkdir(cfg->data_dir, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s", cfg->data_dir,
		         strerror(errno));
		return CAIRN_EIO;
	}
	uv_loop_init(&r.loop);
	rv = raft_uv_tcp_init(&r.transport, &r.loop);
	if (rv == 0)
		rv = raft_uv_init(&r.io, &r.loop, cfg->data_dir, &r.transport);
	if (rv == 0)
		rv = r.io.init(&r.io, cfg->id, addr);
	if (rv != 0) {
		snprintf(err, errlen, "cannot open %s: %s", cfg->data_dir, r.io.errmsg);
		return CAIRN_EIO; /* exiting: the process frees the rest */
	}
	r.io.data = &r;
	rv = check_empty(&r, cfg, err, errlen);
	if (rv == 0)
		rv = write_snapshot(&r, cfg, payload, len, err, errlen);
	r.done = false;
	r.io.close(&r.io, io_closed);
	while (!r.done)
		uv_run(&r.loop, UV_RUN_ONCE);
	raft_uv_close(&r.io);
	raft_uv_tcp_close(&r.transport);
	uv_run(&r.loop, UV_RUN_DEFAULT);
	uv_loop_close(&r.loop);
	return rv;
}

int restore_backup(const struct config *cfg, const char *file, char *err,
                   size_t errlen)
{
	const uint8_t *payload;
	uint8_t *bytes;
	uint8_t *snap = NULL;
	int64_t revision;
	size_t n;
	size_t len;
	size_t snap_len = 0;
	int rv;

	rv = read_file(file, &bytes, &n, err, errlen);
	if (rv != 0)
		return rv;
	rv = backup_check(bytes, n, &payload, &len, &revision, err, errlen);
	if (rv == 0)
		rv = rebuild(payload, len, cfg->id, &snap, &snap_len, err, errlen);
	if (rv == 0)
		rv = restore_into(cfg, snap, snap_len, err, errlen);
	if (rv == 0)
		log_info("restored %s (revision %lld) into %s", file,
		         (long long)revision, cfg->data_dir);
	raft_free(snap);
	free(bytes);
	return rv;
}
