/* scan_dmarc.h — DMARC (RFC 7489) evaluation for homemail_scan.so, without
 * Exim: the glue (scan_exim.c) hands in the From: field, the SPF and DKIM
 * results the ACLs kept in $acl_m_* variables and a DNS lookup function;
 * this module returns the outcome, the Authentication-Results value and
 * the aggregate-report line.
 *
 * Relies on: Debian's libopendmarc (record parsing: p, sp, pct, adkim,
 *   aspf, rua), libpsl with the public suffix list Debian's `publicsuffix`
 *   ships (organisational domains), libidn2 (a UTF-8 From: domain is checked
 *   in its A-label form), lib/hm_address (From: field), lib/hm_buf.
 *   Alignment is checked here, not by libopendmarc: 1.4.2 calls any two
 *   domains "aligned" when neither's TLD is in its list (x.test and y.test
 *   align there), so an unknown TLD would let any domain pass for any other.
 * Hostile input: every byte from DNS and from the message.  Domains are
 *   checked as LDH names (<= 253 bytes, labels <= 63) before they reach a
 *   DNS query or an output line; TXT answers are bounded (DMARC_TXT_MAX);
 *   at most DMARC_MAX_SIGS DKIM results are read.  Nothing recurses.
 * Returns: 0 ok, -1 and errno (ENOMEM) unless stated otherwise.
 */
#ifndef HM_SCAN_DMARC_H
#define HM_SCAN_DMARC_H
#include <stdbool.h>
#include <stddef.h>

#define DMARC_DOMAIN_MAX 253
#define DMARC_TXT_MAX    8192   /* bytes of all TXT answers of one name */
#define DMARC_MAX_SIGS   16     /* DKIM results kept per message */
#define DMARC_PSL_DEFAULT "/usr/share/publicsuffix/public_suffix_list.dafsa"

enum dmarc_result { DMARC_NONE, DMARC_PASS, DMARC_FAIL, DMARC_TEMPERROR, DMARC_PERMERROR };
enum dmarc_policy { DMARC_P_UNSET, DMARC_P_NONE, DMARC_P_QUARANTINE, DMARC_P_REJECT };

struct dmarc_sig {
	char result[16];               /* pass, fail, invalid, none (Exim's words), temperror */
	char d[DMARC_DOMAIN_MAX + 1];  /* "" when not a valid domain */
	char s[64];
	bool aligned;                  /* pass and d= aligned with From: */
};

struct dmarc_input {
	const char *from;        /* raw From: field value(s), may be folded */
	size_t from_len;
	const char *spf;         /* $acl_m_hm_spf: pass fail softfail neutral none ... */
	const char *spf_domain;  /* MAIL FROM domain, or the HELO name for <> */
	bool spf_helo;           /* spf_domain is the HELO name */
	const char *dkim;        /* $acl_m_hm_dkim: "RESULT D S;" per signature; RESULT
				  * "temperror" = the key's DNS lookup failed */
	const char *ip;          /* client address, for the report line */
	unsigned pct_roll;       /* 0..99; failures are enforced when roll < pct */
};

/* lookup: TXT records of name (records separated by '\n', strings of one
 * record joined).  Returns 1 with *txt_r malloc'd, 0 no such record
 * (NXDOMAIN, NODATA), -1 temporary failure (timeout, SERVFAIL). */
typedef int (*dmarc_lookup_fn)(void *ctx, const char *name, char **txt_r);

struct dmarc_outcome {
	enum dmarc_result result;
	enum dmarc_policy policy;       /* p= or sp= that applies */
	enum dmarc_policy p, sp;        /* as published (sp UNSET when absent) */
	enum dmarc_policy disposition;  /* what is done (after pct; none on pass) */
	bool sp_used;
	int pct;
	char adkim, aspf;               /* 'r' or 's' */
	bool spf_aligned, dkim_aligned;
	char from_domain[DMARC_DOMAIN_MAX + 1];    /* "" when none usable */
	char policy_domain[DMARC_DOMAIN_MAX + 1];  /* where the record was found */
	char rua[512];                  /* cleaned, comma separated, "" none */
	struct dmarc_sig sigs[DMARC_MAX_SIGS];
	size_t nsigs;
	bool sigs_truncated;
	const char *why;                /* static: short reason for none/permerror/temperror */
};

/* dmarc_init - load the public suffix list (DAFSA or text; once per
 * process).  Returns 0, or -1 (errno from reading the file). */
int dmarc_init(const char *psl_path);

/* dmarc_domain_clean - copy an LDH domain name lower-cased into out
 * (DMARC_DOMAIN_MAX + 1 bytes), one trailing dot dropped.
 * Returns 0, -1 not a usable domain name. */
int dmarc_domain_clean(const char *in, size_t len, char *out);

/* dmarc_org_domain - the organisational domain (RFC 7489 3.2) of a clean
 * domain: public suffix plus one label; names under a suffix missing from
 * the list take the list's default rule "*" (last two labels).  Without
 * dmarc_init: the domain itself. */
void dmarc_org_domain(const char *domain, char *out, size_t outsz);

/* dmarc_parse_dkim - read "RESULT D S;" entries into out->sigs */
void dmarc_parse_dkim(const char *s, struct dmarc_outcome *out);

/* dmarc_evaluate - the whole check.  Returns 0 (outcome filled, including
 * DMARC_TEMPERROR when a lookup failed), -1 ENOMEM. */
int dmarc_evaluate(const struct dmarc_input *in, dmarc_lookup_fn lookup, void *ctx,
		   struct dmarc_outcome *out);

/* dmarc_authres - "ID; spf=...; dkim=...; dmarc=..." (Authentication-Results
 * value, RFC 8601), malloc'd; NULL and errno on ENOMEM. */
char *dmarc_authres(const char *authserv_id, const struct dmarc_input *in,
		    const struct dmarc_outcome *o);

/* dmarc_authres_is_ours - does an Authentication-Results value (as received,
 * may be folded, may hold comments) name authserv_id?  Case-insensitive. */
bool dmarc_authres_is_ours(const char *value, size_t len, const char *authserv_id);

/* dmarc_report_line - one tab-separated line (ending "\n") for the
 * aggregate-report file (docs/mailauth.md), malloc'd; NULL on ENOMEM. */
char *dmarc_report_line(long long when, const struct dmarc_input *in,
			const struct dmarc_outcome *o);

const char *dmarc_result_name(enum dmarc_result r);
const char *dmarc_policy_name(enum dmarc_policy p);

#endif
