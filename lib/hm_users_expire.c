/* hm_users_expire.c — the "expired" password flag in field 8 of the users
 * file (see hm_users_expire.h).
 *
 * Field 8 is the part of hm_user.extra before its first ':'; the fields
 * after it are reserved and kept verbatim.  Edits go through
 * hm_users_set_extra, so the line is re-validated and rewritten the way
 * every other edit is.  Relies on: lib/hm_users, lib/hm_buf.
 */
#include "hm_users_expire.h"
#include "hm_buf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* flag_len - length of field 8 in extra */
static size_t field8_len(const char *extra)
{
	const char *colon = strchr(extra, ':');

	return colon != NULL ? (size_t)(colon - extra) : strlen(extra);
}

bool hm_users_flag_in(const char *extra, const char *flag)
{
	size_t end, flen = strlen(flag);
	const char *p;

	if (extra == NULL || flen == 0)
		return false;
	end = field8_len(extra);
	p = extra;
	while (p < extra + end) {
		const char *comma = memchr(p, ',', (size_t)(extra + end - p));
		size_t n = comma != NULL ? (size_t)(comma - p) : (size_t)(extra + end - p);

		if (n == flen && memcmp(p, flag, n) == 0)
			return true;
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	return false;
}

bool hm_user_pw_expired(const struct hm_user *u)
{
	return u != NULL && hm_users_flag_in(u->extra, HM_USERS_FLAG_EXPIRED);
}

int hm_users_set_pw_expired(struct hm_users *db, const char *address, bool expired)
{
	const struct hm_user *u = hm_users_find(db, address);
	const char *extra, *p, *rest;
	struct hm_buf b;
	size_t end;
	bool first = true;
	char *text;
	int ret;

	if (u == NULL)
		return errno = ENOENT, -1;
	extra = u->extra != NULL ? u->extra : "";
	if (hm_user_pw_expired(u) == expired)
		return 0;
	end = field8_len(extra);
	rest = extra + end;                     /* ":field9..." or "" */
	hm_buf_init(&b, HM_USERS_MAX_LINE);
	/* the other flags, in their order, without empty items */
	for (p = extra; p < extra + end;) {
		const char *comma = memchr(p, ',', (size_t)(extra + end - p));
		size_t n = comma != NULL ? (size_t)(comma - p) : (size_t)(extra + end - p);

		if (n > 0 && !(n == strlen(HM_USERS_FLAG_EXPIRED) &&
			       memcmp(p, HM_USERS_FLAG_EXPIRED, n) == 0)) {
			if ((!first && hm_buf_append(&b, ",", 1) < 0) || hm_buf_append(&b, p, n) < 0)
				goto nomem;
			first = false;
		}
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	if (expired && ((!first && hm_buf_append(&b, ",", 1) < 0) ||
			hm_buf_printf(&b, "%s", HM_USERS_FLAG_EXPIRED) < 0))
		goto nomem;
	if (hm_buf_printf(&b, "%s", rest) < 0)
		goto nomem;
	text = hm_buf_steal(&b, NULL);
	if (text == NULL)
		return errno = ENOMEM, -1;
	ret = hm_users_set_extra(db, address, text);
	free(text);
	return ret;
nomem:
	hm_buf_free(&b);
	return errno = ENOMEM, -1;
}
