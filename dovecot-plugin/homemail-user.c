/* homemail-user.c — manage virtual accounts in /etc/homemail/users and
 * inspect/clear the login lockout state.
 *
 * NAME
 *   homemail-user - add, delete, re-password, list, lock, unlock, show accounts
 *
 * SYNOPSIS
 *   homemail-user [--users FILE] [--lockout FILE] COMMAND [options] [ADDRESS]
 *     add ADDRESS [--owner USER | --uid N --gid N] [--home DIR] [--quota SIZE]
 *                 [--scheme yescrypt|bcrypt|sha512-crypt|sha256-crypt] [--password-stdin]
 *     del ADDRESS [--remove-home]
 *     passwd ADDRESS [--scheme S] [--password-stdin]
 *     passwd --expire ADDRESS  the user must change the password at the next
 *                             login (docs/domains.md, "Password changes")
 *     list [--hashes]
 *     lock ADDRESS            refuse logins (state "locked"), mail still delivered
 *     unlock ADDRESS          state back to active and lockout counters cleared
 *     unlock --ip ADDRESS     clear the lockout of a remote address
 *     show ADDRESS [--hash]   account fields and lockout state
 *
 * DESCRIPTION
 *   Passwords are read from the terminal without echo (asked twice), or
 *   one line from standard input with --password-stdin.  Every change to
 *   the users file happens under its lock and is written atomically
 *   (lib/hm_users).  `add` creates the home and its Maildir (cur new tmp)
 *   owned by the account's uid/gid, mode 0700; an existing home is left as
 *   it is.  Hashes are never printed unless asked for.
 *
 * DIAGNOSTICS
 *   One line on stderr "homemail-user: ..." and a sysexits code: 64 usage,
 *   65 bad input (address, password, quota), 67 no such account, 73 cannot
 *   create, 74 I/O error, 75 temporary (lock), 0 success.
 *
 * Relies on: lib/hm_users, lib/hm_lockout, libxcrypt.  Must run as root
 * to change /etc/homemail/users and create homes for other users.
 */
#define _GNU_SOURCE 1   /* nftw */
#include "homemail-user-vdom.h"
#include "hm_cli.h"
#include "hm_lockout.h"
#include "hm_users.h"
#include "hm_users_expire.h"
#include "hm_util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <ftw.h>
#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define VMAIL_BASE "/var/vmail"

struct opts {
	const char *users;
	const char *lockout;
	const char *owner;
	long uid, gid;
	const char *home;
	const char *quota;
	enum hm_pw_scheme scheme;
	bool password_stdin;
	bool remove_home;
	const char *archive;    /* NULL: HOMEMAIL_ARCHIVE_DIR */
	bool no_archive;
	bool hashes;
	bool ip;
	bool expire;           /* passwd --expire */
};

/* die - print one diagnostic line and exit with code */
#define die(...) hm_cli_die("homemail-user", __VA_ARGS__)

static const char USAGE[] =
	"usage: homemail-user [--users FILE] [--lockout FILE] COMMAND ...\n"
	"  add ADDRESS [--owner USER | --uid N --gid N] [--home DIR] [--quota SIZE]\n"
	"              [--scheme yescrypt|bcrypt|sha512-crypt|sha256-crypt] [--password-stdin]\n"
	"  del ADDRESS [--remove-home [--archive DIR | --no-archive]]\n"
	"  passwd ADDRESS [--scheme S] [--password-stdin]\n"
	"  passwd --expire ADDRESS   force a password change at the next login\n"
	"  list [--hashes]\n"
	"  lock ADDRESS | unlock ADDRESS | unlock --ip IPADDRESS\n"
	"  show ADDRESS [--hash]\n"
	"  domain add DOMAIN [system=yes|no] [remote_aliases=yes|no] [quota=SIZE] [KEY=VALUE...]\n"
	"  domain del DOMAIN [--force] | domain list\n"
	"  alias add SOURCE TARGET... | alias del SOURCE [TARGET] | alias list [SOURCE|@DOMAIN]\n"
	"  disable ADDRESS [--refuse-mail] | enable ADDRESS\n"
	"  rename OLD NEW [--home DIR] | quota ADDRESS SIZE\n"
	"  (domain/alias/...: [--domains FILE] [--aliases FILE]; del --remove-home archives\n"
	"   the home first unless --no-archive: [--archive DIR])\n"
	"       homemail-user --help | --version\n";

static void usage(void)
{
	fputs(USAGE, stderr);
	exit(EX_USAGE);
}

/* errno_code - sysexits code for a failed file operation */
static int errno_code(int e)
{
	switch (e) {
	case EAGAIN: case EINTR: case EBUSY: return EX_TEMPFAIL;
	case EACCES: case EPERM: return EX_NOPERM;
	default: return EX_IOERR;
	}
}

/* normalize_or_die - validated lower-case address */
static void normalize_or_die(const char *in, char *dst, size_t size)
{
	char clean[300];

	if (hm_users_normalize_address(in, dst, size) < 0) {
		hm_log_clean(clean, sizeof(clean), in, strlen(in));
		die(EX_DATAERR, "invalid address '%s' (need local@domain, letters, digits and .!#$%%&'*+=?^_{}~-)",
		    clean);
	}
}

/* read_password_line - one line from f into buf (NUL-free, no newline) */
static int read_password_line(FILE *f, char *buf, size_t size)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n = getline(&line, &cap, f);

	if (n < 0) {
		free(line);
		return -1;
	}
	if (n > 0 && line[n - 1] == '\n')
		line[--n] = '\0';
	if (n > 0 && line[n - 1] == '\r')
		line[--n] = '\0';
	if ((size_t)n != strlen(line)) {
		explicit_bzero(line, cap);
		free(line);
		die(EX_DATAERR, "password contains a NUL byte");
	}
	if ((size_t)n >= size) {
		explicit_bzero(line, cap);
		free(line);
		die(EX_DATAERR, "password longer than %d bytes", HM_PW_MAX_PLAIN);
	}
	memcpy(buf, line, (size_t)n + 1);
	explicit_bzero(line, cap);
	free(line);
	return 0;
}

/* prompt_noecho - read a password from /dev/tty without echo */
static int prompt_noecho(const char *prompt, char *buf, size_t size)
{
	struct termios old, noecho;
	FILE *tty = fopen("/dev/tty", "r+e");
	int ret;

	if (tty == NULL)
		return -1;
	fputs(prompt, tty);
	fflush(tty);
	if (tcgetattr(fileno(tty), &old) < 0) {
		fclose(tty);
		return -1;
	}
	noecho = old;
	noecho.c_lflag &= ~(tcflag_t)ECHO;
	(void)tcsetattr(fileno(tty), TCSAFLUSH, &noecho);
	ret = read_password_line(tty, buf, size);
	(void)tcsetattr(fileno(tty), TCSAFLUSH, &old);
	fputc('\n', tty);
	fclose(tty);
	return ret;
}

/* get_password - from stdin or the terminal (twice); validated */
static void get_password(const struct opts *o, char *buf, size_t size)
{
	char again[HM_PW_MAX_PLAIN + 2];

	if (o->password_stdin) {
		if (read_password_line(stdin, buf, size) < 0)
			die(EX_DATAERR, "no password on standard input");
	} else {
		if (!isatty(STDIN_FILENO) && access("/dev/tty", R_OK) != 0)
			die(EX_USAGE, "no terminal: use --password-stdin");
		if (prompt_noecho("New password: ", buf, size) < 0 ||
		    prompt_noecho("Retype new password: ", again, sizeof(again)) < 0)
			die(EX_USAGE, "cannot read the password from the terminal: use --password-stdin");
		if (strcmp(buf, again) != 0) {
			explicit_bzero(again, sizeof(again));
			die(EX_DATAERR, "passwords do not match");
		}
		explicit_bzero(again, sizeof(again));
	}
	if (buf[0] == '\0')
		die(EX_DATAERR, "empty password refused");
}

/* get_hash - the new password (get_password) hashed with o->scheme into
 * hash; the plain text is wiped */
static void get_hash(const struct opts *o, char *hash, size_t size)
{
	char pw[HM_PW_MAX_PLAIN + 2];

	get_password(o, pw, sizeof(pw));
	if (hm_pw_hash(pw, o->scheme, hash, size) < 0)
		die(EX_SOFTWARE, "hashing the password failed: %s", strerror(errno));
	explicit_bzero(pw, sizeof(pw));
}

/* mkdir_owned - create dir (mode 0700, owner uid:gid) unless it exists;
 * refuses symlinks.  Returns 1 created, 0 existed. */
static int mkdir_owned(const char *dir, uid_t uid, gid_t gid)
{
	int fd;

	if (mkdir(dir, 0700) < 0) {
		if (errno != EEXIST)
			die(EX_CANTCREAT, "mkdir %s: %s", dir, strerror(errno));
		fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			die(EX_CANTCREAT, "%s exists but is not a directory (or is a symlink)", dir);
		close(fd);
		return 0;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fchown(fd, uid, gid) < 0 || fchmod(fd, 0700) < 0)
		die(EX_CANTCREAT, "setting owner of %s: %s", dir, strerror(errno));
	close(fd);
	return 1;
}

/* make_home - parents as root 0755, home and Maildir as the account */
static void make_home(const char *home, uid_t uid, gid_t gid)
{
	char path[HM_USERS_MAX_HOME + 32];
	static const char *const subs[] = { "Maildir", "Maildir/cur", "Maildir/new", "Maildir/tmp" };

	(void)hm_strlcpy(path, home, sizeof(path));
	for (char *p = path + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0755) == 0)
			(void)chmod(path, 0755);        /* umask is 077: parents must be traversable */
		else if (errno != EEXIST)
			die(EX_CANTCREAT, "mkdir %s: %s", path, strerror(errno));
		*p = '/';
	}
	if (mkdir_owned(home, uid, gid) == 0)
		fprintf(stderr, "homemail-user: note: %s already exists, left as it is\n", home);
	for (size_t i = 0; i < HM_ARRAY_SIZE(subs); i++) {
		if (hm_snprintf(path, sizeof(path), "%s/%s", home, subs[i]) < 0)
			die(EX_DATAERR, "home path too long");
		(void)mkdir_owned(path, uid, gid);
	}
}

struct edit {
	const char *address;
	struct hm_user *user;           /* add */
	const char *hash;               /* passwd */
	enum hm_user_state state;       /* lock/unlock */
	int op;
	int err;                        /* sysexits code set by the edit */
};

enum { OP_ADD, OP_DEL, OP_PASSWD, OP_STATE, OP_EXPIRE };

/* apply_edit - the change, inside hm_users_modify's lock */
static int apply_edit(struct hm_users *db, void *ctx)
{
	struct edit *e = ctx;
	int r = -1;

	switch (e->op) {
	case OP_ADD:
		r = hm_users_add(db, e->user);
		break;
	case OP_DEL:
		r = hm_users_remove(db, e->address);
		break;
	case OP_PASSWD:
		/* a password the admin sets is a new one: no longer expired */
		r = hm_users_set_hash(db, e->address, e->hash);
		if (r == 0)
			r = hm_users_set_pw_expired(db, e->address, false);
		break;
	case OP_EXPIRE:
		if (hm_users_find(db, e->address) != NULL &&
		    hm_user_pw_expired(hm_users_find(db, e->address)))
			return 0;
		r = hm_users_set_pw_expired(db, e->address, true);
		break;
	case OP_STATE:
		if (hm_users_find(db, e->address) == NULL) {
			errno = ENOENT;
			break;
		}
		if (hm_users_find(db, e->address)->state == e->state)
			return 0;
		r = hm_users_set_state(db, e->address, e->state);
		break;
	}
	if (r < 0) {
		e->err = errno == ENOENT ? EX_NOUSER : errno == EEXIST ? EX_DATAERR :
			 errno == EINVAL ? EX_DATAERR : EX_SOFTWARE;
		return -1;
	}
	return 1;
}

/* warn_line - malformed lines are reported, never fatal */
static void warn_line(void *ctx, const char *path, unsigned int line, const char *msg)
{
	(void)ctx;
	fprintf(stderr, "homemail-user: warning: %s line %u: %s\n", path, line, msg);
}

/* run_edit - hm_users_modify with diagnostics */
static int run_edit(const struct opts *o, struct edit *e)
{
	int r = hm_users_modify(o->users, apply_edit, e, warn_line, NULL);

	if (r < 0) {
		if (e->err == EX_NOUSER)
			die(EX_NOUSER, "no such account: %s", e->address);
		if (e->err == EX_DATAERR && e->op == OP_ADD && errno == EEXIST)
			die(EX_DATAERR, "account exists: %s", e->address);
		if (e->err == EX_DATAERR && e->op == OP_ADD && errno == EINVAL)
			die(EX_DATAERR, "%s: invalid fields, or the home is (inside) another account's home",
			    e->address);
		if (e->err != 0)
			die(e->err, "%s: %s", e->address, strerror(errno));
		die(errno_code(errno), "updating %s: %s", o->users, strerror(errno));
	}
	return r;
}

/* open_lockout - the lockout state (NULL with a note if unusable) */
static struct hm_lockout *open_lockout(const struct opts *o)
{
	struct hm_lockout_policy p;
	struct hm_lockout *lo;
	struct stat st;

	if (stat(o->lockout, &st) < 0)
		return NULL;    /* no state yet: nothing locked */
	hm_lockout_policy_default(&p);
	p.ipv6_prefix = 0;      /* count addresses as the auth module does */
	if (hm_lockout_open(o->lockout, &p, &lo) < 0) {
		fprintf(stderr, "homemail-user: warning: lockout state %s: %s\n",
			o->lockout, strerror(errno));
		return NULL;
	}
	if (hm_lockout_open_note(lo) != NULL)
		fprintf(stderr, "homemail-user: warning: lockout state %s: %s\n",
			o->lockout, hm_lockout_open_note(lo));
	return lo;
}

/* print_time - "YYYY-MM-DD HH:MM:SS UTC" */
static void print_time(const char *label, time_t t)
{
	char buf[64];
	struct tm tm;

	if (gmtime_r(&t, &tm) != NULL && strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S UTC", &tm) > 0)
		printf("%s: %s\n", label, buf);
}

/* show_lockout - lockout lines for one key */
static void show_lockout(struct hm_lockout *lo, enum hm_lockout_kind kind, const char *key)
{
	struct hm_lockout_status st;
	time_t now = time(NULL);

	if (lo == NULL || hm_lockout_get(lo, kind, key, now, &st) < 0) {
		printf("failures: 0\nlocked: no\n");
		return;
	}
	printf("failures: %u\n", st.failures);
	if (st.last_failure != 0)
		print_time("last_failure", st.last_failure);
	printf("locked: %s\n", st.locked ? "yes" : st.backoff ? "back-off" : "no");
	if (st.locked || st.backoff)
		print_time("retry_after", st.retry_after);
}

static int cmd_add(const struct opts *o, const char *arg)
{
	char addr[HM_USERS_MAX_ADDRESS + 1], home[HM_USERS_MAX_HOME + 1];
	char hash[HM_PW_HASH_SIZE];
	struct hm_user u = { 0 };
	struct edit e = { .op = OP_ADD };
	uint64_t q;
	uid_t uid;
	gid_t gid;

	normalize_or_die(arg, addr, sizeof(addr));
	if (o->uid >= 0 || o->gid >= 0) {
		if (o->uid <= 0 || o->gid <= 0)
			die(EX_USAGE, "--uid and --gid go together and must not be 0");
		uid = (uid_t)o->uid;
		gid = (gid_t)o->gid;
	} else {
		const char *owner = o->owner ? o->owner : "vmail";
		struct passwd *pwd = getpwnam(owner);
		if (pwd == NULL)
			die(EX_NOUSER, "owner account '%s' does not exist: create it or give --owner/--uid --gid",
			    owner);
		if (pwd->pw_uid == 0)
			die(EX_DATAERR, "refusing root as owner of a mailbox");
		uid = pwd->pw_uid;
		gid = pwd->pw_gid;
	}
	if (o->home != NULL) {
		if (!hm_users_valid_home(o->home))
			die(EX_DATAERR, "invalid home '%s' (absolute, no . or .. components, no ':')", o->home);
		(void)hm_strlcpy(home, o->home, sizeof(home));
	} else {
		const char *at = strchr(addr, '@');
		if (hm_snprintf(home, sizeof(home), "%s/%s/%.*s", VMAIL_BASE, at + 1,
				(int)(at - addr), addr) < 0 || !hm_users_valid_home(home))
			die(EX_DATAERR, "cannot derive a home for %s: give --home", addr);
	}
	if (o->quota != NULL && hm_users_parse_quota(o->quota, &q) < 0)
		die(EX_DATAERR, "invalid quota '%s' (bytes with optional k/M/G/T)", o->quota);
	/* no --quota: the domain's default (quota= in the domains table next
	 * to the users file, docs/domains.md) */
	char dquota[32] = "";
	if (o->quota == NULL)
		homemail_user_domain_quota(o->users, strchr(addr, '@') + 1, dquota, sizeof(dquota));
	get_hash(o, hash, sizeof(hash));
	u.address = addr;
	u.hash = hash;
	u.uid = uid;
	u.gid = gid;
	u.home = home;
	u.quota = (char *)(o->quota ? o->quota : dquota);
	e.address = addr;
	e.user = &u;
	run_edit(o, &e);
	make_home(home, uid, gid);
	printf("added %s (uid %lu, gid %lu, home %s)\n", addr, (unsigned long)uid,
	       (unsigned long)gid, home);
	return 0;
}

/* rm_one - nftw callback removing one entry of a home (no symlinks followed: nftw with FTW_PHYS) */
static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st; (void)f;
	return (flag == FTW_DP ? rmdir(p) : unlink(p)) < 0 ? -1 : 0;
}

static int cmd_del(const struct opts *o, const char *arg)
{
	char addr[HM_USERS_MAX_ADDRESS + 1], home[HM_USERS_MAX_HOME + 1] = "";
	struct edit e = { .op = OP_DEL };
	struct hm_users *db;

	normalize_or_die(arg, addr, sizeof(addr));
	if (o->remove_home && hm_users_load(o->users, NULL, NULL, &db) == 0) {
		const struct hm_user *u = hm_users_find(db, addr);
		if (u != NULL)
			(void)hm_strlcpy(home, u->home, sizeof(home));
		hm_users_free(&db);
	}
	if (o->remove_home && home[0] != '\0' && !o->no_archive) {
		char ar[PATH_MAX];
		if (homemail_user_archive_home(home, addr, o->archive ? o->archive : HOMEMAIL_ARCHIVE_DIR,
					       ar, sizeof(ar)) < 0)
			die(EX_CANTCREAT, "%s not deleted: its home could not be archived "
			    "(--no-archive to delete without one)", addr);
		printf("archived %s into %s\n", home, ar);
	}
	e.address = addr;
	run_edit(o, &e);
	if (o->remove_home && home[0] != '\0') {
		if (nftw(home, rm_one, 16, FTW_DEPTH | FTW_PHYS) < 0)
			die(EX_IOERR, "account deleted, but removing %s failed: %s", home, strerror(errno));
		printf("deleted %s and removed %s\n", addr, home);
	} else {
		printf("deleted %s (home kept)\n", addr);
	}
	return 0;
}

static int cmd_passwd(const struct opts *o, const char *arg)
{
	char addr[HM_USERS_MAX_ADDRESS + 1], hash[HM_PW_HASH_SIZE];
	struct edit e = { .op = OP_PASSWD };
	struct hm_users *db;

	normalize_or_die(arg, addr, sizeof(addr));
	if (o->expire) {
		/* only the flag: the password stays until the user changes it */
		e.op = OP_EXPIRE;
		e.address = addr;
		run_edit(o, &e);
		printf("password of %s expired: it must be changed at the next login\n", addr);
		return 0;
	}
	/* fail before asking for a password when the account is missing */
	if (hm_users_load(o->users, NULL, NULL, &db) == 0) {
		bool found = hm_users_find(db, addr) != NULL;
		hm_users_free(&db);
		if (!found)
			die(EX_NOUSER, "no such account: %s", addr);
	} else if (errno == ENOENT) {
		die(EX_NOUSER, "no such account: %s (%s missing)", addr, o->users);
	}
	get_hash(o, hash, sizeof(hash));
	e.address = addr;
	e.hash = hash;
	run_edit(o, &e);
	printf("password of %s changed (%s)\n", addr, hm_pw_scheme_name(o->scheme));
	return 0;
}

static int cmd_list(const struct opts *o)
{
	struct hm_users *db;

	if (hm_users_load(o->users, warn_line, NULL, &db) < 0) {
		if (errno == ENOENT)
			return 0;
		die(errno_code(errno), "reading %s: %s", o->users, strerror(errno));
	}
	for (size_t i = 0; i < hm_users_count(db); i++) {
		const struct hm_user *u = hm_users_at(db, i);
		printf("%s\t%lu\t%lu\t%s\t%s\t%s", u->address, (unsigned long)u->uid,
		       (unsigned long)u->gid, u->home, u->quota[0] ? u->quota : "-",
		       hm_user_state_name(u->state));
		if (o->hashes)
			printf("\t%s", u->hash);
		putchar('\n');
	}
	hm_users_free(&db);
	return 0;
}

static int cmd_state(const struct opts *o, const char *arg, bool lock)
{
	char addr[HM_USERS_MAX_ADDRESS + 1];
	struct edit e = { .op = OP_STATE, .state = lock ? HM_USER_LOCKED : HM_USER_ACTIVE };
	struct hm_lockout *lo;
	struct hm_users *db;
	bool is_virtual = false;

	if (!lock && o->ip) {
		lo = open_lockout(o);
		if (lo != NULL && hm_lockout_clear(lo, HM_LOCKOUT_IP, arg) < 0)
			die(EX_IOERR, "clearing lockout of %s: %s", arg, strerror(errno));
		hm_lockout_close(&lo);
		printf("remote address %s unlocked\n", arg);
		return 0;
	}
	if (strchr(arg, '@') != NULL) {
		normalize_or_die(arg, addr, sizeof(addr));
		if (hm_users_load(o->users, NULL, NULL, &db) == 0) {
			is_virtual = hm_users_find(db, addr) != NULL;
			hm_users_free(&db);
		}
	} else {
		/* a system account: only its lockout counters can be cleared */
		if (lock)
			die(EX_USAGE, "lock works on virtual accounts (user@domain); "
			    "lock system accounts with usermod -L");
		if (hm_strlcpy(addr, arg, sizeof(addr)) < 0)
			die(EX_DATAERR, "name too long");
	}
	if (is_virtual) {
		e.address = addr;
		run_edit(o, &e);
	} else if (lock) {
		die(EX_NOUSER, "no such account: %s", addr);
	}
	if (!lock) {
		lo = open_lockout(o);
		if (lo != NULL) {
			char *at = strchr(addr, '@');
			if (hm_lockout_clear(lo, HM_LOCKOUT_USER, addr) < 0)
				die(EX_IOERR, "clearing lockout: %s", strerror(errno));
			if (at != NULL) {       /* user@localdomain maps to a system user */
				*at = '\0';
				(void)hm_lockout_clear(lo, HM_LOCKOUT_USER, addr);
				*at = '@';
			}
			hm_lockout_close(&lo);
		}
	}
	printf("%s %s\n", addr, lock ? "locked" : "unlocked");
	return 0;
}

static int cmd_show(const struct opts *o, const char *arg)
{
	char addr[HM_USERS_MAX_ADDRESS + 1], scheme[64];
	struct hm_users *db = NULL;
	const struct hm_user *u = NULL;
	struct hm_lockout *lo;
	struct hm_pw_info info;
	const char *bare;

	if (strchr(arg, '@') != NULL) {
		normalize_or_die(arg, addr, sizeof(addr));
		if (hm_users_load(o->users, warn_line, NULL, &db) == 0)
			u = hm_users_find(db, addr);
		else if (errno != ENOENT)
			die(errno_code(errno), "reading %s: %s", o->users, strerror(errno));
	} else if (hm_strlcpy(addr, arg, sizeof(addr)) < 0) {
		die(EX_DATAERR, "name too long");
	}
	printf("account: %s\n", addr);
	if (u != NULL) {
		bare = hm_pw_split(u->hash, scheme, sizeof(scheme));
		printf("type: virtual (%s line %u)\nuid: %lu\ngid: %lu\nhome: %s\nquota: %s\nstate: %s\n",
		       o->users, u->line, (unsigned long)u->uid, (unsigned long)u->gid, u->home,
		       u->quota[0] ? u->quota : "none", hm_user_state_name(u->state));
		if (bare != NULL && hm_pw_identify(scheme, bare, &info) == 0)
			printf("scheme: %s%s\n", info.name, info.weak ? " (weak)" : "");
		if (hm_user_pw_expired(u))
			printf("password: expired (must be changed at the next login)\n");
		if (o->hashes)
			printf("hash: %s\n", u->hash);
	} else {
		struct passwd *pw = strchr(addr, '@') ? NULL : getpwnam(addr);
		if (pw == NULL) {
			hm_users_free(&db);
			lo = open_lockout(o);
			printf("type: unknown\n");
			show_lockout(lo, HM_LOCKOUT_USER, addr);
			hm_lockout_close(&lo);
			return EX_NOUSER;
		}
		printf("type: system\nuid: %lu\ngid: %lu\nhome: %s\n", (unsigned long)pw->pw_uid,
		       (unsigned long)pw->pw_gid, pw->pw_dir);
	}
	hm_users_free(&db);
	lo = open_lockout(o);
	show_lockout(lo, HM_LOCKOUT_USER, addr);
	hm_lockout_close(&lo);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "users", required_argument, NULL, 'U' },
		{ "lockout", required_argument, NULL, 'L' },
		{ "owner", required_argument, NULL, 'o' },
		{ "uid", required_argument, NULL, 'u' },
		{ "gid", required_argument, NULL, 'g' },
		{ "home", required_argument, NULL, 'h' },
		{ "quota", required_argument, NULL, 'q' },
		{ "scheme", required_argument, NULL, 's' },
		{ "password-stdin", no_argument, NULL, 'p' },
		{ "remove-home", no_argument, NULL, 'r' },
		{ "archive", required_argument, NULL, 'a' },
		{ "no-archive", no_argument, NULL, 'n' },
		{ "hashes", no_argument, NULL, 'H' },
		{ "hash", no_argument, NULL, 'H' },
		{ "ip", no_argument, NULL, 'i' },
		{ "expire", no_argument, NULL, 'x' },
		{ "help", no_argument, NULL, '?' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = {
		.users = HM_USERS_PATH_DEFAULT, .lockout = HM_LOCKOUT_PATH_DEFAULT,
		.uid = -1, .gid = -1, .scheme = HM_PW_YESCRYPT,
	};
	const char *cmd, *arg = NULL;
	int c;

	hm_cli_std_options(argc, argv, "homemail-user", USAGE);
	umask(077);
	/* domain, alias, disable, enable, rename, quota: homemail-user-vdom.c */
	c = homemail_user_vdom_main(argc, argv);
	if (c >= 0)
		return c;
	/* options may come before or after the command (GNU permutation) */
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		char *end;
		switch (c) {
		case 'U': o.users = optarg; break;
		case 'L': o.lockout = optarg; break;
		case 'o': o.owner = optarg; break;
		case 'u': case 'g': {
			long v;
			errno = 0;
			v = strtol(optarg, &end, 10);
			if (errno || *end || v <= 0 || v > 0x7fffffffL)
				die(EX_USAGE, "invalid --%s '%s'", c == 'u' ? "uid" : "gid", optarg);
			if (c == 'u') o.uid = v; else o.gid = v;
			break;
		}
		case 'h': o.home = optarg; break;
		case 'q': o.quota = optarg; break;
		case 's':
			o.scheme = hm_pw_scheme_by_name(optarg);
			if (o.scheme == HM_PW_UNKNOWN)
				die(EX_USAGE, "unknown or weak scheme '%s' (yescrypt, bcrypt, sha512-crypt, sha256-crypt)",
				    optarg);
			break;
		case 'p': o.password_stdin = true; break;
		case 'r': o.remove_home = true; break;
		case 'a': o.archive = optarg; break;
		case 'n': o.no_archive = true; break;
		case 'H': o.hashes = true; break;
		case 'i': o.ip = true; break;
		case 'x': o.expire = true; break;
		default: usage();
		}
	}
	if (optind >= argc)
		usage();
	cmd = argv[optind++];
	if (optind < argc)
		arg = argv[optind++];
	if (optind < argc)
		die(EX_USAGE, "unexpected argument '%s'", argv[optind]);
	if (o.users[0] != '/' || o.lockout[0] != '/')
		die(EX_USAGE, "--users and --lockout need absolute paths");
	if (strcmp(cmd, "list") == 0) {
		if (arg != NULL)
			usage();
		return cmd_list(&o);
	}
	if (arg == NULL)
		usage();
	if (strcmp(cmd, "add") == 0)
		return cmd_add(&o, arg);
	if (strcmp(cmd, "del") == 0)
		return cmd_del(&o, arg);
	if (strcmp(cmd, "passwd") == 0)
		return cmd_passwd(&o, arg);
	if (strcmp(cmd, "lock") == 0)
		return cmd_state(&o, arg, true);
	if (strcmp(cmd, "unlock") == 0)
		return cmd_state(&o, arg, false);
	if (strcmp(cmd, "show") == 0)
		return cmd_show(&o, arg);
	usage();
}
