/* ext_imap4flags.c — RFC 5232 imap4flags: the setflag, addflag,
 * removeflag commands and the hasflag test.
 *
 * Relies on: the core's flag sets (sv_flags.c: the internal flags variable,
 * flag lists, the invalid-flag warnings) and variables (sv_variables.c).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sv_int.h"

/* join - the flag set as a space separated string */
static char *join(char **v, size_t n, size_t *len_r)
{
	struct hm_buf b;
	hm_buf_init(&b, 1 << 20);
	for (size_t i = 0; i < n; i++) {
		if (i)
			hm_buf_putc(&b, ' ');
		hm_buf_puts(&b, v[i]);
	}
	*len_r = b.len;
	char *s = hm_buf_steal(&b, NULL);
	hm_buf_free(&b);
	return s;
}

enum flag_op { OP_SET, OP_ADD, OP_REMOVE };

static int flag_cmd(struct sv_run *r, struct sv_node *n, enum flag_op op)
{
	const struct sv_arg *list = sv_pos(n, n->npos - 1);
	const char *var = n->npos == 2 ? sv_pos(n, 0)->v[0].s : NULL;
	char **cur = NULL;
	size_t ncur = 0;
	if (var) {
		const struct sv_var *v = sv_var_get(r, var);
		if (v && sv_flags_add(r, n, v->val, &cur, &ncur) < 0)
			goto nomem;
	} else if (r->nflags) {
		cur = sv_strv_dup(r->flags, r->nflags);
		ncur = r->nflags;
		if (!cur)
			goto nomem;
	}
	char **arg = NULL;
	size_t narg = 0;
	if (sv_flags_from_list(r, n, list, &arg, &narg) < 0) {
		sv_flags_free(cur, ncur);
		return SV_ERR;
	}
	if (op == OP_SET) {
		sv_flags_free(cur, ncur);
		cur = arg;
		ncur = narg;
	} else if (op == OP_ADD) {
		for (size_t i = 0; i < narg; i++) {
			if (!sv_flag_has(cur, ncur, arg[i]) && ncur >= SV_MAX_FLAGS)
				sv_rt_warn(r, n, "more than %d IMAP flags: '%s' is ignored",
					   SV_MAX_FLAGS, arg[i]);
			if (sv_flag_has(cur, ncur, arg[i]) || ncur >= SV_MAX_FLAGS) {
				free(arg[i]);
				continue;
			}
			char **nv = realloc(cur, (ncur + 2) * sizeof *cur);
			if (!nv) {
				free(arg[i]);
				continue;
			}
			cur = nv;
			cur[ncur++] = arg[i];
			cur[ncur] = NULL;
		}
		free(arg);
	} else {
		size_t k = 0;
		for (size_t i = 0; i < ncur; i++) {
			if (sv_flag_has(arg, narg, cur[i]))
				free(cur[i]);
			else
				cur[k++] = cur[i];
		}
		ncur = k;
		if (cur)
			cur[ncur] = NULL;
		sv_flags_free(arg, narg);
	}
	if (var) {
		size_t len;
		char *s = join(cur, ncur, &len);
		sv_flags_free(cur, ncur);
		if (!s)
			goto nomem;
		int rc = sv_var_set(r, n, var, s, len);
		free(s);
		return rc;
	}
	sv_flags_free(r->flags, r->nflags);
	r->flags = cur;
	r->nflags = ncur;
	if (r->flags == NULL)
		r->nflags = 0;
	return SV_OK;
nomem:
	sv_flags_free(cur, ncur);
	return sv_rt_error(r, n, "out of memory");
}

static int exec_setflag(struct sv_run *r, struct sv_node *n) { return flag_cmd(r, n, OP_SET); }
static int exec_addflag(struct sv_run *r, struct sv_node *n) { return flag_cmd(r, n, OP_ADD); }
static int exec_removeflag(struct sv_run *r, struct sv_node *n) { return flag_cmd(r, n, OP_REMOVE); }

/* validate_flagcmd - optional first argument: a variable name */
static int validate_flagcmd(struct sv_comp *c, struct sv_node *n)
{
	if (n->npos == 2) {
		const struct sv_arg *a = sv_pos(n, 0);
		if (!c->s->ext[EXT_VARIABLES]) {
			sv_error(c, a->line, a->col,
				 "a variable name needs the variables extension");
			return -1;
		}
		if (a->type != SV_ARG_STR || !sv_var_name_ok(a->v[0].s)) {
			sv_error(c, a->line, a->col, "invalid variable name");
			return -1;
		}
	}
	return 0;
}

const struct sv_def sv_def_setflag = {
	.name = "setflag", .ext = EXT_IMAP4FLAGS, .pos = "l?l",
	.validate = validate_flagcmd, .exec = exec_setflag,
};
const struct sv_def sv_def_addflag = {
	.name = "addflag", .ext = EXT_IMAP4FLAGS, .pos = "l?l",
	.validate = validate_flagcmd, .exec = exec_addflag,
};
const struct sv_def sv_def_removeflag = {
	.name = "removeflag", .ext = EXT_IMAP4FLAGS, .pos = "l?l",
	.validate = validate_flagcmd, .exec = exec_removeflag,
};

/* hasflag [MATCH-TYPE] [COMPARATOR] [<variable-list>] <list-of-flags> */
static int exec_hasflag(struct sv_run *r, struct sv_node *n)
{
	struct sv_match m;
	if (sv_match_begin(&m, r, n, NULL) < 0)
		return -1;
	char **fl = NULL;
	size_t nfl = 0;
	int x = 0;
	if (n->npos == 2) {
		const struct sv_arg *vars = sv_pos(n, 0);
		for (size_t i = 0; i < vars->n; i++) {
			const struct sv_var *v = sv_var_get(r, vars->v[i].s);
			if (v && sv_flags_add(r, n, v->val, &fl, &nfl) < 0)
				x = sv_rt_error(r, n, "out of memory");
		}
	} else if (r->nflags) {
		fl = sv_strv_dup(r->flags, r->nflags);
		nfl = r->nflags;
	}
	for (size_t i = 0; i < nfl && x == 0; i++)
		x = sv_match_value(&m, fl[i], strlen(fl[i]));
	sv_flags_free(fl, nfl);
	if (x < 0) {
		sv_match_abort(&m);
		return -1;
	}
	return sv_match_end(&m);
}

static int validate_hasflag(struct sv_comp *c, struct sv_node *n)
{
	if (n->npos == 2 && !c->s->ext[EXT_VARIABLES]) {
		sv_error(c, sv_pos(n, 0)->line, sv_pos(n, 0)->col,
			 "a variable list needs the variables extension");
		return -1;
	}
	if (n->npos == 2)
		for (size_t i = 0; i < sv_pos(n, 0)->n; i++)
			if (!sv_var_name_ok(sv_pos(n, 0)->v[i].s)) {
				sv_error(c, sv_pos(n, 0)->v[i].line, sv_pos(n, 0)->v[i].col,
					 "invalid variable name '%s'", sv_pos(n, 0)->v[i].s);
				return -1;
			}
	return 0;
}

const struct sv_def sv_def_hasflag = {
	.name = "hasflag", .ext = EXT_IMAP4FLAGS, .is_test = true, .groups = SV_MATCHING,
	.pos = "l?l", .validate = validate_hasflag, .exec = exec_hasflag,
};
