/*
 * history: parsing the fault-injection history file (format in history.h).
 *
 * One pass over the text, line by line. A line is split into at most
 * MAX_FIELDS fields on single spaces, every byte checked against the token
 * alphabet first, so later code only sees well-formed fields; the record kind
 * picks a handler from a table. Strings are interned in an open-addressing
 * table over one pool, which keeps the records small and makes equal tokens
 * equal ids (the checkers compare values by id). When the text ends, the
 * value index (writer) is built, and a value written twice is an error.
 *
 * Failure modes: malformed input (a message naming the line, parsing stops),
 * running out of memory ("out of memory" naming the line reached). Nothing is
 * kept from a failed parse.
 */
#include "history.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FIELDS 16
#define MAX_FILE ((size_t)1 << 32) /* 4 GiB: offsets are uint32 */

struct field {
	const char *s;
	size_t len;
};

struct parser {
	struct history *h;
	uint32_t line;
	char *err;
	size_t errlen;
	struct field f[MAX_FIELDS];
	size_t nf;
	/* 1 + index of the watch or member named by a hist_str, or 0 */
	uint32_t *watch_of;
	uint32_t *member_of;
	size_t of_len;
};

static int fail(struct parser *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int fail(struct parser *p, const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(p->err, p->errlen, "%s:%" PRIu32 ": ", p->h->name,
	             p->line);
	if (n < 0 || (size_t)n >= p->errlen)
		return -1;
	va_start(ap, fmt);
	vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

static int nomem(struct parser *p)
{
	return fail(p, "out of memory");
}

/* Makes room for one more element of size bytes in *arr (of *cap). */
static bool grow(void **arr, size_t *cap, size_t n, size_t size)
{
	size_t c;
	void *q;

	if (n < *cap)
		return true;
	c = *cap ? *cap * 2 : 16;
	if (c > SIZE_MAX / size)
		return false;
	q = realloc(*arr, c * size);
	if (q == NULL)
		return false;
	*arr = q;
	*cap = c;
	return true;
}

/* ---- strings ------------------------------------------------------------- */

static uint64_t hash_bytes(const char *s, size_t len)
{
	uint64_t x = 0xcbf29ce484222325ULL;
	size_t i;

	for (i = 0; i < len; i++) {
		x ^= (unsigned char)s[i];
		x *= 0x100000001b3ULL;
	}
	return x;
}

const char *history_str(const struct history *h, hist_str s)
{
	if (s >= h->nstrs)
		return "?";
	return h->pool + h->offs[s];
}

static bool str_is(const struct history *h, hist_str id, const char *s,
                   size_t len)
{
	const char *t = h->pool + h->offs[id];

	return strncmp(t, s, len) == 0 && t[len] == '\0';
}

/* Doubles the slot table; every slot holds 1 + a string id, or 0. */
static bool rehash(struct history *h)
{
	size_t n = h->nslots ? h->nslots * 2 : 1024;
	uint32_t *slots = calloc(n, sizeof(*slots));
	uint32_t id;

	if (slots == NULL)
		return false;
	for (id = 0; id < h->nstrs; id++) {
		const char *s = h->pool + h->offs[id];
		size_t i = hash_bytes(s, strlen(s)) & (n - 1);

		while (slots[i] != 0)
			i = (i + 1) & (n - 1);
		slots[i] = id + 1;
	}
	free(h->slots);
	h->slots = slots;
	h->nslots = n;
	return true;
}

static bool add_str(struct history *h, const char *s, size_t len, size_t slot)
{
	size_t need = h->pool_len + len + 1;
	char *pool;

	if (need > MAX_FILE || h->nstrs == UINT32_MAX)
		return false;
	if (need > h->pool_cap) {
		size_t c = h->pool_cap ? h->pool_cap : 4096;

		while (c < need)
			c *= 2;
		pool = realloc(h->pool, c);
		if (pool == NULL)
			return false;
		h->pool = pool;
		h->pool_cap = c;
	}
	if (!grow((void **)&h->offs, &h->offs_cap, h->nstrs, sizeof(*h->offs)))
		return false;
	memcpy(h->pool + h->pool_len, s, len);
	h->pool[h->pool_len + len] = '\0';
	h->offs[h->nstrs] = (uint32_t)h->pool_len;
	h->pool_len = need;
	h->slots[slot] = ++h->nstrs;
	return true;
}

/* The id of the token s (added if new). False when out of memory. */
static bool intern(struct history *h, const char *s, size_t len, hist_str *out)
{
	size_t i;

	if ((h->nstrs + 1) * 2 > h->nslots && !rehash(h))
		return false;
	i = hash_bytes(s, len) & (h->nslots - 1);
	while (h->slots[i] != 0) {
		if (str_is(h, h->slots[i] - 1, s, len)) {
			*out = h->slots[i] - 1;
			return true;
		}
		i = (i + 1) & (h->nslots - 1);
	}
	if (!add_str(h, s, len, i))
		return false;
	*out = h->nstrs - 1;
	return true;
}

bool history_has_prefix(const struct history *h, hist_str key, hist_str prefix)
{
	const char *p;

	if (prefix == HIST_NONE)
		return true;
	p = history_str(h, prefix);
	return strncmp(history_str(h, key), p, strlen(p)) == 0;
}

/* ---- fields -------------------------------------------------------------- */

static bool is_token_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '/' || c == '.' ||
	       c == ':' || c == '-';
}

/* Splits a line into p->f; every field non-empty, of token characters or '='
 * (which only results use; see token()). */
static int split(struct parser *p, const char *s, size_t len)
{
	size_t i = 0;

	p->nf = 0;
	while (i <= len) {
		size_t start = i;

		while (i < len && s[i] != ' ') {
			unsigned char c = (unsigned char)s[i];

			if (!is_token_char(c) && c != '=')
				return fail(p,
				            "invalid byte 0x%02x in field %zu",
				            c, p->nf + 1);
			i++;
		}
		if (i == start)
			return fail(p,
			            "empty field %zu (fields are separated "
			            "by single spaces)",
			            p->nf + 1);
		if (p->nf == MAX_FIELDS)
			return fail(p, "more than %d fields", MAX_FIELDS);
		p->f[p->nf].s = s + start;
		p->f[p->nf].len = i - start;
		p->nf++;
		i++;
	}
	return 0;
}

static bool field_is(const struct field *f, const char *w)
{
	return f->len == strlen(w) && memcmp(f->s, w, f->len) == 0;
}

/* Field i as a token (no '='); "-" gives HIST_NONE. */
static int token(struct parser *p, size_t i, const char *what, hist_str *out)
{
	const struct field *f = &p->f[i];

	if (memchr(f->s, '=', f->len) != NULL)
		return fail(p, "'=' in %s \"%.*s\"", what, (int)f->len, f->s);
	if (!intern(p->h, f->s, f->len, out))
		return nomem(p);
	return 0;
}

/* Field i as a token that must not be "-". */
static int some_token(struct parser *p, size_t i, const char *what,
                      hist_str *out)
{
	if (token(p, i, what, out) != 0)
		return -1;
	if (*out == HIST_NONE)
		return fail(p, "%s must not be \"-\"", what);
	return 0;
}

static bool parse_u64(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (len == 0 || len > 20)
		return false;
	for (i = 0; i < len; i++) {
		unsigned d = (unsigned)(s[i] - '0');

		if (d > 9 || v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

static int number(struct parser *p, size_t i, const char *what, uint64_t *out)
{
	const struct field *f = &p->f[i];

	if (!parse_u64(f->s, f->len, out))
		return fail(p, "%s \"%.*s\" is not a decimal uint64", what,
		            (int)f->len, f->s);
	return 0;
}

/* Checks the field count is within [lo, hi]. */
static int arity(struct parser *p, size_t lo, size_t hi, const char *shape)
{
	if (p->nf < lo || p->nf > hi)
		return fail(p, "expected \"%s\" (%zu fields, not %zu)", shape,
		            lo, p->nf);
	return 0;
}

/* ---- op records ---------------------------------------------------------- */

enum result { R_VAL, R_MODREV, R_REV, R_SUCCEEDED, R_DELETED, R_NONE };

static const char *const result_names[] = {"val", "modrev", "rev", "succeeded",
                                           "deleted"};

/* Each type: the arguments after KEY and the results an ok op carries. */
static const struct {
	const char *name;
	size_t nargs;
	enum result results[3];
	const char *shape;
} types[] = {
    [HIST_PUT] = {"put", 1, {R_REV, R_NONE, R_NONE}, "put KEY VALUE [rev=R]"},
    [HIST_GET] = {"get",
                  0,
                  {R_VAL, R_MODREV, R_REV},
                  "get KEY [val=V modrev=M rev=R]"},
    [HIST_CAS] = {"cas",
                  2,
                  {R_SUCCEEDED, R_REV, R_NONE},
                  "cas KEY EXPECT NEW [succeeded=0|1 rev=R]"},
    [HIST_DEL] = {"del",
                  0,
                  {R_DELETED, R_REV, R_NONE},
                  "del KEY [deleted=0|1 rev=R]"},
};

static const char *const status_names[] = {"ok", "fail", "unknown"};

const char *history_status_name(int status)
{
	if (status < 0 || status > HIST_UNKNOWN)
		return "?";
	return status_names[status];
}

const char *history_type_name(int type)
{
	if (type < 0 || type > HIST_DEL)
		return "?";
	return types[type].name;
}

static size_t nresults(int type)
{
	size_t n = 0;

	while (n < 3 && types[type].results[n] != R_NONE)
		n++;
	return n;
}

static int lookup(const struct field *f, const char *const *names, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (field_is(f, names[i]))
			return i;
	return -1;
}

/* Sets one "name=value" result; seen is a bit set of results already set. */
static int set_result(struct parser *p, struct hist_op *op, size_t i,
                      unsigned *seen)
{
	const struct field *f = &p->f[i];
	const char *eq = memchr(f->s, '=', f->len);
	struct field name, val;
	size_t j;
	int r = -1;

	if (eq == NULL)
		return fail(p, "op: result \"%.*s\" is not name=value",
		            (int)f->len, f->s);
	name.s = f->s;
	name.len = (size_t)(eq - f->s);
	val.s = eq + 1;
	val.len = f->len - name.len - 1;
	for (j = 0; j < nresults(op->type); j++)
		if (field_is(&name, result_names[types[op->type].results[j]]))
			r = (int)types[op->type].results[j];
	if (r < 0)
		return fail(p, "op: %s has no result \"%.*s\"",
		            types[op->type].name, (int)name.len, name.s);
	if (*seen & (1u << r))
		return fail(p, "op: result %s given twice", result_names[r]);
	*seen |= 1u << r;
	if (val.len == 0)
		return fail(p, "op: result %s is empty", result_names[r]);
	p->f[i] = val; /* so token() and number() see the value alone */
	switch (r) {
	case R_VAL:
		return token(p, i, "val", &op->read);
	case R_MODREV:
		return number(p, i, "modrev", &op->modrev);
	case R_REV:
		return number(p, i, "rev", &op->rev);
	default:
		if (!field_is(&val, "0") && !field_is(&val, "1"))
			return fail(p, "op: %s must be 0 or 1",
			            result_names[r]);
		op->flag = val.s[0] == '1';
		return 0;
	}
}

static int op_results(struct parser *p, struct hist_op *op, size_t first)
{
	unsigned seen = 0;
	size_t i;

	if (op->status != HIST_OK) {
		if (p->nf > first)
			return fail(p, "op: a%s %s op has no results",
			            op->status == HIST_FAIL ? "" : "n",
			            status_names[op->status]);
		return 0;
	}
	if (p->nf != first + nresults(op->type))
		return fail(p, "op: expected \"%s\"", types[op->type].shape);
	for (i = first; i < p->nf; i++)
		if (set_result(p, op, i, &seen) != 0)
			return -1;
	if (op->type == HIST_GET &&
	    (op->read == HIST_NONE) != (op->modrev == 0))
		return fail(p, "op: get: val=- goes with modrev=0 and only "
		               "with it");
	return 0;
}

static int op_times(struct parser *p, struct hist_op *op)
{
	uint64_t ignored;

	if (number(p, 2, "T_INVOKE", &op->invoke) != 0)
		return -1;
	if (op->status == HIST_UNKNOWN) {
		op->complete = HIST_NEVER;
		if (field_is(&p->f[3], "-"))
			return 0;
		return number(p, 3, "T_COMPLETE", &ignored);
	}
	if (number(p, 3, "T_COMPLETE", &op->complete) != 0)
		return -1;
	if (op->complete < op->invoke)
		return fail(p,
		            "op: completes (%" PRIu64 ") before it is "
		            "invoked (%" PRIu64 ")",
		            op->complete, op->invoke);
	return 0;
}

static int op_args(struct parser *p, struct hist_op *op)
{
	if (some_token(p, 6, "KEY", &op->key) != 0)
		return -1;
	switch (op->type) {
	case HIST_PUT:
		return some_token(p, 7, "VALUE", &op->value);
	case HIST_CAS:
		if (token(p, 7, "EXPECT", &op->expect) != 0)
			return -1;
		return some_token(p, 8, "NEW", &op->value);
	default:
		return 0;
	}
}

static int rec_op(struct parser *p)
{
	struct history *h = p->h;
	struct hist_op op;
	int i;

	memset(&op, 0, sizeof(op));
	op.line = p->line;
	if (p->nf < 7)
		return fail(p, "expected \"op PROC T_INVOKE T_COMPLETE STATUS "
		               "TYPE KEY [ARGS...] [RESULTS...]\"");
	i = lookup(&p->f[4], status_names, 3);
	if (i < 0)
		return fail(p, "op: STATUS must be ok, fail or unknown");
	op.status = (uint8_t)i;
	for (i = 0; i <= HIST_DEL; i++)
		if (field_is(&p->f[5], types[i].name))
			break;
	if (i > HIST_DEL)
		return fail(p, "op: TYPE must be put, get, cas or del");
	op.type = (uint8_t)i;
	if (p->nf < 7 + types[i].nargs)
		return fail(p, "op: expected \"%s\"", types[i].shape);
	if (some_token(p, 1, "PROC", &op.proc) != 0 || op_times(p, &op) != 0 ||
	    op_args(p, &op) != 0 || op_results(p, &op, 7 + types[i].nargs) != 0)
		return -1;
	if (!grow((void **)&h->ops, &h->ops_cap, h->nops, sizeof(op)))
		return nomem(p);
	h->ops[h->nops++] = op;
	return 0;
}

/* ---- watch and reference records ----------------------------------------- */

/* Makes the name maps cover every string id. */
static int cover_names(struct parser *p)
{
	size_t n = p->h->nstrs;
	uint32_t *w, *m;

	if (n <= p->of_len)
		return 0;
	n = n < 1024 ? 1024 : n * 2;
	w = realloc(p->watch_of, n * sizeof(*w));
	if (w == NULL)
		return nomem(p);
	p->watch_of = w;
	m = realloc(p->member_of, n * sizeof(*m));
	if (m == NULL)
		return nomem(p);
	p->member_of = m;
	memset(w + p->of_len, 0, (n - p->of_len) * sizeof(*w));
	memset(m + p->of_len, 0, (n - p->of_len) * sizeof(*m));
	p->of_len = n;
	return 0;
}

/* The watcher named by field 1, which must have been started. */
static int find_watch(struct parser *p, struct hist_watch **out)
{
	hist_str name;

	if (some_token(p, 1, "W", &name) != 0 || cover_names(p) != 0)
		return -1;
	if (p->watch_of[name] == 0)
		return fail(p, "watcher %s was not started",
		            history_str(p->h, name));
	*out = &p->h->watches[p->watch_of[name] - 1];
	return 0;
}

static int watch_start(struct parser *p)
{
	struct history *h = p->h;
	struct hist_watch w;

	memset(&w, 0, sizeof(w));
	w.line = p->line;
	if (arity(p, 5, 5, "watch W start PREFIX FROM_REV") != 0 ||
	    some_token(p, 1, "W", &w.name) != 0 ||
	    token(p, 3, "PREFIX", &w.prefix) != 0 ||
	    number(p, 4, "FROM_REV", &w.from) != 0 || cover_names(p) != 0)
		return -1;
	if (p->watch_of[w.name] != 0)
		return fail(
		    p, "watcher %s started twice (first at line %" PRIu32 ")",
		    history_str(h, w.name),
		    h->watches[p->watch_of[w.name] - 1].line);
	if (!grow((void **)&h->watches, &h->watches_cap, h->nwatches,
	          sizeof(w)))
		return nomem(p);
	h->watches[h->nwatches++] = w;
	p->watch_of[w.name] = (uint32_t)h->nwatches;
	return 0;
}

static int watch_end(struct parser *p)
{
	struct hist_watch *w;

	if (arity(p, 4, 4, "watch W end END_REV") != 0 ||
	    find_watch(p, &w) != 0)
		return -1;
	if (w->end_line != 0)
		return fail(
		    p, "watcher %s ended twice (first at line %" PRIu32 ")",
		    history_str(p->h, w->name), w->end_line);
	if (number(p, 3, "END_REV", &w->end) != 0)
		return -1;
	w->end_line = p->line;
	return 0;
}

static int rec_watch(struct parser *p)
{
	if (p->nf >= 3 && field_is(&p->f[2], "start"))
		return watch_start(p);
	if (p->nf >= 3 && field_is(&p->f[2], "end"))
		return watch_end(p);
	return fail(p, "expected \"watch W start PREFIX FROM_REV\" or "
	               "\"watch W end END_REV\"");
}

/* Fields i (put|del) and i + 1 (VALUE or "-") of an event or ref. */
static int change(struct parser *p, size_t i, bool *del, hist_str *value)
{
	if (field_is(&p->f[i], "put")) {
		*del = false;
		return some_token(p, i + 1, "VALUE", value);
	}
	if (!field_is(&p->f[i], "del"))
		return fail(p, "expected put or del, not \"%.*s\"",
		            (int)p->f[i].len, p->f[i].s);
	*del = true;
	if (!field_is(&p->f[i + 1], "-"))
		return fail(p, "a del has \"-\" for its value");
	*value = HIST_NONE;
	return 0;
}

static int rec_event(struct parser *p)
{
	struct hist_watch *w;
	struct hist_event e;

	memset(&e, 0, sizeof(e));
	e.line = p->line;
	if (arity(p, 7, 7, "event W T KEY put|del VALUE|- MODREV") != 0 ||
	    find_watch(p, &w) != 0 || number(p, 2, "T", &e.time) != 0 ||
	    some_token(p, 3, "KEY", &e.key) != 0 ||
	    change(p, 4, &e.del, &e.value) != 0 ||
	    number(p, 6, "MODREV", &e.rev) != 0)
		return -1;
	if (!grow((void **)&w->events, &w->cap, w->nevents, sizeof(e)))
		return nomem(p);
	w->events[w->nevents++] = e;
	return 0;
}

/* The member named by field 1, added on first mention. */
static int find_member(struct parser *p, struct hist_member **out)
{
	struct history *h = p->h;
	hist_str name;

	if (some_token(p, 1, "M", &name) != 0 || cover_names(p) != 0)
		return -1;
	if (p->member_of[name] == 0) {
		if (!grow((void **)&h->members, &h->members_cap, h->nmembers,
		          sizeof(**out)))
			return nomem(p);
		memset(&h->members[h->nmembers], 0, sizeof(**out));
		h->members[h->nmembers++].name = name;
		p->member_of[name] = (uint32_t)h->nmembers;
	}
	*out = &h->members[p->member_of[name] - 1];
	return 0;
}

static int rec_ref(struct parser *p)
{
	struct hist_member *m;
	struct hist_ref r;

	memset(&r, 0, sizeof(r));
	r.line = p->line;
	if (arity(p, 6, 6, "ref M REV KEY put|del VALUE|-") != 0 ||
	    find_member(p, &m) != 0 || number(p, 2, "REV", &r.rev) != 0 ||
	    some_token(p, 3, "KEY", &r.key) != 0 ||
	    change(p, 4, &r.del, &r.value) != 0)
		return -1;
	if (!grow((void **)&m->refs, &m->refs_cap, m->nrefs, sizeof(r)))
		return nomem(p);
	m->refs[m->nrefs++] = r;
	return 0;
}

static int rec_kv(struct parser *p)
{
	struct hist_member *m;
	struct hist_ref r;

	memset(&r, 0, sizeof(r));
	r.line = p->line;
	if (arity(p, 5, 5, "kv M KEY VALUE MODREV") != 0 ||
	    find_member(p, &m) != 0 || some_token(p, 2, "KEY", &r.key) != 0 ||
	    some_token(p, 3, "VALUE", &r.value) != 0 ||
	    number(p, 4, "MODREV", &r.rev) != 0)
		return -1;
	if (!grow((void **)&m->kvs, &m->kvs_cap, m->nkvs, sizeof(r)))
		return nomem(p);
	m->kvs[m->nkvs++] = r;
	return 0;
}

static int rec_final(struct parser *p)
{
	struct hist_member *m;

	if (arity(p, 3, 3, "final M REV") != 0 || find_member(p, &m) != 0)
		return -1;
	if (m->final_line != 0)
		return fail(p,
		            "member %s has a second final record (first "
		            "at line %" PRIu32 ")",
		            history_str(p->h, m->name), m->final_line);
	if (number(p, 2, "REV", &m->final) != 0)
		return -1;
	m->final_line = p->line;
	return 0;
}

/* ---- lines and files ----------------------------------------------------- */

static const struct {
	const char *kind;
	int (*fn)(struct parser *p);
} records[] = {
    {"op", rec_op},   {"watch", rec_watch}, {"event", rec_event},
    {"ref", rec_ref}, {"kv", rec_kv},       {"final", rec_final},
};

static int parse_line(struct parser *p, const char *s, size_t len)
{
	size_t i;

	if (len > 0 && s[len - 1] == '\r')
		len--;
	if (len == 0 || s[0] == '#')
		return 0;
	if (len > HIST_MAX_LINE)
		return fail(p, "line longer than %d bytes", HIST_MAX_LINE);
	if (split(p, s, len) != 0)
		return -1;
	for (i = 0; i < sizeof(records) / sizeof(records[0]); i++)
		if (field_is(&p->f[0], records[i].kind))
			return records[i].fn(p);
	return fail(p, "unknown record kind \"%.*s\"", (int)p->f[0].len,
	            p->f[0].s);
}

/* Builds h->writer; a value written by two ops is an error. */
static int index_values(struct parser *p)
{
	struct history *h = p->h;
	size_t i;

	h->writer = calloc(h->nstrs, sizeof(*h->writer));
	if (h->writer == NULL)
		return nomem(p);
	for (i = 0; i < h->nops; i++) {
		const struct hist_op *op = &h->ops[i];
		uint32_t *w = &h->writer[op->value];

		if (op->type != HIST_PUT && op->type != HIST_CAS)
			continue;
		if (*w != 0) {
			p->line = op->line;
			return fail(p,
			            "value %s is also written at line %" PRIu32
			            " (values must be unique)",
			            history_str(h, op->value),
			            h->ops[*w - 1].line);
		}
		*w = (uint32_t)i + 1;
	}
	return 0;
}

static int parse_text(struct parser *p, const char *text, size_t len)
{
	size_t pos = 0;

	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;

		if (p->line == HIST_MAX_LINES)
			return fail(p, "more than %d lines", HIST_MAX_LINES);
		p->line++;
		if (parse_line(p, text + pos, n) != 0)
			return -1;
		pos += n + 1;
	}
	return index_values(p);
}

static struct history *history_new(const char *name)
{
	struct history *h = calloc(1, sizeof(*h));
	hist_str none;

	if (h == NULL)
		return NULL;
	h->name = strdup(name);
	if (h->name == NULL || !rehash(h) || !intern(h, "-", 1, &none)) {
		history_free(h);
		return NULL;
	}
	return h;
}

int history_parse(const char *text, size_t len, const char *name,
                  struct history **out, char *err, size_t errlen)
{
	struct parser p;
	int rv;

	memset(&p, 0, sizeof(p));
	p.err = err;
	p.errlen = errlen;
	err[0] = '\0';
	*out = NULL;
	p.h = history_new(name);
	if (p.h == NULL) {
		snprintf(err, errlen, "%s: out of memory", name);
		return -1;
	}
	if (len >= MAX_FILE)
		rv = fail(&p, "larger than 4 GiB");
	else
		rv = parse_text(&p, text, len);
	free(p.watch_of);
	free(p.member_of);
	if (rv != 0) {
		history_free(p.h);
		return -1;
	}
	*out = p.h;
	return 0;
}

/* Doubles *data (of *cap bytes). Returns 0 or an errno value. */
static int double_buffer(char **data, size_t *cap)
{
	size_t c = *cap ? *cap * 2 : (size_t)1 << 16;
	char *q;

	if (*cap >= MAX_FILE)
		return EFBIG;
	q = realloc(*data, c);
	if (q == NULL)
		return ENOMEM;
	*data = q;
	*cap = c;
	return 0;
}

static char *read_file(const char *path, size_t *len, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	char *data = NULL;
	size_t cap = 0, n = 0;

	if (f == NULL)
		goto err;
	for (;;) {
		if (n == cap) {
			errno = double_buffer(&data, &cap);
			if (errno != 0)
				goto err_after_open;
		}
		n += fread(data + n, 1, cap - n, f);
		if (n < cap)
			break;
	}
	if (ferror(f))
		goto err_after_open;
	fclose(f);
	*len = n;
	return data;

err_after_open:
	if (errno == 0)
		errno = EIO;
	fclose(f);
	free(data);
err:
	snprintf(err, errlen, "%s: %s", path, strerror(errno));
	return NULL;
}

int history_load(const char *path, struct history **out, char *err,
                 size_t errlen)
{
	size_t len;
	char *text;
	int rv;

	*out = NULL;
	errno = 0;
	text = read_file(path, &len, err, errlen);
	if (text == NULL)
		return -1;
	rv = history_parse(text, len, path, out, err, errlen);
	free(text);
	return rv;
}

void history_free(struct history *h)
{
	size_t i;

	if (h == NULL)
		return;
	for (i = 0; i < h->nwatches; i++)
		free(h->watches[i].events);
	for (i = 0; i < h->nmembers; i++) {
		free(h->members[i].refs);
		free(h->members[i].kvs);
	}
	free(h->watches);
	free(h->members);
	free(h->ops);
	free(h->writer);
	free(h->pool);
	free(h->offs);
	free(h->slots);
	free((char *)h->name);
	free(h);
}

/* ---- formatting ---------------------------------------------------------- */

static void format_results(const struct history *h, const struct hist_op *op,
                           char *buf, size_t n)
{
	switch (op->type) {
	case HIST_PUT:
		snprintf(buf, n, "rev=%" PRIu64, op->rev);
		break;
	case HIST_GET:
		snprintf(buf, n, "val=%s modrev=%" PRIu64 " rev=%" PRIu64,
		         history_str(h, op->read), op->modrev, op->rev);
		break;
	case HIST_CAS:
		snprintf(buf, n, "succeeded=%d rev=%" PRIu64, op->flag,
		         op->rev);
		break;
	default:
		snprintf(buf, n, "deleted=%d rev=%" PRIu64, op->flag, op->rev);
		break;
	}
}

void history_describe_op(const struct history *h, const struct hist_op *op,
                         char *buf, size_t n)
{
	char args[256] = "", res[256] = "", done[32] = "never";

	if (op->type == HIST_PUT)
		snprintf(args, sizeof(args), " %s", history_str(h, op->value));
	else if (op->type == HIST_CAS)
		snprintf(args, sizeof(args), " %s %s",
		         history_str(h, op->expect), history_str(h, op->value));
	if (op->status == HIST_OK) {
		char r[200];

		format_results(h, op, r, sizeof(r));
		snprintf(res, sizeof(res), " -> %s", r);
	}
	if (op->complete != HIST_NEVER)
		snprintf(done, sizeof(done), "%" PRIu64, op->complete);
	snprintf(buf, n, "%s [%" PRIu64 ", %s] %s %s %s%s%s",
	         history_str(h, op->proc), op->invoke, done,
	         history_status_name(op->status), history_type_name(op->type),
	         history_str(h, op->key), args, res);
}

void history_format_op(const struct history *h, const struct hist_op *op,
                       char *buf, size_t n)
{
	char text[1024];

	history_describe_op(h, op, text, sizeof(text));
	snprintf(buf, n, "line %" PRIu32 ": %s", op->line, text);
}
