/* hm_util.h — small helpers every piece of homemail uses.
 *
 * Checked size arithmetic, truncation-checked string copies, EINTR-safe full
 * reads/writes, opening a regular file without following links, the cleaning of untrusted text before it reaches a log, and
 * the hex / Base64 digit decoding the MIME and RFC 2047 readers share.
 * Nothing here allocates except where stated; nothing calls exit() or alarm(),
 * so the helpers are safe inside Exim's and Dovecot's processes.
 *
 * Naming, in lib/, dovecot-plugin/ and exim-local-scan/: a parameter through
 * which a function returns a value ends in _r (Dovecot's convention:
 * size_t *len_r, struct hm_users **db_r); a caller's buffer it fills is dst
 * with dstsize (as in hm_strlcpy); a parameter both read and updated (a
 * cursor, a counter, a destructor's T **) keeps a plain name.
 */
#ifndef HM_UTIL_H
#define HM_UTIL_H
#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#define HM_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* hm_add_ok / hm_mul_ok - *r = a op b; false on overflow (then *r is undefined) */
static inline bool hm_add_ok(size_t a, size_t b, size_t *r) { return !__builtin_add_overflow(a, b, r); }
static inline bool hm_mul_ok(size_t a, size_t b, size_t *r) { return !__builtin_mul_overflow(a, b, r); }

/* hm_strlcpy - copy with truncation check. Returns 0, or -1 (ENAMETOOLONG) when
 * src does not fit; dst is always NUL-terminated when dstsize > 0. */
int hm_strlcpy(char *dst, const char *src, size_t dstsize);

/* hm_snprintf - snprintf that reports truncation. Returns 0, or -1 (ENAMETOOLONG
 * on truncation, EINVAL on format error). */
int hm_snprintf(char *dst, size_t dstsize, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* hm_write_full - write all n bytes, retrying on EINTR and short writes.
 * Returns 0, or -1 and errno set. */
int hm_write_full(int fd, const void *p, size_t n);

/* hm_read_full - read up to n bytes, retrying on EINTR; stops early only at EOF.
 * Returns bytes read (0 at EOF), or -1 and errno set. */
ssize_t hm_read_full(int fd, void *p, size_t n);

/* hm_open_regular - open(path, flags | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY,
 * mode) and fstat it into *st_r; a link is refused by open (ELOOP), anything
 * but a regular file (a FIFO, device or directory) with EINVAL.
 * Returns the descriptor, or -1 and errno set (nothing left open). */
int hm_open_regular(const char *path, int flags, mode_t mode, struct stat *st_r);

/* hm_log_clean - copy untrusted text for a log line: control characters,
 * DEL and bytes >= 0x80 that are not valid UTF-8 become '?', length capped at
 * dstsize-1 (a truncated copy ends with "..."). Never writes more than dstsize. */
void hm_log_clean(char *dst, size_t dstsize, const char *src, size_t srclen);

/* hm_strcaseeq_n - ASCII case-insensitive compare of a[0..alen) with NUL-terminated b */
bool hm_strcaseeq_n(const char *a, size_t alen, const char *b);

/* hm_hexval - value of one hex digit (either case), -1 when c is none */
int hm_hexval(unsigned char c);

/* hm_base64_decode_lax - decode Base64 src[0..len) into dst, skipping every
 * byte outside the alphabet ('=' padding, line ends, junk), as MIME readers
 * do (RFC 2045 6.8) and as RFC 2047 "B" words need.  Writes at most
 * len * 3 / 4 bytes (never more than len); returns the bytes written. */
size_t hm_base64_decode_lax(char *dst, const char *src, size_t len);

/* hm_trim - strip leading/trailing ASCII whitespace in place; returns s */
char *hm_trim(char *s);

/* hm_mono_ms - CLOCK_MONOTONIC in milliseconds (for deadlines) */
long long hm_mono_ms(void);

/* hm_wait_fd - poll fd for events until the hm_mono_ms() deadline (EINTR
 * retried): 1 ready, 0 deadline passed, -1 error */
int hm_wait_fd(int fd, short events, long long deadline);

/* hm_send_all - send all n bytes on a non-blocking socket (MSG_NOSIGNAL),
 * waiting with hm_wait_fd until the deadline.  Returns 0, or -1 and errno
 * set (ETIMEDOUT when the deadline passed). */
int hm_send_all(int fd, const void *p, size_t n, long long deadline);

/* hm_errf - format a reason into dst[dstsize] when dst is given (truncated
 * to fit); returns code, so a failure path is "return hm_errf(CODE, ...)" */
int hm_errf(int code, char *dst, size_t dstsize, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#endif
