/*
 * cairn-bench: load generator for cairn-store, with the subcommands, flags
 * and output of etcd's benchmark tool so results compare side by side.
 *
 * One libuv loop drives every client: --conns client connections (libcairn
 * async clients, spread over the endpoints as etcd's tool spreads them) and
 * --clients requests kept in flight across them. Each latency goes into a
 * log-linear histogram (bench/hist.c), so memory does not grow with --total.
 *
 * The generator's own CPU time is reported next to the wall time: on a
 * shared machine it tells whether the generator, not the store, was the
 * limit (a generator using most of a core is).
 *
 * Workloads:
 *   put            PUTs of --key-size/--val-size, random or sequential keys
 *   range KEY [END] linearizable or serializable reads
 *   txn-put        transactions of --txn-ops PUTs each
 *   watch          fan-out: watchers on every key, puts kept --clients deep;
 *                  events delivered per second
 *   watch-latency  one put at a time (or --put-rate per second); the time
 *                  from its acknowledgement until each watcher has its event
 *   lease-keepalive each client grants a lease, then renews it
 *
 * The cluster secret comes from --secret-file or the environment
 * (CAIRN_SECRET_FILE) as for cairnctl; --insecure measures plaintext against
 * a store run with --insecure, the baseline of the secure channel's cost.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include "cairn.h"
#include "hist.h"

#define MAX_ENDPOINTS 16
#define MAX_ENDPOINT_LEN 256

enum mode { M_PUT, M_RANGE, M_TXN_PUT, M_WATCH, M_WATCH_LATENCY, M_LEASE };

static const char *const mode_names[] = {
	"put", "range", "txn-put", "watch", "watch-latency", "lease-keepalive",
};

struct slot;

struct bench {
	uv_loop_t *loop;
	cairn_client **conns;
	unsigned n_conns;
	unsigned clients;
	enum mode mode;
	uint64_t total;
	uint64_t issued;
	uint64_t done;
	uint64_t errors;
	char first_error[300];

	/* keys and values */
	unsigned key_size;
	unsigned val_size;
	bool sequential;
	uint64_t key_space;
	uint8_t *value;
	uint64_t rng;
	const char *range_key;
	const char *range_end;
	bool serializable;
	unsigned txn_ops;

	/* --rate: requests are issued no faster than rate per second; slots
	 * that are ahead wait, parked, for the pacing timer */
	double rate;
	uv_timer_t pace;
	struct slot **parked;
	unsigned n_parked;

	/* watch modes */
	unsigned streams;
	unsigned per_stream;
	unsigned watchers;
	uint64_t events;
	uint64_t expected_events;
	int64_t lat_rev;    /* latency: the revision of the put in flight */
	uint64_t lat_acked; /* its acknowledgement time, 0 while waiting */
	uint64_t lat_seen;  /* watchers that have its event */
	uint64_t lat_early; /* of them, those that had it before the ack */
	uint64_t lat_last;  /* when the last of them got it */
	struct slot *lat_slot;
	struct histogram all; /* latency until every watcher had it */

	struct histogram hist;
	struct cairn_options opts;
	uint64_t start_ns;
	uint64_t end_ns;
	bool json;
	bool progress;
	uv_timer_t tick; /* progress bar; also keeps the loop alive for watches */
};

struct slot {
	struct bench *b;
	cairn_client *c;
	uint64_t started;
	int64_t lease; /* lease-keepalive: this client's lease, once granted */
	uint8_t *keys; /* txn_ops keys of key_size bytes (one for put) */
	uint64_t *ids; /* and their numbers */
	struct cairn_op *ops;
	struct cairn_txn txn;
};

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "cairn-bench: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static uint64_t next_rand(struct bench *b)
{
	b->rng ^= b->rng << 13;
	b->rng ^= b->rng >> 7;
	b->rng ^= b->rng << 17;
	return b->rng;
}

static void note_error(struct bench *b, int err, const char *msg)
{
	if (b->errors++ == 0)
		snprintf(b->first_error, sizeof b->first_error, "%s: %s",
		         cairn_strerror(err), msg ? msg : cairn_strerror(err));
}

static void finish(struct bench *b)
{
	b->end_ns = uv_hrtime();
	uv_stop(b->loop);
}

/* ---- issuing ------------------------------------------------------------- */

static void issue(struct slot *s);

static bool rate_allows(const struct bench *b)
{
	double elapsed;

	if (b->rate <= 0)
		return true;
	elapsed = (double)(uv_hrtime() - b->start_ns) / 1e9;
	return (double)b->issued <= elapsed * b->rate;
}

/* Issues s's next request now, or parks it until the rate allows. */
static void go(struct slot *s)
{
	struct bench *b = s->b;

	if (rate_allows(b)) {
		issue(s);
		return;
	}
	b->parked[b->n_parked++] = s;
}

static void pace_cb(uv_timer_t *t)
{
	struct bench *b = t->data;

	while (b->n_parked > 0 && b->issued < b->total && rate_allows(b))
		issue(b->parked[--b->n_parked]);
}

/* Key n of the key space, as zero-padded decimal digits of --key-size. */
static void write_key(const struct bench *b, uint64_t n, uint8_t *key)
{
	unsigned i;

	memset(key, '0', b->key_size);
	for (i = 0; i < b->key_size && i < 20; i++) {
		key[b->key_size - 1 - i] = (uint8_t)('0' + n % 10);
		n /= 10;
	}
}

static void fill_put(struct bench *b, struct cairn_op *op, uint8_t *key,
                     uint64_t n)
{
	write_key(b, n, key);
	memset(op, 0, sizeof *op);
	op->type = CAIRN_OP_PUT;
	op->key = key;
	op->key_len = b->key_size;
	op->value = b->value;
	op->value_len = b->val_size;
}

static uint64_t next_key(struct bench *b)
{
	return b->sequential ? b->issued % b->key_space : next_rand(b) % b->key_space;
}

/* A transaction's puts must name distinct keys: sequential keys are
 * consecutive (as etcd's tool makes them); a random key that repeats one of
 * the same transaction is replaced by the next one up. */
static void fill_txn(struct bench *b, struct slot *s, struct cairn_op *op)
{
	uint64_t first = b->issued * b->txn_ops;
	uint64_t n;
	unsigned i, j;

	for (i = 0; i < b->txn_ops; i++) {
		n = b->sequential ? (first + i) % b->key_space
		                  : next_rand(b) % b->key_space;
		for (j = 0; j < i; j++) {
			if (n == s->ids[j]) {
				n = (n + 1) % b->key_space;
				j = (unsigned)-1; /* check again from the first */
			}
		}
		s->ids[i] = n;
		fill_put(b, &s->ops[i], s->keys + (size_t)i * b->key_size, n);
	}
	memset(&s->txn, 0, sizeof s->txn);
	s->txn.success = s->ops;
	s->txn.n_success = b->txn_ops;
	memset(op, 0, sizeof *op);
	op->type = CAIRN_OP_TXN;
	op->txn = &s->txn;
}

static void fill_op(struct slot *s, struct cairn_op *op)
{
	struct bench *b = s->b;

	memset(op, 0, sizeof *op);
	switch (b->mode) {
	case M_PUT:
	case M_WATCH:
	case M_WATCH_LATENCY:
		fill_put(b, op, s->keys, next_key(b));
		break;
	case M_RANGE:
		op->type = CAIRN_OP_RANGE;
		op->key = b->range_key;
		op->key_len = strlen(b->range_key);
		op->end = b->range_end;
		op->end_len = b->range_end ? strlen(b->range_end) : 0;
		op->serializable = b->serializable;
		break;
	case M_TXN_PUT:
		fill_txn(b, s, op);
		break;
	case M_LEASE:
		op->type = s->lease ? CAIRN_OP_LEASE_KEEPALIVE : CAIRN_OP_LEASE_GRANT;
		op->lease = s->lease;
		op->ttl = 100;
		break;
	}
}

static void done_cb(cairn_client *c, struct cairn_result *res, void *arg);

static void issue(struct slot *s)
{
	struct bench *b = s->b;
	struct cairn_op op;
	int rv;

	fill_op(s, &op);
	if (b->mode != M_LEASE || s->lease != 0)
		b->issued++;
	s->started = uv_hrtime();
	rv = cairn_submit(s->c, &op, done_cb, s);
	if (rv != 0)
		die("submit: %s", cairn_strerror(rv));
}

/* ---- completions --------------------------------------------------------- */

static void latency_next(struct bench *b);

/* Latency mode: the put in flight is done once acknowledged and seen by
 * every watcher; then the next one goes. */
static void latency_step(struct bench *b)
{
	if (b->lat_acked == 0 || b->lat_seen < b->watchers)
		return;
	hist_add(&b->all, b->lat_last > b->lat_acked ? b->lat_last - b->lat_acked
	                                             : 0);
	b->done++;
	b->lat_acked = 0;
	b->lat_seen = 0;
	b->lat_early = 0;
	b->lat_rev = 0;
	if (b->done == b->total) {
		finish(b);
		return;
	}
	latency_next(b);
}

static void latency_seen(struct bench *b)
{
	uint64_t now = uv_hrtime();

	b->lat_seen++;
	b->lat_last = now;
	if (b->lat_acked != 0)
		hist_add(&b->hist, now - b->lat_acked);
	else
		b->lat_early++;
}

static void latency_acked(struct bench *b, int64_t revision)
{
	uint64_t i;

	b->lat_rev = revision;
	b->lat_acked = uv_hrtime();
	/* Watchers that had the event before the acknowledgement waited 0. */
	for (i = 0; i < b->lat_early; i++)
		hist_add(&b->hist, 0);
	latency_step(b);
}

static void watch_cb(cairn_client *c, cairn_watch *w,
                     const struct cairn_watch_update *u, void *arg)
{
	struct bench *b = arg;
	size_t i;

	(void)c;
	(void)w;
	if (u->err != 0) {
		/* A watcher that ended early would leave the run waiting for
		 * its events forever: the run ends, as failed. */
		if (u->err != CAIRN_ECANCELED) {
			note_error(b, u->err, u->errmsg);
			finish(b);
		}
		return;
	}
	b->events += u->n_events;
	for (i = 0; b->mode == M_WATCH_LATENCY && i < u->n_events; i++) {
		/* One put is in flight: an event before its acknowledgement
		 * is its event. */
		if (u->events[i].kv.mod_revision == b->lat_rev ||
		    (b->lat_rev == 0 && b->lat_acked == 0))
			latency_seen(b);
	}
	if (b->mode == M_WATCH_LATENCY)
		latency_step(b);
	if (b->mode == M_WATCH && b->events >= b->expected_events)
		finish(b);
}

static void done_cb(cairn_client *c, struct cairn_result *res, void *arg)
{
	struct slot *s = arg;
	struct bench *b = s->b;
	bool counted = b->mode != M_LEASE || s->lease != 0;

	(void)c;
	if (res->err != 0) {
		note_error(b, res->err, res->errmsg);
		if (!counted)
			die("lease grant failed: %s", res->errmsg);
	}
	if (!counted) { /* the grant before the keep-alives: not measured */
		s->lease = res->lease;
		cairn_result_free(res);
		go(s);
		return;
	}
	if (b->mode != M_WATCH_LATENCY)
		hist_add(&b->hist, uv_hrtime() - s->started);
	if (b->mode == M_WATCH_LATENCY) {
		if (res->err != 0)
			finish(b); /* no event will come */
		else
			latency_acked(b, res->header.revision);
		cairn_result_free(res);
		return;
	}
	if (b->mode == M_WATCH && res->err != 0)
		b->expected_events -= b->watchers; /* this put made none */
	cairn_result_free(res);
	if (++b->done == b->total && b->mode != M_WATCH)
		finish(b);
	else if (b->issued < b->total)
		go(s);
}

static void latency_next(struct bench *b)
{
	go(b->lat_slot);
}

/* ---- progress ------------------------------------------------------------ */

static void tick_cb(uv_timer_t *t)
{
	struct bench *b = t->data;
	uint64_t done = b->mode == M_WATCH ? b->events : b->done;
	uint64_t total = b->mode == M_WATCH ? b->expected_events : b->total;
	unsigned width = 40;
	unsigned fill;
	unsigned i;

	if (!b->progress || total == 0)
		return;
	fill = (unsigned)(done * width / total);
	fputc('\r', stderr);
	fputc('[', stderr);
	for (i = 0; i < width; i++)
		fputc(i < fill ? '=' : i == fill ? '>' : ' ', stderr);
	fprintf(stderr, "] %3u%% %" PRIu64 "/%" PRIu64 " ",
	        (unsigned)(done * 100 / total), done, total);
}

/* ---- setup --------------------------------------------------------------- */

static struct slot *slot_new(struct bench *b, unsigned i)
{
	struct slot *s = calloc(1, sizeof *s);
	unsigned n = b->txn_ops > 1 ? b->txn_ops : 1;

	if (s == NULL)
		die("%s", "out of memory");
	s->b = b;
	s->c = b->conns[i % b->n_conns];
	s->keys = malloc((size_t)n * b->key_size);
	s->ids = calloc(n, sizeof *s->ids);
	s->ops = calloc(n, sizeof *s->ops);
	if (s->keys == NULL || s->ids == NULL || s->ops == NULL)
		die("%s", "out of memory");
	return s;
}

static void start_load(struct bench *b, struct slot **slots, unsigned n)
{
	unsigned i;

	b->start_ns = uv_hrtime();
	for (i = 0; i < n && b->issued < b->total; i++)
		go(slots[i]);
}

/* Watch modes: learn the revision, start every watcher just after it (so no
 * event is missed however long creating them takes), then load. */
static void revision_cb(cairn_client *c, struct cairn_result *res, void *arg)
{
	struct slot **slots = arg;
	struct bench *b = slots[0]->b;
	struct cairn_watch_opts o;
	cairn_watch *w;
	unsigned i;

	(void)c;
	if (res->err != 0)
		die("%s", res->errmsg);
	memset(&o, 0, sizeof o);
	o.key = "\0";
	o.key_len = 1;
	o.end = "\0";
	o.end_len = 1;
	o.start_revision = res->header.revision + 1;
	cairn_result_free(res);
	for (i = 0; i < b->watchers; i++) {
		/* Watchers use the last --streams connections; puts go round-robin
		 * over all of them. */
		unsigned conn = b->n_conns - 1 - i % b->streams;

		if (cairn_watch_start(b->conns[conn], &o, watch_cb, b, &w) != 0)
			die("%s", "cannot start a watcher");
	}
	b->expected_events = (uint64_t)b->watchers * b->total;
	start_load(b, slots, b->mode == M_WATCH_LATENCY ? 1 : b->clients);
}

static void start_watch_mode(struct bench *b, struct slot **slots)
{
	struct cairn_op op;

	memset(&op, 0, sizeof op);
	op.type = CAIRN_OP_RANGE;
	op.key = "\0";
	op.key_len = 1;
	op.count_only = true;
	b->lat_slot = slots[0];
	if (cairn_submit(b->conns[0], &op, revision_cb, slots) != 0)
		die("%s", "cannot ask for the revision");
}

/* ---- endpoints ----------------------------------------------------------- */

struct endpoints {
	char list[MAX_ENDPOINTS][MAX_ENDPOINT_LEN];
	unsigned n;
};

static void usage_error(const char *what, const char *s)
{
	fprintf(stderr, "cairn-bench: --endpoints: '%s': %s\n", s, what);
	exit(2);
}

static void split_endpoints(const char *s, struct endpoints *e)
{
	const char *p = s;
	size_t len;

	e->n = 0;
	while (*p != '\0') {
		len = strcspn(p, ",");
		if (len == 0)
			usage_error("an empty endpoint; give host:port,...", s);
		if (len >= MAX_ENDPOINT_LEN)
			usage_error("an endpoint is too long", s);
		if (e->n == MAX_ENDPOINTS)
			usage_error("at most 16 endpoints", s);
		memcpy(e->list[e->n], p, len);
		e->list[e->n++][len] = '\0';
		p += len;
		if (*p == ',')
			p++;
	}
	if (e->n == 0)
		usage_error("no endpoint; give host:port,...", s);
}

/* The endpoint list for connection i: rotated by i, so connections start on
 * different members, as etcd's tool spreads its connections. */
static void rotated(const struct endpoints *e, unsigned i, char *out, size_t len)
{
	unsigned k;

	out[0] = '\0';
	for (k = 0; k < e->n; k++) {
		if (k > 0)
			strncat(out, ",", len - strlen(out) - 1);
		strncat(out, e->list[(i + k) % e->n], len - strlen(out) - 1);
	}
}

/* --target-leader: every connection goes to the leader's client address. */
static void find_leader(struct endpoints *e, const struct cairn_options *opts)
{
	char all[MAX_ENDPOINTS * MAX_ENDPOINT_LEN];
	char err[256];
	cairn_client *c;
	struct cairn_result *res = NULL;
	struct cairn_op op;
	size_t i;

	rotated(e, 0, all, sizeof all);
	if (cairn_open(&c, all, opts, err, sizeof err) != 0) {
		fprintf(stderr, "cairn-bench: %s\n", err);
		exit(2);
	}
	memset(&op, 0, sizeof op);
	op.type = CAIRN_OP_MEMBERS;
	if (cairn_do(c, &op, &res) != 0)
		die("--target-leader: %s", cairn_errmsg(c));
	for (i = 0; i < res->n_members; i++) {
		if (res->members[i].leader && res->members[i].client_address) {
			snprintf(e->list[0], MAX_ENDPOINT_LEN, "%s",
			         res->members[i].client_address);
			e->n = 1;
			break;
		}
	}
	if (i == res->n_members)
		die("%s", "--target-leader: no leader known; is the cluster up?");
	cairn_result_free(res);
	cairn_close(c);
}

/* ---- options ------------------------------------------------------------- */

static void usage(FILE *out)
{
	fprintf(out,
	    "Usage: cairn-bench [GLOBAL OPTIONS] COMMAND [OPTIONS]\n"
	    "Commands (as etcd's benchmark tool):\n"
	    "  put              [--total N] [--rate N] [--key-size N] [--val-size N]\n"
	    "                   [--sequential-keys] [--key-space-size N]\n"
	    "  range KEY [END]  [--total N] [--rate N] [--consistency l|s]\n"
	    "  txn-put          [--txn-ops N] [--total N] [--rate N] [--key-size N]\n"
	    "                   [--val-size N] [--key-space-size N]\n"
	    "  watch            [--streams N] [--watch-per-stream N | --watchers N]\n"
	    "                   [--put-total N] [--put-rate N] [--val-size N]\n"
	    "  watch-latency    [--streams N] [--watchers N] [--total N] [--put-rate N]\n"
	    "  lease-keepalive  [--total N] [--rate N]\n"
	    "Global options:\n"
	    "  --endpoints E     comma-separated store endpoints (default\n"
	    "                    $CAIRN_ENDPOINTS or 127.0.0.1:2379)\n"
	    "  --conns N         client connections (default 1)\n"
	    "  --clients N       requests in flight (default 1)\n"
	    "  --target-leader   connect only to the leader\n"
	    "  --json            print the result as one JSON object\n"
	    "  --request-timeout MS  give up on a request after MS, retries\n"
	    "                    included (default 10000)\n"
	    "  --secret-file F   the cluster secret (default $CAIRN_SECRET_FILE)\n"
	    "  --insecure        plaintext, for a store run with --insecure\n"
	    "See cairn-bench(1).\n");
}

static unsigned long long num(const char *flag, const char *v,
                              unsigned long long min, unsigned long long max)
{
	char *end;
	unsigned long long n = strtoull(v, &end, 10);

	if (*v == '\0' || *v == '-' || *end != '\0' || n < min || n > max) {
		fprintf(stderr,
		        "cairn-bench: %s: '%s' is not a number from %llu to %llu\n",
		        flag, v, min, max);
		exit(2);
	}
	return n;
}

enum {
	O_ENDPOINTS = 1, O_CONNS, O_CLIENTS, O_TOTAL, O_KEYSIZE, O_VALSIZE,
	O_SEQ, O_KEYSPACE, O_CONSISTENCY, O_HELP, O_WATCHERS, O_RATE,
	O_TXNOPS, O_STREAMS, O_PER_STREAM, O_TARGET_LEADER, O_JSON, O_TIMEOUT,
	O_SECRET_FILE, O_INSECURE,
};

static const struct option options[] = {
	{"endpoints", required_argument, NULL, O_ENDPOINTS},
	{"conns", required_argument, NULL, O_CONNS},
	{"clients", required_argument, NULL, O_CLIENTS},
	{"total", required_argument, NULL, O_TOTAL},
	{"put-total", required_argument, NULL, O_TOTAL},
	{"key-size", required_argument, NULL, O_KEYSIZE},
	{"val-size", required_argument, NULL, O_VALSIZE},
	{"sequential-keys", no_argument, NULL, O_SEQ},
	{"key-space-size", required_argument, NULL, O_KEYSPACE},
	{"consistency", required_argument, NULL, O_CONSISTENCY},
	{"help", no_argument, NULL, O_HELP},
	{"watchers", required_argument, NULL, O_WATCHERS},
	{"rate", required_argument, NULL, O_RATE},
	{"put-rate", required_argument, NULL, O_RATE},
	{"txn-ops", required_argument, NULL, O_TXNOPS},
	{"streams", required_argument, NULL, O_STREAMS},
	{"watch-per-stream", required_argument, NULL, O_PER_STREAM},
	{"target-leader", no_argument, NULL, O_TARGET_LEADER},
	{"json", no_argument, NULL, O_JSON},
	{"request-timeout", required_argument, NULL, O_TIMEOUT},
	{"secret-file", required_argument, NULL, O_SECRET_FILE},
	{"insecure", no_argument, NULL, O_INSECURE},
	{NULL, 0, NULL, 0},
};

struct flags {
	const char *endpoints;
	bool target_leader;
	unsigned per_stream;
};

static void parse_option(struct bench *b, struct flags *f, int c)
{
	switch (c) {
	case O_ENDPOINTS: f->endpoints = optarg; break;
	case O_CONNS: b->n_conns = (unsigned)num("--conns", optarg, 1, 1000); break;
	case O_CLIENTS: b->clients = (unsigned)num("--clients", optarg, 1, 100000); break;
	case O_TOTAL: b->total = num("--total", optarg, 1, 1ull << 40); break;
	case O_KEYSIZE: b->key_size = (unsigned)num("--key-size", optarg, 1, 255); break;
	case O_VALSIZE: b->val_size = (unsigned)num("--val-size", optarg, 0, 1 << 20); break;
	case O_SEQ: b->sequential = true; break;
	case O_KEYSPACE: b->key_space = num("--key-space-size", optarg, 1, 1ull << 40); break;
	case O_CONSISTENCY:
		if (strcmp(optarg, "l") != 0 && strcmp(optarg, "s") != 0) {
			fprintf(stderr, "cairn-bench: --consistency: 'l' or 's'\n");
			exit(2);
		}
		b->serializable = optarg[0] == 's';
		break;
	case O_WATCHERS: b->watchers = (unsigned)num("--watchers", optarg, 1, 1000000); break;
	case O_RATE: b->rate = (double)num("--rate", optarg, 0, 100000000); break;
	case O_TXNOPS: b->txn_ops = (unsigned)num("--txn-ops", optarg, 1, 128); break;
	case O_STREAMS: b->streams = (unsigned)num("--streams", optarg, 1, 1000); break;
	case O_PER_STREAM: f->per_stream = (unsigned)num("--watch-per-stream", optarg, 1, 100000); break;
	case O_TARGET_LEADER: f->target_leader = true; break;
	case O_JSON: b->json = true; break;
	case O_TIMEOUT:
		b->opts.request_timeout_ms = (unsigned)num("--request-timeout", optarg, 1, 3600000);
		break;
	case O_SECRET_FILE: b->opts.secret_file = optarg; break;
	case O_INSECURE: b->opts.insecure = true; break;
	case 'h':
	case O_HELP: usage(stdout); exit(0);
	default: usage(stderr); exit(2);
	}
}

static enum mode parse_mode(struct bench *b, int argc, char **argv)
{
	unsigned m;

	if (optind >= argc) {
		usage(stderr);
		exit(2);
	}
	for (m = 0; m <= M_LEASE; m++)
		if (strcmp(argv[optind], mode_names[m]) == 0)
			break;
	if (m > M_LEASE) {
		fprintf(stderr, "cairn-bench: unknown command '%s'\n", argv[optind]);
		usage(stderr);
		exit(2);
	}
	if (m == M_RANGE) {
		if (optind + 1 >= argc || optind + 3 < argc) {
			fprintf(stderr, "cairn-bench: range: give KEY [END]\n");
			exit(2);
		}
		b->range_key = argv[optind + 1];
		b->range_end = optind + 2 < argc ? argv[optind + 2] : NULL;
	} else if (optind + 1 < argc) {
		fprintf(stderr, "cairn-bench: %s: unexpected argument '%s'\n",
		        argv[optind], argv[optind + 1]);
		exit(2);
	}
	return (enum mode)m;
}

/* Options may come before or after the command, as in etcd's tool. */
static void parse(struct bench *b, struct flags *f, int argc, char **argv)
{
	int c;

	f->endpoints = getenv("CAIRN_ENDPOINTS");
	while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1)
		parse_option(b, f, c);
	b->mode = parse_mode(b, argc, argv);
	if (f->endpoints == NULL || f->endpoints[0] == '\0')
		f->endpoints = "127.0.0.1:2379";
	b->per_stream = f->per_stream;
}

/* Defaults that depend on the workload. */
static void settle(struct bench *b)
{
	if (b->txn_ops == 0)
		b->txn_ops = b->mode == M_TXN_PUT ? 1 : 0;
	/* As etcd's tool: one key unless --key-space-size or --sequential-keys
	 * say otherwise; a transaction's puts need distinct keys, so txn-put
	 * spreads them over a large space by default. */
	if (b->key_space == 0)
		b->key_space = b->sequential ? b->total
		               : b->mode == M_TXN_PUT ? 1ull << 40 : 1;
	if (b->mode == M_TXN_PUT && b->key_space < b->txn_ops) {
		fprintf(stderr, "cairn-bench: txn-put: --key-space-size must be at "
		                "least --txn-ops (the puts of one transaction need "
		                "distinct keys)\n");
		exit(2);
	}
	if (b->mode == M_WATCH || b->mode == M_WATCH_LATENCY) {
		if (b->streams == 0)
			b->streams = b->n_conns;
		if (b->streams > b->n_conns)
			b->n_conns = b->streams;
		if (b->per_stream > 0)
			b->watchers = b->per_stream * b->streams;
		if (b->watchers == 0)
			b->watchers = 100;
		b->sequential = true;
		b->key_space = b->total;
	}
}

/* ---- run ----------------------------------------------------------------- */

static void open_conns(struct bench *b, struct endpoints *e)
{
	char list[MAX_ENDPOINTS * MAX_ENDPOINT_LEN];
	char err[256];
	unsigned i;

	for (i = 0; i < b->n_conns; i++) {
		rotated(e, i, list, sizeof list);
		if (cairn_open_async(&b->conns[i], b->loop, list, &b->opts, err,
		                     sizeof err) != 0) {
			fprintf(stderr, "cairn-bench: %s\n", err);
			exit(2);
		}
	}
}

static double cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void report(struct bench *b, double cpu)
{
	struct bench_summary s;
	double secs = (double)(b->end_ns - b->start_ns) / 1e9;

	memset(&s, 0, sizeof s);
	s.workload = mode_names[b->mode];
	s.seconds = secs > 0 ? secs : 1e-9;
	s.done = b->done;
	s.errors = b->errors;
	s.first_error = b->errors ? b->first_error : NULL;
	s.unit = b->mode == M_TXN_PUT ? "Txns/sec" : "Requests/sec";
	s.extra_rate = -1;
	if (b->mode == M_WATCH || b->mode == M_WATCH_LATENCY) {
		s.extra_rate = (double)b->events / s.seconds;
		s.extra_name = "Events/sec";
	}
	if (b->mode == M_WATCH_LATENCY)
		s.all = &b->all;
	s.generator_cpu = cpu;
	if (b->json)
		hist_report_json(stdout, &b->hist, &s);
	else
		hist_report_text(stdout, &b->hist, &s);
}

int main(int argc, char **argv)
{
	static struct bench b;
	struct flags f = {0};
	struct endpoints e;
	struct slot **slots;
	unsigned n_slots;
	double cpu0;
	unsigned i;

	b.n_conns = 1;
	b.clients = 1;
	b.total = 10000;
	b.key_size = 8;
	b.val_size = 256;
	b.rng = 0x9e3779b97f4a7c15ull;
	parse(&b, &f, argc, argv);
	settle(&b);
	split_endpoints(f.endpoints, &e);
	if (f.target_leader)
		find_leader(&e, &b.opts);
	b.progress = !b.json && isatty(STDERR_FILENO);
	b.loop = uv_default_loop();
	b.value = calloc(1, b.val_size + 1);
	b.conns = calloc(b.n_conns, sizeof *b.conns);
	n_slots = b.mode == M_WATCH_LATENCY ? 1 : b.clients;
	slots = calloc(n_slots, sizeof *slots);
	b.parked = calloc(n_slots, sizeof *b.parked);
	if (b.value == NULL || b.conns == NULL || slots == NULL || b.parked == NULL)
		die("%s", "out of memory");
	memset(b.value, 'v', b.val_size);
	open_conns(&b, &e);
	for (i = 0; i < n_slots; i++)
		slots[i] = slot_new(&b, i);
	uv_timer_init(b.loop, &b.tick);
	b.tick.data = &b;
	uv_timer_start(&b.tick, tick_cb, 200, 200);
	uv_timer_init(b.loop, &b.pace);
	b.pace.data = &b;
	if (b.rate > 0)
		uv_timer_start(&b.pace, pace_cb, 1, 1);
	cpu0 = cpu_seconds();
	if (b.mode == M_WATCH || b.mode == M_WATCH_LATENCY)
		start_watch_mode(&b, slots);
	else
		start_load(&b, slots, n_slots);
	uv_run(b.loop, UV_RUN_DEFAULT);
	if (b.progress)
		fputs("\r\033[K", stderr);
	report(&b, cpu_seconds() - cpu0);
	uv_close((uv_handle_t *)&b.tick, NULL);
	uv_close((uv_handle_t *)&b.pace, NULL);
	for (i = 0; i < b.n_conns; i++)
		cairn_close(b.conns[i]);
	uv_run(b.loop, UV_RUN_DEFAULT);
	for (i = 0; i < n_slots; i++) {
		free(slots[i]->keys);
		free(slots[i]->ids);
		free(slots[i]->ops);
		free(slots[i]);
	}
	free(slots);
	free(b.parked);
	free(b.conns);
	free(b.value);
	return b.errors > 0 ? 1 : 0;
}
