/*
 * test.h: a minimal TAP test harness for cairn's C tests.
 *
 *   TEST(name) { CHECK(x == 1); CHECK_EQ_INT(a, b); }
 *   int main(void) { return RUN_TESTS(name, other); }
 *
 * Each test prints "ok N - name" or "not ok N - name" with the failed checks as
 * TAP diagnostics; the exit code is 1 if any test failed. A test stops at its
 * first failed CHECK.
 */
#ifndef CAIRN_TEST_H
#define CAIRN_TEST_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct test_case {
	const char *name;
	int (*fn)(void);
};

#define TEST(name) static int test_##name(void)
#define T(name) {#name, test_##name}

#define CHECK(cond)                                                          \
	do {                                                                 \
		if (!(cond)) {                                               \
			printf("# %s:%d: check failed: %s\n", __FILE__,      \
			       __LINE__, #cond);                             \
			return 1;                                            \
		}                                                            \
	} while (0)

#define CHECK_EQ_INT(a, b)                                                   \
	do {                                                                 \
		long long a_ = (long long)(a), b_ = (long long)(b);          \
		if (a_ != b_) {                                              \
			printf("# %s:%d: %s == %s failed: %lld != %lld\n",   \
			       __FILE__, __LINE__, #a, #b, a_, b_);          \
			return 1;                                            \
		}                                                            \
	} while (0)

#define CHECK_MEM(p, n, q, m)                                                \
	do {                                                                 \
		size_t n_ = (n), m_ = (m);                                   \
		if (n_ != m_ || (n_ && memcmp((p), (q), n_) != 0)) {         \
			printf("# %s:%d: bytes of %s differ from %s\n",      \
			       __FILE__, __LINE__, #p, #q);                  \
			return 1;                                            \
		}                                                            \
	} while (0)

/* A deterministic xorshift generator, so failures replay from their seed. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static inline void rng_seed(uint64_t s)
{
	rng_state = s ? s : 0x9e3779b97f4a7c15ULL;
}

static inline uint64_t rng(void)
{
	uint64_t x = rng_state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	rng_state = x;
	return x;
}

static inline size_t rng_below(size_t n)
{
	return n ? (size_t)(rng() % n) : 0;
}

static inline int test_run(const struct test_case *tc, size_t n)
{
	size_t i;
	int failed = 0;

	printf("1..%zu\n", n);
	fflush(stdout);
	for (i = 0; i < n; i++) {
		int rv = tc[i].fn();
		printf("%sok %zu - %s\n", rv ? "not " : "", i + 1, tc[i].name);
		fflush(stdout);
		failed |= rv != 0;
	}
	return failed;
}

#define RUN_TESTS(...)                                                       \
	({                                                                   \
		static const struct test_case tc_[] = {__VA_ARGS__};         \
		test_run(tc_, sizeof(tc_) / sizeof(tc_[0]));                 \
	})

#endif
