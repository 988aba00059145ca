/* test_authdb_core.c — unit tests for dovecot-plugin/authdb_*.c, the
 * Dovecot-independent policy of the `homemail` passdb/userdb: argument
 * parsing, login normalisation, the verify path with lockout (locked,
 * unknown and wrong all answer alike), rehash written back, templates.
 * Guards against: a locked account let in with the right password, a
 * rehash that overwrites a hash changed meanwhile, uid-0 lines served. */
#define _GNU_SOURCE 1   /* nftw, for hm_testutil.h */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "authdb_core.h"
#include "hm_testutil.h"

static char dir[64], users[128], lockpath[128];
static char lastlog[2048];

static void logcb(void *ctx, enum hm_authdb_log_level lvl, const char *msg)
{
	(void)ctx;
	(void)lvl;
	snprintf(lastlog, sizeof(lastlog), "%s", msg);
}

static int setup(void **state)
{
	strcpy(dir, "/tmp/test_authcore.XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(users, sizeof(users), "%s/users", dir);
	snprintf(lockpath, sizeof(lockpath), "%s/lock/lockout.db", dir);
	return 0;
}

static int teardown(void **state)
{
	return hm_test_rmtree(dir);
}

static void write_users(const char *text)
{
	char tmp[160];
	FILE *f;
	snprintf(tmp, sizeof(tmp), "%s.new", users);
	f = fopen(tmp, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(rename(tmp, users), 0);
}

static void args_parse(void **state)
{
	struct hm_authdb_set s;
	char err[256];

	hm_authdb_set_default(&s);
	assert_int_equal(hm_authdb_parse_args("users=/x/u system=no min_uid=500 domains=A.org,b.net "
					      "allow_weak=yes rehash=bcrypt lockout=no max_failures=3 "
					      "window=60 lock_time=30 backoff_after=0 mail=maildir:~/M "
					      "sieve=file:~/s;active=~/a blocking=no", &s, err, sizeof(err)), 0);
	assert_string_equal(s.users_path, "/x/u");
	assert_false(s.system);
	assert_int_equal(s.min_uid, 500);
	assert_int_equal(s.ndomains, 2);
	assert_string_equal(s.domains[0], "a.org");
	assert_true(s.allow_weak);
	assert_int_equal(s.rehash, HM_PW_BCRYPT);
	assert_string_equal(s.lockout_path, "");
	assert_int_equal(s.policy.max_failures, 3);
	assert_false(s.blocking);
	assert_int_equal(s.nip_exempt, 2);      /* default: 127.0.0.1 ::1 */
	assert_int_equal(hm_authdb_parse_args("ip_exempt=10.0.0.0/8,::1,192.0.2.1", &s, err, sizeof(err)), 0);
	assert_int_equal(s.nip_exempt, 3);
	const char *bad[] = { "nonsense", "frob=1", "min_uid=0", "rehash=md5", "users=relative",
			      "ip_exempt=bogus", "ip_exempt=10.0.0.0/33",
			      "users=no system=no", "domains=bad..dom", "window=x", NULL };
	for (int i = 0; bad[i]; i++) {
		hm_authdb_set_default(&s);
		err[0] = '\0';
		assert_int_equal(hm_authdb_parse_args(bad[i], &s, err, sizeof(err)), -1);
		assert_true(err[0] != '\0');
	}
}

static void templates(void **state)
{
	char out[128];

	assert_int_equal(hm_authdb_expand("maildir:~/Maildir", "/h/a", out, sizeof(out)), 0);
	assert_string_equal(out, "maildir:/h/a/Maildir");
	assert_int_equal(hm_authdb_expand("file:~/sieve;active=~/.dovecot.sieve", "/h", out, sizeof(out)), 0);
	assert_string_equal(out, "file:/h/sieve;active=/h/.dovecot.sieve");
	assert_int_equal(hm_authdb_expand("x~y", "/h", out, sizeof(out)), 0);
	assert_string_equal(out, "x~y");
	assert_int_equal(hm_authdb_expand("~/a", "/very/long/home", out, 8), -1);
	hm_authdb_quota_rule(0, out, sizeof(out));
	assert_string_equal(out, "");
	hm_authdb_quota_rule(1024, out, sizeof(out));
	assert_string_equal(out, "*:storage=1024B");
}

static void verify_with_lockout_and_rehash(void **state)
{
	struct hm_authdb_set s;
	struct hm_authdb db;
	struct hm_authdb_account acct;
	char err[256], canon[300], text[2048], h[HM_PW_HASH_SIZE];
	FILE *f;

	assert_int_equal(hm_pw_hash("Right-pw", HM_PW_SHA512_CRYPT, h, sizeof(h)), 0);
	snprintf(text, sizeof(text),
		 "# t\n"
		 "a@x.org:%s:5000:5000:/h/a:1M:\n"
		 "root@x.org:%s:0:0:/root::\n"
		 "low@x.org:%s:50:50:/h/low::\n"
		 "off@x.org:%s:5000:5000:/h/off::disabled\n", h, h, h, h);
	write_users(text);
	hm_authdb_set_default(&s);
	char args[512];
	snprintf(args, sizeof(args), "users=%s lockout=%s system=no max_failures=3 backoff_after=0 "
		 "ip_max_failures=0", users, lockpath);
	assert_int_equal(hm_authdb_parse_args(args, &s, err, sizeof(err)), 0);
	hm_authdb_init(&db, &s, logcb, NULL);

	assert_int_equal(hm_authdb_lookup(&db, "A@X.ORG", &acct), 1);
	assert_string_equal(acct.name, "a@x.org");
	assert_true(acct.is_virtual);
	assert_int_equal(acct.quota_bytes, 1 << 20);
	hm_authdb_account_free(&acct);
	assert_int_equal(hm_authdb_lookup(&db, "root@x.org", &acct), 0);   /* uid 0 line is malformed */
	assert_int_equal(hm_authdb_lookup(&db, "low@x.org", &acct), 0);    /* below min_uid */
	assert_int_equal(hm_authdb_lookup(&db, "a@x.org\t", &acct), 0);
	assert_int_equal(hm_authdb_lookup(&db, "nosuch", &acct), 0);       /* system=no */

	/* the right password on a disabled account is refused but is no guess:
	 * its reservation is given back, so it never locks (max_failures=3) */
	for (int i = 0; i < 5; i++) {
		assert_int_equal(hm_authdb_verify(&db, "off@x.org", "Right-pw", "192.0.2.3", canon,
						  sizeof(canon)), HM_AUTHDB_MISMATCH);
		assert_non_null(strstr(lastlog, "account disabled"));
	}
	assert_int_equal(hm_authdb_verify(&db, "nobody@x.org", "x", "192.0.2.1", canon, sizeof(canon)),
			 HM_AUTHDB_UNKNOWN);
	assert_non_null(strstr(lastlog, "unknown user"));
	/* success rehashes SHA512-CRYPT → yescrypt in the file */
	assert_int_equal(hm_authdb_verify(&db, "A@x.org", "Right-pw", NULL, canon, sizeof(canon)),
			 HM_AUTHDB_OK);
	assert_string_equal(canon, "a@x.org");
	f = fopen(users, "r");
	assert_non_null(f);
	size_t n = fread(text, 1, sizeof(text) - 1, f);
	text[n] = '\0';
	fclose(f);
	assert_non_null(strstr(text, "a@x.org:$y$"));
	assert_non_null(strstr(text, "root@x.org:$6$"));           /* malformed line kept */
	assert_int_equal(hm_authdb_verify(&db, "a@x.org", "Right-pw", NULL, canon, sizeof(canon)),
			 HM_AUTHDB_OK);
	/* a success clears the failures reserved before it */
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 2; i++)
			assert_int_equal(hm_authdb_verify(&db, "a@x.org", "bad", NULL, canon, sizeof(canon)),
					 HM_AUTHDB_MISMATCH);
		assert_int_equal(hm_authdb_verify(&db, "a@x.org", "Right-pw", NULL, canon, sizeof(canon)),
				 HM_AUTHDB_OK);
	}
	/* three failures lock; the right password is then refused */
	for (int i = 0; i < 3; i++)
		assert_int_equal(hm_authdb_verify(&db, "a@x.org", "bad", NULL, canon, sizeof(canon)),
				 HM_AUTHDB_MISMATCH);
	assert_int_equal(hm_authdb_verify(&db, "a@x.org", "Right-pw", NULL, canon, sizeof(canon)),
			 HM_AUTHDB_MISMATCH);
	assert_non_null(strstr(lastlog, "user locked out"));
	assert_non_null(strstr(lastlog, "(password was right)"));
	/* an unknown name locks the same way and still answers "unknown" */
	for (int i = 0; i < 4; i++)
		assert_int_equal(hm_authdb_verify(&db, "ghost@x.org", "bad", NULL, canon, sizeof(canon)),
				 HM_AUTHDB_UNKNOWN);
	assert_non_null(strstr(lastlog, "user locked out"));
	/* a hostile login name is just unknown */
	char big[5000];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(hm_authdb_verify(&db, big, "x", NULL, canon, sizeof(canon)), HM_AUTHDB_UNKNOWN);
	/* listing: only servable virtual accounts */
	char **list = hm_authdb_list(&db);
	assert_non_null(list);
	assert_string_equal(list[0], "a@x.org");
	assert_string_equal(list[1], "off@x.org");
	assert_null(list[2]);
	hm_authdb_list_free(list);
	hm_authdb_deinit(&db);
}

static void weak_schemes(void **state)
{
	struct hm_authdb_set s;
	struct hm_authdb db;
	char err[256], canon[300], args[512];

	write_users("p@x.org:{PLAIN}pw:5000:5000:/h/p::\n"
		    "m@x.org:$1$3ckqYArl$R/urGGJ6QU/l4E/jX2iJ2.:5000:5000:/h/m::\n");
	snprintf(args, sizeof(args), "users=%s lockout=no system=no rehash=no", users);
	hm_authdb_set_default(&s);
	assert_int_equal(hm_authdb_parse_args(args, &s, err, sizeof(err)), 0);
	hm_authdb_init(&db, &s, logcb, NULL);
	assert_int_equal(hm_authdb_verify(&db, "p@x.org", "pw", NULL, canon, sizeof(canon)), HM_AUTHDB_MISMATCH);
	assert_non_null(strstr(lastlog, "weak password scheme PLAIN refused"));
	assert_int_equal(hm_authdb_verify(&db, "m@x.org", "pw", NULL, canon, sizeof(canon)), HM_AUTHDB_MISMATCH);
	assert_non_null(strstr(lastlog, "MD5-CRYPT"));
	hm_authdb_deinit(&db);
	s.allow_weak = true;
	hm_authdb_init(&db, &s, logcb, NULL);
	assert_int_equal(hm_authdb_verify(&db, "p@x.org", "pw", NULL, canon, sizeof(canon)), HM_AUTHDB_OK);
	assert_int_equal(hm_authdb_verify(&db, "m@x.org", "pw", NULL, canon, sizeof(canon)), HM_AUTHDB_OK);
	hm_authdb_deinit(&db);
}

static void ip_exempt_and_ip_lock(void **state)
{
	struct hm_authdb_set s;
	struct hm_authdb db;
	char err[256], canon[300], args[512];

	write_users("# none\n");
	snprintf(args, sizeof(args), "users=%s lockout=%s/ip.db system=no ip_max_failures=2 "
		 "max_failures=100 backoff_after=0 ip_exempt=127.0.0.1,10.1.0.0/16", users, dir);
	hm_authdb_set_default(&s);
	assert_int_equal(hm_authdb_parse_args(args, &s, err, sizeof(err)), 0);
	hm_authdb_init(&db, &s, logcb, NULL);
	for (int i = 0; i < 4; i++) {
		char u[32];
		snprintf(u, sizeof(u), "u%d@x.org", i);
		hm_authdb_verify(&db, u, "x", "127.0.0.1", canon, sizeof(canon));
		hm_authdb_verify(&db, u, "x", "10.1.2.3", canon, sizeof(canon));
	}
	assert_null(strstr(lastlog, "remote address locked out"));
	hm_authdb_verify(&db, "v1@x.org", "x", "192.0.2.5", canon, sizeof(canon));
	hm_authdb_verify(&db, "v2@x.org", "x", "192.0.2.5", canon, sizeof(canon));
	hm_authdb_verify(&db, "v3@x.org", "x", "192.0.2.5", canon, sizeof(canon));
	assert_non_null(strstr(lastlog, "remote address locked out"));
	hm_authdb_deinit(&db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(args_parse),
		cmocka_unit_test(templates),
		cmocka_unit_test(verify_with_lockout_and_rehash),
		cmocka_unit_test(weak_schemes),
		cmocka_unit_test(ip_exempt_and_ip_lock),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
