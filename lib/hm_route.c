/* hm_route.c — resolve an address against accounts, aliases, plus-addressing
 * and catch-alls (the rules are in hm_aliases.h, hm_route_resolve).
 *
 * What for: the one answer Exim's RCPT check, Exim's routers (through the
 * Dovecot module) and homemail-user's loop check all share.
 * Relies on: hm_aliases, hm_domains, hm_strmap; the caller's is_account and
 * is_local callbacks (the Dovecot module: users file + system accounts).
 * How it fails: a loop, a forbidden remote target or a bound exceeded is a
 * FAIL result with a readable reason (Exim bounces with it); a failing
 * callback or no memory is -1 (the lookup is answered as a temporary
 * failure).  Recursion depth is bounded by HM_ROUTE_MAX_DEPTH.
 */
#include "hm_aliases.h"
#include "hm_strmap.h"
#include "hm_util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct walk {
	const struct hm_route_opts *o;
	struct hm_route *r;
	const char *path[HM_ROUTE_MAX_DEPTH + 1];  /* alias sources being expanded */
	size_t depth;
	struct hm_strmap done;          /* aliases fully expanded (diamonds) */
	struct hm_strmap leaves;        /* leaves already listed */
	size_t steps;
	size_t bytes;                   /* the leaves' total length, with commas */
};

/* fail - set the FAIL result; returns 1 (stop) */
static int fail(struct walk *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct walk *w, const char *fmt, ...)
{
	va_list ap;

	w->r->kind = HM_ROUTE_FAIL;
	va_start(ap, fmt);
	(void)vsnprintf(w->r->why, sizeof(w->r->why), fmt, ap);
	va_end(ap);
	return 1;
}

/* add_leaf - record a leaf address (copied); 0 ok, 1 stop (FAIL), -1 error */
static int add_leaf(struct walk *w, const char *addr)
{
	char *c, **nt;
	size_t sz;

	if (hm_strmap_get_str(&w->leaves, addr) != NULL)
		return 0;
	if (w->r->ntargets >= HM_ALIASES_MAX_TARGETS)
		return fail(w, "alias %s expands to more than %d addresses", w->path[0], HM_ALIASES_MAX_TARGETS);
	w->bytes += strlen(addr) + 1;
	if (w->bytes > HM_ROUTE_MAX_BYTES)
		return fail(w, "alias %s expands to more than %d bytes of addresses", w->path[0],
			    HM_ROUTE_MAX_BYTES);
	if (!hm_mul_ok(w->r->ntargets + 1, sizeof(char *), &sz) ||
	    (nt = realloc(w->r->targets, sz)) == NULL)
		return errno = ENOMEM, -1;
	w->r->targets = nt;
	if ((c = strdup(addr)) == NULL)
		return -1;
	w->r->targets[w->r->ntargets++] = c;
	if (hm_strmap_put_str(&w->leaves, c, c, NULL) < 0)
		return -1;
	return 0;
}

/* account - counted call of is_account: 1/0, -1 error, 2 over the budget */
static int account(struct walk *w, const char *addr)
{
	if (++w->steps > HM_ROUTE_MAX_STEPS)
		return 2;
	return w->o->is_account(w->o->ctx, addr);
}

/* domain_of - the part after the last '@' */
static const char *domain_of(const char *addr)
{
	const char *at = strrchr(addr, '@');
	return at ? at + 1 : "";
}

/* classify - what addr is: *alias_r set for an alias (or catch-all);
 * returns 1 account (base_r: the account, differs from addr for a detail),
 * 0 alias or unknown, 2 budget exceeded, HM_ROUTE_CLOSED an account that
 * refuses mail, -1 error */
static int classify(struct walk *w, const char *addr, const struct hm_alias **alias_r,
		    char *base_r, size_t base_size, const char **detail_r)
{
	const char *at = strrchr(addr, '@'), *delim = NULL;
	int a;

	*alias_r = NULL;
	*detail_r = NULL;
	if ((a = account(w, addr)) != 0)
		return a == 1 ? (hm_strlcpy(base_r, addr, base_size), 1) : a;
	/* (HM_ROUTE_CLOSED: an account that refuses mail stops here) */
	*alias_r = hm_aliases_find(w->o->aliases, addr);
	if (*alias_r != NULL)
		return 0;
	if (at != NULL && w->o->delimiters != NULL && w->o->delimiters[0] != '\0') {
		for (const char *p = addr; p < at && delim == NULL; p++)
			if (strchr(w->o->delimiters, *p) != NULL && p > addr)
				delim = p;
	}
	if (delim != NULL) {
		char base[HM_USERS_MAX_ADDRESS + 1];
		if (hm_snprintf(base, sizeof(base), "%.*s%s", (int)(delim - addr), addr, at) == 0) {
			if ((a = account(w, base)) != 0) {
				if (a != 1)
					return a;
				(void)hm_strlcpy(base_r, base, base_size);
				*detail_r = delim + 1;
				return 1;
			}
			*alias_r = hm_aliases_find(w->o->aliases, base);
			if (*alias_r != NULL)
				return 0;
		}
	}
	if (at != NULL && w->o->is_local(w->o->ctx, at + 1) == 1) {
		char catchall[HM_USERS_MAX_ADDRESS + 2];
		if (hm_snprintf(catchall, sizeof(catchall), "%s", at) == 0)
			*alias_r = hm_aliases_find(w->o->aliases, catchall);
	}
	return 0;
}

static int expand(struct walk *w, const struct hm_alias *al);

/* target - one target of an alias: 0 ok, 1 stop (FAIL), -1 error */
static int target(struct walk *w, const struct hm_alias *from, const char *t)
{
	const struct hm_alias *al;
	const char *detail, *dom = domain_of(t);
	char base[HM_USERS_MAX_ADDRESS + 1];
	int c;

	if (w->o->is_local(w->o->ctx, dom) != 1) {
		const struct hm_domain *d = hm_domains_find(w->o->domains, domain_of(from->source));
		if (d == NULL || !d->remote_aliases)
			return fail(w, "alias %s: remote target %s not allowed here",
				    from->source, t);
		return add_leaf(w, t);
	}
	c = classify(w, t, &al, base, sizeof(base), &detail);
	if (c == 2)
		return fail(w, "alias %s needs too many lookups", w->path[0]);
	if (c < 0)
		return -1;
	if (c == 1 || c == HM_ROUTE_CLOSED || al == NULL)
		return add_leaf(w, t);  /* an account, closed or unknown: Exim decides */
	return expand(w, al);
}

/* expand - the targets of alias al, depth-first: 0, 1 stop, -1 error */
static int expand(struct walk *w, const struct hm_alias *al)
{
	int r = 0;

	for (size_t i = 0; i < w->depth; i++) {
		if (strcmp(w->path[i], al->source) != 0)
			continue;
		/* the loop, as a path: a -> b -> a */
		char msg[sizeof(w->r->why)] = "alias loop: ";
		size_t o = strlen(msg);
		for (size_t k = i; k < w->depth; k++) {
			int n = snprintf(msg + o, sizeof(msg) - o, "%s -> ", w->path[k]);
			if (n < 0 || (size_t)n >= sizeof(msg) - o)
				break;
			o += (size_t)n;
		}
		(void)snprintf(msg + o, sizeof(msg) - o, "%s", al->source);
		w->r->kind = HM_ROUTE_FAIL;
		(void)hm_strlcpy(w->r->why, msg, sizeof(w->r->why));
		return 1;
	}
	if (hm_strmap_get_str(&w->done, al->source) != NULL)
		return 0;               /* reached twice without a loop: listed once */
	if (w->depth == HM_ROUTE_MAX_DEPTH)
		return fail(w, "alias %s is nested more than %d deep", w->path[0], HM_ROUTE_MAX_DEPTH);
	w->path[w->depth++] = al->source;
	for (size_t i = 0; i < al->ntargets && r == 0; i++)
		r = target(w, al, al->targets[i]);
	w->depth--;
	if (r == 0 && hm_strmap_put_str(&w->done, al->source, (void *)al, NULL) < 0)
		r = -1;
	return r;
}

void hm_route_free(struct hm_route *r)
{
	for (size_t i = 0; i < r->ntargets; i++)
		free(r->targets[i]);
	free(r->targets);
	r->targets = NULL;
	r->ntargets = 0;
}

int hm_route_resolve(const struct hm_route_opts *o, const char *address, struct hm_route *r)
{
	struct walk w = { .o = o, .r = r };
	const struct hm_alias *al;
	const char *detail;
	int c, ret = 0;

	memset(r, 0, sizeof(*r));
	hm_strmap_init(&w.done);
	hm_strmap_init(&w.leaves);
	c = classify(&w, address, &al, r->account, sizeof(r->account), &detail);
	if (c < 0) {
		ret = -1;
	} else if (c == 2) {
		(void)fail(&w, "%s needs too many lookups", address);
	} else if (c == HM_ROUTE_CLOSED) {
		r->kind = HM_ROUTE_UNKNOWN;     /* refused: 550, no catch-all */
	} else if (c == 1) {
		r->kind = HM_ROUTE_ACCOUNT;
		if (detail != NULL)     /* the detail ends at the '@' */
			(void)hm_snprintf(r->detail, sizeof(r->detail), "%.*s",
					  (int)strcspn(detail, "@"), detail);
	} else if (al != NULL) {
		r->kind = HM_ROUTE_ALIAS;
		c = expand(&w, al);
		if (c < 0)
			ret = -1;
		else if (r->kind == HM_ROUTE_ALIAS && r->ntargets == 0)
			(void)fail(&w, "alias %s has no target", al->source);
	}
	if (ret < 0 || r->kind != HM_ROUTE_ALIAS)
		hm_route_free(r);
	if (ret < 0)
		r->kind = HM_ROUTE_UNKNOWN;
	hm_strmap_free(&w.done);
	hm_strmap_free(&w.leaves);
	return ret;
}
