/* scan_route.c — format a userdb reply for Exim's homemail routers (see
 * scan_route.h).
 *
 * What for: the routers router/340_homemail_accounts take uid, gid, home and
 * the canonical user for the pipe transport, or the expanded targets of an
 * alias, from this string; Exim's ${extract} reads it.
 * Relies on: hm_buf (bounded output), hm_authmaster's reply.
 * How it fails: a reply that is neither an account with a usable uid/gid
 * nor an alias is -1 (homemail_route answers DEFER and logs); a uid or gid
 * of 0 is refused here as well as by the module and by Exim's never_users.
 * Bounds: the output is at most SCAN_ROUTE_MAX bytes (a full alias of 1,000
 * 254-byte targets fits).
 */
#include "scan_route.h"
#include "hm_buf.h"
#include "hm_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCAN_ROUTE_MAX (512u * 1024)

/* put_quoted - key="value" with '"' and '\' escaped; control bytes refused */
static int put_quoted(struct hm_buf *b, const char *key, const char *v)
{
	if (hm_buf_printf(b, "%s%s=\"", b->len ? " " : "", key) < 0)
		return -1;
	for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
		if (*p < 0x20 || *p == 0x7f)
			return errno = EINVAL, -1;
		if ((*p == '"' || *p == '\\') && hm_buf_putc(b, '\\') < 0)
			return -1;
		if (hm_buf_putc(b, (char)*p) < 0)
			return -1;
	}
	return hm_buf_putc(b, '"');
}

/* id_ok - decimal, not 0, fits 31 bits */
static int id_ok(const char *v)
{
	size_t n = v ? strlen(v) : 0;

	if (n == 0 || n > 10 || strspn(v, "0123456789") != n || strtoul(v, NULL, 10) == 0 ||
	    strtoul(v, NULL, 10) > 0x7fffffffUL)
		return 0;
	return 1;
}

int scan_route_format(const struct hm_auth_reply *r, enum scan_route_want want, char **out_r,
		      char *err, size_t errsize)
{
	const char *targets = hm_auth_reply_get(r, "homemail_targets");
	const char *why = hm_auth_reply_get(r, "homemail_fail");
	const char *uid = hm_auth_reply_get(r, "uid"), *gid = hm_auth_reply_get(r, "gid");
	const char *home = hm_auth_reply_get(r, "home");
	const char *detail = hm_auth_reply_get(r, "homemail_detail");
	bool is_alias = targets != NULL || why != NULL;
	struct hm_buf b;
	int rc = -1;

	*out_r = NULL;
	if (!is_alias && (uid == NULL || gid == NULL)) {
		(void)hm_snprintf(err, errsize, "userdb reply has neither uid/gid nor alias targets");
		return -1;
	}
	if ((want == SCAN_ROUTE_ALIAS) != is_alias)
		return 0;
	if (!is_alias &&
	    (want == SCAN_ROUTE_SYSTEM) != (hm_auth_reply_get(r, "system_groups_user") != NULL))
		return 0;
	hm_buf_init(&b, SCAN_ROUTE_MAX);
	if (is_alias) {
		if (why != NULL) {
			struct hm_buf m;
			char *msg;
			size_t len;
			hm_buf_init(&m, SCAN_ROUTE_MAX);
			if (hm_buf_printf(&m, ":fail: %s", why) < 0 ||
			    (msg = hm_buf_steal(&m, &len)) == NULL) {
				hm_buf_free(&m);
				goto bad;
			}
			rc = put_quoted(&b, "data", msg);
			free(msg);
		} else {
			/* "a,b" -> "a, b": one address per list item for redirect */
			struct hm_buf m;
			char *list;
			size_t len;
			hm_buf_init(&m, SCAN_ROUTE_MAX);
			for (const char *p = targets; *p; p++)
				if ((*p == ',' ? hm_buf_puts(&m, ", ") : hm_buf_putc(&m, *p)) < 0)
					break;
			if (m.len == 0 || (list = hm_buf_steal(&m, &len)) == NULL) {
				hm_buf_free(&m);
				goto bad;
			}
			rc = put_quoted(&b, "data", list);
			free(list);
		}
		if (rc < 0)
			goto bad;
	} else {
		const char *user = r->user && *r->user ? r->user : NULL;
		if (!id_ok(uid) || !id_ok(gid)) {
			(void)hm_snprintf(err, errsize, "userdb reply for %s: unusable uid/gid (never 0)",
					  user ? user : "?");
			hm_buf_free(&b);
			return -1;
		}
		if (user == NULL || home == NULL || home[0] != '/' ||
		    put_quoted(&b, "user", user) < 0 || put_quoted(&b, "uid", uid) < 0 ||
		    put_quoted(&b, "gid", gid) < 0 || put_quoted(&b, "home", home) < 0 ||
		    put_quoted(&b, "detail", detail ? detail : "") < 0)
			goto bad;
	}
	*out_r = hm_buf_steal(&b, NULL);
	return *out_r != NULL ? 1 : -1;
bad:
	hm_buf_free(&b);
	(void)hm_snprintf(err, errsize, "userdb reply unusable for routing (missing user/home, "
			  "control bytes, or too long)");
	return -1;
}
