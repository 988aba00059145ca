/* test_quota.c — unit tests for lib/hm_quota: quota_rule parsing (storage is
 * KiB by default, as in Dovecot), maildirsize limits line, recalculation over
 * INBOX and folders (,S= or stat size), append lines, and Dovecot's rebuild
 * triggers (missing, >= 5120 bytes, garbage, negative, stale over-quota,
 * changed forced limits). */
#define _GNU_SOURCE 1   /* nftw, for hm_testutil.h */
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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hm_quota.h"
#include "hm_testutil.h"
#include "hm_util.h"

static char root[256];
static int root_fd = -1;

static void put(const char *rel, const char *content)
{
	char p[512];
	snprintf(p, sizeof p, "%s/%s", root, rel);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(content, f);
	fclose(f);
}

static char *get(const char *rel)
{
	static char buf[8192];
	char p[512];
	snprintf(p, sizeof p, "%s/%s", root, rel);
	FILE *f = fopen(p, "r");
	if (f == NULL)
		return NULL;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = 0;
	fclose(f);
	return buf;
}

static int setup(void **state)
{
	snprintf(root, sizeof root, "/tmp/hm-quota-test.%d", (int)getpid());
	if (hm_test_rmtree(root) < 0)
		return -1;
	static const char *const dirs[] = {"", "/new", "/cur", "/tmp", "/.Sub", "/.Sub/cur", "/.Sub/new"};
	for (size_t i = 0; i < HM_ARRAY_SIZE(dirs); i++) {
		char d[512];
		snprintf(d, sizeof d, "%s%s", root, dirs[i]);
		if (mkdir(d, 0700) < 0)
			return -1;
	}
	root_fd = open(root, O_RDONLY | O_DIRECTORY);
	/* 3 messages: two with S=, one whose size comes from stat (5 bytes) */
	put("new/1.M1P1Q1.h,S=1000,W=1020", "x");
	put("cur/2.M1P1Q2.h,S=2000,W=2040:2,S", "x");
	put(".Sub/cur/3.M1P1Q3.h:2,", "12345");
	return 0;
}

static int teardown(void **state)
{
	close(root_fd);
	return hm_test_rmtree(root);
}

static void rules(void **state)
{
	struct hm_quota_rule r;
	assert_int_equal(hm_quota_parse_rule("*:storage=100M", &r), 0);
	assert_true(r.forced);
	assert_int_equal(r.bytes_limit, 100ULL << 20);
	assert_int_equal(hm_quota_parse_rule("*:storage=1024", &r), 0);
	assert_int_equal(r.bytes_limit, 1024ULL * 1024);
	assert_int_equal(hm_quota_parse_rule("*:bytes=5000:messages=10", &r), 0);
	assert_int_equal(r.bytes_limit, 5000);
	assert_int_equal(r.count_limit, 10);
	assert_int_equal(hm_quota_parse_rule("?:storage=1G", &r), 0);
	assert_false(r.forced);
	assert_int_equal(r.bytes_limit, 1ULL << 30);
	assert_int_equal(hm_quota_parse_rule("*:backend=100S,5C", &r), 0);
	assert_int_equal(r.bytes_limit, 100);
	assert_int_equal(r.count_limit, 5);
	const char *bad[] = { "storage=1", "*:storage=abc", "*:foo=1", "*:storage=1X",
			      "*:storage=99999999999999999999", "Trash:storage=1" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(hm_quota_parse_rule(bad[i], &r), -1);
	unsigned long long b, c;
	assert_true(hm_quota_parse_limits("1000S,10C", &b, &c));
	assert_int_equal(b, 1000);
	assert_int_equal(c, 10);
	assert_true(hm_quota_parse_limits("0S", &b, &c));
	assert_int_equal(b, 0);
	assert_false(hm_quota_parse_limits("12X", &b, &c));
}

static void no_quota_without_rule_or_file(void **state)
{
	struct hm_quota q;
	assert_int_equal(hm_quota_load(root_fd, NULL, time(NULL), &q), 0);
	assert_false(q.active);
	assert_null(get("maildirsize"));
	assert_false(hm_quota_exceeded(&q, 1ULL << 40, 1000));
}

static void recalc_and_append(void **state)
{
	struct hm_quota_rule r;
	struct hm_quota q;
	assert_int_equal(hm_quota_parse_rule("*:bytes=10000:messages=100", &r), 0);
	assert_int_equal(hm_quota_load(root_fd, &r, time(NULL), &q), 0);
	assert_true(q.active);
	assert_true(q.recalculated);
	assert_int_equal(q.bytes, 3005);
	assert_int_equal(q.count, 3);
	assert_string_equal(get("maildirsize"), "10000S,100C\n3005 3\n");
	struct stat st;
	char p[512];
	snprintf(p, sizeof p, "%s/maildirsize", root);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_false(hm_quota_exceeded(&q, 6995, 1));
	assert_true(hm_quota_exceeded(&q, 6996, 1));
	assert_int_equal(hm_quota_add(root_fd, &q, 500, 1), 0);
	assert_string_equal(get("maildirsize"), "10000S,100C\n3005 3\n500 1\n");
	assert_int_equal(hm_quota_load(root_fd, &r, time(NULL), &q), 0);
	assert_false(q.recalculated);
	assert_int_equal(q.bytes, 3505);
	assert_int_equal(q.count, 4);
	/* changed forced limits: rebuilt (the 500 was never stored, so it goes) */
	assert_int_equal(hm_quota_parse_rule("*:storage=20", &r), 0);
	assert_int_equal(hm_quota_load(root_fd, &r, time(NULL), &q), 0);
	assert_true(q.recalculated);
	assert_string_equal(get("maildirsize"), "20480S\n3005 3\n");
}

static void rebuild_triggers(void **state)
{
	struct hm_quota q;
	/* non-forced: limits come from the file */
	put("maildirsize", "50000S\n100 1\n-50 0\n");
	assert_int_equal(hm_quota_load(root_fd, NULL, time(NULL), &q), 0);
	assert_true(q.active);
	assert_false(q.recalculated);
	assert_int_equal(q.bytes_limit, 50000);
	assert_int_equal(q.bytes, 50);
	/* garbage line */
	put("maildirsize", "50000S\n100 1\nhello\n");
	assert_int_equal(hm_quota_load(root_fd, NULL, time(NULL), &q), 0);
	assert_true(q.recalculated);
	assert_int_equal(q.bytes, 3005);
	/* negative sum */
	put("maildirsize", "50000S\n-100 -1\n");
	assert_int_equal(hm_quota_load(root_fd, NULL, time(NULL), &q), 0);
	assert_true(q.recalculated);
	/* too long */
	char big[6000];
	strcpy(big, "50000S\n");
	while (strlen(big) < 5200)
		strcat(big, "1 0\n");
	put("maildirsize", big);
	assert_int_equal(hm_quota_load(root_fd, NULL, time(NULL), &q), 0);
	assert_true(q.recalculated);
	assert_string_equal(get("maildirsize"), "50000S\n3005 3\n");
	/* over quota with one line and fresh: trusted */
	put("maildirsize", "1000S\n99999 9\n");
	assert_int_equal(hm_quota_load(root_fd, NULL, time(NULL), &q), 0);
	assert_false(q.recalculated);
	assert_int_equal(q.bytes, 99999);
	/* ... but not when older than 15 minutes */
	assert_int_equal(hm_quota_load(root_fd, NULL, time(NULL) + 16 * 60, &q), 0);
	assert_true(q.recalculated);
	assert_int_equal(q.bytes, 3005);
	/* over quota with two lines: recalculated */
	put("maildirsize", "1000S\n99999 9\n1 1\n");
	assert_int_equal(hm_quota_load(root_fd, NULL, time(NULL), &q), 0);
	assert_true(q.recalculated);
	/* unterminated last line is ignored */
	put("maildirsize", "90000S\n10 1\n5000 1");
	assert_int_equal(hm_quota_load(root_fd, NULL, time(NULL), &q), 0);
	assert_false(q.recalculated);
	assert_int_equal(q.bytes, 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(rules),
		cmocka_unit_test_setup_teardown(no_quota_without_rule_or_file, setup, teardown),
		cmocka_unit_test_setup_teardown(recalc_and_append, setup, teardown),
		cmocka_unit_test_setup_teardown(rebuild_triggers, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
