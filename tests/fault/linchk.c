/*
 * linchk: the linearizability search, one key at a time (contract in
 * linchk.h).
 *
 * How it works. The key's ok ops are numbered by completion time (their
 * "return order"); their invoke and complete times become call and return
 * entries of one list sorted by time (a call before a return at the same
 * time: equal times count as concurrent). Unknown writes never return; their
 * calls sit in a second list sorted by invoke time. A node of the search is
 * the set of ops linearized so far plus the model state (value, and the
 * highest rev seen, which the set determines). From a node, the candidates
 * are the ops not yet linearized whose call comes before the first return
 * still in the list (Wing & Gong): that return's op must be linearized before
 * anything invoked after it. Linearizing an op lifts its entries out of the
 * lists (dancing links, undone in reverse on backtrack), so the first return
 * in the list is always the lowest-numbered ok op not linearized, k. The
 * search succeeds when no ok op is left; unknown ops left over never took
 * effect.
 *
 * Pruning, each of which only drops a node when a node that can reach
 * everything it can has been or will be searched (so a linearization is
 * found if one exists; a randomized test checks this against brute force):
 *   - memoization (Lowe, Porcupine): a node whose ok-op set and value equal
 *     a node seen before, and whose unknown-op set is a superset of that
 *     node's, is skipped: leftover unknown ops can always be left unused, so
 *     the earlier node could do anything this one can;
 *   - ok ops are tried before unknown ones; an unknown op whose effect would
 *     change nothing (a cas whose expected value is not there, a del of an
 *     absent key) is never tried: leaving it unused is the same;
 *   - right after an unknown op, no put and no unknown del is tried: they
 *     overwrite its effect before anything observed it, so the same put or
 *     del without the unknown op gets as far with one more op in hand. What
 *     is tried there is ok ops and the unknown cas ops expecting the value
 *     (a "chain");
 *   - otherwise an unknown op is tried only if its value lets some ok
 *     candidate happen that cannot happen now, or starts a chain (why that
 *     loses nothing: see want()). When the candidates need specific values,
 *     the ops tried are just their writers (values are unique) and the
 *     chains leading to them (targets());
 *   - values no op ever observes (no get returns them, no cas expects them)
 *     are one model value, "unobserved": nothing tells them apart. Unknown
 *     ops with the same effect (two unknown puts of unobserved values, two
 *     unknown dels) are interchangeable once invoked, so only the first
 *     unused one of each such class is tried: the unknown list holds one
 *     op per class, and an op used is replaced by its next "twin".
 * Memoization keys are compact: the ok-op set is "all ops below k" plus the
 * bits from k to the highest op linearized, which stays small because ops
 * beyond k must have been invoked before op k completed.
 *
 * Failure modes: the step or memory budget runs out (the key is undecided),
 * or an allocation fails (linchk_run returns -1).
 */
#include "linchk.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define ABSENT HIST_NONE
#define UNOBS UINT32_MAX       /* any value no get returns and no cas expects */
#define CHUNK_WORDS (1u << 17) /* 1 MiB of cache entries per chunk */
#define NO_TWIN UINT32_MAX
#define WANT_MAX 16
#define TARGET_MAX 64
#define CONTEXT 3 /* ok ops shown that completed before the blocker began */

/* An op as the model sees it; values are canonical (ABSENT, UNOBS or an
 * observed hist_str). */
struct mop {
	const struct hist_op *op;
	uint8_t type;
	uint8_t flag;
	uint32_t val;
	uint32_t exp;
	uint32_t read;
	uint32_t twin; /* unknown ops: the next of equal effect, or NO_TWIN */
	bool chain;    /* unknown ops: some unknown cas expects our value */
};

/* A call or return in the list of ok ops. */
struct entry {
	uint64_t time;
	uint32_t op; /* return order */
	bool ret;
};

/* The node to come back to, and the candidate that was taken from it. */
struct frame {
	uint32_t pos; /* where the pass found the candidate */
	uint32_t op;  /* the unknown op's index */
	uint8_t pass; /* enum pass */
	uint32_t state;
	hist_str real;
	uint32_t k, hi, uhi;
	uint64_t lb;
	uint64_t rtime; /* time of the first return, candidates' bound */
};

/* A node seen: k, hi, value, ok-op bits k..hi-1 (nfw words from word k/64),
 * then unknown-op bits 0..uhi-1 (nuw words). */
struct centry {
	struct centry *next;
	uint64_t hash;
	uint32_t k, hi, state, nfw, nuw;
	uint64_t w[];
};

struct chunk {
	struct chunk *next;
	size_t used;
	uint64_t w[CHUNK_WORDS];
};

struct lk {
	const struct history *h;
	uint64_t max_steps;
	size_t max_memory;
	bool revs;
	struct mop *fin; /* ok ops, return order */
	uint32_t nf;
	struct mop *unk; /* unknown writes, invoke order */
	uint32_t nu;
	struct entry *ent; /* positions 1..2nf; 0 is the head, 2nf+1 the tail */
	uint32_t *fnext, *fprev;
	uint32_t *call_of, *ret_of;
	uint32_t *unext, *uprev; /* unknown op u at position u+1 */
	bool *live;              /* in the unknown list (first of its class) */
	uint32_t *chain;         /* the unknown cas ops, by expected value */
	uint32_t nchain;
	uint64_t *byval;   /* value << 32 | unknown op, sorted */
	uint32_t del_live; /* the unknown del in the list, or NO_TWIN */
	uint32_t targets[TARGET_MAX];
	size_t ntarget;
	/* what the ok candidates of the node need (see want()) */
	uint32_t wants[WANT_MAX];
	size_t nwant;
	bool want_present, want_any;
	uint64_t *fbits, *ubits;
	/* the node */
	uint32_t k, hi, uhi, state;
	hist_str real; /* the value itself, for reports (state may be UNOBS) */
	uint64_t lb;
	struct frame *stack;
	size_t sp, stack_cap;
	/* the cache */
	struct centry **table;
	size_t tsize, nentries;
	struct chunk *chunks;
	size_t memory;
	uint64_t steps;
	/* the deepest point reached */
	bool tracked;
	uint32_t best_k;
	hist_str states[LINCHK_MAX_STATES];
	uint64_t state_revs[LINCHK_MAX_STATES];
	size_t nstates;
	const struct hist_op *tail[LINCHK_TAIL];
	size_t ntail;
};

/* How a search ends; above 1 so they pass through "went down or not". */
enum outcome { FOUND = 2, STUCK, OUT_OF_STEPS, OUT_OF_MEMORY, NOMEM };

/* ---- bits and lists ------------------------------------------------------ */

static bool bit(const uint64_t *b, uint32_t i)
{
	return (b[i / 64] >> (i % 64)) & 1;
}

static void set_bit(uint64_t *b, uint32_t i)
{
	b[i / 64] |= (uint64_t)1 << (i % 64);
}

static void clear_bit(uint64_t *b, uint32_t i)
{
	b[i / 64] &= ~((uint64_t)1 << (i % 64));
}

static void unlink_pos(uint32_t *next, uint32_t *prev, uint32_t p)
{
	next[prev[p]] = next[p];
	prev[next[p]] = prev[p];
}

static void relink_pos(uint32_t *next, uint32_t *prev, uint32_t p)
{
	next[prev[p]] = p;
	prev[next[p]] = p;
}

static void init_list(uint32_t *next, uint32_t *prev, uint32_t n)
{
	uint32_t i;

	for (i = 0; i <= n; i++) {
		next[i] = i + 1;
		prev[i + 1] = i;
	}
}

/* ---- the model ----------------------------------------------------------- */

/* Whether an ok op can happen when the key holds value v, and the value
 * after it. */
static bool value_ok(const struct mop *m, uint32_t v, uint32_t *ns)
{
	*ns = v;
	switch (m->type) {
	case HIST_PUT:
		*ns = m->val;
		return true;
	case HIST_GET:
		return v == m->read;
	case HIST_CAS:
		if (m->flag)
			*ns = m->val;
		return (v == m->exp) == (bool)m->flag;
	default:
		*ns = ABSENT;
		return (v != ABSENT) == (bool)m->flag;
	}
}

/* Whether an ok op's rev fits after bound lb: a write that creates a
 * revision needs a greater one, anything else at least lb. */
static bool rev_ok(const struct lk *s, const struct mop *m)
{
	bool creates = m->type == HIST_PUT || (m->type != HIST_GET && m->flag);

	if (!s->revs)
		return true;
	return creates ? m->op->rev > s->lb : m->op->rev >= s->lb;
}

/* An ok op from the node's value and bound: false if it cannot happen
 * there, else the value and bound after it. */
static bool step_ok(const struct lk *s, const struct mop *m, uint32_t *ns,
                    uint64_t *nlb)
{
	*nlb = s->revs ? m->op->rev : s->lb;
	return rev_ok(s, m) && value_ok(m, s->state, ns);
}

/* An unknown write taking effect: false if it would change nothing. */
static bool step_unknown(const struct lk *s, const struct mop *m, uint32_t *ns)
{
	switch (m->type) {
	case HIST_PUT:
		*ns = m->val;
		break;
	case HIST_CAS:
		if (s->state != m->exp)
			return false;
		*ns = m->val;
		break;
	default:
		*ns = ABSENT;
		break;
	}
	return *ns != s->state;
}

/* ---- the cache of nodes seen --------------------------------------------- */

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

static uint32_t fin_words(uint32_t k, uint32_t hi)
{
	return hi > k ? (hi - 1) / 64 - k / 64 + 1 : 0;
}

static uint32_t unk_words(uint32_t uhi)
{
	return uhi ? (uhi - 1) / 64 + 1 : 0;
}

static uint64_t node_hash(const struct lk *s, uint32_t state)
{
	uint64_t x = mix(((uint64_t)s->k << 32 | s->hi) ^ mix(state));
	uint32_t i, n = fin_words(s->k, s->hi);

	for (i = 0; i < n; i++)
		x = mix(x ^ s->fbits[s->k / 64 + i]);
	return x;
}

/* Whether e's unknown ops are a subset of the node's. */
static bool unk_subset(const struct lk *s, const struct centry *e)
{
	const uint64_t *u = e->w + e->nfw;
	uint32_t i;

	for (i = 0; i < e->nuw; i++)
		if (u[i] & ~s->ubits[i])
			return false;
	return true;
}

/* Whether the node's unknown ops are a subset of e's. */
static bool unk_superset(const struct lk *s, const struct centry *e)
{
	const uint64_t *u = e->w + e->nfw;
	uint32_t i, n = unk_words(s->uhi);

	for (i = 0; i < n; i++)
		if (s->ubits[i] & ~(i < e->nuw ? u[i] : 0))
			return false;
	return true;
}

/* Whether e has the node's ok ops and value state. */
static bool same_ok(const struct lk *s, const struct centry *e, uint64_t hash,
                    uint32_t state)
{
	uint32_t nfw = fin_words(s->k, s->hi);

	return e->hash == hash && e->k == s->k && e->hi == s->hi &&
	       e->state == state && e->nfw == nfw &&
	       memcmp(e->w, s->fbits + s->k / 64, nfw * 8) == 0;
}

/* Whether a node like the current one (with value state) was seen. Entries
 * the current node dominates are dropped on the way: it is about to be
 * remembered, and prunes whatever they would. */
static bool seen(struct lk *s, uint64_t hash, uint32_t state)
{
	struct centry **p = &s->table[hash & (s->tsize - 1)];

	while (*p) {
		struct centry *e = *p;

		s->steps++; /* the scan is work the budget must see */
		if (!same_ok(s, e, hash, state)) {
			p = &e->next;
			continue;
		}
		if (unk_subset(s, e))
			return true;
		if (unk_superset(s, e)) {
			*p = e->next;
			s->nentries--;
			continue;
		}
		p = &e->next;
	}
	return false;
}

static int grow_table(struct lk *s)
{
	size_t n = s->tsize ? s->tsize * 2 : 4096, i;
	struct centry **t = calloc(n, sizeof(*t));

	if (t == NULL)
		return NOMEM;
	for (i = 0; i < s->tsize; i++) {
		struct centry *e = s->table[i], *next;

		for (; e; e = next) {
			next = e->next;
			e->next = t[e->hash & (n - 1)];
			t[e->hash & (n - 1)] = e;
		}
	}
	s->memory += (n - s->tsize) * sizeof(*t);
	free(s->table);
	s->table = t;
	s->tsize = n;
	return 0;
}

/* Room for n words in the arena. */
static uint64_t *arena(struct lk *s, size_t n)
{
	struct chunk *c = s->chunks;

	if (c == NULL || c->used + n > CHUNK_WORDS) {
		if (n > CHUNK_WORDS)
			return NULL;
		c = malloc(sizeof(*c));
		if (c == NULL)
			return NULL;
		c->next = s->chunks;
		c->used = 0;
		s->chunks = c;
		s->memory += sizeof(*c);
	}
	c->used += n;
	return c->w + c->used - n;
}

static int remember(struct lk *s, uint64_t hash, uint32_t state)
{
	uint32_t nfw = fin_words(s->k, s->hi), nuw = unk_words(s->uhi);
	size_t head = (sizeof(struct centry) + 7) / 8;
	struct centry *e;

	if (s->memory > s->max_memory || head + nfw + nuw > CHUNK_WORDS)
		return OUT_OF_MEMORY;
	if (s->nentries >= s->tsize && grow_table(s) != 0)
		return NOMEM;
	e = (struct centry *)arena(s, head + nfw + nuw);
	if (e == NULL)
		return NOMEM;
	e->hash = hash;
	e->k = s->k;
	e->hi = s->hi;
	e->state = state;
	e->nfw = nfw;
	e->nuw = nuw;
	memcpy(e->w, s->fbits + s->k / 64, nfw * 8);
	memcpy(e->w + nfw, s->ubits, nuw * 8);
	e->next = s->table[hash & (s->tsize - 1)];
	s->table[hash & (s->tsize - 1)] = e;
	s->nentries++;
	return 0;
}

/* ---- the search ---------------------------------------------------------- */

/* Where a candidate comes from: the list of ok ops, the list of unknown ops
 * (one per class), the unknown cas ops expecting the current value (the
 * only unknown ops worth trying right after an unknown op), or the writers
 * of wanted values (see targets()). */
enum pass { P_OK, P_UNKNOWN, P_CHAIN, P_TARGET };

/* The op a frame linearized: an ok op's return order or an unknown op's
 * index. */
static uint32_t frame_index(const struct lk *s, const struct frame *f)
{
	return f->pass == P_OK ? s->ent[f->pos].op : f->op;
}

static const struct hist_op *frame_op(const struct lk *s, const struct frame *f)
{
	uint32_t i = frame_index(s, f);

	return f->pass == P_OK ? s->fin[i].op : s->unk[i].op;
}

static bool after_unknown(const struct lk *s)
{
	return s->sp > 0 && s->stack[s->sp - 1].pass != P_OK;
}

/* Notes how far the search got: the highest k, the values seen there and
 * the end of the first linearization that reached it. */
static void track(struct lk *s)
{
	size_t i, n;

	if (!s->tracked || s->k > s->best_k) {
		s->tracked = true;
		s->best_k = s->k;
		s->nstates = 0;
		n = s->sp < LINCHK_TAIL ? s->sp : LINCHK_TAIL;
		for (i = 0; i < n; i++)
			s->tail[i] = frame_op(s, &s->stack[s->sp - n + i]);
		s->ntail = n;
	}
	if (s->k != s->best_k || s->nstates == LINCHK_MAX_STATES)
		return;
	for (i = 0; i < s->nstates; i++)
		if (s->states[i] == s->real && s->state_revs[i] == s->lb)
			return;
	s->state_revs[s->nstates] = s->lb;
	s->states[s->nstates++] = s->real;
}

static void mark(struct lk *s, bool unknown, uint32_t i)
{
	if (unknown) {
		set_bit(s->ubits, i);
		if (i + 1 > s->uhi)
			s->uhi = i + 1;
		return;
	}
	set_bit(s->fbits, i);
	if (i + 1 > s->hi)
		s->hi = i + 1;
	while (s->k < s->nf && bit(s->fbits, s->k))
		s->k++;
}

static void unmark(struct lk *s, const struct frame *f, uint32_t i)
{
	clear_bit(f->pass != P_OK ? s->ubits : s->fbits, i);
	s->k = f->k;
	s->hi = f->hi;
	s->uhi = f->uhi;
}

/* Puts position q where p is in a list, p keeping its links for undo. */
static void swap_pos(uint32_t *next, uint32_t *prev, uint32_t p, uint32_t q)
{
	next[q] = next[p];
	prev[q] = prev[p];
	next[prev[p]] = q;
	prev[next[p]] = q;
}

/* Takes op i out of the candidates. An unknown op leaves the unknown list in
 * favour of its twin, if any: the list holds the first unused op of each
 * class (see "Pruning"). */
static void lift(struct lk *s, bool unknown, uint32_t i)
{
	uint32_t twin;

	if (!unknown) {
		unlink_pos(s->fnext, s->fprev, s->call_of[i]);
		unlink_pos(s->fnext, s->fprev, s->ret_of[i]);
		return;
	}
	twin = s->unk[i].twin;
	s->live[i] = false;
	if (s->unk[i].type == HIST_DEL)
		s->del_live = twin;
	if (twin == NO_TWIN) {
		unlink_pos(s->unext, s->uprev, i + 1);
		return;
	}
	swap_pos(s->unext, s->uprev, i + 1, twin + 1);
	s->live[twin] = true;
}

static void unlift(struct lk *s, bool unknown, uint32_t i)
{
	uint32_t twin, q = i + 1;

	if (!unknown) {
		relink_pos(s->fnext, s->fprev, s->ret_of[i]);
		relink_pos(s->fnext, s->fprev, s->call_of[i]);
		return;
	}
	twin = s->unk[i].twin;
	if (twin != NO_TWIN) {
		s->live[twin] = false;
		q = twin + 1;
	}
	s->unext[s->uprev[q]] = i + 1;
	s->uprev[s->unext[q]] = i + 1;
	s->live[i] = true;
	if (s->unk[i].type == HIST_DEL)
		s->del_live = i;
}

/* The value after op i did what it did (the model's step said it could). */
static hist_str real_after(const struct lk *s, const struct hist_op *op)
{
	switch (op->type) {
	case HIST_PUT:
		return op->value;
	case HIST_CAS:
		return op->status != HIST_OK || op->flag ? op->value : s->real;
	case HIST_DEL:
		return HIST_NONE;
	default:
		return s->real;
	}
}

static int push(struct lk *s, const struct frame *f)
{
	if (s->sp == s->stack_cap) {
		size_t n = s->stack_cap ? s->stack_cap * 2 : 1024;
		struct frame *q = realloc(s->stack, n * sizeof(*q));

		if (q == NULL)
			return NOMEM;
		s->memory += (n - s->stack_cap) * sizeof(*q);
		s->stack = q;
		s->stack_cap = n;
	}
	s->stack[s->sp++] = *f;
	return 0;
}

/* Linearizes op i, found by pass at position pos, giving value ns and bound
 * nlb, unless a node like the result was seen. Returns 1 if it went down, 0
 * if not, or an enum outcome. */
static int descend(struct lk *s, int pass, uint32_t pos, uint32_t i,
                   uint32_t ns, uint64_t nlb, uint64_t rtime)
{
	bool unknown = pass != P_OK;
	struct frame f;
	uint64_t hash;
	int rv;

	f.pos = pos;
	f.op = i;
	f.pass = (uint8_t)pass;
	f.state = s->state;
	f.real = s->real;
	f.k = s->k;
	f.hi = s->hi;
	f.uhi = s->uhi;
	f.lb = s->lb;
	f.rtime = rtime;
	mark(s, unknown, i);
	hash = node_hash(s, ns);
	if (seen(s, hash, ns)) {
		unmark(s, &f, i);
		return 0;
	}
	rv = remember(s, hash, ns);
	if (rv == 0)
		rv = push(s, &f);
	if (rv != 0) {
		unmark(s, &f, i);
		return rv;
	}
	s->state = ns;
	s->real = real_after(s, unknown ? s->unk[i].op : s->fin[i].op);
	s->lb = nlb;
	lift(s, unknown, i);
	track(s);
	return 1;
}

/* Goes back to the node before the last op, returning its frame, whose pass
 * and pos say where the walk resumes. */
static struct frame backtrack(struct lk *s)
{
	struct frame f = s->stack[--s->sp];
	uint32_t i = frame_index(s, &f);

	unlift(s, f.pass != P_OK, i);
	unmark(s, &f, i);
	s->state = f.state;
	s->real = f.real;
	s->lb = f.lb;
	return f;
}

static int try_ok(struct lk *s, uint32_t pos)
{
	const struct mop *m = &s->fin[s->ent[pos].op];
	uint64_t nlb;
	uint32_t ns;

	if (m->type == HIST_PUT && after_unknown(s))
		return 0;
	if (!step_ok(s, m, &ns, &nlb))
		return 0;
	return descend(s, P_OK, pos, s->ent[pos].op, ns, nlb, 0);
}

/* Which values would let an ok candidate (an op called before the first
 * return) that cannot happen now happen. An unknown op that gives none of
 * them, and starts no chain, is not tried: a linearization that uses it
 * there can use it later instead, or not at all. (After an unknown op u
 * come only ok ops other than puts, or a chain. An ok op f that could
 * happen before u as well either leaves the value alone, and then "f, u"
 * does what "u, f" does, or is a cas -> 1, which cannot happen both before
 * and after u, or a del -> 1, which erases u's effect: "f" alone does
 * the same. Repeat until u meets an op that needs it.) */
static void want(struct lk *s)
{
	uint32_t p, ns;

	s->nwant = 0;
	s->want_present = false;
	s->want_any = false;
	for (p = s->fnext[0]; !s->ent[p].ret; p = s->fnext[p]) {
		const struct mop *m = &s->fin[s->ent[p].op];

		if (!rev_ok(s, m) || value_ok(m, s->state, &ns))
			continue; /* no unknown op changes that */
		if (m->type == HIST_DEL && m->flag)
			s->want_present = true;
		else if ((m->type == HIST_CAS && !m->flag) ||
		         s->nwant == WANT_MAX)
			s->want_any = true; /* not exp: nearly anything */
		else
			s->wants[s->nwant++] = m->type == HIST_GET   ? m->read
			                       : m->type == HIST_CAS ? m->exp
			                                             : ABSENT;
	}
}

static bool wanted(const struct lk *s, const struct mop *m, uint32_t ns)
{
	size_t i;

	if (s->want_any || m->chain || (s->want_present && ns != ABSENT))
		return true;
	for (i = 0; i < s->nwant; i++)
		if (s->wants[i] == ns)
			return true;
	return false;
}

/* The unknown op that writes observed value v (values are unique), the
 * live unknown del for ABSENT, or NO_TWIN. */
static uint32_t writer_of(const struct lk *s, uint32_t v)
{
	uint32_t lo = 0, hi = s->nu;

	if (v == ABSENT)
		return s->del_live;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if ((uint32_t)(s->byval[mid] >> 32) < v)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < s->nu && (uint32_t)(s->byval[lo] >> 32) == v)
		return (uint32_t)s->byval[lo];
	return NO_TWIN;
}

static bool add_target(struct lk *s, uint32_t u)
{
	size_t i;

	for (i = 0; i < s->ntarget; i++)
		if (s->targets[i] == u)
			return true;
	if (s->ntarget == TARGET_MAX)
		return false;
	s->targets[s->ntarget++] = u;
	return true;
}

/* When only some values are wanted (see want()), the unknown ops worth
 * trying are their writers, and, when a writer is a cas expecting another
 * value, that value's writer, and so on: values being unique, each wanted
 * value has one such chain. False if there are too many to list. */
static bool targets(struct lk *s)
{
	size_t i, d;

	s->ntarget = 0;
	for (i = 0; i < s->nwant; i++) {
		uint32_t w = s->wants[i], u;

		for (d = 0;; d++) {
			u = writer_of(s, w);
			if (u == NO_TWIN || !s->live[u])
				break;
			if (d == TARGET_MAX || !add_target(s, u))
				return false;
			if (s->unk[u].type != HIST_CAS ||
			    s->unk[u].exp == s->state)
				break;
			w = s->unk[u].exp;
		}
	}
	return true;
}

static uint32_t unknown_index(const struct lk *s, int pass, uint32_t pos)
{
	if (pass == P_UNKNOWN)
		return pos - 1;
	return pass == P_CHAIN ? s->chain[pos] : s->targets[pos];
}

static int try_unknown(struct lk *s, int pass, uint32_t pos, uint64_t rtime)
{
	uint32_t i = unknown_index(s, pass, pos);
	const struct mop *m = &s->unk[i];
	uint32_t ns;

	if (m->op->invoke > rtime || !s->live[i] || !step_unknown(s, m, &ns))
		return 0;
	if (pass == P_UNKNOWN && !wanted(s, m, ns))
		return 0;
	return descend(s, pass, pos, i, ns, s->lb, rtime);
}

/* The first unknown cas expecting value v, in s->chain. */
static uint32_t chain_start(const struct lk *s, uint32_t v)
{
	uint32_t lo = 0, hi = s->nchain;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (s->unk[s->chain[mid]].exp < v)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Which unknown ops to try at this node, once its ok candidates are done:
 * right after an unknown op the chain of the value; else, when specific
 * values are wanted, their writers; else every unknown op that gives a
 * wanted value. Returns the pass; *cur is its first position. Called again
 * when the walk comes back to the node: the answer is the same. */
static int unknown_pass(struct lk *s, uint32_t *cur)
{
	if (after_unknown(s)) {
		*cur = chain_start(s, s->state);
		return P_CHAIN;
	}
	want(s);
	if (!s->want_any && !s->want_present && targets(s)) {
		*cur = 0;
		return P_TARGET;
	}
	*cur = s->unext[0];
	return P_UNKNOWN;
}

static bool pass_done(const struct lk *s, int pass, uint32_t cur)
{
	if (pass == P_UNKNOWN)
		return cur == s->nu + 1;
	if (pass == P_TARGET)
		return cur == s->ntarget;
	return cur == s->nchain || s->unk[s->chain[cur]].exp != s->state;
}

static uint32_t pass_next(const struct lk *s, int pass, uint32_t cur)
{
	if (pass == P_OK)
		return s->fnext[cur];
	return pass == P_UNKNOWN ? s->unext[cur] : cur + 1;
}

/* The walk: pass P_OK tries the ok ops called before the first return in
 * the list, then one of the unknown passes (unknown_pass()) the unknown ops
 * called by then; past both, back up. The unknown list is not in invoke
 * order once twins took places, hence try_unknown checks each op's invoke
 * time. */
static int search(struct lk *s)
{
	uint32_t cur = s->fnext[0], ftail = 2 * s->nf + 1, ignored;
	uint64_t rtime = 0;
	int pass = P_OK, rv;

	for (;;) {
		if (++s->steps > s->max_steps)
			return OUT_OF_STEPS;
		if (pass == P_OK && cur == ftail)
			return FOUND;
		if (pass == P_OK && s->ent[cur].ret) {
			rtime = s->ent[cur].time;
			pass = unknown_pass(s, &cur);
			continue;
		}
		if (pass != P_OK && pass_done(s, pass, cur)) {
			struct frame f;

			if (s->sp == 0)
				return STUCK;
			f = backtrack(s);
			rtime = f.rtime;
			if (f.pass != P_OK)
				unknown_pass(s, &ignored);
			pass = f.pass;
			cur = pass_next(s, pass, f.pos);
			continue;
		}
		rv = pass == P_OK ? try_ok(s, cur)
		                  : try_unknown(s, pass, cur, rtime);
		if (rv > 1)
			return rv;
		if (rv == 1) {
			cur = s->fnext[0];
			pass = P_OK;
		} else {
			cur = pass_next(s, pass, cur);
		}
	}
}

/* ---- setting up one key -------------------------------------------------- */

static int by_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int by_return(const void *a, const void *b)
{
	const struct hist_op *x = ((const struct mop *)a)->op;
	const struct hist_op *y = ((const struct mop *)b)->op;

	if (x->complete != y->complete)
		return x->complete < y->complete ? -1 : 1;
	if (x->invoke != y->invoke)
		return x->invoke < y->invoke ? -1 : 1;
	return x->line < y->line ? -1 : x->line > y->line;
}

static int by_invoke(const void *a, const void *b)
{
	const struct hist_op *x = ((const struct mop *)a)->op;
	const struct hist_op *y = ((const struct mop *)b)->op;

	if (x->invoke != y->invoke)
		return x->invoke < y->invoke ? -1 : 1;
	return x->line < y->line ? -1 : x->line > y->line;
}

static int by_time(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;

	if (x->time != y->time)
		return x->time < y->time ? -1 : 1;
	if (x->ret != y->ret)
		return x->ret ? 1 : -1;
	return x->op < y->op ? -1 : x->op > y->op;
}

/* Unknown ops ordered by effect, then invoke order: equal effects are
 * adjacent and form a class. */
static int by_effect(const void *a, const void *b)
{
	const struct mop *x = *(const struct mop *const *)a;
	const struct mop *y = *(const struct mop *const *)b;

	if (x->type != y->type)
		return x->type < y->type ? -1 : 1;
	if (x->val != y->val)
		return x->val < y->val ? -1 : 1;
	if (x->exp != y->exp)
		return x->exp < y->exp ? -1 : 1;
	return x < y ? -1 : x > y;
}

static bool same_effect(const struct mop *x, const struct mop *y)
{
	return x->type == y->type && x->val == y->val && x->exp == y->exp;
}

static uint32_t canon(const uint32_t *stamp, uint32_t mark, hist_str v)
{
	if (v == HIST_NONE)
		return ABSENT;
	return stamp[v] == mark ? v : UNOBS;
}

static void fill(struct mop *m, const struct hist_op *op, const uint32_t *stamp,
                 uint32_t mark)
{
	memset(m, 0, sizeof(*m));
	m->op = op;
	m->type = op->type;
	m->flag = op->flag;
	m->val = canon(stamp, mark, op->value);
	m->exp = op->expect; /* observed by definition */
	m->read = op->read;  /* likewise */
}

static void free_lk(struct lk *s)
{
	struct chunk *c, *next;

	for (c = s->chunks; c; c = next) {
		next = c->next;
		free(c);
	}
	free(s->table);
	free(s->stack);
	free(s->fin);
	free(s->unk);
	free(s->ent);
	free(s->fnext);
	free(s->fprev);
	free(s->call_of);
	free(s->ret_of);
	free(s->unext);
	free(s->uprev);
	free(s->live);
	free(s->chain);
	free(s->byval);
	free(s->fbits);
	free(s->ubits);
}

static int alloc_lk(struct lk *s)
{
	size_t nf = s->nf, nu = s->nu, ne = 2 * nf + 2;

	s->fin = calloc(nf + 1, sizeof(*s->fin));
	s->unk = calloc(nu + 1, sizeof(*s->unk));
	s->ent = calloc(ne, sizeof(*s->ent));
	s->fnext = calloc(ne, sizeof(*s->fnext));
	s->fprev = calloc(ne, sizeof(*s->fprev));
	s->call_of = calloc(nf + 1, sizeof(*s->call_of));
	s->ret_of = calloc(nf + 1, sizeof(*s->ret_of));
	s->unext = calloc(nu + 2, sizeof(*s->unext));
	s->uprev = calloc(nu + 2, sizeof(*s->uprev));
	s->live = calloc(nu + 1, sizeof(*s->live));
	s->chain = calloc(nu + 1, sizeof(*s->chain));
	s->byval = calloc(nu + 1, sizeof(*s->byval));
	s->fbits = calloc(nf / 64 + 1, sizeof(*s->fbits));
	s->ubits = calloc(nu / 64 + 1, sizeof(*s->ubits));
	if (!s->fin || !s->unk || !s->ent || !s->fnext || !s->fprev ||
	    !s->call_of || !s->ret_of || !s->unext || !s->uprev || !s->live ||
	    !s->chain || !s->byval || !s->fbits || !s->ubits)
		return NOMEM;
	s->memory = ne * (sizeof(*s->ent) + 2 * sizeof(uint32_t)) +
	            nf * sizeof(*s->fin) + nu * sizeof(*s->unk);
	return 0;
}

/* Values a get returns or a cas expects are "observed"; stamp them. */
static void observe(const struct history *h, const uint32_t *idx, size_t n,
                    uint32_t *stamp, uint32_t mark)
{
	size_t i;

	for (i = 0; i < n; i++) {
		const struct hist_op *op = &h->ops[idx[i]];

		if (op->type == HIST_GET)
			stamp[op->read] = mark;
		if (op->type == HIST_CAS)
			stamp[op->expect] = mark;
	}
}

static void fill_ops(struct lk *s, const uint32_t *idx, size_t n,
                     const uint32_t *stamp, uint32_t mark)
{
	uint32_t nf = 0, nu = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		const struct hist_op *op = &s->h->ops[idx[i]];

		if (op->status == HIST_OK)
			fill(&s->fin[nf++], op, stamp, mark);
		else
			fill(&s->unk[nu++], op, stamp, mark);
	}
	qsort(s->fin, nf, sizeof(*s->fin), by_return);
	qsort(s->unk, nu, sizeof(*s->unk), by_invoke);
}

static void build_lists(struct lk *s)
{
	uint32_t r, i, n = 2 * s->nf;

	for (r = 0; r < s->nf; r++) {
		s->ent[1 + 2 * r] = (struct entry){s->fin[r].op->invoke, r, 0};
		s->ent[2 + 2 * r] =
		    (struct entry){s->fin[r].op->complete, r, 1};
	}
	qsort(s->ent + 1, n, sizeof(*s->ent), by_time);
	for (i = 1; i <= n; i++) {
		if (s->ent[i].ret)
			s->ret_of[s->ent[i].op] = i;
		else
			s->call_of[s->ent[i].op] = i;
	}
	init_list(s->fnext, s->fprev, n);
}

/* Links each unknown op to the next one of equal effect (its twin) and puts
 * the first of each class in the unknown list, in invoke order. */
static int build_classes(struct lk *s)
{
	struct mop **v = calloc(s->nu + 1, sizeof(*v));
	uint32_t i, last = 0;
	bool *first = calloc(s->nu + 1, sizeof(*first));

	if (v == NULL || first == NULL) {
		free(v);
		free(first);
		return NOMEM;
	}
	for (i = 0; i < s->nu; i++)
		v[i] = &s->unk[i];
	qsort(v, s->nu, sizeof(*v), by_effect);
	for (i = 0; i < s->nu; i++) {
		bool same = i + 1 < s->nu && same_effect(v[i], v[i + 1]);

		v[i]->twin = same ? (uint32_t)(v[i + 1] - s->unk) : NO_TWIN;
		first[v[i] - s->unk] = i == 0 || !same_effect(v[i - 1], v[i]);
	}
	for (i = 0; i < s->nu; i++) {
		s->live[i] = first[i];
		if (!first[i])
			continue;
		s->unext[last] = i + 1;
		s->uprev[i + 1] = last;
		last = i + 1;
	}
	s->unext[last] = s->nu + 1;
	s->uprev[s->nu + 1] = last;
	free(first);
	free(v);
	return 0;
}

/* Lists the unknown cas ops by expected value, flags the unknown ops whose
 * value some unknown cas expects (they can start a chain), and indexes the
 * unknown ops by value. */
static int build_chain(struct lk *s)
{
	uint64_t *v = calloc(s->nu + 1, sizeof(*v));
	uint32_t i, j;

	if (v == NULL)
		return NOMEM;
	for (i = 0; i < s->nu; i++)
		if (s->unk[i].type == HIST_CAS)
			v[s->nchain++] = (uint64_t)s->unk[i].exp << 32 | i;
	qsort(v, s->nchain, sizeof(*v), by_u64);
	for (i = 0; i < s->nchain; i++)
		s->chain[i] = (uint32_t)v[i];
	free(v);
	for (i = 0; i < s->nu; i++) {
		j = chain_start(s, s->unk[i].val);
		for (;
		     j < s->nchain && s->unk[s->chain[j]].exp == s->unk[i].val;
		     j++)
			if (s->chain[j] != i && s->unk[i].val != UNOBS)
				s->unk[i].chain = true;
	}
	for (i = 0; i < s->nu; i++)
		s->byval[i] = (uint64_t)s->unk[i].val << 32 | i;
	qsort(s->byval, s->nu, sizeof(*s->byval), by_u64);
	s->del_live = NO_TWIN;
	for (i = s->nu; i-- > 0;)
		if (s->unk[i].type == HIST_DEL)
			s->del_live = i; /* the first, the head of its class */
	return 0;
}

/* Sets s up for the n ops idx[] of one key (ok ops and unknown writes). */
static int setup(struct lk *s, const uint32_t *idx, size_t n, uint32_t *stamp,
                 uint32_t mark)
{
	size_t i;
	int rv;

	for (i = 0; i < n; i++) {
		if (s->h->ops[idx[i]].status == HIST_OK)
			s->nf++;
		else
			s->nu++;
	}
	rv = alloc_lk(s);
	if (rv != 0)
		return rv;
	observe(s->h, idx, n, stamp, mark);
	fill_ops(s, idx, n, stamp, mark);
	build_lists(s);
	rv = build_classes(s);
	if (rv == 0)
		rv = build_chain(s);
	if (rv != 0)
		return rv;
	s->state = ABSENT;
	s->real = HIST_NONE;
	rv = remember(s, node_hash(s, ABSENT), ABSENT);
	track(s);
	return rv;
}

/* ---- the report ---------------------------------------------------------- */

static bool has(const struct hist_op **v, size_t n, const struct hist_op *op)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (v[i] == op)
			return true;
	return false;
}

static void add(const struct hist_op **v, size_t *n, const struct hist_op *op)
{
	if (*n < LINCHK_WINDOW && !has(v, *n, op))
		v[(*n)++] = op;
}

static int by_op_invoke(const void *a, const void *b)
{
	const struct hist_op *x = *(const struct hist_op *const *)a;
	const struct hist_op *y = *(const struct hist_op *const *)b;

	if (x->invoke != y->invoke)
		return x->invoke < y->invoke ? -1 : 1;
	return x->line < y->line ? -1 : x->line > y->line;
}

/* The ops around the blocker b (return order best_k): b, the ok ops that
 * completed just before it began, the ok ops concurrent with it, then the
 * unknown ops invoked since the earliest of those. */
static int window(const struct lk *s, struct linchk_key *out)
{
	const struct hist_op *b = s->fin[s->best_k].op, **v;
	uint64_t since = b->invoke;
	uint32_t r, first = s->best_k, u;
	size_t n = 0;

	v = calloc(LINCHK_WINDOW, sizeof(*v));
	if (v == NULL)
		return NOMEM;
	add(v, &n, b);
	while (first > 0 && s->fin[first - 1].op->complete >= b->invoke)
		first--;
	for (r = first > CONTEXT ? first - CONTEXT : 0; r < first; r++)
		add(v, &n, s->fin[r].op);
	for (r = first; r < s->nf && n < LINCHK_WINDOW; r++)
		if (s->fin[r].op->invoke <= b->complete)
			add(v, &n, s->fin[r].op);
	for (r = 0; r < n; r++)
		if (v[r]->invoke < since)
			since = v[r]->invoke;
	for (u = s->nu; u-- > 0;)
		if (s->unk[u].op->invoke >= since &&
		    s->unk[u].op->invoke <= b->complete)
			add(v, &n, s->unk[u].op);
	qsort(v, n, sizeof(*v), by_op_invoke);
	out->window = v;
	out->nwindow = n;
	return 0;
}

static int report(const struct lk *s, int outcome, struct linchk_key *out)
{
	out->steps = s->steps;
	out->nops = s->nf + s->nu;
	if (outcome == OUT_OF_STEPS || outcome == OUT_OF_MEMORY) {
		out->verdict = LINCHK_UNDECIDED;
		out->why =
		    outcome == OUT_OF_STEPS ? "step budget" : "memory budget";
		return 0;
	}
	out->verdict = LINCHK_VIOLATION;
	out->prefix = s->best_k;
	out->blocker = s->fin[s->best_k].op;
	memcpy(out->states, s->states, sizeof(s->states));
	memcpy(out->state_revs, s->state_revs, sizeof(s->state_revs));
	out->revs = s->revs;
	out->nstates = s->nstates;
	memcpy(out->tail, s->tail, sizeof(s->tail));
	out->ntail = s->ntail;
	return window(s, out);
}

/* ---- all keys ------------------------------------------------------------ */

static int check_key(const struct history *h, const struct linchk_opts *o,
                     const uint32_t *idx, size_t n, uint32_t *stamp,
                     uint32_t mark, struct linchk_key *out)
{
	struct lk s;
	int rv;

	memset(&s, 0, sizeof(s));
	s.h = h;
	s.max_steps = o && o->max_steps ? o->max_steps : LINCHK_DEFAULT_STEPS;
	s.max_memory =
	    o && o->max_memory ? o->max_memory : LINCHK_DEFAULT_MEMORY;
	s.revs = !(o && o->ignore_revs);
	rv = setup(&s, idx, n, stamp, mark);
	if (rv == 0)
		rv = search(&s);
	memset(out, 0, sizeof(*out));
	out->key = h->ops[idx[0]].key;
	out->verdict = LINCHK_OK;
	out->steps = s.steps;
	out->nops = n;
	if (rv != FOUND && rv != NOMEM)
		rv = report(&s, rv, out) == 0 ? 0 : NOMEM;
	free_lk(&s);
	return rv == NOMEM ? -1 : 0;
}

/* Whether the op takes part: fail ops did not happen, unknown gets say
 * nothing. */
static bool checked(const struct hist_op *op)
{
	return op->status == HIST_OK ||
	       (op->status == HIST_UNKNOWN && op->type != HIST_GET);
}

/* The indices of the checked ops grouped by key, each group in file order:
 * sorting key << 32 | index does both. */
static uint32_t *group(const struct history *h, size_t *n)
{
	uint64_t *v = calloc(h->nops + 1, sizeof(*v));
	uint32_t *idx = calloc(h->nops + 1, sizeof(*idx));
	size_t i;

	if (v == NULL || idx == NULL) {
		free(v);
		free(idx);
		return NULL;
	}
	*n = 0;
	for (i = 0; i < h->nops; i++)
		if (checked(&h->ops[i]))
			v[(*n)++] = (uint64_t)h->ops[i].key << 32 | i;
	qsort(v, *n, sizeof(*v), by_u64);
	for (i = 0; i < *n; i++)
		idx[i] = (uint32_t)v[i];
	free(v);
	return idx;
}

static int keep(struct linchk_result *res, const struct linchk_key *k)
{
	struct linchk_key *v;

	if (k->verdict == LINCHK_OK)
		return 0;
	v = realloc(res->bad, (res->nbad + 1) * sizeof(*v));
	if (v == NULL)
		return -1;
	res->bad = v;
	res->bad[res->nbad++] = *k;
	if (k->verdict > res->verdict)
		res->verdict = k->verdict;
	return 0;
}

int linchk_run(const struct history *h, const struct linchk_opts *opts,
               struct linchk_result *res)
{
	uint32_t *idx, *stamp;
	struct linchk_key k;
	size_t n, i, j;

	memset(res, 0, sizeof(*res));
	idx = group(h, &n);
	stamp = calloc(h->nstrs + 1, sizeof(*stamp));
	if (idx == NULL || stamp == NULL)
		goto err_after_alloc;
	res->nops = n;
	for (i = 0; i < n; i = j) {
		for (j = i; j < n && h->ops[idx[j]].key == h->ops[idx[i]].key;)
			j++;
		res->nkeys++;
		if (check_key(h, opts, idx + i, j - i, stamp,
		              (uint32_t)res->nkeys, &k) != 0)
			goto err_after_alloc;
		res->steps += k.steps;
		if (keep(res, &k) != 0) {
			free(k.window);
			goto err_after_alloc;
		}
	}
	free(stamp);
	free(idx);
	return 0;

err_after_alloc:
	free(stamp);
	free(idx);
	linchk_result_free(res);
	return -1;
}

void linchk_result_free(struct linchk_result *res)
{
	size_t i;

	for (i = 0; i < res->nbad; i++)
		free(res->bad[i].window);
	free(res->bad);
	memset(res, 0, sizeof(*res));
}

/* ---- printing ------------------------------------------------------------ */

static const char *value_name(const struct history *h, hist_str v)
{
	if (v == ABSENT)
		return "(absent)";
	return history_str(h, v);
}

static void print_op(const struct history *h, const struct hist_op *op,
                     const char *mark, FILE *out)
{
	char line[1024];

	history_format_op(h, op, line, sizeof(line));
	fprintf(out, "  %s %s\n", mark, line);
}

static void print_violation(const struct history *h, const struct linchk_key *k,
                            FILE *out)
{
	size_t i;

	fprintf(out, "key %s: no linearization of its %zu ops\n",
	        history_str(h, k->key), k->nops);
	fprintf(out,
	        "  ordered by completion, its first %zu ok ops "
	        "linearize; no linearization reaches the next:\n",
	        k->prefix);
	print_op(h, k->blocker, ">", out);
	fprintf(out, "  just before it the key could hold:");
	for (i = 0; i < k->nstates; i++) {
		fprintf(out, "%s %s", i ? " |" : "",
		        value_name(h, k->states[i]));
		if (k->revs)
			fprintf(out, " (after rev %" PRIu64 ")",
			        k->state_revs[i]);
	}
	fprintf(out, "\n  the longest linearization found ends:\n");
	for (i = 0; i < k->ntail; i++)
		print_op(h, k->tail[i], " ", out);
	if (k->ntail == 0)
		fprintf(out, "    (it is empty)\n");
	fprintf(out, "  ops around it, by invoke time (> marks it):\n");
	for (i = 0; i < k->nwindow; i++)
		print_op(h, k->window[i],
		         k->window[i] == k->blocker ? ">" : " ", out);
}

void linchk_print(const struct history *h, const struct linchk_result *res,
                  FILE *out)
{
	static const char *const names[] = {"ok", "undecided", "VIOLATION"};
	size_t i;

	fprintf(out, "linearizability: %s (%zu ops, %zu keys)\n",
	        names[res->verdict], res->nops, res->nkeys);
	for (i = 0; i < res->nbad; i++) {
		const struct linchk_key *k = &res->bad[i];

		if (k->verdict == LINCHK_VIOLATION)
			print_violation(h, k, out);
		else
			fprintf(out,
			        "key %s: undecided: the %s ran out after "
			        "%" PRIu64 " steps (%zu ops); this key was "
			        "not checked\n",
			        history_str(h, k->key), k->why, k->steps,
			        k->nops);
	}
}
