/* test_lockout.c — unit tests for lib/hm_lockout: thresholds, back-off,
 * expiry, per-IP independence, persistence across reopen, bounded size
 * under a flood of keys, corrupt-file recovery and concurrent updaters;
 * the reservation the login path takes before verifying a password
 * (counted at once, settled after; a crash leaves it counted) and its
 * bound under processes racing on one file: exactly max_failures (per user)
 * or ip_max_failures (per address) attempts get through, never more.
 * Guards against: the check/verify/record race of issue 8 (40 parallel
 * wrong passwords got 9-11 password checks with max_failures=5); the
 * eviction attack of issue 14 (16 made-up names precomputed to share
 * alice's slot under the unkeyed SHA-256 of format 1 evicted her lock:
 * "locked" became "allowed, 0 failures"), so slots are keyed with a
 * per-installation secret, a lock or back-off is never evicted, accounts
 * have their own region; IPv6 counted per /64; a format-1 file is reset
 * with a note, never misread.
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

#include "hm_digest.h"
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
	assert_int_equal(hm_lockout_reserve(lo, HM_LOCKOUT_USER, u, ip, now, &v, &st, r), 0);
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
		    hm_lockout_reserve(c, HM_LOCKOUT_USER, "crash", "198.51.100.9", 7300000, &v, &st, &r) < 0 ||
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
				if (hm_lockout_reserve(c, HM_LOCKOUT_USER, user, "203.0.113.5", 7400000, &v, &st, &r) < 0)
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

/* unkeyed_home - the slot format 1 (today's main before issue 14) gave a
 * user key: SHA-256(kind byte, name), first 4 bytes, modulo the table */
static unsigned int unkeyed_home(const char *name, unsigned int slots)
{
	uint8_t md[HM_SHA256_SIZE], k = HM_LOCKOUT_USER;
	uint32_t h;

	hm_sha256(&k, 1, name, strlen(name), md);
	memcpy(&h, md, sizeof(h));
	return (unsigned int)(h % slots);
}

/* lock_user - max_failures failures of user at t */
static void lock_user(struct hm_lockout *lo, const struct hm_lockout_policy *p,
		      const char *user, time_t t)
{
	for (unsigned int i = 0; i < p->max_failures; i++)
		assert_int_equal(hm_lockout_record(lo, user, NULL, false, t), 0);
	assert_int_equal(verdict(lo, user, NULL, t), HM_LOCKOUT_USER_LOCKED);
}

/* The attack of issue 14 as the reviewer ran it: names precomputed offline
 * to share alice's slot under the unkeyed hash, one failure each.  On the
 * format-1 code the 16th evicts alice's lock (this test fails there). */
static void eviction_attack_precomputed_names(void **state)
{
	struct hm_lockout_policy p;
	struct hm_lockout *lo;
	struct hm_lockout_status st;
	char names[HM_LOCKOUT_PROBE][32];
	unsigned int target, n = 0, same_keyed = 0;
	time_t t = 9000000;

	hm_lockout_policy_default(&p);          /* 16384 slots, max 10 */
	lo = open_fresh("evict", &p);
	target = unkeyed_home("alice", p.slots);
	for (unsigned long i = 0; n < HM_LOCKOUT_PROBE; i++) {
		char name[32];
		snprintf(name, sizeof(name), "x%lu", i);
		if (unkeyed_home(name, p.slots) == target)
			strcpy(names[n++], name);
	}
	lock_user(lo, &p, "alice", t);
	for (unsigned int i = 0; i < HM_LOCKOUT_PROBE; i++) {
		assert_int_equal(hm_lockout_record(lo, names[i], NULL, false, t + 1), 0);
		if (hm_lockout_home_slot(lo, HM_LOCKOUT_USER, names[i]) ==
		    hm_lockout_home_slot(lo, HM_LOCKOUT_USER, "alice"))
			same_keyed++;
	}
	assert_int_equal(hm_lockout_get(lo, HM_LOCKOUT_USER, "alice", t + 2, &st), 0);
	assert_true(st.locked);
	assert_int_equal(verdict(lo, "alice", NULL, t + 2), HM_LOCKOUT_USER_LOCKED);
	/* the precomputation does not carry over to the keyed slots (all 16
	 * landing on alice's by chance: p = 4096^-16) */
	assert_true(same_keyed < HM_LOCKOUT_PROBE);
	hm_lockout_close(&lo);
}

/* write_secret - the test hook: a known secret, so collisions can be forced */
static void write_secret(const char *name, uint8_t fill)
{
	char kpath[160];
	uint8_t key[HM_LOCKOUT_SECRET_SIZE];
	int fd;

	snprintf(kpath, sizeof(kpath), "%s/%s", tmpdir, name);
	(void)mkdir(kpath, 0700);
	snprintf(kpath, sizeof(kpath), "%s/%s/lockout.key", tmpdir, name);
	memset(key, fill, sizeof(key));
	fd = open(kpath, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, key, sizeof(key)), sizeof(key));
	close(fd);
}

/* The slot depends on the secret: two installations put the same name in
 * different places, so a list of colliding names made for one (or for the
 * unkeyed hash) is useless against another. */
static void slots_depend_on_the_secret(void **state)
{
	struct hm_lockout_policy p;
	struct hm_lockout *a, *b;
	unsigned int differ = 0;
	char name[32];

	hm_lockout_policy_default(&p);
	write_secret("keyA", 0x11);
	write_secret("keyB", 0x22);
	a = open_fresh("keyA", &p);
	b = open_fresh("keyB", &p);
	for (int i = 0; i < 64; i++) {
		snprintf(name, sizeof(name), "user%d", i);
		if (hm_lockout_home_slot(a, HM_LOCKOUT_USER, name) !=
		    hm_lockout_home_slot(b, HM_LOCKOUT_USER, name))
			differ++;
		/* accounts in the first quarter, the rest for names and addresses */
		assert_true(hm_lockout_home_slot(a, HM_LOCKOUT_USER, name) < p.slots / 4);
		assert_true(hm_lockout_home_slot(a, HM_LOCKOUT_UNKNOWN, name) >= p.slots / 4);
		assert_true(hm_lockout_home_slot(a, HM_LOCKOUT_IP, name) >= p.slots / 4);
	}
	assert_true(differ > 56);
	hm_lockout_close(&a);
	hm_lockout_close(&b);
}

/* reserve_fail - one reserved attempt of kind left standing as a failure */
static enum hm_lockout_verdict reserve_fail(struct hm_lockout *lo, enum hm_lockout_kind kind,
					    const char *user, const char *ip, time_t now,
					    struct hm_lockout_resv *resv)
{
	enum hm_lockout_verdict v;
	struct hm_lockout_status st;

	assert_int_equal(hm_lockout_reserve(lo, kind, user, ip, now, &v, &st, resv), 0);
	return v;
}

/* Forced collisions (known secret, smallest table: every key of a region
 * shares one neighbourhood): a lock or back-off is never evicted, made-up
 * names and addresses never touch the accounts' region, and when a
 * neighbourhood holds nothing evictable a new user key is refused
 * (fail-closed) while a new address goes uncounted (fail-open). */
static void forced_collisions_never_evict_a_lock(void **state)
{
	struct hm_lockout_policy p;
	struct hm_lockout *lo;
	struct hm_lockout_status st;
	struct hm_lockout_resv resv;
	char name[48];
	time_t t = 9100000;

	hm_lockout_policy_default(&p);
	p.slots = HM_LOCKOUT_MIN_SLOTS;         /* 16 account slots, 16 others */
	p.max_failures = 3;
	p.backoff_after = 2;
	p.ip_max_failures = 1000;
	write_secret("forced", 0x5a);
	lo = open_fresh("forced", &p);
	lock_user(lo, &p, "alice", t);
	/* bob in back-off: 2 failures */
	assert_int_equal(hm_lockout_record(lo, "bob", NULL, false, t), 0);
	assert_int_equal(hm_lockout_record(lo, "bob", NULL, false, t), 0);
	/* 1000 made-up names from 1000 addresses, each a failure (and some
	 * locked: 3 tries each for the first 40) */
	for (int i = 0; i < 1000; i++) {
		char ip[32];
		snprintf(name, sizeof(name), "nobody%d@home.com.bo", i);
		snprintf(ip, sizeof(ip), "198.51.%d.%d", i / 250, i % 250 + 1);
		for (int j = 0; j < (i < 40 ? 3 : 1); j++)
			(void)reserve_fail(lo, HM_LOCKOUT_UNKNOWN, name, ip, t + 1, &resv);
	}
	assert_int_equal(verdict(lo, "alice", NULL, t + 2), HM_LOCKOUT_USER_LOCKED);
	assert_int_equal(hm_lockout_get(lo, HM_LOCKOUT_USER, "bob", t + 2, &st), 0);
	assert_int_equal(st.failures, 2);
	/* other accounts colliding (all 16 slots are one neighbourhood): the
	 * ones with a failure or two are evicted among themselves, never alice
	 * or bob */
	for (int i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "acct%d", i);
		assert_int_equal(hm_lockout_record(lo, name, NULL, false, t + 3), 0);
	}
	assert_int_equal(verdict(lo, "alice", NULL, t + 4), HM_LOCKOUT_USER_LOCKED);
	assert_int_equal(hm_lockout_get(lo, HM_LOCKOUT_USER, "bob", t + 4, &st), 0);
	assert_int_equal(st.failures, 2);
	/* fill the accounts' region with locks: 14 more locked accounts */
	for (int i = 0; i < 14; i++) {
		snprintf(name, sizeof(name), "locked%d", i);
		lock_user(lo, &p, name, t + 5);
	}
	/* no room for a new account key: refused unchecked (fail-closed), and
	 * nothing of alice's or bob's state was given up for it */
	assert_int_equal(reserve_fail(lo, HM_LOCKOUT_USER, "carol", "192.0.2.1", t + 6, &resv),
			 HM_LOCKOUT_TABLE_FULL);
	assert_int_equal(resv.user.kind, 0);
	assert_int_equal(resv.ip.kind, 0);
	assert_int_equal(verdict(lo, "alice", NULL, t + 6), HM_LOCKOUT_USER_LOCKED);
	assert_int_equal(hm_lockout_get(lo, HM_LOCKOUT_USER, "bob", t + 6, &st), 0);
	assert_int_equal(st.failures, 2);
	/* the others' region full of locks (16 locked names): a new address is
	 * let through uncounted (fail-open), its user still counted */
	for (int i = 0; i < 16; i++) {
		snprintf(name, sizeof(name), "spray%d", i);
		for (int j = 0; j < 3; j++)
			(void)reserve_fail(lo, HM_LOCKOUT_UNKNOWN, name, NULL, t + 7, &resv);
	}
	assert_int_equal(reserve_fail(lo, HM_LOCKOUT_USER, "bob", "203.0.113.77", t + 60, &resv),
			 HM_LOCKOUT_ALLOW);
	assert_true(resv.ip_unrecorded);
	assert_int_not_equal(resv.user.kind, 0);
	/* ... and a new made-up name is refused, which costs nobody anything */
	assert_int_equal(reserve_fail(lo, HM_LOCKOUT_UNKNOWN, "fresh", NULL, t + 60, &resv),
			 HM_LOCKOUT_TABLE_FULL);
	/* once the locks expire the slots are reusable */
	assert_int_equal(reserve_fail(lo, HM_LOCKOUT_USER, "carol", NULL, t + 60 + p.lock_time,
				      &resv), HM_LOCKOUT_ALLOW);
	hm_lockout_close(&lo);
}

/* The secret: created once, 0600, 32 bytes, shared by every opener;
 * refused when others could read it or it is a symlink; a new secret
 * resets the table with a note. */
static void secret_created_once_and_guarded(void **state)
{
	struct hm_lockout_policy p;
	struct hm_lockout *a, *b;
	struct stat st;
	char kpath[160], lpath[160];

	hm_lockout_policy_default(&p);
	p.slots = 64;
	a = open_fresh("secret", &p);
	assert_null(hm_lockout_open_note(a));
	snprintf(kpath, sizeof(kpath), "%s/secret/lockout.key", tmpdir);
	assert_int_equal(lstat(kpath, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(st.st_size, HM_LOCKOUT_SECRET_SIZE);
	lock_user(a, &p, "alice", 100);
	assert_int_equal(hm_lockout_open(path, &p, &b), 0);
	assert_null(hm_lockout_open_note(b));
	assert_int_equal(verdict(b, "alice", NULL, 101), HM_LOCKOUT_USER_LOCKED);
	hm_lockout_close(&b);
	hm_lockout_close(&a);
	/* group-readable: refused */
	assert_int_equal(chmod(kpath, 0640), 0);
	assert_int_equal(hm_lockout_open(path, &p, &b), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(chmod(kpath, 0600), 0);
	/* a symlink in its place: refused */
	snprintf(lpath, sizeof(lpath), "%s/secret/elsewhere.key", tmpdir);
	assert_int_equal(rename(kpath, lpath), 0);
	assert_int_equal(symlink(lpath, kpath), 0);
	assert_int_equal(hm_lockout_open(path, &p, &b), -1);
	assert_int_equal(errno, ELOOP);
	/* gone: a new one is made, and the table made under the old one is
	 * reset with a note, not misread */
	assert_int_equal(unlink(kpath), 0);
	assert_int_equal(hm_lockout_open(path, &p, &b), 0);
	assert_non_null(hm_lockout_open_note(b));
	assert_non_null(strstr(hm_lockout_open_note(b), "another secret"));
	assert_int_equal(verdict(b, "alice", NULL, 101), HM_LOCKOUT_ALLOW);
	hm_lockout_close(&b);
}

/* Processes that start at once on a fresh directory agree on one secret
 * (created with O_EXCL and link, the loser reads the winner's): every
 * failure lands in one table, none is lost to a reset under another secret. */
static void secret_created_once_by_racing_openers(void **state)
{
	struct hm_lockout_policy p;
	struct hm_lockout *lo;
	struct hm_lockout_status st;
	enum { PROCS = 8 };
	int go[2];

	hm_lockout_policy_default(&p);
	p.max_failures = 1000;
	p.backoff_after = 0;
	p.slots = 64;
	snprintf(path, sizeof(path), "%s/secretrace/lockout.db", tmpdir);
	assert_int_equal(pipe(go), 0);
	for (int i = 0; i < PROCS; i++) {
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			struct hm_lockout *c;
			char b;
			close(go[1]);
			if (read(go[0], &b, 1) != 0)   /* the start line: EOF */
				_exit(3);
			if (hm_lockout_open(path, &p, &c) < 0)
				_exit(1);
			if (hm_lockout_record(c, "alice", NULL, false, 100) < 0)
				_exit(2);
			hm_lockout_close(&c);
			_exit(0);
		}
	}
	close(go[0]);
	close(go[1]);
	for (int i = 0; i < PROCS; i++) {
		int status;
		assert_true(wait(&status) > 0);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	assert_int_equal(hm_lockout_open(path, &p, &lo), 0);
	assert_null(hm_lockout_open_note(lo));
	assert_int_equal(hm_lockout_get(lo, HM_LOCKOUT_USER, "alice", 101, &st), 0);
	assert_int_equal(st.failures, PROCS);
	hm_lockout_close(&lo);
}

/* A file of the previous format (unkeyed slots) holding a live lock is
 * reset with a note: its records cannot be re-keyed (no names in it), and
 * reading them as format 2 would be wrong. */
static void old_format_reset_with_note(void **state)
{
	struct hm_lockout_policy p;
	struct hm_lockout *lo;
	/* format 1's 64-byte header: magic[8], then version, slots and
	 * record size (host-order uint32), then zero padding */
	uint8_t h1[64] = "HMLOCK1";
	const uint32_t h1_fields[3] = { 1, 64, 64 };
	uint8_t rec[64];
	int64_t until = 1 << 30;
	int fd;

	memcpy(h1 + 8, h1_fields, sizeof(h1_fields));
	hm_lockout_policy_default(&p);
	p.slots = 128;
	snprintf(path, sizeof(path), "%s/v1.db", tmpdir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, h1, sizeof(h1)), 64);
	assert_int_equal(ftruncate(fd, 64 + 64 * 64), 0);
	/* a locked record in every slot */
	memset(rec, 0, sizeof(rec));
	memset(rec, 0xab, 20);
	memcpy(rec + 20 + 4 + 8 + 8, &until, sizeof(until));
	for (int i = 0; i < 64; i++)
		assert_int_equal(pwrite(fd, rec, sizeof(rec), 64 + 64 * i), 64);
	close(fd);
	assert_int_equal(hm_lockout_open(path, &p, &lo), 0);
	assert_non_null(hm_lockout_open_note(lo));
	assert_non_null(strstr(hm_lockout_open_note(lo), "format 1"));
	assert_int_equal(hm_lockout_slots(lo), 128);
	assert_int_equal(verdict(lo, "alice", "192.0.2.1", 2), HM_LOCKOUT_ALLOW);
	hm_lockout_close(&lo);
	/* reopened: now format 2, no note */
	assert_int_equal(hm_lockout_open(path, &p, &lo), 0);
	assert_null(hm_lockout_open_note(lo));
	hm_lockout_close(&lo);
}

/* IPv6: one /64 is one counter (an attacker has 2^64 addresses in it);
 * the prefix is configurable; IPv4-mapped counts as IPv4. */
static void ipv6_counted_per_prefix(void **state)
{
	struct hm_lockout_policy p;
	struct hm_lockout *lo;
	char key[HM_LOCKOUT_IP_KEY_SIZE];

	assert_int_equal(hm_lockout_ip_key("2001:db8:1:2:aaaa:bbbb:cccc:dddd", 64, key, sizeof(key)), 0);
	assert_string_equal(key, "2001:db8:1:2::/64");
	assert_int_equal(hm_lockout_ip_key("2001:db8:1:2ff::1", 56, key, sizeof(key)), 0);
	assert_string_equal(key, "2001:db8:1:200::/56");
	assert_int_equal(hm_lockout_ip_key("2001:db8::1", 128, key, sizeof(key)), 0);
	assert_string_equal(key, "2001:db8::1/128");
	assert_int_equal(hm_lockout_ip_key("::ffff:192.0.2.7", 64, key, sizeof(key)), 0);
	assert_string_equal(key, "192.0.2.7");
	assert_int_equal(hm_lockout_ip_key("192.0.2.7", 64, key, sizeof(key)), 0);
	assert_string_equal(key, "192.0.2.7");
	assert_int_equal(hm_lockout_ip_key("not-an-address", 64, key, sizeof(key)), -1);

	hm_lockout_policy_default(&p);
	p.ip_max_failures = 3;
	p.max_failures = 100;
	p.backoff_after = 0;
	lo = open_fresh("v6", &p);
	assert_int_equal(hm_lockout_record(lo, "a", "2001:db8:1:2::1", false, 10), 0);
	assert_int_equal(hm_lockout_record(lo, "b", "2001:db8:1:2::2", false, 10), 0);
	assert_int_equal(hm_lockout_record(lo, "c", "2001:db8:1:2:ffff:ffff:ffff:ffff", false, 10), 0);
	assert_int_equal(verdict(lo, "d", "2001:db8:1:2::77", 11), HM_LOCKOUT_IP_LOCKED);
	assert_int_equal(verdict(lo, "d", "2001:db8:1:3::1", 11), HM_LOCKOUT_ALLOW);
	/* IPv4-mapped and plain IPv4 share one counter */
	for (int i = 0; i < 3; i++)
		assert_int_equal(hm_lockout_record(lo, "e", "::ffff:192.0.2.9", false, 12), 0);
	assert_int_equal(verdict(lo, "d", "192.0.2.9", 13), HM_LOCKOUT_IP_LOCKED);
	/* clearing any address of the /64 clears the /64 */
	assert_int_equal(hm_lockout_clear(lo, HM_LOCKOUT_IP, "2001:db8:1:2::abcd"), 0);
	assert_int_equal(verdict(lo, "d", "2001:db8:1:2::1", 14), HM_LOCKOUT_ALLOW);
	hm_lockout_close(&lo);
	/* another prefix for the same file: reset with a note (counters of
	 * another granularity would be misread) */
	p.ipv6_prefix = 48;
	assert_int_equal(hm_lockout_open(path, &p, &lo), 0);
	assert_non_null(hm_lockout_open_note(lo));
	for (int i = 0; i < 3; i++)
		assert_int_equal(hm_lockout_record(lo, "a", "2001:db8:1:2::1", false, 20), 0);
	assert_int_equal(verdict(lo, "d", "2001:db8:1:ffff::1", 21), HM_LOCKOUT_IP_LOCKED);
	assert_int_equal(verdict(lo, "d", "2001:db8:2::1", 21), HM_LOCKOUT_ALLOW);
	hm_lockout_close(&lo);
	/* prefix 0 (homemail-user): whatever the file says, no reset */
	p.ipv6_prefix = 0;
	assert_int_equal(hm_lockout_open(path, &p, &lo), 0);
	assert_null(hm_lockout_open_note(lo));
	assert_int_equal(verdict(lo, "d", "2001:db8:1:ffff::1", 22), HM_LOCKOUT_IP_LOCKED);
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
		cmocka_unit_test(eviction_attack_precomputed_names),
		cmocka_unit_test(slots_depend_on_the_secret),
		cmocka_unit_test(forced_collisions_never_evict_a_lock),
		cmocka_unit_test(secret_created_once_and_guarded),
		cmocka_unit_test(secret_created_once_by_racing_openers),
		cmocka_unit_test(old_format_reset_with_note),
		cmocka_unit_test(ipv6_counted_per_prefix),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
