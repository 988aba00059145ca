/* hm_domains.c — parse, look up and rewrite /etc/homemail/domains (format in
 * hm_domains.h).
 *
 * What for: the local domains every piece agrees on: Exim's local_domains
 * (lsearch on the same file), the Dovecot module (system accounts per
 * domain, remote alias targets) and homemail-user.
 * Relies on: hm_lines (the line table, read, rewrite and lock: this file
 * holds only the grammar of a line).
 * How it fails: bad lines are reported through the warn callback with their
 * number and skipped; I/O errors return -1 with errno set.
 */
#include "hm_domains.h"
#include "hm_buf.h"
#include "hm_lines.h"
#include "hm_util.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* dom_free - one parsed domain */
static void dom_free(struct hm_domain *d)
{
	if (d == NULL)
		return;
	free(d->name);
	free(d->options);
	free(d);
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

/* domains_key / domains_free_entry / domains_parse - the hm_lines_ops */
static const char *domains_key(const void *e)
{
	return ((const struct hm_domain *)e)->name;
}

static void domains_free_entry(void *e)
{
	dom_free(e);
}

static int domains_parse(void *pstate, char *line, size_t len, void **entry_r,
			 const char **why_r)
{
	(void)pstate;
	if (memchr(line, '\r', len) != NULL) {
		*why_r = "CR inside the line";
		return 0;
	}
	/* a line of blanks is a comment; one starting with a blank is not */
	if (line[0] == '\0' || line[0] == '#' || strspn(line, " \t") == len)
		return 0;
	*entry_r = parse_line(line, why_r);
	return 0;
}

static const struct hm_lines_ops domains_ops = {
	.unnamed = "(domains)",
	.max_line = HM_DOMAINS_MAX_LINE,
	.max_file = HM_DOMAINS_MAX_FILE,
	.max_key = HM_DOMAIN_MAX,
	.line_at = offsetof(struct hm_domain, line),
	.new_mode = 0644,       /* Exim reads it as Debian-exim */
	.dup_why = "duplicate domain (first one wins)",
	.parse = domains_parse,
	.key = domains_key,
	.entry_free = domains_free_entry,
};

/* hm_domains_empty, _free, _parse, _load, _find, _count, _at, _malformed,
 * _serialize and _modify (described in hm_domains.h) */
HM_LINES_TABLE(hm_domains, hm_domain, domains_ops);

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
	return hm_lines_append(&db->t, text, len, d);
}

int hm_domains_remove(struct hm_domains *db, const char *name)
{
	return hm_lines_remove(&db->t, name);
}

