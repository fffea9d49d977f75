/* hist: cairn-bench's latency histogram and its reports (etcd's layout, or JSON). */
#ifndef CAIRN_BENCH_HIST_H
#define CAIRN_BENCH_HIST_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/*
 * Log-linear buckets: values (nanoseconds) are split by their power of two,
 * each power into HIST_SUB linear sub-buckets, so a percentile is within about
 * 1.6% of the true sample and memory does not grow with the number of samples
 * (as HdrHistogram does, with fixed precision).
 */
#define HIST_SUB_BITS 6
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_BUCKETS 40

struct histogram {
	uint64_t counts[HIST_BUCKETS][HIST_SUB];
	uint64_t n;
	uint64_t min;
	uint64_t max;
	double sum;
	double sumsq;
};

void hist_add(struct histogram *h, uint64_t ns);

/* The value at percentile p (0-100), or 0 with no samples. */
uint64_t hist_percentile(const struct histogram *h, double p);

/* Samples in [lo, hi) nanoseconds. */
uint64_t hist_count_between(const struct histogram *h, uint64_t lo, uint64_t hi);

/* What one run measured, for the report. */
struct bench_summary {
	const char *workload;
	double seconds;  /* wall time of the measured phase */
	uint64_t done;   /* requests completed (errors included) */
	uint64_t errors;
	const char *first_error; /* NULL when none */
	const char *unit;        /* "Requests/sec" or "Events/sec"... */
	double extra_rate;       /* events/s in watch modes; < 0 when none */
	const char *extra_name;
	const struct histogram *all; /* watch-latency: until every watcher; or NULL */
	double generator_cpu; /* seconds of CPU cairn-bench itself used */
};

/* etcd benchmark's text layout: summary, histogram, percentiles. */
void hist_report_text(FILE *out, const struct histogram *h,
                      const struct bench_summary *s);

/* One JSON object on one line. */
void hist_report_json(FILE *out, const struct histogram *h,
                      const struct bench_summary *s);

#endif
