/* cmd_actions.c — the delivery actions: keep, discard (RFC 5228 4), redirect
 * (RFC 5228 4.2, :copy of RFC 3894), fileinto (RFC 5228 4.1 with :copy,
 * :flags of RFC 5232 and :create of RFC 5490).
 *
 * Relies on: sv_result.c for duplicates, conflicts and limits; hm_address to
 * check redirect addresses.
 * How it fails: an invalid constant redirect address is a compile error; an
 * invalid address produced at runtime (variables) is a runtime error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hm_address.h"
#include "hm_buf.h"
#include "sv_int.h"

/* store_flags - the flags for keep/fileinto: :flags, else the internal
 * variable of imap4flags (RFC 5232 3) */
static int store_flags(struct sv_run *r, struct sv_node *n, char ***fl_r, size_t *nfl_r)
{
	if (sv_tagarg(n, TG_FLAGS))
		return sv_flags_from_list(r, n, sv_tagarg(n, TG_FLAGS), fl_r, nfl_r);
	return sv_flags_current(r, fl_r, nfl_r);
}

static int exec_keep(struct sv_run *r, struct sv_node *n)
{
	char **fl = NULL;
	size_t nfl = 0;
	if (store_flags(r, n, &fl, &nfl) < 0)
		return SV_ERR;
	int rc = sv_add_store(r, n, "INBOX", fl, nfl, false, false);
	sv_strv_free(fl);
	return rc;
}

static const enum sv_tag keep_tags[] = { TG_FLAGS, TG_COUNT_ALL };

const struct sv_def sv_def_keep = {
	.name = "keep", .tags = keep_tags, .pos = "", .exec = exec_keep,
};

static int exec_discard(struct sv_run *r, struct sv_node *n)
{
	struct sieve_action a = { .type = SIEVE_ACT_DISCARD };
	int rc = sv_add_action(r, n, &a);
	if (rc == SV_OK)
		r->keep = false;
	return rc;
}

const struct sv_def sv_def_discard = {
	.name = "discard", .pos = "", .exec = exec_discard,
};

/* fileinto [:copy] [:flags <list>] [:create] <mailbox: string> */
static int exec_fileinto(struct sv_run *r, struct sv_node *n)
{
	size_t len;
	char *folder = sv_expand(r, n, &sv_pos(n, 0)->v[0], &len);
	if (!folder)
		return SV_ERR;
	if (strlen(folder) != len || len == 0) {
		free(folder);
		return sv_rt_error(r, n, "invalid folder name for fileinto");
	}
	char **fl = NULL;
	size_t nfl = 0;
	if (store_flags(r, n, &fl, &nfl) < 0) {
		free(folder);
		return SV_ERR;
	}
	int rc = sv_add_store(r, n, folder, fl, nfl, sv_has(n->o.tags, TG_CREATE),
			      sv_has(n->o.tags, TG_COPY));
	sv_strv_free(fl);
	free(folder);
	return rc;
}

static const enum sv_tag fileinto_tags[] = { TG_COPY, TG_FLAGS, TG_CREATE, TG_COUNT_ALL };

const struct sv_def sv_def_fileinto = {
	.name = "fileinto", .ext = EXT_FILEINTO, .tags = fileinto_tags, .pos = "s",
	.exec = exec_fileinto,
};

/* dot_atom - local is an RFC 5322 dot-atom (atext runs joined by single dots) */
static bool dot_atom(const char *local)
{
	static const char specials[] = "()<>[]:;@\\,.\" ";
	bool prev_dot = true;
	for (const unsigned char *p = (const unsigned char *)local; *p; p++) {
		if (*p == '.') {
			if (prev_dot)
				return false;
			prev_dot = true;
		} else if (*p <= ' ' || *p == 0x7f || strchr(specials, *p)) {
			return false;
		} else {
			prev_dot = false;
		}
	}
	return !prev_dot;
}

/* redirect_target - the single valid address in s as RFC 5321 writes it,
 * local@domain: the local part quoted when it is not a dot-atom (so
 * "a,b"@example.net stays one mailbox), the domain in lower case (it is
 * case-insensitive, RFC 5321 2.4; Pigeonhole prints it so); NULL when s is
 * not exactly one valid address */
static char *redirect_target(const char *s, size_t len)
{
	struct hm_addr_list l;
	if (hm_address_parse(s, len, 2, &l) < 0)
		return NULL;
	char *out = NULL;
	if (l.n == 1 && !l.truncated && !l.v[0].invalid && l.v[0].domain && !l.v[0].group &&
	    l.v[0].local[0]) {
		struct hm_buf b;
		hm_buf_init(&b, 2 * len + 16);
		const char *lp = l.v[0].local;
		int bad = 0;
		if (dot_atom(lp)) {
			bad |= hm_buf_puts(&b, lp);
		} else {
			bad |= hm_buf_putc(&b, '"');
			for (; *lp; lp++) {
				if (*lp == '"' || *lp == '\\')
					bad |= hm_buf_putc(&b, '\\');
				bad |= hm_buf_putc(&b, *lp);
			}
			bad |= hm_buf_putc(&b, '"');
		}
		bad |= hm_buf_putc(&b, '@');
		for (const char *d = l.v[0].domain; *d; d++)
			bad |= hm_buf_putc(&b, (*d >= 'A' && *d <= 'Z') ? (char)(*d + 32) : *d);
		if (!bad)
			out = hm_buf_steal(&b, NULL);
		hm_buf_free(&b);
	}
	hm_address_list_free(&l);
	return out;
}

static int validate_redirect(struct sv_comp *c, struct sv_node *n)
{
	const struct sv_str *s = &sv_pos(n, 0)->v[0];
	if (s->var)
		return 0;
	char *t = redirect_target(s->s, s->len);
	if (!t) {
		sv_error(c, s->line, s->col, "specified redirect address '%s' is invalid", s->s);
		return -1;
	}
	free(t);
	return 0;
}

static int exec_redirect(struct sv_run *r, struct sv_node *n)
{
	size_t len;
	char *s = sv_expand(r, n, &sv_pos(n, 0)->v[0], &len);
	if (!s)
		return SV_ERR;
	char *t = redirect_target(s, len);
	if (!t) {
		int rc = sv_rt_error(r, n, "specified redirect address '%s' is invalid", s);
		free(s);
		return rc;
	}
	free(s);
	struct sieve_action a = { .type = SIEVE_ACT_REDIRECT, .target = t };
	int rc = sv_add_action(r, n, &a);
	if (rc == SV_OK && !sv_has(n->o.tags, TG_COPY))
		r->keep = false;
	return rc;
}

static const enum sv_tag redirect_tags[] = { TG_COPY, TG_COUNT_ALL };

const struct sv_def sv_def_redirect = {
	.name = "redirect", .tags = redirect_tags, .pos = "s",
	.validate = validate_redirect, .exec = exec_redirect,
};
