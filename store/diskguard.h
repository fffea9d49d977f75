/* diskguard: a member exits loudly on a failed disk write of its Raft log. */
#ifndef CAIRN_STORE_DISKGUARD_H
#define CAIRN_STORE_DISKGUARD_H

#include <raft.h>

/* Wraps the append method of IO (a raft_uv instance, initialized, not yet
 * given to raft_init): when an append fails (no space left, EFBIG under a
 * file size limit, any I/O error), the process logs the error naming DIR and
 * exits with status 1. DIR is borrowed and must outlive IO. One IO per process. Loop thread. */
void diskguard_wrap(struct raft_io *io, const char *dir);

#endif
