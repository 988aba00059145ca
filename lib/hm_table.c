/* hm_table.c — bounded reads and atomic rewrites of the /etc/homemail
 * tables (see hm_table.h).
 */
#include "hm_table.h"
#include "hm_util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

int hm_table_read(const char *path, size_t max, char **data_r, size_t *len_r)
{
	struct stat st;
	int fd = hm_open_regular(path, O_RDONLY, 0, &st), saved;
	char *data;
	ssize_t n;

	if (fd < 0)
		return -1;
	if ((uint64_t)st.st_size > max) {
		close(fd);
		return errno = EFBIG, -1;
	}
	/* +1: detect growth past the size the buffer was made for */
	data = malloc((size_t)st.st_size + 1);
	if (data == NULL) {
		close(fd);
		return -1;
	}
	n = hm_read_full(fd, data, (size_t)st.st_size + 1);
	saved = errno;
	close(fd);
	if (n < 0 || (size_t)n > (size_t)st.st_size) {
		free(data);
		/* rewritten in place under us: not our atomic writer; transient */
		errno = n < 0 ? saved : EAGAIN;
		return -1;
	}
	data[n] = '\0';
	*data_r = data;
	*len_r = (size_t)n;
	return 0;
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

int hm_table_write(const char *path, const char *data, size_t len, mode_t new_mode)
{
	char tmp[PATH_MAX], dir[PATH_MAX];
	struct stat st;
	mode_t mode = new_mode;
	uid_t uid = (uid_t)-1;
	gid_t gid = (gid_t)-1;
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
	(void)unlink(tmp);      /* a leftover of a crashed writer with our pid */
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	if ((uid != (uid_t)-1 && fchown(fd, uid, gid) < 0 && errno != EPERM) ||
	    fchmod(fd, mode) < 0 || hm_write_full(fd, data, len) < 0 || fsync(fd) < 0) {
		saved = errno;
		close(fd);
		unlink(tmp);
		return errno = saved, -1;
	}
	if (close(fd) < 0 || rename(tmp, path) < 0) {
		saved = errno;
		unlink(tmp);
		return errno = saved, -1;
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		(void)fsync(dfd);
		close(dfd);
	}
	return 0;
}

int hm_table_lock(const char *path)
{
	char lockpath[PATH_MAX];
	int lfd, saved;

	if (hm_snprintf(lockpath, sizeof(lockpath), "%s.lock", path) < 0)
		return -1;
	lfd = open(lockpath, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (lfd < 0)
		return -1;
	while (flock(lfd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			saved = errno;
			close(lfd);
			return errno = saved, -1;
		}
	}
	return lfd;
}
