/* hm_users.c — parse, look up and atomically rewrite /etc/homemail/users.
 *
 * What for: the virtual account list shared by libauthdb_homemail.so and
 * homemail-user (format in hm_users.h).
 * Relies on: hm_lines (the line table, read, rewrite and lock: this file
 * holds the grammar of a line and the account edits); hm_buf for bounded
 * output.
 * How it fails: bad lines are reported through the warn callback and
 * skipped, never fatal; I/O errors return -1 with errno set; a rewrite that
 * fails leaves the old file untouched (the temporary file is removed).
 * Bounds: HM_USERS_MAX_FILE bytes per file, HM_USERS_MAX_LINE per line.
 */
#include "hm_users.h"
#include "hm_buf.h"
#include "hm_lines.h"
#include "hm_strmap.h"
#include "hm_table.h"
#include "hm_util.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

/* users_key / users_free_entry - the hm_lines_ops */
static const char *users_key(const void *e)
{
	return ((const struct hm_user *)e)->address;
}

static void users_free_entry(void *e)
{
	user_free(e);
}

/* claims_new / claims_end - the parse state: the claims of one file */
static void *claims_new(void)
{
	struct claims *c = malloc(sizeof(*c));

	if (c != NULL) {
		hm_strmap_init(&c->addrs);
		hm_strmap_init(&c->homes);
		hm_strmap_init(&c->prefixes);
	}
	return c;
}

static void claims_end(void *pstate)
{
	claims_free(pstate);
	free(pstate);
}

/* users_parse - one line: blank or '#' after blanks is a comment; else an
 * account, refused when it claims what an earlier one holds */
static int users_parse(void *pstate, char *line, size_t len, void **entry_r,
			 const char **why_r)
{
	const char *t = line;
	struct hm_user *u;
	int cr;

	(void)len;
	while (*t == ' ' || *t == '\t')
		t++;
	if (*t == '\0' || *t == '#')
		return 0;
	u = parse_entry(line, why_r);
	cr = u != NULL ? claim(pstate, u, why_r) : 0;
	if (cr != 0) {
		user_free(u);
		return cr < 0 ? -1 : 0;
	}
	*entry_r = u;
	return 0;
}

static const struct hm_lines_ops users_ops = {
	.unnamed = "(users)",
	.max_line = HM_USERS_MAX_LINE,
	.max_file = HM_USERS_MAX_FILE,
	.max_key = HM_USERS_MAX_ADDRESS,
	.line_at = offsetof(struct hm_user, line),
	.new_mode = 0600,
	.parse_begin = claims_new,
	.parse_end = claims_end,
	.parse = users_parse,
	.key = users_key,
	.entry_free = users_free_entry,
};

/* hm_users_empty, _free, _parse, _load, _find, _count, _at, _malformed,
 * _serialize and _modify (described in hm_users.h) */
HM_LINES_TABLE(hm_users, hm_user, users_ops);

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

/* copy_of - address's account (a shallow copy into *tmp_r, to edit) and
 * its line; -1 ENOENT */
static int copy_of(const struct hm_users *db, const char *address, struct hm_user *tmp_r,
		   size_t *i_r)
{
	const struct hm_user *u = hm_users_find(db, address);

	*i_r = hm_lines_index(&db->t, u);
	if (*i_r == SIZE_MAX)
		return errno = ENOENT, -1;
	*tmp_r = *u;
	return 0;
}

/* put_copy - a fresh copy of tmp (checked as the parser would when check),
 * formatted, at line i (it keeps tmp's line number) */
static int put_copy(struct hm_users *db, size_t i, const struct hm_user *tmp, bool check)
{
	struct hm_user *u;
	size_t len = 0;
	char *text;

	if (check && validate_user(tmp) < 0)
		return -1;
	u = dup_user(tmp);
	if (u == NULL)
		return -1;
	text = format_line(u, &len);
	return hm_lines_set(&db->t, i, text, len, u);
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
	for (size_t i = 0; i < hm_users_count(db); i++) {
		const struct hm_user *u = hm_users_at(db, i);
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
	size_t len = 0;
	char *text;

	if (validate_user(src) < 0)
		return -1;
	if (hm_users_find(db, src->address) != NULL)
		return errno = EEXIST, -1;
	if (hm_users_home_conflict(db, src->home, NULL) != NULL)
		return errno = EINVAL, -1;
	u = dup_user(src);
	if (u == NULL)
		return -1;
	text = format_line(u, &len);
	return hm_lines_append(&db->t, text, len, u);
}

int hm_users_remove(struct hm_users *db, const char *address)
{
	return hm_lines_remove(&db->t, address);
}

enum user_field { FIELD_HASH, FIELD_QUOTA, FIELD_EXTRA };

/* set_field - replace one text field of address's account; EINVAL, ENOENT */
static int set_field(struct hm_users *db, const char *address, enum user_field f,
		     const char *value)
{
	struct hm_user tmp;
	size_t i;

	if (copy_of(db, address, &tmp, &i) < 0)
		return -1;
	switch (f) {
	case FIELD_HASH: tmp.hash = (char *)value; break;
	case FIELD_QUOTA: tmp.quota = (char *)value; break;
	case FIELD_EXTRA: tmp.extra = (char *)value; break;
	}
	return put_copy(db, i, &tmp, true);
}

int hm_users_set_hash(struct hm_users *db, const char *address, const char *hash)
{
	return set_field(db, address, FIELD_HASH, hash);
}

/* hm_users_set_extra - replace the fields after the 7th (used by
 * lib/hm_users_expire.c for the password flags of field 8) */
int hm_users_set_extra(struct hm_users *db, const char *address, const char *extra)
{
	return set_field(db, address, FIELD_EXTRA, extra);
}

int hm_users_set_quota(struct hm_users *db, const char *address, const char *quota)
{
	return set_field(db, address, FIELD_QUOTA, quota);
}

int hm_users_set_state(struct hm_users *db, const char *address, enum hm_user_state st)
{
	struct hm_user tmp;
	size_t i;

	if (copy_of(db, address, &tmp, &i) < 0)
		return -1;
	tmp.state = st;
	return put_copy(db, i, &tmp, false);    /* as parsed: nothing to check */
}

int hm_users_rename(struct hm_users *db, const char *address, const char *new_address,
		    const char *new_home)
{
	struct hm_user tmp;
	const char *old_address;
	size_t i;

	if (copy_of(db, address, &tmp, &i) < 0)
		return -1;
	if (strcasecmp(address, new_address) != 0 && hm_users_find(db, new_address) != NULL)
		return errno = EEXIST, -1;
	old_address = tmp.address;
	tmp.address = (char *)new_address;
	tmp.home = (char *)new_home;
	if (validate_user(&tmp) < 0 ||
	    hm_users_home_conflict(db, new_home, old_address) != NULL)
		return errno = EINVAL, -1;
	return put_copy(db, i, &tmp, false);    /* checked above */
}

int hm_users_write(const char *path, const struct hm_users *db)
{
	size_t len = 0;
	char *data = hm_users_serialize(db, &len);
	int r, saved;

	if (data == NULL)
		return -1;
	r = hm_table_write(path, data, len, 0600);
	saved = errno;
	explicit_bzero(data, len);
	free(data);
	errno = saved;
	return r;
}

