/* hm_authmaster.h — client for Dovecot's auth-master / auth-userdb socket.
 *
 * NAME
 *   hm_auth_user_lookup - ask Dovecot's userdb about one user
 *
 * SYNOPSIS
 *   struct hm_auth_reply *r = NULL;
 *   char err[256];
 *   switch (hm_auth_user_lookup("/run/dovecot/auth-userdb", "alice", "deliver",
 *                               5000, &r, err, sizeof err)) {
 *   case HM_AUTH_FOUND:    home = hm_auth_reply_get(r, "home"); ... break;
 *   case HM_AUTH_NOTFOUND: unknown user (permanent) ...
 *   case HM_AUTH_TEMPFAIL: socket missing/refused, timeout, FAIL, garbage: err says why
 *   }
 *   hm_auth_reply_free(&r);
 *
 * DESCRIPTION
 *   Dovecot's auth master protocol, version 1 (the one doveadm user and
 *   dovecot-lda use): the client sends "VERSION\t1\t0\n" and
 *   "USER\t<id>\t<user>\tservice=<service>\n"; the server greets with
 *   "VERSION\t1\t<minor>\n" and "SPID\t<pid>\n" and answers
 *   "USER\t<id>\t<user>\tkey=value...\n", "NOTFOUND\t<id>\n" or
 *   "FAIL\t<id>[\treason=...]\n".  Values are tab-escaped by Dovecot
 *   (\001 followed by 1, t, r, n, 0 for \001, TAB, CR, LF, NUL); they are
 *   unescaped here, and a value that would contain NUL is refused (tempfail).
 *
 *   The whole exchange is bounded by timeout_ms (poll(), a monotonic deadline;
 *   no alarm(), no signals: SIGPIPE is avoided with MSG_NOSIGNAL), one reply
 *   line by 64 KiB, the user name by 512 bytes without control characters
 *   (a bad name is NOTFOUND, without asking).  Nothing is static and nothing
 *   exits, so Exim's dlfunc and the LDA share this code.
 *
 *   The 0666 "auth-userdb" listener only answers about the caller's own uid
 *   (Dovecot checks the peer credentials); looking up other users needs a
 *   listener of type master that the caller can open.
 *
 * RETURNS
 *   HM_AUTH_FOUND (1) with *reply_r set (free it), HM_AUTH_NOTFOUND (0),
 *   HM_AUTH_TEMPFAIL (-1) with a reason in err (never NULL-terminated-less).
 */
#ifndef HM_AUTHMASTER_H
#define HM_AUTHMASTER_H
#include <stddef.h>

#define HM_AUTH_FOUND     1
#define HM_AUTH_NOTFOUND  0
#define HM_AUTH_TEMPFAIL  (-1)

#define HM_AUTH_MAX_LINE  65536
#define HM_AUTH_MAX_USER  512

struct hm_auth_field {
	char *key;
	char *value;        /* "" for a field without '=' */
};

struct hm_auth_reply {
	char *user;         /* the user name as the userdb returned it */
	struct hm_auth_field *fields;
	size_t count;
};

/* hm_auth_user_lookup - USER lookup over the socket at socket_path (see above) */
int hm_auth_user_lookup(const char *socket_path, const char *user, const char *service,
			int timeout_ms, struct hm_auth_reply **reply_r,
			char *err, size_t errsize);

/* hm_auth_reply_get - value of field key (first one), or NULL */
const char *hm_auth_reply_get(const struct hm_auth_reply *r, const char *key);

/* hm_auth_reply_free - free a reply; sets *r to NULL; NULL is fine */
void hm_auth_reply_free(struct hm_auth_reply **r);

/* hm_auth_parse_user_line - parse one "USER\t..." reply line (no LF) into a
 * reply; exposed for unit tests.  Returns 0, or -1 (EINVAL malformed, ENOMEM). */
int hm_auth_parse_user_line(const char *line, size_t len, struct hm_auth_reply **reply_r);

#endif
