/* deliver_filter.c — where the message goes: the junk lists, then Sieve.
 *
 * What for: THE filtering seam of homemail-deliver (see deliver.h).  Runs,
 *   in order and sharing one result (Pigeonhole's sieve_before/sieve_after):
 *   the admin's scripts in /etc/homemail/sieve/before.d/NAME.sieve (sorted),
 *   the user's active script (~/.dovecot.sieve, or --sieve FILE; none with
 *   --no-sieve), the admin's scripts in after.d (a script that exists but
 *   does not compile ends the sequence there, as Pigeonhole); then carries the actions
 *   out: stores through deliver_store(), redirects through
 *   deliver_redirect.c and vacation replies through deliver_vacation.c (both
 *   by /usr/sbin/sendmail), rejects through deliver_reject().
 * Relies on: the Sieve engine (deliver-helper/sieve/sieve.h), sv_state for
 *   the vacation and duplicate memory (files in the Maildir root, flock'ed),
 *   hm_maildir for folder names (UTF-8, taken literally as Pigeonhole does).
 * How it fails: never loses mail, never repeats a side effect (see
 *   run_actions and docs/deliver.md "Sieve actions").  A script that does
 *   not compile ends the sequence, logged; a runtime error, exceeded limit
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
#include "deliver_sieve.h"
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
#define VACATION_DB "homemail-vacation.db"
#define DUPLICATE_DB "homemail-duplicate.db"


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

/* global_base - the admin's directory for before.d / after.d / global */
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
static size_t list_dir(const char *dir, char **dst)
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
		dst[n] = malloc(pl);
		if (!dst[n])
			break;
		snprintf(dst[n], pl, "%s/%s", dir, de->d_name);
		n++;
	}
	closedir(d);
	qsort(dst, n, sizeof *dst, cmp_str);
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
		if (!hm_header_is_delivery_trace(f))
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
			int rc = deliver_redirect(g, a->target);
			if (rc == DELIVER_REDIRECT_LOOP)
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
			(void)deliver_vacation(g, a);
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

/* compile_global - append the scripts of one global directory (before.d or
 * after.d, in name order) to scripts[ns..]; once one cannot be used
 * (*failed set), no later one is compiled.  Returns the new count. */
static size_t compile_global(const char *dir, const char *globaldir,
			     struct sieve_script **scripts, size_t ns, bool *failed)
{
	char *paths[MAX_GLOBAL_SCRIPTS];
	size_t np = list_dir(dir, paths);
	for (size_t i = 0; i < np; i++) {
		struct sieve_script *s = *failed ? NULL :
			compile_one(paths[i], globaldir, globaldir, false);
		if (s)
			scripts[ns++] = s;
		else
			*failed = true;
		free(paths[i]);
	}
	return ns;
}

/* load_scripts - compile the scripts of this delivery into scripts[] (room
 * for 2 * MAX_GLOBAL_SCRIPTS + 1): before.d, the user's, after.d; a script
 * that exists but cannot be used ends the sequence there (no later script
 * runs, as Pigeonhole's LDA: checked with dovecot-lda 0.5.19, sieve_before
 * and sieve_after; tests/deliver-diff/d09-before-after.cases).  Returns
 * how many. */
static size_t load_scripts(struct deliver_ctx *ctx, struct sieve_script **scripts)
{
	size_t ns = 0;
	char globaldir[1024], beforedir[1024], afterdir[1024];
	const char *base = global_base();
	hm_snprintf(globaldir, sizeof globaldir, "%s/global", base);
	hm_snprintf(beforedir, sizeof beforedir, "%s/before.d", base);
	hm_snprintf(afterdir, sizeof afterdir, "%s/after.d", base);
	const char *personal = ctx->sieve_dir && *ctx->sieve_dir ? ctx->sieve_dir : NULL;
	if (ctx->no_sieve)
		return 0;
	bool failed = false;
	ns = compile_global(beforedir, globaldir, scripts, ns, &failed);
	if (!failed && ctx->sieve_path && *ctx->sieve_path) {
		struct sieve_script *s = compile_one(ctx->sieve_path, personal, globaldir, true);
		if (s)
			scripts[ns++] = s;
		else
			failed = access(ctx->sieve_path, F_OK) == 0 || errno != ENOENT;
	}
	if (!failed)
		ns = compile_global(afterdir, globaldir, scripts, ns, &failed);
	return ns;
}

/* deliver_filter - junk lists, then the Sieve scripts (see the top) */
int deliver_filter(struct deliver_ctx *ctx)
{
	(void)deliver_junk_route(ctx);  /* junk lists: may point the implicit keep at Junk */
	struct glue g = { .ctx = ctx, .now = time(NULL) };
	struct sieve_script *scripts[2 * MAX_GLOBAL_SCRIPTS + 1];
	size_t ns = load_scripts(ctx, scripts);
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
