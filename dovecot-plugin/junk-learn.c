/* junk-learn.c — the optional learn_command of lib90_homemail_junk_plugin.so.
 *
 * What for: sites with a spam filter (sa-learn, rspamc) teach it from the
 * same moves that feed the sender lists.
 * How: at copy time each message is spooled to a file in a private 0700
 * directory (mkdtemp under homemail_junk_learn_tmpdir); when the
 * transaction commits, the plugin forks a short-lived child that forks a
 * supervisor and exits at once, so the IMAP session only waits for one
 * fork.  The supervisor (reparented to init, its own session) runs
 *	<learn_command with %k = spam|ham> FILE...
 * once per kind, with at most learn_max_batch files, kills the command's
 * process group after learn_timeout, then removes the files and the
 * directory.  A rollback removes the files without running anything.
 * Relies on: Dovecot's istream/mail API for reading the message; only
 * async-signal-safe calls between fork and exec/_exit.
 * How it fails: every failure is logged and skips learning; the user's
 * IMAP command never fails or waits because of it.
 */
#ifndef _GNU_SOURCE
#  define _GNU_SOURCE 1        /* close_range(2) */
#endif
#include "junk-plugin.h"
#include "istream.h"
#include "write-full.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct junk_learn {
	pool_t pool;                   /* the transaction's queue pool */
	char *dir;                     /* private spool directory */
	ARRAY_TYPE(const_string) files[2];  /* [1] spam, [0] ham */
	unsigned int seq;
	unsigned int skipped;
};

/* learn_init - allocate the batch and its spool directory */
static struct junk_learn *learn_init(struct junk_user *ju, pool_t pool)
{
	struct junk_learn *l;
	char *dir;

	dir = p_strconcat(pool, ju->learn_tmpdir, "/homemail-junk-learn.XXXXXX", NULL);
	if (mkdtemp(dir) == NULL) {
		i_error("homemail_junk: learn: mkdtemp(%s) failed: %m", dir);
		return NULL;
	}
	l = p_new(pool, struct junk_learn, 1);
	l->pool = pool;
	l->dir = dir;
	p_array_init(&l->files[0], pool, 8);
	p_array_init(&l->files[1], pool, 8);
	return l;
}

/* spool_mail - copy the message into path. Returns 0 or -1 (logged). */
static int spool_mail(struct mail *mail, const char *path)
{
	struct istream *input;
	const unsigned char *data;
	size_t size;
	int fd, ret = 0;

	if (mail_get_stream(mail, NULL, NULL, &input) < 0) {
		i_error("homemail_junk: learn: reading uid %u of %s failed: %s", mail->uid,
			mailbox_get_vname(mail->box),
			mailbox_get_last_internal_error(mail->box, NULL));
		return -1;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		i_error("homemail_junk: learn: open(%s) failed: %m", path);
		return -1;
	}
	i_stream_seek(input, 0);
	while (i_stream_read_more(input, &data, &size) > 0) {
		if (write_full(fd, data, size) < 0) {
			i_error("homemail_junk: learn: write(%s) failed: %m", path);
			ret = -1;
			break;
		}
		i_stream_skip(input, size);
	}
	if (ret == 0 && input->stream_errno != 0) {
		i_error("homemail_junk: learn: reading uid %u failed: %s", mail->uid,
			i_stream_get_error(input));
		ret = -1;
	}
	if (close(fd) < 0 && ret == 0) {
		i_error("homemail_junk: learn: close(%s) failed: %m", path);
		ret = -1;
	}
	if (ret < 0)
		i_unlink_if_exists(path);
	return ret;
}

void junk_learn_add(struct junk_user *ju, struct junk_learn **learnp, pool_t pool,
		    struct mail *mail, bool spam)
{
	struct junk_learn *l = *learnp;
	uoff_t size;
	const char *path;

	if (mail_get_physical_size(mail, &size) < 0) {
		i_error("homemail_junk: learn: size of uid %u unknown: %s", mail->uid,
			mailbox_get_last_internal_error(mail->box, NULL));
		return;
	}
	if (size > ju->learn_max_size) {
		if (ju->debug)
			i_debug("homemail_junk: learn: uid %u is %"PRIuUOFF_T" bytes, "
				"over learn_max_size: not learned", mail->uid, size);
		return;
	}
	if (l == NULL && (l = *learnp = learn_init(ju, pool)) == NULL)
		return;
	if (array_count(&l->files[spam ? 1 : 0]) >= ju->learn_max_batch) {
		l->skipped++;
		return;
	}
	path = p_strdup_printf(l->pool, "%s/%s-%u.eml", l->dir, spam ? "spam" : "ham",
			       ++l->seq);
	if (spool_mail(mail, path) == 0)
		array_push_back(&l->files[spam ? 1 : 0], &path);
}

/* build_argv - the command line for one kind: %k expanded, files appended */
static const char **build_argv(struct junk_user *ju, const ARRAY_TYPE(const_string) *files,
			       const char *kind)
{
	ARRAY_TYPE(const_string) argv;
	const char *const *p;
	const char *const *f;

	t_array_init(&argv, 16);
	for (p = ju->learn_argv; *p != NULL; p++) {
		const char *k = strstr(*p, "%k");
		const char *arg = k == NULL ? *p :
			t_strdup_printf("%s%s%s", t_strdup_until(*p, k), kind, k + 2);
		array_push_back(&argv, &arg);
	}
	array_foreach(files, f)
		array_push_back(&argv, f);
	array_append_zero(&argv);
	return array_front_modifiable(&argv);
}

/* run_supervised - in the supervisor: run argv with a deadline.  Only
 * async-signal-safe calls: this runs in a fork of the IMAP process. */
static void run_supervised(const char *const *argv, unsigned int timeout_secs)
{
	struct timespec nap = { 0, 20 * 1000 * 1000 };
	unsigned long waited_ms = 0, limit_ms = (unsigned long)timeout_secs * 1000;
	pid_t pid;
	int status, fd;

	pid = fork();
	if (pid < 0)
		return;
	if (pid == 0) {
		setpgid(0, 0);
		fd = open("/dev/null", O_RDWR);
		if (fd >= 0) {
			dup2(fd, 0);
			dup2(fd, 1);
			if (fd > 2)
				close(fd);
		}
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	setpgid(pid, pid);
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid || (r < 0 && errno != EINTR))
			return;
		if (waited_ms >= limit_ms) {
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
				;
			return;
		}
		nanosleep(&nap, NULL);
		waited_ms += 20;
	}
}

/* remove_spool - unlink the spooled files and the directory */
static void remove_spool(const char *dir, const char *const *const lists[2])
{
	for (int k = 0; k < 2; k++)
		for (const char *const *f = lists[k]; *f != NULL; f++)
			(void)unlink(*f);
	(void)rmdir(dir);
}

/* files_vector - NULL-terminated copy of one file list (data stack) */
static const char *const *files_vector(const ARRAY_TYPE(const_string) *files)
{
	ARRAY_TYPE(const_string) v;
	const char *const *f;

	t_array_init(&v, array_count(files) + 1);
	array_foreach(files, f)
		array_push_back(&v, f);
	array_append_zero(&v);
	return array_front(&v);
}

void junk_learn_run(struct junk_user *ju, struct junk_learn **learnp)
{
	struct junk_learn *l = *learnp;
	const char **argv_spam = NULL, **argv_ham = NULL;
	const char *const *lists[2];
	pid_t pid;
	int status;

	*learnp = NULL;
	if (l->skipped > 0)
		i_warning("homemail_junk: learn: %u messages over learn_max_batch=%u "
			  "not learned", l->skipped, ju->learn_max_batch);
	if (array_count(&l->files[1]) > 0)
		argv_spam = build_argv(ju, &l->files[1], "spam");
	if (array_count(&l->files[0]) > 0)
		argv_ham = build_argv(ju, &l->files[0], "ham");
	lists[0] = files_vector(&l->files[0]);
	lists[1] = files_vector(&l->files[1]);

	pid = fork();
	if (pid < 0) {
		i_error("homemail_junk: learn: fork() failed: %m");
		remove_spool(l->dir, lists);
		return;
	}
	if (pid == 0) {
		/* first child: forget Dovecot's signal handlers and fds, start
		 * the supervisor and exit, so the session reaps us at once */
		sigset_t all;
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		for (int sig = 1; sig < NSIG; sig++)
			if (sig != SIGKILL && sig != SIGSTOP)
				signal(sig, SIG_DFL);
		close_range(3, ~0U, 0);
		if (fork() != 0)
			_exit(0);
		setsid();
		if (argv_spam != NULL)
			run_supervised(argv_spam, ju->learn_timeout_secs);
		if (argv_ham != NULL)
			run_supervised(argv_ham, ju->learn_timeout_secs);
		remove_spool(l->dir, lists);
		_exit(0);
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	/* ECHILD: Dovecot's own child handling reaped it; nothing to do */
	if (ju->debug)
		i_debug("homemail_junk: learn: started %s with %u spam, %u ham",
			ju->learn_argv[0], array_count(&l->files[1]), array_count(&l->files[0]));
}

void junk_learn_abort(struct junk_learn **learnp)
{
	struct junk_learn *l = *learnp;
	const char *const *f;

	*learnp = NULL;
	for (int k = 0; k < 2; k++)
		array_foreach(&l->files[k], f)
			i_unlink_if_exists(*f);
	if (rmdir(l->dir) < 0 && errno != ENOENT)
		i_error("homemail_junk: learn: rmdir(%s) failed: %m", l->dir);
}
