/* hm_address.c — RFC 5322 address-list parser.
 *
 * What for: Sieve's address/envelope tests, the junk engine's sender lists,
 * the vacation responder's recipient check — one parser for all of them.
 * Relies on: hm_rfc2047 for encoded display names, hm_buf for bounded text.
 * How it works: the value is cut into tokens (atoms incl. dots, quoted
 * strings, domain literals, specials; comments remembered separately), then
 * split into addresses at top-level commas; "phrase:" opens a group and ";"
 * closes it.  Nothing recurses; comment nesting is a counter.
 * How it fails: malformed addresses are returned with invalid=true and as
 * much of the text as could be recovered; only ENOMEM is an error.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hm_address.h"
#include "hm_buf.h"
#include "hm_rfc2047.h"

enum tok_type { T_ATOM, T_QUOTED, T_DLIT, T_SPECIAL };

struct tok {
	enum tok_type type;
	char sp;            /* white space or a comment precedes the token */
	const char *p;      /* raw text (quoted: without the quotes) */
	size_t n;
	size_t comment;     /* index+1 of the comment that follows, 0 none */
};

struct cmt { const char *p; size_t n; };

static int is_special(char c)
{
	return c == '(' || c == ')' || c == '<' || c == '>' || c == '[' ||
	       c == ']' || c == ':' || c == ';' || c == '@' || c == '\\' ||
	       c == ',' || c == '"';
}

static int is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* append_unescaped - quoted-pair aware copy of quoted-string/comment text */
static int append_unescaped(struct hm_buf *b, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\\' && i + 1 < n)
			i++;
		else if (p[i] == '\r' || p[i] == '\n')
			continue;
		if (hm_buf_putc(b, p[i]) < 0)
			return -1;
	}
	return 0;
}

/* tokenize - split in[0..len) into toks (capacity len+1) and comments.
 * Returns the number of tokens. */
static size_t tokenize(const char *in, size_t len, struct tok *toks,
		       struct cmt *cmts, size_t *ncmt_r)
{
	size_t nt = 0, i = 0;
	char sp = 0;
	*ncmt_r = 0;
	while (i < len) {
		char c = in[i];
		if (is_ws(c) || c == '\0') {
			sp = 1;
			i++;
		} else if (c == '(') {
			size_t depth = 1, s = ++i;
			while (i < len && depth > 0) {
				if (in[i] == '\\' && i + 1 < len)
					i++;
				else if (in[i] == '(')
					depth++;
				else if (in[i] == ')')
					depth--;
				i++;
			}
			size_t e = depth == 0 ? i - 1 : i;
			cmts[*ncmt_r].p = in + s;
			cmts[*ncmt_r].n = e - s;
			(*ncmt_r)++;
			if (nt > 0 && toks[nt - 1].comment == 0)
				toks[nt - 1].comment = *ncmt_r;
			sp = 1;
		} else if (c == '"') {
			size_t s = ++i;
			while (i < len && in[i] != '"') {
				if (in[i] == '\\' && i + 1 < len)
					i++;
				i++;
			}
			toks[nt] = (struct tok){ T_QUOTED, sp, in + s, i - s, 0 };
			nt++;
			if (i < len)
				i++;
			sp = 0;
		} else if (c == '[') {
			size_t s = i++;
			while (i < len && in[i] != ']') {
				if (in[i] == '\\' && i + 1 < len)
					i++;
				i++;
			}
			if (i < len)
				i++;
			toks[nt] = (struct tok){ T_DLIT, sp, in + s, i - s, 0 };
			nt++;
			sp = 0;
		} else if (is_special(c)) {
			toks[nt] = (struct tok){ T_SPECIAL, sp, in + i, 1, 0 };
			nt++;
			i++;
			sp = 0;
		} else {
			size_t s = i;
			while (i < len && !is_ws(in[i]) && !is_special(in[i]) && in[i] != '\0')
				i++;
			toks[nt] = (struct tok){ T_ATOM, sp, in + s, i - s, 0 };
			nt++;
			sp = 0;
		}
	}
	return nt;
}

static int tok_is(const struct tok *t, char c)
{
	return t->type == T_SPECIAL && t->p[0] == c;
}

/* phrase - display-name text of toks[a..b): words joined by single spaces,
 * then RFC 2047-decoded.  Returns malloc'd string, NULL when empty (errno 0)
 * or on ENOMEM (errno set). */
static char *phrase(const struct tok *t, size_t a, size_t b, size_t max)
{
	struct hm_buf raw, dec;
	hm_buf_init(&raw, max);
	hm_buf_init(&dec, max * 3 + 16);
	errno = 0;
	for (size_t i = a; i < b; i++) {
		if (raw.len > 0 && t[i].sp && hm_buf_putc(&raw, ' ') < 0)
			goto fail;
		int r = t[i].type == T_QUOTED ? append_unescaped(&raw, t[i].p, t[i].n)
					      : hm_buf_append(&raw, t[i].p, t[i].n);
		if (r < 0)
			goto fail;
	}
	if (raw.len == 0) {
		hm_buf_free(&raw);
		return NULL;
	}
	if (hm_rfc2047_decode(&dec, raw.data, raw.len) < 0)
		goto fail;
	hm_buf_free(&raw);
	char *s = hm_buf_steal(&dec, NULL);
	if (!s)
		errno = ENOMEM;
	return s;
fail:
	/* the bounds cannot be reached (raw holds at most the input, max is its
	 * length + 1; decoding grows at most 3x), so what is left is ENOMEM,
	 * the only errno the contract names */
	errno = ENOMEM;
	hm_buf_free(&raw);
	hm_buf_free(&dec);
	return NULL;
}

/* comment_text - decoded text of comment k (1-based), NULL when none */
static char *comment_text(const struct cmt *c, size_t k, size_t max)
{
	if (k == 0)
		return NULL;
	struct hm_buf raw, dec;
	hm_buf_init(&raw, max);
	hm_buf_init(&dec, max * 3 + 16);
	char *s = NULL;
	if (append_unescaped(&raw, c[k - 1].p, c[k - 1].n) == 0 && raw.len > 0 &&
	    hm_rfc2047_decode(&dec, raw.data, raw.len) >= 0)
		s = hm_buf_steal(&dec, NULL);
	hm_buf_free(&raw);
	hm_buf_free(&dec);
	return s;
}

/* addr_spec - fill a's local/domain from toks[a..b) */
static int addr_spec(const struct tok *t, size_t s, size_t e, size_t max,
		     struct hm_addr *a)
{
	struct hm_buf lp, dom;
	hm_buf_init(&lp, max);
	hm_buf_init(&dom, max);
	size_t at = e;
	for (size_t i = s; i < e; i++)
		if (tok_is(&t[i], '@')) {
			at = i;
			break;
		}
	for (size_t i = s; i < at; i++) {
		int r;
		if (t[i].type == T_QUOTED)
			r = append_unescaped(&lp, t[i].p, t[i].n);
		else {
			if (t[i].type == T_SPECIAL)
				a->invalid = true;
			r = hm_buf_append(&lp, t[i].p, t[i].n);
		}
		if (r < 0)
			goto fail;
	}
	if (at < e) {
		for (size_t i = at + 1; i < e; i++) {
			if (t[i].type == T_SPECIAL || t[i].type == T_QUOTED)
				a->invalid = true;
			if (hm_buf_append(&dom, t[i].p, t[i].n) < 0)
				goto fail;
		}
		if (dom.len == 0 || lp.len == 0)
			a->invalid = true;
		a->domain = hm_buf_steal(&dom, NULL);
		if (!a->domain)
			goto fail;
	} else {
		a->invalid = true;
	}
	a->local = hm_buf_steal(&lp, NULL);
	if (!a->local)
		goto fail;
	hm_buf_free(&dom);
	return 0;
fail:
	hm_buf_free(&lp);
	hm_buf_free(&dom);
	errno = ENOMEM;
	return -1;
}

static void addr_free(struct hm_addr *a)
{
	free(a->local);
	free(a->domain);
	free(a->display);
	free(a->group);
	memset(a, 0, sizeof *a);
}

/* one_address - parse toks[s..e) (no top-level ',' ';' inside) into list */
static int one_address(const struct tok *t, size_t s, size_t e,
		       const struct cmt *cm, size_t max, const char *group,
		       struct hm_addr_list *list, size_t max_addrs)
{
	if (s >= e)
		return 0;
	if (list->n >= max_addrs) {
		list->truncated = true;
		return 0;
	}
	if (list->n == list->cap) {
		size_t nc = list->cap ? list->cap * 2 : 4;
		struct hm_addr *v = realloc(list->v, nc * sizeof *v);
		if (!v)
			return -1;
		list->v = v;
		list->cap = nc;
	}
	struct hm_addr a = { 0 };
	size_t lt = e;
	for (size_t i = s; i < e; i++)
		if (tok_is(&t[i], '<')) {
			lt = i;
			break;
		}
	if (lt < e) {
		size_t gt = lt + 1;
		while (gt < e && !tok_is(&t[gt], '>'))
			gt++;
		if (gt >= e)
			a.invalid = true;
		for (size_t i = gt + 1; i < e; i++)
			a.invalid = true;
		size_t as = lt + 1;
		/* obs-route: "@a,@b:" before the addr-spec (RFC 5322 4.4) */
		if (as < gt && tok_is(&t[as], '@')) {
			size_t k = as;
			while (k < gt && !tok_is(&t[k], ':'))
				k++;
			if (k < gt)
				as = k + 1;
		}
		if (lt > s) {
			errno = 0;
			a.display = phrase(t, s, lt, max);
			if (!a.display && errno)
				return -1;
		}
		if (as == gt) {
			/* "<>" — the null address */
			a.local = strdup("");
			if (!a.local) {
				addr_free(&a);
				return -1;
			}
		} else if (addr_spec(t, as, gt, max, &a) < 0) {
			addr_free(&a);
			return -1;
		}
	} else {
		if (addr_spec(t, s, e, max, &a) < 0) {
			addr_free(&a);
			return -1;
		}
		if (t[e - 1].comment)
			a.display = comment_text(cm, t[e - 1].comment, max);
	}
	if (group) {
		a.group = strdup(group);
		if (!a.group) {
			addr_free(&a);
			return -1;
		}
	}
	list->v[list->n++] = a;
	return 0;
}

void hm_address_list_free(struct hm_addr_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		addr_free(&l->v[i]);
	free(l->v);
	memset(l, 0, sizeof *l);
}

int hm_address_parse(const char *in, size_t len, size_t max_addrs,
		     struct hm_addr_list *list_r)
{
	memset(list_r, 0, sizeof *list_r);
	struct tok *t = calloc(len + 1, sizeof *t);
	struct cmt *cm = calloc(len + 1, sizeof *cm);
	char *group = NULL;
	size_t ncmt, nt;
	if (!t || !cm)
		goto nomem;
	nt = tokenize(in, len, t, cm, &ncmt);
	size_t i = 0;
	size_t max = len + 1;
	while (i < nt) {
		size_t j = i;
		int angle = 0, seen_lt = 0, seen_at = 0;
		for (; j < nt; j++) {
			if (tok_is(&t[j], '<')) {
				angle = 1;
				seen_lt = 1;
			} else if (tok_is(&t[j], '>')) {
				angle = 0;
			} else if (tok_is(&t[j], '@')) {
				seen_at = 1;
			} else if (!angle && (tok_is(&t[j], ',') || tok_is(&t[j], ';'))) {
				break;
			} else if (!angle && tok_is(&t[j], ':') && !seen_lt && !seen_at &&
				   !group) {
				break;
			}
		}
		if (j < nt && tok_is(&t[j], ':')) {
			/* group start: display-name ":" */
			errno = 0;
			group = phrase(t, i, j, max);
			if (!group) {
				if (errno)
					goto nomem;
				group = strdup("");
				if (!group)
					goto nomem;
			}
			i = j + 1;
			continue;
		}
		if (one_address(t, i, j, cm, max, group, list_r, max_addrs) < 0)
			goto nomem;
		if (j < nt && tok_is(&t[j], ';')) {
			free(group);
			group = NULL;
		}
		i = j + 1;
	}
	free(group);
	free(t);
	free(cm);
	return 0;
nomem:
	free(group);
	free(t);
	free(cm);
	hm_address_list_free(list_r);
	errno = ENOMEM;
	return -1;
}
