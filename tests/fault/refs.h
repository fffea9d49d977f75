/*
 * refs: one member's reference history (its ref records), indexed for the
 * watch and durability checkers: by revision, by value, and each key's last
 * change. The index points into the history, which must outlive it.
 */
#ifndef CAIRN_FAULT_REFS_H
#define CAIRN_FAULT_REFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "history.h"

struct refs {
	const struct history *h;
	const struct hist_member *m;
	const struct hist_ref **by_rev; /* by revision, then file order */
	size_t n;
	bool in_order; /* the file listed them by revision already */
	/* per hist_str: 1 + the by_rev index of the first put of that value,
	 * or 0 */
	uint32_t *by_value;
	/* per hist_str: the revision of the key's last change, 0 if none */
	uint64_t *last_rev;
	/* per hist_str: the key's value after the last change (HIST_NONE:
	 * absent or never changed) */
	hist_str *last_value;
};

/* Indexes member m of h. Returns 0, or -1 when out of memory (x then holds
 * nothing to free). */
int refs_build(struct refs *x, const struct history *h,
               const struct hist_member *m);
void refs_free(struct refs *x);

/* The index in by_rev of the first change with a revision >= rev (n if
 * none). */
size_t refs_lower(const struct refs *x, uint64_t rev);

/* The change of key at revision rev, or NULL. */
const struct hist_ref *refs_at(const struct refs *x, uint64_t rev,
                               hist_str key);

/* A change as text: "rev 7 k1 put v3 (line 40)". */
void refs_format(const struct history *h, const struct hist_ref *r, char *buf,
                 size_t n);

#endif
