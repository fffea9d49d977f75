/*
 * secret: the cluster secret, the pre-shared key of the secure channel.
 *
 * It is 32 random bytes, kept as one line of text so it can be copied and
 * pasted like a join token:
 *
 *   cairn-secret-1:<the 32 bytes in standard base64>
 *
 * in a file that only its owner may read (mode 0600). The first member of a
 * new cluster writes it (secret_generate); other members and clients load it
 * from a copy of that file (secret_load_file) or from the text itself
 * (secret_parse), for example from an environment variable.
 *
 * Every function returns 0 or a CAIRN_E* code with a message in err.
 */
#ifndef CAIRN_SECRET_H
#define CAIRN_SECRET_H

#include <stddef.h>
#include <stdint.h>

#include "secure.h"

#define SECRET_PREFIX "cairn-secret-1:"
/* The text form with its newline, NUL-ended. */
#define SECRET_TEXT_MAX 64
/* A short non-secret digest to compare secrets by ("a1b2c3d4e5f60718"). */
#define SECRET_FINGERPRINT_LEN 17

/*
 * Creates path as a new file (never replaces one: CAIRN_EIO with EEXIST's
 * message if it exists) with mode 0600, writes a fresh secret to it, and
 * syncs the file and its directory. The key is returned in key.
 */
int secret_generate(const char *path, uint8_t key[SECURE_KEY_BYTES], char *err,
                    size_t errlen);

/* Reads a secret file. Refuses a file that its group or others may read, or
 * that is not a regular file (CAIRN_EAUTH). */
int secret_load_file(const char *path, uint8_t key[SECURE_KEY_BYTES], char *err,
                     size_t errlen);

/* Parses the text form (surrounding white space allowed). */
int secret_parse(const char *text, uint8_t key[SECURE_KEY_BYTES], char *err,
                 size_t errlen);

/* The text form of key, with a newline, into out (SECRET_TEXT_MAX bytes). */
void secret_format(const uint8_t key[SECURE_KEY_BYTES],
                   char out[SECRET_TEXT_MAX]);

/* A digest of key for logs and messages: two members print the same
 * fingerprint exactly when their secrets are the same. */
void secret_fingerprint(const uint8_t key[SECURE_KEY_BYTES],
                        char out[SECRET_FINGERPRINT_LEN]);

#endif
