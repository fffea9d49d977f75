/*
 * cairn-check: runs the fault-injection suite's checkers on a history file.
 *
 *   cairn-check [--lin] [--watch] [--durable] [--max-steps N] [--no-revs] FILE
 *
 * With none of --lin, --watch, --durable, all three run. Each prints one
 * line ("linearizability: ok (N ops, K keys)", "... VIOLATION ...",
 * "... undecided ...") and, below it, what is wrong. Exit status: 0 when
 * every checker run says ok, 1 when one found a violation, 2 on a usage or
 * parse error or when a checker could not decide (a step or memory budget
 * ran out, or the history lacks the member records a checker needs).
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "durchk.h"
#include "history.h"
#include "linchk.h"
#include "watchchk.h"

enum { EXIT_OK = 0, EXIT_VIOLATION = 1, EXIT_TROUBLE = 2 };

struct args {
	bool lin, watch, durable;
	struct linchk_opts lin_opts;
	const char *file;
};

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: cairn-check [--lin] [--watch] [--durable] "
	        "[--max-steps N] [--no-revs] FILE\n"
	        "  --lin          linearizability of the ops, key by key\n"
	        "  --watch        watchers and acknowledged writes against the "
	        "members' reference history\n"
	        "  --durable      members' final keyspaces and revisions\n"
	        "  --max-steps N  search steps per key before the "
	        "linearizability check gives up (default %llu)\n"
	        "  --no-revs      check linearizability of values only, "
	        "not revisions\n"
	        "All three checks run when none is named. Exit status: 0 all "
	        "ok, 1 violation, 2 usage, parse error or undecided.\n",
	        (unsigned long long)LINCHK_DEFAULT_STEPS);
}

static bool parse_steps(const char *s, uint64_t *out)
{
	char *end;

	if (s[0] < '0' || s[0] > '9')
		return false;
	*out = strtoull(s, &end, 10);
	return *end == '\0' && *out > 0;
}

static int parse_args(int argc, char **argv, struct args *a)
{
	static const struct option opts[] = {
	    {"lin", no_argument, NULL, 'l'},
	    {"watch", no_argument, NULL, 'w'},
	    {"durable", no_argument, NULL, 'd'},
	    {"max-steps", required_argument, NULL, 's'},
	    {"no-revs", no_argument, NULL, 'r'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int c;

	memset(a, 0, sizeof(*a));
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			a->lin = true;
			break;
		case 'w':
			a->watch = true;
			break;
		case 'd':
			a->durable = true;
			break;
		case 's':
			if (!parse_steps(optarg, &a->lin_opts.max_steps)) {
				fprintf(stderr, "cairn-check: --max-steps "
				                "wants a positive number\n");
				return -1;
			}
			break;
		case 'r':
			a->lin_opts.ignore_revs = true;
			break;
		case 'h':
			usage(stdout);
			exit(EXIT_OK);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return -1;
	}
	a->file = argv[optind];
	if (!a->lin && !a->watch && !a->durable)
		a->lin = a->watch = a->durable = true;
	return 0;
}

/* Keeps a checker's violations aside, so its verdict line can come first. */
struct held {
	char *text;
	size_t len;
	FILE *f;
};

static FILE *hold(struct held *t)
{
	t->text = NULL;
	t->len = 0;
	t->f = open_memstream(&t->text, &t->len);
	return t->f;
}

static void release(struct held *t)
{
	fclose(t->f);
	fwrite(t->text, 1, t->len, stdout);
	free(t->text);
}

static int nomem(struct held *t)
{
	if (t != NULL) {
		fclose(t->f);
		free(t->text);
	}
	fprintf(stderr, "cairn-check: out of memory\n");
	return EXIT_TROUBLE;
}

static int run_lin(const struct history *h, const struct args *a)
{
	struct linchk_result res;
	int rv;

	if (linchk_run(h, &a->lin_opts, &res) != 0)
		return nomem(NULL);
	linchk_print(h, &res, stdout);
	rv = res.verdict == LINCHK_OK          ? EXIT_OK
	     : res.verdict == LINCHK_VIOLATION ? EXIT_VIOLATION
	                                       : EXIT_TROUBLE;
	linchk_result_free(&res);
	return rv;
}

static int run_watch(const struct history *h)
{
	struct watchchk_result res;
	struct held t;

	if (hold(&t) == NULL)
		return nomem(NULL);
	if (watchchk_run(h, t.f, &res) != 0)
		return nomem(&t);
	watchchk_print(&res, stdout);
	release(&t);
	if (res.no_reference)
		return EXIT_TROUBLE;
	return res.report.count ? EXIT_VIOLATION : EXIT_OK;
}

static int run_durable(const struct history *h)
{
	struct durchk_result res;
	struct held t;

	if (hold(&t) == NULL)
		return nomem(NULL);
	if (durchk_run(h, t.f, &res) != 0)
		return nomem(&t);
	durchk_print(&res, stdout);
	release(&t);
	if (res.no_members)
		return EXIT_TROUBLE;
	return res.report.count ? EXIT_VIOLATION : EXIT_OK;
}

/* The exit status of several checks: a violation wins over trouble. */
static int worst(int a, int b)
{
	if (a == EXIT_VIOLATION || b == EXIT_VIOLATION)
		return EXIT_VIOLATION;
	return a > b ? a : b;
}

int main(int argc, char **argv)
{
	struct history *h;
	struct args a;
	char err[1024];
	int rv = EXIT_OK;

	if (parse_args(argc, argv, &a) != 0)
		return EXIT_TROUBLE;
	if (history_load(a.file, &h, err, sizeof(err)) != 0) {
		fprintf(stderr, "cairn-check: %s\n", err);
		return EXIT_TROUBLE;
	}
	if (a.lin)
		rv = worst(rv, run_lin(h, &a));
	if (a.watch)
		rv = worst(rv, run_watch(h));
	if (a.durable)
		rv = worst(rv, run_durable(h));
	history_free(h);
	return rv;
}
