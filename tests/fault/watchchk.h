/*
 * watchchk: the reference history against the members, the ops and the
 * watchers.
 *
 * The reference is the change history each member replayed after the faults
 * healed (ref records). The checks:
 *   - every member's reference is identical (same changes, same order);
 *     the first member's is then "the reference", and must be in revision
 *     order;
 *   - every ok put, ok cas -> 1 and ok del -> 1 is in the reference at
 *     exactly its rev, same key, same value (a del: a del of the key);
 *   - no value of a fail put or cas, or of an ok cas -> 0, is in it; every
 *     value in it was written by a put or cas of the history (ok or
 *     unknown), to that key, and only once;
 *   - every ok get that saw a value saw it at its modrev: the reference
 *     puts that value to that key at that revision, at or below the get's
 *     rev;
 *   - each watcher received exactly the reference's changes of keys with its
 *     prefix, from FROM_REV (a FROM_REV of 0: from its first event) up to
 *     END_REV (without an end record: up to its last event), in revision
 *     order, each once, with the reference's value and revision. Events
 *     past END_REV must still agree with the reference.
 * Every violation found is reported (see report.h), not only the first.
 *
 * Single-threaded; the history is only read.
 */
#ifndef CAIRN_FAULT_WATCHCHK_H
#define CAIRN_FAULT_WATCHCHK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "history.h"
#include "report.h"

enum watchchk_kind {
	WATCHCHK_MEMBERS,        /* members' references differ */
	WATCHCHK_REF_ORDER,      /* the reference is not in revision order */
	WATCHCHK_WRITE_MISSING,  /* an acknowledged write is not in it */
	WATCHCHK_FAILED_APPLIED, /* a write that failed is in it */
	WATCHCHK_STRAY_VALUE,    /* a value no op wrote (or wrote twice, or
	                            to another key) is in it */
	WATCHCHK_READ,           /* a get's value/modrev disagrees with it */
	WATCHCHK_GAP,            /* a watcher missed a change */
	WATCHCHK_DUPLICATE,      /* a watcher got a change twice */
	WATCHCHK_ORDER,          /* a watcher got changes out of order */
	WATCHCHK_WRONG_EVENT,    /* an event disagrees with the reference */
	WATCHCHK_OUTSIDE,        /* an event outside the prefix or before
	                            FROM_REV */
};

struct watchchk_result {
	bool no_reference; /* no member records at all: nothing was checked */
	size_t watchers;
	size_t events;
	size_t changes; /* in the reference */
	size_t writes;  /* ok writes checked against it */
	struct report report;
};

/* Runs the checks, printing violations to out (may be NULL). Returns 0, or
 * -1 when out of memory. */
int watchchk_run(const struct history *h, FILE *out,
                 struct watchchk_result *res);

/* The one-line verdict: "watch: ok (...)" or "watch: VIOLATION (...)". */
void watchchk_print(const struct watchchk_result *res, FILE *out);

#endif
