/* hm_users.c — parse, look up and atomically rewrite /etc/homemail/users.
 *
 * What for: the virtual account list shared by libauthdb_homemail.so and
 * homemail-user (format in hm_users.h).
 * Relies on: libc (flock, rename, fsync); hm_buf for bounded output.
 * How it fails: bad lines are reported through the warn callback and
 * skipped, never fatal; I/O errors return -1 with errno set; a rewrite that
 * fails leaves the old file untouched (the temporary file is removed).
 * Bounds: HM_USERS_MAX_FILE bytes per file, HM_USERS_MAX_LINE per line.
 */
#include "hm_users.h"
#include "hm_buf.h"
#include "hm_strmap.h"
#include "hm_util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

struct hm_users_line {
	char *text;             /* verbatim (may hold NULs if malformed) */
	size_t len;
	struct hm_user *user;   /* NULL for comments and malformed lines */
};

struct hm_users {
	struct hm_users_line *lines;
	size_t nlines, cap;
	struct hm_user **users; /* valid accounts in file order */
	size_t nusers;
	unsigned int malformed;
	/* address -> account: O(1) lookups, so a RCPT check costs the same
	 * with 10 or 10,000 accounts */
	struct hm_strmap idx;
};

/* user_free - release one parsed account */
static void user_free(struct hm_user *u)
{
	if (u == NULL)
		return;
	free(u->address);
	if (u->hash != NULL) {
		explicit_bzero(u->hash, strlen(u->hash));
		free(u->hash);
	}
	free(u->home);
	free(u->quota);
	free(u->extra);
	free(u);
}

void hm_users_free(struct hm_users **dbp)
{
	struct hm_users *db = *dbp;

	if (db == NULL)
		return;
	for (size_t i = 0; i < db->nlines; i++) {
		user_free(db->lines[i].user);
		free(db->lines[i].text);
	}
	free(db->lines);
	free(db->users);
	hm_strmap_free(&db->idx);
	free(db);
	*dbp = NULL;
}

struct hm_users *hm_users_empty(void)
{
	return calloc(1, sizeof(struct hm_users));
}

/* rebuild_index - recompute the array of valid accounts after an edit */
static int rebuild_index(struct hm_users *db)
{
	size_t n = 0, sz;
	struct hm_user **u;

	for (size_t i = 0; i < db->nlines; i++)
		if (db->lines[i].user != NULL)
			n++;
	if (!hm_mul_ok(n + 1, sizeof(struct hm_user *), &sz))
		return errno = ENOMEM, -1;
	u = malloc(sz);
	if (u == NULL)
		return -1;
	n = 0;
	for (size_t i = 0; i < db->nlines; i++)
		if (db->lines[i].user != NULL)
			u[n++] = db->lines[i].user;
	free(db->users);
	db->users = u;
	db->nusers = n;
	/* the address index (keys point into the accounts) */
	hm_strmap_free(&db->idx);
	for (size_t i = 0; i < n; i++)
		if (hm_strmap_put_str(&db->idx, u[i]->address, u[i], NULL) < 0)
			return -1;
	return 0;
}

/* push_line - append a line (takes ownership of text and user) */
static int push_line(struct hm_users *db, char *text, size_t len, struct hm_user *user)
{
	if (db->nlines == db->cap) {
		size_t ncap = db->cap ? db->cap * 2 : 64, sz;
		struct hm_users_line *nl;
		if (!hm_mul_ok(ncap, sizeof(*nl), &sz))
			return errno = ENOMEM, -1;
		nl = realloc(db->lines, sz);
		if (nl == NULL)
			return -1;
		db->lines = nl;
		db->cap = ncap;
	}
	db->lines[db->nlines].text = text;
	db->lines[db->nlines].len = len;
	db->lines[db->nlines].user = user;
	db->nlines++;
	return 0;
}

int hm_users_normalize_address(const char *in, char *dst, size_t dstsize)
{
	/* Conservative RFC 5321 dot-atom local part: no quoting, no '/', '|'
	 * or '`' (they end up in logs and shell-adjacent tools), no ':' (the
	 * field separator).  Domain: LDH labels, at most 63 bytes each. */
	static const char local_extra[] = "!#$%&'*+=?^_{}~.-";
	size_t n = strlen(in), at = SIZE_MAX, label = 0;

	if (n == 0 || n > HM_USERS_MAX_ADDRESS)
		return errno = EINVAL, -1;
	if (n >= dstsize)
		return errno = ENAMETOOLONG, -1;
	for (size_t i = 0; i < n; i++)
		if (in[i] == '@')
			at = i;
	if (at == SIZE_MAX || at == 0 || at > 64 || at + 1 == n)
		return errno = EINVAL, -1;
	for (size_t i = 0; i < at; i++) {
		unsigned char c = (unsigned char)in[i];
		if (!(isascii(c) && isalnum(c)) && strchr(local_extra, c) == NULL)
			return errno = EINVAL, -1;
		if (c == '.' && (i == 0 || i + 1 == at || in[i - 1] == '.'))
			return errno = EINVAL, -1;
	}
	for (size_t i = at + 1; i <= n; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c == '.' || c == '\0') {
			if (label == 0 || label > 63 || in[i - 1] == '-')
				return errno = EINVAL, -1;
			label = 0;
			continue;
		}
		if (!(isascii(c) && (isalnum(c) || c == '-')))
			return errno = EINVAL, -1;
		if (c == '-' && label == 0)
			return errno = EINVAL, -1;
		label++;
	}
	for (size_t i = 0; i <= n; i++)
		dst[i] = (char)tolower((unsigned char)in[i]);
	return 0;
}

bool hm_users_valid_home(const char *home)
{
	size_t n = strlen(home);

	if (n < 2 || n > HM_USERS_MAX_HOME || home[0] != '/')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)home[i];
		if (c < 0x20 || c == 0x7f || c == ':')
			return false;
	}
	/* reject empty, "." and ".." components and a trailing slash, and
	 * more than HM_USERS_MAX_HOME_DEPTH components */
	unsigned int depth = 0;
	for (const char *p = home; *p != '\0';) {
		if (++depth > HM_USERS_MAX_HOME_DEPTH)
			return false;
		const char *s = p + 1, *e = strchr(s, '/');
		size_t cl = e ? (size_t)(e - s) : strlen(s);
		if (cl == 0 || (cl == 1 && s[0] == '.') ||
		    (cl == 2 && s[0] == '.' && s[1] == '.'))
			return false;
		if (e == NULL)
			break;
		p = e;
	}
	return true;
}

int hm_users_parse_quota(const char *s, uint64_t *bytes_r)
{
	uint64_t v = 0, mul = 1;
	const char *p = s;

	if (*s == '\0' || strcmp(s, "-") == 0) {
		*bytes_r = 0;
		return 0;
	}
	if (!isdigit((unsigned char)*p))
		return errno = EINVAL, -1;
	for (; isdigit((unsigned char)*p); p++) {
		if (v > (UINT64_MAX - 9) / 10)
			return errno = ERANGE, -1;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	switch (*p) {
	case '\0': break;
	case 'k': case 'K': mul = 1ULL << 10; p++; break;
	case 'm': case 'M': mul = 1ULL << 20; p++; break;
	case 'g': case 'G': mul = 1ULL << 30; p++; break;
	case 't': case 'T': mul = 1ULL << 40; p++; break;
	default: return errno = EINVAL, -1;
	}
	if (*p == 'B' || *p == 'b')
		p++;
	if (*p != '\0')
		return errno = EINVAL, -1;
	if (v != 0 && mul > (1ULL << 62) / v)
		return errno = ERANGE, -1;
	*bytes_r = v * mul;
	return 0;
}

const char *hm_user_state_name(enum hm_user_state st)
{
	switch (st) {
	case HM_USER_ACTIVE: return "active";
	case HM_USER_DISABLED: return "disabled";
	case HM_USER_LOCKED: return "locked";
	case HM_USER_CLOSED: return "closed";
	}
	return "?";
}

int hm_user_state_parse(const char *s, enum hm_user_state *st_r)
{
	if (*s == '\0' || strcmp(s, "active") == 0)
		*st_r = HM_USER_ACTIVE;
	else if (strcmp(s, "disabled") == 0)
		*st_r = HM_USER_DISABLED;
	else if (strcmp(s, "locked") == 0)
		*st_r = HM_USER_LOCKED;
	else if (strcmp(s, "closed") == 0)
		*st_r = HM_USER_CLOSED;
	else
		return errno = EINVAL, -1;
	return 0;
}

/* parse_id - decimal uid/gid in 1..INT32_MAX */
static int parse_id(const char *s, unsigned long *v_r)
{
	unsigned long v = 0;

	if (*s == '\0' || strlen(s) > 10)
		return -1;
	for (const char *p = s; *p != '\0'; p++) {
		if (!isdigit((unsigned char)*p))
			return -1;
		v = v * 10 + (unsigned long)(*p - '0');
	}
	if (v == 0 || v > INT32_MAX)
		return -1;
	*v_r = v;
	return 0;
}

/* parse_entry - parse one NUL-free account line into a new hm_user.
 * Returns the account, or NULL with *why_r naming the problem. */
static struct hm_user *parse_entry(char *line, const char **why_r)
{
	char *f[7], *extra = NULL, *p = line;
	char addr[HM_USERS_MAX_ADDRESS + 1];
	struct hm_user *u;
	unsigned long id;
	struct hm_pw_info info;
	char scheme[64];
	const char *rest;

	for (int i = 0; i < 7; i++) {
		f[i] = p;
		p = strchr(p, ':');
		if (p == NULL) {
			if (i < 6) {
				*why_r = "too few fields (need address:hash:uid:gid:home:quota:state)";
				return NULL;
			}
			break;
		}
		*p++ = '\0';
		if (i == 6)
			extra = p;
	}
	if (hm_users_normalize_address(f[0], addr, sizeof(addr)) < 0) {
		*why_r = "invalid address";
		return NULL;
	}
	rest = hm_pw_split(f[1], scheme, sizeof(scheme));
	if (rest == NULL || hm_pw_identify(scheme, rest, &info) < 0) {
		*why_r = "invalid or unrecognised password hash";
		return NULL;
	}
	u = calloc(1, sizeof(*u));
	if (u == NULL) {
		*why_r = "out of memory";
		return NULL;
	}
	if (parse_id(f[2], &id) < 0) {
		*why_r = "invalid uid (decimal, not 0)";
		goto bad;
	}
	u->uid = (uid_t)id;
	if (parse_id(f[3], &id) < 0) {
		*why_r = "invalid gid (decimal, not 0)";
		goto bad;
	}
	u->gid = (gid_t)id;
	if (!hm_users_valid_home(f[4])) {
		*why_r = "invalid home (absolute path without . or .. components)";
		goto bad;
	}
	if (hm_users_parse_quota(f[5], &u->quota_bytes) < 0) {
		*why_r = "invalid quota (bytes with optional k/M/G/T)";
		goto bad;
	}
	if (hm_user_state_parse(f[6], &u->state) < 0) {
		*why_r = "invalid state (active, disabled or locked)";
		goto bad;
	}
	u->address = strdup(addr);
	u->hash = strdup(f[1]);
	u->home = strdup(f[4]);
	u->quota = strdup(strcmp(f[5], "-") == 0 ? "" : f[5]);
	u->extra = strdup(extra != NULL ? extra : "");
	if (!u->address || !u->hash || !u->home || !u->quota || !u->extra) {
		*why_r = "out of memory";
		goto bad;
	}
	return u;
bad:
	user_free(u);
	return NULL;
}

/* find_line - index of the line holding address, or SIZE_MAX */
static size_t find_line(const struct hm_users *db, const char *address)
{
	for (size_t i = 0; i < db->nlines; i++)
		if (db->lines[i].user != NULL &&
		    strcasecmp(db->lines[i].user->address, address) == 0)
			return i;
	return SIZE_MAX;
}

/* Claims made by the accounts parsed so far: addresses, homes and every
 * proper prefix of a home (a home that contains another account's home
 * would hand that account's mail to a second owner).  Keys point into the
 * accepted accounts.  Each check costs O(length of the home + components):
 * one pass computes the hash of every prefix. */
struct claims {
	struct hm_strmap addrs, homes, prefixes;
};

/* claims_free - drop the parse-time maps (not the accounts) */
static void claims_free(struct claims *c)
{
	hm_strmap_free(&c->addrs);
	hm_strmap_free(&c->homes);
	hm_strmap_free(&c->prefixes);
}

/* claim - check u against the earlier accounts and record its claims.
 * Returns 0 accepted, 1 refused (*why_r set), -1 ENOMEM. */
static int claim(struct claims *c, struct hm_user *u, const char **why_r)
{
	const char *h = u->home;
	size_t n = strlen(h);
	uint64_t hash = HM_STRMAP_SEED, full = hm_strmap_hash(HM_STRMAP_SEED, h, n);
	uint64_t pre[HM_USERS_MAX_HOME_DEPTH];
	size_t plen[HM_USERS_MAX_HOME_DEPTH], np = 0;

	if (hm_strmap_get_str(&c->addrs, u->address) != NULL) {
		*why_r = "duplicate address (first one wins)";
		return 1;
	}
	if (hm_strmap_get(&c->homes, h, n, full) != NULL) {
		*why_r = "home already belongs to another account (first one wins)";
		return 1;
	}
	if (hm_strmap_get(&c->prefixes, h, n, full) != NULL) {
		*why_r = "home contains another account's home (first one wins)";
		return 1;
	}
	/* every proper prefix ending before a '/': one pass, hashes carried
	 * on (the home is valid: absolute, no empty component, at most
	 * HM_USERS_MAX_HOME_DEPTH components) */
	for (size_t i = 0; i < n; i++) {
		if (h[i] == '/' && i > 0) {
			if (np == HM_USERS_MAX_HOME_DEPTH) {
				*why_r = "home has too many components";
				return 1;
			}
			pre[np] = hash;
			plen[np++] = i;
			if (hm_strmap_get(&c->homes, h, i, hash) != NULL) {
				*why_r = "home lies inside another account's home (first one wins)";
				return 1;
			}
		}
		hash = hm_strmap_hash(hash, h + i, 1);
	}
	if (hm_strmap_put_str(&c->addrs, u->address, u, NULL) < 0 ||
	    hm_strmap_put(&c->homes, h, n, full, u, NULL) < 0)
		return -1;
	for (size_t k = 0; k < np; k++)
		if (hm_strmap_put(&c->prefixes, h, plen[k], pre[k], u, NULL) < 0)
			return -1;
	return 0;
}

/* warnf - format and deliver one warning */
static void warnf(hm_users_warn_fn *warn, void *ctx, const char *path,
		  unsigned int line, const char *msg, const char *detail)
{
	char buf[512], clean[300];

	if (warn == NULL)
		return;
	if (detail != NULL) {
		hm_log_clean(clean, sizeof(clean), detail, strlen(detail));
		(void)hm_snprintf(buf, sizeof(buf), "%s: %s", msg, clean);
		warn(ctx, path, line, buf);
	} else {
		warn(ctx, path, line, msg);
	}
}

int hm_users_parse(const char *data, size_t len, const char *path,
		   hm_users_warn_fn *warn, void *ctx, struct hm_users **db_r)
{
	struct hm_users *db = hm_users_empty();
	struct claims cl;
	size_t pos = 0;
	unsigned int lineno = 0;

	if (db == NULL)
		return -1;
	hm_strmap_init(&cl.addrs);
	hm_strmap_init(&cl.homes);
	hm_strmap_init(&cl.prefixes);
	if (path == NULL)
		path = "(users)";
	while (pos < len) {
		const char *nl = memchr(data + pos, '\n', len - pos);
		size_t ll = nl ? (size_t)(nl - (data + pos)) : len - pos;
		const char *why = NULL;
		struct hm_user *u = NULL;
		char *text;

		lineno++;
		text = malloc(ll + 1);
		if (text == NULL)
			goto fail;
		memcpy(text, data + pos, ll);
		text[ll] = '\0';
		pos += ll + (nl ? 1 : 0);

		if (ll > HM_USERS_MAX_LINE) {
			why = "line too long";
		} else if (memchr(text, '\0', ll) != NULL) {
			why = "NUL byte in line";
		} else {
			char *work = strdup(text), *t;
			if (work == NULL) {
				free(text);
				goto fail;
			}
			/* a CR before LF is tolerated (file edited elsewhere) */
			if (ll > 0 && work[ll - 1] == '\r')
				work[ll - 1] = '\0';
			t = work;
			while (*t == ' ' || *t == '\t')
				t++;
			if (*t != '\0' && *t != '#') {
				u = parse_entry(work, &why);
				int cr = u != NULL ? claim(&cl, u, &why) : 0;
				if (cr != 0) {
					user_free(u);
					u = NULL;
				}
				if (cr < 0) {
					explicit_bzero(work, ll);
					free(work);
					free(text);
					goto fail;
				}
			}
			explicit_bzero(work, ll);
			free(work);
		}
		if (why != NULL) {
			db->malformed++;
			warnf(warn, ctx, path, lineno, why, NULL);
		}
		if (u != NULL)
			u->line = lineno;
		if (push_line(db, text, ll, u) < 0) {
			user_free(u);
			free(text);
			goto fail;
		}
	}
	if (rebuild_index(db) < 0)
		goto fail;
	claims_free(&cl);
	*db_r = db;
	return 0;
fail:
	claims_free(&cl);
	hm_users_free(&db);
	return -1;
}

int hm_users_load(const char *path, hm_users_warn_fn *warn, void *ctx,
		  struct hm_users **db_r)
{
	struct stat st;
	int fd = hm_open_regular(path, O_RDONLY, 0, &st);
	char *data;
	ssize_t n;
	int ret, saved;

	if (fd < 0)
		return -1;
	if ((uint64_t)st.st_size > HM_USERS_MAX_FILE) {
		errno = EFBIG;
		goto fail_fd;
	}
	/* +1: detect growth past the size we sized the buffer for */
	data = malloc((size_t)st.st_size + 1);
	if (data == NULL)
		goto fail_fd;
	n = hm_read_full(fd, data, (size_t)st.st_size + 1);
	saved = errno;
	close(fd);
	if (n < 0) {
		free(data);
		errno = saved;
		return -1;
	}
	if ((size_t)n > (size_t)st.st_size) {
		/* the file was rewritten in place under us: not our atomic
		 * writer; treat as transient */
		free(data);
		errno = EAGAIN;
		return -1;
	}
	ret = hm_users_parse(data, (size_t)n, path, warn, ctx, db_r);
	saved = errno;
	explicit_bzero(data, (size_t)n);
	free(data);
	errno = saved;
	return ret;
fail_fd:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

const struct hm_user *hm_users_find(const struct hm_users *db, const char *address)
{
	char low[HM_USERS_MAX_ADDRESS + 1];
	size_t n = strlen(address);

	if (n > HM_USERS_MAX_ADDRESS)
		return NULL;
	for (size_t i = 0; i <= n; i++)
		low[i] = (char)tolower((unsigned char)address[i]);
	return hm_strmap_get_str(&db->idx, low);
}

size_t hm_users_count(const struct hm_users *db)
{
	return db->nusers;
}

const struct hm_user *hm_users_at(const struct hm_users *db, size_t i)
{
	return i < db->nusers ? db->users[i] : NULL;
}

unsigned int hm_users_malformed(const struct hm_users *db)
{
	return db->malformed;
}

/* format_line - the file line for u (malloc'd) */
static char *format_line(const struct hm_user *u, size_t *len_r)
{
	struct hm_buf b;

	hm_buf_init(&b, HM_USERS_MAX_LINE);
	if (hm_buf_printf(&b, "%s:%s:%lu:%lu:%s:%s:%s", u->address, u->hash,
			  (unsigned long)u->uid, (unsigned long)u->gid, u->home,
			  u->quota != NULL ? u->quota : "",
			  u->state == HM_USER_ACTIVE ? "" : hm_user_state_name(u->state)) < 0 ||
	    (u->extra != NULL && u->extra[0] != '\0' &&
	     hm_buf_printf(&b, ":%s", u->extra) < 0)) {
		hm_buf_free(&b);
		return NULL;
	}
	return hm_buf_steal(&b, len_r);
}

/* validate_user - the same checks the parser applies, for edits */
static int validate_user(const struct hm_user *u)
{
	char addr[HM_USERS_MAX_ADDRESS + 1], scheme[64];
	struct hm_pw_info info;
	const char *rest;
	uint64_t q;

	if (u->address == NULL || u->hash == NULL || u->home == NULL ||
	    hm_users_normalize_address(u->address, addr, sizeof(addr)) < 0 ||
	    strcmp(addr, u->address) != 0 ||
	    strpbrk(u->hash, ":\n\r") != NULL ||
	    (rest = hm_pw_split(u->hash, scheme, sizeof(scheme))) == NULL ||
	    hm_pw_identify(scheme, rest, &info) < 0 ||
	    u->uid == 0 || u->gid == 0 || u->uid > INT32_MAX || u->gid > INT32_MAX ||
	    !hm_users_valid_home(u->home) ||
	    (u->quota != NULL && (strpbrk(u->quota, ":\n") != NULL ||
				  hm_users_parse_quota(u->quota, &q) < 0)) ||
	    (u->extra != NULL && strchr(u->extra, '\n') != NULL))
		return errno = EINVAL, -1;
	return 0;
}

/* dup_user - deep copy */
static struct hm_user *dup_user(const struct hm_user *s)
{
	struct hm_user *u = calloc(1, sizeof(*u));

	if (u == NULL)
		return NULL;
	*u = *s;
	u->address = strdup(s->address);
	u->hash = strdup(s->hash);
	u->home = strdup(s->home);
	u->quota = strdup(s->quota ? s->quota : "");
	u->extra = strdup(s->extra ? s->extra : "");
	if (!u->address || !u->hash || !u->home || !u->quota || !u->extra) {
		user_free(u);
		errno = ENOMEM;
		return NULL;
	}
	(void)hm_users_parse_quota(u->quota, &u->quota_bytes);
	return u;
}

/* replace_line - put a fresh copy of u (formatted) at line index i */
static int replace_line(struct hm_users *db, size_t i, struct hm_user *u)
{
	size_t len;
	char *text = format_line(u, &len);

	if (text == NULL)
		return -1;
	u->line = db->lines[i].user != NULL ? db->lines[i].user->line : 0;
	user_free(db->lines[i].user);
	free(db->lines[i].text);
	db->lines[i].text = text;
	db->lines[i].len = len;
	db->lines[i].user = u;
	return rebuild_index(db);
}

/* nested - a equals b, or one lies inside the other */
static bool nested(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), m = la < lb ? la : lb;

	if (strncmp(a, b, m) != 0)
		return false;
	return la == lb || (la < lb ? b[la] == '/' : a[lb] == '/');
}

const struct hm_user *hm_users_home_conflict(const struct hm_users *db, const char *home,
					     const char *except)
{
	for (size_t i = 0; i < db->nusers; i++) {
		const struct hm_user *u = db->users[i];
		if (except != NULL && strcmp(u->address, except) == 0)
			continue;
		if (nested(u->home, home))
			return u;
	}
	return NULL;
}

int hm_users_add(struct hm_users *db, const struct hm_user *src)
{
	struct hm_user *u;
	size_t len;
	char *text;

	if (validate_user(src) < 0)
		return -1;
	if (find_line(db, src->address) != SIZE_MAX)
		return errno = EEXIST, -1;
	if (hm_users_home_conflict(db, src->home, NULL) != NULL)
		return errno = EINVAL, -1;
	u = dup_user(src);
	if (u == NULL)
		return -1;
	text = format_line(u, &len);
	if (text == NULL || push_line(db, text, len, u) < 0) {
		free(text);
		user_free(u);
		return -1;
	}
	return rebuild_index(db);
}

int hm_users_remove(struct hm_users *db, const char *address)
{
	size_t i = find_line(db, address);

	if (i == SIZE_MAX)
		return errno = ENOENT, -1;
	user_free(db->lines[i].user);
	free(db->lines[i].text);
	memmove(&db->lines[i], &db->lines[i + 1],
		(db->nlines - i - 1) * sizeof(db->lines[0]));
	db->nlines--;
	return rebuild_index(db);
}

int hm_users_set_hash(struct hm_users *db, const char *address, const char *hash)
{
	size_t i = find_line(db, address);
	struct hm_user tmp, *u;

	if (i == SIZE_MAX)
		return errno = ENOENT, -1;
	tmp = *db->lines[i].user;
	tmp.hash = (char *)hash;
	if (validate_user(&tmp) < 0)
		return -1;
	u = dup_user(&tmp);
	if (u == NULL)
		return -1;
	if (replace_line(db, i, u) < 0) {
		user_free(u);
		return -1;
	}
	return 0;
}

int hm_users_set_state(struct hm_users *db, const char *address, enum hm_user_state st)
{
	size_t i = find_line(db, address);
	struct hm_user *u;

	if (i == SIZE_MAX)
		return errno = ENOENT, -1;
	u = dup_user(db->lines[i].user);
	if (u == NULL)
		return -1;
	u->state = st;
	if (replace_line(db, i, u) < 0) {
		user_free(u);
		return -1;
	}
	return 0;
}

/* hm_users_set_extra - replace the fields after the 7th (used by
 * lib/hm_users_expire.c for the password flags of field 8) */
int hm_users_set_extra(struct hm_users *db, const char *address, const char *extra)
{
	size_t i = find_line(db, address);
	struct hm_user tmp, *u;

	if (i == SIZE_MAX)
		return errno = ENOENT, -1;
	tmp = *db->lines[i].user;
	tmp.extra = (char *)extra;
	if (validate_user(&tmp) < 0)
		return -1;
	u = dup_user(&tmp);
	if (u == NULL)
		return -1;
	if (replace_line(db, i, u) < 0) {
		user_free(u);
		return -1;
	}
	return 0;
}

int hm_users_set_quota(struct hm_users *db, const char *address, const char *quota)
{
	size_t i = find_line(db, address);
	struct hm_user tmp, *u;

	if (i == SIZE_MAX)
		return errno = ENOENT, -1;
	tmp = *db->lines[i].user;
	tmp.quota = (char *)quota;
	if (validate_user(&tmp) < 0)
		return -1;
	u = dup_user(&tmp);
	if (u == NULL)
		return -1;
	if (replace_line(db, i, u) < 0) {
		user_free(u);
		return -1;
	}
	return 0;
}

int hm_users_rename(struct hm_users *db, const char *address, const char *new_address,
		    const char *new_home)
{
	size_t i = find_line(db, address);
	struct hm_user tmp, *u;

	if (i == SIZE_MAX)
		return errno = ENOENT, -1;
	if (strcasecmp(address, new_address) != 0 && find_line(db, new_address) != SIZE_MAX)
		return errno = EEXIST, -1;
	tmp = *db->lines[i].user;
	tmp.address = (char *)new_address;
	tmp.home = (char *)new_home;
	if (validate_user(&tmp) < 0 ||
	    hm_users_home_conflict(db, new_home, db->lines[i].user->address) != NULL)
		return errno = EINVAL, -1;
	u = dup_user(&tmp);
	if (u == NULL)
		return -1;
	if (replace_line(db, i, u) < 0) {
		user_free(u);
		return -1;
	}
	return 0;
}

char *hm_users_serialize(const struct hm_users *db, size_t *len_r)
{
	struct hm_buf b;

	hm_buf_init(&b, HM_USERS_MAX_FILE + 1);
	for (size_t i = 0; i < db->nlines; i++) {
		if (hm_buf_append(&b, db->lines[i].text, db->lines[i].len) < 0 ||
		    hm_buf_putc(&b, '\n') < 0) {
			hm_buf_free(&b);
			return NULL;
		}
	}
	if (b.data == NULL && hm_buf_puts(&b, "") < 0)
		return NULL;
	return hm_buf_steal(&b, len_r);
}

/* dir_of - directory part of path into dir[size] */
static int dir_of(const char *path, char *dir, size_t size)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		return hm_strlcpy(dir, ".", size);
	if (slash == path)
		return hm_strlcpy(dir, "/", size);
	if ((size_t)(slash - path) >= size)
		return errno = ENAMETOOLONG, -1;
	memcpy(dir, path, (size_t)(slash - path));
	dir[slash - path] = '\0';
	return 0;
}

int hm_users_write(const char *path, const struct hm_users *db)
{
	char tmp[PATH_MAX], dir[PATH_MAX];
	struct stat st;
	mode_t mode = 0600;
	uid_t uid = (uid_t)-1;
	gid_t gid = (gid_t)-1;
	size_t len;
	char *data;
	int fd, dfd, saved;

	if (hm_snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) < 0 ||
	    dir_of(path, dir, sizeof(dir)) < 0)
		return -1;
	if (lstat(path, &st) == 0) {
		if (!S_ISREG(st.st_mode))
			return errno = EINVAL, -1;
		mode = st.st_mode & 0777;
		uid = st.st_uid;
		gid = st.st_gid;
	} else if (errno != ENOENT) {
		return -1;
	}
	data = hm_users_serialize(db, &len);
	if (data == NULL)
		return -1;
	(void)unlink(tmp);      /* a leftover of a crashed writer with our pid */
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		goto fail_data;
	if ((uid != (uid_t)-1 && fchown(fd, uid, gid) < 0 && errno != EPERM) ||
	    fchmod(fd, mode) < 0 ||
	    hm_write_full(fd, data, len) < 0 || fsync(fd) < 0) {
		saved = errno;
		close(fd);
		unlink(tmp);
		errno = saved;
		goto fail_data;
	}
	if (close(fd) < 0 || rename(tmp, path) < 0) {
		saved = errno;
		unlink(tmp);
		errno = saved;
		goto fail_data;
	}
	explicit_bzero(data, len);
	free(data);
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		(void)fsync(dfd);
		close(dfd);
	}
	return 0;
fail_data:
	saved = errno;
	explicit_bzero(data, len);
	free(data);
	errno = saved;
	return -1;
}

int hm_users_modify(const char *path, hm_users_edit_fn *fn, void *ctx,
		    hm_users_warn_fn *warn, void *wctx)
{
	char lockpath[PATH_MAX];
	struct hm_users *db = NULL;
	int lfd, ret, saved;

	if (hm_snprintf(lockpath, sizeof(lockpath), "%s.lock", path) < 0)
		return -1;
	lfd = open(lockpath, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (lfd < 0)
		return -1;
	while (flock(lfd, LOCK_EX) < 0) {
		if (errno != EINTR)
			goto fail;
	}
	if (hm_users_load(path, warn, wctx, &db) < 0) {
		if (errno != ENOENT)
			goto fail;
		db = hm_users_empty();
		if (db == NULL)
			goto fail;
	}
	ret = fn(db, ctx);
	if (ret == 1 && hm_users_write(path, db) < 0)
		ret = -1;
	saved = errno;
	hm_users_free(&db);
	close(lfd);             /* releases the flock */
	errno = saved;
	return ret;
fail:
	saved = errno;
	hm_users_free(&db);
	close(lfd);
	errno = saved;
	return -1;
}
