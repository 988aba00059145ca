/* authdb_core.c — account resolution, password check, lockout and rehash
 * for the `homemail` Dovecot passdb/userdb (see authdb_core.h).
 *
 * What for: one policy for every login (IMAP, POP3, SMTP AUTH via Dovecot's
 * auth-client socket) and every userdb lookup (LDA, Exim recipient check).
 * Relies on: lib/hm_users (users file, libxcrypt), lib/hm_lockout (state
 * file), NSS (getpwnam_r, getgrnam_r) and shadow (getspnam_r: root only,
 * hence Dovecot's auth-worker processes).
 * How it fails: an unreadable users file or NSS error is an internal
 * (temporary) failure, logged; a lockout state file that cannot be opened
 * is logged (retried once a minute) and logins go on without lockout rather than
 * locking everybody out; a malformed users line is logged with its number
 * and skipped.  Every refused login costs one crypt and gets the same
 * answer: a wrong password or a locked/disabled account the crypt of its own
 * hash, and whatever has no hash to verify (unknown user, `!`/`*`/missing
 * hash, unusable or refused weak hash) one dummy hash of the configured
 * (rehash) scheme, logged at debug level so that tests can see it.
 * A login is counted as a failure before its password is verified (see
 * hm_lockout_reserve), so a worker killed in between leaves one failure
 * counted, never a free guess.
 */
#include "authdb_core.h"
#include "hm_util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <shadow.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#define NSS_BUF_START 4096
#define NSS_BUF_MAX   (1u << 20)

/* logf - format a message and hand it to the log callback */
static void __attribute__((format(printf, 3, 4)))
dblog(struct hm_authdb *db, enum hm_authdb_log_level lvl, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (db->log == NULL)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	db->log(db->log_ctx, lvl, msg);
}

/* clean - printable copy of untrusted text for a log line */
static const char *clean(const char *s, char *buf, size_t size)
{
	hm_log_clean(buf, size, s, strlen(s));
	return buf;
}

void hm_authdb_set_default(struct hm_authdb_set *set)
{
	memset(set, 0, sizeof(*set));
	(void)hm_strlcpy(set->users_path, HM_USERS_PATH_DEFAULT, sizeof(set->users_path));
	set->system = true;
	(void)hm_strlcpy(set->group, "users", sizeof(set->group));
	set->min_uid = 1000;
	set->rehash = HM_PW_YESCRYPT;
	(void)hm_strlcpy(set->lockout_path, HM_LOCKOUT_PATH_DEFAULT, sizeof(set->lockout_path));
	hm_lockout_policy_default(&set->policy);
	/* local clients (webmail on this host) share one address: only their
	 * per-user counters apply */
	(void)hm_strlcpy(set->ip_exempt[0], "127.0.0.1", sizeof(set->ip_exempt[0]));
	(void)hm_strlcpy(set->ip_exempt[1], "::1", sizeof(set->ip_exempt[1]));
	set->nip_exempt = 2;
	(void)hm_strlcpy(set->mail, "maildir:~/Maildir", sizeof(set->mail));
	/* Pigeonhole's default location, which homemail-deliver reads the
	 * same way (docs/deliver.md): one answer for ManageSieve and the LDA */
	(void)hm_strlcpy(set->sieve, "file:~/sieve;active=~/.dovecot.sieve", sizeof(set->sieve));
	set->blocking = true;
}

/* parse_bool - yes/no/true/false/1/0 */
static int parse_bool(const char *v, bool *b)
{
	if (strcasecmp(v, "yes") == 0 || strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0)
		*b = true;
	else if (strcasecmp(v, "no") == 0 || strcasecmp(v, "false") == 0 || strcmp(v, "0") == 0)
		*b = false;
	else
		return -1;
	return 0;
}

/* parse_uint - decimal in [lo, hi] */
static int parse_uint(const char *v, unsigned long lo, unsigned long hi, unsigned long *r)
{
	char *end;
	unsigned long x;

	if (!isdigit((unsigned char)v[0]))
		return -1;
	errno = 0;
	x = strtoul(v, &end, 10);
	if (errno != 0 || *end != '\0' || x < lo || x > hi)
		return -1;
	*r = x;
	return 0;
}

/* parse_path - absolute path, or "" for no/none */
static int parse_path(const char *v, char *dst, size_t size)
{
	if (strcmp(v, "no") == 0 || strcmp(v, "none") == 0 || v[0] == '\0') {
		dst[0] = '\0';
		return 0;
	}
	if (v[0] != '/')
		return -1;
	return hm_strlcpy(dst, v, size);
}

/* parse_v4cidr - "a.b.c.d[/n]" → network and mask (host order); -1 if not */
static int parse_v4cidr(const char *s, uint32_t *net, uint32_t *mask)
{
	char buf[64], *slash;
	struct in_addr a;
	unsigned long bits = 32;

	if (hm_strlcpy(buf, s, sizeof(buf)) < 0)
		return -1;
	if ((slash = strchr(buf, '/')) != NULL) {
		*slash = '\0';
		if (parse_uint(slash + 1, 0, 32, &bits) < 0)
			return -1;
	}
	if (inet_pton(AF_INET, buf, &a) != 1)
		return -1;
	*mask = bits == 0 ? 0 : 0xffffffffu << (32 - bits);
	*net = ntohl(a.s_addr) & *mask;
	return 0;
}

/* valid_exempt - an IPv4 address/CIDR or an IPv6 address */
static bool valid_exempt(const char *s)
{
	struct in6_addr a6;
	uint32_t n, m;

	return parse_v4cidr(s, &n, &m) == 0 || inet_pton(AF_INET6, s, &a6) == 1;
}

/* ip_is_exempt - remote address listed in ip_exempt? */
static bool ip_is_exempt(const struct hm_authdb_set *set, const char *ip)
{
	struct in_addr a;
	struct in6_addr a6, b6;

	for (unsigned int i = 0; i < set->nip_exempt; i++) {
		uint32_t net, mask;
		if (inet_pton(AF_INET, ip, &a) == 1 &&
		    parse_v4cidr(set->ip_exempt[i], &net, &mask) == 0 &&
		    (ntohl(a.s_addr) & mask) == net)
			return true;
		if (inet_pton(AF_INET6, ip, &a6) == 1 &&
		    inet_pton(AF_INET6, set->ip_exempt[i], &b6) == 1 &&
		    memcmp(&a6, &b6, sizeof(a6)) == 0)
			return true;
	}
	return false;
}

int hm_authdb_parse_args(const char *args, struct hm_authdb_set *set, char *err, size_t errlen)
{
	char *copy = strdup(args != NULL ? args : ""), *save = NULL, *tok;
	int ret = 0;

	if (copy == NULL) {
		(void)hm_snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (tok = strtok_r(copy, " \t\r\n", &save); tok != NULL && ret == 0;
	     tok = strtok_r(NULL, " \t\r\n", &save)) {
		char *v = strchr(tok, '=');
		unsigned long n = 0;       /* parse_uint leaves it alone on error */
		bool bad = false;

		if (v == NULL) {
			(void)hm_snprintf(err, errlen, "argument without '=': %.64s", tok);
			ret = -1;
			break;
		}
		*v++ = '\0';
		if (strcmp(tok, "users") == 0)
			bad = parse_path(v, set->users_path, sizeof(set->users_path)) < 0;
		else if (strcmp(tok, "system") == 0)
			bad = parse_bool(v, &set->system) < 0;
		else if (strcmp(tok, "group") == 0)
			bad = v[0] == '\0' || hm_strlcpy(set->group, v, sizeof(set->group)) < 0;
		else if (strcmp(tok, "min_uid") == 0) {
			bad = parse_uint(v, 1, 0x7fffffffUL, &n) < 0;
			set->min_uid = n;
		} else if (strcmp(tok, "domains") == 0) {
			char *s2 = NULL, *d;
			set->ndomains = 0;
			for (d = strtok_r(v, ",", &s2); d != NULL && !bad; d = strtok_r(NULL, ",", &s2)) {
				char tmp[HM_USERS_MAX_ADDRESS + 1], full[HM_USERS_MAX_ADDRESS + 8];
				if (set->ndomains == HM_AUTHDB_MAX_DOMAINS ||
				    hm_snprintf(full, sizeof(full), "x@%s", d) < 0 ||
				    hm_users_normalize_address(full, tmp, sizeof(tmp)) < 0)
					bad = true;
				else
					(void)hm_strlcpy(set->domains[set->ndomains++], tmp + 2,
							 sizeof(set->domains[0]));
			}
		} else if (strcmp(tok, "ip_exempt") == 0) {
			char *s2 = NULL, *d;
			set->nip_exempt = 0;
			if (strcmp(v, "no") != 0 && strcmp(v, "none") != 0)
				for (d = strtok_r(v, ",", &s2); d != NULL && !bad; d = strtok_r(NULL, ",", &s2))
					bad = set->nip_exempt == HM_ARRAY_SIZE(set->ip_exempt) ||
					      !valid_exempt(d) ||
					      hm_strlcpy(set->ip_exempt[set->nip_exempt++], d,
							 sizeof(set->ip_exempt[0])) < 0;
		} else if (strcmp(tok, "allow_weak") == 0)
			bad = parse_bool(v, &set->allow_weak) < 0;
		else if (strcmp(tok, "rehash") == 0) {
			if (strcmp(v, "no") == 0)
				set->rehash = HM_PW_UNKNOWN;
			else
				bad = (set->rehash = hm_pw_scheme_by_name(v)) == HM_PW_UNKNOWN;
		} else if (strcmp(tok, "lockout") == 0)
			bad = parse_path(v, set->lockout_path, sizeof(set->lockout_path)) < 0;
		else if (strcmp(tok, "max_failures") == 0) {
			bad = parse_uint(v, 0, 1000000, &n) < 0;
			set->policy.max_failures = (unsigned int)n;
		} else if (strcmp(tok, "ip_max_failures") == 0) {
			bad = parse_uint(v, 0, 1000000, &n) < 0;
			set->policy.ip_max_failures = (unsigned int)n;
		} else if (strcmp(tok, "window") == 0) {
			bad = parse_uint(v, 1, 86400 * 30, &n) < 0;
			set->policy.window = (unsigned int)n;
		} else if (strcmp(tok, "lock_time") == 0) {
			bad = parse_uint(v, 1, 86400 * 30, &n) < 0;
			set->policy.lock_time = (unsigned int)n;
		} else if (strcmp(tok, "backoff_after") == 0) {
			bad = parse_uint(v, 0, 1000000, &n) < 0;
			set->policy.backoff_after = (unsigned int)n;
		} else if (strcmp(tok, "backoff_max") == 0) {
			bad = parse_uint(v, 1, 86400, &n) < 0;
			set->policy.backoff_max = (unsigned int)n;
		} else if (strcmp(tok, "lockout_slots") == 0) {
			bad = parse_uint(v, HM_LOCKOUT_MIN_SLOTS, HM_LOCKOUT_MAX_SLOTS, &n) < 0;
			set->policy.slots = (unsigned int)n;
		} else if (strcmp(tok, "ipv6_prefix") == 0) {
			bad = parse_uint(v, 1, 128, &n) < 0;
			set->policy.ipv6_prefix = (unsigned int)n;
		} else if (strcmp(tok, "mail") == 0)
			bad = hm_strlcpy(set->mail, strcmp(v, "no") == 0 ? "" : v, sizeof(set->mail)) < 0;
		else if (strcmp(tok, "sieve") == 0)
			bad = hm_strlcpy(set->sieve, strcmp(v, "no") == 0 ? "" : v, sizeof(set->sieve)) < 0;
		else if (strcmp(tok, "blocking") == 0)
			bad = parse_bool(v, &set->blocking) < 0;
		else {
			(void)hm_snprintf(err, errlen, "unknown argument: %.64s", tok);
			ret = -1;
			break;
		}
		if (bad) {
			(void)hm_snprintf(err, errlen, "invalid value for %s: %.128s", tok, v);
			ret = -1;
		}
	}
	free(copy);
	if (ret == 0 && set->users_path[0] == '\0' && !set->system) {
		(void)hm_snprintf(err, errlen, "neither users= nor system=yes: no accounts");
		ret = -1;
	}
	return ret;
}

void hm_authdb_init(struct hm_authdb *db, const struct hm_authdb_set *set,
		    hm_authdb_log_fn *log, void *log_ctx)
{
	memset(db, 0, sizeof(*db));
	db->set = *set;
	db->log = log;
	db->log_ctx = log_ctx;
	db->split = hm_pw_split;
}

void hm_authdb_deinit(struct hm_authdb *db)
{
	hm_users_free(&db->users);
	hm_lockout_close(&db->lockout);
}

void hm_authdb_account_free(struct hm_authdb_account *acct)
{
	if (acct->hash != NULL) {
		explicit_bzero(acct->hash, strlen(acct->hash));
		free(acct->hash);
		acct->hash = NULL;
	}
}

/* users_warn - malformed users-file line → warning log */
static void users_warn(void *ctx, const char *path, unsigned int line, const char *msg)
{
	dblog(ctx, HM_AUTHDB_WARNING, "%s line %u: %s (line ignored)", path, line, msg);
}

/* users_refresh - (re)load the users file when it changed.  0 ok, -1 error */
static int users_refresh(struct hm_authdb *db)
{
	struct stat st;
	struct hm_users *fresh;

	if (db->set.users_path[0] == '\0')
		return 0;
	if (stat(db->set.users_path, &st) < 0) {
		if (errno == ENOENT) {
			/* no file: no virtual accounts (yet) */
			if (db->users_loaded || db->users == NULL) {
				hm_users_free(&db->users);
				db->users = hm_users_empty();
				db->users_loaded = false;
			}
			return db->users != NULL ? 0 : -1;
		}
		dblog(db, HM_AUTHDB_ERROR, "stat(%s) failed: %s", db->set.users_path, strerror(errno));
		return -1;
	}
	if (db->users_loaded && st.st_dev == db->users_dev && st.st_ino == db->users_ino &&
	    st.st_size == db->users_size && st.st_mtim.tv_sec == db->users_mtime.tv_sec &&
	    st.st_mtim.tv_nsec == db->users_mtime.tv_nsec)
		return 0;
	for (int attempt = 0;; attempt++) {
		if (hm_users_load(db->set.users_path, users_warn, db, &fresh) == 0)
			break;
		if (errno == EAGAIN && attempt < 3)
			continue;
		dblog(db, HM_AUTHDB_ERROR, "reading %s failed: %s", db->set.users_path, strerror(errno));
		return -1;
	}
	if (st.st_mode & 0004)
		dblog(db, HM_AUTHDB_WARNING, "%s is world-readable: password hashes exposed",
		     db->set.users_path);
	hm_users_free(&db->users);
	db->users = fresh;
	db->users_loaded = true;
	db->users_dev = st.st_dev;
	db->users_ino = st.st_ino;
	db->users_size = st.st_size;
	db->users_mtime = st.st_mtim;
	return 0;
}

/* nss_buf - grow-on-ERANGE helper for the *_r NSS calls */
static char *nss_buf_grow(char *buf, size_t *size)
{
	char *n;

	if (*size >= NSS_BUF_MAX)
		return NULL;
	*size = *size ? *size * 2 : NSS_BUF_START;
	n = realloc(buf, *size);
	if (n == NULL)
		free(buf);
	return n;
}

/* in_group - is the passwd entry a member of the configured group?
 * 1 yes, 0 no, -1 NSS error */
static int in_group(struct hm_authdb *db, const struct passwd *pw)
{
	struct group gr, *res = NULL;
	char *buf = NULL;
	size_t size = 0;
	int ret = 0, e;

	do {
		if ((buf = nss_buf_grow(buf, &size)) == NULL)
			return -1;
		e = getgrnam_r(db->set.group, &gr, buf, size, &res);
	} while (e == ERANGE);
	if (e != 0) {
		dblog(db, HM_AUTHDB_ERROR, "getgrnam(%s) failed: %s", db->set.group, strerror(e));
		ret = -1;
	} else if (res == NULL) {
		dblog(db, HM_AUTHDB_ERROR, "group %s does not exist", db->set.group);
		ret = -1;
	} else if (gr.gr_gid == pw->pw_gid) {
		ret = 1;
	} else {
		for (char **m = gr.gr_mem; *m != NULL; m++)
			if (strcmp(*m, pw->pw_name) == 0)
				ret = 1;
	}
	free(buf);
	return ret;
}

/* valid_unix_name - the shape useradd accepts by default */
static bool valid_unix_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 32 || !(islower((unsigned char)s[0]) || s[0] == '_'))
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!(islower(c) || isdigit(c) || c == '_' || c == '-' || c == '.' ||
		      (c == '$' && i + 1 == n)))
			return false;
	}
	return true;
}

/* lookup_system - a system account by Unix name.  1/0/-1 */
static int lookup_system(struct hm_authdb *db, const char *name, bool want_hash,
			 struct hm_authdb_account *acct)
{
	struct passwd pw, *pwr = NULL;
	struct spwd sp, *spr = NULL;
	char *buf = NULL;
	size_t size = 0;
	int e, g, ret = 1;

	if (!valid_unix_name(name))
		return 0;
	do {
		if ((buf = nss_buf_grow(buf, &size)) == NULL)
			return -1;
		e = getpwnam_r(name, &pw, buf, size, &pwr);
	} while (e == ERANGE);
	if (e != 0 && e != ENOENT && e != ESRCH) {
		dblog(db, HM_AUTHDB_ERROR, "getpwnam(%s) failed: %s", name, strerror(e));
		free(buf);
		return -1;
	}
	if (pwr == NULL) {
		free(buf);
		return 0;
	}
	if (pw.pw_uid == 0 || pw.pw_uid < db->set.min_uid) {
		dblog(db, HM_AUTHDB_INFO, "system account %s has uid %lu < min_uid %lu: not served",
		     name, (unsigned long)pw.pw_uid, db->set.min_uid);
		free(buf);
		return 0;
	}
	g = in_group(db, &pw);
	if (g <= 0) {
		if (g == 0)
			dblog(db, HM_AUTHDB_INFO, "system account %s is not in group %s: not served",
			     name, db->set.group);
		free(buf);
		return g;
	}
	memset(acct, 0, sizeof(*acct));
	(void)hm_strlcpy(acct->name, pw.pw_name, sizeof(acct->name));
	acct->uid = pw.pw_uid;
	acct->gid = pw.pw_gid;
	if (hm_strlcpy(acct->home, pw.pw_dir, sizeof(acct->home)) < 0 ||
	    !hm_users_valid_home(acct->home)) {
		dblog(db, HM_AUTHDB_WARNING, "system account %s has an unusable home: not served", name);
		free(buf);
		return 0;
	}
	free(buf);
	if (!want_hash)
		return 1;
	buf = NULL;
	size = 0;
	do {
		if ((buf = nss_buf_grow(buf, &size)) == NULL)
			return -1;
		e = getspnam_r(name, &sp, buf, size, &spr);
	} while (e == ERANGE);
	if (spr == NULL) {
		dblog(db, HM_AUTHDB_ERROR, "no shadow entry for %s (%s): login refused", name,
		     e == 0 || e == ENOENT ? "missing" : strerror(e));
		acct->hash = strdup("*");
		acct->login_disabled = true;
		(void)hm_strlcpy(acct->disabled_why, "no shadow entry", sizeof(acct->disabled_why));
	} else {
		acct->hash = strdup(sp.sp_pwdp != NULL ? sp.sp_pwdp : "*");
		if (sp.sp_expire > 0 && time(NULL) / 86400 >= sp.sp_expire) {
			acct->login_disabled = true;
			(void)hm_strlcpy(acct->disabled_why, "account expired (shadow)",
					 sizeof(acct->disabled_why));
		}
		if (sp.sp_pwdp != NULL)
			explicit_bzero(sp.sp_pwdp, strlen(sp.sp_pwdp));
	}
	explicit_bzero(buf, size);
	free(buf);
	if (acct->hash == NULL)
		ret = -1;
	return ret;
}

/* login_ok - the login name is something we would ever look up */
static bool login_ok(const char *login)
{
	size_t n = strlen(login);

	if (n == 0 || n > HM_AUTHDB_MAX_LOGIN)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)login[i];
		if (c <= 0x20 || c == 0x7f || c == ':')
			return false;
	}
	return true;
}

/* lookup_impl - shared by lookup and verify */
static int lookup_impl(struct hm_authdb *db, const char *login, bool want_hash,
		       struct hm_authdb_account *acct)
{
	char addr[HM_USERS_MAX_ADDRESS + 1];
	const char *at = strchr(login, '@');

	memset(acct, 0, sizeof(*acct));
	if (!login_ok(login))
		return 0;
	if (at != NULL) {
		if (hm_users_normalize_address(login, addr, sizeof(addr)) < 0)
			return 0;
		if (db->set.users_path[0] != '\0') {
			const struct hm_user *u;
			if (users_refresh(db) < 0)
				return -1;
			u = db->users != NULL ? hm_users_find(db->users, addr) : NULL;
			if (u != NULL) {
				if (u->uid < db->set.min_uid) {
					dblog(db, HM_AUTHDB_WARNING, "%s line %u: uid %lu < min_uid %lu: not served",
					     db->set.users_path, u->line, (unsigned long)u->uid, db->set.min_uid);
					return 0;
				}
				(void)hm_strlcpy(acct->name, u->address, sizeof(acct->name));
				acct->is_virtual = true;
				acct->uid = u->uid;
				acct->gid = u->gid;
				(void)hm_strlcpy(acct->home, u->home, sizeof(acct->home));
				acct->quota_bytes = u->quota_bytes;
				acct->line = u->line;
				if (u->state != HM_USER_ACTIVE) {
					acct->login_disabled = true;
					(void)hm_snprintf(acct->disabled_why, sizeof(acct->disabled_why),
							  "account %s", hm_user_state_name(u->state));
				}
				if (want_hash && (acct->hash = strdup(u->hash)) == NULL)
					return -1;
				return 1;
			}
		}
		if (!db->set.system)
			return 0;
		/* user@<local domain> → system user */
		const char *dom = strchr(addr, '@') + 1;
		bool local = false;
		for (unsigned int i = 0; i < db->set.ndomains; i++)
			if (strcmp(dom, db->set.domains[i]) == 0)
				local = true;
		if (!local)
			return 0;
		addr[dom - 1 - addr] = '\0';
		return lookup_system(db, addr, want_hash, acct);
	}
	if (!db->set.system)
		return 0;
	return lookup_system(db, login, want_hash, acct);
}

int hm_authdb_lookup(struct hm_authdb *db, const char *login, struct hm_authdb_account *acct_r)
{
	return lookup_impl(db, login, false, acct_r);
}

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
		dblog(db, HM_AUTHDB_ERROR, "lockout state %s unusable: %s - "
		     "logins proceed WITHOUT brute-force protection",
		     db->set.lockout_path, strerror(errno));
		db->lockout_failed = now;
		db->lockout = NULL;
	} else {
		const char *note = hm_lockout_open_note(db->lockout);
		if (note != NULL)
			dblog(db, HM_AUTHDB_WARNING, "lockout state %s: %s", db->set.lockout_path, note);
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
		dblog(db, HM_AUTHDB_ERROR, "rehash of %s failed: %s", acct->name, strerror(errno));
		return;
	}
	rc.address = acct->name;
	rc.old_hash = acct->hash;
	rc.new_hash = newh;
	r = hm_users_modify(db->set.users_path, rehash_edit, &rc, NULL, NULL);
	if (r < 0)
		dblog(db, HM_AUTHDB_ERROR, "rehash of %s: rewriting %s failed: %s",
		     acct->name, db->set.users_path, strerror(errno));
	else if (r == 1)
		dblog(db, HM_AUTHDB_INFO, "rehashed %s from %s to %s", acct->name, info->name,
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
	dblog(db, HM_AUTHDB_DEBUG, "login %s: dummy %s hash verified (%s)", name,
	     hm_pw_scheme_name(s), why);
}

/* check_password - 1 match, 0 mismatch (reason set when it is no plain
 * wrong password), -1 error (reason set) */
static int check_password(struct hm_authdb *db, const struct hm_authdb_account *acct,
			  const char *password, struct hm_pw_info *info,
			  char *reason, size_t rsize)
{
	char scheme[64];
	const char *bare = db->split(acct->hash, scheme, sizeof(scheme));
	int r;

	if (bare == NULL || hm_pw_identify(scheme, bare, info) < 0) {
		dummy_crypt(db, password, acct->name, "unusable hash");
		(void)hm_snprintf(reason, rsize, "unusable password hash");
		return -1;
	}
	if (info->scheme == HM_PW_NOLOGIN) {
		/* "!", "!<hash>" (passwd -l), "*", or no shadow entry: nothing
		 * can match, but the answer must take as long as a crypt */
		dummy_crypt(db, password, acct->name, "no usable password");
		(void)hm_snprintf(reason, rsize, "account has no usable password");
		return 0;
	}
	if (info->weak && !db->set.allow_weak) {
		dummy_crypt(db, password, acct->name, "weak scheme refused");
		(void)hm_snprintf(reason, rsize, "weak password scheme %s refused (allow_weak=no)",
				  info->name);
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
			dblog(db, HM_AUTHDB_ERROR, "lockout update failed: %s", strerror(errno));
		return;
	}
	if (resv->ip_unrecorded)
		dblog(db, HM_AUTHDB_WARNING, "lockout table full around %s: attempt not counted "
		     "against the address (login %s)", rip, lg);
	if (resv->ip.locked_until != 0)
		dblog(db, HM_AUTHDB_WARNING, "%s now %s for %ld s (after login %s%s)",
		     rip,
		     hm_lockout_verdict_name(HM_LOCKOUT_IP_LOCKED),
		     (long)(resv->ip.locked_until - now), lg, from);
	if (resv->user.locked_until != 0)
		dblog(db, HM_AUTHDB_WARNING, "%s now %s for %ld s (after login %s%s)",
		     clean(key, ck, sizeof(ck)), hm_lockout_verdict_name(HM_LOCKOUT_USER_LOCKED),
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

	clean(login, lg, sizeof(lg));
	if (remote_ip != NULL && remote_ip[0] != '\0')
		(void)hm_snprintf(from, sizeof(from), " from %s",
				  clean(remote_ip, rip, sizeof(rip)));
	found = lookup_impl(db, login, true, &acct);
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
		  !ip_is_exempt(&db->set, remote_ip) ? remote_ip : NULL;
	/* reserve the attempt before the password is checked: it is counted
	 * as a failure in the same locked step as the check, so parallel
	 * attempts (other auth-workers) see it at once and at most
	 * max_failures of them ever reach a deciding password check.  A
	 * worker that dies before settling it leaves one failure counted. */
	memset(&resv, 0, sizeof(resv));
	lo = lockout_handle(db);
	if (lo != NULL && hm_lockout_reserve(lo, found ? HM_LOCKOUT_USER : HM_LOCKOUT_UNKNOWN,
					     key, lock_ip, now, &verdict, &lst, &resv) < 0) {
		dblog(db, HM_AUTHDB_ERROR, "lockout check failed: %s", strerror(errno));
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
		dblog(db, HM_AUTHDB_INFO, "login %s%s refused: %s for %ld more s%s",
		     lg, from, hm_lockout_verdict_name(verdict), left > 0 ? left : 0,
		     found && pw == 1 ? " (password was right)" : "");
		res = found ? HM_AUTHDB_MISMATCH : HM_AUTHDB_UNKNOWN;
	} else if (!found) {
		dblog(db, HM_AUTHDB_INFO, "login %s%s refused: unknown user", lg, from);
		res = HM_AUTHDB_UNKNOWN;
	} else if (pw < 0) {
		char where[320] = "";
		if (acct.is_virtual)
			(void)hm_snprintf(where, sizeof(where), " (%s line %u)",
					  db->set.users_path, acct.line);
		dblog(db, info.weak ? HM_AUTHDB_WARNING : HM_AUTHDB_ERROR,
		     "login %s%s refused: %s%s", lg, from, reason, where);
		res = HM_AUTHDB_MISMATCH;
	} else if (pw == 0) {
		dblog(db, HM_AUTHDB_INFO, "login %s%s refused: %s", lg, from,
		     reason[0] != '\0' ? reason : "password mismatch");
		res = HM_AUTHDB_MISMATCH;
	} else if (acct.login_disabled) {
		dblog(db, HM_AUTHDB_INFO, "login %s%s refused: %s", lg, from, acct.disabled_why);
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

int hm_authdb_expand(const char *tmpl, const char *home, char *out, size_t outsize)
{
	size_t o = 0, hl = strlen(home);

	for (size_t i = 0; tmpl[i] != '\0'; i++) {
		bool tilde = tmpl[i] == '~' &&
			(i == 0 || tmpl[i - 1] == '=' || tmpl[i - 1] == ';' || tmpl[i - 1] == ':') &&
			(tmpl[i + 1] == '/' || tmpl[i + 1] == '\0' || tmpl[i + 1] == ';');
		if (tilde) {
			if (o + hl >= outsize)
				return errno = ENAMETOOLONG, -1;
			memcpy(out + o, home, hl);
			o += hl;
		} else {
			if (o + 1 >= outsize)
				return errno = ENAMETOOLONG, -1;
			out[o++] = tmpl[i];
		}
	}
	if (outsize == 0)
		return errno = ENAMETOOLONG, -1;
	out[o] = '\0';
	return 0;
}

void hm_authdb_quota_rule(uint64_t bytes, char *out, size_t outsize)
{
	if (bytes == 0)
		(void)hm_strlcpy(out, "", outsize);
	else
		(void)hm_snprintf(out, outsize, "*:storage=%lluB", (unsigned long long)bytes);
}

/* list_push - append a copy of s to a growing NULL-terminated array */
static int list_push(char ***list, size_t *n, size_t *cap, const char *s)
{
	if (*n + 1 >= *cap) {
		size_t nc = *cap ? *cap * 2 : 64, sz;
		char **nl;
		if (!hm_mul_ok(nc, sizeof(char *), &sz) || (nl = realloc(*list, sz)) == NULL)
			return -1;
		*list = nl;
		*cap = nc;
	}
	if (((*list)[*n] = strdup(s)) == NULL)
		return -1;
	(*n)++;
	(*list)[*n] = NULL;
	return 0;
}

void hm_authdb_list_free(char **list)
{
	if (list == NULL)
		return;
	for (char **p = list; *p != NULL; p++)
		free(*p);
	free(list);
}

char **hm_authdb_list(struct hm_authdb *db)
{
	char **list = calloc(1, sizeof(char *));
	size_t n = 0, cap = 1;

	if (list == NULL)
		return NULL;
	if (db->set.users_path[0] != '\0') {
		if (users_refresh(db) < 0)
			goto fail;
		for (size_t i = 0; db->users != NULL && i < hm_users_count(db->users); i++) {
			const struct hm_user *u = hm_users_at(db->users, i);
			if (u->uid >= db->set.min_uid && list_push(&list, &n, &cap, u->address) < 0)
				goto fail;
		}
	}
	if (db->set.system) {
		struct group gr, *grr = NULL;
		struct passwd pw, *pwr;
		char *buf = NULL, *pbuf = NULL;
		size_t size = 0, psize = 0;
		FILE *f;
		int e;

		/* members of the group: primary (scan passwd) and supplementary */
		do {
			if ((buf = nss_buf_grow(buf, &size)) == NULL)
				goto fail;
			e = getgrnam_r(db->set.group, &gr, buf, size, &grr);
		} while (e == ERANGE);
		if (grr == NULL) {
			dblog(db, HM_AUTHDB_ERROR, "group %s not found for iteration", db->set.group);
			free(buf);
			goto fail;
		}
		/* iterate /etc/passwd (not setpwent: NSS iteration state is
		 * process-global and Dovecot may iterate concurrently) */
		f = fopen("/etc/passwd", "re");
		if (f == NULL) {
			free(buf);
			goto fail;
		}
		if ((pbuf = nss_buf_grow(NULL, &psize)) == NULL) {
			fclose(f);
			free(buf);
			goto fail;
		}
		while ((e = fgetpwent_r(f, &pw, pbuf, psize, &pwr)) == 0 || e == ERANGE) {
			bool member = false;
			if (e == ERANGE) {
				if ((pbuf = nss_buf_grow(pbuf, &psize)) == NULL)
					break;
				continue;
			}
			if (pw.pw_uid == 0 || pw.pw_uid < db->set.min_uid || !valid_unix_name(pw.pw_name))
				continue;
			if (pw.pw_gid == gr.gr_gid)
				member = true;
			for (char **m = gr.gr_mem; !member && *m != NULL; m++)
				if (strcmp(*m, pw.pw_name) == 0)
					member = true;
			if (member && list_push(&list, &n, &cap, pw.pw_name) < 0) {
				fclose(f);
				free(buf);
				free(pbuf);
				goto fail;
			}
		}
		fclose(f);
		free(buf);
		free(pbuf);
	}
	return list;
fail:
	hm_authdb_list_free(list);
	return NULL;
}
