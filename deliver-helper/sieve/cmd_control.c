/* cmd_control.c — control commands of RFC 5228 section 3: require, if,
 * elsif, else, stop.
 *
 * require ["ext"...] enables extensions for the rest of the script; an
 * unknown capability is a compile error naming it (RFC 5228 3.2).  The
 * if/elsif/else chain is run by the interpreter (sv_interp.c); their
 * definitions here fix the grammar: one test, one block.
 */
#include <string.h>

#include "sv_int.h"

/* validate_require - each string must name a supported extension */
static int validate_require(struct sv_comp *c, struct sv_node *n)
{
	const struct sv_arg *a = sv_pos(n, 0);
	int ret = 0;
	for (size_t i = 0; i < a->n; i++) {
		int e = sv_ext_lookup(a->v[i].s);
		if (e < 0) {
			sv_error(c, a->v[i].line, a->v[i].col,
				 "require command: unknown Sieve capability '%s'", a->v[i].s);
			ret = -1;
			continue;
		}
		c->s->ext[e] = true;
		/* RFC 6131 extends vacation: requiring it makes vacation usable */
		if (e == EXT_VACATION_SECONDS)
			c->s->ext[EXT_VACATION] = true;
	}
	return ret;
}

const struct sv_def sv_def_require = {
	.name = "require", .pos = "l", .validate = validate_require,
};

const struct sv_def sv_def_if = {
	.name = "if", .block = 1, .subtests = 1,
};

const struct sv_def sv_def_elsif = {
	.name = "elsif", .block = 1, .subtests = 1,
};

const struct sv_def sv_def_else = {
	.name = "else", .block = 1,
};

/* exec_stop - RFC 5228 3.3: end all processing */
static int exec_stop(struct sv_run *r, struct sv_node *n)
{
	(void)n;
	r->stopped = true;
	return SV_STOP;
}

const struct sv_def sv_def_stop = {
	.name = "stop", .exec = exec_stop,
};
