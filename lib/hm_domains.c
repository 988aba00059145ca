/* hm_domains.c — parse, look up and rewrite /etc/homemail/domains (format in
 * hm_domains.h).
 *
 * What for: the local domains every piece agrees on: Exim's local_domains
 * (lsearch on the same file), the Dovecot module (system accounts per
 * domain, remote alias targets) and homemail-user.
 * Relies on: hm_table (bounded read, atomic rewrite, lock), hm_strmap.
 * How it fails: bad lines are reported through the warn callback with their
 * number and skipped; I/O errors return -1 with errno set.
 */
#include "hm_domains.h"
#include "hm_buf.h"
#include "hm_strmap.h"
#include "hm_table.h"
#include "hm_util.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct dline {
	char *text;
	size_t len;
	struct hm_domain *d;    /* NULL: comment or malformed */
};

struct hm_domains {
	struct dline *lines;
	size_t nlines, cap;
	struct hm_domain **doms;
	size_t ndoms;
	unsigned int malformed;
	struct hm_strmap idx;
};

/* dom_free - one parsed domain */
static void dom_free(struct hm_domain *d)
{
	if (d == NULL)
		return;
	free(d->name);
	free(d->options);
	free(d);
}

void hm_domains_free(struct hm_domains **dbp)
{
	struct hm_domains *db = *dbp;

	if (db == NULL)
		return;
	for (size_t i = 0; i < db->nlines; i++) {
		dom_free(db->lines[i].d);
		free(db->lines[i].text);
	}
	free(db->lines);
	free(db->doms);
	hm_strmap_free(&db->idx);
	free(db);
	*dbp = NULL;
}

struct hm_domains *hm_domains_empty(void)
{
	return calloc(1, sizeof(struct hm_domains));
}

int hm_domain_normalize(const char *in, char *dst, size_t dstsize)
{
	size_t n = strlen(in), label = 0;

	if (n == 0 || n > HM_DOMAIN_MAX)
		return errno = EINVAL, -1;
	if (n >= dstsize)
		return errno = ENAMETOOLONG, -1;
	for (size_t i = 0; i <= n; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c == '.' || c == '\0') {
			if (label == 0 || label > 63 || in[i - 1] == '-')
				return errno = EINVAL, -1;
			label = 0;
			continue;
		}
		if (!(isascii(c) && (isalnum(c) || c == '-')) || (c == '-' && label == 0))
			return errno = EINVAL, -1;
		label++;
	}
	for (size_t i = 0; i <= n; i++)
		dst[i] = (char)tolower((unsigned char)in[i]);
	return 0;
}

/* parse_bool - "yes"/"no" */
static int parse_bool(const char *v, bool *b_r)
{
	if (strcmp(v, "yes") == 0)
		*b_r = true;
	else if (strcmp(v, "no") == 0)
		*b_r = false;
	else
		return -1;
	return 0;
}

/* parse_options - "k=v k=v" (blank separated) into d; NULL ok, else why */
static const char *parse_options(char *opts, struct hm_domain *d)
{
	char *save = NULL;

	d->system = true;
	for (char *tok = strtok_r(opts, " \t", &save); tok != NULL;
	     tok = strtok_r(NULL, " \t", &save)) {
		char *eq = strchr(tok, '=');
		if (eq == NULL || eq == tok)
			return "option without key=value";
		for (char *k = tok; k < eq; k++)
			if (!(islower((unsigned char)*k) || isdigit((unsigned char)*k) || *k == '_'))
				return "invalid option name";
		for (char *v = eq + 1; *v != '\0'; v++)
			if (*v <= 0x20 || *v >= 0x7f || *v == '"' || *v == '\\')
				return "invalid byte in an option value";
		*eq = '\0';
		if (strcmp(tok, "system") == 0) {
			if (parse_bool(eq + 1, &d->system) < 0)
				return "system= wants yes or no";
		} else if (strcmp(tok, "remote_aliases") == 0) {
			if (parse_bool(eq + 1, &d->remote_aliases) < 0)
				return "remote_aliases= wants yes or no";
		} else if (strcmp(tok, "quota") == 0) {
			if (hm_users_parse_quota(eq + 1, &d->quota_bytes) < 0)
				return "invalid quota (bytes with optional k/M/G/T)";
		}
		*eq = '=';
	}
	return NULL;
}

/* parse_line - one NUL-free, CR-stripped, non-comment line; NULL + why */
static struct hm_domain *parse_line(const char *line, const char **why_r)
{
	char name[HM_DOMAIN_MAX + 1], *work;
	size_t nl = strcspn(line, " \t");
	const char *rest = line + nl;
	struct hm_domain *d;

	if (line[0] == ' ' || line[0] == '\t') {
		*why_r = "line starts with a blank (Exim would read it as a continuation)";
		return NULL;
	}
	if (nl > HM_DOMAIN_MAX) {
		*why_r = "invalid domain";
		return NULL;
	}
	memcpy(name, line, nl);
	name[nl] = '\0';
	if (hm_domain_normalize(name, name, sizeof(name)) < 0) {
		*why_r = "invalid domain (letters, digits, '-' and '.')";
		return NULL;
	}
	while (*rest == ' ' || *rest == '\t')
		rest++;
	d = calloc(1, sizeof(*d));
	work = strdup(rest);
	if (d == NULL || work == NULL || (d->name = strdup(name)) == NULL ||
	    (d->options = strdup(rest)) == NULL) {
		free(work);
		dom_free(d);
		*why_r = "out of memory";
		return NULL;
	}
	*why_r = parse_options(work, d);
	free(work);
	if (*why_r != NULL) {
		dom_free(d);
		return NULL;
	}
	return d;
}

/* push_line - append a line (takes text and d) */
static int push_line(struct hm_domains *db, char *text, size_t len, struct hm_domain *d)
{
	if (db->nlines == db->cap) {
		size_t ncap = db->cap ? db->cap * 2 : 32, sz;
		struct dline *nl;
		if (!hm_mul_ok(ncap, sizeof(*nl), &sz) || (nl = realloc(db->lines, sz)) == NULL)
			return errno = ENOMEM, -1;
		db->lines = nl;
		db->cap = ncap;
	}
	db->lines[db->nlines++] = (struct dline){ text, len, d };
	return 0;
}

/* rebuild - array of valid domains and the name index */
static int rebuild(struct hm_domains *db)
{
	size_t n = 0, sz;
	struct hm_domain **a;

	for (size_t i = 0; i < db->nlines; i++)
		n += db->lines[i].d != NULL;
	if (!hm_mul_ok(n + 1, sizeof(struct hm_domain *), &sz) || (a = malloc(sz)) == NULL)
		return errno = ENOMEM, -1;
	n = 0;
	hm_strmap_free(&db->idx);
	for (size_t i = 0; i < db->nlines; i++) {
		if (db->lines[i].d == NULL)
			continue;
		a[n++] = db->lines[i].d;
		if (hm_strmap_put_str(&db->idx, db->lines[i].d->name, db->lines[i].d, NULL) < 0) {
			free(a);
			return -1;
		}
	}
	free(db->doms);
	db->doms = a;
	db->ndoms = n;
	return 0;
}

int hm_domains_parse(const char *data, size_t len, const char *path,
		     hm_users_warn_fn *warn, void *ctx, struct hm_domains **db_r)
{
	struct hm_domains *db = hm_domains_empty();
	size_t pos = 0;
	unsigned int lineno = 0;

	if (db == NULL)
		return -1;
	if (path == NULL)
		path = "(domains)";
	while (pos < len) {
		const char *nl = memchr(data + pos, '\n', len - pos);
		size_t ll = nl ? (size_t)(nl - (data + pos)) : len - pos;
		const char *why = NULL;
		struct hm_domain *d = NULL;
		char *text = malloc(ll + 1);

		lineno++;
		if (text == NULL)
			goto fail;
		memcpy(text, data + pos, ll);
		text[ll] = '\0';
		pos += ll + (nl ? 1 : 0);
		if (ll > HM_DOMAINS_MAX_LINE) {
			why = "line too long";
		} else if (memchr(text, '\0', ll) != NULL) {
			why = "NUL byte in line";
		} else {
			size_t wl = ll;
			if (wl > 0 && text[wl - 1] == '\r')
				text[--wl] = '\0';      /* a CR before LF is tolerated */
			if (memchr(text, '\r', wl) != NULL) {
				why = "CR inside the line";
			} else if (text[0] != '\0' && text[0] != '#' &&
				   strspn(text, " \t") != wl) {
				d = parse_line(text, &why);
				if (d != NULL && hm_strmap_get_str(&db->idx, d->name) != NULL) {
					why = "duplicate domain (first one wins)";
					dom_free(d);
					d = NULL;
				} else if (d != NULL &&
					   hm_strmap_put_str(&db->idx, d->name, d, NULL) < 0) {
					dom_free(d);
					free(text);
					goto fail;
				}
			}
			if (wl != ll)
				text[wl] = '\r';        /* kept verbatim */
		}
		if (why != NULL) {
			db->malformed++;
			if (warn != NULL) {
				char buf[300];
				(void)hm_snprintf(buf, sizeof(buf), "%s", why);
				warn(ctx, path, lineno, buf);
			}
		}
		if (d != NULL)
			d->line = lineno;
		if (push_line(db, text, ll, d) < 0) {
			dom_free(d);
			free(text);
			goto fail;
		}
	}
	if (rebuild(db) < 0)
		goto fail;
	*db_r = db;
	return 0;
fail:
	hm_domains_free(&db);
	return -1;
}

int hm_domains_load(const char *path, hm_users_warn_fn *warn, void *ctx,
		    struct hm_domains **db_r)
{
	char *data;
	size_t len;
	int r, saved;

	if (hm_table_read(path, HM_DOMAINS_MAX_FILE, &data, &len) < 0)
		return -1;
	r = hm_domains_parse(data, len, path, warn, ctx, db_r);
	saved = errno;
	free(data);
	errno = saved;
	return r;
}

const struct hm_domain *hm_domains_find(const struct hm_domains *db, const char *name)
{
	char low[HM_DOMAIN_MAX + 1];
	size_t n = strlen(name);

	if (db == NULL || n > HM_DOMAIN_MAX)
		return NULL;
	for (size_t i = 0; i <= n; i++)
		low[i] = (char)tolower((unsigned char)name[i]);
	return hm_strmap_get_str(&db->idx, low);
}

size_t hm_domains_count(const struct hm_domains *db)
{
	return db->ndoms;
}

const struct hm_domain *hm_domains_at(const struct hm_domains *db, size_t i)
{
	return i < db->ndoms ? db->doms[i] : NULL;
}

unsigned int hm_domains_malformed(const struct hm_domains *db)
{
	return db->malformed;
}

int hm_domains_add(struct hm_domains *db, const char *name, const char *options)
{
	struct hm_buf b;
	struct hm_domain *d;
	const char *why;
	char *text;
	size_t len;

	hm_buf_init(&b, HM_DOMAINS_MAX_LINE);
	if (options == NULL)
		options = "";
	if (strpbrk(name, " \t\r\n") != NULL || strpbrk(options, "\r\n") != NULL ||
	    hm_buf_printf(&b, "%s%s%s", name, options[0] ? " " : "", options) < 0) {
		hm_buf_free(&b);
		return errno = EINVAL, -1;
	}
	text = hm_buf_steal(&b, &len);
	if (text == NULL)
		return -1;
	d = parse_line(text, &why);
	if (d == NULL) {
		free(text);
		return errno = EINVAL, -1;
	}
	if (hm_domains_find(db, d->name) != NULL) {
		dom_free(d);
		free(text);
		return errno = EEXIST, -1;
	}
	/* store the normalised name */
	free(text);
	hm_buf_init(&b, HM_DOMAINS_MAX_LINE);
	if (hm_buf_printf(&b, "%s%s%s", d->name, d->options[0] ? " " : "", d->options) < 0 ||
	    (text = hm_buf_steal(&b, &len)) == NULL) {
		hm_buf_free(&b);
		dom_free(d);
		return errno = ENOMEM, -1;
	}
	if (push_line(db, text, len, d) < 0) {
		free(text);
		dom_free(d);
		return -1;
	}
	return rebuild(db);
}

int hm_domains_remove(struct hm_domains *db, const char *name)
{
	const struct hm_domain *d = hm_domains_find(db, name);

	if (d == NULL)
		return errno = ENOENT, -1;
	for (size_t i = 0; i < db->nlines; i++) {
		if (db->lines[i].d != d)
			continue;
		dom_free(db->lines[i].d);
		free(db->lines[i].text);
		memmove(&db->lines[i], &db->lines[i + 1], (db->nlines - i - 1) * sizeof(db->lines[0]));
		db->nlines--;
		break;
	}
	return rebuild(db);
}

char *hm_domains_serialize(const struct hm_domains *db, size_t *len_r)
{
	struct hm_buf b;

	hm_buf_init(&b, HM_DOMAINS_MAX_FILE + 1);
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

int hm_domains_modify(const char *path, hm_domains_edit_fn *fn, void *ctx,
		      hm_users_warn_fn *warn, void *wctx)
{
	struct hm_domains *db = NULL;
	int lfd = hm_table_lock(path), ret, saved;
	char *text;
	size_t len;

	if (lfd < 0)
		return -1;
	if (hm_domains_load(path, warn, wctx, &db) < 0) {
		if (errno != ENOENT || (db = hm_domains_empty()) == NULL) {
			saved = errno;
			close(lfd);
			return errno = saved, -1;
		}
	}
	ret = fn(db, ctx);
	if (ret == 1) {
		text = hm_domains_serialize(db, &len);
		if (text == NULL || hm_table_write(path, text, len, 0644) < 0)
			ret = -1;
		free(text);
	}
	saved = errno;
	hm_domains_free(&db);
	close(lfd);
	errno = saved;
	return ret;
}
