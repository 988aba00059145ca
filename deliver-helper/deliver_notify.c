/* deliver_notify.c — tell Dovecot's replicator that a user got new mail.
 *
 * What for: Dovecot 2.3's replication plugin sees only mail saved through
 *   Dovecot's storage; homemail-deliver writes the Maildir itself, so after
 *   a successful delivery it asks the local aggregator for a replication of
 *   the user, as the plugin does for new mail (docs/replication.md).
 * Protocol (learnt from Dovecot 2.3's aggregator, notify-connection.c): one
 *   line "<user>\t<priority>\n" written to the aggregator's
 *   replication-notify-fifo; <user> is tab-escaped (0x01 -> 0x01 '1',
 *   TAB -> 0x01 't', CR -> 0x01 'r', LF -> 0x01 'n'); priority "high" means
 *   new messages.  No answer comes back on the fifo.
 * Relies on: the fifo's listener being writable by the delivering user
 *   (service aggregator's fifo_listener mode/group, set by the role); a
 *   user outside that group (the owner of virtual accounts) is refused
 *   (EACCES) and then tries the second fifo (replication_notify_virtual:
 *   a second listener of the aggregator for that owner's group).
 * How it fails: never fails the delivery.  The fifo is opened
 *   O_WRONLY|O_NONBLOCK|O_NOFOLLOW (no reader: ENXIO at once, never a
 *   wait), must be a FIFO (a regular file planted there is not written),
 *   and gets one write() of at most HM_NOTIFY_LINE_MAX bytes, less than
 *   PIPE_BUF, so it is atomic: whole line or nothing (EAGAIN when the pipe
 *   is full).  Every failure is one log line; the peer then catches up at
 *   the replicator's next full sync (replication_full_sync_interval).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "deliver_notify.h"
#include "hm_util.h"

/* escape_user - tab-escape user into out (size outsize); the result is
 * never longer than 2 * strlen(user).  Returns the length, or -1 when it
 * does not fit or user is empty. */
static ssize_t escape_user(char *out, size_t outsize, const char *user)
{
	size_t o = 0;
	if (user == NULL || *user == '\0')
		return -1;
	for (const char *p = user; *p; p++) {
		char esc = 0;
		switch (*p) {
		case '\001': esc = '1'; break;
		case '\t':   esc = 't'; break;
		case '\r':   esc = 'r'; break;
		case '\n':   esc = 'n'; break;
		default: break;
		}
		size_t need = esc ? 2 : 1;
		if (outsize - o <= need)      /* keep room for the NUL */
			return -1;
		if (esc) {
			out[o++] = '\001';
			out[o++] = esc;
		} else {
			out[o++] = *p;
		}
	}
	out[o] = '\0';
	return (ssize_t)o;
}

/* deliver_notify_line - see deliver_notify.h */
ssize_t deliver_notify_line(char *out, size_t outsize, const char *user)
{
	static const char tail[] = "\thigh\n";
	if (outsize > HM_NOTIFY_LINE_MAX + 1)
		outsize = HM_NOTIFY_LINE_MAX + 1;
	if (outsize < sizeof tail + 1)
		return -1;
	ssize_t n = escape_user(out, outsize - (sizeof tail - 1), user);
	if (n < 0)
		return -1;
	memcpy(out + n, tail, sizeof tail);     /* with its NUL */
	return n + (ssize_t)(sizeof tail - 1);
}

/* deliver_notify_replicator - see deliver_notify.h */
int deliver_notify_replicator(const char *fifo, const char *alt, const char *user)
{
	char line[HM_NOTIFY_LINE_MAX + 1], cu[128];
	_Static_assert(HM_NOTIFY_LINE_MAX < PIPE_BUF, "one atomic write");

	if (fifo == NULL || *fifo == '\0')
		return 0;                       /* replication not configured */
	hm_log_clean(cu, sizeof cu, user ? user : "", user ? strlen(user) : 0);
	ssize_t len = deliver_notify_line(line, sizeof line, user);
	if (len < 0) {
		syslog(LOG_WARNING, "replication notify: user name '%s' too long or empty; not notified", cu);
		return -1;
	}
	int fd = open(fifo, O_WRONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	if (fd < 0 && errno == EACCES && alt != NULL && *alt != '\0') {
		/* not in the mail accounts' group (a virtual accounts' owner):
		 * the listener for that group */
		fifo = alt;
		fd = open(fifo, O_WRONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	}
	if (fd < 0) {
		/* ENXIO: no reader (aggregator not running); ENOENT: service
		 * not configured; EACCES: the listener's mode/group is wrong */
		syslog(LOG_WARNING, "replication notify for %s: open(%s): %s", cu, fifo, strerror(errno));
		return -1;
	}
	struct stat st;
	int rc = -1;
	if (fstat(fd, &st) < 0) {
		syslog(LOG_WARNING, "replication notify for %s: fstat(%s): %s", cu, fifo, strerror(errno));
	} else if (!S_ISFIFO(st.st_mode)) {
		syslog(LOG_WARNING, "replication notify for %s: %s is not a FIFO; not written", cu, fifo);
	} else {
		ssize_t w = write(fd, line, (size_t)len);
		if (w == len)
			rc = 0;
		else if (w < 0)
			/* EAGAIN: pipe full (the aggregator is behind) */
			syslog(LOG_WARNING, "replication notify for %s: write(%s): %s", cu, fifo, strerror(errno));
		else
			syslog(LOG_WARNING, "replication notify for %s: write(%s): short write", cu, fifo);
	}
	close(fd);
	return rc;
}
