/* fuzz_deliver_conf.c — libFuzzer harness for /etc/homemail/deliver.conf
 * (deliver-helper/deliver_conf.c) and the path templates it carries.
 *
 * The file is admin-written, but a bad one must give one clear error line
 * (the LDA then defers with 75), never a crash, a guess or a half-set config.
 * Input: the file contents, written to a private temporary file and loaded.
 * Checks: a failed load gives one line that starts with the file's name,
 * and leaves nothing allocated; a successful load holds values inside the
 * bounds the parser promises (timeouts 1..300 s, loop_max 1..1000, header
 * 1K..64M, mail_location "maildir:..."), and every path template either
 * expands (then "~/" became the home, and a template without '%' came out
 * as written) or is refused with EINVAL.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "deliver.h"
#include "fuzz_file.h"

/* check_expand - expand template t for a fixed user and home; abort on a broken promise */
static void check_expand(const char *t)
{
	static const char home[] = "/home/fz";
	errno = 0;
	char *x = deliver_expand_path(t, "u@example.org", home);
	if (x == NULL) {
		if (errno != EINVAL && errno != ENOMEM && errno != EMSGSIZE)
			abort();
		return;
	}
	bool tilde = t[0] == '~' && (t[1] == '/' || t[1] == '\0');
	size_t hl = strlen(home);
	if (tilde && strncmp(x, home, hl) != 0)
		abort();
	/* nothing to expand: the template itself, only "~" replaced */
	if (strchr(t, '%') == NULL && strcmp(tilde ? x + hl : x, tilde ? t + 1 : t) != 0)
		abort();
	free(x);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct deliver_conf c;
	char err[512];

	const char *path = fuzz_input_file("deliverconf", data, size);
	if (path == NULL)
		return 0;
	err[0] = '\0';
	if (deliver_conf_load(&c, path, true, err, sizeof err) < 0) {
		/* "PATH:LINE: ..." on one line, nothing left to free */
		size_t pl = strlen(path);
		if (strncmp(err, path, pl) != 0 || err[pl] != ':' || strchr(err, '\n'))
			abort();
		if (c.auth_socket || c.mail_location || c.sieve || c.sieve_dir || c.quota_rule)
			abort();
		return 0;
	}
	if (c.auth_timeout_ms < 1000 || c.auth_timeout_ms > 300000 ||
	    c.loop_max < 1 || c.loop_max > 1000 ||
	    c.max_header < 1024 || c.max_header > 64u * 1024 * 1024 ||
	    !(c.userdb_socket || c.userdb_passwd) ||
	    c.auth_socket == NULL || c.auth_socket[0] == '\0' ||
	    c.mail_location == NULL || strncmp(c.mail_location, "maildir:", 8) != 0 ||
	    c.sieve == NULL || c.sieve_dir == NULL || c.quota_rule == NULL)
		abort();
	check_expand(c.mail_location + 8);
	check_expand(c.sieve);
	check_expand(c.sieve_dir);
	deliver_conf_free(&c);
	return 0;
}
