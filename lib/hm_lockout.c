/* hm_lockout.c — persistent, bounded failure counters (see hm_lockout.h).
 *
 * What for: brute-force protection shared by IMAP, POP3 and SMTP AUTH
 * (every auth-worker process) and inspected by homemail-user.  The login
 * path reserves an attempt (check + count in one locked step) before the
 * password is verified, so parallel attempts cannot overtake the counter.
 * Relies on: fcntl() record locks (one whole-file write lock per operation,
 * held by a process, released by the kernel if it dies), pread/pwrite,
 * HMAC-SHA-256 and getrandom from hm_digest, link(2) for creating the
 * secret atomically.
 * How it fails: -1 with errno on I/O errors or an unusable secret; the
 * caller decides (the auth module logs and lets the login proceed to its
 * password check rather than lock everybody out).  A corrupt or old-format
 * header is re-initialised (the reason kept for the caller's log); a torn
 * record is at worst a wrong counter, never out-of-bounds access.
 */
#include "hm_digest.h"
#include "hm_lockout.h"
#include "hm_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HDR_SIZE 64
#define REC_SIZE 64
#define KEY_SIZE HM_LOCKOUT_KEY_SIZE
#define FORMAT_VERSION 2        /* 1: unkeyed SHA-256 slots, one region */
#define CHECK_SIZE 8
static const char lockout_magic[8] = "HMLOCK1";

struct hm_lockout_rec {
	uint8_t key[KEY_SIZE];  /* all zero = empty slot */
	uint32_t failures;
	int64_t first_failure;  /* start of the counting window */
	int64_t last_failure;
	int64_t locked_until;
	uint32_t lock_count;    /* times this key was locked (informational) */
	uint8_t kind;
	uint8_t pad0[3];
	uint32_t window_id;     /* names the counting window (0 in old files) */
	uint8_t pad[REC_SIZE - KEY_SIZE - 4 - 8 * 3 - 4 - 1 - 3 - 4];
};
_Static_assert(sizeof(struct hm_lockout_rec) == REC_SIZE, "record size");

struct hm_lockout_hdr {
	char magic[8];
	uint32_t version;
	uint32_t slots;
	uint32_t rec_size;
	/* format 2 on */
	uint32_t known_slots;           /* slots [0, known_slots): accounts */
	uint32_t ipv6_prefix;
	uint8_t key_check[CHECK_SIZE];  /* HMAC(secret, "check"): which secret */
	uint8_t pad[HDR_SIZE - 8 - 4 * 5 - CHECK_SIZE];
};
_Static_assert(sizeof(struct hm_lockout_hdr) == HDR_SIZE, "header size");

struct hm_lockout {
	int fd;
	unsigned int slots;
	unsigned int known_slots;       /* region of HM_LOCKOUT_USER records */
	unsigned int ipv6_prefix;
	struct hm_lockout_policy policy;
	const char *note;               /* why open reset the file, or NULL */
	uint8_t secret[HM_LOCKOUT_SECRET_SIZE];
};

void hm_lockout_policy_default(struct hm_lockout_policy *p)
{
	p->max_failures = 10;
	p->ip_max_failures = 50;
	p->window = 900;
	p->lock_time = 900;
	p->backoff_after = 5;
	p->backoff_max = 60;
	p->slots = 16384;
	p->ipv6_prefix = 64;
}

const char *hm_lockout_verdict_name(enum hm_lockout_verdict v)
{
	switch (v) {
	case HM_LOCKOUT_ALLOW: return "allowed";
	case HM_LOCKOUT_USER_LOCKED: return "user locked out";
	case HM_LOCKOUT_USER_BACKOFF: return "user in back-off";
	case HM_LOCKOUT_IP_LOCKED: return "remote address locked out";
	case HM_LOCKOUT_TABLE_FULL: return "lockout table full for this user";
	}
	return "?";
}

unsigned int hm_lockout_slots(const struct hm_lockout *lo)
{
	return lo->slots;
}

const char *hm_lockout_open_note(const struct hm_lockout *lo)
{
	return lo->note;
}

/* file_lock - take (F_WRLCK) or drop (F_UNLCK) the whole-file lock */
static int file_lock(int fd, short type)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET };

	while (fcntl(fd, F_SETLKW, &fl) < 0) {
		if (errno != EINTR)
			return -1;
	}
	return 0;
}

/* known_slots_for - size of the accounts' region in a table of slots */
static unsigned int known_slots_for(unsigned int slots)
{
	unsigned int k = slots / 4;

	return k < HM_LOCKOUT_PROBE ? HM_LOCKOUT_PROBE : k;
}

/* key_check - which secret a file was made with (not the secret itself) */
static void key_check(const uint8_t secret[HM_LOCKOUT_SECRET_SIZE], uint8_t out[CHECK_SIZE])
{
	static const char label[] = "homemail lockout key check";
	uint8_t md[HM_SHA256_SIZE];

	hm_hmac_sha256(secret, HM_LOCKOUT_SECRET_SIZE, label, sizeof(label) - 1, NULL, 0, md);
	memcpy(out, md, CHECK_SIZE);
}

/* init_file - write a fresh header and empty table (lock held) */
static int init_file(int fd, const struct hm_lockout *lo)
{
	struct hm_lockout_hdr h;
	off_t size = (off_t)HDR_SIZE + (off_t)lo->slots * REC_SIZE;

	memset(&h, 0, sizeof(h));
	memcpy(h.magic, lockout_magic, sizeof(h.magic));
	h.version = FORMAT_VERSION;
	h.slots = lo->slots;
	h.rec_size = REC_SIZE;
	h.known_slots = lo->known_slots;
	h.ipv6_prefix = lo->ipv6_prefix;
	key_check(lo->secret, h.key_check);
	if (ftruncate(fd, 0) < 0 || ftruncate(fd, size) < 0)
		return -1;
	if (pwrite(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h))
		return errno = errno ? errno : EIO, -1;
	return 0;
}

/* ensure_dir - create the directory of path (one level, 0700) if missing */
static void ensure_dir(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');

	if (slash == NULL || slash == path || (size_t)(slash - path) >= sizeof(dir))
		return;
	memcpy(dir, path, (size_t)(slash - path));
	dir[slash - path] = '\0';
	(void)mkdir(dir, 0700);
}

/* secret_path - the secret's file: path with ".db" replaced by ".key", or
 * ".key" appended */
static int secret_path(const char *path, char *dst, size_t size)
{
	size_t n = strlen(path);

	if (n >= 3 && strcmp(path + n - 3, ".db") == 0)
		n -= 3;
	if (n > INT_MAX)
		return errno = ENAMETOOLONG, -1;
	return hm_snprintf(dst, size, "%.*s.key", (int)n, path);
}

/* create_secret - write HM_LOCKOUT_SECRET_SIZE random bytes to a fresh
 * 0600 file (O_EXCL, O_NOFOLLOW), fsync it and link it to path.  Another
 * process that got there first wins (EEXIST is success): the file appears
 * complete or not at all, so a reader never sees half a secret. */
static int create_secret(const char *path)
{
	uint8_t secret[HM_LOCKOUT_SECRET_SIZE];
	char tmp[PATH_MAX];
	int fd, ret = -1, saved;

	if (hm_snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) < 0)
		return -1;
	(void)unlink(tmp);      /* left by a dead process of the same pid */
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
	if (fd < 0)
		return -1;
	if (hm_random_bytes(secret, sizeof(secret)) == 0) {
		ssize_t w = write(fd, secret, sizeof(secret));
		if (w >= 0 && w != (ssize_t)sizeof(secret))
			errno = EIO;            /* short write: no errno of its own */
		else if (w >= 0 && fsync(fd) == 0)
			ret = 0;
	}
	explicit_bzero(secret, sizeof(secret));
	if (close(fd) < 0 && ret == 0)
		ret = -1;
	if (ret == 0 && link(tmp, path) < 0 && errno != EEXIST)
		ret = -1;
	saved = errno;
	(void)unlink(tmp);
	errno = saved;
	return ret;
}

/* load_secret - read the installation secret of state file path, creating
 * it when missing; refuse one that others could read or have written */
static int load_secret(const char *path, uint8_t secret[HM_LOCKOUT_SECRET_SIZE])
{
	char kpath[PATH_MAX];
	struct stat st;
	ssize_t got;
	int fd = -1, saved;

	if (secret_path(path, kpath, sizeof(kpath)) < 0)
		return -1;
	for (int attempt = 0; attempt < 2 && fd < 0; attempt++) {
		fd = hm_open_regular(kpath, O_RDONLY, 0, &st);
		if (fd < 0 && (errno != ENOENT || attempt > 0 || create_secret(kpath) < 0))
			return -1;
	}
	if (st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
		errno = EPERM;
		goto fail;
	}
	if (st.st_size != HM_LOCKOUT_SECRET_SIZE) {
		errno = EINVAL;
		goto fail;
	}
	got = pread(fd, secret, HM_LOCKOUT_SECRET_SIZE, 0);
	if (got != HM_LOCKOUT_SECRET_SIZE) {
		errno = got < 0 ? errno : EINVAL;
		goto fail;
	}
	close(fd);
	return 0;
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

/* header_verdict - NULL when h describes a usable format-2 file of size
 * bytes for this handle's secret and prefix (geometry copied into lo), else
 * why it must be reset ("" for a new, empty file: no note) */
static const char *header_verdict(struct hm_lockout *lo, const struct hm_lockout_hdr *h,
				  ssize_t got, off_t size)
{
	uint8_t check[CHECK_SIZE];

	if (size == 0)
		return "";
	if (got != (ssize_t)sizeof(*h) || memcmp(h->magic, lockout_magic, sizeof(h->magic)) != 0)
		return "unrecognised header: reset";
	if (h->version == 1)
		return "format 1 (unkeyed slots, one region) cannot be converted: reset";
	if (h->version != FORMAT_VERSION || h->rec_size != REC_SIZE ||
	    h->slots < HM_LOCKOUT_MIN_SLOTS || h->slots > HM_LOCKOUT_MAX_SLOTS ||
	    h->known_slots < HM_LOCKOUT_PROBE || h->known_slots > h->slots - HM_LOCKOUT_PROBE ||
	    h->ipv6_prefix < 1 || h->ipv6_prefix > 128 ||
	    size != (off_t)HDR_SIZE + (off_t)h->slots * REC_SIZE)
		return "unrecognised header or size: reset";
	key_check(lo->secret, check);
	if (memcmp(check, h->key_check, CHECK_SIZE) != 0)
		return "made under another secret: reset";
	if (lo->policy.ipv6_prefix != 0 && lo->policy.ipv6_prefix != h->ipv6_prefix)
		return "counted under another IPv6 prefix: reset";
	lo->slots = h->slots;           /* the file's geometry wins over the policy */
	lo->known_slots = h->known_slots;
	lo->ipv6_prefix = h->ipv6_prefix;
	return NULL;
}

int hm_lockout_open(const char *path, const struct hm_lockout_policy *policy,
		    struct hm_lockout **lo_r)
{
	struct hm_lockout_hdr h;
	struct hm_lockout *lo;
	struct stat st;
	const char *why;
	ssize_t got;
	int fd = -1, saved;

	if (policy->slots < HM_LOCKOUT_MIN_SLOTS || policy->slots > HM_LOCKOUT_MAX_SLOTS ||
	    policy->ipv6_prefix > 128)
		return errno = EINVAL, -1;
	lo = calloc(1, sizeof(*lo));
	if (lo == NULL)
		return -1;
	lo->policy = *policy;
	lo->slots = policy->slots;
	lo->known_slots = known_slots_for(policy->slots);
	lo->ipv6_prefix = policy->ipv6_prefix != 0 ? policy->ipv6_prefix : 64;
	ensure_dir(path);
	if (load_secret(path, lo->secret) < 0)
		goto fail;
	fd = hm_open_regular(path, O_RDWR | O_CREAT, 0600, &st);
	if (fd < 0)
		goto fail;
	if (file_lock(fd, F_WRLCK) < 0)
		goto fail;
	memset(&h, 0, sizeof(h));
	got = pread(fd, &h, sizeof(h), 0);
	why = fstat(fd, &st) == 0 ? header_verdict(lo, &h, got, st.st_size)
				  : "cannot stat: reset";
	if (why != NULL) {
		lo->note = why[0] != '\0' ? why : NULL;
		if (init_file(fd, lo) < 0) {
			saved = errno;
			(void)file_lock(fd, F_UNLCK);
			errno = saved;
			goto fail;
		}
	}
	(void)file_lock(fd, F_UNLCK);
	lo->fd = fd;
	*lo_r = lo;
	return 0;
fail:
	saved = errno;
	if (fd >= 0)
		close(fd);
	explicit_bzero(lo->secret, sizeof(lo->secret));
	free(lo);
	errno = saved;
	return -1;
}

void hm_lockout_close(struct hm_lockout **lop)
{
	if (*lop == NULL)
		return;
	close((*lop)->fd);
	explicit_bzero((*lop)->secret, sizeof((*lop)->secret));
	free(*lop);
	*lop = NULL;
}

int hm_lockout_ip_key(const char *ip, unsigned int prefix, char *dst, size_t dstsize)
{
	struct in_addr a4;
	struct in6_addr a6;
	char txt[INET6_ADDRSTRLEN];

	if (inet_pton(AF_INET, ip, &a4) == 1)
		return inet_ntop(AF_INET, &a4, dst, (socklen_t)dstsize) != NULL ? 0 : -1;
	if (inet_pton(AF_INET6, ip, &a6) != 1 || prefix < 1 || prefix > 128)
		return errno = EINVAL, -1;
	if (IN6_IS_ADDR_V4MAPPED(&a6)) {
		memcpy(&a4, &a6.s6_addr[12], sizeof(a4));
		return inet_ntop(AF_INET, &a4, dst, (socklen_t)dstsize) != NULL ? 0 : -1;
	}
	/* keep the first prefix bits, clear the rest */
	for (unsigned int i = 0; i < 16; i++) {
		unsigned int bits = prefix > i * 8 ? prefix - i * 8 : 0;
		if (bits < 8)
			a6.s6_addr[i] &= (uint8_t)(0xff00u >> bits);
	}
	if (inet_ntop(AF_INET6, &a6, txt, sizeof(txt)) == NULL)
		return -1;
	return hm_snprintf(dst, dstsize, "%s/%u", txt, prefix);
}

/* make_key - HMAC-SHA-256 under the installation secret of kind byte + key
 * (an address normalised first), truncated; never all-zero */
static void make_key(const struct hm_lockout *lo, enum hm_lockout_kind kind, const char *key,
		     uint8_t out[KEY_SIZE])
{
	char ipkey[HM_LOCKOUT_IP_KEY_SIZE];
	uint8_t md[HM_SHA256_SIZE];
	uint8_t k = (uint8_t)kind;

	if (kind == HM_LOCKOUT_IP &&
	    hm_lockout_ip_key(key, lo->ipv6_prefix, ipkey, sizeof(ipkey)) == 0)
		key = ipkey;
	hm_hmac_sha256(lo->secret, sizeof(lo->secret), &k, 1, key, strlen(key), md);
	memcpy(out, md, KEY_SIZE);
	out[KEY_SIZE - 1] |= 1;         /* the all-zero key marks empty slots */
}

/* region - first slot and size of the region kind's records live in:
 * accounts apart from what outsiders can invent (names, addresses) */
static void region(const struct hm_lockout *lo, enum hm_lockout_kind kind,
		   unsigned int *base_r, unsigned int *size_r)
{
	if (kind == HM_LOCKOUT_USER) {
		*base_r = 0;
		*size_r = lo->known_slots;
	} else {
		*base_r = lo->known_slots;
		*size_r = lo->slots - lo->known_slots;
	}
}

/* home_of - key's first slot within its region (offset from the base) */
static unsigned int home_of(const uint8_t key[KEY_SIZE], unsigned int size)
{
	uint32_t h;

	memcpy(&h, key, sizeof(h));
	return (unsigned int)(h % size);
}

unsigned int hm_lockout_home_slot(const struct hm_lockout *lo, enum hm_lockout_kind kind,
				  const char *key)
{
	uint8_t k[KEY_SIZE];
	unsigned int base, size;

	make_key(lo, kind, key, k);
	region(lo, kind, &base, &size);
	return base + home_of(k, size);
}

/* rec_live - does r still carry information at `now`? */
static bool rec_live(const struct hm_lockout *lo, const struct hm_lockout_rec *r, time_t now)
{
	static const uint8_t zero[KEY_SIZE];

	if (memcmp(r->key, zero, KEY_SIZE) == 0)
		return false;
	if (r->locked_until > now)
		return true;
	return r->failures > 0 && r->first_failure + (int64_t)lo->policy.window > now;
}

/* rec_protected - is r a lock or a back-off in progress, which must never
 * be evicted to make room for another key?  (Back-off counts from
 * backoff_after failures within the window, whether or not the delay of
 * the last one has run out: evicting it would restart the count.) */
static bool rec_protected(const struct hm_lockout *lo, const struct hm_lockout_rec *r, time_t now)
{
	const struct hm_lockout_policy *p = &lo->policy;

	if (!rec_live(lo, r, now))
		return false;
	if (r->locked_until > now)
		return true;
	return r->kind != HM_LOCKOUT_IP && p->backoff_after > 0 && r->failures >= p->backoff_after;
}

/* read_run - n records from slot first on into recs (n <= HM_LOCKOUT_PROBE);
 * whatever a truncated file lacks reads as empty slots */
static int read_run(struct hm_lockout *lo, unsigned int first, unsigned int n,
		    struct hm_lockout_rec *recs)
{
	size_t want = (size_t)n * REC_SIZE;
	ssize_t got = pread(lo->fd, recs, want, (off_t)HDR_SIZE + (off_t)first * REC_SIZE);

	if (got < 0)
		return -1;
	if ((size_t)got < want)
		memset((uint8_t *)recs + got, 0, want - (size_t)got);
	return 0;
}

/* read_probe - read the HM_LOCKOUT_PROBE records starting at key's home
 * slot in the region of kind: one pread, two when the run wraps around the
 * end of the region */
static int read_probe(struct hm_lockout *lo, enum hm_lockout_kind kind, const uint8_t key[KEY_SIZE],
		      struct hm_lockout_rec recs[HM_LOCKOUT_PROBE], unsigned int idx[HM_LOCKOUT_PROBE])
{
	unsigned int base, size, home, first_run;

	region(lo, kind, &base, &size);
	home = home_of(key, size);
	for (unsigned int i = 0; i < HM_LOCKOUT_PROBE; i++)
		idx[i] = base + (home + i) % size;
	/* each region has >= HM_LOCKOUT_PROBE slots (checked at open), so at
	 * most one wrap */
	first_run = size - home < HM_LOCKOUT_PROBE ? size - home : HM_LOCKOUT_PROBE;
	if (read_run(lo, base + home, first_run, recs) < 0)
		return -1;
	if (first_run < HM_LOCKOUT_PROBE &&
	    read_run(lo, base, HM_LOCKOUT_PROBE - first_run, recs + first_run) < 0)
		return -1;
	return 0;
}

/* write_rec - store one record at slot idx */
static int write_rec(struct hm_lockout *lo, unsigned int idx, const struct hm_lockout_rec *r)
{
	off_t off = (off_t)HDR_SIZE + (off_t)idx * REC_SIZE;
	ssize_t n = pwrite(lo->fd, r, REC_SIZE, off);

	if (n != REC_SIZE)
		return errno = n < 0 ? errno : EIO, -1;
	return 0;
}

/* find_slot - position of key among the probed records (-1 if absent);
 * *free_r gets the slot to (re)use for a new record: a dead one, else the
 * live unprotected one with the fewest failures (then the oldest), else -1
 * (every probed record is a lock or a back-off: none is evicted) */
static int find_slot(const struct hm_lockout *lo, const uint8_t key[KEY_SIZE],
		     const struct hm_lockout_rec recs[HM_LOCKOUT_PROBE], time_t now,
		     int *free_r)
{
	int found = -1, freeslot = -1, victim = -1;

	for (int i = 0; i < HM_LOCKOUT_PROBE; i++) {
		const struct hm_lockout_rec *r = &recs[i];
		if (memcmp(r->key, key, KEY_SIZE) == 0) {
			found = i;
			break;
		}
		if (!rec_live(lo, r, now)) {
			if (freeslot < 0)
				freeslot = i;
		} else if (!rec_protected(lo, r, now) &&
			   (victim < 0 || r->failures < recs[victim].failures ||
			    (r->failures == recs[victim].failures &&
			     r->last_failure < recs[victim].last_failure))) {
			victim = i;
		}
	}
	*free_r = freeslot >= 0 ? freeslot : victim;
	return found;
}

/* status_of - fill st from a record, applying the policy for kind */
static void status_of(const struct hm_lockout *lo, const struct hm_lockout_rec *r,
		      enum hm_lockout_kind kind, time_t now, struct hm_lockout_status *st)
{
	const struct hm_lockout_policy *p = &lo->policy;

	memset(st, 0, sizeof(*st));
	if (!rec_live(lo, r, now))
		return;
	if (r->first_failure + (int64_t)p->window > now) {
		st->failures = r->failures;
		st->last_failure = (time_t)r->last_failure;
	}
	if (r->locked_until > now) {
		st->locked = true;
		st->locked_until = (time_t)r->locked_until;
		st->retry_after = (time_t)r->locked_until;
		return;
	}
	if (kind == HM_LOCKOUT_USER && p->backoff_after > 0 &&
	    st->failures >= p->backoff_after) {
		unsigned int shift = st->failures - p->backoff_after;
		uint64_t delay = shift >= 31 ? p->backoff_max : (1ULL << shift);
		if (delay > p->backoff_max)
			delay = p->backoff_max;
		if ((int64_t)now < r->last_failure + (int64_t)delay) {
			st->backoff = true;
			st->retry_after = (time_t)(r->last_failure + (int64_t)delay);
		}
	}
}

/* get_locked - status of one key; lock already held */
static int get_locked(struct hm_lockout *lo, enum hm_lockout_kind kind,
		      const char *key, time_t now, struct hm_lockout_status *st)
{
	struct hm_lockout_rec recs[HM_LOCKOUT_PROBE];
	unsigned int idx[HM_LOCKOUT_PROBE];
	uint8_t k[KEY_SIZE];
	int i, fr;

	memset(st, 0, sizeof(*st));
	make_key(lo, kind, key, k);
	if (read_probe(lo, kind, k, recs, idx) < 0)
		return -1;
	i = find_slot(lo, k, recs, now, &fr);
	if (i >= 0)
		status_of(lo, &recs[i], kind, now, st);
	return 0;
}

int hm_lockout_get(struct hm_lockout *lo, enum hm_lockout_kind kind,
		   const char *key, time_t now, struct hm_lockout_status *st_r)
{
	int ret, saved;

	if (file_lock(lo->fd, F_WRLCK) < 0)
		return -1;
	ret = get_locked(lo, kind, key, now, st_r);
	saved = errno;
	(void)file_lock(lo->fd, F_UNLCK);
	errno = saved;
	return ret;
}

/* check_locked - verdict for user (of kind ukind) and ip at now; lock
 * held, *verdict_r (ALLOW) and *status_r (zero) preset by the caller */
static int check_locked(struct hm_lockout *lo, enum hm_lockout_kind ukind,
			const char *user, const char *ip,
			time_t now, enum hm_lockout_verdict *verdict_r,
			struct hm_lockout_status *status_r)
{
	struct hm_lockout_status st;

	if (ip != NULL && ip[0] != '\0' && lo->policy.ip_max_failures > 0) {
		if (get_locked(lo, HM_LOCKOUT_IP, ip, now, &st) < 0)
			return -1;
		if (st.locked) {
			*verdict_r = HM_LOCKOUT_IP_LOCKED;
			*status_r = st;
			return 0;
		}
	}
	if (user != NULL && user[0] != '\0' && lo->policy.max_failures > 0) {
		if (get_locked(lo, ukind, user, now, &st) < 0)
			return -1;
		if (st.locked)
			*verdict_r = HM_LOCKOUT_USER_LOCKED;
		else if (st.backoff)
			*verdict_r = HM_LOCKOUT_USER_BACKOFF;
		if (*verdict_r != HM_LOCKOUT_ALLOW)
			*status_r = st;
	}
	return 0;
}

int hm_lockout_check(struct hm_lockout *lo, const char *user, const char *ip,
		     time_t now, enum hm_lockout_verdict *verdict_r,
		     struct hm_lockout_status *status_r)
{
	int ret, saved;

	*verdict_r = HM_LOCKOUT_ALLOW;
	memset(status_r, 0, sizeof(*status_r));
	if (file_lock(lo->fd, F_WRLCK) < 0)
		return -1;
	ret = check_locked(lo, HM_LOCKOUT_USER, user, ip, now, verdict_r, status_r);
	saved = errno;
	(void)file_lock(lo->fd, F_UNLCK);
	errno = saved;
	return ret;
}

/* policy_max - failure limit of one key kind (0: that kind is not counted) */
static unsigned int policy_max(const struct hm_lockout *lo, enum hm_lockout_kind kind)
{
	return kind == HM_LOCKOUT_IP ? lo->policy.ip_max_failures : lo->policy.max_failures;
}

/* window_id_new - a fresh nonzero name for a counting window.  Only
 * equality matters (a reservation given back must still be in the window
 * it was counted in), so the fallback need not be secret. */
static uint32_t window_id_new(time_t now)
{
	uint32_t id = 0;

	if (hm_random_bytes(&id, sizeof(id)) < 0)
		id = (uint32_t)now ^ ((uint32_t)getpid() << 12);
	return id != 0 ? id : 1;
}

/* start_window - a new counting window begins at now */
static void start_window(struct hm_lockout_rec *r, time_t now)
{
	r->failures = 0;
	r->first_failure = now;
	r->window_id = window_id_new(now);
}

/* count_failure - add one failure of kind to key at now; lock held.  When
 * hold_r is not NULL it records what was done, for give_back.  A key
 * locked at now is left alone (refused attempts are not counted).  *full_r
 * is set when key has no record and no slot can be freed for it (nothing
 * counted then). */
static int count_failure(struct hm_lockout *lo, enum hm_lockout_kind kind, const char *key,
			 time_t now, struct hm_lockout_hold *hold_r, bool *full_r)
{
	struct hm_lockout_rec recs[HM_LOCKOUT_PROBE], *r;
	struct hm_lockout_hold h;
	unsigned int idx[HM_LOCKOUT_PROBE];
	unsigned int max = policy_max(lo, kind);
	uint8_t k[KEY_SIZE];
	int i, fr;

	*full_r = false;
	if (max == 0)
		return 0;
	make_key(lo, kind, key, k);
	if (read_probe(lo, kind, k, recs, idx) < 0)
		return -1;
	i = find_slot(lo, k, recs, now, &fr);
	if (i < 0) {
		if (fr < 0) {
			*full_r = true;
			return 0;
		}
		i = fr;
		memset(&recs[i], 0, REC_SIZE);
		memcpy(recs[i].key, k, KEY_SIZE);
		recs[i].kind = (uint8_t)kind;
	}
	r = &recs[i];
	if (r->locked_until > now)
		return 0;
	if (r->failures == 0 || r->first_failure + (int64_t)lo->policy.window <= now)
		start_window(r, now);
	memset(&h, 0, sizeof(h));
	memcpy(h.key, k, KEY_SIZE);
	h.kind = (uint8_t)kind;
	h.window_id = r->window_id;
	h.window_start = r->first_failure;
	h.prev_last = r->last_failure;
	r->failures++;
	r->last_failure = now;
	if (r->failures >= max) {
		r->locked_until = now + (int64_t)lo->policy.lock_time;
		r->lock_count++;
		start_window(r, now);   /* the count restarts once the lock is set */
		h.locked_until = r->locked_until;
		h.lock_window = r->window_id;
	}
	if (write_rec(lo, idx[i], r) < 0)
		return -1;
	if (hold_r != NULL)
		*hold_r = h;
	return 0;
}

/* give_back - undo the failure a reservation counted; lock held.  Only a
 * record still as the reservation left it is changed: once a later attempt
 * has set a lock or a new window began, the count stays (the safe side). */
static int give_back(struct hm_lockout *lo, const struct hm_lockout_hold *h, time_t now)
{
	struct hm_lockout_rec recs[HM_LOCKOUT_PROBE], *r;
	unsigned int idx[HM_LOCKOUT_PROBE];
	unsigned int max = policy_max(lo, (enum hm_lockout_kind)h->kind);
	int i, fr;

	if (h->kind == 0)
		return 0;               /* nothing held */
	if (read_probe(lo, (enum hm_lockout_kind)h->kind, h->key, recs, idx) < 0)
		return -1;
	i = find_slot(lo, h->key, recs, now, &fr);
	if (i < 0)
		return 0;               /* cleared or evicted meanwhile */
	r = &recs[i];
	if (h->locked_until != 0) {
		/* this attempt set the lock: lift it if nothing happened since */
		if (r->locked_until != h->locked_until || r->window_id != h->lock_window ||
		    r->failures != 0)
			return 0;
		r->locked_until = 0;
		if (r->lock_count > 0)
			r->lock_count--;
		r->failures = max > 0 ? max - 1 : 0;
		r->first_failure = h->window_start;
		r->window_id = h->window_id;
		r->last_failure = h->prev_last;
	} else {
		if (r->window_id != h->window_id || r->failures == 0 || r->locked_until > now)
			return 0;
		r->failures--;
	}
	return write_rec(lo, idx[i], r);
}

/* clear_key - forget the record of key k of kind; lock held */
static int clear_key(struct hm_lockout *lo, enum hm_lockout_kind kind, const uint8_t k[KEY_SIZE])
{
	struct hm_lockout_rec recs[HM_LOCKOUT_PROBE];
	unsigned int idx[HM_LOCKOUT_PROBE];
	int i, fr;

	if (read_probe(lo, kind, k, recs, idx) < 0)
		return -1;
	i = find_slot(lo, k, recs, 0, &fr);
	if (i < 0)
		return 0;
	memset(&recs[i], 0, REC_SIZE);
	return write_rec(lo, idx[i], &recs[i]);
}

int hm_lockout_reserve(struct hm_lockout *lo, enum hm_lockout_kind ukind,
		       const char *user, const char *ip,
		       time_t now, enum hm_lockout_verdict *verdict_r,
		       struct hm_lockout_status *status_r, struct hm_lockout_resv *resv_r)
{
	bool full = false;
	int ret, saved;

	if (ukind != HM_LOCKOUT_USER && ukind != HM_LOCKOUT_UNKNOWN)
		return errno = EINVAL, -1;

	memset(resv_r, 0, sizeof(*resv_r));
	*verdict_r = HM_LOCKOUT_ALLOW;
	memset(status_r, 0, sizeof(*status_r));
	if (file_lock(lo->fd, F_WRLCK) < 0)
		return -1;
	/* check and count under one lock: no other process can pass the
	 * check on the same counter in between */
	ret = check_locked(lo, ukind, user, ip, now, verdict_r, status_r);
	if (ret == 0 && *verdict_r == HM_LOCKOUT_ALLOW) {
		if (user != NULL && user[0] != '\0')
			ret = count_failure(lo, ukind, user, now, &resv_r->user, &full);
		if (ret == 0 && full) {
			/* fail-closed: a key that cannot be counted would get
			 * unlimited guesses (see docs/auth.md) */
			*verdict_r = HM_LOCKOUT_TABLE_FULL;
			status_r->retry_after = now;
		} else if (ret == 0 && ip != NULL && ip[0] != '\0') {
			ret = count_failure(lo, HM_LOCKOUT_IP, ip, now, &resv_r->ip, &full);
			/* fail-open: a full address neighbourhood must not refuse
			 * real users; their per-user counters still apply */
			resv_r->ip_unrecorded = full;
		}
	}
	saved = errno;
	if (ret < 0) {
		*verdict_r = HM_LOCKOUT_ALLOW;
		memset(status_r, 0, sizeof(*status_r));
	}
	(void)file_lock(lo->fd, F_UNLCK);
	errno = saved;
	return ret;
}

/* settle - finish a reservation: clear_user says the user key is forgotten
 * (success) rather than given back; the reservation is emptied either way */
static int settle(struct hm_lockout *lo, struct hm_lockout_resv *resv, bool clear_user,
		  time_t now)
{
	int ret = 0, saved;

	if (resv->user.kind == 0 && resv->ip.kind == 0)
		return 0;
	if (file_lock(lo->fd, F_WRLCK) < 0)
		return -1;
	if (resv->user.kind != 0)
		ret = clear_user ? clear_key(lo, (enum hm_lockout_kind)resv->user.kind, resv->user.key)
				 : give_back(lo, &resv->user, now);
	if (ret == 0)
		ret = give_back(lo, &resv->ip, now);
	saved = errno;
	(void)file_lock(lo->fd, F_UNLCK);
	memset(resv, 0, sizeof(*resv));
	errno = saved;
	return ret;
}

int hm_lockout_succeeded(struct hm_lockout *lo, struct hm_lockout_resv *resv, time_t now)
{
	return settle(lo, resv, true, now);
}

int hm_lockout_cancel(struct hm_lockout *lo, struct hm_lockout_resv *resv, time_t now)
{
	return settle(lo, resv, false, now);
}

int hm_lockout_record(struct hm_lockout *lo, const char *user, const char *ip,
		      bool success, time_t now)
{
	uint8_t k[KEY_SIZE];
	bool full;
	int ret = 0, saved;

	if (file_lock(lo->fd, F_WRLCK) < 0)
		return -1;
	if (user != NULL && user[0] != '\0') {
		if (!success)
			ret = count_failure(lo, HM_LOCKOUT_USER, user, now, NULL, &full);
		else if (lo->policy.max_failures > 0) {
			make_key(lo, HM_LOCKOUT_USER, user, k);
			ret = clear_key(lo, HM_LOCKOUT_USER, k);
		}
	}
	/* a success never counts against (nor clears) an address */
	if (ret == 0 && !success && ip != NULL && ip[0] != '\0')
		ret = count_failure(lo, HM_LOCKOUT_IP, ip, now, NULL, &full);
	saved = errno;
	(void)file_lock(lo->fd, F_UNLCK);
	errno = saved;
	return ret;
}

int hm_lockout_clear(struct hm_lockout *lo, enum hm_lockout_kind kind, const char *key)
{
	uint8_t k[KEY_SIZE];
	int ret, saved;

	make_key(lo, kind, key, k);
	if (file_lock(lo->fd, F_WRLCK) < 0)
		return -1;
	ret = clear_key(lo, kind, k);
	saved = errno;
	(void)file_lock(lo->fd, F_UNLCK);
	errno = saved;
	return ret;
}
