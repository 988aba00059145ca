/* hm_rfc2231.c — MIME parameter parsing (RFC 2045 §5.1, RFC 2231), lenient
 * like mail clients, reporting every point where clients could disagree.
 *
 * Relies on: hm_rfc2047 for charsets (glibc iconv) and for encoded words
 * inside values, hm_buf for bounded joins.
 * Fails: -1/ENOMEM only; syntax problems are flags in f->problems, never
 * errors, because a scanner must still look at a malformed field.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <iconv.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hm_buf.h"
#include "hm_rfc2231.h"
#include "hm_util.h"
#include "hm_rfc2047.h"

/* out_max - bound for a value made from n input bytes: no fixed cap (a cut
 * value would lose its end, where the extension is), but never more than a
 * charset conversion can make of n bytes (U+FFFD is 3 bytes per input byte) */
static size_t out_max(size_t n)
{
	return n > (SIZE_MAX - 16) / 4 ? SIZE_MAX : 4 * n + 16;
}

/* is_tspecial - RFC 2045 tspecials plus whitespace end a token */
static bool is_tspecial(int c)
{
	return strchr("()<>@,;:\\\"/[]?=", c) != NULL || c == ' ' || c == '\t';
}

/* skip_cfws - skip whitespace and (nested) comments; never reads past end */
static const char *skip_cfws(const char *p, const char *end)
{
	while (p < end) {
		if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') {
			p++;
		} else if (*p == '(') {
			int depth = 0;
			while (p < end) {
				if (*p == '\\' && p + 1 < end) {
					p += 2;
					continue;
				}
				if (*p == '(')
					depth++;
				else if (*p == ')' && --depth == 0) {
					p++;
					break;
				}
				p++;
			}
		} else {
			break;
		}
	}
	return p;
}

/* skip_to_semicolon - next ';' outside comments and quoted strings, or end */
static const char *skip_to_semicolon(const char *p, const char *end)
{
	while (p < end && *p != ';') {
		if (*p == '(') {
			p = skip_cfws(p, end);
		} else if (*p == '"') {
			p++;
			while (p < end && *p != '"') {
				if (*p == '\\' && p + 1 < end)
					p++;
				p++;
			}
			if (p < end)
				p++;
		} else {
			p++;
		}
	}
	return p;
}

/* dup_lower - malloc'd lowercased copy of s[0..n) */
static char *dup_lower(const char *s, size_t n)
{
	char *r = malloc(n + 1);
	if (!r)
		return NULL;
	for (size_t i = 0; i < n; i++)
		r[i] = (char)tolower((unsigned char)s[i]);
	r[n] = 0;
	return r;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* pct_decode - decode %XX in place (RFC 2231 extended values); returns new length.
 * A '%' not followed by two hex digits stays literal, as clients keep it. */
static size_t pct_decode(char *s, size_t n)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		int h, l;
		if (s[i] == '%' && i + 2 < n &&
		    (h = hexval((unsigned char)s[i + 1])) >= 0 &&
		    (l = hexval((unsigned char)s[i + 2])) >= 0) {
			s[o++] = (char)(h * 16 + l);
			i += 2;
		} else {
			s[o++] = s[i];
		}
	}
	s[o] = 0;
	return o;
}

/* parse_value - read a quoted string or a lenient token at *pp into a
 * malloc'd buffer.  Unquoted values run to the next ';' (clients accept
 * spaces there) with trailing whitespace trimmed. */
static char *parse_value(const char **pp, const char *end, size_t *len_r, unsigned *probs)
{
	const char *p = *pp;
	struct hm_buf b;
	hm_buf_init(&b, out_max((size_t)(end - p)));
	if (p < end && *p == '"') {
		p++;
		bool closed = false;
		while (p < end) {
			if (*p == '\\' && p + 1 < end) {
				if (hm_buf_putc(&b, p[1]) < 0)
					goto fail;
				p += 2;
				continue;
			}
			if (*p == '"') {
				closed = true;
				p++;
				break;
			}
			if (*p != '\r' && *p != '\n' && hm_buf_putc(&b, *p) < 0)
				goto fail;
			p++;
		}
		if (!closed)
			*probs |= HM_PARAM_SYNTAX;
		/* anything but CFWS before the next ';' is junk a lenient parser drops */
		const char *q = skip_cfws(p, end);
		if (q < end && *q != ';')
			*probs |= HM_PARAM_SYNTAX;
		p = skip_to_semicolon(q, end);
	} else {
		/* a token runs to ';' or a comment; clients accept spaces inside */
		const char *start = p;
		while (p < end && *p != ';' && *p != '(')
			p++;
		const char *e = p;
		while (e > start && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
			e--;
		const char *q = skip_cfws(p, end);
		if (q < end && *q != ';')
			*probs |= HM_PARAM_SYNTAX;
		p = skip_to_semicolon(q, end);
		for (const char *c = start; c < e; c++)
			if (is_tspecial((unsigned char)*c) && *c != '/' && *c != '?' && *c != '=' &&
			    *c != '@' && *c != ':')
				*probs |= HM_PARAM_SYNTAX;
		if (hm_buf_append(&b, start, (size_t)(e - start)) < 0)
			goto fail;
	}
	*pp = p;
	if (!b.data) {
		b.data = calloc(1, 1);
		if (!b.data)
			goto fail;
	}
	*len_r = b.len;
	return b.data;
fail:
	hm_buf_free(&b);
	return NULL;
}

/* add_param - append a parsed parameter, taking ownership of name/value;
 * the array grows with the field (no count bound: see the header) */
static int add_param(struct hm_mimefield *f, char *name, char *value, size_t vlen)
{
	if (f->nparams == f->params_cap) {
		size_t ncap = f->params_cap ? f->params_cap * 2 : 8;
		struct hm_param *np = ncap < SIZE_MAX / sizeof *np ?
					      realloc(f->params, ncap * sizeof *np) : NULL;
		if (!np) {
			free(name);
			free(value);
			return -1;
		}
		f->params = np;
		f->params_cap = ncap;
	}
	struct hm_param *p = &f->params[f->nparams];
	memset(p, 0, sizeof *p);
	p->section = -1;
	/* RFC 2231: attribute*N*, attribute*N, attribute* */
	char *star = strchr(name, '*');
	if (star) {
		char *s = star + 1;
		if (*s == 0) {
			p->extended = true;
		} else if (isdigit((unsigned char)*s)) {
			long n = 0;
			while (isdigit((unsigned char)*s) && n <= HM_PARAM_SECTION_MAX)
				n = n * 10 + (*s++ - '0');
			if (*s == '*') {
				p->extended = true;
				s++;
			}
			if (*s != 0 || n > HM_PARAM_SECTION_MAX)
				f->problems |= HM_PARAM_SYNTAX;
			p->section = (int)(n > HM_PARAM_SECTION_MAX ? HM_PARAM_SECTION_MAX : n);
		} else {
			f->problems |= HM_PARAM_SYNTAX;
		}
		*star = 0;
	}
	p->name = name;
	if (p->extended && p->section <= 0) {
		/* charset'language'value — only the initial section carries them */
		char *q1 = memchr(value, '\'', vlen);
		char *q2 = q1 ? memchr(q1 + 1, '\'', vlen - (size_t)(q1 + 1 - value)) : NULL;
		if (q1 && q2) {
			p->charset = dup_lower(value, (size_t)(q1 - value));
			if (!p->charset) {
				free(value);
				return -1;
			}
			size_t rest = vlen - (size_t)(q2 + 1 - value);
			memmove(value, q2 + 1, rest);
			vlen = rest;
			value[vlen] = 0;
		} else {
			f->problems |= HM_PARAM_SYNTAX;
		}
	}
	if (p->extended)
		vlen = pct_decode(value, vlen);
	/* a NUL in a quoted or token value; %00 in an extended value may be part
	 * of a UTF-16 character, the decoded name is checked by the caller */
	if (!p->extended && memchr(value, 0, vlen))
		f->problems |= HM_PARAM_NUL;
	p->value = value;
	p->value_len = vlen;
	f->nparams++;
	return 0;
}

/* by_name_section - qsort order: name, then section (plain ones first, split by
 * extended), then position in the field */
static int by_name_section(const void *a, const void *b)
{
	const struct hm_param *x = *(const struct hm_param *const *)a;
	const struct hm_param *y = *(const struct hm_param *const *)b;
	int c = strcmp(x->name, y->name);
	if (c)
		return c;
	if (x->section != y->section)
		return (x->section > y->section) - (x->section < y->section);
	if (x->section < 0 && x->extended != y->extended)
		return (int)x->extended - (int)y->extended;
	return (x > y) - (x < y);
}

/* by_name_pos - qsort order: name, then position in the field */
static int by_name_pos(const void *a, const void *b)
{
	const struct hm_param *x = *(const struct hm_param *const *)a;
	const struct hm_param *y = *(const struct hm_param *const *)b;
	int c = strcmp(x->name, y->name);
	return c ? c : (x > y) - (x < y);
}

/* field_problems - duplicates (one name and section given twice; plain ones
 * compared with plain ones of the same form) and RFC 2231 §3 continuations
 * with gaps or out of order (clients that join by appearance and those that
 * sort read different names).  Sorting keeps it O(n log n) however many
 * parameters the field holds.  Returns 0, -1 ENOMEM. */
static int field_problems(struct hm_mimefield *f)
{
	size_t n = f->nparams;
	if (n == 0)
		return 0;
	struct hm_param **v = malloc(n * sizeof(struct hm_param *));
	if (!v)
		return -1;
	for (size_t i = 0; i < n; i++)
		v[i] = &f->params[i];
	qsort(v, n, sizeof(struct hm_param *), by_name_section);
	for (size_t i = 1; i < n; i++)
		if (strcmp(v[i - 1]->name, v[i]->name) == 0 &&
		    v[i - 1]->section == v[i]->section &&
		    (v[i]->section >= 0 || v[i - 1]->extended == v[i]->extended))
			f->problems |= HM_PARAM_DUP;
	/* continuations: per name, in order of appearance */
	size_t m = 0;
	for (size_t i = 0; i < n; i++)
		if (f->params[i].section >= 0)
			v[m++] = &f->params[i];
	qsort(v, m, sizeof(struct hm_param *), by_name_pos);
	for (size_t i = 0; i < m;) {
		size_t j = i;
		int maxsec = -1, prev = -1;
		while (j < m && strcmp(v[j]->name, v[i]->name) == 0) {
			if (v[j]->section < prev)
				f->problems |= HM_PARAM_ORDER;
			prev = v[j]->section;
			if (v[j]->section > maxsec)
				maxsec = v[j]->section;
			j++;
		}
		if (j - i != (size_t)maxsec + 1)
			f->problems |= HM_PARAM_GAP;
		i = j;
	}
	free(v);
	return 0;
}

int hm_mimefield_parse(const char *s, size_t len, struct hm_mimefield *f)
{
	memset(f, 0, sizeof *f);
	const char *p = s, *end = s + len;
	p = skip_cfws(p, end);
	const char *start = p;
	while (p < end && *p != ';' && *p != '(' && *p != ' ' && *p != '\t' && *p != '\r' &&
	       *p != '\n')
		p++;
	const char *tok_end = p;
	p = skip_cfws(p, end);
	/* a lenient reader also accepts `multipart/mixed boundary=x` (no ';') */
	if (p < end && *p != ';')
		f->problems |= HM_PARAM_SYNTAX;
	f->value = dup_lower(start, (size_t)(tok_end - start));
	if (!f->value)
		return -1;
	while (p < end) {
		if (*p == ';')
			p++;
		p = skip_cfws(p, end);
		if (p >= end)
			break;
		const char *ns = p;
		while (p < end && *p != '=' && *p != ';' && !(*p == ' ' || *p == '\t' || *p == '('))
			p++;
		const char *ne = p;
		p = skip_cfws(p, end);
		if (ne == ns || p >= end || *p != '=') {
			/* attribute without value: skipped by every client */
			f->problems |= HM_PARAM_SYNTAX;
			const char *q = skip_to_semicolon(p, end);
			if (q == p && p < end && *p != ';')
				q++;
			p = q;
			continue;
		}
		p++; /* '=' */
		p = skip_cfws(p, end);
		size_t vlen = 0;
		char *v = parse_value(&p, end, &vlen, &f->problems);
		char *n = v ? dup_lower(ns, (size_t)(ne - ns)) : NULL;
		if (!v || !n) {
			free(v);
			free(n);
			hm_mimefield_free(f);
			errno = ENOMEM;
			return -1;
		}
		if (add_param(f, n, v, vlen) < 0) {
			hm_mimefield_free(f);
			errno = ENOMEM;
			return -1;
		}
	}
	if (field_problems(f) < 0) {
		hm_mimefield_free(f);
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

void hm_mimefield_free(struct hm_mimefield *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->nparams; i++) {
		free(f->params[i].name);
		free(f->params[i].value);
		free(f->params[i].charset);
	}
	free(f->params);
	free(f->value);
	memset(f, 0, sizeof *f);
}

bool hm_mimefield_has(const struct hm_mimefield *f, const char *name)
{
	for (size_t i = 0; i < f->nparams; i++)
		if (strcmp(f->params[i].name, name) == 0)
			return true;
	return false;
}

/* section_cmp - qsort order of continuation sections by index */
static int section_cmp(const void *a, const void *b)
{
	const struct hm_param *x = *(const struct hm_param *const *)a;
	const struct hm_param *y = *(const struct hm_param *const *)b;
	return (x->section > y->section) - (x->section < y->section);
}

/* join_sections - join the continuation sections in the given order and
 * convert from the initial section's charset.  *probs gets GAP/BAD_CHARSET. */
static char *join_sections(struct hm_param **sec, size_t n, bool check_gap, size_t *len_r,
			   unsigned *probs)
{
	size_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += sec[i]->value_len; /* all in memory: cannot wrap */
	struct hm_buf b;
	hm_buf_init(&b, out_max(total));
	const char *charset = NULL;
	bool any_ext = false;
	for (size_t i = 0; i < n; i++) {
		if (check_gap && sec[i]->section != (int)i && sec[i]->section >= 0)
			*probs |= HM_PARAM_GAP;
		if (sec[i]->charset && !charset)
			charset = sec[i]->charset;
		any_ext |= sec[i]->extended;
		if (hm_buf_append(&b, sec[i]->value, sec[i]->value_len) < 0 && errno == ENOMEM) {
			hm_buf_free(&b);
			return NULL;
		}
	}
	if (!b.data) {
		b.data = calloc(1, 1);
		if (!b.data)
			return NULL;
	}
	if (any_ext && charset && *charset && strcmp(charset, "us-ascii") != 0 &&
	    strcmp(charset, "utf-8") != 0) {
		/* invalid sequences become U+FFFD; an unknown charset keeps the bytes */
		struct hm_buf c;
		hm_buf_init(&c, out_max(b.len));
		int r = hm_charset_to_utf8(&c, charset, b.data, b.len);
		if (r >= 0 && c.data) {
			hm_buf_free(&b);
			*len_r = c.len;
			return c.data;
		}
		int e = errno;
		hm_buf_free(&c);
		if (r < 0 && e == ENOMEM) {
			hm_buf_free(&b);
			return NULL;
		}
		*probs |= HM_PARAM_BAD_CHARSET;
	}
	*len_r = b.len;
	return b.data;
}

/* all readings of one parameter, in preference order; grows with the field
 * (one per section and per plain value, plus the joins) */
struct readings {
	char **v;
	size_t *l;
	size_t n, cap;
};

/* add_reading - append one reading; takes ownership (frees v on failure).
 * Duplicates are dropped later, in readings_dedup. Returns 0, -1 ENOMEM. */
static int add_reading(struct readings *r, char *v, size_t l)
{
	if (r->n == r->cap) {
		size_t ncap = r->cap ? r->cap * 2 : 8;
		char **nv = ncap < SIZE_MAX / sizeof *nv ? realloc(r->v, ncap * sizeof *nv) : NULL;
		if (!nv) {
			free(v);
			return -1;
		}
		r->v = nv;
		size_t *nl = realloc(r->l, ncap * sizeof *nl);
		if (!nl) {
			free(v);
			return -1;
		}
		r->l = nl;
		r->cap = ncap;
	}
	r->v[r->n] = v;
	r->l[r->n++] = l;
	return 0;
}

struct reading_ref {
	const struct readings *r;
	size_t i;
};

/* by_bytes - qsort order: length, bytes, then position (first kept) */
static int by_bytes(const void *a, const void *b)
{
	const struct reading_ref *x = a, *y = b;
	size_t xl = x->r->l[x->i], yl = y->r->l[y->i];
	if (xl != yl)
		return (xl > yl) - (xl < yl);
	int c = memcmp(x->r->v[x->i], y->r->v[y->i], xl);
	return c ? c : (x->i > y->i) - (x->i < y->i);
}

/* readings_dedup - free and drop readings equal to an earlier one, keeping the
 * order of the rest; O(n log n).  Returns 0, -1 ENOMEM. */
static int readings_dedup(struct readings *r)
{
	if (r->n < 2)
		return 0;
	struct reading_ref *s = malloc(r->n * sizeof *s);
	if (!s)
		return -1;
	for (size_t i = 0; i < r->n; i++)
		s[i] = (struct reading_ref){r, i};
	qsort(s, r->n, sizeof *s, by_bytes);
	size_t keep = s[0].i; /* first (earliest) of the current run of equal readings */
	for (size_t k = 1; k < r->n; k++) {
		size_t i = s[k].i;
		if (r->l[i] == r->l[keep] && memcmp(r->v[i], r->v[keep], r->l[i]) == 0) {
			free(r->v[i]);
			r->v[i] = NULL;
		} else {
			keep = i;
		}
	}
	free(s);
	size_t o = 0;
	for (size_t i = 0; i < r->n; i++)
		if (r->v[i]) {
			r->v[o] = r->v[i];
			r->l[o++] = r->l[i];
		}
	r->n = o;
	return 0;
}

static char *memdup0(const char *s, size_t n)
{
	char *r = malloc(n + 1);
	if (r) {
		memcpy(r, s, n);
		r[n] = 0;
	}
	return r;
}

/* ew_reading - RFC 2047 decoding of a plain value, as clients do inside
 * quoted parameters; NULL when there is nothing to decode */
static char *ew_reading(const char *v, size_t l, size_t *len_r)
{
	if (l < 8 || !memmem(v, l, "=?", 2))
		return NULL;
	struct hm_buf b;
	hm_buf_init(&b, out_max(l));
	if (hm_rfc2047_decode(&b, v, l) < 0 || !b.data) {
		hm_buf_free(&b);
		return NULL;
	}
	*len_r = b.len;
	return b.data;
}

/* collect - every reading of NAME, in preference order (RFC 2231 first);
 * with all false only what hm_mimefield_get needs */
static int collect(const struct hm_mimefield *f, const char *name, struct readings *r, bool all)
{
	size_t nsec = 0;
	for (size_t i = 0; i < f->nparams; i++)
		if (strcmp(f->params[i].name, name) == 0 &&
		    (f->params[i].section >= 0 || f->params[i].extended))
			nsec++;
	if (nsec > 0) {
		int rc = -1;
		struct hm_param **sec = malloc(nsec * sizeof(struct hm_param *));
		struct hm_param **sorted = malloc(nsec * sizeof(struct hm_param *));
		if (!sec || !sorted)
			goto sec_done;
		size_t k = 0;
		for (size_t i = 0; i < f->nparams; i++) {
			struct hm_param *p = &f->params[i];
			if (strcmp(p->name, name) == 0 && (p->section >= 0 || p->extended))
				sec[k++] = p;
		}
		memcpy(sorted, sec, nsec * sizeof(struct hm_param *));
		qsort(sorted, nsec, sizeof(struct hm_param *), section_cmp);
		unsigned probs = 0;
		size_t l;
		char *v = join_sections(sorted, nsec, true, &l, &probs);
		if (!v || add_reading(r, v, l) < 0)
			goto sec_done;
		if (all && memcmp(sorted, sec, nsec * sizeof(struct hm_param *)) != 0) {
			v = join_sections(sec, nsec, false, &l, &probs);
			if (!v || add_reading(r, v, l) < 0)
				goto sec_done;
		}
		/* a client that ignores RFC 2231 charsets shows the raw bytes */
		for (size_t i = 0; all && i < nsec; i++) {
			char *raw = memdup0(sec[i]->value, sec[i]->value_len);
			if (!raw || add_reading(r, raw, sec[i]->value_len) < 0)
				goto sec_done;
		}
		rc = 0;
sec_done:
		free(sec);
		free(sorted);
		if (rc < 0)
			return -1;
	}
	for (size_t i = 0; i < f->nparams; i++) {
		struct hm_param *p = &f->params[i];
		if (strcmp(p->name, name) != 0 || p->section >= 0 || p->extended)
			continue;
		size_t l;
		char *d = ew_reading(p->value, p->value_len, &l);
		if (d && add_reading(r, d, l) < 0)
			return -1;
		if (all || !d) {
			char *v = memdup0(p->value, p->value_len);
			if (!v || add_reading(r, v, p->value_len) < 0)
				return -1;
		}
		if (!all)
			break;
	}
	return all ? readings_dedup(r) : 0;
}

static void readings_free(struct readings *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->v[i]);
	free(r->v);
	free(r->l);
	memset(r, 0, sizeof *r);
}

int hm_mimefield_readings(const struct hm_mimefield *f, const char *name,
			  hm_reading_fn *fn, void *ctx)
{
	struct readings r = {0};
	if (collect(f, name, &r, true) < 0) {
		readings_free(&r);
		errno = ENOMEM;
		return -1;
	}
	int rc = 0;
	for (size_t i = 0; i < r.n && rc == 0; i++)
		rc = fn(ctx, r.v[i], r.l[i]);
	readings_free(&r);
	return rc;
}

char *hm_mimefield_get(const struct hm_mimefield *f, const char *name, size_t *len_r)
{
	struct readings r = {0};
	if (collect(f, name, &r, false) < 0) {
		readings_free(&r);
		errno = ENOMEM;
		return NULL;
	}
	if (r.n == 0) {
		readings_free(&r);
		errno = 0;
		return NULL;
	}
	char *v = r.v[0];
	if (len_r)
		*len_r = r.l[0];
	r.v[0] = NULL;
	readings_free(&r);
	return v;
}
