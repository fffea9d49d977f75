/* backup: the backup file format (see backup.h). */
#include "backup.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "cairn.h"

static const uint8_t magic[8] = {'C', 'A', 'I', 'R', 'N', 'B', 'A', 'K'};

static void put_be(uint8_t *p, uint64_t v, unsigned n)
{
	while (n-- > 0) {
		p[n] = (uint8_t)v;
		v >>= 8;
	}
}

static uint64_t get_be(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	unsigned i;

	for (i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

int backup_header(uint8_t *header, int64_t revision, const uint8_t *payload,
                  size_t len)
{
	if (sodium_init() < 0) /* idempotent; picks the fastest implementation */
		return CAIRN_EINTERNAL;
	memcpy(header, magic, sizeof magic);
	put_be(header + 8, BACKUP_VERSION, 4);
	put_be(header + 12, (uint64_t)revision, 8);
	put_be(header + 20, len, 8);
	crypto_hash_sha256(header + 28, payload, len);
	return 0;
}

int backup_check(const uint8_t *p, size_t n, const uint8_t **payload,
                 size_t *len, int64_t *revision, char *errbuf, size_t errlen)
{
	uint8_t hash[crypto_hash_sha256_BYTES];
	uint64_t version;
	uint64_t plen;

	if (n < BACKUP_HEADER_SIZE || memcmp(p, magic, sizeof magic) != 0) {
		snprintf(errbuf, errlen, "not a cairn backup (no CAIRNBAK header)");
		return CAIRN_EPROTO;
	}
	version = get_be(p + 8, 4);
	if (version != BACKUP_VERSION) {
		snprintf(errbuf, errlen, "backup format %llu is not supported",
		         (unsigned long long)version);
		return CAIRN_EPROTO;
	}
	if (sodium_init() < 0) {
		snprintf(errbuf, errlen, "libsodium failed to initialize");
		return CAIRN_EINTERNAL;
	}
	plen = get_be(p + 20, 8);
	if (plen != n - BACKUP_HEADER_SIZE) {
		snprintf(errbuf, errlen,
		         "backup is %zu bytes long, its header says %llu: truncated?",
		         n, (unsigned long long)(plen + BACKUP_HEADER_SIZE));
		return CAIRN_EPROTO;
	}
	crypto_hash_sha256(hash, p + BACKUP_HEADER_SIZE, plen);
	if (sodium_memcmp(hash, p + 28, sizeof hash) != 0) {
		snprintf(errbuf, errlen, "backup checksum mismatch: the file is corrupt");
		return CAIRN_EPROTO;
	}
	*payload = p + BACKUP_HEADER_SIZE;
	*len = plen;
	*revision = (int64_t)get_be(p + 12, 8);
	return 0;
}
