/*
 * test_mp: unit tests of lib/mp.c (the bounds-checked MessagePack reader and
 * the buf-backed writer) and of lib/proto.c's request decoder.
 *
 * Round trips cover every type and size class the writer produces and the
 * reader accepts. Hostile inputs (counts and lengths larger than the bytes
 * left, truncation at every offset, random bytes, deep nesting) are read from
 * heap copies of exactly their size, so under AddressSanitizer any read past
 * the end is caught. The request decoder gets hand-written valid and invalid
 * requests and thousands of mutated ones (fixed seed).
 *
 * Without AddressSanitizer the libc allocator is wrapped to count live blocks
 * (so a decode that leaks fails the test) and to fail the Nth allocation (so
 * CAIRN_ENOMEM paths are walked); with it, LeakSanitizer reports leaks at exit.
 */
#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "cairn.h"
#include "mp.h"
#include "proto.h"
#include "test.h"

/* ---- allocation counting and failure injection --------------------------- */

#include "fault.h"

/* ---- helpers ------------------------------------------------------------- */


/* A heap copy of exactly n bytes: reading one byte past it trips ASan. */
static uint8_t *exact(const void *p, size_t n)
{
	uint8_t *q = malloc(n);

	if (q == NULL)
		abort();
	if (n)
		memcpy(q, p, n);
	return q;
}

static void fill(uint8_t *p, size_t n, unsigned salt)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 7 + salt);
}

/* ---- scalars: every size class ------------------------------------------- */

static const struct {
	uint64_t v;
	size_t size;
	uint8_t tag;
} uints[] = {
    {0, 1, 0x00},          {1, 1, 0x01},
    {127, 1, 0x7f},        {128, 2, 0xcc},
    {255, 2, 0xcc},        {256, 3, 0xcd},
    {65535, 3, 0xcd},      {65536, 5, 0xce},
    {UINT32_MAX, 5, 0xce}, {(uint64_t)UINT32_MAX + 1, 9, 0xcf},
    {INT64_MAX, 9, 0xcf},  {(uint64_t)INT64_MAX + 1, 9, 0xcf},
    {UINT64_MAX, 9, 0xcf},
};

TEST(uint_round_trip)
{
	size_t i;

	for (i = 0; i < sizeof uints / sizeof uints[0]; i++) {
		struct buf b = BUF_INIT;
		struct mp_writer w;
		struct mp_reader r;
		uint64_t u = 0;
		int64_t s = 0;

		mp_writer_init(&w, &b);
		mp_put_uint(&w, uints[i].v);
		CHECK_EQ_INT(w.err, 0);
		CHECK_EQ_INT(b.len, uints[i].size);
		CHECK_EQ_INT(b.data[0], uints[i].tag);

		mp_reader_init(&r, b.data, b.len);
		CHECK_EQ_INT(mp_peek(&r), MP_UINT);
		CHECK(mp_read_uint(&r, &u));
		CHECK(u == uints[i].v);
		CHECK_EQ_INT(mp_left(&r), 0);
		CHECK(mp_ok(&r));

		mp_reader_init(&r, b.data, b.len);
		if (uints[i].v <= INT64_MAX) {
			CHECK(mp_read_int(&r, &s));
			CHECK(s == (int64_t)uints[i].v);
			CHECK_EQ_INT(mp_left(&r), 0);
			/* A non-negative int64 is written in the same form. */
			buf_reset(&b);
			mp_put_int(&w, (int64_t)uints[i].v);
			CHECK_EQ_INT(b.len, uints[i].size);
			CHECK_EQ_INT(b.data[0], uints[i].tag);
		} else {
			CHECK(!mp_read_int(&r, &s));
			CHECK(!mp_ok(&r));
		}
		buf_free(&b);
	}
	return 0;
}

static const struct {
	int64_t v;
	size_t size;
	uint8_t tag;
} ints[] = {
    {-1, 1, 0xff},
    {-32, 1, 0xe0},
    {-33, 2, 0xd0},
    {-128, 2, 0xd0},
    {-129, 3, 0xd1},
    {-32768, 3, 0xd1},
    {-32769, 5, 0xd2},
    {INT32_MIN, 5, 0xd2},
    {(int64_t)INT32_MIN - 1, 9, 0xd3},
    {INT64_MIN, 9, 0xd3},
};

TEST(negative_int_round_trip)
{
	size_t i;

	for (i = 0; i < sizeof ints / sizeof ints[0]; i++) {
		struct buf b = BUF_INIT;
		struct mp_writer w;
		struct mp_reader r;
		uint64_t u;
		int64_t s = 0;

		mp_writer_init(&w, &b);
		mp_put_int(&w, ints[i].v);
		CHECK_EQ_INT(w.err, 0);
		CHECK_EQ_INT(b.len, ints[i].size);
		CHECK_EQ_INT(b.data[0], ints[i].tag);

		mp_reader_init(&r, b.data, b.len);
		CHECK_EQ_INT(mp_peek(&r), MP_INT);
		CHECK(mp_read_int(&r, &s));
		CHECK_EQ_INT(s, ints[i].v);
		CHECK_EQ_INT(mp_left(&r), 0);

		/* A negative number is not an unsigned one. */
		mp_reader_init(&r, b.data, b.len);
		CHECK(!mp_read_uint(&r, &u));
		CHECK(!mp_ok(&r));
		buf_free(&b);
	}
	return 0;
}

/* Signed encodings of non-negative values (other packers produce them). */
TEST(signed_forms_of_positive_values)
{
	static const struct {
		uint8_t bytes[9];
		size_t len;
		int64_t v;
	} cases[] = {
	    {{0xd0, 0x05}, 2, 5},
	    {{0xd0, 0x7f}, 2, 127},
	    {{0xd1, 0x01, 0x00}, 3, 256},
	    {{0xd2, 0x00, 0x01, 0x00, 0x00}, 5, 65536},
	    {{0xd3, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
	     9,
	     INT64_MAX},
	    {{0xcc, 0x80}, 2, 128},
	    {{0xcd, 0x00, 0x01}, 3, 1}, /* not the shortest form: accepted */
	};
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct mp_reader r;
		int64_t s;
		uint64_t u;

		mp_reader_init(&r, cases[i].bytes, cases[i].len);
		CHECK(mp_read_int(&r, &s));
		CHECK_EQ_INT(s, cases[i].v);
		CHECK_EQ_INT(mp_left(&r), 0);
		mp_reader_init(&r, cases[i].bytes, cases[i].len);
		CHECK(mp_read_uint(&r, &u));
		CHECK(u == (uint64_t)cases[i].v);
		CHECK_EQ_INT(mp_left(&r), 0);
	}
	return 0;
}

TEST(nil_and_bool)
{
	struct buf b = BUF_INIT;
	struct mp_writer w;
	struct mp_reader r;
	bool v;

	mp_writer_init(&w, &b);
	mp_put_nil(&w);
	mp_put_bool(&w, true);
	mp_put_bool(&w, false);
	CHECK_EQ_INT(b.len, 3);
	CHECK_EQ_INT(b.data[0], 0xc0);
	CHECK_EQ_INT(b.data[1], 0xc3);
	CHECK_EQ_INT(b.data[2], 0xc2);

	mp_reader_init(&r, b.data, b.len);
	CHECK_EQ_INT(mp_peek(&r), MP_NIL);
	CHECK(mp_read_nil(&r));
	CHECK_EQ_INT(mp_peek(&r), MP_BOOL);
	CHECK(mp_read_bool(&r, &v));
	CHECK(v);
	CHECK(mp_read_bool(&r, &v));
	CHECK(!v);
	CHECK_EQ_INT(mp_left(&r), 0);
	CHECK_EQ_INT(mp_peek(&r), MP_NONE);
	/* Reading past the end fails. */
	CHECK(!mp_read_nil(&r));
	CHECK(!mp_ok(&r));

	/* Types are not interchangeable. */
	mp_reader_init(&r, b.data, b.len);
	CHECK(!mp_read_bool(&r, &v));
	mp_reader_init(&r, b.data + 1, 1);
	CHECK(!mp_read_nil(&r));
	mp_reader_init(&r, b.data + 1, 1);
	{
		uint64_t u;
		CHECK(!mp_read_uint(&r, &u));
	}
	buf_free(&b);
	return 0;
}

/* ---- strings and binaries ------------------------------------------------ */

TEST(str_round_trip)
{
	static const struct {
		size_t len;
		size_t hdr;
		uint8_t tag;
	} cases[] = {
	    {0, 1, 0xa0},     {1, 1, 0xa1},     {31, 1, 0xbf},
	    {32, 2, 0xd9},    {255, 2, 0xd9},   {256, 3, 0xda},
	    {65535, 3, 0xda}, {65536, 5, 0xdb}, {70000, 5, 0xdb},
	};
	static uint8_t src[70000];
	size_t i;

	fill(src, sizeof src, 3);
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct buf b = BUF_INIT;
		struct mp_writer w;
		struct mp_reader r;
		const char *s = NULL;
		const uint8_t *p = NULL;
		uint32_t n = 99;

		mp_writer_init(&w, &b);
		mp_put_str(&w, src, cases[i].len);
		CHECK_EQ_INT(w.err, 0);
		CHECK_EQ_INT(b.len, cases[i].hdr + cases[i].len);
		CHECK_EQ_INT(b.data[0], cases[i].tag);

		mp_reader_init(&r, b.data, b.len);
		CHECK_EQ_INT(mp_peek(&r), MP_STR);
		CHECK(mp_read_str(&r, &s, &n));
		CHECK_EQ_INT(n, cases[i].len);
		CHECK((const uint8_t *)s == b.data + cases[i].hdr);
		CHECK_MEM(s, n, src, cases[i].len);
		CHECK_EQ_INT(mp_left(&r), 0);

		/* Either call accepts either type. */
		mp_reader_init(&r, b.data, b.len);
		CHECK(mp_read_bytes(&r, &p, &n));
		CHECK_MEM(p, n, src, cases[i].len);
		buf_free(&b);
	}
	return 0;
}

TEST(bin_round_trip)
{
	static const struct {
		size_t len;
		size_t hdr;
		uint8_t tag;
	} cases[] = {
	    {0, 2, 0xc4},     {1, 2, 0xc4},     {255, 2, 0xc4},
	    {256, 3, 0xc5},   {65535, 3, 0xc5}, {65536, 5, 0xc6},
	    {70000, 5, 0xc6},
	};
	static uint8_t src[70000];
	size_t i;

	fill(src, sizeof src, 11);
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct buf b = BUF_INIT;
		struct mp_writer w;
		struct mp_reader r;
		const uint8_t *p = NULL;
		const char *s = NULL;
		uint32_t n = 99;

		mp_writer_init(&w, &b);
		mp_put_bin(&w, src, cases[i].len);
		CHECK_EQ_INT(w.err, 0);
		CHECK_EQ_INT(b.len, cases[i].hdr + cases[i].len);
		CHECK_EQ_INT(b.data[0], cases[i].tag);

		mp_reader_init(&r, b.data, b.len);
		CHECK_EQ_INT(mp_peek(&r), MP_BIN);
		CHECK(mp_read_bytes(&r, &p, &n));
		CHECK_EQ_INT(n, cases[i].len);
		CHECK(p == b.data + cases[i].hdr);
		CHECK_MEM(p, n, src, cases[i].len);
		CHECK_EQ_INT(mp_left(&r), 0);

		mp_reader_init(&r, b.data, b.len);
		CHECK(mp_read_str(&r, &s, &n));
		CHECK_MEM(s, n, src, cases[i].len);
		buf_free(&b);
	}
	return 0;
}

TEST(key_is)
{
	CHECK(MP_KEY_IS("id", 2, "id"));
	CHECK(!MP_KEY_IS("id", 1, "id"));
	CHECK(!MP_KEY_IS("ix", 2, "id"));
	CHECK(!MP_KEY_IS("idx", 3, "id"));
	CHECK(MP_KEY_IS("", 0, ""));
	return 0;
}

/* ---- containers ---------------------------------------------------------- */

static const struct {
	uint32_t n;
	size_t hdr;
	uint8_t array_tag;
	uint8_t map_tag;
} counts[] = {
    {0, 1, 0x90, 0x80},      {1, 1, 0x91, 0x81},     {15, 1, 0x9f, 0x8f},
    {16, 3, 0xdc, 0xde},     {65535, 3, 0xdc, 0xde}, {65536, 5, 0xdd, 0xdf},
    {100000, 5, 0xdd, 0xdf},
};

static int check_container(bool map, size_t i)
{
	struct buf b = BUF_INIT;
	struct mp_writer w;
	struct mp_reader r;
	uint32_t n = 0;
	uint32_t elems = counts[i].n * (map ? 2 : 1);
	uint32_t k;

	mp_writer_init(&w, &b);
	if (map)
		mp_put_map(&w, counts[i].n);
	else
		mp_put_array(&w, counts[i].n);
	for (k = 0; k < elems; k++)
		mp_put_nil(&w);
	CHECK_EQ_INT(w.err, 0);
	CHECK_EQ_INT(b.len, counts[i].hdr + elems);
	CHECK_EQ_INT(b.data[0], map ? counts[i].map_tag : counts[i].array_tag);

	mp_reader_init(&r, b.data, b.len);
	CHECK_EQ_INT(mp_peek(&r), map ? MP_MAP : MP_ARRAY);
	CHECK(map ? mp_read_map(&r, &n) : mp_read_array(&r, &n));
	CHECK_EQ_INT(n, counts[i].n);
	for (k = 0; k < elems; k++)
		CHECK(mp_read_nil(&r));
	CHECK_EQ_INT(mp_left(&r), 0);

	/* The other container type is refused. */
	mp_reader_init(&r, b.data, b.len);
	CHECK(!(map ? mp_read_array(&r, &n) : mp_read_map(&r, &n)));
	CHECK(!mp_ok(&r));

	/* Skipping takes the whole thing. */
	mp_reader_init(&r, b.data, b.len);
	CHECK(mp_skip(&r));
	CHECK_EQ_INT(mp_left(&r), 0);
	buf_free(&b);
	return 0;
}

TEST(array_round_trip)
{
	size_t i;

	for (i = 0; i < sizeof counts / sizeof counts[0]; i++)
		if (check_container(false, i) != 0)
			return 1;
	return 0;
}

TEST(map_round_trip)
{
	size_t i;

	for (i = 0; i < sizeof counts / sizeof counts[0]; i++)
		if (check_container(true, i) != 0)
			return 1;
	return 0;
}

/* ---- float and ext: skipped, never interpreted --------------------------- */

TEST(float_skip)
{
	struct buf b = BUF_INIT;
	struct mp_writer w;
	struct mp_reader r;
	const uint8_t *p;
	size_t len;
	int64_t s;

	mp_writer_init(&w, &b);
	msgpack_pack_float(&w.pk, 1.5f);
	msgpack_pack_double(&w.pk, -2.25);
	mp_put_uint(&w, 7);
	CHECK_EQ_INT(b.len, 5 + 9 + 1);
	CHECK_EQ_INT(b.data[0], 0xca);
	CHECK_EQ_INT(b.data[5], 0xcb);

	mp_reader_init(&r, b.data, b.len);
	CHECK_EQ_INT(mp_peek(&r), MP_FLOAT);
	CHECK(mp_read_raw(&r, &p, &len));
	CHECK(p == b.data);
	CHECK_EQ_INT(len, 5);
	CHECK_EQ_INT(mp_peek(&r), MP_FLOAT);
	CHECK(mp_skip(&r));
	CHECK_EQ_INT(mp_left(&r), 1);

	/* A float is not an integer. */
	mp_reader_init(&r, b.data, b.len);
	CHECK(!mp_read_int(&r, &s));

	/* Truncated floats are refused. */
	for (len = 0; len < 9; len++) {
		uint8_t *q = exact(b.data + 5, len);
		mp_reader_init(&r, q, len);
		CHECK(!mp_skip(&r));
		CHECK(!mp_ok(&r));
		free(q);
	}
	buf_free(&b);
	return 0;
}

TEST(ext_skip)
{
	static const struct {
		size_t len;
		size_t hdr; /* tag, length bytes and the type byte */
		uint8_t tag;
	} cases[] = {
	    {1, 2, 0xd4},   {2, 2, 0xd5},     {4, 2, 0xd6},     {8, 2, 0xd7},
	    {16, 2, 0xd8},  {0, 3, 0xc7},     {3, 3, 0xc7},     {255, 3, 0xc7},
	    {256, 4, 0xc8}, {65535, 4, 0xc8}, {65536, 6, 0xc9},
	};
	static uint8_t body[65536];
	size_t i;

	fill(body, sizeof body, 5);
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct buf b = BUF_INIT;
		struct mp_writer w;
		struct mp_reader r;
		const uint8_t *p;
		size_t len;
		size_t total = cases[i].hdr + cases[i].len;
		uint8_t *q;

		mp_writer_init(&w, &b);
		msgpack_pack_ext(&w.pk, cases[i].len, 42);
		msgpack_pack_ext_body(&w.pk, body, cases[i].len);
		mp_put_nil(&w);
		CHECK_EQ_INT(b.len, total + 1);
		CHECK_EQ_INT(b.data[0], cases[i].tag);

		mp_reader_init(&r, b.data, b.len);
		CHECK_EQ_INT(mp_peek(&r), MP_EXT);
		CHECK(mp_read_raw(&r, &p, &len));
		CHECK(p == b.data);
		CHECK_EQ_INT(len, total);
		CHECK(mp_read_nil(&r));
		CHECK_EQ_INT(mp_left(&r), 0);

		/* Short by one byte, short of its header: refused. */
		q = exact(b.data, total - 1);
		mp_reader_init(&r, q, total - 1);
		CHECK(!mp_skip(&r));
		CHECK(!mp_ok(&r));
		free(q);
		q = exact(b.data, cases[i].hdr - 1);
		mp_reader_init(&r, q, cases[i].hdr - 1);
		CHECK(!mp_skip(&r));
		free(q);
		buf_free(&b);
	}
	return 0;
}

/* ---- mp_open / mp_close -------------------------------------------------- */

TEST(open_close_patches_counts)
{
	struct buf b = BUF_INIT;
	struct mp_writer w;
	struct mp_reader r;
	size_t outer;
	size_t inner;
	size_t big;
	uint32_t n;
	uint32_t k;
	uint64_t u;
	const char *s;

	mp_writer_init(&w, &b);
	outer = mp_open(&w, true);
	CHECK_EQ_INT(outer, 0);
	CHECK_EQ_INT(b.len, 5);
	CHECK_EQ_INT(b.data[0], 0xdf);
	mp_put_key(&w, "a");
	mp_put_uint(&w, 1);
	mp_put_key(&w, "list");
	inner = mp_open(&w, false);
	CHECK_EQ_INT(b.data[inner], 0xdd);
	mp_put_uint(&w, 10);
	mp_put_uint(&w, 20);
	mp_close(&w, inner, 2);
	mp_put_key(&w, "big");
	big = mp_open(&w, false);
	for (k = 0; k < 70000; k++)
		mp_put_uint(&w, k & 0x7f);
	mp_close(&w, big, 70000);
	mp_put_key(&w, "empty");
	mp_close(&w, mp_open(&w, true), 0);
	mp_close(&w, outer, 4);
	CHECK_EQ_INT(w.err, 0);

	mp_reader_init(&r, b.data, b.len);
	CHECK(mp_read_map(&r, &n));
	CHECK_EQ_INT(n, 4);
	CHECK(mp_read_str(&r, &s, &n) && MP_KEY_IS(s, n, "a"));
	CHECK(mp_read_uint(&r, &u) && u == 1);
	CHECK(mp_read_str(&r, &s, &n) && MP_KEY_IS(s, n, "list"));
	CHECK(mp_read_array(&r, &n));
	CHECK_EQ_INT(n, 2);
	CHECK(mp_read_uint(&r, &u) && u == 10);
	CHECK(mp_read_uint(&r, &u) && u == 20);
	CHECK(mp_read_str(&r, &s, &n) && MP_KEY_IS(s, n, "big"));
	CHECK(mp_read_array(&r, &n));
	CHECK_EQ_INT(n, 70000);
	for (k = 0; k < 70000; k++)
		CHECK(mp_read_uint(&r, &u) && u == (k & 0x7f));
	CHECK(mp_read_str(&r, &s, &n) && MP_KEY_IS(s, n, "empty"));
	CHECK(mp_read_map(&r, &n));
	CHECK_EQ_INT(n, 0);
	CHECK_EQ_INT(mp_left(&r), 0);

	/* The whole thing skips as one object. */
	mp_reader_init(&r, b.data, b.len);
	CHECK(mp_skip(&r));
	CHECK_EQ_INT(mp_left(&r), 0);

	/* Closing a place past the end of the buffer is ignored. */
	n = (uint32_t)b.len;
	mp_close(&w, b.len, 3);
	mp_close(&w, b.len - 4, 3);
	CHECK_EQ_INT(b.len, n);
	buf_free(&b);
	return 0;
}

/* ---- skip and raw over nested data --------------------------------------- */

/* Writes one sample of nested data, different for each i. */
static void put_nested(struct mp_writer *w, unsigned i)
{
	static const uint8_t bin[3] = {0, 1, 2};

	switch (i) {
	case 0:
		mp_put_uint(w, 300);
		break;
	case 1:
		mp_put_map(w, 2);
		mp_put_key(w, "a");
		mp_put_array(w, 5);
		mp_put_nil(w);
		mp_put_bool(w, true);
		mp_put_str(w, "xyz", 3);
		mp_put_bin(w, bin, sizeof bin);
		mp_put_int(w, -70000);
		mp_put_key(w, "b");
		mp_put_map(w, 1);
		mp_put_key(w, "c");
		mp_put_array(w, 0);
		break;
	case 2:
		msgpack_pack_double(&w->pk, 3.5);
		break;
	case 3:
		msgpack_pack_ext(&w->pk, 4, 1);
		msgpack_pack_ext_body(&w->pk, "abcd", 4);
		break;
	default:
		mp_put_array(w, 2);
		mp_put_map(w, 0);
		mp_put_array(w, 1);
		mp_put_array(w, 1);
		mp_put_str(w, "deep", 4);
		break;
	}
}

TEST(skip_and_raw_nested)
{
	struct buf all = BUF_INIT;
	struct mp_writer w;
	struct mp_reader r;
	const uint8_t *p;
	size_t len;
	uint32_t n;
	unsigned i;

	mp_writer_init(&w, &all);
	mp_put_array(&w, 5);
	for (i = 0; i < 5; i++)
		put_nested(&w, i);
	mp_put_uint(&w, 1); /* one object after the array */

	mp_reader_init(&r, all.data, all.len);
	CHECK(mp_read_raw(&r, &p, &len));
	CHECK(p == all.data);
	CHECK_EQ_INT(len, all.len - 1);
	CHECK_EQ_INT(mp_left(&r), 1);

	/* Each element's raw bytes are what the writer made of it alone. */
	mp_reader_init(&r, all.data, all.len);
	CHECK(mp_read_array(&r, &n));
	CHECK_EQ_INT(n, 5);
	for (i = 0; i < 5; i++) {
		struct buf one = BUF_INIT;
		struct mp_writer w1;

		mp_writer_init(&w1, &one);
		put_nested(&w1, i);
		CHECK(mp_read_raw(&r, &p, &len));
		CHECK_MEM(p, len, one.data, one.len);
		buf_free(&one);
	}
	CHECK_EQ_INT(mp_left(&r), 1);

	/* mp_put_raw copies it back verbatim. */
	{
		struct buf copy = BUF_INIT;
		struct mp_writer w2;

		mp_reader_init(&r, all.data, all.len);
		CHECK(mp_read_raw(&r, &p, &len));
		mp_writer_init(&w2, &copy);
		mp_put_raw(&w2, p, len);
		CHECK_MEM(copy.data, copy.len, all.data, all.len - 1);
		buf_free(&copy);
	}
	buf_free(&all);
	return 0;
}

/* ---- depth limit --------------------------------------------------------- */

/* k nested arrays (or maps keyed "a"), the innermost holding one nil or
 * nothing. */
static void put_nest(struct buf *b, unsigned k, bool map, bool leaf)
{
	struct mp_writer w;
	unsigned i;

	buf_reset(b);
	mp_writer_init(&w, b);
	for (i = 0; i < k; i++) {
		bool last = i + 1 == k;
		uint32_t n = last && !leaf ? 0 : 1;
		if (map) {
			mp_put_map(&w, n);
			if (n)
				mp_put_key(&w, "a");
		} else {
			mp_put_array(&w, n);
		}
	}
	if (leaf)
		mp_put_nil(&w);
}

static bool skips(const struct buf *b)
{
	struct mp_reader r;

	mp_reader_init(&r, b->data, b->len);
	return mp_skip(&r) && mp_left(&r) == 0;
}

TEST(depth_limit)
{
	struct buf b = BUF_INIT;
	int map;
	int leaf;

	for (map = 0; map < 2; map++) {
		for (leaf = 0; leaf < 2; leaf++) {
			put_nest(&b, MP_MAX_DEPTH, map, leaf);
			CHECK(skips(&b));
			put_nest(&b, MP_MAX_DEPTH + 1, map, leaf);
			CHECK(!skips(&b));
			put_nest(&b, 100000, map, leaf);
			CHECK(!skips(&b));
		}
	}
	buf_free(&b);
	return 0;
}

/* ---- hostile headers ----------------------------------------------------- */

struct hostile {
	uint8_t bytes[16];
	size_t len;
};

static bool try_read(const struct hostile *h, int kind)
{
	struct mp_reader r;
	const uint8_t *p;
	uint32_t n;
	size_t len;
	bool ok;
	uint8_t *q = exact(h->bytes, h->len);

	mp_reader_init(&r, q, h->len);
	switch (kind) {
	case 0:
		ok = mp_read_array(&r, &n);
		break;
	case 1:
		ok = mp_read_map(&r, &n);
		break;
	case 2:
		ok = mp_read_bytes(&r, &p, &n);
		break;
	default:
		ok = mp_read_raw(&r, &p, &len);
		break;
	}
	if (!ok && mp_ok(&r))
		ok =
		    true; /* a failure must set err: report as a wrong answer */
	if (r.p > r.end)
		ok = true;
	free(q);
	return ok;
}

TEST(hostile_container_counts)
{
	/* Counts larger than the bytes that follow. */
	static const struct hostile arrays[] = {
	    {{0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0, 0xc0}, 7},
	    {{0xdd, 0x7f, 0xff, 0xff, 0xff}, 5},
	    {{0xdd, 0x00, 0x00, 0x00, 0x03, 0xc0, 0xc0}, 7},
	    {{0xdc, 0x00, 0x05, 0xc0, 0xc0, 0xc0, 0xc0}, 7},
	    {{0xdc, 0xff, 0xff}, 3},
	    {{0x95, 0xc0, 0xc0, 0xc0, 0xc0}, 5},
	    {{0x91}, 1},
	    {{0xdc, 0x00}, 2},             /* header itself cut */
	    {{0xdd, 0x00, 0x00, 0x00}, 4}, /* header itself cut */
	    {{0xdd}, 1},
	};
	static const struct hostile maps[] = {
	    {{0xdf, 0xff, 0xff, 0xff, 0xff, 0xc0, 0xc0}, 7},
	    {{0xdf, 0x00, 0x00, 0x00, 0x03, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0}, 10},
	    {{0xde, 0x00, 0x02, 0xc0, 0xc0, 0xc0}, 6},
	    {{0x83, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0}, 6},
	    {{0x81, 0xc0}, 2},
	    {{0xde, 0x00}, 2},
	    {{0xdf, 0x00, 0x00}, 3},
	};
	static const struct hostile fits[] = {
	    {{0xdc, 0x00, 0x04, 0xc0, 0xc0, 0xc0, 0xc0}, 7},
	    {{0x95, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0}, 6},
	    {{0xdd, 0x00, 0x00, 0x00, 0x00}, 5},
	};
	static const struct hostile map_fits[] = {
	    {{0xdf, 0x00, 0x00, 0x00, 0x03, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0},
	     11},
	    {{0x83, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0}, 7},
	};
	size_t i;

	for (i = 0; i < sizeof arrays / sizeof arrays[0]; i++) {
		CHECK(!try_read(&arrays[i], 0));
		CHECK(!try_read(&arrays[i], 3));
	}
	for (i = 0; i < sizeof maps / sizeof maps[0]; i++) {
		CHECK(!try_read(&maps[i], 1));
		CHECK(!try_read(&maps[i], 3));
	}
	for (i = 0; i < sizeof fits / sizeof fits[0]; i++) {
		CHECK(try_read(&fits[i], 0));
		CHECK(try_read(&fits[i], 3));
	}
	for (i = 0; i < sizeof map_fits / sizeof map_fits[0]; i++) {
		CHECK(try_read(&map_fits[i], 1));
		CHECK(try_read(&map_fits[i], 3));
	}
	return 0;
}

TEST(hostile_string_lengths)
{
	static const struct hostile bad[] = {
	    {{0xa5, 'a', 'b', 'c', 'd'}, 5},
	    {{0xbf}, 1},
	    {{0xd9, 10, 1, 2, 3, 4, 5, 6, 7, 8, 9}, 11},
	    {{0xd9}, 1},
	    {{0xda, 0xff, 0xff, 1, 2, 3}, 6},
	    {{0xda, 0x00}, 2},
	    {{0xdb, 0xff, 0xff, 0xff, 0xff, 1}, 6},
	    {{0xdb, 0x80, 0x00, 0x00, 0x00}, 5},
	    {{0xdb, 0x00, 0x00, 0x00}, 4},
	    {{0xc4, 3, 1, 2}, 4},
	    {{0xc5, 0x01, 0x00, 1}, 4},
	    {{0xc6, 0xff, 0xff, 0xff, 0xff}, 5},
	    {{0xc6, 0x00, 0x00, 0x00, 0x02, 1}, 6},
	};
	static const struct hostile ext[] = {
	    {{0xc7, 0xff, 1, 2, 3}, 5},
	    {{0xc7, 0x01, 1}, 3},
	    {{0xc7, 0x00}, 2}, /* no type byte */
	    {{0xc8, 0xff, 0xff, 1}, 4},
	    {{0xc9, 0xff, 0xff, 0xff, 0xff, 1, 2}, 7},
	    {{0xc9, 0x00, 0x00}, 3},
	    {{0xd4, 1}, 2},
	    {{0xd4}, 1},
	    {{0xd8, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, 16},
	    {{0xc1}, 1}, /* never used */
	    {{0xcf, 1, 2, 3, 4, 5, 6, 7}, 8},
	    {{0xd3, 1, 2}, 3},
	    {{0xca, 1, 2, 3}, 4},
	};
	static const struct hostile good[] = {
	    {{0xa4, 'a', 'b', 'c', 'd'}, 5},
	    {{0xd9, 2, 1, 2}, 4},
	    {{0xc6, 0x00, 0x00, 0x00, 0x01, 9}, 6},
	    {{0xa0}, 1},
	};
	size_t i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		CHECK(!try_read(&bad[i], 2));
		CHECK(!try_read(&bad[i], 3));
	}
	for (i = 0; i < sizeof ext / sizeof ext[0]; i++)
		CHECK(!try_read(&ext[i], 3));
	for (i = 0; i < sizeof good / sizeof good[0]; i++) {
		CHECK(try_read(&good[i], 2));
		CHECK(try_read(&good[i], 3));
	}
	return 0;
}

TEST(errors_are_sticky)
{
	static const uint8_t bytes[] = {0xc1, 0xc0, 0x01};
	struct mp_reader r;
	uint64_t u;

	mp_reader_init(&r, bytes, sizeof bytes);
	CHECK_EQ_INT(mp_peek(&r), MP_NONE);
	CHECK(!mp_skip(&r));
	CHECK(!mp_ok(&r));
	r.p = bytes + 1; /* even with the cursor on a good object */
	CHECK_EQ_INT(mp_peek(&r), MP_NONE);
	CHECK(!mp_read_nil(&r));
	r.p = bytes + 2;
	CHECK(!mp_read_uint(&r, &u));
	CHECK(!mp_skip(&r));
	return 0;
}

/* ---- truncation at every offset ------------------------------------------ */

/* A document with one of everything, small enough to cut at every byte. */
static void put_sampler(struct mp_writer *w)
{
	static uint8_t s300[300];
	unsigned i;

	fill(s300, sizeof s300, 1);
	mp_put_array(w, 27);
	mp_put_uint(w, 0);
	mp_put_uint(w, 200);
	mp_put_uint(w, 60000);
	mp_put_uint(w, 4000000000u);
	mp_put_uint(w, UINT64_MAX);
	mp_put_int(w, -5);
	mp_put_int(w, -100);
	mp_put_int(w, -30000);
	mp_put_int(w, -2000000000);
	mp_put_int(w, INT64_MIN);
	mp_put_str(w, "hello", 5);
	mp_put_str(w, s300, 40);
	mp_put_str(w, s300, 300);
	mp_put_bin(w, s300, 10);
	mp_put_bin(w, s300, 300);
	mp_put_nil(w);
	mp_put_bool(w, true);
	mp_put_bool(w, false);
	msgpack_pack_float(&w->pk, 0.25f);
	msgpack_pack_double(&w->pk, 1e300);
	msgpack_pack_ext(&w->pk, 4, 7);
	msgpack_pack_ext_body(&w->pk, "wxyz", 4);
	msgpack_pack_ext(&w->pk, 5, 8);
	msgpack_pack_ext_body(&w->pk, "vwxyz", 5);
	put_nested(w, 1);
	mp_put_array(w, 0);
	mp_put_array(w, 20);
	for (i = 0; i < 20; i++)
		mp_put_uint(w, i * 1000);
	mp_put_map(w, 16);
	for (i = 0; i < 16; i++) {
		char k[2] = {(char)('a' + i), 0};
		mp_put_key(w, k);
		mp_put_int(w, -(int64_t)i);
	}
	put_nested(w, 4);
}

/* Reads the sampler back with the typed calls; true if all of it was there. */
static bool read_sampler(struct mp_reader *r)
{
	const uint8_t *p;
	uint32_t n;
	uint32_t i;
	uint64_t u;
	int64_t s;
	bool b;

	mp_read_array(r, &n);
	for (i = 0; i < 5; i++)
		mp_read_uint(r, &u);
	for (i = 0; i < 5; i++)
		mp_read_int(r, &s);
	for (i = 0; i < 5; i++)
		mp_read_bytes(r, &p, &n);
	mp_read_nil(r);
	mp_read_bool(r, &b);
	mp_read_bool(r, &b);
	for (i = 0; i < 4; i++)
		mp_skip(r);
	mp_skip(r); /* the nested map */
	mp_read_array(r, &n);
	mp_read_array(r, &n);
	for (i = 0; i < 20 && mp_ok(r); i++)
		mp_read_uint(r, &u);
	mp_read_map(r, &n);
	for (i = 0; i < 16 && mp_ok(r); i++) {
		mp_read_str(r, (const char **)&p, &n);
		mp_read_int(r, &s);
	}
	mp_skip(r);
	return mp_ok(r) && mp_left(r) == 0;
}

TEST(truncation_at_every_offset)
{
	struct buf b = BUF_INIT;
	struct mp_writer w;
	struct mp_reader r;
	size_t len;

	mp_writer_init(&w, &b);
	put_sampler(&w);
	CHECK_EQ_INT(w.err, 0);
	CHECK(b.len < 4096);

	mp_reader_init(&r, b.data, b.len);
	CHECK(read_sampler(&r));
	mp_reader_init(&r, b.data, b.len);
	CHECK(mp_skip(&r));
	CHECK_EQ_INT(mp_left(&r), 0);

	for (len = 0; len < b.len; len++) {
		uint8_t *q = exact(b.data, len);
		const uint8_t *p;
		size_t rlen;

		mp_reader_init(&r, q, len);
		CHECK(!mp_skip(&r));
		CHECK(!mp_ok(&r));
		CHECK(r.p <= r.end);

		mp_reader_init(&r, q, len);
		CHECK(!mp_read_raw(&r, &p, &rlen));
		CHECK(!mp_ok(&r));

		mp_reader_init(&r, q, len);
		CHECK(!read_sampler(&r));
		CHECK(!mp_ok(&r));
		CHECK(r.p <= r.end);
		free(q);
	}
	buf_free(&b);
	return 0;
}

/* A long string cut in its header and body. */
TEST(truncation_of_str32)
{
	static uint8_t src[70000];
	struct buf b = BUF_INIT;
	struct mp_writer w;
	static const size_t cuts[] = {0, 1, 2, 3, 4, 5, 6, 1000, 69999, 70004};
	size_t i;

	mp_writer_init(&w, &b);
	mp_put_str(&w, src, sizeof src);
	CHECK_EQ_INT(b.len, 70005);
	for (i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
		uint8_t *q = exact(b.data, cuts[i]);
		struct mp_reader r;
		const char *s;
		uint32_t n;

		mp_reader_init(&r, q, cuts[i]);
		CHECK(!mp_read_str(&r, &s, &n));
		CHECK(!mp_ok(&r));
		mp_reader_init(&r, q, cuts[i]);
		CHECK(!mp_skip(&r));
		free(q);
	}
	buf_free(&b);
	return 0;
}

/* ---- random bytes and mutations ------------------------------------------ */

/* Bytes that start interesting objects, to reach deeper than pure noise. */
static uint8_t interesting(void)
{
	static const uint8_t t[] = {0xdc, 0xdd, 0xde, 0xdf, 0x9f, 0x8f, 0xd9,
	                            0xda, 0xdb, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8,
	                            0xc9, 0xd4, 0xd8, 0xcb, 0xcf, 0xd3, 0xff,
	                            0x00, 0x7f, 0xc1, 0xc0, 0x91, 0x81, 0xa1};
	return t[rng_below(sizeof t)];
}

TEST(random_bytes_never_overread)
{
	uint8_t tmp[64];
	unsigned iter;

	rng_seed(12345);
	for (iter = 0; iter < 30000; iter++) {
		size_t len = rng_below(sizeof tmp + 1);
		size_t i;
		uint8_t *q;
		struct mp_reader r;
		const uint8_t *p;
		size_t rlen;

		for (i = 0; i < len; i++)
			tmp[i] = rng() & 1 ? interesting() : (uint8_t)rng();
		q = exact(tmp, len);
		mp_reader_init(&r, q, len);
		if (mp_read_raw(&r, &p, &rlen)) {
			CHECK(p == q);
			CHECK(rlen <= len);
			CHECK(rlen >= 1);
		} else {
			CHECK(!mp_ok(&r));
		}
		CHECK(r.p <= r.end);
		free(q);
	}
	return 0;
}

TEST(random_mutations_never_overread)
{
	struct buf b = BUF_INIT;
	struct mp_writer w;
	unsigned iter;

	mp_writer_init(&w, &b);
	put_sampler(&w);
	rng_seed(777);
	for (iter = 0; iter < 5000; iter++) {
		uint8_t *q = exact(b.data, b.len);
		size_t len = b.len;
		unsigned k;
		unsigned muts = 1 + (unsigned)rng_below(4);
		struct mp_reader r;

		for (k = 0; k < muts; k++) {
			size_t at = rng_below(len);
			q[at] = rng() & 1 ? interesting() : (uint8_t)rng();
		}
		if (rng() & 1)
			len = rng_below(len + 1);
		mp_reader_init(&r, q, len);
		(void)mp_skip(&r);
		CHECK(r.p <= r.end);
		mp_reader_init(&r, q, len);
		(void)read_sampler(&r);
		CHECK(r.p <= r.end);
		free(q);
	}
	buf_free(&b);
	return 0;
}

/* ---- proto_decode_req: valid requests ------------------------------------ */

static char errbuf[256];

/* Decodes from an exact heap copy; *copy must be freed after req. */
static int decode(const struct buf *b, struct proto_req *req, uint8_t **copy)
{
	*copy = exact(b->data, b->len);
	errbuf[0] = 0;
	return proto_decode_req(*copy, b->len, req, errbuf, sizeof errbuf);
}

TEST(proto_full_request)
{
	static uint8_t big[PROTO_MAX_KEY];
	struct buf b = BUF_INIT;
	struct mp_writer w;
	struct proto_req req;
	uint8_t *q;
	long live = live_blocks();

	fill(big, sizeof big, 9);
	mp_writer_init(&w, &b);
	mp_put_map(&w, 19);
	mp_put_key(&w, "id");
	mp_put_uint(&w, 42);
	mp_put_key(&w, "op");
	mp_put_uint(&w, PROTO_OP_RANGE);
	mp_put_key(&w, "k");
	mp_put_bin(&w, big, PROTO_MAX_KEY); /* the longest key */
	mp_put_key(&w, "e");
	mp_put_str(&w, "fop", 3); /* a str is accepted for bytes */
	mp_put_key(&w, "v");
	mp_put_bin(&w, "bar", 3);
	mp_put_key(&w, "l");
	mp_put_int(&w, 7);
	mp_put_key(&w, "rev");
	mp_put_int(&w, 3);
	mp_put_key(&w, "lim");
	mp_put_int(&w, 10);
	mp_put_key(&w, "pkv");
	mp_put_bool(&w, true);
	mp_put_key(&w, "ser");
	mp_put_bool(&w, true);
	mp_put_key(&w, "ko");
	mp_put_bool(&w, true);
	mp_put_key(&w, "co");
	mp_put_bool(&w, true);
	mp_put_key(&w, "cid");
	mp_put_uint(&w, UINT64_MAX);
	mp_put_key(&w, "seq");
	mp_put_uint(&w, 5);
	mp_put_key(&w, "ack");
	mp_put_uint(&w, 4);
	mp_put_key(&w, "ver");
	mp_put_uint(&w, PROTO_VERSION);
	mp_put_key(&w, "zz"); /* unknown keys are skipped */
	put_nested(&w, 1);
	mp_put_key(&w, "zf");
	msgpack_pack_double(&w.pk, 1.0);
	mp_put_key(&w, "ze");
	msgpack_pack_ext(&w.pk, 2, 3);
	msgpack_pack_ext_body(&w.pk, "ab", 2);

	CHECK_EQ_INT(decode(&b, &req, &q), 0);
	CHECK(req.id == 42);
	CHECK_EQ_INT(req.op, PROTO_OP_RANGE);
	CHECK_MEM(req.key, req.key_len, big, sizeof big);
	CHECK(req.key > q && req.key < q + b.len); /* points into the input */
	CHECK_MEM(req.end, req.end_len, "fop", 3);
	CHECK_MEM(req.value, req.value_len, "bar", 3);
	CHECK_EQ_INT(req.lease, 7);
	CHECK_EQ_INT(req.revision, 3);
	CHECK_EQ_INT(req.limit, 10);
	CHECK(req.prev_kv && req.serializable && req.keys_only &&
	      req.count_only);
	CHECK(req.client_id == UINT64_MAX);
	CHECK(req.seq == 5);
	CHECK(req.ack == 4);
	CHECK(req.version == PROTO_VERSION);
	CHECK(req.cmp == NULL && req.n_cmp == 0);
	CHECK(req.succ == NULL && req.n_succ == 0);
	CHECK(req.fail == NULL && req.n_fail == 0);
	proto_req_free(&req);
	free(q);
	buf_free(&b);

	/* Absent fields are zero. */
	mp_writer_init(&w, &b);
	mp_put_map(&w, 1);
	mp_put_key(&w, "op");
	mp_put_uint(&w, PROTO_OP_STATUS);
	CHECK_EQ_INT(decode(&b, &req, &q), 0);
	CHECK(req.id == 0 && req.op == PROTO_OP_STATUS && req.key == NULL &&
	      req.key_len == 0 && req.limit == 0 && !req.prev_kv);
	proto_req_free(&req);
	free(q);
	buf_free(&b);
	CHECK_EQ_INT(live_blocks(), live);
	return 0;
}

static void put_op(struct mp_writer *w, unsigned op, const char *k)
{
	mp_put_map(w, 2);
	mp_put_key(w, "op");
	mp_put_uint(w, op);
	mp_put_key(w, "k");
	mp_put_bin(w, k, strlen(k));
}

static void put_txn(struct buf *b)
{
	struct mp_writer w;

	buf_reset(b);
	mp_writer_init(&w, b);
	mp_put_map(&w, 7);
	mp_put_key(&w, "id");
	mp_put_uint(&w, 9);
	mp_put_key(&w, "op");
	mp_put_uint(&w, PROTO_OP_TXN);
	mp_put_key(&w, "cmp");
	mp_put_array(&w, 3);
	mp_put_map(&w, 4);
	mp_put_key(&w, "k");
	mp_put_bin(&w, "a", 1);
	mp_put_key(&w, "t");
	mp_put_uint(&w, CAIRN_CMP_VALUE);
	mp_put_key(&w, "r");
	mp_put_uint(&w, CAIRN_CMP_EQUAL);
	mp_put_key(&w, "v");
	mp_put_bin(&w, "x", 1);
	mp_put_map(&w, 5);
	mp_put_key(&w, "k");
	mp_put_bin(&w, "b", 1);
	mp_put_key(&w, "t");
	mp_put_uint(&w, CAIRN_CMP_VERSION);
	mp_put_key(&w, "r");
	mp_put_uint(&w, CAIRN_CMP_GREATER);
	mp_put_key(&w, "n");
	mp_put_int(&w, 2);
	mp_put_key(&w, "x?"); /* unknown compare key: skipped */
	mp_put_array(&w, 1);
	mp_put_nil(&w);
	mp_put_map(&w, 4);
	mp_put_key(&w, "k");
	mp_put_bin(&w, "c", 1);
	mp_put_key(&w, "t");
	mp_put_uint(&w, CAIRN_CMP_MOD);
	mp_put_key(&w, "r");
	mp_put_uint(&w, CAIRN_CMP_LESS);
	mp_put_key(&w, "n");
	mp_put_int(&w, -1);
	mp_put_key(&w, "s");
	mp_put_array(&w, 2);
	mp_put_map(&w, 4);
	mp_put_key(&w, "op");
	mp_put_uint(&w, PROTO_OP_PUT);
	mp_put_key(&w, "k");
	mp_put_bin(&w, "a", 1);
	mp_put_key(&w, "v");
	mp_put_bin(&w, "y", 1);
	mp_put_key(&w, "pkv");
	mp_put_bool(&w, true);
	mp_put_map(&w, 4);
	mp_put_key(&w, "op");
	mp_put_uint(&w, PROTO_OP_RANGE);
	mp_put_key(&w, "k");
	mp_put_bin(&w, "a", 1);
	mp_put_key(&w, "e");
	mp_put_bin(&w, "b", 1);
	mp_put_key(&w, "lim");
	mp_put_int(&w, 5);
	mp_put_key(&w, "f");
	mp_put_array(&w, 1);
	put_op(&w, PROTO_OP_DELETE, "z");
	mp_put_key(&w, "cid");
	mp_put_uint(&w, 77);
	mp_put_key(&w, "seq");
	mp_put_uint(&w, 3);
}

TEST(proto_txn)
{
	struct buf b = BUF_INIT;
	struct proto_req req;
	uint8_t *q;
	long live = live_blocks();

	put_txn(&b);
	CHECK_EQ_INT(decode(&b, &req, &q), 0);
	CHECK(req.id == 9);
	CHECK_EQ_INT(req.op, PROTO_OP_TXN);
	CHECK(req.client_id == 77 && req.seq == 3);
	CHECK_EQ_INT(req.n_cmp, 3);
	CHECK_MEM(req.cmp[0].key, req.cmp[0].key_len, "a", 1);
	CHECK_EQ_INT(req.cmp[0].target, CAIRN_CMP_VALUE);
	CHECK_EQ_INT(req.cmp[0].result, CAIRN_CMP_EQUAL);
	CHECK_MEM(req.cmp[0].value, req.cmp[0].value_len, "x", 1);
	CHECK_MEM(req.cmp[1].key, req.cmp[1].key_len, "b", 1);
	CHECK_EQ_INT(req.cmp[1].target, CAIRN_CMP_VERSION);
	CHECK_EQ_INT(req.cmp[1].result, CAIRN_CMP_GREATER);
	CHECK_EQ_INT(req.cmp[1].number, 2);
	CHECK_EQ_INT(req.cmp[2].target, CAIRN_CMP_MOD);
	CHECK_EQ_INT(req.cmp[2].result, CAIRN_CMP_LESS);
	CHECK_EQ_INT(req.cmp[2].number, -1);
	CHECK_EQ_INT(req.n_succ, 2);
	CHECK_EQ_INT(req.succ[0].op, PROTO_OP_PUT);
	CHECK_MEM(req.succ[0].key, req.succ[0].key_len, "a", 1);
	CHECK_MEM(req.succ[0].value, req.succ[0].value_len, "y", 1);
	CHECK(req.succ[0].prev_kv);
	CHECK_EQ_INT(req.succ[1].op, PROTO_OP_RANGE);
	CHECK_MEM(req.succ[1].end, req.succ[1].end_len, "b", 1);
	CHECK_EQ_INT(req.succ[1].limit, 5);
	CHECK_EQ_INT(req.n_fail, 1);
	CHECK_EQ_INT(req.fail[0].op, PROTO_OP_DELETE);
	CHECK_MEM(req.fail[0].key, req.fail[0].key_len, "z", 1);
	proto_req_free(&req);
	CHECK(req.cmp == NULL && req.succ == NULL && req.fail == NULL);
	proto_req_free(&req); /* twice is harmless */
	free(q);
	buf_free(&b);
	CHECK_EQ_INT(live_blocks(), live);
	return 0;
}

TEST(proto_op_table)
{
	CHECK(strcmp(proto_op_name(PROTO_OP_PUT), "PUT") == 0);
	CHECK(proto_op_name(PROTO_OP_MAX) == NULL);
	CHECK(proto_op_name(1000) == NULL);
	CHECK(proto_op_is_write(PROTO_OP_PUT));
	CHECK(proto_op_is_write(PROTO_OP_DELETE));
	CHECK(proto_op_is_write(PROTO_OP_TXN));
	CHECK(!proto_op_is_write(PROTO_OP_RANGE));
	CHECK(!proto_op_is_write(PROTO_OP_HELLO));
	CHECK(!proto_op_is_write(PROTO_OP_STATUS));
	CHECK(!proto_op_is_write(PROTO_OP_MAX));
	return 0;
}

/* ---- proto_decode_req: refusals ------------------------------------------ */

/* Expects decoding to fail with code; checks that nothing is left to free,
 * that the message is set and that nothing leaked. */
static int expect_refused(const struct buf *b, int code, uint64_t id)
{
	struct proto_req req;
	uint8_t *q;
	long live = live_blocks();
	int rv = decode(b, &req, &q);

	if (rv != code)
		printf("# decode returned %d (%s), expected %d\n", rv, errbuf,
		       code);
	CHECK_EQ_INT(rv, code);
	CHECK(errbuf[0] != 0);
	CHECK(req.id == id);
	CHECK(req.cmp == NULL && req.succ == NULL && req.fail == NULL);
	CHECK(req.n_cmp == 0 && req.n_succ == 0 && req.n_fail == 0);
	proto_req_free(&req);
	free(q);
	CHECK_EQ_INT(live_blocks(), live);
	return 0;
}

/* A request {id: 5, op: op, <key>: <one value>} built by the callback. */
typedef void (*put_fn)(struct mp_writer *w);

static void request_with(struct buf *b, unsigned op, const char *key, put_fn f)
{
	struct mp_writer w;

	buf_reset(b);
	mp_writer_init(&w, b);
	mp_put_map(&w, key ? 3 : 2);
	mp_put_key(&w, "id");
	mp_put_uint(&w, 5);
	mp_put_key(&w, "op");
	mp_put_uint(&w, op);
	if (key) {
		mp_put_key(&w, key);
		f(&w);
	}
}

static void v_str(struct mp_writer *w)
{
	mp_put_str(w, "x", 1);
}
static void v_int(struct mp_writer *w)
{
	mp_put_int(w, 3);
}
static void v_neg(struct mp_writer *w)
{
	mp_put_int(w, -1);
}
static void v_map(struct mp_writer *w)
{
	mp_put_map(w, 0);
}
static void v_nil(struct mp_writer *w)
{
	mp_put_nil(w);
}
static void v_bad(struct mp_writer *w)
{
	mp_put_raw(w, "\xc1", 1);
}
static void v_cut_array(struct mp_writer *w)
{
	mp_put_array(w, 3); /* and nothing after it */
}
static void v_big_key(struct mp_writer *w)
{
	static uint8_t big[PROTO_MAX_KEY + 1];
	mp_put_bin(w, big, sizeof big);
}
static void v_ok_key(struct mp_writer *w)
{
	static uint8_t big[PROTO_MAX_KEY];
	mp_put_bin(w, big, sizeof big);
}

TEST(proto_refuses_bad_fields)
{
	static const struct {
		const char *key;
		put_fn f;
		int code;
	} cases[] = {
	    {"id", v_str, CAIRN_EPROTO},       {"id", v_neg, CAIRN_EPROTO},
	    {"k", v_int, CAIRN_EPROTO},        {"k", v_nil, CAIRN_EPROTO},
	    {"e", v_map, CAIRN_EPROTO},        {"v", v_int, CAIRN_EPROTO},
	    {"l", v_str, CAIRN_EPROTO},        {"rev", v_str, CAIRN_EPROTO},
	    {"lim", v_str, CAIRN_EPROTO},      {"pkv", v_int, CAIRN_EPROTO},
	    {"ser", v_nil, CAIRN_EPROTO},      {"ko", v_str, CAIRN_EPROTO},
	    {"co", v_int, CAIRN_EPROTO},       {"cid", v_neg, CAIRN_EPROTO},
	    {"seq", v_str, CAIRN_EPROTO},      {"ack", v_neg, CAIRN_EPROTO},
	    {"ver", v_str, CAIRN_EPROTO},      {"cmp", v_map, CAIRN_EPROTO},
	    {"s", v_map, CAIRN_EPROTO},        {"f", v_int, CAIRN_EPROTO},
	    {"lim", v_neg, CAIRN_EINVAL},      {"rev", v_neg, CAIRN_EINVAL},
	    {"l", v_neg, CAIRN_EINVAL},        {"zz", v_bad, CAIRN_EPROTO},
	    {"zz", v_cut_array, CAIRN_EPROTO}, {"k", v_big_key, CAIRN_EINVAL},
	    {"e", v_big_key, CAIRN_EINVAL},
	};
	struct buf b = BUF_INIT;
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		request_with(&b, PROTO_OP_PUT, cases[i].key, cases[i].f);
		if (expect_refused(&b, cases[i].code, 5) != 0) {
			printf("# field case %zu (%s)\n", i, cases[i].key);
			return 1;
		}
	}
	/* The same keys with good values pass. */
	request_with(&b, PROTO_OP_PUT, "k", v_ok_key);
	{
		struct proto_req req;
		uint8_t *q;
		CHECK_EQ_INT(decode(&b, &req, &q), 0);
		CHECK_EQ_INT(req.key_len, PROTO_MAX_KEY);
		proto_req_free(&req);
		free(q);
	}
	buf_free(&b);
	return 0;
}

TEST(proto_refuses_bad_ops)
{
	struct buf b = BUF_INIT;
	struct mp_writer w;

	/* No op at all. */
	mp_writer_init(&w, &b);
	mp_put_map(&w, 2);
	mp_put_key(&w, "id");
	mp_put_uint(&w, 8);
	mp_put_key(&w, "k");
	mp_put_bin(&w, "a", 1);
	CHECK(expect_refused(&b, CAIRN_EPROTO, 8) == 0);
	CHECK(strstr(errbuf, "op") != NULL);

	/* Unknown op codes. */
	request_with(&b, PROTO_OP_MAX, NULL, NULL);
	CHECK(expect_refused(&b, CAIRN_EINVAL, 5) == 0);
	request_with(&b, 1000000, NULL, NULL);
	CHECK(expect_refused(&b, CAIRN_EINVAL, 5) == 0);

	/* Not a map, an empty input, a key that is not a string. */
	buf_reset(&b);
	mp_writer_init(&w, &b);
	mp_put_array(&w, 0);
	CHECK(expect_refused(&b, CAIRN_EPROTO, 0) == 0);
	buf_reset(&b);
	CHECK(expect_refused(&b, CAIRN_EPROTO, 0) == 0);
	mp_writer_init(&w, &b);
	mp_put_map(&w, 2);
	mp_put_key(&w, "id");
	mp_put_uint(&w, 4);
	mp_put_uint(&w, 1);
	mp_put_uint(&w, 1);
	CHECK(expect_refused(&b, CAIRN_EPROTO, 4) == 0);

	/* Trailing bytes after a good request. */
	request_with(&b, PROTO_OP_RANGE, NULL, NULL);
	mp_writer_init(&w, &b);
	mp_put_nil(&w);
	CHECK(expect_refused(&b, CAIRN_EPROTO, 5) == 0);
	CHECK(strstr(errbuf, "trailing") != NULL);

	/* A map that declares more pairs than it has. */
	buf_reset(&b);
	mp_writer_init(&w, &b);
	mp_put_map(&w, 3);
	mp_put_key(&w, "id");
	mp_put_uint(&w, 6);
	mp_put_key(&w, "op");
	mp_put_uint(&w, 1);
	CHECK(expect_refused(&b, CAIRN_EPROTO, 6) == 0);
	buf_free(&b);
	return 0;
}

/* A TXN whose compares or branches are written by f. */
static void txn_with(struct buf *b, void (*f)(struct mp_writer *, unsigned),
                     unsigned n)
{
	struct mp_writer w;

	buf_reset(b);
	mp_writer_init(&w, b);
	mp_put_map(&w, 3);
	mp_put_key(&w, "id");
	mp_put_uint(&w, 11);
	mp_put_key(&w, "op");
	mp_put_uint(&w, PROTO_OP_TXN);
	f(&w, n);
}

static void many_compares(struct mp_writer *w, unsigned n)
{
	unsigned i;

	mp_put_key(w, "cmp");
	mp_put_array(w, n);
	for (i = 0; i < n; i++) {
		mp_put_map(w, 1);
		mp_put_key(w, "k");
		mp_put_bin(w, "k", 1);
	}
}

static void many_succ(struct mp_writer *w, unsigned n)
{
	unsigned i;

	mp_put_key(w, "s");
	mp_put_array(w, n);
	for (i = 0; i < n; i++)
		put_op(w, PROTO_OP_PUT, "k");
}

static void many_fail(struct mp_writer *w, unsigned n)
{
	unsigned i;

	mp_put_key(w, "f");
	mp_put_array(w, n);
	for (i = 0; i < n; i++)
		put_op(w, PROTO_OP_RANGE, "k");
}

/* Branch ops that may not be there: n selects which. */
static void bad_branch(struct mp_writer *w, unsigned n)
{
	static uint8_t big[PROTO_MAX_KEY + 1];

	mp_put_key(w, n % 2 ? "f" : "s");
	mp_put_array(w, 2);
	put_op(w, PROTO_OP_PUT, "ok");
	switch (n / 2) {
	case 0: /* a nested transaction */
		mp_put_map(w, 2);
		mp_put_key(w, "op");
		mp_put_uint(w, PROTO_OP_TXN);
		mp_put_key(w, "s");
		mp_put_array(w, 1);
		put_op(w, PROTO_OP_PUT, "x");
		break;
	case 1: /* a transaction without branches, still nested */
		put_op(w, PROTO_OP_TXN, "x");
		break;
	case 2:
		put_op(w, PROTO_OP_STATUS, "x");
		break;
	case 3:
		put_op(w, PROTO_OP_HELLO, "x");
		break;
	case 4:
		put_op(w, PROTO_OP_MEMBERS, "x");
		break;
	case 5: /* compares inside a branch op */
		mp_put_map(w, 2);
		mp_put_key(w, "op");
		mp_put_uint(w, PROTO_OP_PUT);
		mp_put_key(w, "cmp");
		mp_put_array(w, 0);
		break;
	case 6: /* negative limit inside a branch op */
		mp_put_map(w, 2);
		mp_put_key(w, "op");
		mp_put_uint(w, PROTO_OP_RANGE);
		mp_put_key(w, "lim");
		mp_put_int(w, -3);
		break;
	case 7: /* key too long inside a branch op */
		mp_put_map(w, 2);
		mp_put_key(w, "op");
		mp_put_uint(w, PROTO_OP_PUT);
		mp_put_key(w, "k");
		mp_put_bin(w, big, sizeof big);
		break;
	default: /* branch op without op */
		mp_put_map(w, 1);
		mp_put_key(w, "k");
		mp_put_bin(w, "x", 1);
		break;
	}
}

static void bad_compare(struct mp_writer *w, unsigned n)
{
	static uint8_t big[PROTO_MAX_KEY + 1];

	mp_put_key(w, "cmp");
	mp_put_array(w, 1);
	mp_put_map(w, 1);
	switch (n) {
	case 0:
		mp_put_key(w, "t");
		mp_put_uint(w, CAIRN_CMP_MOD + 1);
		break;
	case 1:
		mp_put_key(w, "r");
		mp_put_uint(w, CAIRN_CMP_GREATER + 1);
		break;
	case 2:
		mp_put_key(w, "k");
		mp_put_bin(w, big, sizeof big);
		break;
	case 3:
		mp_put_key(w, "n");
		mp_put_str(w, "1", 1);
		break;
	case 4:
		mp_put_key(w, "t");
		mp_put_int(w, -1);
		break;
	default:
		mp_put_uint(w, 1); /* a key that is not a string */
		mp_put_uint(w, 1);
		break;
	}
}

TEST(proto_txn_limits)
{
	struct buf b = BUF_INIT;
	struct proto_req req;
	uint8_t *q;
	unsigned i;
	static const int branch_codes[] = {
	    CAIRN_EINVAL, CAIRN_EINVAL, CAIRN_EINVAL,
	    CAIRN_EINVAL, CAIRN_EINVAL, CAIRN_EINVAL,
	    CAIRN_EINVAL, CAIRN_EINVAL, CAIRN_EPROTO,
	};
	static const int cmp_codes[] = {CAIRN_EINVAL, CAIRN_EINVAL,
	                                CAIRN_EINVAL, CAIRN_EPROTO,
	                                CAIRN_EPROTO, CAIRN_EPROTO};

	/* Exactly the maximum passes. */
	txn_with(&b, many_compares, PROTO_MAX_TXN_OPS);
	CHECK_EQ_INT(decode(&b, &req, &q), 0);
	CHECK_EQ_INT(req.n_cmp, PROTO_MAX_TXN_OPS);
	proto_req_free(&req);
	free(q);
	txn_with(&b, many_succ, PROTO_MAX_TXN_OPS);
	CHECK_EQ_INT(decode(&b, &req, &q), 0);
	CHECK_EQ_INT(req.n_succ, PROTO_MAX_TXN_OPS);
	proto_req_free(&req);
	free(q);
	txn_with(&b, many_fail, PROTO_MAX_TXN_OPS);
	CHECK_EQ_INT(decode(&b, &req, &q), 0);
	CHECK_EQ_INT(req.n_fail, PROTO_MAX_TXN_OPS);
	proto_req_free(&req);
	free(q);

	/* One more does not. */
	txn_with(&b, many_compares, PROTO_MAX_TXN_OPS + 1);
	CHECK(expect_refused(&b, CAIRN_ETOOMANYOPS, 11) == 0);
	txn_with(&b, many_succ, PROTO_MAX_TXN_OPS + 1);
	CHECK(expect_refused(&b, CAIRN_ETOOMANYOPS, 11) == 0);
	txn_with(&b, many_fail, PROTO_MAX_TXN_OPS + 1);
	CHECK(expect_refused(&b, CAIRN_ETOOMANYOPS, 11) == 0);
	txn_with(&b, many_succ, 100000);
	CHECK(expect_refused(&b, CAIRN_ETOOMANYOPS, 11) == 0);

	for (i = 0; i < 2 * (sizeof branch_codes / sizeof branch_codes[0]);
	     i++) {
		txn_with(&b, bad_branch, i);
		if (expect_refused(&b, branch_codes[i / 2], 11) != 0) {
			printf("# bad branch case %u\n", i);
			return 1;
		}
	}
	for (i = 0; i < sizeof cmp_codes / sizeof cmp_codes[0]; i++) {
		txn_with(&b, bad_compare, i);
		if (expect_refused(&b, cmp_codes[i], 11) != 0) {
			printf("# bad compare case %u\n", i);
			return 1;
		}
	}
	buf_free(&b);
	return 0;
}

/* A field given twice must not leak what its first copy allocated. */
static void twice(struct mp_writer *w, unsigned which)
{
	mp_put_key(w, "x");
	mp_put_nil(w);
	switch (which) {
	case 0:
		many_compares(w, 2);
		many_compares(w, 3);
		break;
	case 1:
		many_succ(w, 2);
		many_succ(w, 3);
		break;
	default:
		many_fail(w, 2);
		many_fail(w, 3);
		break;
	}
}

static void txn_twice(struct buf *b, unsigned which)
{
	struct mp_writer w;

	buf_reset(b);
	mp_writer_init(&w, b);
	mp_put_map(&w, 5);
	mp_put_key(&w, "id");
	mp_put_uint(&w, 12);
	mp_put_key(&w, "op");
	mp_put_uint(&w, PROTO_OP_TXN);
	twice(&w, which);
}

TEST(proto_duplicate_fields_do_not_leak)
{
	struct buf b = BUF_INIT;
	unsigned which;

	for (which = 0; which < 3; which++) {
		struct proto_req req;
		uint8_t *q;
		long live;
		int rv;

		txn_twice(&b, which);
		live = live_blocks();
		rv = decode(&b, &req, &q);
		/* Refused, and what the first copy allocated is not leaked. */
		CHECK_EQ_INT(rv, CAIRN_EPROTO);
		CHECK(strstr(errbuf, "twice") != NULL);
		proto_req_free(&req);
		free(q);
		CHECK_EQ_INT(live_blocks(), live);
	}
	buf_free(&b);
	return 0;
}

TEST(proto_error_buffer_forms)
{
	struct buf b = BUF_INIT;
	struct proto_req req;
	char tiny[4];

	request_with(&b, PROTO_OP_MAX, NULL, NULL);
	CHECK_EQ_INT(proto_decode_req(b.data, b.len, &req, NULL, 0),
	             CAIRN_EINVAL);
	memset(tiny, 'x', sizeof tiny);
	CHECK_EQ_INT(proto_decode_req(b.data, b.len, &req, tiny, sizeof tiny),
	             CAIRN_EINVAL);
	CHECK_EQ_INT(tiny[3], 0);
	CHECK_EQ_INT(proto_decode_req(b.data, b.len, &req, tiny, 0),
	             CAIRN_EINVAL);
	buf_free(&b);
	return 0;
}

/* Every allocation of a decode fails in turn: ENOMEM, nothing leaked. */
TEST(proto_allocation_failures)
{
#ifdef NO_FAULTS
	printf("# skipped: allocation failures are not injected under ASan\n");
	return 0;
#else
	struct buf b = BUF_INIT;
	struct proto_req req;
	long k;
	int rv = CAIRN_ENOMEM;

	put_txn(&b);
	for (k = 0; rv == CAIRN_ENOMEM; k++) {
		long live = live_blocks();
		fault_countdown = k;
		rv = proto_decode_req(b.data, b.len, &req, errbuf,
		                      sizeof errbuf);
		fault_countdown = -1;
		if (rv == CAIRN_ENOMEM) {
			CHECK(req.cmp == NULL && req.succ == NULL &&
			      req.fail == NULL);
			CHECK_EQ_INT(live_blocks(), live);
		} else {
			CHECK_EQ_INT(rv, 0);
			proto_req_free(&req);
			CHECK_EQ_INT(live_blocks(), live);
		}
	}
	CHECK(k >= 3); /* compares and two branches */
	buf_free(&b);
	return 0;
#endif
}

/* ---- proto_decode_req: truncation and mutation --------------------------- */

static void put_put(struct buf *b)
{
	struct mp_writer w;

	buf_reset(b);
	mp_writer_init(&w, b);
	mp_put_map(&w, 8);
	mp_put_key(&w, "id");
	mp_put_uint(&w, 1234567);
	mp_put_key(&w, "op");
	mp_put_uint(&w, PROTO_OP_PUT);
	mp_put_key(&w, "k");
	mp_put_bin(&w, "some/key", 8);
	mp_put_key(&w, "v");
	mp_put_bin(&w, "some value bytes", 16);
	mp_put_key(&w, "pkv");
	mp_put_bool(&w, true);
	mp_put_key(&w, "cid");
	mp_put_uint(&w, 0xfeedface);
	mp_put_key(&w, "seq");
	mp_put_uint(&w, 300);
	mp_put_key(&w, "ack");
	mp_put_uint(&w, 299);
}

static void put_range(struct buf *b)
{
	struct mp_writer w;

	buf_reset(b);
	mp_writer_init(&w, b);
	mp_put_map(&w, 7);
	mp_put_key(&w, "id");
	mp_put_uint(&w, 2);
	mp_put_key(&w, "op");
	mp_put_uint(&w, PROTO_OP_RANGE);
	mp_put_key(&w, "k");
	mp_put_bin(&w, "\0", 1);
	mp_put_key(&w, "e");
	mp_put_bin(&w, "\0", 1);
	mp_put_key(&w, "lim");
	mp_put_int(&w, 1000);
	mp_put_key(&w, "rev");
	mp_put_int(&w, 70000);
	mp_put_key(&w, "ko");
	mp_put_bool(&w, false);
}

static bool known_code(int rv)
{
	return rv == 0 || rv == CAIRN_EPROTO || rv == CAIRN_EINVAL ||
	       rv == CAIRN_ETOOMANYOPS;
}

/* Structural checks on a request that decoded. */
static int check_decoded(const struct proto_req *req, const uint8_t *q,
                         size_t len)
{
	uint32_t i;

	CHECK(req->op < PROTO_OP_MAX);
	CHECK(req->limit >= 0 && req->revision >= 0 && req->lease >= 0);
	CHECK(req->key_len <= PROTO_MAX_KEY && req->end_len <= PROTO_MAX_KEY);
	if (req->key_len)
		CHECK(req->key >= q && req->key + req->key_len <= q + len);
	if (req->value_len)
		CHECK(req->value >= q &&
		      req->value + req->value_len <= q + len);
	CHECK(req->n_cmp <= PROTO_MAX_TXN_OPS);
	CHECK(req->n_succ <= PROTO_MAX_TXN_OPS);
	CHECK(req->n_fail <= PROTO_MAX_TXN_OPS);
	for (i = 0; i < req->n_succ; i++) {
		unsigned op = req->succ[i].op;
		CHECK(op == PROTO_OP_RANGE || op == PROTO_OP_PUT ||
		      op == PROTO_OP_DELETE);
		CHECK(req->succ[i].n_succ == 0 && req->succ[i].n_cmp == 0);
	}
	for (i = 0; i < req->n_fail; i++) {
		unsigned op = req->fail[i].op;
		CHECK(op == PROTO_OP_RANGE || op == PROTO_OP_PUT ||
		      op == PROTO_OP_DELETE);
	}
	for (i = 0; i < req->n_cmp; i++) {
		CHECK(req->cmp[i].target <= CAIRN_CMP_MOD);
		CHECK(req->cmp[i].result <= CAIRN_CMP_GREATER);
	}
	return 0;
}

TEST(proto_truncation_at_every_offset)
{
	void (*makers[])(struct buf *) = {put_txn, put_put, put_range};
	struct buf b = BUF_INIT;
	size_t m;

	for (m = 0; m < sizeof makers / sizeof makers[0]; m++) {
		size_t len;

		makers[m](&b);
		for (len = 0; len < b.len; len++) {
			struct proto_req req;
			long live = live_blocks();
			uint8_t *q = exact(b.data, len);
			int rv = proto_decode_req(q, len, &req, errbuf,
			                          sizeof errbuf);

			CHECK(rv == CAIRN_EPROTO || rv == CAIRN_EINVAL);
			CHECK(req.cmp == NULL && req.succ == NULL &&
			      req.fail == NULL);
			free(q);
			CHECK_EQ_INT(live_blocks(), live);
		}
	}
	buf_free(&b);
	return 0;
}

TEST(proto_random_mutations)
{
	void (*makers[])(struct buf *) = {put_txn, put_put, put_range};
	struct buf base[3] = {BUF_INIT, BUF_INIT, BUF_INIT};
	unsigned iter;
	unsigned decoded = 0;
	size_t m;

	for (m = 0; m < 3; m++)
		makers[m](&base[m]);
	rng_seed(20240601);
	for (iter = 0; iter < 30000; iter++) {
		const struct buf *src = &base[rng_below(3)];
		uint8_t tmp[512];
		size_t len = src->len;
		unsigned muts = 1 + (unsigned)rng_below(4);
		unsigned k;
		struct proto_req req;
		long live = live_blocks();
		uint8_t *q;
		int rv;

		memcpy(tmp, src->data, len);
		for (k = 0; k < muts; k++) {
			size_t at = rng_below(len);
			switch (rng_below(5)) {
			case 0:
				tmp[at] = (uint8_t)rng();
				break;
			case 1:
				tmp[at] = interesting();
				break;
			case 2:
				tmp[at] ^= (uint8_t)(1u << rng_below(8));
				break;
			case 3: /* drop a byte */
				memmove(tmp + at, tmp + at + 1, len - at - 1);
				len--;
				break;
			default: /* repeat a byte */
				if (len < sizeof tmp) {
					memmove(tmp + at + 1, tmp + at,
					        len - at);
					len++;
				}
				break;
			}
		}
		if (rng_below(4) == 0)
			len = rng_below(len + 1);
		q = exact(tmp, len);
		rv = proto_decode_req(q, len, &req, errbuf, sizeof errbuf);
		CHECK(known_code(rv));
		if (rv == 0) {
			decoded++;
			if (check_decoded(&req, q, len) != 0)
				return 1;
		} else {
			CHECK(req.cmp == NULL && req.succ == NULL &&
			      req.fail == NULL);
		}
		proto_req_free(&req);
		free(q);
		CHECK_EQ_INT(live_blocks(), live);
	}
	printf("# %u of 30000 mutated requests decoded\n", decoded);
	CHECK(decoded > 0); /* the mutations are not all fatal */
	for (m = 0; m < 3; m++)
		buf_free(&base[m]);
	return 0;
}

/* ---- frames in a buf ----------------------------------------------------- */

TEST(proto_frame_helpers)
{
	struct buf b = BUF_INIT;
	uint8_t len4[4];
	size_t off;

	proto_put_len(len4, 0x01020304);
	CHECK(len4[0] == 1 && len4[1] == 2 && len4[2] == 3 && len4[3] == 4);
	CHECK(proto_get_len(len4) == 0x01020304);
	proto_put_len(len4, UINT32_MAX);
	CHECK(proto_get_len(len4) == UINT32_MAX);

	buf_append(&b, "zz", 2);
	off = proto_frame_begin(&b);
	CHECK_EQ_INT(off, 2);
	buf_append(&b, "hello", 5);
	CHECK_EQ_INT(proto_frame_end(&b, off, 5), 0);
	CHECK_EQ_INT(proto_get_len(b.data + off), 5);
	CHECK_EQ_INT(b.len, 11);

	off = proto_frame_begin(&b);
	buf_append(&b, "toolong", 7);
	CHECK_EQ_INT(proto_frame_end(&b, off, 6), CAIRN_ETOOBIG);
	CHECK_EQ_INT(b.len, off); /* the frame is removed */
	CHECK_EQ_INT(proto_frame_end(&b, b.len + 1, 6), CAIRN_ENOMEM);
	buf_free(&b);
	return 0;
}

/* The writer encodes by itself: its bytes must be msgpack-c's, value by
 * value, at every boundary between two forms. */
TEST(writer_matches_msgpack_c)
{
	static const uint64_t edge_uints[] = {0, 1, 127, 128, 255, 256, 65535, 65536,
	                                 0xffffffffu, 0x100000000ull, UINT64_MAX};
	static const int64_t edge_ints[] = {-1, -32, -33, -128, -129, -32768, -32769,
	                               INT32_MIN, (int64_t)INT32_MIN - 1,
	                               INT64_MIN, 0, 5, INT64_MAX};
	static const size_t lens[] = {0, 1, 15, 16, 31, 32, 255, 256, 65535, 65536};
	static uint8_t body[65536];
	struct buf a = BUF_INIT, b = BUF_INIT;
	struct mp_writer wa, wb;
	size_t i;

	mp_writer_init(&wa, &a);
	mp_writer_init(&wb, &b);
	for (i = 0; i < sizeof edge_uints / sizeof edge_uints[0]; i++) {
		mp_put_uint(&wa, edge_uints[i]);
		msgpack_pack_uint64(&wb.pk, edge_uints[i]);
	}
	for (i = 0; i < sizeof edge_ints / sizeof edge_ints[0]; i++) {
		mp_put_int(&wa, edge_ints[i]);
		msgpack_pack_int64(&wb.pk, edge_ints[i]);
	}
	for (i = 0; i < sizeof lens / sizeof lens[0]; i++) {
		mp_put_str(&wa, body, lens[i]);
		msgpack_pack_str(&wb.pk, lens[i]);
		msgpack_pack_str_body(&wb.pk, body, lens[i]);
		mp_put_bin(&wa, body, lens[i]);
		msgpack_pack_bin(&wb.pk, lens[i]);
		msgpack_pack_bin_body(&wb.pk, body, lens[i]);
		mp_put_map(&wa, (uint32_t)lens[i]);
		msgpack_pack_map(&wb.pk, lens[i]);
		mp_put_array(&wa, (uint32_t)lens[i]);
		msgpack_pack_array(&wb.pk, lens[i]);
	}
	mp_put_bool(&wa, true);
	msgpack_pack_true(&wb.pk);
	mp_put_bool(&wa, false);
	msgpack_pack_false(&wb.pk);
	mp_put_nil(&wa);
	msgpack_pack_nil(&wb.pk);
	mp_put_key(&wa, "key");
	msgpack_pack_str(&wb.pk, 3);
	msgpack_pack_str_body(&wb.pk, "key", 3);
	CHECK(wa.err == 0 && wb.err == 0);
	CHECK_EQ_INT(a.len, b.len);
	CHECK(memcmp(a.data, b.data, a.len) == 0);
	buf_free(&a);
	buf_free(&b);
	return 0;
}

int main(void)
{
	static const struct test_case tests[] = {
	    T(uint_round_trip),
	    T(writer_matches_msgpack_c),
	    T(negative_int_round_trip),
	    T(signed_forms_of_positive_values),
	    T(nil_and_bool),
	    T(str_round_trip),
	    T(bin_round_trip),
	    T(key_is),
	    T(array_round_trip),
	    T(map_round_trip),
	    T(float_skip),
	    T(ext_skip),
	    T(open_close_patches_counts),
	    T(skip_and_raw_nested),
	    T(depth_limit),
	    T(hostile_container_counts),
	    T(hostile_string_lengths),
	    T(errors_are_sticky),
	    T(truncation_at_every_offset),
	    T(truncation_of_str32),
	    T(random_bytes_never_overread),
	    T(random_mutations_never_overread),
	    T(proto_full_request),
	    T(proto_txn),
	    T(proto_op_table),
	    T(proto_refuses_bad_fields),
	    T(proto_refuses_bad_ops),
	    T(proto_txn_limits),
	    T(proto_duplicate_fields_do_not_leak),
	    T(proto_error_buffer_forms),
	    T(proto_allocation_failures),
	    T(proto_truncation_at_every_offset),
	    T(proto_random_mutations),
	    T(proto_frame_helpers),
	};

	/* Not RUN_TESTS(): -Wpedantic refuses its ({ }). */
	return test_run(tests, sizeof tests / sizeof tests[0]);
}
