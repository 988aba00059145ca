/* hm_util.c — checked copies, full I/O and log cleaning (see hm_util.h).
 * Relies on: libc only. Reports failures through return value + errno. */
#include "hm_util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int hm_strlcpy(char *dst, const char *src, size_t dstsize)
{
	size_t n = strlen(src);

	if (dstsize == 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (n >= dstsize) {
		memcpy(dst, src, dstsize - 1);
		dst[dstsize - 1] = '\0';
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(dst, src, n + 1);
	return 0;
}

int hm_snprintf(char *dst, size_t dstsize, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(dst, dstsize, fmt, ap);
	va_end(ap);
	if (n < 0) {
		errno = EINVAL;
		return -1;
	}
	if ((size_t)n >= dstsize) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

int hm_write_full(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n > 0) {
		ssize_t w = write(fd, c, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (w == 0) {
			errno = EIO;
			return -1;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

ssize_t hm_read_full(int fd, void *p, size_t n)
{
	char *c = p;
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, c + got, n - got);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

/* utf8_seq_len - length of a valid UTF-8 sequence at s (max n bytes), 0 if invalid */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
	size_t len, i;
	unsigned int cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) { len = 2; cp = s[0] & 0x1f; }
	else if (s[0] >= 0xe0 && s[0] <= 0xef) { len = 3; cp = s[0] & 0x0f; }
	else if (s[0] >= 0xf0 && s[0] <= 0xf4) { len = 4; cp = s[0] & 0x07; }
	else return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

void hm_log_clean(char *dst, size_t dstsize, const char *src, size_t srclen)
{
	const unsigned char *s = (const unsigned char *)src;
	size_t i = 0, o = 0;

	if (dstsize == 0)
		return;
	while (i < srclen) {
		size_t l = utf8_seq_len(s + i, srclen - i);
		if (l == 0 || (l == 1 && (s[i] < 0x20 || s[i] == 0x7f))) {
			if (o + 1 >= dstsize)
				goto truncated;
			dst[o++] = '?';
			i++;
			continue;
		}
		if (o + l >= dstsize)
			goto truncated;
		memcpy(dst + o, s + i, l);
		o += l;
		i += l;
	}
	dst[o] = '\0';
	return;
truncated:
	if (dstsize >= 4) {
		size_t written = o;
		if (o > dstsize - 4)
			o = dstsize - 4;
		/* do not cut a UTF-8 sequence in half */
		while (o > 0 && o < written && ((unsigned char)dst[o] & 0xc0) == 0x80)
			o--;
		memcpy(dst + o, "...", 3);
		o += 3;
	} else if (o >= dstsize) {
		o = dstsize - 1;
	}
	dst[o] = '\0';
}

bool hm_strcaseeq_n(const char *a, size_t alen, const char *b)
{
	return strlen(b) == alen && strncasecmp(a, b, alen) == 0;
}

int hm_hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* b64val - value of one Base64 digit (RFC 4648 table 1), -1 for others */
static int b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

size_t hm_base64_decode_lax(char *dst, const char *src, size_t len)
{
	size_t o = 0;
	unsigned acc = 0;
	int bits = 0;
	for (size_t i = 0; i < len; i++) {
		int v = b64val((unsigned char)src[i]);
		if (v < 0)
			continue;
		acc = ((acc << 6) | (unsigned)v) & 0xFFFFFF;   /* 4 digits at most */
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			dst[o++] = (char)((acc >> bits) & 0xFF);
		}
	}
	return o;
}

char *hm_trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
		e--;
	*e = '\0';
	return s;
}

int hm_open_regular(const char *path, int flags, mode_t mode, struct stat *st_r)
{
	int fd = open(path, flags | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, mode);
	int e;

	if (fd < 0)
		return -1;
	if (fstat(fd, st_r) < 0)
		e = errno;
	else if (!S_ISREG(st_r->st_mode))
		e = EINVAL;
	else
		return fd;
	close(fd);
	errno = e;
	return -1;
}

/* hm_mono_ms - see hm_util.h */
long long hm_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* hm_wait_fd - see hm_util.h */
int hm_wait_fd(int fd, short events, long long deadline)
{
	for (;;) {
		long long left = deadline - hm_mono_ms();
		struct pollfd p = { .fd = fd, .events = events };
		int r;

		if (left <= 0)
			return 0;
		r = poll(&p, 1, left > 60000 ? 60000 : (int)left);
		if ((r < 0 && errno == EINTR) || r == 0)
			continue;   /* interrupted, or a 60 s slice of a longer wait */
		return r < 0 ? -1 : 1;
	}
}

/* hm_send_all - see hm_util.h */
int hm_send_all(int fd, const void *p, size_t n, long long deadline)
{
	const char *c = p;

	while (n > 0) {
		ssize_t w = send(fd, c, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int r = hm_wait_fd(fd, POLLOUT, deadline);
			if (r <= 0)
				return errno = r == 0 ? ETIMEDOUT : errno, -1;
			continue;
		}
		if (w < 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

/* hm_errf - see hm_util.h */
int hm_errf(int code, char *dst, size_t dstsize, const char *fmt, ...)
{
	if (dst != NULL && dstsize > 0) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(dst, dstsize, fmt, ap);
		va_end(ap);
	}
	return code;
}
