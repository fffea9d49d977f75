/*
 * test_linchk: the fault-injection suite's history checkers
 * (tests/fault/): the history parser, the linearizability checker, the
 * watch checker and the durability checker.
 *
 * Small hand-written histories, parsed from text, pin down each verdict: ones
 * that linearize (concurrent reads seeing either value, cas chains, unknown
 * writes that did or did not happen) and ones that do not (stale reads,
 * values never written, double cas, lost writes), checking that the report
 * names the offending op; likewise watcher gaps, duplicates, reordering,
 * wrong values, lost acknowledged writes, members that disagree. A
 * randomized test compares the linearizability checker with a brute-force
 * search on thousands of tiny histories (its pruning must lose nothing); a
 * synthetic history of a simulated linearizable store (8 clients, 10 keys,
 * LINCHK_SYNTH_OPS ops, 50000 by default) must pass every checker, and fail
 * once a read is corrupted; its timing is printed. LINCHK_SYNTH_OUT=<file>
 * writes that history out, for cairn-check. The parser is fed random bytes
 * and mutated files; every allocation of parse and checks is made to fail in
 * turn (outside sanitizer builds). LINCHK_SEED=<n> replays the random tests.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "durchk.h"
#include "history.h"
#include "linchk.h"
#include "test.h"
#include "watchchk.h"

#include "fault.h"

static uint64_t seed = 0x5eedf00dULL;

/* ---- helpers ------------------------------------------------------------- */

static char parse_error[1024];

/* Parses text; NULL (and parse_error) if it does not parse. */
static struct history *parse(const char *text)
{
	struct history *h;

	if (history_parse(text, strlen(text), "t", &h, parse_error,
	                  sizeof(parse_error)) != 0) {
		printf("# parse error: %s\n", parse_error);
		return NULL;
	}
	return h;
}

/* Prints a report as TAP diagnostics. */
static void diag(const char *text)
{
	const char *p = text;

	while (p && *p) {
		const char *nl = strchr(p, '\n');
		int n = nl ? (int)(nl - p) : (int)strlen(p);

		printf("# %.*s\n", n, p);
		p = nl ? nl + 1 : NULL;
	}
}

/* The linearizability verdict of text (options o may be NULL); the result
 * stays in *res, its report in *report (free both). Prints the report if
 * the verdict is not the one expected. */
static int lin(const char *text, const struct linchk_opts *o,
               struct history **h, struct linchk_result *res, char **report,
               enum linchk_verdict expect)
{
	size_t len;
	FILE *f;

	*h = parse(text);
	fflush(stdout);
	if (*h == NULL)
		abort();
	if (linchk_run(*h, o, res) != 0)
		abort();
	f = open_memstream(report, &len);
	linchk_print(*h, res, f);
	fclose(f);
	if (res->verdict != expect)
		diag(*report);
	return res->verdict;
}

static bool window_has(const struct linchk_key *k, uint32_t line)
{
	size_t i;

	for (i = 0; i < k->nwindow; i++)
		if (k->window[i]->line == line)
			return true;
	return false;
}

/* Checks text linearizes. */
#define LINEARIZES(text)                                                       \
	do {                                                                   \
		struct history *h_;                                            \
		struct linchk_result r_;                                       \
		char *rep_;                                                    \
		int v_ = lin((text), NULL, &h_, &r_, &rep_, LINCHK_OK);        \
		free(rep_);                                                    \
		linchk_result_free(&r_);                                       \
		history_free(h_);                                              \
		CHECK_EQ_INT(v_, LINCHK_OK);                                   \
	} while (0)

/* Checks text does not linearize, the blocker is the op at line ln and the
 * report names it. */
#define VIOLATES(text, ln)                                                     \
	do {                                                                   \
		struct history *h_;                                            \
		struct linchk_result r_;                                       \
		char *rep_, want_[32];                                         \
		int v_ = lin((text), NULL, &h_, &r_, &rep_, LINCHK_VIOLATION); \
		snprintf(want_, sizeof(want_), "> line %d:", (int)(ln));       \
		CHECK_EQ_INT(v_, LINCHK_VIOLATION);                            \
		CHECK_EQ_INT(r_.nbad, 1);                                      \
		CHECK_EQ_INT(r_.bad[0].blocker->line, (ln));                   \
		CHECK(window_has(&r_.bad[0], (ln)));                           \
		CHECK(strstr(rep_, want_) != NULL);                            \
		free(rep_);                                                    \
		linchk_result_free(&r_);                                       \
		history_free(h_);                                              \
	} while (0)

/* ---- linearizable -------------------------------------------------------- */

/* Two reads concurrent with a put: one sees the old value, one the new. */
TEST(lin_concurrent_reads)
{
	LINEARIZES("op p1 0 10 ok put k a rev=2\n"
	           "op p2 20 60 ok put k b rev=3\n"
	           "op p3 30 50 ok get k val=b modrev=3 rev=3\n"
	           "op p4 30 55 ok get k val=a modrev=2 rev=2\n");
	/* or one after the other, while the put is in progress */
	LINEARIZES("op p1 0 10 ok put k a rev=2\n"
	           "op p2 20 60 ok put k b rev=3\n"
	           "op p3 30 40 ok get k val=a modrev=2 rev=2\n"
	           "op p4 45 55 ok get k val=b modrev=3 rev=3\n");
	return 0;
}

TEST(lin_cas_chain)
{
	LINEARIZES("op p1 0 10 ok cas k - a succeeded=1 rev=2\n"
	           "op p2 20 30 ok cas k a b succeeded=1 rev=3\n"
	           "op p3 25 40 ok cas k a c0 succeeded=0 rev=3\n"
	           "op p1 50 60 ok cas k b c succeeded=1 rev=4\n"
	           "op p2 55 65 ok cas k - d succeeded=0 rev=4\n"
	           "op p2 70 80 ok get k val=c modrev=4 rev=4\n"
	           "op p3 90 95 ok del k deleted=1 rev=5\n"
	           "op p3 96 99 ok del k deleted=0 rev=5\n"
	           "op p1 100 110 ok cas k - e succeeded=1 rev=6\n");
	return 0;
}

/* An unknown put that took effect: a later read sees it. */
TEST(lin_unknown_took_effect)
{
	LINEARIZES("op p1 0 10 ok put k a rev=2\n"
	           "op p2 20 - unknown put k b\n"
	           "op p3 100 110 ok get k val=b modrev=3 rev=3\n"
	           "op p1 120 130 ok cas k b c succeeded=1 rev=4\n");
	/* an unknown del, long after it was invoked */
	LINEARIZES("op p1 0 10 ok put k a rev=2\n"
	           "op p2 20 30 unknown del k\n"
	           "op p3 100 110 ok get k val=a modrev=2 rev=2\n"
	           "op p3 120 130 ok get k val=- modrev=0 rev=3\n");
	return 0;
}

/* Unknown writes that never took effect. */
TEST(lin_unknown_did_not)
{
	LINEARIZES("op p1 0 10 ok put k a rev=2\n"
	           "op p2 20 - unknown put k b\n"
	           "op p4 22 - unknown cas k a z\n"
	           "op p5 23 25 unknown del k\n"
	           "op p3 100 110 ok get k val=a modrev=2 rev=2\n"
	           "op p1 120 130 ok cas k a c succeeded=1 rev=3\n");
	return 0;
}

/* A read sees the value of an unknown cas, concurrent with it, and later
 * writes build on it. */
TEST(lin_read_of_unknown)
{
	LINEARIZES("op p1 0 10 ok put k a rev=2\n"
	           "op p2 20 - unknown cas k a b\n"
	           "op p3 25 35 ok get k val=b modrev=3 rev=3\n"
	           "op p3 40 50 ok cas k b c succeeded=1 rev=4\n"
	           "op p1 60 70 ok get k val=c modrev=4 rev=4\n");
	/* a chain of unknown ops: put, then cas on it, then read */
	LINEARIZES("op p1 0 10 ok put k a rev=2\n"
	           "op p2 20 - unknown put k b\n"
	           "op p4 30 - unknown cas k b c\n"
	           "op p3 40 50 ok get k val=c modrev=4 rev=4\n");
	/* an unknown put explains a failed cas */
	LINEARIZES("op p1 0 10 ok put k a rev=2\n"
	           "op p2 20 - unknown put k b\n"
	           "op p3 40 50 ok cas k a c succeeded=0 rev=3\n");
	return 0;
}

/* fail ops did not happen; unknown gets say nothing; equal times overlap. */
TEST(lin_fail_dropped)
{
	LINEARIZES("op p1 0 10 ok put k a rev=2\n"
	           "op p2 20 30 fail put k b\n"
	           "op p3 25 35 unknown get k\n"
	           "op p3 40 50 ok get k val=a modrev=2 rev=2\n");
	LINEARIZES("op p1 0 10 ok put k a rev=2\n"
	           "op p2 10 20 ok get k val=- modrev=0 rev=1\n");
	return 0;
}

/* Keys are checked apart; the store's revision is shared by them. */
TEST(lin_keys_apart)
{
	struct history *h;
	struct linchk_result r;
	char *rep;

	lin("op p1 0 10 ok put x a rev=2\n"
	    "op p2 0 10 ok put y b rev=3\n"
	    "op p1 20 30 ok get x val=a modrev=2 rev=3\n"
	    "op p2 20 30 ok get y val=b modrev=3 rev=3\n"
	    "op p3 40 50 ok del x deleted=1 rev=4\n",
	    NULL, &h, &r, &rep, LINCHK_OK);
	CHECK_EQ_INT(r.verdict, LINCHK_OK);
	CHECK_EQ_INT(r.nkeys, 2);
	CHECK_EQ_INT(r.nops, 5);
	CHECK(strstr(rep, "linearizability: ok (5 ops, 2 keys)") != NULL);
	free(rep);
	linchk_result_free(&r);
	history_free(h);
	return 0;
}

/* ---- not linearizable ---------------------------------------------------- */

TEST(lin_stale_read)
{
	VIOLATES("op p1 0 10 ok put k a rev=2\n"
	         "op p2 20 30 ok put k b rev=3\n"
	         "op p3 40 50 ok get k val=a modrev=2 rev=3\n",
	         3);
	return 0;
}

TEST(lin_value_never_written)
{
	VIOLATES("op p1 0 10 ok put k a rev=2\n"
	         "op p2 5 30 ok get k val=zz modrev=2 rev=2\n",
	         2);
	/* nor by an unknown put invoked after the read completed */
	VIOLATES("op p1 0 10 ok put k a rev=2\n"
	         "op p3 20 30 ok get k val=b modrev=3 rev=3\n"
	         "op p2 40 - unknown put k b\n",
	         2);
	return 0;
}

/* Two concurrent cas from the same expected value both succeed. */
TEST(lin_double_cas)
{
	struct history *h;
	struct linchk_result r;
	char *rep;

	lin("op p1 0 10 ok put k a rev=2\n"
	    "op p2 20 50 ok cas k a b succeeded=1 rev=3\n"
	    "op p3 25 45 ok cas k a c succeeded=1 rev=4\n",
	    NULL, &h, &r, &rep, LINCHK_VIOLATION);
	CHECK_EQ_INT(r.verdict, LINCHK_VIOLATION);
	CHECK(window_has(&r.bad[0], 2));
	CHECK(window_has(&r.bad[0], 3));
	CHECK(r.bad[0].blocker->line == 2 || r.bad[0].blocker->line == 3);
	free(rep);
	linchk_result_free(&r);
	history_free(h);
	return 0;
}

/* An acknowledged cas is lost: later ops act as if it never happened. */
TEST(lin_lost_write)
{
	VIOLATES("op p1 0 10 ok put k a rev=2\n"
	         "op p2 20 30 ok cas k a b succeeded=1 rev=3\n"
	         "op p3 40 50 ok get k val=a modrev=2 rev=3\n"
	         "op p1 60 70 ok cas k a c succeeded=1 rev=4\n",
	         3);
	/* an acknowledged del, then the key is back with its old value */
	VIOLATES("op p1 0 10 ok put k a rev=2\n"
	         "op p2 20 30 ok del k deleted=1 rev=3\n"
	         "op p3 40 50 ok get k val=a modrev=2 rev=3\n",
	         3);
	return 0;
}

/* A read returns a value that a write still in progress had overwritten
 * before the read began (another read saw the new value first). */
TEST(lin_read_overwritten_before)
{
	VIOLATES("op p1 0 10 ok put k a rev=2\n"
	         "op p2 20 100 ok put k b rev=3\n"
	         "op p3 30 40 ok get k val=b modrev=3 rev=3\n"
	         "op p4 50 60 ok get k val=a modrev=2 rev=3\n",
	         4);
	return 0;
}

/* Revisions that run backwards: a violation, unless revisions are off. */
TEST(lin_revisions)
{
	static const char text[] = "op p1 0 10 ok put k a rev=5\n"
	                           "op p2 20 30 ok put k b rev=4\n";
	struct linchk_opts o = {0, 0, true};
	struct history *h;
	struct linchk_result r;
	char *rep;

	VIOLATES(text, 2);
	CHECK_EQ_INT(lin(text, &o, &h, &r, &rep, LINCHK_OK), LINCHK_OK);
	free(rep);
	linchk_result_free(&r);
	history_free(h);
	/* a read may not see an older store revision than one before it */
	VIOLATES("op p1 0 10 ok put k a rev=2\n"
	         "op p2 20 30 ok get k val=a modrev=2 rev=9\n"
	         "op p2 40 50 ok get k val=a modrev=2 rev=8\n",
	         3);
	return 0;
}

/* Only the bad key is reported, with the values it could hold. */
TEST(lin_report)
{
	struct history *h;
	struct linchk_result r;
	char *rep;

	lin("op p1 0 10 ok put x a rev=2\n"
	    "op p1 20 30 ok put y b rev=3\n"
	    "op p2 40 50 ok put y c rev=4\n"
	    "op p3 60 70 ok get y val=b modrev=3 rev=4\n"
	    "op p3 80 90 ok get x val=a modrev=2 rev=4\n",
	    NULL, &h, &r, &rep, LINCHK_VIOLATION);
	CHECK_EQ_INT(r.verdict, LINCHK_VIOLATION);
	CHECK_EQ_INT(r.nbad, 1);
	CHECK(strcmp(history_str(h, r.bad[0].key), "y") == 0);
	CHECK_EQ_INT(r.bad[0].prefix, 2);
	CHECK_EQ_INT(r.bad[0].nstates, 1);
	CHECK(strcmp(history_str(h, r.bad[0].states[0]), "c") == 0);
	CHECK(strstr(rep, "linearizability: VIOLATION (5 ops, 2 keys)"));
	CHECK(strstr(rep, "key y: no linearization"));
	CHECK(strstr(rep, "could hold: c"));
	free(rep);
	linchk_result_free(&r);
	history_free(h);
	return 0;
}

/* A budget too small gives "undecided", said as such. */
TEST(lin_undecided)
{
	struct linchk_opts o = {3, 0, false};
	struct history *h;
	struct linchk_result r;
	char *rep;

	lin("op p1 0 10 ok put k a rev=2\n"
	    "op p2 5 30 ok put k b rev=3\n"
	    "op p3 20 40 ok get k val=b modrev=3 rev=3\n",
	    &o, &h, &r, &rep, LINCHK_UNDECIDED);
	CHECK_EQ_INT(r.verdict, LINCHK_UNDECIDED);
	CHECK(strstr(rep, "linearizability: undecided"));
	CHECK(strstr(rep, "step budget"));
	free(rep);
	linchk_result_free(&r);
	history_free(h);
	return 0;
}

/* ---- against brute force ------------------------------------------------- */

/* A tiny single-key history, as the brute force sees it. */
struct bop {
	int type; /* enum hist_type */
	bool unknown;
	int flag, val, exp, read; /* values: 0 absent, else v<n> */
	uint64_t inv, comp, rev;
};

struct brute {
	struct bop ops[8];
	int n;
	bool revs;
	bool in[8], used[8];
	int order[8], nord;
};

/* Whether the ops in order[] are a legal run of the model. */
static bool brute_run(const struct brute *b)
{
	uint64_t lb = 0;
	int i, v = 0;

	for (i = 0; i < b->nord; i++) {
		const struct bop *o = &b->ops[b->order[i]];
		bool creates =
		    o->type == HIST_PUT || (o->type != HIST_GET && o->flag);

		if (o->unknown) {
			if (o->type == HIST_PUT ||
			    (o->type == HIST_CAS && v == o->exp))
				v = o->val;
			else if (o->type == HIST_DEL)
				v = 0;
			continue;
		}
		if ((o->type == HIST_GET && v != o->read) ||
		    (o->type == HIST_CAS && (v == o->exp) != o->flag) ||
		    (o->type == HIST_DEL && (v != 0) != o->flag))
			return false;
		if (o->type == HIST_PUT || (o->type == HIST_CAS && o->flag))
			v = o->val;
		else if (o->type == HIST_DEL)
			v = 0;
		if (b->revs && (creates ? o->rev <= lb : o->rev < lb))
			return false;
		if (b->revs)
			lb = o->rev;
	}
	return true;
}

/* Every order of the chosen ops that respects real time. */
static bool brute_perm(struct brute *b, int want)
{
	int i, j;

	if (b->nord == want)
		return brute_run(b);
	for (i = 0; i < b->n; i++) {
		bool ok = b->in[i] && !b->used[i];

		for (j = 0; ok && j < b->n; j++)
			if (j != i && b->in[j] && !b->used[j] &&
			    !b->ops[j].unknown &&
			    b->ops[j].comp < b->ops[i].inv)
				ok = false;
		if (!ok)
			continue;
		b->used[i] = true;
		b->order[b->nord++] = i;
		if (brute_perm(b, want))
			return true;
		b->used[i] = false;
		b->nord--;
	}
	return false;
}

/* Linearizable iff some subset of the unknown ops, with all ok ops, has a
 * legal order. */
static bool brute(struct brute *b)
{
	int m, i, want;

	for (m = 0; m < 1 << b->n; m++) {
		bool skip = false;

		for (i = 0, want = 0; i < b->n; i++) {
			b->in[i] = !b->ops[i].unknown || ((m >> i) & 1);
			b->used[i] = false;
			skip |= !b->ops[i].unknown && ((m >> i) & 1);
			want += b->in[i];
		}
		b->nord = 0;
		if (!skip && brute_perm(b, want))
			return true;
	}
	return false;
}

/* A random execution of a correct store, then maybe one result spoiled. */
static void brute_make(struct brute *b)
{
	uint64_t lp[8], rev = 1;
	int i, j, q, v = 0, nv = 0, idx[8];

	b->n = 2 + (int)rng_below(6);
	for (i = 0; i < b->n; i++) {
		struct bop *o = &b->ops[i];

		memset(o, 0, sizeof(*o));
		o->inv = rng_below(40);
		o->comp = o->inv + 1 + rng_below(25);
		lp[i] = o->inv + rng_below(o->comp - o->inv + 1);
		o->type = (int)rng_below(4);
		o->unknown = o->type != HIST_GET && rng_below(10) < 3;
		if (o->type == HIST_PUT || o->type == HIST_CAS)
			o->val = ++nv;
		idx[i] = i;
	}
	for (i = 0; i < b->n; i++)
		for (j = i + 1; j < b->n; j++)
			if (lp[idx[j]] < lp[idx[i]]) {
				q = idx[i];
				idx[i] = idx[j];
				idx[j] = q;
			}
	for (q = 0; q < b->n; q++) {
		struct bop *o = &b->ops[idx[q]];

		if (o->type == HIST_CAS)
			o->exp = rng_below(3) ? v : (int)rng_below(nv + 1);
		if (o->unknown && rng_below(2))
			continue; /* did not take effect */
		if (o->type == HIST_PUT) {
			v = o->val;
			o->rev = ++rev;
		} else if (o->type == HIST_GET) {
			o->read = v;
			o->rev = rev;
		} else if (o->type == HIST_CAS) {
			o->flag = v == o->exp;
			v = o->flag ? o->val : v;
			o->rev = o->flag ? ++rev : rev;
		} else {
			o->flag = v != 0;
			v = 0;
			o->rev = o->flag ? ++rev : rev;
		}
	}
	if (rng_below(2)) {
		struct bop *o = &b->ops[rng_below(b->n)];

		switch (rng_below(4)) {
		case 0:
			o->read = (int)rng_below(nv + 1);
			break;
		case 1:
			o->flag ^= o->type != HIST_PUT && o->type != HIST_GET;
			break;
		case 2:
			o->rev = rng_below(rev + 2);
			break;
		default:
			o->inv /= 2;
			break;
		}
	}
	b->revs = rng_below(2);
}

static const char *vname(int v, char *buf)
{
	if (v == 0)
		return "-";
	sprintf(buf, "v%d", v);
	return buf;
}

static size_t brute_text(const struct brute *b, char *t)
{
	static const char *const types[] = {"put", "get", "cas", "del"};
	char x[16], y[16];
	size_t n = 0;
	int i;

	for (i = 0; i < b->n; i++) {
		const struct bop *o = &b->ops[i];

		n += (size_t)sprintf(
		    t + n, "op p%d %" PRIu64 " %" PRIu64 " %s %s k", i, o->inv,
		    o->comp, o->unknown ? "unknown" : "ok", types[o->type]);
		if (o->type == HIST_PUT)
			n += (size_t)sprintf(t + n, " %s", vname(o->val, x));
		if (o->type == HIST_CAS)
			n += (size_t)sprintf(t + n, " %s %s", vname(o->exp, x),
			                     vname(o->val, y));
		if (!o->unknown && o->type == HIST_GET)
			n += (size_t)sprintf(t + n, " val=%s modrev=%d",
			                     vname(o->read, x), o->read != 0);
		else if (!o->unknown && o->type != HIST_PUT)
			n += (size_t)sprintf(t + n, " %s=%d",
			                     o->type == HIST_CAS ? "succeeded"
			                                         : "deleted",
			                     o->flag);
		if (!o->unknown)
			n += (size_t)sprintf(t + n, " rev=%" PRIu64, o->rev);
		t[n++] = '\n';
	}
	t[n] = '\0';
	return n;
}

/* The checker's pruning must lose no linearization and find no false one:
 * thousands of tiny histories, against trying every order. */
TEST(lin_brute_force)
{
	int i, agree = 0, linearizable = 0;
	struct brute b;
	char text[2048];

	rng_seed(seed);
	for (i = 0; i < 4000; i++) {
		struct linchk_opts o = {0, 0, false};
		struct linchk_result r;
		struct history *h;
		bool want;

		brute_make(&b);
		brute_text(&b, text);
		o.ignore_revs = !b.revs;
		h = parse(text);
		CHECK(h != NULL);
		CHECK_EQ_INT(linchk_run(h, &o, &r), 0);
		want = brute(&b);
		if ((r.verdict == LINCHK_OK) != want) {
			printf("# revs %d, brute force says %s:\n", b.revs,
			       want ? "linearizable" : "not linearizable");
			diag(text);
		}
		CHECK_EQ_INT(r.verdict, want ? LINCHK_OK : LINCHK_VIOLATION);
		agree++;
		linearizable += want;
		linchk_result_free(&r);
		history_free(h);
	}
	printf("# %d histories agree, %d linearizable\n", agree, linearizable);
	return 0;
}

/* ---- text helpers -------------------------------------------------------- */

/* A new string: s with its first occurrence of from replaced by to (which
 * may be ""); s itself if from is not there (the caller's check fails). */
static char *edit(const char *s, const char *from, const char *to)
{
	const char *p = strstr(s, from);
	size_t n = strlen(s) - (p ? strlen(from) : 0) + strlen(to) + 1;
	char *out = malloc(n);

	if (out == NULL)
		abort();
	if (p == NULL) {
		printf("# edit: \"%s\" not found\n", from);
		snprintf(out, n, "%s", s);
		return out;
	}
	snprintf(out, n, "%.*s%s%s", (int)(p - s), s, to, p + strlen(from));
	return out;
}

/* body followed by the member records in members (member field "M"), once
 * for each of m1, m2, m3. */
static char *with_members(const char *body, const char *members)
{
	size_t n = strlen(body) + 3 * (strlen(members) * 2 + 16);
	char *out = malloc(n), *p;
	int m;

	if (out == NULL)
		abort();
	p = out + sprintf(out, "%s", body);
	for (m = 1; m <= 3; m++) {
		const char *s = members;

		while (*s) {
			if (s[0] == ' ' && s[1] == 'M' && s[2] == ' ') {
				p += sprintf(p, " m%d ", m);
				s += 3;
			} else {
				*p++ = *s++;
			}
		}
	}
	*p = '\0';
	return out;
}

/* ---- a synthetic history ------------------------------------------------- */

#define SYNTH_PROCS 8
#define SYNTH_KEYS 10

struct sop {
	int proc, type, status, key, val, exp, read, flag;
	bool effect;
	uint64_t inv, comp, lp, rev, modrev;
	uint32_t line;
};

struct sref {
	uint64_t rev;
	int key, val; /* val 0: a del */
};

struct synth {
	struct sop *ops;
	size_t n;
	struct sref *refs;
	size_t nrefs;
	int cur[SYNTH_KEYS];
	uint64_t mod[SYNTH_KEYS];
	uint64_t rev;
};

static int by_lp(const void *a, const void *b)
{
	const struct sop *x = *(const struct sop *const *)a;
	const struct sop *y = *(const struct sop *const *)b;

	return x->lp < y->lp ? -1 : x->lp > y->lp;
}

/* n ops of 8 clients on 10 keys; about 1% last long, 3% end unknown (half
 * of those took effect), 2% fail. */
static void synth_ops(struct synth *s)
{
	uint64_t t[SYNTH_PROCS] = {0};
	int nv = 0, p, q;
	size_t i;

	for (i = 0; i < s->n; i++) {
		struct sop *o = &s->ops[i];
		uint64_t dur = rng_below(100) ? 1 + rng_below(300)
		                              : 300 + rng_below(20000);
		unsigned r = (unsigned)rng_below(100);

		for (p = 0, q = 1; q < SYNTH_PROCS; q++)
			if (t[q] < t[p])
				p = q; /* the client free first goes next */
		o->proc = p;
		o->inv = t[p] + rng_below(50);
		o->comp = o->inv + dur;
		o->lp = o->inv + rng_below(dur + 1);
		o->key = (int)rng_below(SYNTH_KEYS);
		o->type = r < 35   ? HIST_GET
		          : r < 60 ? HIST_PUT
		          : r < 90 ? HIST_CAS
		                   : HIST_DEL;
		r = (unsigned)rng_below(100);
		o->status = r < 3 ? HIST_UNKNOWN : r < 5 ? HIST_FAIL : HIST_OK;
		o->effect = o->status == HIST_OK ||
		            (o->status == HIST_UNKNOWN && rng_below(2));
		if (o->type == HIST_PUT || o->type == HIST_CAS)
			o->val = ++nv;
		t[p] = o->comp + 1;
	}
}

static void synth_write(struct synth *s, struct sop *o, int val)
{
	s->cur[o->key] = val;
	s->mod[o->key] = ++s->rev;
	s->refs[s->nrefs].rev = s->rev;
	s->refs[s->nrefs].key = o->key;
	s->refs[s->nrefs++].val = val;
}

/* One op takes effect at its linearization point. A cas expects the value
 * there 60% of the time, else an older or absent one. */
static void synth_apply(struct synth *s, struct sop *o)
{
	int *cur = &s->cur[o->key];

	if (o->type == HIST_CAS)
		o->exp = rng_below(10) < 6 ? *cur : (int)rng_below(o->val);
	if (!o->effect)
		return;
	if (o->type == HIST_PUT) {
		synth_write(s, o, o->val);
	} else if (o->type == HIST_GET) {
		o->read = *cur;
		o->modrev = *cur ? s->mod[o->key] : 0;
	} else if (o->type == HIST_CAS) {
		o->flag = *cur == o->exp;
		if (o->flag)
			synth_write(s, o, o->val);
	} else {
		o->flag = *cur != 0;
		if (o->flag)
			synth_write(s, o, 0);
	}
	o->rev = s->rev;
}

/* A linearizable history: ops applied to a store in the order of random
 * points within their intervals. */
static int synth_make(struct synth *s, size_t n)
{
	struct sop **v;
	size_t i;

	memset(s, 0, sizeof(*s));
	s->n = n;
	s->rev = 1;
	s->ops = calloc(n, sizeof(*s->ops));
	s->refs = calloc(n, sizeof(*s->refs));
	v = calloc(n, sizeof(*v));
	if (!s->ops || !s->refs || !v)
		return -1;
	synth_ops(s);
	for (i = 0; i < n; i++)
		v[i] = &s->ops[i];
	qsort(v, n, sizeof(*v), by_lp);
	for (i = 0; i < n; i++)
		synth_apply(s, v[i]);
	free(v);
	return 0;
}

static void synth_op(FILE *f, const struct sop *o, bool corrupt)
{
	static const char *const types[] = {"put", "get", "cas", "del"};
	static const char *const st[] = {"ok", "fail", "unknown"};
	char x[16], y[16];

	fprintf(f, "op p%d %" PRIu64 " %" PRIu64 " %s %s k%d", o->proc, o->inv,
	        o->comp, st[o->status], types[o->type], o->key);
	if (o->type == HIST_PUT)
		fprintf(f, " %s", vname(o->val, x));
	if (o->type == HIST_CAS)
		fprintf(f, " %s %s", vname(o->exp, x), vname(o->val, y));
	if (o->status == HIST_OK && o->type == HIST_GET)
		fprintf(f, " val=%s modrev=%" PRIu64,
		        corrupt ? "bogus" : vname(o->read, x),
		        corrupt ? 1 : o->modrev);
	if (o->status == HIST_OK &&
	    (o->type == HIST_CAS || o->type == HIST_DEL))
		fprintf(f, " %s=%d",
		        o->type == HIST_CAS ? "succeeded" : "deleted", o->flag);
	if (o->status == HIST_OK)
		fprintf(f, " rev=%" PRIu64, o->rev);
	fputc('\n', f);
}

static void synth_members(FILE *f, const struct synth *s)
{
	char x[16];
	size_t i;
	int m, k;

	for (m = 1; m <= 3; m++) {
		for (i = 0; i < s->nrefs; i++)
			fprintf(f, "ref m%d %" PRIu64 " k%d %s %s\n", m,
			        s->refs[i].rev, s->refs[i].key,
			        s->refs[i].val ? "put" : "del",
			        vname(s->refs[i].val, x));
		for (k = 0; k < SYNTH_KEYS; k++)
			if (s->cur[k])
				fprintf(f, "kv m%d k%d %s %" PRIu64 "\n", m, k,
				        vname(s->cur[k], x), s->mod[k]);
		fprintf(f, "final m%d %" PRIu64 "\n", m, s->rev);
	}
}

/* Watcher w1 sees k1 from revision 1, w2 every key from half way. */
static void synth_watches(FILE *f, const struct synth *s)
{
	uint64_t half = s->rev / 2;
	char x[16];
	size_t i;

	fprintf(f, "watch w1 start k1 1\nwatch w2 start - %" PRIu64 "\n", half);
	for (i = 0; i < s->nrefs; i++) {
		const struct sref *r = &s->refs[i];

		if (r->key == 1)
			fprintf(f,
			        "event w1 %" PRIu64 " k1 %s %s %" PRIu64 "\n",
			        r->rev * 10, r->val ? "put" : "del",
			        vname(r->val, x), r->rev);
		if (r->rev >= half)
			fprintf(f,
			        "event w2 %" PRIu64 " k%d %s %s %" PRIu64 "\n",
			        r->rev * 10, r->key, r->val ? "put" : "del",
			        vname(r->val, x), r->rev);
	}
	fprintf(f, "watch w1 end %" PRIu64 "\nwatch w2 end %" PRIu64 "\n",
	        s->rev, s->rev);
}

/* The history as text; the op at index bad (if < n) reads a bogus value. */
static char *synth_text(struct synth *s, size_t bad, size_t *len)
{
	char *text = NULL;
	FILE *f = open_memstream(&text, len);
	uint32_t line = 2;
	size_t i;

	fprintf(f, "# synthetic: %zu ops\n", s->n);
	for (i = 0; i < s->n; i++, line++) {
		s->ops[i].line = line;
		synth_op(f, &s->ops[i], i == bad);
	}
	synth_watches(f, s);
	synth_members(f, s);
	fclose(f);
	return text;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t synth_size(void)
{
	const char *env = getenv("LINCHK_SYNTH_OPS");

	return env && *env ? (size_t)strtoull(env, NULL, 10) : 50000;
}

/* The middle ok get that saw a value. */
static size_t synth_victim(const struct synth *s)
{
	size_t i;

	for (i = s->n / 2; i < s->n; i++)
		if (s->ops[i].type == HIST_GET && s->ops[i].status == HIST_OK &&
		    s->ops[i].read != 0)
			return i;
	return s->n;
}

/* A simulated linearizable store's history passes every checker, in
 * seconds; printed: the time each took. */
TEST(synth_passes)
{
	const char *out = getenv("LINCHK_SYNTH_OUT");
	struct watchchk_result w;
	struct durchk_result d;
	struct linchk_result r;
	struct synth s;
	struct history *h;
	double t0, t1, t2, t3;
	size_t len;
	char *text;

	rng_seed(seed);
	CHECK_EQ_INT(synth_make(&s, synth_size()), 0);
	text = synth_text(&s, s.n, &len);
	if (out != NULL && *out != '\0') {
		FILE *f = fopen(out, "w");

		CHECK(f != NULL);
		fwrite(text, 1, len, f);
		fclose(f);
	}
	t0 = now();
	h = parse(text);
	CHECK(h != NULL);
	t1 = now();
	CHECK_EQ_INT(linchk_run(h, NULL, &r), 0);
	t2 = now();
	if (r.verdict != LINCHK_OK)
		linchk_print(h, &r, stdout);
	CHECK_EQ_INT(r.verdict, LINCHK_OK);
	CHECK_EQ_INT(watchchk_run(h, stdout, &w), 0);
	CHECK_EQ_INT(durchk_run(h, stdout, &d), 0);
	t3 = now();
	CHECK_EQ_INT(w.report.count, 0);
	CHECK_EQ_INT(d.report.count, 0);
	CHECK_EQ_INT(w.watchers, 2);
	printf("# %zu ops (%zu checked, %zu keys, %zu changes): parse %.2f s, "
	       "linearizability %.2f s (%" PRIu64 " steps), watch and "
	       "durability %.2f s\n",
	       s.n, r.nops, r.nkeys, w.changes, t1 - t0, t2 - t1, r.steps,
	       t3 - t2);
	linchk_result_free(&r);
	history_free(h);
	free(text);
	free(s.ops);
	free(s.refs);
	return 0;
}

/* The same history with one read spoiled: found, and named. */
TEST(synth_spoiled)
{
	struct watchchk_result w;
	struct linchk_result r;
	struct synth s;
	struct history *h;
	size_t len, bad;
	double t0;
	char *text;

	rng_seed(seed);
	CHECK_EQ_INT(synth_make(&s, synth_size()), 0);
	bad = synth_victim(&s);
	CHECK(bad < s.n);
	text = synth_text(&s, bad, &len);
	h = parse(text);
	CHECK(h != NULL);
	t0 = now();
	CHECK_EQ_INT(linchk_run(h, NULL, &r), 0);
	printf("# spoiled read at line %" PRIu32 ": found in %.2f s\n",
	       s.ops[bad].line, now() - t0);
	CHECK_EQ_INT(r.verdict, LINCHK_VIOLATION);
	CHECK_EQ_INT(r.nbad, 1);
	CHECK_EQ_INT(r.bad[0].blocker->line, s.ops[bad].line);
	CHECK_EQ_INT(watchchk_run(h, NULL, &w), 0);
	CHECK(report_has(&w.report, WATCHCHK_READ));
	CHECK_EQ_INT(w.report.first_line, s.ops[bad].line);
	linchk_result_free(&r);
	history_free(h);
	free(text);
	free(s.ops);
	free(s.refs);
	return 0;
}

/* ---- watch and durability ------------------------------------------------ */

static const char base_body[] =
    "op p1 0 10 ok put a/1 x1 rev=2\n"
    "op p2 20 30 ok put a/2 x2 rev=3\n"
    "op p1 40 50 ok del a/1 deleted=1 rev=4\n"
    "op p2 60 70 ok put b/1 x3 rev=5\n"
    "op p1 80 90 ok cas a/2 x2 x4 succeeded=1 rev=6\n"
    "op p3 85 95 fail put a/2 x5\n"
    "op p3 100 110 ok get a/2 val=x4 modrev=6 rev=6\n"
    "op p2 100 - unknown put b/1 x6\n"
    "watch w1 start a/ 1\n"
    "event w1 15 a/1 put x1 2\n"
    "event w1 35 a/2 put x2 3\n"
    "event w1 55 a/1 del - 4\n"
    "event w1 95 a/2 put x4 6\n"
    "watch w1 end 6\n";

static const char base_members[] = "ref M 2 a/1 put x1\n"
                                   "ref M 3 a/2 put x2\n"
                                   "ref M 4 a/1 del -\n"
                                   "ref M 5 b/1 put x3\n"
                                   "ref M 6 a/2 put x4\n"
                                   "kv M a/2 x4 6\n"
                                   "kv M b/1 x3 5\n"
                                   "final M 6\n";

/* Runs the watch and durability checkers on text (which it frees). */
static int run_checks(char *text, struct watchchk_result *w,
                      struct durchk_result *d)
{
	struct history *h = parse(text);
	char *rep = NULL;
	size_t len;
	FILE *f;

	free(text);
	if (h == NULL)
		return -1;
	f = open_memstream(&rep, &len);
	if (watchchk_run(h, f, w) != 0 || durchk_run(h, f, d) != 0)
		abort();
	fclose(f);
	diag(rep); /* what was found, for the record */
	free(rep);
	history_free(h);
	return 0;
}

TEST(watch_ok)
{
	struct watchchk_result w;
	struct durchk_result d;

	CHECK_EQ_INT(run_checks(with_members(base_body, base_members), &w, &d),
	             0);
	CHECK_EQ_INT(w.report.count, 0);
	CHECK_EQ_INT(d.report.count, 0);
	CHECK_EQ_INT(w.watchers, 1);
	CHECK_EQ_INT(w.events, 4);
	CHECK_EQ_INT(w.writes, 5);
	CHECK_EQ_INT(d.members, 3);
	LINEARIZES(base_body);
	return 0;
}

/* Runs the checks on the base history with body edited. */
static int body_edit(const char *from, const char *to,
                     struct watchchk_result *w, struct durchk_result *d)
{
	char *b = edit(base_body, from, to);
	int rv = run_checks(with_members(b, base_members), w, d);

	free(b);
	return rv;
}

/* Checks that editing the body gives exactly one watch violation, of kind k,
 * at line l. */
#define WATCH_ONLY(from, to, k, l)                                             \
	do {                                                                   \
		struct watchchk_result w_;                                     \
		struct durchk_result d_;                                       \
		CHECK_EQ_INT(body_edit((from), (to), &w_, &d_), 0);            \
		CHECK_EQ_INT(w_.report.count, 1);                              \
		CHECK(report_has(&w_.report, (k)));                            \
		CHECK_EQ_INT(w_.report.first_line, (l));                       \
		CHECK_EQ_INT(d_.report.count, 0);                              \
	} while (0)

TEST(watch_gap)
{
	WATCH_ONLY("event w1 35 a/2 put x2 3\n", "", WATCHCHK_GAP, 13);
	/* missing at the end, up to END_REV */
	WATCH_ONLY("event w1 95 a/2 put x4 6\n", "", WATCHCHK_GAP, 13);
	return 0;
}

TEST(watch_duplicate)
{
	WATCH_ONLY("event w1 55 a/1 del - 4\n",
	           "event w1 55 a/1 del - 4\nevent w1 56 a/2 put x2 3\n",
	           WATCHCHK_DUPLICATE, 13);
	return 0;
}

TEST(watch_order)
{
	WATCH_ONLY("event w1 35 a/2 put x2 3\nevent w1 55 a/1 del - 4\n",
	           "event w1 55 a/1 del - 4\nevent w1 35 a/2 put x2 3\n",
	           WATCHCHK_ORDER, 12);
	return 0;
}

TEST(watch_wrong_value)
{
	WATCH_ONLY("event w1 35 a/2 put x2 3\n", "event w1 35 a/2 put x4 3\n",
	           WATCHCHK_WRONG_EVENT, 11);
	/* right value, wrong MODREV: an event the reference does not have,
	 * and the one it has is missed */
	{
		struct watchchk_result w;
		struct durchk_result d;

		CHECK_EQ_INT(body_edit("event w1 35 a/2 put x2 3\n",
		                       "event w1 35 a/2 put x2 7\n", &w, &d),
		             0);
		CHECK(report_has(&w.report, WATCHCHK_WRONG_EVENT));
		CHECK_EQ_INT(w.report.first_line, 11);
	}
	WATCH_ONLY("event w1 35 a/2 put x2 3\n",
	           "event w1 35 a/2 put x2 3\nevent w1 36 b/1 put x3 5\n",
	           WATCHCHK_OUTSIDE, 12);
	return 0;
}

/* An acknowledged write the members never applied. */
TEST(watch_missing_write)
{
	struct watchchk_result w;
	struct durchk_result d;
	char *m = edit(base_members, "ref M 5 b/1 put x3\n", "");
	char *m2 = edit(m, "kv M b/1 x3 5\n", "");

	CHECK_EQ_INT(run_checks(with_members(base_body, m2), &w, &d), 0);
	CHECK(report_has(&w.report, WATCHCHK_WRITE_MISSING));
	CHECK_EQ_INT(w.report.first_line, 4);
	CHECK(report_has(&d.report, DURCHK_LOST_WRITE));
	CHECK_EQ_INT(d.report.first_line, 4);
	free(m);
	free(m2);
	/* a failed write and an unknown one applied, a read of a value at a
	 * revision that does not have it */
	m = edit(base_members, "ref M 6 a/2 put x4\n",
	         "ref M 6 a/2 put x4\nref M 7 a/2 put x5\n");
	CHECK_EQ_INT(run_checks(with_members(base_body, m), &w, &d), 0);
	CHECK(report_has(&w.report, WATCHCHK_FAILED_APPLIED));
	CHECK_EQ_INT(w.report.first_line, 6);
	free(m);
	m = edit(base_members, "ref M 6 a/2 put x4\n",
	         "ref M 6 a/2 put x4\nref M 7 b/1 put x6\n");
	m2 = edit(m, "kv M b/1 x3 5\n", "kv M b/1 x6 7\n");
	CHECK_EQ_INT(run_checks(with_members(base_body, m2), &w, &d), 0);
	CHECK_EQ_INT(w.report.count, 0);
	free(m);
	free(m2);
	m = edit(base_members, "ref M 6 a/2 put x4\n",
	         "ref M 6 a/2 put x4\nref M 7 b/1 put zz\n");
	CHECK_EQ_INT(run_checks(with_members(base_body, m), &w, &d), 0);
	CHECK(report_has(&w.report, WATCHCHK_STRAY_VALUE));
	free(m);
	WATCH_ONLY("val=x4 modrev=6", "val=x4 modrev=5", WATCHCHK_READ, 7);
	return 0;
}

/* ---- durability ---------------------------------------------------------- */

/* Runs the checks on the base history with member m3's records edited:
 * pairs of strings (from, to), then NULL. */
static int member_edit(struct watchchk_result *w, struct durchk_result *d, ...)
{
	char *all = with_members(base_body, base_members);
	char *m3 = strstr(all, "ref m3"), *tail = strdup(m3), *text;
	const char *from, *to;
	va_list ap;

	*m3 = '\0';
	va_start(ap, d);
	while ((from = va_arg(ap, const char *)) != NULL) {
		char *next;

		to = va_arg(ap, const char *);
		next = edit(tail, from, to);
		free(tail);
		tail = next;
	}
	va_end(ap);
	text = malloc(strlen(all) + strlen(tail) + 1);
	sprintf(text, "%s%s", all, tail);
	free(all);
	free(tail);
	return run_checks(text, w, d);
}

/* One member's history differs from the others'. */
TEST(watch_members_differ)
{
	struct watchchk_result w;
	struct durchk_result d;

	CHECK_EQ_INT(member_edit(&w, &d, "ref m3 6 a/2 put x4\n",
	                         "ref m3 6 a/2 put x9\n", "kv m3 a/2 x4 6\n",
	                         "kv m3 a/2 x9 6\n", NULL),
	             0);
	CHECK(report_has(&w.report, WATCHCHK_MEMBERS));
	CHECK_EQ_INT(w.report.count, 1);
	CHECK(report_has(&d.report, DURCHK_KV_DIFFERS));
	/* one change fewer */
	CHECK_EQ_INT(member_edit(&w, &d, "ref m3 6 a/2 put x4\n", "", NULL), 0);
	CHECK(report_has(&w.report, WATCHCHK_MEMBERS));
	CHECK(report_has(&d.report, DURCHK_KV_REPLAY));
	return 0;
}

TEST(durable_kv_differs)
{
	struct watchchk_result w;
	struct durchk_result d;

	CHECK_EQ_INT(member_edit(&w, &d, "kv m3 b/1 x3 5\n", "", NULL), 0);
	CHECK(report_has(&d.report, DURCHK_KV_DIFFERS));
	CHECK(report_has(&d.report, DURCHK_KV_REPLAY));
	CHECK_EQ_INT(w.report.count, 0);
	CHECK_EQ_INT(
	    member_edit(&w, &d, "kv m3 b/1 x3 5\n", "kv m3 b/1 x3 4\n", NULL),
	    0);
	CHECK(report_has(&d.report, DURCHK_KV_DIFFERS));
	CHECK_EQ_INT(member_edit(&w, &d, "kv m3 b/1 x3 5\n",
	                         "kv m3 b/1 x3 5\nkv m3 b/1 x3 5\n", NULL),
	             0);
	CHECK(report_has(&d.report, DURCHK_KV_DIFFERS));
	return 0;
}

TEST(durable_final)
{
	struct watchchk_result w;
	struct durchk_result d;

	CHECK_EQ_INT(member_edit(&w, &d, "final m3 6\n", "final m3 7\n", NULL),
	             0);
	CHECK_EQ_INT(d.report.count, 1);
	CHECK(report_has(&d.report, DURCHK_FINAL_DIFFERS));
	CHECK_EQ_INT(member_edit(&w, &d, "final m3 6\n", "", NULL), 0);
	CHECK(report_has(&d.report, DURCHK_FINAL_MISSING));
	{
		char *b = edit(base_members, "final M 6\n", "final M 5\n");

		CHECK_EQ_INT(run_checks(with_members(base_body, b), &w, &d), 0);
		CHECK(report_has(&d.report, DURCHK_FINAL_BEHIND));
		free(b);
	}
	return 0;
}

/* An acknowledged write neither survives nor is overwritten, though every
 * member agrees and replays consistently. */
TEST(durable_lost_write)
{
	struct watchchk_result w;
	struct durchk_result d;
	char *b = edit(base_body, "watch w1 start",
	               "op p4 120 130 ok put b/1 x7 rev=7\nwatch w1 start");

	CHECK_EQ_INT(run_checks(with_members(b, base_members), &w, &d), 0);
	CHECK_EQ_INT(d.report.count, 1);
	CHECK(report_has(&d.report, DURCHK_LOST_WRITE));
	CHECK_EQ_INT(d.report.first_line, 9);
	CHECK(report_has(&w.report, WATCHCHK_WRITE_MISSING));
	free(b);
	/* the write is in the history but the keyspace lost it */
	b = edit(base_members, "kv M a/2 x4 6\n", "kv M a/2 x2 3\n");
	CHECK_EQ_INT(run_checks(with_members(base_body, b), &w, &d), 0);
	CHECK(report_has(&d.report, DURCHK_LOST_WRITE));
	CHECK(report_has(&d.report, DURCHK_KV_REPLAY));
	free(b);
	return 0;
}

/* ---- the parser ---------------------------------------------------------- */

/* The parse error of text, or "" if it parses. */
static const char *error_of(const char *text)
{
	struct history *h;

	if (history_parse(text, strlen(text), "h.txt", &h, parse_error,
	                  sizeof(parse_error)) == 0) {
		history_free(h);
		return "";
	}
	return parse_error;
}

#define ERROR_IS(text, msg)                                                    \
	do {                                                                   \
		const char *e_ = error_of(text);                               \
		if (strstr(e_, (msg)) == NULL)                                 \
			printf("# got \"%s\"\n", e_);                          \
		CHECK(strstr(e_, (msg)) != NULL);                              \
	} while (0)

TEST(parse_records)
{
	struct history *h =
	    parse("# a comment\n"
	          "\n"
	          "op p1 5 9 ok cas k - v1 rev=2 succeeded=1\r\n"
	          "op p2 6 - unknown del k\n"
	          "op p3 7 8 ok get k val=v1 modrev=2 rev=2\n"
	          "watch w start - 0\n"
	          "event w 9 k put v1 2\n"
	          "ref m 2 k put v1\n"
	          "kv m k v1 2\n"
	          "final m 2\n");
	const struct hist_op *op;

	CHECK(h != NULL);
	CHECK_EQ_INT(h->nops, 3);
	op = &h->ops[0];
	CHECK_EQ_INT(op->line, 3);
	CHECK_EQ_INT(op->type, HIST_CAS);
	CHECK_EQ_INT(op->expect, HIST_NONE);
	CHECK(strcmp(history_str(h, op->value), "v1") == 0);
	CHECK_EQ_INT(op->flag, 1);
	CHECK_EQ_INT(op->rev, 2);
	CHECK_EQ_INT(h->ops[1].complete, HIST_NEVER);
	CHECK_EQ_INT(h->ops[2].read, op->value);
	CHECK_EQ_INT(h->writer[op->value], 1);
	CHECK_EQ_INT(h->nwatches, 1);
	CHECK_EQ_INT(h->watches[0].prefix, HIST_NONE);
	CHECK_EQ_INT(h->watches[0].nevents, 1);
	CHECK_EQ_INT(h->nmembers, 1);
	CHECK_EQ_INT(h->members[0].nrefs, 1);
	CHECK_EQ_INT(h->members[0].final, 2);
	history_free(h);
	return 0;
}

TEST(parse_errors)
{
	ERROR_IS("op p1 1 2 ok put k a rev=2\nfoo bar\n",
	         "h.txt:2: unknown record kind \"foo\"");
	ERROR_IS("op p1 1 2 ok put k a\n", "h.txt:1: op: expected \"put KEY");
	ERROR_IS("op p1 1 2 fail put k a rev=2\n", "a fail op has no results");
	ERROR_IS("op p1 1 2 unknown put k a rev=2\n", "no results");
	ERROR_IS("op p1 x 2 ok put k a rev=2\n", "T_INVOKE \"x\" is not");
	ERROR_IS("op p1 3 2 ok put k a rev=2\n", "completes (2) before");
	ERROR_IS("op p1 1 2 ok put k a rev=99999999999999999999\n",
	         "not a decimal uint64");
	ERROR_IS("op p1 1 2 ok put k a rev=2 \n", "empty field 10");
	ERROR_IS("op p1  1 2 ok put k a rev=2\n", "empty field 3");
	ERROR_IS("op p1 1 2 ok put k a\trev=2\n", "invalid byte 0x09");
	ERROR_IS("op p1 1 2 ok get k val=- modrev=3 rev=3\n", "modrev=0");
	ERROR_IS("op p1 1 2 ok cas k a b succeeded=2 rev=3\n", "0 or 1");
	ERROR_IS("op p1 1 2 ok cas k a b succeeded=1 rev=3 rev=3\n",
	         "expected \"cas");
	ERROR_IS("op p1 1 2 ok del k deleted=1 deleted=1\n", "given twice");
	ERROR_IS("op p1 1 2 ok del k deleted=1 foo=1\n", "no result \"foo\"");
	ERROR_IS("op p1 1 2 ok put k - rev=2\n", "VALUE must not be \"-\"");
	ERROR_IS("op p1 1 2 ok put k a=b rev=2\n", "'=' in VALUE");
	ERROR_IS("op p1 1 2 sort of put k a\n", "STATUS must be");
	ERROR_IS("op p1 1 2 ok putt k a\n", "TYPE must be");
	ERROR_IS("op p1 1 2 ok put k a rev=2\nop p2 1 2 fail cas k a a\n",
	         "h.txt:2: value a is also written at line 1");
	ERROR_IS("event w 1 k put a 2\n", "watcher w was not started");
	ERROR_IS("watch w start k 1\nwatch w start k 1\n", "started twice");
	ERROR_IS("watch w start k 1\nwatch w end 3\nwatch w end 4\n",
	         "h.txt:3: watcher w ended twice");
	ERROR_IS("watch w begin k 1\n", "expected \"watch W start");
	ERROR_IS("ref m 2 k del v\n", "a del has \"-\"");
	ERROR_IS("ref m 2 k upd v\n", "expected put or del");
	ERROR_IS("kv m k - 3\n", "VALUE must not be");
	ERROR_IS("final m 3\nfinal m 4\n", "second final record");
	ERROR_IS("final m\n", "expected \"final M REV\"");
	ERROR_IS(" op p1 1 2 ok put k a rev=2\n", "empty field 1");
	return 0;
}

/* Random bytes and mutated histories: an error or a history, never a crash
 * (the sanitizer build checks the reads). */
TEST(parse_garbage)
{
	static const char alphabet[] = "op ok fail unknown put get cas del "
	                               "watch start end event ref kv final "
	                               "val=modrev=rev=succeeded=deleted="
	                               "0123456789 -\n\r\t#=k/a.:_\x01\xff";
	char *valid = with_members(base_body, base_members), buf[2048];
	size_t n = strlen(valid), i, j, ok = 0;
	struct history *h;
	char err[256];

	rng_seed(seed);
	for (i = 0; i < 20000; i++) {
		size_t len = rng_below(sizeof(buf));

		if (i % 2 == 0) {
			for (j = 0; j < len; j++)
				buf[j] = alphabet[rng_below(sizeof(alphabet))];
		} else {
			len = n < sizeof(buf) ? n : sizeof(buf);
			memcpy(buf, valid, len);
			for (j = rng_below(4) + 1; j > 0; j--)
				buf[rng_below(len)] = (char)rng();
			len = rng_below(len + 1);
		}
		if (history_parse(buf, len, "g", &h, err, sizeof(err)) == 0) {
			ok++;
			history_free(h);
		} else {
			CHECK(strncmp(err, "g:", 2) == 0);
		}
	}
	printf("# %zu of %zu parsed\n", ok, i);
	free(valid);
	return 0;
}

/* Every allocation of parsing and checking fails in turn: an error, nothing
 * leaked, and with no failure the same verdicts as ever. */
TEST(enomem)
{
#ifdef NO_FAULTS
	printf("# skipped: allocation failures are not injected under ASan\n");
	return 0;
#else
	char *text = with_members("op p1 0 10 ok put a/1 x1 rev=2\n"
	                          "op p2 5 - unknown put a/1 x9\n"
	                          "op p2 20 30 ok get a/1 val=x0 modrev=2 "
	                          "rev=2\n"
	                          "watch w1 start a/ 1\n"
	                          "event w1 15 a/1 put x1 2\n",
	                          "ref M 2 a/1 put x1\nkv M a/1 x1 2\n"
	                          "final M 2\n");
	long k, live;
	int done = 0;

	for (k = 0; !done && k < 100000; k++) {
		struct watchchk_result w;
		struct durchk_result d;
		struct linchk_result r;
		struct history *h;
		char err[256];
		int rv;

		live = live_blocks();
		fault_countdown = k;
		rv = history_parse(text, strlen(text), "e", &h, err,
		                   sizeof(err));
		if (rv == 0 && linchk_run(h, NULL, &r) == 0) {
			rv = r.verdict == LINCHK_VIOLATION ? 0 : -1;
			linchk_result_free(&r);
			if (rv == 0 && watchchk_run(h, NULL, &w) == 0 &&
			    durchk_run(h, NULL, &d) == 0) {
				CHECK(report_has(&w.report, WATCHCHK_READ));
				done = fault_countdown >= 0;
			}
		}
		fault_countdown = -1;
		if (rv == 0)
			history_free(h);
		CHECK(rv == 0 || strstr(err, "out of memory") != NULL ||
		      rv == -1);
		CHECK_EQ_INT(live_blocks(), live);
	}
	printf("# %ld allocations failed in turn\n", k);
	CHECK(done);
	free(text);
	return 0;
#endif
}

int main(void)
{
	static const struct test_case tests[] = {
	    T(lin_concurrent_reads),
	    T(lin_cas_chain),
	    T(lin_unknown_took_effect),
	    T(lin_unknown_did_not),
	    T(lin_read_of_unknown),
	    T(lin_fail_dropped),
	    T(lin_keys_apart),
	    T(lin_stale_read),
	    T(lin_value_never_written),
	    T(lin_double_cas),
	    T(lin_lost_write),
	    T(lin_read_overwritten_before),
	    T(lin_revisions),
	    T(lin_report),
	    T(lin_undecided),
	    T(lin_brute_force),
	    T(synth_passes),
	    T(synth_spoiled),
	    T(watch_ok),
	    T(watch_gap),
	    T(watch_duplicate),
	    T(watch_order),
	    T(watch_wrong_value),
	    T(watch_missing_write),
	    T(watch_members_differ),
	    T(durable_kv_differs),
	    T(durable_final),
	    T(durable_lost_write),
	    T(parse_records),
	    T(parse_errors),
	    T(parse_garbage),
	    T(enomem),
	};
	const char *env = getenv("LINCHK_SEED");

	if (env != NULL && *env != 0)
		seed = strtoull(env, NULL, 0);
	if (seed == 0)
		seed = 1; /* xorshift's one fixed point */
	printf("# seed %" PRIu64 " (set LINCHK_SEED to replay)\n", seed);
	return test_run(tests, sizeof(tests) / sizeof(tests[0]));
}
