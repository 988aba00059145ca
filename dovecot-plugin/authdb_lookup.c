/* authdb_lookup.c — account resolution for the `homemail` Dovecot
 * passdb/userdb (see authdb_core.h): the users file (cached, reloaded when it
 * changes), system accounts through NSS and shadow, the userdb fields and
 * iteration, and the log helpers the other authdb_*.c files share.
 *
 * What for: one answer to "who is this login" for every passdb check
 * (authdb_verify.c) and every userdb lookup (LDA, Exim recipient check).
 * Relies on: lib/hm_users (users file), NSS (getpwnam_r, getgrnam_r) and
 * shadow (getspnam_r: root only, hence Dovecot's auth-worker processes).
 * How it fails: an unreadable users file or NSS error is an internal
 * (temporary) failure, logged; a malformed users line is logged with its
 * number and skipped; an account outside the served set (uid below min_uid,
 * not in the group, unusable home) is unknown, logged.
 */
#include "authdb_private.h"
#include "hm_users_expire.h"
#include "hm_util.h"

#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <shadow.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define NSS_BUF_START 4096
#define NSS_BUF_MAX   (1u << 20)

/* authdb_log - format a message and hand it to the log callback */
void authdb_log(struct hm_authdb *db, enum hm_authdb_log_level lvl, const char *fmt, ...)
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

/* authdb_clean - printable copy of untrusted text for a log line */
const char *authdb_clean(const char *s, char *buf, size_t size)
{
	hm_log_clean(buf, size, s, strlen(s));
	return buf;
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
	hm_domains_free(&db->domains);
	hm_aliases_free(&db->aliases);
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
	authdb_log(ctx, HM_AUTHDB_WARNING, "%s line %u: %s (line ignored)", path, line, msg);
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
		authdb_log(db, HM_AUTHDB_ERROR, "stat(%s) failed: %s", db->set.users_path, strerror(errno));
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
		authdb_log(db, HM_AUTHDB_ERROR, "reading %s failed: %s", db->set.users_path, strerror(errno));
		return -1;
	}
	if (st.st_mode & 0004)
		authdb_log(db, HM_AUTHDB_WARNING, "%s is world-readable: password hashes exposed",
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

/* table_warn - malformed domains/aliases line → warning log */
static void table_warn(void *ctx, const char *path, unsigned int line, const char *msg)
{
	authdb_log(ctx, HM_AUTHDB_WARNING, "%s line %u: %s (line ignored)", path, line, msg);
}

/* stamp_same - the file is the one cached */
static bool stamp_same(const struct hm_authdb_filestamp *f, const struct stat *st)
{
	return f->loaded && st->st_dev == f->dev && st->st_ino == f->ino &&
	       st->st_size == f->size && st->st_mtim.tv_sec == f->mtime.tv_sec &&
	       st->st_mtim.tv_nsec == f->mtime.tv_nsec;
}

static void stamp_set(struct hm_authdb_filestamp *f, const struct stat *st)
{
	f->dev = st->st_dev;
	f->ino = st->st_ino;
	f->size = st->st_size;
	f->mtime = st->st_mtim;
	f->loaded = true;
}

/* tables_refresh - (re)load the domains and aliases tables when they
 * changed; a missing file is an empty table.  0 ok, -1 error (logged) */
static int tables_refresh(struct hm_authdb *db)
{
	struct stat st;

	if (db->set.domains_path[0] != '\0') {
		if (stat(db->set.domains_path, &st) < 0) {
			if (errno != ENOENT) {
				authdb_log(db, HM_AUTHDB_ERROR, "stat(%s) failed: %s",
					   db->set.domains_path, strerror(errno));
				return -1;
			}
			hm_domains_free(&db->domains);
			db->domains_st.loaded = false;
		} else if (!stamp_same(&db->domains_st, &st)) {
			struct hm_domains *fresh;
			int attempt = 0;
			while (hm_domains_load(db->set.domains_path, table_warn, db, &fresh) < 0) {
				if (errno == EAGAIN && attempt++ < 3)
					continue;
				authdb_log(db, HM_AUTHDB_ERROR, "reading %s failed: %s",
					   db->set.domains_path, strerror(errno));
				return -1;
			}
			hm_domains_free(&db->domains);
			db->domains = fresh;
			stamp_set(&db->domains_st, &st);
		}
	}
	if (db->set.aliases_path[0] != '\0') {
		if (stat(db->set.aliases_path, &st) < 0) {
			if (errno != ENOENT) {
				authdb_log(db, HM_AUTHDB_ERROR, "stat(%s) failed: %s",
					   db->set.aliases_path, strerror(errno));
				return -1;
			}
			hm_aliases_free(&db->aliases);
			db->aliases_st.loaded = false;
		} else if (!stamp_same(&db->aliases_st, &st)) {
			struct hm_aliases *fresh;
			int attempt = 0;
			while (hm_aliases_load(db->set.aliases_path, table_warn, db, &fresh) < 0) {
				if (errno == EAGAIN && attempt++ < 3)
					continue;
				authdb_log(db, HM_AUTHDB_ERROR, "reading %s failed: %s",
					   db->set.aliases_path, strerror(errno));
				return -1;
			}
			hm_aliases_free(&db->aliases);
			db->aliases = fresh;
			stamp_set(&db->aliases_st, &st);
		}
	}
	return 0;
}

/* system_domain - system accounts are served as user@dom: listed in
 * domains= or in the domains table with system=yes */
static bool system_domain(const struct hm_authdb *db, const char *dom)
{
	const struct hm_domain *d;

	for (unsigned int i = 0; i < db->set.ndomains; i++)
		if (strcmp(dom, db->set.domains[i]) == 0)
			return true;
	d = hm_domains_find(db->domains, dom);
	return d != NULL && d->system;
}

/* local_domain - a domain this host receives mail for */
static bool local_domain(const struct hm_authdb *db, const char *dom)
{
	for (unsigned int i = 0; i < db->set.ndomains; i++)
		if (strcmp(dom, db->set.domains[i]) == 0)
			return true;
	return hm_domains_find(db->domains, dom) != NULL;
}

/* nss_buf_grow - grow-on-ERANGE helper for the *_r NSS calls */
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
		authdb_log(db, HM_AUTHDB_ERROR, "getgrnam(%s) failed: %s", db->set.group, strerror(e));
		ret = -1;
	} else if (res == NULL) {
		authdb_log(db, HM_AUTHDB_ERROR, "group %s does not exist", db->set.group);
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
			 struct hm_authdb_account *acct_r)
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
		authdb_log(db, HM_AUTHDB_ERROR, "getpwnam(%s) failed: %s", name, strerror(e));
		free(buf);
		return -1;
	}
	if (pwr == NULL) {
		free(buf);
		return 0;
	}
	if (pw.pw_uid == 0 || pw.pw_uid < db->set.min_uid) {
		authdb_log(db, HM_AUTHDB_INFO, "system account %s has uid %lu < min_uid %lu: not served",
		     name, (unsigned long)pw.pw_uid, db->set.min_uid);
		free(buf);
		return 0;
	}
	g = in_group(db, &pw);
	if (g <= 0) {
		if (g == 0)
			authdb_log(db, HM_AUTHDB_INFO, "system account %s is not in group %s: not served",
			     name, db->set.group);
		free(buf);
		return g;
	}
	memset(acct_r, 0, sizeof(*acct_r));
	(void)hm_strlcpy(acct_r->name, pw.pw_name, sizeof(acct_r->name));
	acct_r->uid = pw.pw_uid;
	acct_r->gid = pw.pw_gid;
	if (hm_strlcpy(acct_r->home, pw.pw_dir, sizeof(acct_r->home)) < 0 ||
	    !hm_users_valid_home(acct_r->home)) {
		authdb_log(db, HM_AUTHDB_WARNING, "system account %s has an unusable home: not served", name);
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
		authdb_log(db, HM_AUTHDB_ERROR, "no shadow entry for %s (%s): login refused", name,
		     e == 0 || e == ENOENT ? "missing" : strerror(e));
		acct_r->hash = strdup("*");
		acct_r->login_disabled = true;
		(void)hm_strlcpy(acct_r->disabled_why, "no shadow entry", sizeof(acct_r->disabled_why));
	} else {
		acct_r->hash = strdup(sp.sp_pwdp != NULL ? sp.sp_pwdp : "*");
		if (sp.sp_expire > 0 && time(NULL) / 86400 >= sp.sp_expire) {
			acct_r->login_disabled = true;
			(void)hm_strlcpy(acct_r->disabled_why, "account expired (shadow)",
					 sizeof(acct_r->disabled_why));
		}
		if (sp.sp_pwdp != NULL)
			explicit_bzero(sp.sp_pwdp, strlen(sp.sp_pwdp));
	}
	explicit_bzero(buf, size);
	free(buf);
	if (acct_r->hash == NULL)
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

/* authdb_lookup_account - shared by lookup and verify */
int authdb_lookup_account(struct hm_authdb *db, const char *login, bool want_hash,
			  struct hm_authdb_account *acct_r)
{
	char addr[HM_USERS_MAX_ADDRESS + 1];
	const char *at = strchr(login, '@');

	memset(acct_r, 0, sizeof(*acct_r));
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
					authdb_log(db, HM_AUTHDB_WARNING, "%s line %u: uid %lu < min_uid %lu: not served",
					     db->set.users_path, u->line, (unsigned long)u->uid, db->set.min_uid);
					return 0;
				}
				(void)hm_strlcpy(acct_r->name, u->address, sizeof(acct_r->name));
				acct_r->is_virtual = true;
				acct_r->uid = u->uid;
				acct_r->gid = u->gid;
				(void)hm_strlcpy(acct_r->home, u->home, sizeof(acct_r->home));
				acct_r->quota_bytes = u->quota_bytes;
				acct_r->line = u->line;
				acct_r->mail_refused = u->state == HM_USER_CLOSED;
				acct_r->pw_expired = hm_user_pw_expired(u);
				if (u->state != HM_USER_ACTIVE) {
					acct_r->login_disabled = true;
					(void)hm_snprintf(acct_r->disabled_why, sizeof(acct_r->disabled_why),
							  "account %s", hm_user_state_name(u->state));
				}
				if (want_hash && (acct_r->hash = strdup(u->hash)) == NULL)
					return -1;
				return 1;
			}
		}
		if (!db->set.system)
			return 0;
		/* user@<local domain> → system user */
		const char *dom = strchr(addr, '@') + 1;
		if (tables_refresh(db) < 0)
			return -1;
		if (!system_domain(db, dom))
			return 0;
		addr[dom - 1 - addr] = '\0';
		return lookup_system(db, addr, want_hash, acct_r);
	}
	if (!db->set.system)
		return 0;
	return lookup_system(db, login, want_hash, acct_r);
}

int hm_authdb_lookup(struct hm_authdb *db, const char *login, struct hm_authdb_account *acct_r)
{
	return authdb_lookup_account(db, login, false, acct_r);
}

struct route_ctx {
	struct hm_authdb *db;
	bool failed;
};

/* route_account - the resolver's is_account: an account that takes mail */
static int route_account(void *ctx, const char *address)
{
	struct route_ctx *c = ctx;
	struct hm_authdb_account a;
	int r = authdb_lookup_account(c->db, address, false, &a);

	if (r < 0) {
		c->failed = true;
		return -1;
	}
	hm_authdb_account_free(&a);
	if (r == 1 && a.mail_refused)
		return HM_ROUTE_CLOSED;
	return r == 1;
}

/* route_local - the resolver's is_local */
static int route_local(void *ctx, const char *domain)
{
	struct route_ctx *c = ctx;
	return local_domain(c->db, domain);
}

int hm_authdb_route(struct hm_authdb *db, const char *address, struct hm_route *route_r,
		    struct hm_authdb_account *acct_r)
{
	char addr[HM_USERS_MAX_ADDRESS + 1], clean[300];
	struct route_ctx c = { db, false };
	struct hm_route_opts o = { .delimiters = db->set.delimiters, .is_account = route_account,
				   .is_local = route_local, .ctx = &c };

	memset(acct_r, 0, sizeof(*acct_r));
	memset(route_r, 0, sizeof(*route_r));
	if (login_ok(address) && strchr(address, '@') == NULL) {
		/* a bare name (Exim's -bt, local tools): a system account only */
		int r = authdb_lookup_account(db, address, false, acct_r);
		if (r == 1) {
			route_r->kind = HM_ROUTE_ACCOUNT;
			(void)hm_strlcpy(route_r->account, acct_r->name, sizeof(route_r->account));
		}
		return r < 0 ? -1 : 0;
	}
	if (!login_ok(address) || hm_users_normalize_address(address, addr, sizeof(addr)) < 0)
		return 0;
	if (tables_refresh(db) < 0 || users_refresh(db) < 0)
		return -1;
	o.aliases = db->aliases;
	o.domains = db->domains;
	if (hm_route_resolve(&o, addr, route_r) < 0) {
		if (!c.failed)
			authdb_log(db, HM_AUTHDB_ERROR, "resolving %s: %s",
				   authdb_clean(address, clean, sizeof(clean)), strerror(errno));
		return -1;
	}
	if (route_r->kind == HM_ROUTE_ACCOUNT) {
		int r = authdb_lookup_account(db, route_r->account, false, acct_r);
		if (r < 0)
			return -1;
		if (r == 0 || acct_r->mail_refused) {
			/* changed between the two lookups, or closed */
			hm_authdb_account_free(acct_r);
			route_r->kind = HM_ROUTE_UNKNOWN;
		}
	} else if (route_r->kind == HM_ROUTE_FAIL) {
		authdb_log(db, HM_AUTHDB_WARNING, "%s: %s", authdb_clean(address, clean, sizeof(clean)),
			   route_r->why);
	}
	return 0;
}

int hm_authdb_expand(const char *tmpl, const char *home, char *dst, size_t dstsize)
{
	size_t o = 0, hl = strlen(home);

	for (size_t i = 0; tmpl[i] != '\0'; i++) {
		bool tilde = tmpl[i] == '~' &&
			(i == 0 || tmpl[i - 1] == '=' || tmpl[i - 1] == ';' || tmpl[i - 1] == ':') &&
			(tmpl[i + 1] == '/' || tmpl[i + 1] == '\0' || tmpl[i + 1] == ';');
		if (tilde) {
			if (o + hl >= dstsize)
				return errno = ENAMETOOLONG, -1;
			memcpy(dst + o, home, hl);
			o += hl;
		} else {
			if (o + 1 >= dstsize)
				return errno = ENAMETOOLONG, -1;
			dst[o++] = tmpl[i];
		}
	}
	if (dstsize == 0)
		return errno = ENAMETOOLONG, -1;
	dst[o] = '\0';
	return 0;
}

void hm_authdb_quota_rule(uint64_t bytes, char *dst, size_t dstsize)
{
	if (bytes == 0)
		(void)hm_strlcpy(dst, "", dstsize);
	else
		(void)hm_snprintf(dst, dstsize, "*:storage=%lluB", (unsigned long long)bytes);
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
			authdb_log(db, HM_AUTHDB_ERROR, "group %s not found for iteration", db->set.group);
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
