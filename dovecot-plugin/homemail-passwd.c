/* homemail-passwd.c — a user changes the password of their own virtual
 * account: the privileged helper behind the webmail's password form.
 *
 * NAME
 *   homemail-passwd - verify the current password, then store a new one
 *
 * SYNOPSIS
 *   homemail-passwd [--rip ADDRESS] [--config FILE]  < "USER\nCURRENT\nNEW\n"
 *   homemail-passwd --check [--rip ADDRESS] [--config FILE] < "USER\nPASSWORD\n"
 *
 * DESCRIPTION
 *   Installed setuid root, executable by the web server's group only
 *   (dpkg-statoverride root www-data 4750, set by the playbook), so that
 *   Roundcube's password plugin (driver "homemail") can change a password
 *   without any shell and without write access to /etc/homemail/users.
 *   Everything the caller chooses arrives on standard input (at most 3
 *   lines of 1024 bytes, within 30 s) or as --rip, an IP address checked
 *   with inet_pton; the environment is discarded.  --config is honoured
 *   only for the real uid 0 (tests); the helper otherwise reads
 *   /etc/homemail/passwd.conf (root-owned, not writable by others).
 *
 *   The current password is verified by Dovecot's auth (SASL PLAIN over its
 *   auth-client socket, service "homemail-passwd", rip = the browser's
 *   address): the same passdb chain as every login, so a wrong password is
 *   counted in homemail's lockout state, a locked account or address is
 *   refused, and Dovecot's failure delay applies.  Then the new password is
 *   checked (lib/hm_pwpolicy: minimum length, character classes, not the
 *   account name, not the old one), hashed with the configured scheme and
 *   written with lib/hm_users (lock, temporary file, fsync, rename), which
 *   also clears the "expired" flag.  --check only verifies and prints
 *   "expired" or "current" (the webmail asks it after a login).
 *
 * DIAGNOSTICS
 *   One line on standard output for the user; exit 0 changed / verified,
 *   64 usage, 65 new password refused (the line says why), 67 not an
 *   account whose password is kept in the users file, 77 current password
 *   wrong (or the account may not log in), 75 temporary (auth unreachable,
 *   users file locked), 74 I/O error.
 *
 * Relies on: lib/hm_authclient, hm_pwpolicy, hm_users, hm_users_expire.
 */
#define _GNU_SOURCE 1
#include "hm_authclient.h"
#include "hm_cli.h"
#include "hm_pwpolicy.h"
#include "hm_users.h"
#include "hm_users_expire.h"
#include "hm_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#define CONFIG_DEFAULT   "/etc/homemail/passwd.conf"
#define AUTH_SOCKET      "/run/dovecot/auth-client"
#define SERVICE          "homemail-passwd"
#define INPUT_MAX        (3 * (HM_PW_MAX_PLAIN + 1) + HM_USERS_MAX_ADDRESS + 8)
#define INPUT_SECONDS    30

static const char USAGE[] =
	"usage: homemail-passwd [--check] [--rip ADDRESS] [--config FILE]\n"
	"  reads USER, CURRENT and NEW password (--check: USER and PASSWORD),\n"
	"  one per line, on standard input\n";

/* usage - a usage error: the synopsis on stderr (sysexits 64) */
static void __attribute__((noreturn)) usage(void)
{
	fputs(USAGE, stderr);
	exit(EX_USAGE);
}

struct conf {
	char users[1024];
	char auth_socket[108];
	enum hm_pw_scheme scheme;
	struct hm_pw_policy policy;
	int timeout_ms;
};

/* say - the one line for the user, then exit */
static void __attribute__((noreturn, format(printf, 2, 3))) say(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	exit(code);
}

/* read_conf - key = value lines; a file that others may write is refused */
static void read_conf(const char *path, bool must_exist, struct conf *c)
{
	char buf[8192], *line, *save = NULL;
	struct stat st;
	ssize_t n;
	int fd = hm_open_regular(path, O_RDONLY, 0, &st);

	if (fd < 0) {
		if (errno == ENOENT && !must_exist)
			return;
		say(EX_CONFIG, "cannot read %s: %s", path, strerror(errno));
	}
	if ((st.st_mode & 022) != 0 || (st.st_uid != 0 && st.st_uid != getuid()))
		say(EX_CONFIG, "%s must be root's and not writable by others", path);
	n = hm_read_full(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0 || (size_t)n >= sizeof(buf) - 1)
		say(EX_CONFIG, "%s: unreadable or larger than %zu bytes", path, sizeof(buf) - 2);
	buf[n] = '\0';
	for (line = strtok_r(buf, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		char *eq, *key, *val, *end;
		unsigned long v;

		key = hm_trim(line);
		if (*key == '\0' || *key == '#')
			continue;
		eq = strchr(key, '=');
		if (eq == NULL)
			say(EX_CONFIG, "%s: line without '=': %.40s", path, key);
		*eq = '\0';
		key = hm_trim(key);
		val = hm_trim(eq + 1);
		if (strcmp(key, "scheme") == 0) {
			c->scheme = hm_pw_scheme_by_name(val);
			if (c->scheme == HM_PW_UNKNOWN)
				say(EX_CONFIG, "%s: unknown or weak scheme '%.40s'", path, val);
		} else if (strcmp(key, "users") == 0 || strcmp(key, "auth_socket") == 0) {
			char *dst = key[0] == 'u' ? c->users : c->auth_socket;
			size_t size = key[0] == 'u' ? sizeof(c->users) : sizeof(c->auth_socket);
			if (val[0] != '/' || hm_strlcpy(dst, val, size) < 0)
				say(EX_CONFIG, "%s: %s needs an absolute path", path, key);
		} else if (strcmp(key, "min_length") == 0 || strcmp(key, "min_classes") == 0 ||
			   strcmp(key, "timeout") == 0) {
			errno = 0;
			v = strtoul(val, &end, 10);
			if (errno != 0 || *end != '\0' || end == val || v > 1024 ||
			    (key[4] == 'c' && (v < 1 || v > 4)) || (key[0] == 't' && v < 1))
				say(EX_CONFIG, "%s: bad %s '%.20s'", path, key, val);
			if (key[0] == 't')
				c->timeout_ms = (int)v * 1000;
			else if (key[4] == 'l')
				c->policy.min_length = (unsigned int)v;
			else
				c->policy.min_classes = (unsigned int)v;
		} else {
			say(EX_CONFIG, "%s: unknown setting '%.40s'", path, key);
		}
	}
}

/* read_input - up to nlines lines of standard input within INPUT_SECONDS;
 * each line at most max bytes, no NUL.  Lines are written into lines[] as
 * pointers into buf. */
static void read_input(char *buf, size_t size, char **lines, int nlines)
{
	size_t len = 0;
	time_t deadline = time(NULL) + INPUT_SECONDS;
	int got = 0;

	for (;;) {
		struct pollfd p = { .fd = STDIN_FILENO, .events = POLLIN };
		time_t left = deadline - time(NULL);
		ssize_t r;

		if (left <= 0)
			say(EX_USAGE, "no input within %d s", INPUT_SECONDS);
		if (poll(&p, 1, (int)left * 1000) < 0 && errno != EINTR)
			say(EX_IOERR, "poll: %s", strerror(errno));
		if (p.revents == 0)
			continue;
		r = read(STDIN_FILENO, buf + len, size - 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			say(EX_IOERR, "reading the input: %s", strerror(errno));
		if (r == 0)
			break;
		len += (size_t)r;
		if (len >= size - 1)
			say(EX_USAGE, "input too long");
	}
	buf[len] = '\0';
	if (memchr(buf, '\0', len) != NULL)
		say(EX_USAGE, "input holds a NUL byte");
	for (char *p = buf; got < nlines; got++) {
		char *nl = strchr(p, '\n');
		if (nl == NULL)
			say(EX_USAGE, "expected %d lines of input", nlines);
		*nl = '\0';
		if (nl > p && nl[-1] == '\r')
			nl[-1] = '\0';
		lines[got] = p;
		if (strlen(p) > HM_PW_MAX_PLAIN)
			say(EX_DATAERR, "a line of input is longer than %d bytes", HM_PW_MAX_PLAIN);
		p = nl + 1;
	}
}

struct change {
	const char *address;
	const char *hash;
	bool virtual_found;
};

/* store - inside hm_users_modify's lock: new hash, expired flag cleared */
static int store(struct hm_users *db, void *ctx)
{
	struct change *ch = ctx;

	if (hm_users_find(db, ch->address) == NULL)
		return errno = ENOENT, -1;
	ch->virtual_found = true;
	if (hm_users_set_hash(db, ch->address, ch->hash) < 0 ||
	    hm_users_set_pw_expired(db, ch->address, false) < 0)
		return -1;
	return 1;
}

/* sane_process - what a setuid program owes itself before reading input */
static void sane_process(void)
{
	struct rlimit nocore = { 0, 0 };

	for (int fd = 0; fd <= 2; fd++)
		if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) != fd)
			_exit(EX_OSERR);
	(void)clearenv();
	(void)setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin", 1);
	(void)setrlimit(RLIMIT_CORE, &nocore);
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	umask(077);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "check", no_argument, NULL, 'c' },
		{ "rip", required_argument, NULL, 'r' },
		{ "config", required_argument, NULL, 'C' },
		{ NULL, 0, NULL, 0 },
	};
	struct conf conf = {
		.users = HM_USERS_PATH_DEFAULT, .auth_socket = AUTH_SOCKET,
		.scheme = HM_PW_YESCRYPT, .policy = HM_PW_POLICY_DEFAULT, .timeout_ms = 20000,
	};
	const char *config = CONFIG_DEFAULT, *rip = NULL;
	char *buf, *lines[3], addr[HM_USERS_MAX_ADDRESS + 1], canon[HM_USERS_MAX_ADDRESS + 1];
	char reason[256], hash[HM_PW_HASH_SIZE], why[256], ipbuf[16];
	bool check = false, config_given = false;
	struct change ch = { 0 };
	int c, r;

	sane_process();
	hm_cli_std_options(argc, argv, "homemail-passwd", USAGE);
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': check = true; break;
		case 'r': rip = optarg; break;
		case 'C': config = optarg; config_given = true; break;
		default: usage();
		}
	}
	if (optind != argc)
		usage();
	if (config_given && getuid() != 0)
		say(EX_USAGE, "--config is for root only");
	if (rip != NULL && inet_pton(AF_INET, rip, ipbuf) != 1 &&
	    inet_pton(AF_INET6, rip, ipbuf) != 1)
		say(EX_USAGE, "--rip needs an IP address");
	if (geteuid() != 0)
		say(EX_NOPERM, "homemail-passwd must run as root (installed setuid root)");
	read_conf(config, config_given, &conf);

	buf = malloc(INPUT_MAX);
	if (buf == NULL)
		say(EX_OSERR, "out of memory");
	read_input(buf, INPUT_MAX, lines, check ? 2 : 3);
	if (hm_users_normalize_address(lines[0], addr, sizeof(addr)) < 0)
		say(EX_NOPERM, "the current password is wrong");

	/* the current password, through the same auth every login uses */
	r = hm_auth_plain(conf.auth_socket, SERVICE, addr, lines[1], rip, conf.timeout_ms,
			  canon, sizeof(canon), reason, sizeof(reason));
	if (r == HM_AUTHC_TEMPFAIL)
		say(EX_TEMPFAIL, "the password service is not available now (%s)", reason);
	if (r != HM_AUTHC_OK) {
		explicit_bzero(buf, INPUT_MAX);
		say(EX_NOPERM, "the current password is wrong");
	}
	if (check) {
		struct hm_users *db = NULL;
		const struct hm_user *u;
		bool expired;

		explicit_bzero(buf, INPUT_MAX);
		if (hm_users_load(conf.users, NULL, NULL, &db) < 0)
			say(errno == ENOENT ? EX_NOUSER : EX_TEMPFAIL, "cannot read the accounts");
		u = hm_users_find(db, canon);
		expired = u != NULL && hm_user_pw_expired(u);
		hm_users_free(&db);
		say(0, "%s", expired ? "expired" : "current");
	}
	if (hm_pw_check_strength(&conf.policy, lines[2], lines[1], canon, why, sizeof(why)) < 0) {
		explicit_bzero(buf, INPUT_MAX);
		say(EX_DATAERR, "%s", why);
	}
	if (hm_pw_hash(lines[2], conf.scheme, hash, sizeof(hash)) < 0) {
		explicit_bzero(buf, INPUT_MAX);
		say(EX_SOFTWARE, "hashing the new password failed");
	}
	explicit_bzero(buf, INPUT_MAX);
	free(buf);
	ch.address = canon;
	ch.hash = hash;
	r = hm_users_modify(conf.users, store, &ch, NULL, NULL);
	explicit_bzero(hash, sizeof(hash));
	if (r < 0) {
		if (errno == ENOENT)
			say(EX_NOUSER, "this account's password is not kept here "
			    "(a system account: change it with passwd)");
		if (errno == EWOULDBLOCK || errno == EAGAIN || errno == EINTR)
			say(EX_TEMPFAIL, "the accounts are being changed: try again");
		say(EX_IOERR, "the new password could not be stored");
	}
	say(0, "password changed");
}
