/*
 * frame: splits a byte stream into length-prefixed frames (see proto.h).
 *
 * The reader owns one buffer. A libuv alloc callback asks frame_space() for room
 * at its end, the read callback calls frame_commit() with the bytes read, then
 * frame_next() until it returns 0. A frame's length is checked against the
 * maximum before any memory is reserved for it, so a hostile length costs
 * nothing but an error.
 */
#ifndef CAIRN_FRAME_H
#define CAIRN_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

struct frame_reader {
	struct buf in;
	size_t pos; /* start of the first unconsumed byte */
	uint32_t max;
};

void frame_reader_init(struct frame_reader *fr, uint32_t max);
void frame_reader_close(struct frame_reader *fr);

/* Room for at least 'want' bytes (more if the pending frame needs them) at the
 * end of the buffer. Returns 0 or CAIRN_ENOMEM. */
int frame_space(struct frame_reader *fr, size_t want, uint8_t **p, size_t *len);
/* Records that n bytes were written at the space last handed out. */
void frame_commit(struct frame_reader *fr, size_t n);

/* For a reader fed by a decrypting layer: moves the unconsumed bytes to the
 * front and returns the buffer to append received bytes to. Payloads handed
 * out before are invalid afterwards. */
struct buf *frame_sink(struct frame_reader *fr);

/*
 * Takes the next complete frame: returns 1 with *payload and *len pointing into the
 * buffer (valid until the next frame_space/frame_commit), 0 when more bytes are
 * needed, CAIRN_ETOOBIG when the declared length exceeds the maximum.
 */
int frame_next(struct frame_reader *fr, const uint8_t **payload, uint32_t *len);

/* Bytes received and not yet taken as frames. */
static inline size_t frame_pending(const struct frame_reader *fr)
{
	return fr->in.len - fr->pos;
}

#endif
