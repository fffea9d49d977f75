/* mp: bounds-checked MessagePack reader and buf-backed writer (see mp.h). */
#include "mp.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cairn.h"

void mp_reader_init(struct mp_reader *r, const void *data, size_t len)
{
	r->p = data;
	r->end = r->p + len;
	r->err = false;
}

static bool fail(struct mp_reader *r)
{
	r->err = true;
	return false;
}

static uint64_t be(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	unsigned i;

	for (i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

/* Reads n big-endian bytes after the type byte. */
static bool take(struct mp_reader *r, unsigned n, uint64_t *v)
{
	if (mp_left(r) < 1 + (size_t)n)
		return fail(r);
	*v = be(r->p + 1, n);
	r->p += 1 + n;
	return true;
}

enum mp_type mp_peek(const struct mp_reader *r)
{
	uint8_t c;

	if (r->err || r->p >= r->end)
		return MP_NONE;
	c = *r->p;
	if (c <= 0x7f || c == 0xcc || c == 0xcd || c == 0xce || c == 0xcf)
		return MP_UINT;
	if (c >= 0xe0 || c == 0xd0 || c == 0xd1 || c == 0xd2 || c == 0xd3)
		return MP_INT;
	if ((c & 0xf0) == 0x80 || c == 0xde || c == 0xdf)
		return MP_MAP;
	if ((c & 0xf0) == 0x90 || c == 0xdc || c == 0xdd)
		return MP_ARRAY;
	if ((c & 0xe0) == 0xa0 || c == 0xd9 || c == 0xda || c == 0xdb)
		return MP_STR;
	switch (c) {
	case 0xc0:
		return MP_NIL;
	case 0xc2:
	case 0xc3:
		return MP_BOOL;
	case 0xc4:
	case 0xc5:
	case 0xc6:
		return MP_BIN;
	case 0xca:
	case 0xcb:
		return MP_FLOAT;
	case 0xc7:
	case 0xc8:
	case 0xc9:
	case 0xd4:
	case 0xd5:
	case 0xd6:
	case 0xd7:
	case 0xd8:
		return MP_EXT;
	default:
		return MP_NONE; /* 0xc1 is never used */
	}
}

static bool container(struct mp_reader *r, bool map, uint32_t *n)
{
	uint8_t c;
	uint64_t v;

	if (r->err || r->p >= r->end)
		return fail(r);
	c = *r->p;
	if ((c & 0xf0) == (map ? 0x80 : 0x90)) {
		v = c & 0x0f;
		r->p++;
	} else if (c == (map ? 0xde : 0xdc)) {
		if (!take(r, 2, &v))
			return false;
	} else if (c == (map ? 0xdf : 0xdd)) {
		if (!take(r, 4, &v))
			return false;
	} else {
		return fail(r);
	}
	if (v > mp_left(r) / (map ? 2 : 1))
		return fail(r);
	*n = (uint32_t)v;
	return true;
}

bool mp_read_map(struct mp_reader *r, uint32_t *n)
{
	return container(r, true, n);
}

bool mp_read_array(struct mp_reader *r, uint32_t *n)
{
	return container(r, false, n);
}

bool mp_read_bytes(struct mp_reader *r, const uint8_t **p, uint32_t *len)
{
	uint8_t c;
	uint64_t v;

	if (r->err || r->p >= r->end)
		return fail(r);
	c = *r->p;
	if ((c & 0xe0) == 0xa0) {
		v = c & 0x1f;
		r->p++;
	} else if (c == 0xd9 || c == 0xc4) {
		if (!take(r, 1, &v))
			return false;
	} else if (c == 0xda || c == 0xc5) {
		if (!take(r, 2, &v))
			return false;
	} else if (c == 0xdb || c == 0xc6) {
		if (!take(r, 4, &v))
			return false;
	} else {
		return fail(r);
	}
	if (v > mp_left(r))
		return fail(r);
	*p = r->p;
	*len = (uint32_t)v;
	r->p += v;
	return true;
}

bool mp_read_str(struct mp_reader *r, const char **p, uint32_t *len)
{
	return mp_read_bytes(r, (const uint8_t **)p, len);
}

bool mp_read_int(struct mp_reader *r, int64_t *out)
{
	uint8_t c;
	uint64_t v;

	if (r->err || r->p >= r->end)
		return fail(r);
	c = *r->p;
	if (c <= 0x7f) {
		*out = c;
		r->p++;
		return true;
	}
	if (c >= 0xe0) {
		*out = (int8_t)c;
		r->p++;
		return true;
	}
	switch (c) {
	case 0xcc:
	case 0xcd:
	case 0xce:
	case 0xcf:
		if (!take(r, 1u << (c - 0xcc), &v))
			return false;
		if (v > INT64_MAX)
			return fail(r);
		*out = (int64_t)v;
		return true;
	case 0xd0:
		if (!take(r, 1, &v))
			return false;
		*out = (int8_t)v;
		return true;
	case 0xd1:
		if (!take(r, 2, &v))
			return false;
		*out = (int16_t)v;
		return true;
	case 0xd2:
		if (!take(r, 4, &v))
			return false;
		*out = (int32_t)v;
		return true;
	case 0xd3:
		if (!take(r, 8, &v))
			return false;
		*out = (int64_t)v;
		return true;
	default:
		return fail(r);
	}
}

bool mp_read_uint(struct mp_reader *r, uint64_t *out)
{
	uint8_t c;
	int64_t s;

	if (r->err || r->p >= r->end)
		return fail(r);
	c = *r->p;
	if (c >= 0xcc && c <= 0xcf)
		return take(r, 1u << (c - 0xcc), out);
	if (!mp_read_int(r, &s))
		return false;
	if (s < 0)
		return fail(r);
	*out = (uint64_t)s;
	return true;
}

bool mp_read_bool(struct mp_reader *r, bool *v)
{
	if (r->err || r->p >= r->end || (*r->p != 0xc2 && *r->p != 0xc3))
		return fail(r);
	*v = *r->p == 0xc3;
	r->p++;
	return true;
}

bool mp_read_nil(struct mp_reader *r)
{
	if (r->err || r->p >= r->end || *r->p != 0xc0)
		return fail(r);
	r->p++;
	return true;
}

static bool skip_ext(struct mp_reader *r)
{
	static const unsigned fixed[] = {1, 2, 4, 8, 16};
	uint8_t c = *r->p;
	uint64_t len;

	if (c >= 0xd4 && c <= 0xd8) {
		len = fixed[c - 0xd4];
		r->p++;
	} else if (!take(r, 1u << (c - 0xc7), &len)) {
		return false;
	}
	if (len + 1 > mp_left(r))
		return fail(r);
	r->p += len + 1;
	return true;
}

static bool skip(struct mp_reader *r, unsigned depth)
{
	const uint8_t *p;
	uint32_t n;
	uint32_t i;
	uint64_t u;
	int64_t s;
	bool b;

	/* Refuses containers nested more than MP_MAX_DEPTH deep. */
	if (depth >= MP_MAX_DEPTH &&
	    (mp_peek(r) == MP_ARRAY || mp_peek(r) == MP_MAP))
		return fail(r);
	switch (mp_peek(r)) {
	case MP_NIL:
		return mp_read_nil(r);
	case MP_BOOL:
		return mp_read_bool(r, &b);
	case MP_UINT:
		return mp_read_uint(r, &u);
	case MP_INT:
		return mp_read_int(r, &s);
	case MP_FLOAT:
		return take(r, *r->p == 0xca ? 4 : 8, &u);
	case MP_STR:
	case MP_BIN:
		return mp_read_bytes(r, &p, &n);
	case MP_EXT:
		return skip_ext(r);
	case MP_ARRAY:
		if (!mp_read_array(r, &n))
			return false;
		for (i = 0; i < n; i++)
			if (!skip(r, depth + 1))
				return false;
		return true;
	case MP_MAP:
		if (!mp_read_map(r, &n))
			return false;
		for (i = 0; i < n; i++)
			if (!skip(r, depth + 1) || !skip(r, depth + 1))
				return false;
		return true;
	default:
		return fail(r);
	}
}

bool mp_skip(struct mp_reader *r)
{
	return skip(r, 0);
}

bool mp_read_raw(struct mp_reader *r, const uint8_t **p, size_t *len)
{
	const uint8_t *start = r->p;

	if (!mp_skip(r))
		return false;
	*p = start;
	*len = (size_t)(r->p - start);
	return true;
}

static int writer_cb(void *data, const char *p, size_t len)
{
	struct mp_writer *w = data;

	if (w->err == 0 && buf_append(w->b, p, len) != 0)
		w->err = CAIRN_ENOMEM;
	return 0;
}

void mp_writer_init(struct mp_writer *w, struct buf *b)
{
	w->b = b;
	w->err = 0;
	msgpack_packer_init(&w->pk, w, writer_cb);
}

/*
 * The writer encodes directly into the buffer, one reservation per value:
 * msgpack-c's packer hands every header and body piece to a callback, which
 * cost a fifth of a member's CPU when it streams watch events. The encodings
 * are msgpack-c's (the smallest form of each value), so the bytes are the
 * same; the packer stays initialized for tests that write exotic types.
 */
static uint8_t *room(struct mp_writer *w, size_t n)
{
	if (w->err != 0)
		return NULL;
	if (buf_reserve(w->b, n) != 0) {
		w->err = CAIRN_ENOMEM;
		return NULL;
	}
	return w->b->data + w->b->len;
}

/* tag, then v as n big-endian bytes (n = 0 for a tag alone). */
static void put_head(struct mp_writer *w, uint8_t tag, uint64_t v, unsigned n)
{
	uint8_t *p = room(w, 1 + n);
	unsigned i;

	if (p == NULL)
		return;
	p[0] = tag;
	for (i = 0; i < n; i++)
		p[1 + i] = (uint8_t)(v >> (8 * (n - 1 - i)));
	w->b->len += 1 + n;
}

/* A container or string header: fix form below fix_max, else the 8-, 16- or
 * 32-bit form (tag8 0 when there is no 8-bit form). */
static void put_len(struct mp_writer *w, uint8_t fix, uint32_t fix_max,
                    uint8_t tag8, uint8_t tag16, uint8_t tag32, size_t n)
{
	if (n < fix_max)
		put_head(w, (uint8_t)(fix | n), 0, 0);
	else if (tag8 != 0 && n <= 0xff)
		put_head(w, tag8, n, 1);
	else if (n <= 0xffff)
		put_head(w, tag16, n, 2);
	else
		put_head(w, tag32, n, 4);
}

static void put_body(struct mp_writer *w, const void *s, size_t len)
{
	uint8_t *p;

	if (len == 0 || (p = room(w, len)) == NULL)
		return;
	memcpy(p, s, len);
	w->b->len += len;
}

void mp_put_map(struct mp_writer *w, uint32_t n)
{
	put_len(w, 0x80, 16, 0, 0xde, 0xdf, n);
}

void mp_put_array(struct mp_writer *w, uint32_t n)
{
	put_len(w, 0x90, 16, 0, 0xdc, 0xdd, n);
}

void mp_put_str(struct mp_writer *w, const void *s, size_t len)
{
	put_len(w, 0xa0, 32, 0xd9, 0xda, 0xdb, len);
	put_body(w, s, len);
}

void mp_put_bin(struct mp_writer *w, const void *s, size_t len)
{
	put_len(w, 0, 0, 0xc4, 0xc5, 0xc6, len);
	put_body(w, s, len);
}

void mp_put_uint(struct mp_writer *w, uint64_t v)
{
	if (v < 0x80)
		put_head(w, (uint8_t)v, 0, 0);
	else if (v <= 0xff)
		put_head(w, 0xcc, v, 1);
	else if (v <= 0xffff)
		put_head(w, 0xcd, v, 2);
	else if (v <= 0xffffffffu)
		put_head(w, 0xce, v, 4);
	else
		put_head(w, 0xcf, v, 8);
}

void mp_put_int(struct mp_writer *w, int64_t v)
{
	if (v >= 0)
		mp_put_uint(w, (uint64_t)v);
	else if (v >= -32)
		put_head(w, (uint8_t)v, 0, 0);
	else if (v >= INT8_MIN)
		put_head(w, 0xd0, (uint64_t)v, 1);
	else if (v >= INT16_MIN)
		put_head(w, 0xd1, (uint64_t)v, 2);
	else if (v >= INT32_MIN)
		put_head(w, 0xd2, (uint64_t)v, 4);
	else
		put_head(w, 0xd3, (uint64_t)v, 8);
}

void mp_put_bool(struct mp_writer *w, bool v)
{
	put_head(w, v ? 0xc3 : 0xc2, 0, 0);
}

void mp_put_nil(struct mp_writer *w)
{
	put_head(w, 0xc0, 0, 0);
}

void mp_put_raw(struct mp_writer *w, const void *p, size_t len)
{
	writer_cb(w, p, len);
}

size_t mp_open(struct mp_writer *w, bool map)
{
	static const uint8_t hdr[2][5] = {{0xdd, 0, 0, 0, 0}, {0xdf, 0, 0, 0, 0}};
	size_t at = w->b->len;

	writer_cb(w, (const char *)hdr[map], 5);
	return at;
}

void mp_close(struct mp_writer *w, size_t at, uint32_t n)
{
	uint8_t *p;

	if (w->err != 0 || w->b->len < at + 5)
		return;
	p = w->b->data + at + 1;
	p[0] = (uint8_t)(n >> 24);
	p[1] = (uint8_t)(n >> 16);
	p[2] = (uint8_t)(n >> 8);
	p[3] = (uint8_t)n;
}

void mp_dec_init(struct mp_dec *d, const void *data, size_t len,
                 const char *what, char *errbuf, size_t errlen)
{
	mp_reader_init(&d->r, data, len);
	d->what = what;
	d->errbuf = errbuf;
	d->errlen = errlen;
	d->err = 0;
}

bool mp_dec_fail(struct mp_dec *d, int code, const char *fmt, ...)
{
	va_list ap;

	if (d->err != 0)
		return false; /* the first message is the precise one */
	d->err = code;
	if (d->errbuf != NULL && d->errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(d->errbuf, d->errlen, fmt, ap);
		va_end(ap);
	}
	return false;
}

bool mp_dec_uint(struct mp_dec *d, const char *field, uint64_t *v)
{
	return mp_read_uint(&d->r, v) ||
	       mp_dec_fail(d, CAIRN_EPROTO,
	                   "%s '%s': expected an unsigned integer", d->what, field);
}

bool mp_dec_int(struct mp_dec *d, const char *field, int64_t *v)
{
	return mp_read_int(&d->r, v) ||
	       mp_dec_fail(d, CAIRN_EPROTO, "%s '%s': expected an integer",
	                   d->what, field);
}

bool mp_dec_bool(struct mp_dec *d, const char *field, bool *v)
{
	return mp_read_bool(&d->r, v) ||
	       mp_dec_fail(d, CAIRN_EPROTO, "%s '%s': expected a boolean",
	                   d->what, field);
}

bool mp_dec_bytes(struct mp_dec *d, const char *field, const uint8_t **p,
                  uint32_t *len, uint32_t max)
{
	if (!mp_read_bytes(&d->r, p, len))
		return mp_dec_fail(d, CAIRN_EPROTO, "%s '%s': expected bytes",
		                   d->what, field);
	if (*len > max)
		return mp_dec_fail(d, CAIRN_EINVAL, "%s '%s': %u bytes, at most %u",
		                   d->what, field, *len, max);
	return true;
}
