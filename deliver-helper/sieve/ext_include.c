/* ext_include.c — RFC 6609 include: include, return, global.
 *
 *   include [:personal / :global] [:once] [:optional] <value: string>
 *   return
 *   global <value: string-list>
 *
 * Included scripts are compiled with the including one (so a missing or
 * broken script is a compile error, unless :optional); personal scripts
 * live in the user's sieve directory (default: the main script's), global
 * ones in the admin's directory.  Script names may not contain "/" and get
 * ".sieve" appended.  At runtime each included script gets its own local
 * variables; "global" names are shared.  A script that includes itself
 * (directly or not) is a runtime error unless :once stops the loop; depth
 * and count are bounded by the limits.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sv_int.h"

static int validate_include(struct sv_comp *c, struct sv_node *n)
{
	const struct sv_str *name = &sv_pos(n, 0)->v[0];
	if (name->var) {
		sv_error(c, name->line, name->col, "the include name must be a constant string");
		return -1;
	}
	if (name->len == 0 || name->len > 255 || memchr(name->s, '/', name->len) ||
	    strlen(name->s) != name->len || name->s[0] == '.') {
		sv_error(c, name->line, name->col, "invalid script name '%s'", name->s);
		return -1;
	}
	struct sieve_script *root = c->s->root;
	const char *dir;
	if (sv_has(n->o.tags, TG_GLOBAL)) {
		dir = root->global_dir;
		if (!dir) {
			if (sv_has(n->o.tags, TG_OPTIONAL))
				return 0;
			sv_error(c, name->line, name->col,
				 "include: no global script location is configured");
			return -1;
		}
	} else {
		dir = root->personal_dir ? root->personal_dir : root->dir;
	}
	size_t pl = strlen(dir) + name->len + 16;
	char *path = malloc(pl);
	if (!path)
		return -1;
	snprintf(path, pl, "%s/%s.sieve", dir, name->s);
	bool missing;
	struct sieve_script *s = c->compile_include(c, path, name->s, name->line, name->col,
						      sv_has(n->o.tags, TG_OPTIONAL), &missing);
	free(path);
	if (!s) {
		if (missing && sv_has(n->o.tags, TG_OPTIONAL))
			return 0;
		return -1;
	}
	/* RFC 6609 3.2: a script may not include itself, directly or through
	 * others, unless :once breaks the loop (Pigeonhole: "circular include") */
	if (!sv_has(n->o.tags, TG_ONCE))
		for (struct sv_comp *p = c; p; p = p->parent)
			if (p->s == s) {
				sv_error(c, n->line, n->col, "circular include");
				return -1;
			}
	n->priv = s;     /* owned by the root script, not by the node; include
			  * takes no block (checked before validate runs) */
	return 0;
}

static bool in_list(struct sieve_script **v, size_t n, const struct sieve_script *s)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == s)
			return true;
	return false;
}

static int exec_include(struct sv_run *r, struct sv_node *n)
{
	struct sieve_script *s = n->priv;
	if (!s)
		return SV_OK;    /* :optional and missing */
	if (sv_has(n->o.tags, TG_ONCE) && in_list(r->once_done, r->nonce, s))
		return SV_OK;
	if (s == r->frame->s || in_list(r->inc_stack, r->ninc_stack, s))
		return sv_rt_error(r, n, "circular include of script '%s'", s->name);
	if (r->ninc_stack >= r->lim.max_include_depth)
		return sv_rt_error(r, n, "includes nested too deeply");
	if (r->nonce >= 4096)
		return sv_rt_error(r, n, "too many includes");
	void *nv = realloc(r->inc_stack, (r->ninc_stack + 1) * sizeof(struct sieve_script *));
	if (!nv)
		return sv_rt_error(r, n, "out of memory");
	r->inc_stack = nv;
	r->inc_stack[r->ninc_stack++] = r->frame->s;
	nv = realloc(r->once_done, (r->nonce + 1) * sizeof(struct sieve_script *));
	if (!nv)
		return sv_rt_error(r, n, "out of memory");
	r->once_done = nv;
	r->once_done[r->nonce++] = s;
	struct sv_frame fr = { .s = s };
	struct sv_frame *saved = r->frame;
	r->frame = &fr;
	int rc = sv_exec_block(r, s->cmds);
	sv_varstore_free(&fr.local);
	r->frame = saved;
	r->ninc_stack--;
	if (rc == SV_RETURN)
		rc = SV_OK;
	return rc;
}

static const enum sv_tag include_tags[] = {
	TG_PERSONAL, TG_GLOBAL, TG_ONCE, TG_OPTIONAL, TG_COUNT_ALL
};

const struct sv_def sv_def_include = {
	.name = "include", .ext = EXT_INCLUDE, .tags = include_tags, .pos = "s",
	.validate = validate_include, .exec = exec_include,
};

static int exec_return(struct sv_run *r, struct sv_node *n)
{
	(void)r;
	(void)n;
	return SV_RETURN;
}

const struct sv_def sv_def_return = {
	.name = "return", .ext = EXT_INCLUDE, .pos = "", .exec = exec_return,
};

static int validate_global(struct sv_comp *c, struct sv_node *n)
{
	if (!c->s->ext[EXT_VARIABLES]) {
		sv_error(c, n->line, n->col, "the global command needs the variables extension");
		return -1;
	}
	const struct sv_arg *a = sv_pos(n, 0);
	for (size_t i = 0; i < a->n; i++) {
		if (a->v[i].var || !sv_var_name_ok(a->v[i].s) || strchr(a->v[i].s, '.')) {
			sv_error(c, a->v[i].line, a->v[i].col, "invalid variable name '%s'",
				 a->v[i].s);
			return -1;
		}
		char **nv = realloc(c->s->globals, (c->s->nglobals + 1) * sizeof *nv);
		if (!nv)
			return -1;
		c->s->globals = nv;
		nv[c->s->nglobals] = strdup(a->v[i].s);
		if (!nv[c->s->nglobals])
			return -1;
		c->s->nglobals++;
	}
	return 0;
}

const struct sv_def sv_def_global = {
	.name = "global", .ext = EXT_INCLUDE, .pos = "l", .validate = validate_global,
};
