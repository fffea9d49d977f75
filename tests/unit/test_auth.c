/*
 * test_auth: unit tests of store/auth.c: the permission matcher (single
 * keys, ranges, prefixes, "\0" ends, unions of ranges, read against write),
 * tokens (sign, verify, tampering, another key, expiry, an older auth
 * revision), applying auth writes (root rules, role deletion) and the
 * snapshot section's round trip.
 */
#include <sodium.h>

#include "auth.h"
#include "buf.h"
#include "cairn.h"
#include "mp.h"
#include "proto.h"
#include "test.h"

#define S(s) (const uint8_t *)(s), (sizeof(s) - 1)
#define Z (const uint8_t *)"", 1 /* the end "\0" */
#define NONE NULL, 0

static struct auth_perm perm(unsigned mask, const char *k, const char *e,
                             size_t elen)
{
	struct auth_perm p = {mask, (uint8_t *)k, (uint32_t)strlen(k),
	                      (uint8_t *)e, (uint32_t)elen};

	return p;
}

static bool cov(const struct auth_perm *p, size_t n, const uint8_t *k,
                size_t klen, const uint8_t *e, size_t elen)
{
	const struct auth_perm *ps[8];
	size_t i;

	for (i = 0; i < n; i++)
		ps[i] = &p[i];
	return auth_covered(ps, n, k, klen, e, elen);
}

TEST(single_key)
{
	struct auth_perm p = perm(AUTH_READ, "a", "", 0);

	CHECK(cov(&p, 1, S("a"), NONE));
	CHECK(!cov(&p, 1, S("ab"), NONE));
	CHECK(!cov(&p, 1, S("a"), S("b"))); /* a range, even [a, b) */
	CHECK(!cov(&p, 1, S("b"), NONE));
	return 0;
}

TEST(range_and_prefix)
{
	uint8_t end[] = "app0"; /* cairn_prefix_end("app/") */
	size_t n = 4;
	struct auth_perm p = {AUTH_READ, (uint8_t *)"app/", 4, end,
	                      (uint32_t)n};

	CHECK(cov(&p, 1, S("app/"), NONE));
	CHECK(cov(&p, 1, S("app/x/y"), NONE));
	CHECK(cov(&p, 1, S("app/"), end, n)); /* the whole prefix */
	CHECK(cov(&p, 1, S("app/b"), S("app/c")));
	CHECK(!cov(&p, 1, S("app"), NONE));
	CHECK(!cov(&p, 1, S("app0"), NONE)); /* the end is excluded */
	CHECK(!cov(&p, 1, S("app/"), Z));    /* from key: past the prefix */
	CHECK(!cov(&p, 1, S("apa"), S("app/b"))); /* starts before it */
	CHECK(!cov(&p, 1, S("app/b"), S("b")));   /* ends after it */
	return 0;
}

TEST(zero_end)
{
	struct auth_perm p = perm(AUTH_READ, "m", "", 1); /* keys >= m */
	struct auth_perm all = perm(AUTH_READ, "", "", 1);

	all.key = (uint8_t *)"";
	all.key_len = 1; /* key "\0", end "\0": everything */
	CHECK(cov(&p, 1, S("m"), NONE));
	CHECK(cov(&p, 1, S("zzz"), NONE));
	CHECK(cov(&p, 1, S("m"), Z));
	CHECK(cov(&p, 1, S("n"), S("p")));
	CHECK(!cov(&p, 1, S("l"), NONE));
	CHECK(!cov(&p, 1, S("a"), Z));
	CHECK(cov(&all, 1, S("a"), Z));
	CHECK(cov(&all, 1, (const uint8_t *)"", 1, Z)); /* the whole keyspace */
	CHECK(!cov(&p, 1, (const uint8_t *)"", 1, Z));
	return 0;
}

TEST(union_of_ranges)
{
	struct auth_perm p[3] = {perm(AUTH_READ, "a", "c", 1),
	                         perm(AUTH_READ, "c", "e", 1),
	                         perm(AUTH_READ, "f", "g", 1)};

	CHECK(cov(p, 3, S("a"), S("e"))); /* adjacent ranges join */
	CHECK(cov(p, 3, S("b"), S("d")));
	CHECK(!cov(p, 3, S("a"), S("f"))); /* the gap [e, f) */
	CHECK(cov(p, 3, S("f"), S("g")));
	CHECK(!cov(p, 2, S("a"), Z));
	return 0;
}

static int apply(struct auth *a, unsigned op, const char *user,
                 const char *role)
{
	struct proto_req q;
	char msg[300];
	uint8_t seed[PROTO_SEED_BYTES] = {7};

	memset(&q, 0, sizeof q);
	q.op = op;
	if (user != NULL) {
		q.user = (const uint8_t *)user;
		q.user_len = (uint32_t)strlen(user);
	}
	if (role != NULL) {
		q.role = (const uint8_t *)role;
		q.role_len = (uint32_t)strlen(role);
	}
	q.hash = (const uint8_t *)"$argon2id$fake";
	q.hash_len = 14;
	q.seed = seed;
	q.seed_len = sizeof seed;
	q.key = (const uint8_t *)"app/";
	q.key_len = 4;
	q.end = (const uint8_t *)"app0";
	q.end_len = 4;
	q.perm = CAIRN_PERM_READ;
	return auth_apply(a, &q, msg, sizeof msg);
}

TEST(apply_rules)
{
	struct auth *a;
	const struct auth_user *u;
	uint64_t rev;

	CHECK(auth_create(&a) == 0);
	CHECK(apply(a, PROTO_OP_AUTH_ENABLE, NULL, NULL) == CAIRN_EINVAL);
	CHECK(apply(a, PROTO_OP_USER_ADD, "root", NULL) == 0);
	CHECK(apply(a, PROTO_OP_AUTH_ENABLE, NULL, NULL) == CAIRN_EINVAL);
	CHECK(apply(a, PROTO_OP_USER_GRANT_ROLE, "root", "root") == 0);
	CHECK(apply(a, PROTO_OP_AUTH_ENABLE, NULL, NULL) == 0);
	CHECK(a->enabled && a->has_seed);
	CHECK(apply(a, PROTO_OP_USER_DELETE, "root", NULL) == CAIRN_EINVAL);
	CHECK(apply(a, PROTO_OP_USER_REVOKE_ROLE, "root", "root") ==
	      CAIRN_EINVAL);
	CHECK(apply(a, PROTO_OP_USER_ADD, "bad:name", NULL) == CAIRN_EINVAL);
	CHECK(apply(a, PROTO_OP_USER_ADD, "u", NULL) == 0);
	CHECK(apply(a, PROTO_OP_USER_ADD, "u", NULL) == CAIRN_EINVAL);
	CHECK(apply(a, PROTO_OP_USER_GRANT_ROLE, "u", "r") == CAIRN_EINVAL);
	CHECK(apply(a, PROTO_OP_ROLE_ADD, NULL, "r") == 0);
	CHECK(apply(a, PROTO_OP_ROLE_ADD, NULL, "root") == CAIRN_EINVAL);
	CHECK(apply(a, PROTO_OP_ROLE_GRANT_PERMISSION, NULL, "r") == 0);
	CHECK(apply(a, PROTO_OP_USER_GRANT_ROLE, "u", "r") == 0);
	u = auth_user(a, S("u"));
	CHECK(u != NULL);
	CHECK(auth_allowed(a, u, AUTH_READ, S("app/x"), NONE));
	CHECK(!auth_allowed(a, u, AUTH_WRITE, S("app/x"), NONE));
	CHECK(!auth_allowed(a, u, AUTH_READ, S("other"), NONE));
	CHECK(auth_allowed(a, auth_user(a, S("root")), AUTH_READ | AUTH_WRITE,
	                   S("other"), Z));
	rev = a->revision;
	CHECK(apply(a, PROTO_OP_ROLE_DELETE, NULL, "r") == 0);
	CHECK(a->revision == rev + 1);
	u = auth_user(a, S("u"));
	CHECK(u->n_roles == 0);
	CHECK(!auth_allowed(a, u, AUTH_READ, S("app/x"), NONE));
	CHECK(apply(a, PROTO_OP_AUTH_DISABLE, NULL, NULL) == 0);
	CHECK(!a->enabled);
	auth_destroy(a);
	return 0;
}

TEST(snapshot_round_trip)
{
	struct auth *a;
	struct auth *b;
	struct buf x = BUF_INIT;
	struct buf y = BUF_INIT;
	struct mp_reader r;

	CHECK(auth_create(&a) == 0);
	CHECK(apply(a, PROTO_OP_USER_ADD, "root", NULL) == 0);
	CHECK(apply(a, PROTO_OP_USER_GRANT_ROLE, "root", "root") == 0);
	CHECK(apply(a, PROTO_OP_ROLE_ADD, NULL, "r") == 0);
	CHECK(apply(a, PROTO_OP_ROLE_GRANT_PERMISSION, NULL, "r") == 0);
	CHECK(apply(a, PROTO_OP_AUTH_ENABLE, NULL, NULL) == 0);
	CHECK(auth_dump(a, &x) == 0);
	mp_reader_init(&r, x.data, x.len);
	CHECK(auth_load(&r, &b) == 0);
	CHECK(auth_dump(b, &y) == 0);
	CHECK_MEM(x.data, x.len, y.data, y.len);
	CHECK(b->enabled && b->revision == a->revision);
	CHECK(memcmp(a->pk, b->pk, sizeof a->pk) == 0);
	mp_reader_init(&r, x.data, x.len - 1); /* truncated */
	auth_destroy(b);
	b = NULL;
	CHECK(auth_load(&r, &b) == CAIRN_EPROTO);
	buf_free(&x);
	buf_free(&y);
	auth_destroy(a);
	return 0;
}

TEST(tokens)
{
	uint8_t seed[PROTO_SEED_BYTES] = {1, 2, 3};
	uint8_t other[PROTO_SEED_BYTES] = {9};
	uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
	uint8_t pk2[crypto_sign_PUBLICKEYBYTES],
	    sk2[crypto_sign_SECRETKEYBYTES];
	uint8_t tok[AUTH_TOKEN_MAX];
	char user[PROTO_MAX_NAME + 1];
	size_t n;

	auth_keypair(seed, pk, sk);
	auth_keypair(other, pk2, sk2);
	n = auth_token_sign(sk, "alice", 5, 1000, tok);
	CHECK(n > crypto_sign_BYTES);
	CHECK_EQ_INT(auth_token_verify(pk, tok, n, 999, 5, user),
	             AUTH_TOKEN_OK);
	CHECK(strcmp(user, "alice") == 0);
	CHECK_EQ_INT(auth_token_verify(pk, tok, n, 999, 4, user),
	             AUTH_TOKEN_OK);
	CHECK_EQ_INT(auth_token_verify(pk, tok, n, 1000, 5, user),
	             AUTH_TOKEN_EXPIRED);
	CHECK_EQ_INT(auth_token_verify(pk, tok, n, 999, 6, user),
	             AUTH_TOKEN_OLD);
	CHECK_EQ_INT(auth_token_verify(pk2, tok, n, 999, 5, user),
	             AUTH_TOKEN_INVALID);
	tok[n - 1] ^= 1; /* the body, under the signature */
	CHECK_EQ_INT(auth_token_verify(pk, tok, n, 999, 5, user),
	             AUTH_TOKEN_INVALID);
	CHECK_EQ_INT(auth_token_verify(pk, tok, 10, 999, 5, user),
	             AUTH_TOKEN_INVALID);
	return 0;
}

TEST(printable)
{
	char out[64];

	auth_printable((const uint8_t *)"a\n\x01"
	                                "b\\",
	               5, out, sizeof out);
	CHECK(strcmp(out, "a\\x0a\\x01b\\x5c") == 0);
	return 0;
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	static const struct test_case tests[] = {
	    T(single_key),      T(range_and_prefix), T(zero_end),
	    T(union_of_ranges), T(apply_rules),      T(snapshot_round_trip),
	    T(tokens),          T(printable),
	};

	return test_run(tests, sizeof tests / sizeof tests[0]);
}
