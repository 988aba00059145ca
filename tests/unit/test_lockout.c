/* test_lockout.c — unit tests for lib/hm_lockout: thresholds, back-off,
 * expiry, per-IP independence, persistence across reopen, bounded size
 * under a flood of keys, corrupt-file recovery and concurrent updaters.
 * Time is passed in explicitly, so no test sleeps. */
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
#include <sys/wait.h>
#include <unistd.h>

#include "hm_lockout.h"
#include "hm_testutil.h"

static char tmpdir[64];
static char path[128];

static int setup(void **state)
{
	strcpy(tmpdir, "/tmp/test_lockout.XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	return 0;
}

static int teardown(void **state)
{
	return hm_test_rmtree(tmpdir);
}

static struct hm_lockout *open_fresh(const char *name, struct hm_lockout_policy *p)
{
	struct hm_lockout *lo;
	snprintf(path, sizeof(path), "%s/%s/lockout.db", tmpdir, name);
	assert_int_equal(hm_lockout_open(path, p, &lo), 0);
	return lo;
}

static enum hm_lockout_verdict verdict(struct hm_lockout *lo, const char *u,
				       const char *ip, time_t now)
{
	enum hm_lockout_verdict v;
	struct hm_lockout_status st;
	assert_int_equal(hm_lockout_check(lo, u, ip, now, &v, &st), 0);
	return v;
}

static void locks_after_max_and_expires(void **state)
{
	struct hm_lockout_policy p;
	struct hm_lockout *lo;
	struct hm_lockout_status st;
	time_t t = 1000000;

	hm_lockout_policy_default(&p);
	p.max_failures = 5;
	p.backoff_after = 0;
	p.lock_time = 60;
	lo = open_fresh("a", &p);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(verdict(lo, "alice", "10.0.0.1", t), HM_LOCKOUT_ALLOW);
		assert_int_equal(hm_lockout_record(lo, "alice", "10.0.0.1", false, t++), 0);
	}
	assert_int_equal(hm_lockout_get(lo, HM_LOCKOUT_USER, "alice", t, &st), 0);
	assert_int_equal(st.failures, 4);
	assert_false(st.locked);
	assert_int_equal(hm_lockout_record(lo, "alice", "10.0.0.2", false, t), 0);
	assert_int_equal(verdict(lo, "alice", "10.0.0.3", t + 1), HM_LOCKOUT_USER_LOCKED);
	/* another user from the same address is not affected */
	assert_int_equal(verdict(lo, "bob", "10.0.0.1", t + 1), HM_LOCKOUT_ALLOW);
	/* refused attempts during the lock do not extend it */
	assert_int_equal(hm_lockout_record(lo, "alice", "10.0.0.1", false, t + 30), 0);
	assert_int_equal(hm_lockout_get(lo, HM_LOCKOUT_USER, "alice", t + 30, &st), 0);
	assert_true(st.locked);
	assert_int_equal(st.locked_until, t + 60);
	assert_int_equal(verdict(lo, "alice", NULL, t + 60), HM_LOCKOUT_ALLOW);
	/* the count restarted with the lock */
	assert_int_equal(hm_lockout_record(lo, "alice", NULL, false, t + 61), 0);
	assert_int_equal(verdict(lo, "alice", NULL, t + 62), HM_LOCKOUT_ALLOW);
	hm_lockout_close(&lo);
	assert_null(lo);
}

static void window_and_success_reset(void **state)
{
	struct hm_lockout_policy p;
	struct hm_lockout *lo;
	struct hm_lockout_status st;
	time_t t = 2000000;

	hm_lockout_policy_default(&p);
	p.max_failures = 3;
	p.backoff_after = 0;
	p.window = 100;
	lo = open_fresh("b", &p);
	hm_lockout_record(lo, "u", NULL, false, t);
	hm_lockout_record(lo, "u", NULL, false, t + 10);
	/* the window expired: counting starts over */
	hm_lockout_record(lo, "u", NULL, false, t + 150);
	assert_int_equal(hm_lockout_get(lo, HM_LOCKOUT_USER, "u", t + 150, &st), 0);
	assert_int_equal(st.failures, 1);
	hm_lockout_record(lo, "u", NULL, false, t + 151);
	hm_lockout_record(lo, "u", NULL, true, t + 152);
	hm_lockout_record(lo, "u", NULL, false, t + 153);
	hm_lockout_record(lo, "u", NULL, false, t + 154);
	assert_int_equal(verdict(lo, "u", NULL, t + 155), HM_LOCKOUT_ALLOW);
	hm_lockout_close(&lo);
}

static void backoff_grows(void **state)
{
	struct hm_lockout_policy p;
	struct hm_lockout *lo;
	time_t t = 3000000;

	hm_lockout_policy_default(&p);
	p.max_failures = 10;
	p.backoff_after = 2;
	p.backoff_max = 8;
	lo = open_fresh("c", &p);
	hm_lockout_record(lo, "u", NULL, false, t);
	assert_int_equal(verdict(lo, "u", NULL, t), HM_LOCKOUT_ALLOW);
	hm_lockout_record(lo, "u", NULL, false, t);       /* 2 failures: 1 s */
	assert_int_equal(verdict(lo, "u", NULL, t), HM_LOCKOUT_USER_BACKOFF);
	assert_int_equal(verdict(lo, "u", NULL, t + 1), HM_LOCKOUT_ALLOW);
	hm_lockout_record(lo, "u", NULL, false, t + 1);   /* 3: 2 s */
	hm_lockout_record(lo, "u", NULL, false, t + 1);   /* 4: 4 s */
	assert_int_equal(verdict(lo, "u", NULL, t + 4), HM_LOCKOUT_USER_BACKOFF);
	assert_int_equal(verdict(lo, "u", NULL, t + 5), HM_LOCKOUT_ALLOW);
	for (int i = 0; i < 4; i++)
		hm_lockout_record(lo, "u", NULL, false, t + 5); /* 8: capped 8 s */
	assert_int_equal(verdict(lo, "u", NULL, t + 12), HM_LOCKOUT_USER_BACKOFF);
	assert_int_equal(verdict(lo, "u", NULL, t + 13), HM_LOCKOUT_ALLOW);
	hm_lockout_close(&lo);
}

static void ip_lock_is_separate(void **state)
{
	struct hm_lockout_policy p;
	struct hm_lockout *lo;
	time_t t = 4000000;
	char user[32];

	hm_lockout_policy_default(&p);
	p.max_failures = 100;
	p.ip_max_failures = 5;
	lo = open_fresh("d", &p);
	for (int i = 0; i < 5; i++) {
		snprintf(user, sizeof(user), "spray%d", i);
		hm_lockout_record(lo, user, "192.0.2.7", false, t);
	}
	assert_int_equal(verdict(lo, "victim", "192.0.2.7", t), HM_LOCKOUT_IP_LOCKED);
	assert_int_equal(verdict(lo, "victim", "192.0.2.8", t), HM_LOCKOUT_ALLOW);
	/* a success from the address does not clear its counter */
	hm_lockout_record(lo, "victim", "192.0.2.7", true, t);
	assert_int_equal(verdict(lo, "victim", "192.0.2.7", t), HM_LOCKOUT_IP_LOCKED);
	/* user key and IP key with the same text are distinct */
	assert_int_equal(verdict(lo, "192.0.2.7", NULL, t), HM_LOCKOUT_ALLOW);
	assert_int_equal(hm_lockout_clear(lo, HM_LOCKOUT_IP, "192.0.2.7"), 0);
	assert_int_equal(verdict(lo, "victim", "192.0.2.7", t), HM_LOCKOUT_ALLOW);
	hm_lockout_close(&lo);
}

static void persists_and_bounded(void **state)
{
	struct hm_lockout_policy p;
	struct hm_lockout *lo;
	struct stat st;
	time_t t = 5000000;
	char user[32];

	hm_lockout_policy_default(&p);
	p.max_failures = 2;
	p.backoff_after = 0;
	p.slots = 64;
	lo = open_fresh("e", &p);
	hm_lockout_record(lo, "keep", NULL, false, t);
	hm_lockout_record(lo, "keep", NULL, false, t);
	hm_lockout_close(&lo);
	/* reopen with a different slot count: the file's own size wins */
	p.slots = 4096;
	assert_int_equal(hm_lockout_open(path, &p, &lo), 0);
	assert_int_equal(hm_lockout_slots(lo), 64);
	assert_int_equal(verdict(lo, "keep", NULL, t + 1), HM_LOCKOUT_USER_LOCKED);
	/* flood with many keys: the file never grows */
	for (int i = 0; i < 2000; i++) {
		snprintf(user, sizeof(user), "flood%d", i);
		assert_int_equal(hm_lockout_record(lo, user, "198.51.100.1", false, t + 2), 0);
	}
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 64 + 64 * 64);
	assert_int_equal(st.st_mode & 0777, 0600);
	hm_lockout_close(&lo);
}

static void corrupt_file_reinitialised(void **state)
{
	struct hm_lockout_policy p;
	struct hm_lockout *lo;
	int fd;

	hm_lockout_policy_default(&p);
	p.slots = 32;
	snprintf(path, sizeof(path), "%s/corrupt.db", tmpdir);
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "garbage, not a lockout file", 27), 27);
	close(fd);
	assert_int_equal(hm_lockout_open(path, &p, &lo), 0);
	assert_int_equal(hm_lockout_slots(lo), 32);
	assert_int_equal(verdict(lo, "u", "1.2.3.4", 1), HM_LOCKOUT_ALLOW);
	hm_lockout_close(&lo);
	/* a symlink is refused */
	char link[160];
	snprintf(link, sizeof(link), "%s/link.db", tmpdir);
	assert_int_equal(symlink(path, link), 0);
	assert_int_equal(hm_lockout_open(link, &p, &lo), -1);
	assert_int_equal(errno, ELOOP);
	p.slots = 3;
	assert_int_equal(hm_lockout_open(path, &p, &lo), -1);
}

static void concurrent_updates_are_counted(void **state)
{
	struct hm_lockout_policy p;
	struct hm_lockout *lo;
	struct hm_lockout_status st;
	enum { PROCS = 4, EACH = 50 };

	hm_lockout_policy_default(&p);
	p.max_failures = 1000;
	p.backoff_after = 0;
	lo = open_fresh("f", &p);
	hm_lockout_close(&lo);
	for (int i = 0; i < PROCS; i++) {
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			struct hm_lockout *c;
			if (hm_lockout_open(path, &p, &c) < 0)
				_exit(1);
			for (int j = 0; j < EACH; j++)
				if (hm_lockout_record(c, "shared", NULL, false, 6000000) < 0)
					_exit(1);
			hm_lockout_close(&c);
			_exit(0);
		}
	}
	for (int i = 0; i < PROCS; i++) {
		int s;
		assert_true(wait(&s) > 0);
		assert_true(WIFEXITED(s) && WEXITSTATUS(s) == 0);
	}
	assert_int_equal(hm_lockout_open(path, &p, &lo), 0);
	assert_int_equal(hm_lockout_get(lo, HM_LOCKOUT_USER, "shared", 6000000, &st), 0);
	assert_int_equal(st.failures, PROCS * EACH);
	hm_lockout_close(&lo);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(locks_after_max_and_expires),
		cmocka_unit_test(window_and_success_reset),
		cmocka_unit_test(backoff_grows),
		cmocka_unit_test(ip_lock_is_separate),
		cmocka_unit_test(persists_and_bounded),
		cmocka_unit_test(corrupt_file_reinitialised),
		cmocka_unit_test(concurrent_updates_are_counted),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
