/* test_pwchange.c — unit tests for the pieces of users' own password
 * changes: lib/hm_pwpolicy (each refusal rule, UTF-8 counting, no password
 * in the reason) and lib/hm_users_expire (the field-8 flag set, cleared and
 * kept beside other flags and later fields, through a users-file round
 * trip). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hm_pwpolicy.h"
#include "hm_users.h"
#include "hm_users_expire.h"

static const struct hm_pw_policy P = HM_PW_POLICY_DEFAULT;

static int check(const char *pw, const char *old, char *why)
{
	return hm_pw_check_strength(&P, pw, old, "carmen@ventas.com.bo", why, 256);
}

static void policy_rules(void **state)
{
	char why[256];

	assert_int_equal(check("Correct-Horse-9", "old", why), 0);
	assert_int_equal(check("Sh0rt-pw", NULL, why), -1);             /* 8 < 10 */
	assert_non_null(strstr(why, "at least 10"));
	assert_int_equal(check("onlylowercaseletters", NULL, why), -1);
	assert_non_null(strstr(why, "mix"));
	assert_int_equal(check("xx-CARMEN-2026", NULL, why), -1);        /* the name */
	assert_non_null(strstr(why, "account name"));
	assert_null(strstr(why, "CARMEN"));                             /* never echoed */
	assert_int_equal(check("Same-Old-Pass-1", "Same-Old-Pass-1", why), -1);
	assert_int_equal(check("Tab\tinside-Pw1", NULL, why), -1);       /* control char */
	assert_int_equal(check("Bad-\xff-utf8-Pw1", NULL, why), -1);
	assert_int_equal(check("\xe0\x80\x80-Overlong-1", NULL, why), -1);
	/* ten characters of which several are two-byte UTF-8: accepted */
	assert_int_equal(check("Ñandú-árb0", NULL, why), 0);
	/* nine characters in more than ten bytes: too short */
	assert_int_equal(check("Ñandú-ár0", NULL, why), -1);
}

static void policy_long_and_repeated(void **state)
{
	char why[256], *big = malloc(HM_PW_MAX_PLAIN + 2);
	struct hm_pw_policy one = { .min_length = 4, .min_classes = 1 };

	assert_non_null(big);
	memset(big, 'a', HM_PW_MAX_PLAIN + 1);
	big[HM_PW_MAX_PLAIN + 1] = '\0';
	assert_int_equal(hm_pw_check_strength(&P, big, NULL, NULL, why, sizeof why), -1);
	assert_int_equal(hm_pw_check_strength(&one, "aaaaaaa", NULL, NULL, why, sizeof why), -1);
	assert_non_null(strstr(why, "repeated"));
	free(big);
}

static void expire_flag_round_trip(void **state)
{
	const char *text =
		"# accounts\n"
		"ana@ventas.com.bo:{PLAIN}x:5000:5000:/var/vmail/v/ana:::\n"
		"bea@ventas.com.bo:{PLAIN}x:5001:5001:/var/vmail/v/bea:1G::other:field9\n";
	struct hm_users *db = NULL;
	char *out;
	size_t len;

	assert_int_equal(hm_users_parse(text, strlen(text), "t", NULL, NULL, &db), 0);
	assert_false(hm_user_pw_expired(hm_users_find(db, "ana@ventas.com.bo")));
	assert_int_equal(hm_users_set_pw_expired(db, "ana@ventas.com.bo", true), 0);
	assert_int_equal(hm_users_set_pw_expired(db, "bea@ventas.com.bo", true), 0);
	assert_true(hm_user_pw_expired(hm_users_find(db, "ana@ventas.com.bo")));
	out = hm_users_serialize(db, &len);
	assert_non_null(strstr(out, "/var/vmail/v/ana:::expired\n"));
	assert_non_null(strstr(out, ":1G::other,expired:field9\n"));   /* others kept */
	free(out);
	assert_int_equal(hm_users_set_pw_expired(db, "bea@ventas.com.bo", false), 0);
	assert_false(hm_user_pw_expired(hm_users_find(db, "bea@ventas.com.bo")));
	out = hm_users_serialize(db, &len);
	assert_non_null(strstr(out, ":1G::other:field9\n"));
	free(out);
	errno = 0;
	assert_int_equal(hm_users_set_pw_expired(db, "nobody@ventas.com.bo", true), -1);
	assert_int_equal(errno, ENOENT);
	/* "expiredx" or "xexpired" is not the flag */
	assert_false(hm_users_flag_in("expiredx,xexpired", HM_USERS_FLAG_EXPIRED));
	assert_true(hm_users_flag_in("a,expired:b", HM_USERS_FLAG_EXPIRED));
	assert_false(hm_users_flag_in("a:expired", HM_USERS_FLAG_EXPIRED));
	hm_users_free(&db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(policy_rules),
		cmocka_unit_test(policy_long_and_repeated),
		cmocka_unit_test(expire_flag_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
