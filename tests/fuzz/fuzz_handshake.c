/*
 * fuzz_handshake: the secure channel (lib/secure.h) fed hostile bytes.
 *
 * Input: a mode byte, then:
 * - mode 0, a server: chunks (a length byte, then that many bytes) fed as
 *   received bytes. Without the cluster secret nobody can complete the
 *   handshake, so the channel must never open.
 * - mode 1, a client that sent its HELLO: the same, as the server's answer.
 * - mode 2, tampering: a real client and server (same secret) complete the
 *   handshake, the client seals a known message, and the input's pairs
 *   (offset, xor) alter those frames on the way. Whatever arrives, the
 *   server must hand out only a prefix of the message: the channel may
 *   fail, never deliver bytes the client did not send.
 * Everything is freed per input.
 */
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "fuzz.h"
#include "secure.h"

static const uint8_t key[SECURE_KEY_BYTES] = {
	1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
	17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32,
};

#define MESSAGE_LEN 700

static void message(uint8_t *m)
{
	size_t i;

	for (i = 0; i < MESSAGE_LEN; i++)
		m[i] = (uint8_t)(i * 7 + 3);
}

/* Modes 0 and 1: hostile bytes against one side. */
static void one_side(enum secure_role role, const uint8_t *p, size_t n)
{
	struct secure s;
	struct buf reply = BUF_INIT, plain = BUF_INIT;
	size_t len;

	if (secure_init(&s, role, key) != 0)
		return;
	if (role == SECURE_CLIENT)
		FUZZ_CHECK(secure_start(&s, &reply) == 0);
	while (n > 0) {
		len = p[0];
		p++, n--;
		if (len > n)
			len = n;
		if (secure_feed(&s, p, len, &reply, &plain) != 0)
			break;
		FUZZ_CHECK(!secure_open(&s));
		FUZZ_CHECK(plain.len == 0);
		p += len, n -= len;
	}
	FUZZ_CHECK(!secure_open(&s));
	(void)secure_eof(&s);
	secure_close(&s);
	buf_free(&reply);
	buf_free(&plain);
}

/* Runs the handshake between c and s; true when both are open. */
static bool handshake(struct secure *c, struct secure *s)
{
	struct buf a = BUF_INIT, b = BUF_INIT, plain = BUF_INIT;
	bool ok = false;
	int round;

	if (secure_start(c, &a) != 0)
		goto out;
	for (round = 0; round < 4 && !(secure_open(c) && secure_open(s)); round++) {
		buf_reset(&b);
		if (secure_feed(s, a.data, a.len, &b, &plain) != 0)
			goto out;
		buf_reset(&a);
		if (b.len > 0 && secure_feed(c, b.data, b.len, &a, &plain) != 0)
			goto out;
	}
	ok = secure_open(c) && secure_open(s) && plain.len == 0;
out:
	buf_free(&a);
	buf_free(&b);
	buf_free(&plain);
	return ok;
}

static void tamper(const uint8_t *p, size_t n)
{
	struct secure c, s;
	struct buf wire = BUF_INIT, reply = BUF_INIT, plain = BUF_INIT;
	uint8_t m[MESSAGE_LEN];
	size_t off;

	message(m);
	if (secure_init(&c, SECURE_CLIENT, key) != 0)
		return;
	if (secure_init(&s, SECURE_SERVER, key) != 0) {
		secure_close(&c);
		return;
	}
	FUZZ_CHECK(handshake(&c, &s));
	FUZZ_CHECK(secure_seal(&c, m, 300, &wire) == 0);
	FUZZ_CHECK(secure_seal(&c, m + 300, MESSAGE_LEN - 300, &wire) == 0);
	for (; n >= 3; p += 3, n -= 3) {
		off = ((size_t)p[0] << 8 | p[1]) % wire.len;
		wire.data[off] ^= p[2];
	}
	(void)secure_feed(&s, wire.data, wire.len, &reply, &plain);
	FUZZ_CHECK(plain.len <= MESSAGE_LEN);
	FUZZ_CHECK(plain.len == 0 || memcmp(plain.data, m, plain.len) == 0);
	secure_close(&c);
	secure_close(&s);
	buf_free(&wire);
	buf_free(&reply);
	buf_free(&plain);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *p;

	if (size < 1)
		return 0;
	p = fuzz_dup(data + 1, size - 1);
	switch (data[0] % 3) {
	case 0: one_side(SECURE_SERVER, p, size - 1); break;
	case 1: one_side(SECURE_CLIENT, p, size - 1); break;
	default: tamper(p, size - 1); break;
	}
	free(p);
	return 0;
}

/* Seeds: a real HELLO for the server, a real REPLY for the client (to
 * another HELLO, so it will not verify), and a few tamperings. */
void fuzz_seeds(void)
{
	struct secure c, s;
	struct buf hello = BUF_INIT, reply = BUF_INIT, plain = BUF_INIT;
	struct buf in = BUF_INIT;
	static const uint8_t edits[][6] = {
		{0, 0, 0},           /* none: the message must arrive whole */
		{0, 50, 1},          /* a bit of the first frame */
		{1, 200, 0x80},      /* the second frame */
		{0, 2, 1, 0, 60, 4}, /* a length and a body byte */
	};
	uint8_t len;
	size_t i;

	if (secure_init(&c, SECURE_CLIENT, key) != 0 ||
	    secure_init(&s, SECURE_SERVER, key) != 0)
		return;
	if (secure_start(&c, &hello) == 0 &&
	    secure_feed(&s, hello.data, hello.len, &reply, &plain) == 0) {
		len = (uint8_t)hello.len;
		buf_append(&in, &len, 1);
		buf_append(&in, hello.data, hello.len);
		fuzz_emit_mode(0, in.data, in.len);
		buf_reset(&in);
		len = (uint8_t)(reply.len > 255 ? 255 : reply.len);
		buf_append(&in, &len, 1);
		buf_append(&in, reply.data, len);
		fuzz_emit_mode(1, in.data, in.len);
	}
	for (i = 0; i < sizeof edits / sizeof edits[0]; i++)
		fuzz_emit_mode(2, edits[i], edits[i][3] || edits[i][4] ? 6 : 3);
	secure_close(&c);
	secure_close(&s);
	buf_free(&hello);
	buf_free(&reply);
	buf_free(&plain);
	buf_free(&in);
}
