/* deliver_filter.c — where the message goes: the junk lists, then Sieve.
 *
 * What for: THE filtering seam of homemail-deliver (see deliver.h).  Runs,
 *   in order and sharing one result (Pigeonhole's sieve_before/sieve_after):
 *   the admin's scripts in /etc/homemail/sieve/before.d/NAME.sieve (sorted),
 *   the user's active script (~/.dovecot.sieve, or --sieve FILE; none with
 *   --no-sieve), the admin's scripts in after.d (not when the user's script
 *   exists but does not compile, as Pigeonhole); then carries the actions
 *   out: stores through deliver_store(), redirects and vacation replies
 *   through /usr/sbin/sendmail, rejects through deliver_reject().
 * Relies on: the Sieve engine (deliver-helper/sieve/sieve.h), sv_state for
 *   the vacation and duplicate memory (files in the Maildir root, flock'ed),
 *   hm_maildir for folder names (UTF-8, taken literally as Pigeonhole does).
 * How it fails: never loses mail, never repeats a side effect (see
 *   run_actions and docs/deliver.md "Sieve actions").  A script that does
 *   not compile is skipped with a log line; a runtime error, exceeded limit
 *   or a fileinto name Maildir++ cannot hold leaves only the keep in INBOX
 *   without the script's flags; a store that fails takes this run's copies
 *   back and keeps in INBOX; a redirect that sendmail does not take defers
 *   (75, as dovecot-lda); a vacation reply that fails is only logged.  The
 *   main flow stores into INBOX itself when nothing was stored, discarded,
 *   rejected or deferred.
 */
#define _GNU_SOURCE             /* pipe2, strcasestr */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>


#include "deliver.h"
#include "deliver_junk.h"
#include "hm_address.h"
#include "hm_buf.h"
#include "hm_digest.h"
#include "hm_maildir.h"
#include "hm_util.h"
#include "sieve/sieve.h"
#include "sieve/sv_state.h"

#define SIEVE_GLOBAL_BASE "/etc/homemail/sieve"
#define MAX_GLOBAL_SCRIPTS 32
#define MAX_SIEVE_MESSAGE (64ull * 1024 * 1024)
#define REDIRECT_MARK "X-Sieve-Redirected-From"
#define VACATION_DB "homemail-vacation.db"
#define DUPLICATE_DB "homemail-duplicate.db"
#define SENDMAIL_TIMEOUT 120
/* how long a sent redirect is remembered, so a retry of the same delivery
 * does not send it again (Pigeonhole's sieve_redirect_duplicate_period) */
#define REDIRECT_DUPLICATE_PERIOD (12 * 3600)

struct glue {
	struct deliver_ctx *ctx;
	time_t now;
	const char *raw;        /* the spooled message (bounded), for redirect_key */
	size_t raw_len;
	size_t msg_start;       /* its first byte after the delivery trace fields */
	char state_vac[4096];
	char state_dup[4096];
};

/* clean - a log-safe copy of untrusted text */
static const char *clean(char *buf, size_t size, const char *s)
{
	hm_log_clean(buf, size, s ? s : "", s ? strlen(s) : 0);
	return buf;
}

/* log_multi - log each line of an engine message */
static void log_multi(int prio, const char *what, const char *msg)
{
	const char *p = msg ? msg : "";
	for (int n = 0; *p && n < 10; n++) {
		size_t l = strcspn(p, "\n");
		char c[600];
		hm_log_clean(c, sizeof c, p, l);
		deliver_log(prio, "sieve: %s: %s", what, c);
		p += l;
		if (*p == '\n')
			p++;
	}
}

/* global_dir - the admin's directory for before.d / after.d / global */
static const char *global_base(void)
{
	/* tests point this elsewhere; as the user may run us by hand anyway,
	 * an override gives no power the user does not already have -- unless
	 * we run setuid/setgid: secure_getenv then ignores it (docs/deliver.md) */
	const char *e = secure_getenv("HOMEMAIL_SIEVE_GLOBAL_BASE");
	return e && *e == '/' ? e : SIEVE_GLOBAL_BASE;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* list_dir - sorted paths of dir/ *.sieve (at most MAX_GLOBAL_SCRIPTS) */
static size_t list_dir(const char *dir, char **out)
{
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL && n < MAX_GLOBAL_SCRIPTS) {
		size_t l = strlen(de->d_name);
		if (de->d_name[0] == '.' || l < 7 || strcmp(de->d_name + l - 6, ".sieve") != 0)
			continue;
		size_t pl = strlen(dir) + l + 2;
		out[n] = malloc(pl);
		if (!out[n])
			break;
		snprintf(out[n], pl, "%s/%s", dir, de->d_name);
		n++;
	}
	closedir(d);
	qsort(out, n, sizeof *out, cmp_str);
	return n;
}

/* compile_one - compile path; NULL (logged) when it cannot be used */
static struct sieve_script *compile_one(const char *path, const char *personal,
					const char *global, bool user_script)
{
	struct sieve_compile_env env = { .personal_dir = personal, .global_dir = global };
	struct stat st;
	if (stat(path, &st) < 0) {
		if (errno != ENOENT || !user_script) {
			char c[300];
			deliver_log(LOG_WARNING, "sieve: cannot use %s: %s",
				    clean(c, sizeof c, path), strerror(errno));
		}
		return NULL;
	}
	char *err = NULL;
	struct sieve_script *s = sieve_compile(path, &env, &err);
	if (!s) {
		char c[300];
		deliver_log(LOG_ERR, "sieve: script %s does not compile; ignoring it "
			    "(implicit keep)", clean(c, sizeof c, path));
		log_multi(LOG_ERR, "compile error", err);
		free(err);
	}
	return s;
}

/* read_message - the spooled message into memory (bounded) */
static char *read_message(struct deliver_ctx *ctx, size_t *len_r)
{
	unsigned long long size = ctx->msg_size;
	if (size > MAX_SIEVE_MESSAGE)
		size = MAX_SIEVE_MESSAGE;
	char *buf = malloc((size_t)size + 1);
	if (!buf)
		return NULL;
	size_t got = 0;
	while (got < size) {
		ssize_t r = pread(ctx->msg_fd, buf + got, (size_t)size - got, (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	buf[got] = 0;
	*len_r = got;
	return buf;
}

/* message_start - offset in the spool of the first header field that is
 * not a delivery trace field (Return-Path, Envelope-to, Delivery-date,
 * Delivered-To at the top): the message as the MTA received it */
static size_t message_start(const struct deliver_ctx *ctx)
{
	if (!ctx->hdr)
		return 0;
	size_t i = 0;
	for (; i < ctx->hdr->count; i++) {
		const struct hm_hfield *f = &ctx->hdr->fields[i];
		if (!hm_header_name_is(f, "Return-Path") && !hm_header_name_is(f, "Envelope-to") &&
		    !hm_header_name_is(f, "Delivery-date") && !hm_header_name_is(f, "Delivered-To"))
			return f->offset;
	}
	return ctx->body_offset;
}

/* normal_folder - a fileinto name as Dovecot reads it (Pigeonhole 0.5.19):
 * UTF-8 taken literally (a name that looks like modified UTF-7, such as
 * "Entw&APw-rfe", is that very name, stored as Entw&-APw-rfe on disk), and
 * "inbox" in any case as the first level is INBOX (RFC 3501 5.1:
 * "inbox.Sub" is INBOX.Sub).  Returns malloc'd name. */
static char *normal_folder(const char *name)
{
	char *n = strdup(name);
	if (n && strncasecmp(n, "INBOX", 5) == 0 && (n[5] == '\0' || n[5] == '.'))
		memcpy(n, "INBOX", 5);
	return n;
}

/* keep_folder - where keep and the implicit keep go: -m / junk, else INBOX */
static const char *keep_folder(struct deliver_ctx *ctx)
{
	return ctx->mailbox ? ctx->mailbox : "INBOX";
}

/* ---- callbacks for the engine --------------------------------------- */

static int cb_mailbox_exists(void *vctx, const char *name)
{
	struct glue *g = vctx;
	char *n = normal_folder(name);
	if (!n)
		return -1;
	char dir[1024];
	int ok = hm_maildir_folder_dir(n, dir, sizeof dir);
	free(n);
	if (ok < 0)
		return 0;
	if (strcmp(dir, ".") == 0)
		return 1;
	char path[4096];
	if (hm_snprintf(path, sizeof path, "%s/%s", g->ctx->maildir, dir) < 0)
		return 0;
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int cb_duplicate(void *vctx, const char *id, size_t idlen)
{
	struct glue *g = vctx;
	int r = sv_state_seen(g->state_dup, id, idlen, g->now);
	if (r < 0) {
		deliver_log(LOG_WARNING, "sieve: duplicate state %s unusable (%s): "
			    "treating the message as new", g->state_dup, strerror(errno));
		return 0;
	}
	return r;
}

/* ---- sending (redirect, vacation) ------------------------------------- */

/* sendmail_argv - the submission command: /usr/sbin/sendmail, or the
 * space separated HOMEMAIL_SENDMAIL (tests: a private Exim); never the
 * latter in a setuid/setgid run (secure_getenv) */
static int sendmail_argv(char **argv, size_t max, char *store, size_t storesz)
{
	const char *cmd = secure_getenv("HOMEMAIL_SENDMAIL");   /* ignored when setuid */
	if (!cmd || *cmd != '/')
		cmd = "/usr/sbin/sendmail";
	if (hm_strlcpy(store, cmd, storesz) < 0)
		return -1;
	size_t n = 0;
	char *save = NULL;
	for (char *w = strtok_r(store, " ", &save); w && n + 1 < max; w = strtok_r(NULL, " ", &save))
		argv[n++] = w;
	argv[n] = NULL;
	return (int)n;
}

/* run_sendmail - pipe head + (optionally) the spooled message into
 * "sendmail -oi -f FROM -- TO".  Returns 0 when sendmail accepted it. */
static int run_sendmail(struct deliver_ctx *ctx, const char *from, const char *to,
			const char *head, size_t headlen, bool with_message)
{
	char *argv[40];
	char store[1024];
	int n = sendmail_argv(argv, 30, store, sizeof store);
	if (n <= 0)
		return -1;
	argv[n++] = "-oi";
	argv[n++] = "-f";
	argv[n++] = (char *)(from && *from ? from : "<>");
	argv[n++] = "--";
	argv[n++] = (char *)to;
	argv[n] = NULL;
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -1;
	pid_t pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return -1;
	}
	if (pid == 0) {
		if (dup2(pfd[0], 0) < 0)
			_exit(75);
		int devnull = open("/dev/null", O_WRONLY);
		if (devnull >= 0) {
			dup2(devnull, 1);
			close(devnull);
		}
		execv(argv[0], argv);
		_exit(75);
	}
	close(pfd[0]);
	void (*old)(int) = signal(SIGPIPE, SIG_IGN);
	int ok = hm_write_full(pfd[1], head, headlen) == 0;
	if (ok && with_message) {
		char buf[65536];
		off_t off = 0;
		for (;;) {
			ssize_t r = pread(ctx->msg_fd, buf, sizeof buf, off);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0) {
				ok = r == 0;
				break;
			}
			if (hm_write_full(pfd[1], buf, (size_t)r) < 0) {
				ok = 0;
				break;
			}
			off += r;
		}
	}
	close(pfd[1]);
	signal(SIGPIPE, old);
	int status = 0;
	time_t start = time(NULL);
	for (;;) {
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			break;
		if (w < 0 && errno != EINTR) {
			ok = 0;
			break;
		}
		if (time(NULL) - start > SENDMAIL_TIMEOUT) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			ok = 0;
			break;
		}
		usleep(2000);
	}
	return ok && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* redirect_loop - this message already went through a redirect of ours
 * for this recipient (the marker header we add names the recipient) */
static bool redirect_loop(struct deliver_ctx *ctx)
{
	if (!ctx->hdr)
		return false;
	for (size_t it = 0; hm_header_next(ctx->hdr, REDIRECT_MARK, &it) != NULL;) {
		const struct hm_hfield *f = &ctx->hdr->fields[it - 1];
		if (strcasestr(f->value, ctx->recipient))
			return true;
	}
	return false;
}

/* redirect_key - the duplicate-store key of "this message was redirected
 * to this address for this recipient": a SHA-256 of the message as it came
 * from the MTA (from its first field that is not a delivery trace field:
 * Exim writes a new Delivery-date on each attempt), the envelope and the
 * target, so two different messages never share a key (a Message-ID
 * alone could: it may be missing or reused). */
static void redirect_key(struct glue *g, const char *to, unsigned char out[32])
{
	struct deliver_ctx *ctx = g->ctx;
	struct hm_buf pre;
	hm_buf_init(&pre, 1 << 16);
	hm_buf_puts(&pre, "redirect");
	hm_buf_putc(&pre, '\0');
	hm_buf_puts(&pre, ctx->sender);
	hm_buf_putc(&pre, '\0');
	hm_buf_puts(&pre, ctx->recipient);
	hm_buf_putc(&pre, '\0');
	hm_buf_puts(&pre, to);
	hm_buf_putc(&pre, '\0');
	hm_buf_printf(&pre, "%llu", ctx->msg_size_received);
	size_t from = g->msg_start < g->raw_len ? g->msg_start : g->raw_len;
	hm_sha256(hm_buf_cstr(&pre), pre.len, g->raw + from, g->raw_len - from, out);
	hm_buf_free(&pre);
}

#define REDIRECT_LOOP (-2)

/* do_redirect - hand the message to sendmail for `to`, once: 0 sent now or
 * by an earlier attempt (recorded), REDIRECT_LOOP refused (keep instead),
 * -1 sendmail did not take it (defer) */
static int do_redirect(struct glue *g, const char *to)
{
	struct deliver_ctx *ctx = g->ctx;
	char c1[300], c2[300];
	if (redirect_loop(ctx)) {
		deliver_log(LOG_WARNING, "sieve: redirect to %s refused: the message was already "
			    "redirected from %s (loop); keeping it", clean(c1, sizeof c1, to),
			    clean(c2, sizeof c2, ctx->recipient));
		return REDIRECT_LOOP;
	}
	unsigned char key[32];
	redirect_key(g, to, key);
	int seen = sv_state_seen(g->state_dup, (const char *)key, sizeof key, g->now);
	if (seen > 0) {
		deliver_log(LOG_INFO, "sieve: redirect to %s already done by an earlier attempt "
			    "for this message; not sent again", clean(c1, sizeof c1, to));
		return 0;
	}
	if (seen < 0)
		deliver_log(LOG_WARNING, "sieve: duplicate state %s unusable (%s)", g->state_dup,
			    strerror(errno));
	/* `to` is the engine's RFC 5321 form (a local part that is not a
	 * dot-atom is quoted there, so the CLI prints what sieve-test prints);
	 * it goes to sendmail as one argument after "--", never re-quoted */
	char head[1400];
	if (hm_snprintf(head, sizeof head, "%s: <%s>\n", REDIRECT_MARK, ctx->recipient) < 0)
		return -1;
	if (!ctx->hdr || !hm_header_get(ctx->hdr, "Message-ID")) {
		/* a message handed on without a Message-ID gets one (RFC 5322
		 * 3.6.4; Pigeonhole does the same), in the recipient's domain */
		unsigned char rnd[12];
		char hex[2 * sizeof rnd + 1];
		if (hm_random_bytes(rnd, sizeof rnd) < 0)
			return -1;
		for (size_t i = 0; i < sizeof rnd; i++)
			snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
		const char *dom = strrchr(ctx->recipient, '@');
		size_t hl = strlen(head);
		if (hm_snprintf(head + hl, sizeof head - hl, "Message-ID: <redirect.%lld.%s%s>\n",
				(long long)g->now, hex, dom ? dom : "@localhost") < 0)
			return -1;
	}
	if (run_sendmail(ctx, ctx->sender, to, head, strlen(head), true) < 0) {
		deliver_log(LOG_ERR, "sieve: redirect to %s failed (sendmail)",
			    clean(c1, sizeof c1, to));
		return -1;
	}
	/* recorded at once: whatever fails later, a retry must not send it again */
	if (sv_state_mark(g->state_dup, (const char *)key, sizeof key,
			  g->now + REDIRECT_DUPLICATE_PERIOD, g->now) < 0)
		deliver_log(LOG_WARNING, "sieve: cannot record the redirect in %s: %s",
			    g->state_dup, strerror(errno));
	deliver_log(LOG_INFO, "sieve: redirected to %s", clean(c1, sizeof c1, to));
	return 0;
}

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

/* header_value_clean - a header value that cannot break the header */
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

static int do_vacation(struct glue *g, const struct sieve_action *a)
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
	int rc = run_sendmail(ctx, "<>", a->vac_to, hm_buf_cstr(&m), m.len, false);
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

/* action_folder - the folder a store action names: keep and the implicit
 * keep go to the keep folder (-m / junk, else INBOX); fileinto "inbox" in
 * any case is INBOX (RFC 3501 5.1).  Returns malloc'd UTF-8 name. */
static char *action_folder(struct deliver_ctx *ctx, const struct sieve_action *a)
{
	if (a->implicit || strcasecmp(a->target, "INBOX") == 0)
		return strdup(keep_folder(ctx));
	return normal_folder(a->target);
}

/* keep_only - what a run-time error leaves (RFC 5228 2.10.6, as Pigeonhole):
 * one copy in the keep folder without any of the script's flags, nothing
 * else; --flags still apply (they are not the script's).  True if stored. */
static bool keep_only(struct deliver_ctx *ctx)
{
	int rc = deliver_store(ctx, keep_folder(ctx), ctx->keep_flags, ctx->n_keep_flags);
	if ((rc == DELIVER_EFOLDER || rc == DELIVER_ETEMP) && strcasecmp(keep_folder(ctx), "INBOX") != 0)
		rc = deliver_store(ctx, "INBOX", ctx->keep_flags, ctx->n_keep_flags);
	return rc == 0;
}

/* store_action - one keep/fileinto.  Returns deliver_store's code; a keep
 * folder that is refused or fails (-m, junk) falls back to INBOX, as
 * dovecot-lda does for -m. */
static int store_action(struct deliver_ctx *ctx, const struct sieve_action *a)
{
	char c1[300];
	char *folder = action_folder(ctx, a);
	if (!folder)
		return DELIVER_ETEMP;
	size_t nfl = 0;
	while (a->flags && a->flags[nfl])
		nfl++;
	const char *const *fl = (const char *const *)a->flags;
	if (a->implicit && nfl == 0) {
		/* --flags apply to the implicit keep, as without a script */
		fl = ctx->keep_flags;
		nfl = ctx->n_keep_flags;
	}
	int rc = deliver_store(ctx, folder, fl, nfl);
	bool is_keep = a->implicit || strcasecmp(a->target, "INBOX") == 0;
	if (is_keep && (rc == DELIVER_EFOLDER || rc == DELIVER_ETEMP) &&
	    strcasecmp(folder, "INBOX") != 0) {
		deliver_log(LOG_WARNING, "sieve: cannot keep in '%s' (%s); using INBOX",
			    clean(c1, sizeof c1, folder),
			    rc == DELIVER_EFOLDER ? "invalid folder name" : "store failed");
		rc = deliver_store(ctx, "INBOX", fl, nfl);
	}
	free(folder);
	return rc;
}

/* bad_store_target - the first fileinto whose folder name Maildir++ cannot
 * hold (hm_maildir_folder_dir), or NULL.  Checked before anything is done:
 * such a name is a run-time error in Pigeonhole, which then carries out no
 * action of the script at all. */
static const struct sieve_action *bad_store_target(struct deliver_ctx *ctx,
						   const struct sieve_result *r)
{
	for (size_t i = 0; i < r->nactions; i++) {
		const struct sieve_action *a = &r->actions[i];
		if (a->type != SIEVE_ACT_STORE || a->implicit || strcasecmp(a->target, "INBOX") == 0)
			continue;       /* the keep folder falls back to INBOX instead */
		char dir[HM_MAILDIR_NAME_MAX];
		char *f = action_folder(ctx, a);
		int ok = f ? hm_maildir_folder_dir(f, dir, sizeof dir) : -1;
		free(f);
		if (ok < 0)
			return a;
	}
	return NULL;
}

/* run_actions - carry out the result, each action once and nothing else.
 *
 * Order, so that Exim's retry after a 75 never repeats a side effect and
 * never finds a copy of an earlier attempt:
 *   1. every store (keep, fileinto) is linked; if one fails (also over
 *      quota), the copies of this run are taken back and only the keep is
 *      tried (as Pigeonhole rolls back its transaction and falls back to
 *      the implicit keep); if that fails too the main flow defers (or
 *      rejects, quota_full = reject), and nothing has been sent;
 *   2. then what leaves the machine, in script order: redirects (each one
 *      recorded in the duplicate store right after sendmail took it, and
 *      skipped when already recorded: an earlier attempt sent it) and
 *      vacation replies (recorded in the vacation store);
 *   3. a redirect sendmail does not take defers the delivery (75), as
 *      dovecot-lda does; the stores of this run are taken back first.
 * The implicit keep is in the result when the engine kept it; when there is
 * no store at all (redirect, discard), the message is deliberately not kept. */
static void run_actions(struct glue *g, const struct sieve_result *r)
{
	struct deliver_ctx *ctx = g->ctx;
	char c1[300];
	bool any_store = false, rejected = false, keep_after = false;

	for (size_t i = 0; i < r->nactions; i++) {
		const struct sieve_action *a = &r->actions[i];
		if (a->type != SIEVE_ACT_STORE)
			continue;
		any_store = true;
		int rc = store_action(ctx, a);
		if (rc == 0)
			continue;
		/* a store failed: nothing of the script takes effect, only the
		 * keep is tried; if it fails too (a full mailbox usually has no
		 * room for it either) the main flow defers, or rejects by
		 * quota_full */
		(void)deliver_unstore_all(ctx);
		deliver_log(LOG_ERR, "sieve: storing into '%s' failed (%s); no action of the script "
			    "is carried out, implicit keep", clean(c1, sizeof c1, a->target),
			    rc == DELIVER_EQUOTA ? "over quota" : "error");
		(void)keep_only(ctx);
		return;
	}
	for (size_t i = 0; i < r->nactions; i++) {
		const struct sieve_action *a = &r->actions[i];
		switch (a->type) {
		case SIEVE_ACT_STORE:
			break;
		case SIEVE_ACT_REDIRECT: {
			int rc = do_redirect(g, a->target);
			if (rc == REDIRECT_LOOP)
				keep_after = true;
			else if (rc < 0) {
				char why[400];
				hm_snprintf(why, sizeof why, "redirect to %s failed (sendmail); "
					    "deferred", clean(c1, sizeof c1, a->target));
				deliver_defer(ctx, why);
				return;
			}
			break;
		}
		case SIEVE_ACT_REJECT:
		case SIEVE_ACT_EREJECT:
			rejected = true;
			deliver_reject(ctx, a->target);
			deliver_log(LOG_INFO, "sieve: rejected");
			break;
		case SIEVE_ACT_VACATION:
			(void)do_vacation(g, a);
			break;
		case SIEVE_ACT_DISCARD:
			break;
		}
	}
	if (keep_after && ctx->n_stored == 0) {
		/* a redirect refused as a loop keeps the message instead */
		struct sieve_action k = { .type = SIEVE_ACT_STORE, .target = "INBOX", .implicit = true };
		if (store_action(ctx, &k) != 0 && !ctx->quota_hit)
			deliver_defer(ctx, "could not keep the message after a refused redirect");
		return;
	}
	if (!any_store && !rejected) {
		/* the script cancelled the implicit keep (redirect, discard) */
		deliver_discard(ctx);
		deliver_log(LOG_INFO, "sieve: not kept (implicit keep cancelled)");
	}
}

/* deliver_filter - junk lists, then the Sieve scripts (see the top) */
int deliver_filter(struct deliver_ctx *ctx)
{
	(void)deliver_junk_route(ctx);  /* junk lists: may point the implicit keep at Junk */
	struct glue g = { .ctx = ctx, .now = time(NULL) };
	struct sieve_script *scripts[2 * MAX_GLOBAL_SCRIPTS + 1];
	size_t ns = 0;
	char globaldir[1024], beforedir[1024], afterdir[1024];
	const char *base = global_base();
	hm_snprintf(globaldir, sizeof globaldir, "%s/global", base);
	hm_snprintf(beforedir, sizeof beforedir, "%s/before.d", base);
	hm_snprintf(afterdir, sizeof afterdir, "%s/after.d", base);
	const char *personal = ctx->sieve_dir && *ctx->sieve_dir ? ctx->sieve_dir : NULL;
	if (!ctx->no_sieve) {
		char *paths[MAX_GLOBAL_SCRIPTS];
		size_t np = list_dir(beforedir, paths);
		for (size_t i = 0; i < np; i++) {
			struct sieve_script *s = compile_one(paths[i], globaldir, globaldir, false);
			if (s)
				scripts[ns++] = s;
			free(paths[i]);
		}
		bool user_failed = false;
		if (ctx->sieve_path && *ctx->sieve_path) {
			struct sieve_script *s = compile_one(ctx->sieve_path, personal, globaldir, true);
			if (s)
				scripts[ns++] = s;
			else
				user_failed = access(ctx->sieve_path, F_OK) == 0 || errno != ENOENT;
		}
		/* a user script that exists but cannot be used ends the sequence:
		 * the after.d scripts do not run (as Pigeonhole's LDA, checked
		 * with dovecot-lda 0.5.19 and sieve_after) */
		np = user_failed ? 0 : list_dir(afterdir, paths);
		for (size_t i = 0; i < np; i++) {
			struct sieve_script *s = compile_one(paths[i], globaldir, globaldir, false);
			if (s)
				scripts[ns++] = s;
			free(paths[i]);
		}
	}
	if (ns == 0) {
		/* no script: the stock implicit keep (-m / junk folder, else INBOX) */
		if (ctx->mailbox != NULL) {
			int rc = deliver_store(ctx, ctx->mailbox, ctx->keep_flags, ctx->n_keep_flags);
			if (rc == 0 || rc == DELIVER_EQUOTA)
				return 0;
		}
		(void)deliver_store(ctx, "INBOX", ctx->keep_flags, ctx->n_keep_flags);
		return 0;
	}
	hm_snprintf(g.state_vac, sizeof g.state_vac, "%s/%s", ctx->maildir, VACATION_DB);
	hm_snprintf(g.state_dup, sizeof g.state_dup, "%s/%s", ctx->maildir, DUPLICATE_DB);
	size_t len = 0;
	char *raw = read_message(ctx, &len), *data = raw;
	g.raw = raw;
	g.raw_len = len;
	g.msg_start = message_start(ctx);
	size_t vlen;  /* junk verdict as X-Homemail-Junk fields in the Sieve view (docs/junk.md) */
	char *view = data ? deliver_junk_sieve_view(data, len, &vlen) : NULL;
	if (view) { data = view; len = vlen; }
	int ret = 0;
	if (!data) {
		deliver_log(LOG_ERR, "sieve: cannot read the spooled message: %s; implicit keep",
			    strerror(errno));
		ret = -1;
		goto out;
	}
	struct tm tm;
	localtime_r(&g.now, &tm);
	struct sieve_message m = {
		.data = data, .len = len, .size = ctx->msg_size_received,
		.env_from = ctx->sender, .env_to = ctx->recipient,
		.env_orig_to = ctx->orig_recipient && *ctx->orig_recipient ?
			       ctx->orig_recipient : NULL,
		.now = g.now, .now_gmtoff = (int)tm.tm_gmtoff,
	};
	struct sieve_callbacks cb = {
		.ctx = &g, .mailbox_exists = cb_mailbox_exists, .duplicate_check = cb_duplicate,
	};
	struct sieve_result *r = sieve_execute(scripts, ns, &m, &cb);
	if (!r) {
		deliver_log(LOG_ERR, "sieve: out of memory; implicit keep");
		ret = -1;
	} else {
		for (size_t i = 0; r->warnings && r->warnings[i] && i < 5; i++)
			log_multi(LOG_NOTICE, "warning", r->warnings[i]);
		/* a fileinto name the mailbox store refuses is a run-time error of
		 * the script that made it: the engine turns the result into its
		 * error result (sieve_result_set_error), the one decision path */
		const struct sieve_action *bad;
		while ((bad = bad_store_target(ctx, r)) != NULL) {   /* drops bad's script: ends */
			char c1[300], msg[400];
			hm_snprintf(msg, sizeof msg, "line %d: fileinto '%s': invalid folder name",
				    bad->line, clean(c1, sizeof c1, bad->target));
			sieve_result_set_error(r, bad, msg);
		}
		if (r->error)
			/* the error result: the actions of the scripts that completed
			 * and the implicit keep without the failed script's flags
			 * (RFC 5228 2.10.6, as Pigeonhole) */
			log_multi(LOG_ERR, "runtime error, implicit keep", r->errmsg);
		run_actions(&g, r);
		/* remember tested ids only once the message is safely placed */
		if (!ctx->deferred && (ctx->n_stored > 0 || ctx->discarded || ctx->reject_reason))
			for (size_t i = 0; i < r->ndups; i++)
				if (sv_state_mark(g.state_dup, r->dups[i].id, strlen(r->dups[i].id),
						  g.now + (time_t)r->dups[i].seconds, g.now) < 0)
					deliver_log(LOG_WARNING, "sieve: cannot record duplicate id: %s",
						    strerror(errno));
		sieve_result_free(&r);
	}
out:
	if (data != raw)
		free(data);
	free(raw);
	for (size_t i = 0; i < ns; i++)
		sieve_script_free(&scripts[i]);
	return ret;
}
