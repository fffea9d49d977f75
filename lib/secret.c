/*
 * secret: generating, writing and reading the cluster secret (see secret.h).
 *
 * Writing: O_CREAT|O_EXCL with mode 0600 (so an existing file, or a link an
 * attacker planted, is never written through), the whole line in one write,
 * fsync of the file and of its directory, so a crash never leaves a member
 * with a secret the others never saw. Reading: fstat of the opened file (no
 * race between the check and the read) refuses group or world access, then
 * at most SECRET_TEXT_MAX bytes are read and parsed.
 */
#include "secret.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cairn.h"

#define B64_VARIANT sodium_base64_VARIANT_ORIGINAL

void secret_format(const uint8_t key[SECURE_KEY_BYTES],
                   char out[SECRET_TEXT_MAX])
{
	char b64[sodium_base64_ENCODED_LEN(SECURE_KEY_BYTES, B64_VARIANT)];

	sodium_bin2base64(b64, sizeof b64, key, SECURE_KEY_BYTES, B64_VARIANT);
	snprintf(out, SECRET_TEXT_MAX, "%s%s\n", SECRET_PREFIX, b64);
	sodium_memzero(b64, sizeof b64);
}

void secret_fingerprint(const uint8_t key[SECURE_KEY_BYTES],
                        char out[SECRET_FINGERPRINT_LEN])
{
	static const char label[] = "cairn-secret fingerprint";
	uint8_t h[8];

	crypto_generichash(h, sizeof h, (const uint8_t *)label, sizeof label,
	                   key, SECURE_KEY_BYTES);
	sodium_bin2hex(out, SECRET_FINGERPRINT_LEN, h, sizeof h);
}

int secret_parse(const char *text, uint8_t key[SECURE_KEY_BYTES], char *err,
                 size_t errlen)
{
	const char *p = text;
	const char *end;
	size_t len = 0;

	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	end = p + strlen(p);
	while (end > p && (end[-1] == ' ' || end[-1] == '\t' ||
	                   end[-1] == '\n' || end[-1] == '\r'))
		end--;
	if ((size_t)(end - p) < sizeof SECRET_PREFIX ||
	    memcmp(p, SECRET_PREFIX, sizeof SECRET_PREFIX - 1) != 0) {
		snprintf(err, errlen,
		         "not a cairn cluster secret (expected one line "
		         "'" SECRET_PREFIX "<base64>', as cairn-store writes)");
		return CAIRN_EAUTH;
	}
	p += sizeof SECRET_PREFIX - 1;
	if (sodium_base642bin(key, SECURE_KEY_BYTES, p, (size_t)(end - p), NULL,
	                      &len, NULL, B64_VARIANT) != 0 ||
	    len != SECURE_KEY_BYTES) {
		sodium_memzero(key, SECURE_KEY_BYTES);
		snprintf(err, errlen,
		         "the cluster secret is damaged: its base64 does not "
		         "decode to %d bytes",
		         SECURE_KEY_BYTES);
		return CAIRN_EAUTH;
	}
	return 0;
}

/* fsync of the directory holding path, so the new name is durable. */
static int sync_dir(const char *path)
{
	char copy[PATH_MAX];
	int fd;
	int rv;

	if (strlen(path) >= sizeof copy)
		return -1;
	strcpy(copy, path);
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	rv = fsync(fd);
	close(fd);
	return rv;
}

static int write_all(int fd, const char *p, size_t n)
{
	ssize_t k;

	while (n > 0) {
		k = write(fd, p, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

int secret_generate(const char *path, uint8_t key[SECURE_KEY_BYTES], char *err,
                    size_t errlen)
{
	char text[SECRET_TEXT_MAX];
	int fd;
	int rv = 0;

	if (sodium_init() < 0) {
		snprintf(err, errlen, "libsodium failed to initialize");
		return CAIRN_EINTERNAL;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
	          0600);
	if (fd < 0) {
		snprintf(err, errlen,
		         "cannot create the cluster secret file %s: %s", path,
		         strerror(errno));
		return CAIRN_EIO;
	}
	randombytes_buf(key, SECURE_KEY_BYTES);
	secret_format(key, text);
	/* The umask cannot widen 0600, but fchmod makes it exact. */
	if (fchmod(fd, 0600) != 0 || write_all(fd, text, strlen(text)) != 0 ||
	    fsync(fd) != 0) {
		snprintf(err, errlen,
		         "cannot write the cluster secret file %s: %s", path,
		         strerror(errno));
		rv = CAIRN_EIO;
	}
	sodium_memzero(text, sizeof text);
	if (close(fd) != 0 && rv == 0) {
		snprintf(err, errlen,
		         "cannot write the cluster secret file %s: %s", path,
		         strerror(errno));
		rv = CAIRN_EIO;
	}
	if (rv == 0 && sync_dir(path) != 0) {
		snprintf(err, errlen, "cannot sync the directory of %s: %s",
		         path, strerror(errno));
		rv = CAIRN_EIO;
	}
	if (rv != 0) {
		unlink(path);
		sodium_memzero(key, SECURE_KEY_BYTES);
	}
	return rv;
}

/* The opened file must be a regular file only its owner can read. */
static int check_file(int fd, const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (fstat(fd, &st) != 0) {
		snprintf(err, errlen,
		         "cannot stat the cluster secret file %s: %s", path,
		         strerror(errno));
		return CAIRN_EIO;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen,
		         "the cluster secret file %s is not a regular "
		         "file",
		         path);
		return CAIRN_EAUTH;
	}
	if ((st.st_mode & 077) != 0) {
		snprintf(
		    err, errlen,
		    "the cluster secret file %s has mode %04o: others than "
		    "its owner may read it; run 'chmod 600 %s' (and "
		    "consider the secret leaked if they did)",
		    path, (unsigned)(st.st_mode & 07777), path);
		return CAIRN_EAUTH;
	}
	return 0;
}

int secret_load_file(const char *path, uint8_t key[SECURE_KEY_BYTES], char *err,
                     size_t errlen)
{
	char text[SECRET_TEXT_MAX + 1];
	char inner[256];
	ssize_t n;
	int fd;
	int rv;

	if (sodium_init() < 0) {
		snprintf(err, errlen, "libsodium failed to initialize");
		return CAIRN_EINTERNAL;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen,
		         "cannot open the cluster secret file %s: %s", path,
		         strerror(errno));
		return errno == ENOENT ? CAIRN_EAUTH : CAIRN_EIO;
	}
	rv = check_file(fd, path, err, errlen);
	if (rv == 0) {
		do
			n = read(fd, text, sizeof text - 1);
		while (n < 0 && errno == EINTR);
		if (n < 0) {
			snprintf(err, errlen,
			         "cannot read the cluster secret file %s: %s",
			         path, strerror(errno));
			rv = CAIRN_EIO;
		} else {
			text[n] = '\0';
			rv = secret_parse(text, key, inner, sizeof inner);
			if (rv != 0)
				snprintf(err, errlen, "%s: %s", path, inner);
		}
	}
	sodium_memzero(text, sizeof text);
	close(fd);
	return rv;
}
