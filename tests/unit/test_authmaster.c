/* test_authmaster.c — unit tests for lib/hm_authmaster's protocol
 * handling against a scripted peer on a Unix socket (the real Dovecot is
 * exercised by tests/integration/test_deliver_*.py): found with escaped values,
 * NOTFOUND, FAIL, a silent server (timeout must hold), a missing socket, a
 * wrong protocol version, and bad user names that must never be sent. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hm_authmaster.h"

static char sock_path[108];

/* serve - fork a one-shot server that reads the request and sends script
 * (NULL: accept and stay silent).  Returns the child's pid. */
static pid_t serve(const char *script)
{
	snprintf(sock_path, sizeof sock_path, "/tmp/hm-auth-test.%d", (int)getpid());
	unlink(sock_path);
	int l = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	strcpy(sa.sun_path, sock_path);
	assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(listen(l, 1), 0);
	pid_t pid = fork();
	if (pid == 0) {
		int c = accept(l, NULL, NULL);
		char buf[4096];
		ssize_t n = read(c, buf, sizeof buf);
		(void)n;
		if (script != NULL) {
			ssize_t w = write(c, script, strlen(script));
			(void)w;
		} else {
			sleep(5);
		}
		close(c);
		_exit(0);
	}
	close(l);
	return pid;
}

static void reap(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	unlink(sock_path);
}

static void found_with_escapes(void **state)
{
	pid_t p = serve("VERSION\t1\t1\nSPID\t123\nUSER\t1\talice\tuid=1001\tgid=100\t"
			"home=/home/a\001tb\tquota_rule=*:storage=1M\tnologin\n");
	struct hm_auth_reply *r = NULL;
	char err[256];
	assert_int_equal(hm_auth_user_lookup(sock_path, "alice", "deliver", 2000, &r, err, sizeof err),
			 HM_AUTH_FOUND);
	assert_non_null(r);
	assert_string_equal(r->user, "alice");
	assert_string_equal(hm_auth_reply_get(r, "uid"), "1001");
	assert_string_equal(hm_auth_reply_get(r, "home"), "/home/a\tb");
	assert_string_equal(hm_auth_reply_get(r, "quota_rule"), "*:storage=1M");
	assert_string_equal(hm_auth_reply_get(r, "nologin"), "");
	assert_null(hm_auth_reply_get(r, "mail"));
	hm_auth_reply_free(&r);
	assert_null(r);
	reap(p);
}

static void notfound_and_fail(void **state)
{
	struct hm_auth_reply *r = NULL;
	char err[256];
	pid_t p = serve("VERSION\t1\t1\nSPID\t1\nNOTFOUND\t1\n");
	assert_int_equal(hm_auth_user_lookup(sock_path, "bob", "deliver", 2000, &r, err, sizeof err),
			 HM_AUTH_NOTFOUND);
	assert_null(r);
	reap(p);
	p = serve("VERSION\t1\t1\nSPID\t1\nFAIL\t1\treason=ldap down\r\n");
	assert_int_equal(hm_auth_user_lookup(sock_path, "bob", "deliver", 2000, &r, err, sizeof err),
			 HM_AUTH_TEMPFAIL);
	assert_non_null(strstr(err, "ldap down"));
	reap(p);
	p = serve("VERSION\t2\t0\n");
	assert_int_equal(hm_auth_user_lookup(sock_path, "bob", "deliver", 2000, &r, err, sizeof err),
			 HM_AUTH_TEMPFAIL);
	reap(p);
	p = serve("");   /* closes at once: e.g. peer uid refused */
	assert_int_equal(hm_auth_user_lookup(sock_path, "bob", "deliver", 2000, &r, err, sizeof err),
			 HM_AUTH_TEMPFAIL);
	reap(p);
}

static void timeout_holds(void **state)
{
	struct hm_auth_reply *r = NULL;
	char err[256];
	pid_t p = serve(NULL);
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	assert_int_equal(hm_auth_user_lookup(sock_path, "bob", "deliver", 300, &r, err, sizeof err),
			 HM_AUTH_TEMPFAIL);
	clock_gettime(CLOCK_MONOTONIC, &b);
	long ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
	assert_true(ms >= 250 && ms < 2000);
	assert_non_null(strstr(err, "timed out"));
	reap(p);
}

static void missing_socket_and_bad_names(void **state)
{
	struct hm_auth_reply *r = NULL;
	char err[256];
	assert_int_equal(hm_auth_user_lookup("/nonexistent/sock", "bob", "deliver", 500, &r, err, sizeof err),
			 HM_AUTH_TEMPFAIL);
	assert_non_null(strstr(err, "connect"));
	/* names that cannot exist are NOTFOUND without asking (no socket needed) */
	assert_int_equal(hm_auth_user_lookup("/nonexistent/sock", "a\tb", "deliver", 500, &r, err, sizeof err),
			 HM_AUTH_NOTFOUND);
	assert_int_equal(hm_auth_user_lookup("/nonexistent/sock", "a\nUSER\t2\troot", "deliver", 500, &r, err, sizeof err),
			 HM_AUTH_NOTFOUND);
	assert_int_equal(hm_auth_user_lookup("/nonexistent/sock", "", "deliver", 500, &r, err, sizeof err),
			 HM_AUTH_NOTFOUND);
}

static void parse_line(void **state)
{
	struct hm_auth_reply *r = NULL;
	const char l[] = "USER\t1\tx\tmail=maildir:~/Maildir\tbad\0010";
	assert_int_equal(hm_auth_parse_user_line(l, strlen(l), &r), -1);   /* escaped NUL */
	assert_int_equal(hm_auth_parse_user_line("NOTUSER\t1", 9, &r), -1);
	assert_int_equal(hm_auth_parse_user_line("USER\t1\tx\ta=b=c", 14, &r), 0);
	assert_string_equal(hm_auth_reply_get(r, "a"), "b=c");
	hm_auth_reply_free(&r);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(found_with_escapes),
		cmocka_unit_test(notfound_and_fail),
		cmocka_unit_test(timeout_holds),
		cmocka_unit_test(missing_socket_and_bad_names),
		cmocka_unit_test(parse_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
