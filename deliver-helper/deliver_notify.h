/* deliver_notify.h — tell Dovecot's replicator about a delivery
 * (deliver_notify.c says how and how it fails). */
#ifndef DELIVER_NOTIFY_H
#define DELIVER_NOTIFY_H
#include <stddef.h>
#include <sys/types.h>

/* longest line written, newline included (below PIPE_BUF: one atomic write) */
#define HM_NOTIFY_LINE_MAX 512

/* deliver_notify_line - the fifo line "<user tab-escaped>\thigh\n" into out
 * (NUL-terminated, at most HM_NOTIFY_LINE_MAX bytes before the NUL).
 * Returns its length, or -1 when user is empty or the line does not fit. */
ssize_t deliver_notify_line(char *out, size_t outsize, const char *user);

/* deliver_notify_replicator - one non-blocking write of that line to fifo
 * (NULL or "" = replication off: nothing done); when fifo refuses this
 * user (EACCES) and alt is set, to alt instead.  Never blocks, never
 * fails the delivery.  Returns 0 written (or off), -1 not written (logged). */
int deliver_notify_replicator(const char *fifo, const char *alt, const char *user);

#endif
