/* fuzz_quota.c — libFuzzer harness for lib/hm_quota: the `maildirsize` file
 * (in the user's Maildir, so as hostile as the user) and quota_rule values
 * (from the userdb).
 *
 * Input: byte 0 = mode bits, the rest split at the first LF: a quota rule,
 * then the maildirsize contents.  The file is written into a scratch Maildir
 * (tmpfs when available) with a few messages, and loaded.  Checks: a load
 * either succeeds with sane numbers or fails cleanly; after a recalculation
 * usage equals what is really in the Maildir; hm_quota_add keeps the file
 * loadable.
 */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hm_quota.h"
#include "hm_util.h"

static char root[128];
static int root_fd = -1;

static void setup(void)
{
	static const char *const dirs[] = { "", "/new", "/cur", "/tmp", "/.Sub", "/.Sub/new", "/.Sub/cur", "/.Sub/tmp" };
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	char p[256];
	int fd;

	snprintf(root, sizeof root, "%s/hm-fuzz-quota.%d", base, (int)getpid());
	for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
		snprintf(p, sizeof p, "%s%s", root, dirs[i]);
		mkdir(p, 0700);
	}
	/* 3 messages, 100 + 200 + 300 bytes, named the way the LDA names them */
	snprintf(p, sizeof p, "%s/new/1.M1P1Q1.h,S=100,W=102", root);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	close(fd);
	snprintf(p, sizeof p, "%s/cur/1.M1P1Q2.h,S=200,W=204:2,S", root);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	close(fd);
	snprintf(p, sizeof p, "%s/.Sub/new/1.M1P1Q3.h,S=300,W=306", root);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	close(fd);
	root_fd = open(root, O_RDONLY | O_DIRECTORY);
	if (root_fd < 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hm_quota_rule rule;
	struct hm_quota q;
	char rulebuf[256];
	const uint8_t *nl;
	size_t rl, flen;
	const uint8_t *file;
	int fd, have_rule;
	unsigned long long b, c;

	if (size < 1)
		return 0;
	if (root_fd < 0)
		setup();
	have_rule = data[0] & 1;
	data++, size--;
	nl = memchr(data, '\n', size);
	rl = nl ? (size_t)(nl - data) : size;
	file = nl ? nl + 1 : data + size;
	flen = size - (size_t)(file - data);
	if (rl >= sizeof rulebuf)
		rl = sizeof rulebuf - 1;
	memcpy(rulebuf, data, rl);
	rulebuf[rl] = '\0';
	memset(&rule, 0, sizeof rule);
	(void)hm_quota_parse_limits(rulebuf, &b, &c);
	if (have_rule && hm_quota_parse_rule(rulebuf, &rule) < 0)
		have_rule = 0;
	fd = openat(root_fd, "maildirsize", O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return 0;
	(void)hm_write_full(fd, file, flen);
	close(fd);
	memset(&q, 0, sizeof q);
	if (hm_quota_load(root_fd, have_rule ? &rule : NULL, 1764300000, &q) == 0) {
		if (q.recalculated && q.active && (q.bytes != 600 || q.count != 3))
			abort();   /* a recount must see exactly the Maildir's messages */
		if (q.active && hm_quota_add(root_fd, &q, 10, 1) == 0) {
			struct hm_quota q2;

			memset(&q2, 0, sizeof q2);
			if (hm_quota_load(root_fd, have_rule ? &rule : NULL, 1764300000, &q2) < 0)
				abort();   /* our own append made the file unloadable */
		}
	}
	return 0;
}
