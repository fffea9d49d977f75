/* frame: length-prefixed frame splitting over one compacting buffer. */
#include "frame.h"

#include <string.h>

#include "cairn.h"
#include "proto.h"

void frame_reader_init(struct frame_reader *fr, uint32_t max)
{
	struct buf empty = BUF_INIT;

	fr->in = empty;
	fr->pos = 0;
	fr->max = max;
}

void frame_reader_close(struct frame_reader *fr)
{
	buf_free(&fr->in);
	fr->pos = 0;
}

/* Moves the unconsumed bytes to the front, so the buffer never holds more than
 * one partial frame plus one read. */
static void compact(struct frame_reader *fr)
{
	size_t left = frame_pending(fr);

	if (fr->pos == 0)
		return;
	if (left > 0)
		memmove(fr->in.data, fr->in.data + fr->pos, left);
	fr->in.len = left;
	fr->pos = 0;
}

int frame_space(struct frame_reader *fr, size_t want, uint8_t **p, size_t *len)
{
	size_t left;
	int rv;

	compact(fr);
	left = fr->in.len;
	if (left >= 4) {
		/* Part of a frame is here: make room for its rest if it is legal. */
		uint32_t flen = proto_get_len(fr->in.data);
		if (flen <= fr->max && 4 + (size_t)flen > left + want)
			want = 4 + (size_t)flen - left;
	}
	rv = buf_reserve(&fr->in, want);
	if (rv != 0)
		return rv;
	*p = fr->in.data + fr->in.len;
	*len = fr->in.cap - fr->in.len;
	return 0;
}

struct buf *frame_sink(struct frame_reader *fr)
{
	compact(fr);
	return &fr->in;
}

void frame_commit(struct frame_reader *fr, size_t n)
{
	fr->in.len += n;
}

int frame_next(struct frame_reader *fr, const uint8_t **payload, uint32_t *len)
{
	uint32_t flen;

	if (frame_pending(fr) < 4)
		return 0;
	flen = proto_get_len(fr->in.data + fr->pos);
	if (flen > fr->max)
		return CAIRN_ETOOBIG;
	if (frame_pending(fr) - 4 < flen)
		return 0;
	*payload = fr->in.data + fr->pos + 4;
	*len = flen;
	fr->pos += 4 + (size_t)flen;
	return 1;
}
