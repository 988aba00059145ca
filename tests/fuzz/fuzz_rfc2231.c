/* fuzz_rfc2231.c — libFuzzer harness for lib/hm_rfc2231: Content-Type /
 * Content-Disposition values with parameters, RFC 2231 continuations and
 * charsets — the attachment names the scan policy judges.
 *
 * Input: a field value.  Checks: parse leaves a usable structure (value
 * never NULL), at most one parameter per two input bytes (each needs a name
 * and an "="), sections in range; every
 * reading of "filename" and "name" is delivered with a sane length;
 * hm_mimefield_get agrees with hm_mimefield_has.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hm_rfc2231.h"

static int reading(void *ctx, const char *val, size_t len)
{
	size_t *total = ctx;

	if (val == NULL && len > 0)
		abort();
	if (len > 0)
		(void)val[len - 1];   /* ASan: the whole reading is readable */
	*total += len;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = { "filename", "name", "boundary", "charset" };
	struct hm_mimefield f;
	char *copy;

	copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	memset(&f, 0, sizeof f);
	if (hm_mimefield_parse(copy, size, &f) == 0) {
		if (f.value == NULL || f.nparams > size / 2 + 1)
			abort();
		for (size_t i = 0; i < f.nparams; i++) {
			const struct hm_param *p = &f.params[i];

			if (!p->name || !p->value || p->section < -1 ||
			    p->section > HM_PARAM_SECTION_MAX)
				abort();
			if (p->value[p->value_len] != '\0')
				abort();
		}
		for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
			size_t total = 0, glen = 0;
			char *g;

			if (hm_mimefield_readings(&f, names[k], reading, &total) < 0)
				continue;
			errno = 0;
			g = hm_mimefield_get(&f, names[k], &glen);
			if (g) {
				if (!hm_mimefield_has(&f, names[k]) || g[glen] != '\0')
					abort();
				free(g);
			} else if (errno != ENOMEM && hm_mimefield_has(&f, names[k]) && total > 0) {
				/* a parameter with non-empty readings must have a displayed value */
				abort();
			}
		}
	}
	hm_mimefield_free(&f);
	hm_mimefield_free(&f);   /* freeing twice must be safe (documented: zeroed or parsed) */
	free(copy);
	return 0;
}
