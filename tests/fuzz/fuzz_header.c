/* fuzz_header.c — libFuzzer harness for lib/hm_header, the RFC 5322 header
 * parser every piece runs on mail from outside (LDA, Sieve, scan).
 *
 * Input: byte 0 chooses small limits (to reach the truncation paths), the
 * rest is the message start.  Checks beyond "no crash": every field lies
 * inside the parsed block, value is one line with no NUL/CR/LF, block_len
 * never exceeds the input, lookups by name agree with iteration.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hm_header.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hm_header_limits lim = HM_HEADER_LIMITS_DEFAULT;
	struct hm_header *h = NULL;
	const struct hm_hfield *f;
	size_t it = 0, named = 0;
	char *copy;

	if (size < 1)
		return 0;
	if (data[0] & 1)
		lim.max_block = 1 + (data[0] >> 1) * 7;
	if (data[0] & 0x80)
		lim.max_fields = 1 + (data[0] & 0x0f);
	data++, size--;
	/* an exactly-sized copy so ASan sees any read past the end */
	copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	if (hm_header_parse(copy, size, &lim, &h) < 0) {
		free(copy);
		return 0;
	}
	if (h->block_len > size)
		abort();
	for (size_t i = 0; i < h->count; i++) {
		f = &h->fields[i];
		if (f->offset > size || f->length > size - f->offset)
			abort();
		if (strlen(f->value) != f->value_len || f->name[f->name_len] != '\0')
			abort();
		if (memchr(f->value, '\r', f->value_len) || memchr(f->value, '\n', f->value_len))
			abort();
		if (f->raw[f->raw_len] != '\0')
			abort();
		if (hm_header_name_is(f, "Subject"))
			named++;
	}
	if (hm_header_count_name(h, "Subject") != named)
		abort();
	while ((f = hm_header_next(h, "Subject", &it)) != NULL)
		if (!hm_header_name_is(f, "subject"))
			abort();
	if ((named > 0) != (hm_header_get(h, "SUBJECT") != NULL))
		abort();
	it = 0;
	while (hm_header_next(h, NULL, &it) != NULL)
		;
	hm_header_free(&h);
	if (h != NULL)
		abort();
	free(copy);
	return 0;
}
