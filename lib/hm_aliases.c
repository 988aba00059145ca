/* hm_aliases.c — parse, look up and rewrite /etc/homemail/aliases (format
 * in hm_aliases.h).  Resolution is in hm_route.c.
 *
 * What for: aliases, lists and catch-alls served to Exim by the Dovecot
 * module, edited by homemail-user.
 * Relies on: hm_table (bounded read, atomic rewrite, lock), hm_strmap,
 * hm_users_normalize_address (one address grammar for every table).
 * How it fails: bad lines are reported through the warn callback with their
 * number and skipped; I/O errors return -1 with errno set.
 * Bounds: HM_ALIASES_MAX_LINE bytes and HM_ALIASES_MAX_TARGETS targets per
 * line (checked while splitting, before anything is allocated per target).
 */
#include "hm_aliases.h"
#include "hm_buf.h"
#include "hm_strmap.h"
#include "hm_table.h"
#include "hm_util.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct aline {
	char *text;
	size_t len;
	struct hm_alias *a;     /* NULL: comment or malformed */
};

struct hm_aliases {
	struct aline *lines;
	size_t nlines, cap;
	struct hm_alias **als;
	size_t nals;
	unsigned int malformed;
	struct hm_strmap idx;
};

/* alias_free - one parsed alias */
static void alias_free(struct hm_alias *a)
{
	if (a == NULL)
		return;
	for (size_t i = 0; i < a->ntargets; i++)
		free(a->targets[i]);
	free(a->targets);
	free(a->source);
	free(a);
}

void hm_aliases_free(struct hm_aliases **dbp)
{
	struct hm_aliases *db = *dbp;

	if (db == NULL)
		return;
	for (size_t i = 0; i < db->nlines; i++) {
		alias_free(db->lines[i].a);
		free(db->lines[i].text);
	}
	free(db->lines);
	free(db->als);
	hm_strmap_free(&db->idx);
	free(db);
	*dbp = NULL;
}

struct hm_aliases *hm_aliases_empty(void)
{
	return calloc(1, sizeof(struct hm_aliases));
}

int hm_alias_source_normalize(const char *in, char *dst, size_t dstsize)
{
	if (in[0] == '@') {
		if (dstsize < 2)
			return errno = ENAMETOOLONG, -1;
		dst[0] = '@';
		return hm_domain_normalize(in + 1, dst + 1, dstsize - 1);
	}
	return hm_users_normalize_address(in, dst, dstsize);
}

/* trim - strip blanks at both ends in place */
static char *trim(char *s)
{
	size_t n;

	while (*s == ' ' || *s == '\t')
		s++;
	n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = '\0';
	return s;
}

/* add_target - append a normalised copy of t unless already there */
static const char *add_target(struct hm_alias *a, struct hm_strmap *seen, const char *t)
{
	char addr[HM_USERS_MAX_ADDRESS + 1];
	char **nt;
	size_t sz;

	if (hm_users_normalize_address(t, addr, sizeof(addr)) < 0)
		return "invalid target address";
	if (strcmp(addr, a->source) == 0)
		return "target equals its source (a loop)";
	if (hm_strmap_get_str(seen, addr) != NULL)
		return NULL;            /* listed twice: once is enough */
	if (a->ntargets >= HM_ALIASES_MAX_TARGETS)
		return "too many targets";
	if (!hm_mul_ok(a->ntargets + 1, sizeof(char *), &sz) ||
	    (nt = realloc(a->targets, sz)) == NULL)
		return "out of memory";
	a->targets = nt;
	if ((a->targets[a->ntargets] = strdup(addr)) == NULL)
		return "out of memory";
	if (hm_strmap_put_str(seen, a->targets[a->ntargets], a, NULL) < 0) {
		free(a->targets[a->ntargets]);
		return "out of memory";
	}
	a->ntargets++;
	return NULL;
}

/* parse_line - one NUL-free, CR-stripped, non-comment line into an alias;
 * NULL with *why_r set */
static struct hm_alias *parse_line(char *line, const char **why_r)
{
	char src[HM_USERS_MAX_ADDRESS + 1], *colon, *p, *save = NULL;
	struct hm_alias *a;
	struct hm_strmap seen;
	size_t commas = 0;

	for (p = line; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;
		if ((c < 0x20 && c != '\t') || c >= 0x7f || c == '"' || c == '\\') {
			*why_r = "invalid byte (control, 8-bit, quote or backslash)";
			return NULL;
		}
		commas += c == ',';
	}
	/* bound the work before splitting: n commas = n+1 targets */
	if (commas >= HM_ALIASES_MAX_TARGETS) {
		*why_r = "too many targets";
		return NULL;
	}
	colon = strchr(line, ':');
	if (colon == NULL) {
		*why_r = "no ':' after the source address";
		return NULL;
	}
	*colon = '\0';
	if (hm_alias_source_normalize(trim(line), src, sizeof(src)) < 0) {
		*why_r = "invalid source (local@domain or @domain)";
		return NULL;
	}
	a = calloc(1, sizeof(*a));
	if (a == NULL || (a->source = strdup(src)) == NULL) {
		free(a);
		*why_r = "out of memory";
		return NULL;
	}
	hm_strmap_init(&seen);
	*why_r = NULL;
	save = colon + 1;
	/* strsep, not strtok: "a,,b" has an empty target */
	for (char *tok = strsep(&save, ","); tok != NULL && *why_r == NULL;
	     tok = strsep(&save, ",")) {
		char *t = trim(tok);
		if (*t == '\0')
			*why_r = "empty target";
		else
			*why_r = add_target(a, &seen, t);
	}
	hm_strmap_free(&seen);
	if (*why_r == NULL && a->ntargets == 0)
		*why_r = "no target";
	if (*why_r != NULL) {
		alias_free(a);
		return NULL;
	}
	return a;
}

/* push_line - append a line (takes text and a) */
static int push_line(struct hm_aliases *db, char *text, size_t len, struct hm_alias *a)
{
	if (db->nlines == db->cap) {
		size_t ncap = db->cap ? db->cap * 2 : 64, sz;
		struct aline *nl;
		if (!hm_mul_ok(ncap, sizeof(*nl), &sz) || (nl = realloc(db->lines, sz)) == NULL)
			return errno = ENOMEM, -1;
		db->lines = nl;
		db->cap = ncap;
	}
	db->lines[db->nlines++] = (struct aline){ text, len, a };
	return 0;
}

/* rebuild - array of valid aliases and the source index */
static int rebuild(struct hm_aliases *db)
{
	size_t n = 0, sz;
	struct hm_alias **v;

	for (size_t i = 0; i < db->nlines; i++)
		n += db->lines[i].a != NULL;
	if (!hm_mul_ok(n + 1, sizeof(struct hm_alias *), &sz) || (v = malloc(sz)) == NULL)
		return errno = ENOMEM, -1;
	n = 0;
	hm_strmap_free(&db->idx);
	for (size_t i = 0; i < db->nlines; i++) {
		if (db->lines[i].a == NULL)
			continue;
		v[n++] = db->lines[i].a;
		if (hm_strmap_put_str(&db->idx, db->lines[i].a->source, db->lines[i].a, NULL) < 0) {
			free(v);
			return -1;
		}
	}
	free(db->als);
	db->als = v;
	db->nals = n;
	return 0;
}

int hm_aliases_parse(const char *data, size_t len, const char *path,
		     hm_users_warn_fn *warn, void *ctx, struct hm_aliases **db_r)
{
	struct hm_aliases *db = hm_aliases_empty();
	size_t pos = 0;
	unsigned int lineno = 0;

	if (db == NULL)
		return -1;
	if (path == NULL)
		path = "(aliases)";
	while (pos < len) {
		const char *nl = memchr(data + pos, '\n', len - pos);
		size_t ll = nl ? (size_t)(nl - (data + pos)) : len - pos;
		const char *why = NULL;
		struct hm_alias *a = NULL;
		char *text;

		lineno++;
		if (ll > HM_ALIASES_MAX_LINE) {
			/* kept verbatim but never copied twice */
			why = "line too long";
		} else if (memchr(data + pos, '\0', ll) != NULL) {
			why = "NUL byte in line";
		}
		text = malloc(ll + 1);
		if (text == NULL)
			goto fail;
		memcpy(text, data + pos, ll);
		text[ll] = '\0';
		pos += ll + (nl ? 1 : 0);
		if (why == NULL) {
			char *work = strdup(text), *t;
			size_t wl = ll;
			if (work == NULL) {
				free(text);
				goto fail;
			}
			if (wl > 0 && work[wl - 1] == '\r')
				work[--wl] = '\0';      /* a CR before LF is tolerated */
			t = trim(work);
			if (*t != '\0' && *t != '#') {
				a = parse_line(t, &why);
				if (a != NULL && hm_strmap_get_str(&db->idx, a->source) != NULL) {
					why = "duplicate source (first one wins)";
					alias_free(a);
					a = NULL;
				} else if (a != NULL &&
					   hm_strmap_put_str(&db->idx, a->source, a, NULL) < 0) {
					alias_free(a);
					free(work);
					free(text);
					goto fail;
				}
			}
			free(work);
		}
		if (why != NULL) {
			db->malformed++;
			if (warn != NULL)
				warn(ctx, path, lineno, why);
		}
		if (a != NULL)
			a->line = lineno;
		if (push_line(db, text, ll, a) < 0) {
			alias_free(a);
			free(text);
			goto fail;
		}
	}
	if (rebuild(db) < 0)
		goto fail;
	*db_r = db;
	return 0;
fail:
	hm_aliases_free(&db);
	return -1;
}

int hm_aliases_load(const char *path, hm_users_warn_fn *warn, void *ctx,
		    struct hm_aliases **db_r)
{
	char *data;
	size_t len;
	int r, saved;

	if (hm_table_read(path, HM_ALIASES_MAX_FILE, &data, &len) < 0)
		return -1;
	r = hm_aliases_parse(data, len, path, warn, ctx, db_r);
	saved = errno;
	free(data);
	errno = saved;
	return r;
}

const struct hm_alias *hm_aliases_find(const struct hm_aliases *db, const char *source)
{
	char low[HM_USERS_MAX_ADDRESS + 1];
	size_t n = strlen(source);

	if (db == NULL || n > HM_USERS_MAX_ADDRESS)
		return NULL;
	for (size_t i = 0; i <= n; i++)
		low[i] = (char)tolower((unsigned char)source[i]);
	return hm_strmap_get_str(&db->idx, low);
}

size_t hm_aliases_count(const struct hm_aliases *db)
{
	return db->nals;
}

const struct hm_alias *hm_aliases_at(const struct hm_aliases *db, size_t i)
{
	return i < db->nals ? db->als[i] : NULL;
}

unsigned int hm_aliases_malformed(const struct hm_aliases *db)
{
	return db->malformed;
}

/* format_line - "source: t1, t2" (malloc'd) */
static char *format_line(const struct hm_alias *a, size_t *len_r)
{
	struct hm_buf b;

	hm_buf_init(&b, HM_ALIASES_MAX_LINE);
	if (hm_buf_printf(&b, "%s:", a->source) < 0)
		goto fail;
	for (size_t i = 0; i < a->ntargets; i++)
		if (hm_buf_printf(&b, "%s %s", i ? "," : "", a->targets[i]) < 0)
			goto fail;
	return hm_buf_steal(&b, len_r);
fail:
	hm_buf_free(&b);
	errno = EINVAL;         /* the line would be too long */
	return NULL;
}

/* line_of - index of the line holding alias a */
static size_t line_of(const struct hm_aliases *db, const struct hm_alias *a)
{
	for (size_t i = 0; i < db->nlines; i++)
		if (db->lines[i].a == a)
			return i;
	return SIZE_MAX;
}

/* set_line - replace line i's alias by a (formatted) or drop the line */
static int set_line(struct hm_aliases *db, size_t i, struct hm_alias *a)
{
	if (a == NULL) {
		alias_free(db->lines[i].a);
		free(db->lines[i].text);
		memmove(&db->lines[i], &db->lines[i + 1], (db->nlines - i - 1) * sizeof(db->lines[0]));
		db->nlines--;
		return rebuild(db);
	}
	size_t len;
	char *text = format_line(a, &len);
	if (text == NULL)
		return -1;
	if (db->lines[i].a != a)
		alias_free(db->lines[i].a);
	free(db->lines[i].text);
	db->lines[i].text = text;
	db->lines[i].len = len;
	db->lines[i].a = a;
	return rebuild(db);
}

int hm_aliases_add(struct hm_aliases *db, const char *source, const char *const *targets,
		   size_t ntargets)
{
	char src[HM_USERS_MAX_ADDRESS + 1];
	const struct hm_alias *old;
	struct hm_alias *a;
	struct hm_strmap seen;
	const char *why = NULL;
	size_t idx = SIZE_MAX;

	if (hm_alias_source_normalize(source, src, sizeof(src)) < 0 || ntargets == 0)
		return errno = EINVAL, -1;
	a = calloc(1, sizeof(*a));
	if (a == NULL || (a->source = strdup(src)) == NULL) {
		free(a);
		return errno = ENOMEM, -1;
	}
	hm_strmap_init(&seen);
	old = hm_aliases_find(db, src);
	for (size_t i = 0; old != NULL && i < old->ntargets && why == NULL; i++)
		why = add_target(a, &seen, old->targets[i]);
	for (size_t i = 0; i < ntargets && why == NULL; i++)
		why = add_target(a, &seen, targets[i]);
	hm_strmap_free(&seen);
	if (why != NULL) {
		alias_free(a);
		return errno = EINVAL, -1;
	}
	if (old != NULL) {
		a->line = old->line;
		idx = line_of(db, old);
	}
	if (idx == SIZE_MAX) {
		size_t len;
		char *text = format_line(a, &len);
		if (text == NULL || push_line(db, text, len, a) < 0) {
			free(text);
			alias_free(a);
			return errno = EINVAL, -1;
		}
		return rebuild(db);
	}
	if (set_line(db, idx, a) < 0) {
		alias_free(a);
		return -1;
	}
	return 0;
}

int hm_aliases_remove(struct hm_aliases *db, const char *source, const char *target)
{
	char src[HM_USERS_MAX_ADDRESS + 1], tgt[HM_USERS_MAX_ADDRESS + 1];
	const struct hm_alias *old;
	struct hm_alias *a;
	size_t idx, kept = 0;
	bool found = false;

	if (hm_alias_source_normalize(source, src, sizeof(src)) < 0)
		return errno = EINVAL, -1;
	old = hm_aliases_find(db, src);
	if (old == NULL || (idx = line_of(db, old)) == SIZE_MAX)
		return errno = ENOENT, -1;
	if (target == NULL)
		return set_line(db, idx, NULL);
	if (hm_users_normalize_address(target, tgt, sizeof(tgt)) < 0)
		return errno = EINVAL, -1;
	a = calloc(1, sizeof(*a));
	if (a == NULL || (a->source = strdup(src)) == NULL ||
	    (a->targets = calloc(old->ntargets, sizeof(char *))) == NULL) {
		alias_free(a);
		return errno = ENOMEM, -1;
	}
	for (size_t i = 0; i < old->ntargets; i++) {
		if (strcmp(old->targets[i], tgt) == 0) {
			found = true;
			continue;
		}
		if ((a->targets[kept] = strdup(old->targets[i])) == NULL) {
			a->ntargets = kept;
			alias_free(a);
			return errno = ENOMEM, -1;
		}
		a->ntargets = ++kept;
	}
	if (!found) {
		alias_free(a);
		return errno = ENOENT, -1;
	}
	a->line = old->line;
	if (kept == 0) {
		alias_free(a);
		return set_line(db, idx, NULL);
	}
	if (set_line(db, idx, a) < 0) {
		alias_free(a);
		return -1;
	}
	return 0;
}

int hm_aliases_rename_target(struct hm_aliases *db, const char *old_addr, const char *new_addr)
{
	int changed = 0;

	for (size_t i = 0; i < db->nlines; i++) {
		struct hm_alias *a = db->lines[i].a;
		bool hit = false;
		if (a == NULL)
			continue;
		for (size_t k = 0; k < a->ntargets; k++)
			hit |= strcmp(a->targets[k], old_addr) == 0;
		if (!hit)
			continue;
		/* remove then add keeps the list free of duplicates */
		char *src = strdup(a->source);
		if (src == NULL)
			return -1;
		const char *nt[1] = { new_addr };
		if (hm_aliases_remove(db, src, old_addr) < 0 || hm_aliases_add(db, src, nt, 1) < 0) {
			free(src);
			return -1;
		}
		free(src);
		changed++;
		i = (size_t)-1;         /* lines moved: start again (each rename ends a hit) */
	}
	return changed;
}

char *hm_aliases_serialize(const struct hm_aliases *db, size_t *len_r)
{
	struct hm_buf b;

	hm_buf_init(&b, HM_ALIASES_MAX_FILE + 1);
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

int hm_aliases_modify(const char *path, hm_aliases_edit_fn *fn, void *ctx,
		      hm_users_warn_fn *warn, void *wctx)
{
	struct hm_aliases *db = NULL;
	int lfd = hm_table_lock(path), ret, saved;
	char *text;
	size_t len;

	if (lfd < 0)
		return -1;
	if (hm_aliases_load(path, warn, wctx, &db) < 0) {
		if (errno != ENOENT || (db = hm_aliases_empty()) == NULL) {
			saved = errno;
			close(lfd);
			return errno = saved, -1;
		}
	}
	ret = fn(db, ctx);
	if (ret == 1) {
		text = hm_aliases_serialize(db, &len);
		if (text == NULL || hm_table_write(path, text, len, 0600) < 0)
			ret = -1;
		free(text);
	}
	saved = errno;
	hm_aliases_free(&db);
	close(lfd);
	errno = saved;
	return ret;
}
