/*
 * secure_fd: the secure channel over a blocking socket, for code that does
 * plain send()/recv() (cairn-store's removal check on a worker thread, test
 * tools). It keeps the socket's own timeouts (SO_RCVTIMEO, SO_SNDTIMEO).
 *
 *   secure_fd_open()   runs the client handshake (nothing in plaintext)
 *   secure_fd_send()   seals and sends all bytes
 *   secure_fd_recv()   returns decrypted bytes like recv()
 *   secure_fd_close()  frees; does not close the socket
 */
#ifndef CAIRN_SECURE_FD_H
#define CAIRN_SECURE_FD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"
#include "secure.h"

struct secure_fd {
	int fd;
	bool secure;
	struct secure s;
	struct buf plain; /* decrypted, not yet returned */
	size_t pos;
	struct buf out; /* scratch for sealing and handshake replies */
	int code;       /* CAIRN_E* of the last failure */
	char err[320];
};

/* key NULL: plaintext. Returns 0, or a CAIRN_E* code with the reason in
 * sf->err (sf must still be closed). */
int secure_fd_open(struct secure_fd *sf, int fd, const uint8_t *key);

/* Returns 0, or -1 with sf->err. */
int secure_fd_send(struct secure_fd *sf, const void *p, size_t n);

/* Up to n bytes: > 0 bytes returned, 0 at a clean end of file, -1 on an
 * error (sf->err; errno of a failed recv is kept). */
ssize_t secure_fd_recv(struct secure_fd *sf, void *p, size_t n);

/* Decrypted bytes are waiting (recv would return without reading). */
static inline bool secure_fd_pending(const struct secure_fd *sf)
{
	return sf->pos < sf->plain.len;
}

void secure_fd_close(struct secure_fd *sf);

#endif
