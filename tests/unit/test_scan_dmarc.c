/* test_scan_dmarc.c — unit tests for DMARC evaluation (exim-local-scan/
 * scan_dmarc.c) with a fake DNS: policy discovery at the From: domain and
 * at its organisational domain, p=/sp=/pct=, strict and relaxed alignment
 * (and the libopendmarc 1.4.2 trap: two names under a suffix missing from
 * the list must not align), several or no v=DMARC1 records, DNS temporary
 * failure never passing (a DKIM key DNS could not deliver only when its
 * signature could align), hostile From: fields and DKIM result strings,
 * the authserv-id match used to remove forged Authentication-Results, and
 * the report line's shape. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scan_dmarc.h"

/* the fake zone: name -> TXT (records '\n'-separated); "TEMP" = timeout */
struct fake {
	const char *name[8];
	const char *txt[8];
	int asked;
};

static int fake_lookup(void *ctx, const char *name, char **txt_r)
{
	struct fake *f = ctx;
	f->asked++;
	for (int i = 0; i < 8 && f->name[i]; i++) {
		if (strcmp(f->name[i], name) != 0)
			continue;
		if (strcmp(f->txt[i], "TEMP") == 0)
			return -1;
		*txt_r = strdup(f->txt[i]);
		return 1;
	}
	return 0;
}

static int setup(void **state)
{
	(void)state;
	return dmarc_init(DMARC_PSL_DEFAULT);
}

static void eval(const char *from, const char *spf, const char *spf_dom, const char *dkim,
		 unsigned roll, struct fake *f, struct dmarc_outcome *o)
{
	struct dmarc_input in = {.from = from, .from_len = strlen(from), .spf = spf,
				 .spf_domain = spf_dom, .dkim = dkim, .ip = "198.18.1.1",
				 .pct_roll = roll};
	assert_int_equal(dmarc_evaluate(&in, fake_lookup, f, o), 0);
}

static void test_reject_unaligned(void **state)
{
	struct fake f = {{"_dmarc.bank.example.com"}, {"v=DMARC1; p=reject"}, 0};
	struct dmarc_outcome o;
	(void)state;
	eval("Bank <ceo@bank.example.com>", "pass", "other.net", "", 0, &f, &o);
	assert_int_equal(o.result, DMARC_FAIL);
	assert_int_equal(o.disposition, DMARC_P_REJECT);
	assert_string_equal(o.policy_domain, "bank.example.com");
}

static void test_spf_relaxed_and_strict(void **state)
{
	struct fake f = {{"_dmarc.example.com"}, {"v=DMARC1; p=reject"}, 0};
	struct fake s = {{"_dmarc.example.com"}, {"v=DMARC1; p=reject; aspf=s"}, 0};
	struct dmarc_outcome o;
	(void)state;
	eval("a@Example.COM", "pass", "bounce.example.com", NULL, 0, &f, &o);
	assert_int_equal(o.result, DMARC_PASS);
	assert_true(o.spf_aligned);
	assert_null(o.why);     /* the mainlog line of a pass gives no reason */
	eval("a@example.com", "pass", "bounce.example.com", NULL, 0, &s, &o);
	assert_int_equal(o.result, DMARC_FAIL);
	/* softfail never aligns */
	eval("a@example.com", "softfail", "example.com", NULL, 0, &f, &o);
	assert_int_equal(o.result, DMARC_FAIL);
}

static void test_dkim_alignment(void **state)
{
	struct fake f = {{"_dmarc.example.co.uk"}, {"v=DMARC1; p=quarantine"}, 0};
	struct dmarc_outcome o;
	(void)state;
	/* example.co.uk and mail.example.co.uk share the organisational domain */
	eval("x@example.co.uk", "none", "", "fail example.co.uk s1;pass mail.example.co.uk s2;",
	     0, &f, &o);
	assert_int_equal(o.result, DMARC_PASS);
	assert_int_equal(o.nsigs, 2);
	assert_false(o.sigs[0].aligned);
	assert_true(o.sigs[1].aligned);
	/* co.uk is a public suffix: other.co.uk is another organisation */
	eval("x@example.co.uk", "none", "", "pass other.co.uk s;", 0, &f, &o);
	assert_int_equal(o.result, DMARC_FAIL);
	assert_int_equal(o.disposition, DMARC_P_QUARANTINE);
}

static void test_unknown_suffix_does_not_align(void **state)
{
	struct fake f = {{"_dmarc.x.test"}, {"v=DMARC1; p=reject"}, 0};
	struct dmarc_outcome o;
	(void)state;
	/* libopendmarc alone calls these aligned (both "organisational
	 * domains" empty); with the default rule "*" they are x.test, y.test */
	eval("a@x.test", "pass", "y.test", "pass y.test s;", 0, &f, &o);
	assert_int_equal(o.result, DMARC_FAIL);
	eval("a@x.test", "pass", "bounce.x.test", NULL, 0, &f, &o);
	assert_int_equal(o.result, DMARC_PASS);
}

static void test_dkim_temperror(void **state)
{
	struct fake f = {{"_dmarc.example.com"}, {"v=DMARC1; p=reject"}, 0};
	struct dmarc_outcome o;
	(void)state;
	/* the key of an aligned signature could not be fetched: unknown, 451 */
	eval("a@example.com", "none", "", "temperror mail.example.com s;", 0, &f, &o);
	assert_int_equal(o.result, DMARC_TEMPERROR);
	/* unaligned: cannot change the outcome */
	eval("a@example.com", "none", "", "temperror other.net s;", 0, &f, &o);
	assert_int_equal(o.result, DMARC_FAIL);
	assert_int_equal(o.disposition, DMARC_P_REJECT);
	/* another aligned signature passes: pass */
	eval("a@example.com", "none", "", "temperror example.com s;pass example.com t;", 0, &f, &o);
	assert_int_equal(o.result, DMARC_PASS);
}

static void test_org_domain_fallback_and_sp(void **state)
{
	struct fake f = {{"_dmarc.example.org"}, {"v=DMARC1; p=none; sp=reject"}, 0};
	struct dmarc_outcome o;
	(void)state;
	eval("a@news.example.org", "none", "", NULL, 0, &f, &o);
	assert_int_equal(f.asked, 2);
	assert_string_equal(o.policy_domain, "example.org");
	assert_true(o.sp_used);
	assert_int_equal(o.disposition, DMARC_P_REJECT);
	/* at the organisational domain itself p= applies */
	eval("a@example.org", "none", "", NULL, 0, &f, &o);
	assert_int_equal(o.disposition, DMARC_P_NONE);
	assert_int_equal(o.result, DMARC_FAIL);
}

static void test_pct(void **state)
{
	struct fake f = {{"_dmarc.example.com"}, {"v=DMARC1; p=reject; pct=20"}, 0};
	struct dmarc_outcome o;
	(void)state;
	eval("a@example.com", "none", "", NULL, 19, &f, &o);
	assert_int_equal(o.disposition, DMARC_P_REJECT);
	eval("a@example.com", "none", "", NULL, 20, &f, &o);
	assert_int_equal(o.disposition, DMARC_P_QUARANTINE);
	assert_int_equal(o.pct, 20);
}

static void test_records(void **state)
{
	struct fake two = {{"_dmarc.example.com"}, {"v=DMARC1; p=reject\nv=DMARC1; p=none"}, 0};
	struct fake other = {{"_dmarc.example.com"}, {"v=spf1 -all\n  v=DMARC1; p=reject"}, 0};
	struct fake bad = {{"_dmarc.example.com"}, {"v=DMARC1; p=bogus"}, 0};
	struct fake tmp = {{"_dmarc.example.com"}, {"TEMP"}, 0};
	struct fake tmp_org = {{"_dmarc.example.com"}, {"TEMP"}, 0};
	struct dmarc_outcome o;
	(void)state;
	eval("a@example.com", "none", "", NULL, 0, &two, &o);
	assert_int_equal(o.result, DMARC_NONE);       /* 6.6.3: several -> no policy */
	eval("a@example.com", "none", "", NULL, 0, &other, &o);
	assert_int_equal(o.disposition, DMARC_P_REJECT);
	eval("a@example.com", "none", "", NULL, 0, &bad, &o);
	assert_int_equal(o.result, DMARC_PERMERROR);
	assert_int_equal(o.disposition, DMARC_P_UNSET);
	eval("a@example.com", "pass", "example.com", NULL, 0, &tmp, &o);
	assert_int_equal(o.result, DMARC_TEMPERROR); /* never a pass */
	eval("a@sub.example.com", "none", "", NULL, 0, &tmp_org, &o);
	assert_int_equal(o.result, DMARC_TEMPERROR); /* failure at the org lookup too */
}

static void test_hostile_from(void **state)
{
	struct fake f = {{"_dmarc.example.com", "_dmarc.evil.com"},
			 {"v=DMARC1; p=reject", "v=DMARC1; p=none"}, 0};
	struct dmarc_outcome o;
	char big[5000];
	(void)state;
	eval("a@example.com, b@evil.com", "none", "", NULL, 0, &f, &o);
	assert_int_equal(o.result, DMARC_PERMERROR);
	assert_int_equal(o.disposition, DMARC_P_REJECT);
	eval("a@example.com, b@EXAMPLE.com.", "none", "", NULL, 0, &f, &o);
	assert_int_equal(o.disposition, DMARC_P_REJECT);  /* one domain, twice */
	assert_int_equal(o.result, DMARC_FAIL);
	eval("a@exa}mple.com", "none", "", NULL, 0, &f, &o);
	assert_int_equal(o.result, DMARC_NONE);
	assert_string_equal(o.from_domain, "");
	eval("undisclosed", "none", "", NULL, 0, &f, &o);
	assert_int_equal(o.result, DMARC_NONE);
	/* an internationalised From: domain is checked in its A-label form */
	struct fake idn = {{"_dmarc.xn--bnk-qla.example.com"}, {"v=DMARC1; p=reject"}, 0};
	eval("a@B\xc3\xa4nk.example.com", "none", "", NULL, 0, &idn, &o);
	assert_string_equal(o.from_domain, "xn--bnk-qla.example.com");
	assert_int_equal(o.disposition, DMARC_P_REJECT);
	eval("a@\xff\xfe.example.com", "none", "", NULL, 0, &idn, &o);
	assert_int_equal(o.result, DMARC_NONE);
	eval("a@x.invalid", "none", "", NULL, 0, &f, &o);
	assert_int_equal(o.result, DMARC_NONE);
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	big[10] = '@';
	eval(big, "none", "", NULL, 0, &f, &o);
	assert_int_equal(o.result, DMARC_NONE);
}

static void test_dkim_string_bounds(void **state)
{
	struct dmarc_outcome o;
	char s[4096] = "";
	(void)state;
	for (int i = 0; i < 40; i++)
		strcat(s, "pass d.example s;");
	memset(&o, 0, sizeof o);
	dmarc_parse_dkim(s, &o);
	assert_int_equal(o.nsigs, DMARC_MAX_SIGS);
	assert_true(o.sigs_truncated);
	dmarc_parse_dkim("PASS bad}dom sel$;;  ;pass", &o);
	assert_int_equal(o.nsigs, 2);
	assert_string_equal(o.sigs[0].result, "????");
	assert_string_equal(o.sigs[0].d, "");
	assert_string_equal(o.sigs[0].s, "");
	assert_string_equal(o.sigs[1].result, "pass");
}

static void test_authres_is_ours(void **state)
{
	(void)state;
	const char *id = "mail.home.com.bo";
	assert_true(dmarc_authres_is_ours(" mail.home.com.bo; spf=pass", 27, id));
	assert_true(dmarc_authres_is_ours(" MAIL.Home.com.bo;", 18, id));
	assert_true(dmarc_authres_is_ours(" (c (nested)) mail.home.com.bo 1; x", 35, id));
	assert_true(dmarc_authres_is_ours("\r\n \"mail.home.com.bo\"; x", 24, id));
	assert_false(dmarc_authres_is_ours(" mail.home.com.bo.evil; x", 25, id));
	assert_false(dmarc_authres_is_ours(" other.example; mail.home.com.bo", 32, id));
	assert_false(dmarc_authres_is_ours(" (unclosed mail.home.com.bo;", 28, id));
	assert_false(dmarc_authres_is_ours("", 0, id));
}

static void test_authres_and_report_line(void **state)
{
	struct fake f = {{"_dmarc.example.com"}, {"v=DMARC1; p=reject; rua=mailto:r@example.com"}, 0};
	struct dmarc_input in = {.from = "a@example.com", .from_len = 13, .spf = "pass",
				 .spf_domain = "example.com", .dkim = "pass example.com sel;",
				 .ip = "198.18.1.1\tx"};
	struct dmarc_outcome o;
	(void)state;
	assert_int_equal(dmarc_evaluate(&in, fake_lookup, &f, &o), 0);
	char *ar = dmarc_authres("mx.example", &in, &o);
	assert_non_null(ar);
	assert_string_equal(ar, "mx.example;\n\tspf=pass smtp.mailfrom=example.com;\n"
			    "\tdkim=pass header.d=example.com header.s=sel;\n"
			    "\tdmarc=pass (p=reject dis=none) header.from=example.com");
	free(ar);
	char *line = dmarc_report_line(1764900000, &in, &o);
	assert_non_null(line);
	int tabs = 0;
	for (char *p = line; *p; p++)
		tabs += *p == '\t';
	assert_int_equal(tabs, 17);
	assert_non_null(strstr(line, "1764900000\t198.18.1.1\texample.com\texample.com\treject\t-\t100\t"));
	assert_non_null(strstr(line, "\tmailto:r@example.com\n"));
	free(line);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reject_unaligned),
		cmocka_unit_test(test_spf_relaxed_and_strict),
		cmocka_unit_test(test_dkim_alignment),
		cmocka_unit_test(test_unknown_suffix_does_not_align),
		cmocka_unit_test(test_dkim_temperror),
		cmocka_unit_test(test_org_domain_fallback_and_sp),
		cmocka_unit_test(test_pct),
		cmocka_unit_test(test_records),
		cmocka_unit_test(test_hostile_from),
		cmocka_unit_test(test_dkim_string_bounds),
		cmocka_unit_test(test_authres_is_ours),
		cmocka_unit_test(test_authres_and_report_line),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
