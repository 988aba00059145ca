/* tst_body.c — the body test (RFC 5173):
 *   body [COMPARATOR] [MATCH-TYPE] [BODY-TRANSFORM] <key-list>
 *   BODY-TRANSFORM = :raw / :content <content-types> / :text
 *
 * :raw matches the undecoded body; :content matches the decoded parts whose
 * type matches ("text" = any text subtype, "" = any part, "multipart" = the
 * preamble/epilogue text of multiparts); :text (the default) matches the
 * decoded text parts except HTML, as Pigeonhole does.
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
	int x = 0;
	if (n->o.has_tag[TG_RAW]) {
		size_t len = r->msg.blen;
		if (len > r->lim.max_body)
			len = r->lim.max_body;
		x = sv_match_value(&m, r->msg.body, len);
		goto done;
	}
	if (sv_msg_parts(&r->msg, r->lim.max_body) < 0) {
		sv_match_abort(&m);
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
			want = strncmp(bp->ctype, "text/", 5) == 0 &&
			       strcmp(bp->ctype, "text/html") != 0;
		}
		if (want)
			x = sv_match_value(&m, bp->text, bp->len);
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
