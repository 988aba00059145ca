/* hm_notify.c — the replicator's notify fifo, written without waiting.
 *
 * Protocol (learnt from Dovecot 2.3's aggregator, notify-connection.c): one
 *   line "<user>\t<priority>\n" written to the aggregator's
 *   replication-notify-fifo; <user> is tab-escaped (0x01 -> 0x01 '1',
 *   TAB -> 0x01 't', CR -> 0x01 'r', LF -> 0x01 'n'); priority "high" for
 *   new messages, "low" for other changes.  No answer comes back.
 * How it fails: the fifo is opened O_WRONLY|O_NONBLOCK|O_NOFOLLOW (no
 *   reader: ENXIO at once, never a wait), must be a FIFO (a regular file
 *   planted there is not written), and gets one write() of at most
 *   HM_NOTIFY_LINE_MAX bytes, less than PIPE_BUF, so it is atomic: whole
 *   line or nothing (EAGAIN when the pipe is full).  The caller logs the
 *   failure; the peer then catches up at the replicator's next full sync.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hm_notify.h"

_Static_assert(HM_NOTIFY_LINE_MAX < PIPE_BUF, "one atomic write");

/* escape_user - tab-escape user into out (size outsize).  Returns the
 * length, or -1 when it does not fit or user is empty. */
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

/* hm_notify_line - see hm_notify.h */
ssize_t hm_notify_line(char *out, size_t outsize, const char *user, const char *priority)
{
	size_t plen = priority ? strlen(priority) : 0;
	if (outsize > HM_NOTIFY_LINE_MAX + 1)
		outsize = HM_NOTIFY_LINE_MAX + 1;
	if (plen == 0 || plen > 16 || outsize < plen + 4)
		return -1;
	size_t tail = plen + 2;                 /* TAB, priority, LF */
	ssize_t n = escape_user(out, outsize - tail, user);
	if (n < 0)
		return -1;
	out[n] = '\t';
	memcpy(out + n + 1, priority, plen);
	out[n + 1 + (ssize_t)plen] = '\n';
	out[n + (ssize_t)tail] = '\0';
	return n + (ssize_t)tail;
}

/* hm_notify_fifo - see hm_notify.h */
int hm_notify_fifo(const char *fifo, const char *line, size_t len, char *err, size_t errsize)
{
	struct stat st;
	int fd, e, rc = -1;

	fd = open(fifo, O_WRONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		/* ENXIO: no reader (aggregator not running); ENOENT: service
		 * not configured; EACCES: the listener's mode/group is wrong */
		e = errno;
		snprintf(err, errsize, "open(%s): %s", fifo, strerror(e));
		errno = e;
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		e = errno;
		snprintf(err, errsize, "fstat(%s): %s", fifo, strerror(e));
	} else if (!S_ISFIFO(st.st_mode)) {
		e = EINVAL;
		snprintf(err, errsize, "%s is not a FIFO; not written", fifo);
	} else {
		ssize_t w = write(fd, line, len);
		if (w >= 0 && (size_t)w == len) {
			rc = 0;
			e = 0;
		} else if (w < 0) {
			/* EAGAIN: pipe full (the aggregator is behind) */
			e = errno;
			snprintf(err, errsize, "write(%s): %s", fifo, strerror(e));
		} else {
			e = EIO;
			snprintf(err, errsize, "write(%s): short write", fifo);
		}
	}
	close(fd);
	errno = e;
	return rc;
}
