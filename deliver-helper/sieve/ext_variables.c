/* ext_variables.c — RFC 5229 variables: the "set" command with its
 * modifiers and the "string" test.
 *
 * Relies on: the core's variable storage and expansion (sv_variables.c),
 * sv_match.c for the string test.
 * How it fails: as sv_variables.c (value size, number of variables).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sv_int.h"

/* ---- set ------------------------------------------------------------- */

/* validate_set - the name must be a valid variable name (RFC 5229 4) */
static int validate_set(struct sv_comp *c, struct sv_node *n)
{
	const struct sv_str *name = &sv_pos(n, 0)->v[0];
	if (!sv_var_name_ok(name->s) ||
	    (strncasecmp(name->s, "global.", 7) == 0 && !c->s->ext[EXT_INCLUDE])) {
		sv_error(c, name->line, name->col, "invalid variable name '%s'", name->s);
		return -1;
	}
	if (sv_has(n->o.tags, TG_QUOTEREGEX) && !c->s->ext[EXT_REGEX]) {
		sv_error(c, n->line, n->col, ":quoteregex needs the regex extension");
		return -1;
	}
	return 0;
}

static size_t utf8_len(const char *s, size_t n)
{
	size_t c = 0;
	for (size_t i = 0; i < n; i++)
		if (((unsigned char)s[i] & 0xC0) != 0x80)
			c++;
	return c;
}

/* apply_modifiers - RFC 5229 4.1, highest precedence first */
static char *apply_modifiers(const struct sv_opts *o, char *v, size_t *len)
{
	if (sv_has(o->tags, TG_LOWER) || sv_has(o->tags, TG_UPPER))
		for (size_t i = 0; i < *len; i++) {
			char ch = v[i];
			if (sv_has(o->tags, TG_LOWER) && ch >= 'A' && ch <= 'Z')
				v[i] = (char)(ch + 32);
			if (sv_has(o->tags, TG_UPPER) && ch >= 'a' && ch <= 'z')
				v[i] = (char)(ch - 32);
		}
	if (*len > 0 && sv_has(o->tags, TG_LOWERFIRST) && v[0] >= 'A' && v[0] <= 'Z')
		v[0] = (char)(v[0] + 32);
	if (*len > 0 && sv_has(o->tags, TG_UPPERFIRST) && v[0] >= 'a' && v[0] <= 'z')
		v[0] = (char)(v[0] - 32);
	if (sv_has(o->tags, TG_QUOTEWILDCARD) || sv_has(o->tags, TG_QUOTEREGEX)) {
		const char *special = sv_has(o->tags, TG_QUOTEWILDCARD) ? "*?\\" : "\\.^$*+?(){}[]|";
		size_t extra = 0;
		for (size_t i = 0; i < *len; i++)
			if (v[i] && strchr(special, v[i]))
				extra++;
		char *nv = malloc(*len + extra + 1);
		if (!nv) {
			free(v);
			return NULL;
		}
		size_t o2 = 0;
		for (size_t i = 0; i < *len; i++) {
			if (v[i] && strchr(special, v[i]))
				nv[o2++] = '\\';
			nv[o2++] = v[i];
		}
		nv[o2] = 0;
		free(v);
		v = nv;
		*len = o2;
	}
	if (sv_has(o->tags, TG_LENGTH)) {
		char num[32];
		int nl = snprintf(num, sizeof num, "%zu", utf8_len(v, *len));
		free(v);
		v = sv_strndup(num, (size_t)nl);
		*len = (size_t)nl;
	}
	return v;
}

static int exec_set(struct sv_run *r, struct sv_node *n)
{
	size_t len;
	char *v = sv_expand(r, n, &sv_pos(n, 1)->v[0], &len);
	if (!v)
		return SV_ERR;
	v = apply_modifiers(&n->o, v, &len);
	if (!v)
		return sv_rt_error(r, n, "out of memory");
	int rc = sv_var_set(r, n, sv_pos(n, 0)->v[0].s, v, len);
	free(v);
	return rc;
}

static const enum sv_tag set_tags[] = {
	TG_LOWER, TG_UPPER, TG_LOWERFIRST, TG_UPPERFIRST, TG_QUOTEWILDCARD,
	TG_QUOTEREGEX, TG_LENGTH, TG_COUNT_ALL
};

const struct sv_def sv_def_set = {
	.name = "set", .ext = EXT_VARIABLES, .tags = set_tags, .pos = "ss",
	.validate = validate_set, .exec = exec_set,
};

/* ---- string test ------------------------------------------------------ */

/* exec_string - string [COMPARATOR] [MATCH-TYPE] <source: string-list>
 * <key-list: string-list>; with :count, empty sources are not counted */
static int exec_string(struct sv_run *r, struct sv_node *n)
{
	struct sv_match m;
	if (sv_match_begin(&m, r, n, sv_pos(n, 1)) < 0)
		return -1;
	const struct sv_arg *src = sv_pos(n, 0);
	for (size_t i = 0; i < src->n; i++) {
		size_t len;
		char *v = sv_expand(r, n, &src->v[i], &len);
		if (!v) {
			sv_match_abort(&m);
			return -1;
		}
		int x = 0;
		if (!(n->o.mt == MT_COUNT && len == 0))
			x = sv_match_value(&m, v, len);
		free(v);
		if (x < 0) {
			sv_match_abort(&m);
			return -1;
		}
		if (x > 0)
			break;
	}
	return sv_match_end(&m);
}

const struct sv_def sv_def_string = {
	.name = "string", .ext = EXT_VARIABLES, .is_test = true, .groups = SV_MATCHING,
	.pos = "ll", .exec = exec_string,
};
