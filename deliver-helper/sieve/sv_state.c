/* sv_state.c — the vacation/duplicate state files (see sv_state.h).
 *
 * What for: "one reply per sender and handle per period" and "was this
 * Message-ID seen", remembered across deliveries, safe when two deliveries
 * for the same user run at once.
 * Relies on: flock(2) on the state file itself (the file is rewritten in
 * place under the lock, never replaced, so the lock stays meaningful);
 * SHA-256 from hm_digest.
 * How it fails: returns -1 with errno; callers treat an unusable state as
 * "not seen" for duplicate (deliver rather than drop) and as "seen" for
 * vacation (rather no reply than a flood of replies).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hm_digest.h"
#include "hm_util.h"
#include "sv_state.h"

#define HEXLEN (HM_SHA256_SIZE * 2)
#define LINE_MAX_LEN (HEXLEN + 24)
#define MAX_FILE ((size_t)SV_STATE_MAX * LINE_MAX_LEN * 2)

struct entry {
	long long expiry;
	char hash[HEXLEN + 1];
};

static void hash_key(const char *key, size_t len, char out[HEXLEN + 1])
{
	uint8_t md[HM_SHA256_SIZE];
	hm_sha256(key, len, NULL, 0, md);
	for (int i = 0; i < HM_SHA256_SIZE; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* open_locked - open (creating, 0600, no symlinks) and flock the file */
static int open_locked(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			int e = errno;
			close(fd);
			errno = e;
			return -1;
		}
	}
	return fd;
}

/* load - parse the file into entries (damaged lines skipped) */
static struct entry *load(int fd, size_t *n_r)
{
	struct stat st;
	*n_r = 0;
	if (fstat(fd, &st) < 0)
		return NULL;
	size_t size = (size_t)st.st_size;
	if (size > MAX_FILE)
		size = MAX_FILE;
	char *buf = malloc(size + 1);
	struct entry *v = calloc(size / (HEXLEN + 2) + 1, sizeof *v);
	if (!buf || !v) {
		free(buf);
		free(v);
		errno = ENOMEM;
		return NULL;
	}
	ssize_t got = pread(fd, buf, size, 0);
	if (got < 0) {
		free(buf);
		free(v);
		return NULL;
	}
	buf[got] = 0;
	size_t n = 0;
	char *save = NULL;
	for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		long long ex;
		char h[HEXLEN + 2];
		if (sscanf(line, "%lld %65s", &ex, h) != 2 || strlen(h) != HEXLEN)
			continue;
		v[n].expiry = ex;
		memcpy(v[n].hash, h, HEXLEN + 1);
		n++;
	}
	free(buf);
	*n_r = n;
	return v;
}

/* a state file opened, locked and read, for the key hashed as h */
struct loaded {
	int fd;
	struct entry *v;
	size_t n;
	char h[HEXLEN + 1];
};

/* open_load - ld->h = the hash of key; open and lock path and load its
 * entries: 0, or -1 (errno set, nothing left open) */
static int open_load(struct loaded *ld, const char *path, const char *key, size_t keylen)
{
	hash_key(key, keylen, ld->h);
	ld->fd = open_locked(path);
	if (ld->fd < 0)
		return -1;
	ld->v = load(ld->fd, &ld->n);
	if (!ld->v) {
		int e = errno;
		close(ld->fd);
		errno = e;
		return -1;
	}
	return 0;
}

int sv_state_seen(const char *path, const char *key, size_t keylen, time_t now)
{
	struct loaded ld;
	if (open_load(&ld, path, key, keylen) < 0)
		return -1;
	close(ld.fd);
	int seen = 0;
	for (size_t i = 0; i < ld.n; i++)
		if (ld.v[i].expiry > (long long)now && strcmp(ld.v[i].hash, ld.h) == 0)
			seen = 1;
	free(ld.v);
	return seen;
}

static int cmp_expiry(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	return x->expiry < y->expiry ? 1 : x->expiry > y->expiry ? -1 : 0;
}

int sv_state_mark(const char *path, const char *key, size_t keylen, time_t expiry,
		  time_t now)
{
	struct loaded ld;
	if (open_load(&ld, path, key, keylen) < 0)
		return -1;
	int fd = ld.fd;
	struct entry *v = ld.v;
	size_t n = ld.n;
	const char *h = ld.h;
	/* drop expired entries and the old entry of this key */
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (v[i].expiry > (long long)now && strcmp(v[i].hash, h) != 0)
			v[k++] = v[i];
	n = k;
	if (n >= SV_STATE_MAX) {
		/* keep the entries that live longest */
		qsort(v, n, sizeof *v, cmp_expiry);
		n = SV_STATE_MAX - 1;
	}
	struct entry *nv = realloc(v, (n + 1) * sizeof *v);
	if (!nv) {
		free(v);
		close(fd);
		errno = ENOMEM;
		return -1;
	}
	v = nv;
	v[n].expiry = (long long)expiry;
	memcpy(v[n].hash, h, HEXLEN + 1);
	n++;
	size_t cap = n * LINE_MAX_LEN + 1;
	char *out = malloc(cap);
	int ret = -1;
	if (out) {
		size_t o = 0;
		for (size_t i = 0; i < n; i++)
			o += (size_t)snprintf(out + o, cap - o, "%lld %s\n", v[i].expiry, v[i].hash);
		if (pwrite(fd, out, o, 0) == (ssize_t)o && ftruncate(fd, (off_t)o) == 0 &&
		    fsync(fd) == 0)
			ret = 0;
		free(out);
	} else {
		errno = ENOMEM;
	}
	int e = errno;
	free(v);
	close(fd);
	errno = e;
	return ret;
}
