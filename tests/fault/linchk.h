/*
 * linchk: does a history linearize against a key-value store with cas?
 *
 * The model of one key is its value or "absent" (the store starts empty):
 *   put V         value := V
 *   get -> V      V is the value ("-": absent)
 *   cas E N -> 1  value was E ("-": absent), value := N
 *   cas E N -> 0  value was not E
 *   del -> 1      value was present, now absent
 *   del -> 0      value was absent
 * and, unless ignore_revs, the revisions: along the linearization of a key, an
 * ok write that creates a revision (put, cas -> 1, del -> 1) has a rev
 * strictly greater than every rev before it, and any other ok op (get, cas ->
 * 0, del -> 0: "the revision current then") a rev at least as great. That holds
 * for any linearizable store whose revision counts its applied writes, as
 * cairn's and etcd's does.
 *
 * Every op touches one key and linearizability is compositional, so each key
 * is checked alone. fail ops are dropped (they did not happen), so are
 * unknown gets (they return nothing); an unknown write may take effect at any
 * point after its invoke, or never, and carries no results to check.
 *
 * The search is Wing & Gong's with Lowe's / Porcupine's memoization; how it
 * is pruned, and why that is sound, is told in linchk.c. It is bounded by a
 * step budget and a memory budget per key: a key that exceeds either is
 * "undecided", which says nothing either way.
 *
 * When a key does not linearize, its report names the op where every
 * linearization attempt stopped: ordering the key's ok ops by completion
 * time, the first "prefix" of them linearize (with some of the rest), the
 * next one (the blocker) never does. The report lists the values the key
 * could hold just before it, the end of the longest linearization found, and
 * the ops around the blocker.
 *
 * Single-threaded; the history is only read. Result arrays belong to the
 * result and point into the history, which must outlive them.
 */
#ifndef CAIRN_FAULT_LINCHK_H
#define CAIRN_FAULT_LINCHK_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "history.h"

#define LINCHK_DEFAULT_STEPS 50000000ULL        /* per key */
#define LINCHK_DEFAULT_MEMORY ((size_t)1 << 30) /* bytes of cache per key */
#define LINCHK_MAX_STATES 8 /* values reported before the blocker */
#define LINCHK_TAIL 8       /* ops reported of the longest linearization */
#define LINCHK_WINDOW 24    /* ops reported around the blocker */

struct linchk_opts {
	uint64_t max_steps; /* per key; 0: LINCHK_DEFAULT_STEPS */
	size_t max_memory;  /* per key; 0: LINCHK_DEFAULT_MEMORY */
	bool ignore_revs;   /* check values only */
};

enum linchk_verdict { LINCHK_OK, LINCHK_UNDECIDED, LINCHK_VIOLATION };

/* A key that is not ok. */
struct linchk_key {
	hist_str key;
	enum linchk_verdict verdict;
	size_t nops; /* ops of the key that were checked */
	uint64_t steps;
	const char *why; /* undecided: which budget ran out */
	/* violation: */
	size_t prefix;
	const struct hist_op *blocker;
	hist_str states[LINCHK_MAX_STATES];     /* the values */
	uint64_t state_revs[LINCHK_MAX_STATES]; /* the highest rev before */
	size_t nstates;
	bool revs; /* whether revisions were checked */
	const struct hist_op *tail[LINCHK_TAIL]; /* in linearization order */
	size_t ntail;
	const struct hist_op **window; /* by invoke time, blocker included */
	size_t nwindow;
};

struct linchk_result {
	enum linchk_verdict verdict; /* the worst over the keys */
	size_t nops;  /* ops checked: not fail, not unknown get */
	size_t nkeys; /* keys with at least one op checked */
	uint64_t steps;
	struct linchk_key *bad; /* keys not ok, in order of their ids */
	size_t nbad;
};

/* Checks every key of h. opts may be NULL (defaults). Returns 0 with *res
 * filled (free it with linchk_result_free), or -1 when out of memory (*res
 * then holds nothing to free). */
int linchk_run(const struct history *h, const struct linchk_opts *opts,
               struct linchk_result *res);

/* Writes the one-line verdict ("linearizability: ok (N ops, K keys)") and,
 * for keys not ok, their reports. */
void linchk_print(const struct history *h, const struct linchk_result *res,
                  FILE *out);

void linchk_result_free(struct linchk_result *res);

#endif
