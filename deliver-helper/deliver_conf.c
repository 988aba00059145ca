/* deliver_conf.c — /etc/homemail/deliver.conf, path expansion, address checks.
 *
 * What for: the LDA's few settings (see docs/deliver.md for every key).
 * Relies on: stdio; the file is small (lines up to 1023 bytes).
 * How it fails: -1 with a message naming the file, line and key; an unknown
 *   key or a bad value is an error (the caller defers with 75), never a guess.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "deliver.h"
#include "hm_buf.h"
#include "hm_util.h"

/* set_str - replace *dst with a copy of v */
static int set_str(char **dst, const char *v)
{
	char *n = strdup(v);
	if (n == NULL)
		return -1;
	free(*dst);
	*dst = n;
	return 0;
}

/* parse_bool - yes/no/true/false/1/0 */
static int parse_bool(const char *v, bool *val_r)
{
	if (!strcasecmp(v, "yes") || !strcasecmp(v, "true") || !strcmp(v, "1"))
		*val_r = true;
	else if (!strcasecmp(v, "no") || !strcasecmp(v, "false") || !strcmp(v, "0"))
		*val_r = false;
	else
		return -1;
	return 0;
}

/* parse_num - unsigned decimal with optional K/M suffix, <= max */
static int parse_num(const char *v, unsigned long long max, unsigned long long *val_r)
{
	char *end;
	if (*v < '0' || *v > '9')
		return -1;
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	if (errno)
		return -1;
	if (*end == 'K' || *end == 'k') { n *= 1024; end++; }
	else if (*end == 'M' || *end == 'm') { n *= 1024 * 1024; end++; }
	if (*end != '\0' || n > max)
		return -1;
	*val_r = n;
	return 0;
}

/* deliver_conf_free - release the strings */
void deliver_conf_free(struct deliver_conf *c)
{
	free(c->auth_socket);
	free(c->mail_location);
	free(c->quota_rule);
	free(c->sieve);
	free(c->sieve_dir);
	free(c->replication_notify);
	free(c->replication_notify_virtual);
	memset(c, 0, sizeof *c);
}

/* apply - one key = value */
static int apply(struct deliver_conf *c, const char *k, const char *v)
{
	unsigned long long n;
	if (!strcmp(k, "auth_socket"))
		return *v ? set_str(&c->auth_socket, v) : -1;
	if (!strcmp(k, "auth_timeout")) {
		if (parse_num(v, 300, &n) < 0 || n == 0)
			return -1;
		c->auth_timeout_ms = (int)n * 1000;
		return 0;
	}
	if (!strcmp(k, "userdb")) {
		if (!strcmp(v, "socket")) { c->userdb_socket = true; c->userdb_passwd = false; }
		else if (!strcmp(v, "passwd")) { c->userdb_socket = false; c->userdb_passwd = true; }
		else if (!strcmp(v, "socket,passwd")) { c->userdb_socket = true; c->userdb_passwd = true; }
		else return -1;
		return 0;
	}
	if (!strcmp(k, "lookup_own_user"))
		return parse_bool(v, &c->lookup_own_user);
	if (!strcmp(k, "mail_location"))
		return strncmp(v, "maildir:", 8) == 0 ? set_str(&c->mail_location, v) : -1;
	if (!strcmp(k, "quota_rule"))
		return set_str(&c->quota_rule, v);
	if (!strcmp(k, "quota_full")) {
		if (!strcmp(v, "tempfail")) c->quota_reject = false;
		else if (!strcmp(v, "reject")) c->quota_reject = true;
		else return -1;
		return 0;
	}
	if (!strcmp(k, "loop_max")) {
		if (parse_num(v, 1000, &n) < 0 || n == 0)
			return -1;
		c->loop_max = (unsigned)n;
		return 0;
	}
	if (!strcmp(k, "max_header_size")) {
		if (parse_num(v, 64ULL * 1024 * 1024, &n) < 0 || n < 1024)
			return -1;
		c->max_header = (size_t)n;
		return 0;
	}
	if (!strcmp(k, "sieve"))
		return set_str(&c->sieve, v);
	if (!strcmp(k, "sieve_dir"))
		return set_str(&c->sieve_dir, v);
	if (!strcmp(k, "replication_notify"))   /* absolute path or "" (off) */
		return *v == '\0' || *v == '/' ? set_str(&c->replication_notify, v) : -1;
	if (!strcmp(k, "replication_notify_virtual"))   /* likewise */
		return *v == '\0' || *v == '/' ? set_str(&c->replication_notify_virtual, v) : -1;
	errno = ENOENT;
	return -1;
}

/* deliver_conf_load - see deliver.h */
int deliver_conf_load(struct deliver_conf *c, const char *path, bool required,
		      char *err, size_t errsize)
{
	memset(c, 0, sizeof *c);
	c->auth_timeout_ms = 10000;
	c->userdb_socket = true;
	c->loop_max = 3;
	c->max_header = 1024 * 1024;
	if (set_str(&c->auth_socket, "/run/dovecot/auth-userdb") < 0 ||
	    set_str(&c->mail_location, "maildir:~/Maildir") < 0 ||
	    set_str(&c->quota_rule, "") < 0 ||
	    set_str(&c->sieve, "~/.dovecot.sieve") < 0 ||
	    set_str(&c->sieve_dir, "~/sieve") < 0 ||
	    set_str(&c->replication_notify, "") < 0 ||
	    set_str(&c->replication_notify_virtual, "") < 0) {
		snprintf(err, errsize, "out of memory");
		deliver_conf_free(c);
		return -1;
	}
	if (path == NULL)
		return 0;
	FILE *f = fopen(path, "re");
	if (f == NULL) {
		if (errno == ENOENT && !required)
			return 0;
		snprintf(err, errsize, "%s: %s", path, strerror(errno));
		deliver_conf_free(c);
		return -1;
	}
	char line[1024];
	int lineno = 0, rc = 0;
	while (fgets(line, sizeof line, f) != NULL) {
		lineno++;
		size_t len = strlen(line);
		if (len == sizeof line - 1 && line[len - 1] != '\n') {
			snprintf(err, errsize, "%s:%d: line too long", path, lineno);
			rc = -1;
			break;
		}
		char *s = hm_trim(line);
		if (*s == '\0' || *s == '#')
			continue;
		char *eq = strchr(s, '=');
		if (eq == NULL) {
			snprintf(err, errsize, "%s:%d: expected key = value", path, lineno);
			rc = -1;
			break;
		}
		*eq = '\0';
		char *k = hm_trim(s), *v = hm_trim(eq + 1);
		errno = 0;
		if (apply(c, k, v) < 0) {
			char ck[64];
			hm_log_clean(ck, sizeof ck, k, strlen(k));
			snprintf(err, errsize, "%s:%d: %s '%s'", path, lineno,
				 errno == ENOENT ? "unknown key" : "bad value for", ck);
			rc = -1;
			break;
		}
	}
	fclose(f);
	if (rc < 0)
		deliver_conf_free(c);
	return rc;
}

/* deliver_expand_path - see deliver.h */
char *deliver_expand_path(const char *s, const char *user, const char *home)
{
	struct hm_buf b;
	hm_buf_init(&b, 4096);
	const char *at = user ? strchr(user, '@') : NULL;
	if (s[0] == '~' && (s[1] == '/' || s[1] == '\0')) {
		if (home == NULL || home[0] == '\0') {
			errno = EINVAL;
			return NULL;
		}
		if (hm_buf_puts(&b, home) < 0)
			goto fail;
		s++;
	}
	for (; *s; s++) {
		int r;
		if (*s != '%') {
			r = hm_buf_putc(&b, *s);
		} else {
			s++;
			switch (*s) {
			case 'u': r = hm_buf_puts(&b, user ? user : ""); break;
			case 'n': r = hm_buf_append(&b, user ? user : "", at ? (size_t)(at - user) : strlen(user ? user : "")); break;
			case 'd': r = hm_buf_puts(&b, at ? at + 1 : ""); break;
			case 'h': r = hm_buf_puts(&b, home ? home : ""); break;
			case '%': r = hm_buf_putc(&b, '%'); break;
			default: errno = EINVAL; goto fail;
			}
		}
		if (r < 0)
			goto fail;
	}
	size_t len;
	char *out = hm_buf_steal(&b, &len);
	hm_buf_free(&b);
	return out;
fail:
	hm_buf_free(&b);
	return NULL;
}

/* deliver_valid_address - see deliver.h */
bool deliver_valid_address(const char *a)
{
	size_t n = 0;
	bool quoted = false;
	if (a == NULL)
		return false;
	for (const unsigned char *p = (const unsigned char *)a; *p; p++, n++) {
		if (n >= 512 || *p < 0x20 || *p == 0x7f)
			return false;
		if (*p == '"')
			quoted = !quoted;
		else if (*p == ' ' && !quoted)
			return false;
		else if ((*p == '<' || *p == '>') && !quoted)
			return false;
	}
	return !quoted;
}

/* deliver_sieve_location - see deliver.h.
 * Pigeonhole's syntax (doc/locations.txt there):
 *   [file:]PATH[;OPTION=VALUE...]   options: active=, name=, bindir=
 * PATH a directory: the script storage (ManageSieve's), the script run is
 * active= (default ~/.dovecot.sieve); PATH a file (or missing): that file.
 * "~/" and %u %n %d %h are expanded (deliver_expand_path). */
int deliver_sieve_location(const char *loc, const char *user, const char *home,
			   char **script_r, char **dir_r, char *err, size_t errsize)
{
	char *copy = NULL, *path = NULL, *active = NULL;
	int rc = -1;
	*script_r = *dir_r = NULL;
	if (strncmp(loc, "file:", 5) == 0) {
		loc += 5;
	} else {
		/* "ldap:", "dict:" ...: a storage homemail cannot read */
		size_t n = strspn(loc, "abcdefghijklmnopqrstuvwxyz0123456789-_");
		if (n > 0 && loc[n] == ':') {
			snprintf(err, errsize, "unsupported sieve location type \"%.*s\" (only file:)",
				 (int)n, loc);
			return -1;
		}
	}
	if ((copy = strdup(loc)) == NULL)
		goto nomem;
	char *save = NULL, *p = strtok_r(copy, ";", &save);
	if (p == NULL || *p == '\0') {
		snprintf(err, errsize, "sieve location without a path");
		goto out;
	}
	if ((path = deliver_expand_path(p, user, home)) == NULL || path[0] != '/') {
		snprintf(err, errsize, "sieve location path does not expand to an absolute path");
		goto out;
	}
	for (char *o = strtok_r(NULL, ";", &save); o; o = strtok_r(NULL, ";", &save)) {
		if (strncmp(o, "active=", 7) == 0) {
			free(active);
			if ((active = deliver_expand_path(o + 7, user, home)) == NULL || active[0] != '/') {
				snprintf(err, errsize, "sieve location active= does not expand to an "
					 "absolute path");
				goto out;
			}
		} else if (strncmp(o, "name=", 5) != 0 && strncmp(o, "bindir=", 7) != 0) {
			char c[80];
			hm_log_clean(c, sizeof c, o, strlen(o));
			snprintf(err, errsize, "unknown sieve location option \"%s\"", c);
			goto out;
		}
	}
	struct stat st;
	bool is_dir = active == NULL && stat(path, &st) == 0 && S_ISDIR(st.st_mode);
	if (active != NULL || is_dir) {
		*dir_r = path;
		path = NULL;
		if (active == NULL && (active = deliver_expand_path("~/.dovecot.sieve", user, home)) == NULL) {
			snprintf(err, errsize, "no home for the default active script");
			goto out;
		}
		*script_r = active;
		active = NULL;
	} else {
		*script_r = path;
		path = NULL;
	}
	rc = 0;
	goto out;
nomem:
	snprintf(err, errsize, "out of memory");
out:
	if (rc < 0) {
		free(*dir_r);
		*dir_r = NULL;
	}
	free(copy);
	free(path);
	free(active);
	return rc;
}
