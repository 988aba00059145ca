/* hm_maildir.c — Maildir++ writer: spool once, link into folders (see hm_maildir.h).
 *
 * What for: homemail-deliver's only way into a mailbox; anything else that
 *   must drop a message into a Maildir uses it too.
 * Relies on: POSIX *at() calls on one file system, hm_mutf7 for folder names.
 * How it fails: -1 with errno from the failing system call (the caller sorts
 *   ENOSPC/EDQUOT/EIO into "try again later"); EINVAL for names we refuse.
 *   Partial files only ever exist in tmp/, never in new/ or cur/.
 */
#define _GNU_SOURCE 1
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "hm_buf.h"
#include "hm_maildir.h"
#include "hm_mutf7.h"
#include "hm_util.h"

#define DIR_FLAGS (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
#define LOCK_STALE_SECS 120
#define LOCK_WAIT_MS 10000

/* close_fd - close if open, keep errno, mark closed */
static void close_fd(int *fd)
{
	if (*fd >= 0) {
		int e = errno;
		close(*fd);
		errno = e;
		*fd = -1;
	}
}

/* mkdir_p - mkdir path and missing parents (0700), at most 16 levels */
static int mkdir_p(const char *path, int depth)
{
	if (mkdir(path, 0700) == 0 || errno == EEXIST)
		return 0;
	if (errno != ENOENT || depth > 16)
		return -1;
	char *parent = strdup(path);
	if (parent == NULL)
		return -1;
	char *slash = strrchr(parent, '/');
	while (slash != NULL && slash > parent && slash[1] == '\0') {
		*slash = '\0';
		slash = strrchr(parent, '/');
	}
	int rc = -1;
	if (slash != NULL && slash != parent) {
		*slash = '\0';
		if (mkdir_p(parent, depth + 1) == 0)
			rc = (mkdir(path, 0700) == 0 || errno == EEXIST) ? 0 : -1;
	} else {
		errno = ENOENT;
	}
	free(parent);
	return rc;
}

/* open_subdir - open (creating if asked) dir/name without following symlinks */
static int open_subdir(int dirfd, const char *name, bool create, bool *created_r)
{
	if (created_r)
		*created_r = false;
	int fd = openat(dirfd, name, DIR_FLAGS);   /* the common case: it exists */
	if (fd >= 0 || errno != ENOENT || !create)
		return fd;
	if (mkdirat(dirfd, name, 0700) == 0) {
		if (created_r)
			*created_r = true;
	} else if (errno != EEXIST) {
		return -1;
	}
	return openat(dirfd, name, DIR_FLAGS);
}

/* escape_host - hostname with '/', ':' and ',' escaped as Dovecot does */
static void escape_host(char *dst, size_t size)
{
	char h[256];
	size_t o = 0;
	if (gethostname(h, sizeof h) < 0 || h[0] == '\0')
		strcpy(h, "localhost");
	h[sizeof h - 1] = '\0';
	for (const char *p = h; *p && o + 5 < size; p++) {
		if (*p == '/' || *p == ':' || *p == ',' || (unsigned char)*p < 0x21 || *p == 0x7f) {
			o += (size_t)snprintf(dst + o, size - o, "\\%03o", (unsigned char)*p);
		} else {
			dst[o++] = *p;
		}
	}
	dst[o] = '\0';
}

/* hm_maildir_open - see hm_maildir.h */
int hm_maildir_open(struct hm_maildir *md, const char *path, bool create)
{
	static const char *const sub[] = { "cur", "new", "tmp" };
	memset(md, 0, sizeof *md);
	md->root_fd = md->tmp_fd = md->new_fd = md->cur_fd = -1;
	if (path == NULL || *path == '\0') {
		errno = EINVAL;
		return -1;
	}
	if ((md->root = strdup(path)) == NULL)
		return -1;
	md->root_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (md->root_fd < 0 && errno == ENOENT && create) {
		if (mkdir_p(path, 0) < 0)
			goto fail;
		md->root_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	if (md->root_fd < 0)
		goto fail;
	/* kept open: INBOX stores go through them (no second openat each) */
	int *const fds[] = { &md->cur_fd, &md->new_fd, &md->tmp_fd };
	for (size_t i = 0; i < HM_ARRAY_SIZE(sub); i++)
		if ((*fds[i] = open_subdir(md->root_fd, sub[i], create, NULL)) < 0)
			goto fail;
	escape_host(md->host, sizeof md->host);
	md->pid = (long)getpid();
	return 0;
fail:
	hm_maildir_close(md);
	return -1;
}

/* hm_maildir_close - release the fds */
void hm_maildir_close(struct hm_maildir *md)
{
	close_fd(&md->root_fd);
	close_fd(&md->tmp_fd);
	close_fd(&md->new_fd);
	close_fd(&md->cur_fd);
	free(md->root);
	md->root = NULL;
}

/* hm_maildir_unique - see hm_maildir.h */
int hm_maildir_unique(struct hm_maildir *md, char *buf, size_t size)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return hm_snprintf(buf, size, "%lld.M%ldP%ldQ%u.%s", (long long)tv.tv_sec,
			   (long)tv.tv_usec, md->pid, ++md->seq, md->host);
}

/* hm_maildir_folder_dir - see hm_maildir.h */
int hm_maildir_folder_dir(const char *folder, char *dir, size_t size)
{
	if (folder == NULL || *folder == '\0' || size < 2) {
		errno = EINVAL;
		return -1;
	}
	if (strcasecmp(folder, "INBOX") == 0)
		return hm_strlcpy(dir, ".", size);
	/* every name Dovecot's Maildir++ layout refuses (checked against
	 * dovecot-lda 2.3.19: mailbox_list_is_valid_name / mailbox_verify_name):
	 * '/' anywhere, '~' first (a home path to Dovecot: it would create
	 * ".~x" and then fail to sync it), empty levels; and control bytes
	 * (Dovecot refuses them in new names), invalid UTF-8 (below) */
	size_t len = strlen(folder);
	if (len > 200 || folder[0] == '.' || folder[0] == '~' || folder[len - 1] == '.' ||
	    strstr(folder, "..") != NULL || strchr(folder, '/') != NULL) {
		errno = EINVAL;
		return -1;
	}
	for (const unsigned char *p = (const unsigned char *)folder; *p; p++)
		if (*p < 0x20 || *p == 0x7f) {
			errno = EINVAL;
			return -1;
		}
	char *enc = NULL;
	if (hm_mutf7_encode(folder, size - 2, &enc) < 0) {
		errno = EINVAL;
		return -1;
	}
	int rc = hm_snprintf(dir, size, ".%s", enc);
	free(enc);
	if (rc < 0)
		errno = EINVAL;
	return rc;
}

/* hm_maildir_folder_close - see hm_maildir.h (INBOX's fds are md's) */
void hm_maildir_folder_close(struct hm_mfolder *f)
{
	if (f->is_inbox) {
		f->fd = f->tmp_fd = f->new_fd = f->cur_fd = -1;
		return;
	}
	close_fd(&f->fd);
	close_fd(&f->tmp_fd);
	close_fd(&f->new_fd);
	close_fd(&f->cur_fd);
}

/* hm_maildir_folder_open - see hm_maildir.h */
int hm_maildir_folder_open(struct hm_maildir *md, const char *folder, bool create,
			   struct hm_mfolder *f)
{
	bool created = false, c2;
	memset(f, 0, sizeof *f);
	f->fd = f->tmp_fd = f->new_fd = f->cur_fd = -1;
	if (hm_maildir_folder_dir(folder, f->dir, sizeof f->dir) < 0)
		return -1;
	if (strcmp(f->dir, ".") == 0) {
		/* INBOX is the root, whose directories hm_maildir_open opened */
		if (md->root_fd < 0 || md->tmp_fd < 0 || md->new_fd < 0 || md->cur_fd < 0) {
			errno = EBADF;
			return -1;
		}
		f->is_inbox = true;
		f->fd = md->root_fd;
		f->tmp_fd = md->tmp_fd;
		f->new_fd = md->new_fd;
		f->cur_fd = md->cur_fd;
		return 0;
	}
	f->fd = open_subdir(md->root_fd, f->dir, create, &created);
	if (f->fd < 0)
		goto fail;
	bool any = created;
	if ((f->tmp_fd = open_subdir(f->fd, "tmp", create, &c2)) < 0)
		goto fail;
	any |= c2;
	if ((f->new_fd = open_subdir(f->fd, "new", create, &c2)) < 0)
		goto fail;
	any |= c2;
	if ((f->cur_fd = open_subdir(f->fd, "cur", create, &c2)) < 0)
		goto fail;
	any |= c2;
	if (create) {
		int mf = openat(f->fd, "maildirfolder", O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (mf < 0)
			goto fail;
		close(mf);
	}
	if (any) {
		/* a new folder must survive a crash like the message in it */
		if (fsync(f->fd) < 0 || (created && fsync(md->root_fd) < 0))
			goto fail;
	}
	return 0;
fail:
	hm_maildir_folder_close(f);
	return -1;
}

/* hm_maildir_spool_create - see hm_maildir.h */
int hm_maildir_spool_create(struct hm_maildir *md, struct hm_spool *sp)
{
	memset(sp, 0, sizeof *sp);
	sp->fd = -1;
	for (int i = 0; i < 100; i++) {
		if (hm_maildir_unique(md, sp->name, sizeof sp->name) < 0)
			return -1;
		sp->fd = openat(md->tmp_fd, sp->name,
				O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (sp->fd >= 0 || errno != EEXIST)
			break;
	}
	return sp->fd >= 0 ? 0 : -1;
}

/* hm_maildir_spool_sync - see hm_maildir.h */
int hm_maildir_spool_sync(struct hm_spool *sp)
{
	return fsync(sp->fd);
}

/* hm_maildir_spool_discard - see hm_maildir.h */
void hm_maildir_spool_discard(struct hm_maildir *md, struct hm_spool *sp)
{
	close_fd(&sp->fd);
	if (sp->name[0] != '\0') {
		int e = errno;
		(void)unlinkat(md->tmp_fd, sp->name, 0);
		errno = e;
		sp->name[0] = '\0';
	}
}

/* is_stale - a tmp/ entry a dead writer left: a regular file of ours with
 * atime, mtime and ctime all before limit */
static bool is_stale(const struct stat *st, time_t limit)
{
	return S_ISREG(st->st_mode) && st->st_uid == geteuid() &&
	       st->st_atime < limit && st->st_mtime < limit && st->st_ctime < limit;
}

/* hm_maildir_tmp_clean - see hm_maildir.h */
int hm_maildir_tmp_clean(int tmp_fd, time_t now, struct hm_tmpclean *st_r)
{
	struct hm_tmpclean dummy = { 0 }, *st = st_r ? st_r : &dummy;
	/* getdents64 wants an 8-byte aligned buffer; 8 KiB holds ~100 names */
	union { struct dirent64 d; char b[8192]; } buf;
	struct stat ds, fs;
	const time_t limit = now - HM_MAILDIR_TMP_STALE_SECS;

	memset(st, 0, sizeof *st);
	if (fstat(tmp_fd, &ds) < 0)
		return -1;
	if (!S_ISDIR(ds.st_mode)) {
		errno = ENOTDIR;
		return -1;
	}
	/* the stamp: tmp/'s atime is when it was last listed (by us, by Dovecot,
	 * by anyone); a tmp/ listed within 8 hours is not read again */
	if (ds.st_atime >= now - HM_MAILDIR_TMP_SCAN_SECS)
		return 0;
	if (lseek(tmp_fd, 0, SEEK_SET) < 0)
		return -1;
	st->scanned = true;
	for (;;) {
		ssize_t n = getdents64(tmp_fd, buf.b, sizeof buf.b);
		if (n < 0)
			return -1;
		if (n == 0) {
			st->complete = true;
			break;
		}
		for (size_t off = 0; off < (size_t)n;) {
			const struct dirent64 *d = (const struct dirent64 *)(const void *)(buf.b + off);
			off += d->d_reclen;
			if (d->d_reclen == 0)
				break;          /* never from the kernel; do not loop on it */
			const char *name = d->d_name;
			if (name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0')))
				continue;
			if (st->examined >= HM_MAILDIR_TMP_SCAN_MAX ||
			    st->removed >= HM_MAILDIR_TMP_REMOVE_MAX)
				goto cut;
			st->examined++;
			/* d_type saves the fstatat for directories, symlinks, fifos */
			if (d->d_type != DT_REG && d->d_type != DT_UNKNOWN)
				continue;
			if (fstatat(tmp_fd, name, &fs, AT_SYMLINK_NOFOLLOW) < 0 || !is_stale(&fs, limit))
				continue;
			/* by name, as Dovecot and qmail do: Maildir writers create tmp/
			 * names with O_EXCL, unique by time and pid, and never reuse
			 * one, so a name found stale still names that stale file */
			if (unlinkat(tmp_fd, name, 0) == 0)
				st->removed++;
			else if (errno != ENOENT)
				st->failed++;
		}
	}
cut:
	/* Set the stamp when the mount did not (noatime), so the next scan is 8
	 * hours away -- unless a cut-short scan was making progress: then keep
	 * the old atime so the next delivery goes on with the rest. */
	{
		bool again = !st->complete && st->removed > 0;
		struct stat as;
		if (fstat(tmp_fd, &as) == 0) {
			if (again && as.st_atime != ds.st_atime) {
				struct timespec ts[2] = { ds.st_atim, { .tv_nsec = UTIME_OMIT } };
				(void)futimens(tmp_fd, ts);
			} else if (!again && as.st_atime < now - HM_MAILDIR_TMP_SCAN_SECS) {
				struct timespec ts[2] = { { .tv_nsec = UTIME_NOW }, { .tv_nsec = UTIME_OMIT } };
				(void)futimens(tmp_fd, ts);
			}
		}
	}
	return 0;
}

/* sort_flags - ASCII-sorted, de-duplicated copy of the valid letters of in */
static void sort_flags(const char *in, char *dst)
{
	bool seen[128] = { false };
	size_t o = 0;
	for (const char *p = in ? in : ""; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if ((c == 'D' || c == 'F' || c == 'P' || c == 'R' || c == 'S' || c == 'T') ||
		    (c >= 'a' && c <= 'z'))
			seen[c] = true;
	}
	for (int c = 0; c < 128; c++)
		if (seen[c])
			dst[o++] = (char)c;
	dst[o] = '\0';
}

/* copy_into - fallback when no hard link is possible: copy through f's tmp/ */
static int copy_into(struct hm_maildir *md, struct hm_mfolder *f, const struct hm_spool *sp,
		     int dirfd, const char *name)
{
	char tmpname[HM_MAILDIR_NAME_MAX], buf[65536];
	if (hm_maildir_unique(md, tmpname, sizeof tmpname) < 0)
		return -1;
	int out = openat(f->tmp_fd, tmpname, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0)
		return -1;
	off_t off = 0;
	for (;;) {
		ssize_t r = pread(sp->fd, buf, sizeof buf, off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 || (r > 0 && hm_write_full(out, buf, (size_t)r) < 0))
			goto fail;
		if (r == 0)
			break;
		off += r;
	}
	if (fsync(out) < 0 || close(out) < 0) {
		out = -1;
		goto fail;
	}
	out = -1;
	if (renameat2(f->tmp_fd, tmpname, dirfd, name, RENAME_NOREPLACE) < 0 &&
	    (errno != EINVAL || renameat(f->tmp_fd, tmpname, dirfd, name) < 0))
		goto fail;
	return 0;
fail:
	close_fd(&out);
	int e = errno;
	(void)unlinkat(f->tmp_fd, tmpname, 0);
	errno = e;
	return -1;
}

/* hm_maildir_stored_in - see hm_maildir.h */
const char *hm_maildir_stored_in(const char *name)
{
	const char *info = strrchr(name, ':');
	return info != NULL && strncmp(info, ":2,", 3) == 0 ? "cur" : "new";
}

/* hm_maildir_store - see hm_maildir.h */
int hm_maildir_store(struct hm_maildir *md, struct hm_mfolder *f, const struct hm_spool *sp,
		     const char *flags, char *name_r, size_t name_size)
{
	char fl[64], base[HM_MAILDIR_NAME_MAX], name[HM_MAILDIR_NAME_MAX + 64];
	struct stat st;

	if (sp->fd < 0 || sp->name[0] == '\0') {
		errno = EINVAL;
		return -1;
	}
	/* S= must be the real size or Dovecot fails to read the message */
	if (fstat(sp->fd, &st) < 0)
		return -1;
	if ((unsigned long long)st.st_size != sp->size) {
		errno = EIO;
		return -1;
	}
	sort_flags(flags, fl);
	int dirfd = fl[0] ? f->cur_fd : f->new_fd;
	for (int attempt = 0;; attempt++) {
		if (hm_maildir_unique(md, base, sizeof base) < 0)
			return -1;
		if (hm_snprintf(name, sizeof name, "%s,S=%llu,W=%llu%s%s", base, sp->size, sp->vsize,
				fl[0] ? ":2," : "", fl) < 0)
			return -1;
		if (linkat(md->tmp_fd, sp->name, dirfd, name, 0) == 0)
			break;
		if (errno == EEXIST && attempt < 100)
			continue;
		if (errno == EXDEV || errno == EPERM || errno == EMLINK || errno == ENOTSUP) {
			if (copy_into(md, f, sp, dirfd, name) == 0)
				break;
			if (errno == EEXIST && attempt < 100)
				continue;
		}
		return -1;
	}
	if (fsync(dirfd) < 0) {
		int e = errno;
		(void)unlinkat(dirfd, name, 0);   /* not durable: do not claim it */
		errno = e;
		return -1;
	}
	if (name_r != NULL && hm_strlcpy(name_r, name, name_size) < 0)
		name_r[0] = '\0';
	return 0;
}

/* hm_maildir_flag_letter - see hm_maildir.h */
int hm_maildir_flag_letter(const char *flag)
{
	if (flag == NULL || flag[0] != '\\')
		return 0;
	if (strcasecmp(flag, "\\Seen") == 0) return 'S';
	if (strcasecmp(flag, "\\Answered") == 0) return 'R';
	if (strcasecmp(flag, "\\Flagged") == 0) return 'F';
	if (strcasecmp(flag, "\\Deleted") == 0) return 'T';
	if (strcasecmp(flag, "\\Draft") == 0) return 'D';
	return -1;
}

/* hm_imap_atom_valid - see hm_maildir.h */
bool hm_imap_atom_valid(const char *s, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\]", c) != NULL)
			return false;
	}
	return true;
}

/* hm_maildir_keyword_valid - IMAP atom (RFC 3501 9: atom-char), max 128 bytes */
bool hm_maildir_keyword_valid(const char *kw)
{
	if (kw == NULL)
		return false;
	size_t n = strnlen(kw, 129);
	return n <= 128 && hm_imap_atom_valid(kw, n);
}

/* take_lock - create a dotlock file name in dirfd, waiting and breaking stale ones */
static int take_lock(int dirfd, const char *name)
{
	for (int waited = 0;; waited += 50) {
		int fd = openat(dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd >= 0)
			return fd;
		if (errno != EEXIST)
			return -1;
		struct stat st;
		if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    st.st_mtime < time(NULL) - LOCK_STALE_SECS) {
			(void)unlinkat(dirfd, name, 0);
			continue;
		}
		if (waited >= LOCK_WAIT_MS) {
			errno = EAGAIN;
			return -1;
		}
		struct timespec ts = { 0, 50 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
}

/* read_keywords - parse dovecot-keywords of dirfd into names[26] (malloc'd;
 * slots the file names are replaced, the others left as they are).
 * Returns 0 (missing file = no keywords) or -1; *mtime_r = file mtime or 0. */
static int read_keywords(int dirfd, char *names[HM_MAILDIR_MAX_KEYWORDS], time_t *mtime_r)
{
	char buf[8192 + 1];
	const char *val[HM_MAILDIR_MAX_KEYWORDS] = { NULL };   /* into buf */
	size_t len = 0;
	struct stat st;
	*mtime_r = 0;
	int fd = openat(dirfd, "dovecot-keywords", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	if (fstat(fd, &st) == 0)
		*mtime_r = st.st_mtime;
	ssize_t r = hm_read_full(fd, buf, sizeof buf - 1);
	close(fd);
	if (r < 0)
		return -1;
	len = (size_t)r;
	buf[len] = '\0';
	for (char *line = buf, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next == NULL)
			break;          /* incomplete last line: ignore, as Dovecot does */
		*next++ = '\0';
		char *sp = strchr(line, ' ');
		if (sp == NULL || sp == line || sp[1] == '\0')
			continue;
		*sp = '\0';
		char *end;
		long idx = strtol(line, &end, 10);
		if (*end != '\0' || idx < 0 || idx >= HM_MAILDIR_MAX_KEYWORDS)
			continue;
		val[idx] = sp + 1;      /* a later line for the same index wins */
	}
	/* copies only once the file is parsed: no allocation is lost on the way */
	for (size_t k = 0; k < HM_MAILDIR_MAX_KEYWORDS; k++) {
		if (val[k] == NULL)
			continue;
		char *v = strdup(val[k]);
		if (v == NULL)
			return -1;
		free(names[k]);
		names[k] = v;
	}
	return 0;
}

/* lookup_letters - letters for kw[] from names[]; returns how many are missing */
static size_t lookup_letters(char *names[], const char *const kw[], size_t n,
			     char *letters, size_t *o)
{
	size_t missing = 0;
	*o = 0;
	for (size_t i = 0; i < n; i++) {
		size_t k;
		for (k = 0; k < HM_MAILDIR_MAX_KEYWORDS; k++)
			if (names[k] != NULL && strcasecmp(names[k], kw[i]) == 0)
				break;
		if (k < HM_MAILDIR_MAX_KEYWORDS)
			letters[(*o)++] = (char)('a' + k);
		else
			missing++;
	}
	letters[*o] = '\0';
	return missing;
}

/* hm_maildir_keywords - see hm_maildir.h */
int hm_maildir_keywords(struct hm_mfolder *f, const char *const kw[], size_t n,
			char *letters, size_t letters_size, size_t *dropped_r)
{
	char *names[HM_MAILDIR_MAX_KEYWORDS] = { NULL };
	time_t old_mtime;
	size_t o, dropped = 0;
	int rc = -1, ulock = -1, klock = -1;

	*dropped_r = 0;
	if (letters_size < HM_MAILDIR_MAX_KEYWORDS + 1) {
		errno = EINVAL;
		return -1;
	}
	letters[0] = '\0';
	for (size_t i = 0; i < n; i++)
		if (!hm_maildir_keyword_valid(kw[i])) {
			errno = EINVAL;
			return -1;
		}
	if (read_keywords(f->fd, names, &old_mtime) < 0)
		goto out;
	if (lookup_letters(names, kw, n, letters, &o) == 0) {
		rc = 0;
		goto out;
	}
	/* missing ones: lock as Dovecot does (uidlist lock, then keywords dotlock) */
	if ((ulock = take_lock(f->fd, "dovecot-uidlist.lock")) < 0)
		goto out;
	char pidline[64];
	int pl = snprintf(pidline, sizeof pidline, "%ld\n", (long)getpid());
	if (pl > 0)
		(void)hm_write_full(ulock, pidline, (size_t)pl);
	if ((klock = take_lock(f->fd, "dovecot-keywords.lock")) < 0)
		goto out;
	for (size_t k = 0; k < HM_MAILDIR_MAX_KEYWORDS; k++) {
		free(names[k]);
		names[k] = NULL;
	}
	if (read_keywords(f->fd, names, &old_mtime) < 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		size_t k, free_slot = HM_MAILDIR_MAX_KEYWORDS;
		for (k = 0; k < HM_MAILDIR_MAX_KEYWORDS; k++) {
			if (names[k] != NULL && strcasecmp(names[k], kw[i]) == 0)
				break;
			if (names[k] == NULL && free_slot == HM_MAILDIR_MAX_KEYWORDS)
				free_slot = k;
		}
		if (k < HM_MAILDIR_MAX_KEYWORDS)
			continue;
		if (free_slot == HM_MAILDIR_MAX_KEYWORDS) {
			dropped++;
			continue;
		}
		if ((names[free_slot] = strdup(kw[i])) == NULL)
			goto out;
	}
	struct hm_buf ob;
	hm_buf_init(&ob, 65536);
	for (size_t k = 0; k < HM_MAILDIR_MAX_KEYWORDS; k++)
		if (names[k] != NULL && hm_buf_printf(&ob, "%zu %s\n", k, names[k]) < 0) {
			hm_buf_free(&ob);
			goto out;
		}
	int wr = hm_write_full(klock, hm_buf_cstr(&ob), ob.len);
	hm_buf_free(&ob);
	if (wr < 0)
		goto out;
	/* Dovecot re-reads the file only when its mtime changes: make it grow */
	struct stat st;
	if (fstat(klock, &st) == 0 && old_mtime != 0 && st.st_mtime <= old_mtime) {
		struct timespec ts[2] = { { .tv_nsec = UTIME_NOW }, { .tv_sec = old_mtime + 1 } };
		(void)futimens(klock, ts);
	}
	if (fsync(klock) < 0)
		goto out;
	if (renameat(f->fd, "dovecot-keywords.lock", f->fd, "dovecot-keywords") < 0)
		goto out;
	close_fd(&klock);
	(void)lookup_letters(names, kw, n, letters, &o);
	rc = 0;
out:
	if (klock >= 0) {
		close_fd(&klock);
		(void)unlinkat(f->fd, "dovecot-keywords.lock", 0);
	}
	if (ulock >= 0) {
		close_fd(&ulock);
		(void)unlinkat(f->fd, "dovecot-uidlist.lock", 0);
	}
	for (size_t k = 0; k < HM_MAILDIR_MAX_KEYWORDS; k++)
		free(names[k]);
	*dropped_r = dropped;
	return rc;
}
