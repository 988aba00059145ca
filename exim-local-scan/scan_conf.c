/* scan_conf.c — /etc/homemail/scan.conf: `key = value` lines, `#` comments.
 *
 * Every key has a built-in default (docs/scan.md); the file only overrides.
 * Unknown keys, bad numbers, out-of-range values and unknown actions are
 * errors with the file name and line number — the caller turns that into a
 * temporary rejection, never into silent acceptance.
 * Relies on: hm_util (trim, checked arithmetic).  Opens with O_NOFOLLOW.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hm_util.h"
#include "scan.h"

#define CONF_MAX_BYTES (256 * 1024)

static const char *const default_blocked =
	"ade adp apk app application appref-ms appx appxbundle bas bat cab chm cmd com cpl "
	"diagcab dll exe gadget hlp hta inf ins iso img isp jar jnlp js jse lib lnk mde msc "
	"msh msh1 msh2 mshxml msh1xml msh2xml msi msix msixbundle msp mst nsh ops pcd pif "
	"ps1 ps1xml ps2 ps2xml psc1 psc2 reg scf scr sct settingcontent-ms shb shs sys url "
	"vb vbe vbs vhd vhdx vxd ws wsc wsf wsh xbap xll";

static const char *const action_names[] = {
	[SCAN_ACCEPT] = "accept", [SCAN_TAG] = "tag", [SCAN_FREEZE] = "freeze",
	[SCAN_TEMPREJECT] = "tempreject", [SCAN_REJECT] = "reject",
};

static const char *const rule_names[SR_MAX] = {
	[SR_LIMIT] = "limit", [SR_BLOCKED] = "blocked", [SR_AMBIGUOUS] = "ambiguous",
	[SR_ENCODING] = "encoding", [SR_FROM] = "from", [SR_DATE] = "date",
	[SR_HDR_NUL] = "header_nul", [SR_HDR_BARE_CR] = "header_bare_cr",
	[SR_HDR_8BIT] = "header_8bit", [SR_UNSCANNABLE] = "unscannable",
	[SR_INTERNAL] = "internal",
};

const char *scan_action_name(enum scan_action a)
{
	return (unsigned)a <= SCAN_REJECT ? action_names[a] : "?";
}

const char *scan_rule_name(enum scan_rule r)
{
	return (unsigned)r < SR_MAX ? rule_names[r] : "?";
}

const char *scan_conf_path(void)
{
	const char *p = getenv(SCAN_CONF_ENV);
	return (p && *p) ? p : SCAN_CONF_DEFAULT_PATH;
}

static void free_blocked(struct scan_conf *c)
{
	for (size_t i = 0; i < c->nblocked; i++)
		free(c->blocked[i]);
	free(c->blocked);
	c->blocked = NULL;
	c->nblocked = 0;
}

/* set_blocked - replace the list from a space/comma separated string; a
 * leading dot is accepted ("exe" and ".exe" mean the same).
 * Returns 0, -1 ENOMEM, -2 bad entry. */
static int set_blocked(struct scan_conf *c, const char *list)
{
	free_blocked(c);
	size_t cap = 16;
	c->blocked = calloc(cap, sizeof *c->blocked);
	if (!c->blocked)
		return -1;
	const char *p = list;
	while (*p) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (!*p)
			break;
		const char *s = p;
		while (*p && *p != ' ' && *p != '\t' && *p != ',')
			p++;
		if (*s == '.')
			s++;
		size_t n = (size_t)(p - s);
		if (n == 0 || n > 32)
			return -2;
		for (size_t i = 0; i < n; i++)
			if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
				return -2;
		if (c->nblocked == cap) {
			char **nb = realloc(c->blocked, cap * 2 * sizeof *nb);
			if (!nb)
				return -1;
			c->blocked = nb;
			cap *= 2;
		}
		char *e = malloc(n + 1);
		if (!e)
			return -1;
		for (size_t i = 0; i < n; i++)
			e[i] = (char)tolower((unsigned char)s[i]);
		e[n] = 0;
		c->blocked[c->nblocked++] = e;
	}
	return 0;
}

int scan_conf_defaults(struct scan_conf *c)
{
	memset(c, 0, sizeof *c);
	hm_mime_limits_default(&c->lim);
	c->action[SR_LIMIT] = SCAN_REJECT;
	c->action[SR_BLOCKED] = SCAN_REJECT;
	c->action[SR_AMBIGUOUS] = SCAN_REJECT;
	c->action[SR_ENCODING] = SCAN_REJECT;
	c->action[SR_FROM] = SCAN_REJECT;
	c->action[SR_DATE] = SCAN_TAG;
	c->action[SR_HDR_NUL] = SCAN_REJECT;
	c->action[SR_HDR_BARE_CR] = SCAN_REJECT;
	c->action[SR_HDR_8BIT] = SCAN_TAG;
	c->action[SR_UNSCANNABLE] = SCAN_TAG;
	c->action[SR_INTERNAL] = SCAN_TEMPREJECT;
	c->scan_archives = true;
	c->max_archive_size = 20u * 1024 * 1024;
	c->archive_depth = 2;
	c->max_archive_inflate = 64u * 1024 * 1024;
	c->time_budget = 60;
	c->auth_timeout_ms = 2000;
	c->auth_socket = strdup(SCAN_AUTH_SOCKET_DEFAULT);
	c->dmarc = true;
	c->authserv_id = strdup("");
	c->dmarc_psl = strdup("/usr/share/publicsuffix/public_suffix_list.dafsa");
	c->dmarc_history = strdup("");
	c->dmarc_history_max = 64u * 1024 * 1024;
	if (!c->auth_socket || !c->authserv_id || !c->dmarc_psl || !c->dmarc_history ||
	    set_blocked(c, default_blocked) != 0) {
		scan_conf_free(c);
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

void scan_conf_free(struct scan_conf *c)
{
	free_blocked(c);
	free(c->auth_socket);
	c->auth_socket = NULL;
	free(c->authserv_id);
	c->authserv_id = NULL;
	free(c->dmarc_psl);
	c->dmarc_psl = NULL;
	free(c->dmarc_history);
	c->dmarc_history = NULL;
}

/* set_str - replace *slot with a copy of v; Returns NULL or a static error */
static const char *set_str(char **slot, const char *v)
{
	char *d = strdup(v);
	if (!d)
		return "out of memory";
	free(*slot);
	*slot = d;
	return NULL;
}

/* parse_size - decimal with optional K/M/G suffix (powers of 1024) within [lo, hi] */
static bool parse_size(const char *v, unsigned long long lo, unsigned long long hi,
		       size_t *value_r)
{
	if (!isdigit((unsigned char)*v))
		return false;
	errno = 0;
	char *e;
	unsigned long long n = strtoull(v, &e, 10);
	if (errno)
		return false;
	unsigned long long mul = 1;
	if (*e == 'k' || *e == 'K')
		mul = 1024, e++;
	else if (*e == 'm' || *e == 'M')
		mul = 1024 * 1024, e++;
	else if (*e == 'g' || *e == 'G')
		mul = 1024ull * 1024 * 1024, e++;
	if (*e != 0 || __builtin_mul_overflow(n, mul, &n) || n < lo || n > hi)
		return false;
	*value_r = (size_t)n;
	return true;
}

static bool parse_bool(const char *v, bool *value_r)
{
	if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "on") || !strcmp(v, "1"))
		return *value_r = true, true;
	if (!strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "off") || !strcmp(v, "0"))
		return *value_r = false, true;
	return false;
}

static bool parse_action(const char *v, enum scan_action *action_r)
{
	for (unsigned a = SCAN_ACCEPT; a <= SCAN_REJECT; a++)
		if (!strcmp(v, action_names[a]))
			return *action_r = (enum scan_action)a, true;
	return false;
}

/* apply - one key/value pair; returns NULL or a static error text */
static const char *apply(struct scan_conf *c, const char *k, const char *v)
{
	size_t n;
	if (!strcmp(k, "max_depth")) {
		if (!parse_size(v, 1, 10000, &n))
			return "max_depth must be 1..10000";
		c->lim.max_depth = (unsigned)n;
	} else if (!strcmp(k, "max_parts")) {
		if (!parse_size(v, 1, 1000000, &n))
			return "max_parts must be 1..1000000";
		c->lim.max_parts = n;
	} else if (!strcmp(k, "max_header_size")) {
		if (!parse_size(v, 1024, 64ull << 20, &n))
			return "max_header_size must be 1K..64M";
		c->lim.max_header = n;
	} else if (!strcmp(k, "max_line_length")) {
		if (!parse_size(v, 78, 1ull << 20, &n))
			return "max_line_length must be 78..1M";
		c->lim.max_line = n;
	} else if (!strcmp(k, "max_boundary_length")) {
		if (!parse_size(v, 1, 1000, &n))
			return "max_boundary_length must be 1..1000";
		c->lim.max_boundary = n;
	} else if (!strcmp(k, "blocked_extensions")) {
		int r = set_blocked(c, v);
		if (r == -1)
			return "out of memory";
		if (r == -2)
			return "blocked_extensions: entries are letters, digits, '-' or '_' (at most 32)";
	} else if (!strcmp(k, "scan_archives")) {
		if (!parse_bool(v, &c->scan_archives))
			return "scan_archives must be yes or no";
	} else if (!strcmp(k, "max_archive_size")) {
		if (!parse_size(v, 0, 1ull << 30, &n))
			return "max_archive_size must be 0..1G";
		c->max_archive_size = n;
	} else if (!strcmp(k, "max_archive_inflate")) {
		if (!parse_size(v, 0, 1ull << 30, &n))
			return "max_archive_inflate must be 0..1G";
		c->max_archive_inflate = n;
	} else if (!strcmp(k, "archive_depth")) {
		if (!parse_size(v, 1, 5, &n))
			return "archive_depth must be 1..5";
		c->archive_depth = (unsigned)n;
	} else if (!strcmp(k, "time_budget")) {
		if (!parse_size(v, 1, 3600, &n))
			return "time_budget must be 1..3600 (seconds)";
		c->time_budget = (unsigned)n;
	} else if (!strcmp(k, "auth_socket")) {
		if (v[0] != '/' || strlen(v) > 107)
			return "auth_socket must be an absolute path of at most 107 bytes";
		char *d = strdup(v);
		if (!d)
			return "out of memory";
		free(c->auth_socket);
		c->auth_socket = d;
	} else if (!strcmp(k, "auth_timeout")) {
		if (!parse_size(v, 1, 60000, &n))
			return "auth_timeout must be 1..60000 (milliseconds)";
		c->auth_timeout_ms = (unsigned)n;
	} else if (!strcmp(k, "dmarc")) {
		if (!parse_bool(v, &c->dmarc))
			return "dmarc must be yes or no";
	} else if (!strcmp(k, "authserv_id")) {
		/* RFC 8601 2.2: a token; it is written into a header field */
		if (strlen(v) > 253)
			return "authserv_id must be at most 253 bytes";
		for (const char *q = v; *q; q++)
			if (!isalnum((unsigned char)*q) && *q != '.' && *q != '-' && *q != '_')
				return "authserv_id: letters, digits, '.', '-' or '_' only";
		return set_str(&c->authserv_id, v);
	} else if (!strcmp(k, "dmarc_public_suffix_list")) {
		if (v[0] != '/')
			return "dmarc_public_suffix_list must be an absolute path";
		return set_str(&c->dmarc_psl, v);
	} else if (!strcmp(k, "dmarc_history")) {
		if (v[0] != '/' || strlen(v) > 200)
			return "dmarc_history must be an absolute path of at most 200 bytes";
		return set_str(&c->dmarc_history, v);
	} else if (!strcmp(k, "dmarc_history_max")) {
		if (!parse_size(v, 4096, 1ull << 32, &n))
			return "dmarc_history_max must be 4K..4G";
		c->dmarc_history_max = n;
	} else if (!strncmp(k, "action_", 7)) {
		for (unsigned r = 0; r < SR_MAX; r++) {
			if (r == SR_LIMIT || r == SR_INTERNAL || strcmp(k + 7, rule_names[r]) != 0)
				continue;
			if (!parse_action(v, &c->action[r]))
				return "action must be reject, tempreject, freeze, tag or accept";
			return NULL;
		}
		return "unknown action key";
	} else {
		return "unknown key";
	}
	return NULL;
}

int scan_conf_load(const char *path, struct scan_conf *c, char *err, size_t errsz)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		if (errno == ENOENT)
			return 1;
		hm_snprintf(err, errsz, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	char *buf = malloc(CONF_MAX_BYTES + 1);
	if (!buf) {
		close(fd);
		hm_snprintf(err, errsz, "%s: out of memory", path);
		return -1;
	}
	ssize_t n = hm_read_full(fd, buf, CONF_MAX_BYTES + 1);
	int saved = errno;
	close(fd);
	if (n < 0 || n > CONF_MAX_BYTES) {
		hm_snprintf(err, errsz, "%s: %s", path, n < 0 ? strerror(saved) : "file too large");
		free(buf);
		return -1;
	}
	buf[n] = 0;
	if (memchr(buf, 0, (size_t)n)) {
		hm_snprintf(err, errsz, "%s: NUL byte in file", path);
		free(buf);
		return -1;
	}
	int lineno = 0, rc = 0;
	char *save = NULL;
	for (char *line = buf; line && rc == 0; line = save) {
		char *nl = strchr(line, '\n');
		save = nl ? nl + 1 : NULL;
		if (nl)
			*nl = 0;
		lineno++;
		char *hash = strchr(line, '#');
		if (hash)
			*hash = 0;
		char *t = hm_trim(line);
		if (!*t)
			continue;
		char *eq = strchr(t, '=');
		if (!eq) {
			hm_snprintf(err, errsz, "%s:%d: expected `key = value`", path, lineno);
			rc = -1;
			break;
		}
		*eq = 0;
		char *k = hm_trim(t), *v = hm_trim(eq + 1);
		for (char *q = k; *q; q++)
			*q = (char)tolower((unsigned char)*q);
		const char *e = *v ? apply(c, k, v) : "empty value";
		if (e) {
			char kc[64];
			hm_log_clean(kc, sizeof kc, k, strlen(k));
			hm_snprintf(err, errsz, "%s:%d: %s: %s", path, lineno, kc, e);
			rc = -1;
		}
	}
	free(buf);
	return rc;
}
