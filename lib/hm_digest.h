/* hm_digest.h — SHA-256, Base64 encoding and random bytes for homemail.
 *
 * What for: keys of the lockout, vacation and duplicate state files, the
 * Base64 of RFC 2047 encoded words in generated replies, random Message-IDs.
 * Relies on: Nettle (libnettle8, a small library: linking it costs a fresh
 * process about 0.05 ms, where libcrypto cost homemail-deliver 1.3 ms of its
 * ~4 ms) and getrandom(2).
 * Nothing here allocates; safe inside Exim's and Dovecot's processes.
 */
#ifndef HM_DIGEST_H
#define HM_DIGEST_H
#include <stddef.h>
#include <stdint.h>

#define HM_SHA256_SIZE 32

/* hm_sha256 - out = SHA-256 of the concatenation of a (alen bytes) and b
 * (blen bytes; b may be NULL when blen is 0). */
void hm_sha256(const void *a, size_t alen, const void *b, size_t blen,
	       uint8_t out[HM_SHA256_SIZE]);

/* hm_hmac_sha256 - out = HMAC-SHA-256 (RFC 2104) under key of the
 * concatenation of a (alen bytes) and b (blen bytes, may be 0) */
void hm_hmac_sha256(const void *key, size_t keylen, const void *a, size_t alen,
		    const void *b, size_t blen, uint8_t out[HM_SHA256_SIZE]);

/* HM_BASE64_SIZE - bytes hm_base64_encode writes for len input bytes, NUL included */
#define HM_BASE64_SIZE(len) (((len) + 2) / 3 * 4 + 1)

/* hm_base64_encode - padded Base64 (RFC 4648 section 4) of src into dst,
 * NUL-terminated.  Returns 0, or -1 (ENAMETOOLONG) when dstsize is below
 * HM_BASE64_SIZE(len) (dst is then untouched). */
int hm_base64_encode(char *dst, size_t dstsize, const void *src, size_t len);

/* hm_random_bytes - n bytes from the kernel's CSPRNG (getrandom, retried on
 * EINTR and short reads).  Returns 0, or -1 and errno set. */
int hm_random_bytes(void *buf, size_t n);

#endif
