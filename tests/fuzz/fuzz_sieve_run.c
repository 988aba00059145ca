/* fuzz_sieve_run.c — libFuzzer harness for the Sieve interpreter: compile a
 * script, run it against a message with an envelope, inspect the result —
 * what homemail-deliver does for every delivery.
 *
 * Input: 2 bytes (little endian) = script length, the script, then the
 * message.  Checks: a result always comes back; on a runtime error the
 * result says so with a message; every action is well-formed (targets,
 * NULL-terminated flag lists, vacation fields); a result without any action
 * means an explicit discard (never a silently lost message); the step
 * budget keeps every run inside libFuzzer's timeout.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sieve.h"

static char pdir[128];

static int mbox_exists(void *ctx, const char *name)
{
	return strcmp(name, "INBOX") == 0 || strcmp(name, "Junk") == 0;
}

static int dup_check(void *ctx, const char *id, size_t len)
{
	return len > 0 && id[0] == 'x';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sieve_compile_env env = { NULL, NULL, NULL };
	struct sieve_callbacks cb = { NULL, mbox_exists, dup_check };
	struct sieve_message msg;
	struct sieve_script *s;
	struct sieve_result *r;
	char *err = NULL, *copy;
	size_t slen;
	bool discarded = false;

	if (!pdir[0]) {
		snprintf(pdir, sizeof pdir, "/tmp/hm-fuzz-sieverun.%d", (int)getpid());
		mkdir(pdir, 0700);
	}
	if (size < 2)
		return 0;
	slen = data[0] | (size_t)data[1] << 8;
	data += 2, size -= 2;
	if (slen > size)
		slen = size;
	env.personal_dir = pdir;
	s = sieve_compile_mem("run.sieve", (const char *)data, slen, &env, &err);
	free(err);
	if (!s)
		return 0;
	copy = malloc(size - slen + 1);
	if (!copy) {
		sieve_script_free(&s);
		return 0;
	}
	memcpy(copy, data + slen, size - slen);
	copy[size - slen] = '\0';
	memset(&msg, 0, sizeof msg);
	msg.data = copy;
	msg.len = size - slen;
	msg.env_from = "sender@example.org";
	msg.env_to = "user+tag@home.com.bo";
	msg.env_orig_to = "user@home.com.bo";
	msg.now = 1764295200;     /* fixed clock: deterministic currentdate */
	r = sieve_execute(&s, 1, &msg, &cb);
	if (!r)
		goto out;   /* ENOMEM */
	if (r->error && !r->errmsg)
		abort();
	for (size_t i = 0; i < r->nactions; i++) {
		const struct sieve_action *a = &r->actions[i];

		switch (a->type) {
		case SIEVE_ACT_STORE:
		case SIEVE_ACT_REDIRECT:
		case SIEVE_ACT_REJECT:
		case SIEVE_ACT_EREJECT:
			if (!a->target)
				abort();
			(void)strlen(a->target);
			break;
		case SIEVE_ACT_VACATION:
			if (!a->vac_to || !a->vac_subject || !a->vac_reason)
				abort();
			break;
		case SIEVE_ACT_DISCARD:
			discarded = true;
			break;
		default:
			abort();
		}
		for (char **f = a->flags; f && *f; f++)
			(void)strlen(*f);
		for (char **f = a->vac_addresses; f && *f; f++)
			(void)strlen(*f);
	}
	if (!r->error && r->nactions == 0 && !discarded)
		abort();   /* no keep, no fileinto, no discard: the message would vanish */
	for (size_t i = 0; i < r->ndups; i++)
		if (!r->dups[i].id)
			abort();
	sieve_result_free(&r);
	if (r)
		abort();
out:
	sieve_script_free(&s);
	free(copy);
	return 0;
}
