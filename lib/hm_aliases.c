/* hm_aliases.c — parse, look up and rewrite /etc/homemail/aliases (format
 * in hm_aliases.h).  Resolution is in hm_route.c.
 *
 * What for: aliases, lists and catch-alls served to Exim by the Dovecot
 * module, edited by homemail-user.
 * Relies on: hm_lines (the line table, read, rewrite and lock: this file
 * holds only the grammar of a line), hm_strmap,
 * hm_users_normalize_address (one address grammar for every table).
 * How it fails: bad lines are reported through the warn callback with their
 * number and skipped; I/O errors return -1 with errno set.
 * Bounds: HM_ALIASES_MAX_LINE bytes and HM_ALIASES_MAX_TARGETS targets per
 * line (checked while splitting, before anything is allocated per target).
 */
#include "hm_aliases.h"
#include "hm_buf.h"
#include "hm_lines.h"
#include "hm_strmap.h"
#include "hm_util.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

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

/* aliases_key / aliases_free_entry / aliases_parse - the hm_lines_ops */
static const char *aliases_key(const void *e)
{
	return ((const struct hm_alias *)e)->source;
}

static void aliases_free_entry(void *e)
{
	alias_free(e);
}

static int aliases_parse(void *pstate, char *line, size_t len, void **entry_r,
			 const char **why_r)
{
	char *t = trim(line);

	(void)pstate;
	(void)len;
	if (*t == '\0' || *t == '#')
		return 0;
	*entry_r = parse_line(t, why_r);
	return 0;
}

static const struct hm_lines_ops aliases_ops = {
	.unnamed = "(aliases)",
	.max_line = HM_ALIASES_MAX_LINE,
	.max_file = HM_ALIASES_MAX_FILE,
	.max_key = HM_USERS_MAX_ADDRESS,
	.line_at = offsetof(struct hm_alias, line),
	.new_mode = 0600,
	.dup_why = "duplicate source (first one wins)",
	.parse = aliases_parse,
	.key = aliases_key,
	.entry_free = aliases_free_entry,
};

/* hm_aliases_empty, _free, _parse, _load, _find, _count, _at, _malformed,
 * _serialize and _modify (described in hm_aliases.h) */
HM_LINES_TABLE(hm_aliases, hm_alias, aliases_ops);

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

/* set_line - replace line i's alias by a (formatted), or drop the line
 * when a is NULL; takes a */
static int set_line(struct hm_aliases *db, size_t i, struct hm_alias *a)
{
	size_t len = 0;
	char *text;

	if (a == NULL)
		return hm_lines_drop(&db->t, i);
	text = format_line(a, &len);
	return hm_lines_set(&db->t, i, text, len, a);
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
		idx = hm_lines_index(&db->t, old);
	}
	if (idx == SIZE_MAX) {
		size_t len = 0;
		char *text = format_line(a, &len);      /* NULL: EINVAL, too long */
		return hm_lines_append(&db->t, text, len, a);
	}
	return set_line(db, idx, a);
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
	if (old == NULL || (idx = hm_lines_index(&db->t, old)) == SIZE_MAX)
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
	return set_line(db, idx, a);
}

int hm_aliases_rename_target(struct hm_aliases *db, const char *old_addr, const char *new_addr)
{
	int changed = 0;

	for (size_t i = 0; i < hm_aliases_count(db); i++) {
		const struct hm_alias *a = hm_aliases_at(db, i);
		bool hit = false;
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

