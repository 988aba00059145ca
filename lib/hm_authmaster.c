/* hm_authmaster.c — Dovecot auth-master protocol client (see hm_authmaster.h).
 *
 * What for: the LDA's userdb lookup and Exim's recipient verification.
 * Relies on: a Unix stream socket served by Dovecot's auth process.
 * How it fails: every failure that is not a definite NOTFOUND is a
 *   TEMPFAIL with a short reason in the caller's buffer; nothing is logged
 *   here, nothing exits, nothing is static, and the wait is bounded by poll()
 *   against a monotonic deadline.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "hm_authmaster.h"
#include "hm_buf.h"
#include "hm_util.h"

#define REQ_ID "1"

/* fail - write a reason into err and return HM_AUTH_TEMPFAIL */
#define fail(err, errsize, ...) hm_errf(HM_AUTH_TEMPFAIL, err, errsize, __VA_ARGS__)

/* unescape - undo Dovecot's str_tabescape in place; returns -1 if a NUL appears */
static int unescape(char *s)
{
	char *w = s;
	for (char *r = s; *r; r++) {
		if (*r != '\001') {
			*w++ = *r;
			continue;
		}
		r++;
		switch (*r) {
		case '1': *w++ = '\001'; break;
		case 't': *w++ = '\t'; break;
		case 'r': *w++ = '\r'; break;
		case 'n': *w++ = '\n'; break;
		case '0': return -1;
		case '\0': return -1;
		default: *w++ = *r; break;
		}
	}
	*w = '\0';
	return 0;
}

/* hm_auth_reply_free - see hm_authmaster.h */
void hm_auth_reply_free(struct hm_auth_reply **rp)
{
	if (rp == NULL || *rp == NULL)
		return;
	struct hm_auth_reply *r = *rp;
	for (size_t i = 0; i < r->count; i++) {
		free(r->fields[i].key);   /* value shares the key's allocation */
	}
	free(r->fields);
	free(r->user);
	free(r);
	*rp = NULL;
}

/* hm_auth_reply_get - see hm_authmaster.h */
const char *hm_auth_reply_get(const struct hm_auth_reply *r, const char *key)
{
	if (r == NULL || key == NULL)
		return NULL;
	for (size_t i = 0; i < r->count; i++)
		if (strcmp(r->fields[i].key, key) == 0)
			return r->fields[i].value;
	return NULL;
}

/* hm_auth_parse_user_line - see hm_authmaster.h */
int hm_auth_parse_user_line(const char *line, size_t len, struct hm_auth_reply **reply_r)
{
	*reply_r = NULL;
	if (memchr(line, '\0', len) != NULL) {
		errno = EINVAL;
		return -1;
	}
	char *copy = strndup(line, len);
	if (copy == NULL)
		return -1;
	struct hm_auth_reply *r = calloc(1, sizeof *r);
	if (r == NULL) {
		free(copy);
		return -1;
	}
	/* USER <id> <user> fields... */
	char *save = NULL, *tok;
	size_t n = 0;
	int rc = -1;
	errno = EINVAL;
	for (tok = strtok_r(copy, "\t", &save); tok != NULL; tok = strtok_r(NULL, "\t", &save), n++) {
		if (n == 0) {
			if (strcmp(tok, "USER") != 0)
				goto out;
			continue;
		}
		if (n == 1)
			continue;        /* id, checked by the caller */
		if (unescape(tok) < 0)
			goto out;
		if (n == 2) {
			if ((r->user = strdup(tok)) == NULL)
				goto out;
			continue;
		}
		struct hm_auth_field *nf = realloc(r->fields, (r->count + 1) * sizeof *nf);
		if (nf == NULL)
			goto out;
		r->fields = nf;
		char *k = strdup(tok);
		if (k == NULL)
			goto out;
		char *eq = strchr(k, '=');
		r->fields[r->count].key = k;
		if (eq != NULL) {
			*eq = '\0';
			r->fields[r->count].value = eq + 1;
		} else {
			r->fields[r->count].value = k + strlen(k);
		}
		r->count++;
	}
	if (r->user == NULL)
		goto out;
	rc = 0;
out:
	free(copy);
	if (rc < 0)
		hm_auth_reply_free(&r);
	*reply_r = r;
	return rc;
}

/* valid_name - non-empty, bounded, no control characters or TAB */
static int valid_name(const char *s, size_t max)
{
	size_t n = 0;
	if (s == NULL || *s == '\0')
		return 0;
	for (; *s; s++, n++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f || n >= max)
			return 0;
	return 1;
}

/* hm_auth_user_lookup - see hm_authmaster.h */
int hm_auth_user_lookup(const char *socket_path, const char *user, const char *service,
			int timeout_ms, struct hm_auth_reply **reply_r,
			char *err, size_t errsize)
{
	struct sockaddr_un sa;
	struct hm_buf in, req;
	int fd = -1, ret = HM_AUTH_TEMPFAIL;
	long long deadline = hm_mono_ms() + (timeout_ms > 0 ? timeout_ms : 5000);
	int got_version = 0;

	if (err != NULL && errsize > 0)
		err[0] = '\0';
	if (reply_r == NULL || socket_path == NULL)
		return fail(err, errsize, "bad arguments");
	*reply_r = NULL;
	if (!valid_name(user, HM_AUTH_MAX_USER))
		return HM_AUTH_NOTFOUND;   /* no such user can exist */
	if (service == NULL || !valid_name(service, 64) || strchr(service, '\t'))
		return fail(err, errsize, "bad service name");

	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	if (hm_strlcpy(sa.sun_path, socket_path, sizeof sa.sun_path) < 0)
		return fail(err, errsize, "socket path too long");

	hm_buf_init(&in, HM_AUTH_MAX_LINE * 2);
	hm_buf_init(&req, HM_AUTH_MAX_USER + 256);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		ret = fail(err, errsize, "socket: %s", strerror(errno));
		goto out;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		if (errno == EINPROGRESS || errno == EAGAIN) {
			int soerr = 0;
			socklen_t sl = sizeof soerr;
			int r = hm_wait_fd(fd, POLLOUT, deadline);
			if (r <= 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr != 0) {
				ret = fail(err, errsize, "connect(%s): %s", socket_path,
					   r == 0 ? "timed out" : strerror(soerr ? soerr : errno));
				goto out;
			}
		} else {
			ret = fail(err, errsize, "connect(%s): %s", socket_path, strerror(errno));
			goto out;
		}
	}
	if (hm_buf_printf(&req, "VERSION\t1\t0\nUSER\t" REQ_ID "\t%s\tservice=%s\n", user, service) < 0 ||
	    hm_send_all(fd, req.data, req.len, deadline) < 0) {
		ret = fail(err, errsize, "write(%s): %s", socket_path, strerror(errno));
		goto out;
	}

	for (;;) {
		/* handle every complete line already buffered */
		char *nl;
		/* in.data is NULL until the first append (and in.len 0 then) */
		while (in.data != NULL && (nl = memchr(in.data, '\n', in.len)) != NULL) {
			size_t ll = (size_t)(nl - in.data);
			char *line = in.data;
			*nl = '\0';
			if (strncmp(line, "VERSION\t", 8) == 0) {
				if (strncmp(line + 8, "1\t", 2) != 0) {
					ret = fail(err, errsize, "auth server speaks an unknown protocol version");
					goto out;
				}
				got_version = 1;
			} else if (strncmp(line, "SPID\t", 5) == 0) {
				/* server pid: not needed */
			} else if (strncmp(line, "USER\t" REQ_ID "\t", 7) == 0) {
				if (hm_auth_parse_user_line(line, ll, reply_r) < 0) {
					ret = fail(err, errsize, "malformed USER reply");
					goto out;
				}
				ret = HM_AUTH_FOUND;
				goto out;
			} else if (strcmp(line, "NOTFOUND\t" REQ_ID) == 0 ||
				   strncmp(line, "NOTFOUND\t" REQ_ID "\t", 11) == 0) {
				ret = HM_AUTH_NOTFOUND;
				goto out;
			} else if (strncmp(line, "FAIL\t" REQ_ID, 6) == 0) {
				const char *why = strstr(line, "\treason=");
				char clean[160];
				hm_log_clean(clean, sizeof clean, why ? why + 8 : "userdb lookup failed",
					     strlen(why ? why + 8 : "userdb lookup failed"));
				ret = fail(err, errsize, "auth server: %s", clean);
				goto out;
			} else if (!got_version) {
				ret = fail(err, errsize, "unexpected greeting from auth server");
				goto out;
			}
			/* drop the line */
			memmove(in.data, nl + 1, in.len - ll - 1);
			in.len -= ll + 1;
			in.data[in.len] = '\0';
		}
		if (in.len >= HM_AUTH_MAX_LINE) {
			ret = fail(err, errsize, "reply line too long");
			goto out;
		}
		char chunk[4096];
		ssize_t r = recv(fd, chunk, sizeof chunk, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int w = hm_wait_fd(fd, POLLIN, deadline);
			if (w == 0) {
				ret = fail(err, errsize, "timed out waiting for %s", socket_path);
				goto out;
			}
			if (w < 0) {
				ret = fail(err, errsize, "poll: %s", strerror(errno));
				goto out;
			}
			continue;
		}
		if (r < 0) {
			ret = fail(err, errsize, "read(%s): %s", socket_path, strerror(errno));
			goto out;
		}
		if (r == 0) {
			ret = fail(err, errsize, "auth server closed the connection (permission denied?)");
			goto out;
		}
		if (hm_buf_append(&in, chunk, (size_t)r) < 0) {
			ret = fail(err, errsize, "reply too long");
			goto out;
		}
	}
out:
	if (fd >= 0)
		close(fd);
	hm_buf_free(&in);
	hm_buf_free(&req);
	return ret;
}
