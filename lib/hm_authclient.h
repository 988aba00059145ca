/* hm_authclient.h — verify a password through Dovecot's auth-client socket.
 *
 * NAME
 *   hm_auth_plain - one SASL PLAIN authentication against Dovecot's auth
 *
 * DESCRIPTION
 *   Dovecot's auth client protocol 1.2 (what the login processes and Exim's
 *   dovecot authenticator speak): the client sends "VERSION\t1\t2" and
 *   "CPID\t<pid>", reads the handshake up to "DONE", then sends
 *   "AUTH\t1\tPLAIN\tservice=S\tsecured[\trip=IP]\tresp=<base64>" where the
 *   response is "\0user\0password" (RFC 4616).  The server answers
 *   "OK\t1\tuser=NAME..." or "FAIL\t1[\tuser=..][\ttemp][\treason=..]".
 *   So the password is checked by the same passdb chain every other login
 *   uses: homemail's auth module, with its lockout counting and its
 *   account states.  A wrong password costs Dovecot's auth_failure_delay.
 *
 *   The whole exchange is bounded by timeout_ms (poll() on a monotonic
 *   deadline, MSG_NOSIGNAL, no signals), each line by 16 KiB.  The user
 *   name must be 1..512 bytes without control characters or TAB; the
 *   password at most HM_PW_MAX_PLAIN (1024) bytes without NUL; rip, when
 *   given, must be an IPv4/IPv6 address (checked with inet_pton).
 *
 * RETURNS
 *   HM_AUTHC_OK (1) with the canonical user name in user_r,
 *   HM_AUTHC_FAIL (0) with Dovecot's reason (cleaned) in reason, when any,
 *   HM_AUTHC_TEMPFAIL (-1) with why in reason.
 */
#ifndef HM_AUTHCLIENT_H
#define HM_AUTHCLIENT_H

#include <stddef.h>

#define HM_AUTHC_OK        1
#define HM_AUTHC_FAIL      0
#define HM_AUTHC_TEMPFAIL  (-1)

int hm_auth_plain(const char *socket_path, const char *service, const char *user,
		  const char *password, const char *rip, int timeout_ms,
		  char *user_r, size_t user_size, char *reason, size_t reason_size);

#endif
