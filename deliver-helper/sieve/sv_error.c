/* sv_error.c — the engine's errors: compile errors, run-time errors and
 * warnings, and the run's step budget (exceeding it is a run-time error).
 *
 * What for: one place for the "NAME:LINE:COL: error: MSG" lines that every
 * layer (lexer, parser, validator, interpreter, commands) records; the
 * lowest layer of the engine, depending on nothing else in it.
 * How it fails: at most SV_MAX_ERRORS compile errors are kept (all counted);
 * the first run-time error marks the run failed, later ones are dropped;
 * at most 32 warnings are kept.  Messages are cleaned of control bytes.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hm_util.h"
#include "sv_int.h"

void sv_error(struct sv_comp *c, int line, int col, const char *fmt, ...)
{
	c->nerr++;
	if (c->nerr > SV_MAX_ERRORS)
		return;
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	char clean[1100];
	hm_log_clean(clean, sizeof clean, msg, strlen(msg));
	hm_buf_printf(&c->err, "%s%s:%d:%d: error: %s", c->err.len ? "\n" : "",
		      c->s->name, line, col, clean);
}

int sv_rt_error(struct sv_run *r, const struct sv_node *n, const char *fmt, ...)
{
	if (r->failed)
		return SV_ERR;
	r->failed = true;
	char msg[1024], clean[1100];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	hm_log_clean(clean, sizeof clean, msg, strlen(msg));
	hm_buf_printf(&r->errbuf, "%s:%d:%d: error: %s",
		      r->frame ? r->frame->s->name : "sieve", n ? n->line : 0,
		      n ? n->col : 0, clean);
	return SV_ERR;
}

void sv_rt_warn(struct sv_run *r, const struct sv_node *n, const char *fmt, ...)
{
	char msg[1024], clean[1100], line[1300];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	hm_log_clean(clean, sizeof clean, msg, strlen(msg));
	snprintf(line, sizeof line, "%s:%d:%d: warning: %s",
		 r->frame ? r->frame->s->name : "sieve", n ? n->line : 0, n ? n->col : 0,
		 clean);
	size_t k = 0;
	while (r->res->warnings && r->res->warnings[k])
		k++;
	if (k >= 32)
		return;
	char **w = realloc(r->res->warnings, (k + 2) * sizeof *w);
	if (!w)
		return;
	r->res->warnings = w;
	w[k] = strdup(line);
	w[k + 1] = NULL;
}

int sv_step(struct sv_run *r, const struct sv_node *n, uint64_t cost)
{
	r->steps += cost;
	if (r->steps > r->lim.max_steps)
		return sv_rt_error(r, n, "script exceeded its CPU budget (%llu steps)",
				   (unsigned long long)r->lim.max_steps);
	return 0;
}
