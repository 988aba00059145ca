/* ext_vacation.c — RFC 5230 vacation and RFC 6131 vacation-seconds.
 *
 *   vacation [:days n | :seconds n] [:subject s] [:from s] [:addresses l]
 *            [:mime] [:handle s] <reason: string>
 *
 * The engine decides whether a reply may be sent at all (RFC 5230 4.5-4.7,
 * RFC 3834 2-3, Pigeonhole's checks): no reply to the null sender, to
 * system/list addresses (MAILER-DAEMON, LISTSERV, majordomo, owner-*,
 * *-request), to auto-submitted mail, to mail with List-* headers or
 * Precedence bulk/list/junk or X-Auto-Response-Suppress OOF/All, to the
 * user's own addresses, or to mail where none of the user's addresses
 * appears in To/Cc/Bcc/Resent-To/Resent-Cc.  The "once per period"
 * memory is the caller's (deliver glue), keyed by the handle and sender.
 * The period follows Pigeonhole's defaults: at least 1 day, 7 days when none
 * is given (and, for sanity, at most 10 years).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hm_address.h"
#include "sv_int.h"

#define DAY 86400ULL
#define MIN_PERIOD DAY
#define MAX_PERIOD (3650 * DAY)   /* Pigeonhole has no upper bound by default */
#define DEFAULT_PERIOD (7 * DAY)

static int validate_vacation(struct sv_comp *c, struct sv_node *n)
{
	const struct sv_arg *f = sv_tagarg(n, TG_FROM);
	if (f && !f->v[0].var) {
		struct hm_addr_list l;
		if (hm_address_parse(f->v[0].s, f->v[0].len, 2, &l) == 0) {
			bool ok = l.n == 1 && l.v[0].domain && !l.v[0].invalid;
			hm_address_list_free(&l);
			if (!ok) {
				sv_error(c, f->v[0].line, f->v[0].col,
					 "specified :from address '%s' is invalid for vacation action",
					 f->v[0].s);
				return -1;
			}
		}
	}
	return 0;
}

/* addr_eq - local@domain equality, ignoring case */
static bool addr_eq(const char *a, const char *b)
{
	if (!a || !b)
		return false;
	size_t al = strlen(a), bl = strlen(b);
	if (al >= 2 && a[0] == '<' && a[al - 1] == '>') {
		a++;
		al -= 2;
	}
	if (bl >= 2 && b[0] == '<' && b[bl - 1] == '>') {
		b++;
		bl -= 2;
	}
	return al == bl && strncasecmp(a, b, al) == 0;
}

/* is_system_address - RFC 3834 3.1.1 / Pigeonhole's list of senders that
 * must never get an automatic reply */
static bool is_system_address(const char *addr)
{
	const char *at = strrchr(addr, '@');
	size_t ll = at ? (size_t)(at - addr) : strlen(addr);
	if (ll > 0 && addr[0] == '<') {
		addr++;
		ll--;
	}
	static const char *const names[] = { "mailer-daemon", "listserv", "majordomo", NULL };
	for (size_t i = 0; names[i]; i++)
		if (ll == strlen(names[i]) && strncasecmp(addr, names[i], ll) == 0)
			return true;
	if (ll >= 6 && strncasecmp(addr, "owner-", 6) == 0)
		return true;
	if (ll >= 8 && strncasecmp(addr + ll - 8, "-request", 8) == 0)
		return true;
	return false;
}

/* header_is_one_of - the first field called name starts with one of words */
static bool header_is_one_of(struct sv_run *r, const char *name, const char *const *words)
{
	size_t len;
	const char *v = sv_msg_header1(&r->msg, name, &len);
	if (!v)
		return false;
	size_t wl = strcspn(v, " \t;(");
	for (size_t i = 0; words[i]; i++)
		if (wl == strlen(words[i]) && strncasecmp(v, words[i], wl) == 0)
			return true;
	return false;
}

/* sent_to_me - 1 when one of mine appears in To/Cc/Bcc/Resent-To/Resent-Cc,
 * 0 when none does, -1 when a field could not be read in full (more
 * addresses than SV_MAX_ADDRS_PER_FIELD, or no memory): then it is not
 * known, and no reply is sent (RFC 3834 2: when in doubt, do not reply) */
static int sent_to_me(struct sv_run *r, char *const *mine, size_t nmine)
{
	static const char *const hdrs[] = { "to", "cc", "bcc", "resent-to", "resent-cc", NULL };
	size_t nf = sv_msg_nfields(&r->msg);
	int unknown = 0;
	for (size_t h = 0; hdrs[h]; h++)
		for (size_t i = 0; i < nf; i++) {
			if (!sv_hdr_is(&r->msg, i, hdrs[h], strlen(hdrs[h])))
				continue;
			const struct hm_addr_list *l = sv_hdr_addresses(&r->msg, i);
			if (!l || l->truncated)
				unknown = -1;
			for (size_t a = 0; l && a < l->n; a++) {
				if (!l->v[a].domain)
					continue;
				size_t n = strlen(l->v[a].local) + strlen(l->v[a].domain) + 2;
				char *s = malloc(n);
				if (!s) {
					unknown = -1;
					continue;
				}
				snprintf(s, n, "%s@%s", l->v[a].local, l->v[a].domain);
				for (size_t k = 0; k < nmine; k++)
					if (addr_eq(s, mine[k])) {
						free(s);
						return 1;
					}
				free(s);
			}
		}
	return unknown;
}

/* skip_reason - why no reply may be sent, NULL when it may */
static const char *skip_reason(struct sv_run *r, const struct sieve_action *a)
{
	static const char *const auto_no[] = { "no", NULL };
	static const char *const prec[] = { "junk", "bulk", "list", NULL };
	static const char *const lists[] = {
		"list-id", "list-owner", "list-subscribe", "list-post", "list-unsubscribe",
		"list-help", "list-archive", NULL
	};
	const char *from = r->m->env_from;
	if (!from || !*from || strcmp(from, "<>") == 0)
		return "the envelope sender is null";
	if (is_system_address(from))
		return "the sender is a system address";
	size_t len;
	if (sv_msg_header1(&r->msg, "auto-submitted", &len) &&
	    !header_is_one_of(r, "auto-submitted", auto_no))
		return "the message is auto-submitted";
	if (header_is_one_of(r, "precedence", prec))
		return "the message has Precedence bulk/list/junk";
	for (size_t i = 0; lists[i]; i++)
		if (sv_msg_header1(&r->msg, lists[i], &len))
			return "the message comes from a mailing list";
	const char *xars = sv_msg_header1(&r->msg, "x-auto-response-suppress", &len);
	if (xars && (strcasestr(xars, "oof") || strcasestr(xars, "all")))
		return "the message asks for no automatic replies";
	/* the user's addresses: recipient, original recipient, :addresses
	 * (all of them: a list of any length, not a fixed array) */
	size_t nmine = 0;
	while (a->vac_addresses && a->vac_addresses[nmine])
		nmine++;
	char **mine = calloc(nmine + 1, sizeof *mine);
	if (!mine)
		return "out of memory while checking the recipient's addresses";
	nmine = 0;
	if (r->m->env_to)
		mine[nmine++] = (char *)r->m->env_to;
	/* as in Pigeonhole, the original recipient does not count */
	for (size_t i = 0; a->vac_addresses && a->vac_addresses[i]; i++)
		mine[nmine++] = a->vac_addresses[i];
	const char *why = NULL;
	for (size_t i = 0; i < nmine && !why; i++)
		if (addr_eq(from, mine[i]))
			why = "the sender is the recipient";
	int to_me = why ? 1 : sent_to_me(r, mine, nmine);
	free(mine);
	if (why)
		return why;
	if (to_me < 0)
		return "a To/Cc field holds too many addresses to check";
	if (to_me == 0)
		return "none of the recipient's addresses is in To/Cc";
	return NULL;
}

static int exec_vacation(struct sv_run *r, struct sv_node *n)
{
	const struct sv_opts *o = &n->o;
	struct sieve_action a = { .type = SIEVE_ACT_VACATION };
	char *tag_subject = NULL;   /* :subject as given (the handle uses it) */
	size_t len;
	uint64_t secs = DEFAULT_PERIOD;
	if (sv_has(o->tags, TG_DAYS)) {
		uint64_t d = sv_tagarg(n, TG_DAYS)->num;
		secs = d > MAX_PERIOD / DAY ? MAX_PERIOD : d * DAY;
		(void)0;
	} else if (sv_has(o->tags, TG_SECONDS)) {
		secs = sv_tagarg(n, TG_SECONDS)->num;
	}
	if (secs < MIN_PERIOD) {
		if (sv_has(o->tags, TG_SECONDS) || sv_has(o->tags, TG_DAYS))
			sv_rt_warn(r, n, "specified period is under the minimum");
		secs = MIN_PERIOD;
	}
	if (secs > MAX_PERIOD)
		secs = MAX_PERIOD;
	a.vac_seconds = secs;
	a.vac_mime = sv_has(o->tags, TG_MIME);
	a.vac_reason = sv_expand(r, n, &sv_pos(n, 0)->v[0], &len);
	if (!a.vac_reason)
		goto fail;
	/* :subject, else (also for an empty :subject, as Pigeonhole) "Auto: "
	 * and the original subject whenever the message has a Subject field,
	 * even an empty one; "Automated reply" only without one (RFC 5230 5.3) */
	if (sv_tagarg(n, TG_SUBJECT)) {
		tag_subject = sv_expand(r, n, &sv_tagarg(n, TG_SUBJECT)->v[0], &len);
		if (!tag_subject)
			goto fail;
	}
	if (tag_subject && tag_subject[0]) {
		a.vac_subject = tag_subject;
		tag_subject = NULL;
	} else {
		const char *s = sv_msg_header1(&r->msg, "subject", &len);
		if (s) {
			a.vac_subject = malloc(len + 7);
			if (a.vac_subject)
				snprintf(a.vac_subject, len + 7, "Auto: %s", s);
		} else {
			a.vac_subject = strdup("Automated reply");
		}
		if (!a.vac_subject)
			goto nomem;
	}
	if (sv_tagarg(n, TG_FROM)) {
		a.vac_from = sv_expand(r, n, &sv_tagarg(n, TG_FROM)->v[0], &len);
		if (!a.vac_from)
			goto fail;
	}
	if (sv_tagarg(n, TG_ADDRESSES)) {
		const struct sv_arg *l = sv_tagarg(n, TG_ADDRESSES);
		a.vac_addresses = calloc(l->n + 1, sizeof *a.vac_addresses);
		if (!a.vac_addresses)
			goto nomem;
		for (size_t i = 0; i < l->n; i++) {
			char *s = sv_expand(r, n, &l->v[i], &len);
			if (!s)
				goto fail;
			/* "Name <a@b>" counts as a@b */
			struct hm_addr_list al;
			if (hm_address_parse(s, len, 2, &al) == 0) {
				if (al.n == 1 && al.v[0].domain) {
					size_t nl = strlen(al.v[0].local) + strlen(al.v[0].domain) + 2;
					char *t = malloc(nl);
					if (t) {
						snprintf(t, nl, "%s@%s", al.v[0].local, al.v[0].domain);
						free(s);
						s = t;
					}
				}
				hm_address_list_free(&al);
			}
			a.vac_addresses[i] = s;
		}
	}
	if (sv_tagarg(n, TG_HANDLE)) {
		a.vac_handle = sv_expand(r, n, &sv_tagarg(n, TG_HANDLE)->v[0], &len);
		if (!a.vac_handle)
			goto fail;
	} else {
		/* Pigeonhole's implicit handle: reason, subject, from, mime */
		struct hm_buf b;
		hm_buf_init(&b, 1 << 20);
		hm_buf_puts(&b, a.vac_reason);
		hm_buf_puts(&b, !sv_has(o->tags, TG_SUBJECT) ? "<default-subject>" :
				tag_subject ? tag_subject : a.vac_subject);
		hm_buf_puts(&b, a.vac_from ? a.vac_from : "<default-from>");
		hm_buf_puts(&b, a.vac_mime ? "<MIME>" : "<NO-MIME>");
		a.vac_handle = hm_buf_steal(&b, NULL);
		hm_buf_free(&b);
		if (!a.vac_handle)
			goto nomem;
	}
	const char *from = r->m->env_from ? r->m->env_from : "";
	size_t fl = strlen(from);
	if (fl >= 2 && from[0] == '<' && from[fl - 1] == '>')
		a.vac_to = sv_strndup(from + 1, fl - 2);
	else
		a.vac_to = strdup(from);
	if (!a.vac_to)
		goto nomem;
	a.vac_skip = skip_reason(r, &a);
	free(tag_subject);
	return sv_add_action(r, n, &a);
nomem:
	sv_rt_error(r, n, "out of memory");
fail:
	free(tag_subject);
	sv_action_free(&a);
	return SV_ERR;
}

static const enum sv_tag vacation_tags[] = {
	TG_DAYS, TG_SECONDS, TG_SUBJECT, TG_FROM, TG_ADDRESSES, TG_MIME, TG_HANDLE,
	TG_COUNT_ALL
};

const struct sv_def sv_def_vacation = {
	.name = "vacation", .ext = EXT_VACATION, .tags = vacation_tags, .pos = "s",
	.validate = validate_vacation, .exec = exec_vacation,
};
