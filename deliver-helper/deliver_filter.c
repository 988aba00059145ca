/* deliver_filter.c — where the message goes: THE filtering seam (see deliver.h).
 *
 * What for: this stock version does the implicit keep into INBOX, or into
 *   the -m MAILBOX folder (falling back to INBOX when that name is refused or
 *   the store fails for a reason other than quota, as dovecot-lda does),
 *   with the --flags flags/keywords.
 *   The Sieve glue replaces this body; the junk-list check adds a call here.
 * Relies on: deliver_store() and the context filled by deliver_main.c.
 * How it fails: never by itself; store failures are counted in ctx and the
 *   main flow turns "nothing stored" into a retry (75).
 */
#include "deliver.h"
#include "deliver_junk.h"

/* deliver_filter - implicit keep */
int deliver_filter(struct deliver_ctx *ctx)
{
	(void)deliver_junk_route(ctx);  /* junk lists: may point the implicit keep at Junk */
	if (ctx->mailbox != NULL) {
		int rc = deliver_store(ctx, ctx->mailbox, ctx->keep_flags, ctx->n_keep_flags);
		if (rc == 0 || rc == DELIVER_EQUOTA)
			return 0;
	}
	(void)deliver_store(ctx, "INBOX", ctx->keep_flags, ctx->n_keep_flags);
	return 0;
}
