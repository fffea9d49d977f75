/*
 * report: the violations one checker finds, counted by kind and printed.
 *
 * A checker calls report_add() once per violation with its kind (the
 * checker's own enum, below 32), the history line it is about and a message;
 * the first REPORT_PRINT are written to out (if not NULL), one per line, the
 * rest only counted. Tests look at kinds and first_line; people read out.
 */
#ifndef CAIRN_FAULT_REPORT_H
#define CAIRN_FAULT_REPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define REPORT_PRINT 20

struct report {
	FILE *out;           /* borrowed; NULL: count only */
	size_t count;        /* violations so far */
	uint32_t kinds;      /* bit k set: a violation of kind k was found */
	uint32_t first_line; /* line of the first violation (0: none, or none
	                        in particular) */
	int first_kind;
};

void report_init(struct report *r, FILE *out);

/* Records a violation; line 0 when it is about no line in particular. */
void report_add(struct report *r, int kind, uint32_t line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Writes "... and N more" if some were not printed. */
void report_finish(const struct report *r);

/* Whether a violation of kind k was found. */
static inline int report_has(const struct report *r, int k)
{
	return (r->kinds >> k) & 1;
}

#endif
