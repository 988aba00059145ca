/* deliver_user.c — find the recipient and become them.
 *
 * What for: homemail-deliver runs as the recipient, never as root.  Users
 *   come from Dovecot's userdb socket (hm_authmaster) and/or passwd.
 * Relies on: hm_authmaster; getpwnam/getgrouplist for groups; without -d,
 *   $USER and $HOME when both are set (dovecot-lda's rule), else getpwuid.
 * How it fails: unknown user -> 67, lookup trouble -> 75, privilege change
 *   failure -> 75 (the caller exits); messages go to err for stderr/syslog.
 *   Privileges change only in deliver_user_become, in the order
 *   setgroups -> setresgid -> setresuid, each checked, then verified.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "deliver_int.h"
#include "hm_authmaster.h"
#include "hm_util.h"

/* dupn - strdup of NULL-able */
static char *dupn(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* deliver_user_free - release the strings */
void deliver_user_free(struct deliver_user *u)
{
	free(u->name);
	free(u->home);
	free(u->mail);
	free(u->quota_rule);
	free(u->sieve);
	memset(u, 0, sizeof *u);
}

/* parse_id - numeric id or a name looked up with lookup (1 = user, 0 = group) */
static int parse_id(const char *v, int is_user, unsigned long *id_r)
{
	char *end;
	if (v == NULL || *v == '\0')
		return -1;
	errno = 0;
	unsigned long n = strtoul(v, &end, 10);
	if (*end == '\0' && errno == 0 && n < (unsigned long)UINT_MAX) {
		*id_r = n;
		return 0;
	}
	if (is_user) {
		struct passwd *pw = getpwnam(v);
		if (pw == NULL)
			return -1;
		*id_r = pw->pw_uid;
	} else {
		struct group *gr = getgrnam(v);
		if (gr == NULL)
			return -1;
		*id_r = gr->gr_gid;
	}
	return 0;
}

/* from_passwd - fill user_r from the passwd entry pw */
static int from_passwd(const struct passwd *pw, struct deliver_user *user_r)
{
	user_r->name = strdup(pw->pw_name);
	user_r->home = strdup(pw->pw_dir ? pw->pw_dir : "");
	user_r->uid = pw->pw_uid;
	user_r->gid = pw->pw_gid;
	return (user_r->name && user_r->home) ? 0 : -1;
}

/* from_userdb - fill user_r from a userdb reply (uid and gid are required) */
static int from_userdb(const struct hm_auth_reply *r, const char *asked,
		       struct deliver_user *user_r, char *err, size_t errsize)
{
	unsigned long uid, gid;
	if (parse_id(hm_auth_reply_get(r, "uid"), 1, &uid) < 0 ||
	    parse_id(hm_auth_reply_get(r, "gid"), 0, &gid) < 0) {
		snprintf(err, errsize, "userdb reply for %s lacks a usable uid/gid", asked);
		return -1;
	}
	const char *home = hm_auth_reply_get(r, "home");
	user_r->name = strdup(r->user && *r->user ? r->user : asked);
	user_r->home = strdup(home ? home : "");
	user_r->mail = dupn(hm_auth_reply_get(r, "mail"));
	user_r->quota_rule = dupn(hm_auth_reply_get(r, "quota_rule"));
	user_r->sieve = dupn(hm_auth_reply_get(r, "sieve"));
	user_r->uid = (uid_t)uid;
	user_r->gid = (gid_t)gid;
	if (user_r->name == NULL || user_r->home == NULL) {
		snprintf(err, errsize, "out of memory");
		return -1;
	}
	return 0;
}

/* env_name_ok - a $USER value usable as a login name: 1-256 printable
 * ASCII bytes, no '/' and no blank (it is logged and expanded as %u) */
static bool env_name_ok(const char *v)
{
	size_t n = 0;
	if (v == NULL || *v == '\0')
		return false;
	for (const unsigned char *p = (const unsigned char *)v; *p; p++, n++)
		if (n >= 256 || *p <= 0x20 || *p >= 0x7f || *p == '/')
			return false;
	return true;
}

/* from_env - the invoking user from $USER and $HOME, as dovecot-lda takes
 * it: Exim's pipe transport sets both from the passwd entry it already
 * looked up, so a second NSS lookup per message (~0.1 ms, 13 page faults,
 * 19 system calls here) buys nothing.  Nothing is gained by lying: we run
 * as the caller's uid, and lookup_own_user still checks the userdb's uid.
 * Returns 1 when used, 0 when the environment does not say (use passwd),
 * -1 out of memory. */
static int from_env(struct deliver_user *user_r)
{
	const char *name = getenv("USER"), *home = getenv("HOME");
	if (!env_name_ok(name) || home == NULL || home[0] != '/' || strlen(home) > 4096)
		return 0;
	user_r->name = strdup(name);
	user_r->home = strdup(home);
	user_r->uid = getuid();
	user_r->gid = getgid();
	return (user_r->name && user_r->home) ? 1 : -1;
}

/* deliver_user_resolve - see deliver_int.h */
int deliver_user_resolve(const struct deliver_conf *c, const char *dflag,
			 struct deliver_user *user_r, char *err, size_t errsize)
{
	char clean[128];
	memset(user_r, 0, sizeof *user_r);

	if (dflag == NULL) {
		if (getuid() == 0 || geteuid() == 0) {
			snprintf(err, errsize, "running as root without -d USER: refusing to deliver as root");
			return DELIVER_EX_TEMPFAIL;
		}
		int fe = from_env(user_r);
		struct passwd *pw = fe == 0 ? getpwuid(getuid()) : NULL;
		if (fe == 0 && pw == NULL) {
			snprintf(err, errsize, "no passwd entry for uid %ld", (long)getuid());
			return DELIVER_EX_TEMPFAIL;
		}
		if (fe < 0 || (fe == 0 && from_passwd(pw, user_r) < 0)) {
			snprintf(err, errsize, "out of memory");
			return DELIVER_EX_TEMPFAIL;
		}
		if (!c->lookup_own_user || !c->userdb_socket)
			return DELIVER_EX_OK;
		/* ask the userdb about ourselves for mail/quota/sieve settings */
		struct hm_auth_reply *r = NULL;
		char aerr[256];
		int a = hm_auth_user_lookup(c->auth_socket, user_r->name, "deliver", c->auth_timeout_ms,
					    &r, aerr, sizeof aerr);
		if (a == HM_AUTH_TEMPFAIL) {
			snprintf(err, errsize, "userdb lookup for %s: %s", user_r->name, aerr);
			return DELIVER_EX_TEMPFAIL;
		}
		if (a == HM_AUTH_FOUND) {
			struct deliver_user v;
			memset(&v, 0, sizeof v);
			if (from_userdb(r, user_r->name, &v, err, errsize) < 0) {
				hm_auth_reply_free(&r);
				deliver_user_free(&v);
				return DELIVER_EX_TEMPFAIL;
			}
			hm_auth_reply_free(&r);
			if (v.uid != user_r->uid) {
				snprintf(err, errsize, "userdb says uid %ld for %s, we run as uid %ld",
					 (long)v.uid, user_r->name, (long)user_r->uid);
				deliver_user_free(&v);
				return DELIVER_EX_TEMPFAIL;
			}
			deliver_user_free(user_r);
			*user_r = v;
		} else if (!c->userdb_passwd) {
			snprintf(err, errsize, "unknown user %s (userdb)", user_r->name);
			return DELIVER_EX_NOUSER;
		}
		return DELIVER_EX_OK;
	}

	hm_log_clean(clean, sizeof clean, dflag, strlen(dflag));
	if (c->userdb_socket) {
		struct hm_auth_reply *r = NULL;
		char aerr[256];
		int a = hm_auth_user_lookup(c->auth_socket, dflag, "deliver", c->auth_timeout_ms,
					    &r, aerr, sizeof aerr);
		if (a == HM_AUTH_TEMPFAIL) {
			snprintf(err, errsize, "userdb lookup for %s: %s", clean, aerr);
			return DELIVER_EX_TEMPFAIL;
		}
		if (a == HM_AUTH_FOUND) {
			int rc = from_userdb(r, dflag, user_r, err, errsize);
			hm_auth_reply_free(&r);
			return rc == 0 ? DELIVER_EX_OK : DELIVER_EX_TEMPFAIL;
		}
		if (!c->userdb_passwd) {
			snprintf(err, errsize, "unknown user %s", clean);
			return DELIVER_EX_NOUSER;
		}
	}
	errno = 0;
	struct passwd *pw = getpwnam(dflag);
	if (pw == NULL) {
		if (errno != 0 && errno != ENOENT && errno != ESRCH) {
			snprintf(err, errsize, "passwd lookup for %s: %s", clean, strerror(errno));
			return DELIVER_EX_TEMPFAIL;
		}
		snprintf(err, errsize, "unknown user %s", clean);
		return DELIVER_EX_NOUSER;
	}
	if (from_passwd(pw, user_r) < 0) {
		snprintf(err, errsize, "out of memory");
		return DELIVER_EX_TEMPFAIL;
	}
	return DELIVER_EX_OK;
}

/* deliver_user_become - see deliver_int.h */
int deliver_user_become(const struct deliver_user *u, char *err, size_t errsize)
{
	if (u->uid == 0) {
		snprintf(err, errsize, "refusing to deliver for %s: uid 0", u->name);
		return -1;
	}
	if (geteuid() != 0 && getuid() != 0) {
		if (getuid() != u->uid || geteuid() != u->uid) {
			snprintf(err, errsize, "cannot deliver for %s (uid %ld) as uid %ld: not root",
				 u->name, (long)u->uid, (long)getuid());
			return -1;
		}
		return 0;
	}
	if (u->gid == 0) {
		/* like Dovecot's first_valid_gid: never hand out the root group */
		snprintf(err, errsize, "refusing to deliver for %s: gid 0", u->name);
		return -1;
	}
	/* supplementary groups: 64 on the stack cover every normal account; a
	 * larger list goes to the heap (NGROUPS_MAX gids on the stack were a
	 * 256 KiB frame, a stack fault, on every run) */
	gid_t small[64], *groups = small, *big = NULL;
	int ng = (int)HM_ARRAY_SIZE(small);
	struct passwd *pw = getpwnam(u->name);
	if (pw == NULL || pw->pw_uid != u->uid) {
		ng = -1;
	} else if (getgrouplist(u->name, u->gid, groups, &ng) < 0) {
		if (ng > (int)HM_ARRAY_SIZE(small) && ng <= NGROUPS_MAX &&
		    (big = calloc((size_t)ng, sizeof *big)) != NULL &&
		    getgrouplist(u->name, u->gid, big, &ng) >= 0)
			groups = big;
		else
			ng = -1;
	}
	if (ng < 1) {
		groups = small;
		groups[0] = u->gid;
		ng = 1;
	}
	int sg_rc = setgroups((size_t)ng, groups);
	int sg_errno = errno;
	free(big);
	if (sg_rc < 0) {
		snprintf(err, errsize, "setgroups: %s", strerror(sg_errno));
		return -1;
	}
	if (setresgid(u->gid, u->gid, u->gid) < 0) {
		snprintf(err, errsize, "setresgid(%ld): %s", (long)u->gid, strerror(errno));
		return -1;
	}
	if (setresuid(u->uid, u->uid, u->uid) < 0) {
		snprintf(err, errsize, "setresuid(%ld): %s", (long)u->uid, strerror(errno));
		return -1;
	}
	uid_t ru, eu, su;
	gid_t rg, eg, sg;
	if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0 ||
	    ru != u->uid || eu != u->uid || su != u->uid ||
	    rg != u->gid || eg != u->gid || sg != u->gid || setuid(0) == 0) {
		snprintf(err, errsize, "privilege drop to uid %ld did not stick", (long)u->uid);
		return -1;
	}
	return 0;
}
