/*
 * durchk: checking the members' final state (contract in durchk.h).
 *
 * Each member's reference is indexed (refs.h) and replayed in revision
 * order, which gives each key's final value and mod revision; its kv records
 * are compared with that, and with the first member's kv records, both
 * sorted by key. Acknowledged writes are looked up in the first member's
 * reference and final keyspace.
 */
#include "durchk.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "refs.h"

#define TEXT 512

/* ---- final revisions ----------------------------------------------------- */

static uint64_t last_rev(const struct hist_member *m)
{
	uint64_t rev = 0;
	size_t i;

	for (i = 0; i < m->nrefs; i++)
		if (m->refs[i].rev > rev)
			rev = m->refs[i].rev;
	return rev;
}

static void check_finals(const struct history *h, struct report *r)
{
	const struct hist_member *first = NULL;
	size_t i;

	for (i = 0; i < h->nmembers; i++) {
		const struct hist_member *m = &h->members[i];
		const char *name = history_str(h, m->name);

		if (m->final_line == 0) {
			report_add(r, DURCHK_FINAL_MISSING, 0,
			           "member %s has no final record", name);
			continue;
		}
		if (first == NULL)
			first = m;
		else if (m->final != first->final)
			report_add(r, DURCHK_FINAL_DIFFERS, m->final_line,
			           "member %s ended at rev %" PRIu64
			           ", member %s at rev %" PRIu64,
			           name, m->final, history_str(h, first->name),
			           first->final);
		if (m->final < last_rev(m))
			report_add(r, DURCHK_FINAL_BEHIND, m->final_line,
			           "member %s ended at rev %" PRIu64
			           " but its history goes to rev %" PRIu64,
			           name, m->final, last_rev(m));
	}
}

/* ---- keyspaces ----------------------------------------------------------- */

static int by_key(const void *a, const void *b)
{
	const struct hist_ref *x = *(const struct hist_ref *const *)a;
	const struct hist_ref *y = *(const struct hist_ref *const *)b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return x->line < y->line ? -1 : x->line > y->line;
}

/* The member's kv records sorted by key (free() it), or NULL. */
static const struct hist_ref **sorted_kvs(const struct hist_member *m)
{
	const struct hist_ref **v = calloc(m->nkvs + 1, sizeof(*v));
	size_t i;

	if (v == NULL)
		return NULL;
	for (i = 0; i < m->nkvs; i++)
		v[i] = &m->kvs[i];
	qsort(v, m->nkvs, sizeof(*v), by_key);
	return v;
}

static void kv_text(const struct history *h, const struct hist_ref *kv,
                    char *buf, size_t n)
{
	if (kv == NULL)
		snprintf(buf, n, "nothing");
	else
		snprintf(buf, n, "%s modrev %" PRIu64 " (line %" PRIu32 ")",
		         history_str(h, kv->value), kv->rev, kv->line);
}

static bool same_kv(const struct hist_ref *a, const struct hist_ref *b)
{
	return a->value == b->value && a->rev == b->rev;
}

/* Reports the first key where the sorted keyspaces a (of member ma) and b
 * (of mb) differ. */
static void compare_kvs(const struct history *h, const struct hist_member *ma,
                        const struct hist_ref **a, const struct hist_member *mb,
                        const struct hist_ref **b, struct report *r)
{
	size_t i = 0, j = 0;
	char x[TEXT], y[TEXT];

	while (i < ma->nkvs || j < mb->nkvs) {
		const struct hist_ref *p = i < ma->nkvs ? a[i] : NULL;
		const struct hist_ref *q = j < mb->nkvs ? b[j] : NULL;

		if (p && q && p->key == q->key && same_kv(p, q)) {
			i++;
			j++;
			continue;
		}
		if (p && q && p->key != q->key) {
			if (p->key < q->key)
				q = NULL;
			else
				p = NULL;
		}
		kv_text(h, p, x, sizeof(x));
		kv_text(h, q, y, sizeof(y));
		report_add(r, DURCHK_KV_DIFFERS, q ? q->line : 0,
		           "members differ at key %s: %s has %s, %s has %s",
		           history_str(h, p   ? p->key
		                          : q ? q->key
		                              : HIST_NONE),
		           history_str(h, ma->name), x,
		           history_str(h, mb->name), y);
		return;
	}
}

static void check_dups(const struct history *h, const struct hist_member *m,
                       const struct hist_ref **v, struct report *r)
{
	size_t i;

	for (i = 1; i < m->nkvs; i++)
		if (v[i]->key == v[i - 1]->key)
			report_add(
			    r, DURCHK_KV_DIFFERS, v[i]->line,
			    "member %s lists key %s twice (also line %" PRIu32
			    ")",
			    history_str(h, m->name), history_str(h, v[i]->key),
			    v[i - 1]->line);
}

static int check_keyspaces(const struct history *h, struct report *r)
{
	const struct hist_ref **first, **v;
	size_t i;

	first = sorted_kvs(&h->members[0]);
	if (first == NULL)
		return -1;
	check_dups(h, &h->members[0], first, r);
	for (i = 1; i < h->nmembers; i++) {
		v = sorted_kvs(&h->members[i]);
		if (v == NULL) {
			free(first);
			return -1;
		}
		check_dups(h, &h->members[i], v, r);
		compare_kvs(h, &h->members[0], first, &h->members[i], v, r);
		free(v);
	}
	free(first);
	return 0;
}

/* ---- replays ------------------------------------------------------------- */

static void replay_text(const struct history *h, const struct refs *x,
                        const bool *present, hist_str key, char *buf, size_t n)
{
	if (!present[key])
		snprintf(buf, n, "absent");
	else
		snprintf(buf, n, "%s modrev %" PRIu64,
		         history_str(h, x->last_value[key]), x->last_rev[key]);
}

/* Replays x in revision order into present[]; a del of an absent key is a
 * violation. */
static void replay(const struct history *h, const struct refs *x, bool *present,
                   struct report *r)
{
	size_t i;

	for (i = 0; i < x->n; i++) {
		const struct hist_ref *c = x->by_rev[i];

		if (c->del && !present[c->key])
			report_add(
			    r, DURCHK_KV_REPLAY, c->line,
			    "member %s's history deletes %s at rev %" PRIu64
			    " while it is absent",
			    history_str(h, x->m->name), history_str(h, c->key),
			    c->rev);
		present[c->key] = !c->del;
	}
}

/* Compares the member's kv records with the replay, both ways. */
static void compare_replay(const struct history *h, const struct refs *x,
                           const bool *present, bool *listed, struct report *r)
{
	const struct hist_member *m = x->m;
	char text[TEXT];
	size_t i;

	for (i = 0; i < m->nkvs; i++) {
		const struct hist_ref *kv = &m->kvs[i];

		listed[kv->key] = true;
		if (present[kv->key] && x->last_value[kv->key] == kv->value &&
		    x->last_rev[kv->key] == kv->rev)
			continue;
		replay_text(h, x, present, kv->key, text, sizeof(text));
		report_add(r, DURCHK_KV_REPLAY, kv->line,
		           "member %s has %s = %s modrev %" PRIu64
		           ", its history gives %s",
		           history_str(h, m->name), history_str(h, kv->key),
		           history_str(h, kv->value), kv->rev, text);
	}
	for (i = 0; i < x->n; i++) {
		hist_str key = x->by_rev[i]->key;

		if (!present[key] || listed[key])
			continue;
		listed[key] = true;
		replay_text(h, x, present, key, text, sizeof(text));
		report_add(r, DURCHK_KV_REPLAY, m->final_line,
		           "member %s lacks key %s, which its history leaves "
		           "at %s",
		           history_str(h, m->name), history_str(h, key), text);
	}
}

static int check_replay(const struct history *h, const struct hist_member *m,
                        struct report *r)
{
	bool *present, *listed;
	struct refs x;
	int rv = -1;

	if (refs_build(&x, h, m) != 0)
		return -1;
	present = calloc(h->nstrs + 1, sizeof(*present));
	listed = calloc(h->nstrs + 1, sizeof(*listed));
	if (present == NULL || listed == NULL)
		goto out;
	replay(h, &x, present, r);
	compare_replay(h, &x, present, listed, r);
	rv = 0;
out:
	free(listed);
	free(present);
	refs_free(&x);
	return rv;
}

/* ---- acknowledged writes ------------------------------------------------- */

static bool acknowledged(const struct hist_op *op)
{
	return op->status == HIST_OK && op->type != HIST_GET &&
	       (op->type == HIST_PUT || op->flag);
}

static void check_write(const struct history *h, const struct refs *x,
                        const hist_str *final, const struct hist_op *op,
                        struct report *r)
{
	hist_str value = op->type == HIST_DEL ? HIST_NONE : op->value;
	const struct hist_ref *c = refs_at(x, op->rev, op->key);
	char text[TEXT];

	if (c && c->del == (op->type == HIST_DEL) && c->value == value &&
	    (x->last_rev[op->key] > op->rev || final[op->key] == value))
		return;
	history_describe_op(h, op, text, sizeof(text));
	if (c == NULL || c->del != (op->type == HIST_DEL) || c->value != value)
		report_add(r, DURCHK_LOST_WRITE, op->line,
		           "acknowledged write lost: %s is not in member %s's "
		           "history at rev %" PRIu64,
		           text, history_str(h, x->m->name), op->rev);
	else
		report_add(r, DURCHK_LOST_WRITE, op->line,
		           "acknowledged write lost: %s is the last change of "
		           "%s, yet member %s ends with %s = %s",
		           text, history_str(h, op->key),
		           history_str(h, x->m->name), history_str(h, op->key),
		           final[op->key] ? history_str(h, final[op->key])
		                          : "(absent)");
}

static int check_writes(const struct history *h, struct durchk_result *res)
{
	const struct hist_member *m = &h->members[0];
	hist_str *final;
	struct refs x;
	size_t i;

	if (refs_build(&x, h, m) != 0)
		return -1;
	final = calloc(h->nstrs + 1, sizeof(*final));
	if (final == NULL) {
		refs_free(&x);
		return -1;
	}
	for (i = 0; i < m->nkvs; i++)
		final[m->kvs[i].key] = m->kvs[i].value;
	for (i = 0; i < h->nops; i++) {
		if (!acknowledged(&h->ops[i]))
			continue;
		res->writes++;
		check_write(h, &x, final, &h->ops[i], &res->report);
	}
	free(final);
	refs_free(&x);
	return 0;
}

/* ---- all ----------------------------------------------------------------- */

int durchk_run(const struct history *h, FILE *out, struct durchk_result *res)
{
	size_t i;

	memset(res, 0, sizeof(*res));
	report_init(&res->report, out);
	if (h->nmembers == 0) {
		res->no_members = true;
		return 0;
	}
	res->members = h->nmembers;
	res->keys = h->members[0].nkvs;
	check_finals(h, &res->report);
	if (check_keyspaces(h, &res->report) != 0)
		return -1;
	for (i = 0; i < h->nmembers; i++)
		if (check_replay(h, &h->members[i], &res->report) != 0)
			return -1;
	if (check_writes(h, res) != 0)
		return -1;
	report_finish(&res->report);
	return 0;
}

void durchk_print(const struct durchk_result *res, FILE *out)
{
	if (res->no_members) {
		fprintf(out, "durability: not checked: the history has no "
		             "member records (ref, kv, final)\n");
		return;
	}
	fprintf(out, "durability: %s (%zu members, %zu keys, %zu writes)",
	        res->report.count ? "VIOLATION" : "ok", res->members, res->keys,
	        res->writes);
	if (res->report.count)
		fprintf(out, ": %zu violation%s", res->report.count,
		        res->report.count > 1 ? "s" : "");
	fputc('\n', out);
}
