/*
 * watchchk: checking the reference history (contract in watchchk.h).
 *
 * The members are compared change by change with the first one, whose
 * reference is then indexed (refs.h) and used for everything else. Ops are
 * checked one by one against the index. A watcher is walked along the
 * reference changes it should have received (those of its prefix, from its
 * FROM_REV), a cursor marking the next one due: an event found further on
 * means the ones skipped are gaps; an event found behind the cursor was
 * either received already (a duplicate) or is late (out of order).
 */
#include "watchchk.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "refs.h"

#define TEXT 512

static bool same_change(const struct hist_ref *a, const struct hist_ref *b)
{
	return a->rev == b->rev && a->key == b->key && a->del == b->del &&
	       a->value == b->value;
}

/* ---- members ------------------------------------------------------------- */

static void compare_member(const struct history *h, const struct hist_member *a,
                           const struct hist_member *b, struct report *r)
{
	char x[TEXT], y[TEXT];
	size_t i, n = a->nrefs < b->nrefs ? a->nrefs : b->nrefs;

	for (i = 0; i < n; i++) {
		if (same_change(&a->refs[i], &b->refs[i]))
			continue;
		refs_format(h, &a->refs[i], x, sizeof(x));
		refs_format(h, &b->refs[i], y, sizeof(y));
		report_add(r, WATCHCHK_MEMBERS, b->refs[i].line,
		           "member %s differs from member %s at change %zu: "
		           "%s has %s, %s has %s",
		           history_str(h, b->name), history_str(h, a->name),
		           i + 1, history_str(h, a->name), x,
		           history_str(h, b->name), y);
		return;
	}
	if (a->nrefs != b->nrefs)
		report_add(r, WATCHCHK_MEMBERS, 0,
		           "member %s has %zu changes, member %s %zu",
		           history_str(h, a->name), a->nrefs,
		           history_str(h, b->name), b->nrefs);
}

static void check_members(const struct history *h, const struct refs *x,
                          struct report *r)
{
	size_t i;

	for (i = 1; i < h->nmembers; i++)
		compare_member(h, &h->members[0], &h->members[i], r);
	if (!x->in_order)
		report_add(r, WATCHCHK_REF_ORDER, 0,
		           "member %s's changes are not in revision order",
		           history_str(h, h->members[0].name));
}

/* ---- the reference against the ops --------------------------------------- */

/* Whether op created a revision: ok put, cas -> 1, del -> 1. */
static bool acknowledged(const struct hist_op *op)
{
	return op->status == HIST_OK && op->type != HIST_GET &&
	       (op->type == HIST_PUT || op->flag);
}

static void check_write(const struct history *h, const struct refs *x,
                        const struct hist_op *op, struct report *r)
{
	const struct hist_ref *c = refs_at(x, op->rev, op->key);
	char text[TEXT], other[TEXT] = "nothing";
	size_t i = refs_lower(x, op->rev);

	if (c != NULL && c->del == (op->type == HIST_DEL) &&
	    c->value == (op->type == HIST_DEL ? HIST_NONE : op->value))
		return;
	if (c != NULL)
		refs_format(h, c, other, sizeof(other));
	else if (i < x->n && x->by_rev[i]->rev == op->rev)
		refs_format(h, x->by_rev[i], other, sizeof(other));
	history_describe_op(h, op, text, sizeof(text));
	report_add(r, WATCHCHK_WRITE_MISSING, op->line,
	           "acknowledged write missing from the reference: %s; at "
	           "rev %" PRIu64 " the reference has %s",
	           text, op->rev, other);
}

/* A put or cas that reported it wrote nothing whose value is there. */
static void check_not_written(const struct history *h, const struct refs *x,
                              const struct hist_op *op, struct report *r)
{
	char text[TEXT], c[TEXT];

	if (op->type == HIST_GET || op->type == HIST_DEL ||
	    op->status == HIST_UNKNOWN || acknowledged(op) ||
	    x->by_value[op->value] == 0)
		return;
	history_describe_op(h, op, text, sizeof(text));
	refs_format(h, x->by_rev[x->by_value[op->value] - 1], c, sizeof(c));
	report_add(r, WATCHCHK_FAILED_APPLIED, op->line,
	           "a write that did not happen is in the reference: %s; "
	           "the reference has %s",
	           text, c);
}

static void check_read(const struct history *h, const struct refs *x,
                       const struct hist_op *op, struct report *r)
{
	const struct hist_ref *c;
	char text[TEXT];

	if (op->type != HIST_GET || op->status != HIST_OK ||
	    op->read == HIST_NONE)
		return;
	c = refs_at(x, op->modrev, op->key);
	if (c != NULL && !c->del && c->value == op->read &&
	    op->modrev <= op->rev)
		return;
	history_describe_op(h, op, text, sizeof(text));
	report_add(r, WATCHCHK_READ, op->line,
	           "read disagrees with the reference: %s; the reference "
	           "has %s at rev %" PRIu64 "%s",
	           text,
	           c ? (c->del ? "a del" : history_str(h, c->value))
	             : "no change of the key",
	           op->modrev,
	           op->modrev > op->rev ? " (and modrev > rev)" : "");
}

static void check_ops(const struct history *h, const struct refs *x,
                      struct watchchk_result *res)
{
	size_t i;

	for (i = 0; i < h->nops; i++) {
		const struct hist_op *op = &h->ops[i];

		if (acknowledged(op)) {
			res->writes++;
			check_write(h, x, op, &res->report);
		}
		check_not_written(h, x, op, &res->report);
		check_read(h, x, op, &res->report);
	}
}

/* Every value put in the reference: written once, by a put or cas of the
 * history to that key. */
static void check_values(const struct history *h, const struct refs *x,
                         struct report *r)
{
	char c[TEXT];
	size_t i;

	for (i = 0; i < x->n; i++) {
		const struct hist_ref *ch = x->by_rev[i];
		uint32_t w = ch->del ? 0 : h->writer[ch->value];

		if (ch->del)
			continue;
		refs_format(h, ch, c, sizeof(c));
		if (x->by_value[ch->value] != i + 1)
			report_add(r, WATCHCHK_STRAY_VALUE, ch->line,
			           "value written twice in the reference: %s",
			           c);
		else if (w == 0)
			report_add(r, WATCHCHK_STRAY_VALUE, ch->line,
			           "no op of the history writes %s", c);
		else if (h->ops[w - 1].key != ch->key)
			report_add(r, WATCHCHK_STRAY_VALUE, ch->line,
			           "%s, but line %" PRIu32 " writes it to %s",
			           c, h->ops[w - 1].line,
			           history_str(h, h->ops[w - 1].key));
	}
}

/* ---- watchers ------------------------------------------------------------ */

#define NOT_DUE SIZE_MAX

/* One watcher against the changes due to it: the reference's changes of its
 * prefix from its FROM_REV, in order. */
struct walk {
	const struct history *h;
	const struct refs *x;
	const struct hist_watch *w;
	uint64_t from;
	size_t *due; /* by_rev indices */
	size_t ndue;
	bool *got;
	size_t next; /* due[next] is the first not yet passed */
	struct report *r;
};

static const char *watcher(const struct walk *k)
{
	return history_str(k->h, k->w->name);
}

static int list_due(struct walk *k)
{
	size_t i;

	k->due = calloc(k->x->n + 1, sizeof(*k->due));
	k->got = calloc(k->x->n + 1, sizeof(*k->got));
	if (k->due == NULL || k->got == NULL)
		return -1;
	for (i = refs_lower(k->x, k->from); i < k->x->n; i++)
		if (history_has_prefix(k->h, k->x->by_rev[i]->key,
		                       k->w->prefix))
			k->due[k->ndue++] = i;
	return 0;
}

/* The position in due of the change of key at rev, or NOT_DUE. */
static size_t find_due(const struct walk *k, uint64_t rev, hist_str key)
{
	size_t lo = 0, hi = k->ndue;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (k->x->by_rev[k->due[mid]]->rev < rev)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < k->ndue && k->x->by_rev[k->due[lo]]->rev == rev; lo++)
		if (k->x->by_rev[k->due[lo]]->key == key)
			return lo;
	return NOT_DUE;
}

static void wrong_event(struct walk *k, const struct hist_event *e,
                        const struct hist_ref *c)
{
	char text[TEXT] = "no change of that key there";

	if (c != NULL)
		refs_format(k->h, c, text, sizeof(text));
	report_add(
	    k->r, WATCHCHK_WRONG_EVENT, e->line,
	    "watcher %s got %s %s %s at rev %" PRIu64 ", the reference has %s",
	    watcher(k), history_str(k->h, e->key), e->del ? "del" : "put",
	    history_str(k->h, e->value), e->rev, text);
}

static void late_event(struct walk *k, const struct hist_event *e, size_t pos)
{
	const struct hist_ref *c = k->x->by_rev[k->due[k->next - 1]];

	if (k->got[pos])
		report_add(k->r, WATCHCHK_DUPLICATE, e->line,
		           "watcher %s got the change of %s at rev %" PRIu64
		           " again",
		           watcher(k), history_str(k->h, e->key), e->rev);
	else
		report_add(k->r, WATCHCHK_ORDER, e->line,
		           "watcher %s got the change of %s at rev %" PRIu64
		           " after the one at rev %" PRIu64,
		           watcher(k), history_str(k->h, e->key), e->rev,
		           c->rev);
	k->got[pos] = true;
}

static void check_event(struct walk *k, const struct hist_event *e)
{
	size_t pos;
	const struct hist_ref *c;

	if (!history_has_prefix(k->h, e->key, k->w->prefix) ||
	    e->rev < k->from) {
		report_add(k->r, WATCHCHK_OUTSIDE, e->line,
		           "watcher %s (prefix %s from rev %" PRIu64
		           ") got %s at rev %" PRIu64,
		           watcher(k), history_str(k->h, k->w->prefix), k->from,
		           history_str(k->h, e->key), e->rev);
		return;
	}
	pos = find_due(k, e->rev, e->key);
	if (pos == NOT_DUE) {
		wrong_event(k, e, NULL);
		return;
	}
	c = k->x->by_rev[k->due[pos]];
	if (c->del != e->del || c->value != e->value)
		wrong_event(k, e, c);
	if (pos < k->next) {
		late_event(k, e, pos);
		return;
	}
	k->got[pos] = true;
	k->next = pos + 1;
}

/* Reports each run of changes due up to rev limit that never came. */
static void check_gaps(struct walk *k, uint64_t limit)
{
	uint32_t line = k->w->end_line ? k->w->end_line : k->w->line;
	char text[TEXT];
	size_t i, j;

	for (i = 0; i < k->ndue; i = j + 1) {
		const struct hist_ref *c = k->x->by_rev[k->due[i]];

		if (c->rev > limit)
			break;
		for (j = i; j < k->ndue && !k->got[j] &&
		            k->x->by_rev[k->due[j]]->rev <= limit;)
			j++;
		if (j == i)
			continue;
		refs_format(k->h, c, text, sizeof(text));
		report_add(k->r, WATCHCHK_GAP, line,
		           "watcher %s missed %s%s (%zu change%s)", watcher(k),
		           text, j - i > 1 ? " and what follows" : "", j - i,
		           j - i > 1 ? "s" : "");
	}
}

static int check_watch(const struct history *h, const struct refs *x,
                       const struct hist_watch *w, struct report *r)
{
	struct walk k = {h, x, w, w->from, NULL, 0, NULL, 0, r};
	size_t i;
	int rv;

	if (k.from == 0)
		k.from = w->nevents ? w->events[0].rev : UINT64_MAX;
	rv = list_due(&k);
	for (i = 0; rv == 0 && i < w->nevents; i++)
		check_event(&k, &w->events[i]);
	if (rv == 0 && w->end_line != 0)
		check_gaps(&k, w->end);
	else if (rv == 0 && k.next > 0)
		check_gaps(&k, x->by_rev[k.due[k.next - 1]]->rev);
	free(k.due);
	free(k.got);
	return rv;
}

/* ---- all ----------------------------------------------------------------- */

int watchchk_run(const struct history *h, FILE *out,
                 struct watchchk_result *res)
{
	struct refs x;
	size_t i;

	memset(res, 0, sizeof(*res));
	report_init(&res->report, out);
	if (h->nmembers == 0) {
		res->no_reference = true;
		return 0;
	}
	if (refs_build(&x, h, &h->members[0]) != 0)
		return -1;
	res->changes = x.n;
	check_members(h, &x, &res->report);
	check_ops(h, &x, res);
	check_values(h, &x, &res->report);
	for (i = 0; i < h->nwatches; i++) {
		res->watchers++;
		res->events += h->watches[i].nevents;
		if (check_watch(h, &x, &h->watches[i], &res->report) != 0) {
			refs_free(&x);
			return -1;
		}
	}
	refs_free(&x);
	report_finish(&res->report);
	return 0;
}

void watchchk_print(const struct watchchk_result *res, FILE *out)
{
	if (res->no_reference) {
		fprintf(out, "watch: not checked: the history has no member "
		             "records (ref, kv, final)\n");
		return;
	}
	fprintf(out,
	        "watch: %s (%zu watchers, %zu events; %zu writes against %zu "
	        "reference changes)",
	        res->report.count ? "VIOLATION" : "ok", res->watchers,
	        res->events, res->writes, res->changes);
	if (res->report.count)
		fprintf(out, ": %zu violation%s", res->report.count,
		        res->report.count > 1 ? "s" : "");
	fputc('\n', out);
}
