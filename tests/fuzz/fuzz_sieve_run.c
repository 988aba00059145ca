/* fuzz_sieve_run.c — libFuzzer harness for the Sieve interpreter.
 *
 * Input: byte 0 = script length / 4 (the script is that many bytes after
 * it), the rest is the message.  A fixed prelude requiring every extension
 * is prepended so that the fuzzer reaches all commands.  Checks: no crash,
 * no leak, bounded run (small CPU budget), and the engine's promise: the
 * result always holds at least one action, and after a runtime error
 * exactly the plain implicit keep (no flags, no duplicate marks), also when
 * the caller turns a good result into an error (sieve_result_set_error). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sieve.h"

static const char prelude[] =
	"require [\"fileinto\",\"envelope\",\"copy\",\"imap4flags\",\"vacation\","
	"\"vacation-seconds\",\"reject\",\"ereject\",\"relational\","
	"\"comparator-i;ascii-numeric\",\"subaddress\",\"body\",\"variables\","
	"\"mailbox\",\"date\",\"index\",\"regex\",\"duplicate\",\"encoded-character\"];\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t slen = (size_t)data[0] * 4;
	if (slen > size - 1)
		slen = size - 1;
	size_t plen = sizeof prelude - 1;
	char *script = malloc(plen + slen + 1);
	if (!script)
		return 0;
	memcpy(script, prelude, plen);
	memcpy(script + plen, data + 1, slen);
	struct sieve_limits lim;
	sieve_limits_default(&lim);
	lim.max_steps = 20000;
	lim.max_body = 64 * 1024;
	struct sieve_compile_env env = { .limits = &lim };
	struct sieve_script *s = sieve_compile_mem("f", script, plen + slen, &env, NULL);
	free(script);
	if (!s)
		return 0;
	struct sieve_message m = {
		.data = (const char *)data + 1 + slen, .len = size - 1 - slen,
		.env_from = "a@b.example", .env_to = "u@home.com.bo", .now = 1773576000,
	};
	struct sieve_result *r = sieve_execute(&s, 1, &m, NULL);
	for (int pass = 0; r && pass < 2; pass++) {
		if (r->nactions == 0)
			abort();
		if (r->error && (r->nactions != 1 || !r->actions[0].implicit ||
				 r->actions[0].flags || r->ndups != 0 ||
				 strcmp(r->actions[0].target, "INBOX") != 0))
			abort();
		if (r->error)
			break;
		sieve_result_set_error(r, &r->actions[r->nactions - 1], "f:1:1: error: x");
	}
	sieve_result_free(&r);
	sieve_script_free(&s);
	return 0;
}
