/*
 * hist: cairn-bench's latency histogram and its reports.
 *
 * The text report follows etcd's benchmark tool so results read side by
 * side: a summary (total, slowest, fastest, average, stddev, rate), a
 * ten-bar response time histogram between the fastest and the slowest
 * sample, and the 10/25/50/75/90/95/99/99.9 percentiles.
 */
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "hist.h"

static const double percentiles[] = {10, 25, 50, 75, 90, 95, 99, 99.9};
#define N_PERCENTILES (sizeof percentiles / sizeof percentiles[0])

static unsigned bucket_of(uint64_t v, unsigned *sub)
{
	unsigned b = 0;

	while ((v >> b) >= HIST_SUB)
		b++;
	*sub = (unsigned)(v >> b);
	return b;
}

/* The middle of bucket b's sub-bucket s, in nanoseconds. */
static uint64_t value_of(unsigned b, unsigned s)
{
	return ((uint64_t)s << b) + ((1ull << b) >> 1);
}

void hist_add(struct histogram *h, uint64_t ns)
{
	unsigned sub;
	unsigned b = bucket_of(ns, &sub);

	if (b >= HIST_BUCKETS)
		b = HIST_BUCKETS - 1, sub = HIST_SUB - 1;
	h->counts[b][sub]++;
	if (h->n == 0 || ns < h->min)
		h->min = ns;
	if (ns > h->max)
		h->max = ns;
	h->n++;
	h->sum += (double)ns;
	h->sumsq += (double)ns * (double)ns;
}

uint64_t hist_percentile(const struct histogram *h, double p)
{
	uint64_t want = (uint64_t)ceil(p / 100.0 * (double)h->n);
	uint64_t seen = 0;
	uint64_t v;
	unsigned b;
	unsigned s;

	if (h->n == 0)
		return 0;
	if (want == 0)
		want = 1;
	for (b = 0; b < HIST_BUCKETS; b++) {
		for (s = 0; s < HIST_SUB; s++) {
			seen += h->counts[b][s];
			if (seen < want)
				continue;
			v = value_of(b, s);
			return v < h->min ? h->min : v > h->max ? h->max : v;
		}
	}
	return h->max;
}

uint64_t hist_count_between(const struct histogram *h, uint64_t lo, uint64_t hi)
{
	uint64_t n = 0;
	uint64_t v;
	unsigned b;
	unsigned s;

	for (b = 0; b < HIST_BUCKETS; b++) {
		for (s = 0; s < HIST_SUB; s++) {
			v = value_of(b, s);
			if (h->counts[b][s] != 0 && v >= lo && v < hi)
				n += h->counts[b][s];
		}
	}
	return n;
}

static double mean(const struct histogram *h)
{
	return h->n ? h->sum / (double)h->n : 0;
}

static double stddev(const struct histogram *h)
{
	double m = mean(h);
	double var = h->n ? h->sumsq / (double)h->n - m * m : 0;

	return sqrt(var > 0 ? var : 0);
}

/* Eleven marks from fastest to slowest, as etcd draws them: a sample counts
 * at the first mark not below it. A sample stands for its sub-bucket's lower
 * bound (clamped into [min, max]), so the fastest counts at the first mark. */
static void print_bars(FILE *out, const struct histogram *h)
{
	uint64_t counts[11] = {0};
	uint64_t top = 0;
	double step = (double)(h->max - h->min) / 10.0;
	unsigned b, s, i, j, bar;
	uint64_t v;

	for (b = 0; b < HIST_BUCKETS; b++) {
		for (s = 0; s < HIST_SUB; s++) {
			if (h->counts[b][s] == 0)
				continue;
			v = (uint64_t)s << b;
			v = v < h->min ? h->min : v > h->max ? h->max : v;
			i = step > 0 ? (unsigned)ceil((double)(v - h->min) / step) : 0;
			counts[i > 10 ? 10 : i] += h->counts[b][s];
		}
	}
	for (i = 0; i <= 10; i++)
		top = counts[i] > top ? counts[i] : top;
	fprintf(out, "\nResponse time histogram:\n");
	for (i = 0; i <= 10; i++) {
		bar = top ? (unsigned)(counts[i] * 40 / top) : 0;
		fprintf(out, "  %.4f [%" PRIu64 "]\t|",
		        ((double)h->min + step * i) / 1e9, counts[i]);
		for (j = 0; j < bar; j++)
			fputs("\xe2\x88\x8e", out); /* U+220E, etcd's bar */
		fputc('\n', out);
	}
}

void hist_report_text(FILE *out, const struct histogram *h,
                      const struct bench_summary *s)
{
	size_t i;

	fprintf(out, "\nSummary:\n");
	fprintf(out, "  Total:\t%.4f secs.\n", s->seconds);
	fprintf(out, "  Slowest:\t%.4f secs.\n", (double)h->max / 1e9);
	fprintf(out, "  Fastest:\t%.4f secs.\n", (double)h->min / 1e9);
	fprintf(out, "  Average:\t%.4f secs.\n", mean(h) / 1e9);
	fprintf(out, "  Stddev:\t%.4f secs.\n", stddev(h) / 1e9);
	fprintf(out, "  %s:\t%.4f\n", s->unit, (double)s->done / s->seconds);
	if (s->extra_rate >= 0)
		fprintf(out, "  %s:\t%.4f\n", s->extra_name, s->extra_rate);
	if (h->n > 0)
		print_bars(out, h);
	fprintf(out, "\nLatency distribution:\n");
	for (i = 0; i < N_PERCENTILES; i++)
		fprintf(out, "  %g%% in %.4f secs.\n", percentiles[i],
		        (double)hist_percentile(h, percentiles[i]) / 1e9);
	if (s->all != NULL && s->all->n > 0) {
		fprintf(out, "\nUntil every watcher had the event:\n");
		for (i = 0; i < N_PERCENTILES; i++)
			fprintf(out, "  %g%% in %.4f secs.\n", percentiles[i],
			        (double)hist_percentile(s->all, percentiles[i]) / 1e9);
	}
	fprintf(out, "\nGenerator CPU:\t%.2f secs. (%.0f%% of one core)\n",
	        s->generator_cpu, 100.0 * s->generator_cpu / s->seconds);
	if (s->errors > 0)
		fprintf(out, "\n%" PRIu64 " errors; first: %s\n", s->errors,
		        s->first_error ? s->first_error : "?");
}

static void json_percentiles(FILE *out, const char *name,
                             const struct histogram *h)
{
	size_t i;

	fprintf(out, ",\"%s\":{", name);
	for (i = 0; i < N_PERCENTILES; i++)
		fprintf(out, "%s\"%g\":%.6f", i ? "," : "", percentiles[i],
		        (double)hist_percentile(h, percentiles[i]) / 1e6);
	fputc('}', out);
}

static void json_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(out, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(out, "\\u%04x", (unsigned)(unsigned char)*s);
		else
			fputc(*s, out);
	}
	fputc('"', out);
}

void hist_report_json(FILE *out, const struct histogram *h,
                      const struct bench_summary *s)
{
	fprintf(out, "{\"workload\":");
	json_string(out, s->workload);
	fprintf(out, ",\"seconds\":%.6f,\"requests\":%" PRIu64 ",\"errors\":%" PRIu64
	        ",\"rate\":%.3f,\"rate_unit\":",
	        s->seconds, s->done, s->errors, (double)s->done / s->seconds);
	json_string(out, s->unit);
	if (s->extra_rate >= 0) {
		fprintf(out, ",\"extra_rate\":%.3f,\"extra_unit\":", s->extra_rate);
		json_string(out, s->extra_name);
	}
	fprintf(out, ",\"generator_cpu_s\":%.3f", s->generator_cpu);
	fprintf(out, ",\"slowest_ms\":%.6f,\"fastest_ms\":%.6f,\"average_ms\":%.6f"
	        ",\"stddev_ms\":%.6f",
	        (double)h->max / 1e6, (double)h->min / 1e6, mean(h) / 1e6,
	        stddev(h) / 1e6);
	json_percentiles(out, "percentiles_ms", h);
	if (s->all != NULL && s->all->n > 0)
		json_percentiles(out, "all_watchers_percentiles_ms", s->all);
	if (s->first_error != NULL) {
		fprintf(out, ",\"first_error\":");
		json_string(out, s->first_error);
	}
	fprintf(out, "}\n");
}
