/* ext_reject.c — RFC 5429 reject and ereject.
 *   reject <reason: string>    refuse with a delivery status notification
 *   ereject <reason: string>   refuse at the protocol level when possible
 * Both cancel the implicit keep and conflict with any action that delivers
 * the message or answers the sender (checked in sv_result.c).
 */
#include <stdlib.h>

#include "sv_int.h"

static int do_reject(struct sv_run *r, struct sv_node *n, enum sieve_action_type t)
{
	size_t len;
	char *reason = sv_expand(r, n, &sv_pos(n, 0)->v[0], &len);
	if (!reason)
		return SV_ERR;
	struct sieve_action a = { .type = t, .target = reason };
	int rc = sv_add_action(r, n, &a);
	if (rc == SV_OK)
		r->keep = false;
	return rc;
}

static int exec_reject(struct sv_run *r, struct sv_node *n)
{
	return do_reject(r, n, SIEVE_ACT_REJECT);
}

static int exec_ereject(struct sv_run *r, struct sv_node *n)
{
	return do_reject(r, n, SIEVE_ACT_EREJECT);
}

const struct sv_def sv_def_reject = {
	.name = "reject", .ext = EXT_REJECT, .pos = "s", .exec = exec_reject,
};

const struct sv_def sv_def_ereject = {
	.name = "ereject", .ext = EXT_EREJECT, .pos = "s", .exec = exec_ereject,
};
