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
 * Structure: run() passes one struct delivery through named stages --
 *   load_config, validate_envelope, become_user, locate_mailbox,
 *   check_loops, spool, load_quota, decide_and_store -- each returning an
 *   enum result; exit_code() is the one place that maps a result to the
 *   exit status; log_outcome() writes the one log line.
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
#include <stdarg.h>
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
#include "deliver_notify.h"
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
 * Returns 0 and *value_r (malloc'd, may be ""), or -1 when invalid. */
static int envelope_value(const char *opt, const char *envname, char **value_r)
{
	const char *v = opt ? opt : (envname ? getenv(envname) : NULL);
	*value_r = NULL;
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
	*value_r = s;
	return 0;
}

/* strip_angle - address value of a header field without <> and blanks */
static void strip_angle(const char *v, char *dst, size_t dstsize)
{
	while (*v == ' ' || *v == '\t' || *v == '<')
		v++;
	hm_strlcpy(dst, v, dstsize);
	size_t n = strlen(dst);
	while (n > 0 && (dst[n - 1] == '>' || dst[n - 1] == ' ' || dst[n - 1] == '\t'))
		dst[--n] = '\0';
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
			 size_t ins, const char *add, size_t addlen, unsigned long long *lf_extra_r)
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
	*lf_extra_r = lfs;
	return hm_maildir_spool_sync(sp);
}

/* ---- the delivery, stage by stage ------------------------------------ */

/* result - how a stage ended; exit_code() alone turns it into the exit
 * status Exim sees */
enum result {
	RES_OK,         /* go on; after the last stage: stored or discarded */
	RES_USAGE,      /* a bad option or envelope value */
	RES_NOUSER,     /* no such user */
	RES_TEMP,       /* anything transient: Exim retries */
	RES_REJECT,     /* refused for good: Sieve reject, loop, quota_full = reject */
};

/* delivery - everything one delivery holds, passed from stage to stage */
struct delivery {
	const struct opts *op;
	struct deliver_ctx *ctx;
	struct deliver_conf conf;
	bool conf_loaded;
	struct deliver_user u;
	struct deliver_priv pv;
	struct hm_msgin m;
	struct hm_header *full;     /* the header as spooled */
	struct hm_buf hb;           /* its bytes */
	struct hm_buf add;          /* the fields we prepend (check_loops) */
	size_t ins;                 /* where they go: after the MTA's Return-Path */
	int in_fd;
	char *sender, *rcpt, *origrcpt, *maildir, *sieve_path, *sieve_dir, *mbox, *flagbuf;
	const char *final_rcpt;
	const char *flagv[40];
	size_t nflags;
	char midbuf[200];
	char reason[512];
};

/* why - record the reason of a stage's failure; returns r */
static enum result why(struct delivery *d, enum result r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static enum result why(struct delivery *d, enum result r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(d->reason, sizeof d->reason, fmt, ap);
	va_end(ap);
	return r;
}

/* exit_code - THE mapping of a delivery's result to the exit status
 * (dovecot-lda's codes): any doubt is 75, so Exim retries */
static int exit_code(enum result r)
{
	switch (r) {
	case RES_OK:
		return DELIVER_EX_OK;
	case RES_USAGE:
		return DELIVER_EX_USAGE;
	case RES_NOUSER:
		return DELIVER_EX_NOUSER;
	case RES_REJECT:
		return DELIVER_EX_NOPERM;
	case RES_TEMP:
		break;
	}
	return DELIVER_EX_TEMPFAIL;
}

/* load_config - deliver.conf (--config only when not setuid/setgid) */
static enum result load_config(struct delivery *d)
{
	const struct opts *op = d->op;
	char err[512];
	if (op->conf != NULL && getauxval(AT_SECURE)) {
		/* setuid/setgid (real and effective ids differ): the caller's
		 * --config would be read with our privileges; so are the
		 * HOMEMAIL_* variables (secure_getenv) -- docs/deliver.md */
		fprintf(stderr, "homemail-deliver: running setuid/setgid: --config ignored\n");
		deliver_log(LOG_WARNING, "running setuid/setgid (uid %ld euid %ld): --config ignored",
			    (long)getuid(), (long)geteuid());
	}
	const char *conf_path = op->conf && !getauxval(AT_SECURE) ? op->conf : NULL;
	if (deliver_conf_load(&d->conf, conf_path ? conf_path : DEFAULT_CONF, conf_path != NULL,
			      err, sizeof err) < 0)
		return why(d, RES_TEMP, "configuration: %s", err);
	d->conf_loaded = true;
	return RES_OK;
}

/* parse_flags - --flags: space-separated IMAP flags / keywords for the
 * implicit keep */
static enum result parse_flags(struct delivery *d, const char *flags)
{
	if (strlen(flags) > 2000 || (d->flagbuf = strdup(flags)) == NULL)
		return why(d, RES_USAGE, "invalid --flags");
	char *save = NULL;
	for (char *t = strtok_r(d->flagbuf, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
		if (d->nflags == HM_ARRAY_SIZE(d->flagv) ||
		    (hm_maildir_flag_letter(t) == 0 && !hm_maildir_keyword_valid(t)))
			return why(d, RES_USAGE, "invalid --flags");
		d->flagv[d->nflags++] = t;
	}
	return RES_OK;
}

/* validate_envelope - sender, recipients, -m, --flags, -d: options first,
 * then what Exim's pipe transport sets */
static enum result validate_envelope(struct delivery *d)
{
	const struct opts *op = d->op;
	if (envelope_value(op->from, "SENDER", &d->sender) < 0)
		return why(d, RES_USAGE, "invalid envelope sender");
	if (envelope_value(op->rcpt, "RECIPIENT", &d->rcpt) < 0 ||
	    envelope_value(op->orig, NULL, &d->origrcpt) < 0)
		return why(d, RES_USAGE, "invalid recipient address");
	if (d->rcpt == NULL && getenv("LOCAL_PART") && getenv("DOMAIN")) {
		if (asprintf(&d->rcpt, "%s@%s", getenv("LOCAL_PART"), getenv("DOMAIN")) < 0) {
			d->rcpt = NULL;
			return why(d, RES_TEMP, "out of memory");
		}
		if (!deliver_valid_address(d->rcpt))
			return why(d, RES_USAGE, "invalid LOCAL_PART/DOMAIN");
	}
	if (op->mailbox != NULL) {
		if (op->mailbox[0] == '\0' || strlen(op->mailbox) > 500)
			return why(d, RES_USAGE, "invalid -m mailbox name");
		for (const unsigned char *p = (const unsigned char *)op->mailbox; *p; p++)
			if (*p < 0x20 || *p == 0x7f)
				return why(d, RES_USAGE, "invalid -m mailbox name");
	}
	if (op->flags != NULL && parse_flags(d, op->flags) != RES_OK)
		return RES_USAGE;
	if (op->dflag != NULL && (op->dflag[0] == '\0' || strlen(op->dflag) > 256))
		return why(d, RES_USAGE, "invalid -d user name");
	return RES_OK;
}

/* become_user - userdb / passwd, then that user's ids before touching
 * anything */
static enum result become_user(struct delivery *d)
{
	char err[512];
	int rc = deliver_user_resolve(&d->conf, d->op->dflag, &d->u, err, sizeof err);
	if (rc != DELIVER_EX_OK)
		return why(d, rc == DELIVER_EX_NOUSER ? RES_NOUSER : RES_TEMP, "%s", err);
	if (deliver_user_become(&d->u, err, sizeof err) < 0)
		return why(d, RES_TEMP, "%s", err);
	return RES_OK;
}

/* locate_sieve - the personal script: --sieve, else the userdb's `sieve`,
 * else the setting, in Pigeonhole's location syntax */
static void locate_sieve(struct delivery *d)
{
	const struct opts *op = d->op;
	struct deliver_user *u = &d->u;
	if (op->no_sieve)
		return;
	if (op->sieve) {
		d->sieve_path = strdup(op->sieve);
		d->sieve_dir = deliver_expand_path(d->conf.sieve_dir, u->name, u->home);
		return;
	}
	const char *loc = u->sieve && *u->sieve ? u->sieve : d->conf.sieve;
	char *dir = NULL, err[512];
	if (deliver_sieve_location(loc, u->name, u->home, &d->sieve_path, &dir, err, sizeof err) < 0) {
		char cl[300];
		hm_log_clean(cl, sizeof cl, loc, strlen(loc));
		deliver_log(LOG_ERR, "sieve location \"%s\" of %s (%s): %s; no personal script "
			    "runs (implicit keep)", cl, u->name, u->sieve && *u->sieve ? "userdb" :
			    "deliver.conf", err);
	}
	d->sieve_dir = dir ? dir : deliver_expand_path(d->conf.sieve_dir, u->name, u->home);
}

/* locate_mailbox - the Maildir (opened, stale tmp/ files cleaned) and the
 * personal Sieve script */
static enum result locate_mailbox(struct delivery *d)
{
	struct deliver_user *u = &d->u;
	if (d->op->maildir != NULL) {
		d->maildir = strdup(d->op->maildir);
	} else {
		const char *loc = u->mail ? u->mail : d->conf.mail_location;
		d->maildir = maildir_from_location(loc, u->name, u->home);
		if (d->maildir == NULL) {
			char cl[200];
			hm_log_clean(cl, sizeof cl, loc, strlen(loc));
			return why(d, RES_TEMP, "unusable mail location \"%s\" for %s", cl, u->name);
		}
	}
	if (d->maildir == NULL || d->maildir[0] != '/')
		return why(d, RES_TEMP, "Maildir path must be absolute");
	locate_sieve(d);
	if (hm_maildir_open(&d->pv.md, d->maildir, true) < 0)
		return why(d, RES_TEMP, "Maildir %s: %s", d->maildir, strerror(errno));
	deliver_clean_tmp(d->pv.md.tmp_fd, d->maildir, ".");
	return RES_OK;
}

/* check_loops - read the header; refuse a forwarding loop (Delivered-To
 * for this recipient loop_max times, not counting the MTA's own); prepare
 * what we prepend: Return-Path first (or after the MTA's), Delivered-To */
static enum result check_loops(struct delivery *d)
{
	struct hm_header *orig = NULL;
	if (d->op->path != NULL) {
		d->in_fd = open(d->op->path, O_RDONLY | O_CLOEXEC);
		if (d->in_fd < 0)
			return why(d, RES_TEMP, "open %s: %s", d->op->path, strerror(errno));
	}
	hm_msgin_init(&d->m, d->in_fd, d->conf.max_header);
	if (hm_msgin_read_header(&d->m) < 0)
		return why(d, RES_TEMP, "reading the message: %s", strerror(errno));
	struct hm_header_limits lim = { d->m.header_len ? d->m.header_len : 1, 0 };
	if (hm_header_parse(d->m.header, d->m.header_len, &lim, &orig) < 0)
		return why(d, RES_TEMP, "parsing the header: %s", strerror(errno));
	const char *rcpt = d->rcpt ? d->rcpt : (d->origrcpt ? d->origrcpt : d->u.name);
	d->final_rcpt = rcpt;
	char dt[600];
	size_t loops = 0, top = 0;
	bool top_rp = false, top_dt = false;
	for (; top < orig->count && hm_header_is_delivery_trace(&orig->fields[top]); top++) {
		if (top == 0 && hm_header_name_is(&orig->fields[0], "Return-Path"))
			top_rp = true;
		strip_angle(orig->fields[top].value, dt, sizeof dt);
		if (hm_header_name_is(&orig->fields[top], "Delivered-To") && strcasecmp(dt, rcpt) == 0)
			top_dt = true;
	}
	for (size_t it = 0; hm_header_next(orig, "Delivered-To", &it) != NULL;) {
		strip_angle(orig->fields[it - 1].value, dt, sizeof dt);
		if (strcasecmp(dt, rcpt) == 0)
			loops++;
	}
	enum result r = RES_OK;
	if (loops - (top_dt ? 1 : 0) >= d->conf.loop_max) {
		char cr[300];
		hm_log_clean(cr, sizeof cr, rcpt, strlen(rcpt));
		r = why(d, RES_REJECT, "mail forwarding loop for %s", cr);
	} else if (top_rp) {
		d->ins = orig->fields[0].length;
	} else if (hm_buf_printf(&d->add, "Return-Path: <%s>\n", d->sender ? d->sender : "") < 0) {
		r = why(d, RES_TEMP, "out of memory");
	}
	if (r == RES_OK && !top_dt && hm_buf_printf(&d->add, "Delivered-To: %s\n", rcpt) < 0)
		r = why(d, RES_TEMP, "out of memory");
	hm_header_free(&orig);      /* bounded memory: only one parse held at a time */
	return r;
}

/* spool - the message, with our fields, into tmp/ once, fsync'd; the
 * header as spooled parsed once for the filter; the spool reopened
 * read-only for it */
static enum result spool(struct delivery *d)
{
	struct deliver_priv *pv = &d->pv;
	struct hm_msgin *m = &d->m;
	struct hm_buf *add = &d->add;
	if (hm_maildir_spool_create(&pv->md, &pv->spool) < 0)
		return why(d, RES_TEMP, "creating %s/tmp file: %s", d->maildir, strerror(errno));
	unsigned long long lf_extra;
	if (spool_message(pv, m, d->ins, hm_buf_cstr(add), add->len, &lf_extra) < 0)
		return why(d, RES_TEMP, "writing %s/tmp/%s: %s", d->maildir, pv->spool.name,
			   strerror(errno));
	hm_buf_init(&d->hb, m->header_len + add->len + 16);
	if (hm_buf_append(&d->hb, m->header, d->ins) < 0 ||
	    hm_buf_append(&d->hb, hm_buf_cstr(add), add->len) < 0 ||
	    hm_buf_append(&d->hb, m->header + d->ins, m->header_len - d->ins) < 0)
		return why(d, RES_TEMP, "out of memory");
	struct hm_header_limits lim = { d->hb.len ? d->hb.len : 1, 0 };
	if (hm_header_parse(d->hb.data ? d->hb.data : "", d->hb.len, &lim, &d->full) < 0)
		return why(d, RES_TEMP, "out of memory");
	d->ctx->msg_fd = openat(pv->md.tmp_fd, pv->spool.name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (d->ctx->msg_fd < 0)
		return why(d, RES_TEMP, "reopening the spool: %s", strerror(errno));
	const struct hm_hfield *mid = hm_header_get(d->full, "Message-ID");
	hm_log_clean(d->midbuf, sizeof d->midbuf, mid ? mid->value : "", mid ? mid->value_len : 0);
	return RES_OK;
}

/* load_quota - the userdb's rule, else the configured default, else the
 * maildirsize file's; an unusable one is not enforced (logged) */
static enum result load_quota(struct delivery *d)
{
	const char *qr = (d->u.quota_rule && *d->u.quota_rule) ? d->u.quota_rule : d->conf.quota_rule;
	struct hm_quota_rule rule;
	bool have_rule = false;
	if (qr && *qr) {
		if (hm_quota_parse_rule(qr, &rule) == 0)
			have_rule = true;
		else
			deliver_log(LOG_WARNING, "ignoring unusable quota_rule for %s", d->u.name);
	}
	if (hm_quota_load(d->pv.md.root_fd, have_rule ? &rule : NULL, time(NULL), &d->pv.quota) < 0) {
		deliver_log(LOG_WARNING, "maildirsize in %s: %s (quota not enforced)", d->maildir,
			    strerror(errno));
		memset(&d->pv.quota, 0, sizeof d->pv.quota);
	}
	return RES_OK;
}

/* fill_ctx - what the filter gets to see (deliver.h) */
static void fill_ctx(struct delivery *d)
{
	struct deliver_ctx *ctx = d->ctx;
	const struct opts *op = d->op;
	ctx->sender = d->sender ? d->sender : "";
	ctx->recipient = d->final_rcpt;
	ctx->orig_recipient = d->origrcpt ? d->origrcpt : d->final_rcpt;
	ctx->user = d->u.name;
	ctx->home = d->u.home;
	ctx->uid = d->u.uid;
	ctx->gid = d->u.gid;
	ctx->maildir = d->maildir;
	if (op->mailbox) {
		d->mbox = strdup(op->mailbox);
		ctx->mailbox = d->mbox;
	}
	ctx->keep_flags = d->flagv;
	ctx->n_keep_flags = d->nflags;
	ctx->no_sieve = op->no_sieve;
	ctx->sieve_path = d->sieve_path;
	ctx->sieve_explicit = op->sieve != NULL;
	ctx->sieve_dir = d->sieve_dir;
	ctx->reject_exit = op->reject_exit;
	ctx->hdr = d->full;
	ctx->msg_size = d->pv.spool.size;
	ctx->msg_size_received = d->m.bytes;
	ctx->msg_vsize = d->pv.spool.vsize;
	ctx->body_offset = d->m.header_len + d->add.len;
	ctx->message_id = d->midbuf;
}

/* decide_and_store - the filter decides and stores; then what it left:
 * deferred, stored / discarded, rejected, or INBOX as the last resort */
static enum result decide_and_store(struct delivery *d)
{
	struct deliver_ctx *ctx = d->ctx;
	fill_ctx(d);
	if (deliver_filter(ctx) < 0)
		deliver_log(LOG_ERR, "filter failed for %s; falling back to INBOX", d->u.name);
	if (ctx->deferred) {
		/* a side effect could not be carried out now: deliver_defer took
		 * this run's copies back, Exim's retry delivers once (what was
		 * sent is recorded) */
		return why(d, RES_TEMP, "%s", ctx->defer_reason ? ctx->defer_reason : "temporary failure");
	}
	if (ctx->n_stored > 0 || (ctx->discarded && ctx->reject_reason == NULL))
		return RES_OK;
	if (ctx->reject_reason != NULL)
		return why(d, RES_REJECT, "%s", ctx->reject_reason);
	if (!ctx->quota_hit && deliver_store(ctx, "INBOX", NULL, 0) == 0)
		return RES_OK;
	if (ctx->quota_hit)
		return why(d, d->conf.quota_reject ? RES_REJECT : RES_TEMP,
			   "Quota exceeded (mailbox for user is full)");
	return why(d, RES_TEMP, "could not store the message in %s: %s", d->maildir, strerror(errno));
}

/* log_outcome - the one log line per message */
static void log_outcome(struct delivery *d, enum result r)
{
	struct deliver_ctx *ctx = d->ctx;
	char cs[300], cr[300];
	const char *s = ctx->sender ? ctx->sender : (d->sender ? d->sender : "");
	const char *rc = ctx->recipient ? ctx->recipient : (d->rcpt ? d->rcpt : "");
	const char *name = d->u.name ? d->u.name : "?";
	const char *mid = ctx->message_id ? ctx->message_id : "";
	hm_log_clean(cs, sizeof cs, s, strlen(s));
	hm_log_clean(cr, sizeof cr, rc, strlen(rc));
	if (r == RES_OK)
		deliver_log(LOG_INFO, "msgid=%s user=%s from=<%s> to=<%s> folder=%s size=%llu result=%s",
			    mid, name, cs, cr, ctx->n_stored ? ctx->stored_folders : "-",
			    d->pv.spool.size, ctx->n_stored ? "stored" : "discarded");
	else
		deliver_log(r == RES_REJECT ? LOG_NOTICE : LOG_WARNING,
			    "msgid=%s user=%s from=<%s> to=<%s> folder=- size=%llu result=%s: %s",
			    mid, name, cs, cr, d->pv.spool.size, r == RES_REJECT ? "rejected" :
			    r == RES_NOUSER ? "unknown-user" : "deferred", d->reason);
}

/* release - everything the stages took; the spool goes unless linked */
static void release(struct delivery *d)
{
	struct deliver_ctx *ctx = d->ctx;
	if (ctx->msg_fd >= 0)
		close(ctx->msg_fd);
	ctx->msg_fd = -1;
	if (d->pv.spool.fd >= 0 || d->pv.spool.name[0])
		hm_maildir_spool_discard(&d->pv.md, &d->pv.spool);
	hm_maildir_close(&d->pv.md);
	hm_header_free(&d->full);
	hm_msgin_free(&d->m);
	hm_buf_free(&d->hb);
	hm_buf_free(&d->add);
	if (d->in_fd > 0)
		close(d->in_fd);
	free(d->sender);
	free(d->rcpt);
	free(d->origrcpt);
	free(d->maildir);
	free(d->sieve_path);
	free(d->sieve_dir);
	free(d->mbox);
	free(d->flagbuf);
	free(ctx->reject_reason);
	ctx->reject_reason = NULL;
	free(ctx->defer_reason);
	ctx->defer_reason = NULL;
	deliver_linked_free(&d->pv);
	deliver_user_free(&d->u);
	if (d->conf_loaded)
		deliver_conf_free(&d->conf);
}

/* run - the whole delivery, stage by stage; returns the exit code, with
 * o->reason when non-zero */
static int run(const struct opts *op, struct outcome *o, struct deliver_ctx *ctx)
{
	static enum result (*const stages[])(struct delivery *) = {
		load_config, validate_envelope, become_user, locate_mailbox,
		check_loops, spool, load_quota, decide_and_store,
	};
	struct delivery *d = calloc(1, sizeof *d);
	if (d == NULL)
		return fail(o, exit_code(RES_TEMP), "out of memory");
	d->op = op;
	d->ctx = ctx;
	d->pv.md.root_fd = d->pv.md.tmp_fd = d->pv.md.new_fd = d->pv.md.cur_fd = -1;
	d->pv.spool.fd = -1;
	hm_msgin_init(&d->m, -1, 0);
	hm_buf_init(&d->hb, 0);
	hm_buf_init(&d->add, 4096);
	ctx->msg_fd = -1;
	ctx->priv = &d->pv;
	enum result r = RES_OK;
	for (size_t i = 0; i < HM_ARRAY_SIZE(stages) && r == RES_OK; i++)
		r = stages[i](d);
	if (d->conf_loaded)
		log_outcome(d, r);
	/* new mail is on disk: ask the replicator to copy it to the peer now
	 * (non-blocking, bounded, only logged on failure: deliver_notify.c) */
	if (r == RES_OK && ctx->n_stored > 0 && d->conf_loaded)
		(void)deliver_notify_replicator(d->conf.replication_notify,
						d->conf.replication_notify_virtual, d->u.name);
	int rc = r == RES_OK ? DELIVER_EX_OK : fail(o, exit_code(r), "%s", d->reason);
	release(d);
	ctx->priv = NULL;
	free(d);
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
