/* fuzz: the harness every fuzz target links (see fuzz.h). */
#include "fuzz.h"

#include <sanitizer/allocator_interface.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static const char *seed_dir;
static unsigned seed_count;

void fuzz_emit(const void *p, size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof path, "%s/seed-%03u", seed_dir, seed_count++);
	f = fopen(path, "wb");
	if (f == NULL || fwrite(p, 1, len, f) != len || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

void fuzz_emit_mode(uint8_t mode, const void *p, size_t len)
{
	uint8_t *q = malloc(len + 1);

	if (q == NULL)
		abort();
	q[0] = mode;
	if (len > 0)
		memcpy(q + 1, p, len);
	fuzz_emit(q, len + 1);
	free(q);
}

/* Bytes this thread holds, kept by allocator hooks: ASan's own count spans
 * threads, and libFuzzer's allocate and free while a decode runs. */
static __thread size_t thread_heap_bytes;

static void malloc_hook(const volatile void *p, size_t size)
{
	(void)p;
	thread_heap_bytes += size;
}

static void free_hook(const volatile void *p)
{
	if (p != NULL)
		thread_heap_bytes -=
		    __sanitizer_get_allocated_size((const void *)p);
}

size_t fuzz_heap_bytes(void)
{
	return thread_heap_bytes;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_level = -1; /* decoders log what they refuse: quiet */
	if (__sanitizer_install_malloc_and_free_hooks(malloc_hook, free_hook) ==
	    0)
		abort();
	seed_dir = getenv("CAIRN_FUZZ_SEEDS");
	if (seed_dir != NULL) {
		fuzz_seeds();
		exit(0);
	}
	return 0;
}

void fuzz_fail(const char *file, int line, const char *what)
{
	fprintf(stderr, "%s:%d: invariant broken: %s\n", file, line, what);
	abort();
}

uint8_t *fuzz_dup(const void *p, size_t len)
{
	uint8_t *q = malloc(len > 0 ? len : 1);

	if (q == NULL)
		abort();
	if (len > 0)
		memcpy(q, p, len);
	return q;
}

uint8_t fuzz_u8(struct fuzz_in *in)
{
	if (in->n == 0)
		return 0;
	in->n--;
	return *in->p++;
}

uint64_t fuzz_be(struct fuzz_in *in, unsigned n)
{
	uint64_t v = 0;

	while (n-- > 0)
		v = v << 8 | fuzz_u8(in);
	return v;
}

const uint8_t *fuzz_bytes(struct fuzz_in *in, size_t want, size_t *got)
{
	const uint8_t *p = in->p;

	*got = want < in->n ? want : in->n;
	in->p += *got;
	in->n -= *got;
	return p;
}
