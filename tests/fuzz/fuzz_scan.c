/* fuzz_scan.c — libFuzzer harness for the homemail scan engine (policy on
 * top of hm_mime, hm_rfc2231, names and zip listing through libarchive).
 *
 * Input: the message, fed in two halves.  Checks beyond "no crash": a
 * verdict always exists, its reason and header are printable ASCII (they go
 * into SMTP replies and headers), and rejects carry a reason.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../exim-local-scan/scan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct scan_conf c;
	static int ready;
	if (!ready) {
		if (scan_conf_defaults(&c) < 0)
			abort();
		c.max_archive_size = 1 << 20;
		ready = 1;
	}
	struct scan *s = scan_new(&c, NULL);
	if (!s)
		return 0;
	size_t half = size / 2;
	if (scan_feed(s, (const char *)data, half) == 0)
		scan_feed(s, (const char *)data + half, size - half);
	const struct scan_verdict *v = scan_finish(s);
	if (!v)
		abort();
	for (const char *p = v->reason; p && *p; p++)
		if (*p < 0x20 || *p > 0x7e)
			abort();
	for (const char *p = v->header; p && *p; p++)
		if (*p < 0x20 || *p > 0x7e)
			abort();
	if (v->action == SCAN_REJECT && (!v->reason || !*v->reason))
		abort();
	scan_free(&s);
	return 0;
}
