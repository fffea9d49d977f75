/*
 * backup: the file format of a cairn backup (cairnctl snapshot save, read by
 * cairn-store --restore-from).
 *
 *   offset  size  field
 *   0       8     magic "CAIRNBAK"
 *   8       4     format version (1), big-endian
 *   12      8     revision of the keyspace it holds, big-endian
 *   20      8     payload length, big-endian
 *   28      32    SHA-256 of the payload
 *   60      ...   payload: the state machine's snapshot (LZ4 frame, see fsm.h)
 *
 * The hash covers the payload end to end, so a truncated or altered file is
 * refused before anything is written; the payload's own checksums and
 * validation then catch anything else.
 */
#ifndef CAIRN_BACKUP_H
#define CAIRN_BACKUP_H

#include <stddef.h>
#include <stdint.h>

#define BACKUP_HEADER_SIZE 60
#define BACKUP_VERSION 1

/* Fills header (BACKUP_HEADER_SIZE bytes) for payload. Returns 0 or
 * CAIRN_EINTERNAL (libsodium would not start). */
int backup_header(uint8_t *header, int64_t revision, const uint8_t *payload,
                  size_t len);

/* Checks a whole file's bytes; on success *payload and *len point into p and
 * *revision is set. Returns 0 or CAIRN_EPROTO with errbuf saying why. */
int backup_check(const uint8_t *p, size_t n, const uint8_t **payload,
                 size_t *len, int64_t *revision, char *errbuf, size_t errlen);

#endif
