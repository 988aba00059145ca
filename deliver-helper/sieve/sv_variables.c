/* sv_variables.c — variable storage and expansion (RFC 5229), part of
 * the core: the per-script and global stores, match variables, and the
 * expansion of "${name}" / "${N}" in strings that every command and test
 * uses.  The "set" command and the "string" test are ext_variables.c.
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
static struct sv_varstore *store_for(struct sv_run *r, const char *name, const char **base_r)
{
	*base_r = name;
	if (strncasecmp(name, "global.", 7) == 0) {
		*base_r = name + 7;
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

int sv_test_all(struct sv_run *r, struct sv_node *n, const struct sv_arg *a,
		int (*holds)(struct sv_run *r, const char *s, size_t len, uint64_t *cost_r))
{
	for (size_t i = 0; i < a->n; i++) {
		size_t len;
		char *s = sv_expand(r, n, &a->v[i], &len);
		if (!s)
			return -1;
		uint64_t cost;
		int ok = holds(r, s, len, &cost);
		free(s);
		if (sv_step(r, n, cost) < 0)
			return -1;
		if (ok <= 0)
			return 0;
	}
	return 1;
}
