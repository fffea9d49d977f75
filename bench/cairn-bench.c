/*
 * cairn-bench: load generator for cairn-store (put and range for now).
 *
 * One libuv loop drives every client: --conns client connections (libcairn
 * async clients), and --clients requests kept in flight across them, as
 * etcd's benchmark tool counts clients. Each request's latency goes into a
 * log-linear histogram (2^k buckets split into 64 linear sub-buckets, so
 * percentiles are within about 1.6% and memory does not grow with --total).
 *
 *   cairn-bench [--endpoints E] [--conns N] [--clients N] put [--total N]
 *               [--key-size N] [--val-size N] [--sequential-keys]
 *               [--key-space-size N]
 *   cairn-bench [...] range KEY [END] [--total N] [--consistency l|s]
 *   cairn-bench [...] watch [--watchers N] [--total N]
 *   cairn-bench [...] watch-latency [--watchers N] [--total N]
 *
 * The cluster secret comes from --secret-file or the environment
 * (CAIRN_SECRET_FILE) as for cairnctl; --insecure measures plaintext against
 * a store run with --insecure, the baseline of the secure channel's cost.
 *
 * watch: N watchers (on all keys, spread over the connections) and puts kept
 * --clients deep; reports events delivered per second (fan-out).
 * watch-latency: one put at a time; for each, the time from the put's
 * acknowledgement until every watcher has its event (0 if they all had it
 * before the acknowledgement came back).
 */
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "cairn.h"

#define SUB_BITS 6
#define SUB (1u << SUB_BITS)
#define BUCKETS 40

struct histogram {
	uint64_t counts[BUCKETS][SUB];
	uint64_t n;
	uint64_t min;
	uint64_t max;
	double sum;
	double sumsq;
};

static unsigned bucket_of(uint64_t v, unsigned *sub)
{
	unsigned b = 0;

	while ((v >> b) >= SUB)
		b++;
	*sub = (unsigned)(v >> b);
	return b;
}

static void hist_add(struct histogram *h, uint64_t ns)
{
	unsigned sub;
	unsigned b = bucket_of(ns, &sub);

	if (b >= BUCKETS)
		b = BUCKETS - 1, sub = SUB - 1;
	h->counts[b][sub]++;
	if (h->n == 0 || ns < h->min)
		h->min = ns;
	if (ns > h->max)
		h->max = ns;
	h->n++;
	h->sum += (double)ns;
	h->sumsq += (double)ns * (double)ns;
}

static uint64_t hist_percentile(const struct histogram *h, double p)
{
	uint64_t want = (uint64_t)ceil(p / 100.0 * (double)h->n);
	uint64_t seen = 0;
	unsigned b;
	unsigned s;

	if (want == 0)
		want = 1;
	for (b = 0; b < BUCKETS; b++) {
		for (s = 0; s < SUB; s++) {
			seen += h->counts[b][s];
			if (seen >= want)
				return ((uint64_t)s << b) + ((1ull << b) >> 1);
		}
	}
	return h->max;
}

struct bench {
	uv_loop_t *loop;
	struct cairn_options copts; /* the secret: --secret-file, --insecure */
	cairn_client **conns;
	unsigned n_conns;
	unsigned clients;
	uint64_t total;
	uint64_t issued;
	uint64_t done;
	uint64_t errors;
	uint64_t kvs; /* pairs returned by ranges, to show reads did read */
	int first_error;
	char first_errmsg[256];
	bool put;
	int watch_mode; /* 0, or 1 fan-out, 2 latency */
	unsigned watchers;
	unsigned watchers_ready;
	uint64_t events;
	uint64_t expected_events;
	int64_t lat_rev;      /* latency: the revision of the put in flight */
	uint64_t lat_acked;   /* its acknowledgement time, 0 while waiting */
	uint64_t lat_seen;    /* watchers that have its event */
	uint64_t lat_last;    /* when the last of them got it */
	struct slot *lat_slot;
	uv_timer_t alive; /* watches hold no loop reference: this one does */
	unsigned key_size;
	unsigned val_size;
	bool sequential;
	uint64_t key_space;
	uint8_t *value;
	const char *range_key;
	const char *range_end;
	bool serializable;
	struct histogram hist;
	uint64_t start_ns;
	uint64_t rng;
};

struct slot {
	struct bench *b;
	cairn_client *c;
	uint64_t started;
	uint8_t key[256];
};

static uint64_t next_rand(struct bench *b)
{
	b->rng ^= b->rng << 13;
	b->rng ^= b->rng >> 7;
	b->rng ^= b->rng << 17;
	return b->rng;
}

static void issue(struct slot *s);

/* Latency mode: the put in flight is done once acknowledged and seen by
 * every watcher; then the next one goes. */
static void latency_step(struct bench *b)
{
	uint64_t lat;

	if (b->lat_acked == 0 || b->lat_seen < b->watchers)
		return;
	lat = b->lat_last > b->lat_acked ? b->lat_last - b->lat_acked : 0;
	hist_add(&b->hist, lat);
	b->done++;
	b->lat_acked = 0;
	b->lat_seen = 0;
	b->lat_rev = 0;
	if (b->done == b->total) {
		uv_stop(b->loop);
		return;
	}
	issue(b->lat_slot);
}

static void watch_cb(cairn_client *c, cairn_watch *w,
                     const struct cairn_watch_update *u, void *arg)
{
	struct bench *b = arg;
	size_t i;

	(void)c;
	(void)w;
	if (u->err != 0) {
		if (u->err != CAIRN_ECANCELED && b->errors++ == 0) {
			b->first_error = u->err;
			snprintf(b->first_errmsg, sizeof b->first_errmsg, "%s",
			         u->errmsg ? u->errmsg : cairn_strerror(u->err));
		}
		return;
	}
	b->events += u->n_events;
	for (i = 0; b->watch_mode == 2 && i < u->n_events; i++) {
		if (u->events[i].kv.mod_revision == b->lat_rev ||
		    (b->lat_rev == 0 && b->lat_acked == 0)) {
			/* An event may beat the acknowledgement: count it by
			 * revision once the put's revision is known. */
			b->lat_seen++;
			b->lat_last = uv_hrtime();
		}
	}
	if (b->watch_mode == 2)
		latency_step(b);
	if (b->watch_mode == 1 && b->events >= b->expected_events) {
		b->done = b->total;
		uv_stop(b->loop);
	}
}

static void done_cb(cairn_client *c, struct cairn_result *res, void *arg)
{
	struct slot *s = arg;
	struct bench *b = s->b;

	(void)c;
	hist_add(&b->hist, uv_hrtime() - s->started);
	if (res->err != 0) {
		if (b->errors++ == 0) {
			b->first_error = res->err;
			snprintf(b->first_errmsg, sizeof b->first_errmsg, "%s",
			         res->errmsg ? res->errmsg : cairn_strerror(res->err));
		}
	}
	b->kvs += res->n_kvs;
	if (b->watch_mode == 2) {
		b->lat_rev = res->header.revision;
		b->lat_acked = uv_hrtime();
		cairn_result_free(res);
		latency_step(b);
		return;
	}
	cairn_result_free(res);
	if (b->watch_mode == 0 && ++b->done == b->total)
		uv_stop(b->loop);
	if (b->issued < b->total)
		issue(s);
	else
		free(s);
}

static void make_key(struct bench *b, uint8_t *key)
{
	uint64_t n = b->sequential ? b->issued % b->key_space
	                           : next_rand(b) % b->key_space;
	unsigned i;

	memset(key, '0', b->key_size);
	for (i = 0; i < b->key_size && i < 20; i++) {
		key[b->key_size - 1 - i] = (uint8_t)('0' + n % 10);
		n /= 10;
	}
}

static void issue(struct slot *s)
{
	struct bench *b = s->b;
	struct cairn_op op;
	int rv;

	memset(&op, 0, sizeof op);
	if (b->put || b->watch_mode != 0) {
		make_key(b, s->key);
		op.type = CAIRN_OP_PUT;
		op.key = s->key;
		op.key_len = b->key_size;
		op.value = b->value;
		op.value_len = b->val_size;
	} else {
		op.type = CAIRN_OP_RANGE;
		op.key = b->range_key;
		op.key_len = strlen(b->range_key);
		op.end = b->range_end;
		op.end_len = b->range_end ? strlen(b->range_end) : 0;
		op.serializable = b->serializable;
	}
	b->issued++;
	s->started = uv_hrtime();
	rv = cairn_submit(s->c, &op, done_cb, s);
	if (rv != 0) {
		fprintf(stderr, "cairn-bench: submit: %s\n", cairn_strerror(rv));
		exit(1);
	}
}

static void report(const struct bench *b)
{
	static const double ps[] = {10, 25, 50, 75, 90, 95, 99, 99.9};
	double secs = (double)(uv_hrtime() - b->start_ns) / 1e9;
	double avg = b->hist.sum / (double)b->hist.n;
	double var = b->hist.sumsq / (double)b->hist.n - avg * avg;
	size_t i;

	printf("\nSummary:\n");
	printf("  Total:\t%.4f secs.\n", secs);
	printf("  Slowest:\t%.4f secs.\n", (double)b->hist.max / 1e9);
	printf("  Fastest:\t%.4f secs.\n", (double)b->hist.min / 1e9);
	printf("  Average:\t%.4f secs.\n", avg / 1e9);
	printf("  Stddev:\t%.4f secs.\n", sqrt(var > 0 ? var : 0) / 1e9);
	printf("  Requests/sec:\t%.2f\n", (double)b->done / secs);
	if (b->watch_mode != 0)
		printf("  Watchers:\t%u\n  Events/sec:\t%.2f\n", b->watchers,
		       (double)b->events / secs);
	if (!b->put && b->watch_mode == 0)
		printf("  Pairs read:\t%" PRIu64 "\n", b->kvs);
	printf("\nLatency distribution:\n");
	for (i = 0; i < sizeof ps / sizeof ps[0]; i++)
		printf("  %g%% in %.4f secs.\n", ps[i],
		       (double)hist_percentile(&b->hist, ps[i]) / 1e9);
	if (b->errors > 0)
		printf("\n%" PRIu64 " errors; first: %s: %s\n", b->errors,
		       cairn_strerror(b->first_error), b->first_errmsg);
}

static void usage(FILE *out)
{
	fprintf(out,
	        "Usage: cairn-bench [GLOBAL OPTIONS] put [--total N] [--key-size N]\n"
	        "         [--val-size N] [--sequential-keys] [--key-space-size N]\n"
	        "       cairn-bench [GLOBAL OPTIONS] range KEY [END] [--total N]\n"
	        "         [--consistency l|s]\n"
	        "       cairn-bench [GLOBAL OPTIONS] watch|watch-latency [--watchers N]\n"
	        "         [--total N] [--val-size N]\n"
	        "Global options:\n"
	        "  --endpoints E   comma-separated store endpoints (default\n"
	        "                  $CAIRN_ENDPOINTS or 127.0.0.1:2379)\n"
	        "  --conns N       client connections (default 1)\n"
	        "  --clients N     requests in flight (default 1)\n"
	        "  --secret-file F the cluster secret (default $CAIRN_SECRET_FILE)\n"
	        "  --insecure      plaintext, for a store run with --insecure\n");
}

static unsigned long long num(const char *flag, const char *v, unsigned long long min,
                              unsigned long long max)
{
	char *end;
	unsigned long long n = strtoull(v, &end, 10);

	if (*v == '\0' || *end != '\0' || n < min || n > max) {
		fprintf(stderr, "cairn-bench: %s: '%s' is not a number from %llu to %llu\n",
		        flag, v, min, max);
		exit(2);
	}
	return n;
}

enum { O_ENDPOINTS = 1, O_CONNS, O_CLIENTS, O_TOTAL, O_KEYSIZE, O_VALSIZE,
       O_SEQ, O_KEYSPACE, O_CONSISTENCY, O_HELP, O_WATCHERS, O_SECRET_FILE,
       O_INSECURE };

static const struct option options[] = {
	{"endpoints", required_argument, NULL, O_ENDPOINTS},
	{"conns", required_argument, NULL, O_CONNS},
	{"clients", required_argument, NULL, O_CLIENTS},
	{"total", required_argument, NULL, O_TOTAL},
	{"key-size", required_argument, NULL, O_KEYSIZE},
	{"val-size", required_argument, NULL, O_VALSIZE},
	{"sequential-keys", no_argument, NULL, O_SEQ},
	{"key-space-size", required_argument, NULL, O_KEYSPACE},
	{"consistency", required_argument, NULL, O_CONSISTENCY},
	{"help", no_argument, NULL, O_HELP},
	{"watchers", required_argument, NULL, O_WATCHERS},
	{"secret-file", required_argument, NULL, O_SECRET_FILE},
	{"insecure", no_argument, NULL, O_INSECURE},
	{NULL, 0, NULL, 0},
};

static const char *parse(struct bench *b, int argc, char **argv)
{
	const char *endpoints = getenv("CAIRN_ENDPOINTS");
	int c;

	while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		switch (c) {
		case O_ENDPOINTS: endpoints = optarg; break;
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
		case O_WATCHERS: b->watchers = (unsigned)num("--watchers", optarg, 1, 100000); break;
		case O_SECRET_FILE: b->copts.secret_file = optarg; break;
		case O_INSECURE: b->copts.insecure = true; break;
		case O_HELP: usage(stdout); exit(0);
		default: usage(stderr); exit(2);
		}
	}
	if (optind >= argc) {
		usage(stderr);
		exit(2);
	}
	if (strcmp(argv[optind], "put") == 0) {
		b->put = true;
	} else if (strcmp(argv[optind], "watch") == 0) {
		b->watch_mode = 1;
	} else if (strcmp(argv[optind], "watch-latency") == 0) {
		b->watch_mode = 2;
	} else if (strcmp(argv[optind], "range") == 0 && optind + 1 < argc) {
		b->range_key = argv[optind + 1];
		b->range_end = optind + 2 < argc ? argv[optind + 2] : NULL;
	} else {
		fprintf(stderr, "cairn-bench: unknown command or missing KEY\n");
		usage(stderr);
		exit(2);
	}
	return endpoints != NULL ? endpoints : "127.0.0.1:2379";
}

/* Waiting for watch events is not, for libuv, pending work: a ticking timer
 * keeps the loop running until the run is done (uv_stop). */
static void keep_alive_cb(uv_timer_t *t)
{
	(void)t;
}

static void start_load(struct bench *b)
{
	unsigned i;
	unsigned n = b->watch_mode == 2 ? 1 : b->clients;

	b->start_ns = uv_hrtime();
	for (i = 0; i < n && b->issued < b->total; i++) {
		struct slot *s = calloc(1, sizeof *s);
		if (s == NULL)
			exit(1);
		s->b = b;
		s->c = b->conns[i % b->n_conns];
		b->lat_slot = s;
		issue(s);
	}
}

/* Watch modes: learn the revision, start every watcher just after it (so no
 * event is missed however long creating them takes), then load. */
static void revision_cb(cairn_client *c, struct cairn_result *res, void *arg)
{
	struct bench *b = arg;
	struct cairn_watch_opts o;
	cairn_watch *w;
	unsigned i;

	(void)c;
	if (res->err != 0) {
		fprintf(stderr, "cairn-bench: %s\n", res->errmsg);
		exit(1);
	}
	memset(&o, 0, sizeof o);
	o.key = "\0";
	o.key_len = 1;
	o.end = "\0";
	o.end_len = 1;
	o.start_revision = res->header.revision + 1;
	cairn_result_free(res);
	for (i = 0; i < b->watchers; i++) {
		if (cairn_watch_start(b->conns[i % b->n_conns], &o, watch_cb, b, &w) !=
		    0) {
			fprintf(stderr, "cairn-bench: cannot start watcher %u\n", i);
			exit(1);
		}
	}
	b->expected_events = (uint64_t)b->watchers * b->total;
	start_load(b);
}

static void start_watch_mode(struct bench *b)
{
	struct cairn_op op;

	memset(&op, 0, sizeof op);
	op.type = CAIRN_OP_RANGE;
	op.key = "\0";
	op.key_len = 1;
	op.count_only = true;
	if (cairn_submit(b->conns[0], &op, revision_cb, b) != 0)
		exit(1);
}

int main(int argc, char **argv)
{
	static struct bench b;
	char err[256];
	const char *endpoints;
	unsigned i;
	int rv;

	b.n_conns = 1;
	b.clients = 1;
	b.total = 10000;
	b.key_size = 8;
	b.val_size = 256;
	b.key_space = 1;
	b.rng = 0x9e3779b97f4a7c15ull;
	endpoints = parse(&b, argc, argv);
	if (b.put && b.key_space == 1 && b.sequential)
		b.key_space = b.total;
	if (b.put && !b.sequential && b.key_space == 1)
		b.key_space = 1ull << 40;
	b.loop = uv_default_loop();
	b.value = calloc(1, b.val_size + 1);
	b.conns = calloc(b.n_conns, sizeof *b.conns);
	if (b.value == NULL || b.conns == NULL)
		return 1;
	memset(b.value, 'v', b.val_size);
	for (i = 0; i < b.n_conns; i++) {
		rv = cairn_open_async(&b.conns[i], b.loop, endpoints, &b.copts, err,
		                      sizeof err);
		if (rv != 0) {
			fprintf(stderr, "cairn-bench: %s\n", err);
			return 1;
		}
	}
	if (b.watch_mode != 0) {
		uv_timer_init(b.loop, &b.alive);
		uv_timer_start(&b.alive, keep_alive_cb, 1000, 1000);
		if (b.watchers == 0)
			b.watchers = 100;
		b.sequential = true;
		b.key_space = b.total;
		start_watch_mode(&b);
	} else {
		start_load(&b);
	}
	uv_run(b.loop, UV_RUN_DEFAULT);
	if (b.watch_mode != 0)
		uv_close((uv_handle_t *)&b.alive, NULL);
	report(&b);
	for (i = 0; i < b.n_conns; i++)
		cairn_close(b.conns[i]);
	uv_run(b.loop, UV_RUN_DEFAULT);
	free(b.conns);
	free(b.value);
	return b.errors > 0 ? 1 : 0;
}
