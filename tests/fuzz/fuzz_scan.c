/* fuzz_scan.c — libFuzzer harness for the whole scan engine
 * (exim-local-scan/scan_*.c: MIME policy, attachment-name readings, zip
 * listing through libarchive) with the built-in configuration: exactly what
 * homemail_scan.so runs inside Exim at the end of DATA.
 *
 * Input: byte 0 = chunk size and SMTPUTF8 flag, the rest is a message.
 * Checks: a verdict always comes back with its strings, the reason and the
 * header are printable ASCII (SMTP reply, header), the log line has no
 * control bytes, a rejection has a reason, and the same message fed whole
 * gives the same verdict.  (Merges the scan owner's first harness.)
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scan.h"

static struct scan_conf conf;
static int conf_ready;

/* check_text - reply/header text must be printable ASCII (it goes into SMTP
 * replies and a header); the log line may carry UTF-8 but no control bytes */
static void check_text(const char *s, int ascii_only)
{
	if (!s)
		abort();
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f || (ascii_only && *p > 0x7e))
			abort();   /* CR/LF/control in a reply, header or log line */
}

static int run(const char *msg, size_t len, size_t chunk, bool utf8, int *action, int *rule)
{
	struct scan_opts o = { .smtputf8 = utf8 };
	struct scan *s = scan_new(&conf, &o);
	const struct scan_verdict *v;

	if (!s)
		return -1;
	for (size_t i = 0; i < len; i += chunk) {
		int r = scan_feed(s, msg + i, len - i < chunk ? len - i : chunk);

		if (r != 0)
			break;
	}
	v = scan_finish(s);
	if (!v)
		abort();
	check_text(v->reason, 1);
	check_text(v->header, 1);
	check_text(v->log, 0);
	if (v->action == SCAN_REJECT && !v->reason[0])
		abort();   /* a rejection must say why */
	if (v->action < SCAN_ACCEPT || v->action > SCAN_REJECT)
		abort();
	if (scan_action_name(v->action) == NULL || scan_rule_name(v->rule) == NULL)
		abort();
	*action = v->action;
	*rule = v->rule;
	scan_free(&s);
	if (s)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int a1, r1, a2, r2;
	size_t chunk;
	bool utf8;
	char *msg;

	if (!conf_ready) {
		if (scan_conf_defaults(&conf) < 0)
			abort();
		conf.max_archive_size = 1 << 20;
		conf.max_archive_inflate = 1 << 20; /* a bomb costs at most 1 MiB of inflation */
		conf.time_budget = 3600; /* the per-input timeout of libFuzzer is the budget here */
		conf_ready = 1;
	}
	if (size < 1)
		return 0;
	chunk = 1 + (data[0] & 0x3f) * 17;
	utf8 = data[0] & 0x40;
	data++, size--;
	msg = malloc(size ? size : 1);
	if (!msg)
		return 0;
	memcpy(msg, data, size);
	if (run(msg, size, chunk, utf8, &a1, &r1) == 0 &&
	    run(msg, size, size ? size : 1, utf8, &a2, &r2) == 0) {
		/* SR_INTERNAL (out of memory, time) may legitimately differ */
		if (r1 != SR_INTERNAL && r2 != SR_INTERNAL && (a1 != a2 || (a1 != SCAN_ACCEPT && r1 != r2)))
			abort();
	}
	free(msg);
	return 0;
}
