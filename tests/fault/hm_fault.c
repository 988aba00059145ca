/* hm_fault.c — LD_PRELOAD shim that makes chosen file-system calls fail.
 *
 * What for: proving that homemail-deliver (or any CLI) survives I/O errors:
 * the test harness runs the program once with HM_FAULT_LOG to list every
 * call it makes, then once per call number with that call failing, and
 * checks that the program either completed or failed cleanly.
 *
 * Relies on: glibc's dynamic linker (RTLD_NEXT to reach the real calls),
 * /proc/self/fd to name the file behind a descriptor, fnmatch(3).
 * Calls made inside glibc itself (stdio's internal write, for example) do
 * not go through the PLT and are not seen; programs that write with
 * write(2)/fsync(2) directly, as homemail's do, are covered.
 *
 * Environment (all optional; with none set the shim only passes calls on):
 *   HM_FAULT_CALLS  comma list of calls to watch (default: all of them):
 *                   open openat creat write pwrite writev fsync fdatasync
 *                   rename renameat link linkat mkdir mkdirat close unlink
 *   HM_FAULT_PATH   fnmatch(3) pattern; only calls whose path (or the path
 *                   behind the fd, or either path of rename/link) matches
 *                   are watched.  Relative paths are made absolute first.
 *   HM_FAULT_NTH    the watched call number (1-based) that fails; 0 = none
 *   HM_FAULT_COUNT  how many watched calls fail from NTH on (default 1,
 *                   -1 = every call from NTH on)
 *   HM_FAULT_ERRNO  EIO ENOSPC EDQUOT EINTR EACCES EROFS EMFILE or a number
 *                   (default EIO); SHORT makes write/pwrite write half and
 *                   return the short count (no error); KILL raises SIGKILL
 *                   instead of returning (a crash at exactly that point)
 *   HM_FAULT_LOG    append one line per watched call: "N CALL PATH [FAIL]"
 *
 * How it fails: a malformed setting is reported once on stderr and the
 * shim then injects nothing (never a silent half-configuration).
 * close() with an injected error still closes the descriptor (as NFS does).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

enum fcall {
	F_OPEN, F_OPENAT, F_CREAT, F_WRITE, F_PWRITE, F_WRITEV, F_FSYNC,
	F_FDATASYNC, F_RENAME, F_RENAMEAT, F_LINK, F_LINKAT, F_MKDIR,
	F_MKDIRAT, F_CLOSE, F_UNLINK, F_NCALLS
};

static const char *const call_names[F_NCALLS] = {
	"open", "openat", "creat", "write", "pwrite", "writev", "fsync",
	"fdatasync", "rename", "renameat", "link", "linkat", "mkdir",
	"mkdirat", "close", "unlink",
};

#define ACT_ERRNO 0
#define ACT_SHORT 1
#define ACT_KILL 2

static struct {
	int ready;               /* 1 = configured, -1 = disabled (bad config) */
	unsigned char watch[F_NCALLS];
	const char *pattern;     /* NULL = every path */
	long nth;                /* 0 = inject nothing */
	long count;              /* -1 = unbounded */
	int err;
	int action;
	int logfd;
} cfg;

static atomic_long call_counter;
static __thread int in_shim;  /* our own bookkeeping calls pass straight on */

/* real_* - the next definition of each call (libc's), looked up once */
static void *real(const char *name)
{
	void *p = dlsym(RTLD_NEXT, name);

	if (!p) {
		static const char msg[] = "hm_fault: dlsym failed\n";
		(void)syscall(SYS_write, 2, msg, sizeof msg - 1);
		abort();
	}
	return p;
}

#define REAL(type, name) \
	static __typeof__(type) real_fn; \
	if (!real_fn) real_fn = (type)real(name)

/* errno_from_name - EIO/ENOSPC/... or a decimal number; -1 when unknown */
static int errno_from_name(const char *s)
{
	static const struct { const char *n; int e; } tab[] = {
		{ "EIO", EIO }, { "ENOSPC", ENOSPC }, { "EDQUOT", EDQUOT },
		{ "EINTR", EINTR }, { "EACCES", EACCES }, { "EROFS", EROFS },
		{ "EMFILE", EMFILE }, { "ENFILE", ENFILE }, { "EPERM", EPERM },
		{ "ENOMEM", ENOMEM }, { "EAGAIN", EAGAIN }, { "ESTALE", ESTALE },
	};
	char *end;
	long v;

	for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
		if (strcmp(s, tab[i].n) == 0)
			return tab[i].e;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *s == '\0' || *end != '\0' || v <= 0 || v > 4095)
		return -1;
	return (int)v;
}

/* bad_config - report a setting once and disable injection */
static void bad_config(const char *what, const char *val)
{
	char line[512];
	int n = snprintf(line, sizeof line, "hm_fault: bad %s=%s; injecting nothing\n",
			 what, val);

	if (n > 0)
		(void)syscall(SYS_write, 2, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
	cfg.ready = -1;
}

/* configure - read the environment once (first intercepted call) */
static void configure(void)
{
	const char *s;
	char *end;

	cfg.logfd = -1;
	cfg.count = 1;
	cfg.err = EIO;
	s = getenv("HM_FAULT_CALLS");
	if (s && *s) {
		char tmp[512];
		char *save = NULL;

		if (strlen(s) >= sizeof tmp) {
			bad_config("HM_FAULT_CALLS", s);
			return;
		}
		strcpy(tmp, s);
		for (char *t = strtok_r(tmp, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
			int found = 0;

			for (int i = 0; i < F_NCALLS; i++)
				if (strcmp(t, call_names[i]) == 0)
					cfg.watch[i] = 1, found = 1;
			if (!found) {
				bad_config("HM_FAULT_CALLS", s);
				return;
			}
		}
	} else {
		memset(cfg.watch, 1, sizeof cfg.watch);
	}
	s = getenv("HM_FAULT_PATH");
	cfg.pattern = (s && *s) ? s : NULL;
	s = getenv("HM_FAULT_NTH");
	if (s && *s) {
		errno = 0;
		cfg.nth = strtol(s, &end, 10);
		if (errno || *end || cfg.nth < 0) {
			bad_config("HM_FAULT_NTH", s);
			return;
		}
	}
	s = getenv("HM_FAULT_COUNT");
	if (s && *s) {
		errno = 0;
		cfg.count = strtol(s, &end, 10);
		if (errno || *end || cfg.count < -1 || cfg.count == 0) {
			bad_config("HM_FAULT_COUNT", s);
			return;
		}
	}
	s = getenv("HM_FAULT_ERRNO");
	if (s && *s) {
		if (strcmp(s, "SHORT") == 0) {
			cfg.action = ACT_SHORT;
		} else if (strcmp(s, "KILL") == 0) {
			cfg.action = ACT_KILL;
		} else if ((cfg.err = errno_from_name(s)) < 0) {
			bad_config("HM_FAULT_ERRNO", s);
			return;
		}
	}
	s = getenv("HM_FAULT_LOG");
	if (s && *s) {
		cfg.logfd = (int)syscall(SYS_openat, AT_FDCWD, s,
					 O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (cfg.logfd < 0) {
			bad_config("HM_FAULT_LOG", s);
			return;
		}
	}
	cfg.ready = 1;
}

/* abs_path - dirfd-relative or cwd-relative path made absolute into out */
static const char *abs_path(int dirfd, const char *path, char *out, size_t outsz)
{
	char base[PATH_MAX];
	ssize_t n;

	if (!path)
		return "";
	if (path[0] == '/')
		return path;
	if (dirfd == AT_FDCWD) {
		if (!getcwd(base, sizeof base))
			return path;
	} else {
		char proc[64];

		snprintf(proc, sizeof proc, "/proc/self/fd/%d", dirfd);
		n = readlink(proc, base, sizeof base - 1);
		if (n < 0)
			return path;
		base[n] = '\0';
	}
	if ((size_t)snprintf(out, outsz, "%s/%s", base, path) >= outsz)
		return path;
	return out;
}

/* fd_path - the file behind fd, or "" */
static const char *fd_path(int fd, char *out, size_t outsz)
{
	char proc[64];
	ssize_t n;

	snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
	n = readlink(proc, out, outsz - 1);
	if (n < 0)
		return "";
	out[n] = '\0';
	return out;
}

/* decide - count a watched call; returns 1 when this call must fail */
static int decide(enum fcall c, const char *p1, const char *p2)
{
	long n;
	int fail;

	if (in_shim)
		return 0;
	if (!cfg.ready)
		configure();
	if (cfg.ready < 0 || !cfg.watch[c])
		return 0;
	if (cfg.pattern &&
	    fnmatch(cfg.pattern, p1 ? p1 : "", 0) != 0 &&
	    (!p2 || fnmatch(cfg.pattern, p2, 0) != 0))
		return 0;
	n = atomic_fetch_add(&call_counter, 1) + 1;
	fail = cfg.nth > 0 && n >= cfg.nth &&
	       (cfg.count < 0 || n < cfg.nth + cfg.count);
	if (cfg.logfd >= 0) {
		char line[2 * PATH_MAX + 64];
		int len = snprintf(line, sizeof line, "%ld %s %s%s%s%s\n", n,
				   call_names[c], p1 ? p1 : "", p2 ? " " : "",
				   p2 ? p2 : "", fail ? " FAIL" : "");

		if (len > 0)
			(void)syscall(SYS_write, cfg.logfd, line,
				      (size_t)len < sizeof line ? (size_t)len : sizeof line - 1);
	}
	if (fail && cfg.action == ACT_KILL)
		raise(SIGKILL);
	return fail;
}

/* watched_path/watched_fd - decide() with the path worked out only when needed */
static int watched_path(enum fcall c, int dirfd, const char *path, int dirfd2, const char *path2)
{
	char a[PATH_MAX], b[PATH_MAX];
	int r;

	if (in_shim)
		return 0;
	if (!cfg.ready)
		configure();
	if (cfg.ready < 0 || !cfg.watch[c])
		return 0;
	in_shim = 1;
	if (!cfg.pattern && cfg.logfd < 0) {
		in_shim = 0;
		return decide(c, path, path2);
	}
	{
		const char *p1 = abs_path(dirfd, path, a, sizeof a);
		const char *p2 = path2 ? abs_path(dirfd2, path2, b, sizeof b) : NULL;

		in_shim = 0;
		r = decide(c, p1, p2);
	}
	return r;
}

static int watched_fd(enum fcall c, int fd)
{
	char a[PATH_MAX];
	const char *p;

	if (in_shim)
		return 0;
	if (!cfg.ready)
		configure();
	if (cfg.ready < 0 || !cfg.watch[c])
		return 0;
	if (!cfg.pattern && cfg.logfd < 0)
		return decide(c, NULL, NULL);
	if (fd == cfg.logfd)
		return 0;
	in_shim = 1;
	p = fd_path(fd, a, sizeof a);
	in_shim = 0;
	return decide(c, p, NULL);
}

#define INJECT(ret) do { errno = cfg.err; return (ret); } while (0)

/* open_mode - the mode argument of open(), read only with O_CREAT/O_TMPFILE */
static mode_t open_mode(int flags, va_list ap)
{
	if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE)
		return (mode_t)va_arg(ap, int);
	return 0;
}

int open(const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;
	REAL(int (*)(const char *, int, ...), "open");

	va_start(ap, flags);
	mode = open_mode(flags, ap);
	va_end(ap);
	if (watched_path(F_OPEN, AT_FDCWD, path, 0, NULL))
		INJECT(-1);
	return real_fn(path, flags, mode);
}

int open64(const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;
	REAL(int (*)(const char *, int, ...), "open64");

	va_start(ap, flags);
	mode = open_mode(flags, ap);
	va_end(ap);
	if (watched_path(F_OPEN, AT_FDCWD, path, 0, NULL))
		INJECT(-1);
	return real_fn(path, flags, mode);
}

int openat(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;
	REAL(int (*)(int, const char *, int, ...), "openat");

	va_start(ap, flags);
	mode = open_mode(flags, ap);
	va_end(ap);
	if (watched_path(F_OPENAT, dirfd, path, 0, NULL))
		INJECT(-1);
	return real_fn(dirfd, path, flags, mode);
}

int openat64(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;
	REAL(int (*)(int, const char *, int, ...), "openat64");

	va_start(ap, flags);
	mode = open_mode(flags, ap);
	va_end(ap);
	if (watched_path(F_OPENAT, dirfd, path, 0, NULL))
		INJECT(-1);
	return real_fn(dirfd, path, flags, mode);
}

int creat(const char *path, mode_t mode)
{
	REAL(int (*)(const char *, mode_t), "creat");

	if (watched_path(F_CREAT, AT_FDCWD, path, 0, NULL))
		INJECT(-1);
	return real_fn(path, mode);
}

ssize_t write(int fd, const void *buf, size_t n)
{
	REAL(ssize_t (*)(int, const void *, size_t), "write");

	if (watched_fd(F_WRITE, fd)) {
		if (cfg.action == ACT_SHORT && n > 1)
			return real_fn(fd, buf, n / 2);
		INJECT(-1);
	}
	return real_fn(fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	REAL(ssize_t (*)(int, const void *, size_t, off_t), "pwrite");

	if (watched_fd(F_PWRITE, fd)) {
		if (cfg.action == ACT_SHORT && n > 1)
			return real_fn(fd, buf, n / 2, off);
		INJECT(-1);
	}
	return real_fn(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
	REAL(ssize_t (*)(int, const void *, size_t, off_t), "pwrite64");

	if (watched_fd(F_PWRITE, fd)) {
		if (cfg.action == ACT_SHORT && n > 1)
			return real_fn(fd, buf, n / 2, off);
		INJECT(-1);
	}
	return real_fn(fd, buf, n, off);
}

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	REAL(ssize_t (*)(int, const struct iovec *, int), "writev");

	if (watched_fd(F_WRITEV, fd)) {
		if (cfg.action == ACT_SHORT && cnt > 0 && iov[0].iov_len > 1) {
			struct iovec half = { iov[0].iov_base, iov[0].iov_len / 2 };

			return real_fn(fd, &half, 1);
		}
		INJECT(-1);
	}
	return real_fn(fd, iov, cnt);
}

int fsync(int fd)
{
	REAL(int (*)(int), "fsync");

	if (watched_fd(F_FSYNC, fd))
		INJECT(-1);
	return real_fn(fd);
}

int fdatasync(int fd)
{
	REAL(int (*)(int), "fdatasync");

	if (watched_fd(F_FDATASYNC, fd))
		INJECT(-1);
	return real_fn(fd);
}

int rename(const char *a, const char *b)
{
	REAL(int (*)(const char *, const char *), "rename");

	if (watched_path(F_RENAME, AT_FDCWD, a, AT_FDCWD, b))
		INJECT(-1);
	return real_fn(a, b);
}

int renameat(int da, const char *a, int db, const char *b)
{
	REAL(int (*)(int, const char *, int, const char *), "renameat");

	if (watched_path(F_RENAMEAT, da, a, db, b))
		INJECT(-1);
	return real_fn(da, a, db, b);
}

int renameat2(int da, const char *a, int db, const char *b, unsigned int flags)
{
	REAL(int (*)(int, const char *, int, const char *, unsigned int), "renameat2");

	if (watched_path(F_RENAMEAT, da, a, db, b))
		INJECT(-1);
	return real_fn(da, a, db, b, flags);
}

int link(const char *a, const char *b)
{
	REAL(int (*)(const char *, const char *), "link");

	if (watched_path(F_LINK, AT_FDCWD, a, AT_FDCWD, b))
		INJECT(-1);
	return real_fn(a, b);
}

int linkat(int da, const char *a, int db, const char *b, int flags)
{
	REAL(int (*)(int, const char *, int, const char *, int), "linkat");

	if (watched_path(F_LINKAT, da, a, db, b))
		INJECT(-1);
	return real_fn(da, a, db, b, flags);
}

int mkdir(const char *path, mode_t mode)
{
	REAL(int (*)(const char *, mode_t), "mkdir");

	if (watched_path(F_MKDIR, AT_FDCWD, path, 0, NULL))
		INJECT(-1);
	return real_fn(path, mode);
}

int mkdirat(int dirfd, const char *path, mode_t mode)
{
	REAL(int (*)(int, const char *, mode_t), "mkdirat");

	if (watched_path(F_MKDIRAT, dirfd, path, 0, NULL))
		INJECT(-1);
	return real_fn(dirfd, path, mode);
}

int unlinkat(int dirfd, const char *path, int flags)
{
	REAL(int (*)(int, const char *, int), "unlinkat");

	if (watched_path(F_UNLINK, dirfd, path, 0, NULL))
		INJECT(-1);
	return real_fn(dirfd, path, flags);
}

int unlink(const char *path)
{
	REAL(int (*)(const char *), "unlink");

	if (watched_path(F_UNLINK, AT_FDCWD, path, 0, NULL))
		INJECT(-1);
	return real_fn(path);
}

int close(int fd)
{
	REAL(int (*)(int), "close");

	if (fd >= 0 && watched_fd(F_CLOSE, fd)) {
		(void)real_fn(fd);
		INJECT(-1);
	}
	return real_fn(fd);
}
