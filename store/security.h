/*
 * security: where cairn-store's cluster secret comes from, and plaintext.
 *
 * Every member and every client holds the same cluster secret; client and
 * peer connections run the secure channel (lib/secure.h) with it. At start:
 *
 *   - --cluster-secret-file names a file: it is loaded (a file others may
 *     read is refused), or created as below;
 *   - else CAIRN_SECRET in the environment holds the secret's text (the
 *     file's contents, for a member given them like a join token): used;
 *   - else DATA_DIR/cluster.secret exists: it is loaded;
 *   - it does not, and this member bootstraps a new cluster as the member
 *     listed first in --initial-cluster (or alone), with no Raft state yet:
 *     it writes a new secret there (mode 0600) and says where, and that the
 *     other members and the clients need a copy;
 *   - otherwise (a joining member, a restart, the other members of a new
 *     cluster) the member refuses to start and says where the file belongs.
 *
 * --insecure turns the secure channel off for clients and peers alike; it is
 * the only way to plaintext. Listening on an address other than loopback in
 * plaintext is loudly warned about.
 */
#ifndef CAIRN_STORE_SECURITY_H
#define CAIRN_STORE_SECURITY_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

/* Fills cfg->secret as described above. Returns 0 or a CAIRN_E* code with
 * a message. */
int security_setup(struct config *cfg, char *err, size_t len);

/* --generate-secret: a new secret file at path. */
int security_generate(const char *path, char *err, size_t len);

/* "127.x.y.z:port" (IPv4 loopback). */
bool security_is_loopback(const char *addr);

#endif
