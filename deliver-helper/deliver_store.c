/* deliver_store.c — the filter's outcomes: store a copy, discard, reject.
 *
 * What for: the only way a filter (implicit keep, Sieve, junk lists) files
 *   the spooled message; see the seam description in deliver.h.
 * Relies on: hm_maildir (link-based stores, stale tmp/ cleaning),
 *   hm_quota (maildirsize).
 * How it fails: returns DELIVER_EFOLDER / DELIVER_EQUOTA / DELIVER_ETEMP
 *   and logs the reason to syslog; the message itself stays spooled, so the
 *   caller can still fall back to INBOX or defer.
 */
#define _GNU_SOURCE 1            /* asprintf */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "deliver_int.h"
#include "hm_util.h"

/* deliver_log - see deliver.h */
void deliver_log(int prio, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsyslog(prio, fmt, ap);
	va_end(ap);
}

/* deliver_clean_tmp - see deliver_int.h */
void deliver_clean_tmp(int tmp_fd, const char *maildir, const char *dir)
{
	struct hm_tmpclean tc;
	const char *sep = "/";
	if (strcmp(dir, ".") == 0)
		sep = dir = "";
	if (hm_maildir_tmp_clean(tmp_fd, time(NULL), &tc) < 0) {
		deliver_log(LOG_WARNING, "checking %s%s%s/tmp for stale files: %s", maildir, sep, dir,
			    strerror(errno));
		return;
	}
	if (tc.removed > 0 || tc.failed > 0)
		deliver_log(LOG_NOTICE, "removed %u stale file(s) from %s%s%s/tmp (%u could not be "
			    "removed, %u entries examined%s)", tc.removed, maildir, sep, dir, tc.failed,
			    tc.examined, tc.complete ? "" : ", more next time");
}

/* deliver_unstore_all - see deliver_int.h */
size_t deliver_unstore_all(struct deliver_ctx *ctx)
{
	struct deliver_priv *pv = ctx->priv;
	size_t left = 0;

	for (size_t i = pv->n_linked; i-- > 0;) {
		char *rel = pv->linked[i], cr[300];
		if (unlinkat(pv->md.root_fd, rel, 0) == 0 || errno == ENOENT) {
			/* the directory entry's removal is made durable like its creation */
			char *slash = strrchr(rel, '/');
			*slash = '\0';
			int dfd = openat(pv->md.root_fd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (dfd >= 0) {
				(void)fsync(dfd);
				close(dfd);
			}
			if (pv->quota.active &&
			    hm_quota_add(pv->md.root_fd, &pv->quota, -(long long)ctx->msg_size, -1) < 0)
				deliver_log(LOG_WARNING, "maildirsize update in %s: %s", ctx->maildir,
					    strerror(errno));
		} else {
			hm_log_clean(cr, sizeof cr, rel, strlen(rel));
			deliver_log(LOG_ERR, "cannot take back %s/%s: %s", ctx->maildir, cr,
				    strerror(errno));
			left++;
		}
		free(rel);
		pv->linked[i] = NULL;
	}
	pv->n_linked = 0;
	ctx->n_stored = 0;
	ctx->stored_folders[0] = '\0';
	return left;
}

/* deliver_linked_free - see deliver_int.h */
void deliver_linked_free(struct deliver_priv *pv)
{
	for (size_t i = 0; i < pv->n_linked; i++)
		free(pv->linked[i]);
	pv->n_linked = 0;
}

/* deliver_discard - see deliver.h */
void deliver_discard(struct deliver_ctx *ctx)
{
	ctx->discarded = true;
}

/* deliver_reject - see deliver.h */
void deliver_reject(struct deliver_ctx *ctx, const char *reason)
{
	char clean[400];
	const char *r = reason ? reason : "Message rejected";   /* "" stays empty */
	hm_log_clean(clean, sizeof clean, r, strlen(r));
	free(ctx->reject_reason);
	ctx->reject_reason = strdup(clean);
}

/* deliver_defer - see deliver.h */
void deliver_defer(struct deliver_ctx *ctx, const char *reason)
{
	char clean[400];
	const char *r = reason && *reason ? reason : "temporary failure";
	hm_log_clean(clean, sizeof clean, r, strlen(r));
	(void)deliver_unstore_all(ctx);
	free(ctx->defer_reason);
	ctx->defer_reason = strdup(clean);
	ctx->deferred = true;
}

/* note_folder - remember a stored folder for the log line; true if already there */
static bool note_folder(struct deliver_ctx *ctx, const char *dir)
{
	size_t dl = strlen(dir);
	const char *p = ctx->stored_folders;
	while (*p) {
		const char *e = strchr(p, ' ');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		if (l == dl && memcmp(p, dir, dl) == 0)
			return true;
		p += l + (e ? 1 : 0);
	}
	size_t used = strlen(ctx->stored_folders);
	if (used + dl + 2 < sizeof ctx->stored_folders)
		snprintf(ctx->stored_folders + used, sizeof ctx->stored_folders - used, "%s%s",
			 used ? " " : "", dir);
	return false;
}

/* forget_folder - drop the folder note_folder() added last */
static void forget_folder(struct deliver_ctx *ctx)
{
	char *last = strrchr(ctx->stored_folders, ' ');

	if (last)
		*last = '\0';
	else
		ctx->stored_folders[0] = '\0';
}

/* deliver_store - see deliver.h */
int deliver_store(struct deliver_ctx *ctx, const char *folder,
		  const char *const flags[], size_t nflags)
{
	struct deliver_priv *pv = ctx->priv;
	char dir[HM_MAILDIR_NAME_MAX], letters[64], kwletters[32], name[512], cf[128];
	const char *kws[64];
	size_t nkw = 0, nl = 0, dropped = 0;
	struct hm_mfolder f;

	if (folder == NULL)
		folder = "INBOX";
	hm_log_clean(cf, sizeof cf, folder, strlen(folder));
	if (hm_maildir_folder_dir(folder, dir, sizeof dir) < 0) {
		deliver_log(LOG_WARNING, "refusing folder name \"%s\"", cf);
		return DELIVER_EFOLDER;
	}
	if (note_folder(ctx, dir[1] ? dir + 1 : "INBOX"))
		return 0;       /* the same folder twice is one copy (RFC 5228 4.2) */
	for (size_t i = 0; i < nflags && flags != NULL; i++) {
		int l = hm_maildir_flag_letter(flags[i]);
		if (l > 0 && nl < 8)
			letters[nl++] = (char)l;
		else if (l == 0 && hm_maildir_keyword_valid(flags[i]) && nkw < HM_ARRAY_SIZE(kws))
			kws[nkw++] = flags[i];
	}
	letters[nl] = '\0';

	if (pv->quota.active && hm_quota_exceeded(&pv->quota, ctx->msg_size, 1)) {
		ctx->quota_hit = true;
		ctx->n_failed++;
		deliver_log(LOG_NOTICE, "quota exceeded for %s: %llu+%llu bytes > %llu or %llu+1 msgs > %llu",
			    ctx->user, pv->quota.bytes, ctx->msg_size, pv->quota.bytes_limit,
			    pv->quota.count, pv->quota.count_limit);
		return DELIVER_EQUOTA;
	}
	if (hm_maildir_folder_open(&pv->md, folder, true, &f) < 0) {
		int e = errno;
		deliver_log(LOG_ERR, "open folder \"%s\" in %s: %s", cf, ctx->maildir, strerror(e));
		ctx->n_failed++;
		/* forget the folder so the INBOX fallback really stores (a folder
		 * noted but never stored made the implicit keep a no-op: exit 0,
		 * message lost — found by tests/fault, docs/hardening.md) */
		forget_folder(ctx);
		errno = e;
		return e == EINVAL ? DELIVER_EFOLDER : DELIVER_ETEMP;
	}
	if (!f.is_inbox)
		deliver_clean_tmp(f.tmp_fd, ctx->maildir, f.dir);
	if (nkw > 0) {
		if (hm_maildir_keywords(&f, kws, nkw, kwletters, sizeof kwletters, &dropped) < 0) {
			deliver_log(LOG_WARNING, "keywords for \"%s\": %s (stored without them)",
				    cf, strerror(errno));
		} else {
			if (dropped)
				deliver_log(LOG_WARNING, "%zu keyword(s) did not fit in dovecot-keywords of \"%s\"",
					    dropped, cf);
			strncat(letters, kwletters, sizeof letters - strlen(letters) - 1);
		}
	}
	int rc = hm_maildir_store(&pv->md, &f, &pv->spool, letters, name, sizeof name);
	int e = errno;
	hm_maildir_folder_close(&f);
	if (rc < 0) {
		deliver_log(LOG_ERR, "store into \"%s\" in %s: %s", cf, ctx->maildir, strerror(e));
		ctx->n_failed++;
		/* forget the folder so a retry (e.g. INBOX fallback) is possible */
		forget_folder(ctx);
		errno = e;
		return DELIVER_ETEMP;
	}
	/* remember the copy: if the delivery defers later, it must be taken
	 * back or Exim's retry would leave two (deliver_unstore_all) */
	char rel[HM_MAILDIR_NAME_MAX + 600];
	char *keep = NULL;
	if (hm_snprintf(rel, sizeof rel, "%s/%s/%s", dir, hm_maildir_stored_in(name),
			name) < 0 || pv->n_linked >= DELIVER_MAX_LINKED || (keep = strdup(rel)) == NULL) {
		/* untracked, it could not be taken back: do not leave it */
		(void)unlinkat(pv->md.root_fd, rel, 0);
		deliver_log(LOG_ERR, "store into \"%s\" in %s: too many copies to track", cf,
			    ctx->maildir);
		ctx->n_failed++;
		forget_folder(ctx);
		errno = ENOMEM;
		return DELIVER_ETEMP;
	}
	pv->linked[pv->n_linked++] = keep;
	if (pv->quota.active && hm_quota_add(pv->md.root_fd, &pv->quota, (long long)ctx->msg_size, 1) < 0)
		deliver_log(LOG_WARNING, "maildirsize update in %s: %s", ctx->maildir, strerror(errno));
	ctx->n_stored++;
	return 0;
}
