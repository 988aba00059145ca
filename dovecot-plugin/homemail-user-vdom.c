/* homemail-user-vdom.c — homemail-user's commands for domains, aliases and
 * the account lifecycle.
 *
 * SYNOPSIS
 *   homemail-user [--users F] [--domains F] [--aliases F] COMMAND ...
 *     domain add DOMAIN [KEY=VALUE ...]   system=yes|no remote_aliases=yes|no quota=SIZE
 *     domain del DOMAIN [--force]         refused while accounts/aliases use it
 *     domain list
 *     alias add SOURCE TARGET...          SOURCE local@domain or @domain (catch-all)
 *     alias del SOURCE [TARGET]
 *     alias list [SOURCE | @DOMAIN]
 *     disable ADDRESS [--refuse-mail]     logins refused; mail accepted (state
 *                                         disabled) or refused at RCPT (closed)
 *     enable ADDRESS
 *     rename OLD NEW [--home DIR]         account, home (moved) and alias targets
 *     quota ADDRESS SIZE                  "-" or 0 for none
 *
 * DESCRIPTION
 *   Every table is changed under its lock and rewritten atomically
 *   (lib/hm_table).  `alias add` refuses a source that is an account, a
 *   domain that is not in the domains table, a remote target unless the
 *   domain has remote_aliases=yes, and any change after which the alias
 *   would loop (checked with the same resolver the Dovecot module serves to
 *   Exim, lib/hm_route.c).  `rename` moves the home with rename(2) (the same
 *   file system; the account keeps its uid) and rewrites alias targets.
 *
 * DIAGNOSTICS
 *   "homemail-user: ..." on stderr, sysexits codes as homemail-user.c.
 * Relies on: lib/hm_users, hm_domains, hm_aliases, hm_route; /bin/tar for
 * archives (spawned without a shell).
 */
#define _GNU_SOURCE 1
#include "homemail-user-vdom.h"
#include "hm_aliases.h"
#include "hm_cli.h"
#include "hm_domains.h"
#include "hm_users.h"
#include "hm_util.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pwd.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#define VMAIL_BASE "/var/vmail"

extern char **environ;

struct vopts {
	const char *users, *domains, *aliases, *home;
	bool force, refuse_mail;
};

/* vdie - one diagnostic line, exit code */
#define vdie(...) hm_cli_die("homemail-user", __VA_ARGS__)

/* vwarn - malformed lines are reported, never fatal */
static void vwarn(void *ctx, const char *path, unsigned int line, const char *msg)
{
	(void)ctx;
	fprintf(stderr, "homemail-user: warning: %s line %u: %s\n", path, line, msg);
}

/* errcode - sysexits code of a failed table operation */
static int errcode(int e)
{
	switch (e) {
	case ENOENT: return EX_NOUSER;
	case EEXIST: case EINVAL: return EX_DATAERR;
	case EAGAIN: case EINTR: case EBUSY: return EX_TEMPFAIL;
	case EACCES: case EPERM: return EX_NOPERM;
	default: return EX_IOERR;
	}
}

/* clean - printable copy of an argument for a message */
static const char *clean(const char *s, char *buf, size_t size)
{
	hm_log_clean(buf, size, s, strlen(s));
	return buf;
}

/* load_* - a table, empty when the file is missing */
static struct hm_users *load_users(const struct vopts *o)
{
	struct hm_users *db;

	if (hm_users_load(o->users, NULL, NULL, &db) == 0)
		return db;
	if (errno != ENOENT || (db = hm_users_empty()) == NULL)
		vdie(errcode(errno), "reading %s: %s", o->users, strerror(errno));
	return db;
}

static struct hm_domains *load_domains(const struct vopts *o, bool warn)
{
	struct hm_domains *db;

	if (hm_domains_load(o->domains, warn ? vwarn : NULL, NULL, &db) == 0)
		return db;
	if (errno != ENOENT || (db = hm_domains_empty()) == NULL)
		vdie(errcode(errno), "reading %s: %s", o->domains, strerror(errno));
	return db;
}

static struct hm_aliases *load_aliases(const struct vopts *o, bool warn)
{
	struct hm_aliases *db;

	if (hm_aliases_load(o->aliases, warn ? vwarn : NULL, NULL, &db) == 0)
		return db;
	if (errno != ENOENT || (db = hm_aliases_empty()) == NULL)
		vdie(errcode(errno), "reading %s: %s", o->aliases, strerror(errno));
	return db;
}

/* ---- domain ----------------------------------------------------------- */

struct dom_edit {
	const char *name;
	char options[HM_DOMAINS_MAX_LINE];
	bool add;
};

/* dom_apply - inside hm_domains_modify's lock */
static int dom_apply(struct hm_domains *db, void *ctx)
{
	struct dom_edit *e = ctx;

	if (e->add)
		return hm_domains_add(db, e->name, e->options) < 0 ? -1 : 1;
	return hm_domains_remove(db, e->name) < 0 ? -1 : 1;
}

static int cmd_domain(const struct vopts *o, int argc, char **argv)
{
	char name[HM_DOMAIN_MAX + 1], buf[300];
	struct dom_edit e = { .name = name };

	if (argc < 1)
		vdie(EX_USAGE, "domain add|del|list");
	if (strcmp(argv[0], "list") == 0) {
		struct hm_domains *db = load_domains(o, true);
		for (size_t i = 0; i < hm_domains_count(db); i++) {
			const struct hm_domain *d = hm_domains_at(db, i);
			printf("%s\tsystem=%s\tremote_aliases=%s%s%s\n", d->name, d->system ? "yes" : "no",
			       d->remote_aliases ? "yes" : "no", d->options[0] ? "\t" : "", d->options);
		}
		hm_domains_free(&db);
		return 0;
	}
	if (argc < 2)
		vdie(EX_USAGE, "domain %s DOMAIN", clean(argv[0], buf, sizeof(buf)));
	if (hm_domain_normalize(argv[1], name, sizeof(name)) < 0)
		vdie(EX_DATAERR, "invalid domain '%s'", clean(argv[1], buf, sizeof(buf)));
	if (strcmp(argv[0], "add") == 0) {
		size_t off = 0;
		for (int i = 2; i < argc; i++) {
			int n = snprintf(e.options + off, sizeof(e.options) - off, "%s%s",
					 off ? " " : "", argv[i]);
			if (n < 0 || (size_t)n >= sizeof(e.options) - off)
				vdie(EX_DATAERR, "options too long");
			off += (size_t)n;
		}
		e.add = true;
		if (hm_domains_modify(o->domains, dom_apply, &e, vwarn, NULL) < 0)
			vdie(errcode(errno), errno == EEXIST ? "domain exists: %s" :
			     errno == EINVAL ? "invalid options for %s (system=yes|no "
			     "remote_aliases=yes|no quota=SIZE key=value)" : "adding %s failed", name);
		printf("domain %s added\n", name);
		return 0;
	}
	if (strcmp(argv[0], "del") == 0) {
		if (!o->force) {
			struct hm_users *u = load_users(o);
			struct hm_aliases *a = load_aliases(o, false);
			size_t nu = 0, na = 0;
			for (size_t i = 0; i < hm_users_count(u); i++) {
				const char *at = strrchr(hm_users_at(u, i)->address, '@');
				nu += strcmp(at + 1, name) == 0;
			}
			for (size_t i = 0; i < hm_aliases_count(a); i++) {
				const char *at = strrchr(hm_aliases_at(a, i)->source, '@');
				na += strcmp(at + 1, name) == 0;
			}
			hm_users_free(&u);
			hm_aliases_free(&a);
			if (nu + na > 0)
				vdie(EX_DATAERR, "%s still has %zu account(s) and %zu alias(es): "
				     "remove them or use --force", name, nu, na);
		}
		if (hm_domains_modify(o->domains, dom_apply, &e, vwarn, NULL) < 0)
			vdie(errcode(errno), errno == ENOENT ? "no such domain: %s" : "removing %s failed",
			     name);
		printf("domain %s removed\n", name);
		return 0;
	}
	vdie(EX_USAGE, "domain add|del|list");
}

/* ---- alias ------------------------------------------------------------ */

struct rctx {
	const struct hm_users *users;
	const struct hm_domains *domains;
};

/* r_local / r_account - the resolver's view from the command line: the
 * domains table, the users file and system accounts (uid >= 1000) of
 * domains with system=yes */
static int r_local(void *ctx, const char *domain)
{
	const struct rctx *c = ctx;
	return hm_domains_find(c->domains, domain) != NULL;
}

static int r_account(void *ctx, const char *address)
{
	const struct rctx *c = ctx;
	const char *at = strrchr(address, '@');
	const struct hm_domain *d;
	char local[65];
	struct passwd *pw;

	if (hm_users_find(c->users, address) != NULL)
		return 1;
	if (at == NULL || (d = hm_domains_find(c->domains, at + 1)) == NULL || !d->system ||
	    (size_t)(at - address) >= sizeof(local))
		return 0;
	memcpy(local, address, (size_t)(at - address));
	local[at - address] = '\0';
	pw = getpwnam(local);
	return pw != NULL && pw->pw_uid >= 1000;
}

struct alias_edit {
	const struct vopts *o;
	const char *source;
	const char *const *targets;
	size_t ntargets;
	const char *target;     /* del: one target, NULL = all */
	bool add;
	char why[600];
	int code;
};

/* alias_apply - the change, then the resolver's verdict on the result */
static int alias_apply(struct hm_aliases *db, void *ctx)
{
	struct alias_edit *e = ctx;

	if (!e->add) {
		if (hm_aliases_remove(db, e->source, e->target) < 0) {
			e->code = errcode(errno);
			(void)hm_snprintf(e->why, sizeof(e->why), "%s", errno == ENOENT ?
					  "no such alias (or target)" : strerror(errno));
			return -1;
		}
		return 1;
	}
	if (hm_aliases_add(db, e->source, e->targets, e->ntargets) < 0) {
		e->code = EX_DATAERR;
		(void)hm_snprintf(e->why, sizeof(e->why), "%s",
				  "invalid target, or more than 1000 targets");
		return -1;
	}
	/* resolve the source as Exim will: loops and remote targets */
	struct hm_users *u = load_users(e->o);
	struct hm_domains *d = load_domains(e->o, false);
	struct rctx rc = { u, d };
	struct hm_route_opts ro = { .aliases = db, .domains = d, .delimiters = "+",
				    .is_account = r_account, .is_local = r_local, .ctx = &rc };
	struct hm_route r;
	int ret = 1;

	if (e->source[0] == '@') {
		/* a catch-all is resolved through an address nobody has */
		char probe[HM_USERS_MAX_ADDRESS + 1];
		(void)hm_snprintf(probe, sizeof(probe), "homemail-catchall-probe%s", e->source);
		if (hm_route_resolve(&ro, probe, &r) < 0)
			ret = -1;
	} else if (hm_route_resolve(&ro, e->source, &r) < 0) {
		ret = -1;
	}
	if (ret < 0) {
		e->code = EX_SOFTWARE;
		(void)hm_snprintf(e->why, sizeof(e->why), "resolving: %s", strerror(errno));
	} else if (r.kind == HM_ROUTE_FAIL) {
		e->code = EX_DATAERR;
		(void)hm_snprintf(e->why, sizeof(e->why), "refused: %s", r.why);
		ret = -1;
	}
	hm_route_free(&r);
	hm_users_free(&u);
	hm_domains_free(&d);
	return ret;
}

static int cmd_alias(const struct vopts *o, int argc, char **argv)
{
	char src[HM_USERS_MAX_ADDRESS + 1], buf[300];
	struct alias_edit e = { .o = o, .source = src };

	if (argc < 1)
		vdie(EX_USAGE, "alias add|del|list");
	if (strcmp(argv[0], "list") == 0) {
		struct hm_aliases *db = load_aliases(o, true);
		const char *want = argc > 1 ? argv[1] : NULL;
		for (size_t i = 0; i < hm_aliases_count(db); i++) {
			const struct hm_alias *a = hm_aliases_at(db, i);
			if (want != NULL && strcasecmp(a->source, want) != 0 &&
			    !(want[0] == '@' && strcasecmp(strrchr(a->source, '@'), want) == 0))
				continue;
			printf("%s:", a->source);
			for (size_t k = 0; k < a->ntargets; k++)
				printf("%s %s", k ? "," : "", a->targets[k]);
			putchar('\n');
		}
		hm_aliases_free(&db);
		return 0;
	}
	if (argc < 2)
		vdie(EX_USAGE, "alias %s SOURCE ...", clean(argv[0], buf, sizeof(buf)));
	if (hm_alias_source_normalize(argv[1], src, sizeof(src)) < 0)
		vdie(EX_DATAERR, "invalid source '%s' (local@domain or @domain)",
		     clean(argv[1], buf, sizeof(buf)));
	if (strcmp(argv[0], "add") == 0) {
		if (argc < 3)
			vdie(EX_USAGE, "alias add SOURCE TARGET...");
		struct hm_domains *d = load_domains(o, false);
		struct hm_users *u = load_users(o);
		const char *dom = strrchr(src, '@') + 1;
		bool local = hm_domains_find(d, dom) != NULL, acct = hm_users_find(u, src) != NULL;
		hm_domains_free(&d);
		hm_users_free(&u);
		if (!local)
			vdie(EX_DATAERR, "%s is not a local domain (homemail-user domain add %s)", dom, dom);
		if (acct)
			vdie(EX_DATAERR, "%s is an account: an alias cannot have its address", src);
		e.add = true;
		e.targets = (const char *const *)argv + 2;
		e.ntargets = (size_t)argc - 2;
	} else if (strcmp(argv[0], "del") == 0) {
		if (argc > 3)
			vdie(EX_USAGE, "alias del SOURCE [TARGET]");
		e.target = argc == 3 ? argv[2] : NULL;
	} else {
		vdie(EX_USAGE, "alias add|del|list");
	}
	if (hm_aliases_modify(o->aliases, alias_apply, &e, vwarn, NULL) < 0)
		vdie(e.code ? e.code : errcode(errno), "alias %s: %s", src,
		     e.why[0] ? e.why : strerror(errno));
	printf("alias %s %s\n", src, e.add ? "updated" : "removed");
	return 0;
}

/* ---- account lifecycle ---------------------------------------------- */

struct acct_edit {
	int op;                 /* 0 state, 1 quota, 2 rename */
	const char *address, *new_address, *new_home, *quota;
	enum hm_user_state state;
};

static int acct_apply(struct hm_users *db, void *ctx)
{
	struct acct_edit *e = ctx;

	switch (e->op) {
	case 0:
		if (hm_users_find(db, e->address) == NULL)
			return errno = ENOENT, -1;
		return hm_users_set_state(db, e->address, e->state) < 0 ? -1 : 1;
	case 1:
		return hm_users_set_quota(db, e->address, e->quota) < 0 ? -1 : 1;
	default:
		return hm_users_rename(db, e->address, e->new_address, e->new_home) < 0 ? -1 : 1;
	}
}

static void edit_users(const struct vopts *o, struct acct_edit *e)
{
	if (hm_users_modify(o->users, acct_apply, e, vwarn, NULL) < 0)
		vdie(errcode(errno), "%s: %s", e->address,
		     errno == ENOENT ? "no such account" :
		     errno == EEXIST ? "the new address is taken" :
		     errno == EINVAL ? "invalid value, or the home belongs to another account" :
		     strerror(errno));
}

static int cmd_state(const struct vopts *o, const char *arg, bool disable)
{
	char addr[HM_USERS_MAX_ADDRESS + 1], buf[300];
	struct acct_edit e = { .op = 0, .address = addr };

	if (hm_users_normalize_address(arg, addr, sizeof(addr)) < 0)
		vdie(EX_DATAERR, "invalid address '%s'", clean(arg, buf, sizeof(buf)));
	e.state = !disable ? HM_USER_ACTIVE : o->refuse_mail ? HM_USER_CLOSED : HM_USER_DISABLED;
	edit_users(o, &e);
	printf("%s %s\n", addr, !disable ? "enabled" : o->refuse_mail ?
	       "disabled (logins and mail refused)" : "disabled (logins refused, mail accepted)");
	return 0;
}

static int cmd_quota(const struct vopts *o, const char *arg, const char *size)
{
	char addr[HM_USERS_MAX_ADDRESS + 1], buf[300];
	struct acct_edit e = { .op = 1, .address = addr, .quota = size };
	uint64_t q;

	if (hm_users_normalize_address(arg, addr, sizeof(addr)) < 0)
		vdie(EX_DATAERR, "invalid address '%s'", clean(arg, buf, sizeof(buf)));
	if (hm_users_parse_quota(size, &q) < 0)
		vdie(EX_DATAERR, "invalid quota '%s' (bytes with optional k/M/G/T, - for none)",
		     clean(size, buf, sizeof(buf)));
	if (strcmp(size, "-") == 0 || q == 0)
		e.quota = "";
	edit_users(o, &e);
	printf("quota of %s set to %s\n", addr, e.quota[0] ? e.quota : "none");
	return 0;
}

struct target_edit {
	const char *old_addr, *new_addr;
	int changed;
};

static int target_apply(struct hm_aliases *db, void *ctx)
{
	struct target_edit *t = ctx;

	t->changed = hm_aliases_rename_target(db, t->old_addr, t->new_addr);
	return t->changed < 0 ? -1 : t->changed > 0;
}

static int cmd_rename(const struct vopts *o, const char *from, const char *to)
{
	char oa[HM_USERS_MAX_ADDRESS + 1], na[HM_USERS_MAX_ADDRESS + 1], buf[300];
	char home[HM_USERS_MAX_HOME + 1], dflt[HM_USERS_MAX_HOME + 1];
	struct acct_edit e = { .op = 2, .address = oa, .new_address = na, .new_home = home };
	struct target_edit t = { oa, na, 0 };
	struct hm_users *u;
	const struct hm_user *acct;
	bool move = false;

	if (hm_users_normalize_address(from, oa, sizeof(oa)) < 0 ||
	    hm_users_normalize_address(to, na, sizeof(na)) < 0)
		vdie(EX_DATAERR, "invalid address '%s'",
		     clean(hm_users_normalize_address(from, oa, sizeof(oa)) < 0 ? from : to,
			   buf, sizeof(buf)));
	u = load_users(o);
	acct = hm_users_find(u, oa);
	if (acct == NULL)
		vdie(EX_NOUSER, "no such account: %s", oa);
	(void)hm_strlcpy(home, acct->home, sizeof(home));
	{
		const char *at = strchr(oa, '@');
		if (hm_snprintf(dflt, sizeof(dflt), "%s/%s/%.*s", VMAIL_BASE, at + 1,
				(int)(at - oa), oa) == 0 && strcmp(dflt, acct->home) == 0) {
			at = strchr(na, '@');
			if (hm_snprintf(home, sizeof(home), "%s/%s/%.*s", VMAIL_BASE, at + 1,
					(int)(at - na), na) < 0)
				vdie(EX_DATAERR, "cannot derive a home for %s: give --home", na);
		}
	}
	if (o->home != NULL && hm_strlcpy(home, o->home, sizeof(home)) < 0)
		vdie(EX_DATAERR, "home too long");
	if (!hm_users_valid_home(home))
		vdie(EX_DATAERR, "invalid home '%s'", clean(home, buf, sizeof(buf)));
	move = strcmp(home, acct->home) != 0;
	char old_home[HM_USERS_MAX_HOME + 1];
	(void)hm_strlcpy(old_home, acct->home, sizeof(old_home));
	hm_users_free(&u);
	if (move) {
		struct stat st;
		if (lstat(home, &st) == 0)
			vdie(EX_CANTCREAT, "%s exists: refusing to move %s over it", home, old_home);
		/* parents as root 0755, like `add` */
		char parent[HM_USERS_MAX_HOME + 1];
		(void)hm_strlcpy(parent, home, sizeof(parent));
		for (char *p = parent + 1; *p != '\0'; p++) {
			if (*p != '/')
				continue;
			*p = '\0';
			if (mkdir(parent, 0755) == 0)
				(void)chmod(parent, 0755);
			else if (errno != EEXIST)
				vdie(EX_CANTCREAT, "mkdir %s: %s", parent, strerror(errno));
			*p = '/';
		}
		if (lstat(old_home, &st) == 0 && rename(old_home, home) < 0)
			vdie(EX_CANTCREAT, "moving %s to %s: %s%s", old_home, home, strerror(errno),
			     errno == EXDEV ? " (another file system: move it yourself, then --home)" : "");
	}
	edit_users(o, &e);
	if (hm_aliases_modify(o->aliases, target_apply, &t, vwarn, NULL) < 0 && errno != ENOENT)
		fprintf(stderr, "homemail-user: warning: alias targets not updated: %s\n",
			strerror(errno));
	printf("renamed %s to %s%s%s%s\n", oa, na, move ? " (home moved to " : "",
	       move ? home : "", move ? ")" : "");
	if (t.changed > 0)
		printf("%d alias line(s) now point to %s\n", t.changed, na);
	return 0;
}

void homemail_user_domain_quota(const char *users_path, const char *domain, char *dst,
				size_t size)
{
	char path[PATH_MAX];
	const char *slash = strrchr(users_path, '/');
	struct hm_domains *db;
	const struct hm_domain *d;

	dst[0] = '\0';
	if (slash == NULL ||
	    hm_snprintf(path, sizeof(path), "%.*s/domains", (int)(slash - users_path), users_path) < 0 ||
	    hm_domains_load(path, NULL, NULL, &db) < 0)
		return;
	d = hm_domains_find(db, domain);
	if (d != NULL) {
		const char *q = strstr(d->options, "quota=");
		/* the option as written: up to the next blank */
		while (q != NULL && q != d->options && q[-1] != ' ' && q[-1] != '\t')
			q = strstr(q + 1, "quota=");
		if (q != NULL)
			(void)hm_snprintf(dst, size, "%.*s", (int)strcspn(q + 6, " \t"), q + 6);
	}
	hm_domains_free(&db);
}

/* ---- archive (used by `del --remove-home`) ---------------------------- */

int homemail_user_archive_home(const char *home, const char *address, const char *dir,
			       char *path_r, size_t path_size)
{
	char parent[HM_USERS_MAX_HOME + 1], stamp[32];
	const char *base;
	struct stat st;
	time_t now = time(NULL);
	struct tm tm;
	pid_t pid;
	int status, fd;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		fprintf(stderr, "homemail-user: mkdir %s: %s\n", dir, strerror(errno));
		return -1;
	}
	if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "homemail-user: %s is not a directory\n", dir);
		return -1;
	}
	if (lstat(home, &st) < 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "homemail-user: %s is not a directory: nothing to archive\n", home);
		return -1;
	}
	(void)hm_strlcpy(parent, home, sizeof(parent));
	char *slash = strrchr(parent, '/');
	base = home + (slash - parent) + 1;
	if (slash == parent)
		parent[1] = '\0';
	else
		*slash = '\0';
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	if (hm_snprintf(path_r, path_size, "%s/%s-%s.tar.gz", dir, address, stamp) < 0)
		return -1;
	/* create it first: O_EXCL|O_NOFOLLOW, 0600, so tar writes our file */
	fd = open(path_r, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, "homemail-user: creating %s: %s\n", path_r, strerror(errno));
		return -1;
	}
	close(fd);
	char *const argv[] = { "tar", "--create", "--gzip", "--file", path_r, "--directory",
			       parent, "--", (char *)base, NULL };
	if (posix_spawn(&pid, "/bin/tar", NULL, NULL, argv, environ) != 0 ||
	    waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "homemail-user: archiving %s into %s failed\n", home, path_r);
		unlink(path_r);
		return -1;
	}
	return 0;
}

/* ---- dispatch --------------------------------------------------------- */

static const char *const VCMDS[] = { "domain", "alias", "disable", "enable", "rename", "quota" };

int homemail_user_vdom_main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "users", required_argument, NULL, 'U' },
		{ "domains", required_argument, NULL, 'D' },
		{ "aliases", required_argument, NULL, 'A' },
		{ "lockout", required_argument, NULL, 'L' },
		{ "home", required_argument, NULL, 'h' },
		{ "force", no_argument, NULL, 'f' },
		{ "refuse-mail", no_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	struct vopts o = { .users = HM_USERS_PATH_DEFAULT, .domains = HM_DOMAINS_PATH_DEFAULT,
			   .aliases = HM_ALIASES_PATH_DEFAULT };
	const char *cmd = NULL;
	int c;

	/* the first word that is neither an option nor an option's value */
	for (int i = 1; i < argc && cmd == NULL; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (argv[i][0] == '-') {
			if (strchr(argv[i], '=') == NULL &&
			    (!strcmp(argv[i], "--users") || !strcmp(argv[i], "--domains") ||
			     !strcmp(argv[i], "--aliases") || !strcmp(argv[i], "--lockout")))
				i++;
			continue;
		}
		cmd = argv[i];
	}
	if (cmd == NULL)
		return -1;
	bool mine = false;
	for (size_t i = 0; i < HM_ARRAY_SIZE(VCMDS); i++)
		mine |= strcmp(cmd, VCMDS[i]) == 0;
	if (!mine)
		return -1;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'U': o.users = optarg; break;
		case 'D': o.domains = optarg; break;
		case 'A': o.aliases = optarg; break;
		case 'L': break;
		case 'h': o.home = optarg; break;
		case 'f': o.force = true; break;
		case 'r': o.refuse_mail = true; break;
		default: vdie(EX_USAGE, "unknown option (see homemail-user --help)");
		}
	}
	if (o.users[0] != '/' || o.domains[0] != '/' || o.aliases[0] != '/')
		vdie(EX_USAGE, "--users, --domains and --aliases need absolute paths");
	argc -= optind + 1;
	argv += optind + 1;
	if (strcmp(cmd, "domain") == 0)
		return cmd_domain(&o, argc, argv);
	if (strcmp(cmd, "alias") == 0)
		return cmd_alias(&o, argc, argv);
	if ((strcmp(cmd, "disable") == 0 || strcmp(cmd, "enable") == 0) && argc == 1)
		return cmd_state(&o, argv[0], cmd[0] == 'd');
	if (strcmp(cmd, "quota") == 0 && argc == 2)
		return cmd_quota(&o, argv[0], argv[1]);
	if (strcmp(cmd, "rename") == 0 && argc == 2)
		return cmd_rename(&o, argv[0], argv[1]);
	vdie(EX_USAGE, "usage: see homemail-user --help");
}
