/* deliver_sieve.h — what deliver_filter.c shares with the files that carry
 * out the actions that leave the machine: deliver_redirect.c (redirect and
 * the sendmail call) and deliver_vacation.c (vacation replies).
 * Internal to homemail-deliver; the filter seam itself is deliver.h.
 */
#ifndef DELIVER_SIEVE_H
#define DELIVER_SIEVE_H
#include <string.h>
#include <time.h>

#include "deliver.h"
#include "hm_util.h"
#include "sieve/sieve.h"

/* one Sieve run of one delivery */
struct glue {
	struct deliver_ctx *ctx;
	time_t now;
	const char *raw;        /* the spooled message (bounded), for the redirect key */
	size_t raw_len;
	size_t msg_start;       /* its first byte after the delivery trace fields */
	char state_vac[4096];   /* vacation period store (sv_state) */
	char state_dup[4096];   /* duplicate / sent-redirect store (sv_state) */
};

/* clean - a log-safe copy of untrusted text */
static inline const char *clean(char *buf, size_t size, const char *s)
{
	hm_log_clean(buf, size, s ? s : "", s ? strlen(s) : 0);
	return buf;
}

/* deliver_sendmail - pipe head + (with_message: the spooled message) into
 * "sendmail -oi -f FROM -- TO" (TO one argument).  0 when sendmail took it. */
int deliver_sendmail(struct deliver_ctx *ctx, const char *from, const char *to,
		     const char *head, size_t headlen, bool with_message);

#define DELIVER_REDIRECT_LOOP (-2)

/* deliver_redirect - hand the message to sendmail for `to` (the engine's
 * RFC 5321 form), once: 0 sent now or by an earlier attempt (recorded),
 * DELIVER_REDIRECT_LOOP refused (keep instead), -1 sendmail did not take it
 * (defer) */
int deliver_redirect(struct glue *g, const char *to);

/* deliver_vacation - send the vacation reply of action a unless one went
 * to that sender for that handle within the period; 0 sent or not due,
 * -1 sendmail failed (logged only) */
int deliver_vacation(struct glue *g, const struct sieve_action *a);

#endif
