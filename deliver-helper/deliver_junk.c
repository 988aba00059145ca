/* deliver_junk.c — the junk-list check of homemail-deliver (see deliver_junk.h).
 *
 * What for: mail from a sender the user moved to Junk goes to Junk; mail
 *   from a sender the user moved out of Junk is never sent there by
 *   homemail's own rules; a message Exim's rspamd scan marked as spam
 *   (HOMEMAIL_SPAM=yes from the transport) goes to Junk unless its sender
 *   is trusted; the user's Sieve script sees the verdict.
 * Relies on: lib/hm_junklist (list file, address normal form, sender
 *   extraction through lib/hm_address), lib/hm_header (the parsed header
 *   block deliver_main.c hands to the filter), deliver.h (ctx, deliver_log).
 * How it fails: softly.  A list that cannot be read (missing, symlink,
 *   permissions, damage) is logged and counts as "no verdict"; the message
 *   is delivered as if the lists were empty.  Nothing here defers or drops
 *   mail, and nothing here writes the list (only the Dovecot plugin does).
 */
#define _GNU_SOURCE 1            /* secure_getenv */
#include "deliver_junk.h"
#include "deliver.h"
#include "hm_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

const char *deliver_junk_name(enum hm_junk_kind kind)
{
	switch (kind) {
	case HM_JUNK_BLOCKED: return "blocked";
	case HM_JUNK_TRUSTED: return "trusted";
	default: return "none";
	}
}

/* scan_tagged - does an X-Homemail-Scan field carry the "tag" verdict?
 * The field is "<verdict>; parts=N; ..." (exim-local-scan); any field
 * saying tag counts, so an extra forged "accept" field cannot hide it. */
static bool scan_tagged(const struct hm_header *hdr)
{
	const struct hm_hfield *f;
	size_t it = 0;

	while ((f = hm_header_next(hdr, "X-Homemail-Scan", &it)) != NULL) {
		const char *v = f->value;
		if (strncmp(v, "tag", 3) == 0 && (v[3] == '\0' || v[3] == ';' || v[3] == ' '))
			return true;
	}
	return false;
}

/* spam_verdict - did Exim's rspamd scan mark this message as spam?
 * The verdict comes out of band, never from the message: the homemail
 * transport (transport/30_homemail) sets HOMEMAIL_SPAM=yes from the DATA
 * ACL's $acl_m_hm_spam, which no sender can set.  The X-Spam-Flag field
 * the ACL adds is for people and Sieve only; a copy that reached us some
 * other way (an upstream filter, a local program's mail, which skips the
 * SMTP ACLs) decides nothing here. */
static bool spam_verdict(void)
{
	/* secure_getenv: a setuid/setgid run trusts no caller's environment */
	const char *v = secure_getenv(DELIVER_SPAM_ENV);

	return v != NULL && strcmp(v, "yes") == 0;
}

/* dmarc_quarantine - does an X-Homemail-Scan field say "dmarc=quarantine"?
 * homemail_scan.so adds it when the From: domain's DMARC policy quarantines
 * a message that failed (docs/mailauth.md); it removes every incoming
 * X-Homemail-Scan first, so the sender cannot write it.  (A field: DMARC is
 * decided in local_scan, which cannot set the ACL variables the transport
 * passes on.  A copy that arrives some other way can only send its own
 * message to Junk, never keep one out.) */
static bool dmarc_quarantine(const struct hm_header *hdr)
{
	const struct hm_hfield *f;
	size_t it = 0;

	while ((f = hm_header_next(hdr, "X-Homemail-Scan", &it)) != NULL)
		if (strstr(f->value, "; dmarc=quarantine") != NULL)
			return true;
	return false;
}

/* lookup_into - look addr up; on a hit fill verdict_r and return true */
static bool lookup_into(const struct hm_junklist *l, const char *addr, const char *via,
			struct deliver_junk_verdict *verdict_r)
{
	const char *matched;
	enum hm_junk_kind k = hm_junklist_lookup(l, addr, &matched);

	if (k == HM_JUNK_NONE)
		return false;
	verdict_r->kind = k;
	verdict_r->via = via;
	(void)hm_strlcpy(verdict_r->sender, matched, sizeof verdict_r->sender);
	return true;
}

int deliver_junk_check(const char *maildir, const struct hm_header *hdr,
		       const char *env_sender, struct deliver_junk_verdict *verdict_r)
{
	char from[HM_JUNKLIST_ADDR_MAX + 1];
	const struct hm_hfield *f;
	struct hm_junklist l;
	int ret = 0;

	memset(verdict_r, 0, sizeof *verdict_r);
	verdict_r->kind = HM_JUNK_NONE;
	if (hdr != NULL) {
		verdict_r->scan_tagged = scan_tagged(hdr);
		verdict_r->dmarc_quarantine = dmarc_quarantine(hdr);
	}
	verdict_r->spam_flagged = spam_verdict();

	hm_junklist_init(&l);
	if (maildir == NULL || hm_junklist_load(&l, maildir) < 0) {
		int e = maildir == NULL ? EINVAL : errno;
		char clean[256];
		hm_log_clean(clean, sizeof clean, maildir ? maildir : "(none)",
			     strlen(maildir ? maildir : "(none)"));
		deliver_log(LOG_WARNING, "junk: cannot read %s/%s: %s; no junk routing",
			    clean, HM_JUNKLIST_FILE, strerror(e));
		hm_junklist_free(&l);
		hm_junklist_init(&l);
		if (e == ENOMEM)
			ret = -1;
	}
	verdict_r->damaged = l.damaged;

	/* From: decides when it is on a list: it is what the user saw when
	 * they moved the message; the envelope sender only when it is not */
	if (hdr != NULL && (f = hm_header_get(hdr, "From")) != NULL &&
	    hm_junk_sender_addr(f->value, f->value_len, from, sizeof from) == 0 &&
	    lookup_into(&l, from, "From", verdict_r))
		goto decided;
	if (env_sender != NULL && env_sender[0] != '\0')
		(void)lookup_into(&l, env_sender, "envelope", verdict_r);
decided:
	hm_junklist_free(&l);
	/* a DMARC quarantine beats a trusted sender: the From: the user
	 * trusted is exactly what that message forged */
	verdict_r->to_junk = verdict_r->kind == HM_JUNK_BLOCKED || verdict_r->dmarc_quarantine ||
			     ((verdict_r->scan_tagged || verdict_r->spam_flagged) &&
			      verdict_r->kind != HM_JUNK_TRUSTED);
	if (ret < 0)
		errno = ENOMEM;
	return ret;
}

int deliver_junk_export(const struct deliver_junk_verdict *v)
{
	if (setenv(DELIVER_JUNK_ENV, deliver_junk_name(v->kind), 1) < 0 ||
	    setenv(DELIVER_JUNK_ENV_SENDER, v->sender, 1) < 0 ||
	    setenv(DELIVER_JUNK_ENV_TO_JUNK, v->to_junk ? "yes" : "no", 1) < 0)
		return -1;
	return 0;
}

int deliver_junk_route(struct deliver_ctx *ctx)
{
	struct deliver_junk_verdict v;
	char clean[HM_JUNKLIST_ADDR_MAX + 8];

	(void)deliver_junk_check(ctx->maildir, ctx->hdr, ctx->sender, &v);
	if (deliver_junk_export(&v) < 0)
		deliver_log(LOG_WARNING, "junk: cannot export the verdict: %s",
			    strerror(errno));
	if (v.damaged > 0)
		deliver_log(LOG_NOTICE, "junk: %lu damaged lines skipped in %s",
			    v.damaged, HM_JUNKLIST_FILE);
	if (v.to_junk)
		ctx->mailbox = DELIVER_JUNK_FOLDER;
	if (v.kind != HM_JUNK_NONE) {
		hm_log_clean(clean, sizeof clean, v.sender, strlen(v.sender));
		deliver_log(LOG_INFO, "junk: sender %s is %s (by %s)%s%s; implicit keep %s",
			    clean, deliver_junk_name(v.kind), v.via,
			    v.scan_tagged ? ", scan tag" : "",
			    v.spam_flagged ? ", rspamd spam" : "",
			    v.to_junk ? "Junk" : "unchanged");
	} else if (v.dmarc_quarantine) {
		deliver_log(LOG_INFO, "junk: DMARC quarantine; implicit keep Junk");
	} else if (v.scan_tagged || v.spam_flagged) {
		deliver_log(LOG_INFO, "junk: %s; implicit keep Junk",
			    v.scan_tagged ? "scan tag" : "rspamd spam");
	}
	return 0;
}

/* is_ours - a field name the Sieve view reserves */
static bool is_ours(const struct hm_hfield *f)
{
	return hm_header_name_is(f, DELIVER_JUNK_HDR) ||
	       hm_header_name_is(f, DELIVER_JUNK_HDR_SENDER);
}

char *deliver_junk_sieve_view(const char *data, size_t len, size_t *len_r)
{
	char sender[HM_JUNKLIST_ADDR_MAX + 1];
	/* secure_getenv: a setuid/setgid run trusts no caller's environment */
	const char *verdict = secure_getenv(DELIVER_JUNK_ENV);
	const char *s = secure_getenv(DELIVER_JUNK_ENV_SENDER);
	const char *eol = "\n";
	struct hm_header *h = NULL;
	size_t cap, off = 0, pos = 0;
	char *out;
	int w;

	/* only the three words and a normalised address get through: the
	 * environment is ours, but it is copied into header text */
	if (verdict == NULL || (strcmp(verdict, "blocked") != 0 &&
				strcmp(verdict, "trusted") != 0))
		verdict = "none";
	if (s == NULL || hm_junk_addr_normalize(s, strlen(s), 1, sender, sizeof sender) < 0)
		sender[0] = '\0';
	if (hm_header_parse(data, len, NULL, &h) < 0)
		return NULL;
	for (size_t i = 0; i < len && data[i] != '\n'; i++)
		if (data[i] == '\r' && i + 1 < len && data[i + 1] == '\n') {
			eol = "\r\n";
			break;
		}
	if (!hm_add_ok(len, 2 * sizeof(DELIVER_JUNK_HDR_SENDER) + sizeof sender + 16, &cap)) {
		hm_header_free(&h);
		errno = EOVERFLOW;
		return NULL;
	}
	out = malloc(cap);
	if (out == NULL) {
		hm_header_free(&h);
		return NULL;
	}
	w = snprintf(out, cap, "%s: %s%s", DELIVER_JUNK_HDR, verdict, eol);
	off = (size_t)w;
	if (sender[0] != '\0') {
		w = snprintf(out + off, cap - off, "%s: %s%s", DELIVER_JUNK_HDR_SENDER,
			     sender, eol);
		off += (size_t)w;
	}
	/* copy the message, leaving out the fields we reserve */
	for (size_t i = 0; i < h->count; i++) {
		const struct hm_hfield *f = &h->fields[i];
		if (!is_ours(f) || f->offset < pos || f->offset + f->length > len)
			continue;
		memcpy(out + off, data + pos, f->offset - pos);
		off += f->offset - pos;
		pos = f->offset + f->length;
	}
	memcpy(out + off, data + pos, len - pos);
	off += len - pos;
	hm_header_free(&h);
	*len_r = off;
	return out;
}
