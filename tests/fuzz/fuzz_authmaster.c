/* fuzz_authmaster.c — libFuzzer harness for lib/hm_authmaster, the client of
 * Dovecot's auth-master/auth-userdb protocol used by homemail-deliver and by
 * Exim's recipient check.  The fuzzer plays the server side.
 *
 * Input: byte 0 picks the mode.
 *   even: the rest is one reply line for hm_auth_parse_user_line.
 *   odd:  the rest is everything the "server" sends on a real UNIX socket
 *         (a thread of this process accepts, writes it, then closes), and
 *         hm_auth_user_lookup must come back with FOUND/NOTFOUND/TEMPFAIL,
 *         a terminated error text, and a reply only when FOUND.
 */
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "hm_authmaster.h"
#include "hm_util.h"

static char sock_path[108];
static int listen_fd = -1;

struct server_job {
	const uint8_t *data;
	size_t size;
};

/* server - accept one client, send the fuzz bytes, drain, close */
static void *server(void *arg)
{
	struct server_job *j = arg;
	char drain[4096];
	int c = accept(listen_fd, NULL, NULL);

	if (c < 0)
		return NULL;
	(void)send(c, j->data, j->size, MSG_NOSIGNAL);
	shutdown(c, SHUT_WR);
	while (read(c, drain, sizeof drain) > 0)
		;
	close(c);
	return NULL;
}

static void setup(void)
{
	struct sockaddr_un sa;

	snprintf(sock_path, sizeof sock_path, "/tmp/hm-fuzz-auth.%d", (int)getpid());
	unlink(sock_path);
	listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (listen_fd < 0)
		abort();
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	strcpy(sa.sun_path, sock_path);
	if (bind(listen_fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(listen_fd, 4) < 0)
		abort();
}

static void check_reply(const struct hm_auth_reply *r)
{
	if (!r->user)
		abort();
	for (size_t i = 0; i < r->count; i++) {
		if (!r->fields[i].key || !r->fields[i].value)
			abort();
		(void)strlen(r->fields[i].key);
		(void)strlen(r->fields[i].value);
	}
	(void)hm_auth_reply_get(r, "home");
	(void)hm_auth_reply_get(r, "uid");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hm_auth_reply *r = NULL;

	if (size < 1)
		return 0;
	if ((data[0] & 1) == 0) {
		char *line = malloc(size);

		if (!line)
			return 0;
		memcpy(line, data + 1, size - 1);
		if (hm_auth_parse_user_line(line, size - 1, &r) == 0) {
			if (!r)
				abort();
			check_reply(r);
			hm_auth_reply_free(&r);
			if (r)
				abort();
		}
		free(line);
		return 0;
	}
	if (listen_fd < 0)
		setup();
	{
		struct server_job j = { data + 1, size - 1 };
		pthread_t t;
		char err[256];
		int rc;

		memset(err, 'x', sizeof err);
		if (pthread_create(&t, NULL, server, &j) != 0)
			return 0;
		rc = hm_auth_user_lookup(sock_path, "alice", "deliver", 2000, &r, err, sizeof err);
		pthread_join(t, NULL);
		if (rc == HM_AUTH_FOUND) {
			if (!r)
				abort();
			check_reply(r);
			hm_auth_reply_free(&r);
		} else if (rc == HM_AUTH_NOTFOUND || rc == HM_AUTH_TEMPFAIL) {
			if (r)
				abort();   /* a reply handed out without FOUND would leak */
			if (rc == HM_AUTH_TEMPFAIL && !memchr(err, '\0', sizeof err))
				abort();   /* error text not terminated */
		} else {
			abort();
		}
	}
	return 0;
}
