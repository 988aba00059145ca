/* test_scan_route.c — unit tests for exim-local-scan/scan_route.c, the
 * string homemail_scan.so's homemail_route hands Exim's routers.
 * Guards against: an account routed without a usable uid/gid (0, missing,
 * not decimal) instead of deferring; a value that breaks out of Exim's
 * ${extract} quoting; an alias answered to the account router or the other
 * way round. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "scan_route.h"

static char *route(const char *line, enum scan_route_want want, int *rc_r)
{
	struct hm_auth_reply *r = NULL;
	char err[256], *out = NULL;

	assert_int_equal(hm_auth_parse_user_line(line, strlen(line), &r), 0);
	*rc_r = scan_route_format(r, want, &out, err, sizeof(err));
	hm_auth_reply_free(&r);
	return out;
}

static void account_and_alias(void **state)
{
	int rc;
	char *s = route("USER\t1\tana@v.bo\tuid=5000\tgid=5001\thome=/var/vmail/v.bo/ana\t"
			"homemail_detail=tag", SCAN_ROUTE_VIRTUAL, &rc);
	assert_int_equal(rc, 1);
	assert_string_equal(s, "user=\"ana@v.bo\" uid=\"5000\" gid=\"5001\" "
			    "home=\"/var/vmail/v.bo/ana\" detail=\"tag\"");
	free(s);
	/* a system account (the module adds system_groups_user) is not virtual */
	s = route("USER\t1\talice\tsystem_groups_user=alice\tuid=1001\tgid=100\thome=/home/alice",
		  SCAN_ROUTE_VIRTUAL, &rc);
	assert_int_equal(rc, 0);
	free(s);
	s = route("USER\t1\talice\tsystem_groups_user=alice\tuid=1001\tgid=100\thome=/home/alice",
		  SCAN_ROUTE_SYSTEM, &rc);
	assert_int_equal(rc, 1);
	assert_non_null(strstr(s, "user=\"alice\" uid=\"1001\""));
	free(s);
	s = route("USER\t1\tana@v.bo\tuid=5000\tgid=5001\thome=/h", SCAN_ROUTE_SYSTEM, &rc);
	assert_int_equal(rc, 0);
	free(s);
	s = route("USER\t1\tana@v.bo\tuid=5000\tgid=5001\thome=/h", SCAN_ROUTE_ALIAS, &rc);
	assert_int_equal(rc, 0);
	assert_null(s);
	s = route("USER\t1\tsales@v.bo\thomemail_targets=a@v.bo,b@h.bo", SCAN_ROUTE_ALIAS, &rc);
	assert_int_equal(rc, 1);
	assert_string_equal(s, "data=\"a@v.bo, b@h.bo\"");
	free(s);
	s = route("USER\t1\tsales@v.bo\thomemail_targets=a@v.bo", SCAN_ROUTE_VIRTUAL, &rc);
	assert_int_equal(rc, 0);
	free(s);
	s = route("USER\t1\tl@v.bo\thomemail_fail=alias loop: l@v.bo -> m@v.bo -> l@v.bo",
		  SCAN_ROUTE_ALIAS, &rc);
	assert_int_equal(rc, 1);
	assert_string_equal(s, "data=\":fail: alias loop: l@v.bo -> m@v.bo -> l@v.bo\"");
	free(s);
	/* quotes and backslashes in a home stay inside the value */
	s = route("USER\t1\tq@v.bo\tuid=5000\tgid=5000\thome=/v/a\" uid=\"0\\x",
		  SCAN_ROUTE_VIRTUAL, &rc);
	assert_int_equal(rc, 1);
	assert_non_null(strstr(s, "home=\"/v/a\\\" uid=\\\"0\\\\x\""));
	free(s);
}

static void unusable_ids(void **state)
{
	static const char *const bad[] = {
		"USER\t1\tx@v.bo\tuid=0\tgid=5000\thome=/h",
		"USER\t1\tx@v.bo\tuid=5000\tgid=0\thome=/h",
		"USER\t1\tx@v.bo\tuid=-1\tgid=5000\thome=/h",
		"USER\t1\tx@v.bo\tuid=50a0\tgid=5000\thome=/h",
		"USER\t1\tx@v.bo\tuid=99999999999\tgid=5000\thome=/h",
		"USER\t1\tx@v.bo\tgid=5000\thome=/h",
		"USER\t1\tx@v.bo\tuid=5000\tgid=5000",
		"USER\t1\tx@v.bo\tuid=5000\tgid=5000\thome=relative",
		"USER\t1\tx@v.bo",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc;
		char *s = route(bad[i], SCAN_ROUTE_VIRTUAL, &rc);
		if (rc != -1)
			fail_msg("accepted: %s", bad[i]);
		assert_null(s);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(account_and_alias),
		cmocka_unit_test(unusable_ids),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
