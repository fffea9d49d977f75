/*
 * test_secure: unit tests of lib/secure.c (the secure channel's state
 * machine) and lib/secret.c (the cluster secret and its file).
 *
 * Two channels, a client and a server, talk through memory: whatever one
 * produces is fed to the other, whole, in random splits or one byte at a
 * time. The hostile cases alter that traffic: a wrong key, a flipped bit, a
 * frame sent twice or out of order, a frame from another session, a stream
 * cut short, a length from nowhere. Every failure must come with its message,
 * and the side whose frame was refused must hear why (the alert).
 *
 * Without AddressSanitizer the libc allocator is wrapped (fault.h) so every
 * allocation of a handshake and of a frame fails in turn, and the tests check
 * that nothing leaked.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "cairn.h"
#include "secret.h"
#include "secure.h"
#include "test.h"

#include "fault.h"

/* ---- helpers ------------------------------------------------------------- */

static uint8_t key_a[SECURE_KEY_BYTES];
static uint8_t key_b[SECURE_KEY_BYTES];

struct pair {
	struct secure c;
	struct secure s;
	struct buf c_out; /* bytes the client sends, not yet delivered */
	struct buf s_out;
	struct buf c_plain; /* what the client received */
	struct buf s_plain;
	int c_err;
	int s_err;
};

static void pair_init(struct pair *p, const uint8_t *ck, const uint8_t *sk)
{
	struct buf empty = BUF_INIT;

	memset(p, 0, sizeof *p);
	p->c_out = p->s_out = p->c_plain = p->s_plain = empty;
	if (secure_init(&p->c, SECURE_CLIENT, ck) != 0 ||
	    secure_init(&p->s, SECURE_SERVER, sk) != 0 ||
	    secure_start(&p->c, &p->c_out) != 0 ||
	    secure_start(&p->s, &p->s_out) != 0)
		abort();
}

static void pair_close(struct pair *p)
{
	secure_close(&p->c);
	secure_close(&p->s);
	buf_free(&p->c_out);
	buf_free(&p->s_out);
	buf_free(&p->c_plain);
	buf_free(&p->s_plain);
}

/* Splits of a delivery: whole, random, or one byte at a time. */
enum split { WHOLE, RANDOM, BYTES };

/* Delivers everything in *out to 'to' in pieces; its replies go to reply. */
static int deliver(struct secure *to, struct buf *out, struct buf *reply,
                   struct buf *plain, enum split how)
{
	struct buf wire = *out;
	struct buf empty = BUF_INIT;
	size_t at = 0;
	size_t n;
	int rv = 0;

	*out = empty; /* replies may be appended while we read 'wire' */
	while (at < wire.len && rv == 0) {
		n = wire.len - at;
		if (how == BYTES)
			n = 1;
		else if (how == RANDOM)
			n = 1 + rng_below(n < 300 ? n : 300);
		rv = secure_feed(to, wire.data + at, n, reply, plain);
		at += n;
	}
	buf_free(&wire);
	return rv;
}

/* Runs the exchange until neither side has anything to send or one failed. */
static void pump(struct pair *p, enum split how)
{
	while ((p->c_out.len > 0 || p->s_out.len > 0) && p->c_err == 0 &&
	       p->s_err == 0) {
		if (p->c_out.len > 0)
			p->s_err = deliver(&p->s, &p->c_out, &p->s_out,
			                   &p->s_plain, how);
		if (p->s_out.len > 0 && p->s_err == 0)
			p->c_err = deliver(&p->c, &p->s_out, &p->c_out,
			                   &p->c_plain, how);
	}
}

/* Delivers what a failed side still produced (its FINISH or alert) to the
 * other side, as a caller does before closing. */
static void pump_last(struct pair *p)
{
	if (p->s_err != 0 && p->s_out.len > 0 && p->c_err == 0)
		p->c_err =
		    deliver(&p->c, &p->s_out, &p->c_out, &p->c_plain, WHOLE);
	if (p->c_err != 0 && p->c_out.len > 0 && p->s_err == 0)
		p->s_err =
		    deliver(&p->s, &p->c_out, &p->s_out, &p->s_plain, WHOLE);
}

static bool contains(const char *s, const char *part)
{
	if (strstr(s, part) != NULL)
		return true;
	printf("# '%s' lacks '%s'\n", s, part);
	return false;
}

static void fill(uint8_t *p, size_t n, unsigned salt)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 31 + salt + (i >> 8));
}

/* ---- the happy path ------------------------------------------------------ */

TEST(handshake_whole)
{
	struct pair p;

	pair_init(&p, key_a, key_a);
	CHECK_EQ_INT(p.c_out.len, SECURE_HELLO_BYTES);
	pump(&p, WHOLE);
	CHECK_EQ_INT(p.c_err, 0);
	CHECK_EQ_INT(p.s_err, 0);
	CHECK(secure_open(&p.c));
	CHECK(secure_open(&p.s));
	CHECK_EQ_INT(p.c_plain.len + p.s_plain.len, 0);
	pair_close(&p);
	return 0;
}

TEST(handshake_one_byte_at_a_time)
{
	struct pair p;

	pair_init(&p, key_a, key_a);
	pump(&p, BYTES);
	CHECK_EQ_INT(p.c_err, 0);
	CHECK_EQ_INT(p.s_err, 0);
	CHECK(secure_open(&p.c) && secure_open(&p.s));
	pair_close(&p);
	return 0;
}

/* Many messages of many sizes both ways, delivered in random splits; the
 * client's first message rides right behind its FINISH. */
TEST(round_trip_random_splits)
{
	static uint8_t msg[3 * SECURE_CHUNK + 7 + 256];
	struct buf want_s = BUF_INIT;
	struct buf want_c = BUF_INIT;
	struct pair p;
	size_t n;
	int round;

	rng_seed(42);
	fill(msg, sizeof msg, 3);
	pair_init(&p, key_a, key_a);
	pump(&p, RANDOM);
	CHECK(secure_open(&p.c) && secure_open(&p.s));
	for (round = 0; round < 200; round++) {
		n = round % 17 == 0 ? rng_below(sizeof msg - 256)
		                    : rng_below(600);
		CHECK_EQ_INT(secure_seal(&p.c, msg + round, n, &p.c_out), 0);
		CHECK_EQ_INT(buf_append(&want_s, msg + round, n), 0);
		n = rng_below(round % 5 == 0 ? 4000 : 50);
		CHECK_EQ_INT(secure_seal(&p.s, msg + 1, n, &p.s_out), 0);
		CHECK_EQ_INT(buf_append(&want_c, msg + 1, n), 0);
		pump(&p, round % 3 == 0 ? BYTES : RANDOM);
		CHECK_EQ_INT(p.c_err, 0);
		CHECK_EQ_INT(p.s_err, 0);
	}
	CHECK_MEM(p.s_plain.data, p.s_plain.len, want_s.data, want_s.len);
	CHECK_MEM(p.c_plain.data, p.c_plain.len, want_c.data, want_c.len);
	CHECK(secure_eof(&p.c) == NULL && secure_eof(&p.s) == NULL);
	buf_free(&want_s);
	buf_free(&want_c);
	pair_close(&p);
	return 0;
}

TEST(pipelined_after_finish)
{
	struct pair p;

	pair_init(&p, key_a, key_a);
	/* HELLO to the server, REPLY back, then FINISH and a frame at once. */
	p.s_err = deliver(&p.s, &p.c_out, &p.s_out, &p.s_plain, WHOLE);
	p.c_err = deliver(&p.c, &p.s_out, &p.c_out, &p.c_plain, WHOLE);
	CHECK(secure_open(&p.c));
	CHECK_EQ_INT(p.c_out.len, SECURE_FINISH_BYTES);
	CHECK_EQ_INT(secure_seal(&p.c, "hello", 5, &p.c_out), 0);
	CHECK_EQ_INT(deliver(&p.s, &p.c_out, &p.s_out, &p.s_plain, WHOLE), 0);
	CHECK(secure_open(&p.s));
	CHECK_MEM(p.s_plain.data, p.s_plain.len, "hello", 5);
	pair_close(&p);
	return 0;
}

TEST(large_writes_split_into_chunks)
{
	size_t n = 5 * SECURE_CHUNK + 1;
	uint8_t *msg = malloc(n);
	struct pair p;

	CHECK(msg != NULL);
	fill(msg, n, 9);
	pair_init(&p, key_a, key_a);
	pump(&p, WHOLE);
	CHECK_EQ_INT(secure_seal(&p.s, msg, n, &p.s_out), 0);
	CHECK_EQ_INT(p.s_out.len, secure_sealed_size(n));
	CHECK_EQ_INT(p.s_out.len, n + 6 * (4 + SECURE_ABYTES));
	CHECK_EQ_INT(p.s.tx_frames, 6);
	pump(&p, RANDOM);
	CHECK_MEM(p.c_plain.data, p.c_plain.len, msg, n);
	CHECK_EQ_INT(secure_seal(&p.s, msg, 0, &p.s_out), 0);
	CHECK_EQ_INT(p.s_out.len, 0);
	free(msg);
	pair_close(&p);
	return 0;
}

/* Reading through secure_space/secure_commit, as the libuv callers do. */
TEST(space_and_commit)
{
	struct pair p;
	uint8_t *room;
	size_t len;
	size_t at = 0;
	struct buf wire = BUF_INIT;

	pair_init(&p, key_a, key_a);
	pump(&p, WHOLE);
	CHECK_EQ_INT(secure_seal(&p.s, "abcdefgh", 8, &wire), 0);
	CHECK_EQ_INT(secure_seal(&p.s, "ij", 2, &wire), 0);
	while (at < wire.len) {
		size_t n;
		CHECK_EQ_INT(secure_space(&p.c, 3, &room, &len), 0);
		CHECK(len >= 3);
		n = wire.len - at < 3 ? wire.len - at : 3;
		memcpy(room, wire.data + at, n);
		at += n;
		CHECK_EQ_INT(secure_commit(&p.c, n, &p.c_out, &p.c_plain), 0);
	}
	CHECK_MEM(p.c_plain.data, p.c_plain.len, "abcdefghij", 10);
	buf_free(&wire);
	pair_close(&p);
	return 0;
}

TEST(clean_end)
{
	struct pair p;
	struct buf extra = BUF_INIT;

	pair_init(&p, key_a, key_a);
	pump(&p, WHOLE);
	CHECK_EQ_INT(secure_seal(&p.c, "bye", 3, &p.c_out), 0);
	CHECK_EQ_INT(secure_end(&p.c, NULL, &p.c_out), 0);
	CHECK(!secure_can_seal(&p.c));
	CHECK_EQ_INT(secure_seal(&p.c, "more", 4, &extra), CAIRN_EPROTO);
	pump(&p, RANDOM);
	CHECK_EQ_INT(p.s_err, 0);
	CHECK_EQ_INT(p.s.state, SECURE_ENDED);
	CHECK(secure_eof(&p.s) == NULL);
	CHECK_MEM(p.s_plain.data, p.s_plain.len, "bye", 3);
	buf_free(&extra);
	pair_close(&p);
	return 0;
}

/* ---- the wrong secret ---------------------------------------------------- */

TEST(wrong_key_fails_on_both_sides)
{
	struct pair p;

	pair_init(&p, key_a, key_b);
	pump(&p, RANDOM);
	/* The client sees the server's proof fail first... */
	CHECK_EQ_INT(p.c_err, CAIRN_EAUTH);
	CHECK(
	    contains(secure_errmsg(&p.c), "does not know the cluster secret"));
	CHECK(!secure_open(&p.c));
	CHECK(!secure_can_seal(&p.c));
	CHECK_EQ_INT(secure_seal(&p.c, "x", 1, &p.c_out), CAIRN_EPROTO);
	/* ...and still sends its FINISH, so the server sees it too. */
	CHECK_EQ_INT(p.c_out.len, SECURE_FINISH_BYTES);
	pump_last(&p);
	CHECK_EQ_INT(p.s_err, CAIRN_EAUTH);
	CHECK(
	    contains(secure_errmsg(&p.s), "does not know the cluster secret"));
	CHECK(!secure_open(&p.s));
	pair_close(&p);
	return 0;
}

/* A man in the middle without the secret: it answers the client with its own
 * server (another key) — or splices two sessions with the right key. */
TEST(spliced_sessions_fail)
{
	struct pair p1;
	struct pair p2;

	pair_init(&p1, key_a, key_a);
	pair_init(&p2, key_a, key_a);
	/* Server 2 answers client 1's HELLO; client 1 gets server 2's reply
	 * to client 2's HELLO instead. */
	p2.s_err = deliver(&p2.s, &p2.c_out, &p2.s_out, &p2.s_plain, WHOLE);
	CHECK_EQ_INT(p2.s_err, 0);
	p1.c_err = deliver(&p1.c, &p2.s_out, &p1.c_out, &p1.c_plain, WHOLE);
	CHECK_EQ_INT(p1.c_err, CAIRN_EAUTH);
	pair_close(&p1);
	pair_close(&p2);
	return 0;
}

/* Every byte of every handshake message, flipped in turn, breaks the
 * handshake on at least one side, never silently. */
TEST(tampered_handshake_bytes)
{
	size_t msg;
	size_t i;

	for (msg = 0; msg < 3; msg++) {
		size_t size = msg == 0   ? SECURE_HELLO_BYTES
		              : msg == 1 ? SECURE_REPLY_BYTES
		                         : SECURE_FINISH_BYTES;
		for (i = 0; i < size; i++) {
			struct pair p;
			pair_init(&p, key_a, key_a);
			if (msg >= 1)
				p.s_err = deliver(&p.s, &p.c_out, &p.s_out,
				                  &p.s_plain, WHOLE);
			if (msg == 2)
				p.c_err = deliver(&p.c, &p.s_out, &p.c_out,
				                  &p.c_plain, WHOLE);
			CHECK_EQ_INT(p.c_err + p.s_err, 0);
			if (msg == 1)
				p.s_out.data[i] ^= 0x01;
			else
				p.c_out.data[i] ^= 0x01;
			pump(&p, WHOLE);
			pump_last(&p);
			CHECK(p.c_err != 0 || p.s_err != 0);
			CHECK(!(secure_open(&p.c) && secure_open(&p.s)));
			CHECK(p.c_err == 0 || secure_errmsg(&p.c)[0] == 's');
			CHECK(p.s_err == 0 || secure_errmsg(&p.s)[0] == 's');
			pair_close(&p);
		}
	}
	return 0;
}

/* ---- forged frames ------------------------------------------------------- */

/* An open pair, and the server's next frames sealed in wire (not delivered). */
static void open_pair(struct pair *p)
{
	pair_init(p, key_a, key_a);
	pump(p, WHOLE);
}

TEST(tampered_frame_detected_and_reported)
{
	struct buf wire = BUF_INIT;
	struct pair p;
	size_t i;

	for (i = 0; i < 4 + 5 + SECURE_ABYTES; i++) {
		open_pair(&p);
		CHECK_EQ_INT(secure_seal(&p.c, "first", 5, &p.c_out), 0);
		CHECK_EQ_INT(secure_seal(&p.c, "hello", 5, &wire), 0);
		wire.data[i] ^= 0x80;
		CHECK_EQ_INT(buf_append(&p.c_out, wire.data, wire.len), 0);
		buf_reset(&wire);
		pump(&p, RANDOM);
		if (i < 4 && p.s_err == 0) {
			/* a longer length waits for bytes that never come */
			CHECK(secure_eof(&p.s) != NULL);
			CHECK(contains(secure_errmsg(&p.s), "truncated"));
			pair_close(&p);
			continue;
		}
		CHECK_EQ_INT(p.s_err, CAIRN_EPROTO);
		if (i >= 4) {
			CHECK(contains(secure_errmsg(&p.s),
			               "frame 2: authentication failed "
			               "(tampered, replayed or reordered)"));
			/* the client hears it through the alert */
			pump_last(&p);
			CHECK_EQ_INT(p.c_err, CAIRN_ECONN);
			CHECK(contains(secure_errmsg(&p.c),
			               "the peer ended the channel: frame 2: "
			               "authentication failed"));
		}
		CHECK_MEM(p.s_plain.data, p.s_plain.len, "first", 5);
		pair_close(&p);
	}
	buf_free(&wire);
	return 0;
}

TEST(replayed_frame_detected)
{
	struct buf frame = BUF_INIT;
	struct pair p;

	open_pair(&p);
	CHECK_EQ_INT(secure_seal(&p.c, "put x 1", 7, &frame), 0);
	CHECK_EQ_INT(buf_append(&p.c_out, frame.data, frame.len), 0);
	CHECK_EQ_INT(buf_append(&p.c_out, frame.data, frame.len), 0);
	pump(&p, RANDOM);
	CHECK_EQ_INT(p.s_err, CAIRN_EPROTO);
	CHECK(contains(secure_errmsg(&p.s), "frame 2: authentication failed"));
	CHECK_MEM(p.s_plain.data, p.s_plain.len, "put x 1", 7);
	buf_free(&frame);
	pair_close(&p);
	return 0;
}

TEST(reordered_frames_detected)
{
	struct buf one = BUF_INIT;
	struct buf two = BUF_INIT;
	struct pair p;

	open_pair(&p);
	CHECK_EQ_INT(secure_seal(&p.s, "one", 3, &one), 0);
	CHECK_EQ_INT(secure_seal(&p.s, "two", 3, &two), 0);
	CHECK_EQ_INT(buf_append(&p.s_out, two.data, two.len), 0);
	CHECK_EQ_INT(buf_append(&p.s_out, one.data, one.len), 0);
	pump(&p, WHOLE);
	CHECK_EQ_INT(p.c_err, CAIRN_EPROTO);
	CHECK(contains(secure_errmsg(&p.c), "frame 1: authentication failed"));
	CHECK_EQ_INT(p.c_plain.len, 0);
	buf_free(&one);
	buf_free(&two);
	pair_close(&p);
	return 0;
}

TEST(dropped_frame_detected)
{
	struct buf one = BUF_INIT;
	struct pair p;

	open_pair(&p);
	CHECK_EQ_INT(secure_seal(&p.s, "one", 3, &one), 0);
	CHECK_EQ_INT(secure_seal(&p.s, "two", 3, &p.s_out), 0);
	pump(&p, WHOLE);
	CHECK_EQ_INT(p.c_err, CAIRN_EPROTO);
	buf_free(&one);
	pair_close(&p);
	return 0;
}

/* A frame recorded on one connection means nothing on another. */
TEST(frame_from_another_session_refused)
{
	struct pair p1;
	struct pair p2;

	open_pair(&p1);
	open_pair(&p2);
	CHECK_EQ_INT(secure_seal(&p1.c, "put x 1", 7, &p2.c_out), 0);
	pump(&p2, WHOLE);
	CHECK_EQ_INT(p2.s_err, CAIRN_EPROTO);
	CHECK_EQ_INT(p2.s_plain.len, 0);
	pair_close(&p1);
	pair_close(&p2);
	return 0;
}

TEST(oversize_length_refused_before_allocating)
{
	static const uint8_t huge[4] = {0xff, 0xff, 0xff, 0xff};
	static const uint8_t small[4] = {0, 0, 0, 3};
	struct pair p;

	open_pair(&p);
	CHECK_EQ_INT(buf_append(&p.c_out, huge, 4), 0);
	pump(&p, BYTES);
	CHECK_EQ_INT(p.s_err, CAIRN_EPROTO);
	CHECK(contains(secure_errmsg(&p.s), "length 4294967295 outside"));
	CHECK(p.s.in.cap < 4096);
	pair_close(&p);

	open_pair(&p);
	CHECK_EQ_INT(buf_append(&p.c_out, small, 4),
	             0); /* shorter than a MAC */
	pump(&p, WHOLE);
	CHECK_EQ_INT(p.s_err, CAIRN_EPROTO);
	pair_close(&p);
	return 0;
}

TEST(truncation_reported_at_eof)
{
	struct buf frame = BUF_INIT;
	struct pair p;

	/* inside the handshake */
	pair_init(&p, key_a, key_a);
	p.c_out.len = 20;
	pump(&p, WHOLE);
	CHECK_EQ_INT(p.s_err, 0);
	CHECK(secure_eof(&p.s) != NULL);
	CHECK(contains(secure_errmsg(&p.s), "during the handshake (20 bytes"));
	pair_close(&p);

	/* inside a frame */
	open_pair(&p);
	CHECK_EQ_INT(secure_seal(&p.c, "0123456789", 10, &frame), 0);
	CHECK_EQ_INT(buf_append(&p.c_out, frame.data, frame.len - 1), 0);
	pump(&p, WHOLE);
	CHECK_EQ_INT(p.s_err, 0);
	CHECK_EQ_INT(p.s_plain.len, 0);
	CHECK(secure_eof(&p.s) != NULL);
	CHECK(contains(secure_errmsg(&p.s),
	               "frame 1: the connection closed inside it"));
	buf_free(&frame);
	pair_close(&p);

	/* between frames: a clean place to stop */
	open_pair(&p);
	CHECK(secure_eof(&p.s) == NULL);
	pair_close(&p);
	return 0;
}

TEST(data_after_end_refused)
{
	struct buf more = BUF_INIT;
	struct pair p;

	open_pair(&p);
	CHECK_EQ_INT(secure_end(&p.s, "", &p.s_out), 0);
	pump(&p, WHOLE);
	CHECK_EQ_INT(p.c.state, SECURE_ENDED);
	CHECK_EQ_INT(buf_append(&p.s_out, "\0\0\0\x20", 4), 0);
	pump(&p, WHOLE);
	CHECK_EQ_INT(p.c_err, CAIRN_EPROTO);
	CHECK(contains(secure_errmsg(&p.c), "after the peer ended"));
	buf_free(&more);
	pair_close(&p);
	return 0;
}

/* ---- speaking to something else ------------------------------------------ */

TEST(plaintext_client_recognized)
{
	/* a cairn plaintext HELLO: length, then a msgpack map */
	static const uint8_t hello[] = {0, 0, 0, 12, 0x83, 0xa2, 'i', 'd', 1};
	struct pair p;

	pair_init(&p, key_a, key_a);
	buf_reset(&p.c_out);
	CHECK_EQ_INT(buf_append(&p.c_out, hello, sizeof hello), 0);
	pump(&p, BYTES);
	CHECK_EQ_INT(p.s_err, CAIRN_EAUTH);
	CHECK(secure_plaintext_peer(&p.s));
	CHECK(contains(secure_errmsg(&p.s), "the client speaks plaintext"));
	pair_close(&p);
	return 0;
}

TEST(plaintext_server_recognized)
{
	static const uint8_t answer[] = {0, 0, 0, 30, 0x85};
	struct pair p;

	pair_init(&p, key_a, key_a);
	CHECK_EQ_INT(buf_append(&p.s_out, answer, sizeof answer), 0);
	p.c_err = deliver(&p.c, &p.s_out, &p.c_out, &p.c_plain, WHOLE);
	CHECK_EQ_INT(p.c_err, CAIRN_EAUTH);
	CHECK(secure_plaintext_peer(&p.c));
	CHECK(contains(secure_errmsg(&p.c),
	               "answered in plaintext: it runs with --insecure"));
	pair_close(&p);
	return 0;
}

TEST(foreign_protocol_and_version)
{
	struct pair p;

	pair_init(&p, key_a, key_a);
	buf_reset(&p.c_out);
	CHECK_EQ_INT(buf_append(&p.c_out, "GET / HTTP/1.1\r\n", 16), 0);
	pump(&p, WHOLE);
	CHECK_EQ_INT(p.s_err, CAIRN_EPROTO);
	CHECK(!secure_plaintext_peer(&p.s));
	CHECK(contains(secure_errmsg(&p.s),
	               "does not speak cairn's secure channel"));
	pair_close(&p);

	pair_init(&p, key_a, key_a);
	p.c_out.data[4] = 2;
	pump(&p, BYTES);
	CHECK_EQ_INT(p.s_err, CAIRN_EPROTO);
	CHECK(contains(secure_errmsg(&p.s),
	               "secure channel version 2, this side 1"));
	pair_close(&p);
	return 0;
}

TEST(server_speaks_only_after_hello)
{
	struct secure s;
	struct buf out = BUF_INIT;

	CHECK_EQ_INT(secure_init(&s, SECURE_SERVER, key_a), 0);
	CHECK_EQ_INT(secure_start(&s, &out), 0);
	CHECK_EQ_INT(out.len, 0);
	CHECK(!secure_can_seal(&s));
	CHECK_EQ_INT(secure_seal(&s, "x", 1, &out), CAIRN_EPROTO);
	CHECK(secure_eof(&s) != NULL);
	secure_close(&s);
	buf_free(&out);
	return 0;
}

/* Random bytes and randomly mutated sessions, fed in random splits from heap
 * copies of exactly their size: never a crash, never a read past the end
 * (ASan), never plaintext from a forged frame. */
TEST(random_mutations)
{
	int round;

	rng_seed(7);
	for (round = 0; round < 3000; round++) {
		struct pair p;
		struct buf wire = BUF_INIT;
		uint8_t *copy;
		size_t n;
		size_t k;
		size_t at = 0;
		int rv = 0;

		open_pair(&p);
		CHECK_EQ_INT(secure_seal(&p.c, "abcdefghijklmnop", 16, &wire),
		             0);
		CHECK_EQ_INT(secure_seal(&p.c, "qrstuvwxyz", 10, &wire), 0);
		if (round % 3 == 0) {
			buf_reset(&wire);
			n = rng_below(200);
			for (k = 0; k < n; k++)
				CHECK_EQ_INT(
				    buf_append(&wire,
				               &(uint8_t){(uint8_t)rng()}, 1),
				    0);
		} else {
			for (k = 1 + rng_below(3); k > 0; k--)
				wire.data[rng_below(wire.len)] ^=
				    (uint8_t)(1 + rng_below(255));
		}
		n = wire.len;
		copy = malloc(n ? n : 1);
		CHECK(copy != NULL);
		if (n)
			memcpy(copy, wire.data, n);
		while (at < n && rv == 0) {
			size_t piece = 1 + rng_below(n - at);
			rv = secure_feed(&p.s, copy + at, piece, &p.s_out,
			                 &p.s_plain);
			at += piece;
		}
		/* a forged frame yields nothing; frames before it are intact */
		CHECK(p.s_plain.len == 0 || p.s_plain.len == 16 ||
		      p.s_plain.len == 26);
		CHECK(p.s_plain.len == 0 ||
		      memcmp(p.s_plain.data, "abcdefghijklmnop", 16) == 0);
		CHECK(rv == 0 || secure_errmsg(&p.s)[0] == 's');
		free(copy);
		buf_free(&wire);
		pair_close(&p);
	}
	return 0;
}

/* ---- allocation failures ------------------------------------------------- */

/* Every allocation of a whole exchange fails in turn: the failing side says
 * "out of memory", nothing leaks. */
TEST(allocation_failures)
{
#ifdef NO_FAULTS
	printf("# skipped: allocation failures are not injected under ASan\n");
	return 0;
#else
	long k;
	bool done = false;

	for (k = 0; !done; k++) {
		long live = live_blocks();
		struct pair p;
		pair_init(&p, key_a, key_a);
		fault_countdown = k;
		pump(&p, RANDOM);
		if (p.c_err == 0 && p.s_err == 0 &&
		    secure_seal(&p.c, "data", 4, &p.c_out) == 0)
			pump(&p, RANDOM);
		fault_countdown = -1;
		if (p.c_err != 0 || p.s_err != 0) {
			CHECK_EQ_INT(p.c_err + p.s_err, CAIRN_ENOMEM);
			CHECK(contains(p.c_err ? secure_errmsg(&p.c)
			                       : secure_errmsg(&p.s),
			               "out of memory"));
		} else if (p.s_plain.len == 4) {
			done = true;
		}
		pair_close(&p);
		CHECK_EQ_INT(live_blocks(), live);
	}
	printf("# %ld allocations failed in turn\n", k - 1);
	CHECK(k > 3);
	return 0;
#endif
}

/* ---- the secret file ----------------------------------------------------- */

static char tmpdir[] = "/tmp/cairn-test-secret.XXXXXX";

static void path_in(char *out, size_t cap, const char *name)
{
	snprintf(out, cap, "%s/%s", tmpdir, name);
}

TEST(secret_generate_mode_0600)
{
	uint8_t key[SECURE_KEY_BYTES];
	uint8_t again[SECURE_KEY_BYTES];
	char path[256];
	char err[512];
	struct stat st;
	mode_t old = umask(0); /* the file must be 0600 whatever the umask */

	path_in(path, sizeof path, "gen.secret");
	CHECK_EQ_INT(secret_generate(path, key, err, sizeof err), 0);
	umask(old);
	CHECK_EQ_INT(stat(path, &st), 0);
	CHECK_EQ_INT(st.st_mode & 07777, 0600);
	CHECK_EQ_INT(secret_load_file(path, again, err, sizeof err), 0);
	CHECK_MEM(key, sizeof key, again, sizeof again);
	/* never overwrites */
	CHECK_EQ_INT(secret_generate(path, again, err, sizeof err), CAIRN_EIO);
	CHECK(contains(err, "File exists"));
	CHECK_EQ_INT(secret_load_file(path, again, err, sizeof err), 0);
	CHECK_MEM(key, sizeof key, again, sizeof again);
	unlink(path);
	return 0;
}

TEST(secret_file_readable_by_others_refused)
{
	uint8_t key[SECURE_KEY_BYTES];
	char path[256];
	char err[512];

	path_in(path, sizeof path, "wide.secret");
	CHECK_EQ_INT(secret_generate(path, key, err, sizeof err), 0);
	CHECK_EQ_INT(chmod(path, 0644), 0);
	CHECK_EQ_INT(secret_load_file(path, key, err, sizeof err), CAIRN_EAUTH);
	CHECK(contains(err, "has mode 0644"));
	CHECK(contains(err, "chmod 600"));
	CHECK_EQ_INT(chmod(path, 0640), 0);
	CHECK_EQ_INT(secret_load_file(path, key, err, sizeof err), CAIRN_EAUTH);
	CHECK_EQ_INT(chmod(path, 0400), 0);
	CHECK_EQ_INT(secret_load_file(path, key, err, sizeof err), 0);
	unlink(path);
	/* missing, and not a regular file */
	CHECK_EQ_INT(secret_load_file(path, key, err, sizeof err), CAIRN_EAUTH);
	CHECK(contains(err, "No such file"));
	CHECK_EQ_INT(secret_load_file(tmpdir, key, err, sizeof err),
	             CAIRN_EAUTH);
	CHECK(contains(err, "not a regular file"));
	return 0;
}

TEST(secret_text_form)
{
	uint8_t key[SECURE_KEY_BYTES];
	uint8_t back[SECURE_KEY_BYTES];
	char text[SECRET_TEXT_MAX];
	char padded[SECRET_TEXT_MAX + 8];
	char fp1[SECRET_FINGERPRINT_LEN];
	char fp2[SECRET_FINGERPRINT_LEN];
	char err[512];

	fill(key, sizeof key, 77);
	secret_format(key, text);
	CHECK(strncmp(text, SECRET_PREFIX, strlen(SECRET_PREFIX)) == 0);
	CHECK(text[strlen(text) - 1] == '\n');
	snprintf(padded, sizeof padded, "  %s \r\n", text);
	CHECK_EQ_INT(secret_parse(padded, back, err, sizeof err), 0);
	CHECK_MEM(key, sizeof key, back, sizeof back);
	CHECK_EQ_INT(secret_parse("hunter2", back, err, sizeof err),
	             CAIRN_EAUTH);
	CHECK(contains(err, "not a cairn cluster secret"));
	CHECK_EQ_INT(
	    secret_parse(SECRET_PREFIX "c2hvcnQ=", back, err, sizeof err),
	    CAIRN_EAUTH);
	CHECK(contains(err, "damaged"));
	text[20] = '!';
	CHECK_EQ_INT(secret_parse(text, back, err, sizeof err), CAIRN_EAUTH);
	secret_fingerprint(key, fp1);
	secret_fingerprint(key, fp2);
	CHECK_EQ_INT(strlen(fp1), 16);
	CHECK(strcmp(fp1, fp2) == 0);
	key[0] ^= 1;
	secret_fingerprint(key, fp2);
	CHECK(strcmp(fp1, fp2) != 0);
	return 0;
}

int main(void)
{
	static const struct test_case tests[] = {
	    T(handshake_whole),
	    T(handshake_one_byte_at_a_time),
	    T(round_trip_random_splits),
	    T(pipelined_after_finish),
	    T(large_writes_split_into_chunks),
	    T(space_and_commit),
	    T(clean_end),
	    T(wrong_key_fails_on_both_sides),
	    T(spliced_sessions_fail),
	    T(tampered_handshake_bytes),
	    T(tampered_frame_detected_and_reported),
	    T(replayed_frame_detected),
	    T(reordered_frames_detected),
	    T(dropped_frame_detected),
	    T(frame_from_another_session_refused),
	    T(oversize_length_refused_before_allocating),
	    T(truncation_reported_at_eof),
	    T(data_after_end_refused),
	    T(plaintext_client_recognized),
	    T(plaintext_server_recognized),
	    T(foreign_protocol_and_version),
	    T(server_speaks_only_after_hello),
	    T(random_mutations),
	    T(allocation_failures),
	    T(secret_generate_mode_0600),
	    T(secret_file_readable_by_others_refused),
	    T(secret_text_form),
	};
	int rv;

	if (sodium_init() < 0 || mkdtemp(tmpdir) == NULL)
		return 1;
	randombytes_buf(key_a, sizeof key_a);
	randombytes_buf(key_b, sizeof key_b);
	rv = test_run(tests, sizeof tests / sizeof tests[0]);
	rmdir(tmpdir);
	return rv;
}
