/* log: one line per message on stderr: time, level, prefix (the member), text. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int log_level = LOG_INFO;
static char log_prefix[64];

static const char *const names[] = {"error", "warn", "info", "debug"};

int log_parse_level(const char *s)
{
	int i;

	for (i = 0; i <= LOG_DEBUG; i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	return -1;
}

void log_set_prefix(const char *prefix)
{
	snprintf(log_prefix, sizeof log_prefix, "%s", prefix);
}

void log_msg(int level, const char *fmt, ...)
{
	char line[1024];
	char stamp[32];
	struct timespec ts;
	struct tm tm;
	va_list ap;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s.%03ldZ %-5s %s%s%s\n", stamp, ts.tv_nsec / 1000000,
	        names[level < 0 ? 0 : level > LOG_DEBUG ? LOG_DEBUG : level],
	        log_prefix, log_prefix[0] ? ": " : "", line);
}
