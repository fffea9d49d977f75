/*
 * fuzz_backup: the backup file reader (backup_check, lib/backup.h) and what
 * cairn-store --restore-from does with the payload it lets through: decode
 * it as a snapshot into a scratch state machine and encode it again without
 * the member attributes (store/restore.c, before anything is written).
 *
 * Input: a mode byte. Even: the rest is the file. Odd: the next 8 bytes are
 * a revision and the rest a payload, behind a header the harness writes with
 * backup_header() (so the hash matches and the payload is reached); a byte
 * of the header may then be flipped (position and mask from the input), and
 * any flip must be refused.
 *
 * Checks: an accepted file's payload is the bytes after the header and its
 * revision the header's (which the hash does not cover: a flip there is the
 * one that passes); backup_header() over an accepted payload makes a
 * file that is accepted with the same revision; a refused one says why.
 */
#include <raft.h>
#include <stdlib.h>
#include <string.h>

#include "backup.h"
#include "fsm.h"
#include "fuzz.h"

/* What restore.c's rebuild() does with an accepted payload. */
static void rebuild(const uint8_t *payload, size_t len)
{
	struct fsm f;
	char err[200] = "";
	uint8_t *snap;
	size_t snap_len;

	FUZZ_CHECK(fsm_init(&f, 1, NULL) == 0);
	if (fsm_decode_snapshot(&f, payload, len, err, sizeof err) == 0) {
		f.n_members = 0;
		FUZZ_CHECK(fsm_encode_snapshot(&f, &snap, &snap_len) == 0);
		raft_free(snap);
	} else {
		FUZZ_CHECK(err[0] != '\0');
	}
	fsm_close(&f);
}

static void check_file(const uint8_t *p, size_t n, bool must_fail)
{
	const uint8_t *payload;
	uint8_t header[BACKUP_HEADER_SIZE];
	char err[200] = "";
	int64_t rev;
	int64_t rev2;
	size_t len;

	if (backup_check(p, n, &payload, &len, &rev, err, sizeof err) != 0) {
		FUZZ_CHECK(err[0] != '\0');
		return;
	}
	FUZZ_CHECK(!must_fail);
	FUZZ_CHECK(n >= BACKUP_HEADER_SIZE &&
	           payload == p + BACKUP_HEADER_SIZE &&
	           len == n - BACKUP_HEADER_SIZE);
	FUZZ_CHECK(backup_header(header, rev, payload, len) == 0);
	FUZZ_CHECK(memcmp(header, p, BACKUP_HEADER_SIZE) == 0);
	FUZZ_CHECK(backup_check(p, n, &payload, &len, &rev2, err, sizeof err) ==
	               0 &&
	           rev2 == rev);
	rebuild(payload, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	uint8_t mode = fuzz_u8(&in);
	int64_t rev;
	uint8_t *file;
	size_t at;
	uint8_t mask;

	if ((mode & 1) == 0) {
		file = fuzz_dup(in.p, in.n);
		check_file(file, in.n, false);
		free(file);
		return 0;
	}
	rev = (int64_t)fuzz_be(&in, 8);
	at = fuzz_u8(&in);
	mask = fuzz_u8(&in);
	file = malloc(BACKUP_HEADER_SIZE + in.n);
	if (file == NULL)
		abort();
	FUZZ_CHECK(backup_header(file, rev, in.p, in.n) == 0);
	if (in.n > 0)
		memcpy(file + BACKUP_HEADER_SIZE, in.p, in.n);
	if (at < BACKUP_HEADER_SIZE)
		file[at] ^= mask;
	check_file(file, BACKUP_HEADER_SIZE + in.n,
	           at < BACKUP_HEADER_SIZE && mask != 0 &&
	               (at < 12 || at >= 20));
	free(file);
	return 0;
}

static void seed_byte(struct buf *b, uint8_t v)
{
	if (buf_append(b, &v, 1) != 0)
		abort();
}

void fuzz_seeds(void)
{
	uint8_t header[BACKUP_HEADER_SIZE];
	struct buf b = BUF_INIT;
	struct fuzz_fsm s;
	uint8_t *snap;
	size_t len;
	int i;

	fuzz_fsm_init(&s);
	fuzz_fsm_populate(&s);
	FUZZ_CHECK(fsm_encode_snapshot(s.fsm, &snap, &len) == 0);
	/* A whole file, as cairnctl snapshot save writes it. */
	FUZZ_CHECK(backup_header(header, 9, snap, len) == 0);
	if (buf_append(&b, header, sizeof header) != 0 ||
	    buf_append(&b, snap, len) != 0)
		abort();
	fuzz_emit_mode(0, b.data, b.len);
	/* The same payload for the harness to wrap, unflipped. */
	buf_reset(&b);
	for (i = 0; i < 7; i++)
		seed_byte(&b, 0);
	seed_byte(&b, 9);   /* revision */
	seed_byte(&b, 255); /* no flip */
	seed_byte(&b, 0);
	if (buf_append(&b, snap, len) != 0)
		abort();
	fuzz_emit_mode(1, b.data, b.len);
	raft_free(snap);
	buf_free(&b);
	fuzz_fsm_close(&s);
}
