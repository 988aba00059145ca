/* ext_variables.c — RFC 5229 variables: "set", the "string" test, variable
 * references "${name}" / "${N}" in strings, match variables.
 *
 *   variable-ref  = "${" [namespace] variable-name "}"
 *   namespace     = identifier "."
 *   variable-name = num-variable / identifier
 *   num-variable  = 1*DIGIT
 *
 * Relies on: the interpreter's frames (local variables per script) and the
 * run's global store (RFC 6609 "global" and the "global." namespace).
 * How it fails: values are cut at 4096 bytes and a script may hold at most
 * 255 variables (Pigeonhole's defaults); more is a runtime error.  A
 * malformed reference is left in the string literally (RFC 5229 3).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sv_int.h"

#define MAX_VAR_SIZE 4096
#define MAX_VARS 255
#define MAX_EXPANDED (1024 * 1024)

void sv_varstore_free(struct sv_varstore *vs)
{
	for (size_t i = 0; i < vs->n; i++) {
		free(vs->v[i].name);
		free(vs->v[i].val);
	}
	free(vs->v);
	memset(vs, 0, sizeof *vs);
}

static bool is_id_start(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_id_char(char c)
{
	return is_id_start(c) || (c >= '0' && c <= '9');
}

/* sv_var_name_ok - identifier, optionally "global." identifier (RFC 6609 3.5) */
bool sv_var_name_ok(const char *name)
{
	const char *p = name;
	if (strncasecmp(p, "global.", 7) == 0)
		p += 7;
	if (!is_id_start(*p))
		return false;
	for (p++; *p; p++)
		if (!is_id_char(*p))
			return false;
	return true;
}

/* store_for - the store holding name (lower-cased, namespace stripped) */
static struct sv_varstore *store_for(struct sv_run *r, const char *name, const char **base)
{
	*base = name;
	if (strncasecmp(name, "global.", 7) == 0) {
		*base = name + 7;
		return &r->globals;
	}
	struct sieve_script *s = r->frame ? r->frame->s : NULL;
	for (size_t i = 0; s && i < s->nglobals; i++)
		if (strcasecmp(s->globals[i], name) == 0)
			return &r->globals;
	return r->frame ? &r->frame->local : &r->globals;
}

const struct sv_var *sv_var_get(struct sv_run *r, const char *name)
{
	const char *base;
	struct sv_varstore *vs = store_for(r, name, &base);
	for (size_t i = 0; i < vs->n; i++)
		if (strcasecmp(vs->v[i].name, base) == 0)
			return &vs->v[i];
	return NULL;
}

int sv_var_set(struct sv_run *r, const struct sv_node *n, const char *name,
	       const char *val, size_t len)
{
	const char *base;
	struct sv_varstore *vs = store_for(r, name, &base);
	if (len > MAX_VAR_SIZE) {
		len = MAX_VAR_SIZE;
		/* do not split a UTF-8 character */
		while (len > 0 && ((unsigned char)val[len] & 0xC0) == 0x80)
			len--;
	}
	char *copy = sv_strndup(val, len);
	if (!copy)
		return sv_rt_error(r, n, "out of memory");
	for (size_t i = 0; i < vs->n; i++)
		if (strcasecmp(vs->v[i].name, base) == 0) {
			free(vs->v[i].val);
			vs->v[i].val = copy;
			vs->v[i].len = len;
			return SV_OK;
		}
	if (vs->n >= MAX_VARS) {
		free(copy);
		return sv_rt_error(r, n, "too many variables (limit %d)", MAX_VARS);
	}
	if (vs->n == vs->cap) {
		size_t nc = vs->cap ? vs->cap * 2 : 8;
		void *nv = realloc(vs->v, nc * sizeof *vs->v);
		if (!nv) {
			free(copy);
			return sv_rt_error(r, n, "out of memory");
		}
		vs->v = nv;
		vs->cap = nc;
	}
	char *nm = strdup(base);
	if (!nm) {
		free(copy);
		return sv_rt_error(r, n, "out of memory");
	}
	for (char *p = nm; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p += 32;
	vs->v[vs->n++] = (struct sv_var){ nm, copy, len };
	return SV_OK;
}

void sv_set_matchvars(struct sv_run *r, char **vals, size_t *lens, size_t n)
{
	for (size_t k = 0; k < SV_MAX_MATCHVARS; k++) {
		free(r->mvars[k]);
		r->mvars[k] = k < n ? vals[k] : NULL;
		r->mlens[k] = k < n && vals[k] ? lens[k] : 0;
	}
	r->mvars_set = true;
}

char *sv_expand(struct sv_run *r, const struct sv_node *n, const struct sv_str *s,
		size_t *len_r)
{
	if (!s->var) {
		char *c = sv_strndup(s->s, s->len);
		if (!c)
			sv_rt_error(r, n, "out of memory");
		*len_r = s->len;
		return c;
	}
	struct hm_buf b;
	hm_buf_init(&b, MAX_EXPANDED);
	const char *p = s->s, *e = s->s + s->len;
	while (p < e) {
		const char *d = memmem(p, (size_t)(e - p), "${", 2);
		if (!d) {
			if (hm_buf_append(&b, p, (size_t)(e - p)) < 0)
				goto fail;
			break;
		}
		if (hm_buf_append(&b, p, (size_t)(d - p)) < 0)
			goto fail;
		const char *q = d + 2;
		const char *close = memchr(q, '}', (size_t)(e - q));
		bool ok = close != NULL && close > q && (size_t)(close - q) <= 256;
		char name[260];
		if (ok) {
			memcpy(name, q, (size_t)(close - q));
			name[close - q] = 0;
			bool num = true;
			for (const char *x = name; *x; x++)
				if (*x < '0' || *x > '9')
					num = false;
			if (num) {
				unsigned long idx = strtoul(name, NULL, 10);
				if (strlen(name) <= 4 && idx < SV_MAX_MATCHVARS && r->mvars[idx] &&
				    hm_buf_append(&b, r->mvars[idx], r->mlens[idx]) < 0)
					goto fail;
				p = close + 1;
				continue;
			}
			if (sv_var_name_ok(name)) {
				const struct sv_var *v = sv_var_get(r, name);
				if (v && hm_buf_append(&b, v->val, v->len) < 0)
					goto fail;
				p = close + 1;
				continue;
			}
		}
		/* not a variable reference: keep "${" literally */
		if (hm_buf_append(&b, "${", 2) < 0)
			goto fail;
		p = d + 2;
	}
	if (sv_step(r, n, 1 + b.len / 256) < 0) {
		hm_buf_free(&b);
		return NULL;
	}
	*len_r = b.len;
	char *out = hm_buf_steal(&b, NULL);
	if (!out)
		sv_rt_error(r, n, "out of memory");
	return out;
fail:
	hm_buf_free(&b);
	sv_rt_error(r, n, "expanded string too long");
	return NULL;
}

const char *sv_expand_ref(struct sv_run *r, const struct sv_node *n, const struct sv_str *s,
			  size_t *len_r, char **own_r)
{
	*own_r = NULL;
	if (!s->var) {
		*len_r = s->len;
		return s->s;
	}
	*own_r = sv_expand(r, n, s, len_r);
	return *own_r;
}

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
