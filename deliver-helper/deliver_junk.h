/* deliver_junk.h — the junk-list check homemail-deliver runs before the
 * user's Sieve script (see docs/junk.md).
 *
 * NAME
 *   deliver_junk - route mail by what the user taught in the Junk folder
 * DESCRIPTION
 *   The sender is looked up in the user's lists (lib/hm_junklist.h, the file
 *   lib90_homemail_junk_plugin.so writes in the Maildir root): first the
 *   address in From:, and only when From: is on neither list, the envelope
 *   sender (the Return-Path the plugin also records).  Then homemail's own
 *   rules decide the implicit keep:
 *     blocked sender                      -> Junk
 *     X-Homemail-Scan: tag; ... (scan)    -> Junk, unless the sender is trusted
 *     HOMEMAIL_SPAM=yes (Exim's rspamd)   -> Junk, unless the sender is trusted
 *     X-Homemail-Scan: ...; dmarc=quarantine -> Junk, even for a trusted sender
 *     trusted sender                      -> never Junk by the other rules
 *   The user's Sieve script runs afterwards and can override: its explicit
 *   fileinto wins, and the verdict is visible to it as the header field
 *   X-Homemail-Junk in its view of the message (deliver_junk_sieve_view),
 *   and in the process environment below.
 *   A missing, unreadable or damaged list file is never a reason to defer
 *   or lose mail: the check then reports "none".
 */
#ifndef DELIVER_JUNK_H
#define DELIVER_JUNK_H
#include <stdbool.h>

#include "hm_header.h"
#include "hm_junklist.h"

#define DELIVER_JUNK_FOLDER      "Junk"
/* Exported for programs run on the message's behalf, and read back by
 * deliver_junk_sieve_view: "blocked", "trusted" or "none". */
#define DELIVER_JUNK_ENV         "HOMEMAIL_JUNK"
/* The list entry that matched ("" when none), e.g. "spam@example.net". */
#define DELIVER_JUNK_ENV_SENDER  "HOMEMAIL_JUNK_SENDER"
/* "yes" when homemail's own rules file the message into Junk, else "no". */
#define DELIVER_JUNK_ENV_TO_JUNK "HOMEMAIL_JUNK_TO_JUNK"
/* Set by the homemail transport (transport/30_homemail) from the DATA
 * ACL's rspamd verdict: "yes" = spam (Junk unless the sender is trusted);
 * anything else, or unset, = not.  Never read from the message. */
#define DELIVER_SPAM_ENV         "HOMEMAIL_SPAM"

struct deliver_junk_verdict {
	enum hm_junk_kind kind;     /* list the sender is on, HM_JUNK_NONE */
	bool scan_tagged;           /* X-Homemail-Scan says "tag" */
	bool spam_flagged;          /* HOMEMAIL_SPAM=yes (docs/filtering.md) */
	bool dmarc_quarantine;      /* X-Homemail-Scan says "dmarc=quarantine" */
	bool to_junk;               /* homemail's rules: implicit keep = Junk */
	char sender[HM_JUNKLIST_ADDR_MAX + 1];  /* matched entry, "" none */
	const char *via;            /* "From", "envelope", or NULL */
	unsigned long damaged;      /* damaged lines skipped in the list file */
};

struct deliver_ctx;

/* deliver_junk_check - the verdict for a message (hdr may be NULL,
 * env_sender "" or NULL for the null sender) from the lists in maildir.
 * Returns 0 (verdict_r filled; list problems are folded into "none" and
 * verdict_r->damaged), or -1 and errno (ENOMEM; verdict_r then says "none"). */
int deliver_junk_check(const char *maildir, const struct hm_header *hdr,
		       const char *env_sender, struct deliver_junk_verdict *verdict_r);

/* deliver_junk_name - "blocked", "trusted" or "none" */
const char *deliver_junk_name(enum hm_junk_kind kind);

/* deliver_junk_export - put the verdict into the process environment
 * (always all three variables, so nothing inherited survives).
 * Returns 0, or -1 and errno (ENOMEM). */
int deliver_junk_export(const struct deliver_junk_verdict *v);

/* Fields the user's Sieve script sees (only in the Sieve view of the
 * message, never stored): "X-Homemail-Junk: blocked|trusted|none" and, when
 * a list entry matched, "X-Homemail-Junk-Sender: <entry>". */
#define DELIVER_JUNK_HDR         "X-Homemail-Junk"
#define DELIVER_JUNK_HDR_SENDER  "X-Homemail-Junk-Sender"

/* deliver_junk_sieve_view - the message as the Sieve engine should see it:
 * our X-Homemail-Junk fields first (from the verdict deliver_junk_route
 * exported), and the message's own fields of those names left out, so a
 * sender cannot forge a verdict.  Scripts test it with the plain `header`
 * test, e.g.  if header :is "X-Homemail-Junk" "blocked" { ... }.
 * Returns a malloc'd copy (length in *len_r), or NULL and errno (ENOMEM,
 * EOVERFLOW): the caller then uses data unchanged. */
char *deliver_junk_sieve_view(const char *data, size_t len, size_t *len_r);

/* deliver_junk_route - the one call deliver_filter() makes before Sieve:
 * check, export, and point the implicit keep (ctx->mailbox) at Junk when
 * homemail's rules say so.  Logs the decision.  Returns 0 always: a failed
 * check only means no junk routing, never a lost or deferred message. */
int deliver_junk_route(struct deliver_ctx *ctx);

#endif
