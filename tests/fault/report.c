/* report: collecting violations (see report.h). */
#include "report.h"

#include <inttypes.h>
#include <stdarg.h>

void report_init(struct report *r, FILE *out)
{
	r->out = out;
	r->count = 0;
	r->kinds = 0;
	r->first_line = 0;
	r->first_kind = -1;
}

void report_add(struct report *r, int kind, uint32_t line, const char *fmt, ...)
{
	va_list ap;

	if (r->count == 0) {
		r->first_line = line;
		r->first_kind = kind;
	}
	r->count++;
	r->kinds |= (uint32_t)1 << (kind & 31);
	if (r->out == NULL || r->count > REPORT_PRINT)
		return;
	if (line != 0)
		fprintf(r->out, "  line %" PRIu32 ": ", line);
	else
		fprintf(r->out, "  ");
	va_start(ap, fmt);
	vfprintf(r->out, fmt, ap);
	va_end(ap);
	fputc('\n', r->out);
}

void report_finish(const struct report *r)
{
	if (r->out != NULL && r->count > REPORT_PRINT)
		fprintf(r->out, "  ... and %zu more\n",
		        r->count - REPORT_PRINT);
}
