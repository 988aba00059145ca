/* hm_junklist.c — per-user blocked/trusted sender lists (see hm_junklist.h).
 *
 * Relies on: libc only (flock, rename, fsync); hm_util for full writes.
 * Used inside Dovecot's imap processes and by homemail-deliver, so: no
 * static result buffers, no exit(), no alarm(); every size is bounded
 * (file bytes read, lines kept, entries per list, address length).
 * Fails by returning -1 with errno; a damaged file is never an error (the
 * readable lines are used, the rest counted in l->damaged).  A writer that
 * cannot take the lock in time gives up with ETIMEDOUT and leaves the file
 * as it was; a crash mid-write leaves at most a stale .tmp file, which the
 * next writer (holding the lock) removes.
 */
#define _GNU_SOURCE 1
#include "hm_junklist.h"
#include "hm_address.h"
#include "hm_util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Stamps beyond this (year ~36812) are damage, not dates. */
#define STAMP_MAX ((int64_t)1 << 40)

void hm_junklist_init(struct hm_junklist *l)
{
	memset(l, 0, sizeof *l);
	l->sorted = 1;
}

void hm_junklist_free(struct hm_junklist *l)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].owned)
			free((char *)l->v[i].addr);
	free(l->v);
	free(l->data);
	hm_junklist_init(l);
}

/* addr_byte_ok - a byte that may appear inside a stored address: printable
 * ASCII except blanks, or any byte >= 0x80 (SMTPUTF8 addresses) but DEL */
static int addr_byte_ok(unsigned char c)
{
	return c > 0x20 && c != 0x7f;
}

int hm_junk_addr_normalize(const char *addr, size_t len, int allow_domain,
			   char *dst, size_t dstsize)
{
	const char *s, *e;
	const char *at = NULL;
	size_t n;

	/* checked before any pointer arithmetic: NULL + len is undefined */
	if (addr == NULL || dstsize < HM_JUNKLIST_ADDR_MAX + 1)
		goto bad;
	s = addr;
	e = addr + len;
	while (s < e && (*s == ' ' || *s == '\t'))
		s++;
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
		e--;
	if (s < e && *s == '<') {
		if (e[-1] != '>')
			goto bad;
		s++;
		e--;
	}
	n = (size_t)(e - s);
	if (n == 0 || n > HM_JUNKLIST_ADDR_MAX)
		goto bad;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!addr_byte_ok(c) || c == '<' || c == '>')
			goto bad;
		if (c == '@')
			at = s + i;
		dst[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : (char)c;
	}
	dst[n] = '\0';
	if (at == NULL || at == e - 1)          /* no '@' or empty domain */
		goto bad;
	if (at == s && !allow_domain)           /* "@domain" only from files */
		goto bad;
	return 0;
bad:
	if (dst != NULL && dstsize > 0)
		dst[0] = '\0';
	errno = EINVAL;
	return -1;
}

/* Addresses looked at in one header value: From: may list several. */
#define SENDER_MAX_ADDRS 16

int hm_junk_sender_addr(const char *value, size_t len, char *dst, size_t dstsize)
{
	struct hm_addr_list al;
	char tmp[HM_JUNKLIST_ADDR_MAX + 2];
	int ret = -1;

	if (dst == NULL || dstsize < HM_JUNKLIST_ADDR_MAX + 1 || value == NULL) {
		errno = EINVAL;
		return -1;
	}
	dst[0] = '\0';
	memset(&al, 0, sizeof al);
	if (hm_address_parse(value, len, SENDER_MAX_ADDRS, &al) < 0)
		return -1;
	for (size_t i = 0; i < al.n && ret < 0; i++) {
		const struct hm_addr *a = &al.v[i];
		if (a->invalid || a->domain == NULL || a->local == NULL ||
		    a->local[0] == '\0' || a->domain[0] == '\0')
			continue;
		if (hm_snprintf(tmp, sizeof tmp, "%s@%s", a->local, a->domain) < 0)
			continue;               /* too long to be an address */
		if (hm_junk_addr_normalize(tmp, strlen(tmp), 0, dst, dstsize) == 0)
			ret = 0;
	}
	hm_address_list_free(&al);
	if (ret < 0)
		errno = EINVAL;
	return ret;
}

/* grow - room for one more entry, within the parse cap.  Returns 0, -1 and errno. */
static int grow(struct hm_junklist *l)
{
	if (l->n >= HM_JUNKLIST_PARSE_MAX) {
		errno = EOVERFLOW;
		return -1;
	}
	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 64, bytes;
		if (ncap > HM_JUNKLIST_PARSE_MAX)
			ncap = HM_JUNKLIST_PARSE_MAX;
		if (!hm_mul_ok(ncap, sizeof *l->v, &bytes))
			return errno = ENOMEM, -1;
		struct hm_junk_entry *nv = realloc(l->v, bytes);
		if (nv == NULL)
			return -1;
		l->v = nv;
		l->cap = ncap;
	}
	return 0;
}

/* put - append an entry where grow() made room (cannot fail); addr points
 * into storage the list does not own (owned = 0) or was malloc'd for it
 * (owned = 1: the list frees it) */
static void put(struct hm_junklist *l, const char *addr, int64_t stamp, char kind,
		char owned)
{
	l->v[l->n++] = (struct hm_junk_entry){
		.addr = addr, .stamp = stamp, .seq = l->next_seq++,
		.kind = kind, .owned = owned,
	};
	l->sorted = 0;
}

/* push - grow, then put an entry that the list does not own.  Returns 0, -1 and errno. */
static int push(struct hm_junklist *l, const char *addr, int64_t stamp, char kind)
{
	if (grow(l) < 0)
		return -1;
	put(l, addr, stamp, kind, 0);
	return 0;
}

/* parse_line - one NUL-terminated line (no LF); adds an entry or counts
 * damage.  The address is normalised in place (it can only shrink). */
static int parse_line(struct hm_junklist *l, char *line, size_t len)
{
	char norm[HM_JUNKLIST_ADDR_MAX + 1];
	char *p = line, *end;
	char kind;
	long long stamp;

	if (len > 0 && line[len - 1] == '\r')
		line[--len] = '\0';
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '\0' || *p == '#')
		return 0;
	if (len > HM_JUNKLIST_LINE_MAX || strlen(line) != len)
		goto damaged;                   /* overlong, or NUL inside */
	kind = *p++;
	if ((kind != HM_JUNK_BLOCKED && kind != HM_JUNK_TRUSTED) || (*p != ' ' && *p != '\t'))
		goto damaged;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p < '0' || *p > '9')
		goto damaged;
	errno = 0;
	stamp = strtoll(p, &end, 10);
	if (errno != 0 || end == p || stamp < 0 || stamp > STAMP_MAX ||
	    (*end != ' ' && *end != '\t'))
		goto damaged;
	p = end;
	while (*p == ' ' || *p == '\t')
		p++;
	if (hm_junk_addr_normalize(p, strlen(p), 1, norm, sizeof norm) < 0)
		goto damaged;
	memcpy(p, norm, strlen(norm) + 1);      /* never longer than the input */
	if (push(l, p, stamp, kind) < 0) {
		if (errno == EOVERFLOW)
			goto damaged;
		return -1;
	}
	return 0;
damaged:
	l->damaged++;
	return 0;
}

int hm_junklist_parse(struct hm_junklist *l, char *data, size_t len)
{
	size_t off = 0;

	if (l->data != NULL) {                  /* one file per list */
		free(data);
		errno = EINVAL;
		return -1;
	}
	/* a last line without LF (hand-edited file) still counts if it
	 * parses: give it one so every line below ends in LF */
	if (len > 0 && data[len - 1] != '\n') {
		char *nd = realloc(data, len + 1);
		if (nd == NULL) {
			free(data);
			return -1;
		}
		data = nd;
		data[len++] = '\n';
	}
	l->data = data;
	while (off < len) {
		char *nl = memchr(data + off, '\n', len - off);
		size_t linelen = (size_t)(nl - (data + off));

		*nl = '\0';
		if (parse_line(l, data + off, linelen) < 0)
			return -1;
		off += linelen + 1;
	}
	hm_junklist_finish(l);
	return 0;
}

int hm_junklist_load(struct hm_junklist *l, const char *dir)
{
	char path[PATH_MAX];
	struct stat st;
	char *data;
	ssize_t got;
	size_t want;
	int fd;

	if (hm_snprintf(path, sizeof path, "%s/%s", dir, HM_JUNKLIST_FILE) < 0)
		return -1;
	fd = hm_open_regular(path, O_RDONLY | O_NONBLOCK, 0, &st);
	if (fd < 0) {
		if (errno == ENOENT) {
			hm_junklist_finish(l);
			return 0;
		}
		return -1;
	}
	want = st.st_size > (off_t)HM_JUNKLIST_FILE_MAX ? HM_JUNKLIST_FILE_MAX
							 : (size_t)st.st_size;
	data = malloc(want + 1);
	if (data == NULL)
		goto fail;
	got = hm_read_full(fd, data, want);
	if (got < 0) {
		free(data);
		goto fail;
	}
	close(fd);
	if ((size_t)got == HM_JUNKLIST_FILE_MAX && st.st_size > (off_t)HM_JUNKLIST_FILE_MAX) {
		/* the rest is not read at all; the cut line would be a wrong
		 * (shortened) address, so stop at the last whole line */
		char *nl = memrchr(data, '\n', (size_t)got);
		got = nl == NULL ? 0 : nl - data + 1;
		l->damaged++;
	}
	return hm_junklist_parse(l, data, (size_t)got);
fail:
	{
		int e = errno;
		close(fd);
		errno = e;
	}
	return -1;
}

/* cmp_addr - order by address, then by arrival (the later one last) */
static int cmp_addr(const void *a, const void *b)
{
	const struct hm_junk_entry *x = a, *y = b;
	int c = strcmp(x->addr, y->addr);
	if (c != 0)
		return c;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

void hm_junklist_finish(struct hm_junklist *l)
{
	size_t w = 0;

	if (l->sorted)
		return;
	if (l->n > 1)
		qsort(l->v, l->n, sizeof *l->v, cmp_addr);
	for (size_t i = 0; i < l->n; i++) {
		int last = i + 1 == l->n || strcmp(l->v[i].addr, l->v[i + 1].addr) != 0;
		if (!last || l->v[i].kind == HM_JUNK_NONE) {
			if (l->v[i].owned)
				free((char *)l->v[i].addr);
			continue;
		}
		l->v[w++] = l->v[i];
	}
	l->n = w;
	l->sorted = 1;
}

/* find_in - the entry for a normalised address among the first n (sorted) */
static const struct hm_junk_entry *find_in(const struct hm_junklist *l, size_t n,
					   const char *addr)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(addr, l->v[mid].addr);
		if (c == 0)
			return &l->v[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

/* find - the entry for a normalised address, or NULL */
static const struct hm_junk_entry *find(const struct hm_junklist *l, const char *addr)
{
	return find_in(l, l->n, addr);
}

enum hm_junk_kind hm_junklist_lookup(const struct hm_junklist *l, const char *addr,
				     const char **matched_r)
{
	char norm[HM_JUNKLIST_ADDR_MAX + 1];
	const struct hm_junk_entry *e;
	const char *at;

	if (matched_r != NULL)
		*matched_r = NULL;
	if (addr == NULL || !l->sorted ||
	    hm_junk_addr_normalize(addr, strlen(addr), 0, norm, sizeof norm) < 0)
		return HM_JUNK_NONE;
	e = find(l, norm);
	if (e == NULL && (at = strrchr(norm, '@')) != NULL)
		e = find(l, at);
	if (e == NULL)
		return HM_JUNK_NONE;
	if (matched_r != NULL)
		*matched_r = e->addr;
	return (enum hm_junk_kind)e->kind;
}

int hm_junklist_set(struct hm_junklist *l, const char *addr, enum hm_junk_kind kind,
		    int64_t stamp)
{
	char norm[HM_JUNKLIST_ADDR_MAX + 1];
	char *own;

	if (kind != HM_JUNK_NONE && kind != HM_JUNK_BLOCKED && kind != HM_JUNK_TRUSTED) {
		errno = EINVAL;
		return -1;
	}
	if (hm_junk_addr_normalize(addr, strlen(addr), 1, norm, sizeof norm) < 0)
		return -1;
	/* room first, so that the copy goes straight into its slot and is
	 * never held where a failure would have to free it */
	if (grow(l) < 0)
		return -1;
	own = strdup(norm);
	if (own == NULL)
		return -1;
	put(l, own, stamp < 0 ? 0 : stamp, (char)kind, 1);
	return 0;
}

size_t hm_junklist_count(const struct hm_junklist *l, enum hm_junk_kind kind)
{
	size_t c = 0;
	for (size_t i = 0; i < l->n; i++)
		c += l->v[i].kind == (char)kind;
	return c;
}

/* cmp_age - newest first; equal stamps: later arrival first */
static int cmp_age(const void *a, const void *b)
{
	const struct hm_junk_entry *x = *(const struct hm_junk_entry *const *)a;
	const struct hm_junk_entry *y = *(const struct hm_junk_entry *const *)b;
	if (x->stamp != y->stamp)
		return x->stamp > y->stamp ? -1 : 1;
	return x->seq > y->seq ? -1 : x->seq < y->seq;
}

/* trim_kind - drop the oldest entries of one kind beyond max */
static void trim_kind(struct hm_junklist *l, char kind, size_t max)
{
	size_t cnt = hm_junklist_count(l, (enum hm_junk_kind)kind), k = 0, w = 0;
	struct hm_junk_entry **idx;

	if (cnt <= max)
		return;
	idx = calloc(cnt, sizeof(struct hm_junk_entry *));
	if (idx == NULL) {
		/* no memory to sort: drop from the end of the address order
		 * instead — still bounded, just not by age */
		for (size_t i = l->n; i-- > 0 && cnt > max;)
			if (l->v[i].kind == kind) {
				l->v[i].kind = HM_JUNK_NONE;
				cnt--;
			}
		goto compact;
	}
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].kind == kind)
			idx[k++] = &l->v[i];
	qsort(idx, cnt, sizeof(struct hm_junk_entry *), cmp_age);  /* sorts the pointers */
	for (size_t i = max; i < cnt; i++)
		idx[i]->kind = HM_JUNK_NONE;
	free(idx);
compact:
	for (size_t i = 0; i < l->n; i++) {
		if (l->v[i].kind == HM_JUNK_NONE) {
			if (l->v[i].owned)
				free((char *)l->v[i].addr);
			continue;
		}
		l->v[w++] = l->v[i];
	}
	l->n = w;
}

void hm_junklist_trim(struct hm_junklist *l, size_t max)
{
	hm_junklist_finish(l);
	trim_kind(l, HM_JUNK_BLOCKED, max);
	trim_kind(l, HM_JUNK_TRUSTED, max);
}

char *hm_junklist_format(const struct hm_junklist *l, size_t *len_r)
{
	static const char head[] =
		"# homemail junk sender lists, format 1 (docs/junk.md)\n"
		"# B = blocked sender, T = trusted sender; <kind> <unix time> <address>\n";
	size_t cap = sizeof head, off;
	char *out;

	for (size_t i = 0; i < l->n; i++) {
		/* kind, space, up to 20 digits, space, address, LF */
		if (!hm_add_ok(cap, strlen(l->v[i].addr) + 24, &cap)) {
			errno = ENOMEM;
			return NULL;
		}
	}
	/* cap counts sizeof head, NUL included, and at most addr + 24 bytes a
	 * line: a NUL always fits after the text (hm_junklist_update's text_r) */
	out = malloc(cap);
	if (out == NULL)
		return NULL;
	memcpy(out, head, sizeof head - 1);
	off = sizeof head - 1;
	/* blocked list first, then trusted; each in address order */
	for (int pass = 0; pass < 2; pass++) {
		char kind = pass == 0 ? HM_JUNK_BLOCKED : HM_JUNK_TRUSTED;
		for (size_t i = 0; i < l->n; i++) {
			if (l->v[i].kind != kind)
				continue;
			int w = snprintf(out + off, cap - off, "%c %lld %s\n", kind,
					 (long long)l->v[i].stamp, l->v[i].addr);
			if (w < 0 || (size_t)w >= cap - off) {
				free(out);
				errno = EOVERFLOW;
				return NULL;
			}
			off += (size_t)w;
		}
	}
	*len_r = off;
	return out;
}

/* lock_dir - open and flock the lock file, waiting up to wait_ms.
 * Returns the fd, or -1 and errno (ETIMEDOUT when busy). */
static int lock_dir(const char *dir, int wait_ms)
{
	char path[PATH_MAX];
	struct timespec start, now, nap = { 0, 5 * 1000 * 1000 };
	int fd;

	if (hm_snprintf(path, sizeof path, "%s/%s", dir, HM_JUNKLIST_LOCK) < 0)
		return -1;
	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0600);
	if (fd < 0)
		return -1;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return fd;
		if (errno != EWOULDBLOCK && errno != EINTR) {
			int e = errno;
			close(fd);
			errno = e;
			return -1;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		long long ms = (long long)(now.tv_sec - start.tv_sec) * 1000 +
			       (now.tv_nsec - start.tv_nsec) / 1000000;
		if (ms >= wait_ms) {
			close(fd);
			errno = ETIMEDOUT;
			return -1;
		}
		nanosleep(&nap, NULL);
		if (nap.tv_nsec < 40 * 1000 * 1000)
			nap.tv_nsec *= 2;
	}
}

/* replace_file - write data to the temp file and rename it over the list */
static int replace_file(const char *dir, const char *data, size_t len, int no_fsync)
{
	char tmp[PATH_MAX], dst[PATH_MAX];
	int fd, dfd;

	if (hm_snprintf(tmp, sizeof tmp, "%s/%s", dir, HM_JUNKLIST_TMP) < 0 ||
	    hm_snprintf(dst, sizeof dst, "%s/%s", dir, HM_JUNKLIST_FILE) < 0)
		return -1;
	/* we hold the lock: any temp file left is from a writer that died */
	if (unlink(tmp) < 0 && errno != ENOENT)
		return -1;
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	if (hm_write_full(fd, data, len) < 0 || (!no_fsync && fsync(fd) < 0)) {
		int e = errno;
		close(fd);
		unlink(tmp);
		errno = e;
		return -1;
	}
	if (close(fd) < 0 || rename(tmp, dst) < 0) {
		int e = errno;
		unlink(tmp);
		errno = e;
		return -1;
	}
	if (!no_fsync) {
		dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0)
			return -1;
		if (fsync(dfd) < 0 && errno != EINVAL) {
			int e = errno;
			close(dfd);
			errno = e;
			return -1;
		}
		close(dfd);
	}
	return 0;
}

/* apply_fn - the change a locked update makes to the loaded (finished,
 * clamped, trimmed) list; sets *write_r to 0 when the file needs no
 * rewrite.  Returns 0, or -1 and errno. */
typedef int apply_fn(struct hm_junklist *l, int64_t now, void *ctx, size_t *count_r,
		     int *write_r);

/* locked_update - lock, load, apply, trim, replace the file, unlock */
static int locked_update(const char *dir, const struct hm_junklist_opts *o,
			 apply_fn *apply, void *ctx, size_t *count_r)
{
	struct hm_junklist l;
	size_t max = HM_JUNKLIST_DEFAULT_MAX, count = 0, len;
	int wait_ms = HM_JUNKLIST_LOCK_WAIT_MS, no_fsync = 0, write = 1;
	int64_t now = 0;
	char *text = NULL;
	int lfd, ret = -1, e;

	if (o != NULL) {
		if (o->max_per_kind > 0)
			max = o->max_per_kind;
		if (o->lock_wait_ms > 0)
			wait_ms = o->lock_wait_ms;
		now = o->now;
		no_fsync = o->no_fsync;
		if (o->text_r != NULL)
			*o->text_r = NULL;
		if (o->text_len_r != NULL)
			*o->text_len_r = 0;
	}
	if (max > HM_JUNKLIST_HARD_MAX)
		max = HM_JUNKLIST_HARD_MAX;
	if (now <= 0)
		now = (int64_t)time(NULL);

	lfd = lock_dir(dir, wait_ms);
	if (lfd < 0)
		return -1;
	hm_junklist_init(&l);
	if (hm_junklist_load(&l, dir) < 0)
		goto out;
	/* a stamp in the future would never age out: clamp it */
	for (size_t i = 0; i < l.n; i++)
		if (l.v[i].stamp > now)
			l.v[i].stamp = now;
	/* make room first, so a full (or oversized) file still takes changes */
	hm_junklist_trim(&l, max);
	if (apply(&l, now, ctx, &count, &write) < 0)
		goto out;
	if (!write) {
		ret = 0;
		goto out;
	}
	hm_junklist_trim(&l, max);
	text = hm_junklist_format(&l, &len);
	if (text == NULL)
		goto out;
	ret = replace_file(dir, text, len, no_fsync);
	if (ret == 0 && o != NULL && o->text_r != NULL) {
		text[len] = '\0';       /* format leaves room for it */
		*o->text_r = text;
		if (o->text_len_r != NULL)
			*o->text_len_r = len;
		text = NULL;
	}
out:
	e = errno;
	free(text);
	hm_junklist_free(&l);
	close(lfd);                             /* releases the flock */
	if (count_r != NULL)
		*count_r = count;
	errno = e;
	return ret;
}

struct update_ctx {
	const struct hm_junk_change *c;
	size_t n;
};

/* apply_changes - the taught changes, in order, as of now */
static int apply_changes(struct hm_junklist *l, int64_t now, void *ctx, size_t *skipped_r,
			 int *write_r)
{
	const struct update_ctx *u = ctx;

	*write_r = 1;
	for (size_t i = 0; i < u->n; i++) {
		const struct hm_junk_change *c = &u->c[i];
		if (c->addr == NULL || hm_junklist_set(l, c->addr, c->kind, now) < 0) {
			if (c->addr != NULL && errno != EINVAL && errno != EOVERFLOW)
				return -1;
			(*skipped_r)++;
		}
	}
	return 0;
}

int hm_junklist_update(const char *dir, const struct hm_junk_change *c, size_t n,
		       const struct hm_junklist_opts *o, size_t *skipped_r)
{
	struct update_ctx u = { .c = c, .n = n };
	return locked_update(dir, o, apply_changes, &u, skipped_r);
}

/* apply_merge - take each entry of the other copy that is newer */
static int apply_merge(struct hm_junklist *l, int64_t now, void *ctx, size_t *taken_r,
		       int *write_r)
{
	const struct hm_junklist *r = ctx;
	size_t n0 = l->n;       /* l is finished: its first n0 entries are sorted */

	for (size_t i = 0; i < r->n; i++) {
		const struct hm_junk_entry *re = &r->v[i];
		int64_t stamp = re->stamp > now ? now : re->stamp;
		const struct hm_junk_entry *le = find_in(l, n0, re->addr);

		if (le != NULL && (le->stamp > stamp ||
				   (le->stamp == stamp && (le->kind == re->kind ||
							   le->kind == HM_JUNK_TRUSTED))))
			continue;
		/* set() appends behind the sorted part; find_in never looks there */
		if (hm_junklist_set(l, re->addr, (enum hm_junk_kind)re->kind, stamp) < 0) {
			if (errno != EINVAL && errno != EOVERFLOW)
				return -1;
			continue;
		}
		(*taken_r)++;
	}
	*write_r = *taken_r > 0;
	return 0;
}

int hm_junklist_merge(const char *dir, const char *data, size_t len,
		      const struct hm_junklist_opts *o, size_t *taken_r)
{
	struct hm_junklist r;
	char *copy;
	int ret, e;

	if (taken_r != NULL)
		*taken_r = 0;
	if (o != NULL && o->text_r != NULL)
		*o->text_r = NULL;
	if (data == NULL) {
		errno = EINVAL;
		return -1;
	}
	if (len > HM_JUNKLIST_FILE_MAX) {
		errno = EFBIG;
		return -1;
	}
	copy = malloc(len + 1);                 /* parse takes ownership */
	if (copy == NULL)
		return -1;
	memcpy(copy, data, len);
	hm_junklist_init(&r);
	if (hm_junklist_parse(&r, copy, len) < 0) {
		e = errno;
		hm_junklist_free(&r);
		errno = e;
		return -1;
	}
	ret = locked_update(dir, o, apply_merge, &r, taken_r);
	e = errno;
	hm_junklist_free(&r);
	errno = e;
	return ret;
}
