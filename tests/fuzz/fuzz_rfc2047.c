/* fuzz_rfc2047.c — libFuzzer harness for lib/hm_rfc2047: encoded-word
 * decoding and iconv charset conversion of header text from outside.
 *
 * Input: byte 0 sets the output bound (0..4095 via two bytes), then a
 * header value.  A second pass converts the value from a charset named by
 * its first word.  Checks: the output never exceeds its bound, is always
 * valid UTF-8, and the return value is one of the documented ones.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hm_buf.h"
#include "hm_rfc2047.h"

static void check_out(const struct hm_buf *b, int r)
{
	const char *s = hm_buf_cstr(b);

	if (r < -1 || r > 1)
		abort();
	if (b->len > b->max)
		abort();
	for (size_t i = 0; i < b->len; ) {
		size_t l = hm_utf8_seq_len((const unsigned char *)s + i, b->len - i);

		if (l == 0)
			abort();
		i += l;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hm_buf out;
	size_t max;
	char *copy, cs[64];
	size_t cl = 0;
	int r;

	if (size < 2)
		return 0;
	max = ((size_t)data[0] << 4 | (data[1] & 15));
	data += 2, size -= 2;
	copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);

	hm_buf_init(&out, max);
	r = hm_rfc2047_decode(&out, copy, size);
	check_out(&out, r);
	hm_buf_free(&out);

	/* charset name = bytes up to the first space (bounded), text = the rest */
	while (cl < size && cl < sizeof cs - 1 && copy[cl] != ' ' && copy[cl] != '\0')
		cl++;
	memcpy(cs, copy, cl);
	cs[cl] = '\0';
	hm_buf_init(&out, max);
	r = hm_charset_to_utf8(&out, cs, copy + cl, size - cl);
	check_out(&out, r);
	hm_buf_free(&out);

	hm_buf_init(&out, max);
	r = hm_utf8_append_valid(&out, copy, size);
	check_out(&out, r);
	hm_buf_free(&out);
	free(copy);
	return 0;
}
