/* deliver_redirect.c — Sieve redirect for homemail-deliver, and the
 * sendmail call that redirect and vacation share.
 *
 * What for: hands the spooled message to /usr/sbin/sendmail (or
 *   HOMEMAIL_SENDMAIL, never in a setuid run) for a redirect target, once:
 *   each sent redirect is recorded in the duplicate store for 12 hours,
 *   keyed by the message bytes, envelope and target, so Exim's retry of the
 *   same delivery never sends it again (Pigeonhole's
 *   sieve_redirect_duplicate_period); a marker header stops loops (README
 *   deviation row 4); a message without Message-ID gets one.
 * Relies on: sv_state (the store), hm_digest (SHA-256), fork/execv.
 * How it fails: a sendmail that fails, hangs past SENDMAIL_TIMEOUT or
 *   cannot be started is -1: the caller defers the delivery (75).
 */
#define _GNU_SOURCE             /* pipe2, strcasestr */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "deliver_sieve.h"
#include "hm_buf.h"
#include "hm_digest.h"
#include "hm_header.h"
#include "sieve/sv_state.h"

#define REDIRECT_MARK "X-Sieve-Redirected-From"
#define SENDMAIL_TIMEOUT 120
/* how long a sent redirect is remembered, so a retry of the same delivery
 * does not send it again (Pigeonhole's sieve_redirect_duplicate_period) */
#define REDIRECT_DUPLICATE_PERIOD (12 * 3600)

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

/* deliver_sendmail - see deliver_sieve.h */
int deliver_sendmail(struct deliver_ctx *ctx, const char *from, const char *to,
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

/* marks - a marker field's value is exactly this recipient, in angle
 * brackets (as we write it) or bare (as Pigeonhole does), blanks around it
 * allowed, case-insensitive: "<ana@x>" must not match "<mariana@x>" */
static bool marks(const char *v, const char *rcpt)
{
	size_t rl = strlen(rcpt);
	while (*v == ' ' || *v == '\t')
		v++;
	bool angle = *v == '<';
	v += angle;
	if (strncasecmp(v, rcpt, rl) != 0)
		return false;
	v += rl;
	if (angle && *v++ != '>')
		return false;
	while (*v == ' ' || *v == '\t')
		v++;
	return *v == '\0';
}

/* redirect_loop - this message already went through a redirect of ours
 * for this recipient (the marker header we add names the recipient) */
static bool redirect_loop(struct deliver_ctx *ctx)
{
	if (!ctx->hdr)
		return false;
	for (size_t it = 0; hm_header_next(ctx->hdr, REDIRECT_MARK, &it) != NULL;) {
		const struct hm_hfield *f = &ctx->hdr->fields[it - 1];
		if (marks(f->value, ctx->recipient))
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
static void redirect_key(struct glue *g, const char *to, unsigned char dst[32])
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
	hm_sha256(hm_buf_cstr(&pre), pre.len, g->raw + from, g->raw_len - from, dst);
	hm_buf_free(&pre);
}

/* deliver_redirect - see deliver_sieve.h */
int deliver_redirect(struct glue *g, const char *to)
{
	struct deliver_ctx *ctx = g->ctx;
	char c1[300], c2[300];
	if (redirect_loop(ctx)) {
		deliver_log(LOG_WARNING, "sieve: redirect to %s refused: the message was already "
			    "redirected from %s (loop); keeping it", clean(c1, sizeof c1, to),
			    clean(c2, sizeof c2, ctx->recipient));
		return DELIVER_REDIRECT_LOOP;
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
	if (deliver_sendmail(ctx, ctx->sender, to, head, strlen(head), true) < 0) {
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
