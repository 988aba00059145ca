/* test_deliver_conf.c — unit tests for homemail-deliver's configuration file,
 * path expansion and envelope address checks (bad values must be errors,
 * never guesses). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "deliver.h"

static const char *write_conf(const char *text)
{
	static char path[64];
	snprintf(path, sizeof path, "/tmp/hm-deliver-conf.%d", (int)getpid());
	FILE *f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	return path;
}

static void defaults_and_keys(void **state)
{
	struct deliver_conf c;
	char err[256];
	assert_int_equal(deliver_conf_load(&c, "/nonexistent/deliver.conf", false, err, sizeof err), 0);
	assert_string_equal(c.auth_socket, "/run/dovecot/auth-userdb");
	assert_string_equal(c.mail_location, "maildir:~/Maildir");
	assert_int_equal(c.loop_max, 3);
	assert_false(c.quota_reject);
	deliver_conf_free(&c);
	assert_int_equal(deliver_conf_load(&c, "/nonexistent/deliver.conf", true, err, sizeof err), -1);

	const char *p = write_conf("# comment\n\nauth_socket = /run/x/auth-master\nauth_timeout = 3\n"
				   "userdb = socket,passwd\nquota_rule = *:storage=1M\nquota_full = reject\n"
				   "loop_max = 1\nmax_header_size = 64K\nmail_location = maildir:/var/mail/%u\n");
	assert_int_equal(deliver_conf_load(&c, p, true, err, sizeof err), 0);
	assert_string_equal(c.auth_socket, "/run/x/auth-master");
	assert_int_equal(c.auth_timeout_ms, 3000);
	assert_true(c.userdb_socket && c.userdb_passwd);
	assert_string_equal(c.quota_rule, "*:storage=1M");
	assert_true(c.quota_reject);
	assert_int_equal(c.loop_max, 1);
	assert_int_equal(c.max_header, 65536);
	deliver_conf_free(&c);

	const char *bad[] = { "nokey\n", "unknown_key = 1\n", "quota_full = maybe\n",
			      "loop_max = -1\n", "auth_timeout = 0\n", "mail_location = mbox:~/mail\n",
			      "userdb = ldap\n" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		p = write_conf(bad[i]);
		assert_int_equal(deliver_conf_load(&c, p, true, err, sizeof err), -1);
		assert_non_null(strstr(err, ":1:"));
		deliver_conf_free(&c);
	}
	unlink(p);
}

static void expand(void **state)
{
	char *s = deliver_expand_path("~/Maildir", "bob@x.org", "/home/bob");
	assert_string_equal(s, "/home/bob/Maildir");
	free(s);
	s = deliver_expand_path("/var/mail/%d/%n/%%", "bob@x.org", "/home/bob");
	assert_string_equal(s, "/var/mail/x.org/bob/%");
	free(s);
	assert_null(deliver_expand_path("~/Maildir", "bob", ""));
	assert_null(deliver_expand_path("/x/%q", "bob", "/h"));
}

static void addresses(void **state)
{
	assert_true(deliver_valid_address(""));
	assert_true(deliver_valid_address("a@b.c"));
	assert_true(deliver_valid_address("\"john doe\"@b.c"));
	assert_false(deliver_valid_address("a b@c"));
	assert_false(deliver_valid_address("a@b\r\nX: y"));
	assert_false(deliver_valid_address("<a@b>"));
	assert_false(deliver_valid_address(NULL));
	char big[600];
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = 0;
	assert_false(deliver_valid_address(big));
}

/* expect_location - loc for bob at home names the script home/script_rel
 * and the script directory home/dir_rel (home itself for "", none for NULL) */
static void expect_location(const char *loc, const char *home, const char *script_rel,
			    const char *dir_rel)
{
	char err[200], *script, *dir;
	assert_int_equal(deliver_sieve_location(loc, "bob", home, &script, &dir, err, sizeof err),
			 0);
	char want[400];
	snprintf(want, sizeof want, "%s/%s", home, script_rel);
	assert_string_equal(script, want);
	if (!dir_rel) {
		assert_null(dir);
	} else {
		snprintf(want, sizeof want, "%s%s%s", home, *dir_rel ? "/" : "", dir_rel);
		assert_string_equal(dir, want);
	}
	free(script);
	free(dir);
}

/* the userdb/config `sieve` value in Pigeonhole's location syntax (issue 13):
 * before, "file:~/sieve;active=~/.dovecot.sieve" was taken as a file name */
static void sieve_locations(void **state)
{
	char err[200], *script, *dir;
	char tmpl[] = "/tmp/hm-sieveloc-XXXXXX";
	assert_non_null(mkdtemp(tmpl));
	char home[300];
	snprintf(home, sizeof home, "%s", tmpl);

	expect_location("file:~/sieve;active=~/.dovecot.sieve", home, ".dovecot.sieve", "sieve");
	/* a bare path to a file (missing is fine: "no script") */
	expect_location("~/my.sieve", home, "my.sieve", NULL);
	/* a directory without active=: the default active script */
	expect_location("file:%h", home, ".dovecot.sieve", "");

	/* refused, with a reason: another type, unknown option, relative path */
	const char *bad[] = { "ldap:/etc/x", "dict:proxy::sieve", "file:~/s;bogus=1", "file:",
			      "relative/path", "file:~/s;active=rel" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err[0] = '\0';
		assert_int_equal(deliver_sieve_location(bad[i], "bob", home, &script, &dir,
							err, sizeof err), -1);
		assert_true(err[0] != '\0');
		assert_null(script);
		assert_null(dir);
	}
	rmdir(tmpl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(defaults_and_keys),
		cmocka_unit_test(expand),
		cmocka_unit_test(addresses),
		cmocka_unit_test(sieve_locations),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
