/* test_lockout.c — unit tests for lib/hm_lockout: thresholds, back-off,
 * expiry, per-IP independence, persistence across reopen, bounded size
 * under a flood of keys, corrupt-file recovery and concurrent updaters;
 * the reservation the login path takes before verifying a password
 * (counted at once, settled after; a crash leaves it counted) and its
 * bound under processes racing on one file: exactly max_failures (per user)
 * or ip_max_failures (per address) attempts get through, never more.
 * Guards against: the check/verify/record race of issue 8 (40 parallel
 * wrong passwords got 9-11 password checks with max_failures=5).
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

static enum hm_lockout_verdict reserve(struct hm_lockout *lo, const char *u, const char *ip,
				       time_t now, struct hm_lockout_resv *r)
{
	enum hm_lockout_verdict v;
	struct hm_lockout_status st;
	assert_int_equal(hm_lockout_reserve(lo, u, ip, now, &v, &st, r), 0);
	if (v != HM_LOCKOUT_ALLOW) {
		assert_int_equal(r->user.kind, 0);      /* refused: nothing counted */
		assert_int_equal(r->ip.kind, 0);
		assert_true(st.retry_after > now);
	}
	return v;
}

static unsigned int failures(struct hm_lockout *lo, enum hm_lockout_kind kind,
			     const char *key, time_t now)
{
	struct hm_lockout_status st;
	assert_int_equal(hm_lockout_get(lo, kind, key, now, &st), 0);
	return st.failures;
}

/* a reservation is a failure at once, before any password is verified */
static void reserve_counts_before_verify(void **state)
{
	struct hm_lockout_policy p;
	struct hm_lockout *lo;
	struct hm_lockout_resv r[4];
	struct hm_lockout_status st;
	time_t t = 7000000;

	hm_lockout_policy_default(&p);
	p.max_failures = 3;
	p.ip_max_failures = 0;
	p.backoff_after = 0;
	p.lock_time = 60;
	lo = open_fresh("r1", &p);
	/* three attempts in flight, none settled: the third sets the lock */
	for (int i = 0; i < 3; i++) {
		assert_int_equal(reserve(lo, "alice", "10.0.0.1", t, &r[i]), HM_LOCKOUT_ALLOW);
		assert_int_equal(r[i].user.kind, HM_LOCKOUT_USER);
		assert_int_equal(r[i].ip.kind, 0);      /* ip_max_failures=0: not counted */
		assert_int_equal(r[i].user.locked_until, i == 2 ? t + 60 : 0);
		if (i < 2)
			assert_int_equal(failures(lo, HM_LOCKOUT_USER, "alice", t), i + 1);
	}
	/* a fourth is refused before its password is looked at, uncounted */
	assert_int_equal(reserve(lo, "alice", "10.0.0.2", t, &r[3]), HM_LOCKOUT_USER_LOCKED);
	assert_int_equal(hm_lockout_get(lo, HM_LOCKOUT_USER, "alice", t, &st), 0);
	assert_true(st.locked);
	assert_int_equal(st.locked_until, t + 60);
	assert_int_equal(verdict(lo, "alice", NULL, t + 1), HM_LOCKOUT_USER_LOCKED);
	/* settling a refused (empty) reservation does nothing */
	assert_int_equal(hm_lockout_cancel(lo, &r[3], t), 0);
	assert_int_equal(hm_lockout_succeeded(lo, &r[3], t), 0);
	assert_int_equal(verdict(lo, "alice", NULL, t + 1), HM_LOCKOUT_USER_LOCKED);
	/* other users are not affected */
	assert_int_equal(reserve(lo, "bob", "10.0.0.1", t, &r[3]), HM_LOCKOUT_ALLOW);
	/* a wrong password leaves its reservation standing: nothing to call;
	 * the lock expires and counting starts afresh */
	assert_int_equal(reserve(lo, "alice", NULL, t + 60, &r[0]), HM_LOCKOUT_ALLOW);
	assert_int_equal(failures(lo, HM_LOCKOUT_USER, "alice", t + 60), 1);
	hm_lockout_close(&lo);
}

/* settling: success clears the user and gives the address its slot back;
 * cancel gives both back, lifting a lock the attempt itself had set */
static void reserve_settle(void **state)
{
	struct hm_lockout_policy p;
	struct hm_lockout *lo;
	struct hm_lockout_resv r, r2, r3;
	time_t t = 7100000;

	hm_lockout_policy_default(&p);
	p.max_failures = 4;
	p.ip_max_failures = 3;
	p.backoff_after = 0;
	p.lock_time = 60;
	lo = open_fresh("r2", &p);
	/* two standing failures, then a success */
	assert_int_equal(reserve(lo, "u", "192.0.2.1", t, &r), HM_LOCKOUT_ALLOW);
	assert_int_equal(reserve(lo, "u", "192.0.2.1", t, &r), HM_LOCKOUT_ALLOW);
	assert_int_equal(failures(lo, HM_LOCKOUT_IP, "192.0.2.1", t), 2);
	assert_int_equal(reserve(lo, "u", "192.0.2.1", t, &r), HM_LOCKOUT_ALLOW);
	/* that third attempt reached ip_max_failures: the address is locked
	 * while its password is being checked */
	assert_int_equal(r.ip.locked_until, t + 60);
	assert_int_equal(verdict(lo, "other", "192.0.2.1", t), HM_LOCKOUT_IP_LOCKED);
	assert_int_equal(hm_lockout_succeeded(lo, &r, t + 1), 0);
	assert_int_equal(r.user.kind, 0);               /* settled: emptied */
	/* it was right: user cleared, address back to its 2 real failures */
	assert_int_equal(failures(lo, HM_LOCKOUT_USER, "u", t + 1), 0);
	assert_int_equal(failures(lo, HM_LOCKOUT_IP, "192.0.2.1", t + 1), 2);
	assert_int_equal(verdict(lo, "other", "192.0.2.1", t + 1), HM_LOCKOUT_ALLOW);
	/* cancel: nothing of the attempt remains */
	assert_int_equal(reserve(lo, "v", "192.0.2.9", t, &r), HM_LOCKOUT_ALLOW);
	assert_int_equal(reserve(lo, "v", "192.0.2.9", t, &r2), HM_LOCKOUT_ALLOW);
	assert_int_equal(hm_lockout_cancel(lo, &r2, t), 0);
	assert_int_equal(failures(lo, HM_LOCKOUT_USER, "v", t), 1);
	assert_int_equal(failures(lo, HM_LOCKOUT_IP, "192.0.2.9", t), 1);
	/* cancelling the attempt that set the user lock lifts it */
	for (int i = 0; i < 2; i++)
		assert_int_equal(reserve(lo, "v", NULL, t, &r), HM_LOCKOUT_ALLOW);
	assert_int_equal(reserve(lo, "v", NULL, t, &r2), HM_LOCKOUT_ALLOW);
	assert_int_equal(r2.user.locked_until, t + 60);
	assert_int_equal(verdict(lo, "v", NULL, t), HM_LOCKOUT_USER_LOCKED);
	assert_int_equal(hm_lockout_cancel(lo, &r2, t), 0);
	assert_int_equal(verdict(lo, "v", NULL, t), HM_LOCKOUT_ALLOW);
	assert_int_equal(failures(lo, HM_LOCKOUT_USER, "v", t), 3);
	/* a reservation counted before a lock that a later attempt set is not
	 * given back (the count stays on the safe side) */
	assert_int_equal(reserve(lo, "w", NULL, t, &r), HM_LOCKOUT_ALLOW);
	for (int i = 0; i < 3; i++)
		assert_int_equal(reserve(lo, "w", NULL, t, &r2), HM_LOCKOUT_ALLOW);
	assert_int_equal(hm_lockout_cancel(lo, &r, t), 0);
	assert_int_equal(verdict(lo, "w", NULL, t), HM_LOCKOUT_USER_LOCKED);
	/* nor is one from a window that has ended and been replaced */
	assert_int_equal(reserve(lo, "x", NULL, t, &r), HM_LOCKOUT_ALLOW);
	assert_int_equal(reserve(lo, "x", NULL, t + (time_t)p.window, &r3), HM_LOCKOUT_ALLOW);
	assert_int_equal(hm_lockout_cancel(lo, &r, t + (time_t)p.window), 0);
	assert_int_equal(failures(lo, HM_LOCKOUT_USER, "x", t + (time_t)p.window), 1);
	/* an admin clear in between: giving back finds nothing to change */
	assert_int_equal(reserve(lo, "y", NULL, t, &r), HM_LOCKOUT_ALLOW);
	assert_int_equal(hm_lockout_clear(lo, HM_LOCKOUT_USER, "y"), 0);
	assert_int_equal(reserve(lo, "y", NULL, t, &r2), HM_LOCKOUT_ALLOW);
	assert_int_equal(hm_lockout_cancel(lo, &r, t), 0);
	assert_int_equal(failures(lo, HM_LOCKOUT_USER, "y", t), 1);
	hm_lockout_close(&lo);
}

/* back-off applies to attempts in flight too */
static void reserve_backoff(void **state)
{
	struct hm_lockout_policy p;
	struct hm_lockout *lo;
	struct hm_lockout_resv r;
	time_t t = 7200000;

	hm_lockout_policy_default(&p);
	p.max_failures = 10;
	p.backoff_after = 2;
	p.backoff_max = 8;
	lo = open_fresh("r3", &p);
	assert_int_equal(reserve(lo, "u", NULL, t, &r), HM_LOCKOUT_ALLOW);
	assert_int_equal(reserve(lo, "u", NULL, t, &r), HM_LOCKOUT_ALLOW);
	assert_int_equal(reserve(lo, "u", NULL, t, &r), HM_LOCKOUT_USER_BACKOFF);
	assert_int_equal(reserve(lo, "u", NULL, t + 1, &r), HM_LOCKOUT_ALLOW);
	assert_int_equal(reserve(lo, "u", NULL, t + 2, &r), HM_LOCKOUT_USER_BACKOFF);
	/* a success ends the back-off */
	assert_int_equal(reserve(lo, "u", NULL, t + 3, &r), HM_LOCKOUT_ALLOW);
	assert_int_equal(hm_lockout_succeeded(lo, &r, t + 3), 0);
	assert_int_equal(reserve(lo, "u", NULL, t + 3, &r), HM_LOCKOUT_ALLOW);
	assert_int_equal(failures(lo, HM_LOCKOUT_USER, "u", t + 3), 1);
	hm_lockout_close(&lo);
}

/* a process that dies between reserving and settling leaves a failure */
static void reserve_crash_counts(void **state)
{
	struct hm_lockout_policy p;
	struct hm_lockout *lo;
	pid_t pid;
	int s;

	hm_lockout_policy_default(&p);
	p.max_failures = 5;
	lo = open_fresh("r4", &p);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct hm_lockout *c;
		struct hm_lockout_resv r;
		enum hm_lockout_verdict v;
		struct hm_lockout_status st;
		if (hm_lockout_open(path, &p, &c) < 0 ||
		    hm_lockout_reserve(c, "crash", "198.51.100.9", 7300000, &v, &st, &r) < 0 ||
		    v != HM_LOCKOUT_ALLOW)
			_exit(1);
		abort();                /* dies with the attempt unsettled */
	}
	assert_int_equal(waitpid(pid, &s, 0), pid);
	assert_true(WIFSIGNALED(s));
	assert_int_equal(failures(lo, HM_LOCKOUT_USER, "crash", 7300000), 1);
	assert_int_equal(failures(lo, HM_LOCKOUT_IP, "198.51.100.9", 7300000), 1);
	/* and the file lock died with it */
	assert_int_equal(verdict(lo, "crash", "198.51.100.9", 7300000), HM_LOCKOUT_ALLOW);
	hm_lockout_close(&lo);
}

/* race - PROCS processes, each with its own handle on one file, wait at a
 * common start line, then make EACH attempts as fast as they can and leave
 * every reservation standing (all passwords wrong); returns how many were
 * let through in total.  EACH is below every limit the caller sets, so the
 * limit can only be reached with several processes let through, and it is
 * asserted that several were.  by_ip: every attempt names another user
 * from one address. */
static int race(const char *name, const struct hm_lockout_policy *p, bool by_ip)
{
	enum { PROCS = 8, EACH = 10 };
	struct hm_lockout *lo;
	int fds[2], go[2], total = 0, through = 0;

	lo = open_fresh(name, (struct hm_lockout_policy *)p);
	hm_lockout_close(&lo);
	assert_int_equal(pipe(fds), 0);
	assert_int_equal(pipe(go), 0);
	for (int i = 0; i < PROCS; i++) {
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			struct hm_lockout *c;
			int allowed = 0;
			char b;
			close(fds[0]);
			close(go[1]);
			if (hm_lockout_open(path, p, &c) < 0)
				_exit(1);
			/* the start line: EOF once the parent has forked everyone */
			if (read(go[0], &b, 1) != 0)
				_exit(1);
			for (int j = 0; j < EACH; j++) {
				struct hm_lockout_resv r;
				enum hm_lockout_verdict v;
				struct hm_lockout_status st;
				char user[32];
				snprintf(user, sizeof(user), by_ip ? "spray%d.%d" : "target", i, j);
				if (hm_lockout_reserve(c, user, "203.0.113.5", 7400000, &v, &st, &r) < 0)
					_exit(1);
				if (v == HM_LOCKOUT_ALLOW)
					allowed++;      /* "password wrong": the reservation stands */
			}
			hm_lockout_close(&c);
			if (write(fds[1], &allowed, sizeof(allowed)) != (ssize_t)sizeof(allowed))
				_exit(1);
			_exit(0);
		}
	}
	close(fds[1]);
	close(go[0]);
	close(go[1]);                   /* go */
	for (int i = 0; i < PROCS; i++) {
		int s, n;
		assert_true(wait(&s) > 0);
		assert_true(WIFEXITED(s) && WEXITSTATUS(s) == 0);
		assert_int_equal(read(fds[0], &n, sizeof(n)), sizeof(n));
		total += n;
		through += n > 0;
	}
	close(fds[0]);
	assert_true(through >= 2);      /* several processes really competed */
	return total;
}

static void reserve_bound_under_parallel_processes(void **state)
{
	struct hm_lockout_policy p;
	struct hm_lockout *lo;

	hm_lockout_policy_default(&p);
	p.max_failures = 37;
	p.ip_max_failures = 0;
	p.backoff_after = 0;
	p.lock_time = 3600;
	/* per user: exactly max_failures attempts get a password check */
	assert_int_equal(race("r5", &p, false), 37);
	assert_int_equal(hm_lockout_open(path, &p, &lo), 0);
	assert_int_equal(verdict(lo, "target", NULL, 7400000), HM_LOCKOUT_USER_LOCKED);
	hm_lockout_close(&lo);
	/* per address, across many users: exactly ip_max_failures */
	p.max_failures = 1000;
	p.ip_max_failures = 23;
	assert_int_equal(race("r6", &p, true), 23);
	assert_int_equal(hm_lockout_open(path, &p, &lo), 0);
	assert_int_equal(verdict(lo, "anyone", "203.0.113.5", 7400000), HM_LOCKOUT_IP_LOCKED);
	assert_int_equal(verdict(lo, "anyone", "203.0.113.6", 7400000), HM_LOCKOUT_ALLOW);
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
		cmocka_unit_test(reserve_counts_before_verify),
		cmocka_unit_test(reserve_settle),
		cmocka_unit_test(reserve_backoff),
		cmocka_unit_test(reserve_crash_counts),
		cmocka_unit_test(reserve_bound_under_parallel_processes),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
