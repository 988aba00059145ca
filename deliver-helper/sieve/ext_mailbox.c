/* ext_mailbox.c — RFC 5490 mailbox: the mailboxexists test (":create" for
 * fileinto lives in cmd_actions.c).  Existence is asked of the caller
 * (callbacks.mailbox_exists); without a callback only INBOX exists.
 */
#include <strings.h>

#include "sv_int.h"

static int mailbox_exists(struct sv_run *r, const char *name, size_t len, uint64_t *cost_r)
{
	(void)len;
	*cost_r = 10;
	if (r->cb->mailbox_exists)
		return r->cb->mailbox_exists(r->cb->ctx, name);
	return strcasecmp(name, "INBOX") == 0;
}

static int exec_mailboxexists(struct sv_run *r, struct sv_node *n)
{
	return sv_test_all(r, n, sv_pos(n, 0), mailbox_exists);
}

const struct sv_def sv_def_mailboxexists = {
	.name = "mailboxexists", .ext = EXT_MAILBOX, .is_test = true, .pos = "l",
	.exec = exec_mailboxexists,
};
