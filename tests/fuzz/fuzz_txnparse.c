/*
 * fuzz_txnparse: cairnctl's parser of etcdctl's transaction text
 * (cli/txnparse.c), which reads what a user types or pipes in.
 *
 * The input is the text. It is parsed whole (txnparse_text) and line by line
 * (txnparse_line), which must agree: same outcome, same message, same
 * transaction. An accepted transaction must be sound (known targets,
 * results and op types, readable keys and values) and survive a round trip:
 * written back as text, with every byte as a \xHH escape, it parses to the
 * same transaction.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "fuzz.h"
#include "txnparse.h"

static volatile uint8_t sink;

static void check_bytes(const void *p, size_t len)
{
	size_t i;

	FUZZ_CHECK(p != NULL || len == 0);
	for (i = 0; i < len; i++)
		sink = ((const uint8_t *)p)[i];
}

static bool same_bytes(const void *a, size_t alen, const void *b, size_t blen)
{
	return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

static bool same_cmp(const struct cairn_compare *a,
                     const struct cairn_compare *b)
{
	return same_bytes(a->key, a->key_len, b->key, b->key_len) &&
	       a->target == b->target && a->result == b->result &&
	       same_bytes(a->value, a->value_len, b->value, b->value_len) &&
	       a->number == b->number;
}

static bool same_op(const struct cairn_op *a, const struct cairn_op *b)
{
	return a->type == b->type &&
	       same_bytes(a->key, a->key_len, b->key, b->key_len) &&
	       same_bytes(a->end, a->end_len, b->end, b->end_len) &&
	       same_bytes(a->value, a->value_len, b->value, b->value_len) &&
	       a->lease == b->lease && a->limit == b->limit &&
	       a->revision == b->revision && a->prev_kv == b->prev_kv &&
	       a->keys_only == b->keys_only && a->count_only == b->count_only;
}

static bool same_ops(const struct cairn_op *a, size_t na,
                     const struct cairn_op *b, size_t nb)
{
	size_t i;

	if (na != nb)
		return false;
	for (i = 0; i < na; i++)
		if (!same_op(&a[i], &b[i]))
			return false;
	return true;
}

static bool same_txn(const struct cairn_txn *a, const struct cairn_txn *b)
{
	size_t i;

	if (a->n_compare != b->n_compare)
		return false;
	for (i = 0; i < a->n_compare; i++)
		if (!same_cmp(&a->compare[i], &b->compare[i]))
			return false;
	return same_ops(a->success, a->n_success, b->success, b->n_success) &&
	       same_ops(a->failure, a->n_failure, b->failure, b->n_failure);
}

static void check_op(const struct cairn_op *op)
{
	FUZZ_CHECK(op->type == CAIRN_OP_PUT || op->type == CAIRN_OP_RANGE ||
	           op->type == CAIRN_OP_DELETE);
	FUZZ_CHECK(op->key_len > 0);
	check_bytes(op->key, op->key_len);
	check_bytes(op->end, op->end_len);
	check_bytes(op->value, op->value_len);
	FUZZ_CHECK(op->lease >= 0 && op->limit >= 0 && op->revision >= 0);
}

static void check_txn(const struct cairn_txn *t)
{
	size_t i;

	for (i = 0; i < t->n_compare; i++) {
		const struct cairn_compare *c = &t->compare[i];
		FUZZ_CHECK(c->target >= CAIRN_CMP_VALUE &&
		           c->target <= CAIRN_CMP_MOD);
		FUZZ_CHECK(c->result >= CAIRN_CMP_EQUAL &&
		           c->result <= CAIRN_CMP_GREATER);
		check_bytes(c->key, c->key_len);
		check_bytes(c->value, c->value_len);
	}
	for (i = 0; i < t->n_success; i++)
		check_op(&t->success[i]);
	for (i = 0; i < t->n_failure; i++)
		check_op(&t->failure[i]);
}

/* ---- writing a transaction back as text
 * --------------------------------------- */

static void put(struct buf *b, const char *s)
{
	if (buf_append(b, s, strlen(s)) != 0)
		abort();
}

static void put_quoted(struct buf *b, const void *p, size_t len)
{
	char esc[5];
	size_t i;

	put(b, " \"");
	for (i = 0; i < len; i++) {
		snprintf(esc, sizeof esc, "\\x%02x", ((const uint8_t *)p)[i]);
		put(b, esc);
	}
	put(b, "\"");
}

/* prefix, then v in decimal or as 0x hex. */
static void put_num(struct buf *b, const char *prefix, long long v, bool hex)
{
	char s[64];

	if (hex)
		snprintf(s, sizeof s, "%s0x%llx", prefix,
		         (unsigned long long)v);
	else
		snprintf(s, sizeof s, "%s%lld", prefix, v);
	put(b, s);
}

static void write_op(struct buf *b, const struct cairn_op *op)
{
	put(b, op->type == CAIRN_OP_PUT     ? "put"
	       : op->type == CAIRN_OP_RANGE ? "get"
	                                    : "del");
	put_quoted(b, op->key, op->key_len);
	if (op->type == CAIRN_OP_PUT)
		put_quoted(b, op->value, op->value_len);
	else if (op->end_len > 0)
		put_quoted(b, op->end, op->end_len);
	if (op->prev_kv)
		put(b, " --prev-kv");
	if (op->keys_only)
		put(b, " --keys-only");
	if (op->count_only)
		put(b, " --count-only");
	if (op->lease != 0)
		put_num(b, " --lease=", op->lease, true);
	if (op->limit != 0)
		put_num(b, " --limit=", op->limit, false);
	if (op->revision != 0)
		put_num(b, " --rev=", op->revision, false);
	put(b, "\n");
}

static void write_txn(struct buf *b, const struct cairn_txn *t)
{
	static const char *const targets[] = {"value", "version", "create",
	                                      "mod"};
	static const char *const results[] = {" =", " !=", " <", " >"};
	size_t i;

	for (i = 0; i < t->n_compare; i++) {
		const struct cairn_compare *c = &t->compare[i];
		put(b, targets[c->target]);
		put(b, "(");
		put_quoted(b, c->key, c->key_len);
		put(b, ")");
		put(b, results[c->result]);
		if (c->target == CAIRN_CMP_VALUE)
			put_quoted(b, c->value, c->value_len);
		else
			put_num(b, " ", c->number, false);
		put(b, "\n");
	}
	put(b, "\n");
	for (i = 0; i < t->n_success; i++)
		write_op(b, &t->success[i]);
	put(b, "\n");
	for (i = 0; i < t->n_failure; i++)
		write_op(b, &t->failure[i]);
}

/* ---- the target
 * ---------------------------------------------------------------- */

static int parse_lines(struct txnparse *p, const char *s, size_t n)
{
	const char *nl;
	int rv = 0;

	while (n > 0 && rv == 0) {
		nl = memchr(s, '\n', n);
		if (nl == NULL)
			nl = s + n;
		rv = txnparse_line(p, s, (size_t)(nl - s));
		n -= (size_t)(nl - s) + (nl < s + n);
		s = nl + 1;
	}
	return rv;
}

static void check_round_trip(const struct cairn_txn *t)
{
	struct txnparse *p = txnparse_new();
	const struct cairn_txn *again;
	struct buf b = BUF_INIT;

	FUZZ_CHECK(p != NULL);
	write_txn(&b, t);
	FUZZ_CHECK(txnparse_text(p, (const char *)b.data, b.len) == 0);
	FUZZ_CHECK(txnparse_finish(p, &again) == 0);
	FUZZ_CHECK(same_txn(t, again));
	txnparse_free(p);
	buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct txnparse *whole = txnparse_new();
	struct txnparse *lines = txnparse_new();
	const struct cairn_txn *t1;
	const struct cairn_txn *t2;
	int rv1;
	int rv2;

	FUZZ_CHECK(whole != NULL && lines != NULL);
	rv1 = txnparse_text(whole, (const char *)data, size);
	rv2 = parse_lines(lines, (const char *)data, size);
	FUZZ_CHECK(rv1 == rv2);
	FUZZ_CHECK(strcmp(txnparse_error(whole), txnparse_error(lines)) == 0);
	FUZZ_CHECK(txnparse_section(whole) == txnparse_section(lines));
	rv1 = txnparse_finish(whole, &t1);
	rv2 = txnparse_finish(lines, &t2);
	FUZZ_CHECK(rv1 == rv2);
	if (rv1 == 0) {
		FUZZ_CHECK(same_txn(t1, t2));
		check_txn(t1);
		check_round_trip(t1);
	} else {
		FUZZ_CHECK(rv1 == CAIRN_EINVAL || rv1 == CAIRN_ENOMEM);
		FUZZ_CHECK(t1 == NULL && txnparse_error(whole)[0] != '\0');
	}
	txnparse_free(whole);
	txnparse_free(lines);
	return 0;
}

void fuzz_seeds(void)
{
	static const char *const texts[] = {
	    "value(\"counter\") = \"2\"\n\nput counter 3\nput txn-ok yes\n\n"
	    "put txn-ok no\n",
	    "val(\"a\") != \"x\"\nversion(\"b\") < \"3\"\nver(\"b\") == 4\n"
	    "create(\"c\") > \"-1\"\nc (\"c\")=\"5\"\nm(\"d\") = \"0\"\n\n",
	    "value(\"a b\\\"c\") = \"\\x00\\n\\t\\\\\\101\\u00e9\"\n\n"
	    "put 'raw \\n' `back tick`\nput k \"\"\n",
	    "mod(\"k\") > 0\r\n\r\nget k --prefix --limit=5 --rev 3 "
	    "--keys-only\r\ndel a z --prev-kv\r\n\r\n"
	    "put k v --lease=0x7b --prev-kv\r\nget \"\" --from-key "
	    "--count-only\r\n",
	    "\n\nget k\n\n",
	};
	size_t i;

	for (i = 0; i < sizeof texts / sizeof texts[0]; i++)
		fuzz_emit(texts[i], strlen(texts[i]));
}
