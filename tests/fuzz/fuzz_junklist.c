/* fuzz_junklist.c — libFuzzer harness for lib/hm_junklist: the per-user
 * sender lists the Dovecot plugin writes and homemail-deliver reads.  The
 * file sits in the user's Maildir, so its bytes are as hostile as the user.
 *
 * Input: a list file.  Checks: parse never fails except ENOMEM; lookups of
 * addresses taken from the file itself are consistent; format → parse is a
 * fixed point (same entries, nothing damaged); trim keeps its bound.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hm_junklist.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hm_junklist l, l2;
	char *copy, *text, *text2;
	size_t len, len2;

	copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	hm_junklist_init(&l);
	if (hm_junklist_parse(&l, copy, size) < 0) {
		hm_junklist_free(&l);
		return 0;
	}
	/* every stored entry must be found again under its own address */
	for (size_t i = 0; i < l.n; i++) {
		const char *m = NULL;
		const char *a = l.v[i].addr;

		if (a[0] == '@')
			continue;   /* domain entries match addresses, not themselves */
		if (hm_junklist_lookup(&l, a, &m) != (enum hm_junk_kind)l.v[i].kind)
			abort();
	}
	(void)hm_junklist_lookup(&l, "someone@example.org", NULL);
	text = hm_junklist_format(&l, &len);
	if (text) {
		hm_junklist_init(&l2);
		text2 = malloc(len ? len : 1);
		if (text2) {
			memcpy(text2, text, len);
			if (hm_junklist_parse(&l2, text2, len) == 0) {
				if (l2.n != l.n || l2.damaged != 0)
					abort();
				for (size_t i = 0; i < l.n; i++)
					if (strcmp(l.v[i].addr, l2.v[i].addr) != 0 ||
					    l.v[i].kind != l2.v[i].kind ||
					    l.v[i].stamp != l2.v[i].stamp)
						abort();
				hm_junklist_trim(&l2, 3);
				if (hm_junklist_count(&l2, HM_JUNK_BLOCKED) > 3 ||
				    hm_junklist_count(&l2, HM_JUNK_TRUSTED) > 3)
					abort();
				text2 = hm_junklist_format(&l2, &len2);
				free(text2);
			}
		}
		hm_junklist_free(&l2);
		free(text);
	}
	/* set + finish over the parsed list */
	if (size > 0) {
		char addr[64];
		size_t n = size < sizeof addr - 1 ? size : sizeof addr - 1;

		memcpy(addr, data, n);
		addr[n] = '\0';
		if (hm_junklist_set(&l, addr, HM_JUNK_BLOCKED, 1) == 0) {
			hm_junklist_finish(&l);
			(void)hm_junklist_lookup(&l, addr, NULL);
		}
	}
	hm_junklist_free(&l);
	return 0;
}
