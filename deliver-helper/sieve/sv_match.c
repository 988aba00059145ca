/* sv_match.c — match types, comparators and relational operators.
 *
 * What for: RFC 5228 2.7 (:is :contains :matches; i;octet, i;ascii-casemap),
 * RFC 5231 (:value/:count with gt ge lt le eq ne), RFC 4790 i;ascii-numeric,
 * draft-ietf-sieve-regex (:regex, POSIX extended regular expressions from
 * glibc), and the match variables of RFC 5229 section 3.2.
 * Relies on: glibc <regex.h>; sv_expand for keys containing variables.
 * How it fails: bad comparator / relational operator / regex → compile
 * error; every comparison is charged to the run's CPU step budget, and
 * regular expressions are bounded in pattern and subject length, so no key
 * can hang a delivery (over budget → runtime error → implicit keep).
 * Wildcards work on octets ("?" is one byte), as in Pigeonhole.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sv_int.h"

#define MAX_REGEX_PATTERN 4096
#define MAX_REGEX_SUBJECT (256 * 1024)

static int lc(int ch)
{
	return ch >= 'A' && ch <= 'Z' ? ch + 32 : ch;
}

int sv_rel_parse(const char *s, enum sv_rel *rel_r)
{
	static const char *const n[] = { "gt", "ge", "lt", "le", "eq", "ne" };
	for (int i = 0; i < 6; i++)
		if (strcasecmp(s, n[i]) == 0) {
			*rel_r = (enum sv_rel)i;
			return 0;
		}
	return -1;
}

/* sv_cmp_numeric - RFC 4790 9.1.1: compare the leading digit runs; a string
 * without leading digit is +infinity (equal to other such strings) */
int sv_cmp_numeric(const char *a, size_t al, const char *b, size_t bl)
{
	bool ai = al == 0 || a[0] < '0' || a[0] > '9';
	bool bi = bl == 0 || b[0] < '0' || b[0] > '9';
	if (ai || bi)
		return ai == bi ? 0 : ai ? 1 : -1;
	size_t ae = 0, be = 0;
	while (ae < al && a[ae] >= '0' && a[ae] <= '9')
		ae++;
	while (be < bl && b[be] >= '0' && b[be] <= '9')
		be++;
	size_t as = 0, bs = 0;
	while (as + 1 < ae && a[as] == '0')
		as++;
	while (bs + 1 < be && b[bs] == '0')
		bs++;
	size_t an = ae - as, bn = be - bs;
	if (an != bn)
		return an < bn ? -1 : 1;
	int c = memcmp(a + as, b + bs, an);
	return c < 0 ? -1 : c > 0;
}

/* sv_cmp_order - total order of the comparator (RFC 4790) */
int sv_cmp_order(enum sv_cmp cmp, const char *a, size_t al, const char *b, size_t bl)
{
	if (cmp == CMP_NUMERIC)
		return sv_cmp_numeric(a, al, b, bl);
	size_t n = al < bl ? al : bl;
	for (size_t i = 0; i < n; i++) {
		int x = (unsigned char)a[i], y = (unsigned char)b[i];
		if (cmp == CMP_CASEMAP) {
			/* Pigeonhole orders i;ascii-casemap on lower-cased text */
			x = lc(x);
			y = lc(y);
		}
		if (x != y)
			return x < y ? -1 : 1;
	}
	return al == bl ? 0 : al < bl ? -1 : 1;
}

static bool rel_holds(enum sv_rel rel, int c)
{
	switch (rel) {
	case REL_GT: return c > 0;
	case REL_GE: return c >= 0;
	case REL_LT: return c < 0;
	case REL_LE: return c <= 0;
	case REL_EQ: return c == 0;
	case REL_NE: return c != 0;
	}
	return false;
}

static bool ch_eq(int a, int b, bool icase)
{
	return icase ? lc(a) == lc(b) : a == b;
}

/* contains - substring search under the comparator */
static bool contains(const char *v, size_t vl, const char *k, size_t kl, bool icase,
		     uint64_t *steps)
{
	if (kl == 0)
		return true;
	if (kl > vl)
		return false;
	*steps += (vl - kl + 1) / 16 + 1;
	if (!icase)
		return memmem(v, vl, k, kl) != NULL;
	for (size_t i = 0; i + kl <= vl; i++) {
		size_t j = 0;
		while (j < kl && ch_eq((unsigned char)v[i + j], (unsigned char)k[j], true))
			j++;
		if (j == kl)
			return true;
	}
	return false;
}

/* Glob pattern element: literal byte, '*' or '?' (escapes resolved). */
enum { G_LIT, G_STAR, G_ONE };

/* struct glob_pat - a compiled pattern: np elements, kind[i] G_* and, for
 * G_LIT, the byte chr[i] */
struct glob_pat {
	const unsigned char *kind;
	const char *chr;
	size_t np;
};

/* glob_compile - pattern p into kind/chr (each at least pl long): escapes
 * "\x" stand for x (RFC 5228 2.7.1).  Returns the number of elements. */
static size_t glob_compile(const char *p, size_t pl, unsigned char *kind, char *chr)
{
	size_t np = 0;
	for (size_t i = 0; i < pl; i++) {
		if (p[i] == '\\' && i + 1 < pl) {
			kind[np] = G_LIT;
			chr[np++] = p[++i];
		} else if (p[i] == '*') {
			kind[np] = G_STAR;
			chr[np++] = 0;
		} else if (p[i] == '?') {
			kind[np] = G_ONE;
			chr[np++] = 0;
		} else {
			kind[np] = G_LIT;
			chr[np++] = p[i];
		}
	}
	return np;
}

/* glob_one - element pi (not a star) matches the value byte ch: '?' any
 * byte, a literal under the comparator */
static inline bool glob_one(const struct glob_pat *g, size_t pi, unsigned char ch, bool icase)
{
	return g->kind[pi] == G_ONE || ch_eq((unsigned char)g->chr[pi], ch, icase);
}

/* glob_backtrack - after a mismatch, let the most recent star (star_p, -1
 * when none) take one more byte and resume after it.  Returns false when
 * there is no star or it already reaches the end of the value. */
static inline bool glob_backtrack(size_t *pi, size_t *vi, size_t star_p, size_t *star_v,
				  size_t vl)
{
	if (star_p == (size_t)-1 || *star_v >= vl)
		return false;
	*pi = star_p + 1;
	*vi = ++*star_v;
	return true;
}

/* glob_match - iterative matcher with backtracking to the most recent star:
 * earlier stars keep their shortest extent, as the leftmost-shortest
 * captures of RFC 5229 3.2 require.  Every iteration counts one step in
 * *st_r, checked against cap.  Returns 1 match, 0 no match, -1 when the
 * steps ran past cap. */
static int glob_match(const struct glob_pat *g, const char *v, size_t vl, bool icase,
		      uint64_t cap, uint64_t *st_r)
{
	size_t pi = 0, vi = 0, star_p = (size_t)-1, star_v = 0;
	uint64_t st = 0;
	int result = 1;
	while (vi < vl || pi < g->np) {
		if (++st > cap) {
			result = -1;
			break;
		}
		if (pi < g->np) {
			if (g->kind[pi] == G_STAR) {
				star_p = pi;
				star_v = vi;
				pi++;
				continue;
			}
			if (vi < vl && glob_one(g, pi, (unsigned char)v[vi], icase)) {
				pi++;
				vi++;
				continue;
			}
		}
		if (glob_backtrack(&pi, &vi, star_p, &star_v, vl))
			continue;
		result = 0;
		break;
	}
	*st_r = st;
	return result;
}

/* glob_extents - for a value known to match, re-run the matcher
 * deterministically recording where each wildcard starts (wstart) and how
 * much it took (wlen); widx maps an element to its wildcard number.  No
 * budget check: the same walk as glob_match's, which stayed within it. */
static void glob_extents(const struct glob_pat *g, const char *v, size_t vl, bool icase,
			 const size_t *widx, size_t *wstart, size_t *wlen)
{
	size_t pi = 0, vi = 0, star_p = (size_t)-1, star_v = 0;
	while (vi < vl || pi < g->np) {
		if (pi < g->np) {
			if (g->kind[pi] == G_STAR) {
				star_p = pi;
				star_v = vi;
				wstart[widx[pi]] = vi;
				wlen[widx[pi]] = 0;
				pi++;
				continue;
			}
			if (vi < vl && glob_one(g, pi, (unsigned char)v[vi], icase)) {
				if (g->kind[pi] == G_ONE) {
					wstart[widx[pi]] = vi;
					wlen[widx[pi]] = 1;
				}
				pi++;
				vi++;
				continue;
			}
		}
		if (glob_backtrack(&pi, &vi, star_p, &star_v, vl)) {
			wlen[widx[star_p]] = star_v - wstart[widx[star_p]];
			continue;
		}
		break;
	}
}

/* glob_captures - ${0} the whole value, ${1}... each wildcard's extent, at
 * most maxcaps in all; *ncaps_r the number filled (untouched when out of
 * memory) */
static void glob_captures(const struct glob_pat *g, const char *v, size_t vl, bool icase,
			  char **caps, size_t *caplens, size_t maxcaps, size_t *ncaps_r)
{
	size_t nw = 0;
	for (size_t i = 0; i < g->np; i++)
		if (g->kind[i] != G_LIT)
			nw++;
	size_t *wstart = calloc(nw + 1, sizeof *wstart);
	size_t *wlen = calloc(nw + 1, sizeof *wlen);
	size_t *widx = calloc(g->np + 1, sizeof *widx);
	if (!wstart || !wlen || !widx) {
		free(wstart);
		free(wlen);
		free(widx);
		return;
	}
	size_t w = 0;
	for (size_t i = 0; i < g->np; i++)
		widx[i] = g->kind[i] != G_LIT ? w++ : (size_t)-1;
	glob_extents(g, v, vl, icase, widx, wstart, wlen);
	size_t nc = 0;
	if (maxcaps > 0) {
		caps[0] = sv_strndup(v, vl);
		caplens[0] = vl;
		nc = 1;
	}
	for (size_t k = 0; k < nw && nc < maxcaps; k++, nc++) {
		caps[nc] = sv_strndup(v + wstart[k], wlen[k]);
		caplens[nc] = wlen[k];
	}
	*ncaps_r = nc;
	free(wstart);
	free(wlen);
	free(widx);
}

int sv_glob(const char *p, size_t pl, const char *v, size_t vl, bool icase,
	    char **caps, size_t *caplens, size_t maxcaps, size_t *ncaps_r, uint64_t *steps)
{
	/* the budget left is passed in *steps; on return it holds the cost */
	uint64_t cap = *steps * 8 + 1;
	*steps = 0;
	unsigned char stackk[256];
	char stackc[256];
	unsigned char *kind = pl <= sizeof stackk ? stackk : malloc(pl);
	char *chr = pl <= sizeof stackc ? stackc : malloc(pl);
	int result = -1;        /* out of memory counts as over budget (an error, keep) */
	if (!kind || !chr)
		goto out;
	struct glob_pat g = { kind, chr, glob_compile(p, pl, kind, chr) };
	uint64_t st;
	result = glob_match(&g, v, vl, icase, cap, &st);
	/* every outcome costs its steps: over budget the cost so far, a match
	 * or a miss what the walk took (a miss is as costly as a match) */
	*steps = st / 8 + 1;
	if (result <= 0 || !caps)
		goto out;
	glob_captures(&g, v, vl, icase, caps, caplens, maxcaps, ncaps_r);
out:
	if (kind != stackk)
		free(kind);
	if (chr != stackc)
		free(chr);
	return result;
}

/* keys_arg - the key list of a matching test: its last positional argument */
static const struct sv_arg *keys_arg(const struct sv_node *n)
{
	return n->npos ? sv_pos(n, n->npos - 1) : NULL;
}

int sv_match_validate(struct sv_comp *c, struct sv_node *n, const struct sv_arg *keys)
{
	struct sv_opts *o = &n->o;
	if (!keys)
		keys = keys_arg(n);
	if (sv_tagarg(n, TG_COMPARATOR)) {
		const struct sv_str *s = &sv_tagarg(n, TG_COMPARATOR)->v[0];
		if (strcmp(s->s, "i;octet") == 0)
			o->cmp = CMP_OCTET;
		else if (strcmp(s->s, "i;ascii-casemap") == 0)
			o->cmp = CMP_CASEMAP;
		else if (strcmp(s->s, "i;ascii-numeric") == 0 && c->s->ext[EXT_CMP_NUMERIC])
			o->cmp = CMP_NUMERIC;
		else {
			sv_error(c, s->line, s->col, "unknown comparator '%s'%s", s->s,
				 strcmp(s->s, "i;ascii-numeric") == 0 ?
				 " (require \"comparator-i;ascii-numeric\")" : "");
			return -1;
		}
	}
	if (o->mt == MT_VALUE || o->mt == MT_COUNT) {
		const struct sv_str *s = &sv_tagarg(n, o->mt == MT_VALUE ? TG_VALUE : TG_COUNT)->v[0];
		enum sv_rel rel;
		if (sv_rel_parse(s->s, &rel) < 0) {
			sv_error(c, s->line, s->col, "invalid relational match type '%s'", s->s);
			return -1;
		}
		o->rel = (uint8_t)rel;
	}
	if (o->cmp == CMP_NUMERIC &&
	    (o->mt == MT_CONTAINS || o->mt == MT_MATCHES || o->mt == MT_REGEX)) {
		sv_error(c, n->line, n->col,
			 "comparator i;ascii-numeric does not support the :%s match type",
			 o->mt == MT_CONTAINS ? "contains" : o->mt == MT_MATCHES ? "matches" :
			 "regex");
		return -1;
	}
	if (o->mt == MT_REGEX && keys) {
		for (size_t i = 0; i < keys->n; i++) {
			const struct sv_str *k = &keys->v[i];
			if (k->var)
				continue;
			if (k->len > MAX_REGEX_PATTERN) {
				sv_error(c, k->line, k->col, "regular expression too long");
				return -1;
			}
			regex_t rx;
			int flags = REG_EXTENDED | (o->cmp == CMP_CASEMAP ? REG_ICASE : 0);
			int e = regcomp(&rx, k->s, flags);
			if (e != 0) {
				char eb[256];
				regerror(e, &rx, eb, sizeof eb);
				sv_error(c, k->line, k->col, "invalid regex '%s': %s",
					 k->s, eb);
				return -1;
			}
			regfree(&rx);
		}
	}
	return 0;
}

void sv_match_abort(struct sv_match *m)
{
	for (size_t i = 0; i < m->nkeys; i++) {
		if (m->own)
			free(m->own[i]);
		if (m->rx_ok && m->rx_ok[i])
			regfree(&m->rx[i]);
	}
	if (m->keys != m->keys_in) {
		free(m->keys);
		free(m->klen);
		free(m->own);
	}
	free(m->rx);
	free(m->rx_ok);
	hm_buf_free(&m->part);
	m->keys = NULL;
	m->klen = NULL;
	m->own = NULL;
	m->nkeys = 0;
	m->rx = NULL;
	m->rx_ok = NULL;
}

int sv_match_begin(struct sv_match *m, struct sv_run *r, const struct sv_node *n,
		   const struct sv_arg *keys)
{
	m->r = r;
	m->n = n;
	m->nkeys = 0;
	m->rx = NULL;
	m->rx_ok = NULL;
	m->count = 0;
	m->result = 0;
	m->no_vars = false;
	/* an address part is at most twice its field (quoting) and a field at
	 * most the 1 MiB header block hm_header parses */
	hm_buf_init(&m->part, 4u * 1024 * 1024);
	if (!keys)
		keys = keys_arg(n);
	size_t nk = keys ? keys->n : 0;
	if (nk <= SV_MATCH_INLINE_KEYS) {
		m->keys = m->keys_in;
		m->klen = m->klen_in;
		m->own = m->own_in;
	} else {
		m->keys = calloc(nk, sizeof *m->keys);
		m->klen = calloc(nk, sizeof *m->klen);
		m->own = calloc(nk, sizeof *m->own);
		if (!m->keys || !m->klen || !m->own) {
			sv_match_abort(m);
			return sv_rt_error(r, n, "out of memory");
		}
	}
	for (size_t i = 0; i < nk; i++) {
		m->keys[i] = sv_expand_ref(r, n, &keys->v[i], &m->klen[i], &m->own[i]);
		m->nkeys = i + 1;
		if (!m->keys[i]) {
			sv_match_abort(m);
			return SV_ERR;
		}
	}
	if (n->o.mt == MT_REGEX) {
		m->rx = calloc(nk + 1, sizeof *m->rx);
		m->rx_ok = calloc(nk + 1, sizeof *m->rx_ok);
		if (!m->rx || !m->rx_ok) {
			sv_match_abort(m);
			return sv_rt_error(r, n, "out of memory");
		}
		int flags = REG_EXTENDED | (n->o.cmp == CMP_CASEMAP ? REG_ICASE : 0);
		for (size_t i = 0; i < nk; i++) {
			if (m->klen[i] > MAX_REGEX_PATTERN || strlen(m->keys[i]) != m->klen[i]) {
				sv_match_abort(m);
				return sv_rt_error(r, n, "unusable regular expression");
			}
			if (sv_step(r, n, 10 + m->klen[i]) < 0) {
				sv_match_abort(m);
				return SV_ERR;
			}
			if (regcomp(&m->rx[i], m->keys[i], flags) != 0) {
				/* Pigeonhole: a key that fails to compile at runtime
				 * does not match (and is logged) */
				sv_rt_warn(r, n, "invalid regular expression '%s'", m->keys[i]);
				continue;
			}
			m->rx_ok[i] = true;
		}
	}
	return 0;
}

static bool want_vars(struct sv_match *m)
{
	return !m->no_vars && m->r->frame && m->r->frame->s->ext[EXT_VARIABLES];
}

/* match_regex - run key i on v; sets match variables on success */
static int match_regex(struct sv_match *m, size_t i, const char *v, size_t vl)
{
	if (!m->rx_ok[i])
		return 0;
	if (vl > MAX_REGEX_SUBJECT)
		return sv_rt_error(m->r, m->n, "value too long for a regular expression match");
	/* glibc's matcher is polynomial for ERE without back-references;
	 * charge the worst case of that to the budget */
	uint64_t cost = ((uint64_t)vl + 1) * ((uint64_t)m->klen[i] + 1) / 4 + 1;
	if (memchr(m->keys[i], '\\', m->klen[i]) && vl > 4096)
		return sv_rt_error(m->r, m->n, "value too long for a regular expression "
				   "with back-references");
	if (sv_step(m->r, m->n, cost) < 0)
		return SV_ERR;
	regmatch_t pm[SV_MAX_MATCHVARS];
	char *tmp = NULL;
	const char *subj = v;
	if (v[vl] != 0 || memchr(v, 0, vl)) {
		tmp = sv_strndup(v, vl);
		if (!tmp)
			return sv_rt_error(m->r, m->n, "out of memory");
		subj = tmp;
	}
	int e = regexec(&m->rx[i], subj, SV_MAX_MATCHVARS, pm, 0);
	if (e == 0 && want_vars(m)) {
		char *caps[SV_MAX_MATCHVARS];
		size_t lens[SV_MAX_MATCHVARS];
		size_t nc = 0;
		for (size_t k = 0; k < SV_MAX_MATCHVARS; k++) {
			if (pm[k].rm_so < 0) {
				caps[nc] = strdup("");
				lens[nc++] = 0;
				continue;
			}
			caps[nc] = sv_strndup(subj + pm[k].rm_so,
					      (size_t)(pm[k].rm_eo - pm[k].rm_so));
			lens[nc++] = (size_t)(pm[k].rm_eo - pm[k].rm_so);
		}
		/* only as many as the expression has groups, plus ${0} */
		size_t ngroups = m->rx[i].re_nsub + 1;
		if (ngroups > nc)
			ngroups = nc;
		for (size_t k = ngroups; k < nc; k++)
			free(caps[k]);
		sv_set_matchvars(m->r, caps, lens, ngroups);
	}
	free(tmp);
	return e == 0;
}

int sv_match_value(struct sv_match *m, const char *v, size_t vl)
{
	const struct sv_opts *o = &m->n->o;
	struct sv_run *r = m->r;
	if (o->mt == MT_COUNT) {
		m->count++;
		return 0;
	}
	bool icase = o->cmp == CMP_CASEMAP;
	for (size_t i = 0; i < m->nkeys; i++) {
		const char *k = m->keys[i];
		size_t kl = m->klen[i];
		uint64_t st = 1 + (vl + kl) / 64;
		bool hit = false;
		switch (o->mt) {
		case MT_IS:
			/* an empty value is only ever equal to an empty key,
			 * whatever the comparator (Pigeonhole; for
			 * i;ascii-numeric both would be "positive infinity") */
			if (vl == 0)
				hit = kl == 0;
			else if (o->cmp == CMP_NUMERIC)
				hit = sv_cmp_numeric(v, vl, k, kl) == 0;
			else
				hit = sv_cmp_order(o->cmp, v, vl, k, kl) == 0;
			break;
		case MT_CONTAINS:
			hit = contains(v, vl, k, kl, icase, &st);
			break;
		case MT_MATCHES: {
			bool vars = want_vars(m);
			char *caps[SV_MAX_MATCHVARS];
			size_t lens[SV_MAX_MATCHVARS];
			size_t nc = 0;
			uint64_t budget = r->lim.max_steps > r->steps ?
					  r->lim.max_steps - r->steps : 0;
			int g = sv_glob(k, kl, v, vl, icase, vars ? caps : NULL, lens,
					SV_MAX_MATCHVARS, &nc, &budget);
			st += budget;
			if (g < 0)
				st = r->lim.max_steps + 1;
			hit = g == 1;
			if (hit && vars)
				sv_set_matchvars(r, caps, lens, nc);
			break;
		}
		case MT_REGEX: {
			int x = match_regex(m, i, v, vl);
			if (x < 0)
				return -1;
			hit = x == 1;
			break;
		}
		case MT_VALUE:
			hit = rel_holds(o->rel, sv_cmp_order(o->cmp, v, vl, k, kl));
			break;
		case MT_COUNT:
			break;
		}
		if (sv_step(r, m->n, st) < 0)
			return -1;
		if (hit) {
			m->result = 1;
			return 1;
		}
	}
	return 0;
}

int sv_match_end(struct sv_match *m)
{
	int res = m->result;
	if (m->n->o.mt == MT_COUNT) {
		char num[32];
		int nl = snprintf(num, sizeof num, "%llu", (unsigned long long)m->count);
		for (size_t i = 0; i < m->nkeys; i++)
			if (rel_holds(m->n->o.rel, sv_cmp_order(m->n->o.cmp, num, (size_t)nl,
								m->keys[i], m->klen[i]))) {
				res = 1;
				break;
			}
	}
	sv_match_abort(m);
	return res;
}
