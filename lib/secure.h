/*
 * secure: cairn's secure channel, as a state machine that does no I/O.
 *
 * Client-to-store and store-to-store traffic both go through it. The caller
 * owns the socket: it hands received bytes in (secure_space/secure_commit, or
 * secure_feed) and gets back handshake bytes to send and decrypted bytes; it
 * seals what it wants to send (secure_seal). Any split of the byte stream
 * works, down to one byte at a time.
 *
 * Handshake (version 1), authenticated by the cluster secret (a 32-byte
 * pre-shared key, PSK):
 *
 *   client -> server  HELLO   "CRNS" 0x01 epk_c                       37 bytes
 *   server -> client  REPLY   "CRNS" 0x01 epk_s hdr_s mac_s            93 bytes
 *   client -> server  FINISH  hdr_c mac_c                              56 bytes
 *
 * epk_* are fresh X25519 keys (crypto_kx). Both sides compute the kx session
 * keys and th = BLAKE2b-512(label, HELLO, "CRNS" 0x01 epk_s), then derive
 * every key as BLAKE2b-256 keyed with the PSK over (label, kx c2s key, kx s2c
 * key, th): the stream keys c2s and s2c, and one proof key per side. mac_s =
 * BLAKE2b(proof key s; th, hdr_s) and mac_c = BLAKE2b(proof key c; th, hdr_s,
 * mac_s, hdr_c). A side that does not hold the PSK can neither prove it nor
 * derive the stream keys; every key depends on both fresh ephemeral keys, so
 * old sessions stay secret if the PSK leaks later (forward secrecy), and a
 * recorded handshake or frame replayed on another connection fails. hdr_* are
 * the crypto_secretstream_xchacha20poly1305 headers of each direction.
 * The client sends FINISH even when the server's proof failed, so both sides
 * see the wrong secret; it may send frames right after FINISH.
 *
 * Frames, each direction: a 4-byte big-endian length, then that many bytes of
 * a secretstream message (plaintext + 17 bytes) whose additional data is the
 * length. The stream's nonces make a replayed, reordered, dropped or altered
 * frame fail authentication. A frame longer than SECURE_FRAME_MAX is refused
 * before anything is reserved for it. A sender splits its plaintext into
 * frames of at most SECURE_CHUNK bytes. A FINAL-tagged frame ends a
 * direction: empty for a clean end, or carrying the reason the sender gave up
 * (an "alert"), which the receiver reports.
 *
 * Errors: a failed call returns a CAIRN_E* code (CAIRN_EAUTH when the peer
 * does not know the secret, CAIRN_EPROTO for a malformed or forged byte
 * stream, CAIRN_ECONN when the peer sent an alert, CAIRN_ENOMEM) and leaves a
 * message in secure_errmsg(); the channel is dead from then on. Even on
 * failure the reply buffer may have received bytes (FINISH, an alert): send
 * them if the socket takes them at once, so the peer learns why, then close.
 *
 * Lifecycle (checked on every move, see secure.c):
 *   client: START -> WAIT_REPLY -> OPEN -> ENDED
 *   server: WAIT_HELLO -> WAIT_FINISH -> OPEN -> ENDED
 *   any but ENDED -> FAILED
 *
 * Not thread-safe: one channel belongs to one connection on one thread.
 */
#ifndef CAIRN_SECURE_H
#define CAIRN_SECURE_H

#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define SECURE_KEY_BYTES 32
#define SECURE_VERSION 1
#define SECURE_MAGIC "CRNS"
#define SECURE_HELLO_BYTES 37
#define SECURE_REPLY_BYTES 93
#define SECURE_FINISH_BYTES 56
#define SECURE_ABYTES crypto_secretstream_xchacha20poly1305_ABYTES
/* Plaintext bytes per frame this side seals. */
#define SECURE_CHUNK (128u << 10)
/* The largest frame (after the length) accepted from a peer. */
#define SECURE_FRAME_MAX ((1u << 20) + SECURE_ABYTES)
/* Bytes an alert's reason is cut to. */
#define SECURE_REASON_MAX 200

enum secure_role { SECURE_CLIENT, SECURE_SERVER };

enum secure_state {
	SECURE_START = 0,   /* client, before secure_start() */
	SECURE_WAIT_REPLY,  /* client, HELLO sent */
	SECURE_WAIT_HELLO,  /* server */
	SECURE_WAIT_FINISH, /* server, REPLY sent */
	SECURE_OPEN,
	SECURE_ENDED,  /* the peer ended its direction cleanly */
	SECURE_FAILED, /* see secure_errmsg() */
	SECURE_NSTATES
};

struct secure {
	enum secure_role role;
	enum secure_state state;
	bool can_seal;       /* the sending direction is keyed */
	bool sent_end;       /* a FINAL frame went out: nothing more may */
	bool plaintext_peer; /* the first bytes were not a secure HELLO/REPLY */
	uint8_t psk[SECURE_KEY_BYTES];
	uint8_t epk[crypto_kx_PUBLICKEYBYTES]; /* own ephemeral key pair */
	uint8_t esk[crypto_kx_SECRETKEYBYTES];
	uint8_t hello[SECURE_HELLO_BYTES]; /* the transcript so far */
	uint8_t th[crypto_generichash_BYTES_MAX];
	uint8_t rx_key[SECURE_KEY_BYTES]; /* until the peer's header comes */
	uint8_t mac_c_key[SECURE_KEY_BYTES];
	uint8_t hdr_s[crypto_secretstream_xchacha20poly1305_HEADERBYTES];
	uint8_t mac_s[32];
	crypto_secretstream_xchacha20poly1305_state tx;
	crypto_secretstream_xchacha20poly1305_state rx;
	struct buf in;      /* received bytes not yet used */
	size_t pos;         /* ... from here */
	uint64_t rx_frames; /* frames opened */
	uint64_t tx_frames; /* frames sealed */
	char errmsg[320];
};

/* Sets up a channel with the cluster secret key (copied). Returns 0, or
 * CAIRN_EINTERNAL if libsodium cannot initialize. */
int secure_init(struct secure *s, enum secure_role role,
                const uint8_t key[SECURE_KEY_BYTES]);

/* Wipes the keys and frees the buffers. */
void secure_close(struct secure *s);

/* Client: appends the HELLO to out. Server: nothing to do (returns 0). */
int secure_start(struct secure *s, struct buf *out);

/* Room for at least want received bytes (more if the frame being received
 * needs them). Returns 0 or CAIRN_ENOMEM. */
int secure_space(struct secure *s, size_t want, uint8_t **p, size_t *len);

/*
 * n bytes were received into the space last handed out: runs the handshake
 * (appending what to send to reply) and opens every complete frame
 * (appending its plaintext to plain). Returns 0 or an error (see above).
 */
int secure_commit(struct secure *s, size_t n, struct buf *reply,
                  struct buf *plain);

/* secure_space + copy + secure_commit. */
int secure_feed(struct secure *s, const void *p, size_t n, struct buf *reply,
                struct buf *plain);

/* Seals n bytes as frames appended to out (nothing for n = 0). Needs the
 * sending direction keyed (secure_can_seal). Returns 0, CAIRN_ENOMEM (out
 * unchanged) or CAIRN_EPROTO (not keyed, or ended). */
int secure_seal(struct secure *s, const void *p, size_t n, struct buf *out);

/* Appends a FINAL frame ending this side's direction: reason NULL or "" for
 * a clean end, else an alert the peer reports. No-op when it cannot seal. */
int secure_end(struct secure *s, const char *reason, struct buf *out);

/*
 * The connection reached end of file: NULL if that is a clean place to stop
 * (between frames, or after the peer's end), else why not ("closed inside
 * frame 3", "closed during the handshake"); the message stays in errmsg.
 */
const char *secure_eof(struct secure *s);

static inline bool secure_open(const struct secure *s)
{
	return s->state == SECURE_OPEN;
}

static inline bool secure_can_seal(const struct secure *s)
{
	return s->can_seal && !s->sent_end;
}

/* True when the peer's first bytes showed it speaks cairn's plaintext
 * protocol (the call that found it returned CAIRN_EAUTH). */
static inline bool secure_plaintext_peer(const struct secure *s)
{
	return s->plaintext_peer;
}

static inline const char *secure_errmsg(const struct secure *s)
{
	return s->errmsg[0] != '\0' ? s->errmsg : "no error";
}

/* Frame bytes for n bytes of plaintext. */
static inline size_t secure_sealed_size(size_t n)
{
	return n + (n + SECURE_CHUNK - 1) / SECURE_CHUNK * (4 + SECURE_ABYTES);
}

#endif
