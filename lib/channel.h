/*
 * channel: the byte path of one libuv connection of the cairn protocol,
 * plaintext or through the secure channel (secure.h), under the frame layer.
 *
 * The connection keeps its frame reader (frame.h) and its output buffer of
 * plaintext frames as before; the channel sits between them and the socket:
 *
 *   alloc callback  channel_space()   room for received bytes
 *   read callback   channel_commit()  received bytes in; plaintext appended to
 *                                     the frame reader; handshake bytes queued
 *   before a write  channel_wire()    queued handshake bytes, then the output
 *                                     buffer sealed as a few large frames (or,
 *                                     in plaintext, the output buffer as is)
 *   on a failure    channel_last_words()  best-effort send of what the peer
 *                                     should hear (FINISH, an alert)
 *
 * Sealing the whole output of a write cycle at once keeps the cost to one
 * crypto frame per SECURE_CHUNK bytes, however small the messages.
 */
#ifndef CAIRN_CHANNEL_H
#define CAIRN_CHANNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "buf.h"
#include "frame.h"
#include "secure.h"

struct channel {
	struct secure *sec; /* NULL: plaintext */
	struct buf raw;     /* handshake bytes or an alert, to send first */
};

/* key NULL: plaintext. Returns 0 or CAIRN_ENOMEM / CAIRN_EINTERNAL. */
int channel_init(struct channel *ch, const uint8_t *key, bool server);
void channel_close(struct channel *ch);

/* A client's first bytes (its HELLO), queued for the next write. */
int channel_start(struct channel *ch);

int channel_space(struct channel *ch, struct frame_reader *fr, size_t want,
                  uint8_t **p, size_t *len);

/* n bytes arrived: decrypted bytes go to fr. Returns 0 or the secure
 * channel's error (channel_errmsg); then send channel_last_words and close. */
int channel_commit(struct channel *ch, struct frame_reader *fr, size_t n);

/* Bytes are waiting to be written before anything else. */
static inline bool channel_has_raw(const struct channel *ch)
{
	return ch->raw.len > 0;
}

/* Frames may be sealed (always in plaintext). */
static inline bool channel_ready(const struct channel *ch)
{
	return ch->sec == NULL || secure_can_seal(ch->sec);
}

/*
 * Fills wire (empty on entry) with what to write now: the raw bytes, then out
 * (sealed, unless plaintext) once the channel is ready, which empties out.
 * Leaves wire empty when nothing can go yet. Returns 0 or CAIRN_ENOMEM.
 */
int channel_wire(struct channel *ch, struct buf *out, struct buf *wire);

/* Writes the raw bytes now if the socket takes them (uv_try_write). */
void channel_last_words(struct channel *ch, uv_stream_t *s);

/* At end of file: NULL when the secure channel ended cleanly (always in
 * plaintext: the frame reader tells about partial frames), else why not. */
const char *channel_eof(struct channel *ch);

const char *channel_errmsg(const struct channel *ch);

/* "IP:PORT" of a TCP handle's peer, for messages ("?" if unknown). */
void channel_peer_name(const uv_tcp_t *tcp, char *out, size_t len);

#endif
