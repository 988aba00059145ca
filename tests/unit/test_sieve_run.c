/* test_sieve_run.c — unit tests for the Sieve interpreter: implicit keep,
 * action merging, reject conflicts, imap4flags, variables and match
 * variables, vacation suppression (RFC 3834), and the limits that guard a
 * delivery (redirect cap, action cap, CPU budget against a pathological
 * :matches pattern), each ending in implicit keep; string values decoded in
 * place or copied (escapes, bare LF -> CRLF, adjacent tokens) and the order
 * of thousands of sibling commands and tests; INBOX spelling and redirect
 * duplicates; the run-time error result (also with before/after scripts
 * and sieve_result_set_error); a Date ending in a zone sign (no over-read,
 * ASan); lists of candidates never cut short in silence. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sieve.h"
#include "sv_int.h"   /* sv_glob: the matcher's own cost accounting */

static const char *MSG =
	"From: Alice <alice@example.org>\n"
	"To: user@home.com.bo\n"
	"Subject: =?utf-8?q?caf=C3=A9?= report\n"
	"Message-ID: <1@example.org>\n"
	"X-Spam-Score: 7\n"
	"\n"
	"Hello\n";

/* fmt_result - the outcome as "a;b;c" (malloc'd) */
static char *fmt_result(const struct sieve_result *r)
{
	char *out = calloc(1, 4096);
	assert_non_null(out);
	for (size_t i = 0; i < r->nactions; i++) {
		const struct sieve_action *a = &r->actions[i];
		char tmp[600];
		switch (a->type) {
		case SIEVE_ACT_STORE:
			snprintf(tmp, sizeof tmp, "store %s", a->target);
			for (size_t k = 0; a->flags && a->flags[k]; k++) {
				strcat(tmp, k ? " " : " [");
				strcat(tmp, a->flags[k]);
			}
			if (a->flags && a->flags[0])
				strcat(tmp, "]");
			break;
		case SIEVE_ACT_REDIRECT: snprintf(tmp, sizeof tmp, "redirect %s", a->target); break;
		case SIEVE_ACT_REJECT: snprintf(tmp, sizeof tmp, "reject %s", a->target); break;
		case SIEVE_ACT_EREJECT: snprintf(tmp, sizeof tmp, "ereject %s", a->target); break;
		case SIEVE_ACT_DISCARD: snprintf(tmp, sizeof tmp, "discard"); break;
		case SIEVE_ACT_VACATION:
			snprintf(tmp, sizeof tmp, "vacation %s %s %s", a->vac_to, a->vac_subject,
				 a->vac_skip ? "skip" : "send");
			break;
		}
		if (i)
			strcat(out, ";");
		strcat(out, tmp);
	}
	return out;
}

/* run_scripts - compile scripts[0..n) and run them as before/user/after
 * scripts; returns the outcome (malloc'd), *ndups_r the duplicate marks */
static char *run_scripts(const char *const *texts, size_t n, const char *msgtext,
			 const char *from, struct sieve_limits *lim, bool *error_r,
			 size_t *ndups_r)
{
	struct sieve_compile_env env = { .limits = lim };
	struct sieve_script *s[4];
	assert_true(n <= 4);
	for (size_t i = 0; i < n; i++) {
		char *err = NULL;
		s[i] = sieve_compile_mem("t", texts[i], strlen(texts[i]), &env, &err);
		if (!s[i])
			fail_msg("compile failed: %s", err);
	}
	struct sieve_message m = {
		.data = msgtext, .len = strlen(msgtext), .env_from = from,
		.env_to = "user@home.com.bo", .now = 1773576000,
	};
	struct sieve_result *r = sieve_execute(s, n, &m, NULL);
	assert_non_null(r);
	char *out = fmt_result(r);
	if (error_r)
		*error_r = r->error;
	if (ndups_r)
		*ndups_r = r->ndups;
	sieve_result_free(&r);
	for (size_t i = 0; i < n; i++)
		sieve_script_free(&s[i]);
	return out;
}

/* run_msg - compile and run one script; returns the outcome as "a;b;c" (malloc'd) */
static char *run_msg(const char *script, const char *msgtext, const char *from,
		     struct sieve_limits *lim, bool *error_r)
{
	return run_scripts(&script, 1, msgtext, from, lim, error_r, NULL);
}

static void expect(const char *script, const char *want)
{
	bool err = false;
	char *got = run_msg(script, MSG, "alice@example.org", NULL, &err);
	if (strcmp(got, want) != 0)
		fail_msg("script %s\n got  %s\n want %s", script, got, want);
	free(got);
}

static void core_actions(void **st)
{
	expect("", "store INBOX");
	expect("discard;", "discard");
	expect("require \"fileinto\"; fileinto \"A\"; fileinto \"A\"; keep; fileinto \"INBOX\";",
	       "store A;store INBOX");
	expect("require [\"fileinto\",\"copy\"]; fileinto :copy \"A\";", "store A;store INBOX");
	/* redirect duplicates: local part exact, domain any case (RFC 5321
	 * 2.4); the target as RFC 5321 writes it */
	expect("redirect \"b@example.net\"; redirect \"b@EXAMPLE.net\";", "redirect b@example.net");
	expect("redirect \"b@example.net\"; redirect \"B@example.net\";",
	       "redirect b@example.net;redirect B@example.net");
	expect("redirect \"\\\"a,b\\\"@Example.NET\"; redirect \"\\\"ab\\\"@x.org\";",
	       "redirect \"a,b\"@example.net;redirect ab@x.org");
	/* INBOX in any case is INBOX, and merges with the keep */
	expect("require \"fileinto\"; fileinto \"inbox\";", "store INBOX");
	expect("require [\"fileinto\",\"imap4flags\"]; fileinto \"iNbOx\"; keep :flags \"\\\\Seen\";",
	       "store INBOX [\\Seen]");
	expect("if header :contains \"subject\" \"café\" { discard; stop; } keep;", "discard");
	expect("if address :domain :is \"from\" \"EXAMPLE.org\" { discard; }", "discard");
	expect("if size :over 10000 { discard; }", "store INBOX");
}

static void extensions(void **st)
{
	expect("require [\"imap4flags\"]; addflag \"\\\\seen Foo\"; addflag \"foo\"; keep;",
	       "store INBOX [\\Seen Foo]");
	expect("require [\"fileinto\",\"variables\"];"
	       "if header :matches \"from\" \"*<*@*>\" { fileinto \"${3}/${2}\"; }",
	       "store example.org/alice");
	expect("require [\"fileinto\",\"variables\"]; set :upper :length \"n\" \"abc\";"
	       "fileinto \"n${n}\";", "store n3");
	expect("require [\"fileinto\",\"relational\",\"comparator-i;ascii-numeric\"];"
	       "if header :value \"ge\" :comparator \"i;ascii-numeric\" \"x-spam-score\" \"5\""
	       " { fileinto \"Junk\"; }", "store Junk");
	expect("require [\"fileinto\",\"regex\",\"variables\"];"
	       "if header :regex \"subject\" \"^(caf.*) (r[a-z]+)$\" { fileinto \"${2}\"; }",
	       "store report");
	expect("require \"reject\"; reject \"no\";", "reject no");
	expect("require [\"fileinto\",\"subaddress\",\"envelope\"];"
	       "if envelope :detail \"to\" \"\" { fileinto \"x\"; }", "store INBOX");
}

static void conflicts_end_in_keep(void **st)
{
	bool err = false;
	char *got = run_msg("require [\"reject\",\"fileinto\"]; fileinto \"x\"; reject \"r\";",
			    MSG, "alice@example.org", NULL, &err);
	assert_true(err);
	assert_string_equal(got, "store INBOX");
	free(got);
}

/* runtime_error_result - a run-time error leaves exactly the plain implicit
 * keep: no action, flag, vacation, redirect or duplicate mark of the failing
 * script; a before-script that completed keeps its actions (Pigeonhole
 * 0.5.19, sieve-test -s), and no later script runs */
static void runtime_error_result(void **st)
{
	static const char *fail =
		"require [\"fileinto\",\"imap4flags\",\"vacation\",\"duplicate\","
		"\"variables\"];\n"
		"addflag \"\\\\Seen\"; fileinto \"A\"; redirect \"x@example.net\";\n"
		"vacation \"away\"; if duplicate { discard; }\n"
		"set \"a\" \"bad@\"; redirect \"${a}\"; fileinto \"End\";\n";
	bool err = false;
	size_t ndups = 99;
	char *got = run_scripts(&fail, 1, MSG, "alice@example.org", NULL, &err, &ndups);
	assert_true(err);
	assert_string_equal(got, "store INBOX");
	assert_int_equal(ndups, 0);
	free(got);
	const char *three[] = {
		"require [\"fileinto\",\"copy\",\"imap4flags\",\"duplicate\"];"
		"fileinto :copy \"Before\"; addflag \"\\\\Flagged\"; if duplicate { discard; }",
		fail,
		"require \"fileinto\"; fileinto \"After\";",
	};
	got = run_scripts(three, 3, MSG, "alice@example.org", NULL, &err, &ndups);
	assert_true(err);
	assert_string_equal(got, "store Before;store INBOX");
	assert_int_equal(ndups, 1);
	free(got);
	/* the caller's own run-time error: the same result */
	struct sieve_script *s = sieve_compile_mem("t", three[0], strlen(three[0]), NULL, NULL);
	static const char ut[] =
		"require [\"fileinto\",\"copy\"]; fileinto :copy \"a/b\"; redirect \"r@x.org\";";
	struct sieve_script *u = sieve_compile_mem("u", ut, strlen(ut), NULL, NULL);
	assert_non_null(s);
	assert_non_null(u);
	struct sieve_script *v[] = { s, u };
	struct sieve_message m = { .data = MSG, .len = strlen(MSG), .env_from = "a@b.example",
				   .env_to = "user@home.com.bo", .now = 1773576000 };
	struct sieve_result *r = sieve_execute(v, 2, &m, NULL);
	got = fmt_result(r);
	assert_false(r->error);
	assert_string_equal(got, "store Before;store a/b [\\Flagged];redirect r@x.org");
	free(got);
	sieve_result_set_error(r, &r->actions[1], "t:1:1: error: invalid folder name 'a/b'");
	got = fmt_result(r);
	assert_true(r->error);
	assert_string_equal(r->errmsg, "t:1:1: error: invalid folder name 'a/b'");
	assert_string_equal(got, "store Before;store INBOX");
	assert_true(r->actions[1].implicit);
	free(got);
	sieve_result_free(&r);
	r = sieve_execute(&u, 1, &m, NULL);
	sieve_result_set_error(r, NULL, "x");
	got = fmt_result(r);
	assert_string_equal(got, "store INBOX");
	free(got);
	sieve_result_free(&r);
	sieve_script_free(&s);
	sieve_script_free(&u);
}

static void vacation_rules(void **st)
{
	expect("require \"vacation\"; vacation \"away\";",
	       "vacation alice@example.org Auto: café report send;store INBOX");
	bool err;
	char *got = run_msg("require \"vacation\"; vacation \"away\";", MSG, "", NULL, &err);
	assert_string_equal(got, "vacation  Auto: café report skip;store INBOX");
	free(got);
	got = run_msg("require \"vacation\"; vacation \"away\";", MSG, "owner-list@example.org",
		      NULL, &err);
	assert_non_null(strstr(got, "skip"));
	free(got);
	const char *list = "From: a@example.org\nTo: user@home.com.bo\nPrecedence: bulk\n\nx\n";
	got = run_msg("require \"vacation\"; vacation \"away\";", list, "a@example.org", NULL, &err);
	assert_non_null(strstr(got, "skip"));
	free(got);
	/* no :subject: "Auto: " + the subject whenever there is a Subject
	 * field, even an empty one; "Automated reply" only without one */
	const char *empty = "From: a@example.org\nTo: user@home.com.bo\nSubject:\n\nx\n";
	got = run_msg("require \"vacation\"; vacation \"away\";", empty, "a@example.org", NULL, &err);
	assert_string_equal(got, "vacation a@example.org Auto:  send;store INBOX");
	free(got);
	const char *none = "From: a@example.org\nTo: user@home.com.bo\n\nx\n";
	got = run_msg("require \"vacation\"; vacation \"away\";", none, "a@example.org", NULL, &err);
	assert_string_equal(got, "vacation a@example.org Automated reply send;store INBOX");
	free(got);
	expect("require \"vacation\"; vacation :subject \"\" \"away\";",
	       "vacation alice@example.org Auto: café report send;store INBOX");
	const char *notme = "From: a@example.org\nTo: other@home.com.bo\n\nx\n";
	got = run_msg("require \"vacation\"; vacation \"away\";", notme, "a@example.org", NULL, &err);
	assert_non_null(strstr(got, "skip"));
	free(got);
	got = run_msg("require \"vacation\"; vacation :addresses \"other@home.com.bo\" \"away\";",
		      notme, "a@example.org", NULL, &err);
	assert_non_null(strstr(got, "send"));
	free(got);
}

/* date_zone_at_end - a Date value that ends in a zone sign with fewer than
 * five bytes left: no read past the value (ASan under SANITIZE=1; issue 14
 * item 6: a 63-byte value, memcpy of 5 bytes) and no match */
static void date_zone_at_end(void **st)
{
	for (int pad = 0; pad < 40; pad++) {
		for (int tail = 1; tail <= 5; tail++) {
			char msg[256], val[128];
			/* "(xx..) Mon, 1 Jan 2024 00:00:00 " then tail bytes of "+0100" */
			int l = snprintf(val, sizeof val, "(%.*s) Mon, 1 Jan 2024 00:00:00 %.*s",
					 pad, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", tail,
					 "+0100");
			snprintf(msg, sizeof msg, "From: a@b.example\nDate: %s\n\nx\n", val);
			bool err = false;
			char *got = run_msg("require [\"date\",\"fileinto\"];"
					    "if date :originalzone :is \"date\" \"zone\" \"+0100\""
					    " { fileinto \"Z\"; }",
					    msg, "a@b.example", NULL, &err);
			assert_false(err);
			assert_string_equal(got, tail == 5 ? "store Z" : "store INBOX");
			free(got);
			(void)l;
		}
	}
}

/* run_result - compile one script and run it on msgtext; the raw result */
static struct sieve_result *run_result(const char *script, const char *msgtext)
{
	char *err = NULL;
	struct sieve_script *s = sieve_compile_mem("t", script, strlen(script), NULL, &err);
	if (!s)
		fail_msg("compile failed: %s", err);
	struct sieve_message m = { .data = msgtext, .len = strlen(msgtext),
				   .env_from = "a@b.example", .env_to = "user@home.com.bo",
				   .now = 1773576000 };
	struct sieve_result *r = sieve_execute(&s, 1, &m, NULL);
	assert_non_null(r);
	sieve_script_free(&s);
	return r;
}

/* nothing_silently_dropped - no list of candidates is cut short in silence:
 * the 70th :addresses entry counts, two long ids that share their first
 * 4 KB stay two ids, an address beyond the per-field limit, a part beyond
 * the MIME limits or a field beyond the header limits fails the run
 * (implicit keep) instead of going unseen */
static void nothing_silently_dropped(void **st)
{
	/* :addresses of any length: the user's address is the 70th */
	size_t cap = 200000;
	char *big = malloc(cap), *msg = malloc(cap);
	assert_non_null(big);
	assert_non_null(msg);
	size_t l = (size_t)snprintf(big, cap, "require \"vacation\"; vacation :addresses [");
	for (int i = 0; i < 69; i++)
		l += (size_t)snprintf(big + l, cap - l, "\"alias%d@home.com.bo\",", i);
	snprintf(big + l, cap - l, "\"me@home.com.bo\"] \"away\";");
	const char *tome = "From: a@example.org\nTo: me@home.com.bo\nSubject: s\n\nx\n";
	bool err;
	char *got = run_msg(big, tome, "a@example.org", NULL, &err);
	assert_string_equal(got, "vacation a@example.org Auto: s send;store INBOX");
	free(got);
	/* duplicate ids longer than 4 KB that differ only at the end */
	l = (size_t)snprintf(msg, cap, "From: a@b.example\nX-A: ");
	memset(msg + l, 'i', 5000);
	l += 5000;
	l += (size_t)snprintf(msg + l, cap - l, "1\nX-B: ");
	memset(msg + l, 'i', 5000);
	l += 5000;
	snprintf(msg + l, cap - l, "2\n\nx\n");
	struct sieve_result *r = run_result(
		"require \"duplicate\"; if duplicate :header \"x-a\" {} "
		"if duplicate :header \"x-b\" {}", msg);
	assert_int_equal(r->ndups, 2);
	assert_string_not_equal(r->dups[0].id, r->dups[1].id);
	assert_true(strlen(r->dups[0].id) < 200);   /* hashed, NUL-free */
	sieve_result_free(&r);
	/* the 1,001st address of a To field */
	l = (size_t)snprintf(msg, cap, "From: a@b.example\nTo: ");
	for (int i = 0; i < 1000; i++)
		l += (size_t)snprintf(msg + l, cap - l, "u%d@x.example, ", i);
	snprintf(msg + l, cap - l, "boss@x.example\n\nx\n");
	got = run_msg("if address :is \"to\" \"boss@x.example\" { discard; }", msg,
		      "a@b.example", NULL, &err);
	assert_true(err);
	assert_string_equal(got, "store INBOX");
	free(got);
	/* a text part nested 101 deep */
	l = (size_t)snprintf(msg, cap, "From: a@b.example\nMIME-Version: 1.0\n");
	for (int i = 0; i <= 100; i++)
		l += (size_t)snprintf(msg + l, cap - l,
				      "Content-Type: multipart/mixed; boundary=b%03d\n\n--b%03d\n", i, i);
	snprintf(msg + l, cap - l, "Content-Type: text/plain\n\nhidden word\n");
	got = run_msg("require \"body\"; if body :text :contains \"hidden\" { discard; }", msg,
		      "a@b.example", NULL, &err);
	assert_true(err);
	assert_string_equal(got, "store INBOX");
	free(got);
	/* a Subject after 10,000 other header fields */
	l = (size_t)snprintf(msg, cap, "From: a@b.example\n");
	for (int i = 0; i < 10001; i++)
		l += (size_t)snprintf(msg + l, cap - l, "X:a\n");
	snprintf(msg + l, cap - l, "Subject: hidden\n\nx\n");
	got = run_msg("if header :contains \"subject\" \"hidden\" { discard; }", msg,
		      "a@b.example", NULL, &err);
	assert_true(err);
	assert_string_equal(got, "store INBOX");
	free(got);
	free(big);
	free(msg);
}

static void limits_end_in_keep(void **st)
{
	bool err = false;
	char *got = run_msg("redirect \"a@x.org\"; redirect \"b@x.org\"; redirect \"c@x.org\";"
			    "redirect \"d@x.org\"; redirect \"e@x.org\";", MSG, "a@b.c", NULL, &err);
	assert_true(err);
	assert_string_equal(got, "store INBOX");
	free(got);
	/* a :matches over a long value exhausts a small budget */
	struct sieve_limits lim;
	sieve_limits_default(&lim);
	lim.max_steps = 5000;
	char *big = malloc(70000);
	strcpy(big, "From: a@b\nSubject: ");
	size_t l = strlen(big);
	memset(big + l, 'a', 60000);
	strcpy(big + l + 60000, "\n\nx\n");
	got = run_msg("if header :matches \"subject\" \"*a*a*a*a*a*a*a*b\" { discard; }",
		      big, "a@b.c", &lim, &err);
	assert_true(err);
	assert_string_equal(got, "store INBOX");
	free(got);
	free(big);
}

/* strings_and_siblings - quoted strings reach the actions exactly, whether
 * the lexer ended them in place or copied them; long chains of siblings
 * run in script order */
static void strings_and_siblings(void **st)
{
	expect("require \"fileinto\";fileinto\"a\\\"b\";fileinto \"c\\\\d\";"
	       "fileinto \"e\\f\";",
	       "store a\"b;store c\\d;store ef");
	/* an empty string right before the next token */
	expect("if header :is \"x-none\"\"\"{discard;}if not exists\"x-none\"{keep;}", "store INBOX");
	expect("require \"reject\"; reject \"one\ntwo\";", "reject one\r\ntwo");
	expect("require \"reject\"; reject \"one\r\ntwo\\\nthree\";", "reject one\r\ntwo\r\nthree");
	expect("if header :is [\"x-none\",\"subject\"][\"nope\",\"caf\u00e9 report\"] { discard; }",
	       "discard");
	expect("if anyof(false,false,header :contains\"to\"\"home\") { discard; }", "discard");
	/* 3,000 rules: the first and the last match, in that order (order and
	 * count of siblings) */
	size_t cap = 3000 * 80 + 100, len = 0;
	char *big = malloc(cap);
	assert_non_null(big);
	len += (size_t)snprintf(big + len, cap - len, "require \"fileinto\";\n");
	for (int i = 0; i < 3000; i++)
		len += (size_t)snprintf(big + len, cap - len,
					"if header :is \"x-spam-score\" \"%d\" { fileinto \"F%d\"; }\n",
					i == 0 || i == 2999 ? 7 : 100000 + i, i);
	expect(big, "store F0;store F2999");
	/* a test list of 2,000 is evaluated, the one true test among them found */
	len = (size_t)snprintf(big, cap, "require \"fileinto\"; if anyof (");
	for (int i = 0; i < 2000; i++)
		len += (size_t)snprintf(big + len, cap - len, "%sheader :is \"x-spam-score\" \"%d\"",
					i ? "," : "", i == 1500 ? 7 : 1000 + i);
	snprintf(big + len, cap - len, ") { fileinto \"Hit\"; stop; }");
	expect(big, "store Hit");
	free(big);
}

/* A :matches that fails costs what its walk took, like one that matches:
 * a hostile value that makes the star backtrack over and over must use up
 * the CPU budget, not a flat charge per test (issue 14 review). */
static void glob_miss_is_charged(void **state)
{
	(void)state;
	char v[4000];
	memset(v, 'a', sizeof v);
	uint64_t budget = 1000000, steps = budget;
	size_t n = 0;
	assert_int_equal(sv_glob("*a*b", 4, v, sizeof v, false, NULL, NULL, 0, &n, &steps), 0);
	assert_true(steps > sizeof v / 8);        /* the backtracking was counted */
	steps = 10;                                /* too small a budget: over */
	assert_int_equal(sv_glob("*a*b", 4, v, sizeof v, false, NULL, NULL, 0, &n, &steps), -1);
	steps = budget;
	assert_int_equal(sv_glob("*a*a", 4, v, sizeof v, false, NULL, NULL, 0, &n, &steps), 1);
	assert_true(steps >= 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(core_actions),
		cmocka_unit_test(extensions),
		cmocka_unit_test(conflicts_end_in_keep),
		cmocka_unit_test(runtime_error_result),
		cmocka_unit_test(vacation_rules),
		cmocka_unit_test(date_zone_at_end),
		cmocka_unit_test(nothing_silently_dropped),
		cmocka_unit_test(limits_end_in_keep),
		cmocka_unit_test(strings_and_siblings),
		cmocka_unit_test(glob_miss_is_charged),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
