/*
 * durchk: did the members end where their histories say, and did every
 * acknowledged write survive?
 *
 * The checks:
 *   - every member has a final record, all with the same revision, none
 *     below the last revision of its own reference;
 *   - every member's keyspace (kv records) is the same set of keys, values
 *     and mod revisions, listing no key twice;
 *   - every member's keyspace is what replaying its own reference from an
 *     empty store gives (a del of an absent key is itself a violation);
 *   - every ok put, cas -> 1 and del -> 1 is in the first member's
 *     reference at its rev and is either what its key ended with (for a
 *     del: the key ended absent) or overwritten by a later change of the
 *     key.
 * Every violation found is reported (see report.h).
 *
 * Single-threaded; the history is only read.
 */
#ifndef CAIRN_FAULT_DURCHK_H
#define CAIRN_FAULT_DURCHK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "history.h"
#include "report.h"

enum durchk_kind {
	DURCHK_FINAL_MISSING, /* a member has no final record */
	DURCHK_FINAL_DIFFERS, /* final revisions differ */
	DURCHK_FINAL_BEHIND,  /* final revision below the reference's last */
	DURCHK_KV_DIFFERS,    /* keyspaces differ between members */
	DURCHK_KV_REPLAY,     /* a keyspace is not its reference replayed */
	DURCHK_LOST_WRITE,    /* an acknowledged write did not survive */
};

struct durchk_result {
	bool no_members; /* no member records: nothing was checked */
	size_t members;
	size_t keys; /* in the first member's keyspace */
	size_t writes;
	struct report report;
};

/* Runs the checks, printing violations to out (may be NULL). Returns 0, or
 * -1 when out of memory. */
int durchk_run(const struct history *h, FILE *out, struct durchk_result *res);

/* The one-line verdict: "durability: ok (...)" or "... VIOLATION ...". */
void durchk_print(const struct durchk_result *res, FILE *out);

#endif
