/* ext_mailbox.c — RFC 5490 mailbox: the mailboxexists test (":create" for
 * fileinto lives in cmd_actions.c).  Existence is asked of the caller
 * (callbacks.mailbox_exists); without a callback only INBOX exists.
 */
#include <stdlib.h>
#include <strings.h>

#include "sv_int.h"

static int exec_mailboxexists(struct sv_run *r, struct sv_node *n)
{
	const struct sv_arg *a = sv_pos(n, 0);
	for (size_t i = 0; i < a->n; i++) {
		size_t len;
		char *name = sv_expand(r, n, &a->v[i], &len);
		if (!name)
			return -1;
		int ex;
		if (r->cb->mailbox_exists)
			ex = r->cb->mailbox_exists(r->cb->ctx, name);
		else
			ex = strcasecmp(name, "INBOX") == 0;
		free(name);
		if (sv_step(r, n, 10) < 0)
			return -1;
		if (ex <= 0)
			return 0;
	}
	return 1;
}

const struct sv_def sv_def_mailboxexists = {
	.name = "mailboxexists", .ext = EXT_MAILBOX, .is_test = true, .pos = "l",
	.exec = exec_mailboxexists,
};
