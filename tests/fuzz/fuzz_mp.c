/*
 * fuzz_mp: the bounds-checked msgpack reader (mp.h), checked against
 * msgpack-c's own unpacker and against the writer.
 *
 * For arbitrary bytes: a walk with the typed reads (mp_peek, then the read
 * of that type) must accept exactly what mp_skip() and mp_read_raw()
 * accept, consuming as much; container counts never exceed the bytes left.
 * What it accepts, msgpack-c must accept too with the same length, and the
 * walk's re-encoding (through mp_writer) must equal msgpack-c's re-encoding
 * of its object: encode(decode(x)) agrees between the two. The re-encoding,
 * written once more with mp_open()/mp_close() 32-bit counts, must read back
 * to the same canonical bytes. The mp_dec_* wrappers must agree with the
 * plain reads. The reader allocates nothing.
 */
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "fuzz.h"
#include "mp.h"

/* Re-encodes the next object with the writer: w1 canonical, w2 with
 * mp_open() containers (NULL: none). Returns false where the reader failed. */
static bool walk(struct mp_reader *r, struct mp_writer *w1,
                 struct mp_writer *w2, unsigned depth);

static void put_ext(struct mp_writer *w, const uint8_t *raw, size_t len)
{
	size_t hdr;
	uint32_t n;

	if (raw[0] >= 0xd4 && raw[0] <= 0xd8) {
		hdr = 1;
		n = 1u << (raw[0] - 0xd4);
	} else {
		hdr = 1 + (1u << (raw[0] - 0xc7));
		n = (uint32_t)(len - hdr - 1);
	}
	FUZZ_CHECK(hdr + 1 + n == len);
	msgpack_pack_ext(&w->pk, n, (int8_t)raw[hdr]);
	msgpack_pack_ext_body(&w->pk, raw + hdr + 1, n);
}

/* Floats go through a double, as msgpack-c's object does (which quiets a
 * signaling NaN; volatile keeps the compiler from folding the round trip). */
static void put_float(struct mp_writer *w, const uint8_t *raw)
{
	uint64_t bits = 0;
	unsigned i;
	unsigned n = raw[0] == 0xca ? 4 : 8;
	float f;
	volatile double d;

	for (i = 0; i < n; i++)
		bits = bits << 8 | raw[1 + i];
	if (n == 4) {
		uint32_t b32 = (uint32_t)bits;
		memcpy(&f, &b32, 4);
		d = f;
		msgpack_pack_float(&w->pk, (float)d);
	} else {
		double d64;
		memcpy(&d64, &bits, 8);
		msgpack_pack_double(&w->pk, d64);
	}
}

static bool walk_container(struct mp_reader *r, struct mp_writer *w1,
                           struct mp_writer *w2, bool map, unsigned depth)
{
	uint32_t n;
	uint32_t i;
	size_t at = 0;

	if (depth >= MP_MAX_DEPTH)
		return false; /* as mp_skip() */
	if (!(map ? mp_read_map(r, &n) : mp_read_array(r, &n)))
		return false;
	FUZZ_CHECK((size_t)n * (map ? 2 : 1) <= mp_left(r));
	if (map)
		mp_put_map(w1, n);
	else
		mp_put_array(w1, n);
	if (w2 != NULL)
		at = mp_open(w2, map);
	for (i = 0; i < n * (map ? 2u : 1u); i++)
		if (!walk(r, w1, w2, depth + 1))
			return false;
	if (w2 != NULL)
		mp_close(w2, at, n);
	return true;
}

static bool walk_one(struct mp_reader *r, struct mp_writer *w, enum mp_type t)
{
	struct mp_reader copy = *r;
	const uint8_t *p;
	uint32_t len;
	uint64_t u;
	int64_t s;
	size_t raw_len;
	bool b;

	switch (t) {
	case MP_NIL:
		if (!mp_read_nil(r))
			return false;
		mp_put_nil(w);
		return true;
	case MP_BOOL:
		if (!mp_read_bool(r, &b))
			return false;
		mp_put_bool(w, b);
		return true;
	case MP_UINT:
		if (!mp_read_uint(r, &u))
			return false;
		/* mp_read_int takes it too when it fits. */
		FUZZ_CHECK(mp_read_int(&copy, &s) == (u <= INT64_MAX));
		FUZZ_CHECK(u > INT64_MAX || (uint64_t)s == u);
		mp_put_uint(w, u);
		return true;
	case MP_INT:
		if (!mp_read_int(r, &s))
			return false;
		FUZZ_CHECK(s < 0 || mp_read_uint(&copy, &u));
		mp_put_int(w, s);
		return true;
	case MP_STR:
	case MP_BIN:
		if (!mp_read_bytes(r, &p, &len))
			return false;
		FUZZ_CHECK(p + len <= r->end);
		if (t == MP_STR)
			mp_put_str(w, p, len);
		else
			mp_put_bin(w, p, len);
		return true;
	case MP_FLOAT:
		if (!mp_read_raw(r, &p, &raw_len))
			return false;
		FUZZ_CHECK(raw_len == (p[0] == 0xca ? 5u : 9u));
		put_float(w, p);
		return true;
	case MP_EXT:
		if (!mp_read_raw(r, &p, &raw_len))
			return false;
		put_ext(w, p, raw_len);
		return true;
	default:
		return false;
	}
}

static bool walk(struct mp_reader *r, struct mp_writer *w1,
                 struct mp_writer *w2, unsigned depth)
{
	enum mp_type t = mp_peek(r);
	size_t start;
	bool ok;

	if (t == MP_MAP || t == MP_ARRAY)
		return walk_container(r, w1, w2, t == MP_MAP, depth);
	start = w1->b->len;
	ok = walk_one(r, w1, t);
	if (ok && w2 != NULL)
		mp_put_raw(w2, w1->b->data + start, w1->b->len - start);
	return ok;
}

/* The mp_dec_* wrappers agree with the plain reads. */
static void check_dec(const uint8_t *data, size_t size)
{
	struct mp_reader r;
	struct mp_dec d;
	char err[64];
	const uint8_t *p;
	uint32_t len;
	uint64_t u;
	int64_t s;
	bool b;

	mp_reader_init(&r, data, size);
	mp_dec_init(&d, data, size, "field", err, sizeof err);
	switch (mp_peek(&r)) {
	case MP_UINT:
		FUZZ_CHECK(mp_dec_uint(&d, "u", &u) == mp_read_uint(&r, &u));
		break;
	case MP_INT:
		FUZZ_CHECK(mp_dec_int(&d, "i", &s) == mp_read_int(&r, &s));
		break;
	case MP_BOOL:
		FUZZ_CHECK(mp_dec_bool(&d, "b", &b) == mp_read_bool(&r, &b));
		break;
	default:
		if (mp_dec_bytes(&d, "s", &p, &len, 16)) {
			FUZZ_CHECK(len <= 16);
		} else if (d.err == CAIRN_EINVAL) {
			FUZZ_CHECK(mp_read_bytes(&r, &p, &len) && len > 16);
		} else {
			FUZZ_CHECK(!mp_read_bytes(&r, &p, &len));
		}
		return;
	}
	FUZZ_CHECK(d.err == 0 || err[0] != '\0');
}

/* msgpack-c's re-encoding of the first object of data, which the walk
 * accepted as len bytes. */
static void check_msgpack_c(const uint8_t *data, size_t len,
                            const struct buf *canon)
{
	msgpack_unpacked u;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	size_t off = 0;

	msgpack_unpacked_init(&u);
	FUZZ_CHECK(msgpack_unpack_next(&u, (const char *)data, len, &off) ==
	           MSGPACK_UNPACK_SUCCESS);
	FUZZ_CHECK(off == len);
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	FUZZ_CHECK(msgpack_pack_object(&pk, u.data) == 0);
	FUZZ_CHECK(sb.size == canon->len &&
	           memcmp(sb.data, canon->data, sb.size) == 0);
	msgpack_sbuffer_destroy(&sb);
	msgpack_unpacked_destroy(&u);
}

/* Reads wide (the same object with 32-bit counts) back into canon bytes. */
static void check_wide(const struct buf *wide, const struct buf *canon)
{
	struct buf again = BUF_INIT;
	struct mp_writer w;
	struct mp_reader r;
	uint8_t *p = fuzz_dup(wide->data, wide->len);

	mp_reader_init(&r, p, wide->len);
	mp_writer_init(&w, &again);
	FUZZ_CHECK(walk(&r, &w, NULL, 0));
	FUZZ_CHECK(mp_left(&r) == 0);
	FUZZ_CHECK(again.len == canon->len &&
	           memcmp(again.data, canon->data, again.len) == 0);
	buf_free(&again);
	free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf canon = BUF_INIT;
	struct buf wide = BUF_INIT;
	struct mp_writer w1;
	struct mp_writer w2;
	struct mp_reader r;
	struct mp_reader skip;
	const uint8_t *raw;
	size_t raw_len;
	size_t before;
	bool ok;

	check_dec(data, size);
	mp_reader_init(&r, data, size);
	mp_reader_init(&skip, data, size);
	mp_writer_init(&w1, &canon);
	mp_writer_init(&w2, &wide);
	ok = walk(&r, &w1, &w2, 0);
	FUZZ_CHECK(w1.err == 0 && w2.err == 0);
	before = fuzz_heap_bytes();
	FUZZ_CHECK(mp_read_raw(&skip, &raw, &raw_len) == ok);
	FUZZ_CHECK(fuzz_heap_bytes() ==
	           before); /* the reader allocates nothing */
	FUZZ_CHECK(!ok || mp_ok(&r));
	if (ok) {
		FUZZ_CHECK(raw == data && raw_len == size - mp_left(&r));
		FUZZ_CHECK(skip.p == r.p);
		check_msgpack_c(data, raw_len, &canon);
		check_wide(&wide, &canon);
	}
	buf_free(&canon);
	buf_free(&wide);
	return 0;
}

void fuzz_seeds(void)
{
	struct buf b = BUF_INIT;
	struct mp_writer w;
	static const uint8_t ext[] = {0xd6, 0x01, 1, 2, 3, 4};
	static const uint8_t f32[] = {0xca, 0x3f, 0x80, 0, 0};
	size_t at;

	mp_writer_init(&w, &b);
	mp_put_map(&w, 3);
	mp_put_key(&w, "k");
	mp_put_bin(&w, "key", 3);
	mp_put_key(&w, "list");
	mp_put_array(&w, 6);
	mp_put_uint(&w, 1);
	mp_put_uint(&w, 300);
	mp_put_uint(&w, UINT64_MAX);
	mp_put_int(&w, -5);
	mp_put_int(&w, INT64_MIN);
	mp_put_nil(&w);
	mp_put_key(&w, "x");
	at = mp_open(&w, false);
	mp_put_bool(&w, true);
	mp_put_raw(&w, ext, sizeof ext);
	mp_put_raw(&w, f32, sizeof f32);
	mp_put_str(&w, "a longer string of more than 31 bytes", 37);
	mp_close(&w, at, 4);
	fuzz_emit(b.data, b.len);
	buf_free(&b);
}
