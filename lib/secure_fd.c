/* secure_fd: the secure channel over a blocking socket (see secure_fd.h). */
#include "secure_fd.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "cairn.h"

#define READ_CHUNK 65536

static int send_raw(struct secure_fd *sf, const uint8_t *p, size_t n)
{
	ssize_t k;

	while (n > 0) {
		k = send(sf->fd, p, n, MSG_NOSIGNAL);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			snprintf(sf->err, sizeof sf->err, "send: %s",
			         k < 0 ? strerror(errno) : "nothing sent");
			return -1;
		}
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/* Reads once into the channel; decrypted bytes go to plain. Returns > 0,
 * 0 at end of file (sf->err says if that was unclean), or -1. */
static ssize_t read_some(struct secure_fd *sf)
{
	uint8_t *room;
	size_t len;
	ssize_t k;
	int rv;

	if (secure_space(&sf->s, READ_CHUNK, &room, &len) != 0) {
		snprintf(sf->err, sizeof sf->err, "out of memory");
		return -1;
	}
	do
		k = recv(sf->fd, room, len, 0);
	while (k < 0 && errno == EINTR);
	sf->code = CAIRN_ECONN;
	if (k < 0) {
		snprintf(sf->err, sizeof sf->err, "recv: %s", strerror(errno));
		return -1;
	}
	if (k == 0) {
		const char *why = secure_eof(&sf->s);
		snprintf(sf->err, sizeof sf->err, "%s",
		         why != NULL ? why : "connection closed");
		return why != NULL ? -1 : 0;
	}
	buf_reset(&sf->out);
	rv = secure_commit(&sf->s, (size_t)k, &sf->out, &sf->plain);
	if (sf->out.len > 0 && send_raw(sf, sf->out.data, sf->out.len) != 0 &&
	    rv == 0)
		return -1;
	if (rv != 0) {
		snprintf(sf->err, sizeof sf->err, "%s", secure_errmsg(&sf->s));
		sf->code = rv;
		return -1;
	}
	return k;
}

int secure_fd_open(struct secure_fd *sf, int fd, const uint8_t *key)
{
	struct buf empty = BUF_INIT;
	ssize_t k;
	int rv;

	memset(sf, 0, sizeof *sf);
	sf->fd = fd;
	sf->plain = sf->out = empty;
	sf->secure = key != NULL;
	if (!sf->secure)
		return 0;
	rv = secure_init(&sf->s, SECURE_CLIENT, key);
	if (rv == 0)
		rv = secure_start(&sf->s, &sf->out);
	if (rv != 0) {
		snprintf(sf->err, sizeof sf->err, "cannot set up the channel");
		return rv;
	}
	if (send_raw(sf, sf->out.data, sf->out.len) != 0)
		return CAIRN_ECONN;
	while (!secure_open(&sf->s)) {
		k = read_some(sf);
		if (k == 0)
			snprintf(sf->err, sizeof sf->err,
			         "connection closed during the handshake");
		if (k <= 0)
			return sf->code;
	}
	return 0;
}

int secure_fd_send(struct secure_fd *sf, const void *p, size_t n)
{
	if (!sf->secure)
		return send_raw(sf, p, n);
	buf_reset(&sf->out);
	if (secure_seal(&sf->s, p, n, &sf->out) != 0) {
		snprintf(sf->err, sizeof sf->err, "cannot seal: %.280s",
		         secure_errmsg(&sf->s));
		return -1;
	}
	return send_raw(sf, sf->out.data, sf->out.len);
}

ssize_t secure_fd_recv(struct secure_fd *sf, void *p, size_t n)
{
	ssize_t k;
	size_t have;

	if (!sf->secure) {
		do
			k = recv(sf->fd, p, n, 0);
		while (k < 0 && errno == EINTR);
		if (k < 0)
			snprintf(sf->err, sizeof sf->err, "recv: %s",
			         strerror(errno));
		return k;
	}
	while (!secure_fd_pending(sf)) {
		buf_reset(&sf->plain);
		sf->pos = 0;
		k = read_some(sf);
		if (k <= 0)
			return k;
	}
	have = sf->plain.len - sf->pos;
	if (n > have)
		n = have;
	memcpy(p, sf->plain.data + sf->pos, n);
	sf->pos += n;
	return (ssize_t)n;
}

void secure_fd_close(struct secure_fd *sf)
{
	if (sf->secure)
		secure_close(&sf->s);
	buf_free(&sf->plain);
	buf_free(&sf->out);
}
