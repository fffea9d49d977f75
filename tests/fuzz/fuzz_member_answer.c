/*
 * fuzz_member_answer: how a member that may have been removed reads the
 * answers of the members it asks (member_read_answer, store/member.c): a
 * HELLO answer's leader, a MEMBERS answer's list. A "not listed" there
 * makes the member stop itself, so it must come from a list that was read
 * whole, never from one cut short by malformed bytes.
 *
 * Input: a byte choosing the member's own id (1..4), then one answer
 * payload. Checks: *listed ends -1 (no list), 0 or 1, and 0 only if the
 * payload holds a well-formed "ms" list (an array of maps with string keys
 * and unsigned "id"s, by an independent reading here) without that id;
 * nothing is allocated.
 */
#include <stdlib.h>

#include "fuzz.h"
#include "member.h"
#include "mp.h"

/* 1: a well-formed list naming self, 0: one without it, -1: malformed. */
static int read_list(struct mp_reader *r, uint64_t self)
{
	const char *k;
	uint32_t klen;
	uint32_t n;
	uint32_t f;
	uint64_t id;
	int listed = 0;

	if (!mp_read_array(r, &n))
		return -1;
	while (n-- > 0) {
		if (!mp_read_map(r, &f))
			return -1;
		while (f-- > 0) {
			if (!mp_read_str(r, &k, &klen))
				return -1;
			if (MP_KEY_IS(k, klen, "id")) {
				if (!mp_read_uint(r, &id))
					return -1;
				listed |= id == self;
			} else if (!mp_skip(r)) {
				return -1;
			}
		}
	}
	return listed;
}

/* Whether the payload's top map holds a well-formed list without self,
 * before anything malformed. */
static bool has_list_without(const uint8_t *p, size_t len, uint64_t self)
{
	struct mp_reader r;
	const char *k;
	uint32_t klen;
	uint32_t n;

	mp_reader_init(&r, p, len);
	if (!mp_read_map(&r, &n))
		return false;
	while (n-- > 0 && mp_read_str(&r, &k, &klen)) {
		if (MP_KEY_IS(k, klen, "ms")) {
			struct mp_reader at = r;
			if (read_list(&at, self) == 0)
				return true;
		}
		if (!mp_skip(&r))
			return false;
	}
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	uint64_t self = fuzz_u8(&in) % 4 + 1;
	uint64_t leader = 0;
	int listed = -1;
	uint8_t *p = fuzz_dup(in.p, in.n);
	size_t before = fuzz_heap_bytes();

	member_read_answer(p, (uint32_t)in.n, self, &leader, &listed);
	FUZZ_CHECK(fuzz_heap_bytes() == before);
	FUZZ_CHECK(listed >= -1 && listed <= 1);
	FUZZ_CHECK(listed != 0 || has_list_without(p, in.n, self));
	free(p);
	return 0;
}

void fuzz_seeds(void)
{
	struct buf b = BUF_INIT;
	struct mp_writer w;
	uint64_t id;

	mp_writer_init(&w, &b);
	mp_put_uint(&w, 0); /* self: member 1 */
	mp_put_map(&w, 5);
	mp_put_key(&w, "id");
	mp_put_uint(&w, 1);
	mp_put_key(&w, "op");
	mp_put_uint(&w, PROTO_OP_HELLO);
	mp_put_key(&w, "ver");
	mp_put_uint(&w, PROTO_VERSION);
	mp_put_key(&w, "mid");
	mp_put_uint(&w, 2);
	mp_put_key(&w, "ldr");
	mp_put_uint(&w, 3);
	fuzz_emit(b.data, b.len);

	buf_reset(&b);
	mp_put_uint(&w, 0);
	mp_put_map(&w, 3);
	mp_put_key(&w, "id");
	mp_put_uint(&w, 2);
	mp_put_key(&w, "op");
	mp_put_uint(&w, PROTO_OP_MEMBERS);
	mp_put_key(&w, "ms");
	mp_put_array(&w, 3);
	for (id = 2; id <= 4; id++) {
		mp_put_map(&w, 4);
		mp_put_key(&w, "id");
		mp_put_uint(&w, id);
		mp_put_key(&w, "peer");
		mp_put_str(&w, "127.0.0.1:7001", 14);
		mp_put_key(&w, "voter");
		mp_put_bool(&w, true);
		mp_put_key(&w, "ldr");
		mp_put_bool(&w, id == 3);
	}
	fuzz_emit(b.data, b.len);
	buf_free(&b);
}
