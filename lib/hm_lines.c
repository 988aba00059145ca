/* hm_lines.c — the line model of the /etc/homemail tables (see hm_lines.h).
 */
#include "hm_lines.h"
#include "hm_buf.h"
#include "hm_table.h"
#include "hm_util.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void hm_lines_init(struct hm_lines *t, const struct hm_lines_ops *ops)
{
	memset(t, 0, sizeof(*t));
	t->ops = ops;
	hm_strmap_init(&t->idx);
}

void hm_lines_clear(struct hm_lines *t)
{
	for (size_t i = 0; i < t->nlines; i++) {
		if (t->lines[i].entry != NULL)
			t->ops->entry_free(t->lines[i].entry);
		free(t->lines[i].text);
	}
	free(t->lines);
	free(t->entries);
	hm_strmap_free(&t->idx);
	hm_lines_init(t, t->ops);
}

/* rebuild - the array of valid entries and the key index, after an edit */
static int rebuild(struct hm_lines *t)
{
	size_t n = 0, sz;
	void **v;

	for (size_t i = 0; i < t->nlines; i++)
		n += t->lines[i].entry != NULL;
	if (!hm_mul_ok(n + 1, sizeof(void *), &sz) || (v = malloc(sz)) == NULL)
		return errno = ENOMEM, -1;
	n = 0;
	hm_strmap_free(&t->idx);
	for (size_t i = 0; i < t->nlines; i++) {
		void *e = t->lines[i].entry;
		if (e == NULL)
			continue;
		v[n++] = e;
		if (hm_strmap_put_str(&t->idx, t->ops->key(e), e, NULL) < 0) {
			free(v);
			return -1;
		}
	}
	free(t->entries);
	t->entries = v;
	t->nentries = n;
	return 0;
}

/* push_line - append a line (takes text and entry only on success) */
static int push_line(struct hm_lines *t, char *text, size_t len, void *entry)
{
	if (t->nlines == t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 64, sz;
		struct hm_lines_line *nl;
		if (!hm_mul_ok(ncap, sizeof(*nl), &sz) || (nl = realloc(t->lines, sz)) == NULL)
			return errno = ENOMEM, -1;
		t->lines = nl;
		t->cap = ncap;
	}
	t->lines[t->nlines++] = (struct hm_lines_line){ text, len, entry };
	return 0;
}

/* entry_drop - free an entry that no line took */
static void entry_drop(const struct hm_lines *t, void *entry)
{
	if (entry != NULL)
		t->ops->entry_free(entry);
}

/* parse_one - the entry of one verbatim line text[len], or NULL with *why_r
 * set when malformed (or neither: a comment); -1 on a hard error */
static int parse_one(struct hm_lines *t, void *pstate, const char *text, size_t len,
		     unsigned int lineno, void **entry_r, const char **why_r)
{
	const struct hm_lines_ops *ops = t->ops;
	size_t wl = len;
	char *work;
	int r;

	if (len > ops->max_line) {
		*why_r = "line too long";
		return 0;
	}
	if (memchr(text, '\0', len) != NULL) {
		*why_r = "NUL byte in line";
		return 0;
	}
	work = malloc(len + 1);
	if (work == NULL)
		return -1;
	memcpy(work, text, len + 1);
	if (wl > 0 && work[wl - 1] == '\r')
		work[--wl] = '\0';      /* a CR before LF is tolerated (edited elsewhere) */
	r = ops->parse(pstate, work, wl, entry_r, why_r);
	explicit_bzero(work, len);      /* the users file holds password hashes */
	free(work);
	if (r < 0 || *entry_r == NULL)
		return r;
	memcpy((char *)*entry_r + ops->line_at, &lineno, sizeof(lineno));
	if (ops->dup_why == NULL)
		return 0;
	if (hm_strmap_get_str(&t->idx, ops->key(*entry_r)) != NULL) {
		*why_r = ops->dup_why;
		entry_drop(t, *entry_r);
		*entry_r = NULL;
	} else if (hm_strmap_put_str(&t->idx, ops->key(*entry_r), *entry_r, NULL) < 0) {
		entry_drop(t, *entry_r);
		*entry_r = NULL;
		return -1;
	}
	return 0;
}

int hm_lines_parse(struct hm_lines *t, const char *data, size_t len, const char *path,
		   hm_lines_warn_fn *warn, void *ctx)
{
	const struct hm_lines_ops *ops = t->ops;
	void *pstate = NULL;
	size_t pos = 0;
	unsigned int lineno = 0;
	int ret = -1;

	if (ops->parse_begin != NULL && (pstate = ops->parse_begin()) == NULL)
		return errno = ENOMEM, -1;
	if (path == NULL)
		path = ops->unnamed;
	while (pos < len) {
		const char *nl = memchr(data + pos, '\n', len - pos);
		size_t ll = nl ? (size_t)(nl - (data + pos)) : len - pos;
		const char *why = NULL;
		void *entry = NULL;
		char *text = malloc(ll + 1);

		lineno++;
		if (text == NULL)
			goto out;
		memcpy(text, data + pos, ll);
		text[ll] = '\0';
		pos += ll + (nl ? 1 : 0);
		if (parse_one(t, pstate, text, ll, lineno, &entry, &why) < 0) {
			free(text);
			goto out;
		}
		if (why != NULL) {
			t->malformed++;
			if (warn != NULL)
				warn(ctx, path, lineno, why);
		}
		if (push_line(t, text, ll, entry) < 0) {
			entry_drop(t, entry);
			free(text);
			goto out;
		}
	}
	ret = rebuild(t);
out:
	if (ops->parse_end != NULL) {
		int saved = errno;
		ops->parse_end(pstate);
		errno = saved;
	}
	return ret;
}

int hm_lines_load(struct hm_lines *t, const char *path, hm_lines_warn_fn *warn, void *ctx)
{
	char *data;
	size_t len;
	int r, saved;

	if (hm_table_read(path, t->ops->max_file, &data, &len) < 0)
		return -1;
	r = hm_lines_parse(t, data, len, path, warn, ctx);
	saved = errno;
	explicit_bzero(data, len);
	free(data);
	errno = saved;
	return r;
}

int hm_lines_begin(struct hm_lines *t, const char *path, hm_lines_warn_fn *warn, void *ctx)
{
	int lfd = hm_table_lock(path), saved;

	if (lfd < 0)
		return -1;
	if (hm_lines_load(t, path, warn, ctx) < 0 && errno != ENOENT) {
		saved = errno;
		close(lfd);
		return errno = saved, -1;
	}
	return lfd;
}

int hm_lines_end(struct hm_lines *t, const char *path, int lfd, int ret)
{
	char *text;
	size_t len = 0;
	int saved;

	if (ret == 1) {
		text = hm_lines_serialize(t, &len);
		if (text == NULL || hm_table_write(path, text, len, t->ops->new_mode) < 0)
			ret = -1;
		saved = errno;
		if (text != NULL)
			explicit_bzero(text, len);
		free(text);
		errno = saved;
	}
	saved = errno;
	close(lfd);             /* releases the flock */
	errno = saved;
	return ret;
}

void *hm_lines_find(const struct hm_lines *t, const char *key)
{
	char low[HM_LINES_MAX_KEY + 1];
	size_t n = strlen(key);

	if (t == NULL || n > t->ops->max_key || n > HM_LINES_MAX_KEY)
		return NULL;
	for (size_t i = 0; i <= n; i++)
		low[i] = (char)tolower((unsigned char)key[i]);
	return hm_strmap_get_str(&t->idx, low);
}

size_t hm_lines_index(const struct hm_lines *t, const void *entry)
{
	for (size_t i = 0; entry != NULL && i < t->nlines; i++)
		if (t->lines[i].entry == entry)
			return i;
	return SIZE_MAX;
}

size_t hm_lines_count(const struct hm_lines *t)
{
	return t->nentries;
}

void *hm_lines_at(const struct hm_lines *t, size_t i)
{
	return i < t->nentries ? t->entries[i] : NULL;
}

unsigned int hm_lines_malformed(const struct hm_lines *t)
{
	return t->malformed;
}

int hm_lines_append(struct hm_lines *t, char *text, size_t len, void *entry)
{
	if (text == NULL || push_line(t, text, len, entry) < 0) {
		free(text);
		entry_drop(t, entry);
		return -1;
	}
	return rebuild(t);
}

int hm_lines_set(struct hm_lines *t, size_t i, char *text, size_t len, void *entry)
{
	struct hm_lines_line *l = &t->lines[i];

	if (text == NULL) {
		entry_drop(t, entry);
		return -1;
	}
	if (l->entry != entry)
		entry_drop(t, l->entry);
	free(l->text);
	*l = (struct hm_lines_line){ text, len, entry };
	return rebuild(t);
}

int hm_lines_drop(struct hm_lines *t, size_t i)
{
	entry_drop(t, t->lines[i].entry);
	free(t->lines[i].text);
	memmove(&t->lines[i], &t->lines[i + 1], (t->nlines - i - 1) * sizeof(t->lines[0]));
	t->nlines--;
	return rebuild(t);
}

int hm_lines_remove(struct hm_lines *t, const char *key)
{
	size_t i = hm_lines_index(t, hm_lines_find(t, key));

	if (i == SIZE_MAX)
		return errno = ENOENT, -1;
	return hm_lines_drop(t, i);
}

char *hm_lines_serialize(const struct hm_lines *t, size_t *len_r)
{
	struct hm_buf b;

	hm_buf_init(&b, t->ops->max_file + 1);
	for (size_t i = 0; i < t->nlines; i++) {
		if (hm_buf_append(&b, t->lines[i].text, t->lines[i].len) < 0 ||
		    hm_buf_putc(&b, '\n') < 0) {
			hm_buf_free(&b);
			return NULL;
		}
	}
	if (b.data == NULL && hm_buf_puts(&b, "") < 0)
		return NULL;
	return hm_buf_steal(&b, len_r);
}
