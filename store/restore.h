/* restore: builds a new member's data directory from a backup file. */
#ifndef CAIRN_STORE_RESTORE_H
#define CAIRN_STORE_RESTORE_H

#include <stddef.h>

#include "config.h"

/* Restores file into cfg->data_dir (which must hold no Raft state) as a
 * snapshot whose configuration is cfg's initial cluster. Returns 0 or a
 * CAIRN_E* code with errbuf saying why. */
int restore_backup(const struct config *cfg, const char *file, char *errbuf,
                   size_t errlen);

#endif
