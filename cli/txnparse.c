/*
 * txnparse: the parser of etcdctl's transaction text (see txnparse.h).
 *
 * Each line is parsed on its own with a cursor over [s, end): compares by a
 * small grammar (target "(" key ")" operator value), operations by splitting
 * the line into tokens, then flags and positional arguments. Every string an
 * operation points to is decoded into its own allocation, kept in p->mem so
 * txnparse_free() releases them all; the compare and operation arrays grow
 * as lines come and are only tied into p->txn by txnparse_finish().
 */
#include "txnparse.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

#define MAX_TOKENS 16

struct oplist {
	struct cairn_op *ops;
	size_t n;
	size_t cap;
};

struct txnparse {
	enum txnparse_section section;
	unsigned line;
	int err;
	char errmsg[320];
	struct cairn_compare *cmp;
	size_t n_cmp;
	size_t cap_cmp;
	struct oplist branch[2]; /* success, failure */
	char **mem;
	size_t n_mem;
	size_t cap_mem;
	struct cairn_txn txn;
};

/* One token of a line: decoded bytes (NUL-terminated, owned by p->mem). */
struct tok {
	char *s;
	size_t len;
	bool quoted;
};

static int fail(struct txnparse *p, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct txnparse *p, int code, const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(p->errmsg, sizeof p->errmsg, "line %u: ", p->line);
	if (n < 0 || (size_t)n >= sizeof p->errmsg)
		n = 0;
	va_start(ap, fmt);
	vsnprintf(p->errmsg + n, sizeof p->errmsg - (size_t)n, fmt, ap);
	va_end(ap);
	p->err = code;
	return code;
}

static int nomem(struct txnparse *p)
{
	return fail(p, CAIRN_ENOMEM, "out of memory");
}

struct txnparse *txnparse_new(void)
{
	return calloc(1, sizeof(struct txnparse));
}

void txnparse_free(struct txnparse *p)
{
	size_t i;

	if (p == NULL)
		return;
	for (i = 0; i < p->n_mem; i++)
		free(p->mem[i]);
	free(p->mem);
	free(p->cmp);
	free(p->branch[0].ops);
	free(p->branch[1].ops);
	free(p);
}

const char *txnparse_error(const struct txnparse *p)
{
	return p->errmsg;
}

enum txnparse_section txnparse_section(const struct txnparse *p)
{
	return p->section;
}

/* Grows an array of n used elements to hold one more. */
static bool grow(void **arr, size_t *cap, size_t n, size_t size)
{
	size_t ncap;
	void *q;

	if (n < *cap)
		return true;
	ncap = *cap ? *cap * 2 : 8;
	q = realloc(*arr, ncap * size);
	if (q == NULL)
		return false;
	*arr = q;
	*cap = ncap;
	return true;
}

/* Takes ownership of s (freed on failure). */
static char *keep(struct txnparse *p, char *s)
{
	if (s == NULL ||
	    !grow((void **)&p->mem, &p->cap_mem, p->n_mem, sizeof *p->mem)) {
		free(s);
		return NULL;
	}
	p->mem[p->n_mem++] = s;
	return s;
}

/* ---- tokens -------------------------------------------------------------- */

static bool is_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n' ||
	       ch == '\v' || ch == '\f';
}

static const char *skip_space(const char *s, const char *end)
{
	while (s < end && is_space(*s))
		s++;
	return s;
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* n hex digits at s; -1 if they are not all there. */
static long hexnum(const char *s, const char *end, int n)
{
	long v = 0;
	int i;
	int d;

	if (end - s < n)
		return -1;
	for (i = 0; i < n; i++) {
		d = hexval(s[i]);
		if (d < 0)
			return -1;
		v = v * 16 + d;
	}
	return v;
}

static int put_utf8(struct buf *b, long cp)
{
	uint8_t u[4];
	size_t n;

	if (cp < 0x80) {
		u[0] = (uint8_t)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (uint8_t)(0xc0 | cp >> 6);
		u[1] = (uint8_t)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (uint8_t)(0xe0 | cp >> 12);
		u[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
		u[2] = (uint8_t)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		u[0] = (uint8_t)(0xf0 | cp >> 18);
		u[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3f));
		u[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
		u[3] = (uint8_t)(0x80 | (cp & 0x3f));
		n = 4;
	}
	return buf_append(b, u, n);
}

static char simple_escape(char ch)
{
	switch (ch) {
	case 'a':
		return '\a';
	case 'b':
		return '\b';
	case 'f':
		return '\f';
	case 'n':
		return '\n';
	case 'r':
		return '\r';
	case 't':
		return '\t';
	case 'v':
		return '\v';
	case '\\':
		return '\\';
	case '"':
		return '"';
	case '\'':
		return '\'';
	default:
		return 0;
	}
}

/* One escape after a backslash at *sp (pointing past it). */
static int unescape(struct txnparse *p, const char **sp, const char *end,
                    struct buf *b)
{
	const char *s = *sp;
	char ch = s < end ? *s : '\0';
	long v;
	int n;

	if (simple_escape(ch) != 0) {
		*sp = s + 1;
		ch = simple_escape(ch);
		return buf_append(b, &ch, 1) ? nomem(p) : 0;
	}
	if (ch >= '0' && ch <= '7') {
		if (end - s < 3 || s[1] < '0' || s[1] > '7' || s[2] < '0' ||
		    s[2] > '7' ||
		    (v = (s[0] - '0') * 64 + (s[1] - '0') * 8 + (s[2] - '0')) >
		        255)
			return fail(p, CAIRN_EINVAL,
			            "bad octal escape (\\ooo, at most \\377)");
		*sp = s + 3;
		ch = (char)v;
		return buf_append(b, &ch, 1) ? nomem(p) : 0;
	}
	n = ch == 'x' ? 2 : ch == 'u' ? 4 : ch == 'U' ? 8 : 0;
	if (n == 0)
		return fail(p, CAIRN_EINVAL, "unknown escape \\%c",
		            ch ? ch : ' ');
	v = hexnum(s + 1, end, n);
	if (v < 0 || (n > 2 && (v > 0x10ffff || (v >= 0xd800 && v < 0xe000))))
		return fail(p, CAIRN_EINVAL, "bad \\%c escape", ch);
	*sp = s + 1 + n;
	if (n == 2) {
		ch = (char)v;
		return buf_append(b, &ch, 1) ? nomem(p) : 0;
	}
	return put_utf8(b, v) ? nomem(p) : 0;
}

/* A quoted token starting at *sp (on the quote). */
static int quoted(struct txnparse *p, const char **sp, const char *end,
                  struct buf *b)
{
	const char *s = *sp;
	char q = *s++;
	int rv;

	while (s < end && *s != q) {
		if (*s == '\\' && q == '"') {
			s++;
			rv = unescape(p, &s, end, b);
			if (rv != 0)
				return rv;
			continue;
		}
		if (buf_append(b, s, 1) != 0)
			return nomem(p);
		s++;
	}
	if (s >= end)
		return fail(p, CAIRN_EINVAL, "missing closing %c", q);
	*sp = s + 1;
	return 0;
}

static bool is_quote(char ch)
{
	return ch == '"' || ch == '\'' || ch == '`';
}

/*
 * The token at *sp after blanks. Returns 1 with t filled, 0 at the end of the
 * line, or an error code. A bare word ends at a blank or at one of stops.
 */
static int next_token(struct txnparse *p, const char **sp, const char *end,
                      const char *stops, struct tok *t)
{
	struct buf b = BUF_INIT;
	const char *s = skip_space(*sp, end);
	int rv = 0;

	if (s >= end)
		return 0;
	t->quoted = is_quote(*s);
	if (t->quoted) {
		rv = quoted(p, &s, end, &b);
		if (rv == 0 && s < end && !is_space(*s) &&
		    strchr(stops, *s) == NULL)
			rv = fail(p, CAIRN_EINVAL,
			          "text right after a closing quote");
	} else {
		while (s < end && !is_space(*s) && strchr(stops, *s) == NULL)
			if (buf_append(&b, s++, 1) != 0)
				rv = nomem(p);
	}
	if (rv == 0 && buf_append(&b, "", 1) != 0)
		rv = nomem(p);
	if (rv != 0) {
		buf_free(&b);
		return rv;
	}
	t->len = b.len - 1;
	t->s = keep(p, (char *)buf_steal(&b, &b.len));
	if (t->s == NULL)
		return nomem(p);
	*sp = s;
	return 1;
}

/* ---- numbers ------------------------------------------------------------- */

static bool parse_int(const char *s, size_t len, int base, int64_t *v)
{
	char *endp;
	long long x;

	if (len == 0 || strlen(s) != len || is_space(s[0]) || s[0] == '+')
		return false;
	errno = 0;
	x = strtoll(s, &endp, base);
	if (errno != 0 || *endp != '\0')
		return false;
	*v = x;
	return true;
}

/* Lease ids are hex, as cairnctl prints them (and etcdctl), "0x" optional. */
static bool parse_lease(const char *s, size_t len, int64_t *v)
{
	if (len > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		return parse_int(s + 2, len - 2, 16, v) && *v > 0;
	return parse_int(s, len, 16, v) && *v > 0;
}

/* ---- compares ------------------------------------------------------------ */

static bool word_is(const char *s, size_t len, const char *w)
{
	return len == strlen(w) && memcmp(s, w, len) == 0;
}

static int cmp_target(struct txnparse *p, const char *s, size_t len)
{
	if (word_is(s, len, "value") || word_is(s, len, "val"))
		return CAIRN_CMP_VALUE;
	if (word_is(s, len, "version") || word_is(s, len, "ver"))
		return CAIRN_CMP_VERSION;
	if (word_is(s, len, "create") || word_is(s, len, "c"))
		return CAIRN_CMP_CREATE;
	if (word_is(s, len, "mod") || word_is(s, len, "m"))
		return CAIRN_CMP_MOD;
	if (word_is(s, len, "lease"))
		fail(p, CAIRN_EINVAL, "lease compares are not supported");
	else
		fail(p, CAIRN_EINVAL,
		     "malformed comparison: unknown target '%.*s' (value, "
		     "version, create or mod)",
		     (int)(len > 32 ? 32 : len), s);
	return -1;
}

static int cmp_result(struct txnparse *p, const char **sp, const char *end)
{
	const char *s = skip_space(*sp, end);
	const char *op = s;
	size_t n;

	while (s < end && strchr("=!<>", *s) != NULL)
		s++;
	n = (size_t)(s - op);
	*sp = s;
	if (word_is(op, n, "=") || word_is(op, n, "=="))
		return CAIRN_CMP_EQUAL;
	if (word_is(op, n, "!="))
		return CAIRN_CMP_NOT_EQUAL;
	if (word_is(op, n, "<"))
		return CAIRN_CMP_LESS;
	if (word_is(op, n, ">"))
		return CAIRN_CMP_GREATER;
	fail(p, CAIRN_EINVAL,
	     "malformed comparison: expected =, !=, < or > "
	     "after the key");
	return -1;
}

/* The key of a compare: ( "key" ). */
static int cmp_key(struct txnparse *p, const char **sp, const char *end,
                   struct tok *key)
{
	const char *s = skip_space(*sp, end);
	int rv;

	if (s >= end || *s != '(')
		return fail(p, CAIRN_EINVAL,
		            "malformed comparison: expected '(' "
		            "after the target");
	s = skip_space(s + 1, end);
	if (s >= end || !is_quote(*s))
		return fail(p, CAIRN_EINVAL,
		            "malformed comparison: the key must be quoted");
	rv = next_token(p, &s, end, ")", key);
	if (rv != 1)
		return rv != 0 ? rv : fail(p, CAIRN_EINVAL, "missing key");
	s = skip_space(s, end);
	if (s >= end || *s != ')')
		return fail(p, CAIRN_EINVAL,
		            "malformed comparison: expected ')' "
		            "after the key");
	*sp = s + 1;
	return 0;
}

static int cmp_value(struct txnparse *p, struct cairn_compare *c,
                     const struct tok *v)
{
	static const char *const names[] = {"value", "version", "create",
	                                    "mod"};

	if (c->target == CAIRN_CMP_VALUE) {
		c->value = v->s;
		c->value_len = v->len;
		return 0;
	}
	if (!parse_int(v->s, v->len, 10, &c->number))
		return fail(
		    p, CAIRN_EINVAL,
		    "malformed comparison: %s needs an integer, got \"%.*s\"",
		    names[c->target], (int)(v->len > 32 ? 32 : v->len), v->s);
	return 0;
}

static int parse_compare(struct txnparse *p, const char *s, const char *end)
{
	struct cairn_compare c = {0};
	struct tok key;
	struct tok val;
	const char *w = s;
	int rv;

	while (s < end && *s != '(' && !is_space(*s))
		s++;
	c.target = cmp_target(p, w, (size_t)(s - w));
	if (c.target < 0)
		return p->err;
	rv = cmp_key(p, &s, end, &key);
	if (rv != 0)
		return rv;
	c.key = key.s;
	c.key_len = key.len;
	c.result = cmp_result(p, &s, end);
	if (c.result < 0)
		return p->err;
	rv = next_token(p, &s, end, "", &val);
	if (rv != 1)
		return rv != 0
		           ? rv
		           : fail(p, CAIRN_EINVAL,
		                  "malformed comparison: missing the value");
	if (skip_space(s, end) != end)
		return fail(p, CAIRN_EINVAL,
		            "malformed comparison: text after "
		            "the value");
	rv = cmp_value(p, &c, &val);
	if (rv != 0)
		return rv;
	if (!grow((void **)&p->cmp, &p->cap_cmp, p->n_cmp, sizeof *p->cmp))
		return nomem(p);
	p->cmp[p->n_cmp++] = c;
	return 0;
}

/* ---- operations ---------------------------------------------------------- */

enum op_flag {
	F_PREFIX = 1 << 0,
	F_FROM_KEY = 1 << 1,
	F_PREV_KV = 1 << 2,
	F_KEYS_ONLY = 1 << 3,
	F_COUNT_ONLY = 1 << 4,
	F_LIMIT = 1 << 5, /* take a value */
	F_REV = 1 << 6,
	F_LEASE = 1 << 7,
};

static const struct {
	const char *name;
	int flag;
} op_flags[] = {
    {"prefix", F_PREFIX},
    {"from-key", F_FROM_KEY},
    {"prev-kv", F_PREV_KV},
    {"keys-only", F_KEYS_ONLY},
    {"count-only", F_COUNT_ONLY},
    {"limit", F_LIMIT},
    {"rev", F_REV},
    {"lease", F_LEASE},
};

#define VALUE_FLAGS (F_LIMIT | F_REV | F_LEASE)

/* What a parsed operation line holds before it becomes a cairn_op. */
struct opline {
	int type;
	int allowed;
	int flags;
	struct tok pos[3];
	size_t n_pos;
	int64_t limit;
	int64_t rev;
	int64_t lease;
};

static int flag_value(struct txnparse *p, struct opline *o, int flag,
                      const char *name, const struct tok *v)
{
	int64_t *dst = flag == F_LIMIT ? &o->limit
	               : flag == F_REV ? &o->rev
	                               : &o->lease;
	bool ok = flag == F_LEASE
	              ? parse_lease(v->s, v->len, dst)
	              : parse_int(v->s, v->len, 10, dst) && *dst >= 0;

	if (!ok)
		return fail(p, CAIRN_EINVAL, "--%s: bad value \"%.*s\"", name,
		            (int)(v->len > 32 ? 32 : v->len), v->s);
	return 0;
}

/* A "--name[=value]" token; the value may be the next token (*i moves). */
static int op_flag(struct txnparse *p, struct opline *o, struct tok *t,
                   size_t n, size_t *i)
{
	const char *name = t[*i].s + 2;
	const char *eq = strchr(name, '=');
	size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
	struct tok v;
	size_t k;

	for (k = 0; k < sizeof op_flags / sizeof op_flags[0]; k++)
		if (word_is(name, nlen, op_flags[k].name))
			break;
	if (k == sizeof op_flags / sizeof op_flags[0] ||
	    !(o->allowed & op_flags[k].flag))
		return fail(p, CAIRN_EINVAL,
		            "unknown flag --%.*s for this operation",
		            (int)(nlen > 32 ? 32 : nlen), name);
	o->flags |= op_flags[k].flag;
	if (!(op_flags[k].flag & VALUE_FLAGS))
		return eq ? fail(p, CAIRN_EINVAL, "--%s takes no value",
		                 op_flags[k].name)
		          : 0;
	if (eq != NULL) {
		v.s = (char *)(eq + 1);
		v.len = t[*i].len - (size_t)(eq + 1 - t[*i].s);
	} else if (*i + 1 < n) {
		v = t[++*i];
	} else {
		return fail(p, CAIRN_EINVAL, "--%s needs a value",
		            op_flags[k].name);
	}
	return flag_value(p, o, op_flags[k].flag, op_flags[k].name, &v);
}

static int op_command(struct txnparse *p, const struct tok *t, struct opline *o)
{
	if (!t->quoted && word_is(t->s, t->len, "put")) {
		o->type = CAIRN_OP_PUT;
		o->allowed = F_PREV_KV | F_LEASE;
	} else if (!t->quoted && word_is(t->s, t->len, "get")) {
		o->type = CAIRN_OP_RANGE;
		o->allowed = F_PREFIX | F_FROM_KEY | F_KEYS_ONLY |
		             F_COUNT_ONLY | F_LIMIT | F_REV;
	} else if (!t->quoted && (word_is(t->s, t->len, "del") ||
	                          word_is(t->s, t->len, "delete"))) {
		o->type = CAIRN_OP_DELETE;
		o->allowed = F_PREFIX | F_FROM_KEY | F_PREV_KV;
	} else {
		return fail(p, CAIRN_EINVAL,
		            "unknown operation \"%.*s\" (put, get or del)",
		            (int)(t->len > 32 ? 32 : t->len), t->s);
	}
	return 0;
}

static int split_op(struct txnparse *p, const char *s, const char *end,
                    struct opline *o)
{
	struct tok t[MAX_TOKENS];
	size_t n = 0;
	size_t i;
	int rv;

	while ((rv = next_token(p, &s, end, "", &t[n])) == 1)
		if (++n == MAX_TOKENS)
			return fail(p, CAIRN_EINVAL, "too many words");
	if (rv != 0)
		return rv;
	rv = op_command(p, &t[0], o);
	for (i = 1; rv == 0 && i < n; i++) {
		if (!t[i].quoted && t[i].len > 2 &&
		    memcmp(t[i].s, "--", 2) == 0)
			rv = op_flag(p, o, t, n, &i);
		else if (o->n_pos == 3)
			rv = fail(p, CAIRN_EINVAL, "too many arguments");
		else
			o->pos[o->n_pos++] = t[i];
	}
	return rv;
}

static int check_args(struct txnparse *p, const struct opline *o)
{
	bool ranged = o->flags & (F_PREFIX | F_FROM_KEY);

	if ((o->flags & F_PREFIX) && (o->flags & F_FROM_KEY))
		return fail(p, CAIRN_EINVAL,
		            "--prefix and --from-key exclude each "
		            "other");
	if (o->type == CAIRN_OP_PUT && o->n_pos != 2)
		return fail(p, CAIRN_EINVAL, "put needs a key and a value");
	if (o->type != CAIRN_OP_PUT && (o->n_pos < 1 || o->n_pos > 2))
		return fail(p, CAIRN_EINVAL,
		            "%s needs a key and an optional range "
		            "end",
		            o->type == CAIRN_OP_RANGE ? "get" : "del");
	if (ranged && o->n_pos > 1)
		return fail(p, CAIRN_EINVAL,
		            "no range end with --prefix or "
		            "--from-key");
	if (o->pos[0].len == 0 && !ranged)
		return fail(p, CAIRN_EINVAL, "the key is empty");
	return 0;
}

/* Key and end as etcdctl: an empty key with --prefix/--from-key is "\0". */
static int set_range(struct txnparse *p, const struct opline *o,
                     struct cairn_op *op)
{
	char *end;

	op->key = o->pos[0].s;
	op->key_len = o->pos[0].len;
	if (o->n_pos == 2 && o->type != CAIRN_OP_PUT) {
		op->end = o->pos[1].s;
		op->end_len = o->pos[1].len;
	}
	if (!(o->flags & (F_PREFIX | F_FROM_KEY)))
		return 0;
	if (op->key_len == 0) {
		op->key = "";
		op->key_len = 1; /* the NUL of "" */
		op->end = "";
		op->end_len = 1;
		return 0;
	}
	if (o->flags & F_FROM_KEY) {
		op->end = "";
		op->end_len = 1;
		return 0;
	}
	end = keep(p, malloc(op->key_len));
	if (end == NULL)
		return nomem(p);
	op->end_len = cairn_prefix_end(op->key, op->key_len, (uint8_t *)end);
	op->end = end;
	return 0;
}

static int parse_op(struct txnparse *p, const char *s, const char *end,
                    struct oplist *list)
{
	struct opline o;
	struct cairn_op op;
	int rv;

	memset(&o, 0, sizeof o);
	memset(&op, 0, sizeof op);
	rv = split_op(p, s, end, &o);
	if (rv == 0)
		rv = check_args(p, &o);
	if (rv == 0)
		rv = set_range(p, &o, &op);
	if (rv != 0)
		return rv;
	op.type = o.type;
	if (o.type == CAIRN_OP_PUT) {
		op.value = o.pos[1].s;
		op.value_len = o.pos[1].len;
	}
	op.lease = o.lease;
	op.limit = o.limit;
	op.revision = o.rev;
	op.prev_kv = o.flags & F_PREV_KV;
	op.keys_only = o.flags & F_KEYS_ONLY;
	op.count_only = o.flags & F_COUNT_ONLY;
	if (!grow((void **)&list->ops, &list->cap, list->n, sizeof *list->ops))
		return nomem(p);
	list->ops[list->n++] = op;
	return 0;
}

/* ---- lines --------------------------------------------------------------- */

int txnparse_line(struct txnparse *p, const char *line, size_t len)
{
	const char *end = line + len;
	const char *s = skip_space(line, end);

	if (p->err != 0)
		return p->err;
	p->line++;
	while (end > s && is_space(end[-1]))
		end--;
	if (s == end) {
		if (p->section != TXNPARSE_DONE)
			p->section++;
		return 0;
	}
	switch (p->section) {
	case TXNPARSE_COMPARES:
		return parse_compare(p, s, end);
	case TXNPARSE_SUCCESS:
		return parse_op(p, s, end, &p->branch[0]);
	case TXNPARSE_FAILURE:
		return parse_op(p, s, end, &p->branch[1]);
	default:
		return fail(p, CAIRN_EINVAL,
		            "text after the failure operations' blank line");
	}
}

int txnparse_text(struct txnparse *p, const char *text, size_t len)
{
	const char *end = text + len;
	const char *nl;
	int rv;

	while (text < end) {
		nl = memchr(text, '\n', (size_t)(end - text));
		if (nl == NULL)
			nl = end;
		rv = txnparse_line(p, text, (size_t)(nl - text));
		if (rv != 0)
			return rv;
		text = nl < end ? nl + 1 : end;
	}
	return 0;
}

int txnparse_finish(struct txnparse *p, const struct cairn_txn **out)
{
	*out = NULL;
	if (p->err != 0)
		return p->err;
	p->txn.compare = p->cmp;
	p->txn.n_compare = p->n_cmp;
	p->txn.success = p->branch[0].ops;
	p->txn.n_success = p->branch[0].n;
	p->txn.failure = p->branch[1].ops;
	p->txn.n_failure = p->branch[1].n;
	*out = &p->txn;
	return 0;
}
