/* scan_route.h — what homemail_scan.so's ${dlfunc{...}{homemail_route}}
 * hands Exim's routers, built from a userdb reply of service "smtp"
 * (docs/domains.md).  Kept out of scan_exim.c so it builds and is tested
 * without Exim.
 */
#ifndef SCAN_ROUTE_H
#define SCAN_ROUTE_H
#include <stddef.h>

#include "hm_authmaster.h"

/* VIRTUAL: an account of the users file; SYSTEM: a Unix account (the
 * module marks it with system_groups_user); ALIAS: an alias or catch-all */
enum scan_route_want { SCAN_ROUTE_VIRTUAL, SCAN_ROUTE_SYSTEM, SCAN_ROUTE_ALIAS };

/* scan_route_format - for an account reply and want VIRTUAL or SYSTEM (as
 * the account is):
 *   user="..." uid="N" gid="N" home="..." detail="..."
 * for an alias reply (homemail_targets or homemail_fail) and want ALIAS:
 *   data="a@x, b@y"   or   data=":fail: <why>"
 * (values double-quoted, '"' and '\' escaped: Exim's ${extract}).
 * Returns 1 and *out_r (malloc'd), 0 the reply is of the other kind (the
 * router declines), -1 the reply is unusable (err says why: no or a zero
 * uid/gid, a value with control bytes). */
int scan_route_format(const struct hm_auth_reply *r, enum scan_route_want want, char **out_r,
		      char *err, size_t errsize);

#endif
