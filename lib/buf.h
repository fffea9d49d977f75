/* buf: a growable byte buffer, the one place output bytes are assembled. */
#ifndef CAIRN_BUF_H
#define CAIRN_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct buf {
	uint8_t *data;
	size_t len;
	size_t cap;
};

#define BUF_INIT {NULL, 0, 0}

/* The slow path of buf_reserve(): grows the memory. */
int buf_grow(struct buf *b, size_t n);

/* Makes room for n more bytes. Returns 0 or CAIRN_ENOMEM. */
static inline int buf_reserve(struct buf *b, size_t n)
{
	return n <= b->cap - b->len ? 0 : buf_grow(b, n);
}

/* Appends n bytes. Returns 0 or CAIRN_ENOMEM. */
static inline int buf_append(struct buf *b, const void *p, size_t n)
{
	int rv;

	if (n == 0)
		return 0;
	if (n > b->cap - b->len && (rv = buf_grow(b, n)) != 0)
		return rv;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}
/* Forgets the contents, keeps the memory. */
void buf_reset(struct buf *b);
/* Releases the memory. */
void buf_free(struct buf *b);
/* Hands the bytes to the caller (who frees them with free()) and empties b. */
uint8_t *buf_steal(struct buf *b, size_t *len);

#endif
