/* deliver_notify.c — tell Dovecot's replicator that a user got new mail.
 *
 * What for: Dovecot 2.3's replication plugin sees only mail saved through
 *   Dovecot's storage; homemail-deliver writes the Maildir itself, so after
 *   a successful delivery it asks the local aggregator for a replication of
 *   the user, as the plugin does for new mail (docs/replication.md).  The
 *   line and the write are lib/hm_notify's (protocol there); priority
 *   "high", as for new messages.
 * Relies on: the fifo's listener being writable by the delivering user
 *   (service aggregator's fifo_listener mode/group, set by the role); a
 *   user outside that group (the owner of virtual accounts) is refused
 *   (EACCES) and then tries the second fifo (replication_notify_virtual:
 *   a second listener of the aggregator for that owner's group).
 * How it fails: never fails the delivery and never waits (hm_notify.c).
 *   Every failure is one log line; the peer then catches up at the
 *   replicator's next full sync (replication_full_sync_interval).
 */
#include <errno.h>
#include <string.h>
#include <syslog.h>

#include "deliver_notify.h"
#include "hm_notify.h"
#include "hm_util.h"

/* deliver_notify_replicator - see deliver_notify.h */
int deliver_notify_replicator(const char *fifo, const char *alt, const char *user)
{
	char line[HM_NOTIFY_LINE_MAX + 1], cu[128], err[512];

	if (fifo == NULL || *fifo == '\0')
		return 0;                       /* replication not configured */
	hm_log_clean(cu, sizeof cu, user ? user : "", user ? strlen(user) : 0);
	ssize_t len = hm_notify_line(line, sizeof line, user, "high");
	if (len < 0) {
		syslog(LOG_WARNING, "replication notify: user name '%s' too long or empty; not notified", cu);
		return -1;
	}
	int rc = hm_notify_fifo(fifo, line, (size_t)len, err, sizeof err);
	if (rc < 0 && errno == EACCES && alt != NULL && *alt != '\0')
		/* not in the mail accounts' group (a virtual accounts' owner):
		 * the listener for that group */
		rc = hm_notify_fifo(alt, line, (size_t)len, err, sizeof err);
	if (rc < 0)
		syslog(LOG_WARNING, "replication notify for %s: %s", cu, err);
	return rc;
}
