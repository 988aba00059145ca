/* hm_digest.c — SHA-256, Base64 and random bytes (see hm_digest.h).
 *
 * Relies on: Nettle's sha256_* and base64_encode_raw, getrandom(2).
 * How it fails: hm_base64_encode refuses a too small buffer, hm_random_bytes
 * passes getrandom's errno on; hashing cannot fail.
 */
#include <errno.h>
#include <sys/random.h>

#include <nettle/base64.h>
#include <nettle/hmac.h>
#include <nettle/sha2.h>

#include "hm_digest.h"

void hm_sha256(const void *a, size_t alen, const void *b, size_t blen,
	       uint8_t out[HM_SHA256_SIZE])
{
	struct sha256_ctx ctx;

	sha256_init(&ctx);
	sha256_update(&ctx, alen, a);
	if (blen > 0)
		sha256_update(&ctx, blen, b);
	sha256_digest(&ctx, HM_SHA256_SIZE, out);
}

void hm_hmac_sha256(const void *key, size_t keylen, const void *a, size_t alen,
		    const void *b, size_t blen, uint8_t out[HM_SHA256_SIZE])
{
	struct hmac_sha256_ctx ctx;

	hmac_sha256_set_key(&ctx, keylen, key);
	hmac_sha256_update(&ctx, alen, a);
	if (blen > 0)
		hmac_sha256_update(&ctx, blen, b);
	hmac_sha256_digest(&ctx, HM_SHA256_SIZE, out);
}

int hm_base64_encode(char *dst, size_t dstsize, const void *src, size_t len)
{
	/* HM_BASE64_SIZE cannot overflow for any len below SIZE_MAX / 2 */
	if (len > (size_t)-1 / 2 || dstsize < HM_BASE64_SIZE(len)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	base64_encode_raw((char *)dst, len, src);
	dst[BASE64_ENCODE_RAW_LENGTH(len)] = '\0';
	return 0;
}

int hm_random_bytes(void *buf, size_t n)
{
	unsigned char *p = buf;

	while (n > 0) {
		ssize_t r = getrandom(p, n, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}
