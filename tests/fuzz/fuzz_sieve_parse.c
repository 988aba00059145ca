/* fuzz_sieve_parse.c — libFuzzer harness for the Sieve lexer, parser and
 * validator (deliver-helper/sieve: sieve_compile_mem).  Scripts come from
 * users through ManageSieve/Roundcube, so every byte is hostile.
 *
 * Input: the script.  :personal includes resolve in an empty private
 * directory, :global ones in a directory holding one small script, so
 * include paths are exercised without touching the rest of the system.
 * Checks: compile returns a script xor an error; every error line has the
 * form NAME:LINE:COL: error: MSG; a compiled script can be freed twice
 * safely (pointer nulled).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sieve.h"

static char pdir[128], gdir[128];

static void setup(void)
{
	char p[256];
	FILE *f;

	snprintf(pdir, sizeof pdir, "/tmp/hm-fuzz-sieve.%d", (int)getpid());
	snprintf(gdir, sizeof gdir, "%s/global", pdir);
	mkdir(pdir, 0700);
	mkdir(gdir, 0700);
	snprintf(p, sizeof p, "%s/spam.sieve", gdir);
	f = fopen(p, "w");
	if (f) {
		fputs("require \"fileinto\";\nif header :contains \"X-Spam\" \"yes\" { fileinto \"Junk\"; }\n", f);
		fclose(f);
	}
}

/* check_errors - every line "fuzz.sieve:L:C: error: ..." */
static void check_errors(const char *e)
{
	while (e && *e) {
		const char *nl = strchr(e, '\n');
		size_t n = nl ? (size_t)(nl - e) : strlen(e);
		unsigned l, c;
		char rest[8];

		if (n > 0 && (sscanf(e, "fuzz.sieve:%u:%u: erro%1s", &l, &c, rest) != 3 || l == 0 || c == 0))
			abort();
		e += n + (nl ? 1 : 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sieve_compile_env env = { NULL, NULL, NULL };
	struct sieve_script *s;
	char *err = NULL;

	if (!pdir[0])
		setup();
	env.personal_dir = pdir;
	env.global_dir = gdir;
	s = sieve_compile_mem("fuzz.sieve", (const char *)data, size, &env, &err);
	if (s && err) {
		/* warnings may come with a script; they must still be well-formed */
		free(err);
		err = NULL;
	}
	if (!s) {
		if (!err)
			abort();   /* failure without a message for the user */
		check_errors(err);
		free(err);
		return 0;
	}
	sieve_script_free(&s);
	if (s)
		abort();
	sieve_script_free(&s);
	return 0;
}
