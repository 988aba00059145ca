/* scan_dmarc.c — DMARC evaluation (RFC 7489) for homemail_scan.so; see
 * scan_dmarc.h for the contract and docs/mailauth.md for where it runs.
 *
 * What for: decide, for the one domain of From:, whether a passing SPF
 *   (MAIL FROM, or HELO for the null sender) or a passing DKIM signature
 *   (d=) is aligned with it, find the domain's published policy (at the
 *   From: domain, else at its organisational domain: RFC 7489 6.6.3), apply
 *   p=/sp=/pct=, and write the Authentication-Results value and the
 *   aggregate-report line.
 * Relies on: libopendmarc for the record grammar; libpsl over the DAFSA form
 *   of Debian's public suffix list (publicsuffix) for organisational domains
 *   (libopendmarc's own list loader costs ~2.3 ms per Exim receiving process
 *   against ~0.04 ms for libpsl's, measured here);
 *   the caller's lookup function for DNS (inside Exim: Exim's own resolver,
 *   so its timeouts bound the time; a temporary failure is DMARC_TEMPERROR,
 *   never a pass).
 * How it fails: ENOMEM only; bad input becomes none/permerror outcomes.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <idn2.h>
#include <libpsl.h>
#include <opendmarc/dmarc.h>

#include "hm_address.h"
#include "hm_buf.h"
#include "hm_util.h"
#include "scan_dmarc.h"

/* the public suffix list, loaded once per process (Exim forks a receiving
 * process per connection; the module is loaded there) */
static psl_ctx_t *g_psl;

#define FROM_MAX_ADDRS 8

const char *dmarc_result_name(enum dmarc_result r)
{
	static const char *const n[] = {"none", "pass", "fail", "temperror", "permerror"};
	return (unsigned)r <= DMARC_PERMERROR ? n[r] : "?";
}

const char *dmarc_policy_name(enum dmarc_policy p)
{
	static const char *const n[] = {"unset", "none", "quarantine", "reject"};
	return (unsigned)p <= DMARC_P_REJECT ? n[p] : "?";
}

int dmarc_init(const char *psl_path)
{
	if (g_psl != NULL)
		return 0;
	errno = 0;
	g_psl = psl_load_file(psl_path);
	if (g_psl == NULL) {
		if (errno == 0)
			errno = EINVAL;
		return -1;
	}
	return 0;
}

int dmarc_domain_clean(const char *in, size_t len, char *out)
{
	size_t label = 0;

	if (len > 0 && in[len - 1] == '.')
		len--;
	if (len == 0 || len > DMARC_DOMAIN_MAX)
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c == '.') {
			/* no empty label, no label ending in '-' */
			if (label == 0 || in[i - 1] == '-')
				return -1;
			label = 0;
		} else if (isalnum(c) || c == '-' || c == '_') {
			if (++label > 63 || (label == 1 && c == '-'))
				return -1;
		} else {
			return -1;
		}
		out[i] = (char)tolower(c);
	}
	if (label == 0 || in[len - 1] == '-')
		return -1;
	out[len] = '\0';
	return 0;
}

void dmarc_org_domain(const char *domain, char *out, size_t outsz)
{
	/* public suffix + one label; libpsl applies the list's default rule
	 * "*" to a suffix the list lacks (x.test -> x.test).  A name that is
	 * itself a public suffix has no organisational domain: itself. */
	const char *r = g_psl ? psl_registrable_domain(g_psl, domain) : NULL;
	(void)hm_strlcpy(out, r ? r : domain, outsz);
}

/* aligned - RFC 7489 3.1: strict = same name, relaxed = same organisational
 * domain (both names already clean, i.e. lower case) */
static bool aligned(const char *a, const char *b, char mode)
{
	char oa[DMARC_DOMAIN_MAX + 1], ob[DMARC_DOMAIN_MAX + 1];

	if (a[0] == '\0' || b[0] == '\0')
		return false;
	if (strcmp(a, b) == 0)
		return true;
	if (mode == 's')
		return false;
	dmarc_org_domain(a, oa, sizeof oa);
	dmarc_org_domain(b, ob, sizeof ob);
	return strcmp(oa, ob) == 0;
}

/* word - copy the next blank-separated word of [*p, end) into out (cut to
 * outsz - 1 bytes); returns its full length */
static size_t word(const char **p, const char *end, char *out, size_t outsz)
{
	const char *s = *p, *w;
	size_t n;

	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	w = s;
	while (s < end && *s != ' ' && *s != '\t')
		s++;
	n = (size_t)(s - w);
	if (outsz > 0) {
		size_t c = n < outsz - 1 ? n : outsz - 1;
		memcpy(out, w, c);
		out[c] = '\0';
	}
	*p = s;
	return n;
}

void dmarc_parse_dkim(const char *s, struct dmarc_outcome *out)
{
	out->nsigs = 0;
	out->sigs_truncated = false;
	if (s == NULL)
		return;
	while (*s != '\0') {
		const char *end = strchr(s, ';');
		if (end == NULL)
			end = s + strlen(s);
		if (out->nsigs == DMARC_MAX_SIGS) {
			out->sigs_truncated = true;
			return;
		}
		struct dmarc_sig *g = &out->sigs[out->nsigs];
		char d[DMARC_DOMAIN_MAX + 2], sel[64];
		const char *p = s;
		size_t rl = word(&p, end, g->result, sizeof g->result);
		size_t dl = word(&p, end, d, sizeof d);
		(void)word(&p, end, sel, sizeof sel);
		if (rl > 0 && rl < sizeof g->result) {
			if (dl == 0 || dl > DMARC_DOMAIN_MAX || dmarc_domain_clean(d, dl, g->d) < 0)
				g->d[0] = '\0';
			/* selectors are DNS labels too; anything else is not shown */
			char sc[DMARC_DOMAIN_MAX + 1];
			if (dmarc_domain_clean(sel, strlen(sel), sc) == 0 && strlen(sc) < sizeof g->s)
				memcpy(g->s, sc, strlen(sc) + 1);
			else
				g->s[0] = '\0';
			for (char *c = g->result; *c; c++)
				if (!islower((unsigned char)*c))
					*c = '?';
			g->aligned = false;
			out->nsigs++;
		}
		s = *end ? end + 1 : end;
	}
}

/* clean_from_domain - dmarc_domain_clean, and for a UTF-8 domain (SMTPUTF8
 * mail) its A-label form (libidn2, IDNA2008), so an internationalised
 * From: domain is checked against the policy published for it rather than
 * escaping DMARC.  Returns 0 (out filled), -1 not a usable domain. */
static int clean_from_domain(const char *dom, char *out)
{
	size_t n = strlen(dom);
	bool utf8 = false;
	char *ascii = NULL;

	for (size_t i = 0; i < n; i++)
		utf8 |= (unsigned char)dom[i] >= 0x80;
	if (!utf8)
		return dmarc_domain_clean(dom, n, out);
	if (n > 4 * DMARC_DOMAIN_MAX ||
	    idn2_to_ascii_8z(dom, &ascii, IDN2_NONTRANSITIONAL) != IDN2_OK || ascii == NULL)
		return -1;
	int r = dmarc_domain_clean(ascii, strlen(ascii), out);
	idn2_free(ascii);
	return r;
}

/* from_domain - the single domain of the From: field into out->from_domain.
 * Returns 0 found, 1 none usable (out->why says), 2 several domains,
 * -1 ENOMEM. */
static int from_domain(const struct dmarc_input *in, struct dmarc_outcome *out)
{
	struct hm_addr_list l;
	char *unf;
	size_t n = 0;
	int ret = 1;

	memset(&l, 0, sizeof l);
	out->from_domain[0] = '\0';
	if (in->from == NULL || in->from_len == 0) {
		out->why = "no From: domain";
		return 1;
	}
	unf = malloc(in->from_len + 1);
	if (unf == NULL)
		return -1;
	for (size_t i = 0; i < in->from_len; i++)      /* unfold */
		if (in->from[i] != '\r' && in->from[i] != '\n')
			unf[n++] = in->from[i];
	unf[n] = '\0';
	if (hm_address_parse(unf, n, FROM_MAX_ADDRS, &l) < 0) {
		free(unf);
		return -1;
	}
	free(unf);
	out->why = "no From: domain";
	for (size_t i = 0; i < l.n; i++) {
		char d[DMARC_DOMAIN_MAX + 1];
		const char *dom = l.v[i].domain;
		if (l.v[i].invalid || dom == NULL)
			continue;
		if (clean_from_domain(dom, d) < 0) {
			out->why = "From: domain is not a DNS name";
			ret = 3;
			continue;
		}
		if (out->from_domain[0] == '\0') {
			memcpy(out->from_domain, d, strlen(d) + 1);
			if (ret == 1)
				ret = 0;
		} else if (strcmp(out->from_domain, d) != 0) {
			ret = 2;
		}
	}
	if (l.truncated)
		ret = 2;
	hm_address_list_free(&l);
	if (ret == 3)
		ret = out->from_domain[0] ? 2 : 1;
	if (ret == 0)
		out->why = NULL;        /* found: no reason to log (a pass said "no From: domain") */
	return ret;
}

/* pick_record - RFC 7489 6.6.3 step 3: the one answer that starts with
 * "v=DMARC1"; returns it (points into txt), or NULL when none or several */
static const char *pick_record(char *txt)
{
	const char *found = NULL;
	for (char *line = txt; line != NULL;) {
		char *nl = strchr(line, '\n');
		if (nl != NULL)
			*nl = '\0';
		const char *p = line;
		while (*p == ' ' || *p == '\t')
			p++;
		if (strncmp(p, "v=DMARC1", 8) == 0 &&
		    (p[8] == '\0' || p[8] == ';' || p[8] == ' ' || p[8] == '\t')) {
			if (found != NULL)
				return NULL;
			found = p;
		}
		line = nl ? nl + 1 : NULL;
	}
	return found;
}

/* discover - look for a record at name; Returns 1 record copied into *rec_r
 * (malloc'd), 0 none, -1 temporary failure, -2 ENOMEM */
static int discover(const char *domain, dmarc_lookup_fn lookup, void *ctx, char **rec_r)
{
	char name[DMARC_DOMAIN_MAX + 8];
	char *txt = NULL;
	int r;

	*rec_r = NULL;
	if (hm_snprintf(name, sizeof name, "_dmarc.%s", domain) < 0)
		return 0;     /* a name DNS cannot hold has no record */
	/* RFC 6761 6.4: names under .invalid do not exist; not asked */
	size_t n = strlen(domain);
	if (strcmp(domain, "invalid") == 0 || (n > 8 && strcmp(domain + n - 8, ".invalid") == 0))
		return 0;
	r = lookup(ctx, name, &txt);
	if (r <= 0)
		return r < 0 ? -1 : 0;
	if (txt == NULL)
		return 0;
	if (strlen(txt) > DMARC_TXT_MAX)
		txt[DMARC_TXT_MAX] = '\0';
	const char *rec = pick_record(txt);
	if (rec != NULL) {
		*rec_r = strdup(rec);
		if (*rec_r == NULL) {
			free(txt);
			return -2;
		}
	}
	free(txt);
	return *rec_r != NULL ? 1 : 0;
}

static enum dmarc_policy policy_of(int c)
{
	switch (c) {
	case DMARC_RECORD_P_NONE: return DMARC_P_NONE;
	case DMARC_RECORD_P_QUARANTINE: return DMARC_P_QUARANTINE;
	case DMARC_RECORD_P_REJECT: return DMARC_P_REJECT;
	default: return DMARC_P_UNSET;
	}
}

/* clean_rua - the rua URIs, printable ASCII without blanks, ';' or '\' */
static void clean_rua(DMARC_POLICY_T *pctx, char *out, size_t outsz)
{
	u_char **rua = opendmarc_policy_fetch_rua(pctx, NULL, 0, 1);
	size_t o = 0;

	out[0] = '\0';
	for (size_t i = 0; rua != NULL && rua[i] != NULL && i < 8; i++) {
		const char *u = (const char *)rua[i];
		size_t n = strlen(u);
		if (n == 0 || o + n + 2 > outsz)
			break;
		if (o > 0)
			out[o++] = ',';
		for (size_t k = 0; k < n; k++) {
			unsigned char c = (unsigned char)u[k];
			out[o++] = (c > 0x20 && c < 0x7f && c != ';' && c != '\\' && c != ',') ? (char)c : '?';
		}
		out[o] = '\0';
	}
}

/* find_policy - 6.6.3 discovery: the record at the From: domain, else at
 * its organisational domain (into org, *at_org_r).  Returns 1 found
 * (*rec_r malloc'd, out->policy_domain set), 0 none, -1 temporary DNS
 * failure, -2 ENOMEM */
static int find_policy(struct dmarc_outcome *out, dmarc_lookup_fn lookup, void *ctx,
		       char *org, size_t orgsz, bool *at_org_r, char **rec_r)
{
	int r = discover(out->from_domain, lookup, ctx, rec_r);

	*at_org_r = false;
	dmarc_org_domain(out->from_domain, org, orgsz);
	if (r == 0 && strcmp(org, out->from_domain) != 0) {
		r = discover(org, lookup, ctx, rec_r);
		*at_org_r = true;
	}
	if (r == 1)
		(void)hm_strlcpy(out->policy_domain, *at_org_r ? org : out->from_domain,
				 sizeof out->policy_domain);
	return r;
}

/* read_policy - parse rec with libopendmarc into out (p, sp, pct, adkim,
 * aspf, rua; the policy that applies).  Returns 0 usable, 1 permerror
 * (out->why set), -1 ENOMEM */
static int read_policy(struct dmarc_outcome *out, const char *rec, bool at_org, const char *org)
{
	DMARC_POLICY_T *pctx = opendmarc_policy_connect_init((u_char *)"0.0.0.0",
							     DMARC_POLICY_IP_TYPE_IPV4);
	int p = 0, sp = 0, pct = 100, adkim = 0, aspf = 0;

	if (pctx == NULL) {
		errno = ENOMEM;
		return -1;
	}
	int pr = opendmarc_policy_store_from_domain(pctx, (u_char *)out->from_domain);
	if (pr == DMARC_PARSE_OKAY)
		pr = opendmarc_policy_store_dmarc(pctx, (u_char *)rec, (u_char *)out->from_domain,
						  at_org ? (u_char *)org : NULL);
	if (pr != DMARC_PARSE_OKAY) {
		opendmarc_policy_connect_shutdown(pctx);
		if (pr == DMARC_PARSE_ERROR_NO_ALLOC) {
			errno = ENOMEM;
			return -1;
		}
		out->why = "DMARC record does not parse";
		return 1;
	}
	(void)opendmarc_policy_fetch_p(pctx, &p);
	(void)opendmarc_policy_fetch_sp(pctx, &sp);
	(void)opendmarc_policy_fetch_pct(pctx, &pct);
	(void)opendmarc_policy_fetch_adkim(pctx, &adkim);
	(void)opendmarc_policy_fetch_aspf(pctx, &aspf);
	clean_rua(pctx, out->rua, sizeof out->rua);
	opendmarc_policy_connect_shutdown(pctx);

	out->policy = out->p = policy_of(p);
	out->sp = policy_of(sp);
	/* sp= applies to a From: domain below the organisational domain whose
	 * record was found there (6.6.3 step 6) */
	if (at_org && out->sp != DMARC_P_UNSET) {
		out->policy = out->sp;
		out->sp_used = true;
	}
	if (out->policy == DMARC_P_UNSET) {
		out->why = "DMARC record has no usable p=";
		return 1;
	}
	out->pct = (pct >= 0 && pct <= 100) ? pct : 100;
	out->adkim = adkim == 's' ? 's' : 'r';
	out->aspf = aspf == 's' ? 's' : 'r';
	return 0;
}

/* decide - alignment (RFC 7489 3.1: SPF only when it passed, DKIM per
 * passing signature), the result, and the disposition after pct= */
static void decide(const struct dmarc_input *in, struct dmarc_outcome *out)
{
	char spf_dom[DMARC_DOMAIN_MAX + 1];

	if (in->spf != NULL && strcmp(in->spf, "pass") == 0 && in->spf_domain != NULL &&
	    dmarc_domain_clean(in->spf_domain, strlen(in->spf_domain), spf_dom) == 0)
		out->spf_aligned = aligned(spf_dom, out->from_domain, out->aspf);
	for (size_t i = 0; i < out->nsigs; i++) {
		struct dmarc_sig *g = &out->sigs[i];
		g->aligned = strcmp(g->result, "pass") == 0 &&
			     aligned(g->d, out->from_domain, out->adkim);
		out->dkim_aligned |= g->aligned;
	}
	if (out->spf_aligned || out->dkim_aligned) {
		out->result = DMARC_PASS;
		out->disposition = DMARC_P_NONE;
		return;
	}
	/* a signature whose key DNS could not deliver might have passed and
	 * aligned: the outcome is unknown, so temporary (never a 550 or a
	 * quarantine on a DNS hiccup); an unaligned one changes nothing */
	for (size_t i = 0; i < out->nsigs; i++)
		if (strcmp(out->sigs[i].result, "temperror") == 0 &&
		    aligned(out->sigs[i].d, out->from_domain, out->adkim)) {
			out->result = DMARC_TEMPERROR;
			out->why = "DNS failure fetching the DKIM key of an aligned signature";
			return;
		}
	out->result = DMARC_FAIL;
	out->why = "From: domain not aligned with a passing SPF or DKIM";
	out->disposition = out->policy;
	/* 6.6.4: a message outside the pct= sample gets the next policy down */
	if (in->pct_roll >= (unsigned)out->pct) {
		if (out->disposition == DMARC_P_REJECT)
			out->disposition = DMARC_P_QUARANTINE;
		else if (out->disposition == DMARC_P_QUARANTINE)
			out->disposition = DMARC_P_NONE;
	}
}

int dmarc_evaluate(const struct dmarc_input *in, dmarc_lookup_fn lookup, void *ctx,
		   struct dmarc_outcome *out)
{
	char org[DMARC_DOMAIN_MAX + 1];
	char *rec = NULL;
	bool at_org;
	int r;

	memset(out, 0, sizeof *out);
	out->result = DMARC_NONE;
	out->adkim = out->aspf = 'r';
	out->pct = 100;
	dmarc_parse_dkim(in->dkim, out);

	r = from_domain(in, out);
	if (r < 0)
		return -1;
	if (r == 2) {
		/* RFC 7489 6.6.1: several From: domains; each could carry a
		 * policy, and readers see all of them.  Not evaluated: refused. */
		out->result = DMARC_PERMERROR;
		out->policy = out->disposition = DMARC_P_REJECT;
		out->why = "From: names more than one domain";
		return 0;
	}
	if (r == 1)
		return 0;       /* nothing to check: dmarc=none */

	r = find_policy(out, lookup, ctx, org, sizeof org, &at_org, &rec);
	if (r == -2)
		return -1;
	if (r == -1) {
		out->result = DMARC_TEMPERROR;
		out->why = "DNS lookup of the DMARC policy failed";
		return 0;
	}
	if (r == 0) {
		out->why = "no DMARC record";
		return 0;
	}
	r = read_policy(out, rec, at_org, org);
	free(rec);
	if (r < 0)
		return -1;
	if (r == 1) {
		out->result = DMARC_PERMERROR;
		return 0;
	}
	decide(in, out);
	return 0;
}

/* spf_word - an SPF result word for Authentication-Results (RFC 8601 2.7.2) */
static const char *spf_word(const char *s)
{
	static const char *const ok[] = {"pass", "fail", "softfail", "neutral", "none",
					 "temperror", "permerror"};
	if (s == NULL || *s == '\0')
		return "none";
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
		if (strcmp(s, ok[i]) == 0)
			return ok[i];
	if (strcmp(s, "invalid") == 0)
		return "permerror";
	return "none";
}

/* dkim_word - Exim's $dkim_verify_status (or the ACL's "temperror") to
 * RFC 8601 2.7.1 words */
static const char *dkim_word(const char *s)
{
	if (strcmp(s, "pass") == 0)
		return "pass";
	if (strcmp(s, "fail") == 0)
		return "fail";
	if (strcmp(s, "temperror") == 0)
		return "temperror";
	if (strcmp(s, "invalid") == 0)
		return "neutral";  /* RFC 8601: signature could not be processed */
	return "none";
}

char *dmarc_authres(const char *authserv_id, const struct dmarc_input *in,
		    const struct dmarc_outcome *o)
{
	struct hm_buf b;
	char spf_dom[DMARC_DOMAIN_MAX + 1];

	hm_buf_init(&b, 8192);
	int e = hm_buf_printf(&b, "%s;\n\tspf=%s", authserv_id, spf_word(in->spf));
	if (in->spf_domain != NULL &&
	    dmarc_domain_clean(in->spf_domain, strlen(in->spf_domain), spf_dom) == 0)
		e |= hm_buf_printf(&b, " smtp.%s=%s", in->spf_helo ? "helo" : "mailfrom", spf_dom);
	if (o->nsigs == 0)
		e |= hm_buf_puts(&b, ";\n\tdkim=none");
	for (size_t i = 0; i < o->nsigs; i++) {
		const struct dmarc_sig *g = &o->sigs[i];
		e |= hm_buf_printf(&b, ";\n\tdkim=%s", dkim_word(g->result));
		if (g->d[0])
			e |= hm_buf_printf(&b, " header.d=%s", g->d);
		if (g->s[0])
			e |= hm_buf_printf(&b, " header.s=%s", g->s);
	}
	e |= hm_buf_printf(&b, ";\n\tdmarc=%s", dmarc_result_name(o->result));
	if (o->result == DMARC_PASS || o->result == DMARC_FAIL)
		e |= hm_buf_printf(&b, " (p=%s dis=%s)", dmarc_policy_name(o->policy),
				   dmarc_policy_name(o->disposition));
	if (o->from_domain[0])
		e |= hm_buf_printf(&b, " header.from=%s", o->from_domain);
	if (e != 0) {
		hm_buf_free(&b);
		errno = ENOMEM;
		return NULL;
	}
	return hm_buf_steal(&b, NULL);
}

/* skip_cfws - blanks, line breaks and (nested) comments, depth-bounded by
 * a counter, not by recursion */
static size_t skip_cfws(const char *v, size_t len, size_t i)
{
	size_t depth = 0;
	while (i < len) {
		char c = v[i];
		if (depth > 0) {
			if (c == '\\' && i + 1 < len)
				i++;
			else if (c == '(')
				depth++;
			else if (c == ')')
				depth--;
		} else if (c == '(') {
			depth = 1;
		} else if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
			break;
		}
		i++;
	}
	return i;
}

bool dmarc_authres_is_ours(const char *value, size_t len, const char *authserv_id)
{
	size_t i = skip_cfws(value, len, 0), start = i;
	size_t idlen = strlen(authserv_id);

	/* authserv-id is a value (RFC 8601 2.2): a token or a quoted string */
	if (i < len && value[i] == '"') {
		start = ++i;
		while (i < len && value[i] != '"')
			i++;
		return i - start == idlen && strncasecmp(value + start, authserv_id, idlen) == 0;
	}
	while (i < len && value[i] != ';' && value[i] != ' ' && value[i] != '\t' &&
	       value[i] != '(' && value[i] != '\r' && value[i] != '\n')
		i++;
	return i - start == idlen && idlen > 0 && strncasecmp(value + start, authserv_id, idlen) == 0;
}

char *dmarc_report_line(long long when, const struct dmarc_input *in,
			const struct dmarc_outcome *o)
{
	struct hm_buf b;
	char ip[64], spf_dom[DMARC_DOMAIN_MAX + 1];
	size_t n = 0;

	/* the client address as Exim gives it: hex digits, '.', ':' only */
	for (const char *p = in->ip ? in->ip : ""; *p && n + 1 < sizeof ip; p++)
		if (isxdigit((unsigned char)*p) || *p == '.' || *p == ':')
			ip[n++] = *p;
	ip[n] = '\0';
	if (in->spf_domain == NULL ||
	    dmarc_domain_clean(in->spf_domain, strlen(in->spf_domain), spf_dom) < 0)
		spf_dom[0] = '\0';
	hm_buf_init(&b, 8192);
	int e = hm_buf_printf(&b, "%lld\t%s\t%s\t%s\t%s\t%s\t%d\t%c\t%c\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t",
			      when, ip[0] ? ip : "-", o->from_domain,
			      o->policy_domain[0] ? o->policy_domain : "-",
			      dmarc_policy_name(o->p),
			      o->sp != DMARC_P_UNSET ? dmarc_policy_name(o->sp) : "-", o->pct,
			      o->adkim, o->aspf, dmarc_policy_name(o->disposition),
			      o->dkim_aligned ? "pass" : "fail", o->spf_aligned ? "pass" : "fail",
			      dmarc_result_name(o->result), spf_dom[0] ? spf_dom : "-",
			      in->spf_helo ? "helo" : "mfrom", spf_word(in->spf));
	for (size_t i = 0; i < o->nsigs; i++)
		e |= hm_buf_printf(&b, "%s%s:%s:%s", i ? "," : "", o->sigs[i].d[0] ? o->sigs[i].d : "-",
				   o->sigs[i].s[0] ? o->sigs[i].s : "-", dkim_word(o->sigs[i].result));
	if (o->nsigs == 0)
		e |= hm_buf_putc(&b, '-');
	e |= hm_buf_printf(&b, "\t%s\n", o->rua[0] ? o->rua : "-");
	if (e != 0) {
		hm_buf_free(&b);
		errno = ENOMEM;
		return NULL;
	}
	return hm_buf_steal(&b, NULL);
}
