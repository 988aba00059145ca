/* hm_quota.c — Maildir++ quota, compatible with Dovecot's quota=maildir (see hm_quota.h).
 *
 * Relies on: the Maildir root fd; *at() calls with O_NOFOLLOW.
 * How it fails: -1 and errno for I/O errors on maildirsize or while
 *   recounting; a corrupt file is never an error, it is recalculated.
 */
#define _GNU_SOURCE 1
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hm_quota.h"
#include "hm_util.h"

#define LIMIT_MAX ((1ULL << 63) - 1)

/* parse_size - "N[unit]" with default multiplier; false on garbage/overflow */
static bool parse_size(const char *s, unsigned long long mult,
		       unsigned long long *value_r)
{
	char *end;
	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno != 0)
		return false;
	if (*end != '\0') {
		switch (*end) {
		case 'b': case 'B': mult = 1; break;
		case 'k': case 'K': mult = 1024ULL; break;
		case 'm': case 'M': mult = 1024ULL * 1024; break;
		case 'g': case 'G': mult = 1024ULL * 1024 * 1024; break;
		case 't': case 'T': mult = 1024ULL * 1024 * 1024 * 1024; break;
		default: return false;
		}
		if (end[1] != '\0' && !(end[1] == 'B' && end[2] == '\0'))
			return false;
	}
	if (__builtin_mul_overflow(v, mult, value_r))
		return false;
	if (*value_r > LIMIT_MAX)
		*value_r = LIMIT_MAX;
	return true;
}

/* hm_quota_parse_limits - see hm_quota.h */
bool hm_quota_parse_limits(const char *line, unsigned long long *bytes_r,
			   unsigned long long *count_r)
{
	bool ok = true;
	*bytes_r = *count_r = 0;
	const char *p = line;
	while (*p) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		char part[32];
		char *end;
		if (n == 0 || n >= sizeof part) {
			ok = false;
		} else {
			memcpy(part, p, n);
			part[n] = '\0';
			errno = 0;
			unsigned long long v = strtoull(part, &end, 10);
			if (errno || end == part || end[0] == '\0' || end[1] != '\0')
				ok = false;
			else if (end[0] == 'S')
				*bytes_r = v > LIMIT_MAX ? LIMIT_MAX : v;
			else if (end[0] == 'C')
				*count_r = v > LIMIT_MAX ? LIMIT_MAX : v;
			else
				ok = false;
		}
		p += n;
		if (*p == ',')
			p++;
	}
	return ok;
}

/* hm_quota_parse_rule - see hm_quota.h */
int hm_quota_parse_rule(const char *rule, struct hm_quota_rule *r)
{
	memset(r, 0, sizeof *r);
	if (rule == NULL || strlen(rule) > 1024)
		goto bad;
	if (strncmp(rule, "*:", 2) == 0)
		r->forced = true;
	else if (strncmp(rule, "?:", 2) != 0)
		goto bad;
	char copy[1025];
	strcpy(copy, rule + 2);
	char *save = NULL;
	for (char *tok = strtok_r(copy, ":", &save); tok; tok = strtok_r(NULL, ":", &save)) {
		char *eq = strchr(tok, '=');
		if (eq == NULL) {
			if (strcasecmp(tok, "ignore") == 0 || strcasecmp(tok, "noenforcing") == 0) {
				r->bytes_limit = r->count_limit = 0;
				continue;
			}
			goto bad;
		}
		*eq++ = '\0';
		if (strcasecmp(tok, "storage") == 0) {
			if (!parse_size(eq, 1024, &r->bytes_limit))
				goto bad;
		} else if (strcasecmp(tok, "bytes") == 0) {
			if (!parse_size(eq, 1, &r->bytes_limit))
				goto bad;
		} else if (strcasecmp(tok, "messages") == 0) {
			if (!parse_size(eq, 1, &r->count_limit))
				goto bad;
		} else if (strcasecmp(tok, "backend") == 0) {
			if (!hm_quota_parse_limits(eq, &r->bytes_limit, &r->count_limit))
				goto bad;
		} else {
			goto bad;
		}
	}
	return 0;
bad:
	errno = EINVAL;
	return -1;
}

/* open_dir - a directory stream on parent/sub, opened with O_DIRECTORY |
 * O_CLOEXEC | flags.  NULL and errno set on failure (nothing left open) */
static DIR *open_dir(int parent, const char *sub, int flags)
{
	int fd = openat(parent, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC | flags);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);

	if (d == NULL && fd >= 0) {
		int e = errno;
		close(fd);
		errno = e;
	}
	return d;
}

/* sum_dir - add the messages of parent/sub to the totals (,S= or stat size) */
static int sum_dir(int parent, const char *sub, unsigned long long *bytes,
		   unsigned long long *count, time_t *mtime_r)
{
	DIR *d = open_dir(parent, sub, O_NOFOLLOW);
	if (d == NULL)
		return (errno == ENOENT || errno == ENOTDIR || errno == ELOOP) ? 0 : -1;
	int fd = dirfd(d);
	struct stat st;
	if (fstat(fd, &st) == 0 && st.st_mtime > *mtime_r)
		*mtime_r = st.st_mtime;
	struct dirent *e;
	int rc = 0;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		const char *s = strstr(e->d_name, ",S=");
		if (s != NULL) {
			char *end;
			unsigned long long v = strtoull(s + 3, &end, 10);
			if (end > s + 3 && (*end == '\0' || *end == ':' || *end == ',')) {
				*bytes += v;
				*count += 1;
				continue;
			}
		}
		if (fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
			*bytes += (unsigned long long)st.st_size;
			*count += 1;
		} else if (errno != ENOENT) {
			rc = -1;
		}
	}
	closedir(d);
	return rc;
}

/* scan_all - bytes, messages and newest mtime of new/ and cur/ of INBOX and
 * every folder */
static int scan_all(int root_fd, unsigned long long *bytes_r, unsigned long long *count_r,
		    time_t *mtime_r)
{
	*bytes_r = *count_r = 0;
	*mtime_r = 0;
	if (sum_dir(root_fd, "new", bytes_r, count_r, mtime_r) < 0 ||
	    sum_dir(root_fd, "cur", bytes_r, count_r, mtime_r) < 0)
		return -1;
	DIR *d = open_dir(root_fd, ".", 0);
	if (d == NULL)
		return -1;
	struct dirent *e;
	int rc = 0;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] != '.' || strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		int ffd = openat(root_fd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (ffd < 0)
			continue;   /* not a folder (a file, a symlink): not counted */
		if (sum_dir(ffd, "new", bytes_r, count_r, mtime_r) < 0 ||
		    sum_dir(ffd, "cur", bytes_r, count_r, mtime_r) < 0)
			rc = -1;
		close(ffd);
	}
	closedir(d);
	return rc;
}

/* write_file - maildirsize with the limits and one usage line, via rename */
static int write_file(int root_fd, const struct hm_quota *q)
{
	char tmp[96], body[128];
	int n = 0;
	if (hm_snprintf(tmp, sizeof tmp, "maildirsize.tmp.%ld.%ld", (long)getpid(), (long)random()) < 0)
		return -1;
	/* no limits at all: "0S" rather than an empty line, as Dovecot writes */
	if (q->bytes_limit != 0 || q->count_limit == 0)
		n += snprintf(body + n, sizeof body - (size_t)n, "%lluS", q->bytes_limit);
	if (q->count_limit != 0)
		n += snprintf(body + n, sizeof body - (size_t)n, "%s%lluC", n ? "," : "", q->count_limit);
	n += snprintf(body + n, sizeof body - (size_t)n, "\n%llu %llu\n", q->bytes, q->count);
	int fd = openat(root_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	if (hm_write_full(fd, body, (size_t)n) < 0 || close(fd) < 0) {
		int e = errno;
		close(fd);
		unlinkat(root_fd, tmp, 0);
		errno = e;
		return -1;
	}
	if (renameat(root_fd, tmp, root_fd, "maildirsize") < 0) {
		int e = errno;
		unlinkat(root_fd, tmp, 0);
		errno = e;
		return -1;
	}
	return 0;
}

/* hm_quota_recalc - see hm_quota.h */
int hm_quota_recalc(int root_fd, struct hm_quota *q)
{
	time_t stamp, stamp2;
	unsigned long long b2, c2;
	if (scan_all(root_fd, &q->bytes, &q->count, &stamp) < 0)
		return -1;
	q->recalculated = true;
	/* a directory changed while we counted: use the numbers, don't write them */
	if (scan_all(root_fd, &b2, &c2, &stamp2) == 0 && stamp2 > stamp)
		return 0;
	return write_file(root_fd, q);
}

/* read_file - parse maildirsize; returns 1 usable, 0 needs recalculation, -1 I/O error */
static int read_file(int root_fd, const struct hm_quota_rule *rule, time_t now,
		     struct hm_quota *q)
{
	char buf[HM_QUOTA_MAX_FILE + 1];
	struct stat st;
	int fd = openat(root_fd, "maildirsize", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	ssize_t r = hm_read_full(fd, buf, HM_QUOTA_MAX_FILE);
	int fe = fstat(fd, &st);
	close(fd);
	if (r < 0 || fe < 0)
		return -1;
	size_t size = (size_t)r;
	/* grown too long: rebuild, but (like Dovecot) still take its limits */
	bool too_long = size >= HM_QUOTA_MAX_FILE;
	if (memchr(buf, '\0', size) != NULL)
		return 0;
	while (size > 0 && buf[size - 1] != '\n')
		size--;                     /* ignore an unterminated last line */
	if (size == 0)
		return 0;
	buf[size - 1] = '\0';

	char *save = NULL, *line = strtok_r(buf, "\n", &save);
	unsigned long long fb = 0, fc = 0;
	(void)hm_quota_parse_limits(line ? line : "", &fb, &fc);
	if (rule != NULL && rule->forced) {
		if (fb != q->bytes_limit || fc != q->count_limit)
			return 0;           /* limits changed: rebuild with ours */
	} else {
		q->bytes_limit = fb;
		q->count_limit = fc;
	}
	if (too_long)
		return 0;
	long long tb = 0, tc = 0;
	unsigned lines = 0;
	for (line = strtok_r(NULL, "\n", &save); line; line = strtok_r(NULL, "\n", &save), lines++) {
		long long b;
		int c;
		if (sscanf(line, "%lld %d", &b, &c) != 2)
			return 0;
		if (__builtin_add_overflow(tb, b, &tb) || __builtin_add_overflow(tc, (long long)c, &tc))
			return 0;
	}
	if (lines == 0 || tb < 0 || tc < 0)
		return 0;
	q->bytes = (unsigned long long)tb;
	q->count = (unsigned long long)tc;
	if ((q->bytes_limit && q->bytes > q->bytes_limit) ||
	    (q->count_limit && q->count > q->count_limit)) {
		/* over quota: trust only a fresh file with one usage line */
		if (lines > 1 || st.st_mtime < now - HM_QUOTA_STALE_SECS)
			return 0;
	}
	return 1;
}

/* hm_quota_load - see hm_quota.h */
int hm_quota_load(int root_fd, const struct hm_quota_rule *rule, time_t now,
		  struct hm_quota *q)
{
	memset(q, 0, sizeof *q);
	if (rule != NULL) {
		q->bytes_limit = rule->bytes_limit;
		q->count_limit = rule->count_limit;
	}
	int r = read_file(root_fd, rule, now, q);
	if (r < 0)
		return -1;
	if (r > 0) {
		q->active = q->bytes_limit || q->count_limit || (rule && rule->forced);
		return 0;
	}
	if (rule == NULL || !rule->forced) {
		/* no forced rule: the (unusable) file's limits or the "?" rule's */
		if (rule != NULL && q->bytes_limit == 0 && q->count_limit == 0) {
			q->bytes_limit = rule->bytes_limit;
			q->count_limit = rule->count_limit;
		}
		if (q->bytes_limit == 0 && q->count_limit == 0)
			return 0;   /* no quota at all */
	}
	q->active = true;
	return hm_quota_recalc(root_fd, q);
}

/* hm_quota_exceeded - see hm_quota.h */
bool hm_quota_exceeded(const struct hm_quota *q, unsigned long long bytes,
		       unsigned long long count)
{
	if (!q->active)
		return false;
	if (q->bytes_limit && (q->bytes + bytes > q->bytes_limit || q->bytes + bytes < q->bytes))
		return true;
	if (q->count_limit && q->count + count > q->count_limit)
		return true;
	return false;
}

/* hm_quota_add - see hm_quota.h */
int hm_quota_add(int root_fd, struct hm_quota *q, long long bytes, long long count)
{
	char line[64];
	if (!q->active || (bytes == 0 && count == 0))
		return 0;
	q->bytes += (unsigned long long)bytes;
	q->count += (unsigned long long)count;
	int fd = openat(root_fd, "maildirsize", O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;   /* gone: the next reader rebuilds it */
	int n = snprintf(line, sizeof line, "%lld %lld\n", bytes, count);
	int rc = hm_write_full(fd, line, (size_t)n);
	if (close(fd) < 0)
		rc = -1;
	return rc;
}
