/* recover: restarts a cluster that lost its quorum from one member's data. */
#ifndef CAIRN_STORE_RECOVER_H
#define CAIRN_STORE_RECOVER_H

#include <stddef.h>

#include "config.h"

/*
 * Rewrites the Raft configuration in cfg->data_dir so that this member alone
 * forms the cluster, keeping all of its data. Only for a cluster whose
 * majority is gone for good; every member must be stopped first. Returns 0
 * or a CAIRN_E* code with errbuf saying why.
 */
int recover_cluster(const struct config *cfg, char *errbuf, size_t errlen);

#endif
