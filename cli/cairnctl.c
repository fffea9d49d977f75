/*
 * cairnctl: the command-line client of cairn-store, modeled on etcdctl v3.
 *
 * main() parses the global flags, the command (one or two words) and the
 * command's own flags, which may come in any order after the command ("--"
 * ends the flags). Each command builds one cairn_op, runs it with the sync
 * client library, and prints the answer as simple text, JSON or a table.
 * "member list" and "endpoint status" ask every endpoint for its STATUS at
 * once, with one async client per endpoint on a private loop; "watch" and
 * "lease keep-alive" run one async client, the signal handlers (and the
 * renewal timer) on a loop of their own.
 *
 * Exit status: 0 ok; 1 when the store or the connection failed ("Error:
 * <command>: <message>" on stderr); 2 on a usage error, with a hint to --help.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>
#include <uv.h>

#include "backup.h"
#include "buf.h"
#include "cairn.h"
#include "proto.h"
#include "txnparse.h"

#define EXIT_FAIL 1
#define EXIT_USAGE 2
#define MAX_ARGS 8
#define MAX_CMD_FLAGS 12

enum output { OUT_SIMPLE, OUT_JSON, OUT_TABLE };

struct flag {
	const char *name;
	char short_name;
	bool takes_value;
	const char *arg; /* the value's name in help */
	const char *help;
};

struct ctx;

struct cmd {
	const char *name;
	const char *usage;
	const char *summary;
	const char *details;
	const struct flag *flags;
	size_t n_flags;
	int min_args;
	int max_args;
	int (*run)(struct ctx *x);
};

/* Everything a command needs: the parsed command line and the client. */
struct ctx {
	const struct cmd *cmd;
	const char *endpoints;
	enum output out;
	unsigned dial_ms;
	unsigned cmd_ms;
	const char *secret_file; /* NULL: the library reads the environment */
	bool insecure;
	const char *user; /* NULL: none; else user_buf */
	char user_buf[PROTO_MAX_NAME + 2];
	char password[PROTO_MAX_PASSWORD + 2];
	const char
	    *val[MAX_CMD_FLAGS]; /* command flags; "" for a set boolean */
	char *args[MAX_ARGS];
	int n_args;
	cairn_client *cl;
};

/* ---- messages ------------------------------------------------------------ */

static void usage_error(const struct cmd *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prints a usage error and the hint to --help (the caller exits 2). */
static void usage_error(const struct cmd *cmd, const char *fmt, ...)
{
	va_list ap;

	fputs("Error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (cmd != NULL)
		fprintf(stderr, "\nRun 'cairnctl %s --help' for usage.\n",
		        cmd->name);
	else
		fputs("\nRun 'cairnctl --help' for usage.\n", stderr);
}

static int fail_cmd(const struct ctx *x, const char *msg)
{
	fprintf(stderr, "Error: %s: %s\n", x->cmd->name, msg);
	return EXIT_FAIL;
}

/* ---- JSON ---------------------------------------------------------------- */

static bool utf8_valid(const uint8_t *p, size_t len)
{
	size_t i = 0;
	uint32_t cp;
	int n;

	while (i < len) {
		uint8_t c = p[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		n = c >= 0xf0 && c <= 0xf4  ? 3
		    : c >= 0xe0             ? 2
		    : c >= 0xc2 && c < 0xe0 ? 1
		                            : -1;
		if (n < 0 || c > 0xf4 || len - i <= (size_t)n)
			return false;
		cp = c & (0x3f >> n);
		for (int k = 1; k <= n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (p[i + k] & 0x3f);
		}
		if ((n == 2 && (cp < 0x800 || (cp >= 0xd800 && cp < 0xe000))) ||
		    (n == 3 && (cp < 0x10000 || cp > 0x10ffff)))
			return false;
		i += (size_t)n + 1;
	}
	return true;
}

static void json_string(const void *s, size_t len)
{
	const uint8_t *p = s;
	size_t i;

	putchar('"');
	for (i = 0; i < len; i++) {
		switch (p[i]) {
		case '"':
			fputs("\\\"", stdout);
			break;
		case '\\':
			fputs("\\\\", stdout);
			break;
		case '\n':
			fputs("\\n", stdout);
			break;
		case '\r':
			fputs("\\r", stdout);
			break;
		case '\t':
			fputs("\\t", stdout);
			break;
		default:
			if (p[i] < 0x20 || p[i] == 0x7f)
				printf("\\u%04x", p[i]);
			else
				putchar(p[i]);
		}
	}
	putchar('"');
}

static void json_cstr(const char *s)
{
	json_string(s != NULL ? s : "", s != NULL ? strlen(s) : 0);
}

/* The bytes in base64 as a JSON string (null when out of memory). */
static void json_base64(const uint8_t *p, size_t len)
{
	size_t b64len =
	    sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
	char *b64 = malloc(b64len);

	if (b64 == NULL) {
		fputs("null", stdout);
		return;
	}
	sodium_bin2base64(b64, b64len, p, len, sodium_base64_VARIANT_ORIGINAL);
	printf("\"%s\"", b64);
	free(b64);
}

/* "name":"text" when the bytes are UTF-8, else "name_base64":"...". */
static void json_bytes(const char *name, const uint8_t *p, size_t len)
{
	if (utf8_valid(p, len)) {
		printf("\"%s\":", name);
		json_string(p, len);
		return;
	}
	printf("\"%s_base64\":", name);
	json_base64(p, len);
}

static void json_header(const struct cairn_header *h)
{
	printf("\"header\":{\"member_id\":%" PRIu64 ",\"revision\":%" PRId64
	       ",\"raft_term\":%" PRIu64 "}",
	       h->member_id, h->revision, h->raft_term);
}

static void json_kv(const struct cairn_kv *kv)
{
	putchar('{');
	json_bytes("key", kv->key, kv->key_len);
	printf(",\"create_revision\":%" PRId64 ",\"mod_revision\":%" PRId64
	       ",\"version\":%" PRId64,
	       kv->create_revision, kv->mod_revision, kv->version);
	if (kv->value != NULL) {
		putchar(',');
		json_bytes("value", kv->value, kv->value_len);
	}
	if (kv->lease != 0)
		printf(",\"lease\":%" PRId64, kv->lease);
	putchar('}');
}

static void json_kvs(const char *name, const struct cairn_kv *kvs, size_t n)
{
	size_t i;

	printf(",\"%s\":[", name);
	for (i = 0; i < n; i++) {
		if (i > 0)
			putchar(',');
		json_kv(&kvs[i]);
	}
	putchar(']');
}

/* ---- tables -------------------------------------------------------------- */

struct table {
	size_t ncols;
	const char *const *hdr;
	char **cells;
	size_t nrows;
	size_t cap;
};

/* Text width: UTF-8 continuation bytes take no column. */
static size_t width(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		w += ((uint8_t)*s & 0xc0) != 0x80;
	return w;
}

/* A printable copy: control bytes and invalid UTF-8 become \xHH. */
static char *printable(const uint8_t *p, size_t len)
{
	bool utf8 = utf8_valid(p, len);
	char *s = malloc(len * 4 + 1);
	size_t i;
	size_t n = 0;

	if (s == NULL)
		return NULL;
	for (i = 0; i < len; i++) {
		if (p[i] < 0x20 || p[i] == 0x7f || (!utf8 && p[i] >= 0x80))
			n += (size_t)sprintf(s + n, "\\x%02x", p[i]);
		else
			s[n++] = (char)p[i];
	}
	s[n] = '\0';
	return s;
}

/* Adds a row of ncols strings (copied). False when out of memory. */
static bool table_add(struct table *t, const char *const *row)
{
	size_t i;
	char **cells;

	if (t->nrows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 8;
		cells = realloc(t->cells, cap * t->ncols * sizeof *cells);
		if (cells == NULL)
			return false;
		t->cells = cells;
		t->cap = cap;
	}
	for (i = 0; i < t->ncols; i++) {
		t->cells[t->nrows * t->ncols + i] =
		    strdup(row[i] ? row[i] : "");
		if (t->cells[t->nrows * t->ncols + i] == NULL) {
			while (i-- > 0)
				free(t->cells[t->nrows * t->ncols + i]);
			return false;
		}
	}
	t->nrows++;
	return true;
}

static void table_rule(const size_t *w, size_t ncols)
{
	size_t i;
	size_t k;

	for (i = 0; i < ncols; i++) {
		putchar('+');
		for (k = 0; k < w[i] + 2; k++)
			putchar('-');
	}
	puts("+");
}

static void pad(size_t n)
{
	while (n-- > 0)
		putchar(' ');
}

/* etcdctl's look: centered headers, right-aligned cells, ruled borders. */
static void table_print(const struct table *t)
{
	size_t w[16] = {0};
	size_t i;
	size_t r;

	for (i = 0; i < t->ncols && i < 16; i++) {
		w[i] = width(t->hdr[i]);
		for (r = 0; r < t->nrows; r++)
			if (width(t->cells[r * t->ncols + i]) > w[i])
				w[i] = width(t->cells[r * t->ncols + i]);
	}
	table_rule(w, t->ncols);
	for (i = 0; i < t->ncols; i++) {
		size_t left = (w[i] - width(t->hdr[i])) / 2;
		printf("| ");
		pad(left);
		fputs(t->hdr[i], stdout);
		pad(w[i] - width(t->hdr[i]) - left + 1);
	}
	puts("|");
	table_rule(w, t->ncols);
	for (r = 0; r < t->nrows; r++) {
		for (i = 0; i < t->ncols; i++) {
			const char *cell = t->cells[r * t->ncols + i];
			printf("| ");
			pad(w[i] - width(cell));
			printf("%s ", cell);
		}
		puts("|");
	}
	table_rule(w, t->ncols);
}

static void table_free(struct table *t)
{
	size_t i;

	for (i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
}

/* etcdctl's (go-humanize's) sizes: SI units, one decimal below 10. */
static void human_bytes(uint64_t n, char *out, size_t len)
{
	static const char *const units[] = {"B",  "kB", "MB", "GB",
	                                    "TB", "PB", "EB"};
	uint64_t div = 1;
	unsigned e = 0;
	uint64_t tenths;

	if (n < 10) {
		snprintf(out, len, "%" PRIu64 " B", n);
		return;
	}
	while (e < 6 && n / div >= 1000) {
		div *= 1000;
		e++;
	}
	tenths = (n / div) * 10 + ((n % div) * 10 + div / 2) / div;
	if (tenths < 100)
		snprintf(out, len, "%" PRIu64 ".%" PRIu64 " %s", tenths / 10,
		         tenths % 10, units[e]);
	else
		snprintf(out, len, "%" PRIu64 " %s", (tenths + 5) / 10,
		         units[e]);
}

/* ---- parsing values ------------------------------------------------------ */

static bool parse_i64(const char *s, int base, int64_t *v)
{
	char *end;
	long long x;

	if (*s == '\0' || *s == ' ' || *s == '+')
		return false;
	errno = 0;
	x = strtoll(s, &end, base);
	if (errno != 0 || *end != '\0')
		return false;
	*v = x;
	return true;
}

/* Lease ids are hex, as the lease commands print them (and as etcdctl
 * takes them), with an optional 0x: "10" is lease 16. */
static bool parse_lease(const char *s, int64_t *v)
{
	return parse_i64(s, 16, v) && *v > 0;
}

/* Go-style durations: "500ms", "2s", "1.5s", "1m"; a bare number is seconds. */
static bool parse_duration(const char *s, unsigned *ms)
{
	static const struct {
		const char *unit;
		double ms;
	} units[] = {{"ns", 1e-6}, {"us", 1e-3},   {"ms", 1}, {"s", 1000},
	             {"m", 60000}, {"h", 3600000}, {"", 1000}};
	char *end;
	double v;
	size_t i;

	if (*s == '\0' || *s == '-' || *s == ' ' || *s == '+')
		return false;
	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s)
		return false;
	for (i = 0; i < sizeof units / sizeof units[0]; i++) {
		if (strcmp(end, units[i].unit) != 0)
			continue;
		v *= units[i].ms;
		if (!(v >= 1 && v <= (double)UINT_MAX))
			return false;
		*ms = (unsigned)v;
		return true;
	}
	return false;
}

/* Reads all of stdin. */
static int read_stdin(struct buf *b)
{
	uint8_t chunk[65536];
	size_t n;

	while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0)
		if (buf_append(b, chunk, n) != 0)
			return CAIRN_ENOMEM;
	return ferror(stdin) ? CAIRN_EIO : 0;
}

/* ---- the client ---------------------------------------------------------- */

/* The client options of every command: timeouts and the cluster secret. */
static struct cairn_options client_options(const struct ctx *x,
                                           unsigned timeout_ms,
                                           bool no_redirect)
{
	struct cairn_options o = {
	    .dial_timeout_ms = x->dial_ms,
	    .request_timeout_ms = timeout_ms,
	    .no_redirect = no_redirect,
	    .secret_file = x->secret_file,
	    .insecure = x->insecure,
	    .user = x->user,
	    .password = x->user != NULL ? x->password : NULL,
	};

	return o;
}

static int open_client(struct ctx *x)
{
	struct cairn_options o = client_options(x, x->cmd_ms, false);
	char err[256] = "";
	int rv = cairn_open(&x->cl, x->endpoints, &o, err, sizeof err);

	if (rv == CAIRN_EINVAL) {
		usage_error(NULL, "--endpoints: %s", err);
		return EXIT_USAGE;
	}
	if (rv != 0)
		return fail_cmd(x, err);
	return 0;
}

/* Runs op; on failure prints the error and returns EXIT_FAIL. */
static int run_op(struct ctx *x, const struct cairn_op *op,
                  struct cairn_result **res)
{
	int rv = open_client(x);

	if (rv != 0)
		return rv;
	if (cairn_do(x->cl, op, res) != 0)
		return fail_cmd(x, cairn_errmsg(x->cl));
	return 0;
}

/* Sets key and end from KEY [END] and --prefix/--from-key as etcdctl: an
 * empty key with either flag means the whole keyspace from "\0". */
static void set_range(struct ctx *x, struct cairn_op *op, bool prefix,
                      bool from_key, uint8_t *endbuf)
{
	op->key = x->args[0];
	op->key_len = strlen(x->args[0]);
	if (x->n_args > 1) {
		op->end = x->args[1];
		op->end_len = strlen(x->args[1]);
	}
	if (!prefix && !from_key)
		return;
	if (op->key_len == 0) {
		op->key = "";
		op->key_len = 1;
	}
	if (from_key || (op->key_len == 1 && *(const char *)op->key == '\0')) {
		op->end = "";
		op->end_len = 1;
		return;
	}
	op->end_len = cairn_prefix_end(op->key, op->key_len, endbuf);
	op->end = endbuf;
}

/* Checks --prefix/--from-key against the arguments; true when fine. */
static bool range_flags_ok(struct ctx *x, bool prefix, bool from_key)
{
	if (prefix && from_key) {
		usage_error(x->cmd,
		            "--prefix and --from-key cannot be set at the "
		            "same time, choose one");
		return false;
	}
	if ((prefix || from_key) && x->n_args > 1) {
		usage_error(x->cmd,
		            "too many arguments: only one when --prefix or "
		            "--from-key is set");
		return false;
	}
	return true;
}

/* ---- printing answers ---------------------------------------------------- */

static void print_kv(const struct cairn_kv *kv, bool value_only)
{
	if (!value_only) {
		fwrite(kv->key, 1, kv->key_len, stdout);
		putchar('\n');
	}
	if (kv->value != NULL)
		fwrite(kv->value, 1, kv->value_len, stdout);
	putchar('\n');
}

static void print_range_simple(const struct cairn_result *r, bool value_only,
                               bool count_only)
{
	size_t i;

	if (count_only) {
		printf("%" PRId64 "\n", r->count);
		return;
	}
	for (i = 0; i < r->n_kvs; i++)
		print_kv(&r->kvs[i], value_only);
}

static void print_put_simple(const struct cairn_result *r)
{
	size_t i;

	puts("OK");
	for (i = 0; i < r->n_prev_kvs; i++)
		print_kv(&r->prev_kvs[i], false);
}

static void print_del_simple(const struct cairn_result *r)
{
	size_t i;

	printf("%" PRId64 "\n", r->deleted);
	for (i = 0; i < r->n_prev_kvs; i++)
		print_kv(&r->prev_kvs[i], false);
}

/* The fields of one answer inside a JSON object (after the header). */
static void json_answer_fields(const struct cairn_result *r)
{
	switch (r->type) {
	case CAIRN_OP_RANGE:
		json_kvs("kvs", r->kvs, r->n_kvs);
		printf(",\"count\":%" PRId64 ",\"more\":%s", r->count,
		       r->more ? "true" : "false");
		break;
	case CAIRN_OP_PUT:
		if (r->n_prev_kvs > 0) {
			printf(",\"prev_kv\":");
			json_kv(&r->prev_kvs[0]);
		}
		break;
	case CAIRN_OP_DELETE:
		printf(",\"deleted\":%" PRId64, r->deleted);
		if (r->n_prev_kvs > 0)
			json_kvs("prev_kvs", r->prev_kvs, r->n_prev_kvs);
		break;
	default:
		break;
	}
}

static void print_json(const struct cairn_result *r)
{
	putchar('{');
	json_header(&r->header);
	json_answer_fields(r);
	puts("}");
}

static bool print_range_table(const struct cairn_result *r)
{
	static const char *const hdr[] = {
	    "KEY",          "VALUE",   "CREATE REVISION",
	    "MOD REVISION", "VERSION", "LEASE"};
	struct table t = {6, hdr, NULL, 0, 0};
	char nums[4][24];
	const char *row[6];
	bool ok = true;
	size_t i;

	for (i = 0; ok && i < r->n_kvs; i++) {
		const struct cairn_kv *kv = &r->kvs[i];
		char *k = printable(kv->key, kv->key_len);
		char *v =
		    kv->value ? printable(kv->value, kv->value_len) : NULL;
		snprintf(nums[0], sizeof nums[0], "%" PRId64,
		         kv->create_revision);
		snprintf(nums[1], sizeof nums[1], "%" PRId64, kv->mod_revision);
		snprintf(nums[2], sizeof nums[2], "%" PRId64, kv->version);
		snprintf(nums[3], sizeof nums[3], "%" PRIx64,
		         (uint64_t)kv->lease);
		row[0] = k;
		row[1] = v;
		row[2] = nums[0];
		row[3] = nums[1];
		row[4] = nums[2];
		row[5] = kv->lease ? nums[3] : "";
		ok = k != NULL && (v != NULL || kv->value == NULL) &&
		     table_add(&t, row);
		free(k);
		free(v);
	}
	if (ok)
		table_print(&t);
	table_free(&t);
	return ok;
}

/* ---- put, get, del ------------------------------------------------------- */

enum { PUT_PREV_KV, PUT_LEASE };
static const struct flag put_flags[] = {
    {"prev-kv", 0, false, NULL, "return the previous key-value pair"},
    {"lease", 0, true, "ID",
     "attach the lease ID (hex, as 'lease grant' prints it)"},
};

static int put_value(struct ctx *x, struct buf *stdin_buf, struct cairn_op *op)
{
	if (x->n_args == 2) {
		op->value = x->args[1];
		op->value_len = strlen(x->args[1]);
		return 0;
	}
	if (isatty(STDIN_FILENO)) {
		usage_error(x->cmd,
		            "put needs a value as argument or on stdin");
		return EXIT_USAGE;
	}
	if (read_stdin(stdin_buf) != 0)
		return fail_cmd(x, "reading the value from stdin failed");
	if (stdin_buf->len == 0) {
		usage_error(x->cmd,
		            "put needs a value as argument or on stdin");
		return EXIT_USAGE;
	}
	op->value = stdin_buf->data;
	op->value_len = stdin_buf->len;
	return 0;
}

static int cmd_put(struct ctx *x)
{
	struct cairn_op op = {.type = CAIRN_OP_PUT};
	struct buf in = BUF_INIT;
	struct cairn_result *r = NULL;
	int rv;

	op.key = x->args[0];
	op.key_len = strlen(x->args[0]);
	op.prev_kv = x->val[PUT_PREV_KV] != NULL;
	if (x->val[PUT_LEASE] && !parse_lease(x->val[PUT_LEASE], &op.lease)) {
		usage_error(x->cmd, "--lease: bad lease id '%s'",
		            x->val[PUT_LEASE]);
		return EXIT_USAGE;
	}
	rv = put_value(x, &in, &op);
	if (rv == 0)
		rv = run_op(x, &op, &r);
	if (rv == 0 && x->out == OUT_JSON)
		print_json(r);
	else if (rv == 0)
		print_put_simple(r);
	cairn_result_free(r);
	buf_free(&in);
	return rv;
}

enum {
	GET_PREFIX,
	GET_FROM_KEY,
	GET_LIMIT,
	GET_REV,
	GET_KEYS_ONLY,
	GET_COUNT_ONLY,
	GET_CONSISTENCY,
	GET_VALUE_ONLY
};
static const struct flag get_flags[] = {
    {"prefix", 0, false, NULL, "get the keys that start with KEY"},
    {"from-key", 0, false, NULL, "get the keys >= KEY (byte order)"},
    {"limit", 0, true, "N", "at most N keys"},
    {"rev", 0, true, "N", "read at revision N"},
    {"keys-only", 0, false, NULL, "get only the keys"},
    {"count-only", 0, false, NULL, "get only the number of keys"},
    {"consistency", 0, true, "l|s",
     "linearizable (l, default) or "
     "serializable (s)"},
    {"print-value-only", 0, false, NULL, "print only values (simple output)"},
};

/* Reads --limit, --rev and --consistency into op. */
static bool get_options(struct ctx *x, struct cairn_op *op)
{
	const char *cons = x->val[GET_CONSISTENCY];

	if (x->val[GET_LIMIT] &&
	    (!parse_i64(x->val[GET_LIMIT], 10, &op->limit) || op->limit < 0)) {
		usage_error(x->cmd, "--limit: expected a number >= 0");
		return false;
	}
	if (x->val[GET_REV] &&
	    (!parse_i64(x->val[GET_REV], 10, &op->revision) ||
	     op->revision < 0)) {
		usage_error(x->cmd, "--rev: expected a revision >= 0");
		return false;
	}
	if (cons != NULL && strcmp(cons, "l") != 0 && strcmp(cons, "s") != 0) {
		usage_error(x->cmd,
		            "--consistency: unknown value '%s' (l or s)", cons);
		return false;
	}
	if (x->val[GET_VALUE_ONLY] && x->out != OUT_SIMPLE) {
		usage_error(x->cmd,
		            "--print-value-only is only for the simple output");
		return false;
	}
	op->serializable = cons != NULL && strcmp(cons, "s") == 0;
	op->keys_only = x->val[GET_KEYS_ONLY] != NULL;
	op->count_only = x->val[GET_COUNT_ONLY] != NULL;
	return true;
}

static int cmd_get(struct ctx *x)
{
	struct cairn_op op = {.type = CAIRN_OP_RANGE};
	bool prefix = x->val[GET_PREFIX] != NULL;
	bool from_key = x->val[GET_FROM_KEY] != NULL;
	uint8_t *endbuf = malloc(strlen(x->args[0]) + 1);
	struct cairn_result *r = NULL;
	int rv = EXIT_USAGE;

	if (endbuf == NULL)
		return fail_cmd(x, "out of memory");
	if (range_flags_ok(x, prefix, from_key) && get_options(x, &op)) {
		set_range(x, &op, prefix, from_key, endbuf);
		rv = run_op(x, &op, &r);
	}
	if (rv == 0 && x->out == OUT_JSON)
		print_json(r);
	else if (rv == 0 && x->out == OUT_TABLE && !op.count_only)
		rv = print_range_table(r) ? 0 : fail_cmd(x, "out of memory");
	else if (rv == 0)
		print_range_simple(r, x->val[GET_VALUE_ONLY] != NULL,
		                   op.count_only);
	cairn_result_free(r);
	free(endbuf);
	return rv;
}

enum { DEL_PREFIX, DEL_FROM_KEY, DEL_PREV_KV };
static const struct flag del_flags[] = {
    {"prefix", 0, false, NULL, "delete the keys that start with KEY"},
    {"from-key", 0, false, NULL, "delete the keys >= KEY (byte order)"},
    {"prev-kv", 0, false, NULL, "return the deleted key-value pairs"},
};

static int cmd_del(struct ctx *x)
{
	struct cairn_op op = {.type = CAIRN_OP_DELETE};
	bool prefix = x->val[DEL_PREFIX] != NULL;
	bool from_key = x->val[DEL_FROM_KEY] != NULL;
	uint8_t *endbuf = malloc(strlen(x->args[0]) + 1);
	struct cairn_result *r = NULL;
	int rv = EXIT_USAGE;

	if (endbuf == NULL)
		return fail_cmd(x, "out of memory");
	op.prev_kv = x->val[DEL_PREV_KV] != NULL;
	if (range_flags_ok(x, prefix, from_key)) {
		set_range(x, &op, prefix, from_key, endbuf);
		rv = run_op(x, &op, &r);
	}
	if (rv == 0 && x->out == OUT_JSON)
		print_json(r);
	else if (rv == 0)
		print_del_simple(r);
	cairn_result_free(r);
	free(endbuf);
	return rv;
}

/* ---- txn ----------------------------------------------------------------- */

static const struct flag txn_flags[] = {
    {"interactive", 'i', false, NULL, "prompt for each section"},
};

static const char *const txn_prompts[] = {
    "compares:",
    "success requests (get, put, del):",
    "failure requests (get, put, del):",
};

/* Reads the transaction from stdin until its last section ends. */
static int read_txn(struct ctx *x, struct txnparse *p)
{
	bool interactive = x->val[0] != NULL;
	enum txnparse_section shown = TXNPARSE_DONE;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int rv = 0;

	while (rv == 0 && txnparse_section(p) != TXNPARSE_DONE) {
		if (interactive && txnparse_section(p) != shown) {
			shown = txnparse_section(p);
			puts(txn_prompts[shown]);
			fflush(stdout);
		}
		n = getline(&line, &cap, stdin);
		if (n < 0)
			break;
		if (n > 0 && line[n - 1] == '\n')
			n--;
		rv = txnparse_line(p, line, (size_t)n);
	}
	free(line);
	if (rv != 0) {
		usage_error(x->cmd, "%s", txnparse_error(p));
		return EXIT_USAGE;
	}
	return 0;
}

static void print_txn_simple(const struct cairn_result *r)
{
	size_t i;

	puts(r->succeeded ? "SUCCESS" : "FAILURE");
	for (i = 0; i < r->n_responses; i++) {
		const struct cairn_result *s = &r->responses[i];
		putchar('\n');
		if (s->type == CAIRN_OP_PUT)
			print_put_simple(s);
		else if (s->type == CAIRN_OP_DELETE)
			print_del_simple(s);
		else
			print_range_simple(s, false, false);
	}
}

static void print_txn_json(const struct cairn_result *r)
{
	static const char *const names[] = {
	    [CAIRN_OP_RANGE] = "response_range",
	    [CAIRN_OP_PUT] = "response_put",
	    [CAIRN_OP_DELETE] = "response_delete_range",
	};
	size_t i;

	putchar('{');
	json_header(&r->header);
	printf(",\"succeeded\":%s,\"responses\":[",
	       r->succeeded ? "true" : "false");
	for (i = 0; i < r->n_responses; i++) {
		const struct cairn_result *s = &r->responses[i];
		int t = s->type >= CAIRN_OP_RANGE && s->type <= CAIRN_OP_DELETE
		            ? s->type
		            : CAIRN_OP_RANGE;
		printf("%s{\"%s\":{", i ? "," : "", names[t]);
		json_header(&s->header);
		json_answer_fields(s);
		printf("}}");
	}
	puts("]}");
}

static int cmd_txn(struct ctx *x)
{
	struct cairn_op op = {.type = CAIRN_OP_TXN};
	struct txnparse *p = txnparse_new();
	struct cairn_result *r = NULL;
	int rv;

	if (p == NULL)
		return fail_cmd(x, "out of memory");
	rv = read_txn(x, p);
	if (rv == 0)
		txnparse_finish(p, &op.txn);
	if (rv == 0)
		rv = run_op(x, &op, &r);
	if (rv == 0 && x->out == OUT_JSON)
		print_txn_json(r);
	else if (rv == 0)
		print_txn_simple(r);
	cairn_result_free(r);
	txnparse_free(p);
	return rv;
}

/* ---- watch --------------------------------------------------------------- */

enum {
	WATCH_PREFIX,
	WATCH_FROM_KEY,
	WATCH_REV,
	WATCH_PREV_KV,
	WATCH_NO_PUT,
	WATCH_NO_DELETE,
	WATCH_PROGRESS_NOTIFY,
	WATCH_MAX_EVENTS,
	WATCH_TIMEOUT
};
static const struct flag watch_flags[] = {
    {"prefix", 0, false, NULL, "watch the keys that start with KEY"},
    {"from-key", 0, false, NULL, "watch the keys >= KEY (byte order)"},
    {"rev", 0, true, "N", "start at revision N (history first, then live)"},
    {"prev-kv", 0, false, NULL, "show each change's previous key-value pair"},
    {"no-put", 0, false, NULL, "leave out puts"},
    {"no-delete", 0, false, NULL, "leave out deletions"},
    {"progress-notify", 0, false, NULL,
     "hear the current revision now and then while idle"},
    {"max-events", 0, true, "N", "exit (status 0) after N events"},
    {"timeout", 0, true, "DURATION",
     "exit after DURATION (status 1 if --max-events\n"
     "                                was not reached)"},
};

/* One watch on cairnctl's own loop, until a signal, --max-events,
 * --timeout or the end of the watch. */
struct watch_run {
	struct ctx *x;
	uv_loop_t loop;
	uv_signal_t sig[2];
	uv_timer_t timer;
	bool has_timer;
	cairn_client *cl;
	cairn_watch *w;
	int64_t max_events; /* 0: no limit */
	int64_t seen;
	unsigned timeout_ms;
	bool stopping; /* we canceled the watch: its end is no error */
	bool done;
	int rv;
};

static void print_event_simple(const struct cairn_event *e)
{
	puts(e->type == CAIRN_EVENT_DELETE ? "DELETE" : "PUT");
	if (e->has_prev_kv)
		print_kv(&e->prev_kv, false);
	print_kv(&e->kv, false);
}

static void print_event_json(const struct cairn_event *e)
{
	printf("{\"type\":\"%s\",\"kv\":",
	       e->type == CAIRN_EVENT_DELETE ? "DELETE" : "PUT");
	json_kv(&e->kv);
	if (e->has_prev_kv) {
		printf(",\"prev_kv\":");
		json_kv(&e->prev_kv);
	}
	putchar('}');
}

/* Prints the first n events of u, each format as etcdctl's watch. */
static void print_update(const struct ctx *x,
                         const struct cairn_watch_update *u, size_t n)
{
	size_t i;

	if (x->out == OUT_JSON && u->progress) {
		printf("{\"progress\":true,\"revision\":%" PRId64 "}\n",
		       u->revision);
	} else if (u->progress) {
		printf("progress notify: %" PRId64 "\n", u->revision);
	} else if (x->out == OUT_JSON) {
		printf("{\"revision\":%" PRId64 ",\"events\":[", u->revision);
		for (i = 0; i < n; i++) {
			if (i > 0)
				putchar(',');
			print_event_json(&u->events[i]);
		}
		printf("]%s}\n", u->more ? ",\"more\":true" : "");
	} else {
		for (i = 0; i < n; i++)
			print_event_simple(&u->events[i]);
	}
	fflush(stdout); /* a reader of a pipe or a file sees each update */
}

static void on_loop_handle_closed(uv_handle_t *h)
{
	(void)h;
}

/* The watch ended: let the loop run dry. */
static void watch_run_done(struct watch_run *r)
{
	if (r->done)
		return;
	r->done = true;
	uv_close((uv_handle_t *)&r->sig[0], on_loop_handle_closed);
	uv_close((uv_handle_t *)&r->sig[1], on_loop_handle_closed);
	if (r->has_timer)
		uv_close((uv_handle_t *)&r->timer, on_loop_handle_closed);
	cairn_close(r->cl);
}

static void watch_run_stop(struct watch_run *r, int rv)
{
	if (r->stopping)
		return;
	r->stopping = true;
	r->rv = rv;
	cairn_watch_cancel(r->w); /* its final callback ends the run */
}

static void on_watch_update(cairn_client *c, cairn_watch *w,
                            const struct cairn_watch_update *u, void *arg)
{
	struct watch_run *r = arg;
	size_t n = u->n_events;

	(void)c;
	(void)w;
	if (u->err != 0) {
		if (!(r->stopping && u->err == CAIRN_ECANCELED)) {
			fail_cmd(r->x, u->errmsg);
			r->rv = EXIT_FAIL;
		}
		watch_run_done(r);
		return;
	}
	if (r->stopping)
		return;
	if (r->max_events > 0 && (int64_t)n > r->max_events - r->seen)
		n = (size_t)(r->max_events - r->seen);
	print_update(r->x, u, n);
	r->seen += (int64_t)n;
	if (ferror(stdout))
		watch_run_stop(r, EXIT_FAIL);
	else if (r->max_events > 0 && r->seen >= r->max_events)
		watch_run_stop(r, 0);
}

static void on_watch_signal(uv_signal_t *s, int signum)
{
	(void)signum;
	watch_run_stop(s->data, 0);
}

static void on_watch_timeout(uv_timer_t *t)
{
	struct watch_run *r = t->data;

	if (r->max_events > 0) {
		fprintf(stderr,
		        "Error: watch: timed out after %u ms with %" PRId64
		        " of %" PRId64 " events\n",
		        r->timeout_ms, r->seen, r->max_events);
		watch_run_stop(r, EXIT_FAIL);
	} else {
		watch_run_stop(r, 0);
	}
}

/* Signals and the optional timer, on the run's loop. */
static int watch_run_handles(struct watch_run *r)
{
	static const int signums[2] = {SIGINT, SIGTERM};
	int i;

	for (i = 0; i < 2; i++) {
		uv_signal_init(&r->loop, &r->sig[i]);
		r->sig[i].data = r;
		if (uv_signal_start(&r->sig[i], on_watch_signal, signums[i]) !=
		    0)
			return fail_cmd(r->x, "cannot catch signals");
	}
	if (r->timeout_ms > 0) {
		uv_timer_init(&r->loop, &r->timer);
		r->timer.data = r;
		r->has_timer = true;
		uv_timer_start(&r->timer, on_watch_timeout, r->timeout_ms, 0);
	}
	return 0;
}

/* Reads the watch's flags into opts and r; false after a usage error. */
static bool watch_options(struct ctx *x, struct cairn_watch_opts *o,
                          struct watch_run *r)
{
	if (x->val[WATCH_REV] &&
	    (!parse_i64(x->val[WATCH_REV], 10, &o->start_revision) ||
	     o->start_revision < 0)) {
		usage_error(x->cmd, "--rev: expected a revision >= 0");
		return false;
	}
	if (x->val[WATCH_MAX_EVENTS] &&
	    (!parse_i64(x->val[WATCH_MAX_EVENTS], 10, &r->max_events) ||
	     r->max_events < 1)) {
		usage_error(x->cmd, "--max-events: expected a number >= 1");
		return false;
	}
	if (x->val[WATCH_TIMEOUT] &&
	    !parse_duration(x->val[WATCH_TIMEOUT], &r->timeout_ms)) {
		usage_error(x->cmd,
		            "--timeout: bad duration (e.g. 500ms, 2s, 1m)");
		return false;
	}
	if (x->val[WATCH_NO_PUT] && x->val[WATCH_NO_DELETE]) {
		usage_error(x->cmd,
		            "--no-put and --no-delete leave nothing to watch");
		return false;
	}
	if (x->out == OUT_TABLE) {
		usage_error(x->cmd, "watch prints simple or json output");
		return false;
	}
	o->prev_kv = x->val[WATCH_PREV_KV] != NULL;
	o->no_put = x->val[WATCH_NO_PUT] != NULL;
	o->no_delete = x->val[WATCH_NO_DELETE] != NULL;
	o->progress_notify = x->val[WATCH_PROGRESS_NOTIFY] != NULL;
	return true;
}

/* Runs the loop until the watch ended, then until every handle closed. */
static int watch_run(struct watch_run *r, const struct cairn_watch_opts *o)
{
	struct cairn_options co = client_options(r->x, r->x->cmd_ms, false);
	char err[256] = "";
	int rv = cairn_open_async(&r->cl, &r->loop, r->x->endpoints, &co, err,
	                          sizeof err);

	if (rv == CAIRN_EINVAL) {
		usage_error(NULL, "--endpoints: %s", err);
		return EXIT_USAGE;
	}
	if (rv != 0)
		return fail_cmd(r->x, err);
	rv = watch_run_handles(r);
	if (rv == 0 &&
	    cairn_watch_start(r->cl, o, on_watch_update, r, &r->w) != 0)
		rv = fail_cmd(r->x, cairn_errmsg(r->cl));
	if (rv != 0) {
		r->rv = rv;
		watch_run_done(r);
	}
	uv_run(&r->loop, UV_RUN_DEFAULT);
	return r->rv;
}

static int cmd_watch(struct ctx *x)
{
	struct watch_run r;
	struct cairn_op op = {.type = CAIRN_OP_RANGE};
	struct cairn_watch_opts o;
	bool prefix = x->val[WATCH_PREFIX] != NULL;
	bool from_key = x->val[WATCH_FROM_KEY] != NULL;
	uint8_t *endbuf = malloc(strlen(x->args[0]) + 1);
	int rv = EXIT_USAGE;

	if (endbuf == NULL)
		return fail_cmd(x, "out of memory");
	memset(&r, 0, sizeof r);
	memset(&o, 0, sizeof o);
	r.x = x;
	if (range_flags_ok(x, prefix, from_key) && watch_options(x, &o, &r)) {
		set_range(x, &op, prefix, from_key, endbuf);
		o.key = op.key;
		o.key_len = op.key_len;
		o.end = op.end;
		o.end_len = op.end_len;
		if (uv_loop_init(&r.loop) != 0) {
			free(endbuf);
			return fail_cmd(x, "cannot create an event loop");
		}
		rv = watch_run(&r, &o);
		uv_run(&r.loop, UV_RUN_DEFAULT);
		uv_loop_close(&r.loop);
	}
	free(endbuf);
	return rv;
}

/* ---- compact ------------------------------------------------------------- */

static const struct flag compact_flags[] = {
    {"physical", 0, false, NULL,
     "accepted and ignored (etcdctl compatibility)"},
};

static int cmd_compact(struct ctx *x)
{
	struct cairn_op op = {.type = CAIRN_OP_COMPACT};
	struct cairn_result *r = NULL;
	int rv;

	if (!parse_i64(x->args[0], 10, &op.revision) || op.revision < 1) {
		usage_error(x->cmd, "compact needs a revision >= 1");
		return EXIT_USAGE;
	}
	rv = run_op(x, &op, &r);
	if (rv == 0 && x->out == OUT_JSON)
		print_json(r);
	else if (rv == 0)
		printf("compacted revision %" PRId64 "\n", op.revision);
	cairn_result_free(r);
	return rv;
}

/* ---- snapshot ------------------------------------------------------------ */

/* Writes the backup to path.part (mode 0600), syncs it, then renames it, so
 * path is either absent or whole. */
static int write_backup(const char *path, int64_t rev, const uint8_t *snap,
                        size_t len)
{
	uint8_t header[BACKUP_HEADER_SIZE];
	char tmp[PATH_MAX];
	FILE *f;
	int fd;

	if (snprintf(tmp, sizeof tmp, "%s.part", path) >= (int)sizeof tmp ||
	    backup_header(header, rev, snap, len) != 0)
		return -1;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || (f = fdopen(fd, "wb")) == NULL) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (fwrite(header, 1, sizeof header, f) != sizeof header ||
	    fwrite(snap, 1, len, f) != len || fflush(f) != 0 ||
	    fsync(fileno(f)) != 0) {
		fclose(f);
		unlink(tmp);
		return -1;
	}
	if (fclose(f) != 0 || rename(tmp, path) != 0) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

static int cmd_snapshot_save(struct ctx *x)
{
	struct cairn_op op = {.type = CAIRN_OP_SNAPSHOT};
	struct cairn_result *r = NULL;
	int rv;

	rv = run_op(x, &op, &r);
	if (rv != 0)
		return rv;
	if (write_backup(x->args[0], r->header.revision, r->snapshot,
	                 r->snapshot_len) != 0) {
		fprintf(stderr, "Error: snapshot save: cannot write %s: %s\n",
		        x->args[0], strerror(errno));
		cairn_result_free(r);
		return EXIT_FAIL;
	}
	printf("Snapshot saved at %s (revision %" PRId64 ", %zu bytes)\n",
	       x->args[0], r->header.revision,
	       r->snapshot_len + BACKUP_HEADER_SIZE);
	cairn_result_free(r);
	return 0;
}

static int cmd_snapshot_status(struct ctx *x)
{
	const uint8_t *payload;
	char err[256];
	int64_t rev;
	size_t len;
	struct buf b = BUF_INIT;
	uint8_t chunk[65536];
	size_t n;
	FILE *f = fopen(x->args[0], "rb");

	if (f == NULL) {
		fprintf(stderr, "Error: snapshot status: cannot open %s: %s\n",
		        x->args[0], strerror(errno));
		return EXIT_FAIL;
	}
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
		if (buf_append(&b, chunk, n) != 0)
			break;
	fclose(f);
	if (backup_check(b.data, b.len, &payload, &len, &rev, err, sizeof err) !=
	    0) {
		fprintf(stderr, "Error: snapshot status: %s: %s\n", x->args[0], err);
		buf_free(&b);
		return EXIT_FAIL;
	}
	if (x->out == OUT_JSON)
		printf("{\"revision\":%" PRId64 ",\"totalSize\":%zu,"
		       "\"hashOK\":true}\n",
		       rev, b.len);
	else
		printf("revision %" PRId64 ", %zu bytes, checksum OK\n", rev, b.len);
	buf_free(&b);
	return 0;
}

/* ---- lease --------------------------------------------------------------- */

/* The lease id argument (hex, optional 0x); false after a usage error. */
static bool lease_arg(struct ctx *x, int64_t *id)
{
	if (parse_lease(x->args[0], id))
		return true;
	usage_error(x->cmd,
	            "bad lease id '%s' (hex, as 'lease grant' prints it)",
	            x->args[0]);
	return false;
}

/* {"header":...,"ID":N — the caller adds its fields and the brace. */
static void json_lease_open(const struct cairn_result *r, int64_t id)
{
	putchar('{');
	json_header(&r->header);
	printf(",\"ID\":%" PRId64, id);
}

static int cmd_lease_grant(struct ctx *x)
{
	struct cairn_op op = {.type = CAIRN_OP_LEASE_GRANT};
	struct cairn_result *r = NULL;
	int rv;

	if (!parse_i64(x->args[0], 10, &op.ttl) || op.ttl < 1) {
		usage_error(x->cmd, "the TTL is a number of seconds >= 1");
		return EXIT_USAGE;
	}
	rv = run_op(x, &op, &r);
	if (rv == 0 && x->out == OUT_JSON) {
		json_lease_open(r, r->lease);
		printf(",\"TTL\":%" PRId64 "}\n", r->ttl);
	} else if (rv == 0) {
		printf("lease %016" PRIx64 " granted with TTL(%" PRId64 "s)\n",
		       (uint64_t)r->lease, r->ttl);
	}
	cairn_result_free(r);
	return rv;
}

static int cmd_lease_revoke(struct ctx *x)
{
	struct cairn_op op = {.type = CAIRN_OP_LEASE_REVOKE};
	struct cairn_result *r = NULL;
	int rv;

	if (!lease_arg(x, &op.lease))
		return EXIT_USAGE;
	rv = run_op(x, &op, &r);
	if (rv == 0 && x->out == OUT_JSON)
		print_json(r);
	else if (rv == 0)
		printf("lease %016" PRIx64 " revoked\n", (uint64_t)op.lease);
	cairn_result_free(r);
	return rv;
}

/* ,"keys":["k",...], or ,"keys_base64":[...] when a key is not UTF-8. */
static void json_lease_keys(const struct cairn_result *r)
{
	bool utf8 = true;
	size_t i;

	for (i = 0; i < r->n_kvs; i++)
		utf8 = utf8 && utf8_valid(r->kvs[i].key, r->kvs[i].key_len);
	printf(",\"keys%s\":[", utf8 ? "" : "_base64");
	for (i = 0; i < r->n_kvs; i++) {
		if (i > 0)
			putchar(',');
		if (utf8)
			json_string(r->kvs[i].key, r->kvs[i].key_len);
		else
			json_base64(r->kvs[i].key, r->kvs[i].key_len);
	}
	putchar(']');
}

/* etcdctl's format: ", attached keys([k1 k2])". */
static void print_lease_keys(const struct cairn_result *r)
{
	size_t i;

	fputs(", attached keys([", stdout);
	for (i = 0; i < r->n_kvs; i++) {
		if (i > 0)
			putchar(' ');
		fwrite(r->kvs[i].key, 1, r->kvs[i].key_len, stdout);
	}
	fputs("])", stdout);
}

static void print_lease_ttl(const struct ctx *x, const struct cairn_result *r,
                            bool keys)
{
	if (x->out == OUT_JSON) {
		json_lease_open(r, r->lease);
		printf(",\"TTL\":%" PRId64 ",\"grantedTTL\":%" PRId64, r->ttl,
		       r->granted_ttl);
		if (keys)
			json_lease_keys(r);
		puts("}");
		return;
	}
	printf("lease %016" PRIx64 " granted with TTL(%" PRId64
	       "s), remaining(%" PRId64 "s)",
	       (uint64_t)r->lease, r->granted_ttl, r->ttl);
	if (keys)
		print_lease_keys(r);
	putchar('\n');
}

/* A lease that is gone is an answer, not an error (as etcdctl: TTL -1). */
static void print_lease_expired(const struct ctx *x, int64_t id)
{
	if (x->out == OUT_JSON)
		printf("{\"ID\":%" PRId64 ",\"TTL\":-1,\"grantedTTL\":0}\n",
		       id);
	else
		printf("lease %016" PRIx64 " already expired\n", (uint64_t)id);
}

enum { TTL_KEYS };
static const struct flag ttl_flags[] = {
    {"keys", 0, false, NULL, "also list the keys attached to the lease"},
};

static int cmd_lease_timetolive(struct ctx *x)
{
	struct cairn_op op = {.type = CAIRN_OP_LEASE_TTL};
	struct cairn_result *r = NULL;
	int rv;

	if (!lease_arg(x, &op.lease))
		return EXIT_USAGE;
	op.keys = x->val[TTL_KEYS] != NULL;
	rv = open_client(x);
	if (rv != 0)
		return rv;
	rv = cairn_do(x->cl, &op, &r);
	if (rv == CAIRN_ENOLEASE)
		print_lease_expired(x, op.lease);
	else if (rv != 0)
		return fail_cmd(x, cairn_errmsg(x->cl));
	else
		print_lease_ttl(x, r, op.keys);
	cairn_result_free(r);
	return 0;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a;
	int64_t y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static int cmd_lease_list(struct ctx *x)
{
	struct cairn_op op = {.type = CAIRN_OP_LEASE_LIST};
	struct cairn_result *r = NULL;
	size_t i;
	int rv;

	rv = run_op(x, &op, &r);
	if (rv != 0)
		return rv;
	if (r->n_leases > 1)
		qsort(r->leases, r->n_leases, sizeof *r->leases, cmp_i64);
	if (x->out == OUT_JSON) {
		putchar('{');
		json_header(&r->header);
		fputs(",\"leases\":[", stdout);
		for (i = 0; i < r->n_leases; i++)
			printf("%s{\"ID\":%" PRId64 "}", i ? "," : "",
			       r->leases[i]);
		puts("]}");
	} else {
		printf("found %zu leases\n", r->n_leases);
		for (i = 0; i < r->n_leases; i++)
			printf("%016" PRIx64 "\n", (uint64_t)r->leases[i]);
	}
	cairn_result_free(r);
	return 0;
}

/* -- keep-alive: renewals on cairnctl's own loop, until a signal, the
 * lease's end or, with --once, the first answer. */

#define KEEPALIVE_MIN_MS 500u

enum { KEEPALIVE_ONCE };
static const struct flag keepalive_flags[] = {
    {"once", 0, false, NULL, "renew the lease once and exit"},
};

struct keepalive_run {
	struct ctx *x;
	uv_loop_t loop;
	uv_signal_t sig[2];
	uv_timer_t timer;
	cairn_client *cl;
	int64_t id;
	bool once;
	bool done;
	int rv;
};

/* Ends the run with status rv: closes the handles and the client (whose
 * pending keep-alive, if any, is called back canceled and ignored). */
static void keepalive_done(struct keepalive_run *k, int rv)
{
	if (k->done)
		return;
	k->done = true;
	k->rv = rv;
	uv_close((uv_handle_t *)&k->sig[0], on_loop_handle_closed);
	uv_close((uv_handle_t *)&k->sig[1], on_loop_handle_closed);
	uv_close((uv_handle_t *)&k->timer, on_loop_handle_closed);
	cairn_close(k->cl);
}

/* A third of the TTL (etcd's pace), but not more often than every 500 ms. */
static uint64_t keepalive_interval(int64_t ttl)
{
	uint64_t ms = ttl > 0 ? (uint64_t)ttl * 1000 / 3 : 0;

	return ms < KEEPALIVE_MIN_MS ? KEEPALIVE_MIN_MS : ms;
}

static void print_keepalive(const struct ctx *x, const struct cairn_result *r)
{
	if (x->out == OUT_JSON) {
		json_lease_open(r, r->lease);
		printf(",\"TTL\":%" PRId64 "}\n", r->ttl);
	} else {
		printf("lease %016" PRIx64 " keepalived with TTL(%" PRId64
		       ")\n",
		       (uint64_t)r->lease, r->ttl);
	}
	fflush(stdout); /* a reader of a pipe sees each renewal */
}

static void on_keepalive_timer(uv_timer_t *t);

/* What an answer means for the run; the next renewal is due in *next_ms. */
static void keepalive_answer(struct keepalive_run *k,
                             const struct cairn_result *res, uint64_t *next_ms)
{
	*next_ms = KEEPALIVE_MIN_MS;
	if (res->err == 0) {
		print_keepalive(k->x, res);
		*next_ms = keepalive_interval(res->ttl);
		if (ferror(stdout) || k->once)
			keepalive_done(k, ferror(stdout) ? EXIT_FAIL : 0);
	} else if (res->err == CAIRN_ENOLEASE) {
		fprintf(stderr, "lease %016" PRIx64 " expired or revoked\n",
		        (uint64_t)k->id);
		keepalive_done(k, EXIT_FAIL);
	} else if (k->once) {
		fail_cmd(k->x, res->errmsg);
		keepalive_done(k, EXIT_FAIL);
	} else { /* the lease may live on: keep trying */
		fprintf(stderr, "Error: %s: %s (retrying)\n", k->x->cmd->name,
		        res->errmsg);
	}
}

static void on_keepalive(cairn_client *c, struct cairn_result *res, void *arg)
{
	struct keepalive_run *k = arg;
	uint64_t next_ms;

	(void)c;
	if (!k->done) {
		keepalive_answer(k, res, &next_ms);
		if (!k->done)
			uv_timer_start(&k->timer, on_keepalive_timer, next_ms,
			               0);
	}
	cairn_result_free(res);
}

static void keepalive_send(struct keepalive_run *k)
{
	struct cairn_op op = {.type = CAIRN_OP_LEASE_KEEPALIVE, .lease = k->id};

	if (cairn_submit(k->cl, &op, on_keepalive, k) != 0) {
		fail_cmd(k->x, cairn_errmsg(k->cl));
		keepalive_done(k, EXIT_FAIL);
	}
}

static void on_keepalive_timer(uv_timer_t *t)
{
	keepalive_send(t->data);
}

static void on_keepalive_signal(uv_signal_t *s, int signum)
{
	(void)signum;
	keepalive_done(s->data, 0);
}

/* Signals and the renewal timer, all initialized before any can fail, so
 * keepalive_done() may close them all. */
static int keepalive_handles(struct keepalive_run *k)
{
	static const int signums[2] = {SIGINT, SIGTERM};
	int i;

	uv_timer_init(&k->loop, &k->timer);
	k->timer.data = k;
	for (i = 0; i < 2; i++) {
		uv_signal_init(&k->loop, &k->sig[i]);
		k->sig[i].data = k;
	}
	for (i = 0; i < 2; i++)
		if (uv_signal_start(&k->sig[i], on_keepalive_signal,
		                    signums[i]) != 0)
			return fail_cmd(k->x, "cannot catch signals");
	return 0;
}

/* Runs the loop until the run is done, then until every handle closed. */
static int keepalive_run(struct keepalive_run *k)
{
	struct cairn_options co = client_options(k->x, k->x->cmd_ms, false);
	char err[256] = "";
	int rv = cairn_open_async(&k->cl, &k->loop, k->x->endpoints, &co, err,
	                          sizeof err);

	if (rv == CAIRN_EINVAL) {
		usage_error(NULL, "--endpoints: %s", err);
		return EXIT_USAGE;
	}
	if (rv != 0)
		return fail_cmd(k->x, err);
	rv = keepalive_handles(k);
	if (rv != 0)
		keepalive_done(k, rv);
	else
		keepalive_send(k); /* the first renewal at once */
	uv_run(&k->loop, UV_RUN_DEFAULT);
	return k->rv;
}

static int cmd_lease_keepalive(struct ctx *x)
{
	struct keepalive_run k;
	int rv;

	memset(&k, 0, sizeof k);
	k.x = x;
	k.once = x->val[KEEPALIVE_ONCE] != NULL;
	if (!lease_arg(x, &k.id))
		return EXIT_USAGE;
	if (uv_loop_init(&k.loop) != 0)
		return fail_cmd(x, "cannot create an event loop");
	rv = keepalive_run(&k);
	uv_run(&k.loop, UV_RUN_DEFAULT);
	uv_loop_close(&k.loop);
	return rv;
}

/* ---- per-endpoint status ------------------------------------------------- */

struct ep_status {
	char name[128];
	cairn_client *cl;
	struct cairn_result *res; /* NULL on failure */
	char err[512];
};

static void on_status(cairn_client *c, struct cairn_result *res, void *arg)
{
	struct ep_status *s = arg;

	(void)c;
	if (res->err == 0) {
		s->res = res;
		return;
	}
	snprintf(s->err, sizeof s->err, "%s", res->errmsg);
	cairn_result_free(res);
}

/* Splits the endpoint list; returns how many or -1 (too many/too long). */
static int split_endpoints(const char *list, struct ep_status *st, int max)
{
	int n = 0;
	const char *p = list;
	size_t len;

	while (n < max) {
		while (*p == ' ')
			p++;
		len = strcspn(p, ",");
		while (len > 0 && p[len - 1] == ' ')
			len--;
		if (len >= sizeof st[n].name)
			return -1;
		memcpy(st[n].name, p, len);
		st[n].name[len] = '\0';
		n++;
		p += strcspn(p, ",");
		if (*p++ == '\0')
			return n;
	}
	return -1;
}

/* STATUS of every endpoint at once, each asked alone (no redirect). Returns
 * 0, or EXIT_USAGE when an endpoint is malformed. */
static int status_all(struct ctx *x, struct ep_status *st, int n,
                      unsigned timeout_ms)
{
	struct cairn_options o = client_options(x, timeout_ms, true);
	struct cairn_op op = {.type = CAIRN_OP_STATUS};
	uv_loop_t loop;
	int rv = 0;
	int i;

	if (uv_loop_init(&loop) != 0)
		return fail_cmd(x, "cannot create an event loop");
	for (i = 0; i < n && rv == 0; i++) {
		rv = cairn_open_async(&st[i].cl, &loop, st[i].name, &o,
		                      st[i].err, sizeof st[i].err);
		if (rv == CAIRN_EINVAL)
			usage_error(NULL, "--endpoints: %s", st[i].err);
		else if (rv == 0 &&
		         cairn_submit(st[i].cl, &op, on_status, &st[i]) != 0)
			snprintf(st[i].err, sizeof st[i].err, "%s",
			         cairn_errmsg(st[i].cl));
		rv = rv == CAIRN_EINVAL ? EXIT_USAGE : 0;
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	for (i = 0; i < n; i++)
		cairn_close(st[i].cl);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	return rv;
}

static void free_statuses(struct ep_status *st, int n)
{
	int i;

	for (i = 0; i < n; i++)
		cairn_result_free(st[i].res);
}

/* ---- endpoint status ----------------------------------------------------- */

static void status_row(const struct ep_status *s, char cells[9][128])
{
	const struct cairn_status *st = &s->res->status;

	snprintf(cells[0], 128, "%.127s", s->name);
	snprintf(cells[1], 128, "%016" PRIx64, st->member_id);
	snprintf(cells[2], 128, "%s", st->version ? st->version : "");
	human_bytes(st->db_size, cells[3], 128);
	snprintf(cells[4], 128, "%s",
	         st->leader_id != 0 && st->leader_id == st->member_id
	             ? "true"
	             : "false");
	snprintf(cells[5], 128, "%" PRIu64, st->raft_term);
	snprintf(cells[6], 128, "%" PRIu64, st->raft_index);
	snprintf(cells[7], 128, "%" PRIu64, st->raft_applied);
	snprintf(cells[8], 128, "%" PRId64, st->revision);
}

static void status_json(const struct ep_status *s)
{
	const struct cairn_status *st = &s->res->status;

	printf("{\"Endpoint\":");
	json_cstr(s->name);
	printf(",\"Status\":{");
	json_header(&s->res->header);
	printf(",\"member_id\":%" PRIu64 ",\"leader\":%" PRIu64 ",\"name\":",
	       st->member_id, st->leader_id);
	json_cstr(st->name);
	printf(",\"version\":");
	json_cstr(st->version);
	printf(",\"dbSize\":%" PRIu64 ",\"raftTerm\":%" PRIu64
	       ",\"raftIndex\":%" PRIu64 ",\"raftAppliedIndex\":%" PRIu64
	       ",\"revision\":%" PRId64 ",\"compactRevision\":%" PRId64
	       ",\"keys\":%" PRIu64 "}}",
	       st->db_size, st->raft_term, st->raft_index, st->raft_applied,
	       st->revision, st->compact_revision, st->keys);
}

static bool print_statuses(const struct ctx *x, const struct ep_status *st,
                           int n)
{
	static const char *const hdr[] = {
	    "ENDPOINT",  "ID",        "VERSION",    "DB SIZE",
	    "IS LEADER", "RAFT TERM", "RAFT INDEX", "RAFT APPLIED INDEX",
	    "REVISION"};
	struct table t = {9, hdr, NULL, 0, 0};
	char cells[9][128];
	const char *row[9];
	bool ok = true;
	bool first = true;
	int i;
	int k;

	if (x->out == OUT_JSON)
		putchar('[');
	for (i = 0; i < n; i++) {
		if (st[i].res == NULL)
			continue;
		if (x->out == OUT_JSON) {
			printf("%s", first ? "" : ",");
			status_json(&st[i]);
			first = false;
			continue;
		}
		status_row(&st[i], cells);
		for (k = 0; k < 9; k++)
			row[k] = cells[k];
		if (x->out == OUT_TABLE)
			ok = ok && table_add(&t, row);
		else
			printf("%s, %s, %s, %s, %s, %s, %s, %s, %s\n", row[0],
			       row[1], row[2], row[3], row[4], row[5], row[6],
			       row[7], row[8]);
	}
	if (x->out == OUT_JSON)
		puts("]");
	if (x->out == OUT_TABLE && ok)
		table_print(&t);
	table_free(&t);
	return ok;
}

static int cmd_endpoint_status(struct ctx *x)
{
	struct ep_status st[64];
	int n = split_endpoints(x->endpoints, st, 64);
	int rv = 0;
	int i;

	if (n < 0) {
		usage_error(NULL,
		            "--endpoints: too many endpoints or one too long");
		return EXIT_USAGE;
	}
	for (i = 0; i < n; i++) {
		st[i].cl = NULL;
		st[i].res = NULL;
		st[i].err[0] = '\0';
	}
	rv = status_all(x, st, n, x->cmd_ms);
	if (rv == 0 && !print_statuses(x, st, n))
		rv = fail_cmd(x, "out of memory");
	for (i = 0; rv == 0 && i < n; i++)
		if (st[i].res == NULL) {
			fprintf(
			    stderr,
			    "Failed to get the status of endpoint %s (%s)\n",
			    st[i].name, st[i].err);
			rv = EXIT_FAIL;
		}
	free_statuses(st, n);
	return rv;
}

/* ---- member list --------------------------------------------------------- */

/* The endpoint whose member is id, from the statuses; NULL if none. */
static const struct ep_status *status_of(const struct ep_status *st, int n,
                                         uint64_t id)
{
	int i;

	for (i = 0; i < n; i++)
		if (st[i].res != NULL && st[i].res->status.member_id == id)
			return &st[i];
	return NULL;
}

static void member_row(const struct cairn_member *m, const struct ep_status *s,
                       char cells[6][128])
{
	const char *cli = m->client_address ? m->client_address
	                  : s != NULL       ? s->name
	                                    : "";

	snprintf(cells[0], 128, "%016" PRIx64, m->id);
	snprintf(cells[1], 128, "%s",
	         s != NULL && s->res->status.name ? s->res->status.name
	         : m->name                        ? m->name
	                                          : "");
	snprintf(cells[2], 128, "%s", m->peer_address);
	snprintf(cells[3], 128, "%s", cli);
	snprintf(cells[4], 128, "%s", m->voter ? "voter" : "learner");
	snprintf(cells[5], 128, "%s", m->leader ? "true" : "false");
}

static void member_json(const struct cairn_member *m, char cells[6][128])
{
	printf("{\"ID\":%" PRIu64 ",\"name\":", m->id);
	json_cstr(cells[1]);
	printf(",\"peerURLs\":[");
	json_cstr(cells[2]);
	printf("],\"clientURLs\":[");
	if (cells[3][0] != '\0')
		json_cstr(cells[3]);
	printf("],\"isLearner\":%s,\"isLeader\":%s}",
	       m->voter ? "false" : "true", m->leader ? "true" : "false");
}

static bool print_members(const struct ctx *x, const struct cairn_result *r,
                          const struct ep_status *st, int n)
{
	static const char *const hdr[] = {"ID",          "NAME", "PEER ADDR",
	                                  "CLIENT ADDR", "ROLE", "IS LEADER"};
	struct table t = {6, hdr, NULL, 0, 0};
	char cells[6][128];
	const char *row[6];
	bool ok = true;
	size_t i;
	int k;

	if (x->out == OUT_JSON) {
		putchar('{');
		json_header(&r->header);
		printf(",\"members\":[");
	}
	for (i = 0; i < r->n_members; i++) {
		member_row(&r->members[i], status_of(st, n, r->members[i].id),
		           cells);
		for (k = 0; k < 6; k++)
			row[k] = cells[k];
		if (x->out == OUT_JSON) {
			printf("%s", i ? "," : "");
			member_json(&r->members[i], cells);
		} else if (x->out == OUT_TABLE) {
			ok = ok && table_add(&t, row);
		} else {
			printf("%s, %s, %s, %s, %s, %s\n", row[0], row[1],
			       row[2], row[3], row[4], row[5]);
		}
	}
	if (x->out == OUT_JSON)
		puts("]}");
	if (x->out == OUT_TABLE && ok)
		table_print(&t);
	table_free(&t);
	return ok;
}

static int cmd_member_list(struct ctx *x)
{
	struct cairn_op op = {.type = CAIRN_OP_MEMBERS};
	struct ep_status st[64];
	struct cairn_result *r = NULL;
	int n = split_endpoints(x->endpoints, st, 64);
	int rv;
	int i;

	for (i = 0; i < n; i++) {
		st[i].cl = NULL;
		st[i].res = NULL;
		st[i].err[0] = '\0';
	}
	rv = run_op(x, &op, &r);
	/* Names and client addresses: each endpoint says which member it is. */
	if (rv == 0 && n > 0)
		rv = status_all(
		    x, st, n, x->dial_ms < x->cmd_ms ? x->dial_ms : x->cmd_ms);
	if (rv == 0 && !print_members(x, r, st, n > 0 ? n : 0))
		rv = fail_cmd(x, "out of memory");
	if (n > 0)
		free_statuses(st, n);
	cairn_result_free(r);
	return rv;
}

/* ---- member add, promote, remove ----------------------------------------- */



/*
 * The member id argument: decimal, as cairn-store --id takes it, or hex with
 * 0x. A decimal with leading zeros is refused: it is most likely the 16 hex
 * digits 'member list' prints ("0000000000000010" is member 16, not 10).
 * False after a usage error.
 */
static bool member_arg(struct ctx *x, uint64_t *id)
{
	const char *s = x->args[0];
	bool hex = s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
	const char *digits = hex ? s + 2 : s;
	unsigned long long v;
	char *end;

	if (*digits != '\0' && *digits != '-' && *digits != '+' &&
	    *digits != ' ' && (hex || *digits != '0')) {
		errno = 0;
		v = strtoull(digits, &end, hex ? 16 : 10);
		if (errno == 0 && *end == '\0' && v > 0) {
			*id = v;
			return true;
		}
	}
	usage_error(x->cmd,
	            "bad member id '%s': a positive decimal integer as "
	            "cairn-store --id takes it (without leading zeros), or "
	            "0x and the hex id 'member list' prints",
	            s);
	return false;
}

/* The answer of a change: -o json as member list (the members after the
 * change), else "Member <ID> <what>". */
static void print_change(const struct ctx *x, const struct cairn_result *r,
                         uint64_t id, const char *what)
{
	if (x->out == OUT_JSON)
		print_members(x, r, NULL, 0);
	else
		printf("Member %016" PRIx64 " %s\n", id, what);
}

enum { MADD_PEER_URLS, MADD_LEARNER };
static const struct flag member_add_flags[] = {
    [MADD_PEER_URLS] = {"peer-urls", 0, true, "IP:PORT",
                        "the new member's peer address (required)"},
    [MADD_LEARNER] = {"learner", 0, false, NULL,
                      "accepted: a new member always starts as a learner"},
};

static int cmd_member_add(struct ctx *x)
{
	struct cairn_op op = {.type = CAIRN_OP_MEMBER_ADD};
	const char *peer = x->val[MADD_PEER_URLS];
	struct cairn_result *r = NULL;
	int rv;

	if (!member_arg(x, &op.member_id))
		return EXIT_USAGE;
	if (peer == NULL || *peer == '\0') {
		usage_error(x->cmd, "member add needs --peer-urls=IP:PORT");
		return EXIT_USAGE;
	}
	if (strncmp(peer, "http://", 7) == 0)
		peer += 7;
	if (!proto_valid_address(peer)) {
		usage_error(x->cmd,
		            "--peer-urls: '%s' is not one IPv4 address and "
		            "port like 10.0.0.4:2380",
		            x->val[MADD_PEER_URLS]);
		return EXIT_USAGE;
	}
	op.peer_address = peer;
	rv = run_op(x, &op, &r);
	if (rv == 0)
		print_change(x, r, op.member_id,
		             "added to the cluster as a learner");
	if (rv == 0 && x->out != OUT_JSON)
		printf("\nCAIRN_STORE_FLAGS: --id %" PRIu64
		       " --join --listen-peer %s\n"
		       "(and a copy of the cluster secret, unless the cluster "
		       "runs --insecure)\n",
		       op.member_id, peer);
	cairn_result_free(r);
	return rv;
}

static int cmd_member_promote(struct ctx *x)
{
	struct cairn_op op = {.type = CAIRN_OP_MEMBER_PROMOTE};
	struct cairn_result *r = NULL;
	int rv;

	if (!member_arg(x, &op.member_id))
		return EXIT_USAGE;
	rv = run_op(x, &op, &r);
	if (rv == 0)
		print_change(x, r, op.member_id, "promoted to voter");
	cairn_result_free(r);
	return rv;
}

static int cmd_member_remove(struct ctx *x)
{
	struct cairn_op op = {.type = CAIRN_OP_MEMBER_REMOVE};
	struct cairn_result *r = NULL;
	int rv;

	if (!member_arg(x, &op.member_id))
		return EXIT_USAGE;
	rv = run_op(x, &op, &r);
	if (rv == 0)
		print_change(x, r, op.member_id, "removed from the cluster");
	cairn_result_free(r);
	return rv;
}

/* ---- commands and flags -------------------------------------------------- */

/* ---- users, roles, auth -------------------------------------------------- */

/* Reads a password from the terminal without echo; false if there is none
 * or reading failed. */
static bool tty_password(const char *prompt, char *out, size_t len)
{
	struct termios old;
	struct termios quiet;
	FILE *tty = fopen("/dev/tty", "r+");
	bool ok = false;
	size_t n;

	if (tty == NULL)
		return false;
	fputs(prompt, tty);
	fflush(tty);
	if (tcgetattr(fileno(tty), &old) == 0) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(fileno(tty), TCSAFLUSH, &quiet);
		ok = fgets(out, (int)len, tty) != NULL;
		tcsetattr(fileno(tty), TCSAFLUSH, &old);
		fputc('\n', tty);
	}
	fclose(tty);
	if (!ok)
		return false;
	n = strcspn(out, "\r\n");
	out[n] = '\0';
	return true;
}

/* One line of stdin as the password (the non-interactive form). */
static bool stdin_password(char *out, size_t len)
{
	if (fgets(out, (int)len, stdin) == NULL)
		return false;
	out[strcspn(out, "\r\n")] = '\0';
	return true;
}

enum { UADD_PASSWORD };
static const struct flag user_pw_flags[] = {
    {"new-user-password", 0, true, "PASSWORD",
     "the password (else NAME:PASSWORD, a prompt on a terminal, or a line "
     "of stdin)"},
};

/* The new password of 'user add' and 'user passwd': the flag, the part
 * after ':' in the name argument (cut off), a prompt twice on a terminal,
 * else a line of stdin. */
static int new_password(struct ctx *x, char *pw, size_t len)
{
	char again[PROTO_MAX_PASSWORD + 2];
	char *colon = strchr(x->args[0], ':');

	if (x->val[UADD_PASSWORD] != NULL) {
		snprintf(pw, len, "%s", x->val[UADD_PASSWORD]);
		if (colon != NULL)
			*colon = '\0';
		return 0;
	}
	if (colon != NULL) {
		*colon = '\0';
		snprintf(pw, len, "%s", colon + 1);
		return 0;
	}
	if (isatty(STDIN_FILENO)) {
		if (!tty_password("Password of new user: ", pw, len) ||
		    !tty_password("Type password of new user again for "
		                  "confirmation: ",
		                  again, sizeof again))
			return fail_cmd(x, "cannot read the password");
		if (strcmp(pw, again) != 0)
			return fail_cmd(x, "the passwords do not match");
		return 0;
	}
	if (!stdin_password(pw, len))
		return fail_cmd(x, "no password on stdin");
	return 0;
}

static int auth_simple(struct ctx *x, struct cairn_op *op, const char *fmt,
                       ...) __attribute__((format(printf, 3, 4)));

/* Runs an auth op; prints the message made from fmt, or the header as
 * JSON. */
static int auth_simple(struct ctx *x, struct cairn_op *op, const char *fmt,
                       ...)
{
	struct cairn_result *r = NULL;
	int rv = run_op(x, op, &r);
	va_list ap;

	if (rv == 0 && x->out == OUT_JSON) {
		print_json(r);
	} else if (rv == 0) {
		va_start(ap, fmt);
		vprintf(fmt, ap);
		va_end(ap);
		putchar('\n');
	}
	cairn_result_free(r);
	return rv;
}

static int cmd_user_add(struct ctx *x)
{
	char pw[PROTO_MAX_PASSWORD + 2];
	struct cairn_op op = {.type = CAIRN_OP_USER_ADD};
	int rv = new_password(x, pw, sizeof pw);

	if (rv != 0)
		return rv;
	op.user = x->args[0];
	op.password = pw;
	rv = auth_simple(x, &op, "User %s created", x->args[0]);
	sodium_memzero(pw, sizeof pw);
	return rv;
}

static int cmd_user_passwd(struct ctx *x)
{
	char pw[PROTO_MAX_PASSWORD + 2];
	struct cairn_op op = {.type = CAIRN_OP_USER_PASSWD};
	int rv = new_password(x, pw, sizeof pw);

	if (rv != 0)
		return rv;
	op.user = x->args[0];
	op.password = pw;
	rv = auth_simple(x, &op, "Password updated");
	sodium_memzero(pw, sizeof pw);
	return rv;
}

static int cmd_user_delete(struct ctx *x)
{
	struct cairn_op op = {.type = CAIRN_OP_USER_DELETE, .user = x->args[0]};

	return auth_simple(x, &op, "User %s deleted", x->args[0]);
}

static int cmd_user_grant(struct ctx *x)
{
	struct cairn_op op = {.type = CAIRN_OP_USER_GRANT_ROLE,
	                      .user = x->args[0], .role = x->args[1]};

	return auth_simple(x, &op, "Role %s is granted to user %s", x->args[1],
	                   x->args[0]);
}

static int cmd_user_revoke(struct ctx *x)
{
	struct cairn_op op = {.type = CAIRN_OP_USER_REVOKE_ROLE,
	                      .user = x->args[0], .role = x->args[1]};

	return auth_simple(x, &op, "Role %s is revoked from user %s",
	                   x->args[1], x->args[0]);
}

static int cmd_role_add(struct ctx *x)
{
	struct cairn_op op = {.type = CAIRN_OP_ROLE_ADD, .role = x->args[0]};

	return auth_simple(x, &op, "Role %s created", x->args[0]);
}

static int cmd_role_delete(struct ctx *x)
{
	struct cairn_op op = {.type = CAIRN_OP_ROLE_DELETE, .role = x->args[0]};

	return auth_simple(x, &op, "Role %s deleted", x->args[0]);
}

/* A list of names: one a line, a one-column table, or JSON under key. */
static int print_names(const struct ctx *x, const struct cairn_result *r,
                       const char *key, const char *title)
{
	const char *const hdr[] = {title};
	struct table t = {1, hdr, NULL, 0, 0};
	bool ok = true;
	size_t i;

	if (x->out == OUT_JSON) {
		putchar('{');
		json_header(&r->header);
		printf(",\"%s\":[", key);
		for (i = 0; i < r->n_names; i++) {
			if (i > 0)
				putchar(',');
			json_cstr(r->names[i]);
		}
		puts("]}");
		return 0;
	}
	for (i = 0; i < r->n_names; i++) {
		if (x->out == OUT_TABLE)
			ok = ok && table_add(&t, &r->names[i]);
		else
			puts(r->names[i]);
	}
	if (x->out == OUT_TABLE && ok)
		table_print(&t);
	table_free(&t);
	return ok ? 0 : fail_cmd(x, "out of memory");
}

static int list_cmd(struct ctx *x, int type, const char *key,
                    const char *title)
{
	struct cairn_op op = {.type = type};
	struct cairn_result *r = NULL;
	int rv = run_op(x, &op, &r);

	if (rv == 0)
		rv = print_names(x, r, key, title);
	cairn_result_free(r);
	return rv;
}

static int cmd_user_list(struct ctx *x)
{
	return list_cmd(x, CAIRN_OP_USER_LIST, "users", "USER");
}

static int cmd_role_list(struct ctx *x)
{
	return list_cmd(x, CAIRN_OP_ROLE_LIST, "roles", "ROLE");
}

static int cmd_user_get(struct ctx *x)
{
	struct cairn_op op = {.type = CAIRN_OP_USER_GET, .user = x->args[0]};
	struct cairn_result *r = NULL;
	size_t i;
	int rv = run_op(x, &op, &r);

	if (rv != 0)
		return rv;
	if (x->out == OUT_JSON) {
		printf("{\"user\":");
		json_cstr(x->args[0]);
		putchar(',');
		json_header(&r->header);
		fputs(",\"roles\":[", stdout);
		for (i = 0; i < r->n_names; i++) {
			if (i > 0)
				putchar(',');
			json_cstr(r->names[i]);
		}
		puts("]}");
	} else {
		printf("User: %s\nRoles:", x->args[0]);
		for (i = 0; i < r->n_names; i++)
			printf(" %s", r->names[i]);
		putchar('\n');
	}
	cairn_result_free(r);
	return 0;
}

static const char *const perm_names[] = {"read", "write", "readwrite"};

/* etcdctl's forms: "key", "[key, end)", "[key, <open ended>" */
static void print_perm_range(const struct cairn_permission *p)
{
	char *k = printable(p->key, p->key_len);
	char *e = printable(p->end, p->end_len);

	if (p->end_len == 0)
		printf("\t%s\n", k ? k : "?");
	else if (p->end_len == 1 && p->end[0] == 0)
		printf("\t[%s, <open ended>\n", k ? k : "?");
	else
		printf("\t[%s, %s)\n", k ? k : "?", e ? e : "?");
	free(k);
	free(e);
}

static void role_json(const struct ctx *x, const struct cairn_result *r)
{
	size_t i;

	printf("{\"role\":");
	json_cstr(x->args[0]);
	putchar(',');
	json_header(&r->header);
	fputs(",\"perm\":[", stdout);
	for (i = 0; i < r->n_perms; i++) {
		const struct cairn_permission *p = &r->perms[i];
		printf("%s{\"permType\":\"%s\",", i ? "," : "",
		       perm_names[p->type]);
		json_bytes("key", p->key, p->key_len);
		putchar(',');
		json_bytes("range_end", p->end, p->end_len);
		putchar('}');
	}
	puts("]}");
}

static int cmd_role_get(struct ctx *x)
{
	struct cairn_op op = {.type = CAIRN_OP_ROLE_GET, .role = x->args[0]};
	struct cairn_result *r = NULL;
	size_t i;
	int rv = run_op(x, &op, &r);

	if (rv != 0)
		return rv;
	if (x->out == OUT_JSON) {
		role_json(x, r);
		cairn_result_free(r);
		return 0;
	}
	printf("Role %s\nKV Read:\n", x->args[0]);
	if (strcmp(x->args[0], "root") == 0)
		puts("\t[, <open ended>");
	for (i = 0; i < r->n_perms; i++)
		if (r->perms[i].type != CAIRN_PERM_WRITE)
			print_perm_range(&r->perms[i]);
	puts("KV Write:");
	if (strcmp(x->args[0], "root") == 0)
		puts("\t[, <open ended>");
	for (i = 0; i < r->n_perms; i++)
		if (r->perms[i].type != CAIRN_PERM_READ)
			print_perm_range(&r->perms[i]);
	cairn_result_free(r);
	return 0;
}

enum { PERM_PREFIX, PERM_FROM_KEY };
static const struct flag perm_flags[] = {
    {"prefix", 0, false, NULL, "the permission covers the keys that start "
                               "with KEY"},
    {"from-key", 0, false, NULL, "the permission covers the keys >= KEY"},
};

/* KEY [END] from args[first...], with --prefix/--from-key, as 'get'. */
static bool perm_range(struct ctx *x, int first, struct cairn_op *op,
                       uint8_t *endbuf)
{
	struct ctx y = *x;
	bool prefix = x->val[PERM_PREFIX] != NULL;
	bool from_key = x->val[PERM_FROM_KEY] != NULL;

	y.n_args = x->n_args - first;
	memmove(y.args, x->args + first, (size_t)y.n_args * sizeof y.args[0]);
	if (!range_flags_ok(&y, prefix, from_key))
		return false;
	set_range(&y, op, prefix, from_key, endbuf);
	return true;
}

static int cmd_role_grant(struct ctx *x)
{
	struct cairn_op op = {.type = CAIRN_OP_ROLE_GRANT_PERMISSION,
	                      .role = x->args[0]};
	uint8_t *endbuf;
	int rv;

	for (op.perm = 0; op.perm < 3; op.perm++)
		if (strcmp(x->args[1], perm_names[op.perm]) == 0)
			break;
	if (op.perm == 3) {
		usage_error(x->cmd, "the permission type is read, write or "
		                    "readwrite, not '%s'",
		            x->args[1]);
		return EXIT_USAGE;
	}
	endbuf = malloc(strlen(x->args[2]) + 1);
	if (endbuf == NULL)
		return fail_cmd(x, "out of memory");
	if (!perm_range(x, 2, &op, endbuf)) {
		free(endbuf);
		return EXIT_USAGE;
	}
	rv = auth_simple(x, &op, "Role %s updated", x->args[0]);
	free(endbuf);
	return rv;
}

static int cmd_role_revoke(struct ctx *x)
{
	struct cairn_op op = {.type = CAIRN_OP_ROLE_REVOKE_PERMISSION,
	                      .role = x->args[0]};
	uint8_t *endbuf = malloc(strlen(x->args[1]) + 1);
	int rv;

	if (endbuf == NULL)
		return fail_cmd(x, "out of memory");
	if (!perm_range(x, 1, &op, endbuf)) {
		free(endbuf);
		return EXIT_USAGE;
	}
	rv = auth_simple(x, &op, "Permission of %s is revoked from role %s",
	                 op.end_len ? "the range" : "the key", x->args[0]);
	free(endbuf);
	return rv;
}

static int cmd_auth_enable(struct ctx *x)
{
	struct cairn_op op = {.type = CAIRN_OP_AUTH_ENABLE};

	return auth_simple(x, &op, "Authentication Enabled");
}

static int cmd_auth_disable(struct ctx *x)
{
	struct cairn_op op = {.type = CAIRN_OP_AUTH_DISABLE};

	return auth_simple(x, &op, "Authentication Disabled");
}

static int cmd_auth_status(struct ctx *x)
{
	struct cairn_op op = {.type = CAIRN_OP_AUTH_STATUS};
	struct cairn_result *r = NULL;
	int rv = run_op(x, &op, &r);

	if (rv != 0)
		return rv;
	if (x->out == OUT_JSON) {
		putchar('{');
		json_header(&r->header);
		printf(",\"enabled\":%s,\"authRevision\":%" PRIu64 "}\n",
		       r->auth_enabled ? "true" : "false", r->auth_revision);
	} else {
		printf("Authentication Status: %s\nAuthRevision: %" PRIu64 "\n",
		       r->auth_enabled ? "true" : "false", r->auth_revision);
	}
	cairn_result_free(r);
	return 0;
}

static int cmd_help(struct ctx *x);

static const struct cmd commands[] = {
    {"put", "put [options] <key> [<value>]",
     "puts the given key into the store",
     "The value is read from stdin when not given. Prints OK, and the\n"
     "previous pair with --prev-kv.\n",
     put_flags, sizeof put_flags / sizeof put_flags[0], 1, 2, cmd_put},
    {"get", "get [options] <key> [<range_end>]",
     "gets the key or a range of keys",
     "With <range_end>, the keys in [key, range_end). Simple output: the key\n"
     "then the value on the next line, for each pair; --count-only prints the\n"
     "number of keys.\n",
     get_flags, sizeof get_flags / sizeof get_flags[0], 1, 2, cmd_get},
    {"del", "del [options] <key> [<range_end>]",
     "removes the key or a range of keys",
     "Prints the number of keys deleted (then the pairs with --prev-kv).\n",
     del_flags, sizeof del_flags / sizeof del_flags[0], 1, 2, cmd_del},
    {"txn", "txn [options]", "runs a transaction read from stdin",
     "Reads, as etcdctl, compares, a blank line, success requests, a blank\n"
     "line, failure requests (the last blank line may be the end of input):\n"
     "\n"
     "  value(\"key\") = \"v\"      compares: value, version, create, mod\n"
     "  version(\"key\") > \"3\"    operators: = != < >\n"
     "\n"
     "  put key value            requests: put, get, del with their flags\n"
     "  get key --prefix         (--prefix, --from-key, --prev-kv, --limit,\n"
     "                            --rev, --keys-only, --count-only, --lease)\n"
     "\n"
     "  put key other\n"
     "\n"
     "Tokens may be \"quoted\" with Go escapes, 'raw' or bare words. Prints\n"
     "SUCCESS or FAILURE, then each request's answer after a blank line.\n",
     txn_flags, sizeof txn_flags / sizeof txn_flags[0], 0, 0, cmd_txn},
    {"watch", "watch [options] <key> [<range_end>]",
     "watches changes to a key or a range of keys",
     "Prints each change as it happens, oldest first, until interrupted\n"
     "(SIGINT or SIGTERM: exit status 0) or until the watch ends with an\n"
     "error (status 1), e.g. when --rev asks for compacted history. Without\n"
     "--rev it starts after the revision of the member that serves it.\n"
     "\n"
     "Simple output, as etcdctl: PUT or DELETE, then the previous key and\n"
     "value with --prev-kv, then the key and the value (an empty line for a\n"
     "deletion); 'progress notify: N' for a progress notification. With\n"
     "-o json, one object per line per revision:\n"
     "  {\"revision\":N,\"events\":[{\"type\":\"PUT\",\"kv\":{...},"
     "\"prev_kv\":{...}}]}\n"
     "(a revision too big for one frame comes in several lines, all but the\n"
     "last with \"more\":true) and {\"progress\":true,\"revision\":N}.\n"
     "\n"
     "The watch survives the loss of the member it is connected to: it goes\n"
     "on from another endpoint without a gap or a duplicate. Creating it\n"
     "must succeed within --command-timeout.\n",
     watch_flags, sizeof watch_flags / sizeof watch_flags[0], 1, 2, cmd_watch},
    {"compact", "compact [options] <revision>",
     "discards the history below a revision",
     "Reads and watches at revisions below it then fail as compacted. Prints\n"
     "'compacted revision N'. The compaction goes through the log like a\n"
     "write; --physical is accepted for etcdctl's sake and changes nothing.\n",
     compact_flags, sizeof compact_flags / sizeof compact_flags[0], 1, 1,
     cmd_compact},
    {"lease grant", "lease grant <ttl>",
     "creates a lease with a TTL in seconds",
     "Prints 'lease <ID> granted with TTL(<ttl>s)'; the id is 16 hex digits,\n"
     "as every lease command and put --lease take it. The keys put with the\n"
     "lease are deleted when it is revoked or expires, which it does <ttl>\n"
     "seconds after the last renewal (see lease keep-alive).\n",
     NULL, 0, 1, 1, cmd_lease_grant},
    {"lease revoke", "lease revoke <ID>",
     "revokes a lease and deletes its keys",
     "Deletes the lease and every key attached to it, all in one revision.\n"
     "Prints 'lease <ID> revoked'. <ID> is hex as 'lease grant' prints it\n"
     "(an optional 0x is accepted).\n",
     NULL, 0, 1, 1, cmd_lease_revoke},
    {"lease timetolive", "lease timetolive [options] <ID>",
     "shows a lease's TTL, remaining time and keys",
     "Prints 'lease <ID> granted with TTL(<g>s), remaining(<r>s)', followed\n"
     "with --keys by ', attached keys([<key> <key>...])'. A lease that is\n"
     "gone prints 'lease <ID> already expired' (exit status 0). With -o json:\n"
     "  {\"header\":{...},\"ID\":N,\"TTL\":<r>,\"grantedTTL\":<g>,"
     "\"keys\":[...]}\n"
     "(\"TTL\":-1 for a lease that is gone; \"keys_base64\" when a key is not\n"
     "UTF-8).\n",
     ttl_flags, sizeof ttl_flags / sizeof ttl_flags[0], 1, 1,
     cmd_lease_timetolive},
    {"lease list", "lease list", "lists the leases",
     "Prints 'found N leases', then the id of each (16 hex digits), one per\n"
     "line, in order. Any member answers, so a lease granted a moment ago may\n"
     "be missing from a member that lags.\n",
     NULL, 0, 0, 0, cmd_lease_list},
    {"lease keep-alive", "lease keep-alive [options] <ID>",
     "keeps a lease alive",
     "Renews the lease to its full TTL at once, then every third of its TTL\n"
     "(not more often than every 500 ms), printing 'lease <ID> keepalived\n"
     "with TTL(<ttl>)' each time, until interrupted (SIGINT or SIGTERM: exit\n"
     "status 0) or until the lease is gone ('lease <ID> expired or revoked'\n"
     "on stderr, status 1). Other failures are reported on stderr and the\n"
     "renewal is tried again. With --once: one renewal, then exit.\n",
     keepalive_flags, sizeof keepalive_flags / sizeof keepalive_flags[0], 1, 1,
     cmd_lease_keepalive},
    {"snapshot save", "snapshot save <file>",
     "saves a backup of the cluster's state to a file",
     "Asks the leader for its whole state (keys with their history, leases)\n"
     "and writes it to <file> with a checksum, mode 0600, atomically (a\n"
     "half-written backup never takes the file's name). Restore it with\n"
     "cairn-store --restore-from (see cairn-store(8)).\n",
     NULL, 0, 1, 1, cmd_snapshot_save},
    {"snapshot status", "snapshot status <file>",
     "checks a backup file and prints its revision",
     "Checks the header and the checksum of a file written by snapshot save\n"
     "and prints 'revision N, SIZE bytes, checksum OK' (-o json: revision,\n"
     "totalSize, hashOK). Needs no cluster.\n",
     NULL, 0, 1, 1, cmd_snapshot_status},
    {"member list", "member list", "lists the members of the cluster",
     "Columns: ID (16 hex digits), NAME, PEER ADDR, CLIENT ADDR, ROLE (voter\n"
     "or learner), IS LEADER. Names and client addresses come from asking\n"
     "each --endpoints entry which member it is.\n",
     NULL, 0, 0, 0, cmd_member_list},
    {"member add", "member add <ID> --peer-urls=IP:PORT",
     "adds a member to the cluster as a learner",
     "<ID> is the new member's id, decimal as cairn-store --id takes it (or\n"
     "0x and hex digits); IP:PORT is the peer address it will listen on.\n"
     "The leader adds it as a learner: it receives the log but does not vote\n"
     "(nor count toward a quorum) until 'member promote'. Prints\n"
     "\n"
     "  Member <ID> added to the cluster as a learner\n"
     "\n"
     "  CAIRN_STORE_FLAGS: --id <ID> --join --listen-peer <IP:PORT>\n"
     "\n"
     "(the ID in 16 hex digits first, decimal in the flags): start the new\n"
     "member with those flags, a new --data-dir and its --listen-client,\n"
     "and a copy of the cluster secret (its --cluster-secret-file, by\n"
     "default DATA_DIR/cluster.secret, mode 0600), unless the cluster runs\n"
     "--insecure;\n"
     "once it has caught up, promote it. -o json prints the members after\n"
     "the change, as member list does. One membership change at a time:\n"
     "another one in progress makes this fail (exit status 1). A change\n"
     "whose answer is lost (a connection or the leadership lost meanwhile)\n"
     "is not retried: check 'member list' before trying again.\n",
     member_add_flags, sizeof member_add_flags / sizeof member_add_flags[0],
     1, 1, cmd_member_add},
    {"member promote", "member promote <ID>",
     "makes a learner a voting member",
     "The leader first lets the learner catch up with the log, then makes it\n"
     "a voter; this may take several seconds (raise --command-timeout for a\n"
     "learner far behind). Prints 'Member <ID> promoted to voter'. <ID> is\n"
     "decimal (or 0x and hex). -o json prints the members after the change.\n"
     "A change whose answer is lost is not retried: check 'member list'.\n",
     NULL, 0, 1, 1, cmd_member_promote},
    {"member remove", "member remove <ID>",
     "removes a member from the cluster",
     "The removed member stops. Prints 'Member <ID> removed from the\n"
     "cluster'. <ID> is decimal (or 0x and hex). -o json prints the members\n"
     "after the change. A change whose answer is lost is not retried: check\n"
     "'member list'.\n",
     NULL, 0, 1, 1, cmd_member_remove},
    {"endpoint status", "endpoint status", "prints the status of each endpoint",
     "Asks every --endpoints entry on its own. Columns: ENDPOINT, ID, "
     "VERSION,\n"
     "DB SIZE, IS LEADER, RAFT TERM, RAFT INDEX, RAFT APPLIED INDEX, "
     "REVISION.\n"
     "Unreachable endpoints are reported on stderr and make the exit status "
     "1.\n",
     NULL, 0, 0, 0, cmd_endpoint_status},
    {"user add", "user add [options] <name[:password]>", "adds a user",
     "The password comes from --new-user-password, from NAME:PASSWORD, from\n"
     "a prompt (twice) on a terminal, or else from one line of stdin.\n"
     "Prints 'User <name> created'. Needs role root once auth is enabled.\n",
     user_pw_flags, 1, 1, 1, cmd_user_add},
    {"user delete", "user delete <name>", "deletes a user", "", NULL, 0, 1, 1,
     cmd_user_delete},
    {"user list", "user list", "lists the users", "", NULL, 0, 0, 0,
     cmd_user_list},
    {"user get", "user get <name>", "prints a user's roles", "", NULL, 0, 1,
     1, cmd_user_get},
    {"user passwd", "user passwd [options] <name>", "changes a password",
     "The new password comes as for 'user add'. Tokens of the user made\n"
     "before stop working (its clients authenticate again).\n",
     user_pw_flags, 1, 1, 1, cmd_user_passwd},
    {"user grant-role", "user grant-role <name> <role>",
     "grants a role to a user", "", NULL, 0, 2, 2, cmd_user_grant},
    {"user revoke-role", "user revoke-role <name> <role>",
     "revokes a role from a user", "", NULL, 0, 2, 2, cmd_user_revoke},
    {"role add", "role add <role>", "adds a role", "", NULL, 0, 1, 1,
     cmd_role_add},
    {"role delete", "role delete <role>", "deletes a role (and takes it "
     "from every user)", "", NULL, 0, 1, 1, cmd_role_delete},
    {"role list", "role list", "lists the roles (root always)", "", NULL, 0,
     0, 0, cmd_role_list},
    {"role get", "role get <role>", "prints a role's permissions", "", NULL,
     0, 1, 1, cmd_role_get},
    {"role grant-permission",
     "role grant-permission [options] <role> <read|write|readwrite> <key> "
     "[<range_end>]",
     "grants a role read, write or both on a key, range or prefix",
     "Ranges follow etcd: without <range_end>, the one key; with it, [key,\n"
     "range_end); --prefix, the keys that start with <key>; --from-key, the\n"
     "keys >= <key>. Granting again on the same range changes the type.\n",
     perm_flags, 2, 3, 4, cmd_role_grant},
    {"role revoke-permission",
     "role revoke-permission [options] <role> <key> [<range_end>]",
     "revokes a role's permission on exactly that key, range or prefix", "",
     perm_flags, 2, 2, 3, cmd_role_revoke},
    {"auth enable", "auth enable", "turns authentication on",
     "Needs a user 'root' holding role 'root' (cairnctl user add root;\n"
     "cairnctl user grant-role root root). From then on every request needs\n"
     "a user (--user) whose roles allow it.\n",
     NULL, 0, 0, 0, cmd_auth_enable},
    {"auth disable", "auth disable", "turns authentication off (root only)",
     "", NULL, 0, 0, 0, cmd_auth_disable},
    {"auth status", "auth status", "says whether authentication is on", "",
     NULL, 0, 0, 0, cmd_auth_status},
    {"help", "help [<command>]", "shows the help of cairnctl or of a command",
     "", NULL, 0, 0, 2, cmd_help},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

enum {
	G_ENDPOINTS,
	G_OUTPUT,
	G_WRITE_OUT,
	G_DIAL,
	G_COMMAND,
	G_SECRET_FILE,
	G_INSECURE,
	G_USER,
	G_HELP,
	G_VERSION
};
static const struct flag global_flags[] = {
    {"endpoints", 0, true, "LIST",
     "comma-separated host:port list (env CAIRN_ENDPOINTS;\n"
     "                                default 127.0.0.1:2379)"},
    {"output", 'o', true, "FORMAT", "simple, json or table (default simple)"},
    {"write-out", 'w', true, "FORMAT", "the same as --output"},
    {"dial-timeout", 0, true, "DURATION",
     "per connection attempt (default 2s)"},
    {"command-timeout", 0, true, "DURATION",
     "per command, retries included (default 5s)"},
    {"secret-file", 0, true, "FILE",
     "the cluster secret: a copy of the first member's\n"
     "                                DATA_DIR/cluster.secret (env "
     "CAIRN_SECRET_FILE,\n"
     "                                or the text in CAIRN_SECRET)"},
    {"insecure", 0, false, NULL,
     "plaintext, for a store run with --insecure\n"
     "                                (env CAIRN_INSECURE=1)"},
    {"user", 0, true, "NAME[:PASSWORD]",
     "the user to act as when auth is enabled; the\n"
     "                                password is asked for on a terminal "
     "when left\n"
     "                                out (env CAIRN_USER, CAIRN_PASSWORD)"},
    {"help", 'h', false, NULL, "this help; with a command, its help"},
    {"version", 0, false, NULL, "prints the version"},
};
#define N_GLOBAL (sizeof global_flags / sizeof global_flags[0])

/* "  left   text", the text on the next line when left is too wide. */
static void help_line(FILE *f, const char *left, const char *text)
{
	if (strlen(left) < 30)
		fprintf(f, "  %-30s%s\n", left, text);
	else
		fprintf(f, "  %s\n  %-30s%s\n", left, "", text);
}

static void print_flags(FILE *f, const struct flag *flags, size_t n)
{
	char left[64];
	size_t i;

	for (i = 0; i < n; i++) {
		if (flags[i].short_name)
			snprintf(left, sizeof left, "-%c, --%s%s%s",
			         flags[i].short_name, flags[i].name,
			         flags[i].arg ? " " : "",
			         flags[i].arg ? flags[i].arg : "");
		else
			snprintf(left, sizeof left, "    --%s%s%s",
			         flags[i].name, flags[i].arg ? " " : "",
			         flags[i].arg ? flags[i].arg : "");
		help_line(f, left, flags[i].help);
	}
}

static void global_usage(FILE *f)
{
	size_t i;

	fputs(
	    "cairnctl: the command-line client of the cairn store.\n\n"
	    "Usage: cairnctl [global options] <command> [options] [arguments]\n"
	    "\nCommands:\n",
	    f);
	for (i = 0; i < N_COMMANDS; i++)
		help_line(f, commands[i].usage, commands[i].summary);
	fputs("\nGlobal options (anywhere on the line):\n", f);
	print_flags(f, global_flags, N_GLOBAL);
	fputs(
	    "\nDurations: 500ms, 2s, 1.5s, 1m (a bare number is seconds).\n"
	    "JSON output: keys and values that are valid UTF-8 are strings in\n"
	    "\"key\" and \"value\"; other bytes are base64 in \"key_base64\" "
	    "and\n"
	    "\"value_base64\". Ids are decimal in JSON, 16 hex digits "
	    "elsewhere.\n"
	    "Exit status: 0 ok, 1 error from the store or the connection, 2 "
	    "usage\n"
	    "error. Run 'cairnctl <command> --help' for a command's options.\n",
	    f);
}

static void command_usage(FILE *f, const struct cmd *c)
{
	fprintf(f, "cairnctl %s: %s.\n\nUsage: cairnctl %s\n", c->name,
	        c->summary, c->usage);
	if (c->details[0] != '\0')
		fprintf(f, "\n%s", c->details);
	if (c->n_flags > 0) {
		fputs("\nOptions:\n", f);
		print_flags(f, c->flags, c->n_flags);
	}
	fputs("\nGlobal options: see 'cairnctl --help'.\n", f);
}

static const struct cmd *find_command(const char *w1, const char *w2,
                                      int *words)
{
	char name[64];
	size_t i;

	for (i = 0; i < N_COMMANDS; i++) {
		if (strcmp(commands[i].name, w1) == 0) {
			*words = 1;
			return &commands[i];
		}
		snprintf(name, sizeof name, "%s %s", w1, w2 ? w2 : "");
		if (w2 != NULL && strcmp(commands[i].name, name) == 0) {
			*words = 2;
			return &commands[i];
		}
	}
	return NULL;
}

static int cmd_help(struct ctx *x)
{
	const struct cmd *c;
	int words;

	if (x->n_args == 0) {
		global_usage(stdout);
		return 0;
	}
	c = find_command(x->args[0], x->n_args > 1 ? x->args[1] : NULL, &words);
	if (c == NULL || words != x->n_args) {
		usage_error(NULL, "unknown command '%s'", x->args[0]);
		return EXIT_USAGE;
	}
	command_usage(stdout, c);
	return 0;
}

/* ---- the command line ---------------------------------------------------- */

/* A flag token: "--name", "--name=value", "-x", "-xvalue", "-x=value". */
struct flagtok {
	const char *name;
	size_t name_len;
	char short_name;
	const char *value; /* inline value, or NULL */
};

static bool is_flag(const char *a)
{
	return a[0] == '-' && a[1] != '\0' && strcmp(a, "--") != 0;
}

static void split_flag(const char *a, struct flagtok *t)
{
	const char *eq;

	memset(t, 0, sizeof *t);
	if (a[1] == '-') {
		t->name = a + 2;
		eq = strchr(t->name, '=');
		t->name_len = eq ? (size_t)(eq - t->name) : strlen(t->name);
		t->value = eq ? eq + 1 : NULL;
		return;
	}
	t->short_name = a[1];
	if (a[2] != '\0')
		t->value = a[2] == '=' ? a + 3 : a + 2;
}

static int find_flag(const struct flag *defs, size_t n, const struct flagtok *t)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (t->name != NULL && strlen(defs[i].name) == t->name_len &&
		    memcmp(defs[i].name, t->name, t->name_len) == 0)
			return (int)i;
		if (t->name == NULL && defs[i].short_name != 0 &&
		    defs[i].short_name == t->short_name)
			return (int)i;
	}
	return -1;
}

/* Takes the value of flag f (from the token or the next argument) into *out;
 * booleans get "" (or NULL for an explicit =false). */
static int take_flag(const struct cmd *cmd, const struct flag *f,
                     const struct flagtok *t, int argc, char **argv, int *i,
                     const char **out)
{
	if (!f->takes_value) {
		if (t->value == NULL || strcmp(t->value, "true") == 0) {
			*out = "";
			return 0;
		}
		if (strcmp(t->value, "false") == 0) {
			*out = NULL;
			return 0;
		}
		usage_error(cmd, "--%s takes no value", f->name);
		return EXIT_USAGE;
	}
	if (t->value != NULL) {
		*out = t->value;
		return 0;
	}
	if (*i + 1 >= argc) {
		usage_error(cmd, "--%s needs a value", f->name);
		return EXIT_USAGE;
	}
	*out = argv[++*i];
	return 0;
}

struct cmdline {
	const char *gval[N_GLOBAL];
	const struct cmd *cmd;
	struct ctx *x;
};

/* One flag at argv[*i]: global, or the command's. */
static int one_flag(struct cmdline *cl, int argc, char **argv, int *i)
{
	const struct cmd *cmd = cl->cmd;
	struct flagtok t;
	int k;

	split_flag(argv[*i], &t);
	k = find_flag(global_flags, N_GLOBAL, &t);
	if (k >= 0)
		return take_flag(cmd, &global_flags[k], &t, argc, argv, i,
		                 &cl->gval[k]);
	k = cmd != NULL ? find_flag(cmd->flags, cmd->n_flags, &t) : -1;
	if (k >= 0)
		return take_flag(cmd, &cmd->flags[k], &t, argc, argv, i,
		                 &cl->x->val[k]);
	usage_error(cmd, "unknown flag %s%s", argv[*i],
	            cmd == NULL ? " (before the command)" : "");
	return EXIT_USAGE;
}

static int positional(struct cmdline *cl, char *a)
{
	if (cl->x->n_args == MAX_ARGS) {
		usage_error(cl->cmd, "too many arguments");
		return EXIT_USAGE;
	}
	cl->x->args[cl->x->n_args++] = a;
	return 0;
}

/* Finds the command at argv[*i] (one or two words). */
static int command_words(struct cmdline *cl, int argc, char **argv, int *i)
{
	int words = 0;

	cl->cmd =
	    find_command(argv[*i], *i + 1 < argc ? argv[*i + 1] : NULL, &words);
	if (cl->cmd == NULL) {
		if (strcmp(argv[*i], "member") == 0 ||
		    strcmp(argv[*i], "endpoint") == 0 ||
		    strcmp(argv[*i], "lease") == 0)
			usage_error(
			    NULL, "'%s' needs a subcommand (%s)", argv[*i],
			    argv[*i][0] == 'm'   ? "list, add, promote or remove"
			    : argv[*i][0] == 'e' ? "status"
			                         : "grant, revoke, "
			                           "timetolive, list or "
			                           "keep-alive");
		else
			usage_error(NULL, "unknown command '%s'", argv[*i]);
		return EXIT_USAGE;
	}
	*i += words - 1;
	return 0;
}

static int parse_line(struct cmdline *cl, int argc, char **argv)
{
	bool flags_done = false;
	int rv = 0;
	int i;

	for (i = 1; rv == 0 && i < argc; i++) {
		if (!flags_done && strcmp(argv[i], "--") == 0)
			flags_done = true;
		else if (!flags_done && is_flag(argv[i]))
			rv = one_flag(cl, argc, argv, &i);
		else if (cl->cmd == NULL)
			rv = command_words(cl, argc, argv, &i);
		else
			rv = positional(cl, argv[i]);
	}
	return rv;
}

/* Global flag values into x. */
static int set_user(struct ctx *x, const char *v);

static int apply_globals(struct cmdline *cl)
{
	struct ctx *x = cl->x;
	const char *out =
	    cl->gval[G_OUTPUT] ? cl->gval[G_OUTPUT] : cl->gval[G_WRITE_OUT];
	const char *env = getenv("CAIRN_ENDPOINTS");

	x->endpoints = cl->gval[G_ENDPOINTS] ? cl->gval[G_ENDPOINTS]
	               : env && *env         ? env
	                                     : "127.0.0.1:2379";
	x->out = OUT_SIMPLE;
	if (out != NULL && strcmp(out, "json") == 0)
		x->out = OUT_JSON;
	else if (out != NULL && strcmp(out, "table") == 0)
		x->out = OUT_TABLE;
	else if (out != NULL && strcmp(out, "simple") != 0) {
		usage_error(cl->cmd,
		            "--output: unknown format '%s' (simple, json or "
		            "table)",
		            out);
		return EXIT_USAGE;
	}
	x->secret_file = cl->gval[G_SECRET_FILE];
	x->insecure = cl->gval[G_INSECURE] != NULL;
	if (set_user(x, cl->gval[G_USER]) != 0)
		return EXIT_FAIL;
	if (x->secret_file != NULL && x->insecure) {
		usage_error(cl->cmd, "--secret-file and --insecure exclude each "
		                     "other");
		return EXIT_USAGE;
	}
	x->dial_ms = 2000;
	x->cmd_ms = 5000;
	if ((cl->gval[G_DIAL] &&
	     !parse_duration(cl->gval[G_DIAL], &x->dial_ms)) ||
	    (cl->gval[G_COMMAND] &&
	     !parse_duration(cl->gval[G_COMMAND], &x->cmd_ms))) {
		usage_error(
		    cl->cmd, "bad duration for --%s (e.g. 500ms, 2s, 1m)",
		    cl->gval[G_DIAL] &&
		            !parse_duration(cl->gval[G_DIAL], &x->dial_ms)
		        ? "dial-timeout"
		        : "command-timeout");
		return EXIT_USAGE;
	}
	return 0;
}

/* --user NAME[:PASSWORD], else CAIRN_USER and CAIRN_PASSWORD; a password
 * left out is asked for on the terminal (empty when there is none). */
static int set_user(struct ctx *x, const char *v)
{
	const char *env_pw = getenv("CAIRN_PASSWORD");
	char *colon;

	if (v == NULL) {
		v = getenv("CAIRN_USER");
		if (v == NULL || *v == '\0')
			return 0;
		if (env_pw != NULL) {
			snprintf(x->user_buf, sizeof x->user_buf, "%s", v);
			snprintf(x->password, sizeof x->password, "%s", env_pw);
			x->user = x->user_buf;
			return 0;
		}
	}
	snprintf(x->user_buf, sizeof x->user_buf, "%s", v);
	x->user = x->user_buf;
	colon = strchr(x->user_buf, ':');
	if (colon != NULL) {
		*colon = '\0';
		snprintf(x->password, sizeof x->password, "%s", strchr(v, ':') + 1);
		return 0;
	}
	if (isatty(STDIN_FILENO) && !tty_password("Password: ", x->password,
	                                          sizeof x->password)) {
		fprintf(stderr, "Error: cannot read the password of %s\n", v);
		return -1;
	}
	return 0;
}

/* What a command of one argument misses, from its usage. */
static const char *missing_arg(const struct cmd *c)
{
	if (c->min_args != 1)
		return "more arguments";
	if (strncmp(c->name, "member ", 7) == 0)
		return "a member id";
	if (strstr(c->usage, "<revision>") != NULL)
		return "a revision";
	if (strstr(c->usage, "<ttl>") != NULL)
		return "a TTL in seconds";
	if (strstr(c->usage, "<ID>") != NULL)
		return "a lease id";
	return "a key";
}

static int check_args(const struct ctx *x)
{
	const struct cmd *c = x->cmd;

	if (x->n_args < c->min_args) {
		usage_error(c, "%s needs %s", c->name, missing_arg(c));
		return EXIT_USAGE;
	}
	if (x->n_args > c->max_args) {
		usage_error(c, "too many arguments for %s", c->name);
		return EXIT_USAGE;
	}
	return 0;
}

static int finish_output(int rv)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "Error: writing the output failed\n");
		return rv != 0 ? rv : EXIT_FAIL;
	}
	return rv;
}

int main(int argc, char **argv)
{
	struct ctx x;
	struct cmdline cl;
	int rv;

	memset(&x, 0, sizeof x);
	memset(&cl, 0, sizeof cl);
	cl.x = &x;
	rv = parse_line(&cl, argc, argv);
	if (rv != 0)
		return rv;
	x.cmd = cl.cmd;
	if (cl.gval[G_VERSION] != NULL) {
		printf("cairnctl version: %s\nAPI version: %d\n", CAIRN_VERSION,
		       PROTO_VERSION);
		return finish_output(0);
	}
	if (cl.gval[G_HELP] != NULL || x.cmd == NULL) {
		if (x.cmd != NULL)
			command_usage(stdout, x.cmd);
		else
			global_usage(cl.gval[G_HELP] ? stdout : stderr);
		return finish_output(cl.gval[G_HELP] ? 0 : EXIT_USAGE);
	}
	rv = apply_globals(&cl);
	if (rv == 0)
		rv = check_args(&x);
	if (rv == 0)
		rv = x.cmd->run(&x);
	cairn_close(x.cl);
	return finish_output(rv);
}
