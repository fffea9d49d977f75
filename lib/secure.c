/*
 * secure: the secure channel's handshake and frames (see secure.h).
 *
 * Received bytes collect in one compacting buffer, like frame.c's: the
 * handshake messages have fixed sizes, a frame's length is checked before any
 * room is reserved for it, and the buffer never holds more than one partial
 * message plus one read. Keys that are no longer needed are wiped as soon as
 * the step that used them is done.
 */
#include "secure.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"

#define MAGIC_LEN 4
#define PUB_LEN (MAGIC_LEN + 1 + crypto_kx_PUBLICKEYBYTES) /* magic ver epk */
#define HDR_LEN crypto_secretstream_xchacha20poly1305_HEADERBYTES
#define MAC_LEN 32
#define LABEL "cairn-secure-1 "

/* ---- the state machine -----------------------------------------------------
 */

static const char *const state_names[SECURE_NSTATES] = {
    [SECURE_START] = "start",
    [SECURE_WAIT_REPLY] = "wait-reply",
    [SECURE_WAIT_HELLO] = "wait-hello",
    [SECURE_WAIT_FINISH] = "wait-finish",
    [SECURE_OPEN] = "open",
    [SECURE_ENDED] = "ended",
    [SECURE_FAILED] = "failed",
};

#define B(s) (1u << (s))
static const unsigned allowed[SECURE_NSTATES] = {
    [SECURE_START] = B(SECURE_WAIT_REPLY) | B(SECURE_FAILED),
    [SECURE_WAIT_REPLY] = B(SECURE_OPEN) | B(SECURE_FAILED),
    [SECURE_WAIT_HELLO] = B(SECURE_WAIT_FINISH) | B(SECURE_FAILED),
    [SECURE_WAIT_FINISH] = B(SECURE_OPEN) | B(SECURE_FAILED),
    [SECURE_OPEN] = B(SECURE_ENDED) | B(SECURE_FAILED),
    [SECURE_ENDED] = B(SECURE_FAILED),
    [SECURE_FAILED] = 0,
};
#undef B

static void move(struct secure *s, enum secure_state to)
{
	if (!(allowed[s->state] & (1u << to))) {
		fprintf(stderr, "secure channel: illegal move %s -> %s\n",
		        state_names[s->state], state_names[to]);
		abort();
	}
	s->state = to;
}

static int fail(struct secure *s, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records why the channel died and wipes what it knew. */
static int fail(struct secure *s, int code, const char *fmt, ...)
{
	char msg[sizeof s->errmsg - 32];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	snprintf(s->errmsg, sizeof s->errmsg, "secure channel: %s", msg);
	if (s->state != SECURE_FAILED)
		move(s, SECURE_FAILED);
	sodium_memzero(s->esk, sizeof s->esk);
	sodium_memzero(s->rx_key, sizeof s->rx_key);
	sodium_memzero(s->mac_c_key, sizeof s->mac_c_key);
	sodium_memzero(&s->rx, sizeof s->rx);
	return code;
}

/* ---- setup -----------------------------------------------------------------
 */

int secure_init(struct secure *s, enum secure_role role,
                const uint8_t key[SECURE_KEY_BYTES])
{
	struct buf empty = BUF_INIT;

	memset(s, 0, sizeof *s);
	s->in = empty;
	if (sodium_init() < 0)
		return CAIRN_EINTERNAL;
	s->role = role;
	s->state = role == SECURE_CLIENT ? SECURE_START : SECURE_WAIT_HELLO;
	memcpy(s->psk, key, SECURE_KEY_BYTES);
	return 0;
}

void secure_close(struct secure *s)
{
	buf_free(&s->in);
	sodium_memzero(s, sizeof *s);
}

/* ---- key schedule -------------------------------------------------------- */

/* th = H(label, HELLO, the public part of REPLY). */
static void transcript(struct secure *s, const uint8_t *reply_pub)
{
	crypto_generichash_state st;
	static const char label[] = LABEL "transcript";

	crypto_generichash_init(&st, NULL, 0, sizeof s->th);
	crypto_generichash_update(&st, (const uint8_t *)label, sizeof label);
	crypto_generichash_update(&st, s->hello, sizeof s->hello);
	crypto_generichash_update(&st, reply_pub, PUB_LEN);
	crypto_generichash_final(&st, s->th, sizeof s->th);
}

/* One key: H_psk(label, kx c2s, kx s2c, th). */
static void derive(const struct secure *s, const char *what, const uint8_t *c2s,
                   const uint8_t *s2c, uint8_t out[SECURE_KEY_BYTES])
{
	crypto_generichash_state st;
	char label[48];
	int n = snprintf(label, sizeof label, LABEL "%s", what);

	crypto_generichash_init(&st, s->psk, SECURE_KEY_BYTES,
	                        SECURE_KEY_BYTES);
	crypto_generichash_update(&st, (const uint8_t *)label, (size_t)n + 1);
	crypto_generichash_update(&st, c2s, crypto_kx_SESSIONKEYBYTES);
	crypto_generichash_update(&st, s2c, crypto_kx_SESSIONKEYBYTES);
	crypto_generichash_update(&st, s->th, sizeof s->th);
	crypto_generichash_final(&st, out, SECURE_KEY_BYTES);
}

/* A proof: H_key(th, parts...), parts given as (pointer, length) pairs. */
static void prove(const struct secure *s, const uint8_t *key,
                  uint8_t out[MAC_LEN], const uint8_t *a, size_t alen,
                  const uint8_t *b, size_t blen, const uint8_t *c, size_t clen)
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, key, SECURE_KEY_BYTES, MAC_LEN);
	crypto_generichash_update(&st, s->th, sizeof s->th);
	crypto_generichash_update(&st, a, alen);
	if (b != NULL)
		crypto_generichash_update(&st, b, blen);
	if (c != NULL)
		crypto_generichash_update(&st, c, clen);
	crypto_generichash_final(&st, out, MAC_LEN);
}

struct keys {
	uint8_t c2s[SECURE_KEY_BYTES];
	uint8_t s2c[SECURE_KEY_BYTES];
	uint8_t mac_s[SECURE_KEY_BYTES];
	uint8_t mac_c[SECURE_KEY_BYTES];
};

/* From the kx session keys (as the client names them: c2s, s2c). */
static void schedule(const struct secure *s, const uint8_t *kx_c2s,
                     const uint8_t *kx_s2c, struct keys *k)
{
	derive(s, "c2s", kx_c2s, kx_s2c, k->c2s);
	derive(s, "s2c", kx_c2s, kx_s2c, k->s2c);
	derive(s, "proof-s", kx_c2s, kx_s2c, k->mac_s);
	derive(s, "proof-c", kx_c2s, kx_s2c, k->mac_c);
}

/* ---- the handshake ------------------------------------------------------- */

static void put_pub(uint8_t *p, const uint8_t *epk)
{
	memcpy(p, SECURE_MAGIC, MAGIC_LEN);
	p[MAGIC_LEN] = SECURE_VERSION;
	memcpy(p + MAGIC_LEN + 1, epk, crypto_kx_PUBLICKEYBYTES);
}

int secure_start(struct secure *s, struct buf *out)
{
	int rv;

	if (s->role == SECURE_SERVER)
		return 0;
	if (s->state != SECURE_START)
		return fail(s, CAIRN_EPROTO, "handshake started twice");
	crypto_kx_keypair(s->epk, s->esk);
	put_pub(s->hello, s->epk);
	rv = buf_append(out, s->hello, sizeof s->hello);
	if (rv != 0)
		return fail(s, rv, "out of memory");
	move(s, SECURE_WAIT_REPLY);
	return 0;
}

/*
 * Checks the magic and version at the start of a handshake message, as far as
 * n bytes of it arrived, so a peer speaking something else is told at its
 * first byte. Returns 0, or the error.
 */
static int check_magic(struct secure *s, const uint8_t *p, size_t n)
{
	const char *who = s->role == SECURE_SERVER ? "the client" : "the peer";
	size_t k = n < MAGIC_LEN ? n : MAGIC_LEN;

	if (memcmp(p, SECURE_MAGIC, k) != 0) {
		if (p[0] == 0) { /* a cairn frame length: plaintext protocol */
			s->plaintext_peer = true;
			return fail(
			    s, CAIRN_EAUTH,
			    s->role == SECURE_SERVER
			        ? "handshake: the client speaks plaintext; "
			          "this side requires the secure channel "
			          "(give the client the cluster secret)"
			        : "handshake: the peer answered in "
			          "plaintext: it runs with --insecure "
			          "(connect with --insecure, or give it the "
			          "cluster secret)");
		}
		return fail(
		    s, CAIRN_EPROTO,
		    "handshake: %s does not speak cairn's secure channel "
		    "(first bytes %02x%02x%02x%02x)",
		    who, p[0], k > 1 ? p[1] : 0, k > 2 ? p[2] : 0,
		    k > 3 ? p[3] : 0);
	}
	if (n > MAGIC_LEN && p[MAGIC_LEN] != SECURE_VERSION)
		return fail(s, CAIRN_EPROTO,
		            "handshake: %s speaks secure channel version %u, "
		            "this side %u",
		            who, p[MAGIC_LEN], SECURE_VERSION);
	return 0;
}

/* Server: HELLO in, REPLY out. */
static int on_hello(struct secure *s, const uint8_t *p, struct buf *reply)
{
	uint8_t msg[SECURE_REPLY_BYTES];
	uint8_t c2s[crypto_kx_SESSIONKEYBYTES];
	uint8_t s2c[crypto_kx_SESSIONKEYBYTES];
	struct keys k;
	int rv;

	memcpy(s->hello, p, sizeof s->hello);
	crypto_kx_keypair(s->epk, s->esk);
	if (crypto_kx_server_session_keys(c2s, s2c, s->epk, s->esk,
	                                  p + MAGIC_LEN + 1) != 0)
		return fail(s, CAIRN_EPROTO,
		            "handshake: the client's key is invalid");
	sodium_memzero(s->esk, sizeof s->esk);
	put_pub(msg, s->epk);
	transcript(s, msg);
	schedule(s, c2s, s2c, &k);
	sodium_memzero(c2s, sizeof c2s);
	sodium_memzero(s2c, sizeof s2c);
	crypto_secretstream_xchacha20poly1305_init_push(&s->tx, s->hdr_s,
	                                                k.s2c);
	prove(s, k.mac_s, s->mac_s, s->hdr_s, HDR_LEN, NULL, 0, NULL, 0);
	memcpy(msg + PUB_LEN, s->hdr_s, HDR_LEN);
	memcpy(msg + PUB_LEN + HDR_LEN, s->mac_s, MAC_LEN);
	memcpy(s->rx_key, k.c2s, sizeof s->rx_key);
	memcpy(s->mac_c_key, k.mac_c, sizeof s->mac_c_key);
	sodium_memzero(&k, sizeof k);
	rv = buf_append(reply, msg, sizeof msg);
	if (rv != 0)
		return fail(s, rv, "out of memory");
	s->can_seal = true;
	move(s, SECURE_WAIT_FINISH);
	return 0;
}

/* Client: REPLY in, FINISH out (even when the server's proof fails, so that
 * the server learns the secrets differ too). */
static int on_reply(struct secure *s, const uint8_t *p, struct buf *reply)
{
	uint8_t msg[SECURE_FINISH_BYTES];
	uint8_t c2s[crypto_kx_SESSIONKEYBYTES];
	uint8_t s2c[crypto_kx_SESSIONKEYBYTES];
	uint8_t want[MAC_LEN];
	const uint8_t *hdr_s = p + PUB_LEN;
	const uint8_t *mac_s = p + PUB_LEN + HDR_LEN;
	struct keys k;
	bool proven;

	if (crypto_kx_client_session_keys(s2c, c2s, s->epk, s->esk,
	                                  p + MAGIC_LEN + 1) != 0)
		return fail(s, CAIRN_EPROTO,
		            "handshake: the peer's key is invalid");
	sodium_memzero(s->esk, sizeof s->esk);
	transcript(s, p);
	schedule(s, c2s, s2c, &k);
	sodium_memzero(c2s, sizeof c2s);
	sodium_memzero(s2c, sizeof s2c);
	prove(s, k.mac_s, want, hdr_s, HDR_LEN, NULL, 0, NULL, 0);
	proven = sodium_memcmp(want, mac_s, MAC_LEN) == 0;
	crypto_secretstream_xchacha20poly1305_init_push(&s->tx, msg, k.c2s);
	prove(s, k.mac_c, msg + HDR_LEN, hdr_s, HDR_LEN, mac_s, MAC_LEN, msg,
	      HDR_LEN);
	if (proven)
		crypto_secretstream_xchacha20poly1305_init_pull(&s->rx, hdr_s,
		                                                k.s2c);
	sodium_memzero(&k, sizeof k);
	if (buf_append(reply, msg, sizeof msg) != 0)
		return fail(s, CAIRN_ENOMEM, "out of memory");
	if (!proven)
		return fail(s, CAIRN_EAUTH,
		            "handshake: the peer does not know the cluster "
		            "secret (its secret differs from this side's)");
	s->can_seal = true;
	move(s, SECURE_OPEN);
	return 0;
}

/* Server: FINISH in; the client proved the secret. */
static int on_finish(struct secure *s, const uint8_t *p)
{
	uint8_t want[MAC_LEN];

	prove(s, s->mac_c_key, want, s->hdr_s, HDR_LEN, s->mac_s, MAC_LEN, p,
	      HDR_LEN);
	sodium_memzero(s->mac_c_key, sizeof s->mac_c_key);
	if (sodium_memcmp(want, p + HDR_LEN, MAC_LEN) != 0)
		return fail(s, CAIRN_EAUTH,
		            "handshake: the peer does not know the cluster "
		            "secret (its secret differs from this side's)");
	crypto_secretstream_xchacha20poly1305_init_pull(&s->rx, p, s->rx_key);
	sodium_memzero(s->rx_key, sizeof s->rx_key);
	move(s, SECURE_OPEN);
	return 0;
}

/* The size of the handshake message expected now; 0 when none is. */
static size_t handshake_size(const struct secure *s)
{
	switch (s->state) {
	case SECURE_WAIT_HELLO:
		return SECURE_HELLO_BYTES;
	case SECURE_WAIT_REPLY:
		return SECURE_REPLY_BYTES;
	case SECURE_WAIT_FINISH:
		return SECURE_FINISH_BYTES;
	default:
		return 0;
	}
}

/* ---- frames -------------------------------------------------------------- */

/* Keeps only printable ASCII of an alert's reason. */
static void sanitize(char *dst, size_t cap, const uint8_t *p, size_t n)
{
	size_t i;
	size_t k = 0;

	for (i = 0; i < n && k + 1 < cap; i++)
		dst[k++] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '?';
	dst[k] = '\0';
}

/* Opens one complete frame of clen bytes at c (its length header at hdr). */
static int open_frame(struct secure *s, const uint8_t *hdr, const uint8_t *c,
                      uint32_t clen, struct buf *plain)
{
	unsigned long long mlen = 0;
	uint8_t tag = 0;
	char reason[SECURE_REASON_MAX + 1];
	uint64_t n = s->rx_frames + 1;
	int rv;

	/* One byte more than the plaintext, so that an empty frame into an
	 * empty buffer still has a place to point at. */
	rv = buf_reserve(plain, clen - SECURE_ABYTES + 1);
	if (rv != 0)
		return fail(s, rv, "out of memory");
	if (crypto_secretstream_xchacha20poly1305_pull(
	        &s->rx, plain->data + plain->len, &mlen, &tag, c, clen, hdr,
	        4) != 0)
		return fail(s, CAIRN_EPROTO,
		            "frame %llu: authentication failed (tampered, "
		            "replayed or reordered)",
		            (unsigned long long)n);
	s->rx_frames = n;
	if (tag != crypto_secretstream_xchacha20poly1305_TAG_FINAL) {
		plain->len += (size_t)mlen;
		return 0;
	}
	if (mlen == 0) {
		move(s, SECURE_ENDED);
		return 0;
	}
	sanitize(reason, sizeof reason, plain->data + plain->len, (size_t)mlen);
	return fail(s, CAIRN_ECONN, "the peer ended the channel: %s", reason);
}

static uint32_t get_len(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static void put_len(uint8_t *p, uint32_t n)
{
	p[0] = (uint8_t)(n >> 24);
	p[1] = (uint8_t)(n >> 16);
	p[2] = (uint8_t)(n >> 8);
	p[3] = (uint8_t)n;
}

static int check_len(struct secure *s, uint32_t clen)
{
	if (clen < SECURE_ABYTES || clen > SECURE_FRAME_MAX)
		return fail(s, CAIRN_EPROTO,
		            "frame %llu: length %u outside %u..%u bytes",
		            (unsigned long long)s->rx_frames + 1, clen,
		            (unsigned)SECURE_ABYTES,
		            (unsigned)SECURE_FRAME_MAX);
	return 0;
}

/* ---- receiving ----------------------------------------------------------- */

static size_t pending(const struct secure *s)
{
	return s->in.len - s->pos;
}

static void compact(struct secure *s)
{
	size_t left = pending(s);

	if (s->pos == 0)
		return;
	if (left > 0)
		memmove(s->in.data, s->in.data + s->pos, left);
	s->in.len = left;
	s->pos = 0;
}

int secure_space(struct secure *s, size_t want, uint8_t **p, size_t *len)
{
	size_t left;
	size_t need = 0;
	int rv;

	compact(s);
	left = s->in.len;
	if (s->state == SECURE_OPEN && left >= 4) {
		uint32_t clen = get_len(s->in.data);
		if (clen <= SECURE_FRAME_MAX)
			need = 4 + (size_t)clen;
	} else {
		need = handshake_size(s);
	}
	if (need > left + want)
		want = need - left;
	rv = buf_reserve(&s->in, want);
	if (rv != 0)
		return rv;
	*p = s->in.data + s->in.len;
	*len = s->in.cap - s->in.len;
	return 0;
}

/* One step: a handshake message or a frame, if complete. Returns 1 when it
 * used bytes, 0 when more are needed, or an error. */
static int step(struct secure *s, struct buf *reply, struct buf *plain)
{
	const uint8_t *p = s->in.data + s->pos;
	size_t have = pending(s);
	size_t need = handshake_size(s);
	uint32_t clen;
	int rv;

	if (have == 0)
		return 0;
	if (s->state == SECURE_ENDED)
		return fail(s, CAIRN_EPROTO,
		            "data after the peer ended the channel");
	if (s->state == SECURE_FAILED || s->state == SECURE_START)
		return fail(s, CAIRN_EPROTO, "data in state %s",
		            state_names[s->state]);
	if (need > 0) {
		if (s->state != SECURE_WAIT_FINISH &&
		    (rv = check_magic(s, p, have < PUB_LEN ? have : PUB_LEN)) !=
		        0)
			return rv;
		if (have < need)
			return 0;
		s->pos += need;
		if (s->state == SECURE_WAIT_HELLO)
			return (rv = on_hello(s, p, reply)) != 0 ? rv : 1;
		if (s->state == SECURE_WAIT_REPLY)
			return (rv = on_reply(s, p, reply)) != 0 ? rv : 1;
		return (rv = on_finish(s, p)) != 0 ? rv : 1;
	}
	if (have < 4)
		return 0;
	clen = get_len(p);
	if ((rv = check_len(s, clen)) != 0)
		return rv;
	if (have - 4 < clen)
		return 0;
	s->pos += 4 + (size_t)clen;
	rv = open_frame(s, p, p + 4, clen, plain);
	return rv != 0 ? rv : 1;
}

/* A frame that fails to open is reported to the peer too, on the direction
 * that still works: an alert with the reason. */
int secure_commit(struct secure *s, size_t n, struct buf *reply,
                  struct buf *plain)
{
	static const char prefix[] = "secure channel: ";
	bool open;
	int rv;

	s->in.len += n;
	do {
		open = s->state == SECURE_OPEN;
		rv = step(s, reply, plain);
	} while (rv == 1);
	if (rv != 0 && open && rv != CAIRN_ECONN && rv != CAIRN_ENOMEM)
		secure_end(s, s->errmsg + sizeof prefix - 1, reply);
	return rv;
}

int secure_feed(struct secure *s, const void *p, size_t n, struct buf *reply,
                struct buf *plain)
{
	uint8_t *room;
	size_t len;
	int rv;

	rv = secure_space(s, n, &room, &len);
	if (rv != 0)
		return fail(s, rv, "out of memory");
	if (n > 0)
		memcpy(room, p, n);
	return secure_commit(s, n, reply, plain);
}

const char *secure_eof(struct secure *s)
{
	size_t have = pending(s);

	if (s->state == SECURE_FAILED)
		return s->errmsg;
	if (s->state == SECURE_ENDED || (s->state == SECURE_OPEN && have == 0))
		return NULL;
	if (s->state != SECURE_OPEN) {
		fail(s, CAIRN_ECONN,
		     "handshake: the peer closed the connection during the "
		     "handshake (%zu bytes of its %s received)",
		     have, s->state == SECURE_WAIT_REPLY ? "reply" : "message");
		return s->errmsg;
	}
	fail(s, CAIRN_EPROTO,
	     "frame %llu: the connection closed inside it (%zu of %u bytes "
	     "received): truncated",
	     (unsigned long long)s->rx_frames + 1, have,
	     have >= 4 ? 4 + get_len(s->in.data + s->pos) : 4u);
	return s->errmsg;
}

/* ---- sending ------------------------------------------------------------- */

static void seal_one(struct secure *s, const uint8_t *m, size_t n, uint8_t tag,
                     uint8_t *out)
{
	put_len(out, (uint32_t)(n + SECURE_ABYTES));
	crypto_secretstream_xchacha20poly1305_push(&s->tx, out + 4, NULL, m, n,
	                                           out, 4, tag);
	s->tx_frames++;
}

int secure_seal(struct secure *s, const void *p, size_t n, struct buf *out)
{
	const uint8_t *m = p;
	size_t chunk;
	int rv;

	if (!secure_can_seal(s))
		return CAIRN_EPROTO;
	if (n == 0)
		return 0;
	rv = buf_reserve(out, secure_sealed_size(n));
	if (rv != 0)
		return rv;
	while (n > 0) {
		chunk = n < SECURE_CHUNK ? n : SECURE_CHUNK;
		seal_one(s, m, chunk,
		         crypto_secretstream_xchacha20poly1305_TAG_MESSAGE,
		         out->data + out->len);
		out->len += 4 + chunk + SECURE_ABYTES;
		m += chunk;
		n -= chunk;
	}
	return 0;
}

int secure_end(struct secure *s, const char *reason, struct buf *out)
{
	size_t n = reason != NULL ? strlen(reason) : 0;
	int rv;

	if (!secure_can_seal(s))
		return 0;
	if (n > SECURE_REASON_MAX)
		n = SECURE_REASON_MAX;
	rv = buf_reserve(out, 4 + n + SECURE_ABYTES);
	if (rv != 0)
		return rv;
	seal_one(s, (const uint8_t *)(n > 0 ? reason : ""), n,
	         crypto_secretstream_xchacha20poly1305_TAG_FINAL,
	         out->data + out->len);
	out->len += 4 + n + SECURE_ABYTES;
	s->sent_end = true;
	return 0;
}
