/*
 * test_frame: unit tests of lib/frame.c, the splitting of a byte stream into
 * length-prefixed frames.
 *
 * A stream of frames is fed the way a libuv read loop feeds it (frame_space,
 * then a read of some size, frame_commit, then frame_next until it returns 0),
 * with reads of one byte, of random sizes (fixed seed) and of everything at
 * once; the frames that come out must be the frames that went in. Hostile
 * lengths must be refused before any memory is reserved for them, and the
 * buffer must not grow with the number of frames that went through it.
 */
#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "cairn.h"
#include "frame.h"
#include "proto.h"
#include "test.h"


/* Appends one frame of len bytes (a pattern salted by its number) to s. */
static void add_frame(struct buf *s, uint32_t len, unsigned salt)
{
	uint8_t hdr[4];
	uint32_t i;

	proto_put_len(hdr, len);
	buf_append(s, hdr, 4);
	buf_reserve(s, len);
	for (i = 0; i < len; i++)
		s->data[s->len + i] = (uint8_t)(i * 31 + salt);
	s->len += len;
}

/* What came out: the frames re-encoded, so it can be compared with the
 * stream that went in; and the largest buffer seen. */
struct sink {
	struct buf out;
	size_t frames;
	size_t max_cap;
};

/* Chooses the size of the next read. */
typedef size_t (*chunk_fn)(void);

/*
 * Feeds stream through fr in reads of chunk() bytes (as libuv would: it asks
 * for space, then reads at most the space it got). Returns 0 when all of it
 * went through, or the first error of frame_space/frame_next.
 */
static int pump(struct frame_reader *fr, const uint8_t *stream, size_t len,
                chunk_fn chunk, struct sink *s)
{
	size_t pos = 0;

	while (pos < len) {
		size_t want = chunk();
		size_t n;
		size_t room;
		uint8_t *p;
		const uint8_t *payload;
		uint32_t flen;
		int rv;

		rv = frame_space(fr, want, &p, &room);
		if (rv != 0)
			return rv;
		if (room < want)
			return -1; /* frame_space gave less than asked */
		n = want < len - pos ? want : len - pos;
		memcpy(p, stream + pos, n);
		frame_commit(fr, n);
		pos += n;
		if (fr->in.cap > s->max_cap)
			s->max_cap = fr->in.cap;
		while ((rv = frame_next(fr, &payload, &flen)) == 1) {
			uint8_t hdr[4];
			proto_put_len(hdr, flen);
			buf_append(&s->out, hdr, 4);
			buf_append(&s->out, payload, flen);
			s->frames++;
		}
		if (rv != 0)
			return rv;
	}
	return 0;
}

static size_t chunk_one(void)
{
	return 1;
}

static size_t chunk_random(void)
{
	switch (rng_below(4)) {
	case 0:
		return 1 + rng_below(8);
	case 1:
		return 1 + rng_below(300);
	default:
		return 1 + rng_below(9000);
	}
}

static size_t chunk_4k(void)
{
	return 4096;
}

static const uint32_t sizes[] = {0,   1,    3,    4,     5,    255, 256,
                                 257, 1000, 4096, 10000, 0,    7,   65536,
                                 0,   0,    2,    65535, 1024, 1};

TEST(one_byte_at_a_time)
{
	struct frame_reader fr;
	struct buf stream = BUF_INIT;
	struct sink s = {BUF_INIT, 0, 0};
	size_t i;

	for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
		add_frame(&stream, sizes[i], (unsigned)i);
	frame_reader_init(&fr, 65536);
	CHECK_EQ_INT(pump(&fr, stream.data, stream.len, chunk_one, &s), 0);
	CHECK_EQ_INT(s.frames, sizeof sizes / sizeof sizes[0]);
	CHECK_MEM(s.out.data, s.out.len, stream.data, stream.len);
	CHECK_EQ_INT(frame_pending(&fr), 0);
	frame_reader_close(&fr);
	buf_free(&stream);
	buf_free(&s.out);
	return 0;
}

TEST(random_chunks)
{
	unsigned round;

	rng_seed(4242);
	for (round = 0; round < 20; round++) {
		struct frame_reader fr;
		struct buf stream = BUF_INIT;
		struct sink s = {BUF_INIT, 0, 0};
		size_t n = 50 + rng_below(300);
		size_t i;

		for (i = 0; i < n; i++) {
			uint32_t len;
			switch (rng_below(4)) {
			case 0:
				len = (uint32_t)rng_below(5);
				break;
			case 1:
				len = (uint32_t)rng_below(300);
				break;
			case 2:
				len = (uint32_t)rng_below(5000);
				break;
			default:
				len = (uint32_t)rng_below(30001);
				break;
			}
			add_frame(&stream, len, (unsigned)i);
		}
		frame_reader_init(&fr, 30000);
		CHECK_EQ_INT(
		    pump(&fr, stream.data, stream.len, chunk_random, &s), 0);
		CHECK_EQ_INT(s.frames, n);
		CHECK_MEM(s.out.data, s.out.len, stream.data, stream.len);
		CHECK_EQ_INT(frame_pending(&fr), 0);
		frame_reader_close(&fr);
		buf_free(&stream);
		buf_free(&s.out);
	}
	return 0;
}

TEST(many_frames_in_one_read)
{
	struct frame_reader fr;
	struct buf stream = BUF_INIT;
	const uint8_t *payload;
	uint32_t len;
	uint8_t *p;
	size_t room;
	unsigned i;

	for (i = 0; i < 1000; i++)
		add_frame(&stream, i % 17, i);
	frame_reader_init(&fr, 100);
	CHECK_EQ_INT(frame_space(&fr, stream.len, &p, &room), 0);
	CHECK(room >= stream.len);
	memcpy(p, stream.data, stream.len);
	frame_commit(&fr, stream.len);
	CHECK_EQ_INT(frame_pending(&fr), stream.len);
	for (i = 0; i < 1000; i++) {
		uint32_t k;
		CHECK_EQ_INT(frame_next(&fr, &payload, &len), 1);
		CHECK_EQ_INT(len, i % 17);
		for (k = 0; k < len; k++)
			CHECK_EQ_INT(payload[k], (uint8_t)(k * 31 + i));
	}
	CHECK_EQ_INT(frame_next(&fr, &payload, &len), 0);
	CHECK_EQ_INT(frame_pending(&fr), 0);
	frame_reader_close(&fr);
	buf_free(&stream);
	return 0;
}

/* Feeds bytes in one read; returns frame_next's answer. */
static int feed(struct frame_reader *fr, const void *bytes, size_t n,
                const uint8_t **payload, uint32_t *len)
{
	uint8_t *p;
	size_t room;

	if (frame_space(fr, n, &p, &room) != 0 || room < n)
		return -1;
	memcpy(p, bytes, n);
	frame_commit(fr, n);
	return frame_next(fr, payload, len);
}

TEST(exact_max_accepted)
{
	struct frame_reader fr;
	struct buf stream = BUF_INIT;
	const uint8_t *payload;
	uint32_t len;

	add_frame(&stream, 1000, 1);
	frame_reader_init(&fr, 1000);
	CHECK_EQ_INT(feed(&fr, stream.data, stream.len, &payload, &len), 1);
	CHECK_EQ_INT(len, 1000);
	CHECK_MEM(payload, len, stream.data + 4, 1000);
	frame_reader_close(&fr);

	/* The protocol's own maximum, in one frame. */
	buf_reset(&stream);
	add_frame(&stream, PROTO_REQ_FRAME_MAX, 2);
	frame_reader_init(&fr, PROTO_REQ_FRAME_MAX);
	CHECK_EQ_INT(feed(&fr, stream.data, stream.len, &payload, &len), 1);
	CHECK_EQ_INT(len, PROTO_REQ_FRAME_MAX);
	CHECK_MEM(payload, len, stream.data + 4, PROTO_REQ_FRAME_MAX);
	CHECK_EQ_INT(frame_next(&fr, &payload, &len), 0);
	frame_reader_close(&fr);
	buf_free(&stream);
	return 0;
}

TEST(max_plus_one_refused_before_allocating)
{
	static const uint32_t lens[] = {PROTO_REQ_FRAME_MAX + 1,
	                                PROTO_REQ_FRAME_MAX * 2, UINT32_MAX};
	const uint8_t *payload;
	uint32_t len;
	size_t i;

	for (i = 0; i < sizeof lens / sizeof lens[0]; i++) {
		struct frame_reader fr;
		uint8_t hdr[8] = {0};
		uint8_t *p;
		size_t room;

		proto_put_len(hdr, lens[i]);
		frame_reader_init(&fr, PROTO_REQ_FRAME_MAX);
		/* The header in two pieces: nothing to say after the first. */
		CHECK_EQ_INT(feed(&fr, hdr, 2, &payload, &len), 0);
		CHECK_EQ_INT(feed(&fr, hdr + 2, 2, &payload, &len),
		             CAIRN_ETOOBIG);
		CHECK(fr.in.cap <= 4096);
		/* Asking for more room does not reserve the declared size. */
		CHECK_EQ_INT(frame_space(&fr, 64, &p, &room), 0);
		CHECK(fr.in.cap <= 4096);
		CHECK(room >= 64);
		/* Some payload bytes arriving changes nothing. */
		memset(p, 0, 64);
		frame_commit(&fr, 64);
		CHECK_EQ_INT(frame_next(&fr, &payload, &len), CAIRN_ETOOBIG);
		CHECK_EQ_INT(frame_next(&fr, &payload, &len), CAIRN_ETOOBIG);
		CHECK(fr.in.cap <= 4096);
		frame_reader_close(&fr);
	}

	/* Just above a small maximum, with the whole payload there. */
	{
		struct frame_reader fr;
		struct buf stream = BUF_INIT;

		add_frame(&stream, 101, 3);
		frame_reader_init(&fr, 100);
		CHECK_EQ_INT(feed(&fr, stream.data, stream.len, &payload, &len),
		             CAIRN_ETOOBIG);
		frame_reader_close(&fr);
		buf_free(&stream);
	}
	return 0;
}

TEST(zero_length_frames)
{
	static const uint8_t zeros[12] = {0};
	struct frame_reader fr;
	const uint8_t *payload = NULL;
	uint32_t len = 99;

	frame_reader_init(&fr, 0); /* only empty frames are legal */
	CHECK_EQ_INT(feed(&fr, zeros, 3, &payload, &len), 0);
	CHECK_EQ_INT(feed(&fr, zeros, 9, &payload, &len), 1);
	CHECK_EQ_INT(len, 0);
	CHECK_EQ_INT(frame_next(&fr, &payload, &len), 1);
	CHECK_EQ_INT(len, 0);
	CHECK_EQ_INT(frame_next(&fr, &payload, &len), 1);
	CHECK_EQ_INT(frame_next(&fr, &payload, &len), 0);
	CHECK_EQ_INT(frame_pending(&fr), 0);
	/* A one-byte frame is over a maximum of zero. */
	{
		static const uint8_t one[5] = {0, 0, 0, 1, 42};
		CHECK_EQ_INT(feed(&fr, one, 5, &payload, &len), CAIRN_ETOOBIG);
	}
	frame_reader_close(&fr);
	return 0;
}

TEST(space_for_a_declared_large_frame)
{
	const uint32_t big = 3u << 20;
	struct frame_reader fr;
	struct buf stream = BUF_INIT;
	const uint8_t *payload;
	uint32_t len;
	uint8_t *p;
	size_t room;
	size_t pos;

	add_frame(&stream, big, 4);
	frame_reader_init(&fr, PROTO_REQ_FRAME_MAX);
	/* Header and 10 payload bytes arrive first. */
	CHECK_EQ_INT(feed(&fr, stream.data, 14, &payload, &len), 0);
	/* A small request for room gets room for the whole rest. */
	CHECK_EQ_INT(frame_space(&fr, 16, &p, &room), 0);
	CHECK(room >= (size_t)big - 10);
	/* And the rest fits in one read. */
	memcpy(p, stream.data + 14, stream.len - 14);
	frame_commit(&fr, stream.len - 14);
	CHECK_EQ_INT(frame_next(&fr, &payload, &len), 1);
	CHECK_EQ_INT(len, big);
	CHECK_MEM(payload, len, stream.data + 4, big);
	frame_reader_close(&fr);

	/* The same with the header split: room for the rest as soon as the
	 * header is complete. */
	frame_reader_init(&fr, PROTO_REQ_FRAME_MAX);
	CHECK_EQ_INT(feed(&fr, stream.data, 3, &payload, &len), 0);
	CHECK_EQ_INT(frame_space(&fr, 1, &p, &room), 0);
	CHECK(fr.in.cap < 4096); /* three bytes say nothing yet */
	memcpy(p, stream.data + 3, 1);
	frame_commit(&fr, 1);
	CHECK_EQ_INT(frame_next(&fr, &payload, &len), 0);
	/* Then reads of 100000 bytes, each finding room for all the rest. */
	pos = 4;
	while (pos < stream.len) {
		size_t n =
		    stream.len - pos < 100000 ? stream.len - pos : 100000;
		CHECK_EQ_INT(frame_space(&fr, 1, &p, &room), 0);
		CHECK(room >= stream.len - pos);
		memcpy(p, stream.data + pos, n);
		frame_commit(&fr, n);
		pos += n;
		if (pos < stream.len)
			CHECK_EQ_INT(frame_next(&fr, &payload, &len), 0);
	}
	CHECK_EQ_INT(frame_next(&fr, &payload, &len), 1);
	CHECK_EQ_INT(len, big);
	CHECK_MEM(payload, len, stream.data + 4, big);
	CHECK(fr.in.cap <= 2 * ((size_t)big + 4));
	frame_reader_close(&fr);
	buf_free(&stream);
	return 0;
}

TEST(memory_does_not_grow_with_frames)
{
	struct frame_reader fr;
	struct buf stream = BUF_INIT;
	struct sink s = {BUF_INIT, 0, 0};
	size_t cap_early;
	unsigned i;

	rng_seed(99);
	for (i = 0; i < 1000; i++)
		add_frame(&stream, 100 + (uint32_t)rng_below(200), i);
	frame_reader_init(&fr, 65536);
	CHECK_EQ_INT(pump(&fr, stream.data, stream.len, chunk_4k, &s), 0);
	cap_early = s.max_cap;
	CHECK(cap_early <= 8192);
	/* A hundred times more frames through the same reader. */
	for (i = 0; i < 100; i++) {
		buf_reset(&s.out);
		CHECK_EQ_INT(pump(&fr, stream.data, stream.len, chunk_4k, &s),
		             0);
		CHECK_MEM(s.out.data, s.out.len, stream.data, stream.len);
	}
	CHECK_EQ_INT(s.frames, 101 * 1000);
	CHECK_EQ_INT(s.max_cap, cap_early);
	CHECK_EQ_INT(fr.in.cap, cap_early);
	frame_reader_close(&fr);
	buf_free(&stream);
	buf_free(&s.out);
	return 0;
}

TEST(pending_and_partial_headers)
{
	static const uint8_t bytes[] = {0, 0, 0, 2, 'h', 'i', 0, 0};
	struct frame_reader fr;
	const uint8_t *payload;
	uint32_t len;
	size_t i;

	frame_reader_init(&fr, 10);
	CHECK_EQ_INT(frame_pending(&fr), 0);
	CHECK_EQ_INT(frame_next(&fr, &payload, &len), 0);
	for (i = 0; i < 5; i++) {
		CHECK_EQ_INT(feed(&fr, bytes + i, 1, &payload, &len), 0);
		CHECK_EQ_INT(frame_pending(&fr), i + 1);
	}
	CHECK_EQ_INT(feed(&fr, bytes + 5, 3, &payload, &len), 1);
	CHECK_MEM(payload, len, "hi", 2);
	CHECK_EQ_INT(frame_pending(&fr), 2); /* half of the next header */
	CHECK_EQ_INT(frame_next(&fr, &payload, &len), 0);
	frame_reader_close(&fr);
	CHECK(fr.in.data == NULL);
	CHECK_EQ_INT(frame_pending(&fr), 0);

	/* A closed reader can be used again after init. */
	frame_reader_init(&fr, 10);
	CHECK_EQ_INT(feed(&fr, bytes, 6, &payload, &len), 1);
	CHECK_MEM(payload, len, "hi", 2);
	frame_reader_close(&fr);
	return 0;
}

int main(void)
{
	static const struct test_case tests[] = {
	    T(one_byte_at_a_time),
	    T(random_chunks),
	    T(many_frames_in_one_read),
	    T(exact_max_accepted),
	    T(max_plus_one_refused_before_allocating),
	    T(zero_length_frames),
	    T(space_for_a_declared_large_frame),
	    T(memory_does_not_grow_with_frames),
	    T(pending_and_partial_headers),
	};

	/* Not RUN_TESTS(): -Wpedantic refuses its ({ }). */
	return test_run(tests, sizeof tests / sizeof tests[0]);
}
