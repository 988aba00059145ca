/* homemail-user-vdom.h — the domain, alias and account-lifecycle commands of
 * homemail-user (homemail-user-vdom.c), called from homemail-user.c's main.
 */
#ifndef HOMEMAIL_USER_VDOM_H
#define HOMEMAIL_USER_VDOM_H
#include <stddef.h>

/* homemail_user_vdom_main - when argv's command is one of domain, alias,
 * disable, enable, rename, quota: run it and return its exit code;
 * otherwise return -1 (homemail-user.c handles the command). */
int homemail_user_vdom_main(int argc, char **argv);

/* homemail_user_archive_home - tar+gzip home into dir as
 * "<address>-<UTC time>.tar.gz" (mode 0600; dir created 0700).  Returns 0
 * and the archive's path in path_r, or -1 with a message on stderr. */
int homemail_user_archive_home(const char *home, const char *address, const char *dir,
			       char *path_r, size_t path_size);

/* homemail_user_domain_quota - the quota= option of domain in the domains
 * table next to users_path, as written ("" when none or no table) */
void homemail_user_domain_quota(const char *users_path, const char *domain, char *dst,
				size_t size);

#define HOMEMAIL_ARCHIVE_DIR "/var/lib/homemail/archive"

#endif
