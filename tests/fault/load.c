/*
 * cairn-fault-load: the workload of the fault-injection suite. It drives a
 * cluster while tests/fault/run.sh injects faults, records every operation
 * with its real-time bounds, and collects what the checker (cairn-check)
 * needs to judge the run afterwards.
 *
 *   cairn-fault-load --endpoints E --clients N --keys K --seconds S --seed X
 *                    --watchers W --out FILE [--op-timeout MS]
 *                    [--rate OPS_PER_S] [--verify-timeout S]
 *
 * The happy path, on one libuv loop with libcairn's async API:
 *   1. A linearizable read gives the start revision R0; W watchers (each its
 *      own client) watch the prefix /f/ from R0 + 1.
 *   2. N workers (each its own client, a "process" of the history) issue one
 *      operation at a time for S seconds: put, linearizable get,
 *      compare-and-swap (a transaction) or delete, on keys /f/k0../f/k{K-1};
 *      every value written is unique. --rate caps the operations issued
 *      per second over all workers (0: as fast as answers come), so that the
 *      history stays small enough to check. Each operation is written to
 *      FILE when it completes, with CLOCK_MONOTONIC invoke and complete
 *      times.
 *   3. Verification: the final revision REV from a linearizable read; every
 *      watcher brought up to REV; then, member by member (each endpoint
 *      alone), its revision must reach REV, its whole change history is
 *      replayed with a watch from revision 1 ("ref" lines) and its keyspace
 *      listed ("kv" lines).
 *
 * Outcomes: a write is "ok" when answered; "fail" only when the store
 * refused it before proposing it (a domain error: it cannot have been
 * applied); every other error ("timed out", "connection lost", "not the
 * leader" after an earlier attempt went out...) is "unknown": libcairn resends
 * a write on every new link with the same sequence number, so some attempt
 * may have been applied. A worker whose operation ended unknown takes a new
 * process id, as the operation may still take effect at any later time. A
 * read that fails is "fail" (it changed nothing). A retried delete that the
 * store recognizes as a duplicate does not say whether it deleted anything,
 * so it is recorded "unknown" too.
 *
 * The output format (one record a line; '#' starts a comment):
 *   op PROC T_INVOKE T_COMPLETE STATUS TYPE KEY [ARGS...] [RESULTS...]
 *   watch W start PREFIX FROM_REV | event W T KEY put VALUE MODREV
 *   event W T KEY del - MODREV | watch W end END_REV
 *   ref M REV KEY put VALUE | ref M REV KEY del - | kv M KEY VALUE MODREV
 *   final M REV
 *
 * Exit status: 0 when the verification completed, 1 when it could not (a
 * member that never catches up, a cluster that never answers: findings, said
 * on stderr), 2 on a usage error.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "cairn.h"

#define MAX_ENDPOINTS 16
#define TOKEN_MAX 64
#define PREFIX "/f/"
#define POLL_MS 200

/* ---- small helpers ------------------------------------------------------- */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void warn(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "cairn-fault-load: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* xorshift64*: each worker its own stream, derived from the seed. */
static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * UINT64_C(2685821657736338717);
}

static uint64_t rng_seed(uint64_t seed, uint64_t stream)
{
	uint64_t z = seed + (stream + 1) * UINT64_C(0x9e3779b97f4a7c15);

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	z ^= z >> 31;
	return z != 0 ? z : 1;
}

/* Keys and values must be tokens of [A-Za-z0-9_/.:-] in the output. */
static bool is_token(const uint8_t *p, size_t len)
{
	size_t i;

	if (len == 0 || len >= TOKEN_MAX)
		return false;
	for (i = 0; i < len; i++) {
		uint8_t ch = p[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '_' || ch == '/' ||
		      ch == '.' || ch == ':' || ch == '-'))
			return false;
	}
	return !(len == 1 && p[0] == '-');
}

/* ---- the program's state ------------------------------------------------- */

enum op_kind { OP_PUT = 0, OP_GET, OP_CAS, OP_DEL, OP_KINDS };

static const char *const op_names[OP_KINDS] = {"put", "get", "cas", "del"};

enum status { ST_OK = 0, ST_FAIL, ST_UNKNOWN, ST_N };

static const char *const status_names[ST_N] = {"ok", "fail", "unknown"};

struct load;

/* One worker: a client doing one operation at a time. */
struct worker {
	struct load *l;
	unsigned index;
	cairn_client *c;
	uint64_t proc;
	uint64_t rng;
	uint64_t n_values;
	bool busy;
	/* the operation in flight */
	enum op_kind kind;
	unsigned key;
	char value[TOKEN_MAX];
	char expect[TOKEN_MAX];
	uint64_t t_invoke;
	uv_timer_t retry; /* after a submit refused at once */
};

/* One watcher: a client watching PREFIX from the start revision on. */
struct watcher {
	struct load *l;
	unsigned index;
	cairn_client *c;
	cairn_watch *w;
	int64_t next_rev; /* first revision not yet fully seen */
	bool ended;       /* its final callback came */
	int err;
	uv_timer_t restart;
};

struct load {
	uv_loop_t loop;
	FILE *out;
	/* options */
	const char *endpoints;
	char *eps[MAX_ENDPOINTS];
	unsigned n_eps;
	unsigned n_workers;
	unsigned n_keys;
	unsigned seconds;
	uint64_t seed;
	unsigned n_watchers;
	unsigned op_timeout_ms;
	unsigned verify_timeout_s;
	unsigned rate;
	/* run */
	struct worker *workers;
	struct watcher *watchers;
	char (*known)[TOKEN_MAX]; /* per key: the last value seen, "-" absent */
	uint64_t next_proc;
	unsigned in_flight;
	bool stopping;
	bool canceling; /* clients closed: their callbacks are ECANCELED */
	uv_timer_t stop_timer;
	uv_timer_t hard_timer;
	bool timers; /* stop_timer and hard_timer initialized */
	int64_t start_rev;
	/* counts for the summary */
	uint64_t counts[OP_KINDS][ST_N];
	uint64_t errors[CAIRN_ERROR_MAX];
	uint64_t events;
};

/* ---- options ------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f, "usage: cairn-fault-load --endpoints E --clients N --keys K "
	           "--seconds S --seed X\n"
	           "                        --watchers W --out FILE "
	           "[--op-timeout MS] [--rate N] [--verify-timeout S]\n");
}

static bool parse_uint(const char *s, uint64_t max, uint64_t *v)
{
	char *end;

	if (s[0] < '0' || s[0] > '9')
		return false;
	*v = strtoull(s, &end, 10);
	return *end == '\0' && *v <= max;
}

static int split_endpoints(struct load *l)
{
	char *copy = strdup(l->endpoints);
	char *save = NULL;
	char *tok;

	if (copy == NULL)
		return -1;
	for (tok = strtok_r(copy, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		if (l->n_eps == MAX_ENDPOINTS) {
			free(copy);
			return -1;
		}
		l->eps[l->n_eps] = strdup(tok);
		if (l->eps[l->n_eps] == NULL) {
			free(copy);
			return -1;
		}
		l->n_eps++;
	}
	free(copy);
	return l->n_eps > 0 ? 0 : -1;
}

static int parse_args(struct load *l, int argc, char **argv, const char **out)
{
	static const struct option opts[] = {
	    {"endpoints", required_argument, NULL, 'e'},
	    {"clients", required_argument, NULL, 'c'},
	    {"keys", required_argument, NULL, 'k'},
	    {"seconds", required_argument, NULL, 's'},
	    {"seed", required_argument, NULL, 'x'},
	    {"watchers", required_argument, NULL, 'w'},
	    {"out", required_argument, NULL, 'o'},
	    {"op-timeout", required_argument, NULL, 't'},
	    {"verify-timeout", required_argument, NULL, 'v'},
	    {"rate", required_argument, NULL, 'r'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	uint64_t v;
	int ch;

	l->n_workers = 4;
	l->n_keys = 5;
	l->seconds = 10;
	l->n_watchers = 1;
	l->op_timeout_ms = 5000;
	l->verify_timeout_s = 120;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'e':
			l->endpoints = optarg;
			continue;
		case 'o':
			*out = optarg;
			continue;
		case 'h':
			usage(stdout);
			exit(0);
		case '?':
			return -1;
		default:
			break;
		}
		if (!parse_uint(optarg, UINT64_MAX, &v)) {
			warn("--%s wants a number, not '%s'",
			     ch == 'x' ? "seed" : "(option)", optarg);
			return -1;
		}
		if (ch == 'x') {
			l->seed = v;
			continue;
		}
		if (ch == 'r' && v <= 1000000) { /* 0 is allowed: no cap */
			l->rate = (unsigned)v;
			continue;
		}
		if (v == 0 || v > 1000000) {
			warn("a count or time must be in 1..1000000: '%s'",
			     optarg);
			return -1;
		}
		if (ch == 'c')
			l->n_workers = (unsigned)v;
		else if (ch == 'k')
			l->n_keys = (unsigned)v;
		else if (ch == 's')
			l->seconds = (unsigned)v;
		else if (ch == 'w')
			l->n_watchers = (unsigned)v;
		else if (ch == 't')
			l->op_timeout_ms = (unsigned)v;
		else if (ch == 'v')
			l->verify_timeout_s = (unsigned)v;
	}
	if (optind != argc || l->endpoints == NULL || *out == NULL) {
		usage(stderr);
		return -1;
	}
	if (split_endpoints(l) != 0) {
		warn("--endpoints: 1 to %d addresses, comma-separated",
		     MAX_ENDPOINTS);
		return -1;
	}
	return 0;
}

/* The endpoint list starting at endpoint 'first', so that clients spread
 * their first connections over the members. */
static void rotated_endpoints(const struct load *l, unsigned first, char *out,
                              size_t len)
{
	size_t used = 0;
	unsigned i;

	out[0] = '\0';
	for (i = 0; i < l->n_eps && used < len; i++)
		used += (size_t)snprintf(out + used, len - used, "%s%s",
		                         i ? "," : "",
		                         l->eps[(first + i) % l->n_eps]);
}

static cairn_client *open_client(struct load *l, const char *endpoints,
                                 unsigned timeout_ms, bool no_redirect)
{
	struct cairn_options o = {.dial_timeout_ms = 1000,
	                          .request_timeout_ms = timeout_ms,
	                          .no_redirect = no_redirect};
	cairn_client *c;
	char err[256];

	if (cairn_open_async(&c, &l->loop, endpoints, &o, err, sizeof err) !=
	    0) {
		warn("client on %s: %s", endpoints, err);
		return NULL;
	}
	return c;
}

/* ---- recording ----------------------------------------------------------- */

static void key_name(unsigned key, char *out, size_t len)
{
	snprintf(out, len, PREFIX "k%u", key);
}

/* A kv's value as a token ("-" when absent or not a token). */
static void value_token(const struct cairn_kv *kv, char *out, size_t len)
{
	if (kv == NULL || kv->value == NULL ||
	    !is_token(kv->value, kv->value_len) || kv->value_len >= len) {
		snprintf(out, len, "-");
		return;
	}
	memcpy(out, kv->value, kv->value_len);
	out[kv->value_len] = '\0';
}

/* Only domain errors, answered before anything was proposed, prove that a
 * write did not take effect. */
static bool definitely_not_applied(int err)
{
	switch (err) {
	case CAIRN_EINVAL:
	case CAIRN_ETOOBIG:
	case CAIRN_EDUPKEY:
	case CAIRN_ETOOMANYOPS:
	case CAIRN_ENOSPACE:
		return true;
	default:
		return false;
	}
}

/* The results of an ok operation, after its arguments. */
static bool format_results(struct worker *w, const struct cairn_result *res,
                           char *out, size_t len)
{
	char val[TOKEN_MAX];
	struct load *l = w->l;

	switch (w->kind) {
	case OP_PUT:
		snprintf(out, len, "rev=%" PRId64, res->header.revision);
		snprintf(l->known[w->key], TOKEN_MAX, "%s", w->value);
		return true;
	case OP_GET:
		value_token(res->n_kvs > 0 ? &res->kvs[0] : NULL, val,
		            sizeof val);
		snprintf(out, len, "val=%s modrev=%" PRId64 " rev=%" PRId64,
		         val, res->n_kvs > 0 ? res->kvs[0].mod_revision : 0,
		         res->header.revision);
		snprintf(l->known[w->key], TOKEN_MAX, "%s", val);
		return true;
	case OP_CAS:
		snprintf(out, len, "succeeded=%d rev=%" PRId64,
		         res->succeeded ? 1 : 0, res->header.revision);
		if (res->succeeded)
			snprintf(l->known[w->key], TOKEN_MAX, "%s", w->value);
		return true;
	case OP_DEL:
		if (res->duplicate)
			return false; /* whether it deleted is not said */
		snprintf(out, len, "deleted=%d rev=%" PRId64,
		         res->deleted > 0 ? 1 : 0, res->header.revision);
		snprintf(l->known[w->key], TOKEN_MAX, "-");
		return true;
	default:
		return false;
	}
}

/* Writes the op line of w's operation; never_sent: refused by
 * cairn_submit, so it cannot have taken effect. */
static void record_op(struct worker *w, const struct cairn_result *res,
                      uint64_t t_complete, bool never_sent)
{
	struct load *l = w->l;
	enum status st;
	char key[TOKEN_MAX];
	char args[2 * TOKEN_MAX + 2];
	char results[128] = "";

	key_name(w->key, key, sizeof key);
	if (res->err == 0)
		st = format_results(w, res, results, sizeof results)
		         ? ST_OK
		         : ST_UNKNOWN;
	else if (never_sent || w->kind == OP_GET ||
	         definitely_not_applied(res->err))
		st = ST_FAIL;
	else
		st = ST_UNKNOWN;
	if (res->err > 0 && res->err < CAIRN_ERROR_MAX)
		l->errors[res->err]++;
	l->counts[w->kind][st]++;
	if (w->kind == OP_PUT)
		snprintf(args, sizeof args, " %s", w->value);
	else if (w->kind == OP_CAS)
		snprintf(args, sizeof args, " %s %s", w->expect, w->value);
	else
		args[0] = '\0';
	fprintf(l->out,
	        "op %" PRIu64 " %" PRIu64 " %" PRIu64 " %s %s %s%s%s%s\n",
	        w->proc, w->t_invoke, t_complete, status_names[st],
	        op_names[w->kind], key, args, st == ST_OK ? " " : "", results);
	if (st == ST_UNKNOWN && res->err == 0)
		fprintf(l->out,
		        "# proc %" PRIu64 ": the store answered a retry as a "
		        "duplicate without saying whether it deleted\n",
		        w->proc);
	else if (st == ST_UNKNOWN)
		fprintf(l->out, "# proc %" PRIu64 ": %s\n", w->proc,
		        res->errmsg ? res->errmsg : cairn_strerror(res->err));
	if (st == ST_UNKNOWN)
		w->proc = l->next_proc++;
}

/* ---- workers ------------------------------------------------------------- */

static void worker_next(struct worker *w);
static void worker_pace(struct worker *w);

static void on_op_done(cairn_client *c, struct cairn_result *res, void *arg)
{
	struct worker *w = arg;
	struct load *l = w->l;

	(void)c;
	record_op(w, res, now_ns(), false);
	cairn_result_free(res);
	w->busy = false;
	l->in_flight--;
	if (l->stopping) {
		if (l->in_flight == 0)
			uv_stop(&l->loop);
		return;
	}
	worker_pace(w);
}

/* Picks the next operation's kind, key and values. */
static void worker_choose(struct worker *w)
{
	struct load *l = w->l;
	uint64_t r = rng_next(&w->rng);
	unsigned pick = (unsigned)(r % 100);

	w->kind = pick < 30   ? OP_PUT
	          : pick < 60 ? OP_GET
	          : pick < 85 ? OP_CAS
	                      : OP_DEL;
	w->key = (unsigned)((r >> 8) % l->n_keys);
	snprintf(w->value, sizeof w->value, "v%" PRIu64 ".%" PRIu64, w->proc,
	         ++w->n_values);
	if (((r >> 40) & 3) == 0)
		snprintf(w->expect, sizeof w->expect, "-");
	else
		snprintf(w->expect, sizeof w->expect, "%s", l->known[w->key]);
}

/* Fills op (and the txn parts it points to) for the chosen operation. */
static void worker_build(struct worker *w, char *key, struct cairn_op *op,
                         struct cairn_txn *txn, struct cairn_compare *cmp,
                         struct cairn_op *put)
{
	key_name(w->key, key, TOKEN_MAX);
	memset(op, 0, sizeof *op);
	op->key = key;
	op->key_len = strlen(key);
	switch (w->kind) {
	case OP_PUT:
		op->type = CAIRN_OP_PUT;
		op->value = w->value;
		op->value_len = strlen(w->value);
		break;
	case OP_GET:
		op->type = CAIRN_OP_RANGE;
		break;
	case OP_DEL:
		op->type = CAIRN_OP_DELETE;
		break;
	default:
		memset(cmp, 0, sizeof *cmp);
		cmp->key = key;
		cmp->key_len = op->key_len;
		cmp->result = CAIRN_CMP_EQUAL;
		if (strcmp(w->expect, "-") == 0) {
			cmp->target = CAIRN_CMP_CREATE;
			cmp->number = 0;
		} else {
			cmp->target = CAIRN_CMP_VALUE;
			cmp->value = w->expect;
			cmp->value_len = strlen(w->expect);
		}
		memset(put, 0, sizeof *put);
		put->type = CAIRN_OP_PUT;
		put->key = key;
		put->key_len = op->key_len;
		put->value = w->value;
		put->value_len = strlen(w->value);
		memset(txn, 0, sizeof *txn);
		txn->compare = cmp;
		txn->n_compare = 1;
		txn->success = put;
		txn->n_success = 1;
		op->type = CAIRN_OP_TXN;
		op->txn = txn;
		break;
	}
}

static void on_retry(uv_timer_t *t)
{
	worker_next(t->data);
}

/* Issues the next operation now, or once the worker's share of --rate
 * allows: each worker invokes at most rate / workers operations a second. */
static void worker_pace(struct worker *w)
{
	struct load *l = w->l;
	uint64_t gap, since;

	if (l->rate == 0) {
		worker_next(w);
		return;
	}
	gap = (uint64_t)l->n_workers * 1000000000u / l->rate;
	since = now_ns() - w->t_invoke;
	if (since >= gap) {
		worker_next(w);
		return;
	}
	uv_timer_start(&w->retry, on_retry, (gap - since) / 1000000 + 1, 0);
}

static void worker_next(struct worker *w)
{
	struct load *l = w->l;
	struct cairn_compare cmp;
	struct cairn_txn txn;
	struct cairn_op op, put;
	struct cairn_result res;
	char key[TOKEN_MAX];
	int rv;

	if (l->stopping)
		return;
	worker_choose(w);
	worker_build(w, key, &op, &txn, &cmp, &put);
	w->t_invoke = now_ns();
	rv = cairn_submit(w->c, &op, on_op_done, w);
	if (rv == 0) {
		w->busy = true;
		l->in_flight++;
		return;
	}
	memset(&res, 0, sizeof res);
	res.err = rv;
	record_op(w, &res, now_ns(), true);
	uv_timer_start(&w->retry, on_retry, 10, 0);
}

/* ---- watchers ------------------------------------------------------------ */

static int watcher_start(struct watcher *wt);

static void record_event(struct watcher *wt, const struct cairn_event *ev,
                         uint64_t t)
{
	char val[TOKEN_MAX];
	const struct cairn_kv *kv = &ev->kv;

	if (!is_token(kv->key, kv->key_len)) {
		fprintf(wt->l->out, "# watch %u: a key that is no token\n",
		        wt->index);
		return;
	}
	value_token(ev->type == CAIRN_EVENT_PUT ? kv : NULL, val, sizeof val);
	fprintf(wt->l->out, "event %u %" PRIu64 " %.*s %s %s %" PRId64 "\n",
	        wt->index, t, (int)kv->key_len, (const char *)kv->key,
	        ev->type == CAIRN_EVENT_PUT ? "put" : "del", val,
	        kv->mod_revision);
	wt->l->events++;
}

static void on_restart(uv_timer_t *t)
{
	struct watcher *wt = t->data;

	if (!wt->l->canceling && watcher_start(wt) != 0)
		uv_timer_start(&wt->restart, on_restart, 500, 0);
}

static void on_watch(cairn_client *c, cairn_watch *w,
                     const struct cairn_watch_update *u, void *arg)
{
	struct watcher *wt = arg;
	uint64_t t = now_ns();
	size_t i;

	(void)c;
	(void)w;
	if (u->err != 0) {
		wt->w = NULL;
		if (wt->l->canceling) {
			wt->ended = true;
			return;
		}
		/* libcairn resumes a created watch by itself; one that ends
		 * here failed before its first answer, or lost its history. */
		fprintf(wt->l->out,
		        "# watch %u ended (%s): restarting at %" PRId64 "\n",
		        wt->index,
		        u->errmsg ? u->errmsg : cairn_strerror(u->err),
		        wt->next_rev);
		wt->err = u->err;
		uv_timer_start(&wt->restart, on_restart, 500, 0);
		return;
	}
	for (i = 0; i < u->n_events; i++)
		record_event(wt, &u->events[i], t);
	if (!u->more && u->revision >= wt->next_rev)
		wt->next_rev = u->revision + 1;
}

static int watcher_start(struct watcher *wt)
{
	uint8_t end[sizeof PREFIX];
	struct cairn_watch_opts o;
	int rv;

	memset(&o, 0, sizeof o);
	o.key = PREFIX;
	o.key_len = strlen(PREFIX);
	o.end = end;
	o.end_len = cairn_prefix_end(PREFIX, strlen(PREFIX), end);
	o.start_revision = wt->next_rev;
	o.progress_notify = true;
	rv = cairn_watch_start(wt->c, &o, on_watch, wt, &wt->w);
	if (rv != 0)
		warn("watch %u: %s", wt->index, cairn_strerror(rv));
	return rv;
}

/* ---- waiting on the loop (the verification phase runs sequentially) ------ */

struct waiter {
	bool done;
	struct cairn_result *res;
};

static void on_waited(cairn_client *c, struct cairn_result *res, void *arg)
{
	struct waiter *wa = arg;

	(void)c;
	wa->res = res;
	wa->done = true;
}

/* Runs op on c and waits for its answer: 0 and *out, or an error code. */
static int await_op(struct load *l, cairn_client *c, const struct cairn_op *op,
                    struct cairn_result **out)
{
	struct waiter wa = {false, NULL};
	int rv = cairn_submit(c, op, on_waited, &wa);

	*out = NULL;
	if (rv != 0)
		return rv;
	while (!wa.done)
		uv_run(&l->loop, UV_RUN_ONCE);
	rv = wa.res->err;
	if (rv != 0)
		cairn_result_free(wa.res);
	else
		*out = wa.res;
	return rv;
}

static void on_nap(uv_timer_t *t)
{
	*(bool *)t->data = true;
}

static void nap(struct load *l, unsigned ms)
{
	uv_timer_t t;
	bool done = false;

	uv_timer_init(&l->loop, &t);
	t.data = &done;
	uv_timer_start(&t, on_nap, ms, 0);
	while (!done)
		uv_run(&l->loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(&l->loop, UV_RUN_NOWAIT);
}

/* A linearizable read of /f/k0, retried until deadline (ns): its header
 * revision, or -1. */
static int64_t current_revision(struct load *l, cairn_client *c,
                                uint64_t deadline)
{
	struct cairn_op op = {.type = CAIRN_OP_RANGE,
	                      .key = PREFIX "k0",
	                      .key_len = strlen(PREFIX "k0")};
	struct cairn_result *res;
	int64_t rev;
	int rv;

	for (;;) {
		rv = await_op(l, c, &op, &res);
		if (rv == 0) {
			rev = res->header.revision;
			cairn_result_free(res);
			return rev;
		}
		if (now_ns() >= deadline) {
			warn("no linearizable read succeeded: last error %s",
			     cairn_strerror(rv));
			return -1;
		}
		nap(l, POLL_MS);
	}
}

/* ---- phase 1 and 2: start and run ---------------------------------------- */

static void on_stop(uv_timer_t *t)
{
	struct load *l = t->data;

	l->stopping = true;
	fprintf(l->out, "# stop issuing: %u operations in flight\n",
	        l->in_flight);
	if (l->in_flight == 0)
		uv_stop(&l->loop);
}

/* In-flight operations end by their request timeout; should one not, the
 * clients are closed (their operations end ECANCELED, recorded unknown). */
static void on_hard_stop(uv_timer_t *t)
{
	struct load *l = t->data;
	unsigned i;

	warn("%u operations still in flight after their timeout: canceled",
	     l->in_flight);
	l->canceling = true;
	for (i = 0; i < l->n_workers; i++)
		if (l->workers[i].c != NULL && l->workers[i].busy) {
			cairn_close(l->workers[i].c);
			l->workers[i].c = NULL;
		}
	uv_stop(&l->loop);
}

static int start_watchers(struct load *l)
{
	char eps[1024];
	unsigned i;
	struct watcher *wt;

	for (i = 0; i < l->n_watchers; i++) {
		wt = &l->watchers[i];
		wt->l = l;
		wt->index = i;
		wt->next_rev = l->start_rev + 1;
		uv_timer_init(&l->loop, &wt->restart);
		wt->restart.data = wt;
		rotated_endpoints(l, i, eps, sizeof eps);
		wt->c = open_client(l, eps, l->op_timeout_ms, false);
		if (wt->c == NULL)
			return -1;
		fprintf(l->out, "watch %u start " PREFIX " %" PRId64 "\n", i,
		        wt->next_rev);
		if (watcher_start(wt) != 0)
			uv_timer_start(&wt->restart, on_restart, 500, 0);
	}
	return 0;
}

static int start_workers(struct load *l)
{
	char eps[1024];
	unsigned i;
	struct worker *w;

	for (i = 0; i < l->n_workers; i++) {
		w = &l->workers[i];
		w->l = l;
		w->index = i;
		w->proc = i;
		w->rng = rng_seed(l->seed, i);
		uv_timer_init(&l->loop, &w->retry);
		w->retry.data = w;
		rotated_endpoints(l, i, eps, sizeof eps);
		w->c = open_client(l, eps, l->op_timeout_ms, false);
		if (w->c == NULL)
			return -1;
	}
	l->next_proc = l->n_workers;
	for (i = 0; i < l->n_workers; i++)
		worker_next(&l->workers[i]);
	return 0;
}

static void run_workload(struct load *l)
{
	uv_timer_init(&l->loop, &l->stop_timer);
	uv_timer_init(&l->loop, &l->hard_timer);
	l->timers = true;
	l->stop_timer.data = l->hard_timer.data = l;
	uv_timer_start(&l->stop_timer, on_stop, (uint64_t)l->seconds * 1000, 0);
	uv_timer_start(&l->hard_timer, on_hard_stop,
	               (uint64_t)l->seconds * 1000 + l->op_timeout_ms + 10000,
	               0);
	uv_run(&l->loop, UV_RUN_DEFAULT);
	l->stopping = true;
	uv_timer_stop(&l->stop_timer);
	uv_timer_stop(&l->hard_timer);
}

/* ---- phase 3: verification ----------------------------------------------- */

/* Brings every watcher up to rev, asking for progress while one lags. */
static int watchers_reach(struct load *l, int64_t rev, uint64_t deadline)
{
	unsigned i, lagging;

	for (;;) {
		lagging = 0;
		for (i = 0; i < l->n_watchers; i++) {
			if (l->watchers[i].next_rev > rev)
				continue;
			lagging++;
			if (l->watchers[i].w != NULL)
				cairn_watch_progress(l->watchers[i].c);
		}
		if (lagging == 0)
			break;
		if (now_ns() >= deadline) {
			for (i = 0; i < l->n_watchers; i++)
				if (l->watchers[i].next_rev <= rev)
					warn("watcher %u stuck before revision "
					     "%" PRId64
					     " (final revision %" PRId64 ")",
					     i, l->watchers[i].next_rev, rev);
			return -1;
		}
		nap(l, POLL_MS);
	}
	for (i = 0; i < l->n_watchers; i++)
		fprintf(l->out, "watch %u end %" PRId64 "\n", i, rev);
	return 0;
}

/* Waits until the member behind c is at revision rev; its id goes to *id. */
static int member_catch_up(struct load *l, cairn_client *c, const char *ep,
                           int64_t rev, uint64_t deadline, uint64_t *id)
{
	struct cairn_op op = {.type = CAIRN_OP_STATUS};
	struct cairn_result *res;
	int64_t at = -1;
	int rv = 0;

	for (;;) {
		rv = await_op(l, c, &op, &res);
		if (rv == 0) {
			at = res->status.revision;
			*id = res->status.member_id;
			cairn_result_free(res);
			if (at == rev)
				return 0;
			if (at > rev) {
				warn("member %" PRIu64
				     " (%s) is at revision %" PRId64
				     ", past the final revision %" PRId64,
				     *id, ep, at, rev);
				return -1;
			}
		}
		if (now_ns() >= deadline) {
			warn("member at %s never reached the final revision "
			     "%" PRId64 " (last seen at %" PRId64
			     "; last error: %s)",
			     ep, rev, at, rv ? cairn_strerror(rv) : "none");
			return -1;
		}
		nap(l, POLL_MS);
	}
}

struct replay {
	struct load *l;
	uint64_t member;
	int64_t next_rev;
	int err;
	bool ended;
};

static void on_replay(cairn_client *c, cairn_watch *w,
                      const struct cairn_watch_update *u, void *arg)
{
	struct replay *r = arg;
	char val[TOKEN_MAX];
	const struct cairn_kv *kv;
	size_t i;

	(void)c;
	(void)w;
	if (u->err != 0) {
		r->ended = true;
		r->err = u->err;
		return;
	}
	for (i = 0; i < u->n_events; i++) {
		kv = &u->events[i].kv;
		if (!is_token(kv->key, kv->key_len)) {
			fprintf(r->l->out,
			        "# ref %" PRIu64 ": a key that is no "
			        "token at revision %" PRId64 "\n",
			        r->member, kv->mod_revision);
			continue;
		}
		value_token(u->events[i].type == CAIRN_EVENT_PUT ? kv : NULL,
		            val, sizeof val);
		fprintf(r->l->out, "ref %" PRIu64 " %" PRId64 " %.*s %s %s\n",
		        r->member, kv->mod_revision, (int)kv->key_len,
		        (const char *)kv->key,
		        u->events[i].type == CAIRN_EVENT_PUT ? "put" : "del",
		        val);
	}
	if (!u->more && u->revision >= r->next_rev)
		r->next_rev = u->revision + 1;
}

/* Replays the member's whole history, revision 1 to rev, as ref lines. */
static int member_replay(struct load *l, cairn_client *c, uint64_t member,
                         int64_t rev, uint64_t deadline)
{
	struct replay r = {l, member, 1, 0, false};
	struct cairn_watch_opts o;
	cairn_watch *w;
	int rv;

	memset(&o, 0, sizeof o);
	o.key = "\0";
	o.key_len = 1;
	o.end = "\0";
	o.end_len = 1;
	o.start_revision = 1;
	rv = cairn_watch_start(c, &o, on_replay, &r, &w);
	if (rv != 0) {
		warn("member %" PRIu64 ": replay: %s", member,
		     cairn_strerror(rv));
		return -1;
	}
	while (!r.ended && r.next_rev <= rev && now_ns() < deadline) {
		cairn_watch_progress(c);
		nap(l, POLL_MS);
	}
	if (!r.ended)
		cairn_watch_cancel(w);
	while (!r.ended)
		uv_run(&l->loop, UV_RUN_ONCE);
	if (r.next_rev <= rev) {
		warn("member %" PRIu64
		     ": its history replayed only to revision "
		     "%" PRId64 " of %" PRId64 " (%s)",
		     member, r.next_rev - 1, rev,
		     r.err != CAIRN_ECANCELED ? cairn_strerror(r.err)
		                              : "timed out");
		return -1;
	}
	return 0;
}

/* Lists the member's keyspace under PREFIX (serializable) as kv lines. */
static int member_keyspace(struct load *l, cairn_client *c, uint64_t member,
                           int64_t rev)
{
	uint8_t end[sizeof PREFIX];
	struct cairn_op op = {.type = CAIRN_OP_RANGE,
	                      .key = PREFIX,
	                      .key_len = strlen(PREFIX),
	                      .end = end,
	                      .serializable = true};
	struct cairn_result *res;
	char val[TOKEN_MAX];
	size_t i;
	int rv;

	op.end_len = cairn_prefix_end(PREFIX, strlen(PREFIX), end);
	rv = await_op(l, c, &op, &res);
	if (rv != 0) {
		warn("member %" PRIu64 ": keyspace: %s", member,
		     cairn_strerror(rv));
		return -1;
	}
	for (i = 0; i < res->n_kvs; i++) {
		if (!is_token(res->kvs[i].key, res->kvs[i].key_len))
			continue;
		value_token(&res->kvs[i], val, sizeof val);
		fprintf(l->out, "kv %" PRIu64 " %.*s %s %" PRId64 "\n", member,
		        (int)res->kvs[i].key_len, (const char *)res->kvs[i].key,
		        val, res->kvs[i].mod_revision);
	}
	fprintf(l->out, "final %" PRIu64 " %" PRId64 "\n", member,
	        res->header.revision);
	if (res->header.revision != rev)
		warn("member %" PRIu64 ": keyspace read at revision %" PRId64
		     ", not %" PRId64,
		     member, res->header.revision, rev);
	rv = res->header.revision == rev ? 0 : -1;
	cairn_result_free(res);
	return rv;
}

static int verify_member(struct load *l, const char *ep, int64_t rev)
{
	uint64_t deadline =
	    now_ns() + (uint64_t)l->verify_timeout_s * 1000000000u;
	cairn_client *c = open_client(l, ep, 5000, true);
	uint64_t member = 0;
	int rv = -1;

	if (c == NULL)
		return -1;
	if (member_catch_up(l, c, ep, rev, deadline, &member) == 0 &&
	    member_replay(l, c, member, rev, deadline) == 0 &&
	    member_keyspace(l, c, member, rev) == 0)
		rv = 0;
	cairn_close(c);
	fflush(l->out);
	return rv;
}

static void close_watchers(struct load *l)
{
	unsigned i;

	l->canceling = true;
	for (i = 0; i < l->n_watchers; i++) {
		uv_timer_stop(&l->watchers[i].restart);
		if (l->watchers[i].c != NULL)
			cairn_close(l->watchers[i].c);
		l->watchers[i].c = NULL;
	}
}

static int verify(struct load *l)
{
	uint64_t deadline =
	    now_ns() + (uint64_t)l->verify_timeout_s * 1000000000u;
	cairn_client *c = open_client(l, l->endpoints, 5000, false);
	int64_t rev;
	unsigned i;
	int rv = 0;

	if (c == NULL)
		return -1;
	rev = current_revision(l, c, deadline);
	cairn_close(c);
	if (rev < 0) {
		close_watchers(l);
		return -1;
	}
	fprintf(l->out, "# final revision %" PRId64 "\n", rev);
	if (watchers_reach(l, rev, deadline) != 0)
		rv = -1;
	close_watchers(l);
	for (i = 0; i < l->n_eps; i++)
		if (verify_member(l, l->eps[i], rev) != 0)
			rv = -1;
	return rv;
}

/* ---- main ---------------------------------------------------------------- */

static void summary(struct load *l)
{
	unsigned k, s, e;
	uint64_t total = 0;

	for (k = 0; k < OP_KINDS; k++) {
		fprintf(l->out, "# %s:", op_names[k]);
		for (s = 0; s < ST_N; s++) {
			fprintf(l->out, " %s %" PRIu64, status_names[s],
			        l->counts[k][s]);
			total += l->counts[k][s];
		}
		fputc('\n', l->out);
	}
	fprintf(l->out, "# errors:");
	for (e = 1; e < CAIRN_ERROR_MAX; e++)
		if (l->errors[e] != 0)
			fprintf(l->out, " %s %" PRIu64, cairn_strerror(e),
			        l->errors[e]);
	fprintf(l->out, "\n# watch events %" PRIu64 "\n", l->events);
	fprintf(stderr,
	        "cairn-fault-load: %" PRIu64 " operations (%" PRIu64
	        " ok, %" PRIu64 " unknown), %" PRIu64 " watch events\n",
	        total,
	        l->counts[0][ST_OK] + l->counts[1][ST_OK] +
	            l->counts[2][ST_OK] + l->counts[3][ST_OK],
	        l->counts[0][ST_UNKNOWN] + l->counts[1][ST_UNKNOWN] +
	            l->counts[2][ST_UNKNOWN] + l->counts[3][ST_UNKNOWN],
	        l->events);
}

static void close_everything(struct load *l)
{
	unsigned i;

	for (i = 0; i < l->n_workers && l->workers != NULL; i++) {
		if (l->workers[i].c != NULL)
			cairn_close(l->workers[i].c);
		l->workers[i].c = NULL;
		if (l->workers[i].l != NULL)
			uv_close((uv_handle_t *)&l->workers[i].retry, NULL);
	}
	close_watchers(l);
	for (i = 0; i < l->n_watchers && l->watchers != NULL; i++)
		if (l->watchers[i].l != NULL)
			uv_close((uv_handle_t *)&l->watchers[i].restart, NULL);
	if (l->timers) {
		uv_close((uv_handle_t *)&l->stop_timer, NULL);
		uv_close((uv_handle_t *)&l->hard_timer, NULL);
	}
	uv_run(&l->loop, UV_RUN_DEFAULT);
}

static int run(struct load *l)
{
	uint64_t deadline =
	    now_ns() + (uint64_t)l->verify_timeout_s * 1000000000u;
	cairn_client *c = open_client(l, l->endpoints, 5000, false);
	unsigned i;
	int rv;

	if (c == NULL)
		return -1;
	l->start_rev = current_revision(l, c, deadline);
	cairn_close(c);
	if (l->start_rev < 0)
		return -1;
	fprintf(l->out, "# start revision %" PRId64 "\n", l->start_rev);
	if (start_watchers(l) != 0 || start_workers(l) != 0)
		return -1;
	run_workload(l);
	for (i = 0; i < l->n_workers; i++) {
		uv_timer_stop(&l->workers[i].retry);
		if (l->workers[i].c != NULL)
			cairn_close(l->workers[i].c);
		l->workers[i].c = NULL;
	}
	summary(l);
	fflush(l->out);
	rv = verify(l);
	fprintf(l->out, "# verification %s\n", rv == 0 ? "complete" : "FAILED");
	return rv;
}

int main(int argc, char **argv)
{
	struct load l;
	const char *path = NULL;
	int rv;
	unsigned i;

	memset(&l, 0, sizeof l);
	if (parse_args(&l, argc, argv, &path) != 0)
		return 2;
	l.out = fopen(path, "w");
	l.workers = calloc(l.n_workers, sizeof *l.workers);
	l.watchers = calloc(l.n_watchers, sizeof *l.watchers);
	l.known = calloc(l.n_keys, sizeof *l.known);
	if (l.out == NULL || l.workers == NULL || l.watchers == NULL ||
	    l.known == NULL) {
		warn("%s: cannot open, or out of memory", path);
		return 1;
	}
	for (i = 0; i < l.n_keys; i++)
		strcpy(l.known[i], "-");
	fprintf(l.out,
	        "# cairn-fault-load seed=%" PRIu64 " clients=%u keys=%u "
	        "seconds=%u watchers=%u op-timeout=%u rate=%u endpoints=%s\n",
	        l.seed, l.n_workers, l.n_keys, l.seconds, l.n_watchers,
	        l.op_timeout_ms, l.rate, l.endpoints);
	uv_loop_init(&l.loop);
	rv = run(&l);
	close_everything(&l);
	if (uv_loop_close(&l.loop) != 0) {
		warn("handles left open at exit");
		rv = -1;
	}
	if (fclose(l.out) != 0) {
		warn("%s: write failed", path);
		rv = -1;
	}
	for (i = 0; i < l.n_eps; i++)
		free(l.eps[i]);
	free(l.workers);
	free(l.watchers);
	free(l.known);
	if (rv != 0)
		warn("verification could not complete (see above)");
	return rv == 0 ? 0 : 1;
}
