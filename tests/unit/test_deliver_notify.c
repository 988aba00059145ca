/* test_deliver_notify.c — unit tests for the replicator notification of
 * homemail-deliver (deliver_notify.c, lib/hm_notify.c): the line is the aggregator's
 * "<user>\t<priority>\n" with the user tab-escaped; it is written only into
 * a FIFO, never waits (no reader, full pipe), and fails only by returning -1. */
#define _GNU_SOURCE            /* F_SETPIPE_SZ */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "deliver_notify.h"
#include "hm_notify.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof dir, "/tmp/hm-notify.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	/* one flat directory of fifos and files: remove them, then it */
	DIR *d = opendir(dir);
	if (d == NULL)
		return -1;
	for (struct dirent *e; (e = readdir(d)) != NULL;)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			(void)unlinkat(dirfd(d), e->d_name, 0);
	closedir(d);
	return rmdir(dir);
}

static void line_format(void **state)
{
	(void)state;
	char out[HM_NOTIFY_LINE_MAX + 1];
	assert_int_equal(hm_notify_line(out, sizeof out, "roberto", "high"), 13);
	assert_string_equal(out, "roberto\thigh\n");
	assert_int_equal(hm_notify_line(out, sizeof out, "roberto", "low"), 12);
	assert_string_equal(out, "roberto\tlow\n");
	assert_int_equal(hm_notify_line(out, sizeof out, "roberto", ""), -1);
	/* the aggregator splits at TAB and lines at LF: both escaped */
	assert_int_equal(hm_notify_line(out, sizeof out, "a\tb\nc\rd\001e", "high"), 13 + 6);
	assert_memory_equal(out, "a\001tb\001nc\001rd\0011e\thigh\n", 20); /* with NUL */
	assert_int_equal(hm_notify_line(out, sizeof out, "", "high"), -1);
	assert_int_equal(hm_notify_line(out, sizeof out, NULL, "high"), -1);
	/* bounded: a name that does not fit with its tail is refused, a name
	 * that exactly fits is taken */
	char big[HM_NOTIFY_LINE_MAX + 8];
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	assert_int_equal(hm_notify_line(out, sizeof out, big, "high"), -1);
	big[HM_NOTIFY_LINE_MAX - 6] = '\0';
	assert_int_equal(hm_notify_line(out, sizeof out, big, "high"), HM_NOTIFY_LINE_MAX);
	big[HM_NOTIFY_LINE_MAX - 6] = 'x';
	big[HM_NOTIFY_LINE_MAX - 5] = '\0';
	assert_int_equal(hm_notify_line(out, sizeof out, big, "high"), -1);
	/* escaping doubles: the bound holds after escaping */
	char tabs[HM_NOTIFY_LINE_MAX];
	memset(tabs, '\t', sizeof tabs - 1);
	tabs[sizeof tabs - 1] = '\0';
	assert_int_equal(hm_notify_line(out, sizeof out, tabs, "high"), -1);
	/* a small buffer is never overrun */
	char small[10];
	assert_int_equal(hm_notify_line(small, sizeof small, "abc", "high"), 9);
	assert_int_equal(hm_notify_line(small, sizeof small, "abcd", "high"), -1);
}

static void fifo_with_reader(void **state)
{
	(void)state;
	char path[128];
	snprintf(path, sizeof path, "%s/fifo", dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	int rfd = open(path, O_RDONLY | O_NONBLOCK);
	assert_true(rfd >= 0);
	assert_int_equal(deliver_notify_replicator(path, NULL, "maria@home.com.bo"), 0);
	assert_int_equal(deliver_notify_replicator(path, NULL, "roberto"), 0);
	char buf[256];
	ssize_t n = read(rfd, buf, sizeof buf - 1);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_string_equal(buf, "maria@home.com.bo\thigh\nroberto\thigh\n");

	/* a full pipe: EAGAIN at once, nothing partial written */
	assert_true(fcntl(rfd, F_SETPIPE_SZ, 4096) >= 0);
	int wfd = open(path, O_WRONLY | O_NONBLOCK);
	assert_true(wfd >= 0);
	char fill[4096];
	memset(fill, 'f', sizeof fill);
	while (write(wfd, fill, sizeof fill) > 0)
		;
	assert_true(errno == EAGAIN);
	while (write(wfd, fill, 1) > 0)
		;
	assert_int_equal(deliver_notify_replicator(path, NULL, "roberto"), -1);
	close(wfd);
	close(rfd);

	/* no reader (aggregator down): ENXIO at once, not a wait */
	assert_int_equal(deliver_notify_replicator(path, NULL, "roberto"), -1);
	unlink(path);
}

static void not_a_fifo(void **state)
{
	(void)state;
	char path[128], link[128];
	/* off */
	assert_int_equal(deliver_notify_replicator("", NULL, "roberto"), 0);
	assert_int_equal(deliver_notify_replicator(NULL, NULL, "roberto"), 0);
	/* missing */
	snprintf(path, sizeof path, "%s/missing", dir);
	assert_int_equal(deliver_notify_replicator(path, NULL, "roberto"), -1);
	/* a regular file planted at the path is not written */
	snprintf(path, sizeof path, "%s/file", dir);
	int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(deliver_notify_replicator(path, NULL, "roberto"), -1);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 0);
	/* a symlink, even to a real fifo, is not followed */
	char fifo[128];
	snprintf(fifo, sizeof fifo, "%s/fifo2", dir);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	int rfd = open(fifo, O_RDONLY | O_NONBLOCK);
	assert_true(rfd >= 0);
	snprintf(link, sizeof link, "%s/link", dir);
	assert_int_equal(symlink(fifo, link), 0);
	assert_int_equal(deliver_notify_replicator(link, NULL, "roberto"), -1);
	char buf[64];
	assert_true(read(rfd, buf, sizeof buf) <= 0);   /* nothing came */
	close(rfd);
}

/* a user the first fifo refuses (a virtual accounts' owner outside the
 * mail group) writes to the second; a user it accepts never uses the
 * second.  Needs root to drop to another uid (skipped otherwise). */
static void second_fifo_when_refused(void **state)
{
	(void)state;
	if (geteuid() != 0)
		skip();
	char first[128], second[128];
	snprintf(first, sizeof first, "%s/first", dir);
	snprintf(second, sizeof second, "%s/second", dir);
	assert_int_equal(mkfifo(first, 0600), 0);      /* root only */
	assert_int_equal(mkfifo(second, 0600), 0);
	assert_int_equal(chmod(second, 0622), 0);      /* the child may write */
	assert_int_equal(chmod(dir, 0755), 0);
	int r1 = open(first, O_RDONLY | O_NONBLOCK), r2 = open(second, O_RDONLY | O_NONBLOCK);
	assert_true(r1 >= 0 && r2 >= 0);
	/* root: the first fifo takes it */
	assert_int_equal(deliver_notify_replicator(first, second, "root-user"), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0)
			_exit(2);
		/* refused without a second fifo; with one, written there */
		_exit(deliver_notify_replicator(first, NULL, "v@example.org") == -1 &&
		      deliver_notify_replicator(first, second, "v@example.org") == 0 ? 0 : 1);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	char buf[128];
	ssize_t n = read(r1, buf, sizeof buf - 1);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_string_equal(buf, "root-user\thigh\n");
	n = read(r2, buf, sizeof buf - 1);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_string_equal(buf, "v@example.org\thigh\n");
	close(r1);
	close(r2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(line_format),
		cmocka_unit_test(fifo_with_reader),
		cmocka_unit_test(not_a_fifo),
		cmocka_unit_test(second_fifo_when_refused),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
