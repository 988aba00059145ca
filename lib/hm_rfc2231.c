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

#define VALUE_MAX (1u << 20) /* a joined value never exceeds 1 MiB */

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
	hm_buf_init(&b, VALUE_MAX);
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

/* add_param - append a parsed parameter, taking ownership of name/value */
static int add_param(struct hm_mimefield *f, char *name, char *value, size_t vlen)
{
	if (f->nparams >= HM_PARAM_MAX) {
		f->problems |= HM_PARAM_TOO_MANY;
		free(name);
		free(value);
		return 0;
	}
	if (!f->params) {
		f->params = calloc(HM_PARAM_MAX, sizeof *f->params);
		if (!f->params) {
			free(name);
			free(value);
			return -1;
		}
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
	/* duplicates: same name and same section (plain ones: section -1) */
	for (size_t i = 0; i < f->nparams; i++) {
		struct hm_param *o = &f->params[i];
		if (strcmp(o->name, p->name) == 0 && o->section == p->section &&
		    (p->section >= 0 || o->extended == p->extended))
			f->problems |= HM_PARAM_DUP;
	}
	f->nparams++;
	return 0;
}

/* continuation_problems - flag sections out of order or with gaps (RFC 2231 §3:
 * clients that join by appearance and those that sort read different names) */
static void continuation_problems(struct hm_mimefield *f)
{
	for (size_t i = 0; i < f->nparams; i++) {
		const struct hm_param *p = &f->params[i];
		if (p->section < 0)
			continue;
		int maxsec = p->section;
		size_t count = 0;
		for (size_t j = 0; j < f->nparams; j++) {
			const struct hm_param *q = &f->params[j];
			if (q->section < 0 || strcmp(q->name, p->name) != 0)
				continue;
			count++;
			if (q->section > maxsec)
				maxsec = q->section;
			if (j < i && q->section > p->section)
				f->problems |= HM_PARAM_ORDER;
		}
		if (count != (size_t)maxsec + 1)
			f->problems |= HM_PARAM_GAP;
	}
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
	continuation_problems(f);
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
	struct hm_buf b;
	hm_buf_init(&b, VALUE_MAX);
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
		hm_buf_init(&c, VALUE_MAX);
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

struct readings {
	char *v[8];
	size_t l[8];
	size_t n;
};

/* add_reading - remember one reading unless already present; takes ownership */
static void add_reading(struct readings *r, char *v, size_t l)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->l[i] == l && memcmp(r->v[i], v, l) == 0) {
			free(v);
			return;
		}
	if (r->n >= HM_ARRAY_SIZE(r->v)) {
		free(v);
		return;
	}
	r->v[r->n] = v;
	r->l[r->n++] = l;
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
	hm_buf_init(&b, VALUE_MAX);
	if (hm_rfc2047_decode(&b, v, l) < 0 || !b.data) {
		hm_buf_free(&b);
		return NULL;
	}
	*len_r = b.len;
	return b.data;
}

/* collect - every reading of NAME, in preference order (RFC 2231 first) */
static int collect(const struct hm_mimefield *f, const char *name, struct readings *r, bool all)
{
	struct hm_param *sec[HM_PARAM_MAX];
	size_t nsec = 0;
	unsigned probs = 0;
	for (size_t i = 0; i < f->nparams; i++) {
		struct hm_param *p = &f->params[i];
		if (strcmp(p->name, name) != 0)
			continue;
		if (p->section >= 0 || p->extended)
			sec[nsec++] = p;
	}
	if (nsec > 0) {
		struct hm_param *sorted[HM_PARAM_MAX];
		memcpy(sorted, sec, nsec * sizeof(struct hm_param *));
		qsort(sorted, nsec, sizeof(struct hm_param *), section_cmp);
		size_t l;
		char *v = join_sections(sorted, nsec, true, &l, &probs);
		if (!v)
			return -1;
		add_reading(r, v, l);
		if (all && memcmp(sorted, sec, nsec * sizeof(struct hm_param *)) != 0) {
			v = join_sections(sec, nsec, false, &l, &probs);
			if (!v)
				return -1;
			add_reading(r, v, l);
		}
		if (all) {
			/* a client that ignores RFC 2231 charsets shows the raw bytes */
			for (size_t i = 0; i < nsec; i++) {
				char *raw = memdup0(sec[i]->value, sec[i]->value_len);
				if (!raw)
					return -1;
				add_reading(r, raw, sec[i]->value_len);
			}
		}
	}
	for (size_t i = 0; i < f->nparams; i++) {
		struct hm_param *p = &f->params[i];
		if (strcmp(p->name, name) != 0 || p->section >= 0 || p->extended)
			continue;
		size_t l;
		char *d = ew_reading(p->value, p->value_len, &l);
		if (d)
			add_reading(r, d, l);
		if (all || !d) {
			char *v = memdup0(p->value, p->value_len);
			if (!v)
				return -1;
			add_reading(r, v, p->value_len);
		}
		if (!all)
			break;
	}
	return 0;
}

static void readings_free(struct readings *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->v[i]);
	r->n = 0;
}

int hm_mimefield_readings(const struct hm_mimefield *f, const char *name,
			  hm_reading_fn *fn, void *ctx)
{
	struct readings r = {.n = 0};
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
	struct readings r = {.n = 0};
	if (collect(f, name, &r, false) < 0) {
		readings_free(&r);
		errno = ENOMEM;
		return NULL;
	}
	if (r.n == 0) {
		errno = 0;
		return NULL;
	}
	char *v = r.v[0];
	if (len_r)
		*len_r = r.l[0];
	r.v[0] = NULL;
	for (size_t i = 1; i < r.n; i++)
		free(r.v[i]);
	return v;
}
