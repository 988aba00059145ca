/* test_junklist_deliver.c — unit tests for deliver-helper/deliver_junk.c:
 * which sender decides (From: before the envelope), homemail's own rules
 * (blocked -> Junk, scan tag -> Junk unless trusted), the exported
 * environment for Sieve, and soft failure on unusable list files. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "deliver.h"
#include "deliver_junk.h"
#include "hm_header.h"
#include "hm_junklist.h"

static char dir[] = "/tmp/test_junklist_deliver.XXXXXX";

/* put_list - write the list file */
static void put_list(const char *text)
{
	char p[256];
	snprintf(p, sizeof p, "%s/%s", dir, HM_JUNKLIST_FILE);
	unlink(p);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* hdr - parse a header block */
static struct hm_header *hdr(const char *text)
{
	struct hm_header *h;
	assert_int_equal(hm_header_parse(text, strlen(text), NULL, &h), 0);
	return h;
}

static int setup(void **state)
{
	if (mkdtemp(dir) == NULL)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	char p[256];
	snprintf(p, sizeof p, "%s/%s", dir, HM_JUNKLIST_FILE);
	unlink(p);
	rmdir(dir);
	return 0;
}

static void no_list_no_verdict(void **state)
{
	struct deliver_junk_verdict v;
	struct hm_header *h = hdr("From: a@b.example\n\n");
	char p[256];
	snprintf(p, sizeof p, "%s/%s", dir, HM_JUNKLIST_FILE);
	unlink(p);
	assert_int_equal(deliver_junk_check(dir, h, "a@b.example", &v), 0);
	assert_int_equal(v.kind, HM_JUNK_NONE);
	assert_false(v.to_junk);
	assert_string_equal(v.sender, "");
	hm_header_free(&h);
}

static void from_decides_before_envelope(void **state)
{
	struct deliver_junk_verdict v;
	put_list("B 1 spam@spam.example\nT 1 friend@ok.example\nB 1 bounce@esp.example\n"
		 "B 1 @evil.example\n");
	struct hm_header *h = hdr("From: Spam King <SPAM@spam.example>\nSubject: x\n\n");
	assert_int_equal(deliver_junk_check(dir, h, "", &v), 0);
	assert_int_equal(v.kind, HM_JUNK_BLOCKED);
	assert_true(v.to_junk);
	assert_string_equal(v.via, "From");
	assert_string_equal(v.sender, "spam@spam.example");
	hm_header_free(&h);

	/* trusted From: wins over a blocked envelope sender */
	h = hdr("From: friend@ok.example\n\n");
	assert_int_equal(deliver_junk_check(dir, h, "bounce@esp.example", &v), 0);
	assert_int_equal(v.kind, HM_JUNK_TRUSTED);
	assert_false(v.to_junk);
	hm_header_free(&h);

	/* unknown From: -> the envelope sender decides */
	h = hdr("From: new-face@other.example\n\n");
	assert_int_equal(deliver_junk_check(dir, h, "Bounce@ESP.example", &v), 0);
	assert_int_equal(v.kind, HM_JUNK_BLOCKED);
	assert_string_equal(v.via, "envelope");
	hm_header_free(&h);

	/* domain entry */
	h = hdr("From: anyone@Evil.Example\n\n");
	assert_int_equal(deliver_junk_check(dir, h, NULL, &v), 0);
	assert_int_equal(v.kind, HM_JUNK_BLOCKED);
	assert_string_equal(v.sender, "@evil.example");
	hm_header_free(&h);

	/* no From: and the null sender: nothing to look up */
	h = hdr("Subject: no from\n\n");
	assert_int_equal(deliver_junk_check(dir, h, "", &v), 0);
	assert_int_equal(v.kind, HM_JUNK_NONE);
	hm_header_free(&h);
	assert_int_equal(deliver_junk_check(dir, NULL, NULL, &v), 0);
	assert_int_equal(v.kind, HM_JUNK_NONE);
}

static void scan_tag_rule(void **state)
{
	struct deliver_junk_verdict v;
	put_list("T 1 friend@ok.example\n");
	struct hm_header *h = hdr("From: x@y.example\nX-Homemail-Scan: tag; parts=2; depth=1\n\n");
	assert_int_equal(deliver_junk_check(dir, h, "x@y.example", &v), 0);
	assert_true(v.scan_tagged);
	assert_true(v.to_junk);
	hm_header_free(&h);
	/* trusted: never Junk by homemail's rules */
	h = hdr("From: friend@ok.example\nX-Homemail-Scan: tag; parts=2\n\n");
	assert_int_equal(deliver_junk_check(dir, h, "", &v), 0);
	assert_true(v.scan_tagged);
	assert_false(v.to_junk);
	hm_header_free(&h);
	/* a forged "accept" next to the real "tag" does not hide it */
	h = hdr("From: x@y.example\nX-Homemail-Scan: accept; parts=1\n"
		"X-Homemail-Scan: tag; parts=1\n\n");
	assert_int_equal(deliver_junk_check(dir, h, "", &v), 0);
	assert_true(v.to_junk);
	hm_header_free(&h);
	/* only the word "tag" counts */
	h = hdr("From: x@y.example\nX-Homemail-Scan: tagged-by-someone\n"
		"X-Homemail-Scan: accept; parts=1; rules=tag\n\n");
	assert_int_equal(deliver_junk_check(dir, h, "", &v), 0);
	assert_false(v.scan_tagged);
	assert_false(v.to_junk);
	hm_header_free(&h);
}

/* HOMEMAIL_SPAM=yes (Exim's rspamd verdict, set by the transport) files
 * into Junk like the scan tag; a trusted sender wins; only "yes" counts;
 * an X-Spam-Flag field in the message decides nothing (a sender or an
 * upstream filter may have written it) */
static void spam_verdict_rule(void **state)
{
	struct deliver_junk_verdict v;
	(void)state;
	put_list("T 1 friend@ok.example\n");
	struct hm_header *h = hdr("From: x@y.example\n\n");
	setenv(DELIVER_SPAM_ENV, "yes", 1);
	assert_int_equal(deliver_junk_check(dir, h, "x@y.example", &v), 0);
	assert_true(v.spam_flagged);
	assert_false(v.scan_tagged);
	assert_true(v.to_junk);
	hm_header_free(&h);
	h = hdr("From: friend@ok.example\n\n");
	assert_int_equal(deliver_junk_check(dir, h, "", &v), 0);
	assert_true(v.spam_flagged);
	assert_false(v.to_junk);
	hm_header_free(&h);
	setenv(DELIVER_SPAM_ENV, "YES please", 1);
	h = hdr("From: x@y.example\n\n");
	assert_int_equal(deliver_junk_check(dir, h, "", &v), 0);
	assert_false(v.to_junk);
	hm_header_free(&h);
	unsetenv(DELIVER_SPAM_ENV);
	h = hdr("From: x@y.example\nX-Spam-Flag: YES\nX-Spam-Status: Yes, score=9\n\n");
	assert_int_equal(deliver_junk_check(dir, h, "", &v), 0);
	assert_false(v.spam_flagged);
	assert_false(v.to_junk);
	hm_header_free(&h);
}

static void export_and_route(void **state)
{
	put_list("B 1 spam@spam.example\n");
	setenv(DELIVER_JUNK_ENV, "trusted", 1);        /* inherited: must be replaced */
	struct hm_header *h = hdr("From: spam@spam.example\n\n");
	struct deliver_ctx ctx;
	memset(&ctx, 0, sizeof ctx);
	ctx.maildir = dir;
	ctx.hdr = h;
	ctx.sender = "";
	ctx.mailbox = NULL;
	assert_int_equal(deliver_junk_route(&ctx), 0);
	assert_non_null(ctx.mailbox);
	assert_string_equal(ctx.mailbox, "Junk");
	assert_string_equal(getenv(DELIVER_JUNK_ENV), "blocked");
	assert_string_equal(getenv(DELIVER_JUNK_ENV_SENDER), "spam@spam.example");
	assert_string_equal(getenv(DELIVER_JUNK_ENV_TO_JUNK), "yes");
	hm_header_free(&h);

	/* a -m mailbox stays when nothing is junk */
	h = hdr("From: fine@ok.example\n\n");
	ctx.hdr = h;
	ctx.mailbox = "Lists";
	assert_int_equal(deliver_junk_route(&ctx), 0);
	assert_string_equal(ctx.mailbox, "Lists");
	assert_string_equal(getenv(DELIVER_JUNK_ENV), "none");
	assert_string_equal(getenv(DELIVER_JUNK_ENV_SENDER), "");
	assert_string_equal(getenv(DELIVER_JUNK_ENV_TO_JUNK), "no");
	hm_header_free(&h);
}

static void unusable_list_is_no_verdict(void **state)
{
	struct deliver_junk_verdict v;
	char p[256];
	snprintf(p, sizeof p, "%s/%s", dir, HM_JUNKLIST_FILE);
	unlink(p);
	assert_int_equal(symlink("/etc/passwd", p), 0);
	struct hm_header *h = hdr("From: root@localhost.example\n\n");
	assert_int_equal(deliver_junk_check(dir, h, "", &v), 0);
	assert_int_equal(v.kind, HM_JUNK_NONE);
	assert_false(v.to_junk);
	unlink(p);
	assert_int_equal(deliver_junk_check("/nonexistent/dir", h, "", &v), 0);
	assert_int_equal(v.kind, HM_JUNK_NONE);
	assert_int_equal(deliver_junk_check(NULL, h, "", &v), 0);
	hm_header_free(&h);
	/* damaged lines are counted, good ones still used */
	put_list("B 1 spam@spam.example\n\x01garbage\nX 2 y@z\n");
	h = hdr("From: spam@spam.example\n\n");
	assert_int_equal(deliver_junk_check(dir, h, "", &v), 0);
	assert_int_equal(v.kind, HM_JUNK_BLOCKED);
	assert_int_equal(v.damaged, 2);
	hm_header_free(&h);
}

static void sieve_view(void **state)
{
	size_t n;
	char *v;
	const char msg[] = "Return-Path: <x@y.example>\r\n"
			   "X-Homemail-Junk: trusted\r\n"
			   "From: x@y.example\r\n"
			   "x-homemail-junk-sender: friend@forged.example\r\n"
			   "Subject: hi\r\n\r\n"
			   "X-Homemail-Junk: trusted (in the body: kept)\r\n";
	setenv(DELIVER_JUNK_ENV, "blocked", 1);
	setenv(DELIVER_JUNK_ENV_SENDER, "Spam@Spam.example", 1);
	v = deliver_junk_sieve_view(msg, sizeof msg - 1, &n);
	assert_non_null(v);
	const char want[] = "X-Homemail-Junk: blocked\r\n"
			    "X-Homemail-Junk-Sender: spam@spam.example\r\n"
			    "Return-Path: <x@y.example>\r\n"
			    "From: x@y.example\r\n"
			    "Subject: hi\r\n\r\n"
			    "X-Homemail-Junk: trusted (in the body: kept)\r\n";
	assert_int_equal(n, sizeof want - 1);
	assert_memory_equal(v, want, n);
	free(v);

	/* LF message, no match, hostile environment values are not copied */
	setenv(DELIVER_JUNK_ENV, "blocked\nX-Evil: 1", 1);
	setenv(DELIVER_JUNK_ENV_SENDER, "a b@c\nX-Evil: 1", 1);
	const char lf[] = "From: a@b.example\n\nbody\n";
	v = deliver_junk_sieve_view(lf, sizeof lf - 1, &n);
	assert_non_null(v);
	const char want2[] = "X-Homemail-Junk: none\nFrom: a@b.example\n\nbody\n";
	assert_int_equal(n, sizeof want2 - 1);
	assert_memory_equal(v, want2, n);
	free(v);

	/* header only, no body, last field without line end */
	const char bare[] = "X-Homemail-Junk: blocked";
	v = deliver_junk_sieve_view(bare, sizeof bare - 1, &n);
	assert_non_null(v);
	assert_int_equal(n, strlen("X-Homemail-Junk: none\n"));
	free(v);
	unsetenv(DELIVER_JUNK_ENV);
	unsetenv(DELIVER_JUNK_ENV_SENDER);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(no_list_no_verdict),
		cmocka_unit_test(from_decides_before_envelope),
		cmocka_unit_test(scan_tag_rule),
		cmocka_unit_test(spam_verdict_rule),
		cmocka_unit_test(export_and_route),
		cmocka_unit_test(unusable_list_is_no_verdict),
		cmocka_unit_test(sieve_view),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
