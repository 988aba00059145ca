/* fuzz_util.c — libFuzzer harness for lib/hm_util's log cleaning and
 * lib/hm_buf's bounded appends: the two helpers every piece feeds untrusted
 * bytes through (header values into log lines, message data into buffers).
 *
 * Input: byte 0 picks the destination size (0..255), the rest is the text.
 * Checks (abort on violation, so libFuzzer reports it): the cleaned copy is
 * NUL-terminated inside dstsize, holds no control bytes or DEL, is valid
 * UTF-8; the buffer never exceeds its maximum and keeps its NUL.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hm_buf.h"
#include "hm_util.h"

/* valid_utf8 - 1 when s[0..n) is well-formed UTF-8 (no overlongs/surrogates) */
static int valid_utf8(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned c = s[i];
		size_t len;
		unsigned cp;

		if (c < 0x80) { i++; continue; }
		if (c >= 0xc2 && c <= 0xdf) { len = 2; cp = c & 0x1f; }
		else if (c >= 0xe0 && c <= 0xef) { len = 3; cp = c & 0x0f; }
		else if (c >= 0xf0 && c <= 0xf4) { len = 4; cp = c & 0x07; }
		else return 0;
		if (i + len > n)
			return 0;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
		    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
			return 0;
		i += len;
	}
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t dstsize, outlen;
	char *dst;
	struct hm_buf b;

	if (size < 1)
		return 0;
	dstsize = data[0];
	data++, size--;

	/* hm_log_clean into an exactly-sized heap block, so ASan sees overruns */
	dst = malloc(dstsize ? dstsize : 1);
	if (!dst)
		return 0;
	hm_log_clean(dst, dstsize, (const char *)data, size);
	if (dstsize > 0) {
		outlen = strnlen(dst, dstsize);
		if (outlen >= dstsize)
			abort();   /* not terminated inside the buffer */
		for (size_t i = 0; i < outlen; i++)
			if ((unsigned char)dst[i] < 0x20 || dst[i] == 0x7f)
				abort();   /* control byte reached the log */
		if (!valid_utf8((const unsigned char *)dst, outlen))
			abort();
	}
	free(dst);

	/* hm_buf: append the input in pieces against a max taken from byte 0 */
	hm_buf_init(&b, (size_t)dstsize * 4);
	for (size_t off = 0; off < size; ) {
		size_t n = (data[off] % 17) + 1;

		if (n > size - off)
			n = size - off;
		if (hm_buf_append(&b, data + off, n) < 0 && b.len + n <= b.max)
			abort();   /* refused an append that fits */
		if (b.len > b.max || (b.data && b.data[b.len] != '\0'))
			abort();
		off += n;
	}
	hm_buf_free(&b);
	return 0;
}
