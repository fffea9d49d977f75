/* refs: indexing a member's reference history (see refs.h). */
#include "refs.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

static int by_rev(const void *a, const void *b)
{
	const struct hist_ref *x = *(const struct hist_ref *const *)a;
	const struct hist_ref *y = *(const struct hist_ref *const *)b;

	if (x->rev != y->rev)
		return x->rev < y->rev ? -1 : 1;
	return x->line < y->line ? -1 : x->line > y->line;
}

static void index_changes(struct refs *x)
{
	size_t i;

	for (i = 0; i < x->n; i++) {
		const struct hist_ref *r = x->by_rev[i];

		if (!r->del && x->by_value[r->value] == 0)
			x->by_value[r->value] = (uint32_t)i + 1;
		x->last_rev[r->key] = r->rev;
		x->last_value[r->key] = r->value;
	}
}

int refs_build(struct refs *x, const struct history *h,
               const struct hist_member *m)
{
	size_t i, ns = h->nstrs + 1;

	x->h = h;
	x->m = m;
	x->n = m->nrefs;
	x->in_order = true;
	x->by_rev = calloc(x->n + 1, sizeof(*x->by_rev));
	x->by_value = calloc(ns, sizeof(*x->by_value));
	x->last_rev = calloc(ns, sizeof(*x->last_rev));
	x->last_value = calloc(ns, sizeof(*x->last_value));
	if (!x->by_rev || !x->by_value || !x->last_rev || !x->last_value) {
		refs_free(x);
		return -1;
	}
	for (i = 0; i < x->n; i++) {
		x->by_rev[i] = &m->refs[i];
		if (i > 0 && m->refs[i].rev < m->refs[i - 1].rev)
			x->in_order = false;
	}
	qsort(x->by_rev, x->n, sizeof(*x->by_rev), by_rev);
	index_changes(x);
	return 0;
}

void refs_free(struct refs *x)
{
	free(x->by_rev);
	free(x->by_value);
	free(x->last_rev);
	free(x->last_value);
	x->by_rev = NULL;
	x->by_value = NULL;
	x->last_rev = NULL;
	x->last_value = NULL;
	x->n = 0;
}

size_t refs_lower(const struct refs *x, uint64_t rev)
{
	size_t lo = 0, hi = x->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (x->by_rev[mid]->rev < rev)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

const struct hist_ref *refs_at(const struct refs *x, uint64_t rev, hist_str key)
{
	size_t i;

	for (i = refs_lower(x, rev); i < x->n && x->by_rev[i]->rev == rev; i++)
		if (x->by_rev[i]->key == key)
			return x->by_rev[i];
	return NULL;
}

void refs_format(const struct history *h, const struct hist_ref *r, char *buf,
                 size_t n)
{
	snprintf(buf, n, "rev %" PRIu64 " %s %s %s (line %" PRIu32 ")", r->rev,
	         history_str(h, r->key), r->del ? "del" : "put",
	         history_str(h, r->value), r->line);
}
