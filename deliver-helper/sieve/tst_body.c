/* tst_body.c — the body test (RFC 5173):
 *   body [COMPARATOR] [MATCH-TYPE] [BODY-TRANSFORM] <key-list>
 *   BODY-TRANSFORM = :raw / :content <content-types> / :text
 *
 * :raw matches the undecoded body; :content matches the decoded parts whose
 * type matches ("text" = any text subtype, "" = any part, "multipart" = the
 * preamble/epilogue text of multiparts); :text (the default) matches the
 * decoded text parts, HTML turned into text, as Pigeonhole does.
 * Relies on: sv_message.c's MIME walk.  Bounded by limits.max_body.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sv_int.h"

/* type_matches - RFC 5173 5.2: "type" matches all subtypes, "type/sub" exactly */
static bool type_matches(const char *want, size_t wl, const char *ctype)
{
	if (wl == 0)
		return strncmp(ctype, "multipart/", 10) != 0;
	if (memchr(want, '/', wl))
		return strlen(ctype) == wl && strncasecmp(want, ctype, wl) == 0;
	return strncasecmp(ctype, want, wl) == 0 && ctype[wl] == '/';
}

/* html_to_text - the text of an HTML part: tags become a space, the
 * content of <script> and <style> is dropped, the common entities and
 * numeric references are decoded.  Returns malloc'd text (NULL: ENOMEM). */
static char *html_to_text(const char *h, size_t len, size_t *len_r)
{
	struct hm_buf b;
	hm_buf_init(&b, len * 2 + 16);
	size_t i = 0;
	while (i < len) {
		if (h[i] == '<') {
			bool skip = (len - i > 7 && strncasecmp(h + i, "<script", 7) == 0) ||
				    (len - i > 6 && strncasecmp(h + i, "<style", 6) == 0);
			const char *gt = memchr(h + i, '>', len - i);
			size_t end = gt ? (size_t)(gt - h) + 1 : len;
			if (skip) {
				const char *close = NULL;
				for (size_t k = end; k + 1 < len; k++)
					if (h[k] == '<' && h[k + 1] == '/') {
						close = h + k;
						break;
					}
				if (close) {
					const char *g2 = memchr(close, '>', len - (size_t)(close - h));
					end = g2 ? (size_t)(g2 - h) + 1 : len;
				}
			}
			hm_buf_putc(&b, ' ');
			i = end;
			continue;
		}
		if (h[i] == '&') {
			static const struct { const char *e; const char *t; } ents[] = {
				{ "&amp;", "&" }, { "&lt;", "<" }, { "&gt;", ">" },
				{ "&quot;", "\"" }, { "&apos;", "'" }, { "&nbsp;", " " },
				{ NULL, NULL }
			};
			bool done = false;
			for (size_t k = 0; ents[k].e && !done; k++) {
				size_t el = strlen(ents[k].e);
				if (len - i >= el && strncasecmp(h + i, ents[k].e, el) == 0) {
					hm_buf_puts(&b, ents[k].t);
					i += el;
					done = true;
				}
			}
			if (!done && len - i > 3 && h[i + 1] == '#') {
				size_t k = i + 2;
				unsigned long cp = 0;
				bool hex = k < len && (h[k] == 'x' || h[k] == 'X');
				if (hex)
					k++;
				size_t ds = k;
				while (k < len && k - ds < 8 &&
				       ((h[k] >= '0' && h[k] <= '9') ||
					(hex && ((h[k] | 32) >= 'a' && (h[k] | 32) <= 'f')))) {
					int d = h[k] <= '9' ? h[k] - '0' : (h[k] | 32) - 'a' + 10;
					cp = cp * (hex ? 16 : 10) + (unsigned long)d;
					k++;
				}
				if (k > ds && k < len && h[k] == ';' && cp > 0 && cp <= 0x10FFFF &&
				    !(cp >= 0xD800 && cp <= 0xDFFF)) {
					char u[5];
					size_t ul;
					if (cp < 0x80) { u[0] = (char)cp; ul = 1; }
					else if (cp < 0x800) { u[0] = (char)(0xC0 | (cp >> 6)); u[1] = (char)(0x80 | (cp & 0x3F)); ul = 2; }
					else if (cp < 0x10000) { u[0] = (char)(0xE0 | (cp >> 12)); u[1] = (char)(0x80 | ((cp >> 6) & 0x3F)); u[2] = (char)(0x80 | (cp & 0x3F)); ul = 3; }
					else { u[0] = (char)(0xF0 | (cp >> 18)); u[1] = (char)(0x80 | ((cp >> 12) & 0x3F)); u[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); u[3] = (char)(0x80 | (cp & 0x3F)); ul = 4; }
					hm_buf_append(&b, u, ul);
					i = k + 1;
					done = true;
				}
			}
			if (done)
				continue;
		}
		hm_buf_putc(&b, h[i]);
		i++;
	}
	*len_r = b.len;
	char *s = hm_buf_steal(&b, NULL);
	hm_buf_free(&b);
	return s;
}

static int validate_body(struct sv_comp *c, struct sv_node *n)
{
	(void)c;
	(void)n;
	return 0;
}

static int exec_body(struct sv_run *r, struct sv_node *n)
{
	struct sv_match m;
	if (sv_match_begin(&m, r, n, NULL) < 0)
		return -1;
	m.no_vars = true;     /* Pigeonhole: body sets no match variables */
	int x = 0;
	if (sv_has(n->o.tags, TG_RAW)) {
		size_t len = r->msg.blen;
		if (len > r->lim.max_body)
			len = r->lim.max_body;
		x = sv_match_value(&m, r->msg.body, len);
		goto done;
	}
	int prc = sv_msg_parts(&r->msg, r->lim.max_body);
	if (prc < 0) {
		/* a part beyond the limits is never silently left unsearched (it
		 * could hold what the rule looks for): the run fails, keep */
		sv_match_abort(&m);
		if (prc == -2)
			return sv_rt_error(r, n, "the message has more MIME parts or deeper "
					   "nesting than the body test searches");
		return sv_rt_error(r, n, "out of memory");
	}
	const struct sv_arg *types = sv_tagarg(n, TG_CONTENT);
	char **tv = NULL;
	size_t *tl = NULL;
	size_t nt = types ? types->n : 0;
	if (nt) {
		tv = calloc(nt, sizeof *tv);
		tl = calloc(nt, sizeof *tl);
		if (!tv || !tl) {
			free(tv);
			free(tl);
			sv_match_abort(&m);
			return sv_rt_error(r, n, "out of memory");
		}
		for (size_t i = 0; i < nt; i++) {
			tv[i] = sv_expand(r, n, &types->v[i], &tl[i]);
			if (!tv[i]) {
				x = -1;
				break;
			}
		}
	}
	for (size_t p = 0; p < r->msg.nparts && x == 0; p++) {
		const struct sv_bodypart *bp = &r->msg.parts[p];
		bool want;
		if (nt) {
			want = false;
			for (size_t i = 0; i < nt && !want; i++)
				want = type_matches(tv[i], tl[i], bp->ctype) ||
				       (strncmp(bp->ctype, "multipart/", 10) == 0 &&
					tl[i] > 0 && type_matches(tv[i], tl[i], bp->ctype) );
			/* "multipart" selects the multipart's own text */
			for (size_t i = 0; i < nt && !want; i++)
				want = strncmp(bp->ctype, "multipart/", 10) == 0 &&
				       (strncasecmp(tv[i], "multipart", tl[i]) == 0 && tl[i] >= 9);
		} else {
			want = strncmp(bp->ctype, "text/", 5) == 0;
		}
		if (want && !nt && strcmp(bp->ctype, "text/html") == 0) {
			/* :text sees HTML as text (Pigeonhole converts it) */
			size_t tl2;
			char *t = html_to_text(bp->text, bp->len, &tl2);
			if (!t) {
				x = sv_rt_error(r, n, "out of memory");
				break;
			}
			x = sv_match_value(&m, t, tl2);
			free(t);
		} else if (want) {
			x = sv_match_value(&m, bp->text, bp->len);
		}
	}
	for (size_t i = 0; i < nt; i++)
		free(tv ? tv[i] : NULL);
	free(tv);
	free(tl);
done:
	if (x < 0) {
		sv_match_abort(&m);
		return -1;
	}
	return sv_match_end(&m);
}

static const enum sv_tag body_tags[] = { TG_RAW, TG_CONTENT, TG_TEXT, TG_COUNT_ALL };

const struct sv_def sv_def_body = {
	.name = "body", .ext = EXT_BODY, .is_test = true, .groups = SV_MATCHING,
	.tags = body_tags, .pos = "l", .validate = validate_body, .exec = exec_body,
};
