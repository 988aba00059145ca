/* hm_table.h — reading and atomically rewriting the small line-oriented
 * tables under /etc/homemail (users, domains, aliases).
 *
 * What for: one implementation of "read a bounded regular file without
 * following symlinks", "rewrite it so readers see the old or the new file,
 * never a mixture" and "serialise writers with an flock on <path>.lock",
 * shared by lib/hm_users, lib/hm_domains and lib/hm_aliases.
 * Relies on: libc (flock, rename, fsync).
 * How it fails: -1 with errno set; a failed rewrite leaves the old file and
 * removes its temporary file.  Returns: 0 ok, -1 and errno set.
 */
#ifndef HM_TABLE_H
#define HM_TABLE_H
#include <stddef.h>
#include <sys/types.h>

/* hm_table_read - the whole file (O_NOFOLLOW, regular, at most max bytes:
 * EFBIG beyond; EAGAIN when it grew while read) into a malloc'd buffer
 * (NUL-terminated, *len_r excludes the NUL) */
int hm_table_read(const char *path, size_t max, char **data_r, size_t *len_r);
/* hm_table_write - replace path with data: "<path>.tmp.<pid>" with the old
 * file's owner and mode (new_mode, root, for a new file), fsync, rename,
 * fsync of the directory */
int hm_table_write(const char *path, const char *data, size_t len, mode_t new_mode);
/* hm_table_lock - open and flock(LOCK_EX) "<path>.lock"; returns the fd to
 * close (which releases the lock), or -1 */
int hm_table_lock(const char *path);

#endif
