/*
 * test_txnparse: the parser of etcdctl's transaction text (cli/txnparse.c):
 * sections, compare grammar, operation flags, quoting and escapes, errors that
 * name the line, and random input that must never crash it.
 */
#include <stdint.h>
#include <string.h>

#include "test.h"
#include "txnparse.h"

/* Parses text; on success *out is the transaction (p must be freed). */
static int parse(const char *text, struct txnparse **p,
                 const struct cairn_txn **out)
{
	int rv;

	*p = txnparse_new();
	if (*p == NULL)
		return CAIRN_ENOMEM;
	rv = txnparse_text(*p, text, strlen(text));
	if (rv == 0)
		rv = txnparse_finish(*p, out);
	return rv;
}

/* The error message text parses to, or NULL if it parses. */
static char last_error[512];
static const char *error_of(const char *text)
{
	struct txnparse *p;
	const struct cairn_txn *t;
	int rv = parse(text, &p, &t);

	snprintf(last_error, sizeof last_error, "%s", txnparse_error(p));
	txnparse_free(p);
	return rv == 0 ? NULL : last_error;
}

#define CHECK_STR(p, n, lit) CHECK_MEM((p), (n), (lit), sizeof(lit) - 1)

TEST(sections)
{
	struct txnparse *p;
	const struct cairn_txn *t;
	const char *text = "value(\"counter\") = \"2\"\n"
	                   "\n"
	                   "put counter 3\n"
	                   "put txn-ok yes\n"
	                   "\n"
	                   "put txn-ok no\n";

	CHECK_EQ_INT(parse(text, &p, &t), 0);
	CHECK_EQ_INT(t->n_compare, 1);
	CHECK_EQ_INT(t->compare[0].target, CAIRN_CMP_VALUE);
	CHECK_EQ_INT(t->compare[0].result, CAIRN_CMP_EQUAL);
	CHECK_STR(t->compare[0].key, t->compare[0].key_len, "counter");
	CHECK_STR(t->compare[0].value, t->compare[0].value_len, "2");
	CHECK_EQ_INT(t->n_success, 2);
	CHECK_EQ_INT(t->success[0].type, CAIRN_OP_PUT);
	CHECK_STR(t->success[0].key, t->success[0].key_len, "counter");
	CHECK_STR(t->success[0].value, t->success[0].value_len, "3");
	CHECK_STR(t->success[1].key, t->success[1].key_len, "txn-ok");
	CHECK_EQ_INT(t->n_failure, 1);
	CHECK_STR(t->failure[0].value, t->failure[0].value_len, "no");
	txnparse_free(p);
	return 0;
}

TEST(empty_sections)
{
	struct txnparse *p;
	const struct cairn_txn *t;

	CHECK_EQ_INT(parse("\n\nget k\n\n", &p, &t), 0);
	CHECK_EQ_INT(t->n_compare, 0);
	CHECK_EQ_INT(t->n_success, 0);
	CHECK_EQ_INT(t->n_failure, 1);
	CHECK_EQ_INT(t->failure[0].type, CAIRN_OP_RANGE);
	txnparse_free(p);
	CHECK_EQ_INT(parse("", &p, &t), 0);
	CHECK_EQ_INT(t->n_compare + t->n_success + t->n_failure, 0);
	txnparse_free(p);
	return 0;
}

TEST(line_by_line)
{
	struct txnparse *p = txnparse_new();
	const struct cairn_txn *t;

	CHECK(p != NULL);
	CHECK_EQ_INT(txnparse_section(p), TXNPARSE_COMPARES);
	CHECK_EQ_INT(txnparse_line(p, "  mod(\"a\") > \"0\"  ", 18), 0);
	CHECK_EQ_INT(txnparse_line(p, " \t", 2), 0);
	CHECK_EQ_INT(txnparse_section(p), TXNPARSE_SUCCESS);
	CHECK_EQ_INT(txnparse_line(p, "", 0), 0);
	CHECK_EQ_INT(txnparse_section(p), TXNPARSE_FAILURE);
	CHECK_EQ_INT(txnparse_line(p, "del a", 5), 0);
	CHECK_EQ_INT(txnparse_line(p, "", 0), 0);
	CHECK_EQ_INT(txnparse_section(p), TXNPARSE_DONE);
	CHECK_EQ_INT(txnparse_line(p, "", 0), 0); /* more blank lines: fine */
	CHECK_EQ_INT(txnparse_finish(p, &t), 0);
	CHECK_EQ_INT(t->n_compare, 1);
	CHECK_EQ_INT(t->compare[0].target, CAIRN_CMP_MOD);
	CHECK_EQ_INT(t->compare[0].result, CAIRN_CMP_GREATER);
	CHECK_EQ_INT(t->compare[0].number, 0);
	CHECK_EQ_INT(t->n_failure, 1);
	CHECK_EQ_INT(t->failure[0].type, CAIRN_OP_DELETE);
	txnparse_free(p);
	return 0;
}

TEST(compare_targets_and_operators)
{
	struct txnparse *p;
	const struct cairn_txn *t;
	const char *text = "val(\"a\") != \"x\"\n"
	                   "version(\"b\") < \"3\"\n"
	                   "ver(\"b\") == 4\n"
	                   "create(\"c\") > \"-1\"\n"
	                   "c (\"c\")=\"5\"\n"
	                   "m(\"d\") = \"0\"\n"
	                   "\n";

	CHECK_EQ_INT(parse(text, &p, &t), 0);
	CHECK_EQ_INT(t->n_compare, 6);
	CHECK_EQ_INT(t->compare[0].target, CAIRN_CMP_VALUE);
	CHECK_EQ_INT(t->compare[0].result, CAIRN_CMP_NOT_EQUAL);
	CHECK_EQ_INT(t->compare[1].target, CAIRN_CMP_VERSION);
	CHECK_EQ_INT(t->compare[1].result, CAIRN_CMP_LESS);
	CHECK_EQ_INT(t->compare[1].number, 3);
	CHECK_EQ_INT(t->compare[2].result, CAIRN_CMP_EQUAL);
	CHECK_EQ_INT(t->compare[2].number, 4);
	CHECK_EQ_INT(t->compare[3].target, CAIRN_CMP_CREATE);
	CHECK_EQ_INT(t->compare[3].result, CAIRN_CMP_GREATER);
	CHECK_EQ_INT(t->compare[3].number, -1);
	CHECK_EQ_INT(t->compare[4].target, CAIRN_CMP_CREATE);
	CHECK_EQ_INT(t->compare[4].number, 5);
	CHECK_EQ_INT(t->compare[5].target, CAIRN_CMP_MOD);
	txnparse_free(p);
	return 0;
}

TEST(quoting_and_escapes)
{
	struct txnparse *p;
	const struct cairn_txn *t;
	const char *text =
	    "value(\"a b\\\"c\") = \"\\x00\\n\\t\\\\\\101\\u00e9\"\n"
	    "\n"
	    "put 'raw \\n' `back tick`\n"
	    "put \"\" \"\"\n";

	CHECK_EQ_INT(parse(text, &p, &t), CAIRN_EINVAL); /* empty key */
	CHECK(strstr(txnparse_error(p), "line 4") != NULL);
	txnparse_free(p);

	text = "value(\"a b\\\"c\") = \"\\x00\\n\\t\\\\\\101\\u00e9\"\n"
	       "\n"
	       "put 'raw \\n' `back tick`\n"
	       "put k \"\"\n";
	CHECK_EQ_INT(parse(text, &p, &t), 0);
	CHECK_STR(t->compare[0].key, t->compare[0].key_len, "a b\"c");
	CHECK_MEM(t->compare[0].value, t->compare[0].value_len,
	          "\0\n\t\\A\xc3\xa9", 7);
	CHECK_STR(t->success[0].key, t->success[0].key_len, "raw \\n");
	CHECK_STR(t->success[0].value, t->success[0].value_len, "back tick");
	CHECK_EQ_INT(t->success[1].value_len, 0);
	txnparse_free(p);
	return 0;
}

TEST(operation_flags)
{
	struct txnparse *p;
	const struct cairn_txn *t;
	const char *text = "\n"
	                   "put k v --prev-kv --lease=0x10\n"
	                   "put k v --lease 10\n"
	                   "put k v --lease abc\n"
	                   "get a c\n"
	                   "get dir/ --prefix --limit 2 --rev=3 --keys-only\n"
	                   "get '' --prefix --count-only\n"
	                   "get x --from-key\n"
	                   "\n"
	                   "del dir/ --prefix --prev-kv\n"
	                   "delete a\xff\xff --prefix\n";
	const struct cairn_op *s;
	const struct cairn_op *f;

	CHECK_EQ_INT(parse(text, &p, &t), 0);
	CHECK_EQ_INT(t->n_success, 7);
	s = t->success;
	CHECK(s[0].prev_kv);
	CHECK_EQ_INT(s[0].lease, 16);
	CHECK_EQ_INT(s[1].lease, 0x10); /* hex, as cairnctl prints ids */
	CHECK_EQ_INT(s[2].lease, 0xabc);
	CHECK_STR(s[3].end, s[3].end_len, "c");
	CHECK_EQ_INT(s[4].type, CAIRN_OP_RANGE);
	CHECK_STR(s[4].end, s[4].end_len, "dir0");
	CHECK_EQ_INT(s[4].limit, 2);
	CHECK_EQ_INT(s[4].revision, 3);
	CHECK(s[4].keys_only && !s[4].count_only);
	CHECK_MEM(s[5].key, s[5].key_len, "\0", 1);
	CHECK_MEM(s[5].end, s[5].end_len, "\0", 1);
	CHECK(s[5].count_only);
	CHECK_STR(s[6].key, s[6].key_len, "x");
	CHECK_MEM(s[6].end, s[6].end_len, "\0", 1);
	CHECK_EQ_INT(t->n_failure, 2);
	f = t->failure;
	CHECK_EQ_INT(f[0].type, CAIRN_OP_DELETE);
	CHECK(f[0].prev_kv);
	CHECK_STR(f[0].end, f[0].end_len, "dir0");
	CHECK_STR(f[1].end, f[1].end_len, "b");
	txnparse_free(p);
	return 0;
}

TEST(crlf_and_eof)
{
	struct txnparse *p;
	const struct cairn_txn *t;

	CHECK_EQ_INT(
	    parse("value(\"k\") = \"v\"\r\n\r\nput k w\r\n\r\nput k x", &p, &t),
	    0);
	CHECK_EQ_INT(t->n_compare, 1);
	CHECK_STR(t->success[0].value, t->success[0].value_len, "w");
	CHECK_STR(t->failure[0].value, t->failure[0].value_len, "x");
	txnparse_free(p);
	return 0;
}

TEST(errors_name_the_line)
{
	const char *e;

	e = error_of("value(\"k\") = \"v\"\nfoo(\"k\") = \"1\"\n");
	CHECK(e != NULL && strstr(e, "line 2") && strstr(e, "unknown target"));
	CHECK(error_of("lease(\"k\") = \"1\"\n") != NULL);
	CHECK(error_of("value(k) = \"1\"\n") != NULL);
	CHECK(error_of("value(\"k\" = \"1\"\n") != NULL);
	CHECK(error_of("value(\"k) = \"1\"\n") != NULL);
	CHECK(error_of("value(\"k\") ~ \"1\"\n") != NULL);
	CHECK(error_of("value(\"k\") =\n") != NULL);
	CHECK(error_of("value(\"k\") = \"1\" extra\n") != NULL);
	e = error_of("version(\"k\") = \"one\"\n");
	CHECK(e != NULL && strstr(e, "line 1") && strstr(e, "integer"));
	CHECK(error_of("value(\"k\") = \"\\q\"\n") != NULL);
	CHECK(error_of("value(\"k\") = \"\\x4\"\n") != NULL);
	CHECK(error_of("value(\"k\") = \"\\ud800\"\n") != NULL);
	CHECK(error_of("value(\"k\") = \"\\400\"\n") != NULL);
	e = error_of("\nput k\n");
	CHECK(e != NULL && strstr(e, "line 2") && strstr(e, "value"));
	CHECK(error_of("\nput k v w\n") != NULL);
	CHECK(error_of("\nfrob k\n") != NULL);
	CHECK(error_of("\nget\n") != NULL);
	CHECK(error_of("\nget a b c\n") != NULL);
	CHECK(error_of("\nget a b --prefix\n") != NULL);
	CHECK(error_of("\nget a --prefix --from-key\n") != NULL);
	CHECK(error_of("\nget a --bogus\n") != NULL);
	CHECK(error_of("\nget a --prev-kv\n") != NULL);
	CHECK(error_of("\nput a b --prefix\n") != NULL);
	CHECK(error_of("\nget a --limit\n") != NULL);
	CHECK(error_of("\nget a --limit=-1\n") != NULL);
	CHECK(error_of("\nget a --limit=x\n") != NULL);
	CHECK(error_of("\nget a --keys-only=1\n") != NULL);
	CHECK(error_of("\nput a b --lease=0\n") != NULL);
	CHECK(error_of("\nput a b --lease=0xzz\n") != NULL);
	CHECK(error_of("\nget \"a\"b\n") != NULL);
	CHECK(error_of("\nget \"a\n") != NULL);
	CHECK(error_of("\nget ''\n") != NULL);
	CHECK(error_of("\nget a a a a a a a a a a a a a a a a a a a a\n") !=
	      NULL);
	e = error_of("\n\n\nget a\n");
	CHECK(e != NULL && strstr(e, "line 4"));
	return 0;
}

TEST(errors_are_sticky)
{
	struct txnparse *p = txnparse_new();
	const struct cairn_txn *t;

	CHECK(p != NULL);
	CHECK_EQ_INT(txnparse_line(p, "bogus", 5), CAIRN_EINVAL);
	CHECK_EQ_INT(txnparse_line(p, "", 0), CAIRN_EINVAL);
	CHECK_EQ_INT(txnparse_finish(p, &t), CAIRN_EINVAL);
	CHECK(t == NULL);
	txnparse_free(p);
	txnparse_free(NULL);
	return 0;
}

/* Random lines built from the grammar's own characters: the parser must
 * answer 0 or CAIRN_EINVAL and never touch memory it should not (run it under
 * the sanitizers). */
TEST(random_input_never_crashes)
{
	static const char alphabet[] = "valuevrsiocmdpt()\"'`\\x0u9=!<>- \t\r\n"
	                               "getdel--prefixfrom-keylimit=lease";
	uint64_t seed = 0x9e3779b97f4a7c15u;
	char text[96];
	struct txnparse *p;
	const struct cairn_txn *t;
	int i;
	size_t j;
	int rv;

	for (i = 0; i < 20000; i++) {
		size_t n = (size_t)(seed % sizeof text);
		for (j = 0; j < n; j++) {
			seed ^= seed << 13;
			seed ^= seed >> 7;
			seed ^= seed << 17;
			text[j] = (seed & 0x100)
			              ? (char)(seed & 0xff)
			              : alphabet[seed % (sizeof alphabet - 1)];
		}
		p = txnparse_new();
		CHECK(p != NULL);
		rv = txnparse_text(p, text, n);
		if (rv == 0)
			rv = txnparse_finish(p, &t);
		CHECK(rv == 0 || rv == CAIRN_EINVAL);
		CHECK(rv == 0 || strncmp(txnparse_error(p), "line ", 5) == 0);
		txnparse_free(p);
	}
	return 0;
}

int main(void)
{
	static const struct test_case tests[] = {
	    T(sections),
	    T(empty_sections),
	    T(line_by_line),
	    T(compare_targets_and_operators),
	    T(quoting_and_escapes),
	    T(operation_flags),
	    T(crlf_and_eof),
	    T(errors_name_the_line),
	    T(errors_are_sticky),
	    T(random_input_never_crashes),
	};

	/* test_run() rather than RUN_TESTS(), whose ({ }) -Wpedantic refuses.
	 */
	return test_run(tests, sizeof tests / sizeof tests[0]);
}
