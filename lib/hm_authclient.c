/* hm_authclient.c — SASL PLAIN through Dovecot's auth-client socket (see
 * hm_authclient.h).
 *
 * Relies on nettle's base64 encoder and lib/hm_buf.  Nothing is static,
 * nothing exits; the password only ever sits in buffers this file wipes.
 */
#include "hm_authclient.h"
#include "hm_buf.h"
#include "hm_users.h"
#include "hm_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <nettle/base64.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_LINE   16384
#define MAX_USER   512

/* read_line - next LF-terminated line into line[MAX_LINE+1] (LF dropped),
 * keeping what follows in in.  1 line, 0 EOF/timeout/too long, -1 error */
static int read_line(int fd, struct hm_buf *in, char *line, long long deadline)
{
	for (;;) {
		char *nl = in->data != NULL ? memchr(in->data, '\n', in->len) : NULL;

		if (nl != NULL) {
			size_t ll = (size_t)(nl - in->data);
			memcpy(line, in->data, ll);
			line[ll] = '\0';
			memmove(in->data, nl + 1, in->len - ll - 1);
			in->len -= ll + 1;
			return 1;
		}
		if (in->len >= MAX_LINE)
			return 0;
		char chunk[4096];
		ssize_t r = recv(fd, chunk, sizeof chunk, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int w = hm_wait_fd(fd, POLLIN, deadline);
			if (w <= 0)
				return w;
			continue;
		}
		if (r <= 0)
			return r < 0 ? -1 : 0;
		if (hm_buf_append(in, chunk, (size_t)r) < 0)
			return 0;
	}
}

/* field - value of "\tkey=" in a reply line (cleaned into dst), or NULL */
static const char *field(const char *line, const char *key, char *dst, size_t size)
{
	size_t kl = strlen(key);

	for (const char *p = strchr(line, '\t'); p != NULL; p = strchr(p + 1, '\t')) {
		if (strncmp(p + 1, key, kl) == 0 && p[1 + kl] == '=') {
			const char *v = p + 2 + kl, *end = strchr(v, '\t');
			size_t n = end != NULL ? (size_t)(end - v) : strlen(v);
			hm_log_clean(dst, size, v, n);
			return dst;
		}
	}
	return NULL;
}

/* has_flag - does the reply line carry the bare field flag? */
static bool has_flag(const char *line, const char *flag)
{
	size_t fl = strlen(flag);

	for (const char *p = strchr(line, '\t'); p != NULL; p = strchr(p + 1, '\t'))
		if (strncmp(p + 1, flag, fl) == 0 && (p[1 + fl] == '\t' || p[1 + fl] == '\0'))
			return true;
	return false;
}

int hm_auth_plain(const char *socket_path, const char *service, const char *user,
		  const char *password, const char *rip, int timeout_ms,
		  char *user_r, size_t user_size, char *reason, size_t reason_size)
{
	struct sockaddr_un sa;
	struct hm_buf in, req;
	long long deadline = hm_mono_ms() + (timeout_ms > 0 ? timeout_ms : 10000);
	size_t ul, pl, rawlen;
	unsigned char raw[MAX_USER + HM_PW_MAX_PLAIN + 2];
	char b64[BASE64_ENCODE_RAW_LENGTH(sizeof raw) + 1], ipbuf[sizeof(struct in6_addr)];
	char *line = NULL, val[MAX_USER + 1];
	int fd = -1, ret = HM_AUTHC_TEMPFAIL;
	bool done = false;

	if (reason != NULL && reason_size > 0)
		reason[0] = '\0';
	if (user == NULL || password == NULL)
		return hm_errf(HM_AUTHC_FAIL, reason, reason_size, "invalid user name or password");
	ul = strlen(user);
	pl = strlen(password);
	if (ul == 0 || ul > MAX_USER || pl > HM_PW_MAX_PLAIN)
		return hm_errf(HM_AUTHC_FAIL, reason, reason_size, "invalid user name or password");
	for (size_t i = 0; i < ul; i++)
		if ((unsigned char)user[i] < 0x20 || user[i] == 0x7f)
			return hm_errf(HM_AUTHC_FAIL, reason, reason_size, "invalid user name");
	if (service == NULL || service[0] == '\0' || strpbrk(service, "\t\r\n") != NULL)
		return hm_errf(HM_AUTHC_TEMPFAIL, reason, reason_size, "bad service name");
	if (rip != NULL && rip[0] != '\0' && inet_pton(AF_INET, rip, ipbuf) != 1 &&
	    inet_pton(AF_INET6, rip, ipbuf) != 1)
		return hm_errf(HM_AUTHC_TEMPFAIL, reason, reason_size, "bad remote address");
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	if (hm_strlcpy(sa.sun_path, socket_path, sizeof sa.sun_path) < 0)
		return hm_errf(HM_AUTHC_TEMPFAIL, reason, reason_size, "socket path too long");

	/* "\0user\0password" (no authorization identity) */
	raw[0] = '\0';
	memcpy(raw + 1, user, ul);
	raw[1 + ul] = '\0';
	memcpy(raw + 2 + ul, password, pl);
	rawlen = 2 + ul + pl;
	base64_encode_raw(b64, rawlen, raw);
	b64[BASE64_ENCODE_RAW_LENGTH(rawlen)] = '\0';
	explicit_bzero(raw, sizeof raw);

	hm_buf_init(&in, MAX_LINE * 2);
	hm_buf_init(&req, sizeof b64 + 256);
	line = malloc(MAX_LINE + 1);
	if (line == NULL) {
		ret = hm_errf(HM_AUTHC_TEMPFAIL, reason, reason_size, "out of memory");
		goto out;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 &&
		       errno != EINPROGRESS && errno != EAGAIN)) {
		ret = hm_errf(HM_AUTHC_TEMPFAIL, reason, reason_size, "connect(%s): %s",
			      socket_path, strerror(errno));
		goto out;
	}
	if (hm_buf_printf(&req, "VERSION\t1\t2\nCPID\t%ld\n", (long)getpid()) < 0 ||
	    hm_send_all(fd, req.data, req.len, deadline) < 0) {
		ret = hm_errf(HM_AUTHC_TEMPFAIL, reason, reason_size, "write(%s): %s",
			      socket_path, strerror(errno));
		goto out;
	}
	/* the handshake: VERSION, MECH..., SPID, CUID, COOKIE, DONE */
	while (!done) {
		int r = read_line(fd, &in, line, deadline);
		if (r <= 0) {
			ret = hm_errf(HM_AUTHC_TEMPFAIL, reason, reason_size,
				      "no handshake from %s", socket_path);
			goto out;
		}
		if (strncmp(line, "VERSION\t", 8) == 0 && strncmp(line + 8, "1\t", 2) != 0) {
			ret = hm_errf(HM_AUTHC_TEMPFAIL, reason, reason_size,
				      "auth server speaks an unknown protocol version");
			goto out;
		}
		done = strcmp(line, "DONE") == 0;
	}
	req.len = 0;
	if (hm_buf_printf(&req, "AUTH\t1\tPLAIN\tservice=%s\tsecured%s%s\tresp=%s\n", service,
			  rip != NULL && rip[0] != '\0' ? "\trip=" : "",
			  rip != NULL ? rip : "", b64) < 0 ||
	    hm_send_all(fd, req.data, req.len, deadline) < 0) {
		ret = hm_errf(HM_AUTHC_TEMPFAIL, reason, reason_size, "write(%s): %s",
			      socket_path, strerror(errno));
		goto out;
	}
	for (;;) {
		int r = read_line(fd, &in, line, deadline);
		if (r <= 0) {
			ret = hm_errf(HM_AUTHC_TEMPFAIL, reason, reason_size,
				      "no answer from %s", socket_path);
			goto out;
		}
		if (strncmp(line, "OK\t1", 4) == 0 && (line[4] == '\t' || line[4] == '\0')) {
			if (field(line, "user", val, sizeof val) == NULL)
				(void)hm_strlcpy(val, user, sizeof val);
			if (hm_strlcpy(user_r, val, user_size) < 0) {
				ret = hm_errf(HM_AUTHC_TEMPFAIL, reason, reason_size, "user name too long");
				goto out;
			}
			ret = HM_AUTHC_OK;
			goto out;
		}
		if (strncmp(line, "FAIL\t1", 6) == 0 && (line[6] == '\t' || line[6] == '\0')) {
			if (field(line, "reason", val, sizeof val) != NULL)
				(void)hm_strlcpy(reason, val, reason_size);
			ret = has_flag(line, "temp") ? HM_AUTHC_TEMPFAIL : HM_AUTHC_FAIL;
			goto out;
		}
		if (strncmp(line, "CONT\t1", 6) == 0) {
			ret = hm_errf(HM_AUTHC_TEMPFAIL, reason, reason_size,
				      "auth server asked for more than PLAIN's one response");
			goto out;
		}
		/* anything else (a late MECH, notices) is skipped */
	}
out:
	if (fd >= 0)
		close(fd);
	explicit_bzero(b64, sizeof b64);
	if (req.data != NULL)
		explicit_bzero(req.data, req.len);
	hm_buf_free(&in);
	hm_buf_free(&req);
	free(line);
	return ret;
}
