/* buf: a growable byte buffer. Growth doubles, so appends are amortized O(1). */
#include "buf.h"

#include <stdlib.h>
#include <string.h>

#include "cairn.h"

int buf_grow(struct buf *b, size_t n)
{
	size_t want;
	size_t cap;
	uint8_t *p;

	if (n > SIZE_MAX - b->len)
		return CAIRN_ENOMEM;
	want = b->len + n;
	if (want <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap < want)
		cap = cap > SIZE_MAX / 2 ? want : cap * 2;
	p = realloc(b->data, cap);
	if (p == NULL)
		return CAIRN_ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

void buf_reset(struct buf *b)
{
	b->len = 0;
}

void buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

uint8_t *buf_steal(struct buf *b, size_t *len)
{
	uint8_t *p = b->data;

	*len = b->len;
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	return p;
}
