/* hm_notify.h — ask Dovecot's replicator for a sync of a user through the
 * aggregator's notify fifo (hm_notify.c says the protocol and how it
 * fails).  Used by homemail-deliver after a delivery and by the junk
 * plugin after it published the lists. */
#ifndef HM_NOTIFY_H
#define HM_NOTIFY_H
#include <stddef.h>
#include <sys/types.h>

/* longest line written, newline included (below PIPE_BUF: one atomic write) */
#define HM_NOTIFY_LINE_MAX 512

/* hm_notify_line - the fifo line "<user tab-escaped>\t<priority>\n" into
 * out (NUL-terminated, at most HM_NOTIFY_LINE_MAX bytes before the NUL).
 * Returns its length, or -1 when user is empty or the line does not fit. */
ssize_t hm_notify_line(char *out, size_t outsize, const char *user, const char *priority);

/* hm_notify_fifo - one non-blocking write of line (len bytes, from
 * hm_notify_line) to fifo.  Returns 0 written, or -1 with errno set and
 * what failed in err ("open(PATH): ...", "PATH is not a FIFO", ...). */
int hm_notify_fifo(const char *fifo, const char *line, size_t len, char *err, size_t errsize);

#endif
