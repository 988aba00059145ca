/* deliver_notify.h — tell Dovecot's replicator about a delivery
 * (deliver_notify.c says how and how it fails). */
#ifndef DELIVER_NOTIFY_H
#define DELIVER_NOTIFY_H

/* deliver_notify_replicator - one non-blocking write of the line
 * "<user>\thigh\n" (hm_notify) to fifo (NULL or "" = replication off:
 * nothing done); when fifo refuses this user (EACCES) and alt is set, to
 * alt instead.  Never blocks, never fails the delivery.  Returns 0
 * written (or off), -1 not written (logged). */
int deliver_notify_replicator(const char *fifo, const char *alt, const char *user);

#endif
