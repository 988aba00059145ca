/* deliver_main.c — homemail-deliver: the LDA Exim's pipe transport runs.
 *
 * NAME
 *   homemail-deliver - deliver one message from stdin into a user's Maildir
 *
 * SYNOPSIS
 *   homemail-deliver [-d USER] [-f SENDER] [-a ORIGINAL_RECIPIENT] [-r RECIPIENT]
 *                    [-m MAILBOX] [-e] [-p FILE] [--maildir DIR]
 *                    [--sieve FILE | --no-sieve] [--config FILE] [--flags LIST] < message
 *
 * DESCRIPTION
 *   A drop-in for dovecot-lda in the course notes' pipe transport: options,
 *   exit codes and the stored bytes match it (see deliver.h for the flow and
 *   docs/deliver.md for the configuration).  -c FILE (Dovecot's config),
 *   -o KEY=VALUE and -k are accepted and ignored so existing command lines
 *   keep working.
 *
 * DIAGNOSTICS
 *   Exit 0 delivered or deliberately discarded; 64 bad usage or bad envelope
 *   value; 67 unknown user; 75 anything transient (Exim retries: userdb
 *   unreachable, I/O error, full disk, over quota by default); 77 rejected
 *   (Sieve reject, forwarding loop, over quota with quota_full = reject).
 *   One syslog line (mail facility) per message; on a non-zero exit a short
 *   reason on stderr, which Exim's log_output records.
 *
 * Relies on: lib/ hm_msgin, hm_header, hm_maildir, hm_quota, hm_authmaster.
 * How it fails: never with the message half-visible: it is spooled into
 *   tmp/ first and only hard-linked into new/ or cur/ once complete; every
 *   error before that unlinks the spool and exits 75.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "deliver_int.h"
#include "hm_buf.h"
#include "hm_cli.h"
#include "hm_header.h"
#include "hm_msgin.h"
#include "hm_util.h"

#define DEFAULT_CONF "/etc/homemail/deliver.conf"

struct opts {
	const char *dflag, *from, *orig, *rcpt, *mailbox, *path, *maildir, *sieve, *conf, *flags;
	bool reject_exit, no_sieve;
};

/* outcome - what happened, for the log line and the exit code */
struct outcome {
	int code;
	char reason[512];
};

/* fail - record a failure reason and code; returns code */
static int fail(struct outcome *o, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail(struct outcome *o, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(o->reason, sizeof o->reason, fmt, ap);
	va_end(ap);
	o->code = code;
	return code;
}

static const char USAGE[] =
	"usage: homemail-deliver [-d USER] [-f SENDER] [-a ORIGINAL_RECIPIENT] [-r RECIPIENT]\n"
	"         [-m MAILBOX] [-e] [-p FILE] [--maildir DIR] [--sieve FILE | --no-sieve]\n"
	"         [--config FILE] [--flags \"\\Seen $Keyword ...\"] < message\n"
	"       homemail-deliver --help | --version\n";

static void usage(void)
{
	fputs(USAGE, stderr);
}

/* parse_opts - command line into o; returns 0 or DELIVER_EX_USAGE */
static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "maildir", required_argument, NULL, 'M' },
		{ "sieve", required_argument, NULL, 'S' },
		{ "no-sieve", no_argument, NULL, 'N' },
		{ "config", required_argument, NULL, 'C' },
		{ "flags", required_argument, NULL, 'F' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int c;
	memset(o, 0, sizeof *o);
	opterr = 0;
	while ((c = getopt_long(argc, argv, "d:f:a:r:m:ep:c:o:k", lo, NULL)) != -1) {
		switch (c) {
		case 'd': o->dflag = optarg; break;
		case 'f': o->from = optarg; break;
		case 'a': o->orig = optarg; break;
		case 'r': o->rcpt = optarg; break;
		case 'm': o->mailbox = optarg; break;
		case 'e': o->reject_exit = true; break;
		case 'p': o->path = optarg; break;
		case 'c': case 'o': case 'k': break;   /* dovecot-lda's: accepted, ignored */
		case 'M': o->maildir = optarg; break;
		case 'S': o->sieve = optarg; break;
		case 'N': o->no_sieve = true; break;
		case 'C': o->conf = optarg; break;
		case 'F': o->flags = optarg; break;
		case 'h': fputs(USAGE, stdout); exit(0);
		default:
			fprintf(stderr, "homemail-deliver: unknown option or missing argument\n");
			usage();
			return DELIVER_EX_USAGE;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "homemail-deliver: unexpected argument\n");
		usage();
		return DELIVER_EX_USAGE;
	}
	if (o->sieve && o->no_sieve) {
		fprintf(stderr, "homemail-deliver: --sieve and --no-sieve exclude each other\n");
		return DELIVER_EX_USAGE;
	}
	return 0;
}

/* envelope_value - take an address from opt or env var; strip <>; validate.
 * Returns 0 and *out (malloc'd, may be ""), or -1 when invalid. */
static int envelope_value(const char *opt, const char *envname, char **out)
{
	const char *v = opt ? opt : (envname ? getenv(envname) : NULL);
	*out = NULL;
	if (v == NULL)
		return 0;
	size_t n = strlen(v);
	if (n >= 2 && v[0] == '<' && v[n - 1] == '>') {
		v++;
		n -= 2;
	}
	char *s = strndup(v, n);
	if (s == NULL || !deliver_valid_address(s)) {
		free(s);
		return -1;
	}
	*out = s;
	return 0;
}

/* strip_angle - address value of a header field without <> and blanks */
static void strip_angle(const char *v, char *out, size_t size)
{
	while (*v == ' ' || *v == '\t' || *v == '<')
		v++;
	hm_strlcpy(out, v, size);
	size_t n = strlen(out);
	while (n > 0 && (out[n - 1] == '>' || out[n - 1] == ' ' || out[n - 1] == '\t'))
		out[--n] = '\0';
}

/* is_trace_top - fields an MTA's transport prepends for this delivery */
static bool is_transport_field(const struct hm_hfield *f)
{
	return hm_header_name_is(f, "Return-Path") || hm_header_name_is(f, "Envelope-to") ||
	       hm_header_name_is(f, "Delivery-date") || hm_header_name_is(f, "Delivered-To");
}

/* maildir_from_location - "maildir:PATH[:KEY=VAL...]" -> expanded PATH */
static char *maildir_from_location(const char *loc, const char *user, const char *home)
{
	if (loc == NULL || strncmp(loc, "maildir:", 8) != 0) {
		errno = EINVAL;
		return NULL;
	}
	char *p = strdup(loc + 8);
	if (p == NULL)
		return NULL;
	char *colon = strchr(p, ':');
	if (colon != NULL) {
		/* only Maildir++ layout is written; other layouts are refused */
		if (strstr(colon, ":LAYOUT=") != NULL && strstr(colon, ":LAYOUT=maildir++") == NULL) {
			free(p);
			errno = ENOTSUP;
			return NULL;
		}
		*colon = '\0';
	}
	char *x = deliver_expand_path(p, user, home);
	free(p);
	if (x != NULL && x[0] != '/') {
		free(x);
		errno = EINVAL;
		return NULL;
	}
	return x;
}

/* spool_message - write m's header with add inserted at offset ins, then
 * the body, into the spool; fsync */
static int spool_message(struct deliver_priv *pv, struct hm_msgin *m,
			 size_t ins, const char *add, size_t addlen, unsigned long long *lf_extra)
{
	struct hm_spool *sp = &pv->spool;
	const char *hdr = m->header;
	char buf[65536];
	unsigned long long lfs = 0;
	for (size_t i = 0; i < addlen; i++)
		if (add[i] == '\n')
			lfs++;
	/* the rest of the header and the body bytes already read go out in one
	 * write, straight from the reader's buffer (a small message is done):
	 * the first take after hm_msgin_read_header starts at header_len */
	size_t held;
	(void)hm_msgin_take_buffered(m, &held);
	if (hm_write_full(sp->fd, hdr, ins) < 0 || hm_write_full(sp->fd, add, addlen) < 0 ||
	    hm_write_full(sp->fd, hdr + ins, m->header_len - ins + held) < 0)
		return -1;
	for (;;) {
		ssize_t n = hm_msgin_read(m, buf, sizeof buf);
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		if (hm_write_full(sp->fd, buf, (size_t)n) < 0)
			return -1;
	}
	sp->size = m->bytes + addlen;
	sp->vsize = sp->size + m->lf_count + lfs;
	*lf_extra = lfs;
	return hm_maildir_spool_sync(sp);
}

/* run - the whole delivery; returns the exit code, o->reason when non-zero */
static int run(const struct opts *op, struct outcome *o, struct deliver_ctx *ctx)
{
	struct deliver_conf conf;
	struct deliver_user u;
	struct deliver_priv pv;
	struct hm_msgin m;
	struct hm_header *orig = NULL, *full = NULL;
	char err[512], *sender = NULL, *rcpt = NULL, *origrcpt = NULL, *maildir = NULL;
	char *sieve_path = NULL, *sieve_dir = NULL, *mbox = NULL, midbuf[200], *flagbuf = NULL;
	const char *flagv[40];
	size_t nflags = 0;
	struct hm_buf hb;
	int in_fd = 0, rc;

	memset(&u, 0, sizeof u);
	memset(&pv, 0, sizeof pv);
	pv.md.root_fd = pv.md.tmp_fd = pv.md.new_fd = pv.md.cur_fd = pv.spool.fd = -1;
	hm_msgin_init(&m, -1, 0);
	hm_buf_init(&hb, 0);
	ctx->msg_fd = -1;
	ctx->priv = &pv;

	if (op->conf != NULL && getauxval(AT_SECURE)) {
		/* setuid/setgid (real and effective ids differ): the caller's
		 * --config would be read with our privileges; so are the
		 * HOMEMAIL_* variables (secure_getenv) -- docs/deliver.md */
		fprintf(stderr, "homemail-deliver: running setuid/setgid: --config ignored\n");
		deliver_log(LOG_WARNING, "running setuid/setgid (uid %ld euid %ld): --config ignored",
			    (long)getuid(), (long)geteuid());
	}
	const char *conf_path = op->conf && !getauxval(AT_SECURE) ? op->conf : NULL;
	if (deliver_conf_load(&conf, conf_path ? conf_path : DEFAULT_CONF, conf_path != NULL,
			      err, sizeof err) < 0) {
		rc = fail(o, DELIVER_EX_TEMPFAIL, "configuration: %s", err);
		goto out_noconf;
	}

	/* envelope values: options first, then what Exim's pipe transport sets */
	if (envelope_value(op->from, "SENDER", &sender) < 0) {
		rc = fail(o, DELIVER_EX_USAGE, "invalid envelope sender");
		goto out;
	}
	if (envelope_value(op->rcpt, "RECIPIENT", &rcpt) < 0 ||
	    envelope_value(op->orig, NULL, &origrcpt) < 0) {
		rc = fail(o, DELIVER_EX_USAGE, "invalid recipient address");
		goto out;
	}
	if (rcpt == NULL && getenv("LOCAL_PART") && getenv("DOMAIN")) {
		if (asprintf(&rcpt, "%s@%s", getenv("LOCAL_PART"), getenv("DOMAIN")) < 0) {
			rcpt = NULL;
			rc = fail(o, DELIVER_EX_TEMPFAIL, "out of memory");
			goto out;
		}
		if (!deliver_valid_address(rcpt)) {
			rc = fail(o, DELIVER_EX_USAGE, "invalid LOCAL_PART/DOMAIN");
			goto out;
		}
	}
	if (op->mailbox != NULL) {
		if (op->mailbox[0] == '\0' || strlen(op->mailbox) > 500) {
			rc = fail(o, DELIVER_EX_USAGE, "invalid -m mailbox name");
			goto out;
		}
		for (const unsigned char *p = (const unsigned char *)op->mailbox; *p; p++)
			if (*p < 0x20 || *p == 0x7f) {
				rc = fail(o, DELIVER_EX_USAGE, "invalid -m mailbox name");
				goto out;
			}
	}
	if (op->flags != NULL) {
		/* space-separated IMAP flags / keywords for the implicit keep */
		if (strlen(op->flags) > 2000 || (flagbuf = strdup(op->flags)) == NULL) {
			rc = fail(o, DELIVER_EX_USAGE, "invalid --flags");
			goto out;
		}
		char *save = NULL;
		for (char *t = strtok_r(flagbuf, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
			if (nflags == HM_ARRAY_SIZE(flagv) ||
			    (hm_maildir_flag_letter(t) == 0 && !hm_maildir_keyword_valid(t))) {
				rc = fail(o, DELIVER_EX_USAGE, "invalid --flags");
				goto out;
			}
			flagv[nflags++] = t;
		}
	}
	if (op->dflag != NULL && (op->dflag[0] == '\0' || strlen(op->dflag) > 256)) {
		rc = fail(o, DELIVER_EX_USAGE, "invalid -d user name");
		goto out;
	}

	/* who: userdb / passwd, then become that user before touching anything */
	rc = deliver_user_resolve(&conf, op->dflag, &u, err, sizeof err);
	if (rc != DELIVER_EX_OK) {
		fail(o, rc, "%s", err);
		goto out;
	}
	if (deliver_user_become(&u, err, sizeof err) < 0) {
		rc = fail(o, DELIVER_EX_TEMPFAIL, "%s", err);
		goto out;
	}

	/* where */
	if (op->maildir != NULL) {
		maildir = strdup(op->maildir);
	} else {
		maildir = maildir_from_location(u.mail ? u.mail : conf.mail_location, u.name, u.home);
		if (maildir == NULL) {
			char cl[200];
			const char *loc = u.mail ? u.mail : conf.mail_location;
			hm_log_clean(cl, sizeof cl, loc, strlen(loc));
			rc = fail(o, DELIVER_EX_TEMPFAIL, "unusable mail location \"%s\" for %s", cl, u.name);
			goto out;
		}
	}
	if (maildir == NULL || maildir[0] != '/') {
		rc = fail(o, DELIVER_EX_TEMPFAIL, "Maildir path must be absolute");
		goto out;
	}
	if (!op->no_sieve && op->sieve) {
		sieve_path = strdup(op->sieve);
		sieve_dir = deliver_expand_path(conf.sieve_dir, u.name, u.home);
	} else if (!op->no_sieve) {
		/* the userdb's `sieve`, else the setting, in Pigeonhole's syntax */
		const char *loc = u.sieve && *u.sieve ? u.sieve : conf.sieve;
		char *dir = NULL;
		if (deliver_sieve_location(loc, u.name, u.home, &sieve_path, &dir, err, sizeof err) < 0) {
			char cl[300];
			hm_log_clean(cl, sizeof cl, loc, strlen(loc));
			deliver_log(LOG_ERR, "sieve location \"%s\" of %s (%s): %s; no personal script "
				    "runs (implicit keep)", cl, u.name, u.sieve && *u.sieve ? "userdb" :
				    "deliver.conf", err);
		}
		sieve_dir = dir ? dir : deliver_expand_path(conf.sieve_dir, u.name, u.home);
	}

	if (op->path != NULL) {
		in_fd = open(op->path, O_RDONLY | O_CLOEXEC);
		if (in_fd < 0) {
			rc = fail(o, DELIVER_EX_TEMPFAIL, "open %s: %s", op->path, strerror(errno));
			goto out;
		}
	}
	if (hm_maildir_open(&pv.md, maildir, true) < 0) {
		rc = fail(o, DELIVER_EX_TEMPFAIL, "Maildir %s: %s", maildir, strerror(errno));
		goto out;
	}
	deliver_clean_tmp(pv.md.tmp_fd, maildir, ".");

	/* read and inspect the header */
	hm_msgin_init(&m, in_fd, conf.max_header);
	if (hm_msgin_read_header(&m) < 0) {
		rc = fail(o, DELIVER_EX_TEMPFAIL, "reading the message: %s", strerror(errno));
		goto out;
	}
	struct hm_header_limits lim = { m.header_len ? m.header_len : 1, 0 };
	if (hm_header_parse(m.header, m.header_len, &lim, &orig) < 0) {
		rc = fail(o, DELIVER_EX_TEMPFAIL, "parsing the header: %s", strerror(errno));
		goto out;
	}
	const char *final_rcpt = rcpt ? rcpt : (origrcpt ? origrcpt : u.name);
	char dt[600];
	size_t loops = 0, ours = 0, top = 0;
	bool top_rp = false, top_dt = false;
	for (; top < orig->count && is_transport_field(&orig->fields[top]); top++) {
		if (top == 0 && hm_header_name_is(&orig->fields[0], "Return-Path"))
			top_rp = true;
		strip_angle(orig->fields[top].value, dt, sizeof dt);
		if (hm_header_name_is(&orig->fields[top], "Delivered-To") && strcasecmp(dt, final_rcpt) == 0)
			top_dt = true;
	}
	for (size_t it = 0; hm_header_next(orig, "Delivered-To", &it) != NULL;) {
		strip_angle(orig->fields[it - 1].value, dt, sizeof dt);
		if (strcasecmp(dt, final_rcpt) == 0)
			loops++;
	}
	if (top_dt)
		ours = 1;
	if (loops - ours >= conf.loop_max) {
		char cr[300];
		hm_log_clean(cr, sizeof cr, final_rcpt, strlen(final_rcpt));
		rc = fail(o, DELIVER_EX_NOPERM, "mail forwarding loop for %s", cr);
		goto out;
	}

	/* what we prepend: Return-Path first (or after the MTA's), Delivered-To */
	struct hm_buf add;
	hm_buf_init(&add, 4096);
	size_t ins = 0;
	if (top_rp)
		ins = orig->fields[0].length;
	else if (hm_buf_printf(&add, "Return-Path: <%s>\n", sender ? sender : "") < 0)
		goto nomem_add;
	if (!top_dt && hm_buf_printf(&add, "Delivered-To: %s\n", final_rcpt) < 0)
		goto nomem_add;
	hm_header_free(&orig);      /* bounded memory: only one parse held at a time */

	/* spool once, fsync'd */
	if (hm_maildir_spool_create(&pv.md, &pv.spool) < 0) {
		hm_buf_free(&add);
		rc = fail(o, DELIVER_EX_TEMPFAIL, "creating %s/tmp file: %s", maildir, strerror(errno));
		goto out;
	}
	unsigned long long lf_extra;
	if (spool_message(&pv, &m, ins, hm_buf_cstr(&add), add.len, &lf_extra) < 0) {
		hm_buf_free(&add);
		rc = fail(o, DELIVER_EX_TEMPFAIL, "writing %s/tmp/%s: %s", maildir, pv.spool.name,
			  strerror(errno));
		goto out;
	}
	/* the header as spooled, parsed once for the filter */
	hm_buf_init(&hb, m.header_len + add.len + 16);
	if (hm_buf_append(&hb, m.header, ins) < 0 || hm_buf_append(&hb, hm_buf_cstr(&add), add.len) < 0 ||
	    hm_buf_append(&hb, m.header + ins, m.header_len - ins) < 0) {
		hm_buf_free(&add);
		goto nomem;
	}
	size_t addlen = add.len;
	hm_buf_free(&add);
	lim.max_block = hb.len ? hb.len : 1;
	if (hm_header_parse(hb.data ? hb.data : "", hb.len, &lim, &full) < 0)
		goto nomem;

	ctx->msg_fd = openat(pv.md.tmp_fd, pv.spool.name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (ctx->msg_fd < 0) {
		rc = fail(o, DELIVER_EX_TEMPFAIL, "reopening the spool: %s", strerror(errno));
		goto out;
	}
	const struct hm_hfield *mid = hm_header_get(full, "Message-ID");
	hm_log_clean(midbuf, sizeof midbuf, mid ? mid->value : "", mid ? mid->value_len : 0);

	/* quota: the userdb's rule, else the configured default, else the file's */
	const char *qr = (u.quota_rule && *u.quota_rule) ? u.quota_rule : conf.quota_rule;
	struct hm_quota_rule rule;
	bool have_rule = false;
	if (qr && *qr) {
		if (hm_quota_parse_rule(qr, &rule) == 0)
			have_rule = true;
		else
			deliver_log(LOG_WARNING, "ignoring unusable quota_rule for %s", u.name);
	}
	if (hm_quota_load(pv.md.root_fd, have_rule ? &rule : NULL, time(NULL), &pv.quota) < 0) {
		deliver_log(LOG_WARNING, "maildirsize in %s: %s (quota not enforced)", maildir,
			    strerror(errno));
		memset(&pv.quota, 0, sizeof pv.quota);
	}

	/* the filter decides */
	ctx->sender = sender ? sender : "";
	ctx->recipient = final_rcpt;
	ctx->orig_recipient = origrcpt ? origrcpt : final_rcpt;
	ctx->user = u.name;
	ctx->home = u.home;
	ctx->uid = u.uid;
	ctx->gid = u.gid;
	ctx->maildir = maildir;
	if (op->mailbox) {
		mbox = strdup(op->mailbox);
		ctx->mailbox = mbox;
	}
	ctx->keep_flags = flagv;
	ctx->n_keep_flags = nflags;
	ctx->no_sieve = op->no_sieve;
	ctx->sieve_path = sieve_path;
	ctx->sieve_explicit = op->sieve != NULL;
	ctx->sieve_dir = sieve_dir;
	ctx->reject_exit = op->reject_exit;
	ctx->hdr = full;
	ctx->msg_size = pv.spool.size;
	ctx->msg_size_received = m.bytes;
	ctx->msg_vsize = pv.spool.vsize;
	ctx->body_offset = m.header_len + addlen;
	ctx->message_id = midbuf;
	(void)lf_extra;

	if (deliver_filter(ctx) < 0)
		deliver_log(LOG_ERR, "filter failed for %s; falling back to INBOX", u.name);

	if (ctx->deferred) {
		/* a side effect could not be carried out now: nothing stays
		 * visible, Exim's retry delivers once (what was sent is recorded) */
		(void)deliver_unstore_all(ctx);
		rc = fail(o, DELIVER_EX_TEMPFAIL, "%s",
			  ctx->defer_reason ? ctx->defer_reason : "temporary failure");
	} else if (ctx->n_stored > 0 || (ctx->discarded && ctx->reject_reason == NULL)) {
		rc = DELIVER_EX_OK;
	} else if (ctx->reject_reason != NULL) {
		rc = fail(o, DELIVER_EX_NOPERM, "%s", ctx->reject_reason);
	} else {
		if (!ctx->quota_hit && deliver_store(ctx, "INBOX", NULL, 0) == 0) {
			rc = DELIVER_EX_OK;
		} else if (ctx->quota_hit) {
			rc = fail(o, conf.quota_reject ? DELIVER_EX_NOPERM : DELIVER_EX_TEMPFAIL,
				  "Quota exceeded (mailbox for user is full)");
		} else {
			rc = fail(o, DELIVER_EX_TEMPFAIL, "could not store the message in %s: %s",
				  maildir, strerror(errno));
		}
	}
	goto out;

nomem_add:
	hm_buf_free(&add);
nomem:
	rc = fail(o, DELIVER_EX_TEMPFAIL, "out of memory");
out:
	/* log line: one per message */
	{
		char cs[300], cr[300];
		const char *s = ctx->sender ? ctx->sender : (sender ? sender : "");
		const char *r = ctx->recipient ? ctx->recipient : (rcpt ? rcpt : "");
		hm_log_clean(cs, sizeof cs, s, strlen(s));
		hm_log_clean(cr, sizeof cr, r, strlen(r));
		if (rc == DELIVER_EX_OK)
			deliver_log(LOG_INFO, "msgid=%s user=%s from=<%s> to=<%s> folder=%s size=%llu result=%s",
				    ctx->message_id ? ctx->message_id : "", u.name ? u.name : "?", cs, cr,
				    ctx->n_stored ? ctx->stored_folders : "-", pv.spool.size,
				    ctx->n_stored ? "stored" : "discarded");
		else
			deliver_log(rc == DELIVER_EX_NOPERM ? LOG_NOTICE : LOG_WARNING,
				    "msgid=%s user=%s from=<%s> to=<%s> folder=- size=%llu result=%s: %s",
				    ctx->message_id ? ctx->message_id : "", u.name ? u.name : "?", cs, cr,
				    pv.spool.size, rc == DELIVER_EX_NOPERM ? "rejected" :
				    rc == DELIVER_EX_NOUSER ? "unknown-user" : "deferred", o->reason);
	}
	if (ctx->msg_fd >= 0)
		close(ctx->msg_fd);
	ctx->msg_fd = -1;
	if (pv.spool.fd >= 0 || pv.spool.name[0])
		hm_maildir_spool_discard(&pv.md, &pv.spool);
	hm_maildir_close(&pv.md);
	hm_header_free(&orig);
	hm_header_free(&full);
	hm_msgin_free(&m);
	hm_buf_free(&hb);
	if (in_fd > 0)
		close(in_fd);
	free(sender);
	free(rcpt);
	free(origrcpt);
	free(maildir);
	free(sieve_path);
	free(sieve_dir);
	free(mbox);
	free(flagbuf);
	free(ctx->reject_reason);
	ctx->reject_reason = NULL;
	free(ctx->defer_reason);
	ctx->defer_reason = NULL;
	deliver_linked_free(&pv);
	deliver_user_free(&u);
	deliver_conf_free(&conf);
	return rc;
out_noconf:
	return rc;
}

int main(int argc, char **argv)
{
	struct opts op;
	struct outcome o;
	struct deliver_ctx ctx;

	hm_cli_std_options(argc, argv, "homemail-deliver", USAGE);
	umask(077);
	signal(SIGPIPE, SIG_IGN);
	openlog("homemail-deliver", LOG_PID, LOG_MAIL);
	int rc = parse_opts(argc, argv, &op);
	if (rc != 0)
		return rc;
	memset(&o, 0, sizeof o);
	memset(&ctx, 0, sizeof ctx);
	rc = run(&op, &o, &ctx);
	if (rc != DELIVER_EX_OK)
		/* a Sieve reject "" is rejected with that empty reason (as
		 * Pigeonhole's rejection); any other failure says something */
		fprintf(stderr, "homemail-deliver: %s\n",
			o.reason[0] || o.code == DELIVER_EX_NOPERM ? o.reason : "failed");
	closelog();
	return rc;
}
