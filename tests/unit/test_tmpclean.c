/* test_tmpclean.c — unit tests for hm_maildir_tmp_clean (lib/hm_maildir),
 * the LDA's removal of stale tmp/ files (docs/hardening.md, "deliver-tmp-clean":
 * after 1,000 deliveries killed with SIGKILL, 195 files stayed in tmp/ for ever).
 *
 * Guards against: removing a file a delivery is still writing (any of atime,
 * mtime, ctime fresh keeps it — ctime is the one a writer cannot set back),
 * following a symlink, removing directories or other users' files, scanning a
 * big tmp/ on every delivery (the tmp/ atime stamp, 8 hours), unbounded work
 * (HM_MAILDIR_TMP_SCAN_MAX entries examined and HM_MAILDIR_TMP_REMOVE_MAX
 * files removed per call; a cut-short scan that made progress goes on next
 * time, one that did not waits for the stamp).
 *
 * Files get their real ctime (now); the cleaner is handed a clock moved
 * ahead (`now` is its parameter), so "37 hours later" needs no clock change.
 */
#define _GNU_SOURCE 1
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hm_maildir.h"
#include "hm_testutil.h"

#define H (60 * 60)

static char root[256], tmp[300];
static int tmp_fd = -1;

static int setup(void **state)
{
	snprintf(root, sizeof root, "/tmp/hm-tmpclean-test.%d", (int)getpid());
	if (hm_test_rmtree(root) < 0 || mkdir(root, 0700) < 0)
		return -1;
	snprintf(tmp, sizeof tmp, "%s/tmp", root);
	if (mkdir(tmp, 0700) < 0)
		return -1;
	tmp_fd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return tmp_fd < 0 ? -1 : 0;
}

static int teardown(void **state)
{
	close(tmp_fd);
	tmp_fd = -1;
	return hm_test_rmtree(root);
}

/* make_file - tmp/name with the given atime and mtime (ctime is now) */
static void make_file(const char *name, time_t atime, time_t mtime)
{
	int fd = openat(tmp_fd, name, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "partial", 7), 7);
	struct timespec ts[2] = { { .tv_sec = atime }, { .tv_sec = mtime } };
	assert_int_equal(futimens(fd, ts), 0);
	close(fd);
}

static bool exists(const char *name)
{
	struct stat st;
	return fstatat(tmp_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* age_stamp - make tmp/'s atime (the "last scanned" stamp) t */
static void age_stamp(time_t t)
{
	struct timespec ts[2] = { { .tv_sec = t }, { .tv_nsec = UTIME_OMIT } };
	assert_int_equal(futimens(tmp_fd, ts), 0);
}

/* only what is stale by all three times goes; fresh-by-any-one stays */
static void removes_only_stale_files(void **state)
{
	time_t real = time(NULL), now = real + 37 * H;   /* the cleaner's clock */
	time_t old = real - H;                            /* 38 hours before `now` */
	struct hm_tmpclean st;

	make_file("stale.1", old, old);
	make_file("stale.2", old, old);
	make_file("fresh-mtime", old, now - 60);          /* being written */
	make_file("fresh-atime", now - 60, old);          /* being read */
	assert_int_equal(mkdirat(tmp_fd, "olddir", 0700), 0);
	struct timespec ts[2] = { { .tv_sec = old }, { .tv_sec = old } };
	assert_int_equal(utimensat(tmp_fd, "olddir", ts, 0), 0);
	/* a symlink to a stale file outside tmp/: neither link nor target go */
	char outside[400];
	snprintf(outside, sizeof outside, "%s/victim", root);
	int vfd = open(outside, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(vfd >= 0);
	assert_int_equal(futimens(vfd, ts), 0);
	close(vfd);
	assert_int_equal(symlinkat(outside, tmp_fd, "link"), 0);
	assert_int_equal(utimensat(tmp_fd, "link", ts, AT_SYMLINK_NOFOLLOW), 0);

	assert_int_equal(hm_maildir_tmp_clean(tmp_fd, now, &st), 0);
	assert_true(st.scanned);
	assert_true(st.complete);
	assert_int_equal(st.removed, 2);
	assert_int_equal(st.failed, 0);
	assert_int_equal(st.examined, 6);
	assert_false(exists("stale.1"));
	assert_false(exists("stale.2"));
	assert_true(exists("fresh-mtime"));
	assert_true(exists("fresh-atime"));
	assert_true(exists("olddir"));
	assert_true(exists("link"));
	assert_int_equal(access(outside, F_OK), 0);
}

/* someone else's stale file stays (only root can make one: skipped, and
 * reported as skipped, otherwise) */
static void keeps_other_users_files(void **state)
{
	time_t real = time(NULL), now = real + 37 * H, old = real - H;
	struct hm_tmpclean st;

	if (geteuid() != 0)
		skip();
	make_file("foreign", old, old);
	make_file("ours", old, old);
	assert_int_equal(fchownat(tmp_fd, "foreign", 12345, 12345, 0), 0);
	struct timespec ts[2] = { { .tv_sec = old }, { .tv_sec = old } };
	assert_int_equal(utimensat(tmp_fd, "foreign", ts, 0), 0);
	assert_int_equal(hm_maildir_tmp_clean(tmp_fd, now, &st), 0);
	assert_true(st.complete);
	assert_int_equal(st.examined, 2);
	assert_int_equal(st.removed, 1);
	assert_true(exists("foreign"));
	assert_false(exists("ours"));
}

/* ctime cannot be set back: touch -d / utime cannot make a live file stale */
static void fresh_ctime_keeps_a_file(void **state)
{
	time_t real = time(NULL);
	struct hm_tmpclean st;

	make_file("aged-by-utime", real - 10 * H, real - 10 * H);
	/* 35 hours on: atime/mtime are 45 hours old, ctime only 35 */
	assert_int_equal(hm_maildir_tmp_clean(tmp_fd, real + 35 * H, &st), 0);
	assert_true(st.scanned);
	assert_int_equal(st.removed, 0);
	assert_true(exists("aged-by-utime"));
	/* 37 hours on it is stale by all three */
	age_stamp(real - 9 * H);
	assert_int_equal(hm_maildir_tmp_clean(tmp_fd, real + 37 * H, &st), 0);
	assert_int_equal(st.removed, 1);
	assert_false(exists("aged-by-utime"));
}

/* the stamp: a tmp/ listed within 8 hours is not read; a scan sets it */
static void stamp_limits_scans(void **state)
{
	time_t real = time(NULL);
	struct hm_tmpclean st;

	/* a new tmp/: its atime is now, nothing can be 36 hours old in it */
	assert_int_equal(hm_maildir_tmp_clean(tmp_fd, real, &st), 0);
	assert_false(st.scanned);
	assert_int_equal(hm_maildir_tmp_clean(tmp_fd, real + 8 * H - 60, &st), 0);
	assert_false(st.scanned);
	/* last listed 9 hours ago: scan, and the stamp is set (even on noatime) */
	age_stamp(real - 9 * H);
	assert_int_equal(hm_maildir_tmp_clean(tmp_fd, real, &st), 0);
	assert_true(st.scanned);
	assert_true(st.complete);
	struct stat ds;
	assert_int_equal(fstat(tmp_fd, &ds), 0);
	assert_true(ds.st_atime >= real - 2);
	assert_int_equal(hm_maildir_tmp_clean(tmp_fd, real, &st), 0);
	assert_false(st.scanned);
	/* NULL stats are allowed */
	age_stamp(real - 9 * H);
	assert_int_equal(hm_maildir_tmp_clean(tmp_fd, real, NULL), 0);
}

/* bounded: at most HM_MAILDIR_TMP_REMOVE_MAX files removed per call; the
 * stamp stays old while that makes progress, so the next calls go on */
static void bounded_and_goes_on(void **state)
{
	time_t real = time(NULL), now = real + 37 * H, old = real - H;
	const unsigned n = 2 * HM_MAILDIR_TMP_REMOVE_MAX + 20;
	struct hm_tmpclean st;
	char name[64];
	struct stat ds;

	for (unsigned i = 0; i < n; i++) {
		snprintf(name, sizeof name, "%u.M1P1Q%u.killed", (unsigned)old, i);
		make_file(name, old, old);
	}
	age_stamp(real - 9 * H);
	for (unsigned pass = 0; pass < 2; pass++) {
		assert_int_equal(hm_maildir_tmp_clean(tmp_fd, now, &st), 0);
		assert_true(st.scanned);
		assert_false(st.complete);
		assert_int_equal(st.removed, HM_MAILDIR_TMP_REMOVE_MAX);
		/* progress was made: the stamp is left as it was (reading the
		 * directory may have moved it), so the next delivery goes on */
		assert_int_equal(fstat(tmp_fd, &ds), 0);
		assert_int_equal(ds.st_atime, real - 9 * H);
	}
	assert_int_equal(hm_maildir_tmp_clean(tmp_fd, now, &st), 0);
	assert_true(st.scanned);
	assert_true(st.complete);
	assert_int_equal(st.removed, 20);
	assert_int_equal(fstat(tmp_fd, &ds), 0);
	assert_true(ds.st_atime >= real - 2);      /* done: stamped */
	for (unsigned i = 0; i < n; i++) {
		snprintf(name, sizeof name, "%u.M1P1Q%u.killed", (unsigned)old, i);
		assert_false(exists(name));
	}
}

/* bounded: at most HM_MAILDIR_TMP_SCAN_MAX entries examined per call, even
 * when they are all live; a cut-short scan that removed nothing waits for
 * the stamp (no rescans of a tmp/ full of live files on every delivery) */
static void no_progress_sets_the_stamp(void **state)
{
	time_t real = time(NULL);
	const unsigned n = HM_MAILDIR_TMP_SCAN_MAX + 10;
	struct hm_tmpclean st;
	char name[64];

	for (unsigned i = 0; i < n; i++) {
		snprintf(name, sizeof name, "live.%u", i);
		make_file(name, real, real);
	}
	age_stamp(real - 9 * H);
	assert_int_equal(hm_maildir_tmp_clean(tmp_fd, real, &st), 0);
	assert_true(st.scanned);
	assert_false(st.complete);
	assert_int_equal(st.examined, HM_MAILDIR_TMP_SCAN_MAX);
	assert_int_equal(st.removed, 0);
	assert_int_equal(hm_maildir_tmp_clean(tmp_fd, real, &st), 0);
	assert_false(st.scanned);
}

/* errors: not a directory, bad fd */
static void refuses_non_directories(void **state)
{
	make_file("plain", time(NULL), time(NULL));
	int fd = openat(tmp_fd, "plain", O_RDONLY);
	assert_true(fd >= 0);
	errno = 0;
	assert_int_equal(hm_maildir_tmp_clean(fd, time(NULL), NULL), -1);
	assert_int_equal(errno, ENOTDIR);
	close(fd);
	errno = 0;
	assert_int_equal(hm_maildir_tmp_clean(-1, time(NULL), NULL), -1);
	assert_int_equal(errno, EBADF);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(removes_only_stale_files, setup, teardown),
		cmocka_unit_test_setup_teardown(keeps_other_users_files, setup, teardown),
		cmocka_unit_test_setup_teardown(fresh_ctime_keeps_a_file, setup, teardown),
		cmocka_unit_test_setup_teardown(stamp_limits_scans, setup, teardown),
		cmocka_unit_test_setup_teardown(bounded_and_goes_on, setup, teardown),
		cmocka_unit_test_setup_teardown(no_progress_sets_the_stamp, setup, teardown),
		cmocka_unit_test_setup_teardown(refuses_non_directories, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
