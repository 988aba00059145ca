/* deliver_vacation.c — Sieve vacation replies for homemail-deliver.
 *
 * What for: composes the reply of a vacation action (RFC 5230, RFC 3834:
 *   Auto-Submitted, In-Reply-To, References, null envelope sender) with To
 *   and From as Pigeonhole 0.5.19 writes them, and sends it through
 *   deliver_sendmail() at most once per sender and handle per period (the
 *   vacation store in the Maildir root).
 * Relies on: hm_address (the original's address fields), hm_digest
 *   (Base64 for RFC 2047 words), sv_state.
 * How it fails: a reply that cannot be sent is logged and not recorded
 *   (the next message may try again); the delivery itself goes on.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>

#include "deliver_sieve.h"
#include "hm_address.h"
#include "hm_buf.h"
#include "hm_digest.h"
#include "hm_header.h"
#include "sieve/sv_state.h"

/* encode_subject - RFC 2047 B-encoded words for non-ASCII text */
static int encode_subject(struct hm_buf *b, const char *s)
{
	bool ascii = true;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p >= 0x80 || *p < 0x20)
			ascii = false;
	if (ascii)
		return hm_buf_puts(b, s);
	size_t len = strlen(s), i = 0;
	bool first = true;
	while (i < len) {
		/* at most 45 bytes per word, cut at a character boundary */
		size_t n = len - i < 45 ? len - i : 45;
		while (n > 0 && i + n < len && ((unsigned char)s[i + n] & 0xC0) == 0x80)
			n--;
		if (n == 0)
			n = 1;
		char enc[HM_BASE64_SIZE(64)];
		char tmp[64];
		size_t k = 0;
		for (size_t j = 0; j < n; j++)
			tmp[k++] = (s[i + j] < 0x20 && s[i + j] >= 0) ? ' ' : s[i + j];
		if (hm_base64_encode(enc, sizeof enc, tmp, k) < 0)
			return -1;
		if (hm_buf_printf(b, "%s=?UTF-8?B?%s?=", first ? "" : "\n ", enc) < 0)
			return -1;
		first = false;
		i += n;
	}
	return 0;
}

/* put_clean_value - append v to b with CR/LF as blanks, so it cannot break the header */
static void put_clean_value(struct hm_buf *b, const char *v)
{
	for (const char *p = v; *p; p++)
		hm_buf_putc(b, (*p == '\r' || *p == '\n') ? ' ' : *p);
}

/* addr_spec_eq - local@domain of a equals s (domain case-insensitive) */
static bool addr_spec_eq(const struct hm_addr *a, const char *s)
{
	if (a->invalid || !a->domain)
		return false;
	size_t ll = strlen(a->local);
	const char *at = strrchr(s, '@');
	return at && (size_t)(at - s) == ll && strncmp(s, a->local, ll) == 0 &&
	       strcasecmp(at + 1, a->domain) == 0;
}

/* find_header_addr - the first address of the fields names[] (in order)
 * that equals one of want[] (NULL-terminated): calls found(addr, cb_arg)
 * and returns true, or false when none matches.  Bounded: at most 1,000
 * addresses per field, 100 fields per name. */
static bool find_header_addr(struct deliver_ctx *ctx, const char *const *names,
			     const char *const *want,
			     void (*found)(const struct hm_addr *, void *), void *arg)
{
	if (!ctx->hdr)
		return false;
	for (size_t n = 0; names[n]; n++) {
		const struct hm_hfield *f;
		size_t it = 0;
		for (int k = 0; k < 100 && (f = hm_header_next(ctx->hdr, names[n], &it)) != NULL; k++) {
			struct hm_addr_list l = { 0 };
			if (hm_address_parse(f->value, f->value_len, 1000, &l) < 0)
				return false;
			for (size_t i = 0; i < l.n; i++)
				for (size_t w = 0; want[w]; w++)
					if (addr_spec_eq(&l.v[i], want[w])) {
						found(&l.v[i], arg);
						hm_address_list_free(&l);
						return true;
					}
			hm_address_list_free(&l);
		}
	}
	return false;
}

/* put_mailbox - "Display Name" <local@domain> for a header: the display
 * name as a quoted string (ASCII) or encoded words (RFC 2047) */
static void put_mailbox(const struct hm_addr *a, void *vb)
{
	struct hm_buf *b = vb;
	if (a->display && *a->display) {
		bool ascii = true;
		for (const unsigned char *p = (const unsigned char *)a->display; *p; p++)
			if (*p >= 0x80 || *p < 0x20)
				ascii = false;
		if (ascii) {
			hm_buf_putc(b, '"');
			for (const char *p = a->display; *p; p++) {
				if (*p == '"' || *p == '\\')
					hm_buf_putc(b, '\\');
				hm_buf_putc(b, *p);
			}
			hm_buf_puts(b, "\" ");
		} else if (encode_subject(b, a->display) == 0) {
			hm_buf_putc(b, ' ');
		}
	}
	hm_buf_putc(b, '<');
	/* the local part as RFC 5322 writes it: quoted unless a dot-atom */
	bool atom = *a->local && a->local[0] != '.' && a->local[strlen(a->local) - 1] != '.' &&
		    !strstr(a->local, "..");
	for (const unsigned char *p = (const unsigned char *)a->local; *p && atom; p++)
		atom = *p >= 0x80 || (*p > 0x20 && *p < 0x7f && !strchr("\"(),:;<>@[\\]", *p));
	if (atom) {
		put_clean_value(b, a->local);
	} else {
		hm_buf_putc(b, '"');
		for (const char *p = a->local; *p; p++) {
			if (*p == '"' || *p == '\\')
				hm_buf_putc(b, '\\');
			hm_buf_putc(b, (*p == '\r' || *p == '\n') ? ' ' : *p);
		}
		hm_buf_putc(b, '"');
	}
	hm_buf_putc(b, '@');
	put_clean_value(b, a->domain);
	hm_buf_putc(b, '>');
}

/* put_addr_spec - <local@domain> only */
static void put_addr_spec(const struct hm_addr *a, void *vb)
{
	struct hm_addr bare = *a;
	bare.display = NULL;
	put_mailbox(&bare, vb);
}

static void found_nothing(const struct hm_addr *a, void *arg)
{
	(void)a;
	(void)arg;
}

/* put_reply_to_from - the reply's To and From as Pigeonhole 0.5.19 writes
 * them: To is the sender's mailbox as the message's From (Sender,
 * Resent-From, Resent-Sender) field spells it, display name included, when
 * one of them holds the envelope sender; From is :from, else the address
 * of :addresses that the message was sent to (To, Cc, Bcc, Resent-To,
 * Resent-Cc) when the recipient itself is not there, else the recipient. */
static void put_reply_to_from(struct deliver_ctx *ctx, const struct sieve_action *a,
			      struct hm_buf *m)
{
	static const char *const from_f[] = { "From", "Sender", "Resent-From", "Resent-Sender", NULL };
	static const char *const to_f[] = { "To", "Cc", "Bcc", "Resent-To", "Resent-Cc", NULL };
	hm_buf_puts(m, "From: ");
	const char *rcpt[] = { ctx->recipient, NULL };
	if (a->vac_from)
		put_clean_value(m, a->vac_from);
	else if (!a->vac_addresses || find_header_addr(ctx, to_f, rcpt, found_nothing, NULL) ||
		 !find_header_addr(ctx, to_f, (const char *const *)a->vac_addresses, put_addr_spec, m))
		put_clean_value(m, ctx->recipient);
	hm_buf_puts(m, "\nTo: ");
	const char *snd[] = { a->vac_to, NULL };
	if (!find_header_addr(ctx, from_f, snd, put_mailbox, m)) {
		hm_buf_putc(m, '<');
		put_clean_value(m, a->vac_to);
		hm_buf_putc(m, '>');
	}
	hm_buf_puts(m, "\n");
}

/* deliver_vacation - see deliver_sieve.h */
int deliver_vacation(struct glue *g, const struct sieve_action *a)
{
	struct deliver_ctx *ctx = g->ctx;
	char c1[300];
	if (a->vac_skip) {
		deliver_log(LOG_INFO, "sieve: vacation: no reply to %s: %s",
			    clean(c1, sizeof c1, a->vac_to), a->vac_skip);
		return 0;
	}
	/* one reply per sender and handle per period (RFC 5230 4.6) */
	struct hm_buf key;
	hm_buf_init(&key, 1 << 20);
	hm_buf_puts(&key, a->vac_handle ? a->vac_handle : "");
	hm_buf_putc(&key, '\001');
	for (const char *p = a->vac_to; *p; p++)
		hm_buf_putc(&key, (*p >= 'A' && *p <= 'Z') ? (char)(*p + 32) : *p);
	int seen = sv_state_seen(g->state_vac, hm_buf_cstr(&key), key.len, g->now);
	if (seen != 0) {
		if (seen < 0)
			deliver_log(LOG_WARNING, "sieve: vacation state %s unusable (%s): no reply",
				    g->state_vac, strerror(errno));
		else
			deliver_log(LOG_INFO, "sieve: vacation: already replied to %s in this period",
				    clean(c1, sizeof c1, a->vac_to));
		hm_buf_free(&key);
		return 0;
	}
	struct hm_buf m;
	hm_buf_init(&m, 1 << 20);
	char date[64];
	struct tm tm;
	localtime_r(&g->now, &tm);
	strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S %z", &tm);
	unsigned char rnd[12];
	if (hm_random_bytes(rnd, sizeof rnd) < 0)
		memset(rnd, 0, sizeof rnd);
	const char *dom = strrchr(ctx->recipient, '@');
	put_reply_to_from(ctx, a, &m);
	hm_buf_puts(&m, "Subject: ");
	encode_subject(&m, a->vac_subject ? a->vac_subject : "Automated reply");
	hm_buf_printf(&m, "\nDate: %s\nMessage-ID: <vacation.", date);
	for (size_t i = 0; i < sizeof rnd; i++)
		hm_buf_printf(&m, "%02x", rnd[i]);
	hm_buf_printf(&m, "%s>\n", dom ? dom : "@localhost");
	const struct hm_hfield *mid = ctx->hdr ? hm_header_get(ctx->hdr, "Message-ID") : NULL;
	const struct hm_hfield *refs = ctx->hdr ? hm_header_get(ctx->hdr, "References") : NULL;
	if (mid && mid->value_len > 0 && mid->value_len < 1000) {
		hm_buf_puts(&m, "In-Reply-To: ");
		put_clean_value(&m, mid->value);
		hm_buf_puts(&m, "\nReferences: ");
		if (refs && refs->value_len < 4000) {
			put_clean_value(&m, refs->value);
			hm_buf_puts(&m, "\n ");
		}
		put_clean_value(&m, mid->value);
		hm_buf_puts(&m, "\n");
	}
	hm_buf_puts(&m, "Auto-Submitted: auto-replied (vacation)\nPrecedence: bulk\n"
		    "X-Auto-Response-Suppress: All\nMIME-Version: 1.0\n");
	if (!a->vac_mime)
		hm_buf_puts(&m, "Content-Type: text/plain; charset=utf-8\n"
			    "Content-Transfer-Encoding: 8bit\n\n");
	/* the reason, with CRLF made LF (sendmail -oi takes local line ends) */
	for (const char *p = a->vac_reason ? a->vac_reason : ""; *p; p++)
		if (!(*p == '\r' && p[1] == '\n'))
			hm_buf_putc(&m, *p);
	if (m.len == 0 || m.data[m.len - 1] != '\n')
		hm_buf_putc(&m, '\n');
	int rc = deliver_sendmail(ctx, "<>", a->vac_to, hm_buf_cstr(&m), m.len, false);
	if (rc == 0) {
		if (sv_state_mark(g->state_vac, hm_buf_cstr(&key), key.len,
				  g->now + (time_t)a->vac_seconds, g->now) < 0)
			deliver_log(LOG_WARNING, "sieve: cannot record the vacation reply in %s: %s",
				    g->state_vac, strerror(errno));
		deliver_log(LOG_INFO, "sieve: vacation reply sent to %s",
			    clean(c1, sizeof c1, a->vac_to));
	} else {
		deliver_log(LOG_ERR, "sieve: vacation reply to %s failed (sendmail)",
			    clean(c1, sizeof c1, a->vac_to));
	}
	hm_buf_free(&m);
	hm_buf_free(&key);
	return rc;
}
