/* fuzz_vdomains.c — libFuzzer harness for the homemail database of issue
 * 16: lib/hm_domains (the domains table), lib/hm_aliases (the aliases
 * table) and lib/hm_route.c (the resolver the Dovecot module serves to
 * Exim).
 *
 * Input: "<domains table>\n%%\n<aliases table>\n%%\n<one address per line>"
 * (missing parts are empty).  Checks: parsing never fails on bad lines and
 * counts every malformed one; serialize -> parse is a fixed point; every
 * alias source is found under its own name; resolving every query and
 * every alias source ends (bounded) with: an ALIAS of 1..1000 distinct
 * targets, a FAIL with a reason, an ACCOUNT with an account, or UNKNOWN.
 * The account callback says "account" for local parts starting with 'u'.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hm_aliases.h"
#include "hm_domains.h"

static void warn(void *ctx, const char *path, unsigned int line, const char *msg)
{
	size_t *n = ctx;

	if (!msg || strchr(msg, '\n') || line == 0)
		abort();
	(*n)++;
}

static int is_account(void *ctx, const char *a)
{
	(void)ctx;
	return a[0] == 'u';
}

static int is_local(void *ctx, const char *d)
{
	return hm_domains_find(ctx, d) != NULL;
}

static void check(const struct hm_route_opts *o, const char *addr)
{
	struct hm_route r;

	if (hm_route_resolve(o, addr, &r) < 0)
		return;
	switch (r.kind) {
	case HM_ROUTE_ALIAS:
		if (r.ntargets == 0 || r.ntargets > HM_ALIASES_MAX_TARGETS)
			abort();
		for (size_t i = 0; i < r.ntargets; i++)
			for (size_t k = i + 1; k < r.ntargets && k < i + 8; k++)
				if (strcmp(r.targets[i], r.targets[k]) == 0)
					abort();
		break;
	case HM_ROUTE_FAIL:
		if (r.why[0] == '\0' || r.ntargets != 0)
			abort();
		break;
	case HM_ROUTE_ACCOUNT:
		if (r.account[0] == '\0')
			abort();
		break;
	default:
		break;
	}
	hm_route_free(&r);
}

/* part - the i-th "%%"-separated part of data */
static const char *part(const char *data, size_t size, int i, size_t *len_r)
{
	const char *p = data, *end = data + size;

	for (; i > 0; i--) {
		const char *s = memmem(p, (size_t)(end - p), "\n%%\n", 4);
		if (s == NULL) {
			*len_r = 0;
			return end;
		}
		p = s + 4;
	}
	const char *s = memmem(p, (size_t)(end - p), "\n%%\n", 4);
	*len_r = s ? (size_t)(s - p) : (size_t)(end - p);
	return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *d = (const char *)data;
	size_t dl, al, ql, wd = 0, wa = 0, wd2 = 0, wa2 = 0, len;
	const char *dp = part(d, size, 0, &dl), *ap = part(d, size, 1, &al), *qp = part(d, size, 2, &ql);
	struct hm_domains *dom = NULL, *dom2 = NULL;
	struct hm_aliases *al1 = NULL, *al2 = NULL;
	char *text;

	if (hm_domains_parse(dp, dl, "d", warn, &wd, &dom) < 0)
		return 0;
	if (hm_aliases_parse(ap, al, "a", warn, &wa, &al1) < 0) {
		hm_domains_free(&dom);
		return 0;
	}
	if (wd != hm_domains_malformed(dom) || wa != hm_aliases_malformed(al1))
		abort();
	text = hm_domains_serialize(dom, &len);
	if (text && hm_domains_parse(text, len, "d2", warn, &wd2, &dom2) == 0) {
		if (hm_domains_count(dom2) != hm_domains_count(dom) || wd2 != wd)
			abort();
		hm_domains_free(&dom2);
	}
	free(text);
	text = hm_aliases_serialize(al1, &len);
	if (text && hm_aliases_parse(text, len, "a2", warn, &wa2, &al2) == 0) {
		if (hm_aliases_count(al2) != hm_aliases_count(al1) || wa2 != wa)
			abort();
		hm_aliases_free(&al2);
	}
	free(text);

	struct hm_route_opts o = { .aliases = al1, .domains = dom, .delimiters = "+-",
				   .is_account = is_account, .is_local = is_local, .ctx = dom };
	for (size_t i = 0; i < hm_aliases_count(al1) && i < 64; i++) {
		const struct hm_alias *a = hm_aliases_at(al1, i);
		if (hm_aliases_find(al1, a->source) != a)
			abort();
		check(&o, a->source);
	}
	/* queries: one per line, at most 64 */
	char q[HM_USERS_MAX_ADDRESS + 1];
	int nq = 0;
	for (size_t p = 0; p < ql && nq < 64; nq++) {
		const char *nl = memchr(qp + p, '\n', ql - p);
		size_t n = nl ? (size_t)(nl - (qp + p)) : ql - p;
		if (n < sizeof(q) && memchr(qp + p, '\0', n) == NULL) {
			memcpy(q, qp + p, n);
			q[n] = '\0';
			check(&o, q);
		}
		p += n + 1;
	}
	hm_aliases_free(&al1);
	hm_domains_free(&dom);
	return 0;
}
