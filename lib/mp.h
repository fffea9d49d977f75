/*
 * mp: bounds-checked MessagePack reading from a buffer, and writing into a buf.
 *
 * Why not msgpack_unpack(): msgpack-c allocates an array or map's element table
 * from the count the input declares before it has seen the elements, so five
 * hostile bytes ask for 64 GiB. This reader allocates nothing: it walks the
 * bytes with a cursor, checks type and remaining size before every access, and
 * refuses nesting deeper than MP_MAX_DEPTH. Writing uses msgpack-c's packer.
 *
 * A failed read sets r->err (sticky) and returns false; callers may read a whole
 * structure and check mp_ok() once at the end.
 */
#ifndef CAIRN_MP_H
#define CAIRN_MP_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "buf.h"

#define MP_MAX_DEPTH 16

struct mp_reader {
	const uint8_t *p;
	const uint8_t *end;
	bool err;
};

enum mp_type {
	MP_NONE = 0, /* end of input or malformed */
	MP_NIL,
	MP_BOOL,
	MP_UINT,
	MP_INT, /* negative */
	MP_FLOAT,
	MP_STR,
	MP_BIN,
	MP_ARRAY,
	MP_MAP,
	MP_EXT,
};

void mp_reader_init(struct mp_reader *r, const void *data, size_t len);
static inline bool mp_ok(const struct mp_reader *r)
{
	return !r->err;
}
static inline size_t mp_left(const struct mp_reader *r)
{
	return (size_t)(r->end - r->p);
}

/* The type of the next object, without consuming it. */
enum mp_type mp_peek(const struct mp_reader *r);

/* Container headers: the count is checked against the bytes left (every element
 * takes at least one byte, a map pair two), so it can size an allocation. */
bool mp_read_map(struct mp_reader *r, uint32_t *n);
bool mp_read_array(struct mp_reader *r, uint32_t *n);
/* Strings and binaries, both accepted by either call; *p points into the input. */
bool mp_read_bytes(struct mp_reader *r, const uint8_t **p, uint32_t *len);
bool mp_read_str(struct mp_reader *r, const char **p, uint32_t *len);
bool mp_read_uint(struct mp_reader *r, uint64_t *v);
bool mp_read_int(struct mp_reader *r, int64_t *v);
bool mp_read_bool(struct mp_reader *r, bool *v);
bool mp_read_nil(struct mp_reader *r);
/* Skips one whole object, nested ones included. */
bool mp_skip(struct mp_reader *r);
/* The bytes of the next whole object, consumed. */
bool mp_read_raw(struct mp_reader *r, const uint8_t **p, size_t *len);
/* Compares a key just read with a literal. */
static inline bool mp_key_is(const char *k, uint32_t len, const char *lit, size_t lit_len)
{
	return len == lit_len && __builtin_memcmp(k, lit, len) == 0;
}
#define MP_KEY_IS(k, len, lit) mp_key_is((k), (len), (lit), sizeof(lit) - 1)

/*
 * Decoding with messages: a reader plus the first failure's code and a
 * message naming the field ("<what> '<field>': expected ..."). Every step
 * returns false once something failed, so decoders chain calls and check once.
 */
struct mp_dec {
	struct mp_reader r;
	const char *what; /* "field", "answer field"... */
	char *errbuf;
	size_t errlen;
	int err;
};

void mp_dec_init(struct mp_dec *d, const void *data, size_t len,
                 const char *what, char *errbuf, size_t errlen);
/* Records the failure (the first one wins) and returns false. */
bool mp_dec_fail(struct mp_dec *d, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
bool mp_dec_uint(struct mp_dec *d, const char *field, uint64_t *v);
bool mp_dec_int(struct mp_dec *d, const char *field, int64_t *v);
bool mp_dec_bool(struct mp_dec *d, const char *field, bool *v);
/* Bytes pointing into the input, at most max long (CAIRN_EINVAL beyond). */
bool mp_dec_bytes(struct mp_dec *d, const char *field, const uint8_t **p,
                  uint32_t *len, uint32_t max);

/* Writer: a msgpack packer appending to a buf. Allocation failures are sticky
 * in w->err (CAIRN_ENOMEM). */
struct mp_writer {
	msgpack_packer pk;
	struct buf *b;
	int err;
};

void mp_writer_init(struct mp_writer *w, struct buf *b);
void mp_put_map(struct mp_writer *w, uint32_t n);
void mp_put_array(struct mp_writer *w, uint32_t n);
void mp_put_str(struct mp_writer *w, const void *s, size_t len);
/* A string key; inline so that a literal's length is known at compile time. */
static inline void mp_put_key(struct mp_writer *w, const char *k)
{
	mp_put_str(w, k, strlen(k));
}
void mp_put_bin(struct mp_writer *w, const void *s, size_t len);
void mp_put_uint(struct mp_writer *w, uint64_t v);
void mp_put_int(struct mp_writer *w, int64_t v);
void mp_put_bool(struct mp_writer *w, bool v);
void mp_put_nil(struct mp_writer *w);
/* Appends bytes that already are one encoded object. */
void mp_put_raw(struct mp_writer *w, const void *p, size_t len);
/* A map or array whose count is not known yet: mp_open() writes a 32-bit
 * count placeholder and returns its place; mp_close() fills in n. */
size_t mp_open(struct mp_writer *w, bool map);
void mp_close(struct mp_writer *w, size_t at, uint32_t n);

#endif
