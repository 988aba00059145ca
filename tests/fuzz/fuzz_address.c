/* fuzz_address.c — libFuzzer harness for lib/hm_address, the RFC 5322
 * address-list parser (From/To/Cc/Return-Path for Sieve, junk lists, scan).
 *
 * Input: byte 0 caps the number of addresses (1..64), the rest is a header
 * value.  Checks: every returned string is NUL-terminated and no longer than
 * the input allows, at most max_addrs entries, display names valid UTF-8.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hm_address.h"
#include "hm_rfc2047.h"

static void check_utf8(const char *s)
{
	size_t n = strlen(s);

	for (size_t i = 0; i < n; ) {
		size_t l = hm_utf8_seq_len((const unsigned char *)s + i, n - i);

		if (l == 0)
			abort();
		i += l;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hm_addr_list l;
	size_t max;
	char *copy;

	if (size < 1)
		return 0;
	max = 1 + (data[0] & 63);
	data++, size--;
	copy = malloc(size + 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	memset(&l, 0, sizeof l);
	if (hm_address_parse(copy, size, max, &l) == 0) {
		if (l.n > max)
			abort();
		for (size_t i = 0; i < l.n; i++) {
			const struct hm_addr *a = &l.v[i];

			if (!a->local)
				abort();
			(void)strlen(a->local);
			if (a->domain)
				(void)strlen(a->domain);
			if (a->group)
				(void)strlen(a->group);
			if (a->display)
				check_utf8(a->display);
		}
		hm_address_list_free(&l);
		/* the list may be reused after free */
		memset(&l, 0, sizeof l);
		if (hm_address_parse(copy, size / 2, max, &l) == 0)
			hm_address_list_free(&l);
	}
	free(copy);
	return 0;
}
