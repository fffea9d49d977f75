/* buf: a growable byte buffer, the one place output bytes are assembled. */
#ifndef CAIRN_BUF_H
#define CAIRN_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
	uint8_t *data;
	size_t len;
	size_t cap;
};

#define BUF_INIT {NULL, 0, 0}

/* Makes room for n more bytes. Returns 0 or CAIRN_ENOMEM. */
int buf_reserve(struct buf *b, size_t n);
/* Appends n bytes. Returns 0 or CAIRN_ENOMEM. */
int buf_append(struct buf *b, const void *p, size_t n);
/* Forgets the contents, keeps the memory. */
void buf_reset(struct buf *b);
/* Releases the memory. */
void buf_free(struct buf *b);
/* Hands the bytes to the caller (who frees them with free()) and empties b. */
uint8_t *buf_steal(struct buf *b, size_t *len);

#endif
