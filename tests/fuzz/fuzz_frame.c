/*
 * fuzz_frame: frame splitting (frame.h) over a byte stream that arrives in
 * chunks, as reads deliver it to the store and the client.
 *
 * Input: a byte choosing the frame limit (255: the request limit, else
 * 0..254 times 3), then chunks: a length byte (how much room to ask
 * frame_space() for, and how much of it to fill), and that many bytes. Every
 * frame frame_next() hands out is checked against a plain reference split of
 * everything fed so far; so are "need more" and CAIRN_ETOOBIG, and the
 * pending count.
 */
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "frame.h"
#include "fuzz.h"

struct ref {
	struct buf fed; /* every byte committed so far */
	size_t pos;     /* where the next frame starts in fed */
};

/* Takes every complete frame, each checked against the reference. Returns
 * false once the reader refused a frame. */
static bool drain(struct frame_reader *fr, struct ref *ref)
{
	const uint8_t *payload;
	uint32_t len;
	uint32_t want;
	size_t left;
	int rv;

	for (;;) {
		left = ref->fed.len - ref->pos;
		FUZZ_CHECK(frame_pending(fr) == left);
		rv = frame_next(fr, &payload, &len);
		if (left < 4) {
			FUZZ_CHECK(rv == 0);
			return true;
		}
		want = proto_get_len(ref->fed.data + ref->pos);
		if (want > fr->max) {
			FUZZ_CHECK(rv == CAIRN_ETOOBIG);
			return false;
		}
		if (left - 4 < want) {
			FUZZ_CHECK(rv == 0);
			return true;
		}
		FUZZ_CHECK(rv == 1);
		FUZZ_CHECK(len == want);
		FUZZ_CHECK(len == 0 ||
		           memcmp(payload, ref->fed.data + ref->pos + 4, len) ==
		               0);
		ref->pos += 4 + (size_t)len;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	struct frame_reader fr;
	struct ref ref = {BUF_INIT, 0};
	uint8_t sel = fuzz_u8(&in);
	const uint8_t *chunk;
	uint8_t *room;
	size_t n;
	size_t len;

	frame_reader_init(&fr, sel == 255 ? PROTO_REQ_FRAME_MAX : sel * 3u);
	while (in.n > 0) {
		n = fuzz_u8(&in);
		FUZZ_CHECK(frame_space(&fr, n > 0 ? n : 1, &room, &len) == 0);
		FUZZ_CHECK(len >= (n > 0 ? n : 1));
		chunk = fuzz_bytes(&in, n, &n);
		if (n > 0)
			memcpy(room, chunk, n);
		frame_commit(&fr, n);
		FUZZ_CHECK(buf_append(&ref.fed, chunk, n) == 0);
		if (!drain(&fr, &ref))
			break;
	}
	frame_reader_close(&fr);
	buf_free(&ref.fed);
	return 0;
}

/* A stream of frames of these payload sizes, cut into reads of chunk bytes. */
static void emit_stream(uint8_t sel, const uint32_t *sizes, size_t n,
                        uint8_t chunk)
{
	struct buf frames = BUF_INIT;
	struct buf s = BUF_INIT;
	uint8_t hdr[4];
	size_t i;
	size_t at;
	uint32_t k;

	for (i = 0; i < n; i++) {
		proto_put_len(hdr, sizes[i]);
		if (buf_append(&frames, hdr, 4) != 0)
			abort();
		for (k = 0; k < sizes[i]; k++)
			if (buf_append(&frames, "\x80", 1) != 0)
				abort();
	}
	if (buf_append(&s, &sel, 1) != 0)
		abort();
	for (at = 0; at < frames.len; at += chunk) {
		uint8_t c = frames.len - at < chunk ? (uint8_t)(frames.len - at)
		                                    : chunk;
		if (buf_append(&s, &c, 1) != 0 ||
		    buf_append(&s, frames.data + at, c) != 0)
			abort();
	}
	fuzz_emit(s.data, s.len);
	buf_free(&frames);
	buf_free(&s);
}

void fuzz_seeds(void)
{
	static const uint32_t small[] = {1, 0, 5, 2};
	static const uint32_t big[] = {300, 40};
	static const uint32_t over[] = {3, 200};

	emit_stream(255, small, 4, 3);
	emit_stream(255, big, 2, 200);
	emit_stream(255, small, 4, 1);
	emit_stream(20, over, 2, 64); /* the second is over 60 bytes */
}
