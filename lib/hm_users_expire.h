/* hm_users_expire.h — the "password must be changed" flag of an account in
 * /etc/homemail/users.
 *
 * Field 8 of a users line holds password flags, a comma-separated list
 * (unknown flags are kept as written):
 *
 *   alice@home.com.bo:$y$...:5000:5000:/var/vmail/home.com.bo/alice:1G::expired
 *
 *   expired   the password must be changed before the account may log in
 *             (set by `homemail-user passwd --expire`, cleared by a change
 *             through homemail-passwd; docs/domains.md "Password changes")
 *
 * Returns: 0 ok, -1 and errno set, unless stated otherwise.
 */
#ifndef HM_USERS_EXPIRE_H
#define HM_USERS_EXPIRE_H

#include "hm_users.h"

#include <stdbool.h>

#define HM_USERS_FLAG_EXPIRED "expired"

/* hm_user_pw_expired - does u carry the expired flag? */
bool hm_user_pw_expired(const struct hm_user *u);

/* hm_users_set_pw_expired - set or clear the flag of address in db
 * (in memory; ENOENT, EINVAL, ENOMEM) */
int hm_users_set_pw_expired(struct hm_users *db, const char *address, bool expired);

/* hm_users_flag_in - is flag one of the comma-separated flags of field 8
 * in extra (the fields after the 7th)?  Exposed for unit tests. */
bool hm_users_flag_in(const char *extra, const char *flag);

#endif
