/* authdb_verify.c — the password check of the `homemail` Dovecot passdb
 * (see authdb_core.h): lockout, crypt and rehash around one login.
 *
 * What for: one policy for every login (IMAP, POP3, SMTP AUTH via Dovecot's
 * auth-client socket).
 * Relies on: authdb_lookup.c (the account), lib/hm_users (libxcrypt),
 * lib/hm_lockout (state file).
 * How it fails: a lookup error is an internal (temporary) failure; a lockout
 * state file that cannot be opened is logged (retried once a minute) and
 * logins go on without lockout rather than locking everybody out.  Every
 * refused login costs one crypt and gets the same answer: a wrong password
 * or a locked/disabled account the crypt of its own hash, and whatever has
 * no hash to verify (unknown user, `!`/`*`/missing hash, unusable or refused
 * weak hash) one dummy hash of the configured (rehash) scheme, logged at
 * debug level so that tests can see it.
 * A login is counted as a failure before its password is verified (see
 * hm_lockout_reserve), so a worker killed in between leaves one failure
 * counted, never a free guess.
 */
#include "authdb_private.h"
#include "hm_util.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <time.h>

/* lockout_handle - the state file, opened on first use; NULL if disabled
 * or unusable (logged, retried after 60 s) */
static struct hm_lockout *lockout_handle(struct hm_authdb *db)
{
	time_t now = time(NULL);

	if (db->set.lockout_path[0] == '\0' || db->lockout != NULL)
		return db->lockout;
	/* after a failure, try again once a minute rather than on every login */
	if (db->lockout_failed != 0 && now - db->lockout_failed < 60)
		return NULL;
	if (hm_lockout_open(db->set.lockout_path, &db->set.policy, &db->lockout) < 0) {
		authdb_log(db, HM_AUTHDB_ERROR, "lockout state %s unusable: %s - "
		     "logins proceed WITHOUT brute-force protection",
		     db->set.lockout_path, strerror(errno));
		db->lockout_failed = now;
		db->lockout = NULL;
	} else {
		const char *note = hm_lockout_open_note(db->lockout);
		if (note != NULL)
			authdb_log(db, HM_AUTHDB_WARNING, "lockout state %s: %s", db->set.lockout_path, note);
		db->lockout_failed = 0;
	}
	return db->lockout;
}

struct rehash_ctx {
	const char *address;
	const char *old_hash;
	const char *new_hash;
};

/* rehash_edit - replace the hash only if nobody changed it meanwhile */
static int rehash_edit(struct hm_users *users, void *ctx)
{
	struct rehash_ctx *rc = ctx;
	const struct hm_user *u = hm_users_find(users, rc->address);

	if (u == NULL || strcmp(u->hash, rc->old_hash) != 0)
		return 0;
	return hm_users_set_hash(users, rc->address, rc->new_hash) < 0 ? -1 : 1;
}

/* maybe_rehash - after a successful login to a virtual account */
static void maybe_rehash(struct hm_authdb *db, const struct hm_authdb_account *acct,
			 const struct hm_pw_info *info, const char *password)
{
	char newh[HM_PW_HASH_SIZE];
	struct rehash_ctx rc;
	int r;

	if (!acct->is_virtual || db->set.rehash == HM_PW_UNKNOWN ||
	    info->scheme == db->set.rehash || info->scheme == HM_PW_NOLOGIN)
		return;
	if (hm_pw_hash(password, db->set.rehash, newh, sizeof(newh)) < 0) {
		authdb_log(db, HM_AUTHDB_ERROR, "rehash of %s failed: %s", acct->name, strerror(errno));
		return;
	}
	rc.address = acct->name;
	rc.old_hash = acct->hash;
	rc.new_hash = newh;
	r = hm_users_modify(db->set.users_path, rehash_edit, &rc, NULL, NULL);
	if (r < 0)
		authdb_log(db, HM_AUTHDB_ERROR, "rehash of %s: rewriting %s failed: %s",
		     acct->name, db->set.users_path, strerror(errno));
	else if (r == 1)
		authdb_log(db, HM_AUTHDB_INFO, "rehashed %s from %s to %s", acct->name, info->name,
		     hm_pw_scheme_name(db->set.rehash));
	explicit_bzero(newh, sizeof(newh));
}

/* dummy_crypt - one hash of the configured scheme for a refusal with no
 * hash of its own to verify, so that it takes as long as a wrong password;
 * the debug line lets a test see that it ran */
static void dummy_crypt(struct hm_authdb *db, const char *password, const char *name,
			const char *why)
{
	enum hm_pw_scheme s = db->set.rehash != HM_PW_UNKNOWN ? db->set.rehash : HM_PW_YESCRYPT;

	hm_pw_dummy(password, s);
	authdb_log(db, HM_AUTHDB_DEBUG, "login %s: dummy %s hash verified (%s)", name,
	     hm_pw_scheme_name(s), why);
}

/* check_password - 1 match, 0 mismatch (reason set when it is no plain
 * wrong password), -1 error (reason set) */
static int check_password(struct hm_authdb *db, const struct hm_authdb_account *acct,
			  const char *password, struct hm_pw_info *info_r,
			  char *reason, size_t rsize)
{
	char scheme[64];
	const char *bare = db->split(acct->hash, scheme, sizeof(scheme));
	int r;

	if (bare == NULL || hm_pw_identify(scheme, bare, info_r) < 0) {
		dummy_crypt(db, password, acct->name, "unusable hash");
		(void)hm_snprintf(reason, rsize, "unusable password hash");
		return -1;
	}
	if (info_r->scheme == HM_PW_NOLOGIN) {
		/* "!", "!<hash>" (passwd -l), "*", or no shadow entry: nothing
		 * can match, but the answer must take as long as a crypt */
		dummy_crypt(db, password, acct->name, "no usable password");
		(void)hm_snprintf(reason, rsize, "account has no usable password");
		return 0;
	}
	if (info_r->weak && !db->set.allow_weak) {
		dummy_crypt(db, password, acct->name, "weak scheme refused");
		(void)hm_snprintf(reason, rsize, "weak password scheme %s refused (allow_weak=no)",
				  info_r->name);
		return -1;
	}
	r = hm_pw_verify(password, scheme, bare, db->set.allow_weak);
	if (r < 0 && errno == ENOTSUP && db->ext_verify != NULL)
		r = db->ext_verify(db->log_ctx, password, scheme, bare, acct->name);
	if (r < 0) {
		(void)hm_snprintf(reason, rsize, "password scheme %s cannot be verified", scheme);
		return -1;
	}
	return r;
}

/* settle_attempt - after the password check: a success clears the user's
 * counter, a right password on an account that may not log in is no guess
 * (both reservations given back), anything else leaves the reserved
 * failure standing and says so when it set a lock */
static void settle_attempt(struct hm_authdb *db, struct hm_lockout *lo,
			   struct hm_lockout_resv *resv, enum hm_authdb_result res, int pw,
			   const char *key, const char *rip, const char *lg, const char *from)
{
	time_t now = time(NULL);
	char ck[300];

	if (res == HM_AUTHDB_OK || (res == HM_AUTHDB_MISMATCH && pw == 1)) {
		int r = res == HM_AUTHDB_OK ? hm_lockout_succeeded(lo, resv, now)
					    : hm_lockout_cancel(lo, resv, now);
		if (r < 0)
			authdb_log(db, HM_AUTHDB_ERROR, "lockout update failed: %s", strerror(errno));
		return;
	}
	if (resv->ip_unrecorded)
		authdb_log(db, HM_AUTHDB_WARNING, "lockout table full around %s: attempt not counted "
		     "against the address (login %s)", rip, lg);
	if (resv->ip.locked_until != 0)
		authdb_log(db, HM_AUTHDB_WARNING, "%s now %s for %ld s (after login %s%s)",
		     rip,
		     hm_lockout_verdict_name(HM_LOCKOUT_IP_LOCKED),
		     (long)(resv->ip.locked_until - now), lg, from);
	if (resv->user.locked_until != 0)
		authdb_log(db, HM_AUTHDB_WARNING, "%s now %s for %ld s (after login %s%s)",
		     authdb_clean(key, ck, sizeof(ck)), hm_lockout_verdict_name(HM_LOCKOUT_USER_LOCKED),
		     (long)(resv->user.locked_until - now), lg, from);
}

enum hm_authdb_result hm_authdb_verify(struct hm_authdb *db, const char *login,
				       const char *password, const char *remote_ip,
				       char *canon_r, size_t canon_size)
{
	struct hm_authdb_account acct;
	struct hm_lockout *lo;
	struct hm_lockout_status lst;
	struct hm_lockout_resv resv;
	enum hm_lockout_verdict verdict = HM_LOCKOUT_ALLOW;
	struct hm_pw_info info = { .scheme = HM_PW_UNKNOWN };
	char key[HM_AUTHDB_MAX_LOGIN + 1], lg[300], reason[160] = "", from[80] = "", rip[64] = "";
	time_t now = time(NULL);
	int found, pw = 0;
	enum hm_authdb_result res;
	const char *lock_ip;

	authdb_clean(login, lg, sizeof(lg));
	if (remote_ip != NULL && remote_ip[0] != '\0')
		(void)hm_snprintf(from, sizeof(from), " from %s",
				  authdb_clean(remote_ip, rip, sizeof(rip)));
	found = authdb_lookup_account(db, login, true, &acct);
	if (found < 0) {
		hm_authdb_account_free(&acct);
		return HM_AUTHDB_INTERNAL;
	}
	/* the lockout key: the canonical account name when it exists, so that
	 * "alice" and "alice@home.com.bo" share one counter; the login as
	 * given (lower-case, bounded) otherwise */
	if (found)
		(void)hm_strlcpy(key, acct.name, sizeof(key));
	else {
		size_t i;
		for (i = 0; login[i] != '\0' && i < sizeof(key) - 1; i++)
			key[i] = (char)tolower((unsigned char)login[i]);
		key[i] = '\0';
	}
	/* the address the lockout counts against (NULL: none or exempt) */
	lock_ip = remote_ip != NULL && remote_ip[0] != '\0' &&
		  !authdb_ip_exempt(&db->set, remote_ip) ? remote_ip : NULL;
	/* reserve the attempt before the password is checked: it is counted
	 * as a failure in the same locked step as the check, so parallel
	 * attempts (other auth-workers) see it at once and at most
	 * max_failures of them ever reach a deciding password check.  A
	 * worker that dies before settling it leaves one failure counted. */
	memset(&resv, 0, sizeof(resv));
	lo = lockout_handle(db);
	if (lo != NULL && hm_lockout_reserve(lo, found ? HM_LOCKOUT_USER : HM_LOCKOUT_UNKNOWN,
					     key, lock_ip, now, &verdict, &lst, &resv) < 0) {
		authdb_log(db, HM_AUTHDB_ERROR, "lockout check failed: %s", strerror(errno));
		verdict = HM_LOCKOUT_ALLOW;
	}
	/* always one crypt: refused, unknown and wrong all cost the same (a
	 * refused attempt's result only reaches the log, never the reply) */
	if (found)
		pw = check_password(db, &acct, password, &info, reason, sizeof(reason));
	else
		dummy_crypt(db, password, lg, "unknown user");

	if (verdict != HM_LOCKOUT_ALLOW) {
		long left = (long)(lst.retry_after - now);
		authdb_log(db, HM_AUTHDB_INFO, "login %s%s refused: %s for %ld more s%s",
		     lg, from, hm_lockout_verdict_name(verdict), left > 0 ? left : 0,
		     found && pw == 1 ? " (password was right)" : "");
		res = found ? HM_AUTHDB_MISMATCH : HM_AUTHDB_UNKNOWN;
	} else if (!found) {
		authdb_log(db, HM_AUTHDB_INFO, "login %s%s refused: unknown user", lg, from);
		res = HM_AUTHDB_UNKNOWN;
	} else if (pw < 0) {
		char where[320] = "";
		if (acct.is_virtual)
			(void)hm_snprintf(where, sizeof(where), " (%s line %u)",
					  db->set.users_path, acct.line);
		authdb_log(db, info.weak ? HM_AUTHDB_WARNING : HM_AUTHDB_ERROR,
		     "login %s%s refused: %s%s", lg, from, reason, where);
		res = HM_AUTHDB_MISMATCH;
	} else if (pw == 0) {
		authdb_log(db, HM_AUTHDB_INFO, "login %s%s refused: %s", lg, from,
		     reason[0] != '\0' ? reason : "password mismatch");
		res = HM_AUTHDB_MISMATCH;
	} else if (acct.login_disabled) {
		authdb_log(db, HM_AUTHDB_INFO, "login %s%s refused: %s", lg, from, acct.disabled_why);
		res = HM_AUTHDB_MISMATCH;
	} else {
		res = HM_AUTHDB_OK;
	}
	if (lo != NULL && verdict == HM_LOCKOUT_ALLOW)
		settle_attempt(db, lo, &resv, res, pw, key, rip, lg, from);
	if (res == HM_AUTHDB_OK) {
		(void)hm_strlcpy(canon_r, acct.name, canon_size);
		maybe_rehash(db, &acct, &info, password);
	}
	hm_authdb_account_free(&acct);
	return res;
}
