/*
 * fault.h: allocation counting and failure injection for unit tests.
 *
 * Include once per test program. Outside sanitizer builds it replaces
 * malloc, calloc, realloc and free (glibc allows this) so a test can make the
 * Nth allocation fail (fault_countdown = N) and check that nothing leaked
 * (live_blocks() before and after). Under ASan it defines NO_FAULTS and
 * live_blocks() returns 0: LeakSanitizer checks leaks at exit instead.
 */
#ifndef CAIRN_TEST_FAULT_H
#define CAIRN_TEST_FAULT_H

#include <stdbool.h>
#include <stddef.h>

#if defined(__SANITIZE_ADDRESS__)
#define NO_FAULTS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#define NO_FAULTS 1
#endif
#endif

#ifndef NO_FAULTS
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void __libc_free(void *p);

static long fault_countdown = -1; /* the allocation that fails is number 0 */
static long fault_live;           /* blocks allocated minus blocks freed */

static bool fault_now(void)
{
	if (fault_countdown < 0)
		return false;
	return fault_countdown-- == 0;
}

void *malloc(size_t n)
{
	void *p = fault_now() ? NULL : __libc_malloc(n);

	fault_live += p != NULL;
	return p;
}

void *calloc(size_t n, size_t size)
{
	void *p = fault_now() ? NULL : __libc_calloc(n, size);

	fault_live += p != NULL;
	return p;
}

void *realloc(void *old, size_t n)
{
	void *p = fault_now() ? NULL : __libc_realloc(old, n);

	fault_live += old == NULL && p != NULL;
	return p;
}

void free(void *p)
{
	fault_live -= p != NULL;
	__libc_free(p);
}

static inline long live_blocks(void)
{
	return fault_live;
}
#else
static inline long live_blocks(void)
{
	return 0; /* LeakSanitizer checks at exit instead */
}
#endif

#endif
